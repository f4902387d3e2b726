//! S3 object versions as evidence (`verify s3://… --versions`): for each digest or log whose
//! current version is damaged or gone, the versions of that key (one ListObjectVersions call
//! per damaged key, never a walk of the bucket) are checked, oldest first, against what
//! CloudTrail recorded. A log's original is the version whose content hashes to what its
//! digest recorded; a digest's original is the version CloudTrail's signature verifies. The
//! finding keeps its kind (the current evidence is damaged) and names the original. A recovered
//! digest is used as the digest: the run is made again reading that version, so that the chain
//! is proven through it and the logs it lists are checked. Day folders are listed with their
//! versions, so that a key CloudTrail wrote once but which holds several versions is seen
//! (`object_rewritten`) even when its current version verifies.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::digest::{verify_digest, DigestStatus};
use crate::finding::{Finding, Kind, VersionRef};
use crate::keys::KeyRing;
use crate::layout::{format_time, location_of, parse_digest_key};
use crate::report::Report;
use crate::store::local::VersionsRecord;
use crate::store::{LocalStore, Object, S3Store, Store, StoreError};
use crate::verify::{self, Options, VerifyError};

/// A key's versions and delete markers, each with its owner where the source names one.
pub type Versions = Vec<(VersionRef, Option<String>)>;

/// A source whose objects have versions: a versioned bucket, or a copy that kept what
/// `acquire --versions` found of them. Each call's future is boxed: a run awaits many in turn.
pub trait Versioned: Store + Clone + 'static {
    /// The versioning status (`Enabled`, `Suspended`), `None` if never enabled.
    fn versioning(&self) -> BoxFuture<'_, Result<Option<String>, String>>;
    /// The Object Lock configuration in words, `None` if there is none.
    fn object_lock(&self) -> BoxFuture<'_, Result<Option<String>, String>>;
    /// Every version and delete marker of exactly `key`, oldest first.
    fn versions_of<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Versions, StoreError>>;
    /// One version of `key`, read whole.
    fn get_version<'a>(
        &'a self,
        key: &'a str,
        version: &'a str,
    ) -> BoxFuture<'a, Result<Object, StoreError>>;
    /// The same source, listing folders with their versions.
    fn listing_versions(&self) -> Self;
    /// The same source, reading these versions in place of these keys.
    fn pinned(&self, pins: HashMap<String, String>) -> Self;
    /// Keys listed with more than one version, with their versions.
    fn history(&self) -> std::collections::BTreeMap<String, Vec<VersionRef>>;
}

type BoxFuture<'a, T> = futures::future::BoxFuture<'a, T>;

impl Versioned for S3Store {
    fn versioning(&self) -> BoxFuture<'_, Result<Option<String>, String>> {
        Box::pin(S3Store::versioning(self))
    }
    fn object_lock(&self) -> BoxFuture<'_, Result<Option<String>, String>> {
        Box::pin(S3Store::object_lock(self))
    }
    fn versions_of<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Versions, StoreError>> {
        Box::pin(S3Store::versions_of(self, key))
    }
    fn get_version<'a>(
        &'a self,
        key: &'a str,
        version: &'a str,
    ) -> BoxFuture<'a, Result<Object, StoreError>> {
        Box::pin(async move {
            S3Store::get_version(self, key, version)
                .await
                .map(|(o, _)| o)
        })
    }
    fn listing_versions(&self) -> Self {
        self.clone().with_version_listing()
    }
    fn pinned(&self, pins: HashMap<String, String>) -> Self {
        self.clone().with_version_listing().with_pins(pins)
    }
    fn history(&self) -> std::collections::BTreeMap<String, Vec<VersionRef>> {
        S3Store::history(self)
    }
}

/// A copy answers from what `acquire --versions` recorded in its manifest, and reads the
/// originals it copied.
impl Versioned for LocalStore {
    fn versioning(&self) -> BoxFuture<'_, Result<Option<String>, String>> {
        let recorded = self.versions_record().map(|r| r.versioning.clone());
        Box::pin(async move { recorded? })
    }
    fn object_lock(&self) -> BoxFuture<'_, Result<Option<String>, String>> {
        let recorded = self.versions_record().map(|r| r.object_lock.clone());
        Box::pin(async move { recorded? })
    }
    fn versions_of<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Versions, StoreError>> {
        let found = match self.versions_record() {
            Err(why) => Err(StoreError::unreadable(key, why)),
            Ok(r) => r.keys.get(key).cloned().ok_or_else(|| {
                StoreError::unreadable(key, "the copy recorded no versions of this key")
            }),
        };
        Box::pin(async move { found })
    }
    fn get_version<'a>(
        &'a self,
        key: &'a str,
        version: &'a str,
    ) -> BoxFuture<'a, Result<Object, StoreError>> {
        let read = self.get_version_now(key, version);
        Box::pin(async move { read })
    }
    fn listing_versions(&self) -> Self {
        self.clone()
    }
    fn pinned(&self, pins: HashMap<String, String>) -> Self {
        self.clone().with_pins(pins)
    }
    fn history(&self) -> std::collections::BTreeMap<String, Vec<VersionRef>> {
        self.versions_record()
            .map(|r| r.history.clone())
            .unwrap_or_default()
    }
}

/// What the original of a damaged object is, if a version holds it.
enum Recovery {
    Found(VersionRef),
    /// No version matched: how many were checked.
    None(usize),
}

/// The delete marker that hides a key, if its current version is one.
fn deleted(versions: &Versions) -> Option<&(VersionRef, Option<String>)> {
    versions.last().filter(|(v, _)| v.delete_marker)
}

/// Verifies `store` as [`verify::verify`] does, with versions as evidence; returns the report
/// and what was learnt of the versions (what `acquire --versions` keeps).
pub async fn verify_with_versions<S: Versioned>(
    store: S,
    keys: Arc<KeyRing>,
    opts: Options,
) -> Result<(Report, VersionsRecord), VerifyError> {
    let bucket = store.bucket().to_string();
    let mut notes = Vec::new();
    let versioning = store.versioning().await;
    let object_lock = store.object_lock().await;
    let mut record = VersionsRecord {
        versioning: versioning.clone(),
        object_lock: object_lock.clone(),
        keys: Default::default(),
        history: Default::default(),
        copied: Vec::new(),
    };
    let status = match versioning {
        Ok(status) => status,
        Err(cause) => {
            let mut report = run(&store, keys, opts).await?;
            report.notes.push(format!(
                "--versions: the versioning of bucket {bucket} could not be read ({cause}): no version was examined"
            ));
            return Ok((report, record));
        }
    };
    match object_lock {
        Ok(Some(lock)) => notes.push(format!("bucket {bucket}: {lock}")),
        Ok(None) => notes.push(format!(
            "bucket {bucket} has no Object Lock configuration: whoever may delete its objects' versions may erase the originals too"
        )),
        Err(cause) => notes.push(format!(
            "bucket {bucket}: its Object Lock configuration could not be read ({cause})"
        )),
    }
    let Some(status) = status else {
        let mut report = run(&store, keys, opts).await?;
        report.notes.push(format!(
            "versioning has never been enabled on bucket {bucket}: an overwritten or deleted object cannot be recovered, and --versions found nothing to examine"
        ));
        report.notes.extend(notes);
        return Ok((report, record));
    };
    if status == "Suspended" {
        notes.push(format!(
            "versioning suspended on bucket {bucket}: tampering from the time it was suspended would not be recoverable"
        ));
    } else {
        notes.push(format!("versioning is {status} on bucket {bucket}"));
    }

    let listed = store.listing_versions();
    let first = run(&listed, keys.clone(), opts.clone()).await?;

    // Digests: a version CloudTrail's signature verifies is the original.
    let mut pins = HashMap::new();
    let mut recovered: Vec<Finding> = Vec::new();
    let mut digest_findings = Vec::new();
    for f in &first.findings {
        let Some(key) = f.key.as_deref().filter(|_| is_digest_damage(f.kind)) else {
            continue;
        };
        let Some(name) = parse_digest_key(key) else {
            continue;
        };
        let mut f = f.clone();
        match store.versions_of(key).await {
            Err(e) => f.message.push_str(&format!(
                "; its versions could not be listed: {}",
                e.cause()
            )),
            Ok(versions) => {
                record.keys.insert(key.to_string(), versions.clone());
                mark_deleted(&mut f, &versions);
                let mut checked = 0;
                let mut found = None;
                for (v, _) in versions.iter().filter(|(v, _)| !v.delete_marker) {
                    checked += 1;
                    let Ok(object) = store.get_version(key, &v.version_id).await else {
                        continue;
                    };
                    let check = verify_digest(key, &name, &bucket, &object, &keys);
                    if check.status == DigestStatus::Valid {
                        found = Some(v.clone());
                        break;
                    }
                }
                match found {
                    Some(v) => {
                        pins.insert(key.to_string(), v.version_id.clone());
                        note_recovery(&mut f, Recovery::Found(v));
                        recovered.push(f);
                        continue;
                    }
                    None => note_recovery(&mut f, Recovery::None(checked)),
                }
            }
        }
        digest_findings.push(f);
    }

    // With the originals of digests read in their place, the run is made again.
    let (mut report, listed) = if pins.is_empty() {
        (first, listed)
    } else {
        let pinned = store.pinned(pins.clone());
        let again = run(&pinned, keys.clone(), opts.clone()).await?;
        (again, pinned)
    };
    let recovered = held_recoveries(recovered, &mut report);
    // A recovered digest's own finding stays (its current version is damaged or gone), and so
    // do its counts: in the run made again it counted as valid.
    for f in &recovered {
        for summary in report.scopes.iter_mut() {
            let same = summary.account == f.account
                && summary.region == f.region
                && Some(&summary.trail) == f.trail.as_ref()
                && summary.prefix == f.prefix
                && summary.org_id == f.org_id;
            if same && summary.digests.valid > 0 {
                summary.digests.valid -= 1;
                match f.kind {
                    Kind::DigestMissing => summary.digests.missing += 1,
                    _ => summary.digests.invalid += 1,
                }
            }
        }
    }
    let by_key: HashMap<&str, &Finding> = digest_findings
        .iter()
        .filter_map(|f| Some((f.key.as_deref()?, f)))
        .collect();
    for f in report.findings.iter_mut() {
        if let Some(with) = f.key.as_deref().and_then(|k| by_key.get(k)) {
            if with.kind == f.kind {
                *f = (*with).clone();
            }
        }
    }
    report.findings.extend(recovered);

    // Logs: a version whose content hashes to what the digest recorded is the original.
    for f in report.findings.iter_mut() {
        if !matches!(
            f.kind,
            Kind::LogModified | Kind::LogCorrupt | Kind::LogMissing
        ) {
            continue;
        }
        let (Some(key), Some(expected)) = (f.key.clone(), f.expected.clone()) else {
            continue;
        };
        match store.versions_of(&key).await {
            Err(e) => f.message.push_str(&format!(
                "; its versions could not be listed: {}",
                e.cause()
            )),
            Ok(versions) => {
                record.keys.insert(key.clone(), versions.clone());
                mark_deleted(f, &versions);
                let mut checked = 0;
                let mut found = None;
                for (v, _) in versions.iter().filter(|(v, _)| !v.delete_marker) {
                    checked += 1;
                    let Ok(object) = store.get_version(&key, &v.version_id).await else {
                        continue;
                    };
                    let hashed = crate::hash::hash_gzip(std::io::Cursor::new(object.bytes));
                    if hashed.is_ok_and(|i| hex::encode(i.sha256) == expected) {
                        found = Some(v.clone());
                        break;
                    }
                }
                note_recovery(
                    f,
                    match found {
                        Some(v) => Recovery::Found(v),
                        None => Recovery::None(checked),
                    },
                );
            }
        }
    }

    // Keys CloudTrail wrote once that hold more than one version, though their current one
    // verifies.
    let judged: HashSet<String> = report
        .findings
        .iter()
        .filter_map(|f| f.key.clone())
        .collect();
    let unverified: HashSet<&str> = report.unverified.iter().map(|u| u.key.as_str()).collect();
    let mut rewritten = Vec::new();
    record.history = listed.history();
    for (key, versions) in record.history.clone() {
        if judged.contains(&key) || unverified.contains(key.as_str()) {
            continue;
        }
        if versions.last().is_some_and(|v| v.delete_marker) || pins.contains_key(&key) {
            continue;
        }
        let Some(location) = location_of(&key) else {
            continue;
        };
        let timeline: Vec<String> = versions
            .iter()
            .map(|v| {
                format!(
                    "{}{} at {}",
                    if v.delete_marker {
                        "delete marker "
                    } else {
                        ""
                    },
                    v.version_id,
                    v.last_modified
                        .map(format_time)
                        .unwrap_or_else(|| "?".into())
                )
            })
            .collect();
        let mut f = Finding::new(
            Kind::ObjectRewritten,
            opts.strict,
            &location,
            None,
            Some(&key),
            format!(
                "the object has {} versions, though CloudTrail writes each key once: it was written again ({}); its current version verifies",
                versions.len(),
                timeline.join(", ")
            ),
        );
        if let Some(t) = versions.last().and_then(|v| v.last_modified) {
            f = f.at(t);
        }
        f.versions = versions;
        rewritten.push(f);
    }
    report.findings.extend(rewritten);
    report
        .findings
        .sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    report.notes.extend(notes);
    report.exit_code = report.decide_exit_code();
    Ok((report, record))
}

/// A verification on the heap: this run holds two, and their futures are large.
fn run<'a, S: Store>(
    store: &'a S,
    keys: Arc<KeyRing>,
    opts: Options,
) -> futures::future::BoxFuture<'a, Result<Report, VerifyError>> {
    Box::pin(verify::verify(store, keys, opts))
}

/// Names the delete marker that hides the key, if one does.
fn mark_deleted(f: &mut Finding, versions: &Versions) {
    if let Some((marker, owner)) = deleted(versions) {
        f.deleted_at = marker.last_modified;
        f.deleted_by = owner.clone();
        f.message.push_str(&format!(
            "; it was deleted at {}{}",
            marker
                .last_modified
                .map(format_time)
                .unwrap_or_else(|| "an unknown time".into()),
            owner
                .as_ref()
                .map(|o| format!(" by {o}"))
                .unwrap_or_default()
        ));
    }
}

/// The kinds of damage a digest's versions may make good.
fn is_digest_damage(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::DigestMissing
            | Kind::DigestMalformed
            | Kind::DigestSignatureInvalid
            | Kind::DigestKeyUnknown
            | Kind::DigestRelocated
    )
}

/// The recoveries the run made again bears out. That run read each pinned version anew: one it
/// did not find valid (an offline copy's version file changed between the two reads, or S3's
/// `null` version overwritten meanwhile) is not called recoverable. Its finding from the first
/// run stands, with a note, in place of what the run made again said of a version that is not
/// the current one.
fn held_recoveries(recovered: Vec<Finding>, report: &mut Report) -> Vec<Finding> {
    let failed: HashSet<String> = recovered
        .iter()
        .filter_map(|f| f.key.clone())
        .filter(|k| {
            report
                .findings
                .iter()
                .any(|g| g.key.as_ref() == Some(k) && is_digest_damage(g.kind))
                || report.unverified.iter().any(|u| &u.key == k)
        })
        .collect();
    if failed.is_empty() {
        return recovered;
    }
    let of_failed = |key: Option<&String>| key.is_some_and(|k| failed.contains(k));
    report
        .findings
        .retain(|g| !(of_failed(g.key.as_ref()) && is_digest_damage(g.kind)));
    report.unverified.retain(|u| !failed.contains(&u.key));
    let mut held = Vec::new();
    for mut f in recovered {
        if !of_failed(f.key.as_ref()) {
            held.push(f);
            continue;
        }
        if let Some(v) = f.recoverable_version.take() {
            f.message.push_str(&format!(
                "; but version {} did not verify when it was read again, and is not taken for the original",
                v.version_id
            ));
        }
        report.findings.push(f);
    }
    held
}

fn note_recovery(f: &mut Finding, recovery: Recovery) {
    match recovery {
        Recovery::Found(v) => {
            f.message.push_str(&format!(
                "; the original is recoverable: version {} (last modified {})",
                v.version_id,
                v.last_modified
                    .map(format_time)
                    .unwrap_or_else(|| "?".into())
            ));
            f.recoverable_version = Some(v);
        }
        Recovery::None(n) => {
            f.message.push_str(&format!(
                "; none of its {n} version(s) is what CloudTrail delivered"
            ));
            f.versions_checked = Some(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(kind: Kind, key: &str) -> Finding {
        let location = location_of(key).expect("a CloudTrail key");
        Finding::new(
            kind,
            false,
            &location,
            Some("management"),
            Some(key),
            "damaged",
        )
    }

    /// A version that verified when it was found but not when the run made again read it (its
    /// file changed between the two reads) is not called recoverable.
    #[test]
    fn a_recovery_the_run_made_again_does_not_bear_out_is_withdrawn() {
        let held_key = "AWSLogs/111111111111/CloudTrail-Digest/us-east-1/2024/01/01/111111111111_CloudTrail-Digest_us-east-1_management_us-east-1_20240101T010000Z.json.gz";
        let changed_key = held_key.replace("T010000Z", "T020000Z");
        let mut recovered = Vec::new();
        for key in [held_key, changed_key.as_str()] {
            let mut f = finding(Kind::DigestSignatureInvalid, key);
            note_recovery(
                &mut f,
                Recovery::Found(VersionRef {
                    version_id: format!("v-{}", &key[key.len() - 16..]),
                    last_modified: None,
                    delete_marker: false,
                    etag: None,
                }),
            );
            recovered.push(f);
        }
        // The run made again found the changed key's pinned version malformed.
        let mut report = Report {
            findings: vec![finding(Kind::DigestMalformed, &changed_key)],
            ..Report::default()
        };
        let held = held_recoveries(recovered, &mut report);
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].key.as_deref(), Some(held_key));
        assert!(held[0].recoverable_version.is_some());
        // What stands for the changed key is its first finding, withdrawn as a recovery.
        assert_eq!(report.findings.len(), 1);
        let f = &report.findings[0];
        assert_eq!(f.key.as_deref(), Some(changed_key.as_str()));
        assert_eq!(f.kind, Kind::DigestSignatureInvalid);
        assert!(f.recoverable_version.is_none());
        assert!(
            f.message.contains("did not verify when it was read again"),
            "{}",
            f.message
        );
    }
}
