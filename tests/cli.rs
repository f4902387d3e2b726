//! The real binary: exit codes, what goes to stdout and stderr, report files, and the bundled
//! demo bucket.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::fixture;

fn trailproof(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trailproof"))
        .args(args)
        // No instance-metadata look-ups for credentials on a build machine.
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("the binary runs")
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited normally")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn demo() -> String {
    fixture("demo-bucket").display().to_string()
}

fn pem() -> String {
    fixture("keys/TEST-ONLY-public-key.pem")
        .display()
        .to_string()
}

/// The arguments that made `fixtures/demo-bucket` (also in README.md).
const DEMO_ARGS: &[&str] = &[
    "--account",
    "111111111111",
    "--account",
    "o-exampleorg1/222222222222",
    "--account",
    "central-logs/333333333333",
    "--source-region",
    "us-east-1",
    "--source-region",
    "eu-west-1",
    "--trail",
    "management",
    "--trail",
    "data_events",
    "--hours",
    "6",
    "--logs-per-hour",
    "2",
    "--log-bytes",
    "3000",
    "--backfill",
    "--restart-at",
    "3",
    "--escape-slashes",
];

fn simulate(dir: &Path, extra: &[&str]) {
    let key = fixture("keys/TEST-ONLY-signing-key.pem");
    let mut args = vec![
        "simulate",
        dir.to_str().unwrap(),
        "--signing-key",
        key.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = trailproof(&args);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
}

fn files(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push((
                    path.strip_prefix(root).unwrap().to_path_buf(),
                    std::fs::read(&path).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn demo_bucket_verifies_with_exit_0_and_a_per_scope_summary() {
    let out = trailproof(&["verify", &demo(), "--public-keys", &pem()]);
    let stdout = text(&out.stdout);
    assert_eq!(code(&out), 0, "{stdout}{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "stderr: {}", text(&out.stderr));
    assert!(
        stdout.contains("12 scope(s), 72 digest(s), 143 listed log(s): 0 error(s), 1 warning(s)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("o-exampleorg1/222222222222 eu-west-1 data_events"),
        "{stdout}"
    );
    assert!(
        stdout.contains("central-logs/ 333333333333 us-east-1 management"),
        "{stdout}"
    );
    assert!(stdout.contains("chain_restart"), "{stdout}");
    let verdict = stdout.trim_end().lines().last().unwrap();
    assert_eq!(
        verdict,
        "VERIFIED: every object in scope is exactly what CloudTrail delivered (12 scope(s), 71 hour(s), 72 digest(s), 143 log(s))"
    );
}

#[test]
fn demo_bucket_is_small_and_regenerates_byte_identically() {
    let dir = tempfile::tempdir().unwrap();
    let again = dir.path().join("demo-bucket");
    simulate(&again, DEMO_ARGS);
    let (want, got) = (files(&fixture("demo-bucket")), files(&again));
    assert_eq!(want.len(), got.len());
    for (w, g) in want.iter().zip(&got) {
        assert_eq!(w.0, g.0);
        assert!(w.1 == g.1, "{} differs", w.0.display());
    }
    let size: usize = want.iter().map(|(_, b)| b.len()).sum();
    assert!(size < 1_000_000, "{size} bytes");
}

#[test]
fn json_on_stdout_is_the_whole_report_and_report_files_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let (json_path, text_path) = (dir.path().join("r.json"), dir.path().join("r.txt"));
    let out = trailproof(&[
        "verify",
        &demo(),
        "--public-keys",
        &fixture("keys/TEST-ONLY-list-public-keys.json")
            .display()
            .to_string(),
        "--format",
        "json",
        "--report",
        &format!("json={}", json_path.display()),
        "--report",
        &format!("text={}", text_path.display()),
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is only JSON");
    assert_eq!(report["schema_version"], 1);
    assert_eq!(report["exit_code"], 0);
    assert_eq!(report["bucket"], "demo-bucket");
    assert_eq!(report["scopes"].as_array().unwrap().len(), 12);
    assert_eq!(
        report["keys"][0]["fingerprint"],
        "450056d9d94e6b7945e0a681a9df2614"
    );
    assert_eq!(report["findings"][0]["kind"], "chain_restart");
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    assert_eq!(file["scopes"], report["scopes"]);
    assert!(std::fs::read_to_string(&text_path)
        .unwrap()
        .contains("VERIFIED"));
}

#[test]
fn tampering_exits_1_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("b");
    simulate(
        &bucket,
        &["--tamper", "log-modified", "--tamper", "digest-deleted"],
    );
    for format in ["text", "json"] {
        let out = trailproof(&[
            "verify",
            bucket.to_str().unwrap(),
            "--public-keys",
            &pem(),
            "--format",
            format,
        ]);
        assert_eq!(code(&out), 1, "{format}");
        let stdout = text(&out.stdout);
        assert!(
            stdout.contains("digest_missing")
                && (stdout.contains("log in these hours") || stdout.contains("\"logs\"")),
            "{stdout}"
        );
    }
}

#[test]
fn fatal_problems_exit_2_with_the_cause_on_stderr_and_nothing_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(
        &junk,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["verify".into(), demo()], "no trusted public keys"),
        (
            vec![
                "verify".into(),
                demo(),
                "--public-keys".into(),
                junk.display().to_string(),
            ],
            "junk.pem",
        ),
        (
            vec![
                "verify".into(),
                "/nonexistent/mirror".into(),
                "--public-keys".into(),
                pem(),
            ],
            "/nonexistent/mirror",
        ),
        (
            vec![
                "verify".into(),
                "s3://bucket".into(),
                "--public-keys".into(),
                pem(),
            ],
            "no AWS credentials found",
        ),
        (
            vec![
                "verify".into(),
                demo(),
                "--public-keys".into(),
                pem(),
                "--start".into(),
                "2024-02-01".into(),
                "--end".into(),
                "2024-01-01T00:00:00Z".into(),
            ],
            "the start must come first",
        ),
        (
            vec![
                "verify".into(),
                demo(),
                "--start".into(),
                "yesterday".into(),
            ],
            "not a time",
        ),
        (
            vec!["verify".into(), demo(), "--no-such-flag".into()],
            "--no-such-flag",
        ),
    ];
    for (args, says) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = trailproof(&args);
        assert_eq!(code(&out), 2, "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out.stdout));
        assert!(
            text(&out.stderr).contains(says),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn a_range_with_nothing_in_it_exits_2_and_says_so() {
    let out = trailproof(&[
        "verify",
        &demo(),
        "--public-keys",
        &pem(),
        "--start",
        "2030-01-01",
        "--end",
        "2030-01-02",
    ]);
    assert_eq!(code(&out), 2);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("nothing to verify") && stdout.contains("INCOMPLETE"),
        "{stdout}"
    );
}

#[test]
fn simulate_refuses_a_folder_that_is_not_empty() {
    let out = trailproof(&[
        "simulate",
        &demo(),
        "--signing-key",
        &fixture("keys/TEST-ONLY-signing-key.pem")
            .display()
            .to_string(),
    ]);
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("not empty"));
}

#[test]
fn report_paths_are_checked_before_the_run_and_a_failed_write_keeps_the_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("b");
    simulate(&bucket, &["--tamper", "log-modified"]);
    let same = dir.path().join("r.out");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                format!("json={}", same.display()),
                format!("junit={}", same.display()),
            ],
            "name the same file",
        ),
        (
            vec![format!("json={}", bucket.join("report.json").display())],
            "inside the source",
        ),
        (
            vec!["json=/nonexistent/r.json".into()],
            "/nonexistent/r.json",
        ),
        (
            vec![format!("json={}", dir.path().join("link.json").display())],
            "symbolic link",
        ),
        (
            vec![format!("json={}", dir.path().join("hard.json").display())],
            "hard links",
        ),
    ];
    let evidence = bucket.join("trailproof-manifest.json");
    std::fs::hard_link(&evidence, dir.path().join("hard.json")).unwrap();
    let manifest_before = std::fs::read(&evidence).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(bucket.join("report.json"), dir.path().join("link.json")).unwrap();
    for (reports, words) in cases {
        let mut args = vec![
            "verify".to_string(),
            bucket.display().to_string(),
            "--public-keys".into(),
            pem(),
        ];
        for r in &reports {
            args.push("--report".into());
            args.push(r.clone());
        }
        let out = trailproof(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(code(&out), 2, "{reports:?}");
        assert!(out.stdout.is_empty(), "{reports:?}");
        assert!(text(&out.stderr).contains(words), "{}", text(&out.stderr));
    }
    assert!(
        !bucket.join("report.json").exists(),
        "nothing written into the evidence"
    );
    assert_eq!(std::fs::read(&evidence).unwrap(), manifest_before);

    // A file that opens but cannot be written: the error is said, the report still reaches
    // standard output, and the tampering verdict stays 1.
    #[cfg(target_os = "linux")]
    {
        let out = trailproof(&[
            "verify",
            bucket.to_str().unwrap(),
            "--public-keys",
            &pem(),
            "--report",
            "json=/dev/full",
        ]);
        assert_eq!(code(&out), 1);
        assert!(text(&out.stdout).contains("log_modified"));
        assert!(
            text(&out.stderr).contains("/dev/full"),
            "{}",
            text(&out.stderr)
        );
    }
}

#[test]
fn expect_and_deny_flags_change_the_verdict_of_the_demo_bucket() {
    let base = [
        "verify",
        &demo(),
        "--public-keys",
        &pem(),
        "--format",
        "json",
    ]
    .map(String::from);
    let run = |more: &[&str]| {
        let mut args: Vec<&str> = base.iter().map(String::as_str).collect();
        args.extend_from_slice(more);
        trailproof(&args)
    };
    assert_eq!(code(&run(&[])), 0);
    let out = run(&["--expect-region", "ap-south-1"]);
    assert_eq!(code(&out), 1);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["kind"] == "scope_missing")
            .count(),
        1
    );
    assert_eq!(
        code(&run(&[
            "--expect-region",
            "us-east-1",
            "--expect-region",
            "eu-west-1"
        ])),
        0
    );
    // The demo's one warning is its chain restart.
    assert_eq!(code(&run(&["--deny", "warnings"])), 1);
    assert_eq!(code(&run(&["--deny", "chain_restart"])), 1);
    assert_eq!(code(&run(&["--deny", "log_pending"])), 0);
    let out = run(&["--deny", "nonsense"]);
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("chain_restart"));
}

#[test]
fn the_objects_report_has_a_line_per_object_examined_with_its_outcome_and_hash() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("b");
    simulate(
        &bucket,
        &["--tamper", "log-modified", "--tamper", "log-unlisted"],
    );
    let path = dir.path().join("objects.jsonl");
    let out = trailproof(&[
        "verify",
        bucket.to_str().unwrap(),
        "--public-keys",
        &pem(),
        "--report",
        &format!("objects={}", path.display()),
        "--format",
        "json",
    ]);
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let outcome = |kind: &str| {
        lines
            .iter()
            .filter(|l| l["outcome"] == kind)
            .collect::<Vec<_>>()
    };
    // 6 digests and 12 listed logs, plus the unlisted one.
    assert_eq!(lines.iter().filter(|l| l["object"] == "digest").count(), 6);
    assert_eq!(lines.iter().filter(|l| l["object"] == "log").count(), 13);
    let modified = outcome("log_modified");
    assert_eq!(modified.len(), 1);
    let finding = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "log_modified")
        .unwrap();
    assert_eq!(modified[0]["key"], finding["key"]);
    assert_eq!(modified[0]["sha256"], finding["actual"]);
    assert_eq!(modified[0]["digest"], finding["digest"]);
    assert_eq!(outcome("log_unlisted").len(), 1);
    assert!(outcome("valid")
        .iter()
        .all(|l| l["sha256"].as_str().is_some_and(|h| h.len() == 64)));

    let out = trailproof(&[
        "verify",
        bucket.to_str().unwrap(),
        "--public-keys",
        &pem(),
        "--format",
        "objects",
    ]);
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("--report objects=PATH"));
}

/// A wrong --public-keys file: every digest names an unknown key. The findings stay errors (a
/// forger's key looks the same), but the report says that no digest verified under any trusted
/// key, and the table shows 0 hours, never -0.
#[test]
fn a_wrong_key_file_is_named_as_the_likely_cause_and_hours_show_0() {
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join("other.pem");
    let public = dir.path().join("other.pub.pem");
    let ok = |c: &mut Command| {
        c.stderr(std::process::Stdio::null())
            .status()
            .unwrap()
            .success()
    };
    assert!(ok(Command::new("openssl")
        .args(["genrsa", "-traditional", "-out"])
        .arg(&private)
        .arg("2048")));
    assert!(ok(Command::new("openssl")
        .args(["rsa", "-RSAPublicKey_out", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public)));
    let out = trailproof(&["verify", &demo(), "--public-keys", public.to_str().unwrap()]);
    assert_eq!(code(&out), 1);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("no digest verified under any trusted key"),
        "{stdout}"
    );
    assert!(stdout.contains("digest_key_unknown"));
    assert!(!stdout.contains(" -0 "), "{stdout}");
}

/// `trailproof man` has a page per subcommand, documenting every option of it.
#[test]
fn man_has_a_page_per_subcommand_with_every_option() {
    let out = trailproof(&["man", "verify"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let page = text(&out.stdout).replace("\\-", "-");
    assert!(page.contains(".TH trailproof-verify"), "{page}");
    for option in [
        "--source-region",
        "--region",
        "--endpoint-url",
        "--cloudtrail-endpoint-url",
        "--sts-endpoint-url",
        "--addressing-style",
        "--ca-bundle",
        "--expect-account",
        "--report",
        "--deny",
        "--debug",
    ] {
        assert!(page.contains(option), "man verify lacks {option}");
    }
    let out = trailproof(&["man", "keys", "fetch"]);
    assert_eq!(code(&out), 0);
    assert!(text(&out.stdout).contains(".TH trailproof-keys-fetch"));
    let out = trailproof(&["man", "nosuch"]);
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("no subcommand \"nosuch\""));
}

/// Completion scripts offer the values of --format, --color and --tamper.
#[test]
fn completions_offer_the_values_of_format_color_and_tamper() {
    let out = trailproof(&["completions", "bash"]);
    assert_eq!(code(&out), 0);
    let script = text(&out.stdout);
    for values in ["text json junit html", "auto always never", "log-modified"] {
        assert!(script.contains(values), "completions lack {values:?}");
    }
}

/// `--tamper help` lists the kinds of damage and exits 0; an unknown kind exits 2.
#[test]
fn tamper_help_lists_the_kinds_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("b");
    let key = fixture("keys/TEST-ONLY-signing-key.pem")
        .display()
        .to_string();
    let out = trailproof(&[
        "simulate",
        target.to_str().unwrap(),
        "--signing-key",
        &key,
        "--tamper",
        "help",
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let listed = text(&out.stdout);
    assert!(
        listed.contains("log-modified") && listed.contains("region-deleted"),
        "{listed}"
    );
    assert!(!target.exists(), "help wrote a bucket");
    let out = trailproof(&[
        "simulate",
        target.to_str().unwrap(),
        "--signing-key",
        &key,
        "--tamper",
        "nosuch",
    ]);
    assert_eq!(code(&out), 2);
}

/// `--report FORMAT=-` is standard output's report; no file named `-` is made.
#[test]
fn a_report_path_of_dash_is_standard_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_trailproof"))
        .args([
            "verify",
            &demo(),
            "--public-keys",
            &pem(),
            "--report",
            "json=-",
            "-q",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["exit_code"], 0);
    assert!(!dir.path().join("-").exists());
    let out = trailproof(&[
        "verify",
        &demo(),
        "--public-keys",
        &pem(),
        "--report",
        "json=-",
        "--report",
        "junit=-",
    ]);
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("standard output takes one report"));
}

/// simulate never uploads forged digests to AWS's own S3 unless told --allow-aws.
#[test]
fn simulate_to_aws_s3_needs_allow_aws() {
    let key = fixture("keys/TEST-ONLY-signing-key.pem")
        .display()
        .to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_trailproof"))
        .args(["simulate", "s3://some-real-bucket", "--signing-key", &key])
        .env_clear()
        .env("HOME", "/nonexistent")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", "k")
        .env("AWS_SECRET_ACCESS_KEY", "s")
        // Were the refusal missing, the upload would fail here rather than reach AWS.
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert_eq!(code(&out), 2);
    let says = text(&out.stderr);
    assert!(
        says.contains("--allow-aws") && says.contains("s3://some-real-bucket"),
        "{says}"
    );
}
