//! Open Cybersecurity Schema Framework (OCSF) 1.5.0 Detection Findings (class 2004), for security
//! data lakes and GRC tools: a JSON array with one finding per finding of every severity, and one
//! record per scope that verified in full, so that the passes are on record as well as the
//! failures (PCI DSS 10.5). A finding's `finding_info.uid` is its ASFF `Id`, the same in every run;
//! a scope's record has a stable uid of its own. The records use OCSF's cloud profile.

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::{Report, ScopeSummary};
use crate::finding::{Finding, Severity};
use crate::layout::{parse_digest_key, parse_log_key};

/// The OCSF schema version the records follow.
pub const OCSF_VERSION: &str = "1.5.0";
/// The kind named in a scope's pass record (`finding_info.types`: `trailproof/scope_verified`).
pub const SCOPE_VERIFIED: &str = "scope_verified";
/// A scope's pass record's message.
pub const VERIFIED_MESSAGE: &str = "every digest and log of this scope verified";

/// Detection Finding, in the Findings category; every record is its finding's creation.
const CLASS_UID: u32 = 2004;
const CATEGORY_UID: u32 = 2;
const ACTIVITY_CREATE: u32 = 1;
const TYPE_UID: u32 = CLASS_UID * 100 + ACTIVITY_CREATE;
/// `status_id` and `status`.
const STATUS_NEW: (u32, &str) = (1, "New");
const STATUS_RESOLVED: (u32, &str) = (4, "Resolved");
/// `severity_id` and `severity` of a pass.
const INFORMATIONAL: (u32, &str) = (1, "Informational");
/// `cloud.account.type_id` for an AWS account.
const AWS_ACCOUNT: u32 = 10;

/// `severity_id` and `severity`: errors are evidence of tampering or loss and need action now.
fn severity(s: Severity) -> (u32, &'static str) {
    match s {
        Severity::Error => (4, "High"),
        Severity::Warning => (3, "Medium"),
        Severity::Info => INFORMATIONAL,
    }
}

/// A scope's pass record's uid: what the scope is, never when it was verified.
pub fn scope_uid(bucket: &str, s: &ScopeSummary) -> String {
    let mut h = Sha256::new();
    for part in [
        SCOPE_VERIFIED,
        bucket,
        &s.prefix,
        s.org_id.as_deref().unwrap_or(""),
        &s.account,
        &s.region,
        &s.trail,
        &s.home_region,
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    format!("trailproof/{}", hex::encode(h.finalize()))
}

/// `kind in account region trail`, leaving out what is not known.
fn title(kind: &str, place: &[&str]) -> String {
    let place: Vec<&str> = place.iter().copied().filter(|p| !p.is_empty()).collect();
    if place.is_empty() {
        kind.to_string()
    } else {
        format!("{kind} in {}", place.join(" "))
    }
}

/// The cloud profile's `cloud`: AWS, and the account, region and organization where known.
/// trailproof knows no account names, so an account's name is its id.
fn cloud(account: &str, region: &str, org_id: Option<&str>) -> Value {
    let mut cloud = json!({ "provider": "AWS" });
    if !account.is_empty() {
        cloud["account"] = json!({
            "uid": account,
            "name": account,
            "type": "AWS Account",
            "type_id": AWS_ACCOUNT,
        });
    }
    if !region.is_empty() {
        cloud["region"] = json!(region);
    }
    if let Some(org) = org_id {
        cloud["org"] = json!({ "uid": org });
    }
    cloud
}

/// What every record has.
struct Record<'a> {
    uid: String,
    kind: &'a str,
    title: String,
    desc: String,
    message: String,
    severity: (u32, &'static str),
    status: (u32, &'static str),
    cloud: Value,
    resources: Vec<Value>,
}

fn record(report: &Report, r: Record<'_>) -> Value {
    let metadata = json!({
        "version": OCSF_VERSION,
        "profiles": ["cloud"],
        "product": {
            "name": "trailproof",
            "vendor_name": "trailproof",
            "version": env!("CARGO_PKG_VERSION"),
        },
    });
    let finding_info = json!({
        "uid": r.uid,
        "title": r.title,
        "desc": r.desc,
        "types": [format!("trailproof/{}", r.kind)],
    });
    json!({
        "activity_id": ACTIVITY_CREATE,
        "activity_name": "Create",
        "category_uid": CATEGORY_UID,
        "category_name": "Findings",
        "class_uid": CLASS_UID,
        "class_name": "Detection Finding",
        "type_uid": TYPE_UID,
        "type_name": "Detection Finding: Create",
        "severity_id": r.severity.0,
        "severity": r.severity.1,
        "status_id": r.status.0,
        "status": r.status.1,
        "time": report.finished_at.timestamp_millis(),
        "message": r.message,
        "metadata": metadata,
        "finding_info": finding_info,
        "cloud": r.cloud,
        "resources": r.resources,
    })
}

/// `Some` values of `fields`, by name.
fn present(fields: &[(&str, &Option<String>)]) -> Map<String, Value> {
    let mut map = Map::new();
    for (name, value) in fields {
        if let Some(v) = value {
            map.insert(name.to_string(), json!(v));
        }
    }
    map
}

fn finding_record(report: &Report, f: &Finding) -> Value {
    let kind = f.kind.as_str();
    let resource = match &f.key {
        Some(key) => json!({
            "uid": format!("arn:aws:s3:::{}/{key}", report.bucket),
            "name": key,
            "type": "AWS::S3::Object",
        }),
        None => json!({
            "uid": format!("arn:aws:s3:::{}", report.bucket),
            "name": report.bucket,
            "type": "AWS::S3::Bucket",
        }),
    };
    let trail = f.trail.as_deref().unwrap_or("");
    let mut v = record(
        report,
        Record {
            uid: super::asff::finding_id(&report.bucket, f),
            kind,
            title: title(kind, &[f.account.as_str(), f.region.as_str(), trail]),
            desc: f.message.clone(),
            message: f.message.clone(),
            severity: severity(f.severity),
            status: STATUS_NEW,
            cloud: cloud(&f.account, &f.region, f.org_id.as_deref()),
            resources: vec![resource],
        },
    );
    // The hours the finding is about, or the instant (a log's name time).
    match (f.window, f.time) {
        (Some(w), _) => {
            v["start_time"] = json!(w.0.timestamp_millis());
            v["end_time"] = json!(w.1.timestamp_millis());
        }
        (None, Some(t)) => {
            v["start_time"] = json!(t.timestamp_millis());
            v["end_time"] = json!(t.timestamp_millis());
        }
        (None, None) => {}
    }
    let mut evidence = present(&[
        ("expected", &f.expected),
        ("actual", &f.actual),
        ("digest", &f.digest),
    ]);
    if let Some(w) = &f.window {
        evidence.insert("window".to_string(), json!(w.to_string()));
    }
    if !f.logs.is_empty() {
        evidence.insert("logs".to_string(), json!(f.logs));
    }
    if !evidence.is_empty() {
        v["evidences"] = json!([{ "data": evidence }]);
    }
    let mut unmapped = present(&[("trail", &f.trail), ("org_id", &f.org_id)]);
    unmapped.insert("kind".to_string(), json!(kind));
    unmapped.insert("severity".to_string(), json!(f.severity.to_string()));
    if !f.prefix.is_empty() {
        unmapped.insert("prefix".to_string(), json!(f.prefix));
    }
    v["unmapped"] = json!({ "trailproof": unmapped });
    v
}

/// Whether `f` is about `s`: a finding without a trail is about every trail of its log folder.
fn in_scope(f: &Finding, s: &ScopeSummary) -> bool {
    f.account == s.account
        && f.region == s.region
        && f.prefix == s.prefix
        && f.org_id == s.org_id
        && f.trail.as_deref().is_none_or(|t| t == s.trail)
}

/// Whether the unverified object `key` belongs to `s`.
fn unverified_in_scope(key: &str, s: &ScopeSummary) -> bool {
    let location = s.location();
    parse_digest_key(key).is_some_and(|n| n.scope.location == location && n.scope.trail == s.trail)
        || parse_log_key(key).is_some_and(|n| n.location == location)
}

/// Whether every digest and log of `s` verified: at least one valid digest, none invalid,
/// missing or unchecked, no log modified, corrupt, missing, unlisted or unchecked, no gap in its
/// chain, and no error or warning finding about it. Pending logs (newer than its last digest)
/// are info findings of their own and do not stop a pass.
fn scope_verified(report: &Report, s: &ScopeSummary) -> bool {
    let (d, l) = (&s.digests, &s.logs);
    d.valid > 0
        && d.invalid == 0
        && d.missing == 0
        && d.unverified == 0
        && l.modified == 0
        && l.corrupt == 0
        && l.missing == 0
        && l.unlisted == 0
        && l.unverified == 0
        && s.gaps.is_empty()
        && !report
            .findings
            .iter()
            .any(|f| f.severity != Severity::Info && in_scope(f, s))
        && !report
            .unverified
            .iter()
            .any(|u| unverified_in_scope(&u.key, s))
}

fn scope_record(report: &Report, s: &ScopeSummary) -> Value {
    let message = if s.logs.pending > 0 {
        format!(
            "{VERIFIED_MESSAGE}; {} log(s) newer than its last digest are pending, each reported as log_pending",
            s.logs.pending
        )
    } else {
        VERIFIED_MESSAGE.to_string()
    };
    let location = s.location();
    let mut v = record(
        report,
        Record {
            uid: scope_uid(&report.bucket, s),
            kind: SCOPE_VERIFIED,
            title: title(
                SCOPE_VERIFIED,
                &[s.account.as_str(), s.region.as_str(), s.trail.as_str()],
            ),
            desc: format!(
                "{}: {message} ({} digest(s), {} log(s))",
                s.display_name(),
                s.digests.valid,
                s.logs.valid
            ),
            message,
            severity: INFORMATIONAL,
            status: STATUS_RESOLVED,
            cloud: cloud(&s.account, &s.region, s.org_id.as_deref()),
            resources: vec![
                json!({
                    "uid": format!("arn:aws:s3:::{}", report.bucket),
                    "name": report.bucket,
                    "type": "AWS::S3::Bucket",
                }),
                json!({
                    "name": s.trail,
                    "type": "AWS::CloudTrail::Trail",
                    "region": s.home_region,
                }),
            ],
        },
    );
    // The hours its valid digests cover.
    if let (Some(start), Some(end)) = (
        s.covered.iter().map(|w| w.0).min(),
        s.covered.iter().map(|w| w.1).max(),
    ) {
        v["start_time"] = json!(start.timestamp_millis());
        v["end_time"] = json!(end.timestamp_millis());
    }
    v["evidences"] = json!([{
        "data": {
            "digests": s.digests,
            "logs": s.logs,
            "covered_hours": s.covered_hours(),
            "digest_folder": location.digest_folder(),
            "log_folder": location.log_folder(),
        },
    }]);
    let mut unmapped = present(&[("org_id", &s.org_id)]);
    unmapped.insert("kind".to_string(), json!(SCOPE_VERIFIED));
    unmapped.insert("trail".to_string(), json!(s.trail));
    unmapped.insert("home_region".to_string(), json!(s.home_region));
    if !s.prefix.is_empty() {
        unmapped.insert("prefix".to_string(), json!(s.prefix));
    }
    v["unmapped"] = json!({ "trailproof": unmapped });
    v
}

/// Every finding, then a pass record for each scope that verified in full.
pub fn render_ocsf(report: &Report) -> String {
    let mut records: Vec<Value> = report
        .findings
        .iter()
        .map(|f| finding_record(report, f))
        .collect();
    records.extend(
        report
            .scopes
            .iter()
            .filter(|s| scope_verified(report, s))
            .map(|s| scope_record(report, s)),
    );
    let mut out = serde_json::to_string_pretty(&records).expect("values serialize");
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Kind;
    use crate::layout::{Location, ScopeId};

    fn location() -> Location {
        Location {
            prefix: String::new(),
            org_id: None,
            account: "111122223333".into(),
            region: "us-east-1".into(),
        }
    }

    fn report() -> Report {
        Report {
            bucket: "b".into(),
            finished_at: crate::parse_rfc3339("2024-01-02T03:04:05.678Z").unwrap(),
            ..Report::default()
        }
    }

    fn render(report: &Report) -> Vec<Value> {
        let out: Value = serde_json::from_str(&render_ocsf(report)).unwrap();
        out.as_array().unwrap().clone()
    }

    #[test]
    fn every_finding_is_a_detection_finding_with_its_asff_id_and_severity() {
        let mut report = report();
        let l = location();
        let key = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/01/01/x.json.gz";
        report.findings.push(Finding::new(
            Kind::LogModified,
            false,
            &l,
            Some("t"),
            Some(key),
            "modified",
        ));
        report.findings.push(Finding::new(
            Kind::ChainRestart,
            false,
            &l,
            Some("t"),
            None,
            "restart",
        ));
        report.findings.push(Finding::new(
            Kind::LogPending,
            false,
            &l,
            None,
            Some(key),
            "pending",
        ));
        let list = render(&report);
        assert_eq!(list.len(), 3);
        let severities: Vec<u64> = list
            .iter()
            .map(|v| v["severity_id"].as_u64().unwrap())
            .collect();
        assert_eq!(severities, [4, 3, 1]);
        assert_eq!(list[0]["severity"], "High");
        assert_eq!(list[1]["severity"], "Medium");
        assert_eq!(list[2]["severity"], "Informational");
        for (v, f) in list.iter().zip(&report.findings) {
            assert_eq!(v["class_uid"], 2004);
            assert_eq!(v["type_uid"], 200401);
            assert_eq!(v["status_id"], 1);
            assert_eq!(v["time"], 1_704_164_645_678_i64);
            assert_eq!(
                v["finding_info"]["uid"],
                super::super::asff::finding_id("b", f)
            );
            assert_eq!(
                v["finding_info"]["types"][0],
                format!("trailproof/{}", f.kind)
            );
            assert_eq!(v["cloud"]["account"]["uid"], "111122223333");
        }
        assert_eq!(
            list[0]["resources"][0]["uid"],
            format!("arn:aws:s3:::b/{key}")
        );
        assert_eq!(list[1]["resources"][0]["type"], "AWS::S3::Bucket");
        // A finding with no error or warning scope to stop it gives no pass: no scope here.
        assert!(list.iter().all(|v| v["status_id"] != 4));
    }

    #[test]
    fn a_scope_verified_in_full_has_a_resolved_record_with_a_stable_uid() {
        let mut report = report();
        let scope = ScopeId {
            location: location(),
            trail: "t".into(),
            home_region: "us-east-1".into(),
        };
        let mut s = ScopeSummary::new("b", &scope);
        s.digests.valid = 2;
        s.logs.valid = 5;
        report.scopes.push(s.clone());
        let list = render(&report);
        assert_eq!(list.len(), 1);
        assert_eq!(list[0]["status_id"], 4);
        assert_eq!(list[0]["status"], "Resolved");
        assert_eq!(list[0]["severity_id"], 1);
        assert_eq!(list[0]["message"], VERIFIED_MESSAGE);
        assert_eq!(list[0]["finding_info"]["uid"], scope_uid("b", &s));
        // Another run's time changes no uid.
        report.finished_at = crate::parse_rfc3339("2025-06-07T00:00:00Z").unwrap();
        assert_eq!(
            render(&report)[0]["finding_info"]["uid"],
            scope_uid("b", &s)
        );

        // A trail-less error in its log folder, or a warning of its trail, stops the pass.
        report.findings.push(Finding::new(
            Kind::LogUnlisted,
            false,
            &location(),
            None,
            Some("k"),
            "unlisted",
        ));
        let list = render(&report);
        assert_eq!(list.len(), 1);
        assert_eq!(list[0]["status_id"], 1);
        report.findings[0] = Finding::new(
            Kind::ChainRestart,
            false,
            &location(),
            Some("t"),
            None,
            "restart",
        );
        assert_eq!(render(&report).len(), 1);
        // An info finding does not; a scope with nothing verified has no pass.
        report.findings[0] = Finding::new(
            Kind::LogPending,
            false,
            &location(),
            None,
            Some("k"),
            "pending",
        );
        assert_eq!(render(&report).len(), 2);
        report.scopes[0].digests.valid = 0;
        assert_eq!(render(&report).len(), 1);
    }
}
