//! Verifying straight from S3, against a real S3 server (s3s + s3s-fs on 127.0.0.1, SigV4
//! checked) that the tests start, with CloudTrail ListPublicKeys and STS answered beside it.
//! Faults are injected by the server; what the tool asked for is recorded and asserted.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use common::s3::{Faults, S3Server, CALLER_ARN, SESSION_TOKEN};
use common::*;
use trailproof::aws::{AwsOptions, Session};
use trailproof::finding::Kind;
use trailproof::hash::gzip;
use trailproof::keys::KeyRing;
use trailproof::report::{exit, Report};
use trailproof::simulate::{simulate, write_dir, AccountSpec, Bucket, Spec, Tamper};
use trailproof::verify::{self, Options};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

fn aws_options(server: &S3Server) -> AwsOptions {
    server.aws_options()
}

/// A server holding `bucket`, answering ListPublicKeys with the test key.
fn serve(dir: &Path, buckets: &[&Bucket]) -> S3Server {
    let server = S3Server::start(&dir.join("s3"));
    server.trust(signer());
    let rt = runtime();
    rt.block_on(async {
        let session = Session::connect(&aws_options(&server)).await.unwrap();
        for b in buckets {
            session.upload(&b.name, &b.objects, 16).await.unwrap();
        }
    });
    server.state.clear();
    server
}

/// Verifies `s3://bucket` in-process, fetching keys from the server's ListPublicKeys.
fn verify_s3(server: &S3Server, bucket: &str, end: chrono::DateTime<chrono::Utc>) -> Report {
    verify_s3_at(server, bucket, "", end)
}

/// Verifies `s3://bucket/prefix` in-process, likewise.
fn verify_s3_at(
    server: &S3Server,
    bucket: &str,
    prefix: &str,
    end: chrono::DateTime<chrono::Utc>,
) -> Report {
    verify_s3_with(server, bucket, prefix, end, |_| {})
}

/// Verifies `s3://bucket/prefix` in-process, likewise, with the options adjusted.
fn verify_s3_with(
    server: &S3Server,
    bucket: &str,
    prefix: &str,
    end: chrono::DateTime<chrono::Utc>,
    adjust: impl FnOnce(&mut Options),
) -> Report {
    runtime().block_on(async {
        let session = Session::connect(&aws_options(server)).await.unwrap();
        let store = session.s3_store(bucket, prefix).await.unwrap();
        let mut opts = Options {
            jobs: 16,
            ..options_at(end)
        };
        adjust(&mut opts);
        let plan = verify::plan(&store, &opts).await.unwrap();
        let mut keys = Vec::new();
        for (region, s, e) in plan.key_ranges(&opts) {
            keys.extend(session.fetch_keys(&region, s, e).await.unwrap());
        }
        verify::execute(&store, plan, Arc::new(KeyRing::new(keys)), opts).await
    })
}

fn unverified_keys(r: &Report) -> BTreeSet<String> {
    r.unverified.iter().map(|u| u.key.clone()).collect()
}

fn spec_for(bucket: &str, tampers: &[Tamper]) -> Spec {
    Spec {
        bucket: bucket.into(),
        tampers: tampers.to_vec(),
        ..small_spec()
    }
}

#[test]
fn every_scenario_gives_the_same_findings_from_s3_as_from_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    let mut cases: Vec<(String, Bucket)> = Vec::new();
    let mut all: Vec<Vec<Tamper>> = vec![vec![]];
    all.extend(
        Tamper::ALL
            .iter()
            .filter(|t| **t != Tamper::KeyExpired)
            .map(|t| vec![*t]),
    );
    // Fifty hours from 22:00, damaged around a midnight: verified day folder by day folder.
    all.push(vec![
        Tamper::DigestDeleted,
        Tamper::LogUnlisted,
        Tamper::LogModified,
    ]);
    let days = all.len() - 1;
    for (i, tampers) in all.iter().enumerate() {
        let name = format!("scenario-{i:02}");
        let mut spec = spec_for(&name, tampers);
        if i == days {
            spec.start = chrono::DateTime::from_timestamp(1_704_146_400, 0).unwrap();
            spec.hours = 50;
        }
        cases.push((name.clone(), simulate(&spec, signer()).unwrap()));
    }
    let server = serve(
        dir.path(),
        &cases.iter().map(|(_, b)| b).collect::<Vec<_>>(),
    );
    for ((name, bucket), tampers) in cases.iter().zip(&all) {
        let mirror = dir.path().join(name);
        write_dir(bucket, &mirror).unwrap();
        let offline = verify_dir(&mirror, test_keys(), |_| {});
        let online = verify_s3(&server, name, bucket.as_of);
        assert_eq!(pairs(&online), pairs(&offline), "{tampers:?}");
        assert_eq!(
            unverified_keys(&online),
            unverified_keys(&offline),
            "{tampers:?}"
        );
        assert_eq!(online.exit_code, offline.exit_code, "{tampers:?}");
        // Damage that only expected coverage can see (a whole region gone, in a bucket of one
        // region), and harmless artefacts, do not fail a run on their own.
        match tampers.as_slice() {
            [] | [Tamper::LogPending] | [Tamper::FolderMarkers] => {
                assert_eq!(online.exit_code, exit::VERIFIED, "{tampers:?}")
            }
            [Tamper::RegionDeleted] => assert_eq!(online.exit_code, exit::INCOMPLETE),
            _ => assert_eq!(online.exit_code, exit::FINDINGS, "{tampers:?}"),
        }
    }
    // Only reads, and keys asked for the region and hours in question.
    let requests = server.state.requests();
    for r in &requests {
        let allowed = matches!(r.method.as_str(), "GET" | "HEAD")
            || r.action.as_deref() == Some("CloudTrail_20131101.ListPublicKeys");
        assert!(allowed, "a call that is not a read: {r:?}");
    }
    // Each folder listed once per run, though `AWSLogs/` is listed before the root says it
    // is there.
    let mut listed = BTreeSet::new();
    for r in requests.iter().filter(|r| r.query.contains("list-type=2")) {
        assert!(
            listed.insert((r.path.clone(), r.query.clone())),
            "listed twice: {r:?}"
        );
    }
    assert!(listed
        .iter()
        .any(|(_, q)| q.contains("prefix=AWSLogs%2F&") || q.ends_with("prefix=AWSLogs%2F")));
    let key_calls: Vec<_> = requests.iter().filter(|r| r.action.is_some()).collect();
    assert!(!key_calls.is_empty());
    for call in key_calls {
        assert_eq!(call.region.as_deref(), Some("us-east-1"));
        let body: serde_json::Value = serde_json::from_str(&call.body).unwrap();
        let (start, end) = (
            body["StartTime"].as_f64().unwrap(),
            body["EndTime"].as_f64().unwrap(),
        );
        // The digests span 2024-01-01T00:00Z .. 06:01Z; the range asked covers them, widened
        // by 2 h at the end (and the start).
        assert!(
            start <= 1_704_067_200.0 && end >= 1_704_088_800.0 + 7200.0,
            "{start} {end}"
        );
    }
}

#[test]
fn a_prefix_source_verifies_the_trails_below_it_and_lists_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let mut bucket = simulate(
        &Spec {
            bucket: "shared-bucket".into(),
            accounts: vec![
                "111111111111".parse().unwrap(),
                "org-logs/222222222222".parse().unwrap(),
            ],
            ..small_spec()
        },
        signer(),
    )
    .unwrap();
    // Damage outside the prefix: a run of the whole bucket sees it, a run of the prefix must not
    // look there at all.
    let outside = bucket
        .objects
        .keys()
        .find(|k| k.starts_with("AWSLogs/111111111111/CloudTrail/"))
        .unwrap()
        .clone();
    bucket.objects.get_mut(&outside).unwrap().bytes = gzip(b"{\"Records\":[]}");
    let server = serve(dir.path(), &[&bucket]);
    let whole = verify_s3(&server, "shared-bucket", bucket.as_of);
    assert_eq!(pairs(&whole), set([pair(Kind::LogModified, &outside)]));

    server.state.clear();
    let below = verify_s3_at(&server, "shared-bucket", "org-logs", bucket.as_of);
    assert_eq!(below.exit_code, exit::VERIFIED, "{:?}", below.findings);
    assert!(below.findings.is_empty() && below.unverified.is_empty());
    let scopes: Vec<(&str, &str)> = below
        .scopes
        .iter()
        .map(|s| (s.prefix.as_str(), s.account.as_str()))
        .collect();
    assert_eq!(scopes, vec![("org-logs", "222222222222")]);
    assert!(below.scopes[0].logs.valid > 0);
    for r in server.state.requests() {
        if r.query.contains("list-type=2") {
            assert!(
                r.query.contains("prefix=org-logs%2F"),
                "listed outside: {r:?}"
            );
        } else if r.method == "GET" {
            assert!(
                r.path.starts_with("/shared-bucket/org-logs/"),
                "read outside: {r:?}"
            );
        }
    }
}

#[test]
fn a_bucket_in_another_region_is_read_there_after_one_redirected_listing() {
    let dir = tempfile::tempdir().unwrap();
    let s = make(spec_for("far-bucket", &[Tamper::LogModified]));
    let server = serve(dir.path(), &[&s.bucket]);
    server.state.set_faults(Faults {
        bucket_region: Some("eu-west-1".into()),
        ..Faults::default()
    });
    let report = verify_s3(&server, "far-bucket", s.bucket.as_of);
    let offline = verify_dir(&s.root, test_keys(), |_| {});
    assert_eq!(pairs(&report), pairs(&offline));
    assert_eq!(
        report.findings.iter().map(|f| f.kind).collect::<Vec<_>>(),
        vec![Kind::LogModified]
    );
    assert!(report.unverified.is_empty(), "{:?}", report.unverified);
    assert_eq!(report.exit_code, exit::FINDINGS);
    // The session's region (us-east-1) served only the first listings, made while the
    // bucket's region was asked; everything else went to eu-west-1.
    let requests = server.state.requests();
    let s3 = |r: &&common::s3::Recorded| r.action.is_none();
    let misdirected: Vec<_> = requests
        .iter()
        .filter(s3)
        .filter(|r| r.region.as_deref() != Some("eu-west-1"))
        .collect();
    assert!(
        misdirected.len() <= 3
            && misdirected
                .iter()
                .all(|r| r.method == "HEAD" || r.query.contains("list-type=2")),
        "{misdirected:?}"
    );
    assert!(requests
        .iter()
        .filter(s3)
        .any(|r| r.region.as_deref() == Some("eu-west-1") && r.path.contains("/CloudTrail/")));
}

#[test]
fn denied_objects_are_unverified_never_missing() {
    let dir = tempfile::tempdir().unwrap();
    let s = make(spec_for("denied-bucket", &[]));
    let server = serve(dir.path(), &[&s.bucket]);
    let log = s.logs(2)[0].clone();
    let digest = s.digests()[4].clone();
    server.state.set_faults(Faults {
        deny_get: vec![
            log.rsplit('/').next().unwrap().into(),
            digest.rsplit('/').next().unwrap().into(),
        ],
        ..Faults::default()
    });
    let r = verify_s3(&server, "denied-bucket", s.bucket.as_of);
    assert!(
        r.findings
            .iter()
            .all(|f| !matches!(f.kind, Kind::LogMissing | Kind::DigestMissing)),
        "{:#?}",
        r.findings
    );
    assert!(
        r.findings
            .iter()
            .all(|f| f.severity != trailproof::finding::Severity::Error),
        "{:#?}",
        r.findings
    );
    let u: Vec<_> = r
        .unverified
        .iter()
        .filter(|u| u.key == log || u.key == digest)
        .collect();
    assert_eq!(u.len(), 2, "{:#?}", r.unverified);
    for u in u {
        // The call, the endpoint, the status and code, and the hint that applies to a GET.
        assert!(
            u.cause.contains("S3 GetObject at ")
                && u.cause.contains(&server.endpoint)
                && u.cause.contains("HTTP 403 AccessDenied")
                && u.cause.contains("s3:ListBucket"),
            "{}",
            u.cause
        );
    }
    // The logs of the unreadable digest's hour are unverified too, not unlisted.
    for log in s.logs(4) {
        assert!(r.unverified.iter().any(|u| u.key == log), "{log}");
    }
    assert_eq!(r.exit_code, exit::INCOMPLETE);
}

#[test]
fn throttling_resets_and_truncated_bodies_are_retried_to_the_clean_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let s = make(spec_for("flaky-bucket", &[Tamper::LogModified]));
    let server = serve(dir.path(), &[&s.bucket]);
    let calm = verify_s3(&server, "flaky-bucket", s.bucket.as_of);
    server.state.set_faults(Faults {
        slow_down_every: 7,
        reset_every: 11,
        truncate_every: 5,
        ..Faults::default()
    });
    let flaky = verify_s3(&server, "flaky-bucket", s.bucket.as_of);
    assert_eq!(pairs(&flaky), pairs(&calm));
    assert!(flaky.unverified.is_empty(), "{:#?}", flaky.unverified);
    assert_eq!(pairs(&flaky), set([pair(Kind::LogModified, &s.logs(3)[0])]));
    let requests = server.state.requests();
    assert!(
        requests.len() > 50,
        "faults were injected into {} requests",
        requests.len()
    );
}

#[test]
fn logs_bigger_than_one_hand_off_are_hashed_whole_even_when_their_bodies_break_off() {
    let dir = tempfile::tempdir().unwrap();
    let spec = Spec {
        hours: 4,
        logs_per_hour: 2,
        log_bytes: 8_000_000,
        ..spec_for("big-bucket", &[Tamper::LogModified])
    };
    let s = make(spec);
    // Stored bigger than the 256 KiB handed to the CPU pool at a time.
    let big = s
        .bucket
        .objects
        .iter()
        .filter(|(k, o)| k.contains("/CloudTrail/") && o.bytes.len() > 256 * 1024)
        .count();
    assert!(big >= 2, "only {big} logs span several hand-offs");
    let server = serve(dir.path(), &[&s.bucket]);
    let expected = set([pair(Kind::LogModified, &s.logs(2)[0])]);
    let calm = verify_s3(&server, "big-bucket", s.bucket.as_of);
    assert_eq!(pairs(&calm), expected);
    assert_eq!(calm.scopes[0].logs.valid, 7);
    server.state.set_faults(Faults {
        truncate_every: 2,
        ..Faults::default()
    });
    let flaky = verify_s3(&server, "big-bucket", s.bucket.as_of);
    assert_eq!(pairs(&flaky), expected);
    assert!(flaky.unverified.is_empty(), "{:#?}", flaky.unverified);
    assert_eq!(flaky.scopes[0].logs.valid, 7);
    assert_eq!(flaky.exit_code, exit::FINDINGS);
}

#[test]
fn a_denied_scope_listing_leaves_the_other_scopes_verified() {
    let dir = tempfile::tempdir().unwrap();
    let spec = Spec {
        accounts: vec![
            "111111111111".parse::<AccountSpec>().unwrap(),
            "222222222222".parse().unwrap(),
        ],
        ..spec_for("scoped-bucket", &[])
    };
    let s = make(spec);
    let server = serve(dir.path(), &[&s.bucket]);
    server.state.set_faults(Faults {
        deny_list: vec!["AWSLogs/222222222222/".into()],
        ..Faults::default()
    });
    let r = verify_s3(&server, "scoped-bucket", s.bucket.as_of);
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert_eq!(r.scopes.len(), 1);
    assert_eq!(r.scopes[0].account, "111111111111");
    assert_eq!(r.scopes[0].digests.valid, 6);
    assert!(
        r.unverified
            .iter()
            .any(|u| u.key.starts_with("AWSLogs/222222222222/")
            && u.cause.contains("S3 ListObjectsV2 at ")
            && u.cause.contains("HTTP 403 AccessDenied")
            // The ListBucket hint is for GETs of objects, not for a refused listing.
            && !u.cause.contains("s3:ListBucket")),
        "{:#?}",
        r.unverified
    );
    assert_eq!(r.exit_code, exit::INCOMPLETE);
}

#[test]
fn a_day_of_digests_that_cannot_be_read_leaves_its_logs_unverified_never_unlisted() {
    let dir = tempfile::tempdir().unwrap();
    let s = make(Spec {
        start: chrono::DateTime::from_timestamp(1_704_146_400, 0).unwrap(), // 2024-01-01T22:00Z
        hours: 50,
        ..spec_for("dark-day-bucket", &[])
    });
    let server = serve(dir.path(), &[&s.bucket]);
    let d = s.digests();
    // A day folder (denied when its date is read) and a month folder (denied while the date
    // folders are discovered).
    for (dark, digests) in [
        ("CloudTrail-Digest/us-east-1/2024/01/02/", 24),
        ("CloudTrail-Digest/us-east-1/2024/01/", 50),
    ] {
        server.state.set_faults(Faults {
            deny_list: vec![dark.into()],
            deny_get: vec![dark.into()],
            ..Faults::default()
        });
        let r = verify_s3(&server, "dark-day-bucket", s.bucket.as_of);
        assert!(r.findings.is_empty(), "{dark}: {:#?}", r.findings);
        let unverified = unverified_keys(&r);
        let hidden: Vec<usize> = (0..d.len()).filter(|&i| d[i].contains(dark)).collect();
        assert_eq!(hidden.len(), digests);
        for &i in &hidden {
            for log in s.logs(i) {
                assert!(unverified.contains(&log), "{dark}: {log} is not unverified");
            }
        }
        assert!(
            unverified.iter().any(|k| k.ends_with(dark)),
            "{unverified:#?}"
        );
        assert_eq!(r.exit_code, exit::INCOMPLETE, "{dark}");
    }
}

#[test]
fn archived_logs_are_unverified_from_the_listing_without_a_get() {
    let dir = tempfile::tempdir().unwrap();
    let s = make(spec_for("archive-bucket", &[]));
    let server = serve(dir.path(), &[&s.bucket]);
    let log = s.logs(1)[1].clone();
    let name = log.rsplit('/').next().unwrap().to_string();
    server.state.set_faults(Faults {
        glacier: vec![name.clone()],
        ..Faults::default()
    });
    let r = verify_s3(&server, "archive-bucket", s.bucket.as_of);
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert_eq!(r.unverified.len(), 1);
    assert_eq!(r.unverified[0].key, log);
    assert!(r.unverified[0].cause.contains("GLACIER"));
    let gets: Vec<_> = server
        .state
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.contains(&name))
        .collect();
    assert!(gets.is_empty(), "{gets:?}");
    assert_eq!(r.exit_code, exit::INCOMPLETE);
}

// --- the binary against the server ---------------------------------------------------------

/// The binary with `args`, S3 at the server by `--endpoint-url` and CloudTrail and STS at its
/// services endpoint by their environment variables, as a user would set them.
fn cli(server: &S3Server, args: &[&str]) -> std::process::Output {
    bare_cli(server, args)
        .args(["--endpoint-url", &server.endpoint])
        .output()
        .unwrap()
}

/// The binary with `args` in a clean environment: the server's endpoints and test credentials,
/// no shared config files, no instance metadata.
fn bare_cli(server: &S3Server, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trailproof"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", "/nonexistent")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(server.env());
    cmd
}

/// Fails with what the run wrote if it did not exit with `code`.
fn assert_exit(out: &std::process::Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stderr: {}\nstdout: {}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
}

/// `trailproof acquire s3://BUCKET COPY --end END` against the test server.
fn acquire(server: &S3Server, bucket: &str, copy: &Path, end: &str) -> std::process::Output {
    acquire_with(server, bucket, copy, end, &[])
}

fn acquire_with(
    server: &S3Server,
    bucket: &str,
    copy: &Path,
    end: &str,
    more: &[&str],
) -> std::process::Output {
    let source = format!("s3://{bucket}");
    let mut args = vec!["acquire", &source, copy.to_str().unwrap(), "--end", end];
    args.extend_from_slice(more);
    cli(server, &args)
}

/// Verifies a copy with no network at all: every endpoint and proxy points at a closed port.
fn verify_offline(copy: &Path, more: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_trailproof"))
        .args(["verify", copy.to_str().unwrap(), "--format", "json"])
        .args(more)
        .env_clear()
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .output()
        .unwrap()
}

fn custody_key() -> String {
    fixture("keys/TEST-ONLY-custody-key.pem")
        .to_string_lossy()
        .into_owned()
}

fn custody_public_key() -> String {
    fixture("keys/TEST-ONLY-custody-public-key.pem")
        .to_string_lossy()
        .into_owned()
}

#[test]
fn the_auditor_role_is_assumed_with_its_external_id_and_used_for_every_read() {
    let dir = tempfile::tempdir().unwrap();
    let s = make(spec_for("client-archive", &[Tamper::DigestDeleted]));
    let server = serve(dir.path(), &[&s.bucket]);
    let out = cli(
        &server,
        &[
            "verify",
            "s3://client-archive",
            "--format",
            "json",
            "--role-arn",
            "arn:aws:iam::111122223333:role/LogReader",
            "--external-id",
            "audit-7f3c",
            "--role-session-name",
            "audit-2024",
            "--end",
            "2024-01-01T07:00:00Z",
        ],
    );
    assert_exit(&out, 1);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["kind"] == "digest_missing"));
    let requests = server.state.requests();
    let assume = requests
        .iter()
        .find(|r| r.action.as_deref() == Some("AssumeRole"))
        .expect("AssumeRole");
    assert!(
        assume.body.contains("ExternalId=audit-7f3c"),
        "{}",
        assume.body
    );
    assert!(
        assume
            .body
            .contains("RoleArn=arn%3Aaws%3Aiam%3A%3A111122223333%3Arole%2FLogReader"),
        "{}",
        assume.body
    );
    assert!(
        assume.body.contains("RoleSessionName=audit-2024"),
        "{}",
        assume.body
    );
    let reads: Vec<_> = requests.iter().filter(|r| r.action.is_none()).collect();
    assert!(!reads.is_empty());
    for r in reads {
        assert_eq!(r.security_token.as_deref(), Some(SESSION_TOKEN), "{r:?}");
        assert!(matches!(r.method.as_str(), "GET" | "HEAD"), "{r:?}");
    }
}

#[test]
fn keys_that_cannot_be_fetched_end_the_run_with_the_cause_and_no_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let s = make(spec_for("no-keys", &[Tamper::LogModified]));
    let server = serve(dir.path(), &[&s.bucket]);
    server.state.set_faults(Faults {
        deny_keys: true,
        ..Faults::default()
    });
    let out = cli(
        &server,
        &[
            "verify",
            "s3://no-keys",
            "--format",
            "json",
            "--end",
            "2024-01-01T07:00:00Z",
        ],
    );
    // Listing and reading start while the keys are fetched; the failed fetch still decides.
    assert_eq!(out.status.code(), Some(exit::INCOMPLETE));
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not allowed to list public keys") && stderr.contains("--public-keys"),
        "{stderr}"
    );
    let requests = server.state.requests();
    assert!(requests
        .iter()
        .any(|r| r.action.as_deref() == Some("CloudTrail_20131101.ListPublicKeys")));
}

#[test]
fn keys_fetch_saves_keys_that_verify_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let s = make(spec_for("keys-bucket", &[]));
    let server = serve(dir.path(), &[&s.bucket]);
    let out = cli(
        &server,
        &[
            "keys",
            "fetch",
            "--source-region",
            "us-east-1",
            "--source-region",
            "eu-west-1",
            "--start",
            "2024-01-01",
        ],
    );
    assert_exit(&out, 0);
    let saved: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = saved["PublicKeyList"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["Region"], "us-east-1");
    assert_eq!(list[1]["Region"], "eu-west-1");
    let file = dir.path().join("keys.json");
    std::fs::write(&file, &out.stdout).unwrap();
    let out = cli(
        &server,
        &[
            "verify",
            "s3://keys-bucket",
            "--public-keys",
            file.to_str().unwrap(),
            "--end",
            "2024-01-01T07:00:00Z",
        ],
    );
    assert_exit(&out, 0);
    // Keys given: no ListPublicKeys call was made by verify.
    let calls = server
        .state
        .requests()
        .iter()
        .filter(|r| r.action.is_some())
        .count();
    assert_eq!(calls, 2, "only the two keys fetch calls");
}

#[test]
fn simulate_uploads_a_bucket_that_verify_reads_with_the_same_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let server = S3Server::start(&dir.path().join("s3"));
    let key = fixture("keys/TEST-ONLY-signing-key.pem");
    let keys_out = dir.path().join("sim-keys.json");
    let out = cli(
        &server,
        &[
            "simulate",
            "s3://drill-bucket/org-logs",
            "--signing-key",
            key.to_str().unwrap(),
            "--tamper",
            "log-truncated",
            "--public-keys-out",
            keys_out.to_str().unwrap(),
        ],
    );
    assert_exit(&out, 0);
    let out = cli(
        &server,
        &[
            "verify",
            "s3://drill-bucket/org-logs",
            "--public-keys",
            keys_out.to_str().unwrap(),
            "--end",
            "2024-01-01T07:00:00Z",
            "--format",
            "json",
        ],
    );
    assert_exit(&out, 1);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kinds: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["log_corrupt"]);
    assert_eq!(report["scopes"][0]["prefix"], "org-logs");
    assert_eq!(report["source"], "s3://drill-bucket/org-logs/");
}

#[test]
fn acquire_then_verify_offline_gives_the_online_findings_with_no_network() {
    let dir = tempfile::tempdir().unwrap();
    let s = make(spec_for(
        "evidence-bucket",
        &[
            Tamper::TwoDigestsDeleted,
            Tamper::LogModified,
            Tamper::LogUnlisted,
        ],
    ));
    let server = serve(dir.path(), &[&s.bucket]);
    let denied = s.logs(1)[0].clone();
    server.state.set_faults(Faults {
        deny_get: vec![denied.rsplit('/').next().unwrap().into()],
        slow_down_every: 9,
        ..Faults::default()
    });
    let end = "2024-01-01T07:00:00Z";
    let online = cli(
        &server,
        &[
            "verify",
            "s3://evidence-bucket",
            "--end",
            end,
            "--format",
            "json",
        ],
    );
    let copy = dir.path().join("evidence");
    let sign = custody_key();
    let out = acquire_with(
        &server,
        "evidence-bucket",
        &copy,
        end,
        &["--sign-key", &sign],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "one object could not be copied: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains(&denied));

    // Offline, with no keys given: the copy's keys are trusted through its custody signature.
    let public = custody_public_key();
    let offline = verify_offline(&copy, &["--custody-key", &public]);
    let parse = |o: &std::process::Output| -> serde_json::Value {
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let (on, off) = (parse(&online), parse(&offline));
    assert_eq!(online.status.code(), Some(1));
    assert_eq!(
        offline.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&offline.stderr)
    );
    assert_eq!(json_pairs(&on), json_pairs(&off));
    let unverified = |r: &serde_json::Value| -> Vec<String> {
        r["unverified"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["key"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(unverified(&on), unverified(&off));
    assert!(unverified(&off).contains(&denied));
    assert_eq!(off["range"]["end"], end);
    assert_eq!(off["bucket"], "evidence-bucket");
    let origin = off["keys"][0]["origin"].as_str().unwrap();
    assert!(origin.contains("trailproof-keys.json"), "{origin}");
    assert!(origin.contains("custody signature"), "{origin}");
    // The report carries the copy's provenance.
    assert_eq!(off["provenance"]["caller"], CALLER_ARN);
    assert_eq!(off["provenance"]["source"], "s3://evidence-bucket/");
    assert!(off["provenance"]["custody_key"].is_string());
    let manifest_bytes = std::fs::read(copy.join("trailproof-manifest.json")).unwrap();
    assert_eq!(
        off["provenance"]["manifest_sha256"],
        trailproof::hash::sha256_hex(&manifest_bytes)
    );

    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(copy.join("trailproof-manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["caller"], CALLER_ARN);
    assert_eq!(manifest["source"], "s3://evidence-bucket/");
    // The real clock, and the range apart from it.
    assert_eq!(manifest["range"]["end"], end);
    let started =
        trailproof::parse_rfc3339(manifest["acquisition"]["started_at"].as_str().unwrap()).unwrap();
    assert!(chrono::Utc::now() - started < chrono::Duration::minutes(10));
    let objects = manifest["objects"].as_array().unwrap();
    let added = s.added();
    assert!(
        objects.iter().any(|o| o["key"] == added[0].as_str()),
        "the unlisted log is copied too"
    );
    for o in objects {
        let key = o["key"].as_str().unwrap();
        let bytes = std::fs::read(copy.join(key)).unwrap();
        assert_eq!(o["sha256"], trailproof::hash::sha256_hex(&bytes));
        assert_eq!(o["size"], bytes.len());
        assert!(o["etag"].is_string());
    }
}

#[test]
fn an_interrupted_acquire_resumes_without_fetching_again_what_is_complete() {
    let dir = tempfile::tempdir().unwrap();
    let s = make(spec_for("resume-bucket", &[]));
    let server = serve(dir.path(), &[&s.bucket]);
    let copy = dir.path().join("evidence");
    let end = "2024-01-01T07:00:00Z";
    let out = acquire(&server, "resume-bucket", &copy, end);
    assert_exit(&out, 0);
    // Make it look interrupted: the journal holds what was done, the manifest is not written
    // yet, and two objects never arrived.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(copy.join("trailproof-manifest.json")).unwrap())
            .unwrap();
    let journal: String = manifest["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| format!("{o}\n"))
        .collect();
    std::fs::write(copy.join("trailproof-acquire.journal"), journal).unwrap();
    std::fs::remove_file(copy.join("trailproof-manifest.json")).unwrap();
    let lost = [s.logs(2)[0].clone(), s.digests()[3].clone()];
    for key in &lost {
        std::fs::remove_file(copy.join(key)).unwrap();
    }
    // A complete digest turned into a link to the same bytes outside the folder: not read
    // through the link, but fetched again.
    let linked = s.digests()[4].clone();
    let outside = dir.path().join("outside.json.gz");
    std::fs::rename(copy.join(&linked), &outside).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(&outside, copy.join(&linked)).unwrap();
    #[cfg(not(unix))]
    std::fs::copy(&outside, copy.join(&linked)).unwrap();
    server.state.clear();
    let out = acquire(&server, "resume-bucket", &copy, end);
    assert_exit(&out, 0);
    let fetched: BTreeSet<String> = server
        .state
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && !r.query.contains("list-type") && r.action.is_none())
        .map(|r| r.path.trim_start_matches("/resume-bucket/").to_string())
        .collect();
    let mut expected: BTreeSet<String> = lost.iter().cloned().collect();
    if cfg!(unix) {
        expected.insert(linked.clone());
        let file = std::fs::symlink_metadata(copy.join(&linked)).unwrap();
        assert!(file.file_type().is_file(), "{linked} is still a link");
    }
    assert_eq!(fetched, expected);
    assert!(copy.join("trailproof-manifest.json").exists());
    assert!(!copy.join("trailproof-acquire.journal").exists());
    let report = verify_dir(&copy, test_keys(), |_| {});
    assert_eq!(report.exit_code, exit::VERIFIED, "{:#?}", report.findings);
}

/// With one permit for the whole run, no location may wait for a permit while it holds one:
/// a run over several locations and days, over S3 with `--jobs 1`, finishes with the verdict of
/// a run with many.
#[test]
fn a_run_over_s3_with_one_permit_never_waits_on_a_permit_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = simulate(
        &Spec {
            bucket: "one-permit".into(),
            accounts: vec![
                "111111111111".parse().unwrap(),
                "222222222222".parse().unwrap(),
            ],
            regions: vec!["us-east-1".into(), "eu-west-1".into()],
            start: chrono::DateTime::from_timestamp(1_704_146_400, 0).unwrap(),
            hours: 30,
            logs_per_hour: 1,
            log_bytes: 300,
            ..Spec::default()
        },
        signer(),
    )
    .unwrap();
    let server = serve(dir.path(), &[&bucket]);
    let (tx, rx) = std::sync::mpsc::channel();
    let options = aws_options(&server);
    std::thread::spawn(move || {
        let report = runtime().block_on(async {
            let session = Session::connect(&options).await.unwrap();
            let store = session.s3_store("one-permit", "").await.unwrap();
            let opts = Options {
                jobs: 1,
                ..options_at(
                    chrono::DateTime::from_timestamp(1_704_146_400 + 31 * 3600, 0).unwrap(),
                )
            };
            verify::verify(&store, Arc::new(test_keys()), opts)
                .await
                .unwrap()
        });
        let _ = tx.send(report);
    });
    let report = rx
        .recv_timeout(std::time::Duration::from_secs(300))
        .expect("a run with --jobs 1 over S3 hangs");
    assert_eq!(report.exit_code, exit::VERIFIED, "{:#?}", report.findings);
    let valid: usize = report.scopes.iter().map(|s| s.digests.valid).sum();
    assert_eq!(valid, 4 * 30);
}

/// A copy's saved keys are evidence, not trust: without a reason to trust them the run stops
/// and says how to supply keys; on the copy's word they are used and the report says so; a key
/// planted in a signed copy, or a manifest edited after signing, breaks the custody signature.
#[test]
fn a_copys_own_keys_are_used_only_on_the_users_word_or_its_custody_signature() {
    let dir = tempfile::tempdir().unwrap();
    let s = make(spec_for("custody-bucket", &[]));
    let server = serve(dir.path(), &[&s.bucket]);
    let copy = dir.path().join("evidence");
    let end = "2024-01-01T07:00:00Z";
    let sign = custody_key();
    assert_exit(
        &acquire_with(
            &server,
            "custody-bucket",
            &copy,
            end,
            &["--sign-key", &sign],
        ),
        0,
    );

    let out = verify_offline(&copy, &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is evidence, not trust"), "{stderr}");
    assert!(stderr.contains("--custody-key"), "{stderr}");
    assert!(out.stdout.is_empty());

    let out = verify_offline(&copy, &["--trust-copy-keys"]);
    assert_exit(&out, 0);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let origin = report["keys"][0]["origin"].as_str().unwrap();
    assert!(origin.contains("not authenticated"), "{origin}");
    let notes = report["notes"].to_string();
    assert!(
        notes.contains("no custody signature authenticates"),
        "{notes}"
    );

    let public = custody_public_key();
    assert_exit(&verify_offline(&copy, &["--custody-key", &public]), 0);

    // Another key in the keys file, the signature left as it was.
    let planted = copy.join("trailproof-keys.json");
    let original = std::fs::read(&planted).unwrap();
    std::fs::write(
        &planted,
        std::fs::read(fixture("keys/TEST-ONLY-list-public-keys.json")).unwrap(),
    )
    .unwrap();
    let out = verify_offline(&copy, &["--custody-key", &public]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("custody signature does not verify"),
        "{stderr}"
    );
    assert!(stderr.contains("SHA-256"), "{stderr}");
    std::fs::write(&planted, original).unwrap();

    // The recorded range moved earlier after signing.
    let manifest_path = copy.join("trailproof-manifest.json");
    let manifest = std::fs::read_to_string(&manifest_path).unwrap();
    std::fs::write(
        &manifest_path,
        manifest.replace(end, "2024-01-01T03:00:00Z"),
    )
    .unwrap();
    let out = verify_offline(&copy, &["--custody-key", &public]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the manifest was changed"), "{stderr}");
}

/// Verifies `s3://bucket` on a SeaweedFS server with the test key, as of `end`.
fn verify_seaweed(
    server: &common::seaweed::Seaweed,
    bucket: &str,
    end: chrono::DateTime<chrono::Utc>,
) -> Report {
    runtime().block_on(async {
        let session = Session::connect(&server.aws_options()).await.unwrap();
        let store = session.s3_store(bucket, "").await.unwrap();
        let opts = Options {
            jobs: 16,
            ..options_at(end)
        };
        verify::verify(&store, Arc::new(test_keys()), opts)
            .await
            .unwrap()
    })
}

fn upload_to(server: &common::seaweed::Seaweed, bucket: &Bucket) {
    upload(&server.aws_options(), bucket);
}

/// Folder markers at every level of a trail's folders, as the S3 console's "Create folder" and
/// sync tools leave them (and as SeaweedFS lists them; s3s-fs does not keep such keys), are not
/// evidence: the verdict is the clean bucket's, with a note. A non-empty object whose key ends
/// in `/` is not a marker, and stays a finding.
#[test]
fn folder_markers_at_every_level_are_a_note_and_a_non_empty_one_a_finding() {
    let Some(server) = common::needs(
        common::seaweed::Seaweed::start(),
        "folder_markers_at_every_level_are_a_note_and_a_non_empty_one_a_finding",
    ) else {
        return;
    };
    let mut bucket = simulate(&spec_for("marker-bucket", &[]), signer()).unwrap();
    let mut markers = vec!["AWSLogs/".to_string(), "AWSLogs/111111111111/".to_string()];
    for tree in ["CloudTrail", "CloudTrail-Digest"] {
        for level in [
            "",
            "us-east-1/",
            "us-east-1/2024/",
            "us-east-1/2024/01/",
            "us-east-1/2024/01/01/",
        ] {
            markers.push(format!("AWSLogs/111111111111/{tree}/{level}"));
        }
    }
    for m in &markers {
        bucket.objects.insert(m.clone(), Default::default());
    }
    upload_to(&server, &bucket);
    let end = chrono::DateTime::parse_from_rfc3339("2024-01-01T07:00:00Z")
        .unwrap()
        .to_utc();
    let r = verify_seaweed(&server, "marker-bucket", end);
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert!(r.unverified.is_empty(), "{:#?}", r.unverified);
    assert_eq!(r.exit_code, exit::VERIFIED);
    assert!(
        r.notes.iter().any(|n| n.contains("folder marker(s)")),
        "{:#?}",
        r.notes
    );
}

/// A log moved one folder below its day folder (where CloudTrail writes no folder) is found and
/// reported, over S3 as from a folder; so is a digest moved likewise.
#[test]
fn objects_below_a_day_folder_are_findings_never_silence() {
    let dir = tempfile::tempdir().unwrap();
    let mut bucket = simulate(&spec_for("nested-bucket", &[]), signer()).unwrap();
    let day = "AWSLogs/111111111111/CloudTrail/us-east-1/2024/01/01/";
    let digest_day = "AWSLogs/111111111111/CloudTrail-Digest/us-east-1/2024/01/01/";
    let log = bucket
        .objects
        .keys()
        .find(|k| k.starts_with(day))
        .unwrap()
        .clone();
    let moved = format!("{day}old/{}", log.rsplit('/').next().unwrap());
    let object = bucket.objects[&log].clone();
    bucket.objects.insert(moved.clone(), object);
    let stray_digest = format!("{digest_day}x/y/copy.json.gz");
    bucket
        .objects
        .insert(stray_digest.clone(), Default::default());
    let server = serve(dir.path(), &[&bucket]);
    let end = chrono::DateTime::parse_from_rfc3339("2024-01-01T07:00:00Z")
        .unwrap()
        .to_utc();
    let r = verify_s3(&server, "nested-bucket", end);
    assert_eq!(
        pairs(&r),
        set([
            pair(Kind::LogUnlisted, &moved),
            pair(Kind::DigestMalformed, &stray_digest)
        ])
    );
    assert_eq!(r.exit_code, exit::FINDINGS);
    let offline = tempfile::tempdir().unwrap();
    write_dir(&bucket, &offline.path().join("m")).unwrap();
    let local = verify_dir(&offline.path().join("m"), test_keys(), |o| o.end = end);
    assert_eq!(pairs(&local), pairs(&r));
    assert_eq!(r.exit_code, exit::FINDINGS);
}

/// A third of all requests answered 503 SlowDown, on a clean bucket of some 500 objects: the
/// retries ride it out (the SDK's retry quota, drained by so many throttles, would otherwise stop
/// retrying and leave objects unverified).
#[test]
fn a_third_of_requests_throttled_still_verifies_a_clean_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = simulate(
        &Spec {
            bucket: "throttled".into(),
            accounts: vec![
                "111111111111".parse().unwrap(),
                "222222222222".parse().unwrap(),
            ],
            hours: 24,
            logs_per_hour: 10,
            log_bytes: 300,
            ..Spec::default()
        },
        signer(),
    )
    .unwrap();
    let server = serve(dir.path(), &[&bucket]);
    server.state.set_faults(Faults {
        slow_down_every: 3,
        ..Faults::default()
    });
    let r = verify_s3(&server, "throttled", bucket.as_of);
    assert!(
        r.unverified.is_empty(),
        "{:#?}",
        &r.unverified[..r.unverified.len().min(5)]
    );
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert_eq!(r.exit_code, exit::VERIFIED);
    let valid: usize = r.scopes.iter().map(|s| s.logs.valid).sum();
    assert_eq!(valid, 2 * 24 * 10);
}

/// One request in ten stalls for 5 s before S3 answers: the stalled requests are sent again
/// beside the first (hedged) and the run ends with the clean verdict, without waiting out every
/// stall in turn.
#[test]
fn stalled_requests_are_hedged_and_the_verdict_stays_clean() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = simulate(
        &Spec {
            bucket: "stalled".into(),
            hours: 12,
            logs_per_hour: 4,
            log_bytes: 300,
            ..Spec::default()
        },
        signer(),
    )
    .unwrap();
    let server = serve(dir.path(), &[&bucket]);
    server.state.set_faults(Faults {
        stall_every: 10,
        stall: std::time::Duration::from_secs(5),
        ..Faults::default()
    });
    let started = std::time::Instant::now();
    let (report, hedged) = runtime().block_on(async {
        let session = Session::connect(&aws_options(&server)).await.unwrap();
        let store = session.s3_store("stalled", "").await.unwrap();
        let opts = Options {
            jobs: 16,
            ..options_at(bucket.as_of)
        };
        let report = verify::verify(&store, Arc::new(test_keys()), opts)
            .await
            .unwrap();
        (report, store.hedged_requests())
    });
    let took = started.elapsed();
    assert_eq!(report.exit_code, exit::VERIFIED, "{:#?}", report.unverified);
    assert!(hedged > 0, "no request was hedged");
    // Hedges are never more than a fifth of the requests sent. A stalled request that is
    // dropped never reaches the server's record, so the requests sent are at most those
    // answered plus the hedges: hedges are at most a quarter of those answered.
    let answered = server.state.requests().len() as u64;
    assert!(
        hedged * 4 <= answered + 4,
        "{hedged} hedges for {answered} requests"
    );
    eprintln!("{hedged} hedged request(s); the run took {took:?}");
}

/// A copy that could save no public keys cannot be verified on its own: `acquire` exits 2 and
/// says why, in the manifest too. Given `--public-keys`, it saves those instead of fetching.
#[test]
fn acquire_without_keys_exits_2_and_the_manifest_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let s = make(spec_for("keyless-bucket", &[]));
    let server = serve(dir.path(), &[&s.bucket]);
    server.state.set_faults(Faults {
        deny_keys: true,
        ..Faults::default()
    });
    let end = "2024-01-01T07:00:00Z";
    let copy = dir.path().join("evidence");
    let out = acquire(&server, "keyless-bucket", &copy, end);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("public keys were not saved"), "{stderr}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(copy.join("trailproof-manifest.json")).unwrap())
            .unwrap();
    assert!(manifest["problems"][0]
        .as_str()
        .unwrap()
        .contains("public keys were not saved"));
    assert!(manifest.get("keys_file").is_none());

    let copy = dir.path().join("evidence-with-keys");
    let keys = fixture("keys/TEST-ONLY-list-public-keys.json");
    let out = acquire_with(
        &server,
        "keyless-bucket",
        &copy,
        end,
        &["--public-keys", keys.to_str().unwrap()],
    );
    assert_exit(&out, 0);
    assert_exit(&verify_offline(&copy, &["--trust-copy-keys"]), 0);
}

/// The equivalence suite over a second real server: every scenario uploaded to SeaweedFS (which
/// lists sibling folders in directory order and checks SigV4 its own way) gives the findings a
/// folder gives, with CloudTrail's keys fetched by ListPublicKeys from an endpoint of its own.
#[test]
fn every_scenario_gives_the_same_findings_from_seaweedfs_as_from_a_folder() {
    let Some(seaweed) = common::needs(
        common::seaweed::Seaweed::start(),
        "every_scenario_gives_the_same_findings_from_seaweedfs_as_from_a_folder",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // The test server here serves CloudTrail only: S3 is SeaweedFS.
    let cloudtrail = S3Server::start(&dir.path().join("unused-s3"));
    cloudtrail.trust(signer());
    let options = seaweed.aws_options_with(&cloudtrail.aws_endpoint);
    let mut all: Vec<Vec<Tamper>> = vec![vec![]];
    all.extend(
        Tamper::ALL
            .iter()
            .filter(|t| **t != Tamper::KeyExpired)
            .map(|t| vec![*t]),
    );
    let rt = runtime();
    for (i, tampers) in all.iter().enumerate() {
        let name = format!("weed-scenario-{i:02}");
        let bucket = simulate(&spec_for(&name, tampers), signer()).unwrap();
        let mirror = dir.path().join(&name);
        write_dir(&bucket, &mirror).unwrap();
        let offline = verify_dir(&mirror, test_keys(), |_| {});
        let online = rt.block_on(async {
            let session = Session::connect(&options).await.unwrap();
            session
                .upload(&bucket.name, &bucket.objects, 16)
                .await
                .unwrap();
            let store = session.s3_store(&name, "").await.unwrap();
            let keys = session
                .fetch_keys(
                    "us-east-1",
                    bucket.as_of - chrono::Duration::days(30),
                    bucket.as_of,
                )
                .await
                .unwrap();
            let opts = Options {
                jobs: 16,
                ..options_at(bucket.as_of)
            };
            verify::verify(&store, Arc::new(KeyRing::new(keys)), opts)
                .await
                .unwrap()
        });
        assert_eq!(pairs(&online), pairs(&offline), "{tampers:?}");
        assert_eq!(
            unverified_keys(&online),
            unverified_keys(&offline),
            "{tampers:?}"
        );
        assert_eq!(online.exit_code, offline.exit_code, "{tampers:?}");
    }
    let asked = cloudtrail.state.requests();
    assert!(asked
        .iter()
        .all(|r| r.services && r.action.as_deref() == Some("CloudTrail_20131101.ListPublicKeys")));
    assert_eq!(asked.len(), all.len());
}

#[test]
fn shards_over_s3_planned_and_merged_give_the_whole_runs_report() {
    let dir = tempfile::tempdir().unwrap();
    let mut bucket = simulate(
        &Spec {
            bucket: "sharded".into(),
            accounts: vec![
                "111111111111".parse::<AccountSpec>().unwrap(),
                "222222222222".parse::<AccountSpec>().unwrap(),
            ],
            start: chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2024, 1, 1, 22, 0, 0).unwrap(),
            hours: 50,
            logs_per_hour: 1,
            log_bytes: 600,
            tampers: vec![Tamper::LogModified, Tamper::LogUnlisted],
            ..Spec::default()
        },
        signer(),
    )
    .unwrap();
    // A digest deleted as the first of 2 January, where the plan may cut the days.
    let gone = bucket
        .objects
        .keys()
        .filter(|k| k.contains("CloudTrail-Digest/us-east-1/2024/01/02/"))
        .min()
        .cloned()
        .unwrap();
    bucket.objects.remove(&gone);
    let server = serve(dir.path(), &[&bucket]);
    let end = "2024-01-04T00:00:00Z";
    let whole = cli(
        &server,
        &["verify", "s3://sharded", "--end", end, "--format", "json"],
    );
    assert_exit(&whole, 1);
    for n in [1usize, 2, 3, 7] {
        let out = dir.path().join(format!("n{n}"));
        std::fs::create_dir_all(&out).unwrap();
        let plan = out.join("plan.json");
        let planned = cli(
            &server,
            &[
                "plan",
                "s3://sharded",
                "--end",
                end,
                "--shards",
                &n.to_string(),
            ],
        );
        assert_exit(&planned, 0);
        std::fs::write(&plan, &planned.stdout).unwrap();
        let reports = format!("{}/reports/", out.display());
        for k in 1..=n {
            let run = cli(
                &server,
                &[
                    "verify",
                    "s3://sharded",
                    "--plan",
                    plan.to_str().unwrap(),
                    "--shard",
                    &format!("{k}/{n}"),
                    "--report",
                    &format!("json={reports}"),
                    "-q",
                ],
            );
            assert!(
                matches!(run.status.code(), Some(0 | 1)),
                "{k}/{n}: {}",
                String::from_utf8_lossy(&run.stderr)
            );
        }
        let merged = Command::new(env!("CARGO_BIN_EXE_trailproof"))
            .args(["merge", &reports, "--format", "json"])
            .output()
            .unwrap();
        assert_exit(&merged, 1);
        let a: serde_json::Value = serde_json::from_slice(&whole.stdout).unwrap();
        let b: serde_json::Value = serde_json::from_slice(&merged.stdout).unwrap();
        for field in ["findings", "unverified", "scopes", "exit_code"] {
            assert_eq!(a[field], b[field], "{n} shards: {field}");
        }
        let kinds: BTreeSet<String> = b["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["kind"].as_str().unwrap().to_string())
            .collect();
        for kind in ["digest_missing", "log_modified", "log_unlisted"] {
            assert!(kinds.contains(kind), "{n} shards: {kinds:?}");
        }
    }
}

// --- S3 Inventory as the listing -------------------------------------------------------------

/// An S3 Inventory report of `bucket` as S3 writes it, made at `created`, listing the objects
/// `listed` keeps: `inv/<source>/daily/<YYYY-MM-DDTHH-MMZ>/manifest.json`, its checksum and one
/// gzipped CSV data file (keys URL-encoded, as S3 writes them).
fn inventory_of(
    bucket: &Bucket,
    created: chrono::DateTime<chrono::Utc>,
    listed: impl Fn(&str) -> bool,
) -> Bucket {
    use md5::{Digest, Md5};
    let mut csv = String::new();
    for (key, object) in &bucket.objects {
        if !listed(key) {
            continue;
        }
        let encoded: String = key
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let etag = hex::encode(Md5::digest(&object.bytes));
        csv.push_str(&format!(
            "\"{}\",\"{encoded}\",\"{}\",\"{etag}\",\"STANDARD\"\n",
            bucket.name,
            object.bytes.len()
        ));
    }
    let data = gzip(csv.as_bytes());
    let folder = created.format("%Y-%m-%dT%H-%MZ").to_string();
    let base = format!("{}/daily", bucket.name);
    let data_key = format!(
        "{base}/data/{}.csv.gz",
        hex::encode(&Md5::digest(&data)[..8])
    );
    let manifest = serde_json::json!({
        "sourceBucket": bucket.name,
        "destinationBucket": "arn:aws:s3:::inv",
        "version": "2016-11-30",
        "creationTimestamp": created.timestamp_millis().to_string(),
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, Size, ETag, StorageClass",
        "files": [{"key": data_key, "size": data.len(), "MD5checksum": hex::encode(Md5::digest(&data))}],
    });
    let manifest = serde_json::to_vec_pretty(&manifest).unwrap();
    let object = |bytes: Vec<u8>| trailproof::simulate::SimObject {
        bytes,
        metadata: Default::default(),
    };
    let mut objects = std::collections::BTreeMap::new();
    objects.insert(
        format!("{base}/{folder}/manifest.checksum"),
        object(hex::encode(Md5::digest(&manifest)).into_bytes()),
    );
    objects.insert(format!("{base}/{folder}/manifest.json"), object(manifest));
    objects.insert(data_key, object(data));
    Bucket {
        name: "inv".into(),
        objects,
        ..bucket.clone()
    }
}

fn inventory_bucket(tampers: Vec<Tamper>) -> Bucket {
    simulate(
        &Spec {
            bucket: "listed".into(),
            hours: 72,
            logs_per_hour: 2,
            log_bytes: 600,
            tampers,
            ..Spec::default()
        },
        signer(),
    )
    .unwrap()
}

fn day_listings(server: &S3Server) -> usize {
    server
        .state
        .requests()
        .iter()
        .filter(|r| {
            r.method == "GET" && r.path.starts_with("/listed") && r.query.contains("list-type=2")
        })
        .filter(|r| r.query.contains("%2F2024%2F01%2F0") || r.query.contains("/2024/01/0"))
        .count()
}

#[test]
fn an_s3_inventory_lists_the_days_it_covers_and_the_verdict_is_the_live_listings() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = inventory_bucket(vec![Tamper::LogUnlisted, Tamper::LogModified]);
    let created = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2024, 1, 5, 3, 0, 0).unwrap();
    let inventory = inventory_of(&bucket, created, |_| true);
    let server = serve(dir.path(), &[&bucket, &inventory]);
    let end = "2024-01-04T00:00:00Z";
    let live = cli(
        &server,
        &["verify", "s3://listed", "--end", end, "--format", "json"],
    );
    assert_exit(&live, 1);
    let live_listings = day_listings(&server);
    server.state.clear();
    let listed = cli(
        &server,
        &[
            "verify",
            "s3://listed",
            "--end",
            end,
            "--format",
            "json",
            "--listing",
            "inventory=s3://inv/listed/daily",
        ],
    );
    assert_exit(&listed, 1);
    let a: serde_json::Value = serde_json::from_slice(&live.stdout).unwrap();
    let b: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    for field in ["findings", "unverified", "scopes", "exit_code"] {
        assert_eq!(a[field], b[field], "{field}");
    }
    let kinds: Vec<&str> = b["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"log_unlisted") && kinds.contains(&"log_modified"),
        "{kinds:?}"
    );
    // Every day folder, to the 4 January one that holds the last digest, came from the
    // inventory: no day listing was sent.
    assert!(live_listings > 0);
    assert_eq!(
        day_listings(&server),
        0,
        "{:?}",
        server
            .state
            .requests()
            .iter()
            .map(|r| &r.query)
            .collect::<Vec<_>>()
    );
    let notes = b["notes"].to_string();
    assert!(
        notes.contains("s3://inv/listed/daily/2024-01-05T03-00Z/manifest.json"),
        "{notes}"
    );
}

#[test]
fn a_stale_inventory_leaves_the_later_days_to_the_live_listing_and_what_is_gone_is_not_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut bucket = inventory_bucket(vec![]);
    // Made on 3 January at 01:00: only 1 January is complete in it (2 January ended 01:00
    // before it, less than the delivery allowance).
    let created = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2024, 1, 3, 1, 0, 0).unwrap();
    // An object the inventory lists that is deleted since: an unlisted log, gone.
    let gone = "AWSLogs/111111111111/CloudTrail/us-east-1/2024/01/01/111111111111_CloudTrail_us-east-1_20240101T0105Z_gonegonegonegone.json.gz".to_string();
    bucket.objects.insert(
        gone.clone(),
        trailproof::simulate::SimObject {
            bytes: gzip(b"{}"),
            metadata: Default::default(),
        },
    );
    let inventory = inventory_of(&bucket, created, |_| true);
    bucket.objects.remove(&gone);
    // An unlisted log delivered on 3 January, after the inventory: found by the live listing.
    let late = "AWSLogs/111111111111/CloudTrail/us-east-1/2024/01/03/111111111111_CloudTrail_us-east-1_20240103T1005Z_latelatelatelate.json.gz".to_string();
    bucket.objects.insert(
        late.clone(),
        trailproof::simulate::SimObject {
            bytes: gzip(b"{}"),
            metadata: Default::default(),
        },
    );
    let server = serve(dir.path(), &[&bucket, &inventory]);
    let out = cli(
        &server,
        &[
            "verify",
            "s3://listed",
            "--end",
            "2024-01-04T00:00:00Z",
            "--format",
            "json",
            "--listing",
            "inventory=s3://inv/listed/daily",
        ],
    );
    assert_exit(&out, 1);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let unlisted: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "log_unlisted")
        .map(|f| f["key"].as_str().unwrap())
        .collect();
    assert_eq!(unlisted, [late.as_str()]);
    let notes = report["notes"].to_string();
    assert!(
        notes.contains("1 object(s) the S3 Inventory lists"),
        "{notes}"
    );
    assert!(notes.contains("made 2024-01-03T01:00:00Z"), "{notes}");
}

#[test]
fn an_inventory_that_fails_its_checksums_or_is_of_another_bucket_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = inventory_bucket(vec![]);
    let created = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2024, 1, 5, 0, 0, 0).unwrap();
    let good = inventory_of(&bucket, created, |_| true);
    let folder = "listed/daily/2024-01-05T00-00Z";
    let mut bad_checksum = good.clone();
    bad_checksum.name = "inv-checksum".into();
    bad_checksum
        .objects
        .get_mut(&format!("{folder}/manifest.checksum"))
        .unwrap()
        .bytes = b"00000000000000000000000000000000".to_vec();
    let mut bad_data = good.clone();
    bad_data.name = "inv-data".into();
    let data_key = bad_data
        .objects
        .keys()
        .find(|k| k.contains("/data/"))
        .cloned()
        .unwrap();
    bad_data.objects.get_mut(&data_key).unwrap().bytes =
        gzip(b"\"listed\",\"x\",\"1\",\"e\",\"STANDARD\"\n");
    let mut other = inventory_of(
        &Bucket {
            name: "someone-else".into(),
            ..bucket.clone()
        },
        created,
        |_| true,
    );
    other.name = "inv-other".into();
    let server = serve(dir.path(), &[&bucket, &bad_checksum, &bad_data, &other]);
    for (dest, path, says) in [
        ("inv-checksum", "listed/daily", "does not match"),
        ("inv-data", "listed/daily", "does not match the MD5"),
        ("inv-other", "someone-else/daily", "not of listed"),
    ] {
        let out = cli(
            &server,
            &[
                "verify",
                "s3://listed",
                "--end",
                "2024-01-04T00:00:00Z",
                "--listing",
                &format!("inventory=s3://{dest}/{path}"),
            ],
        );
        assert_exit(&out, 2);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{dest}: {stderr}");
        assert!(
            stderr.contains(&format!("s3://{dest}/")),
            "{dest}: {stderr}"
        );
    }
}

// --- object versions as evidence (SeaweedFS keeps versions; s3s-fs does not) -----------------

/// A versioned bucket on SeaweedFS holding `bucket`, then damaged by `damage` through the S3
/// API, as an adversary with write access would: overwrites and deletes leave versions.
fn versioned(
    server: &common::seaweed::Seaweed,
    bucket: &Bucket,
    versioning: bool,
    damage: impl AsyncFnOnce(&aws_sdk_s3::Client),
) {
    runtime().block_on(async {
        let session = Session::connect(&server.aws_options()).await.unwrap();
        let client = session.s3_client(None);
        client
            .create_bucket()
            .bucket(&bucket.name)
            .send()
            .await
            .unwrap();
        if versioning {
            client
                .put_bucket_versioning()
                .bucket(&bucket.name)
                .versioning_configuration(
                    aws_sdk_s3::types::VersioningConfiguration::builder()
                        .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                        .build(),
                )
                .send()
                .await
                .unwrap();
        }
        session
            .upload(&bucket.name, &bucket.objects, 16)
            .await
            .unwrap();
        damage(&client).await;
    })
}

fn verify_versions(server: &common::seaweed::Seaweed, bucket: &str, end: &str) -> Report {
    runtime().block_on(async {
        let session = Session::connect(&server.aws_options()).await.unwrap();
        let store = session.s3_store(bucket, "").await.unwrap();
        let end = chrono::DateTime::parse_from_rfc3339(end).unwrap().to_utc();
        let opts = Options {
            jobs: 16,
            ..options_at(end)
        };
        // The run's future is large (two verifications and the version checks): on the heap.
        Box::pin(trailproof::versions::verify_with_versions(
            store,
            Arc::new(test_keys()),
            opts,
        ))
        .await
        .unwrap()
        .0
    })
}

/// The binary with `args`, S3 at SeaweedFS (which serves S3 only: STS and CloudTrail are at a
/// closed port, so keys are given and the caller identity is not recorded).
fn seaweed_cli(server: &common::seaweed::Seaweed, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_trailproof"))
        .args(args)
        .args([
            "--public-keys",
            &fixture("keys/TEST-ONLY-public-key.pem")
                .display()
                .to_string(),
        ])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", "/nonexistent")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL_S3", &server.endpoint)
        .env("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9")
        .env("AWS_ENDPOINT_URL_CLOUDTRAIL", "http://127.0.0.1:9")
        .env("AWS_ACCESS_KEY_ID", common::seaweed::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", common::seaweed::SECRET_KEY)
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap()
}

async fn put(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    bytes: Vec<u8>,
    meta: &[(String, String)],
) {
    let mut request = client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(bytes.into());
    for (k, v) in meta {
        request = request.metadata(k, v);
    }
    request.send().await.unwrap();
}

#[test]
fn versions_recover_overwritten_and_deleted_logs_and_digests_and_see_rewrites() {
    let Some(server) = common::needs(
        common::seaweed::Seaweed::start(),
        "versions_recover_overwritten_and_deleted_logs_and_digests_and_see_rewrites",
    ) else {
        return;
    };
    let bucket = simulate(
        &Spec {
            bucket: "versioned".into(),
            hours: 12,
            ..small_spec()
        },
        signer(),
    )
    .unwrap();
    let mut digests: Vec<(chrono::DateTime<chrono::Utc>, String)> = bucket
        .objects
        .keys()
        .filter_map(|k| trailproof::layout::parse_digest_key(k).map(|n| (n.end, k.clone())))
        .collect();
    digests.sort();
    let digests: Vec<String> = digests.into_iter().map(|(_, k)| k).collect();
    let logs_of = |i: usize| listed(&bucket.objects[&digests[i]].bytes);
    let (modified, deleted, rewritten) = (
        logs_of(1)[0].clone(),
        logs_of(2)[0].clone(),
        logs_of(10)[0].clone(),
    );
    let (gone_digest, forged_digest) = (digests[5].clone(), digests[8].clone());
    let originals = bucket.objects.clone();
    let name = bucket.name.clone();
    versioned(&server, &bucket, true, async |c| {
        put(c, &name, &modified, gzip(b"{\"Records\":[]}"), &[]).await;
        c.delete_object()
            .bucket(&name)
            .key(&deleted)
            .send()
            .await
            .unwrap();
        c.delete_object()
            .bucket(&name)
            .key(&gone_digest)
            .send()
            .await
            .unwrap();
        // The forged digest: the original's bytes under another digest's signature.
        let other: Vec<(String, String)> = originals[&digests[7]]
            .metadata
            .clone()
            .into_iter()
            .collect();
        put(
            c,
            &name,
            &forged_digest,
            originals[&forged_digest].bytes.clone(),
            &other,
        )
        .await;
        put(
            c,
            &name,
            &rewritten,
            originals[&rewritten].bytes.clone(),
            &[],
        )
        .await;
    });
    let r = verify_versions(&server, "versioned", "2024-01-01T13:00:00Z");
    let find = |kind: Kind, key: &str| {
        r.findings
            .iter()
            .find(|f| f.kind == kind && f.key.as_deref() == Some(key))
            .unwrap_or_else(|| panic!("no {kind} for {key}: {:#?}", r.findings))
    };
    let m = find(Kind::LogModified, &modified);
    assert!(m.recoverable_version.is_some(), "{m:#?}");
    assert!(
        m.message.contains("the original is recoverable"),
        "{}",
        m.message
    );
    let d = find(Kind::LogMissing, &deleted);
    assert!(
        d.recoverable_version.is_some() && d.deleted_at.is_some(),
        "{d:#?}"
    );
    let g = find(Kind::DigestMissing, &gone_digest);
    assert!(
        g.recoverable_version.is_some() && g.deleted_at.is_some(),
        "{g:#?}"
    );
    let s = find(Kind::DigestSignatureInvalid, &forged_digest);
    assert!(s.recoverable_version.is_some(), "{s:#?}");
    let w = find(Kind::ObjectRewritten, &rewritten);
    assert_eq!(w.severity, trailproof::finding::Severity::Warning);
    assert_eq!(w.versions.len(), 2);
    // Through the recovered digests the chain holds and the deleted digest's logs verify.
    let kinds: BTreeSet<Kind> = r.findings.iter().map(|f| f.kind).collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            Kind::LogModified,
            Kind::LogMissing,
            Kind::DigestMissing,
            Kind::DigestSignatureInvalid,
            Kind::ObjectRewritten
        ]),
        "{:#?}",
        r.findings
    );
    assert_eq!(r.findings.len(), 5, "{:#?}", r.findings);
    let scope = &r.scopes[0];
    assert_eq!(scope.digests.missing, 1);
    assert_eq!(scope.digests.invalid, 1);
    assert_eq!(scope.digests.valid, 10);
    assert_eq!(scope.logs.unlisted, 0);
    assert_eq!(r.exit_code, exit::FINDINGS);
    assert!(
        r.notes.iter().any(|n| n.contains("versioning is Enabled")),
        "{:#?}",
        r.notes
    );

    // An evidence copy made with --versions verifies offline to the same findings and
    // recoveries.
    let key = fixture("keys/TEST-ONLY-public-key.pem")
        .display()
        .to_string();
    let end = "2024-01-01T13:00:00Z";
    let online = seaweed_cli(
        &server,
        &[
            "verify",
            "s3://versioned",
            "--end",
            end,
            "--versions",
            "--format",
            "json",
        ],
    );
    assert_exit(&online, 1);
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy");
    let made = seaweed_cli(
        &server,
        &[
            "acquire",
            "s3://versioned",
            copy.to_str().unwrap(),
            "--end",
            end,
            "--versions",
        ],
    );
    assert!(
        matches!(made.status.code(), Some(0 | 2)),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let offline = verify_offline(&copy, &["--versions", "--public-keys", &key]);
    assert_exit(&offline, 1);
    let a: serde_json::Value = serde_json::from_slice(&online.stdout).unwrap();
    let b: serde_json::Value = serde_json::from_slice(&offline.stdout).unwrap();
    assert_eq!(a["findings"], b["findings"]);
    assert_eq!(a["scopes"], b["scopes"]);
    let recovered = b["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| !f["recoverable_version"].is_null())
        .count();
    assert_eq!(recovered, 4, "{}", b["findings"]);
    // A copy made without --versions says it has none.
    let plain = dir.path().join("plain");
    seaweed_cli(
        &server,
        &[
            "acquire",
            "s3://versioned",
            plain.to_str().unwrap(),
            "--end",
            end,
        ],
    );
    let none = verify_offline(&plain, &["--versions", "--public-keys", &key]);
    let none: serde_json::Value = serde_json::from_slice(&none.stdout).unwrap();
    assert!(
        none["notes"]
            .to_string()
            .contains("made without --versions"),
        "{}",
        none["notes"]
    );
}

#[test]
fn versions_on_a_bucket_never_versioned_or_a_server_without_versioning_is_a_note() {
    let Some(server) = common::needs(
        common::seaweed::Seaweed::start(),
        "versions_on_a_bucket_never_versioned_or_a_server_without_versioning_is_a_note",
    ) else {
        return;
    };
    let bucket = simulate(&spec_for("unversioned", &[Tamper::LogModified]), signer()).unwrap();
    versioned(&server, &bucket, false, async |_| {});
    let r = verify_versions(&server, "unversioned", "2024-01-01T07:00:00Z");
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("versioning has never been enabled")),
        "{:#?}",
        r.notes
    );
    let kinds: Vec<Kind> = r.findings.iter().map(|f| f.kind).collect();
    assert_eq!(kinds, [Kind::LogModified]);
    assert!(r.findings[0].recoverable_version.is_none());

    // Versioning enabled, then suspended: said, since later tampering would not be recoverable.
    let suspended = simulate(&spec_for("suspended", &[]), signer()).unwrap();
    versioned(&server, &suspended, true, async |c| {
        c.put_bucket_versioning()
            .bucket("suspended")
            .versioning_configuration(
                aws_sdk_s3::types::VersioningConfiguration::builder()
                    .status(aws_sdk_s3::types::BucketVersioningStatus::Suspended)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    });
    let r = verify_versions(&server, "suspended", "2024-01-01T07:00:00Z");
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert!(
        r.notes.iter().any(|n| n.contains("versioning suspended")),
        "{:#?}",
        r.notes
    );

    // s3s-fs has no versioning API: a note, the findings of a run without --versions.
    let dir = tempfile::tempdir().unwrap();
    let plain = serve(dir.path(), &[&bucket]);
    let out = cli(
        &plain,
        &[
            "verify",
            "s3://unversioned",
            "--end",
            "2024-01-01T07:00:00Z",
            "--versions",
            "--format",
            "json",
        ],
    );
    assert_exit(&out, 1);
    let without = cli(
        &plain,
        &[
            "verify",
            "s3://unversioned",
            "--end",
            "2024-01-01T07:00:00Z",
            "--format",
            "json",
        ],
    );
    let a: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let b: serde_json::Value = serde_json::from_slice(&without.stdout).unwrap();
    assert_eq!(a["findings"], b["findings"]);
    assert!(
        a["notes"].to_string().contains("--versions"),
        "{}",
        a["notes"]
    );
}

/// `--jobs auto` (the default) adapts the requests in flight and keeps the clean verdict when
/// S3 throttles one request in ten; `--jobs N` fixes them at N.
#[test]
fn adaptive_requests_keep_the_verdict_under_throttling_and_a_fixed_number_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let s = make(Spec {
        hours: 24,
        ..spec_for("paced", &[Tamper::LogModified])
    });
    let server = serve(dir.path(), &[&s.bucket]);
    let end = trailproof::layout::format_time(s.bucket.as_of);
    let run = |more: &[&str]| -> serde_json::Value {
        let mut args = vec!["verify", "s3://paced", "--end", &end, "--format", "json"];
        args.extend_from_slice(more);
        let out = cli(&server, &args);
        assert_exit(&out, 1);
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let calm = run(&[]);
    assert_eq!(calm["requests"]["adaptive"], true);
    server.state.set_faults(Faults {
        slow_down_every: 10,
        ..Faults::default()
    });
    let throttled = run(&[]);
    assert_eq!(throttled["findings"], calm["findings"]);
    assert_eq!(throttled["unverified"], calm["unverified"]);
    assert_eq!(throttled["scopes"], calm["scopes"]);
    server.state.set_faults(Faults::default());
    let fixed = run(&["--jobs", "3"]);
    assert_eq!(fixed["requests"]["adaptive"], false);
    let peak = fixed["requests"]["peak"].as_u64().unwrap();
    assert!((1..=3).contains(&peak), "{peak}");
    assert_eq!(fixed["findings"], calm["findings"]);
}

/// What a run told its progress of the requests it lets be in flight.
#[derive(Default)]
struct Limits(std::sync::Mutex<Vec<usize>>);

impl verify::Progress for Limits {
    fn phase(&self, _: verify::Phase, _: u64) {}
    fn advance(&self, _: u64, _: u64) {}
    fn requests(&self, limit: usize) {
        self.0.lock().unwrap().push(limit);
    }
    fn finish(&self) {}
}

#[test]
fn progress_is_told_the_requests_in_flight_over_s3_as_the_limit_changes_and_never_for_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    let s = make(Spec {
        hours: 72,
        ..spec_for("paced-bucket", &[])
    });
    let server = serve(dir.path(), &[&s.bucket]);
    let run = |adjust: fn(&mut Options)| {
        let limits = Arc::new(Limits::default());
        let shown = limits.clone();
        let report = verify_s3_with(&server, "paced-bucket", "", s.bucket.as_of, |o| {
            adjust(o);
            o.progress = Some(shown);
        });
        assert_eq!(report.exit_code, exit::VERIFIED, "{:#?}", report.findings);
        let limits = limits.0.lock().unwrap().clone();
        (report, limits)
    };

    // Adapting: the first figure is where the pace starts, and each one after is a change.
    let (report, limits) = run(|o| {
        o.jobs = verify::pace::MAX_AUTO;
        o.adaptive = true;
    });
    assert_eq!(
        limits.first(),
        Some(&verify::pace::START_AUTO),
        "{limits:?}"
    );
    assert!(limits.windows(2).all(|w| w[0] != w[1]), "{limits:?}");
    assert!(
        limits
            .iter()
            .all(|l| (verify::pace::MIN_AUTO..=verify::pace::MAX_AUTO).contains(l)),
        "{limits:?}"
    );
    let requests = report
        .requests
        .expect("the report gives the requests in flight");
    assert!(requests.adaptive);
    // (Not bound by the limits shown: a limit raised and lowered again between two requests'
    // permits is never shown, though requests may have been let in under it.)
    assert!(requests.peak >= 1 && requests.peak <= verify::pace::MAX_AUTO);

    // Fixed: one figure, the one asked for.
    let (report, limits) = run(|o| o.jobs = 16);
    assert_eq!(limits, [16]);
    assert!(!report.requests.unwrap().adaptive);

    // A folder has no requests in flight to show.
    let mirror = dir.path().join("mirror");
    write_dir(&s.bucket, &mirror).unwrap();
    let limits = Arc::new(Limits::default());
    let shown = limits.clone();
    let offline = verify_dir(&mirror, test_keys(), |o| {
        o.adaptive = true;
        o.progress = Some(shown);
    });
    assert_eq!(offline.exit_code, exit::VERIFIED, "{:#?}", offline.findings);
    assert!(limits.0.lock().unwrap().is_empty());
}
