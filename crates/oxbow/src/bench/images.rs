//! `oxbow bench images`: GetImages throughput. Stores an MKV file in a new stream, then asks
//! for 100 JPEG images at a time (every 200 ms over 20 s of it), several times over, and
//! reports images per second and per second of server CPU.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;

use super::{cpu_since, median, proc_sample, Target};

#[derive(Args)]
pub struct ImagesArgs {
    #[command(flatten)]
    pub target: Target,
    /// An MKV file (H.264) of at least 20 seconds.
    #[arg(long)]
    pub media: PathBuf,
    /// The stream to create and store it in.
    #[arg(long, default_value = "bench-images")]
    pub stream: String,
    /// GetImages calls (100 images each).
    #[arg(long, default_value_t = 5)]
    pub calls: usize,
    /// The server's pid, for its CPU.
    #[arg(long)]
    pub server_pid: Option<u32>,
}

pub async fn images(args: ImagesArgs) -> Result<(), Box<dyn std::error::Error>> {
    let client = args.target.client()?;
    client.ensure_stream(&args.stream, 24).await?;
    let options = oxbow_client::PutOptions::new(&args.stream);
    let producer = oxbow_client::Producer::new(client.clone(), options);
    producer
        .run(tokio::fs::File::open(&args.media).await?, |_| {})
        .await?;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let fragments = client
        .call_json(
            "/listFragments",
            &serde_json::json!({"StreamName": args.stream, "MaxResults": 1000, "FragmentSelector": {
                "FragmentSelectorType": "PRODUCER_TIMESTAMP",
                "TimestampRange": {"StartTimestamp": 0, "EndTimestamp": 4_000_000_000u64}}}),
        )
        .await?;
    let start = fragments["Fragments"]
        .as_array()
        .ok_or("no fragments")?
        .iter()
        .filter_map(|f| f["ProducerTimestamp"].as_f64())
        .fold(f64::INFINITY, f64::min)
        + 0.001;
    let (mut rates, mut per_cpu) = (Vec::new(), Vec::new());
    for call in 0..args.calls {
        let cpu0 = args.server_pid.and_then(proc_sample).map(|s| s.0);
        let t0 = Instant::now();
        let out = client
            .call_json(
                "/getImages",
                &serde_json::json!({"StreamName": args.stream, "ImageSelectorType": "PRODUCER_TIMESTAMP",
                    "StartTimestamp": start, "EndTimestamp": start + 19.9, "SamplingInterval": 200,
                    "Format": "JPEG", "MaxResults": 100}),
            )
            .await?;
        let secs = t0.elapsed().as_secs_f64();
        let images = out["Images"]
            .as_array()
            .map(|a| a.iter().filter(|i| i.get("ImageContent").is_some()).count())
            .unwrap_or(0);
        let cpu = cpu_since(args.server_pid, cpu0);
        let rate = images as f64 / secs;
        rates.push(rate);
        let line = match cpu {
            Some(c) if c > 0.0 => {
                per_cpu.push(images as f64 / c);
                format!(", {:.1} images per CPU-second", images as f64 / c)
            }
            _ => String::new(),
        };
        println!(
            "call {}: {images} images in {secs:.2} s = {rate:.1} images/s{line}",
            call + 1
        );
    }
    println!(
        "median: {:.1} images/s, {:.1} images per CPU-second",
        median(&mut rates),
        median(&mut per_cpu)
    );
    Ok(())
}
