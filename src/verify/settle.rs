//! Settling a location: once everything it showed is in, its digests are judged by their own
//! checks, its chains linked, the digests that are gone found, and its strays judged. No I/O
//! and no async: a location's evidence comes in as a value ([`LocationEvidence`]), gathered by
//! one run or by the shards that each read a window of its days and combined by the merge, and
//! the same rules settle it either way.

use super::*;
use ledger::Stray;

/// What a location (or a window of its days) showed while it was read, before it is judged.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct LocationEvidence {
    pub location: Location,
    /// The days read, for a window of the location's days; `None`: all of them.
    pub window: Option<DayWindow>,
    /// Every digest checked, its list of logs dropped once used.
    pub checks: Vec<DigestCheck>,
    /// Predecessors read from before the window only to check the link to them: their logs
    /// are the other window's to hash.
    pub borrowed: Vec<String>,
    /// Log objects no valid digest of this part listed.
    pub strays: BTreeMap<String, Stray>,
    /// Logs outside the window's own folders that valid digests of this part listed.
    pub vouched_outside: Vec<String>,
    /// Logs outside the window's own folders listed only by digests of this part that failed,
    /// with the first such digest.
    pub failed_outside: Vec<(String, String)>,
    /// Hours whose digest folders could not be listed, and why.
    pub unlisted_days: Vec<(Timestamp, Timestamp, String)>,
    /// Log objects found nested below a day folder (each already a finding).
    pub nested_unlisted: usize,
    /// What the reading itself decided: logs hashed and compared, objects not checked.
    pub findings: Vec<Finding>,
    pub unverified: Vec<Unverified>,
    pub summaries: Vec<ScopeSummary>,
    /// Objects in the date folders read that lie after the end of the range.
    pub after_end: usize,
}

/// Whole UTC days of digest end times (and of log folders), inclusive; an open end reaches as
/// far as the location does.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct DayWindow {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

impl DayWindow {
    pub fn contains(&self, date: NaiveDate) -> bool {
        self.from.is_none_or(|f| date >= f) && self.to.is_none_or(|t| date <= t)
    }
}

/// What settling decided of one object, for `--report objects=PATH`.
pub(super) struct Line {
    pub(super) key: String,
    pub(super) object: &'static str,
    pub(super) outcome: String,
    pub(super) cause: Option<String>,
    pub(super) sha256: Option<String>,
    pub(super) digest: Option<String>,
}

/// The windows of one location combined into the evidence of the whole location: a digest read
/// by two windows counts once (its own window's reading is kept), and a log one window saw
/// but no digest of its own listed is no stray when another window's digest lists it.
pub fn combine(location: Location, mut parts: Vec<LocationEvidence>) -> LocationEvidence {
    parts.sort_by_key(|p| p.window);
    let mut whole = LocationEvidence {
        location,
        ..LocationEvidence::default()
    };
    let mut vouched = HashSet::new();
    let mut failed: HashMap<String, String> = HashMap::new();
    let mut checks: BTreeMap<String, (bool, DigestCheck)> = BTreeMap::new();
    let mut summaries: BTreeMap<ScopeId, ScopeSummary> = BTreeMap::new();
    for part in parts {
        let borrowed: HashSet<String> = part.borrowed.into_iter().collect();
        for check in part.checks {
            let lent = borrowed.contains(&check.key);
            match checks.get(&check.key) {
                Some((false, _)) => {}
                Some((true, _)) if lent => {}
                _ => {
                    checks.insert(check.key.clone(), (lent, check));
                }
            }
        }
        whole.strays.extend(part.strays);
        vouched.extend(part.vouched_outside);
        for (key, digest) in part.failed_outside {
            failed.entry(key).or_insert(digest);
        }
        whole.unlisted_days.extend(part.unlisted_days);
        whole.nested_unlisted += part.nested_unlisted;
        whole.findings.extend(part.findings);
        whole.unverified.extend(part.unverified);
        whole.after_end += part.after_end;
        for summary in part.summaries {
            let scope = summary.scope();
            match summaries.get_mut(&scope) {
                Some(s) => s.add(&summary),
                None => {
                    summaries.insert(scope, summary);
                }
            }
        }
    }
    whole.strays.retain(|key, _| !vouched.contains(key));
    for (key, stray) in whole.strays.iter_mut() {
        if stray.listed_by_failed.is_none() {
            stray.listed_by_failed = failed.get(key).cloned();
        }
    }
    whole.checks = checks.into_values().map(|(_, c)| c).collect();
    whole.summaries = summaries.into_values().collect();
    whole
}

/// Judges a whole location's evidence into findings, unverified objects and scope summaries,
/// with a line per object decided here.
pub(super) fn settle(
    evidence: LocationEvidence,
    rules: &Judging<'_>,
    bucket: &str,
) -> (Outcome, Vec<Line>) {
    let LocationEvidence {
        location,
        mut checks,
        borrowed,
        strays,
        unlisted_days,
        nested_unlisted,
        findings,
        unverified,
        summaries,
        after_end,
        ..
    } = evidence;
    // One order whoever gathered them, so that ties are broken the same way.
    checks.sort_by(|a, b| (a.name.end, &a.key).cmp(&(b.name.end, &b.key)));
    let mut s = Settling {
        rules,
        bucket,
        location,
        out: Outcome {
            findings,
            unverified,
            summaries: summaries.into_iter().map(|s| (s.scope(), s)).collect(),
            after_end,
            evidence: Vec::new(),
        },
        lines: Vec::new(),
    };
    let all = checks;
    let checks: Vec<DigestCheck> = all
        .iter()
        .filter(|c| !rules.beyond_end(c.name.end))
        .cloned()
        .collect();
    for check in &checks {
        let scope = &check.name.scope;
        if scope.location == s.location && rules.selects(scope) {
            s.summary(scope);
        }
    }
    for summary in s.out.summaries.values_mut() {
        summary.logs.unlisted += nested_unlisted;
    }
    // A predecessor lent from elsewhere (an earlier run's anchor) serves its links only: it
    // was verified, and counted, where it was read.
    let own: Vec<DigestCheck> = checks
        .iter()
        .filter(|c| !borrowed.contains(&c.key))
        .cloned()
        .collect();
    s.report_digests(&own);
    s.link_chains(&checks);
    s.missing_before_the_end(&all, &checks);
    // A digest past the end that could not be read may list the range's last logs.
    s.judge_strays(&all, strays, unlisted_days);
    (s.out, s.lines)
}

/// What a window shows on its own, for its shard's report: what its reading decided, and each
/// of its digests' own checks. Its chains and strays wait for the merge.
pub(super) fn provisional(
    evidence: &LocationEvidence,
    rules: &Judging<'_>,
    bucket: &str,
) -> Outcome {
    let mut s = Settling {
        rules,
        bucket,
        location: evidence.location.clone(),
        out: Outcome {
            findings: evidence.findings.clone(),
            unverified: evidence.unverified.clone(),
            summaries: evidence
                .summaries
                .iter()
                .map(|s| (s.scope(), s.clone()))
                .collect(),
            after_end: evidence.after_end,
            evidence: Vec::new(),
        },
        lines: Vec::new(),
    };
    let own: Vec<DigestCheck> = evidence
        .checks
        .iter()
        .filter(|c| !rules.beyond_end(c.name.end) && !evidence.borrowed.contains(&c.key))
        .cloned()
        .collect();
    s.report_digests(&own);
    s.out
}

struct Settling<'r, 'j> {
    rules: &'r Judging<'j>,
    bucket: &'r str,
    location: Location,
    out: Outcome,
    lines: Vec<Line>,
}

impl Settling<'_, '_> {
    fn line(
        &mut self,
        key: &str,
        object: &'static str,
        outcome: &str,
        cause: Option<&str>,
        sha256: Option<&str>,
        digest: Option<&str>,
    ) {
        self.lines.push(Line {
            key: key.to_string(),
            object,
            outcome: outcome.to_string(),
            cause: cause.map(str::to_string),
            sha256: sha256.map(str::to_string),
            digest: digest.map(str::to_string),
        });
    }

    fn summary(&mut self, scope: &ScopeId) -> &mut ScopeSummary {
        let bucket = self.bucket;
        self.out
            .summaries
            .entry(scope.clone())
            .or_insert_with(|| ScopeSummary::new(bucket, scope))
    }

    fn unverified(&mut self, key: &str, cause: String) {
        self.out.unverified.push(Unverified {
            key: key.to_string(),
            cause,
        });
    }

    /// Turns each of this location's selected digests' own status into findings, unverified
    /// entries and counts. (A predecessor read from another location only serves its link.)
    fn report_digests(&mut self, checks: &[DigestCheck]) {
        let strict = self.rules.strict;
        for check in checks {
            let scope = &check.name.scope;
            if scope.location != self.location || !self.rules.selects(scope) {
                continue;
            }
            let verdict = judge::digest(check, strict);
            let cause = match &verdict {
                judge::DigestVerdict::Unverified(cause) => Some(cause.as_str()),
                _ => None,
            };
            self.line(
                &check.key,
                "digest",
                verdict.outcome(),
                cause,
                check.sha256.as_deref(),
                None,
            );
            let summary = self.summary(scope);
            match verdict {
                judge::DigestVerdict::Valid => summary.digests.valid += 1,
                judge::DigestVerdict::Failed(finding) => {
                    summary.digests.invalid += 1;
                    self.out.findings.push(*finding);
                }
                judge::DigestVerdict::Unverified(cause) => {
                    summary.digests.unverified += 1;
                    self.unverified(&check.key, cause);
                }
                judge::DigestVerdict::Missing => {}
            }
        }
    }

    /// A digest read past the end names its predecessor, inside the range, and that one is gone:
    /// the chains, which stop at the end, cannot see that link, so it is reported here.
    fn missing_before_the_end(&mut self, all: &[DigestCheck], checks: &[DigestCheck]) {
        let rules = self.rules;
        let reported: HashSet<String> = self
            .out
            .findings
            .iter()
            .filter(|f| f.kind == Kind::DigestMissing)
            .filter_map(|f| f.key.clone())
            .collect();
        let location = self.location.clone();
        let found = judge::missing_before_the_end(
            all,
            checks,
            &reported,
            |end| rules.beyond_end(end),
            |scope| scope.location == location && rules.selects(scope),
            rules.strict,
        );
        for (scope, finding) in found {
            self.out.findings.push(finding);
            self.summary(scope).digests.missing += 1;
        }
    }

    /// Links each selected scope's regular and backfill chains.
    fn link_chains(&mut self, checks: &[DigestCheck]) {
        let rules = self.rules;
        let by_scope = judge::chains(checks);
        for (scope, digests) in by_scope {
            if scope.location != self.location || !rules.selects(scope) {
                continue;
            }
            for backfill in [false, true] {
                let chain: Vec<&DigestCheck> = digests
                    .iter()
                    .copied()
                    .filter(|d| d.name.backfill == backfill)
                    .collect();
                if chain.is_empty() {
                    continue;
                }
                let outcome = link_chain(&ChainInput {
                    scope,
                    bucket: self.bucket,
                    digests: &chain,
                    backfill,
                    end: rules.end,
                    strict: rules.strict,
                });
                let missing: Vec<&Finding> = outcome
                    .findings
                    .iter()
                    .filter(|f| f.kind == Kind::DigestMissing)
                    .collect();
                for key in missing.iter().filter_map(|f| f.key.as_deref()) {
                    self.line(key, "digest", "digest_missing", None, None, None);
                }
                let count = missing.len();
                let summary = self.summary(scope);
                summary.digests.missing += count;
                if !backfill {
                    summary.covered = outcome.covered;
                    summary.gaps = outcome.gaps;
                }
                self.out.findings.extend(outcome.findings);
                self.out.unverified.extend(outcome.unverified);
            }
        }
    }

    /// Judges the log objects no valid digest listed: unverified when a digest that may list
    /// them could not be read or failed, pending when digests do not yet reach past them, and
    /// unlisted otherwise.
    fn judge_strays(
        &mut self,
        checks: &[DigestCheck],
        strays: BTreeMap<String, Stray>,
        mut unread_days: Vec<(Timestamp, Timestamp, String)>,
    ) {
        let rules = self.rules;
        let location = self.location.clone();
        let here = |c: &&DigestCheck| c.name.scope.location == location;
        // Logs belong to the folder, not to a trail: with --trail, a log no trail's digest lists
        // is judged all the same (the selected trail's digests may be the ones that are gone).
        // How far valid regular digests reach, across all trails delivering here.
        let reach = checks
            .iter()
            .filter(here)
            .filter(|c| c.is_valid() && !c.name.backfill)
            .map(|c| c.window().1)
            .max();
        let signed = checks
            .iter()
            .filter(|c| c.is_valid())
            .map(|c| c.window().1)
            .max();
        // Hours whose digests could not be read or listed: a digest lists logs named up to the
        // delivery delay before its window, so the window is widened on both sides.
        let mut unread: Vec<(Timestamp, Timestamp, String)> = checks
            .iter()
            .filter(here)
            .filter(|c| matches!(c.status, DigestStatus::Unverified(_)))
            .map(|c| {
                let (s, e) = c.window();
                let why = format!("the digest that may list it, {}, could not be read", c.key);
                (s - DELIVERY_DELAY, e + DELIVERY_DELAY, why)
            })
            .collect();
        unread.append(&mut unread_days);
        let evidence = judge::Evidence {
            reach,
            signed,
            unread,
            horizon: rules.horizon,
        };
        let mut found: Vec<Finding> = Vec::new();
        for (key, stray) in strays {
            match judge::stray(stray.time, stray.listed_by_failed.as_deref(), &evidence) {
                judge::LogVerdict::Unverified { cause, digest } => {
                    self.line(
                        &key,
                        "log",
                        "unverified",
                        Some(&cause),
                        None,
                        digest.as_deref(),
                    );
                    self.unverified(&key, cause);
                }
                judge::LogVerdict::Finding { kind, message } => {
                    self.line(&key, "log", kind.as_str(), None, None, None);
                    for summary in self.out.summaries.values_mut() {
                        match kind {
                            Kind::LogUnlisted => summary.logs.unlisted += 1,
                            _ => summary.logs.pending += 1,
                        }
                    }
                    let mut f = Finding::new(
                        kind,
                        rules.strict,
                        &self.location,
                        None,
                        Some(&key),
                        message,
                    );
                    if let Some(t) = stray.time {
                        f = f.at(t);
                    }
                    found.push(f);
                }
            }
        }
        judge::fold_incidents(&mut self.out.findings, &mut found);
        self.out.findings.extend(found);
    }
}

#[cfg(test)]
mod tests {
    use super::super::judge::tests::{digest, scope, t};
    use super::*;

    fn window(from: Option<&str>, to: Option<&str>) -> Option<DayWindow> {
        let day = |d: &str| NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
        Some(DayWindow {
            from: from.map(day),
            to: to.map(day),
        })
    }

    fn rules(trails: &[String]) -> Judging<'_> {
        Judging {
            start: None,
            end: t("2024-01-03T00:00:00Z"),
            horizon: t("2024-01-03T00:00:00Z"),
            strict: false,
            trails,
        }
    }

    /// Two windows of one location: the first read d1 and d2, the second d3 and, only for the
    /// link to it, d2 again (given `borrowed_status` there).
    fn two_windows(borrowed_status: DigestStatus) -> (Vec<LocationEvidence>, [DigestCheck; 3]) {
        let s = scope("management");
        let d1 = digest(&s, "2024-01-01T23:00:00Z", None, DigestStatus::Valid);
        let d2 = digest(
            &s,
            "2024-01-02T00:00:00Z",
            Some(&d1.key),
            DigestStatus::Valid,
        );
        let d3 = digest(
            &s,
            "2024-01-02T01:00:00Z",
            Some(&d2.key),
            DigestStatus::Valid,
        );
        let mut lent = d2.clone();
        lent.status = borrowed_status;
        let first = LocationEvidence {
            location: s.location.clone(),
            window: window(None, Some("2024-01-01")),
            checks: vec![d1.clone(), d2.clone()],
            ..LocationEvidence::default()
        };
        let second = LocationEvidence {
            location: s.location.clone(),
            window: window(Some("2024-01-02"), None),
            checks: vec![lent, d3.clone()],
            borrowed: vec![d2.key.clone()],
            ..LocationEvidence::default()
        };
        (vec![second, first], [d1, d2, d3])
    }

    #[test]
    fn a_predecessor_read_from_another_window_counts_once_as_its_own_window_read_it() {
        let (parts, [d1, d2, d3]) = two_windows(DigestStatus::Unverified("a timeout".into()));
        let whole = combine(parts[0].location.clone(), parts);
        let keys: Vec<&str> = whole.checks.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys.len(), 3);
        for k in [&d1.key, &d2.key, &d3.key] {
            assert!(keys.contains(&k.as_str()), "{k}");
        }
        let kept = whole.checks.iter().find(|c| c.key == d2.key).unwrap();
        assert_eq!(kept.status, DigestStatus::Valid, "its own window's reading");
        let none: [String; 0] = [];
        let out = settle(whole, &rules(&none), "b").0;
        let summary = out.summaries.values().next().unwrap();
        assert_eq!(summary.digests.valid, 3);
        assert!(out.unverified.is_empty(), "{:?}", out.unverified);
        assert!(
            out.findings.iter().all(|f| f.kind != Kind::DigestMissing),
            "{:#?}",
            out.findings
        );
    }

    #[test]
    fn a_predecessor_gone_is_known_only_to_the_window_that_looked_it_up() {
        let (mut parts, [_, d2, _]) = two_windows(DigestStatus::Missing);
        // The first window never listed d2: it was deleted.
        parts[1].checks.retain(|c| c.key != d2.key);
        let whole = combine(parts[0].location.clone(), parts);
        let none: [String; 0] = [];
        let out = settle(whole, &rules(&none), "b").0;
        let missing: Vec<&str> = out
            .findings
            .iter()
            .filter(|f| f.kind == Kind::DigestMissing)
            .filter_map(|f| f.key.as_deref())
            .collect();
        assert_eq!(missing, [d2.key.as_str()]);
    }

    #[test]
    fn a_log_one_window_saw_is_no_stray_when_another_windows_digest_lists_it() {
        let (mut parts, _) = two_windows(DigestStatus::Valid);
        let stray = |time: &str| ledger::Stray {
            time: Some(t(time)),
            listed_by_failed: None,
        };
        parts[1]
            .strays
            .insert("listed-later".into(), stray("2024-01-01T23:55:00Z"));
        parts[1]
            .strays
            .insert("failed-later".into(), stray("2024-01-01T23:56:00Z"));
        parts[1]
            .strays
            .insert("nobody".into(), stray("2024-01-01T23:57:00Z"));
        parts[0].vouched_outside.push("listed-later".into());
        parts[0]
            .failed_outside
            .push(("failed-later".into(), "bad-digest".into()));
        let whole = combine(parts[0].location.clone(), parts);
        let keys: Vec<&str> = whole.strays.keys().map(String::as_str).collect();
        assert_eq!(keys, ["failed-later", "nobody"]);
        assert_eq!(
            whole.strays["failed-later"].listed_by_failed.as_deref(),
            Some("bad-digest")
        );
        assert_eq!(whole.strays["nobody"].listed_by_failed, None);
    }
}
