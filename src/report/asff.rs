//! AWS Security Finding Format, for Security Hub's `BatchImportFindings`: a JSON array of
//! findings, one per error or warning finding. Each has a stable `Id` (the same finding gets the
//! same Id in every run, so a rerun updates it rather than adding a duplicate). trailproof only
//! writes the file; `aws securityhub batch-import-findings` sends it.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::Report;
use crate::finding::{Finding, Severity};
use crate::layout::format_time;

/// Security Hub's limits on these fields, in characters.
const TITLE_MAX: usize = 256;
const DESCRIPTION_MAX: usize = 1024;

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max - 1).collect();
        out.push('…');
        out
    }
}

/// The same finding's Id in every run: what it is about, never when it was found.
pub fn finding_id(bucket: &str, f: &Finding) -> String {
    let mut h = Sha256::new();
    for part in [
        bucket,
        f.kind.as_str(),
        &f.prefix,
        f.org_id.as_deref().unwrap_or(""),
        &f.account,
        &f.region,
        f.trail.as_deref().unwrap_or(""),
        f.key.as_deref().unwrap_or(""),
        &f.window.as_ref().map(|w| w.to_string()).unwrap_or_default(),
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    format!("trailproof/{}", hex::encode(h.finalize()))
}

/// `product_arn`: the importing account's product ARN; `None` gives each finding its own
/// account's and region's default product (`arn:aws:securityhub:R:A:product/A/default`).
pub fn render_asff(report: &Report, product_arn: Option<&str>) -> String {
    let at = format_time(report.finished_at);
    let findings: Vec<Value> = report
        .findings
        .iter()
        .filter(|f| f.severity != Severity::Info)
        .map(|f| {
            let product = product_arn.map(str::to_string).unwrap_or_else(|| {
                format!(
                    "arn:aws:securityhub:{r}:{a}:product/{a}/default",
                    r = f.region,
                    a = f.account
                )
            });
            let (label, kind) = match f.severity {
                Severity::Error => ("HIGH", "TTPs/Defense Evasion/CloudTrail log tampering"),
                _ => (
                    "MEDIUM",
                    "Software and Configuration Checks/AWS Security Best Practices/CloudTrail log file validation",
                ),
            };
            let resource = match &f.key {
                Some(key) => json!({
                    "Type": "AwsS3Object",
                    "Id": format!("arn:aws:s3:::{}/{key}", report.bucket),
                    "Region": f.region,
                }),
                None => json!({
                    "Type": "AwsS3Bucket",
                    "Id": format!("arn:aws:s3:::{}", report.bucket),
                    "Region": f.region,
                }),
            };
            let mut fields = serde_json::Map::new();
            fields.insert("trailproof/kind".into(), json!(f.kind.as_str()));
            for (name, value) in [
                ("trailproof/trail", f.trail.clone()),
                ("trailproof/digest", f.digest.clone()),
                ("trailproof/expected", f.expected.clone()),
                ("trailproof/actual", f.actual.clone()),
                ("trailproof/window", f.window.as_ref().map(|w| w.to_string())),
            ] {
                if let Some(v) = value {
                    fields.insert(name.into(), json!(v));
                }
            }
            json!({
                "SchemaVersion": "2018-10-08",
                "Id": finding_id(&report.bucket, f),
                "ProductArn": product,
                "GeneratorId": format!("trailproof/{}", f.kind.as_str()),
                "AwsAccountId": f.account,
                "Region": f.region,
                "Types": [kind],
                "CreatedAt": at,
                "UpdatedAt": at,
                "Severity": {"Label": label},
                "Title": clip(&format!("CloudTrail evidence: {} in {} {}", f.kind.as_str(), f.account, f.region), TITLE_MAX),
                "Description": clip(&f.message, DESCRIPTION_MAX),
                "Resources": [resource],
                "ProductFields": fields,
                "RecordState": "ACTIVE",
                "Workflow": {"Status": "NEW"},
            })
        })
        .collect();
    let mut out = serde_json::to_string_pretty(&findings).expect("values serialize");
    out.push('\n');
    out
}
