//! Sharded runs: a bucket verified as N shards and merged gives exactly the report of one run,
//! also when the damage sits at the edge of a window of days; the merge refuses shards that
//! are not the N parts of one run; and a shard never runs over the whole bucket by mistake.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use chrono::{TimeZone, Utc};
use common::*;
use trailproof::finding::Kind;
use trailproof::layout::parse_digest_key;
use trailproof::report::exit;
use trailproof::simulate::{write_dir, Bucket, Spec};

/// A bucket whose first hour is 22:00, so that days (the windows' unit) begin inside it.
fn days_spec(hours: u32) -> Spec {
    Spec {
        bucket: "shard-bucket".into(),
        start: Utc.with_ymd_and_hms(2024, 1, 1, 22, 0, 0).unwrap(),
        hours,
        logs_per_hour: 2,
        log_bytes: 600,
        ..Spec::default()
    }
}

/// Simulates `spec`, lets `edit` damage the bucket, and writes it to a folder.
fn made(spec: Spec, edit: impl FnOnce(&mut Bucket)) -> (tempfile::TempDir, std::path::PathBuf) {
    let mut bucket = trailproof::simulate::simulate(&spec, signer()).unwrap();
    edit(&mut bucket);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mirror");
    write_dir(&bucket, &root).unwrap();
    (dir, root)
}

/// Regular digest keys of the bucket, oldest first.
fn digest_keys(bucket: &Bucket) -> Vec<String> {
    let mut keys: Vec<(chrono::DateTime<Utc>, String)> = bucket
        .objects
        .keys()
        .filter_map(|k| parse_digest_key(k).map(|n| (n.end, k.clone())))
        .collect();
    keys.sort();
    keys.into_iter().map(|(_, k)| k).collect()
}

/// Verifies `root` whole and as 2, 3, 4 and 7 planned shards, asserts the merges equal the
/// whole run, and returns the whole run's report.
fn same_when_sharded(root: &Path) -> trailproof::report::Report {
    let full = verify_dir(root, test_keys(), |_| {});
    for n in [2, 3, 4, 7] {
        let (merged, shards) = verify_sharded(root, &test_keys(), |_| {}, n, true);
        let windows: usize = shards
            .iter()
            .map(|s| s.shard.as_ref().unwrap().parts.len())
            .sum();
        assert!(
            windows >= 2,
            "{n} shards: the location was cut into windows"
        );
        assert_same_report(&full, &merged, &format!("{n} shards"));
    }
    full
}

#[test]
fn a_clean_bucket_of_many_days_merges_to_the_whole_run() {
    let (_dir, root) = made(days_spec(74), |_| {});
    let r = same_when_sharded(&root);
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert_eq!(r.exit_code, exit::VERIFIED);
    assert_eq!(r.scopes[0].digests.valid, 74);
    assert_eq!(r.scopes[0].logs.valid, 148);
}

#[test]
fn a_digest_deleted_as_the_first_of_a_window_is_missing_and_its_logs_are_its_evidence() {
    let mut gone = String::new();
    let (_dir, root) = made(days_spec(50), |b| {
        // The first digest of 2 January: its end is 00:00, the first of that day's folder.
        gone = digest_keys(b)
            .into_iter()
            .find(|k| k.contains("/2024/01/02/"))
            .unwrap();
        b.objects.remove(&gone);
    });
    let r = same_when_sharded(&root);
    let missing = finding_of(&r, Kind::DigestMissing);
    assert_eq!(missing.key.as_deref(), Some(gone.as_str()));
    assert_eq!(missing.logs.len(), 2, "{missing:#?}");
    assert!(r.findings.iter().all(|f| f.kind != Kind::LogUnlisted));
    assert_eq!(r.exit_code, exit::FINDINGS);
}

#[test]
fn the_last_digest_before_a_window_deleted_is_found_by_the_next_windows_first_link() {
    let mut gone = String::new();
    let (_dir, root) = made(days_spec(50), |b| {
        gone = digest_keys(b)
            .into_iter()
            .rfind(|k| k.contains("/2024/01/02/"))
            .unwrap();
        b.objects.remove(&gone);
    });
    let r = same_when_sharded(&root);
    assert_eq!(
        finding_of(&r, Kind::DigestMissing).key.as_deref(),
        Some(gone.as_str())
    );
    assert_eq!(r.exit_code, exit::FINDINGS);
}

#[test]
fn a_log_just_before_a_boundary_listed_by_the_first_digest_after_it_is_valid_not_unlisted() {
    let (_dir, root) = made(days_spec(50), |_| {});
    let r = same_when_sharded(&root);
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    // The digest ending at 00:00 on 2 January sits in that day's folder and lists logs of
    // 23:xx on 1 January, in the day before's.
    assert_eq!(r.scopes[0].logs.valid, 100);
    assert_eq!(r.scopes[0].logs.unlisted, 0);
}

#[test]
fn a_backfill_digest_listing_a_log_of_an_earlier_window_vouches_for_it() {
    let spec = Spec {
        backfill: true,
        ..days_spec(50)
    };
    let (_dir, root) = made(spec, |_| {});
    let r = same_when_sharded(&root);
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert_eq!(r.scopes[0].logs.unlisted, 0);
    assert_eq!(r.exit_code, exit::VERIFIED);
}

#[test]
fn a_chain_restart_exactly_at_a_boundary_is_the_same_restart() {
    let spec = Spec {
        // Hour 2 is 00:00–01:00 on 2 January: logging off then, a new chain after.
        restart_at: Some(2),
        ..days_spec(50)
    };
    let (_dir, root) = made(spec, |_| {});
    let r = same_when_sharded(&root);
    assert!(
        r.findings.iter().any(|f| f.kind == Kind::ChainRestart),
        "{:#?}",
        r.findings
    );
}

#[test]
fn unlisted_and_pending_logs_at_the_edges_are_judged_over_every_window() {
    let spec = Spec {
        tampers: vec![
            trailproof::simulate::Tamper::LogUnlisted,
            trailproof::simulate::Tamper::LogPending,
            trailproof::simulate::Tamper::NewestDigestsDeleted,
        ],
        ..days_spec(50)
    };
    let (_dir, root) = made(spec, |_| {});
    let r = same_when_sharded(&root);
    let kinds: Vec<Kind> = r.findings.iter().map(|f| f.kind).collect();
    assert!(kinds.contains(&Kind::LogUnlisted), "{kinds:?}");
    assert!(kinds.contains(&Kind::ChainTailGap), "{kinds:?}");
}

#[test]
fn one_location_of_many_days_over_4_shards_gives_no_shard_more_than_a_third() {
    let (_dir, root) = made(days_spec(24 * 28), |_| {});
    let (merged, shards) = verify_sharded(&root, &test_keys(), |_| {}, 4, true);
    let total = merged.scopes[0].digests.valid;
    assert_eq!(total, 24 * 28);
    for (i, shard) in shards.iter().enumerate() {
        let record = shard.shard.as_ref().unwrap();
        let read: usize = record
            .parts
            .iter()
            .map(|p| p.checks.len() - p.borrowed.len())
            .sum();
        assert!(read > 0, "shard {} verified nothing", i + 1);
        assert!(
            read * 3 <= total,
            "shard {} verified {read} of {total} digests",
            i + 1
        );
    }
}

// --- the binary: shards, plan, merge ---------------------------------------------------------

fn trailproof(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trailproof"))
        .args(args)
        .env_remove("JOB_COMPLETION_INDEX")
        .env_remove("AWS_BATCH_JOB_ARRAY_INDEX")
        .env_remove("AWS_BATCH_JOB_ARRAY_SIZE")
        .env_remove("CI_NODE_INDEX")
        .env_remove("CI_NODE_TOTAL")
        .output()
        .unwrap()
}

fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stderr: {}\nstdout: {}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn keys() -> String {
    fixture("keys/TEST-ONLY-public-key.pem")
        .display()
        .to_string()
}

/// A many-day bucket with a digest deleted, its plan for `n` shards, and each shard's report
/// written into `out` by the binary.
fn shards_by_binary(root: &Path, out: &Path, n: usize) -> String {
    let plan = out.join("plan.json");
    let source = root.display().to_string();
    let made = trailproof(&[
        "plan",
        &source,
        "--shards",
        &n.to_string(),
        "--out",
        plan.to_str().unwrap(),
    ]);
    assert_exit(&made, 0);
    let reports = format!("{}/reports/", out.display());
    for k in 1..=n {
        let shard = format!("{k}/{n}");
        let run = trailproof(&[
            "verify",
            &source,
            "--public-keys",
            &keys(),
            "--plan",
            plan.to_str().unwrap(),
            "--shard",
            &shard,
            "--report",
            &format!("json={reports}"),
            "-q",
        ]);
        assert!(
            matches!(run.status.code(), Some(0 | 1)),
            "shard {shard}: {}",
            stderr(&run)
        );
    }
    reports
}

fn damaged_days(dir: &Path) -> std::path::PathBuf {
    let mut bucket = trailproof::simulate::simulate(&days_spec(50), signer()).unwrap();
    let gone = digest_keys(&bucket)
        .into_iter()
        .find(|k| k.contains("/2024/01/02/"))
        .unwrap();
    bucket.objects.remove(&gone);
    let root = dir.join("mirror");
    write_dir(&bucket, &root).unwrap();
    root
}

#[test]
fn shards_merged_by_the_binary_give_the_whole_runs_report_and_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let root = damaged_days(dir.path());
    let whole = trailproof(&[
        "verify",
        root.to_str().unwrap(),
        "--public-keys",
        &keys(),
        "--format",
        "json",
    ]);
    assert_exit(&whole, 1);
    let reports = shards_by_binary(&root, dir.path(), 3);
    let names: Vec<String> = std::fs::read_dir(&reports)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.contains(&"shard-0003-of-0003.json".to_string()),
        "{names:?}"
    );
    let junit = dir.path().join("merged.xml");
    let merged = trailproof(&[
        "merge",
        &reports,
        "--format",
        "json",
        "--report",
        &format!("junit={}", junit.display()),
    ]);
    assert_exit(&merged, 1);
    let a: serde_json::Value = serde_json::from_slice(&whole.stdout).unwrap();
    let b: serde_json::Value = serde_json::from_slice(&merged.stdout).unwrap();
    for field in ["findings", "unverified", "scopes", "notes", "exit_code"] {
        assert_eq!(a[field], b[field], "{field}");
    }
    assert!(
        b.get("shard").is_none(),
        "the merged report is a run's, not a shard's"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("digest_missing"), "{xml}");
}

#[test]
fn merge_refuses_a_missing_shard_a_shard_given_twice_and_shards_of_another_source() {
    let dir = tempfile::tempdir().unwrap();
    let root = damaged_days(dir.path());
    let reports = shards_by_binary(&root, dir.path(), 3);
    let file = |k: usize| format!("{reports}shard-{k:04}-of-0003.json");
    let missing = trailproof(&["merge", &file(1), &file(3)]);
    assert_exit(&missing, 2);
    assert!(stderr(&missing).contains("2/3"), "{}", stderr(&missing));
    assert!(stderr(&missing).contains("missing"), "{}", stderr(&missing));
    let twice = trailproof(&["merge", &file(1), &file(2), &file(2), &file(3)]);
    assert_exit(&twice, 2);
    assert!(stderr(&twice).contains("given twice"), "{}", stderr(&twice));

    // The same shard of another bucket.
    let other = tempfile::tempdir().unwrap();
    let (_keep, other_root) = made(days_spec(50), |_| {});
    let other_reports = shards_by_binary(&other_root, other.path(), 3);
    let mixed = trailproof(&[
        "merge",
        &file(1),
        &file(2),
        &format!("{other_reports}shard-0003-of-0003.json"),
    ]);
    assert_exit(&mixed, 2);
    assert!(
        stderr(&mixed).contains("not shards of one run"),
        "{}",
        stderr(&mixed)
    );

    // A FIFO where a shard's report belongs is refused, never waited on.
    let fifo = tempfile::tempdir().unwrap();
    let planted = fifo.path().join("shard-0002-of-0003.json");
    let made = Command::new("mkfifo").arg(&planted).status().unwrap();
    assert!(made.success());
    let start = std::time::Instant::now();
    let blocked = trailproof(&["merge", &file(1), planted.to_str().unwrap(), &file(3)]);
    assert_exit(&blocked, 2);
    assert!(
        stderr(&blocked).contains("not a regular file"),
        "{}",
        stderr(&blocked)
    );
    assert!(start.elapsed() < std::time::Duration::from_secs(120));

    // A whole run's report is not a shard's.
    let whole = dir.path().join("whole.json");
    let run = trailproof(&[
        "verify",
        root.to_str().unwrap(),
        "--public-keys",
        &keys(),
        "--report",
        &format!("json={}", whole.display()),
        "-q",
    ]);
    assert_exit(&run, 1);
    let not_a_shard = trailproof(&["merge", whole.to_str().unwrap()]);
    assert_exit(&not_a_shard, 2);
    assert!(
        stderr(&not_a_shard).contains("not of a shard"),
        "{}",
        stderr(&not_a_shard)
    );
}

#[test]
fn a_shard_whose_engine_variable_is_not_set_refuses_to_run() {
    let dir = tempfile::tempdir().unwrap();
    let root = damaged_days(dir.path());
    let source = root.to_str().unwrap();
    let keys = keys();
    for (engine, more) in [
        ("kubernetes", vec!["--shard-total", "4"]),
        ("batch", vec!["--shard-total", "4"]),
        ("gitlab", vec![]),
    ] {
        let mut args = vec![
            "verify",
            source,
            "--public-keys",
            &keys,
            "--shard-env",
            engine,
        ];
        args.extend(more);
        let out = trailproof(&args);
        assert_exit(&out, 2);
        assert!(
            stderr(&out).contains("is not set"),
            "{engine}: {}",
            stderr(&out)
        );
    }
    // Set, as the engine sets it: the shard runs its part.
    let out = Command::new(env!("CARGO_BIN_EXE_trailproof"))
        .args(["verify", source, "--public-keys", &keys])
        .args([
            "--shard-env",
            "kubernetes",
            "--shard-total",
            "2",
            "--format",
            "json",
            "-q",
        ])
        .env("JOB_COMPLETION_INDEX", "1")
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["shard"]["shard"]["index"], 2, "{}", stderr(&out));
    assert_eq!(report["shard"]["shard"]["total"], 2);
}

#[test]
fn a_plan_for_another_source_or_shard_count_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = damaged_days(dir.path());
    let reports = shards_by_binary(&root, dir.path(), 3);
    assert!(Path::new(&reports).is_dir());
    let plan = dir.path().join("plan.json");
    let out = trailproof(&[
        "verify",
        root.to_str().unwrap(),
        "--public-keys",
        &keys(),
        "--plan",
        plan.to_str().unwrap(),
        "--shard",
        "1/4",
    ]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("3 shards"), "{}", stderr(&out));
    let (_keep, other) = made(days_spec(30), |_| {});
    let out = trailproof(&[
        "verify",
        other.to_str().unwrap(),
        "--public-keys",
        &keys(),
        "--plan",
        plan.to_str().unwrap(),
        "--shard",
        "1/3",
    ]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("is a plan for"), "{}", stderr(&out));
}
