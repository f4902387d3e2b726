//! One location, day by day: its digests read and checked, the logs they list hashed, its log
//! folders matched against what the digests list, and what is left judged when it is done.

use super::*;

/// What one location's verification found.
#[derive(Default)]
pub(super) struct Outcome {
    pub(super) findings: Vec<Finding>,
    pub(super) unverified: Vec<Unverified>,
    pub(super) summaries: BTreeMap<ScopeId, ScopeSummary>,
    /// Objects in the date folders read that lie after the end of the range.
    pub(super) after_end: usize,
}

/// One location's state while its dates are checked in order.
pub(super) struct LocationRun<'c, 's, S> {
    pub(super) ctx: &'c Ctx<'s, S>,
    pub(super) location: Location,
    pub(super) out: Outcome,
    /// Every digest checked, compacted: its list of logs dropped once used.
    pub(super) checks: Vec<DigestCheck>,
    pub(super) known: HashSet<String>,
    /// What digests listed and which log objects no valid digest has listed so far.
    pub(super) ledger: ledger::Ledger,
    /// Log objects in archival storage classes, with the cause.
    pub(super) archived: HashMap<String, String>,
    /// The latest date's log objects, matched once the next date's digests are in.
    pub(super) held: Vec<ObjectInfo>,
    /// Hours whose digest folder could not be listed, and why their logs cannot be judged.
    pub(super) unlisted_days: Vec<(Timestamp, Timestamp, String)>,
    /// The listed ETags of objects not yet recorded, for `--report objects=PATH` only.
    pub(super) etags: std::sync::Mutex<HashMap<String, String>>,
}

/// Verifies one location, date by date. A date's digests are read and checked while the
/// previous date's logs still hash and the next date is listed, so that requests keep flowing
/// across midnight.
pub(super) async fn verify_location<S: Store>(ctx: &Ctx<'_, S>, work: LocationWork) -> Outcome {
    let mut run = LocationRun {
        ctx,
        location: work.location,
        out: Outcome::default(),
        checks: Vec::new(),
        known: HashSet::new(),
        ledger: ledger::Ledger::default(),
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
pub(super) async fn driving<F: std::future::Future, P: std::future::Future>(
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
pub(super) struct LogToHash {
    pub(super) key: String,
    pub(super) listings: Vec<Listed>,
}

/// One selected valid digest's record of a log.
pub(super) struct Listed {
    pub(super) scope: ScopeId,
    pub(super) digest: String,
    pub(super) hash: String,
}

/// Reads, inflates and hashes logs, in parallel.
pub(super) async fn hash_logs<S: Store>(
    ctx: &Ctx<'_, S>,
    logs: Vec<LogToHash>,
) -> Vec<(LogToHash, Result<crate::hash::Inflated, HashFailure>)> {
    if let Some(local) = ctx.store.reads_now() {
        // A local folder: one parallel pass on the CPU pool, one hand-off per day rather than
        // per log. The pass owns what it reads; the location awaits it like any request.
        use rayon::prelude::*;
        let progress = ctx.opts.progress.clone();
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
    pub(super) fn object(
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

    pub(super) fn unverified(&mut self, key: &str, cause: impl Into<String>) {
        self.out.unverified.push(Unverified {
            key: key.to_string(),
            cause: cause.into(),
        });
    }

    pub(super) fn summary(&mut self, scope: &ScopeId) -> &mut ScopeSummary {
        let bucket = self.ctx.store.bucket();
        self.out
            .summaries
            .entry(scope.clone())
            .or_insert_with(|| ScopeSummary::new(bucket, scope))
    }

    /// Checks one date's digests and the previous date's log objects, and returns the logs that
    /// the date's valid digests list, to be hashed.
    pub(super) async fn day(&mut self, date: NaiveDate, listing: DayListing) -> Vec<LogToHash> {
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
        self.ledger.forget_before(date);
        logs
    }

    /// Reads and checks each listed digest in range that was not read already.
    pub(super) async fn check_digests(&mut self, objects: Vec<ObjectInfo>) -> Vec<DigestCheck> {
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
    pub(super) async fn nested_folders(&mut self, nested: Vec<(bool, String)>) {
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

    pub(super) fn nested_object(&mut self, digests: bool, key: &str, what: &str) {
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
    pub(super) fn foreign_digest_object(&mut self, key: &str) {
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
    pub(super) async fn look_up_predecessors(&mut self, checks: &mut Vec<DigestCheck>) {
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
    pub(super) fn take_listed_logs(&mut self, checks: &[DigestCheck]) -> Vec<LogToHash> {
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
                    self.ledger.vouched(&log.key);
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
                    self.ledger.listed_by_failed(&log.key, &check.key);
                }
            }
        }
        self.logs_to_hash(trusted)
    }

    /// The logs of `trusted` to hash: those that a selected scope's digest lists, unless they
    /// are archived or listed in another bucket (unverified, with the cause).
    pub(super) fn logs_to_hash(
        &mut self,
        trusted: BTreeMap<&str, Vec<PoolEntry<'_>>>,
    ) -> Vec<LogToHash> {
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
    pub(super) fn compare(
        &mut self,
        results: Vec<(LogToHash, Result<crate::hash::Inflated, HashFailure>)>,
    ) {
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
    pub(super) fn match_logs(&mut self, objects: Vec<ObjectInfo>) {
        let opts = self.ctx.opts;
        for object in objects {
            if self.ledger.is_listed(&object.key) {
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
            self.ledger.seen(object.key, time);
        }
    }

    /// Links the chains, judges the strays, and hands over what the location showed.
    pub(super) fn finish(mut self) -> Outcome {
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
    pub(super) fn report_digests(&mut self, checks: &[DigestCheck]) {
        let strict = self.ctx.opts.strict;
        for check in checks {
            let scope = &check.name.scope;
            if scope.location != self.location || !self.ctx.opts.selects(scope) {
                continue;
            }
            let verdict = judge::digest(check, strict);
            let cause = match &verdict {
                judge::DigestVerdict::Unverified(cause) => Some(cause.as_str()),
                _ => None,
            };
            self.object(
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
    pub(super) fn missing_before_the_end(&mut self, all: &[DigestCheck], checks: &[DigestCheck]) {
        let opts = self.ctx.opts;
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
            |end| opts.beyond_end(end),
            |scope| scope.location == location && opts.selects(scope),
            opts.strict,
        );
        for (scope, finding) in found {
            self.out.findings.push(finding);
            self.summary(scope).digests.missing += 1;
        }
    }

    /// Links each selected scope's regular and backfill chains.
    pub(super) fn link_chains(&mut self, checks: &[DigestCheck]) {
        let opts = self.ctx.opts;
        let by_scope = judge::chains(checks);
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
    pub(super) fn judge_strays(&mut self, checks: &[DigestCheck]) {
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
        let evidence = judge::Evidence {
            reach,
            signed,
            unread,
            horizon: opts.horizon,
        };
        let mut strays: Vec<Finding> = Vec::new();
        for (key, stray) in self.ledger.take_strays() {
            match judge::stray(stray.time, stray.listed_by_failed.as_deref(), &evidence) {
                judge::LogVerdict::Unverified { cause, digest } => {
                    self.object(
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
                    self.object(&key, "log", kind.as_str(), None, None, None);
                    for summary in self.out.summaries.values_mut() {
                        match kind {
                            Kind::LogUnlisted => summary.logs.unlisted += 1,
                            _ => summary.logs.pending += 1,
                        }
                    }
                    let mut f =
                        Finding::new(kind, opts.strict, &self.location, None, Some(&key), message);
                    if let Some(t) = stray.time {
                        f = f.at(t);
                    }
                    strays.push(f);
                }
            }
        }
        judge::fold_incidents(&mut self.out.findings, &mut strays);
        self.out.findings.extend(strays);
    }
}

/// One digest's record of a log, borrowed from the digest checks.
pub(super) struct PoolEntry<'c> {
    pub(super) scope: &'c ScopeId,
    pub(super) digest: &'c str,
    pub(super) bucket: &'c str,
    pub(super) hash: &'c str,
    /// The digest's scope is one the user selected (its logs are checked and counted).
    pub(super) selected: bool,
}
