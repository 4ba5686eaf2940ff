//! ListFragments: the time index as JSON, filtered by producer or server timestamp.

use std::sync::Arc;

use http::{Response, StatusCode};
use oxbow_catalog::StreamRecord;
use oxbow_core::time::ms_to_json_seconds;
use oxbow_core::validate::{Checks, StrRule};
use oxbow_core::ApiError;
use serde::Deserialize;
use serde_json::json;

use super::FragmentNumber;
use crate::http::{full, Reply};
use crate::resource::media_key;
use crate::resource::{lookup, Need, StreamRef};
use crate::state::AppState;

static NEXT_TOKEN: StrRule = StrRule {
    min: 1,
    max: 4096,
    pattern: None,
};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TimestampRange {
    start_timestamp: Option<f64>,
    end_timestamp: Option<f64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FragmentSelector {
    fragment_selector_type: Option<String>,
    timestamp_range: Option<TimestampRange>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListFragmentsRequest {
    #[serde(flatten)]
    stream: StreamRef,
    fragment_selector: Option<FragmentSelector>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

/// What a page covers; the NextToken carries it so later pages need no selector.
struct Query {
    producer: bool,
    start_ms: i64,
    end_ms: i64,
    after_seq: u64,
}

impl Query {
    fn token(&self) -> String {
        hex::encode(format!(
            "{}:{}:{}:{}",
            if self.producer { "P" } else { "S" },
            self.start_ms,
            self.end_ms,
            self.after_seq
        ))
    }

    fn from_token(t: &str) -> Option<Self> {
        let text = String::from_utf8(hex::decode(t).ok()?).ok()?;
        let mut p = text.split(':');
        let producer = match p.next()? {
            "P" => true,
            "S" => false,
            _ => return None,
        };
        Some(Self {
            producer,
            start_ms: p.next()?.parse().ok()?,
            end_ms: p.next()?.parse().ok()?,
            after_seq: p.next()?.parse().ok()?,
        })
    }
}

fn ms(secs: Option<f64>) -> i64 {
    (secs.unwrap_or(0.0) * 1000.0).round() as i64
}

fn query_of(req: &ListFragmentsRequest) -> Result<Query, ApiError> {
    if let Some(t) = req.next_token.as_deref() {
        return Query::from_token(t)
            .ok_or_else(|| ApiError::invalid_argument("The NextToken is not valid."));
    }
    let sel = req.fragment_selector.as_ref();
    let kind = sel.and_then(|s| s.fragment_selector_type.as_deref());
    let range = sel.and_then(|s| s.timestamp_range.as_ref());
    let mut checks = Checks::new();
    checks.required("fragmentSelector", sel);
    if sel.is_some() {
        checks
            .required("fragmentSelector.fragmentSelectorType", kind)
            .one_of(
                "fragmentSelector.fragmentSelectorType",
                kind,
                &["PRODUCER_TIMESTAMP", "SERVER_TIMESTAMP"],
            )
            .required("fragmentSelector.timestampRange", range);
    }
    if let Some(r) = range {
        checks
            .required(
                "fragmentSelector.timestampRange.startTimestamp",
                r.start_timestamp.as_ref(),
            )
            .required(
                "fragmentSelector.timestampRange.endTimestamp",
                r.end_timestamp.as_ref(),
            );
        for (name, t) in [
            ("startTimestamp", r.start_timestamp),
            ("endTimestamp", r.end_timestamp),
        ] {
            if t.is_some_and(|t| !super::is_time(t)) {
                checks.custom(format!("Value at 'fragmentSelector.timestampRange.{name}' failed to satisfy constraint: Member must be a time from the epoch (1970-01-01T00:00:00Z) to 9999-12-31T23:59:59Z"));
            }
        }
    }
    checks.finish()?;
    let Some(range) = range else {
        return Err(ApiError::invalid_argument("FragmentSelector is required."));
    };
    let q = Query {
        producer: kind == Some("PRODUCER_TIMESTAMP"),
        start_ms: ms(range.start_timestamp),
        end_ms: ms(range.end_timestamp),
        after_seq: 0,
    };
    if q.start_ms > q.end_ms {
        return Err(ApiError::invalid_argument(
            "StartTimestamp must not be after EndTimestamp.",
        ));
    }
    Ok(q)
}

pub async fn list_fragments(
    state: &Arc<AppState>,
    req: ListFragmentsRequest,
) -> Result<Reply, ApiError> {
    let mut checks = Checks::new();
    checks.range("maxResults", req.max_results, 1, 1000).string(
        "nextToken",
        req.next_token.as_deref(),
        &NEXT_TOKEN,
    );
    let target = req.stream.resolve(state, &mut checks)?;
    let mut q = query_of(&req)?;
    let stream: StreamRecord = lookup::get(state, &target, Need::Live).await?;
    let log = super::open_log_for_reading(state, &media_key(&stream), &stream.name).await?;
    let max = req.max_results.unwrap_or(100) as usize;
    // A stream without retention has no archive: what its live buffer holds is for GetMedia
    // only, so the archive APIs list nothing.
    let archived = if stream.retention_hours > 0 {
        log.fragments()
    } else {
        Vec::new()
    };
    let matching: Vec<_> = archived
        .into_iter()
        .filter(|m| m.seq > q.after_seq)
        .filter(|m| {
            let t = if q.producer {
                m.producer_ts_ms
            } else {
                m.server_ts_ms
            };
            (q.start_ms..=q.end_ms).contains(&t)
        })
        .take(max + 1)
        .collect();
    let list: Vec<_> = matching
        .iter()
        .take(max)
        .map(|m| {
            json!({
                "FragmentNumber": FragmentNumber::new(stream.creation_ms, m.seq).to_string(),
                "FragmentSizeInBytes": m.size,
                "ProducerTimestamp": ms_to_json_seconds(m.producer_ts_ms),
                "ServerTimestamp": ms_to_json_seconds(m.server_ts_ms),
                "FragmentLengthInMilliseconds": m.duration_ms,
            })
        })
        .collect();
    let mut out = json!({ "Fragments": list });
    if matching.len() > max {
        q.after_seq = matching[max - 1].seq;
        out["NextToken"] = q.token().into();
    }
    let mut r = Response::new(full(out.to_string()));
    *r.status_mut() = StatusCode::OK;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(r)
}
