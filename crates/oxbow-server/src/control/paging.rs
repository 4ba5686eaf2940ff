//! The list operations' shared shape: `MaxResults`, an opaque `NextToken`, and a
//! `BEGINS_WITH` name condition, over records kept in name order.

use oxbow_catalog::Status;
use oxbow_core::time::now_ms;
use oxbow_core::validate::{self as v, Checks, StrRule};
use oxbow_core::ApiError;
use serde::Deserialize;
use serde_json::{json, Value};

use super::Reply;
use crate::input::{next_token, token_key};
use crate::resource::lookup::{self, Managed};
use crate::state::AppState;

/// `StreamNameCondition` / `ChannelNameCondition`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NameCondition {
    pub comparison_operator: Option<String>,
    pub comparison_value: Option<String>,
}

impl NameCondition {
    /// Validates the condition and returns the prefix it asks for.
    fn prefix(&self, checks: &mut Checks, field: &str, rule: &StrRule) -> Option<String> {
        let op_field = format!("{field}.comparisonOperator");
        let value_field = format!("{field}.comparisonValue");
        checks
            .one_of(
                &op_field,
                self.comparison_operator.as_deref(),
                &["BEGINS_WITH"],
            )
            .string(&value_field, self.comparison_value.as_deref(), rule);
        if self.comparison_operator.is_some() {
            checks.required(&value_field, self.comparison_value.as_ref());
        }
        self.comparison_value.clone()
    }
}

/// One list request, in the terms of the operation it came from.
pub struct ListQuery<'a> {
    pub max_results: Option<i64>,
    pub default_max: usize,
    pub next_token: Option<&'a str>,
    pub condition: Option<&'a NameCondition>,
    pub condition_field: &'static str,
    pub name_rule: &'static StrRule,
    /// The member the response lists the records under.
    pub list_key: &'static str,
}

/// Answers a list request with one page of `info(record)` values and, if more remain,
/// a `NextToken`.
pub async fn list_page<T: Managed>(
    state: &AppState,
    q: ListQuery<'_>,
    info: fn(&T, Status) -> Value,
) -> Reply {
    let mut checks = Checks::new();
    checks.range("maxResults", q.max_results, 1, 10_000).string(
        "nextToken",
        q.next_token,
        &v::NEXT_TOKEN,
    );
    let prefix = q
        .condition
        .and_then(|c| c.prefix(&mut checks, q.condition_field, q.name_rule));
    checks.finish()?;
    let after = token_key(q.next_token)?;
    let max = q.max_results.map_or(q.default_max, |m| m as usize);
    let (rows, token) = page::<T>(state, prefix.as_deref(), after.as_deref(), max).await?;
    let now = now_ms();
    let infos: Vec<Value> = rows
        .iter()
        .filter_map(|r| r.lifecycle().at(now).map(|s| info(r, s)))
        .collect();
    let mut out = json!({ q.list_key: infos });
    if let Some(t) = token {
        out["NextToken"] = t.into();
    }
    Ok(Some(out))
}

/// One page of records and the token for the next, if there are more.
async fn page<T: Managed>(
    state: &AppState,
    prefix: Option<&str>,
    after: Option<&str>,
    max: usize,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let mut rows = T::table(state)
        .list(prefix, after, max + 1)
        .await
        .map_err(lookup::storage_error::<T>)?;
    let token = if rows.len() > max {
        rows.truncate(max);
        rows.last().map(|r| next_token(r.key()))
    } else {
        None
    };
    Ok((rows, token))
}
