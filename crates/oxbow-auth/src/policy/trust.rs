//! Trust policies (a role's `AssumeRolePolicyDocument`): who may assume the role. Statements
//! name principals instead of resources — `"Principal": "*"`, `{"AWS": …}` (an account id, the
//! account root ARN, a user or role ARN) or `{"Service": …}` (such as
//! `credentials.iot.amazonaws.com`, the IoT credentials provider) — with actions
//! (`sts:AssumeRole`, …) and conditions (`sts:ExternalId`, …). A matching Deny wins; nothing
//! matching denies. As in IAM, trusting the account (its id or root ARN) trusts any principal
//! of it whose own policies allow the action; that check is the caller's.

use serde_json::Value;

use super::wildcard::Pattern;
use super::{bad, condition, strings, Effect, PolicyError, Vars};

/// Who asks to assume a role.
#[derive(Debug, Clone, Copy)]
pub enum Assumer<'a> {
    /// An IAM principal: its ARN (a user's, a role's for a role session, the account root's)
    /// and its account id.
    Aws { arn: &'a str, account: &'a str },
    /// An AWS service, e.g. `credentials.iot.amazonaws.com`.
    Service(&'a str),
}

#[derive(Debug, Clone)]
enum Principals {
    Everyone,
    Listed {
        aws: Vec<String>,
        services: Vec<String>,
    },
}

impl Principals {
    fn parse(v: &Value) -> Result<Self, PolicyError> {
        match v {
            Value::String(s) if s == "*" => Ok(Self::Everyone),
            Value::Object(m) => {
                let mut aws = Vec::new();
                let mut services = Vec::new();
                for (k, v) in m {
                    let list = strings(v, "Principal")?;
                    match k.as_str() {
                        "AWS" => aws.extend(list.into_iter().map(|s| s.trim().to_string())),
                        "Service" => {
                            services.extend(list.into_iter().map(|s| s.trim().to_string()))
                        }
                        // Federated and CanonicalUser principals never match here.
                        "Federated" | "CanonicalUser" => {}
                        other => return Err(bad(format!("unknown principal type {other}"))),
                    }
                }
                if aws.iter().any(|a| a == "*") {
                    return Ok(Self::Everyone);
                }
                Ok(Self::Listed { aws, services })
            }
            _ => Err(bad("Principal must be \"*\" or an object")),
        }
    }

    fn matches(&self, who: Assumer<'_>) -> bool {
        let Self::Listed { aws, services } = self else {
            return true;
        };
        match who {
            Assumer::Service(name) => services.iter().any(|s| s == name),
            Assumer::Aws { arn, account } => aws.iter().any(|p| {
                p == arn
                    || p == account
                    || p.strip_suffix(":root").is_some_and(|acct_arn| {
                        acct_arn.ends_with(&format!(":iam::{account}"))
                            && acct_arn.starts_with("arn:")
                    })
            }),
        }
    }
}

#[derive(Debug, Clone)]
struct Statement {
    effect: Effect,
    principals: Principals,
    /// NotPrincipal: everyone except these.
    negated: bool,
    actions: Vec<Pattern>,
    conditions: Vec<condition::Condition>,
}

/// A parsed trust policy.
#[derive(Debug, Clone)]
pub struct TrustPolicy {
    statements: Vec<Statement>,
}

impl TrustPolicy {
    pub fn parse(document: &str) -> Result<Self, PolicyError> {
        let doc: Value = serde_json::from_str(document).map_err(|e| bad(e.to_string()))?;
        let items = match doc.get("Statement") {
            Some(Value::Array(items)) => items.clone(),
            Some(single @ Value::Object(_)) => vec![single.clone()],
            _ => return Err(bad("a trust policy needs a Statement")),
        };
        let statements = items
            .iter()
            .map(|st| {
                let effect = match st.get("Effect").and_then(Value::as_str) {
                    Some("Allow") => Effect::Allow,
                    Some("Deny") => Effect::Deny,
                    _ => return Err(bad("Effect must be Allow or Deny")),
                };
                let (principals, negated) = match (st.get("Principal"), st.get("NotPrincipal")) {
                    (Some(p), None) => (Principals::parse(p)?, false),
                    (None, Some(p)) => (Principals::parse(p)?, true),
                    _ => return Err(bad("a trust statement needs Principal or NotPrincipal")),
                };
                let actions = strings(
                    st.get("Action")
                        .ok_or_else(|| bad("a trust statement needs an Action"))?,
                    "Action",
                )?
                .iter()
                .map(|a| Pattern::new(&a.trim().to_ascii_lowercase(), false))
                .collect();
                let conditions = match st.get("Condition") {
                    None => Vec::new(),
                    Some(c) => condition::parse_block(c)?,
                };
                Ok(Statement {
                    effect,
                    principals,
                    negated,
                    actions,
                    conditions,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { statements })
    }

    /// Whether `who` may perform `action` (`sts:AssumeRole`, …) on the role, given the
    /// request's condition keys.
    pub fn allows(&self, who: Assumer<'_>, action: &str, vars: &Vars) -> bool {
        let action = action.to_ascii_lowercase();
        let mut allowed = false;
        for s in &self.statements {
            let hit = s.principals.matches(who) != s.negated
                && s.actions.iter().any(|p| p.matches(&action, vars))
                && s.conditions.iter().all(|c| c.holds(vars));
            if hit {
                if s.effect == Effect::Deny {
                    return false;
                }
                allowed = true;
            }
        }
        allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str = "123456789012";

    fn user(name: &str) -> String {
        format!("arn:aws:iam::{ACCOUNT}:user/{name}")
    }

    fn aws(arn: &str) -> Assumer<'_> {
        Assumer::Aws {
            arn,
            account: ACCOUNT,
        }
    }

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        pairs
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), vec![v.to_string()]))
            .collect()
    }

    #[test]
    fn the_iot_service_and_only_it_assumes_a_device_role() {
        // Seed 003's trust policy for the IoT credentials provider.
        let t = TrustPolicy::parse(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow",
                "Principal":{"Service":"credentials.iot.amazonaws.com"},"Action":"sts:AssumeRole"}}"#,
        )
        .unwrap();
        let none = Vars::new();
        assert!(t.allows(
            Assumer::Service("credentials.iot.amazonaws.com"),
            "sts:AssumeRole",
            &none
        ));
        assert!(!t.allows(aws(&user("mallory")), "sts:AssumeRole", &none));
        assert!(!t.allows(
            Assumer::Service("ec2.amazonaws.com"),
            "sts:AssumeRole",
            &none
        ));
    }

    #[test]
    fn account_user_and_external_id_principals() {
        let root = format!("arn:aws:iam::{ACCOUNT}:root");
        let t = TrustPolicy::parse(&format!(
            r#"{{"Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{root}"}},"Action":"sts:AssumeRole",
                 "Condition":{{"StringEquals":{{"sts:ExternalId":"s3cret"}}}}}},
               {{"Effect":"Allow","Principal":{{"AWS":["{}"]}},"Action":"sts:AssumeRole"}},
               {{"Effect":"Deny","Principal":{{"AWS":"{}"}},"Action":"sts:*"}}]}}"#,
            user("alice"),
            user("eve")
        ))
        .unwrap();
        let none = Vars::new();
        let with_id = vars(&[("sts:ExternalId", "s3cret")]);
        // Alice is named: no condition for her.
        assert!(t.allows(aws(&user("alice")), "sts:AssumeRole", &none));
        // Anyone of the account, with the external id only.
        assert!(!t.allows(aws(&user("bob")), "sts:AssumeRole", &none));
        assert!(t.allows(aws(&user("bob")), "sts:AssumeRole", &with_id));
        assert!(t.allows(aws(&root), "sts:AssumeRole", &with_id));
        // An explicit deny wins; another account is not this account.
        assert!(!t.allows(aws(&user("eve")), "sts:AssumeRole", &with_id));
        let other = Assumer::Aws {
            arn: "arn:aws:iam::999999999999:user/bob",
            account: "999999999999",
        };
        assert!(!t.allows(other, "sts:AssumeRole", &with_id));
        // The action must match.
        assert!(!t.allows(aws(&user("alice")), "sts:TagSession", &none));
    }

    #[test]
    fn everyone_and_not_principal() {
        let t = TrustPolicy::parse(
            r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}}"#,
        )
        .unwrap();
        assert!(t.allows(aws(&user("x")), "sts:AssumeRole", &Vars::new()));
        assert!(TrustPolicy::parse(
            r#"{"Statement":{"Effect":"Allow","Action":"sts:AssumeRole"}}"#
        )
        .is_err());
        assert!(TrustPolicy::parse(
            r#"{"Statement":{"Effect":"Allow","Principal":{"Bogus":"x"},"Action":"a"}}"#
        )
        .is_err());
    }
}
