//! The run: discover locations, then verify each location day by day: read and check its
//! digests, hash the logs they list, and match its log folders against what digests list. Chains
//! are linked and leftovers judged when a location is done; every outcome goes into one
//! [`Report`].
//!
//! Memory does not grow with the number of logs: a location holds the logs of a few days (those
//! listed by digests, the folder listing awaiting the next day's digests, and over a network up
//! to `MAX_DAYS_AHEAD` days listed and read ahead when few locations share the run), plus a
//! compact record of each digest (its links, without its list of logs) for chain linking, plus
//! what will be reported anyway. A few locations are verified at once, and the next day's
//! folders are listed while the current day is checked.
//!
//! Requests are bounded by one setting (`jobs`): every request holds one of `jobs` permits shared
//! by the whole run. CPU work (inflate, SHA-256, RSA) is handed to rayon and awaited through a
//! oneshot channel, so tokio workers never block on it. A local folder, whose reads never wait on
//! a network, is read and hashed in one parallel rayon pass per day instead, handed off and
//! awaited the same way: every location of every source runs as a future on the one runtime, and
//! no future is ever polled by anything else (tokio's primitives, such as the permits, need a
//! runtime that gets control back: polled in a loop of its own, a task whose cooperative budget
//! is spent would never be given a new one). Nothing here prints.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use chrono::{Datelike, Duration, NaiveDate};
use futures::future::{self, FutureExt};
use futures::stream::{self, StreamExt};

use crate::chain::{link_chain, ChainInput};
use crate::digest::{verify_digest, DigestCheck, DigestStatus};
use crate::finding::{Finding, Kind, Unverified};
use crate::keys::KeyRing;
use crate::layout::{
    date_hours, first_folders, folder_after, folder_hours, format_time, is_account, is_org_id,
    is_region, last_segment, location_of, parse_digest_key, parse_log_key, split_date_folder,
    DigestName, Location, ScopeId, Timestamp, DELIVERY_DELAY,
};
use crate::report::{Filters, Range, Report, ScopeSummary};
use crate::store::{HashFailure, Listing, ObjectInfo, Store, StoreError};

mod carry;
mod discover;
pub mod judge;
pub mod ledger;
mod location;
pub mod pace;
mod reader;
mod settle;
pub use carry::{LocationProof, Proof, Proven, Resume, ResumeAt};
use discover::Discovery;
use location::verify_location;
pub use location::Outcome;
use reader::{Ctx, DayListing};
pub use settle::{combine, DayWindow, LocationEvidence};

/// A log listed by no digest is `log_unlisted` once the bucket was observed this long after its
/// name's time; before that CloudTrail may not yet have delivered the digest that lists it
/// (`log_pending`). Judged against the horizon, never against the digests' own coverage:
/// digests that were deleted cannot vouch for their own absence.
pub const UNLISTED_AFTER: Duration = Duration::hours(2);

/// How deep below the source to look for `AWSLogs/` folders (custom key prefixes).
const MAX_PREFIX_DEPTH: usize = 8;

/// Ranges up to this many days long list their date folders by name.
const NAMED_DAYS: i64 = 31;

/// Requests in flight per location verified at once: `jobs / this` locations run together. An
/// organization's bucket holds thousands of small locations, each a few round trips long; memory
/// per location in flight is about two days of its log names.
const JOBS_PER_LOCATION: usize = 4;

/// Location-days verified at once, at most (but never fewer than two locations): a location keeps
/// each digest it checked, about 3 KB, until it is settled, so many long locations at once would
/// hold a year of an organization's digests. Long locations have work enough of their own to keep
/// requests flowing.
const LOCATION_DAYS_AT_ONCE: usize = 640;

/// At most this many of a location's days are read ahead of the day being checked.
const MAX_DAYS_AHEAD: usize = 4;

/// The phases a run goes through, for progress reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Listing folders down to the date folders in range.
    Discovering,
    /// Reading digests and hashing logs.
    Verifying,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Discovering => "discovering",
            Phase::Verifying => "verifying",
        }
    }
}

/// Where a run says how far it has got. The binary draws it on standard error; the library
/// never prints.
pub trait Progress: Send + Sync {
    /// A phase starts, with the number of objects it will handle (0 when unknown).
    fn phase(&self, phase: Phase, total: u64);
    /// Objects (and their bytes) done in the current phase.
    fn advance(&self, objects: u64, bytes: u64);
    /// The requests the run now lets be in flight at once (over S3), when that changes.
    fn requests(&self, _limit: usize) {}
    /// The run is over.
    fn finish(&self);
}

/// What to verify.
#[derive(Clone)]
pub struct Options {
    pub start: Option<Timestamp>,
    pub end: Timestamp,
    /// When the bucket was observed: now for S3, the acquisition time for an evidence copy.
    /// What CloudTrail must have delivered by then is judged against it.
    pub horizon: Timestamp,
    /// Only accounts under these organization ids (empty: every account).
    pub orgs: Vec<String>,
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
    pub trails: Vec<String>,
    /// Requests in flight at most.
    pub jobs: usize,
    /// Adapt the requests in flight to the source, up to `jobs` (`--jobs auto`).
    pub adaptive: bool,
    pub strict: bool,
    /// Where progress goes, if anywhere.
    pub progress: Option<Arc<dyn Progress>>,
    /// Where a line per object examined goes (`--report objects=PATH`), if anywhere.
    pub objects: Option<Arc<crate::report::ObjectLog>>,
    /// The part of a sharded run this run verifies; `None`: all of it.
    pub part: Option<Arc<crate::shard::Part>>,
    /// Where the locations an earlier run verified resume (`--state`), if anywhere.
    pub resume: Option<Arc<Resume>>,
    /// Where what this run proves is kept for the next run's state, if anywhere.
    pub proof: Option<Arc<Proof>>,
}

/// The rules a location's evidence is judged by: the range, when the bucket was observed, and
/// which trails are reported on. A run and a merge of shards judge by the same.
#[derive(Clone, Copy, Debug)]
pub struct Judging<'a> {
    pub start: Option<Timestamp>,
    pub end: Timestamp,
    pub horizon: Timestamp,
    pub strict: bool,
    pub trails: &'a [String],
}

impl Judging<'_> {
    /// A digest whose window overlaps the range, or begins within CloudTrail's delivery delay
    /// after its end (it may list the range's last logs).
    pub fn in_range(&self, digest_end: Timestamp) -> bool {
        self.start.is_none_or(|s| digest_end >= s)
            && digest_end - Duration::hours(1) <= self.end + DELIVERY_DELAY
    }

    /// A digest read past the end of the range only because it may list the range's last logs:
    /// it vouches for those, and is neither counted nor reported nor chained.
    pub fn beyond_end(&self, digest_end: Timestamp) -> bool {
        digest_end - Duration::hours(1) > self.end
    }

    pub fn selects(&self, scope: &ScopeId) -> bool {
        self.trails.is_empty() || self.trails.contains(&scope.trail)
    }
}

/// Settles one location's whole evidence (gathered by one run, or combined from shards).
pub fn settle_location(evidence: LocationEvidence, rules: &Judging<'_>, bucket: &str) -> Outcome {
    settle::settle(evidence, rules, bucket).0
}

impl Options {
    /// Whether the account (and organization) filters select a location's account.
    fn selects_account(&self, org: Option<&String>, account: &String) -> bool {
        (self.accounts.is_empty() || self.accounts.contains(account))
            && (self.orgs.is_empty() || org.is_some_and(|o| self.orgs.contains(o)))
    }

    fn selects_region(&self, region: &str) -> bool {
        self.regions.is_empty() || self.regions.iter().any(|r| r == region)
    }

    /// Whether the filters select `location`.
    pub fn selects_location(&self, location: &Location) -> bool {
        self.selects_account(location.org_id.as_ref(), &location.account)
            && self.selects_region(&location.region)
    }

    pub fn judging(&self) -> Judging<'_> {
        Judging {
            start: self.start,
            end: self.end,
            horizon: self.horizon,
            strict: self.strict,
            trails: &self.trails,
        }
    }

    fn phase(&self, phase: Phase, total: usize) {
        if let Some(p) = &self.progress {
            p.phase(phase, total as u64);
        }
    }

    fn advance(&self, objects: u64, bytes: u64) {
        if let Some(p) = &self.progress {
            p.advance(objects, bytes);
        }
    }

    fn in_range(&self, digest_end: Timestamp) -> bool {
        self.judging().in_range(digest_end)
    }

    fn beyond_end(&self, digest_end: Timestamp) -> bool {
        self.judging().beyond_end(digest_end)
    }

    fn selects(&self, scope: &ScopeId) -> bool {
        self.judging().selects(scope)
    }
}

/// Why a run could not be done at all.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("cannot list the source {source_name}: {cause}")]
    Unlistable { source_name: String, cause: String },
    #[error("the range starts at {start} but ends at {end}: the start must come first")]
    EmptyRange { start: String, end: String },
}

/// Maps `items` through `f` with at most `jobs` in flight, keeping the input order.
pub async fn bounded<I, T, F, Fut>(jobs: usize, items: I, f: F) -> Vec<T>
where
    I: IntoIterator,
    F: FnMut(I::Item) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    stream::iter(items)
        .map(f)
        .buffered(jobs.max(1))
        .collect()
        .await
}

/// How many locations are verified at once, for `share` of the requests in flight and
/// `locations` of `days` date folders in all.
fn locations_at_once(share: usize, locations: usize, days: usize) -> usize {
    let mean_days = days.div_ceil(locations.max(1)).max(1);
    (share / JOBS_PER_LOCATION)
        .min(LOCATION_DAYS_AT_ONCE / mean_days)
        .max(2)
}

/// What discovery found: each location with its date folders in range, plus what could not be
/// listed. Made by [`plan`], consumed by [`execute`].
pub struct Plan {
    started_at: Timestamp,
    work: Vec<LocationWork>,
    unverified: Vec<Unverified>,
    /// Date folders after the end of the range, not examined.
    after_end: usize,
    /// Folders under `AWSLogs/` that fit no folder of CloudTrail's grammar (not an account, org
    /// id, region or date where one belongs), not examined.
    not_dates: Vec<String>,
    /// Folder markers met while listing the folders above the locations (every shard lists
    /// those; the first shard counts them).
    markers_above: usize,
}

/// One location and its date folders in range, in date order.
#[derive(Clone)]
struct LocationWork {
    location: Location,
    days: BTreeMap<NaiveDate, DayFolders>,
    /// Hours whose digest folders could not be listed, and why.
    unlisted: Vec<(Timestamp, Timestamp, String)>,
    /// The days to read, for a window of the location's days; `None`: all of them.
    window: Option<DayWindow>,
    /// Where an earlier run's state has this location resume.
    resume: Option<ResumeAt>,
}

/// The folders of one date of one location.
#[derive(Clone, Debug, Default)]
struct DayFolders {
    digests: Option<String>,
    logs: Option<String>,
}

impl Plan {
    /// For each source region with digests in range, the span whose signing keys are needed:
    /// the range (or, for all history, from the oldest digest date folder) widened by two hours.
    pub fn key_ranges(&self, opts: &Options) -> Vec<(String, Timestamp, Timestamp)> {
        let mut oldest: BTreeMap<&str, NaiveDate> = BTreeMap::new();
        for work in &self.work {
            let first = work.days.iter().find(|(_, d)| d.digests.is_some());
            if let Some((date, _)) = first {
                let at = oldest.entry(work.location.region.as_str()).or_insert(*date);
                *at = (*at).min(*date);
            }
        }
        oldest
            .into_iter()
            .map(|(region, first)| {
                let midnight = first.and_time(chrono::NaiveTime::MIN).and_utc();
                let start = opts.start.unwrap_or(midnight - Duration::hours(1));
                (
                    region.to_string(),
                    start - Duration::hours(2),
                    opts.end + Duration::hours(2),
                )
            })
            .collect()
    }
}

/// Verifies everything under `store` that `opts` selects.
pub async fn verify<S: Store>(
    store: &S,
    keys: Arc<KeyRing>,
    opts: Options,
) -> Result<Report, VerifyError> {
    let planned = plan(store, &opts).await?;
    Ok(execute(store, planned, keys, opts).await)
}

/// Discovers every location under the source and its date folders in range.
pub async fn plan<S: Store>(store: &S, opts: &Options) -> Result<Plan, VerifyError> {
    let started_at = chrono::Utc::now();
    if let Some(start) = opts.start {
        if start >= opts.end {
            return Err(VerifyError::EmptyRange {
                start: format_time(start),
                end: format_time(opts.end),
            });
        }
    }
    let mut discovery = Discovery {
        store,
        opts,
        unverified: Vec::new(),
        after_end: 0,
        not_dates: Vec::new(),
    };
    opts.phase(Phase::Discovering, 0);
    let mut locations = discovery.discover().await?;
    let markers_above = store.folder_markers();
    let mut windowed = Vec::new();
    if let Some(part) = &opts.part {
        // Every shard lists the folders above the locations; the first reports what is there.
        if part.shard.index != 1 {
            discovery.unverified.clear();
            discovery.not_dates.clear();
        }
        let mut whole = Vec::new();
        for location in locations {
            let units = part.units_of(&location);
            if units.contains(&None) {
                whole.push(location.clone());
            }
            let windows: Vec<DayWindow> = units.into_iter().flatten().collect();
            if !windows.is_empty() {
                windowed.push((location, windows));
            }
        }
        locations = whole;
    }
    let mut work = discovery.days_of(locations).await;
    if let Some(resume) = &opts.resume {
        for w in work.iter_mut() {
            let Some(at) = resume.locations.get(&w.location) else {
                continue;
            };
            // What lies before the resumption was verified by earlier runs: the state re-lists
            // it and compares it with its ledger instead.
            let from = at.start.date_naive();
            w.days.retain(|date, _| *date >= from);
            w.unlisted.retain(|(_, to, _)| *to >= at.start);
            w.resume = Some(at.clone());
        }
    }
    for (location, windows) in windowed {
        // What is listed of a location's own folders is reported by the shard holding its
        // first window.
        let mark = (
            discovery.unverified.len(),
            discovery.not_dates.len(),
            discovery.after_end,
        );
        let Some(all) = discovery.days_of(vec![location]).await.pop() else {
            continue;
        };
        if !windows.iter().any(|w| w.from.is_none()) {
            discovery.unverified.truncate(mark.0);
            discovery.not_dates.truncate(mark.1);
            discovery.after_end = mark.2;
        }
        for window in windows {
            let mut part = all.clone();
            part.days.retain(|d, _| window.contains(*d));
            if window.from.is_some() {
                part.unlisted.clear();
            }
            part.window = Some(window);
            work.push(part);
        }
    }
    Ok(Plan {
        started_at,
        work,
        unverified: discovery.unverified,
        after_end: discovery.after_end,
        not_dates: discovery.not_dates,
        markers_above,
    })
}

/// For each location of a plan made without a part, the days whose digest folders it found:
/// what `trailproof plan` weighs.
pub fn digest_days(plan: &Plan) -> Vec<(Location, Vec<NaiveDate>)> {
    plan.work
        .iter()
        .map(|w| {
            let days = w
                .days
                .iter()
                .filter(|(_, d)| d.digests.is_some())
                .map(|(date, _)| *date)
                .collect();
            (w.location.clone(), days)
        })
        .collect()
}

/// Verifies each location of `plan`, with `keys` trusted, and makes the report.
pub async fn execute<S: Store>(store: &S, plan: Plan, keys: Arc<KeyRing>, opts: Options) -> Report {
    execute_as_keys_arrive(store, plan, future::ready(keys).boxed().shared(), opts).await
}

/// The keys a run trusts, still on their way (fetched from CloudTrail, say).
pub type ArrivingKeys = future::Shared<future::BoxFuture<'static, Arc<KeyRing>>>;

/// [`execute`] with keys that are still on their way: listing and reading start at once, and
/// only the checks of digest signatures wait for the keys.
pub async fn execute_as_keys_arrive<S: Store>(
    store: &S,
    plan: Plan,
    keys: ArrivingKeys,
    opts: Options,
) -> Report {
    let Plan {
        started_at,
        work,
        mut unverified,
        after_end,
        not_dates,
        markers_above,
    } = plan;
    let mut findings = Vec::new();
    opts.phase(Phase::Verifying, 0);
    let jobs = opts.jobs.max(1);
    // Adapting, the bound is far above what is usually in flight: locations are let in for a
    // quarter of it, which keeps a thousand requests' worth of work ready and memory in check.
    let share = if opts.adaptive { jobs / 4 } else { jobs };
    let days: usize = work.iter().map(|w| w.days.len()).sum();
    let at_once = locations_at_once(share, work.len(), days);
    // Over a network, places no location takes go to reading days ahead: memory stays about
    // `at_once` location-days. A disk never makes a day wait on round trips: the next day is
    // listed while one is checked, no more.
    let days_ahead = match store.reads_now() {
        Some(_) => 2,
        None => (at_once / work.len().max(1)).clamp(2, MAX_DAYS_AHEAD),
    };
    let ctx = Ctx {
        store,
        opts: &opts,
        keys,
        bucket: store.bucket().into(),
        pace: pace::Pace::new(jobs, opts.adaptive),
        prefixes: pace::PrefixRates::new(pace::PREFIX_GETS_PER_SECOND),
        shown_limit: Default::default(),
        days_ahead,
    };
    let outcomes: Vec<Outcome> = stream::iter(work)
        .map(|w| verify_location(&ctx, w))
        .buffer_unordered(at_once)
        .collect()
        .await;
    let mut summaries = BTreeMap::new();
    let mut outcomes_after = 0;
    let mut evidence = Vec::new();
    for outcome in outcomes {
        outcomes_after += outcome.after_end;
        findings.extend(outcome.findings);
        unverified.extend(outcome.unverified);
        summaries.extend(outcome.summaries);
        evidence.extend(outcome.evidence);
    }
    let keys = ctx.keys.clone().await.infos();
    let (opts_adaptive, ctx_peak) = (opts.adaptive, ctx.pace.peak());
    let progress = opts.progress.clone();
    let judging = Judging {
        trails: &[],
        ..opts.judging()
    };
    let markers = match &opts.part {
        Some(part) if part.shard.index != 1 => store.folder_markers() - markers_above,
        _ => store.folder_markers(),
    };
    let record = crate::report::RunRecord {
        source: store.source(),
        bucket: store.bucket().to_string(),
        range: Range {
            start: opts.start,
            end: opts.end,
        },
        filters: Filters {
            orgs: opts.orgs,
            accounts: opts.accounts,
            regions: opts.regions,
            trails: opts.trails,
        },
        strict: opts.strict,
        keys,
        started_at,
        summaries,
        findings,
        unverified,
        after_end: after_end + outcomes_after,
        not_dates,
        folder_markers: markers,
    };
    let report = match &opts.part {
        None => Report::assemble(record),
        Some(part) => {
            let windows = evidence.len();
            let shard = crate::shard::ShardRecord {
                shard: part.shard,
                plan: part.plan.as_ref().map(|(_, sha)| sha.clone()),
                tool_version: env!("CARGO_PKG_VERSION").into(),
                horizon: opts.horizon,
                record: record.clone(),
                parts: evidence,
                notes: Vec::new(),
                provenance: None,
                expected: Default::default(),
                deny: Vec::new(),
            };
            // The shard's own report: what it settled, and what its windows show so far.
            let mut shown = record;
            let rules = Judging {
                trails: &shard.record.filters.trails,
                ..Judging {
                    trails: &[],
                    ..judging
                }
            };
            for part in &shard.parts {
                let seen = settle::provisional(part, &rules, store.bucket());
                shown.findings.extend(seen.findings);
                shown.unverified.extend(seen.unverified);
                for (scope, summary) in seen.summaries {
                    match shown.summaries.get_mut(&scope) {
                        Some(s) => s.add(&summary),
                        None => {
                            shown.summaries.insert(scope, summary);
                        }
                    }
                }
            }
            let empty = shown.summaries.is_empty() && windows == 0;
            let mut report = Report::assemble(shown);
            if empty {
                // Nothing of the bucket fell to this shard: that is its whole part, done.
                report.notes.retain(|n| !n.starts_with("nothing to verify"));
                report.notes.push(format!(
                    "no location of the source falls to shard {}",
                    part.shard
                ));
            }
            report.notes.push(format!(
                "shard {} of a sharded run: this report covers its part only; `trailproof merge` of every shard's report gives the run's verdict{}",
                part.shard,
                if windows > 0 {
                    format!(" ({windows} window(s) of a location's days are settled only there)")
                } else {
                    String::new()
                }
            ));
            report.shard = Some(Box::new(shard));
            report.exit_code = report.decide_exit_code();
            report
        }
    };
    let mut report = report;
    if store.reads_now().is_none() {
        report.requests = Some(crate::report::Requests {
            adaptive: opts_adaptive,
            peak: ctx_peak,
        });
    }
    if let Some(p) = &progress {
        p.finish();
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_locations_are_let_in_by_the_location_days_they_hold() {
        // Short locations: as many as the share of requests allows.
        assert_eq!(locations_at_once(256, 400, 400), 64);
        assert_eq!(locations_at_once(16, 4, 8), 4);
        // Thirty days each: 640 location-days are 21 locations.
        assert_eq!(locations_at_once(256, 40, 40 * 30), 21);
        // A year each: never fewer than two.
        assert_eq!(locations_at_once(256, 100, 100 * 365), 2);
        assert_eq!(locations_at_once(1, 1, 0), 2);
    }
}
