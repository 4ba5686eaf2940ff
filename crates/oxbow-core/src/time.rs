//! Wall-clock helpers. KVS speaks epoch milliseconds in ARNs and epoch seconds (with a fraction)
//! in JSON timestamps; keeping both conversions here avoids off-by-1000 mistakes elsewhere.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// An epoch-millisecond instant as the JSON number of epoch seconds the SDKs parse.
pub fn ms_to_json_seconds(ms: i64) -> serde_json::Value {
    if ms % 1000 == 0 {
        serde_json::Value::from(ms / 1000)
    } else {
        serde_json::Value::from(ms as f64 / 1000.0)
    }
}

/// The latest instant a timestamp may name: the end of year 9999, in epoch milliseconds.
pub const MAX_TIME_MS: i64 = 253_402_300_799_999;

/// Whether epoch seconds can be a time at all (not negative, not past year 9999).
pub fn is_time(secs: f64) -> bool {
    secs.is_finite() && (0.0..=MAX_TIME_MS as f64 / 1000.0).contains(&secs)
}
