//! Condition blocks: `{"Operator": {"key": value-or-values}}`. Every operator and every key
//! in a block must hold; for one key, any of the policy's values may match (the negated
//! operators require that none does). A key the request lacks fails the positive operators
//! and satisfies the negated ones, unless `...IfExists` makes any absent key pass.

use std::net::IpAddr;

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::wildcard::Pattern;
use super::{bad, PolicyError, Vars};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    Numeric(Cmp),
    Date(Cmp),
    Bool,
    IpAddress,
    ArnLike,
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

/// How a multi-valued request key is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Set {
    /// Single-valued use: any request value may match.
    Default,
    ForAnyValue,
    ForAllValues,
}

#[derive(Debug, Clone)]
pub struct Condition {
    kind: Kind,
    negated: bool,
    if_exists: bool,
    set: Set,
    key: String,
    values: Vec<String>,
    patterns: Vec<Pattern>,
}

fn operator(name: &str) -> Result<(Kind, bool), PolicyError> {
    use Cmp::*;
    use Kind::*;
    Ok(match name {
        "StringEquals" => (StringEquals, false),
        "StringNotEquals" => (StringEquals, true),
        "StringEqualsIgnoreCase" => (StringEqualsIgnoreCase, false),
        "StringNotEqualsIgnoreCase" => (StringEqualsIgnoreCase, true),
        "StringLike" => (StringLike, false),
        "StringNotLike" => (StringLike, true),
        "NumericEquals" => (Numeric(Eq), false),
        "NumericNotEquals" => (Numeric(Eq), true),
        "NumericLessThan" => (Numeric(Lt), false),
        "NumericLessThanEquals" => (Numeric(Le), false),
        "NumericGreaterThan" => (Numeric(Gt), false),
        "NumericGreaterThanEquals" => (Numeric(Ge), false),
        "DateEquals" => (Date(Eq), false),
        "DateNotEquals" => (Date(Eq), true),
        "DateLessThan" => (Date(Lt), false),
        "DateLessThanEquals" => (Date(Le), false),
        "DateGreaterThan" => (Date(Gt), false),
        "DateGreaterThanEquals" => (Date(Ge), false),
        "Bool" => (Bool, false),
        "IpAddress" => (IpAddress, false),
        "NotIpAddress" => (IpAddress, true),
        "ArnEquals" | "ArnLike" => (ArnLike, false),
        "ArnNotEquals" | "ArnNotLike" => (ArnLike, true),
        "Null" => (Null, false),
        other => return Err(bad(format!("unknown condition operator {other}"))),
    })
}

/// Parses a statement's Condition element.
pub fn parse_block(block: &Value) -> Result<Vec<Condition>, PolicyError> {
    let ops = block
        .as_object()
        .ok_or_else(|| bad("Condition must be an object"))?;
    let mut out = Vec::new();
    for (full, keys) in ops {
        let (set, name) = match full.split_once(':') {
            Some(("ForAnyValue", n)) => (Set::ForAnyValue, n),
            Some(("ForAllValues", n)) => (Set::ForAllValues, n),
            Some((p, _)) => return Err(bad(format!("unknown condition set operator {p}"))),
            None => (Set::Default, full.as_str()),
        };
        let (name, if_exists) = match name.strip_suffix("IfExists") {
            Some(n) => (n, true),
            None => (name, false),
        };
        let (kind, negated) = operator(name)?;
        let keys = keys
            .as_object()
            .ok_or_else(|| bad(format!("{full} must map keys to values")))?;
        for (key, v) in keys {
            let values: Vec<String> = match v {
                Value::Array(items) => items.iter().map(scalar).collect::<Result<_, _>>()?,
                other => vec![scalar(other)?],
            };
            if kind == Kind::IpAddress {
                if let Some(v) = values.iter().find(|v| !v.contains("${") && !is_cidr(v)) {
                    return Err(bad(format!(
                        "{full}: '{v}' is not an IP address or CIDR block"
                    )));
                }
            }
            let patterns = values
                .iter()
                .map(|p| Pattern::new(p, kind == Kind::StringEqualsIgnoreCase))
                .collect();
            out.push(Condition {
                kind,
                negated,
                if_exists,
                set,
                key: key.clone(),
                values,
                patterns,
            });
        }
    }
    Ok(out)
}

fn scalar(v: &Value) -> Result<String, PolicyError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(bad("condition values must be strings, numbers or booleans")),
    }
}

fn date(s: &str) -> Option<i128> {
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t.unix_timestamp_nanos() / 1_000_000);
    }
    s.parse::<f64>().ok().map(|secs| (secs * 1000.0) as i128)
}

fn compare<T: PartialOrd>(cmp: Cmp, request: T, policy: T) -> bool {
    match cmp {
        Cmp::Eq => request == policy,
        Cmp::Lt => request < policy,
        Cmp::Le => request <= policy,
        Cmp::Gt => request > policy,
        Cmp::Ge => request >= policy,
    }
}

/// An IPv4 or IPv6 address, optionally with a prefix length that fits it.
fn is_cidr(v: &str) -> bool {
    let (net, bits) = v.split_once('/').unwrap_or((v, ""));
    let width = match net.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => 32,
        Ok(IpAddr::V6(_)) => 128,
        Err(_) => return false,
    };
    bits.is_empty() || bits.parse::<u32>().is_ok_and(|b| b <= width)
}

fn in_cidr(ip: &str, cidr: &str) -> bool {
    let (net, bits) = cidr.split_once('/').unwrap_or((cidr, ""));
    let (Ok(ip), Ok(net)) = (ip.parse::<IpAddr>(), net.parse::<IpAddr>()) else {
        return false;
    };
    let (ip, net, width) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b)), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => return false,
    };
    let bits: u32 = if bits.is_empty() {
        width
    } else {
        bits.parse().unwrap_or(u32::MAX)
    };
    if bits > width {
        return false;
    }
    let shift = width - bits;
    shift == width || (ip >> shift) == (net >> shift)
}

impl Condition {
    /// Does the policy value at `i` match one request value?
    fn one(&self, i: usize, request: &str, vars: &Vars) -> bool {
        let policy = &self.values[i];
        match self.kind {
            Kind::StringEquals => request == policy,
            Kind::StringEqualsIgnoreCase => request.eq_ignore_ascii_case(policy),
            Kind::StringLike | Kind::ArnLike => self.patterns[i].matches(request, vars),
            Kind::Numeric(c) => match (request.parse::<f64>(), policy.parse::<f64>()) {
                (Ok(r), Ok(p)) => compare(c, r, p),
                _ => false,
            },
            Kind::Date(c) => match (date(request), date(policy)) {
                (Some(r), Some(p)) => compare(c, r, p),
                _ => false,
            },
            Kind::Bool => request.eq_ignore_ascii_case(policy),
            Kind::IpAddress => in_cidr(request, policy),
            Kind::Null => false,
        }
    }

    fn any_policy_value(&self, request: &str, vars: &Vars) -> bool {
        (0..self.values.len()).any(|i| self.one(i, request, vars))
    }

    /// Whether the condition holds for the request's context.
    pub fn holds(&self, vars: &Vars) -> bool {
        let present = vars
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&self.key))
            .map(|(_, v)| v);
        if self.kind == Kind::Null {
            let wants_absent = self.values.iter().any(|v| v.eq_ignore_ascii_case("true"));
            return present.is_none_or(|v| v.is_empty()) == wants_absent;
        }
        let Some(request) = present.filter(|v| !v.is_empty()) else {
            return self.if_exists || self.negated || self.set == Set::ForAllValues;
        };
        let matched = match self.set {
            Set::ForAllValues => request.iter().all(|r| self.any_policy_value(r, vars)),
            Set::Default | Set::ForAnyValue => {
                request.iter().any(|r| self.any_policy_value(r, vars))
            }
        };
        matched != self.negated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(pairs: &[(&str, &[&str])]) -> Vars {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    fn holds(block: &str, vars: &Vars) -> bool {
        parse_block(&serde_json::from_str(block).unwrap())
            .unwrap()
            .iter()
            .all(|c| c.holds(vars))
    }

    #[test]
    fn strings_and_negation() {
        let v = ctx(&[("aws:username", &["ana"])]);
        assert!(holds(
            r#"{"StringEquals": {"aws:username": ["bob", "ana"]}}"#,
            &v
        ));
        assert!(!holds(
            r#"{"StringNotEquals": {"aws:username": "ana"}}"#,
            &v
        ));
        assert!(holds(
            r#"{"StringEqualsIgnoreCase": {"AWS:UserName": "ANA"}}"#,
            &v
        ));
        assert!(holds(r#"{"StringLike": {"aws:username": "a*"}}"#, &v));
        assert!(
            !holds(r#"{"StringEquals": {"aws:other": "x"}}"#, &v),
            "missing key fails"
        );
        assert!(
            holds(r#"{"StringNotEquals": {"aws:other": "x"}}"#, &v),
            "missing key satisfies a negation"
        );
        assert!(holds(r#"{"StringEqualsIfExists": {"aws:other": "x"}}"#, &v));
    }

    #[test]
    fn numbers_dates_bools_ips() {
        let v = ctx(&[
            ("n", &["5"]),
            ("aws:CurrentTime", &["2026-11-21T12:00:00Z"]),
            ("aws:SecureTransport", &["true"]),
            ("aws:SourceIp", &["10.1.2.3"]),
        ]);
        assert!(holds(
            r#"{"NumericLessThan": {"n": 6}, "NumericGreaterThanEquals": {"n": "5"}}"#,
            &v
        ));
        assert!(!holds(r#"{"NumericGreaterThan": {"n": 5}}"#, &v));
        assert!(holds(
            r#"{"DateLessThan": {"aws:CurrentTime": "2027-01-01T00:00:00Z"}}"#,
            &v
        ));
        assert!(!holds(
            r#"{"DateGreaterThan": {"aws:CurrentTime": "2027-01-01T00:00:00Z"}}"#,
            &v
        ));
        assert!(holds(r#"{"Bool": {"aws:SecureTransport": true}}"#, &v));
        assert!(holds(
            r#"{"IpAddress": {"aws:SourceIp": ["192.168.0.0/16", "10.0.0.0/8"]}}"#,
            &v
        ));
        assert!(holds(
            r#"{"NotIpAddress": {"aws:SourceIp": "10.1.3.0/24"}}"#,
            &v
        ));
        assert!(!holds(
            r#"{"IpAddress": {"aws:SourceIp": "10.1.2.4/32"}}"#,
            &v
        ));
        assert!(holds(r#"{"Null": {"aws:TokenIssueTime": "true"}}"#, &v));
        assert!(!holds(r#"{"Null": {"aws:SourceIp": "true"}}"#, &v));
    }

    #[test]
    fn set_operators() {
        let v = ctx(&[("tags", &["a", "b"])]);
        assert!(holds(
            r#"{"ForAnyValue:StringEquals": {"tags": ["b", "z"]}}"#,
            &v
        ));
        assert!(!holds(
            r#"{"ForAllValues:StringEquals": {"tags": ["b", "z"]}}"#,
            &v
        ));
        assert!(holds(
            r#"{"ForAllValues:StringEquals": {"tags": ["a", "b", "z"]}}"#,
            &v
        ));
    }

    #[test]
    fn malformed_blocks() {
        for b in [
            r#"{"StringSmells": {"k": "v"}}"#,
            r#"{"StringEquals": "v"}"#,
            r#"{"Maybe:StringEquals": {"k": "v"}}"#,
            "[]",
        ] {
            assert!(
                parse_block(&serde_json::from_str(b).unwrap()).is_err(),
                "{b}"
            );
        }
    }
}
