//! Sharded runs: which part of a bucket shard K of N verifies, the plan that balances heavy
//! locations across shards, what a shard records for the merge, and the merge itself.
//!
//! The unit of work is a location (one account's log folder in one region, with every trail
//! delivering into it) or, for a heavy location, a window of whole UTC days of it. Whatever
//! needs more than one window to decide (chains across a window's edge, logs a later window's
//! digest lists, digests deleted at an edge) is recorded as evidence by each shard and settled
//! by the merge with the same rules a single run uses. The engine (a Kubernetes Indexed Job, an
//! AWS Batch array, a CI matrix) provides the machines; nothing here schedules.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::layout::{Location, Timestamp};
use crate::report::{Expected, Filters, Provenance, RunRecord};
use crate::verify::{combine, settle_location, DayWindow, Judging, LocationEvidence};

/// The version of the plan file's shape.
pub const PLAN_VERSION: u32 = 1;

/// One part of N, 1-based, as `K/N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub total: usize,
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("{s:?} is not a shard: write K/N, 1 ≤ K ≤ N (for example 3/16)");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let index: usize = k.trim().parse().map_err(|_| bad())?;
        let total: usize = n.trim().parse().map_err(|_| bad())?;
        if index == 0 || index > total {
            return Err(bad());
        }
        Ok(Shard { index, total })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.total)
    }
}

impl Shard {
    /// The file name of this shard's report: `shard-0003-of-0016.json`.
    pub fn file_name(&self) -> String {
        format!("shard-{:04}-of-{:04}.json", self.index, self.total)
    }
}

/// An engine whose array index says which shard a process is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// A Kubernetes Indexed Job: `JOB_COMPLETION_INDEX`, 0-based; the total is `--shard-total`.
    Kubernetes,
    /// An AWS Batch array job: `AWS_BATCH_JOB_ARRAY_INDEX`, 0-based; the total is
    /// `AWS_BATCH_JOB_ARRAY_SIZE` or `--shard-total`.
    Batch,
    /// A GitLab CI `parallel:` job: `CI_NODE_INDEX` and `CI_NODE_TOTAL`, 1-based.
    Gitlab,
}

impl Engine {
    /// The variables the engine sets: the index, whether it is 0-based, and the total if any.
    fn variables(self) -> (&'static str, bool, Option<&'static str>) {
        match self {
            Engine::Kubernetes => ("JOB_COMPLETION_INDEX", true, None),
            Engine::Batch => (
                "AWS_BATCH_JOB_ARRAY_INDEX",
                true,
                Some("AWS_BATCH_JOB_ARRAY_SIZE"),
            ),
            Engine::Gitlab => ("CI_NODE_INDEX", false, Some("CI_NODE_TOTAL")),
        }
    }

    /// Which shard this process is, from the engine's variables (read through `var`) and
    /// `--shard-total`. A variable that is missing or not a number is an error, never a run
    /// over the whole bucket.
    pub fn shard(
        self,
        total: Option<usize>,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Shard, String> {
        let (index_var, zero_based, total_var) = self.variables();
        let number = |name: &str| -> Result<Option<usize>, String> {
            match var(name) {
                None => Ok(None),
                Some(v) => v.trim().parse().map(Some).map_err(|_| {
                    format!("{name}={v:?} is not a number, so this shard cannot know its part")
                }),
            }
        };
        let index = number(index_var)?.ok_or_else(|| {
            format!("{index_var} is not set: this process is not a shard of {self:?}'s array (or give --shard K/N)")
        })?;
        let from_env = match total_var {
            Some(name) => number(name)?,
            None => None,
        };
        let total = match (from_env, total) {
            (Some(a), Some(b)) if a != b => {
                return Err(format!(
                    "{} says {a} shards but --shard-total says {b}",
                    total_var.unwrap_or_default()
                ))
            }
            (Some(n), _) | (None, Some(n)) => n,
            (None, None) => {
                return Err(match total_var {
                    Some(name) => format!("{name} is not set: give --shard-total N"),
                    None => format!(
                        "{self:?} does not say how many shards there are: give --shard-total N"
                    ),
                })
            }
        };
        let index = if zero_based { index + 1 } else { index };
        if index == 0 || index > total {
            return Err(format!(
                "{index_var} makes this shard {index} of {total}, which is not a shard"
            ));
        }
        Ok(Shard { index, total })
    }
}

/// The shard a location belongs to without a plan: a stable hash of where its logs are.
pub fn hashed_shard(location: &Location, total: usize) -> usize {
    let digest = Sha256::digest(location.log_folder().as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % total.max(1) as u64) as usize + 1
}

/// What `trailproof plan` writes: every location with its weight, split into windows where it
/// is heavy, and the shard each unit goes to.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PlanFile {
    pub plan_version: u32,
    pub tool: String,
    pub source: String,
    /// The range as given; an open end is the source's own default (a fixed one for S3).
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
    pub filters: Filters,
    pub shards: usize,
    pub units: Vec<Unit>,
}

/// A location, or a window of its days, and the shard that verifies it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    pub location: Location,
    /// `None`: the whole location.
    pub window: Option<DayWindow>,
    /// Date folders of digests it holds, as listed when planned.
    pub days: usize,
    pub shard: usize,
}

/// Splits locations (each with its digest date folders) into units and assigns them so that
/// shards carry about the same number of days: a location heavier than a shard's share is cut
/// into windows of consecutive days, and units are dealt heaviest first to the lightest shard.
pub fn balance(locations: Vec<(Location, Vec<NaiveDate>)>, shards: usize) -> Vec<Unit> {
    let shards = shards.max(1);
    let total: usize = locations.iter().map(|(_, d)| d.len()).sum();
    let share = total.div_ceil(shards).max(1);
    let mut units = Vec::new();
    for (location, mut days) in locations {
        days.sort();
        days.dedup();
        let n = days.len();
        let pieces = if shards > 1 { n.div_ceil(share) } else { 1 }.max(1);
        if pieces == 1 {
            units.push(Unit {
                location,
                window: None,
                days: n,
                shard: 0,
            });
            continue;
        }
        for i in 0..pieces {
            let (lo, hi) = (i * n / pieces, (i + 1) * n / pieces);
            let from = (i > 0).then(|| days[lo]);
            let to = (i + 1 < pieces).then(|| days[hi] - chrono::Duration::days(1));
            units.push(Unit {
                location: location.clone(),
                window: Some(DayWindow { from, to }),
                days: hi - lo,
                shard: 0,
            });
        }
    }
    let mut order: Vec<usize> = (0..units.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&units[a], &units[b]);
        (y.days, &x.location, x.window).cmp(&(x.days, &y.location, y.window))
    });
    let mut load = vec![0usize; shards];
    for i in order {
        let lightest = (0..shards).min_by_key(|&s| (load[s], s)).unwrap_or(0);
        load[lightest] += units[i].days.max(1);
        units[i].shard = lightest + 1;
    }
    units.sort_by(|a, b| (&a.location, a.window).cmp(&(&b.location, b.window)));
    units
}

/// This run's part of a sharded run.
#[derive(Clone, Debug)]
pub struct Part {
    pub shard: Shard,
    /// The plan followed, with the SHA-256 of its file; without one, locations are hashed.
    pub plan: Option<(PlanFile, String)>,
}

impl Part {
    /// The units of `location` this shard verifies: `None` for the whole location, else the
    /// windows of its days. A location the plan does not know (it appeared since) is hashed.
    pub fn units_of(&self, location: &Location) -> Vec<Option<DayWindow>> {
        let planned: Vec<&Unit> = match &self.plan {
            Some((plan, _)) => plan
                .units
                .iter()
                .filter(|u| u.location == *location)
                .collect(),
            None => Vec::new(),
        };
        if planned.is_empty() {
            return if hashed_shard(location, self.shard.total) == self.shard.index {
                vec![None]
            } else {
                Vec::new()
            };
        }
        planned
            .into_iter()
            .filter(|u| u.shard == self.shard.index)
            .map(|u| u.window)
            .collect()
    }
}

/// What a shard's report carries for the merge, beside the shard's own report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ShardRecord {
    pub shard: Shard,
    /// SHA-256 of the plan file followed, if any.
    pub plan: Option<String>,
    pub tool_version: String,
    /// When this shard observed the bucket.
    pub horizon: Timestamp,
    /// What the shard settled itself: whole locations, and what it listed above them (shard 1
    /// only, since every shard lists the same folders there).
    pub record: RunRecord,
    /// Windows of locations' days, for the merge to settle together.
    pub parts: Vec<LocationEvidence>,
    /// Notes on the run as a whole (the source's, the copy's).
    pub notes: Vec<String>,
    pub provenance: Option<Provenance>,
    /// `--expect-*`, judged by the merge over every shard's scopes.
    pub expected: Expected,
    /// `--deny`, as given.
    pub deny: Vec<String>,
}

/// Why shard reports cannot be merged. Each names the files concerned.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("no shard report was given")]
    Empty,
    #[error("{0}")]
    Mismatch(String),
}

/// What the merge makes of the shards: one run's record, with what the run's report needs
/// beyond it.
pub struct Merged {
    pub record: RunRecord,
    pub horizon: Timestamp,
    pub notes: Vec<String>,
    pub provenance: Option<Provenance>,
    pub expected: Expected,
    pub deny: Vec<String>,
}

/// Merges shard records (each with the name of the file it came from) into one run's record,
/// with every window settled over the combined evidence. Refuses shards that are not the N
/// parts, each once, of one run: the same source, range, filters, plan, keys and tool.
pub fn merge(shards: Vec<(String, ShardRecord)>) -> Result<Merged, MergeError> {
    let Some((first_name, first)) = shards.first() else {
        return Err(MergeError::Empty);
    };
    let total = first.shard.total;
    let mut seen: BTreeMap<usize, &str> = BTreeMap::new();
    let origins =
        |r: &RunRecord| -> BTreeSet<String> { r.keys.iter().map(|k| k.origin.clone()).collect() };
    let keyed = shards
        .iter()
        .map(|(name, s)| (origins(&s.record), name.as_str()))
        .find(|(o, _)| !o.is_empty());
    for (name, s) in &shards {
        let differs = |what: &str, a: String, b: String| {
            MergeError::Mismatch(format!(
                "{name} and {first_name} are not shards of one run: their {what} differ ({a} and {b})"
            ))
        };
        if s.shard.total != total {
            return Err(differs(
                "shard counts",
                s.shard.to_string(),
                first.shard.to_string(),
            ));
        }
        if let Some(other) = seen.insert(s.shard.index, name) {
            return Err(MergeError::Mismatch(format!(
                "shard {} is given twice ({other} and {name})",
                s.shard
            )));
        }
        let (a, b) = (&s.record, &first.record);
        let pairs: [(&str, String, String); 9] = [
            (
                "tool versions",
                s.tool_version.clone(),
                first.tool_version.clone(),
            ),
            ("sources", a.source.clone(), b.source.clone()),
            ("buckets", a.bucket.clone(), b.bucket.clone()),
            ("ranges", json(&a.range), json(&b.range)),
            ("filters", json(&a.filters), json(&b.filters)),
            (
                "--strict settings",
                a.strict.to_string(),
                b.strict.to_string(),
            ),
            (
                "plans",
                format!("{:?}", s.plan),
                format!("{:?}", first.plan),
            ),
            ("expectations", json(&s.expected), json(&first.expected)),
            ("--deny rules", s.deny.join(","), first.deny.join(",")),
        ];
        for (what, x, y) in pairs {
            if x != y {
                return Err(differs(what, x, y));
            }
        }
        // A shard to which no location fell fetched no keys at all: the others are compared
        // with the first shard that has keys.
        let x = origins(a);
        if let Some((y, with)) = keyed.as_ref().filter(|_| !x.is_empty()) {
            if x != *y {
                return Err(MergeError::Mismatch(format!(
                    "{name} and {with} are not shards of one run: their trusted key sources differ ({} and {})",
                    x.into_iter().collect::<Vec<_>>().join(", "),
                    y.iter().cloned().collect::<Vec<_>>().join(", "),
                )));
            }
        }
        if s.provenance != first.provenance {
            return Err(differs(
                "evidence copies",
                json(&s.provenance),
                json(&first.provenance),
            ));
        }
    }
    let missing: Vec<String> = (1..=total)
        .filter(|k| !seen.contains_key(k))
        .map(|k| format!("{k}/{total}"))
        .collect();
    if !missing.is_empty() {
        return Err(MergeError::Mismatch(format!(
            "shard(s) {} of this run are missing: a merge without them would not cover the bucket",
            missing.join(", ")
        )));
    }
    let horizon = shards
        .iter()
        .map(|(_, s)| s.horizon)
        .min()
        .unwrap_or(first.horizon);
    let base = &first.record;
    let mut record = RunRecord {
        source: base.source.clone(),
        bucket: base.bucket.clone(),
        range: base.range.clone(),
        filters: base.filters.clone(),
        strict: base.strict,
        keys: Vec::new(),
        started_at: shards
            .iter()
            .map(|(_, s)| s.record.started_at)
            .min()
            .unwrap_or(base.started_at),
        summaries: BTreeMap::new(),
        findings: Vec::new(),
        unverified: Vec::new(),
        after_end: 0,
        not_dates: Vec::new(),
        folder_markers: 0,
    };
    let (notes, provenance, expected, deny) = (
        first.notes.clone(),
        first.provenance.clone(),
        first.expected.clone(),
        first.deny.clone(),
    );
    let mut parts: BTreeMap<Location, Vec<LocationEvidence>> = BTreeMap::new();
    let mut keys = BTreeSet::new();
    for (_, s) in shards {
        let r = s.record;
        keys.extend(r.keys);
        record.summaries.extend(r.summaries);
        record.findings.extend(r.findings);
        record.unverified.extend(r.unverified);
        record.after_end += r.after_end;
        record.not_dates.extend(r.not_dates);
        record.folder_markers += r.folder_markers;
        for part in s.parts {
            parts.entry(part.location.clone()).or_default().push(part);
        }
    }
    record.keys = keys.into_iter().collect();
    record.not_dates.sort();
    let rules = Judging {
        start: record.range.start,
        end: record.range.end,
        horizon,
        strict: record.strict,
        trails: &record.filters.trails,
    };
    let mut settled = Vec::new();
    for (location, windows) in parts {
        settled.push(settle_location(
            combine(location, windows),
            &rules,
            &record.bucket,
        ));
    }
    for outcome in settled {
        record.findings.extend(outcome.findings);
        record.unverified.extend(outcome.unverified);
        record.summaries.extend(outcome.summaries);
        record.after_end += outcome.after_end;
    }
    Ok(Merged {
        record,
        horizon,
        notes,
        provenance,
        expected,
        deny,
    })
}

/// A value as JSON, for a refusal that shows both sides.
fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn location(account: &str) -> Location {
        Location {
            prefix: String::new(),
            org_id: None,
            account: account.into(),
            region: "us-east-1".into(),
        }
    }

    fn days(n: u32) -> Vec<NaiveDate> {
        (1..=n)
            .map(|d| NaiveDate::from_ymd_opt(2024, 1, d).unwrap())
            .collect()
    }

    #[test]
    fn shards_are_written_k_of_n_from_one() {
        assert_eq!("3/16".parse::<Shard>().unwrap().index, 3);
        for bad in ["0/4", "5/4", "1", "a/b", "1/0"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        assert_eq!(
            Shard {
                index: 1,
                total: 16
            }
            .file_name(),
            "shard-0001-of-0016.json"
        );
    }

    #[test]
    fn an_engine_index_becomes_a_shard_and_a_missing_variable_is_an_error() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let k8s = Engine::Kubernetes.shard(Some(4), env(&[("JOB_COMPLETION_INDEX", "0")]));
        assert_eq!(k8s.unwrap(), Shard { index: 1, total: 4 });
        assert!(Engine::Kubernetes
            .shard(None, env(&[("JOB_COMPLETION_INDEX", "0")]))
            .is_err());
        assert!(Engine::Kubernetes.shard(Some(4), env(&[])).is_err());
        let batch = Engine::Batch.shard(
            None,
            env(&[
                ("AWS_BATCH_JOB_ARRAY_INDEX", "15"),
                ("AWS_BATCH_JOB_ARRAY_SIZE", "16"),
            ]),
        );
        assert_eq!(
            batch.unwrap(),
            Shard {
                index: 16,
                total: 16
            }
        );
        let gitlab =
            Engine::Gitlab.shard(None, env(&[("CI_NODE_INDEX", "2"), ("CI_NODE_TOTAL", "3")]));
        assert_eq!(gitlab.unwrap(), Shard { index: 2, total: 3 });
        let out_of_range = Engine::Kubernetes.shard(Some(4), env(&[("JOB_COMPLETION_INDEX", "4")]));
        assert!(out_of_range.is_err());
        let disagree = Engine::Gitlab.shard(
            Some(4),
            env(&[("CI_NODE_INDEX", "2"), ("CI_NODE_TOTAL", "3")]),
        );
        assert!(disagree.is_err());
    }

    #[test]
    fn a_heavy_location_is_cut_into_contiguous_windows_spread_over_the_shards() {
        let units = balance(vec![(location("111111111111"), days(28))], 4);
        assert_eq!(units.len(), 4);
        let shards: BTreeSet<usize> = units.iter().map(|u| u.shard).collect();
        assert_eq!(shards.len(), 4);
        assert!(units.iter().all(|u| u.days == 7));
        let windows: Vec<DayWindow> = units.iter().filter_map(|u| u.window).collect();
        assert_eq!(windows[0].from, None);
        assert_eq!(windows[3].to, None);
        for pair in windows.windows(2) {
            let next = pair[0].to.unwrap() + chrono::Duration::days(1);
            assert_eq!(Some(next), pair[1].from, "windows leave no day out");
        }
        for day in days(28) {
            assert_eq!(windows.iter().filter(|w| w.contains(day)).count(), 1);
        }
    }

    #[test]
    fn light_locations_stay_whole_and_the_load_is_even() {
        let locations: Vec<(Location, Vec<NaiveDate>)> = (0..12)
            .map(|i| (location(&format!("1111111111{i:02}")), days(3)))
            .collect();
        let units = balance(locations, 4);
        assert!(units.iter().all(|u| u.window.is_none()));
        let mut load = [0; 4];
        for u in &units {
            load[u.shard - 1] += u.days;
        }
        assert_eq!(load, [9, 9, 9, 9]);
    }

    #[test]
    fn without_a_plan_every_location_goes_to_exactly_one_shard() {
        for i in 0..50 {
            let l = location(&format!("2222222222{i:02}"));
            let owners: Vec<usize> = (1..=7)
                .filter(|&k| {
                    let part = Part {
                        shard: Shard { index: k, total: 7 },
                        plan: None,
                    };
                    !part.units_of(&l).is_empty()
                })
                .collect();
            assert_eq!(owners.len(), 1);
            assert_eq!(owners[0], hashed_shard(&l, 7));
        }
    }
}
