//! Evidence copies: `trailproof acquire s3://bucket DIR` copies what a verification reads — the
//! digests in range with their metadata, the logs they list, the predecessors they name — plus
//! every other object the listing showed in range (unlisted logs are evidence too), the public
//! keys CloudTrail returned, and a manifest describing each object (size, ETag, version id,
//! last-modified, SHA-256 of the stored bytes), the source, filters, time and caller.
//!
//! The copy is made by running the verification itself through a store that keeps what it reads,
//! so an offline `verify DIR` sees exactly what the online run saw. Objects that could not be
//! read are recorded as such in the manifest, and read back as unverified, never as missing.
//! Each object is written whole (temporary file, then rename) and journalled, so an interrupted
//! copy resumes without fetching again what is complete.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::aws::Session;
use crate::finding::Unverified;
use crate::keys::{self, KeyRing};
use crate::layout::{is_clean_key, location_of};
use crate::store::local::{
    open_regular, parse_metadata, read_file, Manifest, ManifestObject, MANIFEST, METADATA_SUFFIX,
};
use crate::store::{
    Body, Listing, Object, ObjectInfo, S3Store, Store, StoreError, MAX_METADATA_BYTES,
    MAX_OBJECT_BYTES,
};
use crate::verify::{self, Options};

/// The journal of objects already copied, beside the manifest while a copy is in progress.
pub const JOURNAL: &str = "trailproof-acquire.journal";
/// The public keys fetched for the copy, beside the manifest.
pub const KEYS_FILE: &str = "trailproof-keys.json";

#[derive(Debug, thiserror::Error)]
pub enum AcquireError {
    #[error("{path}: {cause}")]
    Folder { path: PathBuf, cause: String },
    #[error(transparent)]
    Verify(#[from] verify::VerifyError),
}

/// What a copy did.
#[derive(Debug)]
pub struct Summary {
    pub copied: usize,
    pub resumed: usize,
    pub bytes: u64,
    pub unreadable: Vec<Unverified>,
    pub keys: usize,
    pub notes: Vec<String>,
    /// What the copy could not record (keys, caller identity): also in the manifest.
    pub problems: Vec<String>,
}

/// A store that reads through S3 and keeps a copy of everything it reads.
struct Copier<'a> {
    source: &'a S3Store,
    dir: PathBuf,
    journal: Mutex<std::fs::File>,
    /// Objects copied by an earlier, interrupted run.
    done_before: HashMap<String, ManifestObject>,
    copied: Mutex<BTreeMap<String, ManifestObject>>,
    failed: Mutex<BTreeMap<String, String>>,
    resumed: Mutex<usize>,
    /// Every CloudTrail object the verification's listings showed.
    listed: Mutex<BTreeMap<String, ObjectInfo>>,
}

fn folder_error(path: &Path, e: impl std::fmt::Display) -> AcquireError {
    AcquireError::Folder {
        path: path.to_path_buf(),
        cause: e.to_string(),
    }
}

/// Writes `bytes` to `path` whole: a temporary file beside it, then a rename.
fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".partial");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

impl Copier<'_> {
    fn fail(&self, key: &str, cause: String) {
        self.failed
            .lock()
            .expect("lock")
            .insert(key.to_string(), cause);
    }

    /// An object copied by an earlier run, if its file is still whole.
    fn resume(&self, key: &str) -> Option<Object> {
        let record = self.done_before.get(key)?;
        let object = self.read_back(key, &record.sha256)?;
        self.copied
            .lock()
            .expect("lock")
            .insert(key.to_string(), record.clone());
        *self.resumed.lock().expect("lock") += 1;
        Some(object)
    }

    async fn fetch(&self, key: &str) -> Result<Object, StoreError> {
        if let Some(object) = self.copied_object(key) {
            return Ok(object);
        }
        if let Some(object) = self.resume(key) {
            return Ok(object);
        }
        if !is_clean_key(key) {
            let cause = "the key cannot be stored in a folder safely (`..`, absolute, or control characters)";
            self.fail(key, cause.into());
            return Err(StoreError::unreadable(key, cause));
        }
        let (object, version) = match self.source.get_versioned(key).await {
            Ok(found) => found,
            Err(e @ StoreError::NotFound { .. }) => return Err(e),
            Err(e) => {
                self.fail(key, e.cause());
                return Err(e);
            }
        };
        let stored = (|| -> std::io::Result<()> {
            if !object.metadata.is_empty() {
                let json = serde_json::to_vec_pretty(&object.metadata).expect("metadata JSON");
                write_whole(&self.dir.join(format!("{key}{METADATA_SUFFIX}")), &json)?;
            }
            write_whole(&self.dir.join(key), &object.bytes)
        })();
        if let Err(e) = stored {
            let cause = format!("could not be written to the copy: {e}");
            self.fail(key, cause.clone());
            return Err(StoreError::unreadable(key, cause));
        }
        let record = ManifestObject {
            key: key.to_string(),
            size: object.bytes.len() as u64,
            etag: version.etag,
            version_id: version.version_id,
            last_modified: version.last_modified,
            sha256: crate::hash::sha256_hex(&object.bytes),
        };
        {
            let mut journal = self.journal.lock().expect("lock");
            let line = serde_json::to_string(&record).expect("record JSON");
            // A journal line that fails to write only costs a re-download on resume.
            let _ = writeln!(journal, "{line}").and_then(|_| journal.flush());
        }
        self.copied
            .lock()
            .expect("lock")
            .insert(key.to_string(), record);
        Ok(object)
    }

    /// An object this run already copied (a predecessor read twice, say), from the copy.
    fn copied_object(&self, key: &str) -> Option<Object> {
        let sha256 = self.copied.lock().expect("lock").get(key)?.sha256.clone();
        self.read_back(key, &sha256)
    }

    /// An object already in the copy, read back as the folder holds it: only a regular file
    /// (no link, no FIFO), capped, and only if its bytes are the ones recorded when they were
    /// copied. Otherwise it is fetched from the source again: whoever can write the folder while
    /// it is made must not decide what the copy's own verification reads.
    fn read_back(&self, key: &str, sha256: &str) -> Option<Object> {
        let read = |name: &str, cap: u64| {
            open_regular(&self.dir.join(name), name).and_then(|f| read_file(name, f, cap))
        };
        let bytes = read(key, MAX_OBJECT_BYTES).ok()?;
        if crate::hash::sha256_hex(&bytes) != sha256 {
            return None;
        }
        let metadata = match read(&format!("{key}{METADATA_SUFFIX}"), MAX_METADATA_BYTES) {
            Ok(m) => parse_metadata(&m).ok()?,
            Err(StoreError::NotFound { .. }) => BTreeMap::new(),
            Err(_) => return None,
        };
        Some(Object {
            bytes,
            metadata,
            metadata_invalid: None,
        })
    }
}

impl Store for Copier<'_> {
    fn bucket(&self) -> &str {
        self.source.bucket()
    }

    fn source(&self) -> String {
        self.source.source()
    }

    fn root(&self) -> &str {
        self.source.root()
    }

    fn folder_markers(&self) -> usize {
        self.source.folder_markers()
    }

    async fn list(&self, prefix: &str) -> Result<Listing, StoreError> {
        let listed = self.source.list(prefix).await;
        match &listed {
            Ok(listing) => {
                let mut seen = self.listed.lock().expect("lock");
                for object in &listing.objects {
                    if location_of(&object.key).is_some() {
                        seen.insert(object.key.clone(), object.clone());
                    }
                }
            }
            Err(e) => self.fail(prefix, e.cause()),
        }
        listed
    }

    async fn get(&self, key: &str) -> Result<Object, StoreError> {
        self.fetch(key).await
    }

    async fn open(&self, key: &str) -> Result<Body, StoreError> {
        let object = self.fetch(key).await?;
        Ok(Box::new(std::io::Cursor::new(object.bytes)))
    }
}

/// What a copy is made with, beyond what it copies.
#[derive(Default)]
pub struct Custody<'k> {
    /// Keys the user gave (`--public-keys`): saved into the copy instead of fetching them.
    pub public_keys: Option<Vec<crate::keys::TrustedKey>>,
    /// Signs the manifest (`--sign-key`).
    pub sign_key: Option<&'k crate::custody::SigningKey>,
    /// `--versions`: the originals of damaged objects found among their versions are copied
    /// too, with what was learnt of the versions, so that `verify DIR --versions` offline
    /// reaches the same findings and recoveries.
    pub versions: bool,
}

/// Examines the source's versions as `verify --versions` does, and copies each original found
/// (under `trailproof-versions/`), returning what the copy keeps of them.
async fn copy_versions(
    source: &S3Store,
    dir: &Path,
    keys: Arc<KeyRing>,
    opts: Options,
) -> Result<crate::store::local::VersionsRecord, AcquireError> {
    let (report, mut record) = Box::pin(crate::versions::verify_with_versions(
        source.clone(),
        keys,
        opts,
    ))
    .await?;
    for f in &report.findings {
        let (Some(key), Some(version)) = (&f.key, &f.recoverable_version) else {
            continue;
        };
        let Ok((object, found)) = source.get_version(key, &version.version_id).await else {
            continue;
        };
        let stored = crate::store::local::version_key(key, &version.version_id);
        let written = (|| -> std::io::Result<()> {
            if !object.metadata.is_empty() {
                let json = serde_json::to_vec_pretty(&object.metadata).expect("metadata JSON");
                write_whole(&dir.join(format!("{stored}{METADATA_SUFFIX}")), &json)?;
            }
            write_whole(&dir.join(&stored), &object.bytes)
        })();
        written.map_err(|e| folder_error(&dir.join(&stored), e))?;
        record.copied.push(ManifestObject {
            key: stored,
            size: object.bytes.len() as u64,
            etag: found.etag,
            version_id: Some(version.version_id.clone()),
            last_modified: found.last_modified,
            sha256: crate::hash::sha256_hex(&object.bytes),
        });
    }
    Ok(record)
}

/// Copies what a verification of `source` with `opts` would read into `dir`.
pub async fn acquire(
    session: &Session,
    source: &S3Store,
    dir: &Path,
    opts: Options,
    custody: Custody<'_>,
) -> Result<Summary, AcquireError> {
    let started_at = chrono::Utc::now();
    std::fs::create_dir_all(dir).map_err(|e| folder_error(dir, e))?;
    let journal_path = dir.join(JOURNAL);
    let resuming = journal_path.exists();
    let occupied = std::fs::read_dir(dir)
        .map_err(|e| folder_error(dir, e))?
        .next()
        .is_some();
    if occupied && !resuming {
        return Err(folder_error(
            dir,
            "is not empty and holds no interrupted copy to resume; copy into a new folder",
        ));
    }
    let done_before: HashMap<String, ManifestObject> = std::fs::read_to_string(&journal_path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<ManifestObject>(l).ok())
        .map(|o| (o.key.clone(), o))
        .collect();
    let journal = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&journal_path)
        .map_err(|e| folder_error(&journal_path, e))?;
    let copier = Copier {
        source,
        dir: dir.to_path_buf(),
        journal: Mutex::new(journal),
        done_before,
        copied: Mutex::new(BTreeMap::new()),
        failed: Mutex::new(BTreeMap::new()),
        resumed: Mutex::new(0),
        listed: Mutex::new(BTreeMap::new()),
    };

    let plan = verify::plan(&copier, &opts).await?;
    let notes = Vec::new();
    let mut problems = Vec::new();
    let trusted = match custody.public_keys {
        Some(given) => given,
        None => {
            let mut fetched_keys = Vec::new();
            for fetched in session.fetch_keys_all(&plan.key_ranges(&opts)).await {
                match fetched {
                    Ok(found) => fetched_keys.extend(found),
                    Err(e) => problems.push(format!("public keys were not saved: {e}")),
                }
            }
            fetched_keys
        }
    };
    let (keys_file, keys_sha256) = if trusted.is_empty() {
        if problems.is_empty() {
            problems.push(
                "public keys were not saved: CloudTrail returned none for the range (pass --public-keys)"
                    .into(),
            );
        }
        (None, None)
    } else {
        let path = dir.join(KEYS_FILE);
        let json = keys::to_list_public_keys_json(&trusted);
        write_whole(&path, json.as_bytes()).map_err(|e| folder_error(&path, e))?;
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(json.as_bytes()));
        (Some(KEYS_FILE.to_string()), Some(sha))
    };
    let key_count = trusted.len();
    let ring = Arc::new(KeyRing::new(trusted));
    verify::execute(&copier, plan, ring.clone(), opts.clone()).await;

    // Whatever the verification did not read: unlisted logs, strays, archived objects.
    let rest: Vec<_> = {
        let copied = copier.copied.lock().expect("lock");
        let failed = copier.failed.lock().expect("lock");
        let listed = std::mem::take(&mut *copier.listed.lock().expect("lock"));
        listed
            .into_values()
            .filter(|o| !copied.contains_key(&o.key) && !failed.contains_key(&o.key))
            .collect()
    };
    let copier_ref = &copier;
    verify::bounded(opts.jobs, rest, |object| async move {
        match object.archived() {
            Some(cause) => copier_ref.fail(&object.key, cause),
            None => {
                let _ = copier_ref.fetch(&object.key).await;
            }
        }
    })
    .await;

    let versions = if custody.versions {
        Some(copy_versions(source, dir, ring, opts.clone()).await?)
    } else {
        None
    };

    let caller = match session.caller_identity().await {
        Ok(arn) => arn,
        Err(e) => {
            problems.push(format!("the caller identity was not recorded: {e}"));
            String::new()
        }
    };
    let objects: Vec<ManifestObject> = copier
        .copied
        .into_inner()
        .expect("lock")
        .into_values()
        .collect();
    let unreadable: Vec<Unverified> = copier
        .failed
        .into_inner()
        .expect("lock")
        .into_iter()
        .map(|(key, cause)| Unverified { key, cause })
        .collect();
    let summary = Summary {
        copied: objects.len(),
        resumed: *copier.resumed.lock().expect("lock"),
        bytes: objects.iter().map(|o| o.size).sum(),
        unreadable: unreadable.clone(),
        keys: key_count,
        notes,
        problems: problems.clone(),
    };
    let finished_at = chrono::Utc::now();
    let manifest = Manifest {
        bucket: source.bucket().to_string(),
        prefix: source.root().trim_end_matches('/').to_string(),
        acquired_at: Some(finished_at),
        acquisition: Some(crate::store::local::Acquisition {
            started_at,
            finished_at,
        }),
        range: Some(crate::store::local::ManifestRange {
            start: opts.start,
            end: opts.end,
        }),
        tool: format!("{} {}", env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION")),
        source: source.source(),
        caller,
        filters: Some(serde_json::json!({
            "accounts": opts.accounts,
            "regions": opts.regions,
            "trails": opts.trails,
            "start": opts.start,
            "end": opts.end,
        })),
        keys_file,
        keys_sha256,
        problems,
        objects,
        unreadable,
        versions,
    };
    let path = dir.join(MANIFEST);
    let json = serde_json::to_vec_pretty(&manifest).expect("manifest JSON");
    write_whole(&path, &json).map_err(|e| folder_error(&path, e))?;
    if let Some(key) = custody.sign_key {
        let sig = dir.join(crate::custody::SIGNATURE_FILE);
        write_whole(&sig, key.sign(&json).as_bytes()).map_err(|e| folder_error(&sig, e))?;
    }
    let _ = std::fs::remove_file(&journal_path);
    Ok(summary)
}
