//! Admin request members, validated with the same rules and messages as the KVS API.

use oxbow_core::validate::{Checks, StrRule};
use oxbow_core::ApiError;
use serde_json::{Map, Value};

pub struct Args(Map<String, Value>);

impl Args {
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let v: Value = crate::input::parse(body)?;
        match v {
            Value::Object(m) => Ok(Self(m)),
            _ => Err(ApiError::invalid_argument(
                "The body must be a JSON object.",
            )),
        }
    }

    fn raw(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    /// An optional string member checked against `rule`.
    pub fn opt(&self, name: &str, rule: &StrRule) -> Result<Option<String>, ApiError> {
        let Some(v) = self.raw(name) else {
            return Ok(None);
        };
        let s = v
            .as_str()
            .ok_or_else(|| ApiError::invalid_argument(format!("{name} must be a string.")))?;
        Checks::new().string(name, Some(s), rule).finish()?;
        Ok(Some(s.to_string()))
    }

    /// A required string member checked against `rule`.
    pub fn req(&self, name: &str, rule: &StrRule) -> Result<String, ApiError> {
        self.opt(name, rule)?.ok_or_else(|| {
            ApiError::invalid_argument(format!(
                "1 validation error detected: Value null at '{name}' failed to satisfy constraint: Member must not be null"
            ))
        })
    }

    /// A required free-form string (documents, PEM).
    pub fn text(&self, name: &str) -> Result<String, ApiError> {
        self.raw(name)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| ApiError::invalid_argument(format!("{name} is required.")))
    }

    /// An integer member (numbers or numeric strings) within `min..=max`.
    pub fn int(&self, name: &str, default: i64, min: i64, max: i64) -> Result<i64, ApiError> {
        let n = match self.raw(name) {
            None => return Ok(default),
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(s)) => s.parse().ok(),
            Some(_) => None,
        }
        .ok_or_else(|| ApiError::invalid_argument(format!("{name} must be an integer.")))?;
        if !(min..=max).contains(&n) {
            return Err(ApiError::invalid_argument(format!(
                "{name} must be between {min} and {max}."
            )));
        }
        Ok(n)
    }

    /// An object member (IoT's `attributes`), if given as one.
    pub fn object(&self, name: &str) -> Option<&Map<String, Value>> {
        self.raw(name)?.as_object()
    }

    pub fn flag(&self, name: &str) -> bool {
        match self.raw(name) {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s == "true",
            _ => false,
        }
    }

    /// A list of strings, given as a JSON array or a comma-separated string.
    pub fn list(&self, name: &str) -> Option<Vec<String>> {
        match self.raw(name)? {
            Value::String(s) => Some(
                s.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
            ),
            Value::Array(items) => Some(
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect(),
            ),
            _ => None,
        }
    }
}
