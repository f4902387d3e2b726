//! One location, day by day: its digests read and checked, the logs they list hashed, its log
//! folders matched against what the digests list, and what is left judged when it is done.

use super::*;

/// What one location's verification found.
#[derive(Default)]
pub struct Outcome {
    pub findings: Vec<Finding>,
    pub unverified: Vec<Unverified>,
    pub summaries: BTreeMap<ScopeId, ScopeSummary>,
    /// Objects in the date folders read that lie after the end of the range.
    pub after_end: usize,
    /// Windows of locations read for the merge to settle.
    pub evidence: Vec<settle::LocationEvidence>,
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
    /// What the listing said of objects not yet recorded, for `--report objects=PATH` and for
    /// the proof a state keeps only.
    pub(super) listed: std::sync::Mutex<HashMap<String, ObjectInfo>>,
    /// Digests ending before this, and logs named before it, are not read: the range's start,
    /// or where an earlier run's state has the location resume.
    pub(super) start: Option<Timestamp>,
    /// The days read, when this run reads only a window of the location's days.
    pub(super) window: Option<settle::DayWindow>,
    /// Predecessors read from before the window, only for their link.
    pub(super) borrowed: Vec<String>,
    /// Logs outside the window's folders that valid digests listed, or only failed ones did.
    pub(super) vouched_outside: Vec<String>,
    pub(super) failed_outside: Vec<(String, String)>,
    /// Log objects nested below a day folder, counted as unlisted once the scopes are known.
    pub(super) nested_unlisted: usize,
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
        listed: Default::default(),
        start: ctx.opts.start,
        window: work.window,
        borrowed: Vec::new(),
        vouched_outside: Vec::new(),
        failed_outside: Vec::new(),
        nested_unlisted: 0,
    };
    if let Some(at) = work.resume {
        run.start = run.start.max(Some(at.start));
        for anchor in at.anchors {
            run.known.insert(anchor.key.clone());
            run.borrowed.push(anchor.key.clone());
            run.checks.push(anchor);
        }
    }
    let days: Vec<(NaiveDate, DayFolders)> = work.days.into_iter().collect();
    let start = run.start;
    let mut queued = days.iter();
    let mut flow = Flow {
        hashing: stream::FuturesUnordered::new(),
        hashed: Vec::new(),
        ahead: stream::FuturesOrdered::new(),
        ready: std::collections::VecDeque::new(),
    };
    for (date, _) in &days {
        while flow.ahead.len() + flow.ready.len() < ctx.days_ahead.max(1) {
            match queued.next() {
                Some((_, d)) => flow.ahead.push_back(ctx.read_day(d, start)),
                None => break,
            }
        }
        let current = flow.next_day().await.unwrap_or_default();
        let logs = flow.driving(run.day(*date, current)).await;
        for results in flow.hashed.drain(..) {
            run.compare(results);
        }
        flow.hashing.push(hash_logs(ctx, logs));
    }
    while let Some(results) = flow.hashing.next().await {
        run.compare(results);
    }
    run.finish().await
}

/// What a location has in flight besides the day being checked: the logs of earlier days
/// being hashed, and the next days being listed and their digests read, each driven while
/// the location awaits anything else, so that none waits on the others' turn.
struct Flow<P: std::future::Future, A: std::future::Future> {
    hashing: stream::FuturesUnordered<P>,
    hashed: Vec<P::Output>,
    ahead: stream::FuturesOrdered<A>,
    ready: std::collections::VecDeque<A::Output>,
}

impl<P: std::future::Future, A: std::future::Future> Flow<P, A> {
    fn poll_flow(&mut self, cx: &mut std::task::Context<'_>) {
        while let std::task::Poll::Ready(Some(out)) = self.hashing.poll_next_unpin(cx) {
            self.hashed.push(out);
        }
        while let std::task::Poll::Ready(Some(day)) = self.ahead.poll_next_unpin(cx) {
            self.ready.push_back(day);
        }
    }

    /// The next day read ahead, in date order; `None` when none is in flight.
    async fn next_day(&mut self) -> Option<A::Output> {
        future::poll_fn(|cx| {
            self.poll_flow(cx);
            match self.ready.pop_front() {
                Some(day) => std::task::Poll::Ready(Some(day)),
                None if self.ahead.is_empty() => std::task::Poll::Ready(None),
                None => std::task::Poll::Pending,
            }
        })
        .await
    }

    /// Awaits `f` while driving what is in flight.
    async fn driving<F: std::future::Future>(&mut self, f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        future::poll_fn(|cx| {
            self.poll_flow(cx);
            f.as_mut().poll(cx)
        })
        .await
    }
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
        let opts = self.ctx.opts;
        if opts.objects.is_none() && opts.proof.is_none() {
            return;
        }
        // Taken once recorded, so that what is held stays what is still to be decided.
        let listed = self
            .listed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
        if let Some(log) = &opts.objects {
            log.record(&crate::report::ObjectRecord {
                key,
                object,
                outcome,
                cause,
                sha256,
                digest,
                etag: listed.as_ref().and_then(|l| l.etag.as_deref()),
                version_id: None,
            });
        }
        if let Some(proof) = &opts.proof {
            match sha256 {
                Some(sha256) if outcome == "valid" => {
                    proof.object(&self.location, key, object, sha256, listed)
                }
                _ => proof.judged(&self.location, key),
            }
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
        if self.ctx.opts.objects.is_some() || self.ctx.opts.proof.is_some() {
            let mut listed = self.listed.lock().unwrap_or_else(|e| e.into_inner());
            for object in listing.logs.iter().chain(&listing.digests) {
                listed.insert(object.key.clone(), object.clone());
            }
        }
        let mut checks = self.check_digests(listing.digests, listing.read).await;
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

    /// Checks each listed digest in range that was not checked already: `read` holds those
    /// read ahead; the others are read now.
    pub(super) async fn check_digests(
        &mut self,
        objects: Vec<ObjectInfo>,
        mut read: HashMap<String, DigestCheck>,
    ) -> Vec<DigestCheck> {
        let mut wanted = Vec::new();
        let mut checks = Vec::new();
        for object in objects {
            if self.known.contains(&object.key) {
                continue;
            }
            match parse_digest_key(&object.key) {
                Some(name)
                    if self.ctx.opts.in_range(name.end)
                        && self.start.is_none_or(|s| name.end >= s) =>
                {
                    self.known.insert(object.key.clone());
                    match object.archived() {
                        Some(cause) => checks.push(DigestCheck::unread(
                            object.key,
                            name,
                            DigestStatus::Unverified(cause),
                        )),
                        None => match read.remove(&object.key) {
                            Some(check) => checks.push(check),
                            None => wanted.push((object.key, name)),
                        },
                    }
                }
                Some(name) if name.end > self.ctx.opts.end => self.out.after_end += 1,
                Some(_) => {}
                None => match self.ctx.store.confirm_hint(&object.key).await {
                    None | Some(Ok(())) => self.foreign_digest_object(&object.key),
                    Some(Err(StoreError::NotFound { .. })) => {}
                    Some(Err(e)) => self.unverified(
                        &object.key,
                        format!(
                            "listed by the S3 Inventory; not confirmed in the bucket: {}",
                            e.cause()
                        ),
                    ),
                },
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
            self.nested_unlisted += 1;
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
                // A predecessor from before the window serves only its own link.
                if self.borrowed.contains(&check.key) {
                    continue;
                }
                let Some(prev) = check.body.as_ref().and_then(|b| b.previous.as_ref()) else {
                    continue;
                };
                if prev.bucket != self.ctx.store.bucket() || self.known.contains(&prev.key) {
                    continue;
                }
                if let Some(name) = parse_digest_key(&prev.key) {
                    if self.start.is_none_or(|s| name.end > s) {
                        self.known.insert(prev.key.clone());
                        let before = self.window.and_then(|w| w.from);
                        if before.is_some_and(|f| name.end.date_naive() < f) {
                            self.borrowed.push(prev.key.clone());
                        }
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
            // A predecessor read from another location, or from before the window, only
            // serves its link.
            if check.name.scope.location != self.location || self.borrowed.contains(&check.key) {
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
                let outside = self.window.is_some_and(|w| {
                    parse_log_key(&log.key).is_some_and(|n| !w.contains(n.time.date_naive()))
                });
                if check.is_valid() {
                    if outside {
                        self.vouched_outside.push(log.key.clone());
                    }
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
                    if outside {
                        self.failed_outside
                            .push((log.key.clone(), check.key.clone()));
                    }
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
                        Some(
                            finding(
                                Kind::LogMissing,
                                format!(
                                    "the log is missing: {} lists it, but the object does not exist",
                                    listing.digest
                                ),
                            )
                            .expecting(&listing.hash),
                        )
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
                if self.start.is_some_and(|s| t < s) {
                    continue;
                }
            }
            self.ledger.seen(object.key, time);
        }
    }

    /// Hands over what the location showed: settled here when it was read whole, or as
    /// evidence for the merge when this run read only a window of its days.
    pub(super) async fn finish(mut self) -> Outcome {
        let held = std::mem::take(&mut self.held);
        self.match_logs(held);
        let ctx = self.ctx;
        let mut strays = self.ledger.take_strays();
        // A stray only a listing hint showed is confirmed in the bucket before it is judged.
        let keys: Vec<String> = strays.keys().cloned().collect();
        for key in keys {
            match ctx.store.confirm_hint(&key).await {
                None | Some(Ok(())) => {}
                Some(Err(StoreError::NotFound { .. })) => {
                    strays.remove(&key);
                }
                Some(Err(e)) => {
                    strays.remove(&key);
                    self.unverified(
                        &key,
                        format!(
                            "listed by the S3 Inventory; not confirmed in the bucket: {}",
                            e.cause()
                        ),
                    );
                }
            }
        }
        let evidence = settle::LocationEvidence {
            location: self.location.clone(),
            window: self.window,
            checks: std::mem::take(&mut self.checks),
            borrowed: std::mem::take(&mut self.borrowed),
            strays,
            vouched_outside: std::mem::take(&mut self.vouched_outside),
            failed_outside: std::mem::take(&mut self.failed_outside),
            unlisted_days: std::mem::take(&mut self.unlisted_days),
            nested_unlisted: self.nested_unlisted,
            findings: std::mem::take(&mut self.out.findings),
            unverified: std::mem::take(&mut self.out.unverified),
            summaries: std::mem::take(&mut self.out.summaries)
                .into_values()
                .collect(),
            after_end: self.out.after_end,
        };
        if self.window.is_some() {
            return Outcome {
                evidence: vec![evidence],
                ..Outcome::default()
            };
        }
        let proved = ctx.opts.proof.as_ref().map(|_| {
            let rules = ctx.opts.judging();
            evidence
                .checks
                .iter()
                .filter(|c| {
                    c.is_valid()
                        && c.name.scope.location == evidence.location
                        && !rules.beyond_end(c.name.end)
                        && !evidence.borrowed.contains(&c.key)
                })
                .cloned()
                .collect::<Vec<_>>()
        });
        let (outcome, lines) = settle::settle(evidence, &ctx.opts.judging(), ctx.store.bucket());
        for l in lines {
            self.object(
                &l.key,
                l.object,
                &l.outcome,
                l.cause.as_deref(),
                l.sha256.as_deref(),
                l.digest.as_deref(),
            );
        }
        if let (Some(proof), Some(digests)) = (&ctx.opts.proof, proved) {
            let complete = outcome.unverified.is_empty()
                && outcome
                    .findings
                    .iter()
                    .all(|f| f.severity != crate::finding::Severity::Error);
            proof.settled(&self.location, digests, complete);
        }
        outcome
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
