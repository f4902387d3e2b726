//! Every renderer against one hand-built report holding every finding kind, unverified objects,
//! and hostile keys (markup, quotes, control characters): what each format must carry, and what
//! it must never let through. The HTML report is also loaded in a real headless Chromium.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use chrono::{Duration, TimeZone, Utc};
use trailproof::finding::{Finding, Kind, Unverified, Window};
use trailproof::layout::{digest_key, log_key, Location, ScopeId, Timestamp};
use trailproof::report::{self, Format, Report, ScopeSummary};

const HOSTILE: &str = "AWSLogs/<script>alert(\"x\")</script>/it's\u{1b}[31mred\u{7}.json.gz";

fn hour(h: i64) -> Timestamp {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap() + Duration::hours(h)
}

fn scope(trail: &str) -> ScopeId {
    ScopeId {
        location: Location {
            prefix: String::new(),
            org_id: Some("o-abcdefghij".into()),
            account: "111122223333".into(),
            region: "us-east-1".into(),
        },
        trail: trail.into(),
        home_region: "us-east-1".into(),
    }
}

/// A report with every finding kind: each in its own hour of trail "main".
fn every_kind() -> Report {
    let s = scope("main");
    let mut findings = Vec::new();
    for (i, kind) in Kind::ALL.iter().enumerate() {
        let h = i as i64;
        let (trail, key) = match kind {
            Kind::LogUnlisted | Kind::LogPending => (
                None,
                log_key(&s.location, hour(h) + Duration::minutes(20), "u"),
            ),
            k if k.as_str().starts_with("log_") => (
                Some("main"),
                log_key(&s.location, hour(h) + Duration::minutes(20), "l"),
            ),
            _ => (Some("main"), digest_key(&s, hour(h + 1), false)),
        };
        let key = if *kind == Kind::LogModified {
            HOSTILE.to_string()
        } else {
            key
        };
        let mut f = Finding::new(
            *kind,
            false,
            &s.location,
            trail,
            Some(&key),
            format!("{kind} happened to \"{key}\""),
        );
        if kind.as_str().starts_with("log_") {
            f = f.at(hour(h) + Duration::minutes(20));
        } else {
            f = f.window(Window(hour(h), hour(h + 1)));
        }
        if *kind == Kind::LogModified {
            f = f.hashes("a".repeat(64), "b".repeat(64));
        }
        findings.push(f);
    }
    findings.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    let mut main = ScopeSummary::new("audit-bucket", &s);
    main.covered = vec![Window(hour(0), hour(20))];
    main.digests.valid = 14;
    main.digests.invalid = 6;
    main.digests.missing = 1;
    main.logs.valid = 30;
    let other = ScopeSummary::new("audit-bucket", &scope("second"));
    let mut r = Report {
        schema_version: report::SCHEMA_VERSION,
        source: "s3://audit-bucket/".into(),
        bucket: "audit-bucket".into(),
        started_at: hour(30),
        finished_at: hour(30) + Duration::seconds(3),
        scopes: vec![main, other],
        findings,
        unverified: vec![
            Unverified {
                key: digest_key(&s, hour(22), false),
                cause: "access denied (403 AccessDenied)".into(),
            },
            Unverified {
                key: HOSTILE.into(),
                cause: "cause with <b>markup</b> & \u{1b}[2J".into(),
            },
            Unverified {
                key: "AWSLogs/222233334444/".into(),
                cause: "cannot list: access denied".into(),
            },
        ],
        ..Report::default()
    };
    r.range.end = hour(24);
    r.exit_code = r.decide_exit_code();
    r
}

#[test]
fn text_names_every_kind_escapes_control_characters_and_ends_with_the_verdict() {
    let r = every_kind();
    let plain = report::render(&r, Format::Text, false);
    for kind in Kind::ALL {
        assert!(plain.contains(kind.as_str()), "{kind}");
    }
    assert!(
        !plain.contains('\u{1b}') && !plain.contains('\u{7}'),
        "raw control characters in text"
    );
    assert!(plain.contains("\\u{1b}[31mred\\u{7}"), "{plain}");
    assert!(plain.contains("expected aaaa") && plain.contains("actual   bbbb"));
    assert!(plain.contains("Findings — o-abcdefghij/111122223333 us-east-1 main"));
    assert!(plain.contains("Findings — o-abcdefghij/111122223333 us-east-1 (log folder)"));
    assert!(plain
        .trim_end()
        .lines()
        .last()
        .unwrap()
        .starts_with("TAMPERING OR LOSS: 14 error finding(s)"));
    let colored = report::render(&r, Format::Text, true);
    assert!(colored.contains("\u{1b}[1;31merror"), "errors in red");
    assert!(colored.contains("\u{1b}[33mwarning"), "warnings in yellow");
}

#[test]
fn json_is_the_report_and_keeps_hostile_keys_exactly() {
    let r = every_kind();
    let v: serde_json::Value =
        serde_json::from_str(&report::render(&r, Format::Json, false)).unwrap();
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["exit_code"], 1);
    let kinds: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.len(), Kind::ALL.len());
    assert!(v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["key"] == HOSTILE));
    assert_eq!(v["unverified"][1]["key"], HOSTILE);
}

#[test]
fn junit_is_valid_xml_with_a_suite_per_scope_failures_for_errors_and_errors_for_unverified() {
    let r = every_kind();
    let xml = report::render(&r, Format::Junit, false);
    let doc = roxmltree::Document::parse(&xml).expect("valid XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let suites: Vec<_> = root
        .children()
        .filter(|n| n.has_tag_name("testsuite"))
        .collect();
    let names: Vec<&str> = suites
        .iter()
        .map(|s| s.attribute("name").unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "o-abcdefghij/111122223333/us-east-1/main",
            "o-abcdefghij/111122223333/us-east-1/log folder",
            "o-abcdefghij/111122223333/us-east-1/second",
            "trailproof run",
        ]
    );
    // Every error kind is a failure; warnings and info are not.
    let failure_types: std::collections::BTreeSet<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("failure"))
        .map(|n| n.attribute("type").unwrap())
        .collect();
    for kind in Kind::ALL {
        let is_error = kind.severity(false) == trailproof::finding::Severity::Error;
        assert_eq!(failure_types.contains(kind.as_str()), is_error, "{kind}");
    }
    // Counts agree with the elements.
    let failed_cases = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase") && n.children().any(|c| c.has_tag_name("failure")))
        .count();
    assert_eq!(
        root.attribute("failures")
            .unwrap()
            .parse::<usize>()
            .unwrap(),
        failed_cases
    );
    let errors: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("error"))
        .collect();
    assert!(errors
        .iter()
        .any(|e| e.attribute("message") == Some("access denied (403 AccessDenied)")));
    assert!(errors
        .iter()
        .any(|e| e.text().unwrap_or("").contains("AWSLogs/222233334444/")));
    // The hostile key comes back as text, not as markup.
    assert!(doc.descendants().all(|n| !n.has_tag_name("script")));
    assert!(doc.descendants().any(|n| n
        .text()
        .is_some_and(|t| t.contains("<script>alert(\"x\")</script>"))));
    assert!(!xml.contains('\u{1b}'));
}

#[test]
fn html_escapes_hostile_keys_and_carries_the_verdict_counts_and_timeline() {
    let r = every_kind();
    let html = report::render(&r, Format::Html, false);
    assert_eq!(
        html.matches("<script>").count(),
        1,
        "only the page's own script"
    );
    assert!(html.contains(
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;/it&#39;s\\u{1b}[31mred\\u{7}"
    ));
    assert!(!html.contains('\u{1b}'));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external assets"
    );
    assert!(html.contains(
        "id=\"verdict\" class=\"verdict exit-1\">TAMPERING OR LOSS: 14 error finding(s)"
    ));
    assert!(html.contains("<b id=\"count-errors\">14</b>"));
    for state in ["verified", "missing", "invalid", "unverified", "gap"] {
        assert!(html.contains(&format!("data-state=\"{state}\"")), "{state}");
    }
}

fn chromium() -> Option<String> {
    std::env::var("CHROMIUM").ok().or_else(|| {
        ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .iter()
            .find(|p| Path::new(p).exists())
            .map(|p| p.to_string())
    })
}

fn headless(binary: &str, args: &[&str]) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    Command::new(binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            // Containers often give /dev/shm 64 MB, too little for Chromium.
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=2000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn html_report_renders_in_a_real_browser_and_its_filters_work() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, report::render(&every_kind(), Format::Html, false)).unwrap();
    let url = format!("file://{}", page.display());

    let Some(binary) = common::needs(
        chromium().ok_or_else(|| "the HTML report is tested in Debian's chromium, which is not installed: apt-get install chromium (or set CHROMIUM to a Chromium binary)".to_string()),
        "html_report_renders_in_a_real_browser_and_its_filters_work",
    ) else {
        return;
    };
    let headless = |args: &[&str]| headless(&binary, args);
    let out = headless(&["--dump-dom", &url]);
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("TAMPERING OR LOSS: 14 error finding(s)"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        dom.contains("<b id=\"count-errors\">14</b>")
            && dom.contains("<b id=\"count-unverified\">3</b>")
    );
    assert_eq!(
        dom.matches("class=\"hidden\"").count(),
        0,
        "nothing hidden without a filter"
    );
    let shown = format!("<span id=\"shown\">{}</span>", Kind::ALL.len());
    assert!(dom.contains(&shown), "{shown}");

    // The filter, set from the address, runs in the page: only the log_modified row is shown.
    let out = headless(&["--dump-dom", &format!("{url}#kind=log_modified")]);
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains("<span id=\"shown\">1</span>"), "{dom}");
    assert_eq!(dom.matches("class=\"hidden\"").count(), Kind::ALL.len() - 1);

    let shot = dir.path().join("report.png");
    let out = headless(&[
        "--window-size=1280,1600",
        &format!("--screenshot={}", shot.display()),
        &url,
    ]);
    let png = std::fs::read(&shot)
        .unwrap_or_else(|_| panic!("no screenshot: {}", String::from_utf8_lossy(&out.stderr)));
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    if let Ok(keep) = std::env::var("TRAILPROOF_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
}

#[test]
fn every_format_on_stdout_is_only_the_report_with_the_same_exit_code_and_files_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("b");
    let key = common::fixture("keys/TEST-ONLY-signing-key.pem");
    let pem = common::fixture("keys/TEST-ONLY-public-key.pem");
    let out = Command::new(env!("CARGO_BIN_EXE_trailproof"))
        .args([
            "simulate",
            bucket.to_str().unwrap(),
            "--signing-key",
            key.to_str().unwrap(),
            "--tamper",
            "digest-deleted",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let files: Vec<_> = ["text", "json", "junit", "html"]
        .iter()
        .map(|f| (f, dir.path().join(format!("r.{f}"))))
        .collect();
    let mut args = vec![
        "verify".to_string(),
        bucket.display().to_string(),
        "--public-keys".into(),
        pem.display().to_string(),
    ];
    for (f, path) in &files {
        args.push("--report".into());
        args.push(format!("{f}={}", path.display()));
    }
    for format in ["text", "json", "junit", "html"] {
        let out = Command::new(env!("CARGO_BIN_EXE_trailproof"))
            .args(&args)
            .args(["--format", format, "--color", "always"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{format}");
        let stdout = String::from_utf8(out.stdout).unwrap();
        let want =
            std::fs::read_to_string(&files.iter().find(|(f, _)| **f == format).unwrap().1).unwrap();
        if format == "text" {
            assert!(stdout.contains("\u{1b}["), "--color always colours stdout");
            assert!(!want.contains('\u{1b}'), "report files are never coloured");
        } else {
            // Identical but for the run's own timestamps.
            let strip = |s: &str| {
                s.lines()
                    .filter(|l| {
                        !l.contains("_at")
                            && !l.contains("timestamp=")
                            && !l.contains("<dt>Run</dt>")
                    })
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            };
            let (got, file) = (strip(&stdout), strip(&want));
            assert!(got.len() > 5, "{format}: {stdout}");
            assert_eq!(got, file, "{format}");
        }
        assert!(
            out.stderr.is_empty(),
            "{format}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for (_, path) in &files {
        assert!(std::fs::metadata(path).unwrap().len() > 100);
    }
}

#[test]
fn completions_and_man_page_come_from_the_same_definitions() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(env!("CARGO_BIN_EXE_trailproof"))
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success());
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(
            script.contains("public-keys") && script.contains("acquire"),
            "{shell}"
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_trailproof"))
        .arg("man")
        .output()
        .unwrap();
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.starts_with(".ie") || page.contains(".TH"), "{page}");
    assert!(page.contains("trailproof"));
}

/// RFC 4180 rows, as a spreadsheet reads them.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = vec![];
    let (mut row, mut cell, mut quoted) = (vec![], String::new(), false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => row.push(std::mem::take(&mut cell)),
            ('\r', false) => {}
            ('\n', false) => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (c, _) => cell.push(c),
        }
    }
    rows
}

/// CSV: a header and one row per finding, every cell as the finding has it (a hostile key with
/// commas, quotes and newlines survives); a cell a spreadsheet would run as a formula starts
/// with `'`. JSON Lines: one finding per line, as in the JSON report.
#[test]
fn csv_and_jsonl_carry_every_finding_and_defuse_formulas() {
    let mut r = every_kind();
    r.findings[0].key = Some("=HYPERLINK(\"http://evil\",\"x\")".into());
    let rows = parse_csv(&report::render(&r, Format::Csv, false));
    assert_eq!(rows[0][0], "kind");
    assert_eq!(rows.len(), r.findings.len() + 1);
    let key_at = rows[0].iter().position(|c| c == "key").unwrap();
    let kind_at = rows[0].iter().position(|c| c == "kind").unwrap();
    for (row, f) in rows[1..].iter().zip(&r.findings) {
        assert_eq!(row.len(), rows[0].len());
        assert_eq!(row[kind_at], f.kind.as_str());
        let key = f.key.clone().unwrap_or_default();
        if key.starts_with('=') {
            assert_eq!(row[key_at], format!("'{key}"));
        } else {
            assert_eq!(row[key_at], key);
        }
    }
    assert!(rows.iter().any(|row| row[key_at] == HOSTILE));

    let jsonl = report::render(&r, Format::Jsonl, false);
    let lines: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), r.findings.len());
    for (line, f) in lines.iter().zip(&r.findings) {
        assert_eq!(line["kind"], f.kind.as_str());
        assert_eq!(line["key"].as_str(), f.key.as_deref());
    }
}

/// ASFF: one finding per error or warning, each with every attribute BatchImportFindings
/// requires, within its limits; Ids are stable across runs and distinct across findings; the
/// product ARN is the importing account's when given.
#[test]
fn asff_findings_carry_every_required_attribute_and_stable_ids() {
    use trailproof::finding::Severity;
    let r = every_kind();
    let parse = |arn: Option<&str>| -> Vec<serde_json::Value> {
        serde_json::from_str(&report::asff::render_asff(&r, arn)).unwrap()
    };
    let findings = parse(None);
    let wanted = r
        .findings
        .iter()
        .filter(|f| f.severity != Severity::Info)
        .count();
    assert_eq!(findings.len(), wanted);
    const REQUIRED: [&str; 12] = [
        "SchemaVersion",
        "Id",
        "ProductArn",
        "GeneratorId",
        "AwsAccountId",
        "Types",
        "CreatedAt",
        "UpdatedAt",
        "Severity",
        "Title",
        "Description",
        "Resources",
    ];
    let mut ids = BTreeSet::new();
    for f in &findings {
        for attribute in REQUIRED {
            assert!(!f[attribute].is_null(), "{attribute} missing in {f}");
        }
        assert_eq!(f["SchemaVersion"], "2018-10-08");
        let id = f["Id"].as_str().unwrap();
        assert!(id.len() <= 512 && ids.insert(id.to_string()), "{id}");
        assert!(f["AwsAccountId"].as_str().unwrap().len() == 12);
        assert!(f["Title"].as_str().unwrap().chars().count() <= 256);
        assert!(f["Description"].as_str().unwrap().chars().count() <= 1024);
        let types = f["Types"].as_array().unwrap();
        assert!(types
            .iter()
            .all(|t| t.as_str().unwrap().split('/').count() >= 2));
        assert!(["HIGH", "MEDIUM"].contains(&f["Severity"]["Label"].as_str().unwrap()));
        let resource = &f["Resources"][0];
        assert!(resource["Id"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:s3:::"));
        assert!(["AwsS3Object", "AwsS3Bucket"].contains(&resource["Type"].as_str().unwrap()));
        assert!(f["ProductArn"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:securityhub:"));
    }
    // The same finding has the same Id in another run (another time of finding).
    let mut later = every_kind();
    later.finished_at += Duration::days(1);
    let again: Vec<serde_json::Value> =
        serde_json::from_str(&report::asff::render_asff(&later, None)).unwrap();
    for (a, b) in findings.iter().zip(&again) {
        assert_eq!(a["Id"], b["Id"]);
        assert_ne!(a["UpdatedAt"], b["UpdatedAt"]);
    }
    let product = "arn:aws:securityhub:eu-west-1:999999999999:product/999999999999/default";
    assert!(parse(Some(product))
        .iter()
        .all(|f| f["ProductArn"] == product));
}

/// py-ocsf-models (tests/requirements.txt), if installed.
fn ocsf_models() -> Result<(), String> {
    let out = Command::new("python3")
        .args(["-c", "import py_ocsf_models"])
        .output()
        .map_err(|e| format!("python3 cannot run: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err("the OCSF test validates with py-ocsf-models: python3 -m pip install -r tests/requirements.txt".into())
    }
}

#[test]
fn ocsf_detection_findings_validate_with_py_ocsf_models_and_record_passes_too() {
    let Some(()) = common::needs(
        ocsf_models(),
        "ocsf_detection_findings_validate_with_py_ocsf_models_and_record_passes_too",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let validate = |report: &Report, name: &str| -> Vec<serde_json::Value> {
        let text = report::render(report, Format::Ocsf, false);
        let path = dir.path().join(name);
        std::fs::write(&path, &text).unwrap();
        let out = Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/ocsf_validate.py"
            ))
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str(&text).unwrap()
    };
    // Every kind: a record per finding, none a pass (the scope has errors).
    let r = every_kind();
    let records = validate(&r, "every-kind.json");
    assert_eq!(records.len(), r.findings.len());
    let mut uids = BTreeSet::new();
    for (record, finding) in records.iter().zip(&r.findings) {
        assert_eq!(record["class_uid"], 2004);
        assert_eq!(record["type_uid"], 200401);
        assert!(uids.insert(record["finding_info"]["uid"].to_string()));
        let types = record["finding_info"]["types"].to_string();
        assert!(types.contains(finding.kind.as_str()), "{types}");
        let severity = record["severity_id"].as_i64().unwrap();
        match finding.severity {
            trailproof::finding::Severity::Error => assert_eq!(severity, 4),
            trailproof::finding::Severity::Warning => assert_eq!(severity, 3),
            trailproof::finding::Severity::Info => assert_eq!(severity, 1),
        }
    }
    // A clean run: one passing record per scope, resolved.
    let clean = common::make(common::small_spec()).verify();
    assert!(clean.findings.is_empty());
    let records = validate(&clean, "clean.json");
    assert_eq!(records.len(), clean.scopes.len());
    assert_eq!(records[0]["status_id"], 4);
    assert_eq!(records[0]["severity_id"], 1);
    // The same finding keeps its uid in a later run.
    let mut later = every_kind();
    later.finished_at += Duration::days(1);
    let again = validate(&later, "later.json");
    for (a, b) in records_of(&every_kind()).iter().zip(&again) {
        assert_eq!(a["finding_info"]["uid"], b["finding_info"]["uid"]);
    }
}

fn records_of(report: &Report) -> Vec<serde_json::Value> {
    serde_json::from_str(&report::render(report, Format::Ocsf, false)).unwrap()
}
