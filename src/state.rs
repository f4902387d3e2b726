//! Scheduled runs that carry proof forward. A state keeps, per chain, an **anchor** (the last
//! digest verified: CloudTrail-signed, so it verifies under the trusted keys or not at all) and,
//! per location, a **ledger** of every object verified (key, SHA-256, size, ETag,
//! last-modified, version id). The next run verifies only what lies after the anchors, with the
//! anchors joining the chains as verified predecessors; re-lists what was covered and compares
//! it with the ledger (a verified object that is gone or changed, or a newcomer, is reported,
//! each confirmed by a read first); and leaves a new state in which a location's anchors move
//! only if everything up to them verified completely.
//!
//! A state is tamper-evident: it records the SHA-256 of the state before it and of the run's
//! report, its own SHA-256 over its canonical JSON, and, with a state key, an Ed25519 signature
//! over the same bytes. A state whose hash or signature fails is refused.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::custody::SigningKey;
use crate::digest::{DigestBody, DigestCheck, DigestStatus, PreviousDigest};
use crate::finding::{Finding, Kind, Unverified};
use crate::keys::KeyRing;
use crate::layout::{format_time, parse_digest_key, parse_log_key, Location, Timestamp};
use crate::report::StateRun;
use crate::store::{HashFailure, Store, StoreError};
use crate::verify::{LocationProof, Resume, ResumeAt, UNLISTED_AFTER};

/// What a state file says it is.
pub const FORMAT: &str = "trailproof-state/1";

/// The most a state may hold: about 250 bytes per object verified.
pub const MAX_STATE_BYTES: u64 = 1 << 30;

/// A state as written: the state, its SHA-256, and its signature if a key signed it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sealed {
    state: State,
    sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signature: Option<Seal>,
}

/// An Ed25519 signature over the state's canonical JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Seal {
    algorithm: String,
    /// The fingerprint of the signing key's public half.
    key: String,
    value: String,
}

/// What earlier runs proved of one bucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub format: String,
    pub tool_version: String,
    pub bucket: String,
    /// 1 for the first run's state, then one more each run.
    pub sequence: u64,
    /// SHA-256 of the state this one follows.
    pub previous: Option<String>,
    pub written_at: Timestamp,
    /// When the bucket was observed by the run that wrote it.
    pub horizon: Timestamp,
    /// SHA-256 of the run's JSON report.
    pub report_sha256: String,
    pub locations: Vec<LocationState>,
}

/// One location's anchors and ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocationState {
    pub location: Location,
    pub anchors: Vec<Anchor>,
    pub ledger: Vec<Row>,
}

/// The last digest of a chain that verified, as CloudTrail signed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Anchor {
    pub key: String,
    pub account: String,
    pub start: Timestamp,
    pub end: Timestamp,
    /// `digestEndTime` exactly as the digest gave it: the first line of what is signed.
    pub end_text: String,
    pub fingerprint: String,
    pub algorithm: String,
    /// SHA-256 of the digest's inflated bytes.
    pub sha256: String,
    pub signature: String,
    pub previous: Option<PreviousDigest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    pub verified_at: Timestamp,
}

/// One object verified: what it verified with, and what its listing said of it then.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Row {
    pub key: String,
    /// `digest` or `log`.
    pub object: String,
    /// SHA-256 of the inflated bytes.
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    pub verified_at: Timestamp,
}

/// Why a state cannot be used. Each names the state.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The state is not what a run wrote, or not for this bucket or key: refused (exit 2).
    #[error("{0}")]
    Refused(String),
    /// The state could not be read, locked or written.
    #[error("{0}")]
    Io(String),
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn canonical(state: &State) -> Vec<u8> {
    serde_json::to_vec(state).expect("state JSON")
}

impl State {
    /// Opens a state as written, checking its format, its own hash and its signature: with a
    /// key, it must be signed by that key; without one, it must not be signed at all (a
    /// signature cannot be checked, and a signed state is not turned into an unsigned one).
    pub fn open(bytes: &[u8], origin: &str, key: Option<&SigningKey>) -> Result<State, StateError> {
        let refused = |why: String| StateError::Refused(format!("{origin}: {why}"));
        let sealed: Sealed = serde_json::from_slice(bytes)
            .map_err(|e| refused(format!("not a trailproof state: {e}")))?;
        if sealed.state.format != FORMAT {
            return Err(refused(format!(
                "a state of format {:?}, not {FORMAT:?}",
                sealed.state.format
            )));
        }
        let body = canonical(&sealed.state);
        if sha256_hex(&body) != sealed.sha256 {
            return Err(refused(
                "the state was changed after it was written: its SHA-256 does not match its content (give --state-reset to start over, which is reported)".into(),
            ));
        }
        match (&sealed.signature, key) {
            (Some(seal), Some(key)) => {
                if seal.algorithm != "ed25519" || !key.signed(&body, &seal.value) {
                    return Err(refused(format!(
                        "the state's signature (by key {}) does not verify under --state-key {}: it was signed by another key, or changed",
                        seal.key,
                        key.fingerprint()
                    )));
                }
            }
            (Some(seal), None) => {
                return Err(refused(format!(
                    "the state is signed (by key {}): give its --state-key to check it",
                    seal.key
                )))
            }
            (None, Some(key)) => {
                return Err(refused(format!(
                    "the state is not signed, but --state-key {} is given: a state whose signature was removed is refused",
                    key.fingerprint()
                )))
            }
            (None, None) => {}
        }
        let s = &sealed.state;
        if s.sequence == 0 || (s.sequence == 1) != s.previous.is_none() {
            return Err(refused(format!(
                "its sequence number ({}) and its link to the state before it disagree",
                s.sequence
            )));
        }
        Ok(sealed.state)
    }

    /// The state's bytes as written, and its SHA-256.
    pub fn seal(&self, key: Option<&SigningKey>) -> (Vec<u8>, String) {
        let body = canonical(self);
        let sha256 = sha256_hex(&body);
        let sealed = Sealed {
            state: self.clone(),
            sha256: sha256.clone(),
            signature: key.map(|k| Seal {
                algorithm: "ed25519".into(),
                key: k.fingerprint(),
                value: k.sign(&body),
            }),
        };
        let mut bytes = serde_json::to_vec(&sealed).expect("state JSON");
        bytes.push(b'\n');
        (bytes, sha256)
    }

    /// Checks that every anchor is a digest CloudTrail signed, under the trusted keys, for this
    /// bucket: a state cannot make up the digests a chain resumes from.
    pub fn check_anchors(&self, bucket: &str, keys: &KeyRing) -> Result<(), StateError> {
        if self.bucket != bucket {
            return Err(StateError::Refused(format!(
                "the state is for bucket {}, not {bucket}",
                self.bucket
            )));
        }
        for l in &self.locations {
            // Every row is an object of its location's folders, named as CloudTrail names them:
            // the re-check lists the folders the rows are in, and nothing else.
            let (digests, logs) = (l.location.digest_folder(), l.location.log_folder());
            for row in &l.ledger {
                let fits = match row.object.as_str() {
                    "digest" => {
                        row.key.starts_with(&digests)
                            && parse_digest_key(&row.key)
                                .is_some_and(|n| n.scope.location == l.location)
                    }
                    "log" => {
                        row.key.starts_with(&logs)
                            && parse_log_key(&row.key).is_some_and(|n| n.location == l.location)
                    }
                    _ => false,
                };
                if !fits {
                    return Err(StateError::Refused(format!(
                        "the state's ledger row {:?} ({}) is not an object of its location {}{}",
                        row.key,
                        row.object,
                        l.location.account_root(),
                        l.location.region
                    )));
                }
            }
            for anchor in &l.anchors {
                let check = anchor.as_check(bucket).ok_or_else(|| {
                    StateError::Refused(format!(
                        "the state's anchor {} is not a digest key of its location",
                        anchor.key
                    ))
                })?;
                let body = check.body.as_ref().expect("an anchor has a body");
                let status = if check.name.scope.location != l.location
                    || check.name.end != anchor.end
                    || crate::parse_rfc3339(&anchor.end_text).ok() != Some(anchor.end)
                    || anchor.account != l.location.account
                {
                    DigestStatus::Unverified("its key, end time and account disagree".into())
                } else {
                    crate::digest::recorded_status(
                        body,
                        &anchor.signature,
                        &anchor.sha256,
                        keys,
                        &l.location,
                    )
                };
                let message = match status {
                    DigestStatus::Valid => continue,
                    DigestStatus::Missing => "not found".to_string(),
                    DigestStatus::Failed { message, .. } | DigestStatus::Unverified(message) => {
                        message
                    }
                };
                return Err(StateError::Refused(format!(
                    "the state's anchor {} does not verify under the trusted keys: {message} (a state whose anchors are not CloudTrail's is refused; give --state-reset to start over)",
                    anchor.key
                )));
            }
        }
        Ok(())
    }

    /// Where each location resumes: after the earliest of its anchors.
    pub fn resume(&self) -> Resume {
        let mut locations = HashMap::new();
        for l in &self.locations {
            let Some(first) = l.anchors.iter().map(|a| a.end).min() else {
                continue;
            };
            // The location resumes after its earliest anchor: that chain's anchor joins it
            // from the record; a later anchor of another trail is read again with the digests
            // around it (at most the hour or so between them), so that the logs it lists are
            // hashed again too.
            let start = first + Duration::seconds(1);
            let anchors = l
                .anchors
                .iter()
                .filter(|a| a.end < start)
                .filter_map(|a| a.as_check(&self.bucket))
                .collect();
            locations.insert(l.location.clone(), ResumeAt { start, anchors });
        }
        Resume { locations }
    }
}

impl Anchor {
    /// The anchor as a digest check, from the state's record: it joins its chain as a verified
    /// predecessor.
    fn as_check(&self, bucket: &str) -> Option<DigestCheck> {
        let name = parse_digest_key(&self.key)?;
        Some(DigestCheck {
            key: self.key.clone(),
            name,
            status: DigestStatus::Valid,
            body: Some(DigestBody {
                account: self.account.clone(),
                start: self.start,
                end: self.end,
                end_text: self.end_text.clone(),
                bucket: bucket.to_string(),
                key: self.key.clone(),
                fingerprint: self.fingerprint.clone(),
                algorithm: self.algorithm.clone(),
                previous: self.previous.clone(),
                logs: Vec::new(),
            }),
            sha256: Some(self.sha256.clone()),
            signature: Some(self.signature.clone()),
        })
    }
}

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

/// The state a run leaves: each location that verified completely (in this run and in the
/// re-check) moves its anchors to its chains' last valid digests and adds what it proved to
/// its ledger; every other location keeps what it had.
pub fn advance(
    prior: Option<&State>,
    prior_sha256: Option<&str>,
    bucket: &str,
    proof: BTreeMap<Location, LocationProof>,
    troubled: &BTreeSet<Location>,
    horizon: Timestamp,
    report_sha256: String,
) -> State {
    let now = chrono::Utc::now();
    let mut locations: BTreeMap<Location, LocationState> = prior
        .map(|p| {
            p.locations
                .iter()
                .map(|l| (l.location.clone(), l.clone()))
                .collect()
        })
        .unwrap_or_default();
    for (location, proved) in proof {
        if !proved.complete || troubled.contains(&location) {
            continue;
        }
        let entry = locations
            .entry(location.clone())
            .or_insert_with(|| LocationState {
                location: location.clone(),
                anchors: Vec::new(),
                ledger: Vec::new(),
            });
        let mut anchors: BTreeMap<String, Anchor> = entry
            .anchors
            .drain(..)
            .filter_map(|a| Some((chain_of(&a.key)?, a)))
            .collect();
        for check in &proved.digests {
            if check.name.backfill {
                continue;
            }
            let (Some(body), Some(sha256), Some(signature)) =
                (&check.body, &check.sha256, &check.signature)
            else {
                continue;
            };
            let Some(chain) = chain_of(&check.key) else {
                continue;
            };
            if anchors.get(&chain).is_some_and(|a| a.end >= check.name.end) {
                continue;
            }
            let listed = proved
                .objects
                .get(&check.key)
                .and_then(|p| p.listed.as_ref());
            anchors.insert(
                chain,
                Anchor {
                    key: check.key.clone(),
                    account: body.account.clone(),
                    start: body.start,
                    end: body.end,
                    end_text: body.end_text.clone(),
                    fingerprint: body.fingerprint.clone(),
                    algorithm: body.algorithm.clone(),
                    sha256: sha256.clone(),
                    signature: signature.clone(),
                    previous: body.previous.clone(),
                    etag: listed.and_then(|l| l.etag.clone()),
                    version_id: listed.and_then(|l| l.version_id.clone()),
                    verified_at: now,
                },
            );
        }
        entry.anchors = anchors.into_values().collect();
        let mut ledger: BTreeMap<String, Row> =
            entry.ledger.drain(..).map(|r| (r.key.clone(), r)).collect();
        for (key, p) in proved.objects {
            let listed = p.listed.unwrap_or_default();
            ledger.insert(
                key.clone(),
                Row {
                    key,
                    object: p.object.to_string(),
                    sha256: p.sha256,
                    size: listed.size,
                    etag: listed.etag,
                    modified: listed.modified,
                    version_id: listed.version_id,
                    verified_at: now,
                },
            );
        }
        entry.ledger = ledger.into_values().collect();
    }
    State {
        format: FORMAT.into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        bucket: bucket.to_string(),
        sequence: prior.map_or(1, |p| p.sequence + 1),
        previous: prior_sha256.map(str::to_string),
        written_at: now,
        horizon,
        report_sha256,
        locations: locations
            .into_values()
            .filter(|l| !l.anchors.is_empty() || !l.ledger.is_empty())
            .collect(),
    }
}

/// The chain a digest belongs to: its folder's trail and home region.
fn chain_of(key: &str) -> Option<String> {
    let name = parse_digest_key(key)?;
    Some(format!(
        "{}|{}|{}",
        name.scope.location.account_root() + &name.scope.location.region,
        name.scope.trail,
        name.scope.home_region
    ))
}

/// Where a state is kept: a file, or an object in S3 (`s3://bucket/key`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    File(PathBuf),
    S3 { bucket: String, key: String },
}

impl Place {
    pub fn parse(text: &str) -> Result<Place, String> {
        match text.strip_prefix("s3://") {
            Some(rest) => match rest.split_once('/') {
                Some((bucket, key))
                    if !bucket.is_empty() && !key.is_empty() && !key.ends_with('/') =>
                {
                    Ok(Place::S3 {
                        bucket: bucket.into(),
                        key: key.into(),
                    })
                }
                _ => Err(format!(
                    "--state {text}: an S3 state is s3://bucket/key, naming an object"
                )),
            },
            None => Ok(Place::File(PathBuf::from(text))),
        }
    }
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::File(p) => write!(f, "{}", p.display()),
            Place::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
        }
    }
}

/// A state file held for one run: locked (a `.lock` file beside it, made exclusively) from the
/// moment it is read until the new state replaces it.
pub struct FileHold {
    path: PathBuf,
    lock: PathBuf,
}

impl FileHold {
    /// Locks the state at `path` and reads it, if there is one.
    pub fn take(path: &Path) -> Result<(FileHold, Option<Vec<u8>>), StateError> {
        let lock = lock_path(path);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => StateError::Refused(format!(
                    "{}: the state is locked by another run ({} exists{}); if no run is going on, remove it",
                    path.display(),
                    lock.display(),
                    lock_holder(&lock)
                )),
                _ => StateError::Io(format!("cannot lock the state {}: {e}", lock.display())),
            })?;
        let _ = std::io::Write::write_all(
            &mut file,
            format!(
                "process {} since {}\n",
                std::process::id(),
                format_time(chrono::Utc::now())
            )
            .as_bytes(),
        );
        let hold = FileHold {
            path: path.to_path_buf(),
            lock,
        };
        let name = path.display().to_string();
        let bytes = match crate::store::local::open_regular(path, &name) {
            Ok(f) => Some(
                crate::store::local::read_file(&name, f, MAX_STATE_BYTES).map_err(|e| {
                    StateError::Io(format!("cannot read the state {name}: {}", e.cause()))
                })?,
            ),
            Err(StoreError::NotFound { .. }) => None,
            Err(e) => {
                return Err(StateError::Io(format!(
                    "cannot read the state {name}: {}",
                    e.cause()
                )))
            }
        };
        Ok((hold, bytes))
    }

    /// Replaces the state with `bytes` (written beside it, then renamed over it).
    pub fn write(&self, bytes: &[u8]) -> Result<(), StateError> {
        let tmp = beside(&self.path, ".tmp");
        let io = |e: std::io::Error| {
            StateError::Io(format!(
                "cannot write the state {}: {e}",
                self.path.display()
            ))
        };
        // A file left there (by a run that crashed, or planted as a link) is replaced, never
        // written through.
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
            _ => {}
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io)?;
        std::io::Write::write_all(&mut file, bytes)
            .and_then(|_| file.sync_all())
            .map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)
    }
}

impl Drop for FileHold {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.lock);
    }
}

fn lock_path(path: &Path) -> PathBuf {
    beside(path, ".lock")
}

/// `path` with `suffix` added to its file name.
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// What a lock file says of the run holding it: its first 200 bytes, if it is a regular file,
/// with anything unprintable escaped.
fn lock_holder(lock: &Path) -> String {
    let name = lock.display().to_string();
    let Ok(file) = crate::store::local::open_regular(lock, &name) else {
        return String::new();
    };
    let mut bytes = Vec::new();
    let _ = std::io::Read::read_to_end(&mut std::io::Read::take(file, 200), &mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    format!(": {}", text.trim().escape_debug())
}

/// Where a held state is kept, and how it is replaced.
enum Keeper {
    File(FileHold),
    S3 {
        store: crate::store::S3Store,
        key: String,
        etag: Option<String>,
    },
}

/// A run's state, held from before the run until the new state replaces it.
pub struct Held {
    pub place: Place,
    keeper: Keeper,
    /// The state found and its SHA-256; `None` for a first run or a reset.
    pub prior: Option<(State, String)>,
    key: Option<SigningKey>,
    pub reset: bool,
    pub slice: Option<Slice>,
    pub proof: std::sync::Arc<crate::verify::Proof>,
    /// Whether anything was found at the place (used or, with a reset, not).
    found: bool,
}

impl Held {
    /// Locks and reads the state file at `path`.
    pub fn file(
        path: &Path,
        key: Option<SigningKey>,
        reset: bool,
        slice: Option<Slice>,
    ) -> Result<Held, StateError> {
        let (hold, bytes) = FileHold::take(path)?;
        Held::new(
            Place::File(path.to_path_buf()),
            Keeper::File(hold),
            bytes,
            key,
            reset,
            slice,
        )
    }

    /// Reads the state object `key` of `store` (whose ETag the new state's write is
    /// conditional on).
    pub async fn s3(
        store: crate::store::S3Store,
        key: &str,
        signing: Option<SigningKey>,
        reset: bool,
        slice: Option<Slice>,
    ) -> Result<Held, StateError> {
        let place = Place::S3 {
            bucket: crate::store::Store::bucket(&store).to_string(),
            key: key.to_string(),
        };
        let (bytes, etag) = match store.get_up_to(key, MAX_STATE_BYTES).await {
            Ok((object, version)) => (Some(object.bytes), version.etag),
            Err(StoreError::NotFound { .. }) => (None, None),
            Err(e) => {
                return Err(StateError::Io(format!(
                    "cannot read the state {place}: {}",
                    e.cause()
                )))
            }
        };
        let keeper = Keeper::S3 {
            store,
            key: key.to_string(),
            etag,
        };
        Held::new(place, keeper, bytes, signing, reset, slice)
    }

    fn new(
        place: Place,
        keeper: Keeper,
        bytes: Option<Vec<u8>>,
        key: Option<SigningKey>,
        reset: bool,
        slice: Option<Slice>,
    ) -> Result<Held, StateError> {
        let found = bytes.is_some();
        let prior = match bytes {
            Some(bytes) if !reset => {
                let state = State::open(&bytes, &place.to_string(), key.as_ref())?;
                let sha256 = sha256_hex(&canonical(&state));
                Some((state, sha256))
            }
            _ => None,
        };
        Ok(Held {
            place,
            keeper,
            prior,
            key,
            reset,
            slice,
            proof: Default::default(),
            found,
        })
    }

    /// Has the run resume where the state's anchors are, and keep what it proves.
    pub fn prepare(&self, opts: &mut crate::verify::Options) {
        if let Some((state, _)) = &self.prior {
            opts.resume = Some(std::sync::Arc::new(state.resume()));
        }
        opts.proof = Some(self.proof.clone());
    }

    /// Refuses a state of another bucket, or one whose anchors do not verify under `keys`.
    pub fn check(&self, bucket: &str, keys: &KeyRing) -> Result<(), StateError> {
        match &self.prior {
            Some((state, _)) => state.check_anchors(bucket, keys),
            None => Ok(()),
        }
    }

    /// After the run: re-checks what the state covered, adds what it found to `report`, and
    /// records in the report what the run carried. What the run proved is taken for the new
    /// state.
    pub async fn recheck<S: Store>(
        &mut self,
        store: &S,
        report: &mut crate::report::Report,
        opts: &crate::verify::Options,
    ) -> (BTreeMap<Location, LocationProof>, BTreeSet<Location>) {
        let proof = self.proof.take();
        let found = match &self.prior {
            Some((state, _)) => recheck(store, state, &proof, opts, self.slice).await,
            None => Recheck::default(),
        };
        let anchors = self.prior.as_ref().map_or(0, |(s, _)| {
            s.locations.iter().map(|l| l.anchors.len()).sum()
        });
        let before: HashSet<&str> = self
            .prior
            .iter()
            .flat_map(|(s, _)| &s.locations)
            .flat_map(|l| &l.ledger)
            .map(|r| r.key.as_str())
            .collect();
        let digests_verified = proof
            .values()
            .flat_map(|p| &p.objects)
            .filter(|(key, o)| o.object == "digest" && !before.contains(key.as_str()))
            .count();
        report.findings.extend(found.findings);
        report
            .findings
            .sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        report.unverified.extend(found.unverified);
        report.unverified.sort();
        report.unverified.dedup();
        let mut held: Vec<String> = proof
            .iter()
            .filter(|(l, p)| !p.complete || found.troubled.contains(*l))
            .map(|(l, _)| l.account_root() + &l.region)
            .collect();
        held.extend(
            found
                .troubled
                .iter()
                .filter(|l| !proof.contains_key(*l))
                .map(|l| l.account_root() + &l.region),
        );
        if self.reset {
            report.notes.push(format!(
                "--state-reset: the state at {} was {}; this run verified everything and starts a new state",
                self.place,
                if self.found { "set aside unread" } else { "not there" }
            ));
        }
        report.state = Some(Box::new(StateRun {
            path: self.place.to_string(),
            previous: self.prior.as_ref().map(|(_, sha)| sha.clone()),
            sequence: self.prior.as_ref().map_or(1, |(s, _)| s.sequence + 1),
            reset: self.reset,
            anchors,
            digests_verified,
            objects_relisted: found.relisted,
            objects_compared: found.compared,
            objects_reread: found.reread,
            objects_rehashed: found.rehashed,
            reverify: self.slice.map(|s| s.to_string()),
            held,
        }));
        if report
            .state
            .as_ref()
            .is_some_and(|s| s.anchors > 0 && s.objects_compared > 0)
        {
            report.notes.retain(|n| !n.starts_with("nothing to verify"));
        }
        report.exit_code = report.decide_exit_code();
        (proof, found.troubled)
    }

    /// Writes the state the run leaves, given the run's final JSON report; its SHA-256.
    pub async fn write(
        self,
        bucket: &str,
        proof: BTreeMap<Location, LocationProof>,
        troubled: &BTreeSet<Location>,
        horizon: Timestamp,
        report_json: &[u8],
    ) -> Result<String, StateError> {
        let (prior, prior_sha) = match &self.prior {
            Some((s, sha)) => (Some(s), Some(sha.as_str())),
            None => (None, None),
        };
        let state = advance(
            prior,
            prior_sha,
            bucket,
            proof,
            troubled,
            horizon,
            sha256_hex(report_json),
        );
        let (bytes, sha256) = state.seal(self.key.as_ref());
        match &self.keeper {
            Keeper::File(hold) => hold.write(&bytes)?,
            Keeper::S3 { store, key, etag } => store
                .put_if(key, bytes, etag.as_deref())
                .await
                .map_err(StateError::Io)?,
        }
        Ok(sha256)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State {
        State {
            format: FORMAT.into(),
            tool_version: "0".into(),
            bucket: "b".into(),
            sequence: 2,
            previous: Some("ab".repeat(32)),
            written_at: crate::parse_rfc3339("2024-01-02T00:00:00Z").unwrap(),
            horizon: crate::parse_rfc3339("2024-01-02T00:00:00Z").unwrap(),
            report_sha256: "cd".repeat(32),
            locations: vec![],
        }
    }

    #[test]
    fn a_sealed_state_opens_and_any_edit_is_refused() {
        let (bytes, _) = state().seal(None);
        assert_eq!(State::open(&bytes, "s", None).unwrap(), state());
        let text = String::from_utf8(bytes).unwrap();
        let edited = text.replace("\"sequence\":2", "\"sequence\":3");
        assert!(matches!(
            State::open(edited.as_bytes(), "s", None),
            Err(StateError::Refused(_))
        ));
        let added = text.replacen("\"bucket\":\"b\"", "\"bucket\":\"b\",\"extra\":1", 1);
        assert!(matches!(
            State::open(added.as_bytes(), "s", None),
            Err(StateError::Refused(_))
        ));
    }

    #[test]
    fn a_slice_holds_each_key_in_exactly_one_of_n() {
        for key in ["a", "b/c", "AWSLogs/1/CloudTrail/x.json.gz"] {
            let n = (1..=5)
                .filter(|&i| Slice { index: i, total: 5 }.holds(key))
                .count();
            assert_eq!(n, 1, "{key}");
        }
    }
}
