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

mod keep;
mod recheck;
pub use keep::{FileHold, Held, Place};
pub use recheck::{recheck, Recheck, Slice};

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
