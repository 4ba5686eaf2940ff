//! `oxbow admin <action> [--member value ...]`: one call of the admin API. Members are named
//! as in the API with dashes (`--user-name alice` is `UserName`); `file://path` reads a value
//! from a file, as the AWS CLI does. The answer is printed as JSON.

use clap::Args;
use serde_json::{Map, Value};

use crate::media_cli::Connection;

const AFTER_HELP: &str = "\
Actions (kebab-case of the admin API's names):
  users      create-user, get-user, list-users, delete-user
  keys       create-access-key, list-access-keys, update-access-key (--status Inactive), delete-access-key
  policies   create-policy, update-policy (--policy-document file://p.json), get-policy, list-policies,
             delete-policy, attach-policy / detach-policy (--user-name | --role-name | --certificate-id)
  roles      create-role (--assume-role-policy-document file://trust.json), get-role, list-roles,
             delete-role, update-assume-role-policy (--role-name --policy-document file://trust.json)
  IoT        create-role-alias, list-role-aliases, delete-role-alias, create-thing, list-things,
             delete-thing, create-keys-and-certificate (--set-as-active true), register-certificate,
             get-certificate, list-certificates, update-certificate (--new-status), delete-certificate,
             attach-thing-principal, detach-thing-principal
  cameras    add-camera-owner (--user-name --channel-name --roles VIEWER,MASTER),
             list-camera-owners, remove-camera-owner

Example:
  oxbow admin create-user --user-name alice
  oxbow admin create-policy --policy-name read --policy-document file://read.json
  oxbow admin attach-policy --policy-name read --user-name alice";

#[derive(Args)]
#[command(after_help = AFTER_HELP)]
pub struct AdminArgs {
    /// The action, e.g. create-user.
    action: String,
    /// Members as `--member-name value` pairs.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    members: Vec<String>,
    #[command(flatten)]
    connection: Connection,
}

/// `create-keys-and-certificate` → `CreateKeysAndCertificate`.
fn pascal(kebab: &str) -> String {
    kebab
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn value(raw: &str) -> Result<Value, String> {
    if let Some(path) = raw.strip_prefix("file://") {
        return std::fs::read_to_string(path)
            .map(Value::String)
            .map_err(|e| format!("{path}: {e}"));
    }
    Ok(match raw {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        n if !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) => {
            n.parse::<i64>().map(Value::from).unwrap_or(raw.into())
        }
        _ => Value::String(raw.to_string()),
    })
}

/// The request body from `--member value` pairs; connection flags among them (`--data-dir`
/// and friends, which clap cannot see after the free-form members) go to `connection`.
fn body(members: &[String], mut connection: Option<&mut Connection>) -> Result<Value, String> {
    let mut out = Map::new();
    let mut items = members.iter();
    while let Some(flag) = items.next() {
        let name = flag
            .strip_prefix("--")
            .ok_or_else(|| format!("expected --member-name, got {flag}"))?;
        let raw = items
            .next()
            .ok_or_else(|| format!("--{name} needs a value"))?;
        if let Some(c) = connection.as_deref_mut() {
            if c.set_flag(flag, raw) {
                continue;
            }
        }
        out.insert(pascal(name), value(raw)?);
    }
    Ok(Value::Object(out))
}

pub async fn run(args: AdminArgs) -> Result<(), Box<dyn std::error::Error>> {
    let action = pascal(&args.action);
    if !oxbow_server::admin::ACTIONS.contains(&action.as_str()) {
        return Err(format!("unknown action {} (see oxbow admin --help)", args.action).into());
    }
    let mut connection = args.connection;
    let body = body(&args.members, Some(&mut connection))?;
    let answer = connection
        .client()?
        .call_json(&format!("{}{action}", oxbow_server::admin::PREFIX), &body)
        .await?;
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_become_pascal_case_json() {
        assert_eq!(
            pascal("create-keys-and-certificate"),
            "CreateKeysAndCertificate"
        );
        let b = body(
            &[
                "--user-name".into(),
                "alice".into(),
                "--set-as-active".into(),
                "true".into(),
                "--credential-duration-seconds".into(),
                "3600".into(),
            ],
            None,
        )
        .unwrap();
        assert_eq!(
            b,
            serde_json::json!({"UserName": "alice", "SetAsActive": true, "CredentialDurationSeconds": 3600})
        );
        assert!(body(&["alice".into()], None).is_err());
    }
}
