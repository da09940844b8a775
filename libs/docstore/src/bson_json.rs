//! JSON documents as BSON and back, for the MongoDB backend: integers that fit i64 are Int64,
//! other numbers Double, so a document reads back as the same JSON (`2` stays `2`, `2.0` stays
//! `2.0`). BSON types JSON lacks, from documents other tools wrote, become strings.

use mongodb::bson::{Bson, Document};
use serde_json::{Map, Number, Value};

use crate::validate;

// ---------------------------------------------------------------------------------------------

/// A JSON value as BSON: integers as Int64, other numbers as Double.
pub fn json_to_bson(value: &Value) -> Bson {
    match value {
        Value::Null => Bson::Null,
        Value::Bool(b) => Bson::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Bson::Int64(i),
            None => Bson::Double(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Bson::String(s.clone()),
        Value::Array(items) => Bson::Array(items.iter().map(json_to_bson).collect()),
        Value::Object(map) => Bson::Document(map_to_document(map)),
    }
}

pub fn map_to_document(map: &Map<String, Value>) -> Document {
    let mut document = Document::new();
    for (key, value) in map {
        document.insert(key.clone(), json_to_bson(value));
    }
    document
}

/// A BSON value as JSON. Types JSON lacks (from documents other tools wrote) become strings:
/// ObjectId as hex, DateTime as RFC 3339, the rest as MongoDB prints them.
pub fn bson_to_json(value: Bson) -> Value {
    match value {
        Bson::Null | Bson::Undefined => Value::Null,
        Bson::Boolean(b) => Value::Bool(b),
        Bson::Int32(i) => Value::from(i),
        Bson::Int64(i) => Value::from(i),
        Bson::Double(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
        Bson::String(s) | Bson::Symbol(s) => Value::String(s),
        Bson::Array(items) => Value::Array(items.into_iter().map(bson_to_json).collect()),
        Bson::Document(document) => Value::Object(document_to_map(document)),
        Bson::ObjectId(oid) => Value::String(oid.to_hex()),
        Bson::DateTime(dt) => Value::String(
            dt.try_to_rfc3339_string()
                .unwrap_or_else(|_| dt.timestamp_millis().to_string()),
        ),
        other => Value::String(other.to_string()),
    }
}

fn document_to_map(document: Document) -> Map<String, Value> {
    document
        .into_iter()
        .map(|(key, value)| (key, bson_to_json(value)))
        .collect()
}

/// A stored document as returned to callers: JSON, without `_id`.
pub fn to_output(mut document: Document) -> Value {
    document.remove(validate::ID_FIELD);
    Value::Object(document_to_map(document))
}

#[cfg(test)]
mod tests {
    use mongodb::bson::doc;
    use serde_json::json;

    use super::*;

    #[test]
    fn json_bson_round_trip() {
        let value = json!({
            "i": 1, "neg": -5, "big": 9_007_199_254_740_993_i64, "f": 2.0, "g": 1.5,
            "huge": u64::MAX, "s": "$gt.a", "b": true, "n": null,
            "nested": {"k8s.io/arch": "amd64", "list": [1, 2.5, "x", {"y": []}]}
        });
        let bson = json_to_bson(&value);
        let Bson::Document(document) = &bson else {
            panic!("not a document")
        };
        assert_eq!(document.get("i"), Some(&Bson::Int64(1)));
        assert_eq!(document.get("f"), Some(&Bson::Double(2.0)));
        assert_eq!(document.get("huge"), Some(&Bson::Double(u64::MAX as f64)));
        let back = bson_to_json(bson);
        let mut expected = value;
        expected["huge"] = json!(u64::MAX as f64);
        assert_eq!(back, expected);
        assert!(back["f"].is_f64());
        assert!(back["i"].is_i64());
    }

    #[test]
    fn foreign_bson_types() {
        let oid = mongodb::bson::oid::ObjectId::new();
        assert_eq!(bson_to_json(Bson::ObjectId(oid)), json!(oid.to_hex()));
        assert_eq!(bson_to_json(Bson::Int32(7)), json!(7));
        assert_eq!(bson_to_json(Bson::Double(f64::NAN)), Value::Null);
        let dt = mongodb::bson::DateTime::from_millis(0);
        assert_eq!(
            bson_to_json(Bson::DateTime(dt)),
            json!("1970-01-01T00:00:00Z")
        );
        let mut d = doc! { "_id": 1, "a": 2 };
        d.insert("b", Bson::Undefined);
        assert_eq!(to_output(d), json!({"a": 2, "b": null}));
    }
}
