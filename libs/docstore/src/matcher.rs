//! MongoDB query semantics in Rust, for the embedded backend (and the few checks the MongoDB
//! backend makes before writing). Only what [`Condition`] can express:
//!
//! - **Paths.** A dotted path walks objects; on an array, a numeric segment is a position and
//!   any other segment is looked up in every object element (one array level per segment, as
//!   in MongoDB). A path that reaches nothing is *missing*.
//! - **Eq.** Equal by value: numbers compare numerically across integers and floats (`1 == 1.0`,
//!   exactly, also beyond 2^53), objects field by field, arrays element by element. A reached
//!   array also matches when one of its elements is equal. `null` matches null and missing.
//!   Types never mix: `true != 1`, `"1" != 1`.
//! - **In.** Eq with any of the values (none: nothing matches).
//! - **Lt / Gte.** Only numbers are compared (MongoDB's type bracketing): a missing field, null,
//!   a string or a boolean never matches; a reached array matches when one element does.
//! - **Sort.** MongoDB's order of types: missing and null, numbers, strings (by bytes),
//!   objects, arrays, booleans. An array sorts by its smallest element ascending and by its
//!   largest descending; ties keep insertion order.
//!
//! Known difference from MongoDB: objects compare as unordered maps (MongoDB compares field
//! order too); this crate never promises a key order for documents.

use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

use crate::{Condition, DocError, Filter};

/// What a path reaches in a document.
#[derive(Debug, Clone, Copy)]
enum Reached<'a> {
    Value(&'a Value),
    Missing,
}

/// Collects every value `segments` reaches from `current`.
fn resolve<'a>(current: &'a Value, segments: &[&str], out: &mut Vec<Reached<'a>>) {
    let Some((first, rest)) = segments.split_first() else {
        out.push(Reached::Value(current));
        return;
    };
    match current {
        Value::Object(map) => match map.get(*first) {
            Some(child) => resolve(child, rest, out),
            None => out.push(Reached::Missing),
        },
        Value::Array(items) => {
            if let Some(index) = array_index(first) {
                match items.get(index) {
                    Some(item) => resolve(item, rest, out),
                    None => out.push(Reached::Missing),
                }
                return;
            }
            let before = out.len();
            for item in items {
                if item.is_object() {
                    resolve(item, segments, out);
                }
            }
            if out.len() == before {
                out.push(Reached::Missing);
            }
        }
        _ => out.push(Reached::Missing),
    }
}

fn array_index(segment: &str) -> Option<usize> {
    if segment.bytes().all(|b| b.is_ascii_digit()) {
        segment.parse().ok()
    } else {
        None
    }
}

fn reached<'a>(doc: &'a Value, path: &str) -> Vec<Reached<'a>> {
    let segments: Vec<&str> = path.split('.').collect();
    let mut out = Vec::new();
    resolve(doc, &segments, &mut out);
    out
}

/// Whether `doc` satisfies every condition of `filter` (validated beforehand).
pub fn matches(doc: &Value, filter: &Filter) -> bool {
    filter
        .0
        .iter()
        .all(|condition| condition_holds(doc, condition))
}

fn condition_holds(doc: &Value, condition: &Condition) -> bool {
    match condition {
        Condition::Eq(path, wanted) => reached(doc, path).iter().any(|r| eq_matches(*r, wanted)),
        Condition::In(path, wanted) => {
            let found = reached(doc, path);
            wanted
                .iter()
                .any(|w| found.iter().any(|r| eq_matches(*r, w)))
        }
        Condition::Lt(path, bound) => range_matches(doc, path, |n| {
            cmp_number_f64(n, *bound) == Some(Ordering::Less)
        }),
        Condition::Gte(path, bound) => range_matches(doc, path, |n| {
            matches!(
                cmp_number_f64(n, *bound),
                Some(Ordering::Greater | Ordering::Equal)
            )
        }),
    }
}

fn eq_matches(found: Reached<'_>, wanted: &Value) -> bool {
    match found {
        Reached::Missing => wanted.is_null(),
        Reached::Value(v) => {
            values_equal(v, wanted)
                || matches!(v, Value::Array(items) if items.iter().any(|i| values_equal(i, wanted)))
        }
    }
}

fn range_matches(doc: &Value, path: &str, holds: impl Fn(&Number) -> bool) -> bool {
    reached(doc, path).iter().any(|r| match r {
        Reached::Value(Value::Number(n)) => holds(n),
        Reached::Value(Value::Array(items)) => items
            .iter()
            .any(|i| matches!(i, Value::Number(n) if holds(n))),
        _ => false,
    })
}

/// A JSON number as MongoDB holds it: integers that fit i64 as Int64, anything else as Double
/// (a u64 above i64::MAX is stored as a Double by the MongoDB backend too).
#[derive(Debug, Clone, Copy)]
enum Num {
    Int(i64),
    Float(f64),
}

fn num(n: &Number) -> Num {
    match n.as_i64() {
        Some(i) => Num::Int(i),
        None => Num::Float(n.as_f64().unwrap_or(f64::NAN)),
    }
}

/// 2^63 as f64: every f64 below it (and at or above -2^63) truncates to an exact i64.
const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;

/// Exact comparison of an integer with a float (no rounding of the integer through f64).
fn cmp_int_float(i: i64, f: f64) -> Option<Ordering> {
    if f.is_nan() {
        return None;
    }
    if f >= TWO_POW_63 {
        return Some(Ordering::Less);
    }
    if f < -TWO_POW_63 {
        return Some(Ordering::Greater);
    }
    let whole = f.trunc();
    // In range and integral: exact.
    #[allow(clippy::cast_possible_truncation)]
    let whole_int = whole as i64;
    match i.cmp(&whole_int) {
        Ordering::Equal => 0.0_f64.partial_cmp(&(f - whole)),
        other => Some(other),
    }
}

fn cmp_num(a: Num, b: Num) -> Option<Ordering> {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => Some(x.cmp(&y)),
        (Num::Float(x), Num::Float(y)) => x.partial_cmp(&y),
        (Num::Int(x), Num::Float(y)) => cmp_int_float(x, y),
        (Num::Float(x), Num::Int(y)) => cmp_int_float(y, x).map(Ordering::reverse),
    }
}

fn cmp_number_f64(n: &Number, bound: f64) -> Option<Ordering> {
    cmp_num(num(n), Num::Float(bound))
}

/// Equality by value, MongoDB style (numbers across int/float; no mixing of other types).
pub fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Number(x), Value::Number(y)) => cmp_num(num(x), num(y)) == Some(Ordering::Equal),
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| values_equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| values_equal(v, w)))
        }
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Sort
// ---------------------------------------------------------------------------------------------

/// The value a document sorts by (see the module docs).
#[derive(Debug, Clone, Copy)]
pub enum SortKey<'a> {
    /// An empty array: below everything (as in MongoDB).
    EmptyArray,
    /// Missing or null.
    Null,
    Value(&'a Value),
}

/// The sort key of `doc` for `path`; `descending` picks the largest of several candidates.
pub fn sort_key<'a>(doc: &'a Value, path: &str, descending: bool) -> SortKey<'a> {
    let mut candidates: Vec<SortKey<'a>> = Vec::new();
    for r in reached(doc, path) {
        match r {
            Reached::Missing | Reached::Value(Value::Null) => candidates.push(SortKey::Null),
            Reached::Value(Value::Array(items)) if items.is_empty() => {
                candidates.push(SortKey::EmptyArray);
            }
            Reached::Value(Value::Array(items)) => {
                candidates.extend(items.iter().map(|i| match i {
                    Value::Null => SortKey::Null,
                    other => SortKey::Value(other),
                }));
            }
            Reached::Value(v) => candidates.push(SortKey::Value(v)),
        }
    }
    let best = if descending {
        candidates.into_iter().max_by(|a, b| cmp_sort_keys(*a, *b))
    } else {
        candidates.into_iter().min_by(|a, b| cmp_sort_keys(*a, *b))
    };
    best.unwrap_or(SortKey::Null)
}

/// Ascending order of two sort keys.
pub fn cmp_sort_keys(a: SortKey<'_>, b: SortKey<'_>) -> Ordering {
    match (a, b) {
        (SortKey::Value(x), SortKey::Value(y)) => cmp_values(x, y),
        _ => key_rank(a).cmp(&key_rank(b)),
    }
}

fn key_rank(k: SortKey<'_>) -> u8 {
    match k {
        SortKey::EmptyArray => 0,
        SortKey::Null => 1,
        SortKey::Value(v) => type_rank(v),
    }
}

/// MongoDB's comparison order of BSON types, restricted to the JSON ones.
fn type_rank(v: &Value) -> u8 {
    match v {
        Value::Null => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Object(_) => 4,
        Value::Array(_) => 5,
        Value::Bool(_) => 6,
    }
}

/// Total order of two JSON values, MongoDB style.
fn cmp_values(a: &Value, b: &Value) -> Ordering {
    let by_type = type_rank(a).cmp(&type_rank(b));
    if by_type != Ordering::Equal {
        return by_type;
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => cmp_num(num(x), num(y)).unwrap_or(Ordering::Equal),
        (Value::String(x), Value::String(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            cmp_sequences(x.iter(), y.iter(), |p, q| cmp_values(p, q))
        }
        (Value::Object(x), Value::Object(y)) => cmp_sequences(x.iter(), y.iter(), |p, q| {
            p.0.as_bytes()
                .cmp(q.0.as_bytes())
                .then_with(|| cmp_values(p.1, q.1))
        }),
        _ => Ordering::Equal,
    }
}

fn cmp_sequences<T>(
    mut x: impl Iterator<Item = T>,
    mut y: impl Iterator<Item = T>,
    cmp: impl Fn(&T, &T) -> Ordering,
) -> Ordering {
    loop {
        match (x.next(), y.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(p), Some(q)) => match cmp(&p, &q) {
                Ordering::Equal => {}
                other => return other,
            },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Counters (DocStore::increment)
// ---------------------------------------------------------------------------------------------

/// The integer at `path` of `doc` (objects only); 0 when missing. A float with an integral
/// value counts as that integer; anything else is `Invalid` (MongoDB's `$inc` refuses
/// non-numbers too).
pub fn counter_value(doc: &Value, path: &[&str]) -> Result<i64, DocError> {
    let mut current = doc;
    for segment in path {
        match current {
            Value::Object(map) => match map.get(*segment) {
                Some(child) => current = child,
                None => return Ok(0),
            },
            _ => return Err(not_a_counter(path)),
        }
    }
    match current {
        Value::Number(n) => integral(n).ok_or_else(|| not_a_counter(path)),
        _ => Err(not_a_counter(path)),
    }
}

fn integral(n: &Number) -> Option<i64> {
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    let f = n.as_f64()?;
    if f.fract() == 0.0 && (-TWO_POW_63..TWO_POW_63).contains(&f) {
        #[allow(clippy::cast_possible_truncation)]
        return Some(f as i64);
    }
    None
}

fn not_a_counter(path: &[&str]) -> DocError {
    DocError::Invalid(format!(
        "field {:?} is not an integer counter in an object",
        path.join(".")
    ))
}

/// `current + delta`, never below `floor`; `Invalid` on overflow.
pub fn next_counter(current: i64, delta: i64, floor: i64) -> Result<i64, DocError> {
    current
        .checked_add(delta)
        .map(|v| v.max(floor))
        .ok_or_else(|| DocError::Invalid("counter overflow".to_owned()))
}

/// Sets `path` of `doc` to `value`, creating the objects on the way; `Invalid` when a
/// non-object is in the way.
pub fn set_path(doc: &mut Map<String, Value>, path: &[&str], value: Value) -> Result<(), DocError> {
    let Some((last, parents)) = path.split_last() else {
        return Err(DocError::Invalid("empty field path".to_owned()));
    };
    let mut current = doc;
    for segment in parents {
        let child = current
            .entry((*segment).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        current = match child {
            Value::Object(map) => map,
            _ => return Err(not_a_counter(path)),
        };
    }
    current.insert((*last).to_owned(), value);
    Ok(())
}

/// The document `increment` creates when none matches: `base` with the counter at
/// `path` = (base's value there, or 0) + `delta`, floored. Its top-level field names must not
/// contain `.` (the MongoDB backend creates it with `$setOnInsert`, which reads them as paths),
/// and it must match `filter`, or every later increment would create another document.
pub fn created_counter_doc(
    base: &Value,
    filter: &Filter,
    path: &[&str],
    delta: i64,
    floor: i64,
) -> Result<(Value, i64), DocError> {
    let Value::Object(base_map) = base else {
        return Err(DocError::Invalid(
            "increment base must be a JSON object".to_owned(),
        ));
    };
    if let Some(key) = base_map.keys().find(|k| k.contains('.')) {
        return Err(DocError::Invalid(format!(
            "increment base field {key:?} contains '.'"
        )));
    }
    let start = counter_value(base, path)?;
    let value = next_counter(start, delta, floor)?;
    let mut doc = base_map.clone();
    set_path(&mut doc, path, Value::from(value))?;
    let doc = Value::Object(doc);
    if !matches(&doc, filter) {
        return Err(DocError::Invalid(
            "increment base (with the counter) does not match the filter".to_owned(),
        ));
    }
    Ok((doc, value))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn m(doc: Value, filter: Filter) -> bool {
        matches(&doc, &filter)
    }

    #[test]
    fn eq_numbers_across_types_and_exactly() {
        assert!(m(json!({"a": 1}), Filter::all().eq("a", 1.0)));
        assert!(m(json!({"a": 2.0}), Filter::all().eq("a", 2)));
        assert!(!m(json!({"a": 2.5}), Filter::all().eq("a", 2)));
        // 2^53 + 1 is not representable as f64: exact comparison tells them apart.
        let big = 9_007_199_254_740_993_i64;
        assert!(m(json!({"a": big}), Filter::all().eq("a", big)));
        assert!(!m(
            json!({"a": big}),
            Filter::all().eq("a", 9_007_199_254_740_992.0)
        ));
        assert!(!m(json!({"a": 1}), Filter::all().eq("a", true)));
        assert!(!m(json!({"a": "1"}), Filter::all().eq("a", 1)));
        assert!(m(json!({"a": u64::MAX}), Filter::all().gte("a", 1e19)));
    }

    #[test]
    fn eq_paths_arrays_and_null() {
        let doc = json!({"c": {"uuid": "x"}, "tags": ["a", "b"], "pods": [{"n": 1}, {"n": 2}], "z": null});
        assert!(m(doc.clone(), Filter::all().eq("c.uuid", "x")));
        assert!(m(doc.clone(), Filter::all().eq("tags", "b")));
        assert!(m(doc.clone(), Filter::all().eq("tags", json!(["a", "b"]))));
        assert!(m(doc.clone(), Filter::all().eq("tags.1", "b")));
        assert!(!m(doc.clone(), Filter::all().eq("tags.0", "b")));
        assert!(m(doc.clone(), Filter::all().eq("pods.n", 2)));
        assert!(m(doc.clone(), Filter::all().eq("pods.1.n", 2)));
        assert!(m(doc.clone(), Filter::all().eq("missing", Value::Null)));
        assert!(m(doc.clone(), Filter::all().eq("z", Value::Null)));
        assert!(m(
            doc.clone(),
            Filter::all().eq("c.uuid.deeper", Value::Null)
        ));
        assert!(!m(doc.clone(), Filter::all().eq("c", Value::Null)));
        assert!(m(doc.clone(), Filter::all().eq("c", json!({"uuid": "x"}))));
        assert!(!m(
            doc,
            Filter::all().eq("c", json!({"uuid": "x", "more": 1}))
        ));
    }

    #[test]
    fn in_and_ranges() {
        let f = Filter::all().is_in("v", [json!(1), json!("x"), json!(null)]);
        assert!(m(json!({"v": 1.0}), f.clone()));
        assert!(m(json!({"v": "x"}), f.clone()));
        assert!(m(json!({}), f.clone()));
        assert!(!m(json!({"v": true}), f.clone()));
        assert!(!m(json!({"v": "1"}), f));
        assert!(!m(
            json!({"v": 1}),
            Filter::all().is_in("v", Vec::<Value>::new())
        ));

        let lt = Filter::all().lt("t", 10.0);
        assert!(m(json!({"t": 9}), lt.clone()));
        assert!(m(json!({"t": 9.99}), lt.clone()));
        assert!(!m(json!({"t": 10}), lt.clone()));
        assert!(!m(json!({}), lt.clone()));
        assert!(!m(json!({"t": null}), lt.clone()));
        assert!(!m(json!({"t": "1"}), lt.clone()));
        assert!(!m(json!({"t": false}), lt.clone()));
        assert!(m(json!({"t": [50, 3]}), lt));
        let gte = Filter::all().gte("t", 10.0);
        assert!(m(json!({"t": 10}), gte.clone()));
        assert!(!m(json!({"t": 9.5}), gte.clone()));
        assert!(!m(json!({}), gte.clone()));
        assert!(!m(json!({"t": "z"}), gte.clone()));
        assert!(m(json!({"t": i64::MAX}), Filter::all().gte("t", 9.2e18)));
        assert!(!m(
            json!({"t": i64::MIN}),
            Filter::all().gte("t", f64::NEG_INFINITY).lt("t", -1e300)
        ));
        assert!(m(json!({"t": 5}), Filter::all().gte("t", 4.5).lt("t", 5.5)));
    }

    #[test]
    fn sort_order() {
        let docs = [
            json!({"k": "b"}),
            json!({"k": 3}),
            json!({}),
            json!({"k": 1.5}),
            json!({"k": true}),
            json!({"k": {"x": 1}}),
            json!({"k": [10, 0.5]}),
            json!({"k": "a"}),
            json!({"k": []}),
        ];
        let sorted = |descending: bool| {
            let mut idx: Vec<usize> = (0..docs.len()).collect();
            idx.sort_by(|&a, &b| {
                let o = cmp_sort_keys(
                    sort_key(&docs[a], "k", descending),
                    sort_key(&docs[b], "k", descending),
                );
                if descending { o.reverse() } else { o }
            });
            idx
        };
        // [] < missing < 0.5 (array min) < 1.5 < 3 < "a" < "b" < {x:1} < true
        assert_eq!(sorted(false), vec![8, 2, 6, 3, 1, 7, 0, 5, 4]);
        // true > {x:1} > "b" > "a" > 10 (array max) > 3 > 1.5 > missing > []
        assert_eq!(sorted(true), vec![4, 5, 0, 7, 6, 1, 3, 2, 8]);
    }

    #[test]
    fn counters() {
        let path = ["c", "n"];
        assert_eq!(counter_value(&json!({}), &path).unwrap(), 0);
        assert_eq!(counter_value(&json!({"c": {"n": 4}}), &path).unwrap(), 4);
        assert_eq!(counter_value(&json!({"c": {"n": 4.0}}), &path).unwrap(), 4);
        for bad in [
            json!({"c": {"n": 4.5}}),
            json!({"c": {"n": "4"}}),
            json!({"c": {"n": null}}),
            json!({"c": 3}),
            json!({"c": [{"n": 1}]}),
        ] {
            assert!(counter_value(&bad, &path).is_err(), "{bad}");
        }
        assert_eq!(next_counter(3, -5, 0).unwrap(), 0);
        assert_eq!(next_counter(3, -5, -10).unwrap(), -2);
        assert_eq!(next_counter(-7, 1, 0).unwrap(), 0);
        assert!(next_counter(i64::MAX, 1, 0).is_err());

        let filter = Filter::all().eq("cluster", "c1");
        let (doc, v) =
            created_counter_doc(&json!({"cluster": "c1"}), &filter, &path, 2, 0).unwrap();
        assert_eq!(v, 2);
        assert_eq!(doc, json!({"cluster": "c1", "c": {"n": 2}}));
        let (doc, v) = created_counter_doc(
            &json!({"cluster": "c1", "c": {"n": 5}}),
            &filter,
            &path,
            -9,
            1,
        )
        .unwrap();
        assert_eq!((doc, v), (json!({"cluster": "c1", "c": {"n": 1}}), 1));
        assert!(created_counter_doc(&json!({"cluster": "c2"}), &filter, &path, 1, 0).is_err());
        assert!(
            created_counter_doc(&json!({"cluster": "c1", "a.b": 1}), &filter, &path, 1, 0).is_err()
        );
        assert!(
            created_counter_doc(&json!({"cluster": "c1", "c": 1}), &filter, &path, 1, 0).is_err()
        );
        assert!(created_counter_doc(&json!([1]), &filter, &path, 1, 0).is_err());
    }
}
