//! The judge: what a location's evidence says of each log object no valid digest listed, and
//! how those logs fold into the incidents that explain them. No I/O and no async: everything it
//! decides comes in as values, so each rule is tested on its own below.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::digest::{DigestCheck, DigestStatus};
use crate::finding::{Finding, Kind, Severity, Window};
use crate::layout::{ScopeId, Timestamp, DELIVERY_DELAY};

use super::UNLISTED_AFTER;

/// What a location's digests showed, for judging the logs none of them listed.
#[derive(Clone, Debug)]
pub struct Evidence {
    /// How far valid regular (not backfill) digests reach, across every trail delivering into
    /// the location's log folder.
    pub reach: Option<Timestamp>,
    /// The newest end of any valid digest: CloudTrail's own signature proves the bucket was
    /// observed no earlier, whatever a copy's manifest says.
    pub signed: Option<Timestamp>,
    /// Hours whose digests could not be read or listed (widened by the delivery delay on both
    /// sides), and why.
    pub unread: Vec<(Timestamp, Timestamp, String)>,
    /// When the bucket was observed.
    pub horizon: Timestamp,
}

/// What becomes of one log object no valid digest listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogVerdict {
    /// It could not be checked: the digest that may list it failed or could not be read.
    Unverified {
        cause: String,
        /// The failed digest that listed it, when one did.
        digest: Option<String>,
    },
    /// `log_pending` or `log_unlisted`, with the sentence that says which case it is.
    Finding { kind: Kind, message: &'static str },
}

/// Whether a log of `time` may still be listed by a digest CloudTrail has not yet delivered.
pub fn may_be_pending(time: Timestamp, evidence: &Evidence) -> bool {
    let horizon = evidence
        .signed
        .map_or(evidence.horizon, |s| s.max(evidence.horizon));
    time + UNLISTED_AFTER > horizon
}

/// Judges one log object (its name's time, when it is named like a log) that no valid digest
/// listed; `listed_by_failed` is a digest that lists it but failed verification.
pub fn stray(
    time: Option<Timestamp>,
    listed_by_failed: Option<&str>,
    evidence: &Evidence,
) -> LogVerdict {
    if let Some(digest) = listed_by_failed {
        return LogVerdict::Unverified {
            cause: format!("listed only by {digest}, which failed verification"),
            digest: Some(digest.to_string()),
        };
    }
    // A digest that could not be read may be the one that lists this log: that is "could not
    // check", never "unlisted".
    let unread = time.and_then(|t| evidence.unread.iter().find(|(s, e, _)| t >= *s && t <= *e));
    if let Some((_, _, why)) = unread {
        return LogVerdict::Unverified {
            cause: why.clone(),
            digest: None,
        };
    }
    let Some(t) = time else {
        return LogVerdict::Finding {
            kind: Kind::LogUnlisted,
            message: "an object in a log folder that is not named like a CloudTrail log, and no digest lists it",
        };
    };
    if may_be_pending(t, evidence) {
        return LogVerdict::Finding {
            kind: Kind::LogPending,
            message: "no digest lists this log yet: it is within 2 h of when the bucket was observed, and CloudTrail may not have delivered the digest that lists it",
        };
    }
    let message = match evidence.reach {
        None => "no digest lists this log: no digest exists for this log folder (the digests were deleted, or validation was never on)",
        Some(r) if t >= r - DELIVERY_DELAY => "no digest lists this log, which lies after the last digest: the newest digests were deleted, or validation was turned off",
        Some(_) => "no digest lists this log, although digests cover the hours after it: it was not delivered by CloudTrail, or the digest that listed it is gone",
    };
    LogVerdict::Finding {
        kind: Kind::LogUnlisted,
        message,
    }
}

/// Folds unlisted logs into the incidents that explain them. A tail gap that hides log files is
/// loss, not a stopped trail: it becomes an error naming them. One deleted (or unreadable)
/// digest is one incident: the unlisted logs of its hours become its evidence, not findings of
/// their own. `findings` are the location's other findings; what stays in `strays` is reported
/// on its own.
pub fn fold_incidents(findings: &mut [Finding], strays: &mut Vec<Finding>) {
    for gap in findings.iter_mut().filter(|f| f.kind == Kind::ChainTailGap) {
        let Some(Window(s, e)) = gap.window else {
            continue;
        };
        let hidden: Vec<String> = strays
            .iter()
            .filter(|f| f.kind == Kind::LogUnlisted)
            .filter(|f| f.time.is_some_and(|t| t >= s - DELIVERY_DELAY && t <= e))
            .filter_map(|f| f.key.clone())
            .collect();
        if hidden.is_empty() {
            continue;
        }
        gap.severity = Severity::Error;
        gap.message.push_str(&format!(
            "; {} log file(s) lie in the gap, listed by no digest: digests were deleted or validation was turned off while logging went on",
            hidden.len()
        ));
        gap.logs.extend(hidden);
    }
    for missing in findings
        .iter_mut()
        .filter(|f| matches!(f.kind, Kind::DigestMissing | Kind::DigestMalformed))
    {
        let Some(Window(s, e)) = missing.window else {
            continue;
        };
        strays.retain(|stray| {
            let inside = stray.kind == Kind::LogUnlisted
                && stray.time.is_some_and(|t| t >= s - DELIVERY_DELAY && t < e);
            if inside {
                missing.logs.extend(stray.key.clone());
            }
            !inside
        });
    }
}

/// What a digest's own status makes of it (its link to others is the chains' to judge).
#[derive(Clone, Debug, PartialEq)]
pub enum DigestVerdict {
    Valid,
    /// A finding on the digest, over its window.
    Failed(Box<Finding>),
    /// Could not be checked, and why.
    Unverified(String),
    /// Gone: counted from the chains, which know it by the link to it.
    Missing,
}

impl DigestVerdict {
    /// The outcome in the objects report: `valid`, a finding kind, or `unverified`.
    pub fn outcome(&self) -> &str {
        match self {
            DigestVerdict::Valid => "valid",
            DigestVerdict::Failed(f) => f.kind.as_str(),
            DigestVerdict::Unverified(_) => "unverified",
            DigestVerdict::Missing => Kind::DigestMissing.as_str(),
        }
    }
}

/// Judges one digest by its own checks.
pub fn digest(check: &DigestCheck, strict: bool) -> DigestVerdict {
    let scope = &check.name.scope;
    match &check.status {
        DigestStatus::Valid => DigestVerdict::Valid,
        DigestStatus::Failed { kind, message } => {
            let (s, e) = check.window();
            DigestVerdict::Failed(Box::new(
                Finding::new(
                    *kind,
                    strict,
                    &scope.location,
                    Some(&scope.trail),
                    Some(&check.key),
                    message.clone(),
                )
                .window(Window(s, e)),
            ))
        }
        DigestStatus::Unverified(cause) => DigestVerdict::Unverified(cause.clone()),
        DigestStatus::Missing => DigestVerdict::Missing,
    }
}

/// The digests of each scope's chain. A predecessor that was looked up (read from another
/// day, or another location's folder) belongs to the chain of the digest that named it, as well
/// as to its own scope's.
pub fn chains(checks: &[DigestCheck]) -> BTreeMap<&ScopeId, Vec<&DigestCheck>> {
    let mut by_scope: BTreeMap<&ScopeId, Vec<&DigestCheck>> = BTreeMap::new();
    for check in checks {
        by_scope.entry(&check.name.scope).or_default().push(check);
    }
    let owner: HashMap<&str, &ScopeId> = checks
        .iter()
        .filter_map(|c| {
            let prev = c.body.as_ref()?.previous.as_ref()?;
            Some((prev.key.as_str(), &c.name.scope))
        })
        .collect();
    for check in checks {
        if let Some(scope) = owner.get(check.key.as_str()) {
            if **scope != check.name.scope {
                by_scope.entry(scope).or_default().push(check);
            }
        }
    }
    by_scope
}

/// A valid digest read past the end of the range names its predecessor, inside the range, and
/// that one is gone: the chains, which stop at the end, cannot see that link, so it is a
/// `digest_missing` of its own (with the scope whose count it adds to). `beyond_end` tells a
/// digest read only for the range's last logs; `selected` a scope the run reports on;
/// `reported` the missing digests already found.
pub fn missing_before_the_end<'a>(
    all: &'a [DigestCheck],
    in_range: &'a [DigestCheck],
    reported: &HashSet<String>,
    beyond_end: impl Fn(Timestamp) -> bool,
    selected: impl Fn(&ScopeId) -> bool,
    strict: bool,
) -> Vec<(&'a ScopeId, Finding)> {
    let mut found = Vec::new();
    for later in all
        .iter()
        .filter(|c| beyond_end(c.name.end) && c.is_valid())
    {
        let Some(prev) = later.body.as_ref().and_then(|b| b.previous.as_ref()) else {
            continue;
        };
        let Some(gone) = in_range
            .iter()
            .find(|c| c.key == prev.key && matches!(c.status, DigestStatus::Missing))
        else {
            continue;
        };
        let scope = &gone.name.scope;
        if reported.contains(&gone.key) || !selected(scope) {
            continue;
        }
        let (s, e) = gone.window();
        let finding = Finding::new(
            Kind::DigestMissing,
            strict,
            &scope.location,
            Some(&scope.trail),
            Some(&gone.key),
            format!(
                "the digest is missing: {} names it as its predecessor; the hours {} are covered by no digest",
                later.key,
                Window(s, e)
            ),
        )
        .window(Window(s, e))
        .digest(&later.key);
        found.push((scope, finding));
    }
    found
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::layout::Location;
    use chrono::Duration;

    pub(crate) fn t(s: &str) -> Timestamp {
        crate::parse_rfc3339(s).unwrap()
    }

    fn evidence() -> Evidence {
        Evidence {
            reach: Some(t("2024-01-01T06:00:00Z")),
            signed: Some(t("2024-01-01T06:00:00Z")),
            unread: vec![],
            horizon: t("2024-01-01T12:00:00Z"),
        }
    }

    fn kind(v: &LogVerdict) -> Option<Kind> {
        match v {
            LogVerdict::Finding { kind, .. } => Some(*kind),
            LogVerdict::Unverified { .. } => None,
        }
    }

    #[test]
    fn a_log_one_minute_inside_the_unlisted_reach_is_unlisted_and_one_minute_outside_pending() {
        let e = evidence();
        let edge = e.horizon - UNLISTED_AFTER;
        let before = stray(Some(edge - Duration::minutes(1)), None, &e);
        let after = stray(Some(edge + Duration::minutes(1)), None, &e);
        assert_eq!(kind(&before), Some(Kind::LogUnlisted));
        assert_eq!(kind(&after), Some(Kind::LogPending));
        // Exactly at the edge the delivery window has closed.
        assert_eq!(kind(&stray(Some(edge), None, &e)), Some(Kind::LogUnlisted));
    }

    #[test]
    fn a_signed_digest_moves_the_horizon_later_never_earlier() {
        let mut e = evidence();
        e.horizon = t("2024-01-01T01:00:00Z");
        e.signed = Some(t("2024-01-01T12:00:00Z"));
        let log = t("2024-01-01T09:00:00Z");
        assert_eq!(kind(&stray(Some(log), None, &e)), Some(Kind::LogUnlisted));
        e.signed = Some(t("2024-01-01T00:00:00Z"));
        assert_eq!(kind(&stray(Some(log), None, &e)), Some(Kind::LogPending));
    }

    #[test]
    fn a_log_inside_an_unread_digests_window_is_unverified_and_outside_it_unlisted() {
        let mut e = evidence();
        e.unread = vec![(
            t("2024-01-01T02:00:00Z") - DELIVERY_DELAY,
            t("2024-01-01T03:00:00Z") + DELIVERY_DELAY,
            "the digest that may list it, k, could not be read".into(),
        )];
        let inside = stray(Some(t("2024-01-01T03:10:00Z")), None, &e);
        assert_eq!(
            inside,
            LogVerdict::Unverified {
                cause: "the digest that may list it, k, could not be read".into(),
                digest: None
            }
        );
        let outside = stray(Some(t("2024-01-01T03:20:00Z")), None, &e);
        assert_eq!(kind(&outside), Some(Kind::LogUnlisted));
    }

    #[test]
    fn a_log_listed_only_by_a_failed_digest_is_unverified_naming_it() {
        let v = stray(
            Some(t("2024-01-01T01:00:00Z")),
            Some("d.json.gz"),
            &evidence(),
        );
        assert_eq!(
            v,
            LogVerdict::Unverified {
                cause: "listed only by d.json.gz, which failed verification".into(),
                digest: Some("d.json.gz".into())
            }
        );
    }

    #[test]
    fn the_sentence_says_which_case_of_unlisted_it_is() {
        let message = |e: &Evidence, time: &str| match stray(Some(t(time)), None, e) {
            LogVerdict::Finding { message, .. } => message,
            other => panic!("{other:?}"),
        };
        let e = evidence();
        assert!(message(&e, "2024-01-01T05:50:00Z").contains("after the last digest"));
        assert!(message(&e, "2024-01-01T03:00:00Z").contains("digests cover the hours after it"));
        let none = Evidence {
            reach: None,
            ..evidence()
        };
        assert!(
            message(&none, "2024-01-01T03:00:00Z").contains("no digest exists for this log folder")
        );
        assert_eq!(kind(&stray(None, None, &e)), Some(Kind::LogUnlisted));
    }

    fn log_finding(key: &str, time: &str) -> Finding {
        let location = Location {
            prefix: String::new(),
            org_id: None,
            account: "111111111111".into(),
            region: "us-east-1".into(),
        };
        Finding::new(Kind::LogUnlisted, false, &location, None, Some(key), "m").at(t(time))
    }

    #[test]
    fn a_tail_gap_hiding_logs_becomes_an_error_and_a_missing_digest_absorbs_its_hours() {
        let location = Location {
            prefix: String::new(),
            org_id: None,
            account: "111111111111".into(),
            region: "us-east-1".into(),
        };
        let gap = Finding::new(Kind::ChainTailGap, false, &location, Some("t"), None, "gap")
            .window(Window(t("2024-01-01T06:00:00Z"), t("2024-01-01T08:00:00Z")));
        let missing = Finding::new(
            Kind::DigestMissing,
            false,
            &location,
            Some("t"),
            None,
            "gone",
        )
        .window(Window(t("2024-01-01T02:00:00Z"), t("2024-01-01T03:00:00Z")));
        let mut findings = vec![gap, missing];
        let mut strays = vec![
            log_finding("in-gap", "2024-01-01T07:00:00Z"),
            // Named up to the delivery delay before the missing digest's window: its evidence.
            log_finding("early", "2024-01-01T01:50:00Z"),
            log_finding("at-end", "2024-01-01T03:00:00Z"),
        ];
        fold_incidents(&mut findings, &mut strays);
        assert_eq!(findings[0].severity, Severity::Error);
        assert_eq!(findings[0].logs, ["in-gap"]);
        assert_eq!(findings[1].logs, ["early"]);
        let left: Vec<_> = strays.iter().filter_map(|f| f.key.as_deref()).collect();
        assert_eq!(left, ["in-gap", "at-end"]);
    }

    pub(crate) fn digest(
        scope: &ScopeId,
        end: &str,
        previous: Option<&str>,
        status: DigestStatus,
    ) -> DigestCheck {
        let end = t(end);
        let key = crate::layout::digest_key(scope, end, false);
        let name = crate::layout::parse_digest_key(&key).unwrap();
        let mut check = DigestCheck::unread(key.clone(), name, status);
        if check.status == DigestStatus::Valid {
            check.body = Some(crate::digest::DigestBody {
                account: scope.location.account.clone(),
                start: end - Duration::hours(1),
                end,
                end_text: crate::layout::format_time(end),
                bucket: "b".into(),
                key,
                fingerprint: "f".into(),
                algorithm: "SHA256withRSA".into(),
                previous: previous.map(|p| crate::digest::PreviousDigest {
                    bucket: "b".into(),
                    key: p.into(),
                    hash: String::new(),
                    signature: String::new(),
                }),
                logs: vec![],
            });
        }
        check
    }

    pub(crate) fn scope(trail: &str) -> ScopeId {
        ScopeId {
            location: Location {
                prefix: String::new(),
                org_id: None,
                account: "111111111111".into(),
                region: "us-east-1".into(),
            },
            trail: trail.into(),
            home_region: "us-east-1".into(),
        }
    }

    #[test]
    fn a_predecessor_read_from_elsewhere_joins_the_chain_of_the_digest_that_named_it() {
        let (a, b) = (scope("a"), scope("b"));
        let first = digest(&b, "2024-01-01T01:00:00Z", None, DigestStatus::Valid);
        let second = digest(
            &a,
            "2024-01-01T02:00:00Z",
            Some(&first.key),
            DigestStatus::Valid,
        );
        let checks = vec![first.clone(), second.clone()];
        let chains = chains(&checks);
        let keys =
            |s: &ScopeId| -> Vec<&str> { chains[s].iter().map(|c| c.key.as_str()).collect() };
        assert_eq!(keys(&a), [second.key.as_str(), first.key.as_str()]);
        assert_eq!(keys(&b), [first.key.as_str()]);
    }

    #[test]
    fn a_deleted_last_digest_named_only_by_one_past_the_end_is_missing_once() {
        let a = scope("a");
        let gone = digest(&a, "2024-01-01T06:00:00Z", None, DigestStatus::Missing);
        let later = digest(
            &a,
            "2024-01-01T07:00:00Z",
            Some(&gone.key),
            DigestStatus::Valid,
        );
        let in_range = vec![gone.clone()];
        let all = vec![gone.clone(), later.clone()];
        let end = t("2024-01-01T06:00:00Z");
        let beyond = |e: Timestamp| e - Duration::hours(1) > end - Duration::minutes(1);
        let found =
            missing_before_the_end(&all, &in_range, &HashSet::new(), beyond, |_| true, false);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].1.key.as_deref(), Some(gone.key.as_str()));
        assert_eq!(found[0].1.digest.as_deref(), Some(later.key.as_str()));
        // Already reported by the chains, or in a scope not selected: nothing more.
        let reported: HashSet<String> = [gone.key.clone()].into();
        assert!(
            missing_before_the_end(&all, &in_range, &reported, beyond, |_| true, false).is_empty()
        );
        assert!(
            missing_before_the_end(&all, &in_range, &HashSet::new(), beyond, |_| false, false)
                .is_empty()
        );
    }

    #[test]
    fn a_digests_own_status_is_its_verdict_over_its_window() {
        let a = scope("a");
        let mut failed = digest(&a, "2024-01-01T02:00:00Z", None, DigestStatus::Missing);
        failed.status = DigestStatus::Failed {
            kind: Kind::DigestSignatureInvalid,
            message: "the signature does not verify".into(),
        };
        let DigestVerdict::Failed(f) = super::digest(&failed, false) else {
            panic!()
        };
        assert_eq!(f.kind, Kind::DigestSignatureInvalid);
        assert_eq!(f.key.as_deref(), Some(failed.key.as_str()));
        assert_eq!(
            f.window,
            Some(Window(t("2024-01-01T01:00:00Z"), t("2024-01-01T02:00:00Z")))
        );
        assert_eq!(
            super::digest(&failed, false).outcome(),
            "digest_signature_invalid"
        );
        let unread = digest(
            &a,
            "2024-01-01T02:00:00Z",
            None,
            DigestStatus::Unverified("archived".into()),
        );
        assert_eq!(
            super::digest(&unread, false),
            DigestVerdict::Unverified("archived".into())
        );
        let gone = digest(&a, "2024-01-01T02:00:00Z", None, DigestStatus::Missing);
        assert_eq!(super::digest(&gone, false).outcome(), "digest_missing");
    }
}
