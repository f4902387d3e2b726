//! Linking one scope's digests into a chain: pure logic, no I/O.
//!
//! Each digest names its predecessor (`previousDigestS3Object`), that predecessor's signature and
//! the SHA-256 of its inflated bytes. Following those links finds deleted digests (a named
//! predecessor that is not there), substituted ones (a link that does not match), and restarts
//! (a digest with no predecessor after an earlier one). What the links cannot show — the newest
//! digests deleted — shows as a tail that stops short of the end of the range.

use std::collections::HashMap;

use chrono::Duration;

use crate::digest::{DigestCheck, DigestStatus};
use crate::finding::{Finding, Kind, Unverified, Window};
use crate::layout::{format_time, ScopeId, Timestamp};

/// Consecutive windows closer than this are taken to meet.
const MEET_TOLERANCE: Duration = Duration::seconds(60);

/// The newest digest may end this long before the end of the range: CloudTrail delivers a digest
/// for each hour within about an hour of its end.
pub const TAIL_ALLOWANCE: Duration = Duration::minutes(90);

/// One chain to link: all digests of one scope of one kind (regular or backfill).
pub struct ChainInput<'a> {
    pub scope: &'a ScopeId,
    pub bucket: &'a str,
    /// Digests listed in the range, plus predecessors that were looked up because a digest named
    /// them (status `Missing` when the look-up was a definite not-found).
    pub digests: &'a [&'a DigestCheck],
    pub backfill: bool,
    /// The end of the range: the tail of a regular chain should reach it.
    pub end: Timestamp,
    pub strict: bool,
}

#[derive(Debug, Default)]
pub struct ChainOutcome {
    pub findings: Vec<Finding>,
    pub unverified: Vec<Unverified>,
    /// Time covered by valid digests, merged.
    pub covered: Vec<Window>,
    /// Holes in that coverage, from the first covered time to the end of the range.
    pub gaps: Vec<Window>,
}

/// Links one chain and reports what the links show.
pub fn link_chain(input: &ChainInput<'_>) -> ChainOutcome {
    let scope = input.scope;
    let location = &scope.location;
    let trail = Some(scope.trail.as_str());
    let mut out = ChainOutcome::default();
    let mut present: Vec<&DigestCheck> = input
        .digests
        .iter()
        .copied()
        .filter(|d| d.status != DigestStatus::Missing)
        .collect();
    present.sort_by(|a, b| (a.window().1, &a.key).cmp(&(b.window().1, &b.key)));
    let by_key: HashMap<&str, &DigestCheck> =
        present.iter().map(|d| (d.key.as_str(), *d)).collect();
    let missing: HashMap<&str, &DigestCheck> = input
        .digests
        .iter()
        .filter(|d| d.status == DigestStatus::Missing)
        .map(|d| (d.key.as_str(), *d))
        .collect();

    for (i, d) in present.iter().enumerate() {
        let Some(body) = &d.body else { continue };
        let before = i.checked_sub(1).map(|j| present[j]);
        let Some(prev) = &body.previous else {
            if let Some(p) = before {
                let mut f = Finding::new(
                    Kind::ChainRestart,
                    input.strict,
                    location,
                    trail,
                    Some(&d.key),
                    "",
                );
                let (gap_start, gap_end) = (p.window().1, body.start);
                if gap_end - gap_start > MEET_TOLERANCE {
                    let w = Window(gap_start, gap_end);
                    f.message = format!(
                        "a new chain starts here with no link to the one before: logging or log file validation was off, or the digests of {w} were deleted"
                    );
                    f = f.window(w);
                } else {
                    f.message =
                        "a new chain starts here with no link to the one before (log file validation was turned off and on)".into();
                    f = f.at(body.start);
                }
                out.findings.push(f);
            }
            continue;
        };
        if prev.bucket != input.bucket {
            out.unverified.push(Unverified {
                key: d.key.clone(),
                cause: format!(
                    "its predecessor is in another bucket (s3://{}/{}); the link was not checked",
                    prev.bucket, prev.key
                ),
            });
        } else if let Some(q) = by_key.get(prev.key.as_str()) {
            if let Some(f) = check_link(input, d, q) {
                out.findings.push(f);
            }
        } else if let Some(m) = missing.get(prev.key.as_str()) {
            let hole_start = match before {
                Some(p) if body.start - p.window().1 > MEET_TOLERANCE => p.window().1,
                _ => m.name.end - Duration::hours(1),
            };
            let windows = split_hours(hole_start, body.start.max(m.name.end), input.backfill);
            let n = windows.len();
            for (j, w) in windows.into_iter().enumerate() {
                let (key, message) = if j + 1 == n {
                    (
                        Some(m.key.as_str()),
                        format!(
                            "the digest is missing: {} names it as its predecessor; the hours {w} are covered by no digest",
                            d.key
                        ),
                    )
                } else {
                    (
                        None,
                        format!(
                            "a digest is missing before {}: the hours {w} are covered by no digest (consecutive digests were deleted)",
                            m.key
                        ),
                    )
                };
                out.findings.push(
                    Finding::new(
                        Kind::DigestMissing,
                        input.strict,
                        location,
                        trail,
                        key,
                        message,
                    )
                    .window(w)
                    .digest(&d.key),
                );
            }
        }
    }

    if !input.backfill {
        out.covered = merge(
            present
                .iter()
                .filter(|d| d.is_valid())
                .map(|d| {
                    let (s, e) = d.window();
                    Window(s, e)
                })
                .collect(),
        );
        out.gaps = out
            .covered
            .windows(2)
            .map(|pair| Window(pair[0].1, pair[1].0))
            .collect();
        if let Some(newest) = present.last() {
            let tail = newest.window().1;
            if input.end - tail > TAIL_ALLOWANCE {
                let w = Window(tail, input.end);
                out.gaps.push(w);
                out.findings.push(
                    Finding::new(
                        Kind::ChainTailGap,
                        input.strict,
                        location,
                        trail,
                        Some(&newest.key),
                        format!(
                            "the newest digest ends at {}, {} before the end of the range: the hours {w} have no digest (logging stopped, or the newest digests were deleted)",
                            format_time(tail),
                            human_duration(input.end - tail)
                        ),
                    )
                    .window(w),
                );
            }
        }
    }
    out
}

/// Compares a digest's link fields with its predecessor as found.
fn check_link(input: &ChainInput<'_>, d: &DigestCheck, q: &DigestCheck) -> Option<Finding> {
    let prev = d.body.as_ref()?.previous.as_ref()?;
    let (field, expected, actual) = match (&q.signature, &q.sha256) {
        (Some(sig), _) if *sig != prev.signature => {
            ("signature", prev.signature.clone(), sig.clone())
        }
        (_, Some(hash)) if *hash != prev.hash => ("SHA-256", prev.hash.clone(), hash.clone()),
        _ => return None,
    };
    let (s, e) = q.window();
    Some(
        Finding::new(
            Kind::ChainLinkMismatch,
            input.strict,
            &input.scope.location,
            Some(&input.scope.trail),
            Some(&d.key),
            format!(
                "the predecessor {} does not match this digest's record of it: its {field} differs, so it was replaced or altered",
                q.key
            ),
        )
        .window(Window(s, e))
        .hashes(expected, actual)
        .digest(&q.key),
    )
}

/// Splits a hole into the hourly windows of the digests that should fill it (at least one).
fn split_hours(start: Timestamp, end: Timestamp, single: bool) -> Vec<Window> {
    let len = end - start;
    let hours = (len.num_seconds() as f64 / 3600.0).round() as i64;
    let n = if single { 1 } else { hours.max(1) };
    (0..n)
        .map(|j| {
            Window(
                start + len * j as i32 / n as i32,
                start + len * (j + 1) as i32 / n as i32,
            )
        })
        .collect()
}

/// Merges overlapping or meeting windows.
pub fn merge(mut windows: Vec<Window>) -> Vec<Window> {
    windows.sort();
    let mut merged: Vec<Window> = Vec::with_capacity(windows.len());
    for w in windows {
        match merged.last_mut() {
            Some(last) if w.0 - last.1 <= MEET_TOLERANCE => last.1 = last.1.max(w.1),
            _ => merged.push(w),
        }
    }
    merged
}

pub fn human_duration(d: Duration) -> String {
    let minutes = d.num_minutes();
    match minutes {
        m if m < 120 => format!("{m} min"),
        m if m < 72 * 60 => format!("{} h", m / 60),
        m => format!("{} days", m / (24 * 60)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::{DigestBody, PreviousDigest};
    use crate::layout::{digest_key, Location};
    use chrono::TimeZone;

    fn scope() -> ScopeId {
        ScopeId {
            location: Location {
                prefix: String::new(),
                org_id: None,
                account: "111122223333".into(),
                region: "us-east-1".into(),
            },
            trail: "t".into(),
            home_region: "us-east-1".into(),
        }
    }

    fn hour(h: i64) -> Timestamp {
        chrono::Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap() + Duration::hours(h)
    }

    /// A chain of digests ending at hours 1..=n, each linked to the one before.
    fn chain(n: i64) -> Vec<DigestCheck> {
        let s = scope();
        (1..=n)
            .map(|h| {
                let key = digest_key(&s, hour(h), false);
                let previous = (h > 1).then(|| PreviousDigest {
                    bucket: "b".into(),
                    key: digest_key(&s, hour(h - 1), false),
                    hash: format!("{:064x}", h - 1),
                    signature: format!("{:04x}", h - 1),
                });
                DigestCheck {
                    name: crate::layout::parse_digest_key(&key).unwrap(),
                    key: key.clone(),
                    status: DigestStatus::Valid,
                    body: Some(DigestBody {
                        account: "111122223333".into(),
                        start: hour(h - 1),
                        end: hour(h),
                        end_text: format_time(hour(h)),
                        bucket: "b".into(),
                        key,
                        fingerprint: "f".into(),
                        algorithm: "SHA256withRSA".into(),
                        previous,
                        logs: vec![],
                    }),
                    sha256: Some(format!("{h:064x}")),
                    signature: Some(format!("{h:04x}")),
                }
            })
            .collect()
    }

    fn link(digests: &[DigestCheck], end: i64) -> ChainOutcome {
        let s = scope();
        let refs: Vec<&DigestCheck> = digests.iter().collect();
        link_chain(&ChainInput {
            scope: &s,
            bucket: "b",
            digests: &refs,
            backfill: false,
            end: hour(end),
            strict: false,
        })
    }

    fn delete(digests: &mut [DigestCheck], hour_index: usize) {
        digests[hour_index].status = DigestStatus::Missing;
    }

    fn kinds(out: &ChainOutcome) -> Vec<(Kind, Option<String>)> {
        out.findings
            .iter()
            .map(|f| (f.kind, f.key.clone()))
            .collect()
    }

    #[test]
    fn intact_chain_has_no_findings_and_one_covered_window() {
        let out = link(&chain(6), 6);
        assert!(out.findings.is_empty(), "{:?}", out.findings);
        assert_eq!(out.covered, vec![Window(hour(0), hour(6))]);
        assert!(out.gaps.is_empty());
    }

    #[test]
    fn two_consecutive_deleted_digests_are_two_findings_with_their_hours() {
        let mut c = chain(6);
        delete(&mut c, 2);
        delete(&mut c, 3);
        let out = link(&c, 6);
        assert_eq!(
            kinds(&out),
            vec![
                (Kind::DigestMissing, None),
                (Kind::DigestMissing, Some(c[3].key.clone()))
            ]
        );
        assert_eq!(out.findings[0].window, Some(Window(hour(2), hour(3))));
        assert_eq!(out.findings[1].window, Some(Window(hour(3), hour(4))));
        assert_eq!(out.gaps, vec![Window(hour(2), hour(4))]);
    }

    #[test]
    fn newest_deleted_is_a_tail_gap_and_oldest_deleted_is_missing() {
        let mut c = chain(6);
        c.truncate(4);
        let out = link(&c, 6);
        assert_eq!(
            kinds(&out),
            vec![(Kind::ChainTailGap, Some(c[3].key.clone()))]
        );
        assert_eq!(out.findings[0].severity, crate::finding::Severity::Warning);

        let mut c = chain(6);
        delete(&mut c, 0);
        let out = link(&c, 6);
        assert_eq!(
            kinds(&out),
            vec![(Kind::DigestMissing, Some(c[0].key.clone()))]
        );
        assert_eq!(out.findings[0].window, Some(Window(hour(0), hour(1))));
    }

    #[test]
    fn link_mismatches_and_restarts() {
        let mut c = chain(4);
        c[1].signature = Some("beef".into());
        c[2].sha256 = Some("0".repeat(64));
        let out = link(&c, 4);
        assert_eq!(
            kinds(&out),
            vec![
                (Kind::ChainLinkMismatch, Some(c[2].key.clone())),
                (Kind::ChainLinkMismatch, Some(c[3].key.clone()))
            ]
        );

        let mut c = chain(5);
        c.remove(2);
        c[2].body.as_mut().unwrap().previous = None;
        let out = link(&c, 5);
        assert_eq!(
            kinds(&out),
            vec![(Kind::ChainRestart, Some(c[2].key.clone()))]
        );
        assert_eq!(out.findings[0].window, Some(Window(hour(2), hour(3))));
        assert_eq!(out.gaps, vec![Window(hour(2), hour(3))]);
    }
}
