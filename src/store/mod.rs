//! Where objects come from. One trait, three operations (list one folder level, read a small
//! object with its metadata, open an object as a stream), implemented by a local mirror of a
//! bucket. Only a definite "not found" becomes [`StoreError::NotFound`]; every other failure keeps
//! its cause and is reported as unverified, never as missing.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::BufRead;

pub mod inventory;
pub mod local;
pub mod s3;

pub use local::LocalStore;
pub use s3::S3Store;

/// An object seen in a listing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    /// The S3 storage class, where the listing gives one.
    pub storage_class: Option<String>,
    /// The ETag, where the listing gives one (S3, or a copy's manifest).
    pub etag: Option<String>,
    /// The size in bytes, where the listing gives it.
    pub size: Option<u64>,
    /// The last-modified time as the source states it, where the listing gives it.
    pub modified: Option<String>,
    /// The version id, where the listing knows it (a copy's manifest).
    pub version_id: Option<String>,
}

impl ObjectInfo {
    /// Why the object cannot be read without a restore, if it cannot.
    pub fn archived(&self) -> Option<String> {
        self.storage_class
            .as_deref()
            .filter(|c| s3::is_archived(c))
            .map(|c| format!("archived in the {c} storage class: restore it to verify it"))
    }
}

/// One level of a folder: its sub-folders (each ending in `/`) and its objects, in key order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listing {
    pub folders: Vec<String>,
    pub objects: Vec<ObjectInfo>,
}

/// Lists each pinned key (a version read in place of the current object) in its folder
/// `prefix`, deleted or not: a recovered original stands where its key is.
pub fn list_pinned(
    listing: &mut Listing,
    prefix: &str,
    pins: &std::collections::HashMap<String, String>,
) {
    for key in pins.keys() {
        let here = key
            .strip_prefix(prefix)
            .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'));
        if here && !listing.objects.iter().any(|o| o.key == *key) {
            listing.objects.push(ObjectInfo {
                key: key.clone(),
                ..ObjectInfo::default()
            });
        }
    }
    listing.objects.sort_by(|a, b| a.key.cmp(&b.key));
}

/// A small object read whole, with its user metadata (names lowercased, without `x-amz-meta-`).
#[derive(Clone, Debug, Default)]
pub struct Object {
    pub bytes: Vec<u8>,
    pub metadata: BTreeMap<String, String>,
    /// Why the object's metadata, though present, is not metadata S3 could have served (a
    /// mirror's sidecar that is not a JSON object of strings, or larger than S3 allows): a
    /// digest with it is as unsigned as one without.
    pub metadata_invalid: Option<String>,
}

/// An object opened for streaming.
pub type Body = Box<dyn BufRead + Send>;

/// Why an object or folder could not be read. Each names the key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A definite not-found: the only failure that means "missing".
    #[error("{key}: not found")]
    NotFound { key: String },
    /// Anything else: denied, refused, unreadable. `cause` is what a reader is told.
    #[error("{key}: {cause}")]
    Unreadable { key: String, cause: String },
    /// An object read whole that holds more than any object of its kind CloudTrail writes: it
    /// was read no further. Evidence of what it is, not a failure to read it.
    #[error("{key}: larger than {cap} bytes")]
    TooLarge { key: String, cap: u64 },
}

impl StoreError {
    pub fn unreadable(key: &str, cause: impl Into<String>) -> StoreError {
        StoreError::Unreadable {
            key: key.to_string(),
            cause: cause.into(),
        }
    }

    pub fn cause(&self) -> String {
        match self {
            StoreError::NotFound { .. } => "not found".to_string(),
            StoreError::Unreadable { cause, .. } => cause.clone(),
            StoreError::TooLarge { cap, .. } => {
                format!("larger than {cap} bytes, more than CloudTrail writes; not read further")
            }
        }
    }
}

/// The most an object read whole (a digest) may hold. CloudTrail's digests are kilobytes to a
/// few megabytes (one line per log file of an hour); a larger object is not one of them, and is
/// never read to its end.
pub const MAX_OBJECT_BYTES: u64 = 64 * 1024 * 1024;

/// The most a digest's metadata sidecar may hold: S3 caps an object's user metadata at 2 KB;
/// the rest is headroom for JSON escapes.
pub const MAX_METADATA_BYTES: u64 = 64 * 1024;

/// Reads `reader` to its end, unless it holds more than `cap` bytes.
pub fn read_capped(key: &str, reader: impl std::io::Read, cap: u64) -> Result<Vec<u8>, StoreError> {
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut reader.take(cap + 1), &mut bytes)
        .map_err(|e| StoreError::unreadable(key, e.to_string()))?;
    if bytes.len() as u64 > cap {
        return Err(StoreError::TooLarge {
            key: key.to_string(),
            cap,
        });
    }
    Ok(bytes)
}

/// Why a log could not be hashed: the store could not deliver it, or it is not one intact gzip
/// member.
#[derive(Debug)]
pub enum HashFailure {
    Store(StoreError),
    Damaged(crate::hash::Damage),
}

/// A read-only view of one bucket (or of a mirror of one).
pub trait Store: Send + Sync {
    /// The bucket name: digests sign `bucket/key`, so it must be the real one.
    fn bucket(&self) -> &str;
    /// How the source is described in reports.
    fn source(&self) -> String;
    /// Where discovery starts: empty, or a key prefix ending in `/`.
    fn root(&self) -> &str {
        ""
    }
    /// Lists one level below `prefix` (empty, or ending in `/`). An absent folder lists empty.
    fn list(&self, prefix: &str) -> impl Future<Output = Result<Listing, StoreError>> + Send;
    /// Reads a small object whole, with its metadata.
    fn get(&self, key: &str) -> impl Future<Output = Result<Object, StoreError>> + Send;
    /// Opens an object for streaming.
    fn open(&self, key: &str) -> impl Future<Output = Result<Body, StoreError>> + Send;

    /// Inflates a gzip object strictly and hashes its content, memory independent of its size.
    /// By default the opened stream is read and hashed on the CPU pool; a store whose bytes
    /// arrive over a network feeds them as they come instead.
    fn hash_gzip(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<crate::hash::Inflated, HashFailure>> + Send {
        async move {
            let body = self.open(key).await.map_err(HashFailure::Store)?;
            let key = key.to_string();
            crate::cpu::run(move || hash_body(&key, body)).await
        }
    }

    /// For an object only a listing hint (an S3 Inventory) showed, whether it is there now:
    /// `None` when the object was listed by the bucket itself. What a hint alone shows is
    /// confirmed before it is reported.
    fn confirm_hint(
        &self,
        key: &str,
    ) -> impl Future<Output = Option<Result<(), StoreError>>> + Send {
        let _ = key;
        async { None }
    }

    /// How many of its answers so far were throttling (503 SlowDown, 429): what an adapting
    /// run backs off on.
    fn throttled(&self) -> u64 {
        0
    }

    /// How many folder markers (zero-byte keys ending in `/`) its listings have shown and left
    /// out: they are not evidence, but a report says they were there.
    fn folder_markers(&self) -> usize {
        0
    }

    /// The capability of a source whose reads never wait on a network (a local disk), if it
    /// has it: the run then lists, reads and hashes a day's objects in one parallel pass on the
    /// CPU pool instead of one request each.
    fn reads_now(&self) -> Option<std::sync::Arc<dyn ReadsNow>> {
        None
    }
}

/// Listings, reads and hashes done right where they are called, blocking: for a source whose
/// reads never wait on a network. Called only on the CPU pool, never on a tokio worker.
pub trait ReadsNow: Send + Sync {
    fn list_now(&self, prefix: &str) -> Result<Listing, StoreError>;
    fn get_now(&self, key: &str) -> Result<Object, StoreError>;
    fn hash_gzip_now(&self, key: &str) -> Result<crate::hash::Inflated, HashFailure>;
}

/// Inflates and hashes an opened object; `key` names it in a read error.
pub fn hash_body(key: &str, body: Body) -> Result<crate::hash::Inflated, HashFailure> {
    crate::hash::hash_gzip(body).map_err(|e| match e {
        crate::hash::InflateError::Damaged(d) => HashFailure::Damaged(d),
        crate::hash::InflateError::Read(e) => HashFailure::Store(StoreError::unreadable(
            key,
            format!("read failed while hashing: {e}"),
        )),
    })
}
