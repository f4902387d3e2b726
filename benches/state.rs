//! A daily run with `--state` against a full run, over S3: requests and wall time. Nothing is
//! asserted.
//!
//! `cargo bench --bench state` simulates `TRAILPROOF_BENCH_DAYS` (default 30) days of 2 accounts
//! × 2 regions, one trail, `TRAILPROOF_BENCH_LOGS` (default 4) logs an hour, and serves it from
//! the test suite's S3 server (s3s on 127.0.0.1) with `TRAILPROOF_BENCH_DELAY_MS` (default 20)
//! added to every request. Day 1 … N-1 are uploaded and verified with `--state` (the first run
//! of a schedule, a full run); then day N is uploaded and verified twice: with the state (the
//! daily run) and without it (a full run over all N days). For each it prints the GETs, LISTs
//! and wall time, and the ratios.

#[path = "../tests/common/s3.rs"]
mod server;

use std::process::Command;
use std::time::Instant;

use rsa::pkcs1::DecodeRsaPrivateKey;
use server::{S3Server, ACCESS_KEY, SECRET_KEY};
use trailproof::aws::Session;
use trailproof::simulate::{simulate, AccountSpec, Bucket, Spec};

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// Uploads what `bucket` holds beyond `before`.
fn upload(server: &S3Server, bucket: &Bucket, before: Option<&Bucket>) {
    let objects = bucket
        .objects
        .iter()
        .filter(|(k, _)| before.is_none_or(|b| !b.objects.contains_key(*k)))
        .map(|(k, o)| (k.clone(), o.clone()))
        .collect();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let session = Session::connect(&server.aws_options()).await.unwrap();
        session.upload(&bucket.name, &objects, 32).await.unwrap();
    });
}

/// One run: its exit code, wall seconds, and the GETs and LISTs the server saw.
fn run(server: &S3Server, end: &str, state: Option<&str>) -> (i32, f64, usize, usize) {
    server.state.clear();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trailproof"));
    cmd.args([
        "verify",
        "s3://state-bench",
        "--endpoint-url",
        &server.endpoint,
        "--end",
        end,
        "--quiet",
    ])
    .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    .env("AWS_REGION", "us-east-1")
    .env("AWS_EC2_METADATA_DISABLED", "true")
    .env("AWS_ENDPOINT_URL_CLOUDTRAIL", &server.aws_endpoint)
    .stdout(std::process::Stdio::null());
    if let Some(state) = state {
        cmd.args(["--state", state]);
    }
    let started = Instant::now();
    let status = cmd.status().expect("trailproof runs");
    let wall = started.elapsed().as_secs_f64();
    let requests = server.state.requests();
    let s3 = requests.iter().filter(|r| !r.services);
    let (lists, gets): (Vec<_>, Vec<_>) = s3
        .filter(|r| r.method == "GET")
        .partition(|r| r.query.contains("list-type"));
    (status.code().unwrap_or(-1), wall, gets.len(), lists.len())
}

fn main() {
    let days: i64 = env("TRAILPROOF_BENCH_DAYS", "30").parse().unwrap();
    let logs: u32 = env("TRAILPROOF_BENCH_LOGS", "4").parse().unwrap();
    let delay: u64 = env("TRAILPROOF_BENCH_DELAY_MS", "20").parse().unwrap();
    let pem = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/keys/TEST-ONLY-signing-key.pem"
    ))
    .unwrap();
    let signer = rsa::RsaPrivateKey::from_pkcs1_pem(&pem).unwrap();
    let spec = Spec {
        bucket: "state-bench".into(),
        accounts: ["111111111111", "222222222222"]
            .iter()
            .map(|a| a.parse::<AccountSpec>().unwrap())
            .collect(),
        regions: vec!["us-east-1".into(), "eu-west-1".into()],
        hours: (days * 24) as u32,
        logs_per_hour: logs,
        log_bytes: 4000,
        ..Spec::default()
    };
    let full = simulate(&spec, &signer).unwrap();
    let start = trailproof::parse_rfc3339("2024-01-01T00:00:00Z").unwrap();
    let yesterday = full.as_it_stood(start + chrono::Duration::days(days - 1));
    let dir = tempfile::tempdir().unwrap();
    let server = S3Server::start(&dir.path().join("s3"));
    server.trust(&signer);
    upload(&server, &yesterday, None);
    let state = dir.path().join("bench.state.json");
    let state = state.to_str().unwrap();
    println!(
        "{} objects over {days} day(s) ({} the last day), {delay} ms per request",
        full.objects.len(),
        full.objects.len() - yesterday.objects.len()
    );
    server.state.set_faults(server::Faults {
        delay: std::time::Duration::from_millis(delay),
        ..Default::default()
    });
    let fmt = trailproof::layout::format_time;
    let first = run(&server, &fmt(yesterday.as_of), Some(state));
    upload(&server, &full, Some(&yesterday));
    let daily = run(&server, &fmt(full.as_of), Some(state));
    let whole = run(&server, &fmt(full.as_of), None);
    println!(
        "{:<34} {:>5} {:>8} {:>8} {:>8}",
        "run", "exit", "wall s", "GETs", "LISTs"
    );
    for (name, r) in [
        (format!("first run with --state ({} days)", days - 1), first),
        ("daily run with --state (+1 day)".to_string(), daily),
        (format!("full run, no state ({days} days)"), whole),
    ] {
        println!("{name:<34} {:>5} {:>8.2} {:>8} {:>8}", r.0, r.1, r.2, r.3);
    }
    println!(
        "daily ÷ full: {:.1}× fewer GETs, {:.1}× less wall time",
        whole.2 as f64 / daily.2.max(1) as f64,
        whole.1 / daily.1
    );
}
