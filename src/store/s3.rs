//! A bucket read through the S3 API, with read-only calls only (ListObjectsV2, GetObject,
//! HeadBucket). The only module that knows S3 SDK types.
//!
//! Errors are sorted with care, because the verdict depends on it: only a `NoSuchKey` (404) is
//! "not found". Throttling, 5xx, timeouts and connection resets are retried by the SDK's standard
//! retry policy; a body cut short is re-read here; whatever still fails is returned with its cause
//! and becomes *unverified*. A 403 is never "missing": without `s3:ListBucket`, S3 answers 403 for
//! keys that do not exist, and the cause says so.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::Client;

use crate::aws::error::error_chain;

use super::{Body, HashFailure, Listing, Object, ObjectInfo, Store, StoreError, MAX_OBJECT_BYTES};
use crate::hash::{Gunzip, Inflated};

/// How often a GetObject whose body broke off is tried in all.
const BODY_ATTEMPTS: usize = 3;

/// How many received bytes are handed to the CPU pool at a time.
const FEED_BATCH: usize = 256 * 1024;

/// What a GetObject returned beside the bytes, for an evidence manifest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectVersion {
    pub etag: Option<String>,
    pub version_id: Option<String>,
    pub last_modified: Option<String>,
}

/// Keys with more than one version, and their versions oldest first.
type Histories = BTreeMap<String, Vec<crate::finding::VersionRef>>;

#[derive(Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    /// Where discovery starts: empty, or a key prefix ending in `/`.
    root: String,
    /// Listings already made, each to answer the first `list` of its folder.
    primed: Arc<Mutex<HashMap<String, Listing>>>,
    /// Folder markers seen in listings.
    markers: Arc<std::sync::atomic::AtomicUsize>,
    /// How long requests take to answer, for hedging the ones that stall.
    latency: Arc<Latency>,
    /// Where the client's calls go, for messages.
    endpoint: Arc<str>,
    /// An S3 Inventory that answers the listings of day folders it covers.
    inventory: Option<Arc<super::inventory::Inventory>>,
    /// Versions to read instead of the current one (`--versions`: a recovered original).
    pins: Arc<HashMap<String, String>>,
    /// With `--versions`, day folders are listed with their versions, and the keys that have
    /// more than one are kept here.
    history: Option<Arc<Mutex<Histories>>>,
    /// Throttling answers so far (the session's count, over all its S3 clients).
    throttles: Arc<std::sync::atomic::AtomicU64>,
}

/// A request that has not answered after this many times the recent typical wait (and at least
/// [`HEDGE_FLOOR`]) is sent again beside the first, and whichever answers first is used: one
/// stalled response (a slow S3 partition, a lost packet) must not hold a location.
const HEDGE_FACTOR: u32 = 8;
const HEDGE_FLOOR: Duration = Duration::from_secs(1);
/// At most one request in this many is hedged, so that hedges never double the load, even when
/// every answer is slow (throttling backs off inside the SDK's own retries).
const HEDGE_SHARE: u64 = 5;

/// Recent time to answer (a moving average), and how many requests were sent and hedged.
#[derive(Debug, Default)]
struct Latency {
    average_us: std::sync::atomic::AtomicU64,
    requests: std::sync::atomic::AtomicU64,
    hedged: std::sync::atomic::AtomicU64,
}

impl Latency {
    fn record(&self, took: Duration) {
        use std::sync::atomic::Ordering::Relaxed;
        let us = took.as_micros().min(u64::MAX as u128) as u64;
        let old = self.average_us.load(Relaxed);
        let new = if old == 0 { us } else { (old * 7 + us) / 8 };
        self.average_us.store(new, Relaxed);
    }

    /// How long to wait before hedging.
    fn hedge_after(&self) -> Duration {
        use std::sync::atomic::Ordering::Relaxed;
        self.requests.fetch_add(1, Relaxed);
        let typical = Duration::from_micros(self.average_us.load(Relaxed));
        (typical * HEDGE_FACTOR).max(HEDGE_FLOOR)
    }

    /// Whether one more hedge stays within the share, taken when the hedge would be sent: when
    /// many requests stall at once (a brownout, throttling backing off), most are not hedged.
    fn take_hedge(&self) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        let requests = self.requests.load(Relaxed);
        let hedged = self.hedged.fetch_add(1, Relaxed);
        if (hedged + 1) * HEDGE_SHARE > requests {
            self.hedged.fetch_sub(1, Relaxed);
            return false;
        }
        true
    }

    /// Sends with `send`, and again if the first has not answered in time. The first success
    /// wins and the other request is dropped; an error waits for the other's answer, so that a
    /// fast failure never beats a slow success.
    async fn hedged<T, E, F>(&self, send: impl Fn() -> F) -> Result<T, E>
    where
        F: std::future::Future<Output = Result<T, E>>,
    {
        use futures::future::{select, Either};
        let started = std::time::Instant::now();
        let first = std::pin::pin!(send());
        let timer = std::pin::pin!(tokio::time::sleep(self.hedge_after()));
        let out = match select(first, timer).await {
            Either::Left((out, _)) => out,
            Either::Right(((), first)) if !self.take_hedge() => first.await,
            Either::Right(((), first)) => {
                let second = std::pin::pin!(send());
                match select(first, second).await {
                    Either::Left((Err(_), other)) | Either::Right((Err(_), other)) => other.await,
                    Either::Left((out, _)) | Either::Right((out, _)) => out,
                }
            }
        };
        self.record(started.elapsed());
        out
    }
}

impl S3Store {
    /// A store over `bucket/prefix` read with `client`, whose calls go to `endpoint`.
    pub fn new(client: Client, bucket: &str, prefix: &str, endpoint: String) -> S3Store {
        let root = match prefix.trim_matches('/') {
            "" => String::new(),
            p => format!("{p}/"),
        };
        S3Store {
            client,
            bucket: bucket.to_string(),
            root,
            primed: Arc::default(),
            markers: Arc::default(),
            latency: Arc::default(),
            endpoint: endpoint.into(),
            inventory: None,
            pins: Arc::default(),
            history: None,
            throttles: Arc::default(),
        }
    }

    /// Counts throttling answers in `throttles` (the session's counter).
    pub fn with_throttles(mut self, throttles: Arc<std::sync::atomic::AtomicU64>) -> S3Store {
        self.throttles = throttles;
        self
    }

    /// Lists folders with their versions (ListObjectVersions), keeping the history of every
    /// key that has more than one.
    pub fn with_version_listing(mut self) -> S3Store {
        self.history = Some(Arc::default());
        self
    }

    /// Reads these versions of these keys instead of the current ones, and lists each where
    /// its folder is listed, also when its current version is a delete marker.
    pub fn with_pins(mut self, pins: HashMap<String, String>) -> S3Store {
        self.pins = Arc::new(pins);
        self
    }

    /// The keys listed with more than one version, and their versions, oldest first.
    pub fn history(&self) -> Histories {
        self.history
            .as_ref()
            .map(|h| h.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .unwrap_or_default()
    }

    /// Lets `inventory` answer the listings of the day folders it covers.
    pub fn with_inventory(mut self, inventory: Arc<super::inventory::Inventory>) -> S3Store {
        self.inventory = Some(inventory);
        self
    }

    fn call<'a>(&'a self, operation: &'a str) -> crate::aws::error::Call<'a> {
        crate::aws::error::Call {
            service: "S3",
            operation,
            endpoint: &self.endpoint,
        }
    }

    /// Keeps `listings` (folder, listing) to answer the first `list` of each folder: listings
    /// made while the bucket's region was being asked, once the answer showed them good.
    pub fn primed(self, listings: Vec<(String, Listing)>) -> S3Store {
        self.primed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(listings);
        self
    }

    /// One GetObject; a retry of a body that broke off waits a little longer each time.
    async fn get_object(
        &self,
        key: &str,
        version: Option<&str>,
        attempt: usize,
    ) -> Result<aws_sdk_s3::operation::get_object::GetObjectOutput, StoreError> {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
        }
        self.latency
            .hedged(|| {
                self.client
                    .get_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .set_version_id(version.map(str::to_string))
                    .send()
            })
            .await
            .map_err(|e| get_error(self.call("GetObject"), key, e))
    }

    /// Reads an object with its metadata and version details, re-reading a body that breaks
    /// off (the SDK retries the request, not the body stream).
    pub async fn get_versioned(&self, key: &str) -> Result<(Object, ObjectVersion), StoreError> {
        self.get_up_to(key, MAX_OBJECT_BYTES).await
    }

    /// [`S3Store::get_versioned`] with a cap of its own, for objects that are not CloudTrail's
    /// (an S3 Inventory's data files).
    pub async fn get_up_to(
        &self,
        key: &str,
        cap: u64,
    ) -> Result<(Object, ObjectVersion), StoreError> {
        let pinned = self.pins.get(key).cloned();
        self.read_version(key, pinned.as_deref(), cap).await
    }

    /// Writes `bytes` at `key` only if the object there is still the one read (`etag`), or,
    /// with none, only if there is no object yet: the one write trailproof makes, of its own
    /// state, to a bucket of the user's. A conditional write that fails means another run
    /// wrote the state meanwhile.
    pub async fn put_if(
        &self,
        key: &str,
        bytes: Vec<u8>,
        etag: Option<&str>,
    ) -> Result<(), String> {
        let put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .body(bytes.into());
        let put = match etag {
            Some(etag) => put.if_match(etag),
            None => put.if_none_match("*"),
        };
        match put.send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let status = match &e {
                    SdkError::ServiceError(se) => Some(se.raw().status().as_u16()),
                    _ => None,
                };
                let text = describe(self.call("PutObject"), false, &e);
                Err(match status {
                    Some(412) | Some(409) => format!(
                        "s3://{}/{key} was written by another run since this one read it (the conditional write failed: {text})",
                        self.bucket
                    ),
                    _ => format!("cannot write s3://{}/{key}: {text}", self.bucket),
                })
            }
        }
    }

    /// One version of an object, read whole.
    pub async fn get_version(
        &self,
        key: &str,
        version: &str,
    ) -> Result<(Object, ObjectVersion), StoreError> {
        self.read_version(key, Some(version), MAX_OBJECT_BYTES)
            .await
    }

    async fn read_version(
        &self,
        key: &str,
        version: Option<&str>,
        cap: u64,
    ) -> Result<(Object, ObjectVersion), StoreError> {
        let mut last = String::new();
        for attempt in 0..BODY_ATTEMPTS {
            let out = self.get_object(key, version, attempt).await?;
            let metadata: BTreeMap<String, String> = out
                .metadata()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                        .collect()
                })
                .unwrap_or_default();
            let version = ObjectVersion {
                etag: out.e_tag().map(str::to_string),
                version_id: out.version_id().map(str::to_string),
                last_modified: out.last_modified().map(|t| t.to_string()),
            };
            let expected = out.content_length();
            // Read whole, but never past the cap: an object this large is not a digest.
            let too_large = || StoreError::TooLarge {
                key: key.to_string(),
                cap,
            };
            if expected.is_some_and(|n| n as u64 > cap) {
                return Err(too_large());
            }
            let mut body = out.body;
            let mut bytes = Vec::with_capacity(expected.unwrap_or(0).max(0) as usize);
            let broke = loop {
                match body.try_next().await {
                    Ok(Some(chunk)) => {
                        bytes.extend_from_slice(&chunk);
                        if bytes.len() as u64 > cap {
                            return Err(too_large());
                        }
                    }
                    Ok(None) => break None,
                    Err(e) => break Some(e),
                }
            };
            if let Some(e) = broke {
                last = format!("the body broke off: {}", error_chain(&e));
                continue;
            }
            if expected.is_some_and(|n| n != bytes.len() as i64) {
                last = format!(
                    "the body ended after {} of {} bytes",
                    bytes.len(),
                    expected.unwrap_or_default()
                );
                continue;
            }
            return Ok((
                Object {
                    bytes,
                    metadata,
                    metadata_invalid: None,
                },
                version,
            ));
        }
        Err(StoreError::unreadable(
            key,
            format!("{last} ({BODY_ATTEMPTS} attempts)"),
        ))
    }

    /// Feeds the body to a strict gunzip chunk by chunk as it arrives, each chunk inflated and
    /// hashed on the CPU pool: memory per request is one chunk and one inflate buffer, whatever
    /// the object's size. A body that breaks off is fetched again from the start.
    async fn fetch_and_hash(&self, key: &str) -> Result<Inflated, HashFailure> {
        let mut last = String::new();
        let pinned = self.pins.get(key).cloned();
        for attempt in 0..BODY_ATTEMPTS {
            let out = self
                .get_object(key, pinned.as_deref(), attempt)
                .await
                .map_err(HashFailure::Store)?;
            let expected = out.content_length();
            let mut body = out.body;
            let mut gunzip = Box::new(Gunzip::new(u64::MAX));
            let mut received = 0i64;
            // Network chunks are small (a few KB); they are gathered, uncopied, into batches so
            // that each hand-off to the CPU pool carries enough work to be worth it.
            let mut batch = Vec::new();
            let mut batched = 0;
            let broke = loop {
                let next = body.try_next().await;
                let ended = matches!(next, Ok(None));
                if let Ok(Some(chunk)) = &next {
                    received += chunk.len() as i64;
                    batched += chunk.len();
                    batch.push(chunk.clone());
                }
                let complete = ended && expected.is_none_or(|n| n == received);
                if complete {
                    // The last batch and the trailer checks go in one hand-off.
                    let chunks = std::mem::take(&mut batch);
                    return crate::cpu::run(move || {
                        for chunk in &chunks {
                            gunzip.feed(chunk, &mut |_| {})?;
                        }
                        gunzip.finish(&mut |_| {})
                    })
                    .await
                    .map_err(HashFailure::Damaged);
                }
                if batched >= FEED_BATCH {
                    let chunks = std::mem::take(&mut batch);
                    batched = 0;
                    gunzip = crate::cpu::run(move || {
                        let mut g = gunzip;
                        for chunk in &chunks {
                            g.feed(chunk, &mut |_| {})?;
                        }
                        Ok(g)
                    })
                    .await
                    .map_err(HashFailure::Damaged)?;
                }
                match next {
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        break format!(
                            "the body ended after {received} of {} bytes",
                            expected.unwrap_or_default()
                        )
                    }
                    Err(e) => break format!("the body broke off: {}", error_chain(&e)),
                }
            };
            last = broke;
        }
        Err(HashFailure::Store(StoreError::unreadable(
            key,
            format!("{last} ({BODY_ATTEMPTS} attempts)"),
        )))
    }
}

/// S3 storage classes whose objects cannot be read without a restore.
pub fn is_archived(storage_class: &str) -> bool {
    matches!(storage_class, "GLACIER" | "DEEP_ARCHIVE")
}

/// The cause of a failed call, in words a reader can act on: the call, its status, code and
/// message. `object` is set for a GET or HEAD of one object, the only calls where S3 answers
/// 403 for a key that does not exist (without `s3:ListBucket`).
fn describe<E>(
    call: crate::aws::error::Call<'_>,
    object: bool,
    err: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if let SdkError::ServiceError(se) = err {
        let status = se.raw().status().as_u16();
        match (status, se.err().code().unwrap_or("")) {
            (403, "InvalidObjectState") => {
                return format!("{call}: archived: the object's storage class needs a restore before it can be read (InvalidObjectState)");
            }
            (403, "AccessDenied") if object => {
                return format!(
                    "{}; without s3:ListBucket, S3 also answers 403 for keys that do not exist",
                    crate::aws::error::describe(call, err)
                );
            }
            _ => {}
        }
    }
    let text = crate::aws::error::describe(call, err);
    match err {
        SdkError::ServiceError(se) if se.raw().status().is_server_error() => {
            format!("{text} (after retries)")
        }
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            format!("{text} (after retries)")
        }
        _ => text,
    }
}

fn get_error(
    call: crate::aws::error::Call<'_>,
    key: &str,
    err: SdkError<GetObjectError, aws_sdk_s3::config::http::HttpResponse>,
) -> StoreError {
    let not_found = match &err {
        SdkError::ServiceError(se) => {
            se.err().is_no_such_key()
                || (se.raw().status().as_u16() == 404 && se.err().code() == Some("NoSuchKey"))
        }
        _ => false,
    };
    if not_found {
        StoreError::NotFound {
            key: key.to_string(),
        }
    } else {
        StoreError::unreadable(key, describe(call, true, &err))
    }
}

impl S3Store {
    /// How many requests were sent again beside one that stalled.
    pub fn hedged_requests(&self) -> u64 {
        self.latency
            .hedged
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Store for S3Store {
    fn throttled(&self) -> u64 {
        self.throttles.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn folder_markers(&self) -> usize {
        self.markers.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn bucket(&self) -> &str {
        &self.bucket
    }

    fn source(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.root)
    }

    fn root(&self) -> &str {
        &self.root
    }

    async fn confirm_hint(&self, key: &str) -> Option<Result<(), StoreError>> {
        let inventory = self.inventory.as_ref().filter(|i| i.hinted(key))?;
        let found = self.get(key).await.map(|_| ());
        if matches!(found, Err(StoreError::NotFound { .. })) {
            inventory.gone();
        }
        Some(found)
    }

    async fn list(&self, prefix: &str) -> Result<Listing, StoreError> {
        let mut listing = self.list_current(prefix).await?;
        if !self.pins.is_empty() {
            super::list_pinned(&mut listing, prefix, &self.pins);
        }
        Ok(listing)
    }

    async fn get(&self, key: &str) -> Result<Object, StoreError> {
        self.get_versioned(key).await.map(|(object, _)| object)
    }

    /// Each object's request and body run as a task of their own, so that the runtime's workers
    /// share them: polled inside one task, every response would wait for one thread.
    async fn hash_gzip(&self, key: &str) -> Result<Inflated, HashFailure> {
        let store = self.clone();
        let owned = key.to_string();
        match tokio::spawn(async move { store.fetch_and_hash(&owned).await }).await {
            Ok(outcome) => outcome,
            Err(e) => match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(e) => Err(HashFailure::Store(StoreError::unreadable(
                    key,
                    format!("the read was cancelled: {e}"),
                ))),
            },
        }
    }

    async fn open(&self, key: &str) -> Result<Body, StoreError> {
        // Logs are small (KB to a few MB); the body is held whole and hashed as a stream from
        // memory. Memory is bounded by the number of requests in flight, not by the bucket.
        let object = self.get(key).await?;
        Ok(Box::new(std::io::Cursor::new(object.bytes)))
    }
}

impl S3Store {
    /// One folder level as the bucket (or the inventory) lists it now.
    async fn list_current(&self, prefix: &str) -> Result<Listing, StoreError> {
        if let Some(listing) = self.inventory.as_ref().and_then(|i| i.answer(prefix)) {
            return Ok(listing);
        }
        if let Some(inventory) = &self.inventory {
            inventory.listed_live(prefix);
        }
        if self.history.is_some() {
            return self.list_versions(prefix).await;
        }
        let primed = self
            .primed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(prefix);
        if let Some(listing) = primed {
            return Ok(listing);
        }
        let mut listing = Listing::default();
        let mut token = None;
        loop {
            let out = self
                .latency
                .hedged(|| {
                    self.client
                        .list_objects_v2()
                        .bucket(&self.bucket)
                        .prefix(prefix)
                        .delimiter("/")
                        .set_continuation_token(token.clone())
                        .send()
                })
                .await
                .map_err(|e| {
                    StoreError::unreadable(prefix, describe(self.call("ListObjectsV2"), false, &e))
                })?;
            for p in out.common_prefixes() {
                if let Some(p) = p.prefix() {
                    listing.folders.push(p.to_string());
                }
            }
            for o in out.contents() {
                let Some(key) = o.key() else { continue };
                // A zero-byte key ending in `/` is a folder marker (the console's "Create
                // folder", sync tools, SeaweedFS's emptied folders): not evidence, counted.
                if key.ends_with('/') && o.size() == Some(0) {
                    self.markers
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    continue;
                }
                listing.objects.push(ObjectInfo {
                    key: key.to_string(),
                    storage_class: o.storage_class().map(|c| c.as_str().to_string()),
                    etag: o.e_tag().map(str::to_string),
                    size: o.size().and_then(|n| u64::try_from(n).ok()),
                    modified: o.last_modified().map(|t| t.to_string()),
                    version_id: None,
                });
            }
            match out.next_continuation_token() {
                Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        // S3 lists in UTF-8 byte order already; sort anyway so every store agrees.
        listing.folders.sort();
        listing.objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(listing)
    }

    /// One folder level listed with versions: each key whose current version is not a delete
    /// marker is listed, and every key with more than one version (or marker) is kept with its
    /// history.
    async fn list_versions(&self, prefix: &str) -> Result<Listing, StoreError> {
        let mut listing = Listing::default();
        let mut entries: BTreeMap<String, Vec<(crate::finding::VersionRef, bool, Option<String>)>> =
            BTreeMap::new();
        let (mut key_marker, mut version_marker) = (None, None);
        loop {
            let out = self
                .client
                .list_object_versions()
                .bucket(&self.bucket)
                .prefix(prefix)
                .delimiter("/")
                .set_key_marker(key_marker.clone())
                .set_version_id_marker(version_marker.clone())
                .send()
                .await
                .map_err(|e| {
                    StoreError::unreadable(
                        prefix,
                        describe(self.call("ListObjectVersions"), false, &e),
                    )
                })?;
            for p in out.common_prefixes() {
                if let Some(p) = p.prefix() {
                    listing.folders.push(p.to_string());
                }
            }
            for v in out.versions() {
                let Some(key) = v.key() else { continue };
                if key.ends_with('/') && v.size() == Some(0) {
                    if v.is_latest() == Some(true) {
                        self.markers
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    continue;
                }
                let version = crate::finding::VersionRef {
                    version_id: v.version_id().unwrap_or("null").to_string(),
                    last_modified: v.last_modified().and_then(to_chrono),
                    delete_marker: false,
                    etag: v.e_tag().map(str::to_string),
                };
                let class = v.storage_class().map(|c| c.as_str().to_string());
                entries.entry(key.to_string()).or_default().push((
                    version,
                    v.is_latest() == Some(true),
                    class,
                ));
            }
            for m in out.delete_markers() {
                let Some(key) = m.key() else { continue };
                let version = crate::finding::VersionRef {
                    version_id: m.version_id().unwrap_or("null").to_string(),
                    last_modified: m.last_modified().and_then(to_chrono),
                    delete_marker: true,
                    etag: None,
                };
                entries.entry(key.to_string()).or_default().push((
                    version,
                    m.is_latest() == Some(true),
                    None,
                ));
            }
            if out.is_truncated() == Some(true) {
                key_marker = out.next_key_marker().map(str::to_string);
                version_marker = out.next_version_id_marker().map(str::to_string);
                if key_marker.is_none() {
                    break;
                }
            } else {
                break;
            }
        }
        let mut kept = Vec::new();
        for (key, mut versions) in entries {
            let current = versions.iter().find(|(_, latest, _)| *latest).cloned();
            if let Some((v, _, class)) = &current {
                if !v.delete_marker {
                    listing.objects.push(ObjectInfo {
                        key: key.clone(),
                        storage_class: class.clone(),
                        etag: v.etag.clone(),
                        modified: v.last_modified.map(crate::layout::format_time),
                        version_id: Some(v.version_id.clone()),
                        ..ObjectInfo::default()
                    });
                }
            }
            if versions.len() > 1 {
                versions.sort_by_key(|v| v.0.last_modified);
                kept.push((key, versions.into_iter().map(|(v, _, _)| v).collect()));
            }
        }
        if let Some(history) = &self.history {
            history
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(kept);
        }
        listing.folders.sort();
        listing.objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(listing)
    }

    /// Every version and delete marker of exactly `key`, oldest first (at most 1,000).
    pub async fn versions_of(
        &self,
        key: &str,
    ) -> Result<Vec<(crate::finding::VersionRef, Option<String>)>, StoreError> {
        let out = self
            .client
            .list_object_versions()
            .bucket(&self.bucket)
            .prefix(key)
            .max_keys(1000)
            .send()
            .await
            .map_err(|e| {
                StoreError::unreadable(key, describe(self.call("ListObjectVersions"), false, &e))
            })?;
        let owner = |o: Option<&aws_sdk_s3::types::Owner>| {
            o.and_then(|o| o.display_name().or(o.id()).map(str::to_string))
        };
        let mut found = Vec::new();
        for v in out.versions().iter().filter(|v| v.key() == Some(key)) {
            found.push((
                crate::finding::VersionRef {
                    version_id: v.version_id().unwrap_or("null").to_string(),
                    last_modified: v.last_modified().and_then(to_chrono),
                    delete_marker: false,
                    etag: v.e_tag().map(str::to_string),
                },
                owner(v.owner()),
            ));
        }
        for m in out.delete_markers().iter().filter(|m| m.key() == Some(key)) {
            found.push((
                crate::finding::VersionRef {
                    version_id: m.version_id().unwrap_or("null").to_string(),
                    last_modified: m.last_modified().and_then(to_chrono),
                    delete_marker: true,
                    etag: None,
                },
                owner(m.owner()),
            ));
        }
        found.sort_by_key(|v| v.0.last_modified);
        Ok(found)
    }

    /// The bucket's versioning status (`Enabled`, `Suspended`), `None` if never enabled.
    pub async fn versioning(&self) -> Result<Option<String>, String> {
        let out = self
            .client
            .get_bucket_versioning()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| describe(self.call("GetBucketVersioning"), false, &e))?;
        Ok(out.status().map(|s| s.as_str().to_string()))
    }

    /// The bucket's Object Lock configuration, in words; `Ok(None)` when it has none.
    pub async fn object_lock(&self) -> Result<Option<String>, String> {
        match self
            .client
            .get_object_lock_configuration()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(out) => Ok(out.object_lock_configuration().map(|c| {
                let rule = c.rule().and_then(|r| r.default_retention());
                match rule {
                    Some(r) => format!(
                        "Object Lock {} with default retention {} ({} day(s), {} year(s))",
                        c.object_lock_enabled().map_or("set", |e| e.as_str()),
                        r.mode().map_or("unset", |m| m.as_str()),
                        r.days().unwrap_or(0),
                        r.years().unwrap_or(0)
                    ),
                    None => format!(
                        "Object Lock {} without default retention",
                        c.object_lock_enabled().map_or("set", |e| e.as_str())
                    ),
                }
            })),
            Err(e) => {
                let code = e
                    .as_service_error()
                    .and_then(|se| se.code().map(str::to_string));
                if code.as_deref() == Some("ObjectLockConfigurationNotFoundError") {
                    Ok(None)
                } else {
                    Err(describe(self.call("GetObjectLockConfiguration"), false, &e))
                }
            }
        }
    }
}

/// An S3 time as a UTC time.
fn to_chrono(t: &aws_sdk_s3::primitives::DateTime) -> Option<crate::layout::Timestamp> {
    chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}
