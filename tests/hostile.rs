//! Evidence is hostile input: long histories, odd file types, oversized files and planted trust
//! must each end in a clear finding or error, in bounded time, never a hang.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::*;
use trailproof::finding::Kind;
use trailproof::report::{exit, Report};
use trailproof::simulate::Spec;

/// Runs `f` on a thread of its own and fails the test if it does not finish within `limit`.
fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("{what} did not finish within {limit:?}: it hangs"))
}

/// `days` of history, one log an hour, in one location, written to a fresh folder.
fn long_history(days: u32) -> (tempfile::TempDir, std::path::PathBuf) {
    let spec = Spec {
        bucket: "long-history".into(),
        hours: days * 24,
        logs_per_hour: 1,
        log_bytes: 200,
        ..Spec::default()
    };
    let bucket = trailproof::simulate::simulate(&spec, signer()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mirror");
    trailproof::simulate::write_dir(&bucket, &root).unwrap();
    (dir, root)
}

fn assert_clean(report: &Report, digests: usize) {
    assert_eq!(report.exit_code, exit::VERIFIED, "{:#?}", report.findings);
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    let valid: usize = report.scopes.iter().map(|s| s.digests.valid).sum();
    assert_eq!(valid, digests);
}

/// A mirror of more than 63 days (over 128 date folders in one location) used to spin forever:
/// the location was polled outside the runtime, whose cooperative budget, once spent by 128
/// permits, was never renewed.
#[test]
fn mirrors_of_64_and_128_days_verify_in_bounded_time() {
    for days in [64, 128] {
        let (_dir, root) = long_history(days);
        let report = within(
            Duration::from_secs(60),
            &format!("{days} days"),
            move || verify_dir(&root, test_keys(), |_| {}),
        );
        assert_clean(&report, days as usize * 24);
        let logs: usize = report.scopes.iter().map(|s| s.logs.valid).sum();
        assert_eq!(logs, days as usize * 24);
    }
}

/// 400 days of date folders, as an attacker (or a tool that pre-creates folders) may add them:
/// all but the last two days empty. Every folder is listed, in bounded time, and the verdict is
/// the clean history's.
#[test]
fn a_mirror_with_400_days_of_date_folders_verifies_in_bounded_time() {
    let (_dir, root) = long_history(2);
    let location = root.join("AWSLogs/111111111111");
    let first = chrono::NaiveDate::from_ymd_opt(2022, 11, 27).unwrap();
    for day in first.iter_days().take(400) {
        let folder = day.format("%Y/%m/%d").to_string();
        for kind in ["CloudTrail-Digest", "CloudTrail"] {
            std::fs::create_dir_all(location.join(kind).join("us-east-1").join(&folder)).unwrap();
        }
    }
    let report = within(Duration::from_secs(60), "400 days", move || {
        verify_dir(&root, test_keys(), |_| {})
    });
    assert_clean(&report, 48);
}

/// With a single permit, a run whose location held a permit while it waited for another would
/// wait forever: every source must finish with `--jobs 1`, over many locations and days.
#[test]
fn a_run_with_one_permit_never_waits_on_a_permit_it_holds() {
    let scenario = make(Spec {
        bucket: "one-permit".into(),
        accounts: vec![
            "111111111111".parse().unwrap(),
            "222222222222".parse().unwrap(),
        ],
        regions: vec!["us-east-1".into(), "eu-west-1".into()],
        trails: vec!["management".into(), "data".into()],
        hours: 24 * 3,
        logs_per_hour: 1,
        log_bytes: 200,
        ..Spec::default()
    });
    for jobs in [1, 2] {
        let root = scenario.root.clone();
        let report = within(
            Duration::from_secs(60),
            &format!("--jobs {jobs}"),
            move || verify_dir(&root, test_keys(), |o| o.jobs = jobs),
        );
        assert_clean(&report, 2 * 2 * 2 * 72);
    }
}

#[test]
fn a_long_mirror_with_a_modified_log_still_finds_it() {
    let scenario = make(Spec {
        bucket: "long-history".into(),
        hours: 70 * 24,
        logs_per_hour: 1,
        log_bytes: 200,
        tampers: vec![trailproof::simulate::Tamper::LogModified],
        ..Spec::default()
    });
    let root = scenario.root.clone();
    let report = within(Duration::from_secs(60), "70 days", move || {
        verify_dir(&root, test_keys(), |_| {})
    });
    assert_eq!(report.exit_code, exit::FINDINGS);
    let kinds: Vec<Kind> = report.findings.iter().map(|f| f.kind).collect();
    assert_eq!(kinds, vec![Kind::LogModified]);
}

/// Replaces the file at `key` below `root` with a FIFO.
#[cfg(unix)]
fn fifo_at(root: &std::path::Path, key: &str) {
    let path = root.join(key);
    std::fs::remove_file(&path).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
}

/// A FIFO where a listed log, a digest or its sidecar should be is never opened for a blocking
/// read: it is unverified as "not a regular file", and the run ends.
#[cfg(unix)]
#[test]
fn fifos_in_place_of_a_log_a_digest_or_a_sidecar_are_not_regular_files() {
    let scenario = make(small_spec());
    let digests = scenario.digests();
    let log = scenario.logs(1)[0].clone();
    fifo_at(&scenario.root, &log);
    fifo_at(&scenario.root, &digests[3]);
    fifo_at(&scenario.root, &format!("{}.metadata.json", digests[4]));
    let root = scenario.root.clone();
    let report = within(Duration::from_secs(30), "FIFOs", move || {
        verify_dir(&root, test_keys(), |_| {})
    });
    assert_eq!(report.exit_code, exit::INCOMPLETE, "{:#?}", report.findings);
    assert_unverified(&report, &log, "not a regular file (a FIFO)");
    assert_unverified(&report, &digests[3], "not a regular file (a FIFO)");
    assert_unverified(&report, &digests[4], "not a regular file (a FIFO)");
}

/// A folder where a log should be is not a log either.
#[test]
fn a_folder_in_place_of_a_listed_log_is_not_a_regular_file() {
    let scenario = make(small_spec());
    let log = scenario.logs(2)[1].clone();
    std::fs::remove_file(scenario.root.join(&log)).unwrap();
    std::fs::create_dir(scenario.root.join(&log)).unwrap();
    let report = scenario.verify();
    assert_unverified(&report, &log, "not a regular file (a folder)");
    assert_eq!(report.exit_code, exit::INCOMPLETE);
}

/// A FIFO as the manifest: the mirror cannot be opened, and says why.
#[cfg(unix)]
#[test]
fn a_fifo_as_the_manifest_is_refused_not_read() {
    let scenario = make(small_spec());
    fifo_at(&scenario.root, trailproof::store::local::MANIFEST);
    let root = scenario.root.clone();
    let opened = within(Duration::from_secs(10), "manifest FIFO", move || {
        trailproof::store::LocalStore::open(&root, None)
            .err()
            .map(|e| e.to_string())
    });
    let message = opened.expect("a FIFO manifest must be refused");
    assert!(message.contains("not a regular file"), "{message}");
}

/// A sidecar far larger than S3's 2 KB of user metadata is read no further than its cap.
#[test]
fn a_huge_metadata_sidecar_is_not_read_to_its_end() {
    let scenario = make(small_spec());
    let digest = scenario.digests()[2].clone();
    let sidecar = scenario.root.join(format!("{digest}.metadata.json"));
    let file = std::fs::File::create(&sidecar).unwrap();
    file.set_len(512 * 1024 * 1024).unwrap();
    let report = scenario.verify();
    let f = finding_of(&report, Kind::DigestSignatureInvalid);
    assert_eq!(f.key.as_deref(), Some(digest.as_str()));
    assert!(
        f.message.contains("larger than 65536 bytes"),
        "{}",
        f.message
    );
    assert_eq!(report.exit_code, exit::FINDINGS);
}

/// A digest object larger than any CloudTrail writes is not read whole.
#[test]
fn a_huge_digest_is_not_read_to_its_end() {
    let scenario = make(small_spec());
    let digest = scenario.digests()[2].clone();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(scenario.root.join(&digest))
        .unwrap();
    file.set_len(200 * 1024 * 1024).unwrap();
    let report = scenario.verify();
    let f = finding_of(&report, Kind::DigestMalformed);
    assert_eq!(f.key.as_deref(), Some(digest.as_str()));
    assert!(f.message.contains("larger than"), "{}", f.message);
    assert_eq!(report.exit_code, exit::FINDINGS);
}

/// `--public-keys /dev/zero` (or any endless or huge file) is refused at the cap.
#[cfg(unix)]
#[test]
fn an_endless_key_file_is_refused_at_its_cap() {
    let err = within(Duration::from_secs(10), "/dev/zero keys", || {
        trailproof::keys::KeyRing::load(&["/dev/zero".into()])
            .unwrap_err()
            .to_string()
    });
    assert!(err.contains("larger than 1048576 bytes"), "{err}");
}

/// A sidecar that exists but is not a JSON object of strings leaves the digest as unsigned as a
/// missing sidecar does: `digest_signature_invalid`, not "could not be read".
#[test]
fn a_sidecar_that_is_not_a_json_object_of_strings_is_signature_invalid() {
    let cases: [&[u8]; 6] = [
        b"",
        b"[]",
        b"garbage",
        b"{\"signature\": 7}",
        b"{\"signature\": null}",
        b"\xff\xfe{}",
    ];
    for bytes in cases {
        let scenario = make(small_spec());
        let digest = scenario.digests()[2].clone();
        std::fs::write(scenario.root.join(format!("{digest}.metadata.json")), bytes).unwrap();
        let report = scenario.verify();
        let f = finding_of(&report, Kind::DigestSignatureInvalid);
        assert_eq!(f.key.as_deref(), Some(digest.as_str()), "{bytes:?}");
        assert!(
            f.message.contains("not a JSON object of strings"),
            "{bytes:?}: {}",
            f.message
        );
        assert_eq!(report.exit_code, exit::FINDINGS, "{bytes:?}");
        // Only the logs that the unsigned digest alone lists are left unchecked.
        assert!(
            report.unverified.iter().all(|u| u
                .cause
                .contains(&format!("{digest}, which failed verification"))),
            "{bytes:?}: {:#?}",
            report.unverified
        );
    }
}
