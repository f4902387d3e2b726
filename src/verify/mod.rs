//! The run: discover locations, then verify each location day by day: read and check its
//! digests, hash the logs they list, and match its log folders against what digests list. Chains
//! are linked and leftovers judged when a location is done; every outcome goes into one
//! [`Report`].
//!
//! Memory does not grow with the number of logs: a location holds the logs of about two days
//! (those listed by digests, and the folder listing awaiting the next day's digests), plus a
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
use tokio::sync::Semaphore;

use crate::chain::{link_chain, ChainInput};
use crate::digest::{verify_digest, DigestCheck, DigestStatus};
use crate::finding::{Finding, Kind, Unverified, Window};
use crate::keys::KeyRing;
use crate::layout::{
    date_hours, first_folders, folder_after, folder_hours, format_time, is_account, is_org_id,
    is_region, last_segment, location_of, parse_digest_key, parse_log_key, split_date_folder,
    DigestName, Location, ScopeId, Timestamp, DELIVERY_DELAY,
};
use crate::report::{Filters, Range, Report, ScopeSummary, SCHEMA_VERSION};
use crate::store::{HashFailure, Listing, ObjectInfo, Store, StoreError};

mod discover;
use discover::Discovery;

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
    pub jobs: usize,
    pub strict: bool,
    /// Where progress goes, if anywhere.
    pub progress: Option<Arc<dyn Progress>>,
    /// Where a line per object examined goes (`--report objects=PATH`), if anywhere.
    pub objects: Option<Arc<crate::report::ObjectLog>>,
}

impl Options {
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

    /// A digest whose window overlaps the range, or begins within CloudTrail's delivery delay
    /// after its end (it may list the range's last logs).
    fn in_range(&self, digest_end: Timestamp) -> bool {
        self.start.is_none_or(|s| digest_end >= s)
            && digest_end - Duration::hours(1) <= self.end + DELIVERY_DELAY
    }

    /// A digest read past the end of the range only because it may list the range's last logs:
    /// it vouches for those, and is neither counted nor reported nor chained.
    fn beyond_end(&self, digest_end: Timestamp) -> bool {
        digest_end - Duration::hours(1) > self.end
    }

    /// A log not listed yet may still be listed by a digest CloudTrail has not delivered.
    ///
    /// `signed` is the newest end of a valid digest seen: CloudTrail's own signature proves the
    /// bucket was observed no earlier, whatever a copy's manifest says of its acquisition.
    fn may_be_pending(&self, log_time: Timestamp, signed: Option<Timestamp>) -> bool {
        let horizon = signed.map_or(self.horizon, |s| s.max(self.horizon));
        log_time + UNLISTED_AFTER > horizon
    }

    fn selects(&self, scope: &ScopeId) -> bool {
        self.trails.is_empty() || self.trails.contains(&scope.trail)
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
}

/// One location and its date folders in range, in date order.
struct LocationWork {
    location: Location,
    days: BTreeMap<NaiveDate, DayFolders>,
    /// Hours whose digest folders could not be listed, and why.
    unlisted: Vec<(Timestamp, Timestamp, String)>,
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
    let locations = discovery.discover().await?;
    let work = match opts.start {
        // A short range names its date folders instead of walking years, months and days.
        Some(start) if opts.end - start <= Duration::days(NAMED_DAYS) => {
            named_date_folders(locations, start, opts.end)
        }
        _ => discovery.date_folders(locations).await,
    };
    Ok(Plan {
        started_at,
        work,
        unverified: discovery.unverified,
        after_end: discovery.after_end,
        not_dates: discovery.not_dates,
    })
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
    } = plan;
    let mut findings = Vec::new();
    opts.phase(Phase::Verifying, 0);
    let jobs = opts.jobs.max(1);
    let ctx = Ctx {
        store,
        opts: &opts,
        keys,
        bucket: store.bucket().into(),
        permits: Semaphore::new(jobs),
    };
    let at_once = (jobs / JOBS_PER_LOCATION).max(2);
    let outcomes: Vec<Outcome> = stream::iter(work)
        .map(|w| verify_location(&ctx, w))
        .buffer_unordered(at_once)
        .collect()
        .await;
    let mut summaries = BTreeMap::new();
    let mut outcomes_after = 0;
    for outcome in outcomes {
        outcomes_after += outcome.after_end;
        findings.extend(outcome.findings);
        unverified.extend(outcome.unverified);
        summaries.extend(outcome.summaries);
    }
    let mut notes = Vec::new();
    if summaries
        .values()
        .all(|s: &ScopeSummary| s.digests.seen() == 0)
    {
        notes.push(format!(
            "nothing to verify: no digest file was found in {} for the range and filters given",
            store.source()
        ));
    }
    let after: usize = after_end + outcomes_after;
    if after > 0 {
        notes.push(format!(
            "{after} object(s) or date folder(s) lie after the end of the range ({}) and were not examined",
            format_time(opts.end)
        ));
    }
    if !not_dates.is_empty() {
        notes.push(format!(
            "{} folder(s) under AWSLogs/ fit no folder CloudTrail writes (an account, org id, region or date where one belongs), and were not examined: {}",
            not_dates.len(),
            not_dates.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    let markers = store.folder_markers();
    if markers > 0 {
        notes.push(format!(
            "{markers} folder marker(s) (zero-byte objects whose keys end in /, as the S3 console and sync tools make them) were left out: they are not evidence"
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
    let keys = ctx.keys.clone().await.infos();
    let progress = opts.progress.clone();
    let mut report = Report {
        schema_version: SCHEMA_VERSION,
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
        finished_at: chrono::Utc::now(),
        scopes: summaries.into_values().collect(),
        findings,
        unverified,
        notes,
        ..Report::default()
    };
    report.exit_code = report.decide_exit_code();
    if let Some(p) = &progress {
        p.finish();
    }
    report
}

/// What every location's verification shares: the store, the trusted keys, and the permits
/// that bound requests in flight across the whole run.
struct Ctx<'s, S> {
    store: &'s S,
    opts: &'s Options,
    keys: ArrivingKeys,
    bucket: Arc<str>,
    permits: Semaphore,
}

/// The objects of one date of one location, and the folders that could not be listed.
#[derive(Default)]
struct DayListing {
    digests: Vec<ObjectInfo>,
    logs: Vec<ObjectInfo>,
    failed: Vec<Unverified>,
    /// The digest folder, when it could not be listed.
    digests_unlisted: Option<String>,
    /// Folders inside the day folders (digests first): CloudTrail writes none.
    nested: Vec<(bool, String)>,
}

impl<S: Store> Ctx<'_, S> {
    async fn list(&self, folder: &str) -> Result<Listing, StoreError> {
        let _permit = self.permits.acquire().await;
        if let Some(local) = self.store.as_local() {
            // A folder's entries are read from the disk: on the CPU pool, never on a tokio
            // worker.
            let (local, folder) = (local.clone(), folder.to_string());
            return crate::cpu::run(move || local.list_now(&folder)).await;
        }
        self.store.list(folder).await
    }

    /// Lists one date's digest and log folders, together.
    async fn list_day(&self, day: Option<&DayFolders>) -> DayListing {
        let Some(day) = day else {
            return DayListing::default();
        };
        let list = |folder: Option<String>| async move {
            match folder {
                Some(f) => {
                    let r = self.list(&f).await;
                    (f, r)
                }
                None => (String::new(), Ok(Listing::default())),
            }
        };
        let (digests, logs) = futures::join!(list(day.digests.clone()), list(day.logs.clone()));
        let mut out = DayListing::default();
        for (i, (folder, listed)) in [digests, logs].into_iter().enumerate() {
            match listed {
                Ok(listing) => {
                    out.nested
                        .extend(listing.folders.into_iter().map(|f| (i == 0, f)));
                    if i == 0 {
                        out.digests = listing.objects;
                    } else {
                        out.logs = listing.objects;
                    }
                }
                Err(e) => {
                    if i == 0 {
                        out.digests_unlisted = Some(folder.clone());
                    }
                    out.failed.push(Unverified {
                        key: folder,
                        cause: format!("cannot list: {}", e.cause()),
                    });
                }
            }
        }
        out
    }

    /// Reads and checks digests, in parallel.
    async fn read_digests(&self, wanted: Vec<(String, DigestName)>) -> Vec<DigestCheck> {
        if let Some(local) = self.store.as_local() {
            // A local folder: one parallel pass on the CPU pool, as for logs.
            use rayon::prelude::*;
            let (local, bucket, progress) = (
                local.clone(),
                self.bucket.clone(),
                self.opts.progress.clone(),
            );
            let keys = self.keys.clone().await;
            return crate::cpu::run(move || {
                wanted
                    .into_par_iter()
                    .map(|(key, name)| {
                        let read = local.get_now(&key);
                        if let (Some(p), Ok(object)) = (&progress, &read) {
                            p.advance(1, object.bytes.len() as u64);
                        }
                        check_digest(&bucket, &keys, key, name, read)
                    })
                    .collect()
            })
            .await;
        }
        bounded(self.opts.jobs, wanted, |(key, name)| async move {
            let read = {
                let _permit = self.permits.acquire().await;
                self.store.get(&key).await
            };
            self.read(&read);
            let (keys, bucket) = (self.keys.clone().await, self.bucket.clone());
            crate::cpu::run(move || check_digest(&bucket, &keys, key, name, read)).await
        })
        .await
    }

    /// Counts a digest read for progress.
    fn read(&self, read: &Result<crate::store::Object, StoreError>) {
        if let Ok(object) = read {
            self.opts.advance(1, object.bytes.len() as u64);
        }
    }

    async fn hash_gzip(&self, key: &str) -> Result<crate::hash::Inflated, HashFailure> {
        let _permit = self.permits.acquire().await;
        let outcome = self.store.hash_gzip(key).await;
        self.advanced(&outcome);
        outcome
    }

    fn advanced(&self, outcome: &Result<crate::hash::Inflated, HashFailure>) {
        self.opts.advance(1, outcome.as_ref().map_or(0, |i| i.size));
    }
}

/// Checks a digest as read (or tells why it could not be).
fn check_digest(
    bucket: &str,
    keys: &KeyRing,
    key: String,
    name: DigestName,
    read: Result<crate::store::Object, StoreError>,
) -> DigestCheck {
    match read {
        Ok(object) => verify_digest(&key, &name, bucket, &object, keys),
        Err(StoreError::NotFound { .. }) => DigestCheck::unread(key, name, DigestStatus::Missing),
        // CloudTrail writes no digest that large: it is not one of CloudTrail's.
        Err(e @ StoreError::TooLarge { .. }) => DigestCheck::unread(
            key,
            name,
            DigestStatus::Failed {
                kind: Kind::DigestMalformed,
                message: format!("the digest object is {}", e.cause()),
            },
        ),
        Err(e) => DigestCheck::unread(key, name, DigestStatus::Unverified(e.cause())),
    }
}

/// What one location's verification found.
#[derive(Default)]
struct Outcome {
    findings: Vec<Finding>,
    unverified: Vec<Unverified>,
    summaries: BTreeMap<ScopeId, ScopeSummary>,
    /// Objects in the date folders read that lie after the end of the range.
    after_end: usize,
}

/// A log object that no valid digest has listed so far: judged when the location is done,
/// unless a later digest lists it.
struct Stray {
    time: Option<Timestamp>,
    /// A digest that lists it but failed verification.
    listed_by_failed: Option<String>,
}

/// One location's state while its dates are checked in order.
struct LocationRun<'c, 's, S> {
    ctx: &'c Ctx<'s, S>,
    location: Location,
    out: Outcome,
    /// Every digest checked, compacted: its list of logs dropped once used.
    checks: Vec<DigestCheck>,
    known: HashSet<String>,
    /// Logs listed by valid digests whose date folder has not been matched yet.
    listed: HashSet<String>,
    /// Logs listed only by digests that failed, likewise, with the first such digest.
    listed_by_failed: HashMap<String, String>,
    strays: BTreeMap<String, Stray>,
    /// Log objects in archival storage classes, with the cause.
    archived: HashMap<String, String>,
    /// The latest date's log objects, matched once the next date's digests are in.
    held: Vec<ObjectInfo>,
    /// Hours whose digest folder could not be listed, and why their logs cannot be judged.
    unlisted_days: Vec<(Timestamp, Timestamp, String)>,
    /// The listed ETags of objects not yet recorded, for `--report objects=PATH` only.
    etags: std::sync::Mutex<HashMap<String, String>>,
}

/// Verifies one location, date by date. A date's digests are read and checked while the
/// previous date's logs still hash and the next date is listed, so that requests keep flowing
/// across midnight.
async fn verify_location<S: Store>(ctx: &Ctx<'_, S>, work: LocationWork) -> Outcome {
    let mut run = LocationRun {
        ctx,
        location: work.location,
        out: Outcome::default(),
        checks: Vec::new(),
        known: HashSet::new(),
        listed: HashSet::new(),
        listed_by_failed: HashMap::new(),
        strays: BTreeMap::new(),
        archived: HashMap::new(),
        held: Vec::new(),
        unlisted_days: work.unlisted,
        etags: Default::default(),
    };
    let days: Vec<(NaiveDate, DayFolders)> = work.days.into_iter().collect();
    let mut listing = ctx.list_day(days.first().map(|(_, d)| d)).await;
    let mut hashing = stream::FuturesUnordered::new();
    let mut hashed = Vec::new();
    for (i, (date, _)) in days.iter().enumerate() {
        let current = std::mem::take(&mut listing);
        let next = ctx.list_day(days.get(i + 1).map(|(_, d)| d));
        let (logs, listed) = driving(&mut hashing, &mut hashed, async {
            futures::join!(run.day(*date, current), next)
        })
        .await;
        for results in hashed.drain(..) {
            run.compare(results);
        }
        listing = listed;
        hashing.push(hash_logs(ctx, logs));
    }
    while let Some(results) = hashing.next().await {
        run.compare(results);
    }
    run.finish()
}

/// Awaits `f` while also driving `pending`, keeping what they finish in `done`.
async fn driving<F: std::future::Future, P: std::future::Future>(
    pending: &mut stream::FuturesUnordered<P>,
    done: &mut Vec<P::Output>,
    f: F,
) -> F::Output {
    let mut f = std::pin::pin!(f);
    future::poll_fn(|cx| {
        while let std::task::Poll::Ready(Some(out)) = pending.poll_next_unpin(cx) {
            done.push(out);
        }
        f.as_mut().poll(cx)
    })
    .await
}

/// A log that valid digests of selected scopes list, with what each of them recorded.
struct LogToHash {
    key: String,
    listings: Vec<Listed>,
}

/// One selected valid digest's record of a log.
struct Listed {
    scope: ScopeId,
    digest: String,
    hash: String,
}

/// Reads, inflates and hashes logs, in parallel.
async fn hash_logs<S: Store>(
    ctx: &Ctx<'_, S>,
    logs: Vec<LogToHash>,
) -> Vec<(LogToHash, Result<crate::hash::Inflated, HashFailure>)> {
    if let Some(local) = ctx.store.as_local() {
        // A local folder: one parallel pass on the CPU pool, one hand-off per day rather than
        // per log. The pass owns what it reads; the location awaits it like any request.
        use rayon::prelude::*;
        let (local, progress) = (local.clone(), ctx.opts.progress.clone());
        return crate::cpu::run(move || {
            logs.into_par_iter()
                .map(|log| {
                    let outcome = local.hash_gzip_now(&log.key);
                    if let Some(p) = &progress {
                        p.advance(1, outcome.as_ref().map_or(0, |i| i.size));
                    }
                    (log, outcome)
                })
                .collect()
        })
        .await;
    }
    stream::iter(logs)
        .map(|log| async move {
            let outcome = ctx.hash_gzip(&log.key).await;
            (log, outcome)
        })
        .buffer_unordered(ctx.opts.jobs.max(1))
        .collect()
        .await
}

impl<S: Store> LocationRun<'_, '_, S> {
    /// Records what became of one object, for `--report objects=PATH`.
    fn object(
        &self,
        key: &str,
        object: &'static str,
        outcome: &str,
        cause: Option<&str>,
        sha256: Option<&str>,
        digest: Option<&str>,
    ) {
        if let Some(log) = &self.ctx.opts.objects {
            // Taken once recorded, so that what is held stays what is still to be decided.
            let etag = self
                .etags
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(key);
            log.record(&crate::report::ObjectRecord {
                key,
                object,
                outcome,
                cause,
                sha256,
                digest,
                etag: etag.as_deref(),
                version_id: None,
            });
        }
    }

    fn unverified(&mut self, key: &str, cause: impl Into<String>) {
        self.out.unverified.push(Unverified {
            key: key.to_string(),
            cause: cause.into(),
        });
    }

    fn summary(&mut self, scope: &ScopeId) -> &mut ScopeSummary {
        let bucket = self.ctx.store.bucket();
        self.out
            .summaries
            .entry(scope.clone())
            .or_insert_with(|| ScopeSummary::new(bucket, scope))
    }

    /// Checks one date's digests and the previous date's log objects, and returns the logs that
    /// the date's valid digests list, to be hashed.
    async fn day(&mut self, date: NaiveDate, listing: DayListing) -> Vec<LogToHash> {
        self.out.unverified.extend(listing.failed);
        self.nested_folders(listing.nested).await;
        if let Some(folder) = listing.digests_unlisted {
            let (from, to) = date_hours(date, date);
            self.unlisted_days.push((
                from,
                to,
                format!("the digests that may list it could not be listed ({folder})"),
            ));
        }
        for object in &listing.logs {
            if let Some(cause) = object.archived() {
                self.archived.insert(object.key.clone(), cause);
            }
        }
        if self.ctx.opts.objects.is_some() {
            let mut etags = self.etags.lock().unwrap_or_else(|e| e.into_inner());
            for object in listing.logs.iter().chain(&listing.digests) {
                if let Some(etag) = &object.etag {
                    etags.insert(object.key.clone(), etag.clone());
                }
            }
        }
        let mut checks = self.check_digests(listing.digests).await;
        self.look_up_predecessors(&mut checks).await;
        let logs = self.take_listed_logs(&checks);
        for mut check in checks {
            if let Some(body) = &mut check.body {
                body.logs = Vec::new();
            }
            self.checks.push(check);
        }
        let previous = std::mem::replace(&mut self.held, listing.logs);
        self.match_logs(previous);
        // Every log folder before `date` has been matched: forget what was listed there.
        let before = |key: &str| parse_log_key(key).is_some_and(|n| n.time.date_naive() < date);
        self.listed.retain(|k| !before(k));
        self.listed_by_failed.retain(|k, _| !before(k));
        logs
    }

    /// Reads and checks each listed digest in range that was not read already.
    async fn check_digests(&mut self, objects: Vec<ObjectInfo>) -> Vec<DigestCheck> {
        let mut wanted = Vec::new();
        let mut checks = Vec::new();
        for object in objects {
            if self.known.contains(&object.key) {
                continue;
            }
            match parse_digest_key(&object.key) {
                Some(name) if self.ctx.opts.in_range(name.end) => {
                    self.known.insert(object.key.clone());
                    match object.archived() {
                        Some(cause) => checks.push(DigestCheck::unread(
                            object.key,
                            name,
                            DigestStatus::Unverified(cause),
                        )),
                        None => wanted.push((object.key, name)),
                    }
                }
                Some(name) if name.end > self.ctx.opts.end => self.out.after_end += 1,
                Some(_) => {}
                None => self.foreign_digest_object(&object.key),
            }
        }
        checks.extend(self.ctx.read_digests(wanted).await);
        checks
    }

    /// Lists what lies in folders below a day folder, where CloudTrail writes no folder: every
    /// object there (a log moved one level down, say) is a finding, never silence. Folder
    /// markers are left out by the store; folders nested deeper than a few levels are reported
    /// as folders.
    async fn nested_folders(&mut self, nested: Vec<(bool, String)>) {
        const DEPTH: usize = 3;
        let mut level = nested;
        for depth in 0..=DEPTH {
            let mut next = Vec::new();
            for (digests, folder) in level {
                if depth == DEPTH {
                    self.nested_object(digests, &folder, "a folder nested below a day folder");
                    continue;
                }
                match self.ctx.list(&folder).await {
                    Ok(listing) => {
                        for object in listing.objects {
                            self.nested_object(
                                digests,
                                &object.key,
                                "an object in a folder below a day folder, where CloudTrail writes none",
                            );
                        }
                        next.extend(listing.folders.into_iter().map(|f| (digests, f)));
                    }
                    Err(e) => self.unverified(&folder, format!("cannot list: {}", e.cause())),
                }
            }
            level = next;
        }
    }

    fn nested_object(&mut self, digests: bool, key: &str, what: &str) {
        let kind = if digests {
            Kind::DigestMalformed
        } else {
            Kind::LogUnlisted
        };
        let location = self.location.clone();
        let object = if digests { "digest" } else { "log" };
        self.object(key, object, kind.as_str(), None, None, None);
        self.out.findings.push(Finding::new(
            kind,
            self.ctx.opts.strict,
            &location,
            None,
            Some(key),
            format!("{what}: CloudTrail did not put it there"),
        ));
        if !digests {
            for summary in self.out.summaries.values_mut() {
                summary.logs.unlisted += 1;
            }
        }
    }

    /// An object in a digest folder that is not named like a digest: CloudTrail did not write it.
    fn foreign_digest_object(&mut self, key: &str) {
        let Some(location) = location_of(key) else {
            self.unverified(
                key,
                "an object in a digest folder whose path is not a CloudTrail path",
            );
            return;
        };
        self.out.findings.push(Finding::new(
            Kind::DigestMalformed,
            self.ctx.opts.strict,
            &location,
            None,
            Some(key),
            "an object in a digest folder that is not named like a CloudTrail digest",
        ));
    }

    /// Reads predecessors that digests name but that were not listed or read yet (they may sit
    /// in a date folder outside the range, or be gone): only a read can tell "gone" from
    /// "elsewhere".
    async fn look_up_predecessors(&mut self, checks: &mut Vec<DigestCheck>) {
        let mut from = 0;
        loop {
            let mut wanted = Vec::new();
            for check in &checks[from..] {
                let Some(prev) = check.body.as_ref().and_then(|b| b.previous.as_ref()) else {
                    continue;
                };
                if prev.bucket != self.ctx.store.bucket() || self.known.contains(&prev.key) {
                    continue;
                }
                if let Some(name) = parse_digest_key(&prev.key) {
                    if self.ctx.opts.start.is_none_or(|s| name.end > s) {
                        self.known.insert(prev.key.clone());
                        wanted.push((prev.key.clone(), name));
                    }
                }
            }
            if wanted.is_empty() {
                return;
            }
            from = checks.len();
            checks.extend(self.ctx.read_digests(wanted).await);
        }
    }

    /// Records the logs these digests list, and returns those that valid digests of selected
    /// scopes list, to be hashed.
    fn take_listed_logs(&mut self, checks: &[DigestCheck]) -> Vec<LogToHash> {
        let mut trusted: BTreeMap<&str, Vec<PoolEntry>> = BTreeMap::new();
        for check in checks {
            // A predecessor read from another location only serves its link.
            if check.name.scope.location != self.location {
                continue;
            }
            let Some(body) = &check.body else { continue };
            let selected = self.ctx.opts.selects(&check.name.scope);
            let beyond_end = self.ctx.opts.beyond_end(check.name.end);
            for log in &body.logs {
                let log_time = parse_log_key(&log.key).map(|n| n.time);
                // Past the end, only a valid digest counts: a failed one is not reported, so it
                // must not turn a log it names into "could not be checked" either.
                if beyond_end
                    && (!check.is_valid() || log_time.is_none_or(|t| t > self.ctx.opts.end))
                {
                    continue;
                }
                if check.is_valid() {
                    self.strays.remove(&log.key);
                    self.listed.insert(log.key.clone());
                    trusted
                        .entry(log.key.as_str())
                        .or_default()
                        .push(PoolEntry {
                            scope: &check.name.scope,
                            digest: &check.key,
                            bucket: &log.bucket,
                            hash: &log.hash,
                            selected,
                        });
                } else {
                    if let Some(stray) = self.strays.get_mut(&log.key) {
                        stray
                            .listed_by_failed
                            .get_or_insert_with(|| check.key.clone());
                    }
                    self.listed_by_failed
                        .entry(log.key.clone())
                        .or_insert_with(|| check.key.clone());
                }
            }
        }
        self.logs_to_hash(trusted)
    }

    /// The logs of `trusted` to hash: those that a selected scope's digest lists, unless they
    /// are archived or listed in another bucket (unverified, with the cause).
    fn logs_to_hash(&mut self, trusted: BTreeMap<&str, Vec<PoolEntry<'_>>>) -> Vec<LogToHash> {
        let bucket = self.ctx.store.bucket();
        let mut work = Vec::new();
        for (key, listings) in trusted {
            if !listings.iter().any(|l| l.selected) {
                continue;
            }
            if let Some(cause) = self.archived.get(key).cloned() {
                for l in listings.iter().filter(|l| l.selected) {
                    self.summary(l.scope).logs.unverified += 1;
                }
                self.object(key, "log", "unverified", Some(&cause), None, None);
                self.unverified(key, cause);
                continue;
            }
            if let Some(l) = listings.iter().find(|l| l.bucket != bucket) {
                let cause = format!(
                    "listed by {} in another bucket ({}); not checked",
                    l.digest, l.bucket
                );
                self.object(key, "log", "unverified", Some(&cause), None, Some(l.digest));
                self.unverified(key, cause);
                continue;
            }
            work.push(LogToHash {
                key: key.to_string(),
                listings: listings
                    .iter()
                    .filter(|l| l.selected)
                    .map(|l| Listed {
                        scope: l.scope.clone(),
                        digest: l.digest.to_string(),
                        hash: l.hash.to_string(),
                    })
                    .collect(),
            });
        }
        work
    }

    /// Compares hashed logs with what their digests recorded.
    fn compare(&mut self, results: Vec<(LogToHash, Result<crate::hash::Inflated, HashFailure>)>) {
        let strict = self.ctx.opts.strict;
        for (log, outcome) in results {
            let key = log.key.as_str();
            let time = parse_log_key(key).map(|n| n.time);
            for listing in &log.listings {
                let scope = &listing.scope;
                let finding = |kind, message: String| {
                    Finding::new(
                        kind,
                        strict,
                        &scope.location,
                        Some(&scope.trail),
                        Some(key),
                        message,
                    )
                    .digest(&listing.digest)
                };
                let actual = outcome.as_ref().ok().map(|i| hex::encode(i.sha256));
                let kind_of = |f: &Option<Finding>| f.as_ref().map_or("valid", |f| f.kind.as_str());
                let counts = &mut self.summary(scope).logs;
                let found = match &outcome {
                    Ok(inflated) => {
                        let actual = hex::encode(inflated.sha256);
                        if actual == listing.hash {
                            counts.valid += 1;
                            None
                        } else {
                            counts.modified += 1;
                            Some(
                                finding(
                                    Kind::LogModified,
                                    format!(
                                        "the log's content differs from what {} recorded: its SHA-256 does not match",
                                        listing.digest
                                    ),
                                )
                                .hashes(&listing.hash, actual),
                            )
                        }
                    }
                    Err(HashFailure::Damaged(damage)) => {
                        counts.corrupt += 1;
                        Some(
                            finding(
                                Kind::LogCorrupt,
                                format!("the log is not one intact gzip member: {damage}"),
                            )
                            .hashes(&listing.hash, "(not computable)"),
                        )
                    }
                    Err(HashFailure::Store(StoreError::NotFound { .. })) => {
                        counts.missing += 1;
                        Some(finding(
                            Kind::LogMissing,
                            format!(
                                "the log is missing: {} lists it, but the object does not exist",
                                listing.digest
                            ),
                        ))
                    }
                    Err(HashFailure::Store(e)) => {
                        counts.unverified += 1;
                        let cause = e.cause();
                        self.object(
                            key,
                            "log",
                            "unverified",
                            Some(&cause),
                            None,
                            Some(&listing.digest),
                        );
                        self.unverified(key, cause);
                        continue;
                    }
                };
                self.object(
                    key,
                    "log",
                    kind_of(&found),
                    None,
                    actual.as_deref(),
                    Some(&listing.digest),
                );
                if let Some(mut f) = found {
                    if let Some(t) = time {
                        f = f.at(t);
                    }
                    self.out.findings.push(f);
                }
            }
        }
    }

    /// Matches one date's log objects against the logs valid digests list; the rest wait as
    /// strays until the location is done.
    fn match_logs(&mut self, objects: Vec<ObjectInfo>) {
        let opts = self.ctx.opts;
        for object in objects {
            if self.listed.contains(&object.key) {
                continue;
            }
            let time = parse_log_key(&object.key).map(|n| n.time);
            if let Some(t) = time {
                if t > opts.end {
                    self.out.after_end += 1;
                    continue;
                }
                if opts.start.is_some_and(|s| t < s) {
                    continue;
                }
            }
            let listed_by_failed = self.listed_by_failed.get(&object.key).cloned();
            self.strays.insert(
                object.key,
                Stray {
                    time,
                    listed_by_failed,
                },
            );
        }
    }

    /// Links the chains, judges the strays, and hands over what the location showed.
    fn finish(mut self) -> Outcome {
        let held = std::mem::take(&mut self.held);
        self.match_logs(held);
        let opts = self.ctx.opts;
        let all = std::mem::take(&mut self.checks);
        let checks: Vec<DigestCheck> = all
            .iter()
            .filter(|c| !opts.beyond_end(c.name.end))
            .cloned()
            .collect();
        for check in &checks {
            let scope = &check.name.scope;
            if scope.location == self.location && self.ctx.opts.selects(scope) {
                self.summary(scope);
            }
        }
        self.report_digests(&checks);
        self.link_chains(&checks);
        self.missing_before_the_end(&all, &checks);
        // A digest past the end that could not be read may list the range's last logs.
        self.judge_strays(&all);
        self.out
    }

    /// Turns each of this location's selected digests' own status into findings, unverified
    /// entries and counts. (A predecessor read from another location only serves its link.)
    fn report_digests(&mut self, checks: &[DigestCheck]) {
        let strict = self.ctx.opts.strict;
        for check in checks {
            let scope = &check.name.scope;
            if scope.location != self.location || !self.ctx.opts.selects(scope) {
                continue;
            }
            let (outcome, cause) = match &check.status {
                DigestStatus::Valid => ("valid", None),
                DigestStatus::Failed { kind, .. } => (kind.as_str(), None),
                DigestStatus::Unverified(cause) => ("unverified", Some(cause.as_str())),
                DigestStatus::Missing => (Kind::DigestMissing.as_str(), None),
            };
            self.object(
                &check.key,
                "digest",
                outcome,
                cause,
                check.sha256.as_deref(),
                None,
            );
            let summary = self.summary(scope);
            match &check.status {
                DigestStatus::Valid => summary.digests.valid += 1,
                DigestStatus::Failed { kind, message } => {
                    summary.digests.invalid += 1;
                    let (s, e) = check.window();
                    self.out.findings.push(
                        Finding::new(
                            *kind,
                            strict,
                            &scope.location,
                            Some(&scope.trail),
                            Some(&check.key),
                            message.clone(),
                        )
                        .window(Window(s, e)),
                    );
                }
                DigestStatus::Unverified(cause) => {
                    summary.digests.unverified += 1;
                    self.unverified(&check.key, cause.clone());
                }
                // Counted from the chain's findings: a deleted digest is known by the link to it.
                DigestStatus::Missing => {}
            }
        }
    }

    /// A digest read past the end names its predecessor, inside the range, and that one is gone:
    /// the chains, which stop at the end, cannot see that link, so it is reported here.
    fn missing_before_the_end(&mut self, all: &[DigestCheck], checks: &[DigestCheck]) {
        let opts = self.ctx.opts;
        let reported: HashSet<String> = self
            .out
            .findings
            .iter()
            .filter(|f| f.kind == Kind::DigestMissing)
            .filter_map(|f| f.key.clone())
            .collect();
        for later in all
            .iter()
            .filter(|c| opts.beyond_end(c.name.end) && c.is_valid())
        {
            let Some(prev) = later.body.as_ref().and_then(|b| b.previous.as_ref()) else {
                continue;
            };
            let Some(gone) = checks
                .iter()
                .find(|c| c.key == prev.key && matches!(c.status, DigestStatus::Missing))
            else {
                continue;
            };
            let scope = &gone.name.scope;
            if reported.contains(&gone.key)
                || scope.location != self.location
                || !opts.selects(scope)
            {
                continue;
            }
            let (s, e) = gone.window();
            let finding = Finding::new(
                Kind::DigestMissing,
                opts.strict,
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
            self.out.findings.push(finding);
            self.summary(scope).digests.missing += 1;
        }
    }

    /// Links each selected scope's regular and backfill chains.
    fn link_chains(&mut self, checks: &[DigestCheck]) {
        let opts = self.ctx.opts;
        let mut by_scope: BTreeMap<&ScopeId, Vec<&DigestCheck>> = BTreeMap::new();
        for check in checks {
            by_scope.entry(&check.name.scope).or_default().push(check);
        }
        // A looked-up predecessor belongs to the chain of the digest that named it.
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
        for (scope, digests) in by_scope {
            if scope.location != self.location || !opts.selects(scope) {
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
                    bucket: self.ctx.store.bucket(),
                    digests: &chain,
                    backfill,
                    end: opts.end,
                    strict: opts.strict,
                });
                for f in outcome
                    .findings
                    .iter()
                    .filter(|f| f.kind == Kind::DigestMissing)
                {
                    if let Some(key) = &f.key {
                        self.object(key, "digest", "digest_missing", None, None, None);
                    }
                }
                let summary = self.summary(scope);
                summary.digests.missing += outcome
                    .findings
                    .iter()
                    .filter(|f| f.kind == Kind::DigestMissing)
                    .count();
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
    fn judge_strays(&mut self, checks: &[DigestCheck]) {
        let opts = self.ctx.opts;
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
        unread.append(&mut self.unlisted_days);
        let mut strays: Vec<Finding> = Vec::new();
        for (key, stray) in std::mem::take(&mut self.strays) {
            if let Some(digest) = &stray.listed_by_failed {
                let cause = format!("listed only by {digest}, which failed verification");
                self.object(&key, "log", "unverified", Some(&cause), None, Some(digest));
                self.unverified(&key, cause);
                continue;
            }
            // A digest that could not be read may be the one that lists this log: that is
            // "could not check", never "unlisted".
            let unread_digest = stray
                .time
                .and_then(|t| unread.iter().find(|(s, e, _)| t >= *s && t <= *e));
            if let Some((_, _, why)) = unread_digest {
                self.object(&key, "log", "unverified", Some(why), None, None);
                self.unverified(&key, why.clone());
                continue;
            }
            let kind = match stray.time {
                Some(t) if opts.may_be_pending(t, signed) => Kind::LogPending,
                _ => Kind::LogUnlisted,
            };
            self.object(&key, "log", kind.as_str(), None, None, None);
            for summary in self.out.summaries.values_mut() {
                match kind {
                    Kind::LogUnlisted => summary.logs.unlisted += 1,
                    _ => summary.logs.pending += 1,
                }
            }
            let message = match (kind, stray.time, reach) {
                (Kind::LogUnlisted, None, _) => {
                    "an object in a log folder that is not named like a CloudTrail log, and no digest lists it"
                }
                (Kind::LogUnlisted, Some(_), None) => {
                    "no digest lists this log: no digest exists for this log folder (the digests were deleted, or validation was never on)"
                }
                (Kind::LogUnlisted, Some(t), Some(r)) if t >= r - DELIVERY_DELAY => {
                    "no digest lists this log, which lies after the last digest: the newest digests were deleted, or validation was turned off"
                }
                (Kind::LogUnlisted, Some(_), Some(_)) => {
                    "no digest lists this log, although digests cover the hours after it: it was not delivered by CloudTrail, or the digest that listed it is gone"
                }
                _ => "no digest lists this log yet: it is within 2 h of when the bucket was observed, and CloudTrail may not have delivered the digest that lists it",
            };
            let mut f = Finding::new(kind, opts.strict, &self.location, None, Some(&key), message);
            if let Some(t) = stray.time {
                f = f.at(t);
            }
            strays.push(f);
        }
        // A tail gap that hides log files is loss, not a stopped trail: its digests are gone or
        // validation was turned off while logging went on.
        for gap in self
            .out
            .findings
            .iter_mut()
            .filter(|f| f.kind == Kind::ChainTailGap)
        {
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
            gap.severity = crate::finding::Severity::Error;
            gap.message.push_str(&format!(
                "; {} log file(s) lie in the gap, listed by no digest: digests were deleted or validation was turned off while logging went on",
                hidden.len()
            ));
            gap.logs.extend(hidden);
        }
        // Logs inside the window of a missing digest are reported under it too.
        // (A digest too damaged to read its list of logs is the same incident as a deleted one.)
        for missing in self
            .out
            .findings
            .iter_mut()
            .filter(|f| matches!(f.kind, Kind::DigestMissing | Kind::DigestMalformed))
        {
            let Some(Window(s, e)) = missing.window else {
                continue;
            };
            // One deleted digest is one incident: the logs of its hours are its evidence, not
            // findings of their own (they count as unlisted in their scope).
            strays.retain(|stray| {
                let inside = stray.kind == Kind::LogUnlisted
                    && stray.time.is_some_and(|t| t >= s - DELIVERY_DELAY && t < e);
                if inside {
                    missing.logs.extend(stray.key.clone());
                }
                !inside
            });
        }
        self.out.findings.extend(strays);
    }
}

/// One digest's record of a log, borrowed from the digest checks.
struct PoolEntry<'c> {
    scope: &'c ScopeId,
    digest: &'c str,
    bucket: &'c str,
    hash: &'c str,
    /// The digest's scope is one the user selected (its logs are checked and counted).
    selected: bool,
}

/// Each location's date folders from `start` to `end`, by name: a folder that does not exist
/// lists empty. A digest's date folder is its end date, so digests go one hour further.
fn named_date_folders(
    locations: Vec<Location>,
    start: Timestamp,
    end: Timestamp,
) -> Vec<LocationWork> {
    let logs_to = end.date_naive();
    let digests_to = (end + Duration::hours(1) + DELIVERY_DELAY).date_naive();
    let dates: Vec<NaiveDate> = start
        .date_naive()
        .iter_days()
        .take_while(|d| *d <= digests_to)
        .collect();
    locations
        .into_iter()
        .map(|location| {
            let days = dates
                .iter()
                .map(|d| {
                    let folder = format!("{:04}/{:02}/{:02}/", d.year(), d.month(), d.day());
                    let day = DayFolders {
                        digests: Some(format!("{}{folder}", location.digest_folder())),
                        logs: (*d <= logs_to).then(|| format!("{}{folder}", location.log_folder())),
                    };
                    (*d, day)
                })
                .collect();
            LocationWork {
                location,
                days,
                unlisted: Vec::new(),
            }
        })
        .collect()
}
