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
            Duration::from_secs(300),
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
    let report = within(Duration::from_secs(300), "400 days", move || {
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
            Duration::from_secs(300),
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
    let report = within(Duration::from_secs(300), "70 days", move || {
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
    let report = within(Duration::from_secs(300), "FIFOs", move || {
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

// --- the hostile-evidence corpus ----------------------------------------------------------------
//
// Each case is the small bucket's mirror with one hostile change, verified by the real binary
// under a 1 GiB address-space limit and a 120 s deadline: the exit code, the finding kinds (or
// the fatal error's words) are asserted, and no case may panic, hang or outgrow the limit.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The undamaged mirror every case starts from, with its keys, written once.
struct Base {
    _dir: tempfile::TempDir,
    root: PathBuf,
    digests: Vec<String>,
    logs: Vec<Vec<String>>,
}

fn base() -> &'static Base {
    static BASE: OnceLock<Base> = OnceLock::new();
    BASE.get_or_init(|| {
        let s = make(small_spec());
        let digests = s.digests();
        let logs = (0..digests.len()).map(|h| s.logs(h)).collect();
        let Scenario { dir, root, .. } = s;
        Base {
            _dir: dir,
            root,
            digests,
            logs,
        }
    })
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// One case's mirror: a copy of the base to damage.
struct Mirror {
    root: PathBuf,
    base: &'static Base,
}

impl Mirror {
    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }
    fn digest(&self, i: usize) -> String {
        self.base.digests[i].clone()
    }
    fn log(&self, hour: usize, i: usize) -> String {
        self.base.logs[hour][i].clone()
    }
    fn sidecar(&self, i: usize) -> PathBuf {
        self.path(&format!("{}.metadata.json", self.digest(i)))
    }
    fn write(&self, key: &str, bytes: &[u8]) {
        std::fs::write(self.path(key), bytes).unwrap();
    }
    fn append(&self, key: &str, bytes: &[u8]) {
        let mut all = std::fs::read(self.path(key)).unwrap();
        all.extend_from_slice(bytes);
        self.write(key, &all);
    }
    /// The digest's JSON, edited as text and gzipped again (its signature no longer matches).
    fn edit_digest(&self, i: usize, edit: impl FnOnce(String) -> String) {
        let key = self.digest(i);
        let gz = std::fs::read(self.path(&key)).unwrap();
        let (content, _) = trailproof::hash::inflate_to_vec(&gz, u64::MAX).unwrap();
        let edited = edit(String::from_utf8(content).unwrap());
        self.write(&key, &trailproof::hash::gzip(edited.as_bytes()));
    }
    fn replace_with_fifo(&self, key: &str) {
        let path = self.path(key);
        std::fs::remove_file(&path).unwrap();
        assert!(Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap()
            .success());
    }
    fn link(&self, key: &str, to: &Path) {
        let path = self.path(key);
        let _ = std::fs::remove_file(&path);
        std::os::unix::fs::symlink(to, path).unwrap();
    }
    fn log_folder(&self) -> PathBuf {
        self.path("AWSLogs/111111111111/CloudTrail/us-east-1/2024/01/01")
    }
    fn digest_folder(&self) -> PathBuf {
        self.path("AWSLogs/111111111111/CloudTrail-Digest/us-east-1/2024/01/01")
    }
    fn manifest(&self) -> PathBuf {
        self.path(trailproof::store::local::MANIFEST)
    }
}

/// What a case must end in.
enum Expect {
    /// This exit code, with every one of these finding kinds, and unverified objects or not.
    Report(i32, &'static [&'static str], bool),
    /// Exit 2 before any report, with these words on standard error.
    Fatal(&'static str),
}

struct Case {
    name: &'static str,
    damage: fn(&Mirror),
    args: &'static [&'static str],
    expect: Expect,
}

use Expect::{Fatal, Report as Rep};

const BOMB_BYTES: usize = 256 * 1024 * 1024;

fn gzip_bomb(bytes: usize) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..bytes / zeros.len() {
        e.write_all(&zeros).unwrap();
    }
    e.finish().unwrap()
}

fn cases() -> Vec<Case> {
    let c = |name, damage: fn(&Mirror), expect| Case {
        name,
        damage,
        args: &[],
        expect,
    };
    let with = |name, damage: fn(&Mirror), args, expect| Case {
        name,
        damage,
        args,
        expect,
    };
    const MAL: &[&str] = &["digest_malformed"];
    const SIG: &[&str] = &["digest_signature_invalid"];
    const CORRUPT: &[&str] = &["log_corrupt"];
    vec![
        // Digest bodies.
        c(
            "digest-not-gzip",
            |m| m.write(&m.digest(2), b"{\"awsAccountId\":\"111111111111\"}"),
            Rep(1, MAL, false),
        ),
        c(
            "digest-empty",
            |m| m.write(&m.digest(2), b""),
            Rep(1, MAL, false),
        ),
        c(
            "digest-invalid-utf8",
            |m| {
                m.write(
                    &m.digest(2),
                    &trailproof::hash::gzip(b"{\"a\":\"\xff\xfe\"}"),
                )
            },
            Rep(1, MAL, false),
        ),
        c(
            "digest-json-array",
            |m| m.edit_digest(2, |_| "[]".into()),
            Rep(1, MAL, false),
        ),
        c(
            "digest-json-null",
            |m| m.edit_digest(2, |_| "null".into()),
            Rep(1, MAL, false),
        ),
        c(
            "digest-end-null",
            |m| {
                m.edit_digest(2, |s| {
                    s.replacen("\"digestEndTime\":\"", "\"digestEndTime\":null,\"x\":\"", 1)
                })
            },
            Rep(1, MAL, false),
        ),
        c(
            "digest-logfiles-string",
            |m| {
                m.edit_digest(2, |s| {
                    let at = s.find("\"logFiles\":").unwrap();
                    format!("{}\"logFiles\":\"none\"}}", &s[..at])
                })
            },
            Rep(1, MAL, false),
        ),
        c(
            "digest-hash-number",
            |m| {
                m.edit_digest(2, |s| {
                    let at = s.find("\"hashValue\":\"").unwrap() + 12;
                    let end = at + 1 + s[at + 1..].find('"').unwrap();
                    format!("{}7{}", &s[..at], &s[end + 1..])
                })
            },
            Rep(1, MAL, false),
        ),
        c(
            "digest-duplicate-key",
            |m| {
                m.edit_digest(2, |s| {
                    s.replacen('{', "{\"digestEndTime\":\"2024-01-01T00:00:00Z\",", 1)
                })
            },
            Rep(1, MAL, false),
        ),
        c(
            "digest-huge-string",
            |m| {
                m.edit_digest(2, |s| {
                    s.replacen(
                        "\"awsAccountId\":\"",
                        &format!("\"junk\":\"{}\",\"awsAccountId\":\"", "x".repeat(8 << 20)),
                        1,
                    )
                })
            },
            Rep(1, SIG, true),
        ),
        c(
            "digest-deep-nesting",
            |m| {
                m.edit_digest(2, |s| {
                    s.replacen(
                        '{',
                        &format!("{{\"deep\":{}{},", "[".repeat(100_000), "]".repeat(100_000)),
                        1,
                    )
                })
            },
            Rep(1, SIG, true),
        ),
        c(
            "digest-gzip-bomb",
            |m| m.write(&m.digest(2), &gzip_bomb(BOMB_BYTES)),
            Rep(1, MAL, false),
        ),
        c(
            "digest-second-member",
            |m| {
                let gz = std::fs::read(m.path(&m.digest(2))).unwrap();
                m.append(&m.digest(2), &gz)
            },
            Rep(1, MAL, false),
        ),
        c(
            "digest-trailing-bytes",
            |m| m.append(&m.digest(2), b"junk"),
            Rep(1, MAL, false),
        ),
        c(
            "digest-start-after-end",
            |m| {
                m.edit_digest(2, |s| {
                    s.replacen(
                        "\"digestStartTime\":\"2024-01-01T",
                        "\"digestStartTime\":\"2024-01-02T",
                        1,
                    )
                })
            },
            Rep(1, MAL, false),
        ),
        c(
            "digest-bom",
            |m| m.edit_digest(2, |s| format!("\u{feff}{s}")),
            Rep(1, MAL, false),
        ),
        c(
            "digest-fifo",
            |m| m.replace_with_fifo(&m.digest(2)),
            Rep(2, &[], true),
        ),
        c(
            "digest-link-out",
            |m| m.link(&m.digest(2), Path::new("/etc/hostname")),
            Rep(2, &[], true),
        ),
        c(
            "digest-link-to-another-digest",
            |m| {
                let other = m.path(&m.digest(1));
                m.link(&m.digest(2), &other)
            },
            Rep(1, &["digest_relocated"], false),
        ),
        c(
            "digest-deleted",
            |m| std::fs::remove_file(m.path(&m.digest(2))).unwrap(),
            Rep(1, &["digest_missing"], false),
        ),
        c(
            "digest-folder-in-its-place",
            |m| {
                std::fs::remove_file(m.path(&m.digest(2))).unwrap();
                std::fs::create_dir(m.path(&m.digest(2))).unwrap()
            },
            Rep(2, &[], true),
        ),
        c(
            "digest-sparse-200mb",
            |m| {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(m.path(&m.digest(2)))
                    .unwrap()
                    .set_len(200 << 20)
                    .unwrap()
            },
            Rep(1, MAL, false),
        ),
        // Signature sidecars.
        c(
            "sidecar-empty",
            |m| std::fs::write(m.sidecar(2), b"").unwrap(),
            Rep(1, SIG, true),
        ),
        c(
            "sidecar-array",
            |m| std::fs::write(m.sidecar(2), b"[]").unwrap(),
            Rep(1, SIG, true),
        ),
        c(
            "sidecar-garbage",
            |m| std::fs::write(m.sidecar(2), b"\x00\x01garbage").unwrap(),
            Rep(1, SIG, true),
        ),
        c(
            "sidecar-number-value",
            |m| std::fs::write(m.sidecar(2), b"{\"signature\":12}").unwrap(),
            Rep(1, SIG, true),
        ),
        c(
            "sidecar-null-value",
            |m| std::fs::write(m.sidecar(2), b"{\"signature\":null}").unwrap(),
            Rep(1, SIG, true),
        ),
        c(
            "sidecar-invalid-utf8",
            |m| std::fs::write(m.sidecar(2), b"{\"signature\":\"\xff\"}").unwrap(),
            Rep(1, SIG, true),
        ),
        c(
            "sidecar-huge",
            |m| {
                std::fs::File::create(m.sidecar(2))
                    .unwrap()
                    .set_len(300 << 20)
                    .unwrap()
            },
            Rep(1, SIG, true),
        ),
        c(
            "sidecar-deleted",
            |m| std::fs::remove_file(m.sidecar(2)).unwrap(),
            Rep(1, SIG, true),
        ),
        c(
            "sidecar-fifo",
            |m| m.replace_with_fifo(&format!("{}.metadata.json", m.digest(2))),
            Rep(2, &[], true),
        ),
        c(
            "sidecar-link-out",
            |m| {
                m.link(
                    &format!("{}.metadata.json", m.digest(2)),
                    Path::new("/etc/hostname"),
                )
            },
            Rep(2, &[], true),
        ),
        c(
            "sidecar-short-signature",
            |m| {
                std::fs::write(
                    m.sidecar(2),
                    b"{\"signature\":\"abcd\",\"signature-algorithm\":\"SHA256withRSA\"}",
                )
                .unwrap()
            },
            Rep(1, SIG, true),
        ),
        c(
            "sidecar-sha1-algorithm",
            |m| {
                let s = std::fs::read_to_string(m.sidecar(2)).unwrap();
                std::fs::write(m.sidecar(2), s.replace("SHA256withRSA", "SHA1withRSA")).unwrap()
            },
            Rep(1, SIG, true),
        ),
        c(
            "sidecar-duplicate-signature",
            |m| {
                let s = std::fs::read_to_string(m.sidecar(2)).unwrap();
                std::fs::write(m.sidecar(2), s.replacen('{', "{\"signature\":\"00\",", 1)).unwrap()
            },
            Rep(1, SIG, true),
        ),
        c(
            "sidecar-headers-capitalised",
            |m| {
                let s = std::fs::read_to_string(m.sidecar(2)).unwrap();
                std::fs::write(
                    m.sidecar(2),
                    s.replace("\"signature\"", "\"X-Amz-Meta-Signature\""),
                )
                .unwrap()
            },
            Rep(0, &[], false),
        ),
        // Logs.
        c(
            "log-empty",
            |m| m.write(&m.log(1, 0), b""),
            Rep(1, CORRUPT, false),
        ),
        c(
            "log-not-gzip",
            |m| m.write(&m.log(1, 0), b"{\"Records\":[]}"),
            Rep(1, CORRUPT, false),
        ),
        c(
            "log-second-member",
            |m| {
                let gz = std::fs::read(m.path(&m.log(1, 0))).unwrap();
                m.append(&m.log(1, 0), &gz)
            },
            Rep(1, CORRUPT, false),
        ),
        c(
            "log-trailing-bytes",
            |m| m.append(&m.log(1, 0), b"\0\0\0\0"),
            Rep(1, CORRUPT, false),
        ),
        c(
            "log-truncated",
            |m| {
                let gz = std::fs::read(m.path(&m.log(1, 0))).unwrap();
                m.write(&m.log(1, 0), &gz[..gz.len() - 8])
            },
            Rep(1, CORRUPT, false),
        ),
        c(
            "log-header-crc-wrong",
            |m| {
                let gz = std::fs::read(m.path(&m.log(1, 0))).unwrap();
                let mut out = gz[..10].to_vec();
                out[3] |= 2;
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&gz[10..]);
                m.write(&m.log(1, 0), &out)
            },
            Rep(1, CORRUPT, false),
        ),
        c(
            "log-gzip-bomb",
            |m| m.write(&m.log(1, 0), &gzip_bomb(BOMB_BYTES)),
            Rep(1, &["log_modified"], false),
        ),
        c(
            "log-fifo",
            |m| m.replace_with_fifo(&m.log(1, 0)),
            Rep(2, &[], true),
        ),
        c(
            "log-link-out",
            |m| m.link(&m.log(1, 0), Path::new("/etc/hostname")),
            Rep(2, &[], true),
        ),
        c(
            "log-link-to-another-log",
            |m| {
                let other = m.path(&m.log(3, 1));
                m.link(&m.log(1, 0), &other)
            },
            Rep(1, &["log_modified"], false),
        ),
        c(
            "log-folder-in-its-place",
            |m| {
                std::fs::remove_file(m.path(&m.log(1, 0))).unwrap();
                std::fs::create_dir(m.path(&m.log(1, 0))).unwrap()
            },
            Rep(2, &[], true),
        ),
        c(
            "log-deleted",
            |m| std::fs::remove_file(m.path(&m.log(1, 0))).unwrap(),
            Rep(1, &["log_missing"], false),
        ),
        // Names and listings.
        c(
            "unlisted-name-with-newline",
            |m| {
                std::fs::write(
                    m.log_folder()
                        .join("111111111111_CloudTrail_us-east-1_20240101T0130Z_bad\nname.json.gz"),
                    b"x",
                )
                .unwrap()
            },
            Rep(1, &["log_unlisted"], false),
        ),
        c(
            "name-not-utf8",
            |m| {
                use std::os::unix::ffi::OsStrExt;
                std::fs::write(
                    m.log_folder()
                        .join(std::ffi::OsStr::from_bytes(b"\xff\xfe.json.gz")),
                    b"x",
                )
                .unwrap()
            },
            Rep(2, &[], true),
        ),
        c(
            "foreign-file-in-digest-folder",
            |m| std::fs::write(m.digest_folder().join("notes.txt"), b"hello").unwrap(),
            Rep(1, MAL, false),
        ),
        c(
            "foreign-file-in-log-folder",
            |m| std::fs::write(m.log_folder().join("notes.txt"), b"hello").unwrap(),
            Rep(1, &["log_unlisted"], false),
        ),
        c(
            "huge-listing",
            |m| {
                for i in 0..5000 {
                    std::fs::write(
                        m.log_folder().join(format!(
                            "111111111111_CloudTrail_us-east-1_20240101T0100Z_{i:016}.json.gz"
                        )),
                        b"",
                    )
                    .unwrap()
                }
            },
            Rep(1, &["log_unlisted"], false),
        ),
        c(
            "log-folder-linked-out",
            |m| {
                let tmp = m.root.parent().unwrap().join("elsewhere");
                std::fs::create_dir_all(&tmp).unwrap();
                let day = m.log_folder();
                std::fs::rename(&day, tmp.join("01")).unwrap();
                std::os::unix::fs::symlink(tmp.join("01"), day).unwrap()
            },
            Rep(2, &[], true),
        ),
        // Manifests.
        c(
            "manifest-garbage",
            |m| std::fs::write(m.manifest(), b"garbage").unwrap(),
            Fatal("invalid manifest"),
        ),
        c(
            "manifest-array",
            |m| std::fs::write(m.manifest(), b"[]").unwrap(),
            Fatal("invalid manifest"),
        ),
        c(
            "manifest-fifo",
            |m| m.replace_with_fifo(trailproof::store::local::MANIFEST),
            Fatal("not a regular file"),
        ),
        c(
            "manifest-link-out",
            |m| {
                m.link(
                    trailproof::store::local::MANIFEST,
                    Path::new("/etc/hostname"),
                )
            },
            Fatal("not followed"),
        ),
        c(
            "manifest-huge",
            |m| {
                std::fs::File::create(m.manifest())
                    .unwrap()
                    .set_len(2 << 30)
                    .unwrap()
            },
            Fatal("larger than"),
        ),
        c(
            "manifest-other-bucket",
            |m| {
                let s = std::fs::read_to_string(m.manifest()).unwrap();
                std::fs::write(m.manifest(), s.replace("scenario-bucket", "other-bucket")).unwrap()
            },
            Rep(1, &["digest_relocated"], true),
        ),
        with(
            "manifest-planted-keys",
            |m| {
                std::fs::copy(
                    fixture("keys/TEST-ONLY-list-public-keys.json"),
                    m.path("trailproof-keys.json"),
                )
                .unwrap();
                let s = std::fs::read_to_string(m.manifest()).unwrap();
                std::fs::write(
                    m.manifest(),
                    s.replacen('{', "{\"keys_file\":\"trailproof-keys.json\",", 1),
                )
                .unwrap()
            },
            &["!no-keys"],
            Fatal("is evidence, not trust"),
        ),
        // Keys and the command line.
        with(
            "keys-dev-zero",
            |_| {},
            &["--public-keys", "/dev/zero"],
            Fatal("larger than"),
        ),
        with(
            "keys-missing-file",
            |_| {},
            &["--public-keys", "/nonexistent/keys.json"],
            Fatal("/nonexistent/keys.json"),
        ),
        with(
            "keys-garbage",
            |m| std::fs::write(m.root.parent().unwrap().join("junk.pem"), b"junk").unwrap(),
            &["--public-keys", "@junk.pem"],
            Fatal("neither ListPublicKeys JSON, PEM, nor DER"),
        ),
        with(
            "keys-empty-folder",
            |m| std::fs::create_dir_all(m.root.parent().unwrap().join("nokeys")).unwrap(),
            &["--public-keys", "@nokeys"],
            Fatal("no .json, .pem, .der or .pub"),
        ),
        with(
            "keys-wrong-key",
            |m| {
                let pem = m.root.parent().unwrap().join("other.pem");
                assert!(Command::new("openssl")
                    .args(["genrsa", "-traditional", "-out"])
                    .arg(&pem)
                    .arg("2048")
                    .stderr(Stdio::null())
                    .status()
                    .unwrap()
                    .success());
                let out = m.root.parent().unwrap().join("other.pub.pem");
                assert!(Command::new("openssl")
                    .args(["rsa", "-RSAPublicKey_out", "-in"])
                    .arg(&pem)
                    .arg("-out")
                    .arg(&out)
                    .stderr(Stdio::null())
                    .status()
                    .unwrap()
                    .success())
            },
            &["--public-keys", "@other.pub.pem"],
            Rep(1, &["digest_key_unknown"], true),
        ),
        with(
            "cli-start-after-end",
            |_| {},
            &["--start", "2024-01-02", "--end", "2024-01-01T00:00:00Z"],
            Fatal("the start must come first"),
        ),
        with(
            "cli-start-not-a-time",
            |_| {},
            &["--start", "yesterday"],
            Fatal("is not a time"),
        ),
        with("cli-jobs-zero", |_| {}, &["--jobs", "0"], Fatal("--jobs")),
        with(
            "cli-report-bad-format",
            |_| {},
            &["--report", "pdf=x.pdf"],
            Fatal("pdf"),
        ),
        with(
            "cli-report-twice-one-path",
            |_| {},
            &["--report", "json=@r.out", "--report", "junit=@r.out"],
            Fatal("name the same file"),
        ),
        with(
            "cli-report-inside-source",
            |_| {},
            &["--report", "json=@mirror/r.json"],
            Fatal("inside the source"),
        ),
    ]
}

/// Runs the binary on `root` with `args` (a leading `@` names a file beside the mirror), under
/// the address-space limit and the deadline.
fn run_case(root: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let beside = root.parent().unwrap();
    let mut command = format!(
        "ulimit -v {}; exec \"$0\" verify \"$1\" --format json --no-progress",
        1024 * 1024
    );
    let mut argv: Vec<String> = vec![root.display().to_string()];
    let has_keys = args.contains(&"--public-keys") || args.contains(&"!no-keys");
    let mut all: Vec<String> = args
        .iter()
        .filter(|a| **a != "!no-keys")
        .map(|a| match a.strip_prefix('@') {
            Some(name) => beside.join(name).display().to_string(),
            None => match a.split_once("=@") {
                Some((f, name)) => format!("{f}={}", beside.join(name).display()),
                None => a.to_string(),
            },
        })
        .collect();
    if !has_keys {
        all.extend([
            "--public-keys".into(),
            fixture("keys/TEST-ONLY-public-key.pem")
                .display()
                .to_string(),
        ]);
    }
    for (i, a) in all.iter().enumerate() {
        command.push_str(&format!(" \"${}\"", i + 2));
        argv.push(a.clone());
    }
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .arg(env!("CARGO_BIN_EXE_trailproof"))
        .args(&argv)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        std::io::Read::read_to_end(&mut out, &mut s).unwrap();
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        std::io::Read::read_to_end(&mut err, &mut s).unwrap();
        s
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = String::from_utf8_lossy(&reader.join().unwrap()).into_owned();
    let stderr = String::from_utf8_lossy(&err_reader.join().unwrap()).into_owned();
    (status.and_then(|s| s.code()), stdout, stderr)
}

#[cfg(unix)]
#[test]
fn the_hostile_evidence_corpus_ends_in_findings_or_clear_errors_never_a_hang_or_a_panic() {
    let base = base();
    let all = cases();
    assert!(all.len() >= 60, "the corpus holds {} cases", all.len());
    let mut failures = Vec::new();
    for case in &all {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("mirror");
        copy_tree(&base.root, &root);
        let mirror = Mirror {
            root: root.clone(),
            base,
        };
        (case.damage)(&mirror);
        let (code, stdout, stderr) = run_case(&root, case.args);
        let problem = match (&case.expect, code) {
            (_, None) => Some("hung past 120 s, or was killed".to_string()),
            _ if stderr.contains("panicked") => Some(format!("panicked: {stderr}")),
            (Fatal(words), Some(2)) if stdout.is_empty() && stderr.contains(words) => None,
            (Fatal(words), c) => Some(format!(
                "expected exit 2 with {words:?} on stderr, got {c:?}: {stderr} {}",
                &stdout[..stdout.len().min(300)]
            )),
            (Rep(exit, kinds, unverified), Some(c)) => {
                match serde_json::from_str::<serde_json::Value>(&stdout) {
                    Err(e) => Some(format!("exit {c}, no JSON report ({e}): {stderr}")),
                    Ok(report) => {
                        let found: Vec<&str> = report["findings"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|f| f["kind"].as_str().unwrap())
                            .collect();
                        let has_unverified = !report["unverified"].as_array().unwrap().is_empty();
                        let missing: Vec<&&str> =
                            kinds.iter().filter(|k| !found.contains(k)).collect();
                        (c != *exit || !missing.is_empty() || has_unverified != *unverified)
                            .then(|| {
                                format!(
                                    "expected exit {exit} with {kinds:?} (unverified: {unverified}), got exit {c} with {found:?} (unverified: {})",
                                    report["unverified"]
                                )
                            })
                    }
                }
            }
        };
        if let Some(p) = problem {
            failures.push(format!("{}: {p}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Moving a copy's recorded time earlier narrows what a run looks at, but never silently: the
/// report says the range came from an unauthenticated manifest and counts what lies after it.
#[cfg(unix)]
#[test]
fn a_manifest_moved_earlier_cannot_hide_later_objects_without_the_report_saying_so() {
    let base = base();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mirror");
    copy_tree(&base.root, &root);
    let manifest = root.join(trailproof::store::local::MANIFEST);
    let text = std::fs::read_to_string(&manifest).unwrap();
    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    value["acquired_at"] = "2024-01-01T03:10:00Z".into();
    std::fs::write(&manifest, value.to_string()).unwrap();
    // Tampering after the recorded time.
    let late = base.logs[5][0].clone();
    std::fs::write(
        root.join(&late),
        trailproof::hash::gzip(b"{\"Records\":[]}"),
    )
    .unwrap();
    let (code, stdout, stderr) = run_case(&root, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let notes = report["notes"].to_string();
    assert!(
        notes.contains("no custody signature authenticates the manifest"),
        "{notes}"
    );
    assert!(notes.contains("lie after the end of the range"), "{notes}");
}

/// A whole trail copied under an 11-digit "account", or a folder that is no region, is never
/// silently ignored: the report counts and names it.
#[test]
fn folders_that_fit_no_folder_of_the_grammar_are_named_in_a_note() {
    let base = base();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mirror");
    copy_tree(&base.root, &root);
    copy_tree(
        &root.join("AWSLogs/111111111111"),
        &root.join("AWSLogs/11111111111"),
    );
    std::fs::create_dir_all(root.join("AWSLogs/111111111111/CloudTrail/not-a-region/2024"))
        .unwrap();
    let report = verify_dir(&root, test_keys(), |_| {});
    let note = report
        .notes
        .iter()
        .find(|n| n.contains("fit no folder CloudTrail writes"))
        .unwrap_or_else(|| panic!("{:#?}", report.notes));
    assert!(note.starts_with("2 folder(s)"), "{note}");
    assert!(note.contains("AWSLogs/11111111111/"), "{note}");
    assert!(note.contains("CloudTrail/not-a-region/"), "{note}");
}

/// A manifest whose acquisition time is moved into the past cannot turn an injected log into
/// "pending": CloudTrail's own signatures prove the bucket was observed at least as late as the
/// newest valid digest, and the report says the recorded time is unauthenticated.
#[cfg(unix)]
#[test]
fn an_acquisition_time_moved_into_the_past_cannot_make_injected_logs_pending() {
    let base = base();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mirror");
    copy_tree(&base.root, &root);
    let manifest = root.join(trailproof::store::local::MANIFEST);
    let mut value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    value["acquired_at"] = "2000-01-01T00:00:00Z".into();
    std::fs::write(&manifest, value.to_string()).unwrap();
    let log = &base.logs[1][0];
    let injected = log
        .replace("T0120Z_", "T0133Z_")
        .replace("T0140Z_", "T0133Z_");
    assert_ne!(&injected, log);
    std::fs::copy(root.join(log), root.join(&injected)).unwrap();
    let (code, stdout, stderr) = run_case(&root, &["--end", "2024-01-01T07:00:00Z"]);
    assert_eq!(code, Some(1), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let unlisted: Vec<&serde_json::Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "log_unlisted")
        .collect();
    assert_eq!(unlisted.len(), 1, "{:#?}", report["findings"]);
    assert_eq!(unlisted[0]["key"], injected.as_str());
    assert!(report["notes"]
        .to_string()
        .contains("no custody signature authenticates it"));
}

/// The range's last digest is deleted, and only the digest after the end (read to vouch for the
/// range's last logs) names it: it is still reported missing.
#[test]
fn the_last_digest_of_the_range_deleted_is_found_through_the_digest_after_the_end() {
    let scenario = make(small_spec());
    let d = scenario.digests();
    std::fs::remove_file(scenario.root.join(&d[3])).unwrap();
    let end = trailproof::parse_rfc3339("2024-01-01T04:00:00Z").unwrap();
    let report = verify_dir(&scenario.root, test_keys(), |o| o.end = end);
    let f = finding_of(&report, Kind::DigestMissing);
    assert_eq!(f.key.as_deref(), Some(d[3].as_str()));
    assert_eq!(f.digest.as_deref(), Some(d[4].as_str()));
    assert_eq!(report.scopes[0].digests.missing, 1);
    assert_eq!(report.exit_code, exit::FINDINGS);
}

/// With `--trail data`, deleting every digest of that trail must not make its logs vanish from
/// the report: logs belong to the folder, and no digest lists them.
#[test]
fn a_selected_trail_whose_digests_are_all_deleted_still_has_its_logs_judged() {
    let scenario = make(Spec {
        trails: vec!["management".into(), "data".into()],
        ..small_spec()
    });
    let digests = scenario
        .root
        .join("AWSLogs/111111111111/CloudTrail-Digest/us-east-1/2024/01/01");
    for entry in std::fs::read_dir(&digests).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains("_data_") {
            std::fs::remove_file(path).unwrap();
        }
    }
    let report = scenario.verify_with(|o| o.trails = vec!["data".into()]);
    let unlisted = report
        .findings
        .iter()
        .filter(|f| f.kind == Kind::LogUnlisted)
        .count();
    assert!(unlisted >= 6, "{:#?}", report.findings);
    assert_eq!(report.exit_code, exit::FINDINGS);
}
