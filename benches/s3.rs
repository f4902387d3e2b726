//! trailproof against `aws cloudtrail validate-logs`, side by side, over one simulated bucket
//! served from a local S3 server (s3s on 127.0.0.1, TCP_NODELAY, the same server the tests use)
//! that also answers ListPublicKeys: `cargo bench --bench s3` (needs `pip install awscli`).
//!
//! For each injected per-request delay (default 0 and 20 ms: loopback, and what real S3 round
//! trips cost) it prints the server's ceiling for plain concurrent GETs of the same objects and
//! trailproof's wall time and objects per second (each the best of 3 runs), the AWS CLI's (one
//! run per account and region, as it requires), and the ratios; then the CPU time each side and
//! the server used in those runs, and trailproof's wall time against the two floors: the
//! round-trip floor (the dependent round trips the layout needs, plus the hashing over every
//! core) and the CPU floor (the ceiling's CPU plus the hashing, over every core), whichever
//! binds. Then peak RSS of `verify` at 1× and 10× the objects.
//!
//! Knobs: TRAILPROOF_BENCH_DAYS (2), TRAILPROOF_BENCH_LOGS (logs per hour, 12),
//! TRAILPROOF_BENCH_ACCOUNTS (2; each in two regions),
//! TRAILPROOF_BENCH_DELAYS_MS ("0,20,50"; empty for the memory figure only), TRAILPROOF_BENCH_JOBS
//! (trailproof's `--jobs`, default auto; the ceiling's GETs in flight: that number, or 64),
//! TRAILPROOF_BENCH_SKIP_CLI, TRAILPROOF_BENCH_SERVE (a delay in ms: serve the bucket with it
//! until killed, and print a command to run against it, e.g. under a profiler;
//! TRAILPROOF_BENCH_SLOWDOWN_EVERY=N then answers every Nth request 503 SlowDown),
//! TRAILPROOF_BENCH_SKIP_GROWTH (leave out the growth curve: 4, 40 and 400 locations of a day,
//! and 4 of ten and of thirty days, over S3 at loopback: wall, per object, per object added since
//! the row before it, requests, peak RSS),
//! TRAILPROOF_BENCH_PIN (Linux, 2 CPUs or more: the server runs on CPU 0 and every client, the
//! ceiling's included, on CPU 1, so that neither takes CPU from the other and the ceiling measures
//! the server alone).

#[path = "../tests/common/s3.rs"]
mod server;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use rsa::pkcs1::DecodeRsaPrivateKey;
use server::{S3Server, ACCESS_KEY, SECRET_KEY};
use trailproof::aws::Session;
use trailproof::simulate::{simulate, write_dir, AccountSpec, Bucket, Spec};

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// The range both tools are asked to verify starts with the simulated bucket.
const START: &str = "2024-01-01T00:00:00Z";

/// The ceiling and trailproof run this many times at each delay and their best is kept: a
/// neighbour's load on a shared machine spoils single runs of about a second. The AWS CLI, tens of
/// seconds a run and bound by round trips, runs once.
const ROUNDS: usize = 3;

/// The round trips one after another that verifying the bench bucket needs at least (see the
/// floors table).
const ROUND_TRIPS: u32 = 5;

/// The bench bucket's accounts: two, or TRAILPROOF_BENCH_ACCOUNTS of them.
fn accounts() -> Vec<String> {
    let n: usize = env("TRAILPROOF_BENCH_ACCOUNTS", "2").parse().unwrap();
    match n {
        2 => vec!["111111111111".into(), "222222222222".into()],
        n => (0..n)
            .map(|i| format!("{:012}", 100_000_000_000u64 + i as u64))
            .collect(),
    }
}
const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];

fn spec(days: u32, logs: u32) -> Spec {
    Spec {
        bucket: "bench-bucket".into(),
        accounts: accounts()
            .iter()
            .map(|a| a.parse::<AccountSpec>().unwrap())
            .collect(),
        regions: REGIONS.iter().map(|r| r.to_string()).collect(),
        hours: days * 24,
        logs_per_hour: logs,
        // Log-uniform 16 KB .. 2 MB inflated: mostly a few KB stored, some over 100 KB.
        log_bytes: 16_000,
        log_bytes_max: Some(2_000_000),
        ..Spec::default()
    }
}

/// Test credentials, S3 at the server's S3 endpoint and CloudTrail at its services endpoint.
fn with_env(cmd: &mut Command, server: &S3Server) {
    cmd.env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL_S3", &server.endpoint)
        .env("AWS_ENDPOINT_URL_CLOUDTRAIL", &server.aws_endpoint);
}

/// One run of a command, measured around its process alone.
struct Run {
    wall: Duration,
    code: i32,
    out: String,
    /// Peak RSS, KiB.
    rss: u64,
    /// User and system CPU time.
    cpu: Duration,
}

/// Runs `cmd`, measured by a Python wrapper around its child alone (the wrapper's own start-up is
/// not counted).
fn measure(cmd: &Command) -> Run {
    let mut wrapped = Command::new("python3");
    wrapped.args([
        "-c",
        "import os, resource, subprocess, sys, time\ncpu = os.environ.pop('TRAILPROOF_BENCH_CLIENT_CPU', None)\nif cpu: os.sched_setaffinity(0, {int(cpu)})\nt = time.perf_counter()\nr = subprocess.run(sys.argv[1:], capture_output=True)\nt = time.perf_counter() - t\nsys.stdout.buffer.write(r.stdout + r.stderr)\nu = resource.getrusage(resource.RUSAGE_CHILDREN)\nsys.stderr.write('%d %d %.6f %.6f' % (r.returncode, u.ru_maxrss, t, u.ru_utime + u.ru_stime))",
    ]);
    wrapped.arg(cmd.get_program());
    wrapped.args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            wrapped.env(k, v);
        }
    }
    if pinned() {
        wrapped.env("TRAILPROOF_BENCH_CLIENT_CPU", CLIENT_CPU.to_string());
    }
    let out = wrapped.output().expect("python3 runs");
    let tail = String::from_utf8_lossy(&out.stderr);
    let mut parts = tail.split_whitespace();
    let mut next = || parts.next().and_then(|c| c.parse::<f64>().ok());
    let code = next().map_or(-1, |c| c as i32);
    let rss = next().unwrap_or(0.0) as u64;
    let wall = Duration::from_secs_f64(next().unwrap_or(0.0));
    let cpu = Duration::from_secs_f64(next().unwrap_or(0.0));
    Run {
        wall,
        code,
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        rss,
        cpu,
    }
}

/// CPU time used so far by this process: the server's threads, and the ceiling's client.
fn own_cpu() -> Duration {
    // SAFETY: getrusage only writes the zeroed struct it is given, which lives on this frame.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &mut usage), 0);
        usage
    };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

const SERVER_CPU: usize = 0;
const CLIENT_CPU: usize = 1;

fn pinned() -> bool {
    std::env::var_os("TRAILPROOF_BENCH_PIN").is_some()
}

/// Pins the calling thread, and the threads it starts from now on, to one CPU.
fn pin(cpu: usize) {
    #[cfg(target_os = "linux")]
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET and sched_setaffinity only read and
    // write that set, which lives on this stack frame for the whole call.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        let done = libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        assert_eq!(
            done,
            0,
            "cannot pin to CPU {cpu}: {}",
            std::io::Error::last_os_error()
        );
    }
    #[cfg(not(target_os = "linux"))]
    panic!("TRAILPROOF_BENCH_PIN needs Linux (CPU {cpu})");
}

/// The server's ceiling: plain GETs of every object, `jobs` in flight, through the SDK (on the
/// clients' CPU when pinned). Returns the wall time, and the CPU time this process (server and
/// client) used meanwhile.
fn ceiling(server: &S3Server, keys: &[String], jobs: usize) -> (Duration, Duration) {
    if pinned() {
        return std::thread::scope(|s| {
            s.spawn(|| {
                pin(CLIENT_CPU);
                get_all(server, keys, jobs)
            })
            .join()
            .unwrap()
        });
    }
    get_all(server, keys, jobs)
}

fn get_all(server: &S3Server, keys: &[String], jobs: usize) -> (Duration, Duration) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let session = Session::connect(&server.aws_options()).await.unwrap();
        let store = session.s3_store("bench-bucket", "").await.unwrap();
        let store = &store;
        let (t, cpu) = (Instant::now(), own_cpu());
        let results = trailproof::verify::bounded(jobs, keys, |k| async move {
            trailproof::store::Store::get(store, k)
                .await
                .map(|o| o.bytes.len())
        })
        .await;
        assert!(results.iter().all(Result::is_ok));
        (t.elapsed(), own_cpu() - cpu)
    })
}

fn main() {
    let days: u32 = env("TRAILPROOF_BENCH_DAYS", "2").parse().unwrap();
    let logs: u32 = env("TRAILPROOF_BENCH_LOGS", "12").parse().unwrap();
    // trailproof's --jobs (its default, auto, unless given); the ceiling's GETs in flight.
    let jobs_arg = env("TRAILPROOF_BENCH_JOBS", "auto");
    let jobs: usize = jobs_arg.parse().unwrap_or(64);
    let delays: Vec<u64> = env("TRAILPROOF_BENCH_DELAYS_MS", "0,20,50")
        .split(',')
        .filter(|d| !d.trim().is_empty())
        .map(|d| d.trim().parse().unwrap())
        .collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let pem =
        std::fs::read_to_string(root.join("fixtures/keys/TEST-ONLY-signing-key.pem")).unwrap();
    let signer = rsa::RsaPrivateKey::from_pkcs1_pem(&pem).unwrap();
    let binary = env!("CARGO_BIN_EXE_trailproof");

    let t = Instant::now();
    let bucket: Bucket = simulate(&spec(days, logs), &signer).unwrap();
    let made = t.elapsed();
    let bytes: usize = bucket.objects.values().map(|o| o.bytes.len()).sum();
    // The work no verifier can skip: inflating and hashing every object, timed on one core.
    let t = Instant::now();
    let inflated: u64 = bucket
        .objects
        .values()
        .map(|o| trailproof::hash::hash_gzip(&o.bytes[..]).unwrap().size)
        .sum();
    let hash_cpu = t.elapsed();
    let keys: Vec<String> = bucket.objects.keys().cloned().collect();
    let end = trailproof::layout::format_time(bucket.as_of);
    println!(
        "bucket: {} accounts x {} regions x {} h x {} logs/h: {} objects, {:.1} MB stored, {:.0} MB inflated ({:.1}x; made in {made:.1?})",
        accounts().len(),
        REGIONS.len(),
        days * 24,
        logs,
        keys.len(),
        bytes as f64 / 1e6,
        inflated as f64 / 1e6,
        inflated as f64 / bytes as f64,
    );

    let dir = tempfile::tempdir().unwrap();
    if pinned() {
        // The server's threads start from here, and stay on its CPU.
        pin(SERVER_CPU);
        println!("pinned: the server on CPU {SERVER_CPU}, every client on CPU {CLIENT_CPU}");
    }
    let server = S3Server::start(&dir.path().join("s3"));
    server.trust(&signer);
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let session = Session::connect(&server.aws_options()).await.unwrap();
        session
            .upload("bench-bucket", &bucket.objects, 32)
            .await
            .unwrap();
    });
    let have_cli = std::env::var("TRAILPROOF_BENCH_SKIP_CLI").is_err()
        && Command::new("aws")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    if !have_cli {
        println!(
            "(the AWS CLI is not run: pip install awscli, and unset TRAILPROOF_BENCH_SKIP_CLI)"
        );
    }

    if let Ok(delay) = std::env::var("TRAILPROOF_BENCH_SERVE") {
        // Keep serving the bucket, so that a run can be profiled on its own.
        server.state.set_faults(server::Faults {
            delay: Duration::from_millis(delay.parse().unwrap_or(0)),
            slow_down_every: env("TRAILPROOF_BENCH_SLOWDOWN_EVERY", "0")
                .parse()
                .unwrap_or(0),
            ..server::Faults::default()
        });
        println!(
            "serving at {}; e.g. AWS_ACCESS_KEY_ID={ACCESS_KEY} AWS_SECRET_ACCESS_KEY={SECRET_KEY} AWS_REGION=us-east-1 AWS_ENDPOINT_URL_CLOUDTRAIL={} {binary} verify s3://bench-bucket --endpoint-url {} --start {START} --end {end} -q",
            server.endpoint, server.aws_endpoint, server.endpoint
        );
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut cpu_rows = Vec::new();
    let mut floor_rows = Vec::new();
    println!();
    println!("| delay | GET ceiling (obj/s) | trailproof | obj/s | % of ceiling | requests/s | AWS CLI | obj/s | requests/s | CLI ÷ trailproof |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for delay in delays {
        server.state.set_faults(server::Faults {
            delay: Duration::from_millis(delay),
            ..server::Faults::default()
        });
        let (ceiling_time, ceiling_cpu) = (0..ROUNDS)
            .map(|_| ceiling(&server, &keys, jobs))
            .min()
            .unwrap();
        let ceiling_rate = keys.len() as f64 / ceiling_time.as_secs_f64();

        let mut cmd = Command::new(binary);
        cmd.args([
            "verify",
            "s3://bench-bucket",
            "--endpoint-url",
            &server.endpoint,
            "--start",
            START,
            "--end",
            &end,
            "--jobs",
            &jobs_arg,
            "--format",
            "json",
            "-q",
        ]);
        with_env(&mut cmd, &server);
        let (mut tp_wall, mut tp_cpu, mut tp_server_cpu) = (Duration::MAX, None, None);
        let mut tp_requests = 0;
        let mut peaks = Vec::new();
        for _ in 0..ROUNDS {
            server.state.clear();
            let server_cpu = own_cpu();
            let run = measure(&cmd);
            let server_cpu = own_cpu() - server_cpu;
            assert_eq!(
                run.code,
                0,
                "trailproof: {}",
                &run.out[..run.out.len().min(2000)]
            );
            if run.wall < tp_wall {
                (tp_wall, tp_cpu, tp_server_cpu) = (run.wall, Some(run.cpu), Some(server_cpu));
            }
            let report: Option<serde_json::Value> = serde_json::from_str(&run.out).ok();
            if let Some(peak) = report.and_then(|r| r["requests"]["peak"].as_u64()) {
                peaks.push(peak.to_string());
            }
            tp_requests = server.state.requests().len();
        }
        let (tp_cpu, tp_server_cpu) = (tp_cpu.unwrap(), tp_server_cpu.unwrap());
        eprintln!(
            "({delay} ms: trailproof --jobs {jobs_arg} had at most {} requests in flight in its runs)",
            peaks.join(", ")
        );
        // Spread over shared cores; pinned, the server and the client each have a core of their
        // own, and the ceiling's CPU time does not say how it divides between them.
        let per_core = |cpu: Duration| match pinned() {
            false => format!("{:.2} s", cpu.as_secs_f64() / cores as f64),
            true => "-".to_string(),
        };
        // The round-trip floor: the dependent round trips the layout needs (HeadBucket with the
        // root and `AWSLogs/` listings, naming the accounts; each account's two trees, naming the
        // regions; the named day folders; the digests; the logs), plus inflating and hashing every
        // object
        // spread over every core. The CPU floor: the ceiling's CPU (server and client) plus the
        // hashing, over every core.
        let rt_floor =
            ROUND_TRIPS as f64 * delay as f64 / 1e3 + hash_cpu.as_secs_f64() / cores as f64;
        let cpu_floor = (ceiling_cpu + hash_cpu).as_secs_f64() / cores as f64;
        floor_rows.push(format!(
            "| {delay} ms | {:.2} s | {rt_floor:.2} s | {cpu_floor:.2} s | {} | {:.2}x | {:.2}x |",
            tp_wall.as_secs_f64(),
            if rt_floor >= cpu_floor {
                "round trips"
            } else {
                "CPU"
            },
            tp_wall.as_secs_f64() / rt_floor,
            tp_wall.as_secs_f64() / cpu_floor,
        ));
        cpu_rows.push(format!(
            "| {delay} ms | {:.2} s | {:.2} s | {} | {:.2} s | {:.2} s | {:.2} s | {:.2} s | {} |",
            ceiling_time.as_secs_f64(),
            ceiling_cpu.as_secs_f64(),
            per_core(ceiling_cpu + hash_cpu),
            ceiling_time.as_secs_f64() / 0.7,
            tp_wall.as_secs_f64(),
            tp_cpu.as_secs_f64(),
            tp_server_cpu.as_secs_f64(),
            per_core(tp_cpu + tp_server_cpu),
        ));
        let tp_rate = keys.len() as f64 / tp_wall.as_secs_f64();

        let (mut cli_wall, mut cli_requests) = (Duration::ZERO, 0);
        if have_cli {
            for account in accounts() {
                for region in REGIONS {
                    server.state.clear();
                    let mut cmd = Command::new("aws");
                    cmd.args([
                        "--region",
                        region,
                        "--endpoint-url",
                        &server.aws_endpoint,
                        "cloudtrail",
                        "validate-logs",
                        "--trail-arn",
                        &format!("arn:aws:cloudtrail:us-east-1:{account}:trail/management"),
                        "--start-time",
                        START,
                        "--end-time",
                        &end,
                        "--s3-bucket",
                        "bench-bucket",
                    ]);
                    with_env(&mut cmd, &server);
                    let run = measure(&cmd);
                    assert!(
                        run.code == 0
                            && run.out.contains("digest files valid")
                            && !run.out.contains("INVALID"),
                        "AWS CLI, {account} {region}: {}",
                        run.out
                    );
                    cli_wall += run.wall;
                    cli_requests += server.state.requests().len();
                }
            }
        }
        let cli_rate = keys.len() as f64 / cli_wall.as_secs_f64().max(1e-9);
        println!(
            "| {delay} ms | {ceiling_rate:.0} | {:.2} s | {tp_rate:.0} | {:.0}% | {:.0} | {} | {} | {} | {} |",
            tp_wall.as_secs_f64(),
            100.0 * tp_rate / ceiling_rate,
            tp_requests as f64 / tp_wall.as_secs_f64(),
            if have_cli { format!("{:.2} s", cli_wall.as_secs_f64()) } else { "-".into() },
            if have_cli { format!("{cli_rate:.0}") } else { "-".into() },
            if have_cli { format!("{:.0}", cli_requests as f64 / cli_wall.as_secs_f64()) } else { "-".into() },
            if have_cli { format!("{:.1}x", cli_wall.as_secs_f64() / tp_wall.as_secs_f64()) } else { "-".into() },
        );
    }

    // Where the CPU went in the runs above. The floor is the wall time of a verifier that made the
    // ceiling's GETs and only added inflating and hashing, with every core busy throughout: no
    // scheduling of the same work can finish sooner.
    println!();
    println!(
        "CPU time of the runs above, {}; inflate + SHA-256 of every object on one core: {:.2} s",
        match pinned() {
            false => format!("{cores} cores shared by server and client"),
            true => "server and client pinned to a core each".to_string(),
        },
        hash_cpu.as_secs_f64()
    );
    println!("| delay | ceiling wall | ceiling CPU (server + client) | floor: (ceiling CPU + inflate & SHA-256) ÷ cores | wall at 70% of ceiling | trailproof wall | trailproof CPU | server CPU meanwhile | (trailproof + server CPU) ÷ cores |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for row in cpu_rows {
        println!("{row}");
    }
    println!();
    println!("| delay | trailproof wall | round-trip floor | CPU floor | binds | ÷ round-trip floor | ÷ CPU floor |");
    println!("|---|---|---|---|---|---|---|");
    for row in floor_rows {
        println!("{row}");
    }

    // How cost grows over S3 (loopback): 1x, 10x, 100x the locations, and 10x the days, with
    // small logs so that the request count, not the hashing, is what grows.
    if std::env::var("TRAILPROOF_BENCH_SKIP_GROWTH").is_err() {
        server.state.set_faults(server::Faults::default());
        println!();
        println!(
            "| locations | days | objects | wall | µs of wall per object | µs per object added | requests | peak RSS |"
        );
        println!("|---|---|---|---|---|---|---|---|");
        // Each row's objects and wall, for the cost of what the next row adds: the fixed start
        // of a run (credentials, keys, the listings above the locations) drops out of it.
        let mut rows: Vec<(usize, Duration)> = Vec::new();
        let mut grow = |accounts: usize, days: u32, since: Option<usize>| {
            let name = format!("growth-{accounts}-{days}");
            let b = simulate(
                &Spec {
                    bucket: name.clone(),
                    accounts: (0..accounts)
                        .map(|i| {
                            format!("{:012}", 300_000_000_000u64 + i as u64)
                                .parse::<AccountSpec>()
                                .unwrap()
                        })
                        .collect(),
                    regions: REGIONS.iter().map(|r| r.to_string()).collect(),
                    hours: days * 24,
                    logs_per_hour: 1,
                    log_bytes: 2_000,
                    ..Spec::default()
                },
                &signer,
            )
            .unwrap();
            tokio::runtime::Runtime::new().unwrap().block_on(async {
                let session = Session::connect(&server.aws_options()).await.unwrap();
                session.upload(&name, &b.objects, 32).await.unwrap();
            });
            let end = trailproof::layout::format_time(b.as_of);
            let source = format!("s3://{name}");
            let mut cmd = Command::new(binary);
            cmd.args([
                "verify",
                &source,
                "--endpoint-url",
                &server.endpoint,
                "--end",
                &end,
                "--format",
                "json",
                "-q",
            ]);
            with_env(&mut cmd, &server);
            server.state.clear();
            let run = measure(&cmd);
            assert_eq!(run.code, 0, "{}", &run.out[..run.out.len().min(2000)]);
            let requests = server.state.requests().len();
            let added = since.map(|i| rows[i]).map_or("-".to_string(), |(n, wall)| {
                format!(
                    "{:.0}",
                    run.wall.saturating_sub(wall).as_secs_f64() * 1e6
                        / b.objects.len().saturating_sub(n).max(1) as f64
                )
            });
            println!(
                "| {} | {days} | {} | {:.2} s | {:.0} | {added} | {requests} | {} MiB |",
                accounts * REGIONS.len(),
                b.objects.len(),
                run.wall.as_secs_f64(),
                run.wall.as_secs_f64() * 1e6 / b.objects.len() as f64,
                run.rss / 1024
            );
            rows.push((b.objects.len(), run.wall));
        };
        // (accounts, days, the row whose objects this one adds to)
        for (accounts, days, since) in [
            (2, 1, None),
            (20, 1, Some(0)),
            (200, 1, Some(1)),
            (2, 10, Some(0)),
            (2, 30, Some(3)),
        ] {
            grow(accounts, days, since);
        }
    }

    // Memory: the same shape at 10x the objects (ten times the days), verified offline.
    println!();
    let rss = |scale: u32| -> (usize, u64) {
        let b = simulate(
            &Spec {
                log_bytes: 8_000,
                log_bytes_max: Some(64_000),
                ..spec(days * scale, logs)
            },
            &signer,
        )
        .unwrap();
        let d = dir.path().join(format!("rss-{scale}"));
        write_dir(&b, &d).unwrap();
        let keys_file = dir.path().join(format!("rss-{scale}.json"));
        std::fs::write(&keys_file, &b.public_keys).unwrap();
        let mut cmd = Command::new(binary);
        cmd.args([
            "verify",
            d.to_str().unwrap(),
            "--public-keys",
            keys_file.to_str().unwrap(),
            "-q",
            "--format",
            "json",
        ]);
        let run = measure(&cmd);
        assert_eq!(run.code, 0);
        (b.objects.len(), run.rss)
    };
    let (n1, r1) = rss(1);
    let (n10, r10) = rss(10);
    println!(
        "peak RSS, offline verify: {n1} objects {} MiB, {n10} objects {} MiB: ratio {:.2}x",
        r1 / 1024,
        r10 / 1024,
        r10 as f64 / r1 as f64
    );
}
