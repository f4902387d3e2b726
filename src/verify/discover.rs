//! Discovery: every location (prefix, org id, account, region) under the source, by delimiter
//! listing, and each location's date folders in range.

use super::*;

/// Lists folders down to each location's date folders.
pub(super) struct Discovery<'s, S> {
    pub(super) store: &'s S,
    pub(super) opts: &'s Options,
    pub(super) unverified: Vec<Unverified>,
    pub(super) after_end: usize,
    pub(super) not_dates: Vec<String>,
}

impl<S: Store> Discovery<'_, S> {
    pub(super) fn unverified(&mut self, key: &str, cause: impl Into<String>) {
        self.unverified.push(Unverified {
            key: key.to_string(),
            cause: cause.into(),
        });
    }

    /// Finds every location (prefix, org id, account, region) under the source, by delimiter
    /// listing: folders down to `AWSLogs/`, then accounts or org ids, then regions.
    pub(super) async fn discover(&mut self) -> Result<Vec<Location>, VerifyError> {
        let store = self.store;
        let jobs = self.opts.jobs;
        let guess = first_folders(store.root()).into_iter().nth(1);
        let (root, guessed) = futures::join!(store.list(store.root()), async {
            match &guess {
                Some(folder) => Some(store.list(folder).await),
                None => None,
            }
        });
        let root = root.map_err(|e| VerifyError::Unlistable {
            source_name: store.source(),
            cause: e.cause(),
        })?;
        let mut guessed = guess.zip(guessed);
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
        let mut log_listings = Vec::new();
        if let Some((folder, listed)) = guessed.take() {
            if let Some(at) = log_roots.iter().position(|r| *r == folder) {
                log_roots.remove(at);
                match listed {
                    Ok(listing) => {
                        self.opts.advance(1, 0);
                        log_listings.push((folder, listing));
                    }
                    Err(e) => self.unverified(&folder, format!("cannot list: {}", e.cause())),
                }
            }
        }
        log_listings.extend(self.list_all(log_roots).await);
        for (root, listing) in log_listings {
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
                } else {
                    // Only CloudTrail writes below AWSLogs/: an 11-digit "account" is not one.
                    self.not_dates.push(folder);
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
                } else {
                    self.not_dates.push(sub);
                }
            }
        }
        account_roots.retain(|(_, org, account)| self.opts.selects_account(org.as_ref(), account));

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
                if !is_region(region) {
                    self.not_dates.push(sub.clone());
                }
                if is_region(region) && self.opts.selects_region(region) {
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
    pub(super) async fn list_all(
        &mut self,
        folders: Vec<String>,
    ) -> Vec<(String, crate::store::Listing)> {
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
    pub(super) async fn day_folders(
        &mut self,
        folders: Vec<String>,
        from: Option<NaiveDate>,
        to: NaiveDate,
    ) -> Vec<String> {
        // Some(true): in range; Some(false): a date folder outside it; None: not a date.
        let keep = |folder: &str, depth: usize| -> Option<bool> {
            let parts: Vec<&str> = folder
                .trim_end_matches('/')
                .rsplit('/')
                .take(depth)
                .collect();
            let nums: Vec<u32> = parts
                .iter()
                .rev()
                .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .filter_map(|p| p.parse().ok())
                .collect();
            if nums.len() != depth {
                return None;
            }
            let lo = from.map(|d| [d.year() as u32, d.month(), d.day()]);
            let hi = [to.year() as u32, to.month(), to.day()];
            Some(lo.is_none_or(|lo| nums[..] >= lo[..depth]) && nums[..] <= hi[..depth])
        };
        let hi = [to.year() as u32, to.month(), to.day()];
        let mut level = folders;
        for depth in 1..=3 {
            let listed = self.list_all(level).await;
            level = Vec::new();
            for folder in listed.into_iter().flat_map(|(_, l)| l.folders) {
                match keep(&folder, depth) {
                    Some(true) => level.push(folder),
                    // Folders before the start are outside the range by the user's choice;
                    // those after its end are counted.
                    Some(false) if folder_after(&folder, depth, hi) => self.after_end += 1,
                    Some(false) => {}
                    None => self.not_dates.push(folder),
                }
            }
        }
        level
    }

    /// Each location's date folders in range: named, for a short range; listed otherwise.
    pub(super) async fn days_of(&mut self, locations: Vec<Location>) -> Vec<LocationWork> {
        match self.opts.start {
            // A short range names its date folders instead of walking years, months and days.
            Some(start) if self.opts.end - start <= Duration::days(NAMED_DAYS) => {
                named_date_folders(locations, start, self.opts.end)
            }
            _ => self.date_folders(locations).await,
        }
    }

    /// Lists each location's digest and log folders down to the date folders in range.
    pub(super) async fn date_folders(&mut self, locations: Vec<Location>) -> Vec<LocationWork> {
        let from = self.opts.start.map(|s| s.date_naive());
        // A digest's date folder is its end date, so the digest covering `end` may sit in the
        // folder of `end + 1 h`.
        let digests_to = (self.opts.end + Duration::hours(1) + DELIVERY_DELAY).date_naive();
        let logs_to = self.opts.end.date_naive();
        let mut bases = Vec::new();
        for (i, l) in locations.iter().enumerate() {
            bases.push((l.digest_folder(), (i, true)));
            bases.push((l.log_folder(), (i, false)));
        }
        let base_of: HashMap<String, (usize, bool)> = bases.iter().cloned().collect();
        let failed_before = self.unverified.len();
        let folders = self
            .day_folders(
                bases.into_iter().map(|(f, _)| f).collect(),
                from,
                digests_to,
            )
            .await;
        let mut work: Vec<LocationWork> = locations
            .into_iter()
            .map(|location| LocationWork {
                location,
                days: BTreeMap::new(),
                unlisted: Vec::new(),
                window: None,
                resume: None,
            })
            .collect();
        // A year, month or day of digests that could not be listed: the logs of those hours
        // cannot be judged unlisted.
        for failed in &self.unverified[failed_before..] {
            for w in work.iter_mut() {
                let Some(rest) = failed.key.strip_prefix(&w.location.digest_folder()) else {
                    continue;
                };
                if let Some((from, to)) = folder_hours(rest) {
                    let why = format!(
                        "the digests that may list it could not be listed ({})",
                        failed.key
                    );
                    w.unlisted.push((from, to, why));
                }
            }
        }
        for folder in folders {
            let Some((base, date)) = split_date_folder(&folder) else {
                self.unverified(
                    &folder,
                    "a folder named like a date that is not a date; not checked",
                );
                continue;
            };
            let Some(&(i, is_digests)) = base_of.get(base) else {
                continue;
            };
            if !is_digests && date > logs_to {
                self.after_end += 1;
                continue;
            }
            let day = work[i].days.entry(date).or_default();
            if is_digests {
                day.digests = Some(folder);
            } else {
                day.logs = Some(folder);
            }
        }
        work
    }
}

/// Each location's date folders from `start` to `end`, by name: a folder that does not exist
/// lists empty. A digest's date folder is its end date, so digests go one hour further.
pub(super) fn named_date_folders(
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
                window: None,
                resume: None,
            }
        })
        .collect()
}
