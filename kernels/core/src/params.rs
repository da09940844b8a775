//! Named kernel parameters as they arrive from a CLI (`--param k=10`), a FaaS `data_description`
//! (`"w": 200, "iterations": 2`, D6.7 4.2.3.2.4) or an HPC job's params (originals 6.1), with typed
//! getters that accept the aliases those callers use and reject malformed values by name.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::{KernelError, Result};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params(BTreeMap<String, Value>);

impl Params {
    pub fn new() -> Self {
        Self::default()
    }

    /// `KEY=VALUE` pairs; a value that parses as a JSON number or boolean becomes one.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = &'a str>) -> Result<Self> {
        let mut params = Self::new();
        for pair in pairs {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| KernelError::arg(format!("parameter '{pair}' is not KEY=VALUE")))?;
            let key = key.trim();
            if key.is_empty() {
                return Err(KernelError::arg(format!(
                    "parameter '{pair}' has an empty key"
                )));
            }
            let value = value.trim();
            let parsed = match serde_json::from_str::<Value>(value) {
                Ok(v @ (Value::Number(_) | Value::Bool(_))) => v,
                _ => Value::String(value.to_string()),
            };
            params.0.insert(key.to_string(), parsed);
        }
        Ok(params)
    }

    pub fn from_map(map: BTreeMap<String, Value>) -> Self {
        Self(map)
    }

    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<Value>) -> &mut Self {
        self.0.insert(key.into(), value.into());
        self
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.0.iter()
    }

    /// The first of `names` present (the first name is the canonical one, used in messages).
    fn find<'a>(&'a self, names: &[&str]) -> Option<&'a Value> {
        names.iter().find_map(|n| self.0.get(*n))
    }

    pub fn f64(&self, names: &[&str]) -> Result<Option<f64>> {
        match self.find(names) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(Value::String(s)) => match s.trim().parse::<f64>() {
                Ok(v) => Ok(Some(v)),
                Err(_) => Err(KernelError::arg(format!(
                    "{} must be a number, got '{s}'",
                    names[0]
                ))),
            },
            Some(other) => Err(KernelError::arg(format!(
                "{} must be a number, got {other}",
                names[0]
            ))),
        }
    }

    /// A finite number, or `default` when absent.
    pub fn f64_or(&self, names: &[&str], default: f64) -> Result<f64> {
        let v = self.f64(names)?.unwrap_or(default);
        if !v.is_finite() {
            return Err(KernelError::arg(format!("{} must be finite", names[0])));
        }
        Ok(v)
    }

    pub fn usize(&self, names: &[&str]) -> Result<Option<usize>> {
        let Some(v) = self.f64(names)? else {
            return Ok(None);
        };
        if v < 0.0 || v.fract() != 0.0 || v > (u32::MAX as f64) {
            return Err(KernelError::arg(format!(
                "{} must be a non-negative integer, got {v}",
                names[0]
            )));
        }
        Ok(Some(v as usize))
    }

    pub fn usize_or(&self, names: &[&str], default: usize) -> Result<usize> {
        Ok(self.usize(names)?.unwrap_or(default))
    }

    pub fn bool_or(&self, names: &[&str], default: bool) -> Result<bool> {
        match self.find(names) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::Number(n)) if n.as_f64() == Some(0.0) => Ok(false),
            Some(Value::Number(n)) if n.as_f64() == Some(1.0) => Ok(true),
            Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" | "on" => Ok(true),
                "false" | "no" | "0" | "off" => Ok(false),
                _ => Err(KernelError::arg(format!(
                    "{} must be true or false, got '{s}'",
                    names[0]
                ))),
            },
            Some(other) => Err(KernelError::arg(format!(
                "{} must be true or false, got {other}",
                names[0]
            ))),
        }
    }

    pub fn str(&self, names: &[&str]) -> Result<Option<String>> {
        match self.find(names) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(other) => Err(KernelError::arg(format!(
                "{} must be a string, got {other}",
                names[0]
            ))),
        }
    }

    /// One of `choices` (case-insensitive), or `default` when absent.
    pub fn choice<T: Copy>(&self, names: &[&str], choices: &[(&str, T)], default: T) -> Result<T> {
        let Some(s) = self.str(names)? else {
            return Ok(default);
        };
        let lower = s.to_ascii_lowercase();
        choices
            .iter()
            .find(|(name, _)| *name == lower)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                let names_list: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
                KernelError::arg(format!(
                    "{} must be one of {}, got '{s}'",
                    names[0],
                    names_list.join(", ")
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_parse_numbers_bools_and_strings() {
        let p = Params::from_pairs(["k=10", "metric=cosine", "greeks=true", "tol=1e-4"]).unwrap();
        assert_eq!(p.usize(&["k"]).unwrap(), Some(10));
        assert_eq!(p.str(&["metric"]).unwrap().as_deref(), Some("cosine"));
        assert!(p.bool_or(&["greeks"], false).unwrap());
        assert_eq!(p.f64(&["tol"]).unwrap(), Some(1e-4));
        assert!(Params::from_pairs(["novalue"]).is_err());
        assert!(Params::from_pairs(["=3"]).is_err());
    }

    #[test]
    fn aliases_and_bad_values() {
        let p = Params::from_pairs(["w=200", "k=-1", "x=abc"]).unwrap();
        assert_eq!(p.usize(&["window", "w"]).unwrap(), Some(200));
        assert!(
            p.usize(&["k"])
                .unwrap_err()
                .to_string()
                .contains("non-negative integer")
        );
        assert!(p.f64(&["x"]).is_err());
        let c = p.choice(&["mode"], &[("a", 1), ("b", 2)], 1).unwrap();
        assert_eq!(c, 1);
        let p = Params::from_pairs(["mode=C"]).unwrap();
        assert!(
            p.choice(&["mode"], &[("a", 1), ("b", 2)], 1)
                .unwrap_err()
                .to_string()
                .contains("a, b")
        );
    }
}
