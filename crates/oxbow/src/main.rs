//! The `oxbow` command: `oxbow serve` runs the service; `oxbow bench` measures it.

#![forbid(unsafe_code)]

mod admin;
mod bench;
mod media_cli;
mod serve;

use clap::{Parser, Subcommand};

/// jemalloc returns freed memory to the system within seconds. With glibc's allocator a
/// burst (200 stalled readers and 200 stalled producers, `bench/stall.sh`) left ~35 MB more
/// resident for good after the clients had gone (1.24x the starting RSS; jemalloc: ~1.0x);
/// mimalloc returned memory too but peaked far higher under the same load.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Oxbow: a self-hosted Amazon Kinesis Video Streams.
///
/// Point the AWS CLI, the AWS SDKs and the KVS producer/WebRTC SDKs at it by changing only
/// their endpoint.
#[derive(Parser)]
#[command(name = "oxbow", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service: control plane, media, playback, images, WebRTC signaling and TURN.
    Serve(Box<serve::ServeArgs>),
    /// Stream an MKV file or standard input into a stream (PutMedia).
    Put(media_cli::PutArgs),
    /// Read a stream (GetMedia) as MKV on standard output, or as a summary.
    Get(media_cli::GetArgs),
    /// Manage users, keys, policies, roles, IoT role aliases, things, certificates and
    /// camera owners (root credentials only).
    Admin(admin::AdminArgs),
    /// Load generators that measure a running server.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

/// The most threads the runtime runs blocking work on.
const BLOCKING_THREADS: usize = 32;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // `stun_proto` logs every unauthenticated first TURN request (the normal 401 challenge
    // of the long-term credential mechanism) as an error: kept out unless asked for by name.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let filter = match "stun_proto::auth=off".parse() {
        Ok(d) if !std::env::var("RUST_LOG").is_ok_and(|v| v.contains("stun_proto")) => {
            filter.add_directive(d)
        }
        _ => filter,
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never in a log file or pipe.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // Blocking work (segment reads, catalog I/O, fsyncs) is short and disk-bound, and more
    // threads than a disk can serve only add allocator arenas that keep freed memory.
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all().max_blocking_threads(BLOCKING_THREADS);
    if let Command::Serve(args) = &cli.command {
        if let Some(n) = args.worker_threads {
            runtime.worker_threads(n.into());
        }
    }
    let runtime = match runtime.build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("oxbow: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(*args).await,
            Command::Put(args) => media_cli::put(args).await,
            Command::Get(args) => media_cli::get(args).await,
            Command::Bench(cmd) => bench::run(cmd).await,
            Command::Admin(args) => admin::run(args).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("oxbow: {}", with_causes(e.as_ref()));
            std::process::ExitCode::FAILURE
        }
    }
}

/// An error and the causes under it (a TLS handshake under a catalog connection, say), each
/// once: wrappers that already print their cause are not repeated.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let said = c.to_string();
        if !out.ends_with(&said) {
            out.push_str(": ");
            out.push_str(&said);
        }
        cause = c.source();
    }
    out
}
