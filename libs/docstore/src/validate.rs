//! Input checks shared by both backends, so that they reject the same things with
//! [`DocError::Invalid`] (HTTP 400) before anything reaches a server.
//!
//! The point is that values supplied by users stay values: a field name or path can never start
//! with `$` (a MongoDB operator), and the filter is built from the typed [`Condition`]s, never
//! from user JSON.

use serde_json::{Map, Value};

use crate::{Condition, DocError, Filter};

/// Longest collection name (both backends; MongoDB's namespace limit is 255 bytes with the
/// database name).
pub const MAX_COLLECTION_NAME: usize = 120;
/// Deepest nesting of objects and arrays in a document or filter value (MongoDB's limit is 100).
pub const MAX_DEPTH: usize = 100;
/// Longest field path.
pub const MAX_PATH: usize = 1024;

/// The field MongoDB keeps its own key in; never stored, filtered or returned by this crate.
pub const ID_FIELD: &str = "_id";

/// A collection name: 1 to 120 of `[A-Za-z0-9_.-]`, not `system.*` (MongoDB's own).
pub fn collection_name(name: &str) -> Result<(), DocError> {
    if name.is_empty() || name.len() > MAX_COLLECTION_NAME {
        return Err(DocError::Invalid(format!(
            "collection name must have 1 to {MAX_COLLECTION_NAME} characters"
        )));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err(DocError::Invalid(format!(
            "collection name {name:?} may only contain A-Z, a-z, 0-9, '_', '.' and '-'"
        )));
    }
    if name.starts_with("system.") {
        return Err(DocError::Invalid(format!(
            "collection name {name:?} is reserved (system.*)"
        )));
    }
    Ok(())
}

/// A dotted field path: non-empty segments, none starting with `$`, no NUL, not `_id`.
/// Returns the segments.
pub fn field_path(path: &str) -> Result<Vec<&str>, DocError> {
    if path.is_empty() || path.len() > MAX_PATH {
        return Err(DocError::Invalid(format!(
            "field path must have 1 to {MAX_PATH} bytes"
        )));
    }
    let segments: Vec<&str> = path.split('.').collect();
    for segment in &segments {
        if segment.is_empty() {
            return Err(DocError::Invalid(format!(
                "field path {path:?} has an empty segment"
            )));
        }
        if segment.starts_with('$') {
            return Err(DocError::Invalid(format!(
                "field path {path:?} has a segment starting with '$'"
            )));
        }
        if segment.contains('\0') {
            return Err(DocError::Invalid(format!(
                "field path {path:?} contains a NUL character"
            )));
        }
    }
    if segments.first() == Some(&ID_FIELD) {
        return Err(DocError::Invalid(format!(
            "field path {path:?}: {ID_FIELD} is reserved"
        )));
    }
    Ok(segments)
}

/// A document: a JSON object without `_id`, whose keys (at every depth) do not start with `$`
/// and have no NUL. Keys may contain `.` (MongoDB >= 5, e.g. Kubernetes label names); such a
/// key is one field, which a dotted path never reaches.
pub fn document(doc: &Value) -> Result<&Map<String, Value>, DocError> {
    let Value::Object(map) = doc else {
        return Err(DocError::Invalid(format!(
            "a document must be a JSON object, not {}",
            type_name(doc)
        )));
    };
    if map.contains_key(ID_FIELD) {
        return Err(DocError::Invalid(format!(
            "document field {ID_FIELD} is reserved"
        )));
    }
    keys(doc, 0)?;
    Ok(map)
}

/// A value used in a filter: the same key rules as documents.
pub fn value(v: &Value) -> Result<(), DocError> {
    keys(v, 0)
}

fn keys(v: &Value, depth: usize) -> Result<(), DocError> {
    if depth > MAX_DEPTH {
        return Err(DocError::Invalid(format!(
            "value nested deeper than {MAX_DEPTH} levels"
        )));
    }
    match v {
        Value::Object(map) => {
            for (key, child) in map {
                if key.starts_with('$') {
                    return Err(DocError::Invalid(format!(
                        "field name {key:?} starts with '$'"
                    )));
                }
                if key.contains('\0') {
                    return Err(DocError::Invalid(format!(
                        "field name {key:?} contains a NUL character"
                    )));
                }
                keys(child, depth + 1)?;
            }
            Ok(())
        }
        Value::Array(items) => items.iter().try_for_each(|item| keys(item, depth + 1)),
        _ => Ok(()),
    }
}

/// Every condition of a filter: valid paths and values, finite bounds.
pub fn filter(filter: &Filter) -> Result<(), DocError> {
    for condition in &filter.0 {
        match condition {
            Condition::Eq(path, v) => {
                field_path(path)?;
                value(v)?;
            }
            Condition::In(path, values) => {
                field_path(path)?;
                values.iter().try_for_each(value)?;
            }
            Condition::Lt(path, bound) | Condition::Gte(path, bound) => {
                field_path(path)?;
                if bound.is_nan() {
                    return Err(DocError::Invalid(format!(
                        "bound of {path:?} is not a number"
                    )));
                }
            }
        }
    }
    Ok(())
}

pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn collection_names() {
        for ok in [
            "a",
            "cluster_state_metrics",
            "A-b.c_9",
            "x".repeat(120).as_str(),
        ] {
            assert!(collection_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a/b",
            "a b",
            "$x",
            "é",
            "system.users",
            "a\0b",
            "x".repeat(121).as_str(),
        ] {
            assert!(
                matches!(collection_name(bad), Err(DocError::Invalid(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn field_paths() {
        assert_eq!(field_path("a").unwrap(), vec!["a"]);
        assert_eq!(field_path("a.b.0").unwrap(), vec!["a", "b", "0"]);
        assert_eq!(field_path("id_").unwrap(), vec!["id_"]);
        for bad in [
            "", ".", "a.", ".a", "a..b", "$where", "a.$gt", "_id", "_id.x", "a\0",
        ] {
            assert!(
                matches!(field_path(bad), Err(DocError::Invalid(_))),
                "{bad:?}"
            );
        }
        assert!(field_path(&"a".repeat(MAX_PATH + 1)).is_err());
    }

    #[test]
    fn documents() {
        assert!(document(&json!({"a": {"k8s.io/arch": "x"}, "s": "$gt"})).is_ok());
        assert!(document(&json!({"a": [{"b": "."}]})).is_ok());
        for bad in [
            json!([1]),
            json!("x"),
            json!(null),
            json!({"_id": 1}),
            json!({"$set": {}}),
            json!({"a": {"$gt": 1}}),
            json!({"a": [{"$x": 1}]}),
            json!({"a\u{0}": 1}),
        ] {
            assert!(matches!(document(&bad), Err(DocError::Invalid(_))), "{bad}");
        }
        // Nested deeper than the limit.
        let mut deep = json!(1);
        for _ in 0..=MAX_DEPTH + 1 {
            deep = json!([deep]);
        }
        assert!(document(&json!({ "d": deep })).is_err());
    }

    #[test]
    fn filters() {
        assert!(filter(&Filter::all().eq("a.b", "$gt").lt("t", 5.0)).is_ok());
        assert!(filter(&Filter::all().eq("a", json!({"$gt": 1}))).is_err());
        assert!(filter(&Filter::all().is_in("a", [json!({"$ne": 1})])).is_err());
        assert!(filter(&Filter::all().lt("a", f64::NAN)).is_err());
        assert!(filter(&Filter::all().gte("$a", 1.0)).is_err());
        assert!(filter(&Filter::all().gte("a", f64::INFINITY)).is_ok());
    }
}
