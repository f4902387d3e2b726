//! A local mirror of one bucket: the folder is the bucket root, an object's key is its path
//! below it, and a digest's S3 user metadata sits beside it as `<key>.metadata.json`.
//!
//! The mirror is evidence, possibly handed over by someone else, so no key is allowed to reach
//! outside the folder: keys with `..`, absolute paths, or links that resolve elsewhere are refused
//! before anything is opened.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{
    hash_body, read_capped, Body, HashFailure, Listing, Object, ObjectInfo, Store, StoreError,
    MAX_METADATA_BYTES, MAX_OBJECT_BYTES,
};
use crate::layout::{is_clean_key, Timestamp};

/// The file at a mirror's root that says which bucket it mirrors and as of when.
pub const MANIFEST: &str = "trailproof-manifest.json";

/// Files at a mirror's root named `trailproof-…` (the manifest, saved keys, a copy's journal)
/// belong to the mirror, not to the bucket, and are never listed.
///
/// The suffix of a metadata sidecar.
pub const METADATA_SUFFIX: &str = ".metadata.json";

/// What a mirror says about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The bucket the objects were delivered to: digests sign `bucket/key`.
    pub bucket: String,
    /// The key prefix the copy was made under, if any.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
    /// When the copy was finished (copies made before `acquisition` was recorded: the end of
    /// the range they were made for).
    pub acquired_at: Option<Timestamp>,
    /// When the copy was made, by the real clock: the horizon against which a verification of
    /// the copy judges what CloudTrail must have delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acquisition: Option<Acquisition>,
    /// The range the copy was made for: the default range of a verification of the copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<ManifestRange>,
    /// What made the copy.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tool: String,
    /// Where the copy was made from (`s3://bucket/prefix`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// Who made it (STS caller identity ARN).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub caller: String,
    /// The filters and range the copy was made for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<serde_json::Value>,
    /// The CloudTrail public keys fetched for the copy (saved ListPublicKeys JSON), a file
    /// beside the manifest: keys from CloudTrail, never from the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys_file: Option<String>,
    /// SHA-256 of the keys file's bytes, so that a custody signature covers the keys too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys_sha256: Option<String>,
    /// What the copy could not record (keys, caller identity): a copy with problems cannot
    /// stand on its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// Every object copied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<ManifestObject>,
    /// Objects and folders that were listed but could not be copied, with the cause: a mirror
    /// must not make them look missing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<crate::finding::Unverified>,
    /// With `acquire --versions`: the bucket's versioning, the versions of every damaged key,
    /// and the originals copied (under `trailproof-versions/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions: Option<VersionsRecord>,
}

/// What `--versions` learnt of a bucket's versions, as a copy keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionsRecord {
    /// `Ok`: the status (`Enabled`, `Suspended`; none if never enabled); `Err`: why it could
    /// not be read.
    pub versioning: Result<Option<String>, String>,
    pub object_lock: Result<Option<String>, String>,
    /// Each damaged key's versions and delete markers (with their owner), oldest first.
    #[serde(default)]
    pub keys: BTreeMap<String, Vec<(crate::finding::VersionRef, Option<String>)>>,
    /// Keys listed with more than one version.
    #[serde(default)]
    pub history: BTreeMap<String, Vec<crate::finding::VersionRef>>,
    /// The originals copied, at [`version_key`].
    #[serde(default)]
    pub copied: Vec<ManifestObject>,
}

/// Where a copy keeps version `version` of `key`: `trailproof-versions/<hex of the id>/<key>`.
pub fn version_key(key: &str, version: &str) -> String {
    format!(
        "{VERSIONS_FOLDER}/{}/{key}",
        hex::encode(version.as_bytes())
    )
}

/// The folder at a copy's root that holds copied versions.
pub const VERSIONS_FOLDER: &str = "trailproof-versions";

/// When a copy was made.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acquisition {
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
}

/// The range a copy was made for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestRange {
    pub start: Option<Timestamp>,
    pub end: Timestamp,
}

impl Manifest {
    /// The default end of a verification of the copy: the end of the range it was made for.
    pub fn range_end(&self) -> Option<Timestamp> {
        self.range.as_ref().map(|r| r.end).or(self.acquired_at)
    }

    /// When the bucket was observed: the end of the acquisition.
    pub fn observed_at(&self) -> Option<Timestamp> {
        self.acquisition
            .as_ref()
            .map(|a| a.finished_at)
            .or(self.acquired_at)
    }
}

/// One copied object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestObject {
    pub key: String,
    pub size: u64,
    pub etag: Option<String>,
    pub version_id: Option<String>,
    pub last_modified: Option<String>,
    /// SHA-256 of the bytes as stored (not inflated).
    pub sha256: String,
}

/// Why a mirror cannot be opened at all.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{path}: {source}")]
    Root {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not a folder")]
    NotAFolder { path: PathBuf },
    #[error("{path}: invalid manifest: {reason}")]
    Manifest { path: PathBuf, reason: String },
}

/// A mirror, cheap to clone: its reads run as jobs of the CPU pool, which own what they use.
#[derive(Clone)]
pub struct LocalStore {
    root: PathBuf,
    bucket: String,
    manifest: Option<Arc<Manifest>>,
    /// Lowercase hex SHA-256 of the manifest's bytes as they were read and parsed: what a
    /// custody signature must cover, and what a report names.
    manifest_sha256: Option<String>,
    /// Keys the manifest says could not be copied, with the cause.
    unreadable: Arc<BTreeMap<String, String>>,
    /// Folders already resolved and found inside the mirror: many objects share a day folder.
    checked_folders: Arc<std::sync::Mutex<std::collections::HashSet<PathBuf>>>,
    /// Versions to read instead of the current object (`--versions`), by key.
    pins: Arc<std::collections::HashMap<String, String>>,
    /// List each file's own size, not the one the manifest recorded (`with_file_sizes`).
    file_sizes: bool,
}

impl LocalStore {
    /// Opens the mirror at `root`. The bucket name is `bucket` if given, else the manifest's,
    /// else the folder's name.
    pub fn open(root: &Path, bucket: Option<&str>) -> Result<LocalStore, OpenError> {
        let root = fs::canonicalize(root).map_err(|source| OpenError::Root {
            path: root.to_path_buf(),
            source,
        })?;
        if !root.is_dir() {
            return Err(OpenError::NotAFolder { path: root });
        }
        let manifest_path = root.join(MANIFEST);
        let invalid = |reason: String| OpenError::Manifest {
            path: manifest_path.clone(),
            reason,
        };
        let (manifest, manifest_sha256) = match open_regular(&manifest_path, MANIFEST)
            .and_then(|f| read_manifest(f, MAX_MANIFEST_BYTES))
        {
            Ok(Ok((manifest, sha256))) => (Some(manifest), Some(sha256)),
            Ok(Err(e)) => return Err(invalid(e.to_string())),
            Err(StoreError::NotFound { .. }) => (None, None),
            Err(e) => return Err(invalid(e.cause())),
        };
        let bucket = bucket
            .map(str::to_string)
            .or_else(|| manifest.as_ref().map(|m| m.bucket.clone()))
            .or_else(|| root.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_default();
        let unreadable = manifest
            .iter()
            .flat_map(|m| &m.unreadable)
            .map(|u| (u.key.clone(), u.cause.clone()))
            .collect();
        // In key order, so that what the source said of an object is found without an index.
        let mut manifest = manifest;
        if let Some(m) = manifest.as_mut() {
            m.objects.sort_by(|a, b| a.key.cmp(&b.key));
        }
        Ok(LocalStore {
            root,
            bucket,
            manifest: manifest.map(Arc::new),
            manifest_sha256,
            unreadable: Arc::new(unreadable),
            checked_folders: Default::default(),
            pins: Default::default(),
            file_sizes: false,
        })
    }

    /// Lists each file with its own size on disk, where the manifest says what size it had at
    /// the source: a file changed in the copy since then shows, unless its size stayed. For
    /// comparing a copy with what an earlier run verified (`--state`); a stat a file.
    pub fn with_file_sizes(mut self) -> LocalStore {
        self.file_sizes = true;
        self
    }

    /// Reads these versions of these keys (copied under `trailproof-versions/`) instead of the
    /// current objects, and lists each in its folder.
    pub fn with_pins(mut self, pins: std::collections::HashMap<String, String>) -> LocalStore {
        self.pins = Arc::new(pins);
        self
    }

    /// An object listed in the copy, with what the manifest recorded of it at the source (its
    /// size, ETag, last-modified time and version), if the manifest lists it.
    fn described(&self, key: String) -> ObjectInfo {
        let recorded = self.manifest.as_ref().and_then(|m| {
            let at = m
                .objects
                .binary_search_by(|o| o.key.as_str().cmp(&key))
                .ok()?;
            m.objects.get(at)
        });
        match recorded {
            Some(o) => ObjectInfo {
                size: Some(o.size),
                etag: o.etag.clone(),
                modified: o.last_modified.clone(),
                version_id: o.version_id.clone(),
                key,
                storage_class: None,
            },
            None => ObjectInfo {
                key,
                ..ObjectInfo::default()
            },
        }
    }

    /// The file key that holds what `key` reads as: its pinned version, or itself.
    fn read_as(&self, key: &str) -> String {
        match self.pins.get(key) {
            Some(version) => version_key(key, version),
            None => key.to_string(),
        }
    }

    /// What the copy recorded of the bucket's versions, or why it has nothing.
    pub fn versions_record(&self) -> Result<&VersionsRecord, String> {
        self.manifest
            .as_ref()
            .and_then(|m| m.versions.as_ref())
            .ok_or_else(|| {
                "the copy was made without --versions, and holds no versions (acquire it again with --versions)".to_string()
            })
    }

    /// One version of `key`, as the copy holds it.
    pub fn get_version_now(&self, key: &str, version: &str) -> Result<Object, StoreError> {
        let stored = version_key(key, version);
        match self.get_now(&stored) {
            Err(StoreError::NotFound { .. }) => Err(StoreError::unreadable(
                key,
                format!("version {version} is not in the copy (acquire copies only the versions that match)"),
            )),
            other => other,
        }
    }

    /// The keys file saved with the copy, if the manifest names one.
    pub fn saved_keys(&self) -> Option<PathBuf> {
        let name = self.manifest.as_ref()?.keys_file.as_ref()?;
        // Only a plain file name beside the manifest.
        (!name.contains('/') && !name.contains('\\') && !name.starts_with('.'))
            .then(|| self.root.join(name))
    }

    fn not_acquired(&self, key: &str) -> Result<(), StoreError> {
        match self.unreadable.get(key) {
            Some(cause) => Err(StoreError::unreadable(
                key,
                format!("not in the copy: {cause}"),
            )),
            None => Ok(()),
        }
    }

    pub fn manifest(&self) -> Option<&Manifest> {
        self.manifest.as_deref()
    }

    /// SHA-256 (lowercase hex) of the manifest's bytes as the copy was opened with them.
    pub fn manifest_sha256(&self) -> Option<&str> {
        self.manifest_sha256.as_deref()
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path of `key`, after refusing keys and links that leave the folder.
    fn resolve(&self, key: &str) -> Result<PathBuf, StoreError> {
        let path = self.clean_path(key)?;
        let kind = fs::symlink_metadata(&path)
            .map_err(|e| io_error(key, e))?
            .file_type();
        self.folder_inside(key, &path)?;
        // The object itself, when it is a link.
        if kind.is_symlink() {
            self.inside(key, &path)?;
        }
        Ok(path)
    }

    /// The path of `key`, unless the key is not a plain relative key.
    fn clean_path(&self, key: &str) -> Result<PathBuf, StoreError> {
        if !is_clean_key(key) {
            return Err(StoreError::unreadable(
                key,
                "refused: the key is not a plain relative key and could leave the mirror",
            ));
        }
        Ok(self.root.join(key))
    }

    /// Refuses `path` (for `key`) unless the folder holding it resolves inside the mirror. Each
    /// folder is resolved once (links included) and remembered: many objects share a day folder.
    fn folder_inside(&self, key: &str, path: &Path) -> Result<(), StoreError> {
        let Some(parent) = path.parent() else {
            return Ok(());
        };
        if self.checked_folders.lock().expect("lock").contains(parent) {
            return Ok(());
        }
        self.inside(key, parent)?;
        self.checked_folders
            .lock()
            .expect("lock")
            .insert(parent.to_path_buf());
        Ok(())
    }

    /// Opens the file of `key` for reading, refusing keys and links that leave the folder, and
    /// anything but a regular file. The file is opened without following a link (only a link,
    /// which that open refuses, costs a look at where it leads) and without blocking: a FIFO
    /// planted where a file is expected would otherwise wait for a writer forever. Its type is
    /// checked on the opened file, so it cannot be swapped between the check and the read.
    #[cfg(unix)]
    fn open_file(&self, key: &str) -> Result<fs::File, StoreError> {
        let path = self.clean_path(key)?;
        #[cfg(target_os = "linux")]
        if let Some(opened) = self.open_where_it_is(key, &path) {
            return opened;
        }
        let file = match open_regular(&path, key) {
            Err(StoreError::Unreadable { .. }) if is_link(&path) => {
                self.inside(key, &path)?;
                open_nonblocking(&path, 0)
                    .map_err(|e| io_error(key, e))
                    .and_then(|f| regular_file(key, f))
            }
            other => other,
        }?;
        self.folder_inside(key, &path)?;
        Ok(file)
    }

    /// Opens `path` (links followed, without blocking), then checks where the opened file really
    /// is, as the kernel says of the descriptor: the check is of the file that will be read, not
    /// of a path whose folders or links may change between a check and the open. `None` where
    /// `/proc` cannot say; the paths are then checked as elsewhere.
    #[cfg(target_os = "linux")]
    fn open_where_it_is(&self, key: &str, path: &Path) -> Option<Result<fs::File, StoreError>> {
        use std::os::fd::AsRawFd;
        let file = match open_nonblocking(path, 0) {
            Ok(file) => file,
            // A link that leads nowhere is there, but cannot be read: never a missing object.
            Err(e) if e.kind() == io::ErrorKind::NotFound && is_link(path) => {
                return Some(Err(StoreError::unreadable(
                    key,
                    "a link that leads to nothing; not an object",
                )))
            }
            Err(e) => return Some(Err(io_error(key, e))),
        };
        let real = fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()?;
        if !real.starts_with(&self.root) {
            return Some(Err(StoreError::unreadable(
                key,
                format!(
                    "refused: the path resolves to {}, outside the mirror",
                    real.display()
                ),
            )));
        }
        Some(regular_file(key, file))
    }

    #[cfg(not(unix))]
    fn open_file(&self, key: &str) -> Result<fs::File, StoreError> {
        let path = self.resolve(key)?;
        open_regular(&path, key)
    }

    /// Refuses `path` (for `key`) unless it resolves inside the mirror.
    fn inside(&self, key: &str, path: &Path) -> Result<(), StoreError> {
        let real = fs::canonicalize(path)
            .map_err(|e| StoreError::unreadable(key, format!("cannot resolve the path: {e}")))?;
        if !real.starts_with(&self.root) {
            return Err(StoreError::unreadable(
                key,
                format!(
                    "refused: the path resolves to {}, outside the mirror",
                    real.display()
                ),
            ));
        }
        Ok(())
    }

    /// A digest's metadata from its sidecar: `Ok(Err(why))` when the sidecar exists but is not
    /// what S3 could have served (not a JSON object of strings, or over S3's size), `Err` only
    /// when it cannot be read at all.
    fn read_metadata(
        &self,
        key: &str,
    ) -> Result<Result<BTreeMap<String, String>, String>, StoreError> {
        let sidecar = format!("{key}{METADATA_SUFFIX}");
        let read = self
            .open_file(&sidecar)
            .and_then(|f| read_file(&sidecar, f, MAX_METADATA_BYTES));
        let bytes = match read {
            Ok(bytes) => bytes,
            // No sidecar: the object has no user metadata (so no signature).
            Err(StoreError::NotFound { .. }) => return Ok(Ok(BTreeMap::new())),
            Err(StoreError::TooLarge { cap, .. }) => {
                return Ok(Err(format!(
                    "its signature metadata file {sidecar} is larger than {cap} bytes (S3 allows 2 KB of metadata)"
                )))
            }
            Err(e) => return Err(e),
        };
        Ok(parse_metadata(&bytes).map_err(|why| {
            format!("the signature metadata is not a JSON object of strings ({sidecar}: {why})")
        }))
    }
}

/// A sidecar's JSON object of strings, names lowercased and without `x-amz-meta-`. A name given
/// twice (in any case) is refused: S3 serves each metadata name once, and which of two values a
/// reader would take is not evidence.
pub fn parse_metadata(bytes: &[u8]) -> Result<BTreeMap<String, String>, String> {
    struct Pairs(Vec<(String, serde_json::Value)>);
    impl<'de> Deserialize<'de> for Pairs {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Pairs, D::Error> {
            struct Visit;
            impl<'de> serde::de::Visitor<'de> for Visit {
                type Value = Pairs;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut map: A,
                ) -> Result<Pairs, A::Error> {
                    let mut pairs = Vec::new();
                    while let Some(pair) = map.next_entry()? {
                        pairs.push(pair);
                    }
                    Ok(Pairs(pairs))
                }
            }
            d.deserialize_map(Visit)
        }
    }
    let Pairs(raw) = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let mut metadata = BTreeMap::new();
    for (name, value) in raw {
        let serde_json::Value::String(value) = value else {
            return Err(format!("the value of {name:?} is not a string"));
        };
        let lower = name.to_ascii_lowercase();
        let short = lower
            .strip_prefix("x-amz-meta-")
            .unwrap_or(&lower)
            .to_string();
        if metadata.insert(short, value).is_some() {
            return Err(format!("the name {name:?} is given twice"));
        }
    }
    Ok(metadata)
}

/// The most a mirror's manifest may hold: about 300 bytes per object copied, so a copy of some
/// 800,000 objects.
pub const MAX_MANIFEST_BYTES: u64 = 256 * 1024 * 1024;

/// Parses an opened manifest as it is read, never holding its text whole (a copy of many objects
/// has a manifest of hundreds of megabytes), and hashes the bytes parsed: the outer error is the
/// file's (too large, unreadable), the inner one its content's.
fn read_manifest(
    file: fs::File,
    cap: u64,
) -> Result<Result<(Manifest, String), serde_json::Error>, StoreError> {
    use sha2::Digest;
    struct Hashing<R> {
        inner: R,
        sha: sha2::Sha256,
        read: u64,
    }
    impl<R: io::Read> io::Read for Hashing<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.sha.update(&buf[..n]);
            self.read += n as u64;
            Ok(n)
        }
    }
    let too_large = || StoreError::TooLarge {
        key: MANIFEST.to_string(),
        cap,
    };
    if file.metadata().map_err(|e| io_error(MANIFEST, e))?.len() > cap {
        return Err(too_large());
    }
    // The read stops one byte past the cap however the file grows meanwhile.
    let mut reader = Hashing {
        inner: BufReader::with_capacity(64 * 1024, io::Read::take(file, cap + 1)),
        sha: sha2::Sha256::new(),
        read: 0,
    };
    let parsed = serde_json::from_reader::<_, Manifest>(&mut reader);
    if reader.read > cap {
        return Err(too_large());
    }
    match parsed {
        Err(e) if e.is_io() => Err(StoreError::unreadable(MANIFEST, e.to_string())),
        Err(e) => Ok(Err(e)),
        Ok(manifest) => Ok(Ok((manifest, hex::encode(reader.sha.finalize())))),
    }
}

/// Reads an opened regular file whole, unless it holds more than `cap` bytes: its stated size
/// is checked before anything is read, and the read stops at the cap however the file grows.
pub fn read_file(key: &str, file: fs::File, cap: u64) -> Result<Vec<u8>, StoreError> {
    if file.metadata().map_err(|e| io_error(key, e))?.len() > cap {
        return Err(StoreError::TooLarge {
            key: key.to_string(),
            cap,
        });
    }
    read_capped(key, file, cap)
}

/// Opens `path` (named `key` in errors) without following a link and without blocking, and
/// refuses it unless it is a regular file.
pub fn open_regular(path: &Path, key: &str) -> Result<fs::File, StoreError> {
    #[cfg(unix)]
    let opened = open_nonblocking(path, libc::O_NOFOLLOW);
    #[cfg(not(unix))]
    let opened = fs::File::open(path);
    match opened {
        #[cfg(unix)]
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => Err(StoreError::unreadable(
            key,
            "a link, not a regular file; not followed",
        )),
        Err(e) => Err(io_error(key, e)),
        Ok(file) => regular_file(key, file),
    }
}

#[cfg(unix)]
fn open_nonblocking(path: &Path, flags: i32) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags | libc::O_NONBLOCK)
        .open(path)
}

#[cfg(unix)]
fn is_link(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// Refuses an opened file that is not a regular file: a FIFO, device, socket or folder where an
/// object is expected is not one of CloudTrail's objects, and reading it could block or never end.
/// Checked on the opened file, so it cannot be swapped between the check and the read.
fn regular_file(key: &str, file: fs::File) -> Result<fs::File, StoreError> {
    let kind = file.metadata().map_err(|e| io_error(key, e))?.file_type();
    if kind.is_file() {
        return Ok(file);
    }
    Err(StoreError::unreadable(
        key,
        format!("not a regular file (a {}); not read", file_kind(kind)),
    ))
}

fn file_kind(kind: fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "FIFO";
        }
        if kind.is_socket() {
            return "socket";
        }
        if kind.is_block_device() || kind.is_char_device() {
            return "device";
        }
    }
    if kind.is_dir() {
        "folder"
    } else {
        "special file"
    }
}

fn io_error(key: &str, e: io::Error) -> StoreError {
    // ENOENT, and a path component that is a file rather than a folder, mean the key is absent.
    match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => StoreError::NotFound {
            key: key.to_string(),
        },
        _ => StoreError::unreadable(key, e.to_string()),
    }
}

impl Store for LocalStore {
    fn bucket(&self) -> &str {
        &self.bucket
    }

    fn source(&self) -> String {
        self.root.display().to_string()
    }

    // The run hands a mirror's reads to the CPU pool itself (see `verify`); these serve
    // discovery and callers that read one object.
    async fn list(&self, prefix: &str) -> Result<Listing, StoreError> {
        self.list_now(prefix)
    }

    async fn get(&self, key: &str) -> Result<Object, StoreError> {
        self.get_now(key)
    }

    async fn open(&self, key: &str) -> Result<Body, StoreError> {
        self.open_now(key)
    }

    fn reads_now(&self) -> Option<std::sync::Arc<dyn super::ReadsNow>> {
        Some(std::sync::Arc::new(self.clone()))
    }
}

impl super::ReadsNow for LocalStore {
    fn list_now(&self, prefix: &str) -> Result<Listing, StoreError> {
        LocalStore::list_now(self, prefix)
    }

    fn get_now(&self, key: &str) -> Result<Object, StoreError> {
        LocalStore::get_now(self, key)
    }

    fn hash_gzip_now(&self, key: &str) -> Result<crate::hash::Inflated, HashFailure> {
        LocalStore::hash_gzip_now(self, key)
    }
}

impl LocalStore {
    /// [`Store::list`], done right here.
    pub fn list_now(&self, prefix: &str) -> Result<Listing, StoreError> {
        self.not_acquired(prefix)?;
        let mut listing = self.list_dir(prefix)?;
        if !self.pins.is_empty() {
            super::list_pinned(&mut listing, prefix, &self.pins);
        }
        // What was listed at the source but not copied is listed here too, so that it reads as
        // unverified rather than missing.
        for key in self.unreadable.keys() {
            let Some(rest) = key.strip_prefix(prefix) else {
                continue;
            };
            let leaf = rest.trim_end_matches('/');
            if leaf.is_empty() || leaf.contains('/') {
                continue;
            }
            if key.ends_with('/') {
                if !listing.folders.contains(key) {
                    listing.folders.push(key.clone());
                }
            } else if !listing.objects.iter().any(|o| &o.key == key) {
                listing.objects.push(ObjectInfo {
                    key: key.clone(),
                    ..ObjectInfo::default()
                });
            }
        }
        listing.folders.sort();
        listing.objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(listing)
    }

    /// [`Store::hash_gzip`], done right here: the file is read and hashed on this thread.
    pub fn hash_gzip_now(&self, key: &str) -> Result<crate::hash::Inflated, HashFailure> {
        self.open_now(key)
            .map_err(HashFailure::Store)
            .and_then(|body| hash_body(key, body))
    }

    /// [`Store::get`], done right here.
    pub fn get_now(&self, key: &str) -> Result<Object, StoreError> {
        self.not_acquired(key)?;
        let stored = self.read_as(key);
        let bytes = read_file(key, self.open_file(&stored)?, MAX_OBJECT_BYTES)?;
        let (metadata, metadata_invalid) = match self.read_metadata(&stored)? {
            Ok(metadata) => (metadata, None),
            Err(why) => (BTreeMap::new(), Some(why)),
        };
        Ok(Object {
            bytes,
            metadata,
            metadata_invalid,
        })
    }

    fn open_now(&self, key: &str) -> Result<Body, StoreError> {
        self.not_acquired(key)?;
        let file = self.open_file(&self.read_as(key))?;
        Ok(Box::new(BufReader::with_capacity(64 * 1024, file)))
    }

    fn list_dir(&self, prefix: &str) -> Result<Listing, StoreError> {
        let dir = if prefix.is_empty() {
            self.root.clone()
        } else {
            let trimmed = prefix.trim_end_matches('/');
            self.resolve(trimmed).or_else(|e| match e {
                StoreError::NotFound { .. } => Ok(self.root.join(trimmed)),
                e => Err(e),
            })?
        };
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) => {
                return match io_error(prefix, e) {
                    StoreError::NotFound { .. } => Ok(Listing::default()),
                    e => Err(e),
                }
            }
        };
        let mut listing = Listing::default();
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::unreadable(prefix, e.to_string()))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                return Err(StoreError::unreadable(
                    prefix,
                    format!("a file name is not UTF-8: {}", name.to_string_lossy()),
                ));
            };
            let kind = entry
                .file_type()
                .map_err(|e| StoreError::unreadable(prefix, e.to_string()))?;
            let key = format!("{prefix}{name}");
            if kind.is_dir() {
                // The copy's own folder of versions is not the bucket's.
                if !(prefix.is_empty() && name.starts_with("trailproof-")) {
                    listing.folders.push(format!("{key}/"));
                }
            } else if name.ends_with(METADATA_SUFFIX)
                || (prefix.is_empty() && name.starts_with("trailproof-"))
            {
                continue;
            } else {
                // Files and links alike are objects; a link is checked when it is read.
                let mut object = self.described(key);
                if (object.size.is_none() || self.file_sizes) && kind.is_file() {
                    // Not recorded by a manifest, or asked for: the file's own size.
                    object.size = entry.metadata().ok().map(|m| m.len());
                }
                listing.objects.push(object);
            }
        }
        Ok(listing)
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// A folder checked once (and remembered) and then swapped for a link out of the mirror is
    /// not read through: what is checked is where the opened file is.
    #[test]
    fn a_folder_swapped_for_a_link_out_of_the_mirror_is_not_read_through() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("copy");
        let key = "AWSLogs/111111111111/CloudTrail/us-east-1/2024/01/01/log.json.gz";
        let day = root.join(key).parent().unwrap().to_path_buf();
        fs::create_dir_all(&day).unwrap();
        fs::write(root.join(key), b"inside").unwrap();
        let store = LocalStore::open(&root, Some("b")).unwrap();
        assert_eq!(store.get_now(key).unwrap().bytes, b"inside");

        let elsewhere = dir.path().join("elsewhere");
        fs::create_dir_all(&elsewhere).unwrap();
        fs::write(elsewhere.join("log.json.gz"), b"outside").unwrap();
        fs::remove_dir_all(&day).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &day).unwrap();
        match store.get_now(key) {
            Err(StoreError::Unreadable { cause, .. }) => {
                assert!(cause.contains("outside the mirror"), "{cause}")
            }
            other => panic!("read through the link: {:?}", other.map(|o| o.bytes)),
        }
    }

    #[test]
    fn a_link_that_leads_nowhere_is_unreadable_never_missing() {
        let dir = tempfile::tempdir().unwrap();
        let key = "AWSLogs/111111111111/CloudTrail/us-east-1/2024/01/01/log.json.gz";
        let path = dir.path().join(key);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(dir.path().join("gone"), &path).unwrap();
        let store = LocalStore::open(dir.path(), Some("b")).unwrap();
        assert!(matches!(
            store.get_now(key),
            Err(StoreError::Unreadable { .. })
        ));
    }
}
