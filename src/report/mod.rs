//! The one value a run produces, and the renderers that turn it into text or JSON. The JSON *is*
//! this type: scripts read the same fields the renderers use, and the report records its own
//! inputs (source, range, filters, keys, times) so that it can be defended later.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::finding::{Finding, Kind, Severity, Unverified, Window};
use crate::keys::KeyInfo;
use crate::layout::{Location, ScopeId, Timestamp};

pub mod asff;
mod html;
mod json;
mod junit;
mod lines;
pub mod ocsf;
pub mod text;
pub mod timeline;

pub use html::render_html;
pub use json::render_json;
pub use junit::render_junit;
pub use text::render_text;

/// The JSON schema version; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// Exit codes: the contract with scripts and CI.
pub mod exit {
    /// Everything in scope verified; no error finding.
    pub const VERIFIED: i32 = 0;
    /// At least one error finding: evidence of tampering or loss.
    pub const FINDINGS: i32 = 1;
    /// No error finding, but the run was incomplete or could not run.
    pub const INCOMPLETE: i32 = 2;
}

/// What a run gathered, for [`Report::assemble`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunRecord {
    pub source: String,
    pub bucket: String,
    pub range: Range,
    pub filters: Filters,
    pub strict: bool,
    pub keys: Vec<KeyInfo>,
    pub started_at: Timestamp,
    #[serde(with = "scopes")]
    pub summaries: std::collections::BTreeMap<ScopeId, ScopeSummary>,
    pub findings: Vec<Finding>,
    pub unverified: Vec<Unverified>,
    /// Objects and date folders after the range's end, not examined.
    pub after_end: usize,
    /// Folders under `AWSLogs/` that fit no folder CloudTrail writes.
    pub not_dates: Vec<String>,
    /// Folder markers left out of the listings.
    pub folder_markers: usize,
}

/// Scope summaries written as a list: each names its own scope.
mod scopes {
    use super::{ScopeId, ScopeSummary};
    use std::collections::BTreeMap;

    pub fn serialize<S: serde::Serializer>(
        map: &BTreeMap<ScopeId, ScopeSummary>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.values())
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<ScopeId, ScopeSummary>, D::Error> {
        let list: Vec<ScopeSummary> = serde::Deserialize::deserialize(d)?;
        Ok(list.into_iter().map(|s| (s.scope(), s)).collect())
    }
}

impl Report {
    /// The report of a run: its notes said, findings and unverified objects in order, and the
    /// verdict decided.
    pub fn assemble(run: RunRecord) -> Report {
        let RunRecord {
            source,
            bucket,
            range,
            filters,
            strict,
            keys,
            started_at,
            summaries,
            mut findings,
            mut unverified,
            after_end,
            not_dates,
            folder_markers,
        } = run;
        let mut notes = Vec::new();
        if summaries.values().all(|s| s.digests.seen() == 0) {
            notes.push(format!(
                "nothing to verify: no digest file was found in {source} for the range and filters given"
            ));
        }
        if after_end > 0 {
            notes.push(format!(
                "{after_end} object(s) or date folder(s) lie after the end of the range ({}) and were not examined",
                crate::layout::format_time(range.end)
            ));
        }
        if !not_dates.is_empty() {
            notes.push(format!(
                "{} folder(s) under AWSLogs/ fit no folder CloudTrail writes (an account, org id, region or date where one belongs), and were not examined: {}",
                not_dates.len(),
                not_dates.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        if folder_markers > 0 {
            notes.push(format!(
                "{folder_markers} folder marker(s) (zero-byte objects whose keys end in /, as the S3 console and sync tools make them) were left out: they are not evidence"
            ));
        }
        let seen: usize = summaries.values().map(|s| s.digests.seen()).sum();
        let valid: usize = summaries.values().map(|s| s.digests.valid).sum();
        if seen > 0 && valid == 0 && findings.iter().any(|f| f.kind == Kind::DigestKeyUnknown) {
            notes.push(
                "no digest verified under any trusted key: check that --public-keys holds CloudTrail's keys for these regions and times (a forger's key looks the same, so the findings stay errors)".into(),
            );
        }
        findings.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        unverified.sort();
        unverified.dedup();
        let mut report = Report {
            schema_version: SCHEMA_VERSION,
            source,
            bucket,
            range,
            filters,
            strict,
            keys,
            started_at,
            finished_at: chrono::Utc::now(),
            scopes: summaries.into_values().collect(),
            findings,
            unverified,
            notes,
            ..Report::default()
        };
        report.exit_code = report.decide_exit_code();
        report
    }
}

/// What a run proves: every object in scope verified; evidence of tampering or loss; or a run
/// that could not check everything (or found nothing to check).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Verified,
    Findings,
    Incomplete,
}

impl Verdict {
    /// 0, 1 or 2 ([`exit`]).
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Verified => exit::VERIFIED,
            Verdict::Findings => exit::FINDINGS,
            Verdict::Incomplete => exit::INCOMPLETE,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

impl Default for Tool {
    fn default() -> Tool {
        Tool {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Range {
    /// `None`: all history.
    pub start: Option<Timestamp>,
    pub end: Timestamp,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Filters {
    /// Organization ids (from a source prefix such as `AWSLogs/o-…/`); none: every one.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub orgs: Vec<String>,
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
    pub trails: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestCounts {
    pub valid: usize,
    pub invalid: usize,
    pub missing: usize,
    pub unverified: usize,
}

impl DigestCounts {
    /// Digests the run found (read or not), deleted ones excluded.
    pub fn seen(&self) -> usize {
        self.valid + self.invalid + self.unverified
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogCounts {
    pub valid: usize,
    pub modified: usize,
    pub corrupt: usize,
    pub missing: usize,
    /// Unlisted and pending logs are counted per log folder, which trails sharing the folder
    /// share: each such trail's scope shows the same count.
    pub unlisted: usize,
    pub pending: usize,
    pub unverified: usize,
}

/// One chain owner's summary.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScopeSummary {
    pub bucket: String,
    pub prefix: String,
    pub org_id: Option<String>,
    pub account: String,
    pub region: String,
    pub trail: String,
    pub home_region: String,
    pub digests: DigestCounts,
    pub logs: LogCounts,
    pub covered: Vec<Window>,
    pub gaps: Vec<Window>,
}

impl ScopeSummary {
    pub fn new(bucket: &str, scope: &ScopeId) -> ScopeSummary {
        let l = &scope.location;
        ScopeSummary {
            bucket: bucket.to_string(),
            prefix: l.prefix.clone(),
            org_id: l.org_id.clone(),
            account: l.account.clone(),
            region: l.region.clone(),
            trail: scope.trail.clone(),
            home_region: scope.home_region.clone(),
            digests: DigestCounts::default(),
            logs: LogCounts::default(),
            covered: Vec::new(),
            gaps: Vec::new(),
        }
    }

    /// `[prefix/ ][org/]account region trail`, as readers see a scope.
    pub fn display_name(&self) -> String {
        let mut name = format!("{} {} {}", self.account, self.region, self.trail);
        if let Some(org) = &self.org_id {
            name = format!("{org}/{name}");
        }
        if !self.prefix.is_empty() {
            name = format!("{}/ {name}", self.prefix);
        }
        name
    }

    /// Hours covered by valid digests.
    pub fn covered_hours(&self) -> f64 {
        // An empty sum of floats is -0.0, which would print as "-0".
        self.covered
            .iter()
            .map(|w| (w.1 - w.0).num_seconds() as f64 / 3600.0)
            .sum::<f64>()
            + 0.0
    }

    /// The scope this summarizes.
    pub fn scope(&self) -> ScopeId {
        ScopeId {
            location: self.location(),
            trail: self.trail.clone(),
            home_region: self.home_region.clone(),
        }
    }

    /// Adds another part's counts of the same scope (its coverage is the chains' to set).
    pub fn add(&mut self, other: &ScopeSummary) {
        let (d, o) = (&mut self.digests, &other.digests);
        d.valid += o.valid;
        d.invalid += o.invalid;
        d.missing += o.missing;
        d.unverified += o.unverified;
        let (l, o) = (&mut self.logs, &other.logs);
        l.valid += o.valid;
        l.modified += o.modified;
        l.corrupt += o.corrupt;
        l.missing += o.missing;
        l.unlisted += o.unlisted;
        l.pending += o.pending;
        l.unverified += o.unverified;
    }

    pub fn location(&self) -> Location {
        Location {
            prefix: self.prefix.clone(),
            org_id: self.org_id.clone(),
            account: self.account.clone(),
            region: self.region.clone(),
        }
    }
}

/// Everything one run found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub tool: Tool,
    pub source: String,
    pub bucket: String,
    pub range: Range,
    pub filters: Filters,
    pub strict: bool,
    pub keys: Vec<KeyInfo>,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub exit_code: i32,
    pub scopes: Vec<ScopeSummary>,
    pub findings: Vec<Finding>,
    pub unverified: Vec<Unverified>,
    /// Things a reader must know about the run as a whole (for instance, that nothing was found).
    pub notes: Vec<String>,
    /// For an evidence copy: where and when it was made, and on whose word.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
    /// How many requests the run had in flight at most, and whether it adapted them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<Requests>,
    /// For a shard of a sharded run: what `trailproof merge` needs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<Box<crate::shard::ShardRecord>>,
    /// `--state`: what the run carried from earlier runs, and what it re-checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<Box<StateRun>>,
}

/// What a run with a state (`--state`) did: what it carried from earlier runs, and what it
/// re-checked.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateRun {
    /// Where the state is kept.
    pub path: String,
    /// SHA-256 of the state the run started from; `None` for a first run or a reset.
    pub previous: Option<String>,
    /// The sequence number of the state this run writes.
    pub sequence: u64,
    /// `--state-reset`: the state was not used, and the run verified everything.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reset: bool,
    /// Anchors the run resumed from.
    pub anchors: usize,
    /// Digests verified that no earlier run had.
    pub digests_verified: usize,
    pub objects_relisted: usize,
    pub objects_compared: usize,
    pub objects_reread: usize,
    pub objects_rehashed: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverify: Option<String>,
    /// Locations whose anchors stay where they were (something in them did not verify).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<String>,
}

/// The requests in flight a run reached.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requests {
    pub adaptive: bool,
    pub peak: usize,
}

/// Where an evidence copy came from, as its manifest records it, and whether a custody signature
/// authenticates that record.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// What made the copy, as its manifest says.
    pub tool: String,
    pub source: String,
    pub caller: String,
    pub acquisition_started_at: Option<Timestamp>,
    pub acquisition_finished_at: Option<Timestamp>,
    /// SHA-256 of the manifest's bytes.
    pub manifest_sha256: String,
    /// The custody key whose signature over the manifest verified, if one did.
    pub custody_key: Option<String>,
}

impl Report {
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// Turns the findings `deny` names into failures (`--deny warnings`, `--deny KIND`), as
    /// cargo-audit's `--deny` does, and decides the exit code again.
    pub fn deny(&mut self, deny: &[Deny]) {
        for f in &mut self.findings {
            let denied = deny.iter().any(|d| match d {
                Deny::Warnings => f.severity == Severity::Warning,
                Deny::Kind(k) => *k == f.kind,
            });
            if denied {
                f.severity = Severity::Error;
            }
        }
        self.exit_code = self.decide_exit_code();
    }

    /// Checks that every expected (account, region, trail) has a chain reaching `horizon` (less
    /// CloudTrail's 90 minutes of delivery allowance): else a `scope_missing` finding naming
    /// what was expected and what was found. Decides the exit code again.
    pub fn expect(&mut self, expected: &Expected, horizon: Timestamp) {
        let any = |v: &[String]| -> Vec<Option<String>> {
            if v.is_empty() {
                vec![None]
            } else {
                v.iter().cloned().map(Some).collect()
            }
        };
        if expected.is_empty() {
            return;
        }
        // A signed digest proves the bucket was observed no earlier than its end, whatever an
        // unauthenticated record of the observation says.
        let newest = self
            .scopes
            .iter()
            .flat_map(|s| s.covered.iter().map(|w| w.1))
            .max();
        let horizon = newest.map_or(horizon, |n| n.max(horizon));
        let due = expected.until.map_or(horizon, |u| u.min(horizon)) - crate::chain::TAIL_ALLOWANCE;
        let because = expected
            .origin
            .as_ref()
            .map_or(String::new(), |o| format!(" (CloudTrail: {o})"));
        let mut missing = Vec::new();
        for account in any(&expected.accounts) {
            for region in any(&expected.regions) {
                for trail in any(&expected.trails) {
                    let matching: Vec<&ScopeSummary> = self
                        .scopes
                        .iter()
                        .filter(|s| account.as_ref().is_none_or(|a| *a == s.account))
                        .filter(|s| region.as_ref().is_none_or(|r| *r == s.region))
                        .filter(|s| trail.as_ref().is_none_or(|t| *t == s.trail))
                        .collect();
                    let reach = matching
                        .iter()
                        .filter_map(|s| s.covered.iter().map(|w| w.1).max())
                        .max();
                    let what = [
                        account.as_ref().map(|a| format!("account {a}")),
                        region.as_ref().map(|r| format!("region {r}")),
                        trail.as_ref().map(|t| format!("trail {t}")),
                    ]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(", ")
                        + &because;
                    let message = match reach {
                        Some(r) if r >= due => continue,
                        Some(r) => format!(
                            "expected {what}: its digest chains end at {}, before {} (when it must have been delivered, less CloudTrail's 90 minutes): the newest digests are gone or logging stopped",
                            crate::layout::format_time(r),
                            crate::layout::format_time(due)
                        ),
                        None if matching.is_empty() => format!(
                            "expected {what}: no digest chain was found for it (its trail, region or account folder is absent, or holds no valid digest in range)"
                        ),
                        None => format!(
                            "expected {what}: its scopes hold no valid digest in range"
                        ),
                    };
                    let location = Location {
                        prefix: String::new(),
                        org_id: None,
                        account: account.clone().unwrap_or_default(),
                        region: region.clone().unwrap_or_default(),
                    };
                    let mut f = Finding::new(
                        Kind::ScopeMissing,
                        false,
                        &location,
                        trail.as_deref(),
                        None,
                        message,
                    );
                    if let Some(r) = reach {
                        f = f.window(Window(r, horizon));
                    }
                    missing.push(f);
                }
            }
        }
        self.findings.extend(missing);
        self.findings
            .sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        self.exit_code = self.decide_exit_code();
    }

    /// The verdict the findings and the unverified objects make.
    pub fn decide(&self) -> Verdict {
        if self.count(Severity::Error) > 0 {
            Verdict::Findings
        } else if !self.unverified.is_empty()
            || (self.scopes.iter().all(|s| s.digests.seen() == 0)
                && !self.is_empty_shard()
                && !self.rechecked())
        {
            Verdict::Incomplete
        } else {
            Verdict::Verified
        }
    }

    /// A run with a state that found nothing new, but compared what earlier runs verified
    /// with the bucket and found it unchanged: that is its whole part, done.
    fn rechecked(&self) -> bool {
        self.state
            .as_ref()
            .is_some_and(|s| s.anchors > 0 && s.objects_compared > 0)
    }

    /// A shard of a sharded run to which no location fell: nothing to verify is its whole
    /// part, done (the merge judges whether the run found anything).
    fn is_empty_shard(&self) -> bool {
        self.shard
            .as_ref()
            .is_some_and(|s| s.record.summaries.is_empty() && s.parts.is_empty())
    }

    /// [`Report::decide`] as the process's exit code.
    pub fn decide_exit_code(&self) -> i32 {
        self.decide().exit_code()
    }

    /// The verdict in one line.
    pub fn verdict(&self) -> String {
        match self.exit_code {
            exit::VERIFIED => {
                let hours: f64 = self.scopes.iter().map(|s| s.covered_hours()).sum();
                let digests: usize = self.scopes.iter().map(|s| s.digests.valid).sum();
                let logs: usize = self.scopes.iter().map(|s| s.logs.valid).sum();
                let carried = match &self.state {
                    Some(s) if s.anchors > 0 => format!(
                        "; {} object(s) verified by earlier runs compared and unchanged",
                        s.objects_compared
                    ),
                    _ => String::new(),
                };
                format!(
                    "VERIFIED: every object in scope is exactly what CloudTrail delivered ({} scope(s), {hours:.0} hour(s), {digests} digest(s), {logs} log(s){carried})",
                    self.scopes.len()
                )
            }
            exit::FINDINGS => format!(
                "TAMPERING OR LOSS: {} error finding(s){}",
                self.count(Severity::Error),
                if self.unverified.is_empty() {
                    String::new()
                } else {
                    format!(
                        ", and {} object(s) could not be checked",
                        self.unverified.len()
                    )
                }
            ),
            _ if self.scopes.iter().all(|s| s.digests.seen() == 0) => {
                "INCOMPLETE: nothing was found to verify".into()
            }
            _ => format!(
                "INCOMPLETE: no tampering found, but {} object(s) could not be checked",
                self.unverified.len()
            ),
        }
    }
}

/// The report formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Junit,
    Html,
    /// The findings, one CSV row each.
    Csv,
    /// The findings, one JSON object per line.
    Jsonl,
    /// The error and warning findings in AWS Security Finding Format, for Security Hub.
    Asff,
    /// OCSF 1.5.0 Detection Findings (class 2004), a JSON array: every finding, and a passing
    /// record per scope that verified.
    Ocsf,
    /// JSON Lines, one line per object examined, streamed while the run goes (`--report
    /// objects=PATH` only): not a rendering of the report.
    Objects,
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        match s {
            "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            "junit" => Ok(Format::Junit),
            "html" => Ok(Format::Html),
            "csv" => Ok(Format::Csv),
            "jsonl" => Ok(Format::Jsonl),
            "asff" => Ok(Format::Asff),
            "ocsf" => Ok(Format::Ocsf),
            "objects" => Ok(Format::Objects),
            other => Err(format!(
                "unknown report format {other:?} (expected text, json, junit, html, csv, jsonl, asff, ocsf, or objects for --report)"
            )),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Text => "text",
            Format::Json => "json",
            Format::Junit => "junit",
            Format::Html => "html",
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
            Format::Asff => "asff",
            Format::Ocsf => "ocsf",
            Format::Objects => "objects",
        })
    }
}

/// Renders `report` in `format`; `color` asks for ANSI colour (text only).
/// A rule that makes more findings fail the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deny {
    /// Every warning.
    Warnings,
    /// Every finding of this kind.
    Kind(Kind),
}

impl fmt::Display for Deny {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Deny::Warnings => f.write_str("warnings"),
            Deny::Kind(kind) => f.write_str(kind.as_str()),
        }
    }
}

impl FromStr for Deny {
    type Err = String;
    fn from_str(s: &str) -> Result<Deny, String> {
        if s == "warnings" {
            return Ok(Deny::Warnings);
        }
        Kind::named(s).map(Deny::Kind).ok_or_else(|| {
            let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
            format!(
                "{s:?}: expected warnings or a finding kind ({})",
                kinds.join(", ")
            )
        })
    }
}

/// What must exist in the bucket (`--expect-account`, `--expect-region`, `--expect-trail`):
/// every combination of the given values; an empty list matches any.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Expected {
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
    pub trails: Vec<String>,
    /// When logging stopped, if it did: the chains must reach this, not the horizon.
    pub until: Option<Timestamp>,
    /// Who says so, for the message (a trail as CloudTrail describes it); none for the flags.
    pub origin: Option<String>,
}

impl Expected {
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty() && self.regions.is_empty() && self.trails.is_empty()
    }
}

pub fn render(report: &Report, format: Format, color: bool) -> String {
    match format {
        Format::Text => render_text(report, color),
        Format::Json => render_json(report),
        Format::Junit => render_junit(report),
        Format::Html => render_html(report),
        Format::Csv => lines::render_csv(report),
        Format::Jsonl => lines::render_jsonl(report),
        Format::Asff => asff::render_asff(report, None),
        Format::Ocsf => ocsf::render_ocsf(report),
        Format::Objects => String::new(),
    }
}

/// Escapes text for XML and HTML content and attributes. Control characters, which XML 1.0
/// cannot carry at all, are shown as `\u{…}`.
pub fn markup_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#9;"),
            c if c.is_control() => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    out
}

/// One object examined, as a line of `--report objects=PATH`: what it is, what became of it,
/// and the evidence for that.
#[derive(Clone, Debug, Serialize)]
pub struct ObjectRecord<'a> {
    pub key: &'a str,
    /// `digest` or `log`.
    pub object: &'static str,
    /// `valid`, a finding kind, or `unverified`.
    pub outcome: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<&'a str>,
    /// SHA-256 of the inflated bytes, when they could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<&'a str>,
    /// The digest that listed the log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<&'a str>,
}

/// Where object records go: a line each, written as they are decided, so memory stays flat.
pub struct ObjectLog {
    out: std::sync::Mutex<Box<dyn std::io::Write + Send>>,
    failed: std::sync::Mutex<Option<String>>,
}

impl ObjectLog {
    pub fn new(out: Box<dyn std::io::Write + Send>) -> ObjectLog {
        ObjectLog {
            out: std::sync::Mutex::new(Box::new(std::io::BufWriter::new(out))),
            failed: std::sync::Mutex::new(None),
        }
    }

    pub fn record(&self, record: &ObjectRecord<'_>) {
        let mut line = serde_json::to_vec(record).expect("object record JSON");
        line.push(b'\n');
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = out.write_all(&line) {
            self.failed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_or_insert(e.to_string());
        }
    }

    /// Flushes what is buffered; the first write error, if any.
    pub fn finish(&self) -> Result<(), String> {
        let flushed = self
            .out
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .flush()
            .map_err(|e| e.to_string());
        match self.failed.lock().unwrap_or_else(|e| e.into_inner()).take() {
            Some(e) => Err(e),
            None => flushed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> RunRecord {
        let t = crate::parse_rfc3339("2024-01-02T00:00:00Z").unwrap();
        RunRecord {
            source: "s3://b/".into(),
            bucket: "b".into(),
            range: Range {
                start: None,
                end: t,
            },
            filters: Filters::default(),
            strict: false,
            keys: vec![],
            started_at: t,
            summaries: Default::default(),
            findings: vec![],
            unverified: vec![],
            after_end: 0,
            not_dates: vec![],
            folder_markers: 0,
        }
    }

    #[test]
    fn a_run_with_nothing_to_verify_is_incomplete_and_says_so() {
        let r = Report::assemble(record());
        assert_eq!(r.decide(), Verdict::Incomplete);
        assert_eq!(r.exit_code, exit::INCOMPLETE);
        assert!(r.notes[0].starts_with("nothing to verify: no digest file was found in s3://b/"));
    }

    #[test]
    fn what_was_left_out_is_noted_and_unverified_objects_are_sorted_once() {
        let mut run = record();
        run.after_end = 3;
        run.folder_markers = 2;
        run.not_dates = vec!["AWSLogs/x/".into()];
        let u = |k: &str| Unverified {
            key: k.into(),
            cause: "c".into(),
        };
        run.unverified = vec![u("b"), u("a"), u("b")];
        let r = Report::assemble(run);
        let notes = r.notes.join("\n");
        assert!(notes.contains(
            "3 object(s) or date folder(s) lie after the end of the range (2024-01-02T00:00:00Z)"
        ));
        assert!(notes.contains("2 folder marker(s)"));
        assert!(notes.contains("1 folder(s) under AWSLogs/ fit no folder CloudTrail writes"));
        let keys: Vec<_> = r.unverified.iter().map(|u| u.key.as_str()).collect();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(r.decide(), Verdict::Incomplete);
    }
}
