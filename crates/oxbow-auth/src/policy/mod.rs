//! IAM-style policies: the grammar (Version, Statement, Effect, Action/NotAction,
//! Resource/NotResource, Condition) and the evaluation AWS documents — everything is denied by
//! default, an Allow that matches permits, and any matching Deny wins over every Allow.
//!
//! Policies are compiled once when parsed (wildcards into matchers), so evaluating a request
//! against many policies costs string comparisons, not parsing.

mod condition;
mod trust;
mod wildcard;

use std::collections::HashMap;

use serde_json::Value;

pub use condition::Condition;
pub use trust::{Assumer, TrustPolicy};
use wildcard::Pattern;

/// Why a policy document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed policy: {0}")]
pub struct PolicyError(pub String);

fn bad(msg: impl Into<String>) -> PolicyError {
    PolicyError(msg.into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// A list of patterns, or everything except them (NotAction / NotResource).
#[derive(Debug, Clone)]
enum Matcher {
    Any(Vec<Pattern>),
    NoneOf(Vec<Pattern>),
}

impl Matcher {
    fn patterns(&self) -> &[Pattern] {
        match self {
            Matcher::Any(ps) | Matcher::NoneOf(ps) => ps,
        }
    }

    fn matches(&self, value: &str, vars: &Vars) -> bool {
        match self {
            Matcher::Any(ps) => ps.iter().any(|p| p.matches(value, vars)),
            Matcher::NoneOf(ps) => !ps.iter().any(|p| p.matches(value, vars)),
        }
    }
}

#[derive(Debug, Clone)]
struct Statement {
    effect: Effect,
    actions: Matcher,
    resources: Matcher,
    conditions: Vec<Condition>,
}

/// A parsed, compiled policy document.
#[derive(Debug, Clone)]
pub struct Policy {
    statements: Vec<Statement>,
}

/// The values a request is judged by: condition keys (`aws:SourceIp`, `aws:CurrentTime`,
/// `aws:username`, `credentials-iot:ThingName`, ...) and the policy variables they provide.
pub type Vars = HashMap<String, Vec<String>>;

/// One authorization question.
pub struct Request<'a> {
    /// `service:Action`, e.g. `kinesisvideo:PutMedia`.
    pub action: &'a str,
    /// The resource ARN, or `*` for actions on no particular resource.
    pub resource: &'a str,
    pub context: &'a Vars,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// A statement denies it: no Allow can override.
    ExplicitDeny,
    /// Nothing allows it.
    ImplicitDeny,
}

fn strings(v: &Value, what: &str) -> Result<Vec<String>, PolicyError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| bad(format!("{what} must hold strings")))
            })
            .collect(),
        _ => Err(bad(format!("{what} must be a string or a list of strings"))),
    }
}

fn matcher(
    st: &serde_json::Map<String, Value>,
    name: &str,
    not: &str,
    case_insensitive: bool,
) -> Result<Matcher, PolicyError> {
    let compile = |v: &Value, what: &str| -> Result<Vec<Pattern>, PolicyError> {
        // Seed 004's example carries a leading space inside an ARN: trim, as IAM does.
        // Case-insensitive elements (actions) are lowercased here, and the request's action
        // once per evaluation, so matching itself is exact (and takes the fast paths).
        Ok(strings(v, what)?
            .iter()
            .map(|s| match case_insensitive {
                true => Pattern::new(&s.trim().to_ascii_lowercase(), false),
                false => Pattern::new(s.trim(), false),
            })
            .collect())
    };
    match (st.get(name), st.get(not)) {
        (Some(v), None) => Ok(Matcher::Any(compile(v, name)?)),
        (None, Some(v)) => Ok(Matcher::NoneOf(compile(v, not)?)),
        (Some(_), Some(_)) => Err(bad(format!("a statement has both {name} and {not}"))),
        (None, None) => Err(bad(format!("a statement needs {name} or {not}"))),
    }
}

fn statement(v: &Value) -> Result<Statement, PolicyError> {
    let st = v
        .as_object()
        .ok_or_else(|| bad("a statement must be an object"))?;
    let effect = match st.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        _ => return Err(bad("Effect must be Allow or Deny")),
    };
    let conditions = match st.get("Condition") {
        None => Vec::new(),
        Some(c) => condition::parse_block(c)?,
    };
    Ok(Statement {
        effect,
        actions: matcher(st, "Action", "NotAction", true)?,
        resources: matcher(st, "Resource", "NotResource", false)?,
        conditions,
    })
}

impl Policy {
    pub fn parse(document: &str) -> Result<Policy, PolicyError> {
        let doc: Value = serde_json::from_str(document).map_err(|e| bad(e.to_string()))?;
        let obj = doc
            .as_object()
            .ok_or_else(|| bad("a policy must be a JSON object"))?;
        if let Some(v) = obj.get("Version").and_then(Value::as_str) {
            if v != "2012-10-17" && v != "2008-10-17" {
                return Err(bad(format!("unknown policy Version {v}")));
            }
        }
        let statements = match obj.get("Statement") {
            Some(Value::Array(items)) => {
                items.iter().map(statement).collect::<Result<Vec<_>, _>>()?
            }
            Some(single @ Value::Object(_)) => vec![statement(single)?],
            _ => return Err(bad("a policy needs a Statement")),
        };
        Ok(Policy { statements })
    }

    /// Whether the answer can change from one request to the next for the same principal,
    /// action and resource: a statement has a Condition, or a pattern uses a variable of the
    /// request (`${aws:SourceIp}`, `${aws:CurrentTime}`, ...). Callers must not reuse such a
    /// policy's decisions.
    pub fn depends_on_request(&self) -> bool {
        const PER_REQUEST: &[&str] = &[
            "aws:sourceip",
            "aws:currenttime",
            "aws:epochtime",
            "aws:securetransport",
        ];
        self.statements.iter().any(|s| {
            !s.conditions.is_empty()
                || s.actions
                    .patterns()
                    .iter()
                    .chain(s.resources.patterns())
                    .flat_map(Pattern::variables)
                    .any(|v| PER_REQUEST.contains(&v.to_ascii_lowercase().as_str()))
        })
    }

    /// Deny if a matching statement denies, Allow if one allows, None if none matches.
    fn decide(&self, req: &Request<'_>, action: &str) -> Option<Effect> {
        let mut result = None;
        for s in &self.statements {
            let hit = s.actions.matches(action, req.context)
                && s.resources.matches(req.resource, req.context)
                && s.conditions.iter().all(|c| c.holds(req.context));
            if hit {
                if s.effect == Effect::Deny {
                    return Some(Effect::Deny);
                }
                result = Some(Effect::Allow);
            }
        }
        result
    }
}

/// Judges a request against every policy that applies to the principal.
pub fn evaluate<'p>(policies: impl IntoIterator<Item = &'p Policy>, req: &Request<'_>) -> Decision {
    let action = req.action.to_ascii_lowercase();
    let mut allowed = false;
    for policy in policies {
        match policy.decide(req, &action) {
            Some(Effect::Deny) => return Decision::ExplicitDeny,
            Some(Effect::Allow) => allowed = true,
            None => {}
        }
    }
    if allowed {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_dependent_policies_are_recognised() {
        let fixed = r#"{"Statement":{"Effect":"Allow","Action":"kinesisvideo:*","Resource":"arn:aws:kinesisvideo:*:*:stream/${credentials-iot:ThingName}/*"}}"#;
        let by_ip = r#"{"Statement":{"Effect":"Allow","Action":"kinesisvideo:*","Resource":"arn:aws:kinesisvideo:*:*:stream/${aws:SourceIp}/*"}}"#;
        let conditional = r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"true"}}}}"#;
        assert!(!Policy::parse(fixed).unwrap().depends_on_request());
        assert!(Policy::parse(by_ip).unwrap().depends_on_request());
        assert!(Policy::parse(conditional).unwrap().depends_on_request());
    }
}
