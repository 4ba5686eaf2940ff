//! GetImages: still images of a stream between two times, one every SamplingInterval (or one
//! per fragment when it is not given), each the frame shown at its time, decoded from the
//! fragment's first key frame, scaled and encoded as JPEG or PNG (`oxbow-images`).

use std::collections::HashMap;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use http::StatusCode;
use oxbow_core::time::ms_to_json_seconds;
use oxbow_core::validate::Checks;
use oxbow_core::ApiError;
use oxbow_images::{Format, Size};
use oxbow_package::demux;
use oxbow_store::FragmentMeta;
use serde::Deserialize;
use serde_json::json;

use super::segments;
use crate::api::Call;
use crate::http::Reply;
use crate::resource::StreamRef;
use crate::state::AppState;

/// The longest range (KVS: 300 s).
const MAX_RANGE_MS: i64 = 300_000;
/// Images per page when MaxResults is not given, and at most (KVS: 25 and 100).
const DEFAULT_PAGE: i64 = 25;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImagesRequest {
    #[serde(flatten)]
    stream: StreamRef,
    image_selector_type: Option<String>,
    start_timestamp: Option<f64>,
    end_timestamp: Option<f64>,
    sampling_interval: Option<i64>,
    format: Option<String>,
    format_config: Option<HashMap<String, String>>,
    width_pixels: Option<i64>,
    height_pixels: Option<i64>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

/// One image's outcome.
enum Outcome {
    Image(Vec<u8>),
    NoMedia,
    MediaError,
}

pub async fn get_images(state: &Arc<AppState>, call: &Call) -> Result<Reply, ApiError> {
    let req: ImagesRequest = crate::input::parse(call.bytes())?;
    let mut checks = Checks::new();
    checks
        .required("imageSelectorType", req.image_selector_type.as_deref())
        .one_of(
            "imageSelectorType",
            req.image_selector_type.as_deref(),
            &["PRODUCER_TIMESTAMP", "SERVER_TIMESTAMP"],
        )
        .required("startTimestamp", req.start_timestamp.as_ref())
        .required("endTimestamp", req.end_timestamp.as_ref())
        .required("format", req.format.as_deref())
        .one_of("format", req.format.as_deref(), &["JPEG", "PNG"])
        .range("samplingInterval", req.sampling_interval, 200, i64::MAX)
        .range("widthPixels", req.width_pixels, 1, 3840)
        .range("heightPixels", req.height_pixels, 1, 2160)
        .range("maxResults", req.max_results, 1, 100);
    let target = req.stream.resolve(state, &mut checks)?;
    let (Some(start), Some(end)) = (req.start_timestamp, req.end_timestamp) else {
        return Err(ApiError::invalid_argument(
            "StartTimestamp and EndTimestamp are required.",
        ));
    };
    let (start_ms, end_ms) = super::range_ms(start, end)?;
    if end_ms < start_ms {
        return Err(ApiError::invalid_argument(
            "EndTimestamp must not be earlier than StartTimestamp.",
        ));
    }
    if end_ms - start_ms > MAX_RANGE_MS {
        return Err(ApiError::invalid_argument(
            "The time range between StartTimestamp and EndTimestamp must not exceed 300 seconds.",
        ));
    }
    let quality = match &req.format_config {
        None => 80,
        Some(config) => {
            let bad = || {
                ApiError::invalid_argument(
                    "FormatConfig takes one key, JPEGQuality, with a value from 1 to 100.",
                )
            };
            if config.len() > 1 || config.keys().any(|k| k != "JPEGQuality") {
                return Err(bad());
            }
            match config.get("JPEGQuality") {
                Some(q) => q
                    .parse::<u8>()
                    .ok()
                    .filter(|q| (1..=100).contains(q))
                    .ok_or_else(bad)?,
                None => 80,
            }
        }
    };
    let format = match req.format.as_deref() {
        Some("PNG") => Format::Png,
        _ => Format::Jpeg(quality),
    };
    let size = match (req.width_pixels, req.height_pixels) {
        (Some(w), Some(h)) => Size::Exact(w as u32, h as u32),
        (None, Some(h)) => Size::Height(h as u32),
        (Some(_), None) => {
            return Err(ApiError::invalid_argument(
                "WidthPixels needs HeightPixels; HeightPixels alone keeps the aspect ratio.",
            ))
        }
        (None, None) => Size::Original,
    };
    let first = match req.next_token.as_deref() {
        None => 0,
        Some(t) => B64
            .decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse::<usize>().ok())
            .ok_or_else(|| ApiError::invalid_argument("The NextToken is not valid."))?,
    };
    let page = req.max_results.unwrap_or(DEFAULT_PAGE) as usize;
    let (_, log) = super::archive(state, &target, "GetImages").await?;
    let producer = req.image_selector_type.as_deref() == Some("PRODUCER_TIMESTAMP");
    let time = |m: &FragmentMeta| {
        if producer {
            m.producer_ts_ms
        } else {
            m.server_ts_ms
        }
    };
    let fragments = log.fragments();
    // Every sample time of the range: each interval, or each fragment start in it.
    let times: Vec<i64> = match req.sampling_interval {
        Some(interval) => (0..)
            .map(|k| start_ms + k * interval)
            .take_while(|t| *t <= end_ms)
            .collect(),
        None => fragments
            .iter()
            .map(time)
            .filter(|t| (start_ms..=end_ms).contains(t))
            .collect(),
    };
    let page_times: Vec<i64> = times.iter().skip(first).take(page).copied().collect();
    // The fragment each time falls in (the newest starting at or before it, if it lasts that
    // long).
    let fragment_of = |t: i64| {
        fragments
            .iter()
            .filter(|m| time(m) <= t && t < time(m) + m.duration_ms.max(1))
            .max_by_key(|m| (time(m), m.seq))
            .copied()
    };
    let _permit = state
        .heavy_permits
        .acquire()
        .await
        .map_err(|e| ApiError::server("wait to decode images", e))?;
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(page_times.len());
    let mut i = 0;
    while i < page_times.len() {
        let Some(meta) = fragment_of(page_times[i]) else {
            outcomes.push(Outcome::NoMedia);
            i += 1;
            continue;
        };
        // Every time of this page in the same fragment: one decode pass.
        let group: Vec<i64> = page_times[i..]
            .iter()
            .take_while(|t| fragment_of(**t).is_some_and(|m| m.seq == meta.seq))
            .copied()
            .collect();
        i += group.len();
        outcomes.extend(fragment_images(&log, meta, time(&meta), &group, size, format).await);
    }
    let images: Vec<_> = page_times
        .iter()
        .zip(outcomes)
        .map(|(t, o)| match o {
            Outcome::Image(bytes) => {
                json!({"TimeStamp": ms_to_json_seconds(*t), "ImageContent": B64.encode(bytes)})
            }
            Outcome::NoMedia => json!({"TimeStamp": ms_to_json_seconds(*t), "Error": "NO_MEDIA"}),
            Outcome::MediaError => {
                json!({"TimeStamp": ms_to_json_seconds(*t), "Error": "MEDIA_ERROR"})
            }
        })
        .collect();
    let mut body = json!({ "Images": images });
    let next = first + page_times.len();
    if next < times.len() {
        body["NextToken"] = B64.encode(next.to_string()).into();
    }
    Ok(crate::http::json(
        StatusCode::OK,
        Bytes::from(body.to_string()),
    ))
}

/// The images of one fragment at `times` (on the selector's clock; the fragment starts at
/// `fragment_time` on it): decoded off the async threads.
async fn fragment_images(
    log: &Arc<oxbow_store::StreamLog>,
    meta: FragmentMeta,
    fragment_time: i64,
    times: &[i64],
    size: Size,
    format: Format,
) -> Vec<Outcome> {
    let errors = || times.iter().map(|_| Outcome::MediaError).collect();
    let Ok(fragment) = segments::read_demuxed(log, meta.seq, true).await else {
        return errors();
    };
    let times = times.to_vec();
    let decoded = tokio::task::spawn_blocking(move || {
        // Track 1 must be video (KVS: "media should contain a video track in track 1").
        let track = fragment.tracks.first().filter(|t| t.is_video())?;
        let samples = demux::samples(&fragment.demuxed, track);
        let ticks: Vec<u64> = times
            .iter()
            .map(|t| {
                let media_ms = fragment.producer_ts_ms + (t - fragment_time);
                (media_ms.max(0) as u64) * u64::from(track.timescale) / 1000
            })
            .collect();
        let frames = oxbow_images::frames_at(track, &samples, &ticks).ok()?;
        Some(
            frames
                .into_iter()
                .map(|f| match f {
                    Some(frame) => match oxbow_images::encode(&frame, size, format) {
                        Ok(bytes) => Outcome::Image(bytes),
                        Err(_) => Outcome::MediaError,
                    },
                    None => Outcome::NoMedia,
                })
                .collect::<Vec<_>>(),
        )
    })
    .await;
    match decoded {
        Ok(Some(outcomes)) => outcomes,
        _ => errors(),
    }
}
