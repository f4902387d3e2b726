//! Where the evidence is and is not, hour by hour, for one scope: derived from the report alone
//! (covered windows, findings, unverified digests), so every renderer draws the same picture.

use chrono::{DurationRound, TimeDelta};
use serde::Serialize;

use super::{Report, ScopeSummary};
use crate::finding::{Finding, Kind, Severity};
use crate::layout::{parse_digest_key, parse_log_key, Timestamp};

/// The state of one hour, worst first: an hour shows the worst thing that touches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HourState {
    /// A digest for the hour is missing.
    Missing,
    /// A digest or log of the hour failed a check.
    Invalid,
    /// Something of the hour could not be checked.
    Unverified,
    /// No digest, with an explanation that is not tampering (restart, tail gap).
    Gap,
    /// Covered by valid digests, and every log checked.
    Verified,
}

impl HourState {
    pub fn as_str(self) -> &'static str {
        match self {
            HourState::Missing => "missing",
            HourState::Invalid => "invalid",
            HourState::Unverified => "unverified",
            HourState::Gap => "gap",
            HourState::Verified => "verified",
        }
    }
}

/// One hour of a scope: its start, its state, and what touched it.
#[derive(Clone, Debug)]
pub struct Hour<'r> {
    pub start: Timestamp,
    pub state: HourState,
    pub findings: Vec<&'r Finding>,
    pub unverified: Vec<&'r crate::finding::Unverified>,
}

fn floor_hour(t: Timestamp) -> Timestamp {
    t.duration_trunc(TimeDelta::hours(1)).unwrap_or(t)
}

fn in_scope(f: &Finding, s: &ScopeSummary) -> bool {
    f.account == s.account
        && f.region == s.region
        && f.prefix == s.prefix
        && f.org_id == s.org_id
        && f.trail.as_deref().is_none_or(|t| t == s.trail)
}

fn state_of(f: &Finding) -> HourState {
    match (f.kind, f.severity) {
        (Kind::DigestMissing, _) => HourState::Missing,
        (Kind::ChainRestart | Kind::ChainTailGap, Severity::Warning) => HourState::Gap,
        (Kind::LogPending, _) => HourState::Gap,
        _ => HourState::Invalid,
    }
}

/// The hours of `scope`, from the first hour anything touches to the last, in order.
pub fn hours<'r>(report: &'r Report, scope: &ScopeSummary) -> Vec<Hour<'r>> {
    // (start, end, state, finding)
    let mut spans: Vec<(Timestamp, Timestamp, HourState, Option<&Finding>)> = Vec::new();
    for w in &scope.covered {
        spans.push((w.0, w.1, HourState::Verified, None));
    }
    for f in report.findings.iter().filter(|f| in_scope(f, scope)) {
        match (f.window, f.time) {
            (Some(w), _) => spans.push((w.0, w.1, state_of(f), Some(f))),
            (None, Some(t)) => spans.push((t, t, state_of(f), Some(f))),
            (None, None) => {}
        }
    }
    let mut unverified = Vec::new();
    for u in &report.unverified {
        let located = parse_digest_key(&u.key)
            .filter(|n| n.scope.location == scope.location() && n.scope.trail == scope.trail)
            .map(|n| (n.end - TimeDelta::hours(1), n.end))
            .or_else(|| {
                parse_log_key(&u.key)
                    .filter(|n| n.location == scope.location())
                    .map(|n| (n.time, n.time))
            });
        if let Some((s, e)) = located {
            spans.push((s, e, HourState::Unverified, None));
            unverified.push((s, e, u));
        }
    }
    let (Some(first), Some(last)) = (
        spans.iter().map(|s| s.0).min(),
        spans.iter().map(|s| s.1).max(),
    ) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut h = floor_hour(first);
    while h <= last {
        let next = h + TimeDelta::hours(1);
        // A span touches the hour when it overlaps it by more than a minute (windows that end
        // a few seconds past the hour do not claim the next one), or is an instant within it.
        let touches = |s: Timestamp, e: Timestamp| {
            if s == e {
                s >= h && s < next
            } else {
                e.min(next) - s.max(h) > TimeDelta::minutes(1)
            }
        };
        let mut state = None::<HourState>;
        let mut findings = Vec::new();
        for (s, e, st, f) in &spans {
            if touches(*s, *e) {
                state = Some(state.map_or(*st, |x| x.min(*st)));
                if let Some(f) = f {
                    if !findings.contains(f) {
                        findings.push(*f);
                    }
                }
            }
        }
        if let Some(state) = state {
            out.push(Hour {
                start: h,
                state,
                findings,
                unverified: unverified
                    .iter()
                    .filter(|(s, e, _)| touches(*s, *e))
                    .map(|(_, _, u)| *u)
                    .collect(),
            });
        }
        h = next;
    }
    out
}

/// Findings that belong to no trail of a scope (unlisted logs, stray objects), by location.
pub fn location_findings<'r>(report: &'r Report, scope: &ScopeSummary) -> Vec<&'r Finding> {
    report
        .findings
        .iter()
        .filter(|f| f.trail.is_none() && in_scope(f, scope))
        .collect()
}
