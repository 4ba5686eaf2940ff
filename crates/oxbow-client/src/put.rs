//! The PutMedia producer. It reads MKV (a file, or a live pipe such as `ffmpeg ... -f
//! matroska -`), cuts it into fragments at Clusters, and streams them on one long PutMedia
//! request, ending each with `AWS_KINESISVIDEO_END_OF_FRAGMENT` as the KVS producer SDK does.
//! Fragments stay buffered until acknowledged (PERSISTED, or RECEIVED for streams without
//! retention); if the connection drops, it reconnects and resends them, so no buffered frame
//! is lost.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::{Method, Request};
use http_body_util::channel::{Channel, Sender};
use http_body_util::BodyExt;
use oxbow_mkv::{ids, write, Event, MkvParser};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

use crate::http::{api_error, Client, ClientError};

/// An acknowledgement event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckEvent {
    Buffering,
    Received,
    Persisted,
    Error,
    Idle,
}

/// One acknowledgement, as the service sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub event: AckEvent,
    pub fragment_timecode: Option<u64>,
    pub fragment_number: Option<String>,
    pub error_id: Option<u64>,
    pub error_code: Option<String>,
}

impl Ack {
    /// Parses one line of the ack stream.
    pub fn parse(line: &str) -> Option<Ack> {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        let event = match v["EventType"].as_str()? {
            "BUFFERING" => AckEvent::Buffering,
            "RECEIVED" => AckEvent::Received,
            "PERSISTED" => AckEvent::Persisted,
            "ERROR" => AckEvent::Error,
            "IDLE" => AckEvent::Idle,
            _ => return None,
        };
        Some(Ack {
            event,
            fragment_timecode: v["FragmentTimecode"].as_u64(),
            fragment_number: v["FragmentNumber"].as_str().map(str::to_string),
            error_id: v["ErrorId"].as_u64(),
            error_code: v["ErrorCode"].as_str().map(str::to_string),
        })
    }
}

#[derive(Debug, Clone)]
pub struct PutOptions {
    pub stream: String,
    /// Send frames at the pace of their timestamps (for files; live pipes pace themselves).
    pub realtime: bool,
    /// The stream keeps no data: RECEIVED is the final ack, not PERSISTED.
    pub no_retention: bool,
    /// Producer clock at the first frame, for streams whose timecodes start near zero.
    pub producer_start_ms: i64,
    /// Reconnection attempts in a row before giving up.
    pub max_retries: u32,
    /// How long to wait for the last acks after the input ends.
    pub final_ack_timeout: Duration,
}

impl PutOptions {
    pub fn new(stream: &str) -> Self {
        Self {
            stream: stream.to_string(),
            realtime: false,
            no_retention: false,
            producer_start_ms: now_ms(),
            max_retries: 10,
            final_ack_timeout: Duration::from_secs(20),
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[derive(Debug, Default, Clone)]
pub struct PutSummary {
    pub fragments: u64,
    pub bytes: u64,
    pub received: u64,
    pub persisted: u64,
    pub errors: u64,
    pub reconnects: u64,
    /// Fragments that were never acknowledged.
    pub unacknowledged: u64,
}

/// A fragment ready to send: its Cluster timecode and the bytes of an unknown-size Cluster
/// followed by the end-of-fragment tag.
struct Fragment {
    timecode: u64,
    /// (offset in ms from the stream's first frame, bytes) in sending order.
    pieces: Vec<(i64, Bytes)>,
}

/// The stream header as the producer sends it at the start of every connection.
struct StreamStart {
    bytes: Bytes,
    absolute: bool,
}

enum Input {
    Start(StreamStart),
    Fragment(Arc<Fragment>),
}

pub struct Producer {
    /// The data endpoint in use; replaced when [`Producer::following`] finds the stream moved.
    client: std::sync::Mutex<Client>,
    options: PutOptions,
    /// Where to ask for the PUT_MEDIA endpoint again after a failed connection (the control
    /// plane), as the producer SDK does: in a cluster the stream may have moved to another
    /// node.
    control: Option<Client>,
}

impl Producer {
    /// `client` must point at the stream's PUT_MEDIA data endpoint.
    pub fn new(client: Client, options: PutOptions) -> Self {
        Self {
            client: std::sync::Mutex::new(client),
            options,
            control: None,
        }
    }

    /// A producer that asks `control` for the PUT_MEDIA endpoint again before each
    /// reconnection.
    pub fn following(control: Client, client: Client, options: PutOptions) -> Self {
        Self {
            client: std::sync::Mutex::new(client),
            options,
            control: Some(control),
        }
    }

    fn lock_client(&self) -> std::sync::MutexGuard<'_, Client> {
        self.client.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The data endpoint in use now.
    fn client(&self) -> Client {
        self.lock_client().clone()
    }

    /// Streams `source` to the end; `on_ack` sees every acknowledgement.
    pub async fn run<R>(
        &self,
        source: R,
        mut on_ack: impl FnMut(&Ack) + Send,
    ) -> Result<PutSummary, ClientError>
    where
        R: AsyncRead + Unpin + Send + 'static,
    {
        let (input_tx, mut input_rx) = mpsc::channel::<Result<Input, ClientError>>(16);
        tokio::spawn(read_fragments(source, input_tx));
        let start = match input_rx.recv().await {
            Some(Ok(Input::Start(s))) => s,
            Some(Err(e)) => return Err(e),
            _ => return Err(ClientError::Input("the input has no MKV header".into())),
        };
        let mut summary = PutSummary::default();
        let mut pending: VecDeque<Arc<Fragment>> = VecDeque::new();
        let mut input_done = false;
        let mut failures = 0;
        let pacer = Arc::new(tokio::sync::Mutex::new(Pacer::new(self.options.realtime)));
        loop {
            match self
                .connection(
                    &start,
                    &mut input_rx,
                    &mut pending,
                    &mut input_done,
                    &mut summary,
                    &pacer,
                    &mut on_ack,
                )
                .await
            {
                Ok(()) => break,
                Err(e) => {
                    failures += 1;
                    if failures > self.options.max_retries {
                        return Err(e);
                    }
                    summary.reconnects += 1;
                    tracing::warn!(error = %e, pending = pending.len(), "PutMedia connection lost; reconnecting");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(failures.min(10))))
                        .await;
                    if let Some(control) = &self.control {
                        match control
                            .data_endpoint(&self.options.stream, "PUT_MEDIA")
                            .await
                        {
                            Ok(moved) => *self.lock_client() = moved,
                            Err(e) => {
                                tracing::warn!(error = %e, "GetDataEndpoint failed; retrying the last endpoint")
                            }
                        }
                    }
                }
            }
        }
        summary.unacknowledged = pending.len() as u64;
        Ok(summary)
    }

    fn request(
        &self,
        start: &StreamStart,
        body: Channel<Bytes>,
    ) -> Result<Request<Channel<Bytes>>, ClientError> {
        let ms = self.options.producer_start_ms;
        let kind = if start.absolute {
            "ABSOLUTE"
        } else {
            "RELATIVE"
        };
        let mut headers = self.client().headers(&[
            ("x-amzn-stream-name", self.options.stream.clone()),
            ("x-amzn-fragment-timecode-type", kind.into()),
            (
                "x-amzn-producer-start-timestamp",
                format!("{}.{:03}", ms / 1000, ms % 1000),
            ),
            ("x-amzn-fragment-acknowledgment-required", "1".into()),
            ("content-type", "application/json".into()),
        ]);
        // Streaming body: signed as empty, as the KVS producer SDK does.
        self.client()
            .sign(&mut headers, "POST", "/putMedia", oxbow_auth::EMPTY_SHA256);
        let mut req = Request::new(body);
        *req.method_mut() = Method::POST;
        *req.uri_mut() = http::Uri::from_static("/putMedia");
        *req.headers_mut() = headers;
        Ok(req)
    }

    /// One PutMedia connection: resend what is pending, then stream new fragments; returns
    /// Ok once the input is finished and everything is acknowledged (or the wait timed out).
    /// A sender task owns the request body (and the pacing); this loop feeds it and handles
    /// acks as they arrive.
    #[allow(clippy::too_many_arguments)]
    async fn connection(
        &self,
        start: &StreamStart,
        input: &mut mpsc::Receiver<Result<Input, ClientError>>,
        pending: &mut VecDeque<Arc<Fragment>>,
        input_done: &mut bool,
        summary: &mut PutSummary,
        pacer: &Arc<tokio::sync::Mutex<Pacer>>,
        on_ack: &mut (impl FnMut(&Ack) + Send),
    ) -> Result<(), ClientError> {
        let (body_tx, body) = Channel::<Bytes>::new(32);
        let (to_send, queue) = mpsc::channel::<Arc<Fragment>>(4);
        let resend: Vec<Arc<Fragment>> = pending.iter().cloned().collect();
        let mut sender = tokio::spawn(send_body(
            body_tx,
            start.bytes.clone(),
            resend,
            queue,
            Arc::clone(pacer),
        ));
        let resp = self.client().send(self.request(start, body)?).await?;
        if !resp.status().is_success() {
            sender.abort();
            return Err(api_error(resp).await);
        }
        let (ack_tx, mut acks) = mpsc::unbounded_channel::<Ack>();
        let mut reader = tokio::spawn(read_acks(resp.into_body(), ack_tx));
        let mut to_send = Some(to_send);
        let mut sender_done = false;
        let deadline = tokio::time::sleep(Duration::from_secs(u64::MAX / 4));
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            if *input_done && to_send.is_some() {
                to_send = None; // the sender ends the body after what it has queued
                deadline
                    .as_mut()
                    .reset(tokio::time::Instant::now() + self.options.final_ack_timeout);
            }
            if *input_done && pending.is_empty() {
                reader.abort();
                return Ok(());
            }
            let room = to_send.as_ref().is_some_and(|t| t.capacity() > 0);
            tokio::select! {
                next = input.recv(), if !*input_done && room => match next {
                    None => *input_done = true,
                    Some(Err(e)) => return Err(e),
                    Some(Ok(Input::Start(_))) => {}
                    Some(Ok(Input::Fragment(f))) => {
                        pending.push_back(Arc::clone(&f));
                        summary.fragments += 1;
                        summary.bytes += f.pieces.iter().map(|(_, b)| b.len() as u64).sum::<u64>();
                        if let Some(t) = &to_send {
                            t.send(f).await.map_err(|_| ClientError::Connect("the sender stopped".into()))?;
                        }
                    }
                },
                ack = acks.recv() => match ack {
                    Some(ack) => {
                        on_ack(&ack);
                        self.account(&ack, pending, summary)?;
                    }
                    None => return Err(ClientError::Connect("the ack stream ended".into())),
                },
                sent = &mut sender, if !sender_done => {
                    sender_done = true;
                    if !matches!(sent, Ok(Ok(()))) {
                        return Err(ClientError::Connect("the request body could not be sent".into()));
                    }
                }
                _ = &mut reader => {
                    while let Ok(ack) = acks.try_recv() {
                        on_ack(&ack);
                        self.account(&ack, pending, summary)?;
                    }
                    if *input_done && pending.is_empty() {
                        return Ok(());
                    }
                    return Err(ClientError::Connect("the service closed the connection".into()));
                }
                _ = tick.tick() => {}
                _ = &mut deadline => {
                    tracing::warn!(pending = pending.len(), "gave up waiting for the last acks");
                    return Ok(());
                }
            }
        }
    }

    /// Drops acknowledged fragments from the resend buffer.
    fn account(
        &self,
        ack: &Ack,
        pending: &mut VecDeque<Arc<Fragment>>,
        summary: &mut PutSummary,
    ) -> Result<(), ClientError> {
        let done = match ack.event {
            AckEvent::Received => {
                summary.received += 1;
                self.options.no_retention
            }
            AckEvent::Persisted => {
                summary.persisted += 1;
                true
            }
            AckEvent::Error => {
                summary.errors += 1;
                // The service dropped this fragment for good (bad data); resending cannot help.
                let fatal = matches!(ack.error_id, Some(4000 | 4003 | 4008 | 5000 | 5001));
                if fatal {
                    return Err(ClientError::Connect(format!(
                        "error ack {:?}",
                        ack.error_code
                    )));
                }
                true
            }
            _ => false,
        };
        if done {
            if let Some(tc) = ack.fragment_timecode {
                if let Some(i) = pending.iter().position(|f| f.timecode == tc) {
                    pending.remove(i);
                }
            }
        }
        Ok(())
    }
}

impl Client {
    /// PutMedia with a body the caller writes piece by piece (`body` closes the request when
    /// it ends). Acks are handed out as they arrive; the receiver closes when the service ends
    /// the response. For tests, tools and load generators that need exact control over the
    /// MKV sent; producers use [`Producer`].
    pub async fn put_media_stream(
        &self,
        stream: &str,
        timecode_type: &str,
        mut body: mpsc::Receiver<Bytes>,
    ) -> Result<mpsc::UnboundedReceiver<Ack>, ClientError> {
        let mut headers = self.headers(&[
            ("x-amzn-stream-name", stream.to_string()),
            ("x-amzn-fragment-timecode-type", timecode_type.to_string()),
            ("x-amzn-producer-start-timestamp", "0.000".into()),
            ("x-amzn-fragment-acknowledgment-required", "1".into()),
        ]);
        self.sign(&mut headers, "POST", "/putMedia", oxbow_auth::EMPTY_SHA256);
        let (mut tx, channel) = Channel::<Bytes>::new(32);
        let mut req = Request::new(channel);
        *req.method_mut() = Method::POST;
        *req.uri_mut() = http::Uri::from_static("/putMedia");
        *req.headers_mut() = headers;
        tokio::spawn(async move {
            while let Some(b) = body.recv().await {
                if tx.send_data(b).await.is_err() {
                    return;
                }
            }
        });
        let resp = self.send(req).await?;
        if !resp.status().is_success() {
            return Err(api_error(resp).await);
        }
        let (ack_tx, ack_rx) = mpsc::unbounded_channel();
        tokio::spawn(read_acks(resp.into_body(), ack_tx));
        Ok(ack_rx)
    }

    /// [`Client::put_media_stream`], collecting every ack until the response ends.
    pub async fn put_media_raw(
        &self,
        stream: &str,
        timecode_type: &str,
        body: mpsc::Receiver<Bytes>,
    ) -> Result<Vec<Ack>, ClientError> {
        let mut rx = self.put_media_stream(stream, timecode_type, body).await?;
        let mut acks = Vec::new();
        while let Some(a) = rx.recv().await {
            acks.push(a);
        }
        Ok(acks)
    }
}

async fn send(tx: &mut Sender<Bytes>, b: Bytes) -> Result<(), ClientError> {
    tx.send_data(b)
        .await
        .map_err(|_| ClientError::Connect("the request body was closed".into()))
}

/// Writes the request body: the stream start, fragments to resend (at once), then new
/// fragments (paced); ends the body when the queue closes.
async fn send_body(
    mut tx: Sender<Bytes>,
    start: Bytes,
    resend: Vec<Arc<Fragment>>,
    mut queue: mpsc::Receiver<Arc<Fragment>>,
    pacer: Arc<tokio::sync::Mutex<Pacer>>,
) -> Result<(), ClientError> {
    send(&mut tx, start).await?;
    for f in resend {
        for (_, piece) in &f.pieces {
            send(&mut tx, piece.clone()).await?;
        }
    }
    while let Some(f) = queue.recv().await {
        tracing::debug!(timecode = f.timecode, "sending fragment");
        for (at_ms, piece) in &f.pieces {
            pacer.lock().await.wait(*at_ms).await;
            send(&mut tx, piece.clone()).await?;
        }
    }
    Ok(())
}

/// Real-time pacing: piece offsets are ms from the stream's first frame.
struct Pacer {
    enabled: bool,
    origin: Option<(Instant, i64)>,
}

impl Pacer {
    fn new(enabled: bool) -> Self {
        Self {
            enabled,
            origin: None,
        }
    }

    async fn wait(&mut self, at_ms: i64) {
        if !self.enabled {
            return;
        }
        let (t0, ms0) = *self.origin.get_or_insert((Instant::now(), at_ms));
        let due = t0 + Duration::from_millis((at_ms - ms0).max(0) as u64);
        tokio::time::sleep_until(due.into()).await;
    }
}

async fn read_acks(body: hyper::body::Incoming, tx: mpsc::UnboundedSender<Ack>) {
    let mut body = body;
    let mut buf = BytesMut::new();
    while let Some(Ok(frame)) = body.frame().await {
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buf.extend_from_slice(&data);
        while let Some(i) = buf.iter().position(|b| *b == b'\n') {
            let line = buf.split_to(i + 1);
            if let Some(ack) = Ack::parse(String::from_utf8_lossy(&line).trim()) {
                tracing::debug!(?ack.event, "ack read");
                if tx.send(ack).is_err() {
                    return;
                }
            }
        }
    }
}

/// Reads MKV from `source` and turns it into the stream start and fragments.
async fn read_fragments<R: AsyncRead + Unpin>(
    mut source: R,
    out: mpsc::Sender<Result<Input, ClientError>>,
) {
    let mut parser = MkvParser::new();
    let mut cutter = Cutter::default();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match source.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                let _ = out.send(Err(ClientError::Input(e.to_string()))).await;
                return;
            }
        };
        parser.push(&buf[..n]);
        loop {
            match parser.next_event() {
                Ok(Some(ev)) => {
                    if let Some(item) = cutter.event(ev) {
                        if out.send(Ok(item)).await.is_err() {
                            return;
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = out.send(Err(ClientError::Input(e.to_string()))).await;
                    return;
                }
            }
        }
    }
    match parser.finish() {
        Ok((events, _)) => {
            for ev in events {
                if let Some(item) = cutter.event(ev) {
                    let _ = out.send(Ok(item)).await;
                }
            }
        }
        Err(e) => {
            let _ = out.send(Err(ClientError::Input(e.to_string()))).await;
        }
    }
}

/// Turns parser events into what the producer sends.
#[derive(Default)]
struct Cutter {
    scale_ns: u64,
    /// The stream start, held back until the first Cluster shows which timecode type to use.
    header: Option<Bytes>,
    current: Option<Fragment>,
}

/// Cluster timecodes past this (2001-09-09 in ms) are epoch times: send them as ABSOLUTE.
const EPOCH_MS_THRESHOLD: i64 = 1_000_000_000_000;

impl Cutter {
    fn ms(&self, timecode: i64) -> i64 {
        (i128::from(timecode) * i128::from(self.scale_ns.max(1)) / 1_000_000) as i64
    }

    fn event(&mut self, ev: Event) -> Option<Input> {
        match ev {
            Event::Header(h) => {
                self.scale_ns = h.timecode_scale_ns;
                let mut bytes = BytesMut::new();
                bytes.extend_from_slice(&h.ebml);
                bytes.extend_from_slice(&write::unknown_size(ids::SEGMENT));
                bytes.extend_from_slice(&h.info);
                bytes.extend_from_slice(&h.tracks);
                self.header = Some(bytes.freeze());
                None
            }
            Event::ClusterStart { timecode } => {
                let at = self.ms(timecode as i64);
                let mut head = write::unknown_size(ids::CLUSTER);
                head.extend(write::uint(ids::TIMECODE, timecode));
                self.current = Some(Fragment {
                    timecode,
                    pieces: vec![(at, Bytes::from(head))],
                });
                self.header.take().map(|bytes| {
                    Input::Start(StreamStart {
                        bytes,
                        absolute: at > EPOCH_MS_THRESHOLD,
                    })
                })
            }
            Event::Frame(f) => {
                let scale = self.scale_ns;
                let cur = self.current.as_mut()?;
                let base = cur.pieces.first().map_or(0, |p| p.0);
                let at = base
                    + (i64::from(f.relative_timecode) * scale.max(1) as i64 / 1_000_000).max(0);
                cur.pieces.push((at, f.element));
                None
            }
            Event::ClusterEnd => {
                let mut f = self.current.take()?;
                let last = f.pieces.last().map_or(0, |p| p.0);
                f.pieces.push((
                    last,
                    Bytes::from(write::tags(&[("AWS_KINESISVIDEO_END_OF_FRAGMENT", "")])),
                ));
                Some(Input::Fragment(Arc::new(f)))
            }
            Event::Tags(_) => None,
        }
    }
}
