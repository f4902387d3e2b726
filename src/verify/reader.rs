//! Reading: the only place that knows there are two kinds of source. A local folder's listings,
//! reads and hashes run on the CPU pool (its reads never wait on a network), an S3 bucket's as
//! requests; both hold one of the run's permits, which bound requests in flight across every
//! location at once.

use super::*;

/// What every location's verification shares: the store, the trusted keys, and the permits
/// that bound requests in flight across the whole run.
pub(super) struct Ctx<'s, S> {
    pub(super) store: &'s S,
    pub(super) opts: &'s Options,
    pub(super) keys: ArrivingKeys,
    pub(super) bucket: Arc<str>,
    pub(super) pace: pace::Pace,
    /// Each prefix's requests kept within S3's rate for a prefix.
    pub(super) prefixes: pace::PrefixRates,
    /// The limit of requests in flight progress last showed; held while progress is told, so
    /// that it is told each change once and in order.
    pub(super) shown_limit: std::sync::Mutex<usize>,
    /// How many of a location's days are listed and their digests read ahead of the day being
    /// checked: more when few locations share the run, so that a long range of one location is
    /// not one round trip a day.
    pub(super) days_ahead: usize,
}

/// The objects of one date of one location, and the folders that could not be listed.
#[derive(Default)]
pub(super) struct DayListing {
    pub(super) digests: Vec<ObjectInfo>,
    pub(super) logs: Vec<ObjectInfo>,
    pub(super) failed: Vec<Unverified>,
    /// The digest folder, when it could not be listed.
    pub(super) digests_unlisted: Option<String>,
    /// Folders inside the day folders (digests first): CloudTrail writes none.
    pub(super) nested: Vec<(bool, String)>,
    /// The listed digests in range already read and checked, by key.
    pub(super) read: HashMap<String, DigestCheck>,
}

impl<S: Store> Ctx<'_, S> {
    /// One of the run's permits for a request to `key` (an object or a folder), once its prefix
    /// has room for it.
    pub(super) async fn permit(&self, key: &str) -> pace::Permit<'_> {
        let permit = self.pace.acquire(self.store.throttled()).await;
        if self.store.reads_now().is_none() {
            if let Some(progress) = &self.opts.progress {
                let mut shown = self.shown_limit.lock().unwrap_or_else(|e| e.into_inner());
                let limit = self.pace.limit();
                if *shown != limit {
                    *shown = limit;
                    progress.requests(limit);
                }
            }
            let wait = self.prefixes.take(key, std::time::Instant::now());
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
        permit
    }

    pub(super) async fn list(&self, folder: &str) -> Result<Listing, StoreError> {
        let _permit = self.permit(folder).await;
        if let Some(local) = self.store.reads_now() {
            // A folder's entries are read from the disk: on the CPU pool, never on a tokio
            // worker.
            let folder = folder.to_string();
            return crate::cpu::run(move || local.list_now(&folder)).await;
        }
        self.store.list(folder).await
    }

    /// Lists one date's digest and log folders, together.
    pub(super) async fn list_day(&self, day: Option<&DayFolders>) -> DayListing {
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

    /// Lists one date's folders and reads the digests in range there (from `start`), so that
    /// the date is ready to be checked when its turn comes.
    pub(super) async fn read_day(&self, day: &DayFolders, start: Option<Timestamp>) -> DayListing {
        let mut listing = self.list_day(Some(day)).await;
        let wanted: Vec<(String, DigestName)> = listing
            .digests
            .iter()
            .filter(|o| o.archived().is_none())
            .filter_map(|o| Some((o.key.clone(), parse_digest_key(&o.key)?)))
            .filter(|(_, name)| self.opts.in_range(name.end) && start.is_none_or(|s| name.end >= s))
            .collect();
        listing.read = self
            .read_digests(wanted)
            .await
            .into_iter()
            .map(|c| (c.key.clone(), c))
            .collect();
        listing
    }

    /// Reads and checks digests, in parallel.
    pub(super) async fn read_digests(&self, wanted: Vec<(String, DigestName)>) -> Vec<DigestCheck> {
        if let Some(local) = self.store.reads_now() {
            // A local folder: one parallel pass on the CPU pool, as for logs.
            use rayon::prelude::*;
            let (bucket, progress) = (self.bucket.clone(), self.opts.progress.clone());
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
                let _permit = self.permit(&key).await;
                // Boxed once it may run: the read's state (an SDK request's is many KB) is
                // allocated for the requests in flight, not for every digest waiting its turn.
                Box::pin(self.store.get(&key)).await
            };
            self.read(&read);
            let (keys, bucket) = (self.keys.clone().await, self.bucket.clone());
            crate::cpu::run(move || check_digest(&bucket, &keys, key, name, read)).await
        })
        .await
    }

    /// Counts a digest read for progress.
    pub(super) fn read(&self, read: &Result<crate::store::Object, StoreError>) {
        if let Ok(object) = read {
            self.opts.advance(1, object.bytes.len() as u64);
        }
    }

    pub(super) async fn hash_gzip(&self, key: &str) -> Result<crate::hash::Inflated, HashFailure> {
        let _permit = self.permit(key).await;
        let outcome = Box::pin(self.store.hash_gzip(key)).await;
        self.advanced(&outcome);
        outcome
    }

    pub(super) fn advanced(&self, outcome: &Result<crate::hash::Inflated, HashFailure>) {
        self.opts.advance(1, outcome.as_ref().map_or(0, |i| i.size));
    }
}

/// Checks a digest as read (or tells why it could not be).
pub(super) fn check_digest(
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
