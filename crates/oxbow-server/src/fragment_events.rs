//! What happens after a fragment lands, off the ingest path: fragments a producer tags
//! `AWS_KINESISVIDEO_NOTIFICATION` are announced to the stream's notification destination (a
//! webhook, signed), and fragments tagged `AWS_KINESISVIDEO_IMAGE_GENERATION` become images in
//! the stream's image destination. PutMedia only hands tags to a bounded queue (`watch` follows
//! the stream's live feed, it never waits on the session); a full queue, a failing webhook or
//! an image that cannot be written ends as a dead letter the admin can list (kept in
//! `<data-dir>/dead-letters.jsonl` across restarts), never silently.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use oxbow_catalog::{Catalog, StreamRecord};
use oxbow_store::{LiveEvent, StreamLog};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::sync::{mpsc, Semaphore};

/// Tag that asks for a notification.
pub const NOTIFICATION_TAG: &str = "AWS_KINESISVIDEO_NOTIFICATION";
/// Tag that asks for images.
pub const IMAGE_TAG: &str = "AWS_KINESISVIDEO_IMAGE_GENERATION";
/// Tag naming the images' key prefix.
pub const IMAGE_PREFIX_TAG: &str = "AWS_KINESISVIDEO_IMAGE_PREFIX";

/// Tagged fragments waiting for the worker at most.
const QUEUE: usize = 1024;
/// Deliveries in flight at once.
const IN_FLIGHT: usize = 16;
/// Dead letters kept (the oldest go first).
const DEAD_LETTERS: usize = 1000;
/// Delivery attempts, and the wait before each retry.
const RETRIES: [Duration; 3] = [
    Duration::from_millis(500),
    Duration::from_secs(2),
    Duration::from_secs(8),
];

/// A tagged fragment of a stream incarnation.
#[derive(Debug, Clone)]
pub struct Tagged {
    pub stream_name: String,
    pub creation_ms: i64,
    pub seq: u64,
    pub fragment_number: String,
    pub tags: Vec<(String, String)>,
}

/// Something that could not be delivered.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeadLetter {
    pub stream_arn: String,
    pub fragment_number: String,
    pub kind: String,
    pub destination: String,
    pub error: String,
    pub at_ms: i64,
}

/// The service: a bounded queue, a worker, the webhook key, the dead letters.
pub struct FragmentEvents {
    queue: mpsc::Sender<(Tagged, Arc<StreamLog>)>,
    dead: Arc<DeadLetters>,
    /// Stream incarnations followed now (one follower each, however many sessions).
    watched: Arc<Mutex<std::collections::HashSet<String>>>,
}

/// What the worker needs from the server.
pub struct Context {
    pub catalog: Arc<dyn Catalog>,
    pub account_id: String,
    /// HMAC-SHA256 key of the `X-Oxbow-Signature` header.
    pub webhook_key: Vec<u8>,
    /// Where `s3://bucket/prefix` destinations are written without an S3 server:
    /// `<root>/<bucket>/<prefix>/`.
    pub image_root: PathBuf,
    /// The S3-compatible server images go to, when one is configured.
    pub s3: Option<aws_sdk_s3::Client>,
    /// The image generation thread (see [`decoder_thread`]).
    pub decoder: std::sync::mpsc::SyncSender<DecodeJob>,
    /// TLS for https:// webhooks.
    pub tls: tokio_rustls::TlsConnector,
}

/// An S3 client for an S3-compatible server (path-style requests, its own key).
pub fn s3_client(target: &crate::config::S3Target) -> aws_sdk_s3::Client {
    let credentials = aws_sdk_s3::config::Credentials::new(
        &target.access_key_id,
        &target.secret_access_key,
        None,
        None,
        "oxbow-serve",
    );
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new(target.region.clone()))
        .endpoint_url(&target.endpoint)
        .force_path_style(true)
        .credentials_provider(credentials)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

impl FragmentEvents {
    /// Starts the worker.
    pub fn start(context: Context) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        let dead = Arc::new(DeadLetters::open(
            context.image_root.with_file_name("dead-letters.jsonl"),
        ));
        tokio::spawn(work(rx, Arc::new(context), Arc::clone(&dead)));
        Self {
            queue,
            dead,
            watched: Arc::default(),
        }
    }

    /// Follows a stream incarnation's live feed (once, however many sessions write to it)
    /// and hands tagged fragments to the worker; the follower holds the log weakly and ends
    /// when it closes. Called when a PutMedia session starts, never in its way.
    pub fn watch(
        &self,
        stream: &StreamRecord,
        log: &Arc<StreamLog>,
        number: impl Fn(u64) -> String + Send + 'static,
    ) {
        let key = format!("{}-{}", stream.name, stream.creation_ms);
        if !self
            .watched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.clone())
        {
            return;
        }
        let (queue, dead, watched) = (
            self.queue.clone(),
            Arc::clone(&self.dead),
            Arc::clone(&self.watched),
        );
        let (name, creation_ms, arn) =
            (stream.name.clone(), stream.creation_ms, stream.arn.clone());
        let (mut events, _) = log.subscribe();
        let weak = Arc::downgrade(log);
        tokio::spawn(async move {
            loop {
                let event = match events.recv().await {
                    Ok(e) => e,
                    Err(oxbow_store::Missed::Lagged(n)) => {
                        tracing::warn!(stream = %arn, missed = n, "fragment events: fell behind the live feed");
                        continue;
                    }
                    Err(oxbow_store::Missed::Closed) => break,
                };
                let LiveEvent::End {
                    seq,
                    ok: true,
                    tags,
                } = event
                else {
                    continue;
                };
                if !tags
                    .iter()
                    .any(|(k, _)| k == NOTIFICATION_TAG || k == IMAGE_TAG)
                {
                    continue;
                }
                let Some(log) = weak.upgrade() else { break };
                let tagged = Tagged {
                    stream_name: name.clone(),
                    creation_ms,
                    seq,
                    fragment_number: number(seq),
                    tags,
                };
                if queue.try_send((tagged.clone(), log)).is_err() {
                    bury(
                        &dead,
                        DeadLetter {
                            stream_arn: arn.clone(),
                            fragment_number: tagged.fragment_number,
                            kind: "QUEUE".into(),
                            destination: String::new(),
                            error: "too many tagged fragments waiting".into(),
                            at_ms: oxbow_core::time::now_ms(),
                        },
                    );
                }
            }
            watched
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&key);
        });
    }

    /// The dead letters, oldest first.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.dead.snapshot()
    }
}

/// The last dead letters, kept in memory and appended to a file in the data directory so
/// they outlive a restart.
pub struct DeadLetters {
    list: Mutex<VecDeque<DeadLetter>>,
    /// The file, held while a letter is appended and listed, so both keep one order.
    path: Mutex<PathBuf>,
}

impl DeadLetters {
    /// The letters of earlier runs (the newest [`DEAD_LETTERS`] of the file) and where new
    /// ones go.
    fn open(path: PathBuf) -> Self {
        let mut list: VecDeque<DeadLetter> = std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        while list.len() > DEAD_LETTERS {
            list.pop_front();
        }
        Self {
            list: Mutex::new(list),
            path: Mutex::new(path),
        }
    }

    fn snapshot(&self) -> Vec<DeadLetter> {
        self.list
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

fn bury(dead: &Arc<DeadLetters>, letter: DeadLetter) {
    tracing::warn!(stream = %letter.stream_arn, fragment = %letter.fragment_number, kind = %letter.kind,
        destination = %letter.destination, error = %letter.error, "fragment event not delivered");
    let line = serde_json::to_string(&letter).unwrap_or_default() + "\n";
    // Appended off the async threads, and listed only once appended: a letter anyone was
    // shown is one a restart finds (a lost line costs the record, not the letter in memory).
    let dead = Arc::clone(dead);
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let path = dead.path.lock().unwrap_or_else(|e| e.into_inner());
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&*path)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = appended {
            tracing::warn!(path = %path.display(), error = %e, "cannot record a dead letter");
        }
        let mut list = dead.list.lock().unwrap_or_else(|e| e.into_inner());
        if list.len() == DEAD_LETTERS {
            list.pop_front();
        }
        list.push_back(letter);
    });
}

/// Image work for the decoding thread.
pub type DecodeJob = Box<dyn FnOnce() + Send>;

/// The one thread image generation decodes and encodes on, at the lowest scheduling priority
/// (nice 19): it takes one core at most, and only what ingest and its acknowledgements leave.
pub fn decoder_thread() -> std::sync::mpsc::SyncSender<DecodeJob> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<DecodeJob>(64);
    let spawned = std::thread::Builder::new()
        .name("oxbow-images".into())
        .spawn(move || {
            if let Err(e) = thread_priority::ThreadPriority::Min.set_for_current() {
                tracing::debug!(error = ?e, "image generation runs at normal priority");
            }
            while let Ok(job) = rx.recv() {
                job();
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the image generation thread");
    }
    tx
}

/// Runs `work` on the decoding thread and waits for its answer.
async fn on_decoder<T: Send + 'static>(
    decoder: &std::sync::mpsc::SyncSender<DecodeJob>,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: DecodeJob = Box::new(move || {
        let _ = tx.send(work());
    });
    let decoder = decoder.clone();
    // The queue is bounded: waiting for room happens off the async threads.
    tokio::task::spawn_blocking(move || decoder.send(job))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|_| "the image generation thread is gone".to_string())?;
    rx.await
        .map_err(|_| "the image generation thread dropped the work".to_string())
}

async fn work(
    mut rx: mpsc::Receiver<(Tagged, Arc<StreamLog>)>,
    ctx: Arc<Context>,
    dead: Arc<DeadLetters>,
) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some((tagged, log)) = rx.recv().await {
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
            break;
        };
        let (ctx, dead) = (Arc::clone(&ctx), Arc::clone(&dead));
        tokio::spawn(async move {
            let _permit = permit;
            handle(&ctx, &dead, tagged, log).await;
        });
    }
}

/// A configuration that is ENABLED, from the stream's record.
fn enabled(config: &Option<Value>) -> Option<&Value> {
    config.as_ref().filter(|c| c["Status"] == "ENABLED")
}

async fn handle(ctx: &Context, dead: &Arc<DeadLetters>, t: Tagged, log: Arc<StreamLog>) {
    // The configuration as it is now (it may have changed since the session began).
    let Ok(Some(stream)) = ctx.catalog.streams().get(&t.stream_name).await else {
        return;
    };
    if stream.creation_ms != t.creation_ms {
        return;
    }
    let letter = |kind: &str, destination: &str, error: String| DeadLetter {
        stream_arn: stream.arn.clone(),
        fragment_number: t.fragment_number.clone(),
        kind: kind.to_string(),
        destination: destination.to_string(),
        error,
        at_ms: oxbow_core::time::now_ms(),
    };
    let custom: serde_json::Map<String, Value> = t
        .tags
        .iter()
        .filter(|(k, _)| !k.starts_with("AWS_KINESISVIDEO_"))
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    if t.tags.iter().any(|(k, _)| k == IMAGE_TAG) {
        if let Some(config) = enabled(&stream.image_generation) {
            if let Err(e) = images(ctx, &stream, config, &t, &log, &custom).await {
                let uri = config["DestinationConfig"]["Uri"].as_str().unwrap_or("");
                bury(dead, letter("IMAGE_GENERATION", uri, e));
            }
        }
    }
    if t.tags.iter().any(|(k, _)| k == NOTIFICATION_TAG) {
        if let Some(config) = enabled(&stream.notification) {
            let uri = config["DestinationConfig"]["Uri"]
                .as_str()
                .unwrap_or("")
                .to_string();
            // KVS notifies once the fragment is PERSISTED (streams without retention: when
            // it is received, as nothing more will happen to it).
            let meta = persisted(&log, t.seq, stream.retention_hours > 0).await;
            let Some(meta) = meta else {
                bury(
                    dead,
                    letter(
                        "NOTIFICATION",
                        &uri,
                        "the fragment never became durable".into(),
                    ),
                );
                return;
            };
            let message = json!({
                "StreamArn": stream.arn,
                "FragmentNumber": t.fragment_number,
                "FragmentStartProducerTimestamp": meta.producer_ts_ms,
                "FragmentStartServerTimestamp": meta.server_ts_ms,
                "NotificationType": "PERSISTED",
                "NotificationPayload": custom,
            });
            if let Err(e) = notify(ctx, &uri, &stream.arn, &message).await {
                bury(dead, letter("NOTIFICATION", &uri, e));
            }
        }
    }
}

/// Waits (up to 30 s) until fragment `seq` is durable, when `durable` is asked for.
async fn persisted(log: &StreamLog, seq: u64, durable: bool) -> Option<oxbow_store::FragmentMeta> {
    for _ in 0..300 {
        if let Some(m) = log.fragments().into_iter().find(|m| m.seq == seq) {
            if m.persisted || !durable {
                return Some(m);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// Posts an SNS-shaped envelope around `message` to an http:// webhook, signed with
/// `X-Oxbow-Signature: sha256=<hex HMAC-SHA256 of the body>`, retrying on failure.
async fn notify(ctx: &Context, uri: &str, topic: &str, message: &Value) -> Result<(), String> {
    let body = json!({
        "Type": "Notification",
        "MessageId": oxbow_core::ids::request_id(),
        "TopicArn": topic,
        "Subject": "Kinesis Video Streams Notification",
        "Message": message.to_string(),
        "Timestamp": oxbow_package::hls::iso8601_ms(oxbow_core::time::now_ms()),
    })
    .to_string();
    let mut mac = Hmac::<Sha256>::new_from_slice(&ctx.webhook_key).map_err(|e| e.to_string())?;
    mac.update(body.as_bytes());
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let mut last = String::new();
    for (attempt, wait) in std::iter::once(Duration::ZERO).chain(RETRIES).enumerate() {
        tokio::time::sleep(wait).await;
        match post(&ctx.tls, uri, &body, &signature).await {
            Ok(()) => return Ok(()),
            Err(e) => {
                tracing::debug!(%uri, attempt, error = %e, "notification not delivered yet");
                last = e;
            }
        }
    }
    Err(format!(
        "{} attempts failed; the last: {last}",
        RETRIES.len() + 1
    ))
}

/// One POST to an `http://` or `https://` `host[:port]/path` URL; Ok on a 2xx answer.
async fn post(
    tls: &tokio_rustls::TlsConnector,
    uri: &str,
    body: &str,
    signature: &str,
) -> Result<(), String> {
    let (secure, rest) = match (uri.strip_prefix("https://"), uri.strip_prefix("http://")) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (false, rest),
        _ => return Err(format!("{uri}: webhooks are http:// or https:// URLs")),
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let (host, addr) = match authority.rsplit_once(':') {
        Some((host, _)) => (host.to_string(), authority.to_string()),
        None => (
            authority.to_string(),
            format!("{authority}:{}", if secure { 443 } else { 80 }),
        ),
    };
    let attempt = async {
        let tcp = tokio::net::TcpStream::connect(&addr)
            .await
            .map_err(|e| e.to_string())?;
        let req = http::Request::post(path)
            .header("host", authority)
            .header("content-type", "application/json")
            .header("x-amz-sns-message-type", "Notification")
            .header("x-oxbow-signature", signature)
            .body(http_body_util::Full::new(Bytes::from(body.to_string())))
            .map_err(|e| e.to_string())?;
        if secure {
            let name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|e| format!("{host}: {e}"))?;
            let stream = tls.connect(name, tcp).await.map_err(|e| e.to_string())?;
            exchange(stream, req).await
        } else {
            exchange(tcp, req).await
        }
    };
    tokio::time::timeout(Duration::from_secs(10), attempt)
        .await
        .map_err(|_| "the webhook did not answer within 10 s".to_string())?
}

/// Sends one request on a fresh connection; Ok on a 2xx answer.
async fn exchange<S>(io: S, req: http::Request<http_body_util::Full<Bytes>>) -> Result<(), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use http_body_util::BodyExt;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let _ = resp.into_body().collect().await;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("the webhook answered {status}"))
    }
}

/// Images of a tagged fragment written under the destination: `<root>/<bucket>/<prefix>/`
/// `[ImagePrefix_]AccountID_StreamName_ImageTimecode_RandomID.jpg|png`, with the object
/// metadata KVS sets beside each as `<key>.metadata.json`.
async fn images(
    ctx: &Context,
    stream: &StreamRecord,
    config: &Value,
    t: &Tagged,
    log: &Arc<StreamLog>,
    custom: &serde_json::Map<String, Value>,
) -> Result<(), String> {
    let uri = config["DestinationConfig"]["Uri"].as_str().unwrap_or("");
    let dir = destination_dir(&ctx.image_root, uri)?;
    let fragment = log.read(t.seq).await.map_err(|e| e.to_string())?;
    let header = log
        .header(fragment.header_id)
        .ok_or("the fragment's stream header is gone")?;
    let format = match config["Format"].as_str() {
        Some("PNG") => oxbow_images::Format::Png,
        _ => oxbow_images::Format::Jpeg(
            config["FormatConfig"]["JPEGQuality"]
                .as_str()
                .and_then(|q| q.parse().ok())
                .unwrap_or(80),
        ),
    };
    let size = match (
        config["WidthPixels"].as_u64(),
        config["HeightPixels"].as_u64(),
    ) {
        (Some(w), Some(h)) => oxbow_images::Size::Exact(w as u32, h as u32),
        (None, Some(h)) => oxbow_images::Size::Height(h as u32),
        // Width alone keeps the aspect ratio as well: scale to it through the height.
        (Some(w), None) => oxbow_images::Size::Width(w as u32),
        (None, None) => oxbow_images::Size::Original,
    };
    let interval = config["SamplingInterval"].as_i64().unwrap_or(3000).max(200);
    let extension = if format == oxbow_images::Format::Png {
        "png"
    } else {
        "jpg"
    };
    let prefix = t
        .tags
        .iter()
        .find(|(k, _)| k == IMAGE_PREFIX_TAG)
        .map(|(_, v)| format!("{v}_"))
        .unwrap_or_default();
    let producer = config["ImageSelectorType"] == "PRODUCER_TIMESTAMP";
    let (account, name) = (ctx.account_id.clone(), stream.name.clone());
    let (number, custom) = (t.fragment_number.clone(), custom.clone());
    // Decoded and encoded on the low-priority image thread, one fragment at a time.
    let made = on_decoder(&ctx.decoder, move || -> Result<Vec<Made>, String> {
        let demuxed = oxbow_package::demux::demux(
            &header.ebml,
            &header.segment_head,
            &fragment.cluster,
            fragment.producer_ts_ms,
            fragment.duration_ms,
        )
        .map_err(|e| e.to_string())?;
        let track = oxbow_package::Track::from_mkv(demuxed.tracks.first().ok_or("no tracks")?)
            .map_err(|e| e.to_string())?;
        let samples = oxbow_package::demux::samples(&demuxed, &track);
        // One image every interval from the fragment's start, within it.
        let offsets: Vec<i64> = (0..)
            .map(|k| k * interval)
            .take_while(|o| *o < fragment.duration_ms.max(1))
            .collect();
        let ticks: Vec<u64> = offsets
            .iter()
            .map(|o| {
                ((fragment.producer_ts_ms + o).max(0) as u64) * u64::from(track.timescale) / 1000
            })
            .collect();
        let frames =
            oxbow_images::frames_at(&track, &samples, &ticks).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for (offset, frame) in offsets.iter().zip(frames) {
            let Some(frame) = frame else { continue };
            let bytes = oxbow_images::encode(&frame, size, format).map_err(|e| e.to_string())?;
            let base = if producer {
                fragment.producer_ts_ms
            } else {
                fragment.server_ts_ms
            };
            let key = format!(
                "{prefix}{account}_{name}_{}_{}.{extension}",
                base + offset,
                oxbow_core::ids::request_id()
            );
            // The object metadata KVS sets (`x-amz-meta-<name>`), custom tags included.
            let mut metadata = vec![
                (
                    "aws_kinesisvideo_fragment_number".to_string(),
                    number.clone(),
                ),
                (
                    "aws_kinesisvideo_producer_timestamp".to_string(),
                    (fragment.producer_ts_ms + offset).to_string(),
                ),
                (
                    "aws_kinesisvideo_server_timestamp".to_string(),
                    (fragment.server_ts_ms + offset).to_string(),
                ),
            ];
            for (k, v) in &custom {
                metadata.push((k.clone(), v.as_str().unwrap_or_default().to_string()));
            }
            out.push(Made {
                key,
                bytes,
                metadata,
            });
        }
        Ok(out)
    })
    .await??;
    match &ctx.s3 {
        Some(s3) => put_objects(s3, uri, made).await,
        None => write_files(&dir, made),
    }
}

/// One image to deliver: its key, bytes and object metadata.
struct Made {
    key: String,
    bytes: Vec<u8>,
    metadata: Vec<(String, String)>,
}

/// The images as objects of the destination bucket, under its prefix, each retried.
async fn put_objects(s3: &aws_sdk_s3::Client, uri: &str, images: Vec<Made>) -> Result<(), String> {
    let rest = uri
        .strip_prefix("s3://")
        .ok_or("not an s3:// destination")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let prefix = prefix.trim_matches('/');
    for image in images {
        let key = if prefix.is_empty() {
            image.key
        } else {
            format!("{prefix}/{}", image.key)
        };
        let content_type = if key.ends_with(".png") {
            "image/png"
        } else {
            "image/jpeg"
        };
        let mut last = None;
        for wait in std::iter::once(Duration::ZERO).chain(RETRIES) {
            tokio::time::sleep(wait).await;
            let mut put = s3
                .put_object()
                .bucket(bucket)
                .key(&key)
                .content_type(content_type)
                .body(aws_sdk_s3::primitives::ByteStream::from(
                    image.bytes.clone(),
                ));
            for (k, v) in &image.metadata {
                put = put.metadata(k, v);
            }
            match put.send().await {
                Ok(_) => {
                    last = None;
                    break;
                }
                Err(e) => last = Some(aws_sdk_s3::error::DisplayErrorContext(e).to_string()),
            }
        }
        if let Some(e) = last {
            return Err(format!("s3://{bucket}/{key}: {e}"));
        }
    }
    Ok(())
}

/// The images as files under `dir`, each with its metadata beside it as
/// `<key>.metadata.json` (`x-amz-meta-<name>` keys).
fn write_files(dir: &std::path::Path, images: Vec<Made>) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for image in images {
        let metadata: serde_json::Map<String, Value> = image
            .metadata
            .into_iter()
            .map(|(k, v)| (format!("x-amz-meta-{k}"), Value::String(v)))
            .collect();
        let path = dir.join(&image.key);
        let tmp = dir.join(format!(".{}.tmp", image.key));
        std::fs::write(&tmp, &image.bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::write(
            dir.join(format!("{}.metadata.json", image.key)),
            Value::Object(metadata).to_string(),
        )
        .map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// `s3://bucket[/prefix]` → `<root>/bucket[/prefix]`; refuses anything that would leave
/// the root.
fn destination_dir(root: &std::path::Path, uri: &str) -> Result<PathBuf, String> {
    let rest = uri
        .strip_prefix("s3://")
        .ok_or_else(|| format!("{uri}: image destinations are s3://bucket/prefix"))?;
    let mut dir = root.to_path_buf();
    for part in rest.split('/').filter(|p| !p.is_empty()) {
        if part == "." || part == ".." {
            return Err(format!("{uri}: not a bucket and prefix"));
        }
        dir.push(part);
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_stay_under_the_root() {
        let root = std::path::Path::new("/data/images");
        assert_eq!(
            destination_dir(root, "s3://cams/front/door").unwrap(),
            root.join("cams/front/door")
        );
        assert_eq!(
            destination_dir(root, "s3://cams").unwrap(),
            root.join("cams")
        );
        assert!(destination_dir(root, "s3://cams/../../etc").is_err());
        assert!(destination_dir(root, "https://x/y").is_err());
    }
}
