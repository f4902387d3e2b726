//! Re-checking what earlier runs covered: the day folders listed again, each object compared
//! with the ledger and read again where it differs, newcomers confirmed, and a slice of the
//! ledger re-hashed.

use super::*;

/// What re-checking the covered hours against the ledger found.
#[derive(Debug, Default)]
pub struct Recheck {
    pub findings: Vec<Finding>,
    pub unverified: Vec<Unverified>,
    /// Objects the re-listing showed in the covered hours.
    pub relisted: usize,
    /// Ledger rows compared with the listing.
    pub compared: usize,
    /// Objects read again to confirm a difference (and the anchors, read each run).
    pub reread: usize,
    /// Ledger rows hashed again by `--reverify`.
    pub rehashed: usize,
    /// Locations with something to report: their anchors stay where they are.
    pub troubled: BTreeSet<Location>,
}

/// A rotating slice of the ledger, re-hashed each run: `K/N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slice {
    pub index: usize,
    pub total: usize,
}

impl std::str::FromStr for Slice {
    type Err = String;
    fn from_str(s: &str) -> Result<Slice, String> {
        let shard: crate::shard::Shard = s.parse()?;
        Ok(Slice {
            index: shard.index,
            total: shard.total,
        })
    }
}

impl std::fmt::Display for Slice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.total)
    }
}

impl Slice {
    /// Whether `key` falls in this slice: a stable hash of the key, so the N slices cover the
    /// ledger once between them.
    pub fn holds(&self, key: &str) -> bool {
        let h = Sha256::digest(key.as_bytes());
        let n = u64::from_be_bytes(h[..8].try_into().expect("8 bytes"));
        (n % self.total as u64) as usize == self.index - 1
    }
}

/// Why a row is read again.
enum Reread {
    /// Its listing differs from the ledger (or it is an anchor, read every run).
    Changed(String),
    /// The listing does not show it.
    Unlisted,
    /// `--reverify`.
    Slice,
}

/// Re-lists the hours each location of `state` covered and compares them with its ledger;
/// reads each anchor again; re-hashes `slice` of the ledger. `proof` is what this run proved
/// (a log it verified is no newcomer), `horizon` when the bucket was observed.
pub async fn recheck<S: Store>(
    store: &S,
    state: &State,
    proof: &BTreeMap<Location, LocationProof>,
    opts: &crate::verify::Options,
    slice: Option<Slice>,
) -> Recheck {
    let mut out = Recheck::default();
    let resume = state.resume();
    // Only what this run looks at: the locations under its source that its filters select.
    let root = store.root();
    let selected = state.locations.iter().filter(|l| {
        opts.selects_location(&l.location) && l.location.account_root().starts_with(root)
    });
    for l in selected {
        let start = resume.locations.get(&l.location).map(|r| r.start);
        recheck_location(
            store,
            l,
            start,
            proof.get(&l.location),
            opts,
            slice,
            &mut out,
        )
        .await;
    }
    out
}

/// The time an object's key names: a digest's end, a log's name time.
fn key_time(key: &str) -> Option<Timestamp> {
    parse_digest_key(key)
        .map(|n| n.end)
        .or_else(|| parse_log_key(key).map(|n| n.time))
}

fn day_folders(base: &str, from: NaiveDate, to: NaiveDate) -> Vec<String> {
    let mut folders = Vec::new();
    let mut d = from;
    while d <= to {
        folders.push(format!("{base}{}/", d.format("%Y/%m/%d")));
        match d.succ_opt() {
            Some(next) => d = next,
            None => break,
        }
    }
    folders
}

/// Re-checks one location of the state: `start` is where this run resumed it, `proved` what
/// this run proved of it.
async fn recheck_location<S: Store>(
    store: &S,
    l: &LocationState,
    start: Option<Timestamp>,
    proved: Option<&LocationProof>,
    opts: &crate::verify::Options,
    slice: Option<Slice>,
    out: &mut Recheck,
) {
    let (horizon, jobs, strict) = (opts.horizon, opts.jobs.clamp(1, 64), opts.strict);
    let location = &l.location;
    let (findings_before, unverified_before) = (out.findings.len(), out.unverified.len());
    // What the ledger covers: everything before the resumption (or, for a location with no
    // anchor, everything it holds).
    let covered = |key: &str| match (start, key_time(key)) {
        (Some(s), Some(t)) => t < s,
        (None, _) => true,
        (Some(_), None) => true,
    };
    let rows: HashMap<&str, &Row> = l.ledger.iter().map(|r| (r.key.as_str(), r)).collect();
    let anchors: HashSet<&str> = l.anchors.iter().map(|a| a.key.as_str()).collect();
    let first = l
        .ledger
        .iter()
        .filter_map(|r| key_time(&r.key))
        .min()
        .map(|t| t.date_naive());
    let last = start.unwrap_or(horizon).date_naive();
    let mut folders: BTreeSet<String> = BTreeSet::new();
    if let Some(first) = first {
        // A digest's folder is its end date; a log's, its name's.
        folders.extend(day_folders(&location.digest_folder(), first, last));
        folders.extend(day_folders(&location.log_folder(), first, last));
    }
    for r in &l.ledger {
        if let Some((parent, _)) = r.key.rsplit_once('/') {
            folders.insert(format!("{parent}/"));
        }
    }
    let listings = crate::verify::bounded(jobs, folders.iter().cloned(), |folder| async move {
        let listed = store.list(&folder).await;
        (folder, listed)
    })
    .await;
    let mut seen: HashMap<String, crate::store::ObjectInfo> = HashMap::new();
    let mut unlistable: Vec<String> = Vec::new();
    for (folder, listed) in listings {
        match listed {
            Ok(listing) => {
                for o in listing.objects {
                    if covered(&o.key) {
                        seen.insert(o.key.clone(), o);
                    }
                }
            }
            Err(e) => {
                out.unverified.push(Unverified {
                    key: folder.clone(),
                    cause: format!(
                        "could not be listed again to compare with what was verified before: {}",
                        e.cause()
                    ),
                });
                unlistable.push(folder);
            }
        }
    }
    out.relisted += seen.len();
    let in_unlistable = |key: &str| {
        unlistable
            .iter()
            .any(|f| key.starts_with(f.as_str()) && !key[f.len()..].contains('/'))
    };
    // Rows to read again, and why.
    let mut rereads: Vec<(&Row, Reread)> = Vec::new();
    for row in &l.ledger {
        if !covered(&row.key) || in_unlistable(&row.key) {
            continue;
        }
        out.compared += 1;
        if anchors.contains(row.key.as_str()) {
            rereads.push((row, Reread::Changed(String::new())));
            continue;
        }
        match seen.get(&row.key) {
            None => rereads.push((row, Reread::Unlisted)),
            Some(now) => match differs(row, now) {
                Some(what) => rereads.push((row, Reread::Changed(what))),
                None if slice.is_some_and(|s| s.holds(&row.key)) => {
                    rereads.push((row, Reread::Slice))
                }
                None => {}
            },
        }
    }
    // Newcomers: objects in the covered hours that no run verified.
    let newcomers: Vec<String> = seen
        .keys()
        .filter(|k| !rows.contains_key(k.as_str()))
        .filter(|k| !proved.is_some_and(|p| p.judged.contains(k.as_str())))
        .cloned()
        .collect();
    let reads = crate::verify::bounded(jobs, rereads, |(row, why)| async move {
        let now = read_hash(store, &row.key, row.object == "digest").await;
        (row, why, now)
    })
    .await;
    for (row, why, now) in reads {
        match why {
            Reread::Slice => out.rehashed += 1,
            _ => out.reread += 1,
        }
        let kind = if row.object == "digest" {
            Kind::DigestChangedSinceVerified
        } else {
            Kind::LogChangedSinceVerified
        };
        let what = if anchors.contains(row.key.as_str()) {
            "the anchor of its chain, verified"
        } else {
            "verified"
        };
        let trail = parse_digest_key(&row.key).map(|n| n.scope.trail);
        let finding = |message: String| {
            let f = Finding::new(
                kind,
                strict,
                location,
                trail.as_deref(),
                Some(&row.key),
                message,
            )
            .expecting(&row.sha256);
            match key_time(&row.key) {
                Some(t) => f.at(t),
                None => f,
            }
        };
        let when = format_time(row.verified_at);
        match now {
            Ok(sha) if sha == row.sha256 => {
                if let Reread::Changed(what_changed) = &why {
                    if !what_changed.is_empty() {
                        out.findings.push(
                            Finding::new(
                                Kind::ObjectRewritten,
                                strict,
                                location,
                                trail.as_deref(),
                                Some(&row.key),
                                format!(
                                    "the object was rewritten since it was {what} at {when} ({what_changed}), with the same content"
                                ),
                            )
                            .hashes(&row.sha256, sha),
                        );
                    }
                }
            }
            Ok(sha) => {
                let mut f = finding(format!(
                    "the object's content changed since it was {what} at {when}: its SHA-256 differs from the one it verified with"
                ));
                f.actual = Some(sha);
                out.findings.push(f);
            }
            Err(Ok(damage)) => {
                let mut f = finding(format!(
                    "the object changed since it was {what} at {when}: it is no longer intact ({damage})"
                ));
                f.actual = Some("(not computable)".into());
                out.findings.push(f);
            }
            Err(Err(StoreError::NotFound { .. })) => {
                out.findings.push(finding(format!(
                    "the object is gone: it was {what} at {when}, and the bucket no longer has it"
                )));
            }
            Err(Err(e)) => out.unverified.push(Unverified {
                key: row.key.clone(),
                cause: format!(
                    "{what} at {when}; could not be read again to compare: {}",
                    e.cause()
                ),
            }),
        }
    }
    let confirms = crate::verify::bounded(jobs, newcomers, |key| async move {
        let digest = key.starts_with(&location.digest_folder());
        let now = read_hash(store, &key, digest).await;
        (key, digest, now)
    })
    .await;
    let verified_until = l.ledger.iter().map(|r| r.verified_at).max();
    let since = verified_until.map(format_time).unwrap_or_default();
    for (key, digest, now) in confirms {
        out.reread += 1;
        let sha = match now {
            Err(Err(StoreError::NotFound { .. })) => continue,
            Err(Err(e)) => {
                out.unverified.push(Unverified {
                    key,
                    cause: format!(
                        "appeared in hours verified at {since}; could not be read to confirm: {}",
                        e.cause()
                    ),
                });
                continue;
            }
            Ok(sha) => sha,
            Err(Ok(_)) => "(not computable)".to_string(),
        };
        let time = key_time(&key);
        let finding = if digest {
            let trail = parse_digest_key(&key).map(|n| n.scope.trail);
            Finding::new(
                Kind::DigestChangedSinceVerified,
                strict,
                location,
                trail.as_deref(),
                Some(&key),
                format!(
                    "a digest object appeared in hours already verified (at {since}): CloudTrail writes each digest once, within the hour"
                ),
            )
        } else {
            let pending = time.is_some_and(|t| horizon - t < UNLISTED_AFTER);
            let kind = if pending {
                Kind::LogPending
            } else {
                Kind::LogUnlisted
            };
            Finding::new(
                kind,
                strict,
                location,
                None,
                Some(&key),
                format!(
                    "a log object appeared in hours already verified (at {since}), and no digest lists it"
                ),
            )
        };
        let mut finding = match time {
            Some(t) => finding.at(t),
            None => finding,
        };
        finding.actual = Some(sha);
        out.findings.push(finding);
    }
    let troubled = out.findings[findings_before..]
        .iter()
        .any(|f| f.severity == crate::finding::Severity::Error);
    if troubled || out.unverified.len() > unverified_before {
        out.troubled.insert(location.clone());
    }
}

/// What differs between a ledger row and the object as listed now, if anything (only what both
/// sides know is compared).
fn differs(row: &Row, now: &crate::store::ObjectInfo) -> Option<String> {
    let mut what = Vec::new();
    let mut compare = |name: &str, was: Option<String>, is: Option<String>| {
        if let (Some(was), Some(is)) = (was, is) {
            if was != is {
                what.push(format!("{name} {was} → {is}"));
            }
        }
    };
    compare("ETag", row.etag.clone(), now.etag.clone());
    compare(
        "size",
        row.size.map(|n| n.to_string()),
        now.size.map(|n| n.to_string()),
    );
    compare("last-modified", row.modified.clone(), now.modified.clone());
    compare("version", row.version_id.clone(), now.version_id.clone());
    (!what.is_empty()).then(|| what.join(", "))
}

/// Reads an object again and hashes its inflated bytes: `Err(Ok(damage))` when it is not one
/// intact gzip member.
async fn read_hash<S: Store>(
    store: &S,
    key: &str,
    digest: bool,
) -> Result<String, Result<crate::hash::Damage, StoreError>> {
    if digest {
        let object = store.get(key).await.map_err(Err)?;
        let bytes = object.bytes;
        let (_, inflated) = crate::cpu::run(move || {
            crate::hash::inflate_to_vec(&bytes, crate::digest::MAX_DIGEST_BYTES)
        })
        .await
        .map_err(Ok)?;
        Ok(hex::encode(inflated.sha256))
    } else {
        match store.hash_gzip(key).await {
            Ok(inflated) => Ok(hex::encode(inflated.sha256)),
            Err(HashFailure::Damaged(d)) => Err(Ok(d)),
            Err(HashFailure::Store(e)) => Err(Err(e)),
        }
    }
}
