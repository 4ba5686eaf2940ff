//! `oxbow put` and `oxbow get`: stream MKV into a stream, and read a stream out.

use std::path::{Path, PathBuf};

use clap::Args;
use http_body_util::BodyExt;
use oxbow_client::{
    Ack, AckEvent, ChunkReader, Client, Credentials, Producer, PutOptions, SegmentMerger, Trust,
};
use oxbow_mkv::Event;
use tokio::io::AsyncWriteExt;

/// Where the server is and who we are.
#[derive(Args, Debug, Clone)]
pub struct Connection {
    /// The server's URL [default: the data directory's AWS config, else http://127.0.0.1:7800].
    #[arg(long, env = "OXBOW_ENDPOINT")]
    endpoint: Option<String>,
    /// The server's data directory, for its generated endpoint and credentials.
    #[arg(long, default_value = "./oxbow-data", env = "OXBOW_DATA_DIR")]
    data_dir: PathBuf,
    /// The region to sign for [default: as the AWS CLI finds it: AWS_REGION,
    /// AWS_DEFAULT_REGION, the data directory's profile, else us-east-1].
    #[arg(long)]
    region: Option<String>,
    /// A PEM file of CA certificates to trust for https, besides the system's roots and the
    /// data directory's own CA [env: AWS_CA_BUNDLE].
    #[arg(long, env = "AWS_CA_BUNDLE")]
    ca_bundle: Option<PathBuf>,
}

fn ini_value(path: &Path, key: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()?.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == key).then(|| v.trim().to_string())
    })
}

impl Connection {
    /// Applies a connection flag given after a subcommand's free-form arguments (`--endpoint`,
    /// `--data-dir`, `--region`); false if `flag` is not one of them.
    pub fn set_flag(&mut self, flag: &str, value: &str) -> bool {
        match flag {
            "--endpoint" => self.endpoint = Some(value.to_string()),
            "--data-dir" => self.data_dir = PathBuf::from(value),
            "--region" => self.region = Some(value.to_string()),
            "--ca-bundle" => self.ca_bundle = Some(PathBuf::from(value)),
            _ => return false,
        }
        true
    }

    /// Credentials from the environment, else the server's generated credentials file.
    pub fn client(&self) -> Result<Client, Box<dyn std::error::Error>> {
        let aws = self.data_dir.join("aws");
        let endpoint = self
            .endpoint
            .clone()
            .or_else(|| ini_value(&aws.join("config"), "endpoint_url"))
            .unwrap_or_else(|| "http://127.0.0.1:7800".into());
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let credentials = match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
            (Some(id), Some(secret)) => Credentials {
                access_key_id: id,
                secret_access_key: secret,
                session_token: env("AWS_SESSION_TOKEN"),
            },
            _ => {
                let file = aws.join("credentials");
                let (Some(id), Some(secret)) = (
                    ini_value(&file, "aws_access_key_id"),
                    ini_value(&file, "aws_secret_access_key"),
                ) else {
                    return Err(format!(
                        "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or point --data-dir at the server's data directory ({} not found)",
                        file.display()
                    )
                    .into());
                };
                Credentials {
                    access_key_id: id,
                    secret_access_key: secret,
                    session_token: None,
                }
            }
        };
        let env_region = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION"));
        let region = self
            .region
            .clone()
            .or(env_region)
            .or_else(|| ini_value(&aws.join("config"), "region"))
            .unwrap_or_else(|| "us-east-1".into());
        Ok(Client::with_trust(
            &endpoint,
            &region,
            credentials,
            Some(self.trust()?),
        )?)
    }

    /// The CAs an https endpoint may be signed by: `--ca-bundle` (or AWS_CA_BUNDLE), else the
    /// data directory profile's `ca_bundle`, and the data directory's own CA if it has one.
    fn trust(&self) -> Result<Trust, Box<dyn std::error::Error>> {
        let mut files: Vec<PathBuf> = Vec::new();
        let profile_ca =
            ini_value(&self.data_dir.join("aws").join("config"), "ca_bundle").map(PathBuf::from);
        if let Some(ca) = self.ca_bundle.clone().or(profile_ca) {
            files.push(ca);
        }
        let own = self.data_dir.join("tls").join("ca.pem");
        if own.is_file() && !files.contains(&own) {
            files.push(own);
        }
        Ok(Trust::new(&files)?)
    }
}

#[derive(Args, Debug)]
pub struct PutArgs {
    /// The stream to write to (created if missing, unless --no-create).
    stream: String,
    /// An MKV file, or `-` for standard input (e.g. `ffmpeg ... -f matroska -`).
    input: String,
    /// Send frames at the pace of their timestamps (for files).
    #[arg(long)]
    realtime: bool,
    /// Retention of a stream this command creates.
    #[arg(long, default_value_t = 24)]
    retention_hours: i64,
    /// Fail instead of creating a missing stream.
    #[arg(long)]
    no_create: bool,
    /// Print every acknowledgement, not just a progress line per fragment.
    #[arg(long, short)]
    verbose: bool,
    #[command(flatten)]
    connection: Connection,
}

pub async fn put(args: PutArgs) -> Result<(), Box<dyn std::error::Error>> {
    let client = args.connection.client()?;
    if !args.no_create {
        client
            .ensure_stream(&args.stream, args.retention_hours)
            .await?;
    }
    let info = client
        .call_json(
            "/describeStream",
            &serde_json::json!({ "StreamName": args.stream }),
        )
        .await?;
    let retention = info["StreamInfo"]["DataRetentionInHours"]
        .as_i64()
        .unwrap_or(0);
    let data = client.data_endpoint(&args.stream, "PUT_MEDIA").await?;
    let mut options = PutOptions::new(&args.stream);
    options.realtime = args.realtime;
    options.no_retention = retention == 0;
    // In a cluster the stream may move to another node: ask again after a failed connection.
    let producer = Producer::following(client.clone(), data, options);
    let verbose = args.verbose;
    let on_ack = move |ack: &Ack| print_ack(ack, verbose);
    let summary = if args.input == "-" {
        producer.run(tokio::io::stdin(), on_ack).await?
    } else {
        let file = tokio::fs::File::open(&args.input)
            .await
            .map_err(|e| format!("{}: {e}", args.input))?;
        producer.run(file, on_ack).await?
    };
    eprintln!(
        "done: {} fragments ({} bytes), {} received, {} persisted, {} errors, {} reconnects, {} unacknowledged",
        summary.fragments, summary.bytes, summary.received, summary.persisted, summary.errors, summary.reconnects, summary.unacknowledged
    );
    if summary.unacknowledged > 0 || summary.errors > 0 {
        return Err("not every fragment was acknowledged".into());
    }
    Ok(())
}

fn print_ack(ack: &Ack, verbose: bool) {
    let number = ack.fragment_number.as_deref().unwrap_or("-");
    let tc = ack
        .fragment_timecode
        .map_or_else(|| "-".into(), |t| t.to_string());
    match ack.event {
        AckEvent::Error => eprintln!(
            "ERROR {} {} (fragment {number}, timecode {tc})",
            ack.error_id.unwrap_or(0),
            ack.error_code.as_deref().unwrap_or("")
        ),
        AckEvent::Persisted if !verbose => eprintln!("persisted fragment {number} (timecode {tc})"),
        _ if verbose => eprintln!("{:?} fragment {number} timecode {tc}", ack.event),
        _ => {}
    }
}

#[derive(Args, Debug)]
pub struct GetArgs {
    stream: String,
    /// `now`, `earliest`, a fragment number, or a time (RFC 3339 or epoch seconds).
    #[arg(long, default_value = "now")]
    start: String,
    /// With a time --start: match producer timestamps instead of server timestamps.
    #[arg(long)]
    producer_time: bool,
    /// Print one line per fragment instead of writing MKV to standard output.
    #[arg(long)]
    summary: bool,
    #[command(flatten)]
    connection: Connection,
}

fn start_selector(start: &str, producer: bool) -> Result<serde_json::Value, String> {
    let kind = if producer {
        "PRODUCER_TIMESTAMP"
    } else {
        "SERVER_TIMESTAMP"
    };
    Ok(match start {
        "now" => serde_json::json!({ "StartSelectorType": "NOW" }),
        "earliest" => serde_json::json!({ "StartSelectorType": "EARLIEST" }),
        s if s.len() > 20 && s.bytes().all(|b| b.is_ascii_digit()) => {
            serde_json::json!({ "StartSelectorType": "FRAGMENT_NUMBER", "AfterFragmentNumber": s })
        }
        s => {
            let secs = match s.parse::<f64>() {
                Ok(v) => v,
                Err(_) => {
                    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                        .map_err(|_| {
                            format!("--start {s}: not now, earliest, a fragment number or a time")
                        })?
                        .unix_timestamp_nanos() as f64
                        / 1e9
                }
            };
            serde_json::json!({ "StartSelectorType": kind, "StartTimestamp": secs })
        }
    })
}

pub async fn get(args: GetArgs) -> Result<(), Box<dyn std::error::Error>> {
    let client = args.connection.client()?;
    let selector = start_selector(&args.start, args.producer_time)?;
    let data = client.data_endpoint(&args.stream, "GET_MEDIA").await?;
    let mut body = data.get_media(&args.stream, selector).await?;
    let mut reader = ChunkReader::default();
    let mut merger = SegmentMerger::default();
    let mut out = tokio::io::stdout();
    let mut summary = Summary::default();
    while let Some(frame) = body.frame().await {
        let Ok(bytes) = frame?.into_data() else {
            continue;
        };
        reader.push(&bytes);
        while let Some(event) = reader.next_event()? {
            if args.summary {
                summary.event(&event);
            } else if let Some(b) = merger.event(&event) {
                out.write_all(&b).await?;
            }
        }
    }
    for event in reader.finish()? {
        if args.summary {
            summary.event(&event);
        } else if let Some(b) = merger.event(&event) {
            out.write_all(&b).await?;
        }
    }
    out.flush().await?;
    Ok(())
}

/// One line per fragment: number, producer time, frames, bytes, how far behind live.
#[derive(Default)]
struct Summary {
    frames: usize,
    bytes: usize,
    number: String,
    producer: String,
}

impl Summary {
    fn event(&mut self, event: &Event) {
        match event {
            Event::Frame(f) => {
                self.frames += 1;
                self.bytes += f.element.len();
            }
            Event::Tags(tags) => {
                for (k, v) in tags {
                    match k.as_str() {
                        "AWS_KINESISVIDEO_FRAGMENT_NUMBER" => self.number = v.clone(),
                        "AWS_KINESISVIDEO_PRODUCER_TIMESTAMP" => self.producer = v.clone(),
                        "AWS_KINESISVIDEO_MILLIS_BEHIND_NOW" => {
                            println!(
                                "fragment {} producer {} frames {} bytes {} behind {v} ms",
                                self.number, self.producer, self.frames, self.bytes
                            );
                            self.frames = 0;
                            self.bytes = 0;
                        }
                        "AWS_KINESISVIDEO_ERROR_CODE" => println!("error: {v}"),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
}
