//! `oxbow bench`: load generators that measure a running server, each with a baseline measured
//! in the same run so results can be compared across noisy machines as ratios.

mod control;
mod images;
mod ingest;
mod media;
mod playback;
mod policy;
mod signaling;
mod stall;

use clap::{Args, Subcommand};

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Signed DescribeStream over many keep-alive connections, against unauthenticated
    /// `GET /health` on the same server as the baseline.
    Control(control::ControlArgs),
    /// Real-time PutMedia producers and live GetMedia consumers: ingest rate against raw disk
    /// writes, PERSISTED ack latency, live latency, server CPU and memory per stream.
    Media(media::MediaArgs),
    /// Cost of judging a request against many attached policies, against one SigV4
    /// verification measured in the same run.
    Policy(policy::PolicyArgs),
    /// GetMedia readers that stop reading and PutMedia producers that stall mid-fragment:
    /// server memory while they are open and after they leave, against its memory before.
    Stall(stall::StallArgs),
    /// GetImages throughput: 100 JPEG images per call from a stored file.
    Images(images::ImagesArgs),
    /// One stored stream watched by many HLS players, against the same bytes from a static
    /// file server; a new player's time to first media; GetClip throughput.
    Playback(playback::PlaybackArgs),
    /// Many WebRTC cameras recorded at once by storage sessions: frames stored against frames
    /// sent, live latency from camera to GetMedia reader, server CPU per session.
    Ingest(ingest::IngestArgs),
    /// Many WebRTC signaling connections held open: server memory per connection against its
    /// memory before, and offer relay latency while they are held.
    Signaling(signaling::SignalingArgs),
}

pub async fn run(cmd: BenchCommand) -> Result<(), Box<dyn std::error::Error>> {
    match cmd {
        BenchCommand::Control(args) => control::control(args).await,
        BenchCommand::Media(args) => media::media(args).await,
        BenchCommand::Policy(args) => policy::policy(args).await,
        BenchCommand::Stall(args) => stall::stall(args).await,
        BenchCommand::Signaling(args) => signaling::signaling(args).await,
        BenchCommand::Playback(args) => playback::playback(args).await,
        BenchCommand::Images(args) => images::images(args).await,
        BenchCommand::Ingest(args) => ingest::ingest(args).await,
    }
}

/// The server a benchmark drives and the credentials it signs with.
#[derive(Args)]
pub struct Target {
    /// The server's base URL (plain HTTP).
    #[arg(long, default_value = "http://127.0.0.1:7800")]
    pub endpoint: String,
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    pub access_key_id: String,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub secret_access_key: String,
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
}

impl Target {
    /// The same target, for a task of its own.
    pub fn clone_target(&self) -> Target {
        Target {
            endpoint: self.endpoint.clone(),
            access_key_id: self.access_key_id.clone(),
            secret_access_key: self.secret_access_key.clone(),
            region: self.region.clone(),
        }
    }

    /// A media/control client for the target with its credentials.
    pub fn client(&self) -> Result<oxbow_client::Client, oxbow_client::ClientError> {
        oxbow_client::Client::new(
            &self.endpoint,
            &self.region,
            oxbow_client::Credentials {
                access_key_id: self.access_key_id.clone(),
                secret_access_key: self.secret_access_key.clone(),
                session_token: None,
            },
        )
    }
}

/// Adds a fresh SigV4 header signature of `body` to `headers` (which already hold `host`),
/// signed with `key` (id, secret) or else the target's own key.
pub fn sign_headers(
    target: &Target,
    key: Option<(&str, &str)>,
    method: &str,
    path: &str,
    headers: &mut http::HeaderMap,
    body: &[u8],
) {
    use sha2::Digest;
    let (access_key_id, secret_access_key) =
        key.unwrap_or((&target.access_key_id, &target.secret_access_key));
    let p = oxbow_auth::SigningParams {
        access_key_id,
        secret_access_key,
        security_token: None,
        region: &target.region,
        service: "kinesisvideo",
        time: time::OffsetDateTime::now_utc(),
    };
    let hash = hex::encode(sha2::Sha256::digest(body));
    for (k, v) in oxbow_auth::sign(method, path, None, headers, &hash, &p) {
        if let Ok(v) = http::HeaderValue::from_str(&v) {
            headers.insert(k, v);
        }
    }
}

/// (user+system CPU seconds, RSS bytes) of a process.
pub fn proc_sample(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((ticks as f64 / 100.0, rss_kb * 1024))
}

/// CPU seconds the server (`pid`) used since `before` (a [`proc_sample`] CPU reading).
pub fn cpu_since(pid: Option<u32>, before: Option<f64>) -> Option<f64> {
    pid.and_then(proc_sample)
        .map(|s| s.0)
        .zip(before)
        .map(|(now, then)| now - then)
}

/// The `q` quantile of sorted samples (nearest rank).
pub fn percentile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i] as f64
}

pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}
