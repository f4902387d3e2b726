//! N shard processes on this machine against one process over the same bucket: wall time,
//! total CPU, and each process's peak RSS, then the merge. Nothing is asserted.
//!
//! `cargo bench --bench shards` simulates a folder bucket of several locations and days
//! (`TRAILPROOF_BENCH_ACCOUNTS`, default 8, × 2 regions × `TRAILPROOF_BENCH_DAYS`, default 3, with
//! 6 logs an hour), verifies it whole, then as 2 and 4 shards run at once (each planned with
//! `trailproof plan`), each followed by `trailproof merge`, and checks that the merged verdict
//! is the whole run's.

use std::process::{Command, Stdio};
use std::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_trailproof");

/// A process's wall time, CPU time and peak RSS.
struct Usage {
    code: i32,
    cpu: f64,
    rss_mib: f64,
}

/// Starts `args`; `finish` waits for it (by wait4, for its own usage) and says what it used.
#[allow(clippy::zombie_processes)]
fn start(args: &[String]) -> u32 {
    let child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("trailproof starts");
    child.id()
}

fn finish(pid: u32) -> Usage {
    let mut status = 0;
    // SAFETY: wait4 writes only the zeroed rusage it is given, which lives on this frame; the
    // pid is a child of this process that nothing else waits for.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid as i32, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid as i32, "wait4");
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Usage {
        code: libc::WEXITSTATUS(status),
        cpu: secs(usage.ru_utime) + secs(usage.ru_stime),
        rss_mib: usage.ru_maxrss as f64 / 1024.0,
    }
}

/// Files under `dir`.
fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| {
                    let path = e.path();
                    if path.is_dir() {
                        walk(&path)
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

fn env_or(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let accounts = env_or("TRAILPROOF_BENCH_ACCOUNTS", 8);
    let days = env_or("TRAILPROOF_BENCH_DAYS", 3);
    let key = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/keys/TEST-ONLY-signing-key.pem"
    );
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("bucket");
    let keys = dir.path().join("keys.json");
    // Simulated by the binary: a child's peak RSS counts what it inherits until it execs, so
    // this process stays small.
    let mut args: Vec<String> = vec![
        "simulate".into(),
        root.display().to_string(),
        "--signing-key".into(),
        key.into(),
        "--public-keys-out".into(),
        keys.display().to_string(),
        "--source-region".into(),
        "us-east-1".into(),
        "--source-region".into(),
        "eu-west-1".into(),
        "--hours".into(),
        (days * 24).to_string(),
        "--logs-per-hour".into(),
        "6".into(),
        "--log-bytes".into(),
        "20000".into(),
    ];
    for i in 0..accounts {
        args.push("--account".into());
        args.push(format!("{:012}", 100_000_000_000u64 + i as u64));
    }
    assert_eq!(finish(start(&args)).code, 0, "simulate");
    let objects = walk(&root);
    let source = root.display().to_string();
    let keys = keys.display().to_string();
    println!("bucket: {objects} files (objects and their metadata), {accounts} accounts × 2 regions × {days} days");
    let verify = |more: &[String]| -> Vec<String> {
        let mut args: Vec<String> = ["verify", &source, "--public-keys", &keys, "-q"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend_from_slice(more);
        args
    };
    let t = Instant::now();
    let whole = finish(start(&verify(&[])));
    let whole_wall = t.elapsed().as_secs_f64();
    println!(
        "| processes | wall s | total CPU s | peak RSS MiB per process | exit |\n|---|---|---|---|---|\n| 1 (whole) | {whole_wall:.2} | {:.2} | {:.1} | {} |",
        whole.cpu, whole.rss_mib, whole.code
    );
    for n in [2u32, 4] {
        let out = dir.path().join(format!("n{n}"));
        std::fs::create_dir_all(&out).unwrap();
        let plan = out.join("plan.json").display().to_string();
        let planned = finish(start(&[
            "plan".into(),
            source.clone(),
            "--shards".into(),
            n.to_string(),
            "--out".into(),
            plan.clone(),
        ]));
        assert_eq!(planned.code, 0, "plan");
        let reports = format!("{}/reports/", out.display());
        let t = Instant::now();
        let pids: Vec<u32> = (1..=n)
            .map(|k| {
                start(&verify(&[
                    "--plan".into(),
                    plan.clone(),
                    "--shard".into(),
                    format!("{k}/{n}"),
                    "--report".into(),
                    format!("json={reports}"),
                ]))
            })
            .collect();
        let shards: Vec<Usage> = pids.into_iter().map(finish).collect();
        let wall = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let merged = finish(start(&["merge".to_string(), reports.clone()]));
        let merge_wall = t.elapsed().as_secs_f64();
        let cpu: f64 = shards.iter().map(|u| u.cpu).sum();
        let rss: Vec<String> = shards.iter().map(|u| format!("{:.1}", u.rss_mib)).collect();
        println!(
            "| {n} shards at once | {wall:.2} (+ merge {merge_wall:.2}) | {cpu:.2} (+ merge {:.2}) | {} (merge {:.1}) | {} |",
            merged.cpu,
            rss.join(" / "),
            merged.rss_mib,
            merged.code
        );
        assert_eq!(
            merged.code, whole.code,
            "the merge's verdict is the whole run's"
        );
    }
}
