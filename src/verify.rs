//! The run: discover scopes, read and check digests, link chains, hash logs, look for unlisted
//! logs, and collect every outcome into one [`Report`].
//!
//! Requests are bounded by one setting (`jobs`): every phase maps its work through a stream
//! buffered to that many futures. CPU work (inflate, SHA-256, RSA) is handed to rayon one task
//! per in-flight future and awaited through a oneshot channel, so tokio workers never block on it
//! and the hand-off is bounded by the same setting. Outcomes are collected, sorted and returned;
//! nothing here prints.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use chrono::{Datelike, Duration, NaiveDate};
use futures::stream::{self, StreamExt};

use crate::chain::{link_chain, ChainInput};
use crate::digest::{verify_digest, DigestCheck, DigestStatus};
use crate::finding::{Finding, Kind, Unverified, Window};
use crate::keys::KeyRing;
use crate::layout::{
    format_time, is_account, is_org_id, is_region, parse_digest_key, parse_log_key, Location,
    ScopeId, Timestamp,
};
use crate::report::{Filters, Range, Report, ScopeSummary, SCHEMA_VERSION};
use crate::store::{HashFailure, ObjectInfo, Store, StoreError};

/// A log listed by no digest is `log_unlisted` once valid digests cover this long past its name's
/// time; before that it may simply not be listed yet (`log_pending`).
pub const UNLISTED_AFTER: Duration = Duration::hours(2);

/// How long after a log's name time CloudTrail may deliver it (and so list it in a digest).
const DELIVERY_DELAY: Duration = Duration::minutes(15);

/// How deep below the source to look for `AWSLogs/` folders (custom key prefixes).
const MAX_PREFIX_DEPTH: usize = 8;

/// The phases a run goes through, for progress reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Discovering,
    Digests,
    Logs,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Discovering => "discovering",
            Phase::Digests => "digests",
            Phase::Logs => "logs",
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
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
    pub trails: Vec<String>,
    pub jobs: usize,
    pub strict: bool,
    /// Where progress goes, if anywhere.
    pub progress: Option<Arc<dyn Progress>>,
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

/// Everything the run has learnt so far; turned into the report at the end.
struct Run<'s, S> {
    store: &'s S,
    opts: Options,
    findings: Vec<Finding>,
    unverified: Vec<Unverified>,
    notes: Vec<String>,
}

/// What discovery found: the locations and the listed digest and log objects in range, plus
/// what could not be listed. Made by [`plan`], consumed by [`execute`].
pub struct Plan {
    started_at: Timestamp,
    locations: Vec<Location>,
    digest_objects: Vec<ObjectInfo>,
    log_objects: BTreeMap<Location, Vec<ObjectInfo>>,
    findings: Vec<Finding>,
    unverified: Vec<Unverified>,
}

impl Plan {
    /// For each source region with digests in range, the span whose signing keys are needed:
    /// the range (or, for all history, from the oldest digest) widened by two hours.
    pub fn key_ranges(&self, opts: &Options) -> Vec<(String, Timestamp, Timestamp)> {
        let mut oldest: BTreeMap<&str, Timestamp> = BTreeMap::new();
        for name in self
            .digest_objects
            .iter()
            .filter_map(|o| parse_digest_key(&o.key))
        {
            let region = self
                .locations
                .iter()
                .find(|l| *l == &name.scope.location)
                .map_or("", |l| l.region.as_str());
            let at = oldest.entry(region).or_insert(name.end);
            *at = (*at).min(name.end);
        }
        oldest
            .into_iter()
            .filter(|(r, _)| !r.is_empty())
            .map(|(region, first)| {
                let start = opts.start.unwrap_or(first - Duration::hours(1));
                (
                    region.to_string(),
                    start - Duration::hours(2),
                    opts.end + Duration::hours(2),
                )
            })
            .collect()
    }

    /// Every object the listing found (digests and logs).
    pub fn listed(&self) -> impl Iterator<Item = &ObjectInfo> {
        self.digest_objects
            .iter()
            .chain(self.log_objects.values().flatten())
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

/// Discovers every location under the source and lists its digests and logs in range.
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
    let mut run = Run {
        store,
        opts: opts.clone(),
        findings: Vec::new(),
        unverified: Vec::new(),
        notes: Vec::new(),
    };
    opts.phase(Phase::Discovering, 0);
    let locations = run.discover().await?;
    let (digest_objects, log_objects) = run.list_locations(&locations).await;
    Ok(Plan {
        started_at,
        locations,
        digest_objects,
        log_objects,
        findings: run.findings,
        unverified: run.unverified,
    })
}

/// Reads and checks what `plan` found, with `keys` trusted, and makes the report.
pub async fn execute<S: Store>(store: &S, plan: Plan, keys: Arc<KeyRing>, opts: Options) -> Report {
    let Plan {
        started_at,
        locations: _,
        digest_objects,
        log_objects,
        findings,
        unverified,
    } = plan;
    let mut run = Run {
        store,
        opts,
        findings,
        unverified,
        notes: Vec::new(),
    };
    let mut checks = run.check_digests(digest_objects, &keys).await;
    run.look_up_predecessors(&mut checks, &keys).await;

    let scopes: BTreeSet<ScopeId> = checks.iter().map(|c| c.name.scope.clone()).collect();
    let selected: BTreeSet<ScopeId> = scopes
        .into_iter()
        .filter(|s| run.opts.trails.is_empty() || run.opts.trails.contains(&s.trail))
        .collect();
    let mut summaries: BTreeMap<ScopeId, ScopeSummary> = selected
        .iter()
        .map(|s| (s.clone(), ScopeSummary::new(store.bucket(), s)))
        .collect();

    run.report_digests(&checks, &mut summaries);
    run.link_chains(&checks, &mut summaries);
    let pool = LogPool::new(&checks, &selected);
    run.hash_logs(&pool, &log_objects, &mut summaries).await;
    run.find_unlisted(&pool, &checks, &log_objects, &selected, &mut summaries);

    if summaries.values().all(|s| s.digests.seen() == 0) {
        run.notes.push(format!(
            "nothing to verify: no digest file was found in {} for the range and filters given",
            store.source()
        ));
    }
    let Run {
        opts,
        mut findings,
        mut unverified,
        notes,
        ..
    } = run;
    let opts_progress = opts.progress.clone();
    findings.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    unverified.sort();
    unverified.dedup();
    let mut report = Report {
        schema_version: SCHEMA_VERSION,
        source: store.source(),
        bucket: store.bucket().to_string(),
        range: Range {
            start: opts.start,
            end: opts.end,
        },
        filters: Filters {
            accounts: opts.accounts,
            regions: opts.regions,
            trails: opts.trails,
        },
        strict: opts.strict,
        keys: keys.infos(),
        started_at,
        finished_at: chrono::Utc::now(),
        scopes: summaries.into_values().collect(),
        findings,
        unverified,
        notes,
        ..Report::default()
    };
    report.exit_code = report.decide_exit_code();
    if let Some(p) = &opts_progress {
        p.finish();
    }
    report
}

impl<S: Store> Run<'_, S> {
    fn unverified(&mut self, key: &str, cause: impl Into<String>) {
        self.unverified.push(Unverified {
            key: key.to_string(),
            cause: cause.into(),
        });
    }

    /// Finds every location (prefix, org id, account, region) under the source, by delimiter
    /// listing: folders down to `AWSLogs/`, then accounts or org ids, then regions.
    async fn discover(&mut self) -> Result<Vec<Location>, VerifyError> {
        let store = self.store;
        let jobs = self.opts.jobs;
        let root = store.list("").await.map_err(|e| VerifyError::Unlistable {
            source_name: store.source(),
            cause: e.cause(),
        })?;
        let mut log_roots = Vec::new();
        let mut level = vec![(store.root().to_string(), root)];
        if last_segment(store.root()) == "AWSLogs" {
            log_roots.push(store.root().to_string());
            level.clear();
        }
        for depth in 0..MAX_PREFIX_DEPTH {
            let mut next = Vec::new();
            for (_, listing) in level {
                for folder in listing.folders {
                    if last_segment(&folder) == "AWSLogs" {
                        log_roots.push(folder);
                    } else if depth + 1 < MAX_PREFIX_DEPTH {
                        next.push(folder);
                    }
                }
            }
            let listed = bounded(jobs, next, |f| async move {
                let r = store.list(&f).await;
                (f, r)
            })
            .await;
            level = Vec::new();
            for (folder, result) in listed {
                match result {
                    Ok(listing) => level.push((folder, listing)),
                    Err(e) => self.unverified(&folder, format!("cannot list: {}", e.cause())),
                }
            }
            if level.is_empty() {
                break;
            }
        }

        // AWSLogs/ → accounts, or org ids → accounts.
        let mut account_roots: Vec<(String, Option<String>, String)> = Vec::new();
        let mut org_folders = Vec::new();
        for (root, listing) in self.list_all(log_roots).await {
            let prefix = root
                .trim_end_matches("AWSLogs/")
                .trim_end_matches('/')
                .to_string();
            for folder in listing.folders {
                let name = last_segment(&folder);
                if is_account(name) {
                    account_roots.push((prefix.clone(), None, name.to_string()));
                } else if is_org_id(name) {
                    org_folders.push((prefix.clone(), name.to_string(), folder));
                }
            }
        }
        let org_listings = self
            .list_all(org_folders.iter().map(|(_, _, f)| f.clone()).collect())
            .await;
        for (folder, listing) in org_listings {
            let (prefix, org, _) = org_folders
                .iter()
                .find(|(_, _, f)| *f == folder)
                .expect("listed folder came from this list");
            for sub in listing.folders {
                let name = last_segment(&sub);
                if is_account(name) {
                    account_roots.push((prefix.clone(), Some(org.clone()), name.to_string()));
                }
            }
        }
        account_roots.retain(|(_, _, account)| {
            self.opts.accounts.is_empty() || self.opts.accounts.contains(account)
        });

        // account → CloudTrail-Digest/<region>/ and CloudTrail/<region>/.
        let mut region_folders = Vec::new();
        for (prefix, org_id, account) in account_roots {
            let location = Location {
                prefix,
                org_id,
                account,
                region: String::new(),
            };
            let root = location.account_root();
            for kind in ["CloudTrail-Digest/", "CloudTrail/"] {
                region_folders.push((location.clone(), format!("{root}{kind}")));
            }
        }
        let listings = self
            .list_all(region_folders.iter().map(|(_, f)| f.clone()).collect())
            .await;
        let by_folder: HashMap<&str, &Location> = region_folders
            .iter()
            .map(|(l, f)| (f.as_str(), l))
            .collect();
        let mut locations = BTreeSet::new();
        for (folder, listing) in &listings {
            let base = by_folder[folder.as_str()];
            for sub in &listing.folders {
                let region = last_segment(sub);
                if is_region(region)
                    && (self.opts.regions.is_empty()
                        || self.opts.regions.iter().any(|r| r == region))
                {
                    locations.insert(Location {
                        region: region.to_string(),
                        ..base.clone()
                    });
                }
            }
        }
        Ok(locations.into_iter().collect())
    }

    /// Lists each folder; a folder that cannot be listed is recorded as unverified.
    async fn list_all(&mut self, folders: Vec<String>) -> Vec<(String, crate::store::Listing)> {
        let store = self.store;
        let opts = &self.opts;
        let listed = bounded(self.opts.jobs, folders, |f| async move {
            let r = store.list(&f).await;
            opts.advance(1, 0);
            (f, r)
        })
        .await;
        let mut out = Vec::new();
        for (folder, result) in listed {
            match result {
                Ok(listing) => out.push((folder, listing)),
                Err(e) => self.unverified(&folder, format!("cannot list: {}", e.cause())),
            }
        }
        out
    }

    /// Lists the date folders of `folder` (`<YYYY>/<MM>/<DD>/`) whose date lies in `[from, to]`.
    async fn day_folders(
        &mut self,
        folders: Vec<String>,
        from: Option<NaiveDate>,
        to: NaiveDate,
    ) -> Vec<String> {
        let keep = |folder: &str, depth: usize| -> bool {
            let parts: Vec<&str> = folder
                .trim_end_matches('/')
                .rsplit('/')
                .take(depth)
                .collect();
            let nums: Vec<u32> = parts.iter().rev().filter_map(|p| p.parse().ok()).collect();
            if nums.len() != depth {
                return false;
            }
            let lo = from.map(|d| [d.year() as u32, d.month(), d.day()]);
            let hi = [to.year() as u32, to.month(), to.day()];
            lo.is_none_or(|lo| nums[..] >= lo[..depth]) && nums[..] <= hi[..depth]
        };
        let mut level = folders;
        for depth in 1..=3 {
            let listed = self.list_all(level).await;
            level = listed
                .into_iter()
                .flat_map(|(_, l)| l.folders)
                .filter(|f| keep(f, depth))
                .collect();
        }
        level
    }

    /// Lists the digest and log objects of every location inside the range's date folders.
    async fn list_locations(
        &mut self,
        locations: &[Location],
    ) -> (Vec<ObjectInfo>, BTreeMap<Location, Vec<ObjectInfo>>) {
        let start = self.opts.start;
        let end = self.opts.end;
        // A digest is in range when its hour overlaps the range; its date folder is its end
        // date, so the digest covering `end` may sit in the folder of `end + 1 h`.
        let digest_days = self
            .day_folders(
                locations.iter().map(Location::digest_folder).collect(),
                start.map(|s| s.date_naive()),
                (end + Duration::hours(1)).date_naive(),
            )
            .await;
        let mut digests = Vec::new();
        for (_, listing) in self.list_all(digest_days).await {
            digests.extend(listing.objects);
        }
        let log_days = self
            .day_folders(
                locations.iter().map(Location::log_folder).collect(),
                start.map(|s| s.date_naive()),
                end.date_naive(),
            )
            .await;
        let mut logs: BTreeMap<Location, Vec<ObjectInfo>> =
            locations.iter().map(|l| (l.clone(), Vec::new())).collect();
        for (folder, listing) in self.list_all(log_days).await {
            if let Some(location) = locations
                .iter()
                .find(|l| folder.starts_with(&l.log_folder()))
            {
                logs.entry(location.clone())
                    .or_default()
                    .extend(listing.objects);
            }
        }
        (digests, logs)
    }

    fn in_range(&self, digest_end: Timestamp) -> bool {
        self.opts.start.is_none_or(|s| digest_end >= s)
            && digest_end - Duration::hours(1) <= self.opts.end
    }

    /// Reads and checks each digest object, in parallel.
    async fn check_digests(
        &mut self,
        objects: Vec<ObjectInfo>,
        keys: &Arc<KeyRing>,
    ) -> Vec<DigestCheck> {
        let mut wanted = Vec::new();
        let mut archived = Vec::new();
        for object in objects {
            match parse_digest_key(&object.key) {
                Some(name) if self.in_range(name.end) => match object.archived() {
                    Some(cause) => archived.push(DigestCheck::unread(
                        object.key,
                        name,
                        DigestStatus::Unverified(cause),
                    )),
                    None => wanted.push((object.key, name)),
                },
                Some(_) => {}
                None => self.foreign_digest_object(&object.key),
            }
        }
        self.opts.phase(Phase::Digests, wanted.len());
        let mut checks = self.read_digests(wanted, keys).await;
        checks.extend(archived);
        checks
    }

    async fn read_digests(
        &self,
        wanted: Vec<(String, crate::layout::DigestName)>,
        keys: &Arc<KeyRing>,
    ) -> Vec<DigestCheck> {
        let store = self.store;
        let opts = &self.opts;
        let bucket: Arc<str> = store.bucket().into();
        bounded(self.opts.jobs, wanted, |(key, name)| {
            let keys = keys.clone();
            let bucket = bucket.clone();
            async move {
                match store.get(&key).await {
                    Ok(object) => {
                        opts.advance(1, object.bytes.len() as u64);
                        crate::cpu::run(move || {
                            verify_digest(
                                &key,
                                &name,
                                &bucket,
                                &object.bytes,
                                &object.metadata,
                                &keys,
                            )
                        })
                        .await
                    }
                    Err(StoreError::NotFound { .. }) => {
                        DigestCheck::unread(key, name, DigestStatus::Missing)
                    }
                    Err(e) => DigestCheck::unread(key, name, DigestStatus::Unverified(e.cause())),
                }
            }
        })
        .await
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
        self.findings.push(Finding::new(
            Kind::DigestMalformed,
            self.opts.strict,
            &location,
            None,
            Some(key),
            "an object in a digest folder that is not named like a CloudTrail digest",
        ));
    }

    /// Reads predecessors that digests name but the listing did not show (they may sit in a date
    /// folder outside the range, or be gone): only a read can tell "gone" from "elsewhere".
    async fn look_up_predecessors(&mut self, checks: &mut Vec<DigestCheck>, keys: &Arc<KeyRing>) {
        let mut known: HashSet<String> = checks.iter().map(|c| c.key.clone()).collect();
        loop {
            let mut wanted = Vec::new();
            for check in checks.iter() {
                let Some(prev) = check.body.as_ref().and_then(|b| b.previous.as_ref()) else {
                    continue;
                };
                if prev.bucket != self.store.bucket() || known.contains(&prev.key) {
                    continue;
                }
                if let Some(name) = parse_digest_key(&prev.key) {
                    if self.opts.start.is_none_or(|s| name.end > s) {
                        known.insert(prev.key.clone());
                        wanted.push((prev.key.clone(), name));
                    }
                }
            }
            if wanted.is_empty() {
                return;
            }
            checks.extend(self.read_digests(wanted, keys).await);
        }
    }

    /// Turns each selected digest's own status into findings, unverified entries and counts.
    fn report_digests(
        &mut self,
        checks: &[DigestCheck],
        summaries: &mut BTreeMap<ScopeId, ScopeSummary>,
    ) {
        for check in checks {
            let Some(summary) = summaries.get_mut(&check.name.scope) else {
                continue;
            };
            match &check.status {
                DigestStatus::Valid => summary.digests.valid += 1,
                DigestStatus::Failed { kind, message } => {
                    summary.digests.invalid += 1;
                    let (s, e) = check.window();
                    self.findings.push(
                        Finding::new(
                            *kind,
                            self.opts.strict,
                            &check.name.scope.location,
                            Some(&check.name.scope.trail),
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

    /// Links each selected scope's regular and backfill chains.
    fn link_chains(
        &mut self,
        checks: &[DigestCheck],
        summaries: &mut BTreeMap<ScopeId, ScopeSummary>,
    ) {
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
            let Some(summary) = summaries.get_mut(scope) else {
                continue;
            };
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
                    bucket: self.store.bucket(),
                    digests: &chain,
                    backfill,
                    end: self.opts.end,
                    strict: self.opts.strict,
                });
                summary.digests.missing += outcome
                    .findings
                    .iter()
                    .filter(|f| f.kind == Kind::DigestMissing)
                    .count();
                if !backfill {
                    summary.covered = outcome.covered;
                    summary.gaps = outcome.gaps;
                }
                self.findings.extend(outcome.findings);
                self.unverified.extend(outcome.unverified);
            }
        }
    }

    /// Hashes every log a valid digest of a selected scope lists, in parallel, and compares.
    async fn hash_logs(
        &mut self,
        pool: &LogPool<'_>,
        log_objects: &BTreeMap<Location, Vec<ObjectInfo>>,
        summaries: &mut BTreeMap<ScopeId, ScopeSummary>,
    ) {
        let store = self.store;
        let bucket = store.bucket();
        let archived: HashMap<&str, String> = log_objects
            .values()
            .flatten()
            .filter_map(|o| Some((o.key.as_str(), o.archived()?)))
            .collect();
        let mut work = Vec::new();
        for (key, listings) in &pool.trusted {
            if !listings.iter().any(|l| l.selected) {
                continue;
            }
            if let Some(cause) = archived.get(key) {
                for l in listings.iter().filter(|l| l.selected) {
                    if let Some(s) = summaries.get_mut(l.scope) {
                        s.logs.unverified += 1;
                    }
                }
                self.unverified(key, cause.clone());
                continue;
            }
            if let Some(l) = listings.iter().find(|l| l.bucket != bucket) {
                self.unverified(
                    key,
                    format!(
                        "listed by {} in another bucket ({}); not checked",
                        l.digest, l.bucket
                    ),
                );
                continue;
            }
            work.push((*key, listings));
        }
        self.opts.phase(Phase::Logs, work.len());
        let opts = &self.opts;
        let results = bounded(self.opts.jobs, work, |(key, listings)| async move {
            let outcome = store.hash_gzip(key).await;
            opts.advance(1, outcome.as_ref().map_or(0, |i| i.size));
            (key, listings, outcome)
        })
        .await;
        for (key, listings, outcome) in results {
            for listing in listings.iter().filter(|l| l.selected) {
                let scope = listing.scope;
                let counts = &mut summaries.get_mut(scope).expect("selected scope").logs;
                let finding = |kind, message: String| {
                    Finding::new(
                        kind,
                        self.opts.strict,
                        &scope.location,
                        Some(&scope.trail),
                        Some(key),
                        message,
                    )
                    .digest(listing.digest)
                };
                let time = parse_log_key(key).map(|n| n.time);
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
                                .hashes(listing.hash, actual),
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
                            .hashes(listing.hash, "(not computable)"),
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
                        self.unverified.push(Unverified {
                            key: key.to_string(),
                            cause: e.cause(),
                        });
                        None
                    }
                };
                if let Some(mut f) = found {
                    if let Some(t) = time {
                        f = f.at(t);
                    }
                    self.findings.push(f);
                }
            }
        }
    }

    /// Matches every log object in the range against the logs that digests list.
    fn find_unlisted(
        &mut self,
        pool: &LogPool<'_>,
        checks: &[DigestCheck],
        log_objects: &BTreeMap<Location, Vec<ObjectInfo>>,
        selected: &BTreeSet<ScopeId>,
        summaries: &mut BTreeMap<ScopeId, ScopeSummary>,
    ) {
        // How far valid regular digests reach, per location, across all trails delivering there.
        let mut covered_until: HashMap<&Location, Timestamp> = HashMap::new();
        for check in checks.iter().filter(|c| c.is_valid() && !c.name.backfill) {
            let end = check.window().1;
            let at = covered_until
                .entry(&check.name.scope.location)
                .or_insert(end);
            *at = (*at).max(end);
        }
        let selected_locations: BTreeSet<&Location> =
            selected.iter().map(|s| &s.location).collect();
        // Windows of digests that could not be read, widened by CloudTrail's delivery delay.
        let unread: Vec<(&Location, Timestamp, Timestamp, &str)> = checks
            .iter()
            .filter(|c| matches!(c.status, DigestStatus::Unverified(_)))
            .map(|c| {
                let (s, e) = c.window();
                (
                    &c.name.scope.location,
                    s,
                    e + DELIVERY_DELAY,
                    c.key.as_str(),
                )
            })
            .collect();
        let mut stray: Vec<(Location, String, Option<Timestamp>, Kind)> = Vec::new();
        for (location, objects) in log_objects {
            if !selected_locations.contains(location) {
                continue;
            }
            for object in objects {
                if pool.trusted.contains_key(object.key.as_str()) {
                    continue;
                }
                let time = parse_log_key(&object.key).map(|n| n.time);
                if let Some(t) = time {
                    if self.opts.start.is_some_and(|s| t < s) || t > self.opts.end {
                        continue;
                    }
                }
                if let Some(digest) = pool.untrusted.get(object.key.as_str()) {
                    self.unverified(
                        &object.key,
                        format!("listed only by {digest}, which failed verification"),
                    );
                    continue;
                }
                // A digest that could not be read may be the one that lists this log: that is
                // "could not check", never "unlisted".
                let unread_digest = time.and_then(|t| {
                    unread
                        .iter()
                        .find(|(l, s, e, _)| *l == location && t >= *s && t <= *e)
                });
                if let Some((_, _, _, digest)) = unread_digest {
                    self.unverified(
                        &object.key,
                        format!("the digest that may list it, {digest}, could not be read"),
                    );
                    continue;
                }
                let reach = covered_until.get(location).copied();
                let kind = match (time, reach) {
                    (Some(t), Some(r)) if r >= t + UNLISTED_AFTER => Kind::LogUnlisted,
                    (None, _) => Kind::LogUnlisted,
                    _ => Kind::LogPending,
                };
                stray.push((location.clone(), object.key.clone(), time, kind));
            }
        }
        let mut strays: Vec<Finding> = Vec::with_capacity(stray.len());
        for (location, key, time, kind) in stray {
            for summary in summaries.values_mut().filter(|s| s.location() == location) {
                match kind {
                    Kind::LogUnlisted => summary.logs.unlisted += 1,
                    _ => summary.logs.pending += 1,
                }
            }
            let message = match (kind, time) {
                (Kind::LogUnlisted, None) => {
                    "an object in a log folder that is not named like a CloudTrail log, and no digest lists it".to_string()
                }
                (Kind::LogUnlisted, Some(_)) => {
                    "no digest lists this log, although digests cover the hours after it: it was not delivered by CloudTrail, or the digest that listed it is gone".to_string()
                }
                _ => "no digest lists this log yet: it is newer than the digests' coverage".to_string(),
            };
            let mut f = Finding::new(kind, self.opts.strict, &location, None, Some(&key), message);
            if let Some(t) = time {
                f = f.at(t);
            }
            strays.push(f);
        }
        // Logs inside the window of a missing digest are reported under it too.
        for missing in self
            .findings
            .iter_mut()
            .filter(|f| f.kind == Kind::DigestMissing)
        {
            let Some(Window(s, e)) = missing.window else {
                continue;
            };
            for stray in strays.iter_mut() {
                let same_place = (&stray.prefix, &stray.org_id, &stray.account, &stray.region)
                    == (
                        &missing.prefix,
                        &missing.org_id,
                        &missing.account,
                        &missing.region,
                    );
                if same_place && stray.time.is_some_and(|t| t >= s && t < e) {
                    missing.logs.extend(stray.key.clone());
                    stray.message.push_str(&format!(
                        "; it lies in the hours {} of a missing digest",
                        Window(s, e)
                    ));
                    if let Some(k) = &missing.key {
                        stray.digest = Some(k.clone());
                    }
                }
            }
        }
        self.findings.extend(strays);
    }
}

/// One digest's record of a log, borrowed from the digest checks: a run holds one record per
/// listed log, so nothing here is copied.
struct PoolEntry<'c> {
    scope: &'c ScopeId,
    digest: &'c str,
    bucket: &'c str,
    hash: &'c str,
    /// The digest's scope is one the user selected (its logs are checked and counted).
    selected: bool,
}

/// Every log name the digests list: those vouched for by valid digests, and those named only
/// by digests that failed (which vouch for nothing).
struct LogPool<'c> {
    trusted: BTreeMap<&'c str, Vec<PoolEntry<'c>>>,
    untrusted: HashMap<&'c str, &'c str>,
}

impl<'c> LogPool<'c> {
    fn new(checks: &'c [DigestCheck], selected: &BTreeSet<ScopeId>) -> LogPool<'c> {
        let mut trusted: BTreeMap<&str, Vec<PoolEntry>> = BTreeMap::new();
        let mut untrusted = HashMap::new();
        for check in checks {
            let Some(body) = &check.body else { continue };
            let is_selected = selected.contains(&check.name.scope);
            for log in &body.logs {
                if check.is_valid() {
                    trusted
                        .entry(log.key.as_str())
                        .or_default()
                        .push(PoolEntry {
                            scope: &check.name.scope,
                            digest: &check.key,
                            bucket: &log.bucket,
                            hash: &log.hash,
                            selected: is_selected,
                        });
                } else {
                    untrusted
                        .entry(log.key.as_str())
                        .or_insert(check.key.as_str());
                }
            }
        }
        LogPool { trusted, untrusted }
    }
}

fn last_segment(folder: &str) -> &str {
    folder
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("")
}

/// The location of any key below `…/AWSLogs/[org/]<account>/<kind>/<region>/`.
fn location_of(key: &str) -> Option<Location> {
    let segs: Vec<&str> = key.split('/').collect();
    let at = segs.iter().rposition(|s| *s == "AWSLogs")?;
    let rest = &segs[at + 1..];
    let (org_id, rest) = match rest.first() {
        Some(o) if is_org_id(o) => (Some(o.to_string()), &rest[1..]),
        _ => (None, rest),
    };
    match rest {
        [account, _kind, region, ..] if is_account(account) && is_region(region) => {
            Some(Location {
                prefix: segs[..at].join("/"),
                org_id,
                account: account.to_string(),
                region: region.to_string(),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_of_reads_prefix_org_account_region() {
        let l = location_of("p/AWSLogs/o-abcdefghij/111122223333/CloudTrail-Digest/us-east-1/x")
            .unwrap();
        assert_eq!(l.prefix, "p");
        assert_eq!(l.org_id.as_deref(), Some("o-abcdefghij"));
        assert_eq!(l.region, "us-east-1");
        assert!(location_of("AWSLogs/xyz/CloudTrail/us-east-1/a").is_none());
    }
}
