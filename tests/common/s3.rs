//! A real S3 server for the tests: s3s + s3s-fs serving HTTP on 127.0.0.1 (SigV4 checked), in
//! its own thread and runtime, and beside it, on an endpoint of its own as in real life, the
//! calls no S3 server implements: CloudTrail (`ListPublicKeys`, `DescribeTrails`,
//! `GetTrailStatus`), Organizations (`ListAccounts`) and STS (`AssumeRole`,
//! `GetCallerIdentity`), recording what was asked. In front of S3, a small HTTP layer that
//! - injects faults on request: 403 on chosen keys or listings, 503 SlowDown, connection resets
//!   and truncated bodies on a share of requests;
//! - records every request (method, path, query), so tests can assert the tool only reads.
//!
//! A thin `S3` wrapper around s3s-fs reports chosen objects in the GLACIER storage class.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use s3s::dto::{ObjectStorageClass, *};
use s3s::{S3Request, S3Response, S3Result, S3};

pub const ACCESS_KEY: &str = "AKIATRAILPROOFTEST";
pub const SECRET_KEY: &str = "trailproof-test-secret-key";
pub const SESSION_TOKEN: &str = "assumed-role-session-token";
pub const CALLER_ARN: &str = "arn:aws:iam::999999999999:user/auditor";

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Reply = hyper::Response<BoxBody<Bytes, BoxError>>;

/// Faults to inject; matched on substrings of the key or list prefix.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// GET/HEAD of matching keys answers 403 AccessDenied.
    pub deny_get: Vec<String>,
    /// ListObjectsV2 with a matching prefix answers 403 AccessDenied.
    pub deny_list: Vec<String>,
    /// Every Nth request (of any kind) answers 503 SlowDown; a request sent again after a reset
    /// or a SlowDown is answered.
    pub slow_down_every: u64,
    /// Every Nth request has its connection closed without an answer.
    pub reset_every: u64,
    /// Each object's 1st, (N+1)th, (2N+1)th… GetObject since the faults were set has its body
    /// cut in half. Counted per key, so that which attempt breaks does not depend on how
    /// concurrent requests interleave: with N ≥ 2 the second attempt at every object succeeds.
    pub truncate_every: u64,
    /// Matching keys are listed in the GLACIER storage class.
    pub glacier: Vec<String>,
    /// Added to every request.
    pub delay: Duration,
    /// ListPublicKeys answers 400 AccessDeniedException.
    pub deny_keys: bool,
    /// AssumeRole answers 403 AccessDenied.
    pub deny_assume_role: bool,
    /// The buckets live in this region, as S3 tells: HeadBucket names it in
    /// `x-amz-bucket-region`, and an S3 request signed for another region answers 301
    /// PermanentRedirect, naming it likewise.
    pub bucket_region: Option<String>,
    /// Every Nth request waits this long before it is answered (a stalled response).
    pub stall_every: u64,
    pub stall: Duration,
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    /// `X-Amz-Target` (JSON protocol calls) or the STS `Action`.
    pub action: Option<String>,
    /// The region in the SigV4 credential scope.
    pub region: Option<String>,
    pub security_token: Option<String>,
    /// The request body, for the non-S3 calls.
    pub body: String,
    /// Whether it came to the services endpoint (CloudTrail, Organizations, STS), not S3's.
    pub services: bool,
}

pub struct State {
    pub requests: Mutex<Vec<Recorded>>,
    pub faults: Mutex<Faults>,
    /// Keys for ListPublicKeys: DER, validity start and end (epoch seconds).
    pub keys: Mutex<Vec<(Vec<u8>, i64, i64)>>,
    /// The JSON answers of the other CloudTrail and Organizations calls.
    pub services: Mutex<Services>,
    counter: AtomicU64,
    /// GetObjects per key since the faults were set, for `truncate_every`.
    gets: Mutex<std::collections::HashMap<String, u64>>,
    /// Requests (method and URI) whose last attempt was reset or throttled.
    faulted: Mutex<std::collections::HashSet<String>>,
}

/// What DescribeTrails, GetTrailStatus and ListAccounts answer (JSON bodies).
#[derive(Clone, Debug)]
pub struct Services {
    pub describe_trails: String,
    pub trail_status: String,
    pub accounts: String,
    /// Account ListRegions (REST JSON, `POST /listRegions`).
    pub regions: String,
}

impl Default for Services {
    fn default() -> Services {
        Services {
            describe_trails: r#"{"trailList":[]}"#.into(),
            trail_status: r#"{"IsLogging":true}"#.into(),
            accounts: r#"{"Accounts":[]}"#.into(),
            regions:
                r#"{"Regions":[{"RegionName":"us-east-1","RegionOptStatus":"ENABLED_BY_DEFAULT"}]}"#
                    .into(),
        }
    }
}

impl State {
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    pub fn clear(&self) {
        self.requests.lock().unwrap().clear();
    }

    pub fn set_faults(&self, faults: Faults) {
        *self.faults.lock().unwrap() = faults;
        self.gets.lock().unwrap().clear();
        self.faulted.lock().unwrap().clear();
    }
}

pub struct S3Server {
    /// S3's endpoint.
    pub endpoint: String,
    /// CloudTrail's, Organizations' and STS's endpoint.
    pub aws_endpoint: String,
    pub state: Arc<State>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// s3s-fs with chosen objects reported as archived.
struct Store {
    fs: s3s_fs::FileSystem,
    root: std::path::PathBuf,
    state: Arc<State>,
}

impl Store {
    /// A plain GetObject (no range, part, version or condition) of a simple key, answered from
    /// s3s-fs's files with one synchronous read each. s3s-fs's own GetObject reads through
    /// tokio::fs 4 KB at a time, each read a hop to the blocking pool: on a 2-core machine that
    /// costs the server more CPU per GET than the client spends on it, CPU that real S3 spends on
    /// its own machines. `None` leaves the request to s3s-fs.
    fn read_whole(&self, input: &GetObjectInput) -> Option<S3Result<GetObjectOutput>> {
        let plain = input.range.is_none()
            && input.part_number.is_none()
            && input.version_id.is_none()
            && input.if_match.is_none()
            && input.if_none_match.is_none()
            && input.if_modified_since.is_none()
            && input.if_unmodified_since.is_none();
        let simple = |s: &str| {
            !s.is_empty()
                && !s.starts_with('/')
                && s.split('/').all(|part| part != ".." && part != ".")
        };
        if !plain || !simple(&input.bucket) || !simple(&input.key) {
            return None;
        }
        let mut file = match std::fs::File::open(self.root.join(&input.bucket).join(&input.key)) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Some(Err(s3s::s3_error!(NoSuchKey)))
            }
            Err(_) => return None,
        };
        let stat = file.metadata().ok()?;
        let mut data = Vec::with_capacity(stat.len() as usize);
        std::io::Read::read_to_end(&mut file, &mut data).ok()?;
        let modified = stat.modified().ok()?;
        // s3s-fs keeps an object's attributes and checksums in two JSON files beside it.
        let side = |kind: &str| -> Option<serde_json::Map<String, serde_json::Value>> {
            let encode = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
            let name = format!(
                ".bucket-{}.object-{}.{kind}.json",
                encode(&input.bucket),
                encode(&input.key)
            );
            let text = std::fs::read(self.root.join(name)).ok()?;
            serde_json::from_slice(&text).ok()
        };
        let attributes = side("metadata").unwrap_or_default();
        let internal = side("internal").unwrap_or_default();
        let text = |map: &serde_json::Map<String, serde_json::Value>, name: &str| {
            map.get(name).and_then(|v| v.as_str()).map(str::to_string)
        };
        let metadata = attributes
            .get("user_metadata")
            .and_then(|m| serde_json::from_value(m.clone()).ok());
        let e_tag = text(&internal, "e_tag").unwrap_or_else(|| {
            use md5::Digest;
            md5::Md5::digest(&data)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        });
        Some(Ok(GetObjectOutput {
            content_length: Some(data.len() as i64),
            body: Some(StreamingBlob::from(s3s::Body::from(data))),
            last_modified: Some(Timestamp::from(modified)),
            metadata,
            content_type: text(&attributes, "content_type"),
            content_encoding: text(&attributes, "content_encoding"),
            e_tag: Some(ETag::Strong(e_tag)),
            checksum_crc32: text(&internal, "checksum_crc32"),
            checksum_crc32c: text(&internal, "checksum_crc32c"),
            checksum_sha1: text(&internal, "checksum_sha1"),
            checksum_sha256: text(&internal, "checksum_sha256"),
            checksum_crc64nvme: text(&internal, "checksum_crc64nvme"),
            ..Default::default()
        }))
    }

    /// A one-page delimiter listing of one folder, read from that folder alone. s3s-fs walks
    /// every file under the prefix, each step a hop to the blocking pool, so that listing the
    /// bucket's root reads the whole bucket. `None` leaves the request to s3s-fs.
    fn list_folder(&self, input: &ListObjectsV2Input) -> Option<S3Result<ListObjectsV2Output>> {
        let prefix = input.prefix.as_deref().unwrap_or("");
        let plain = input.delimiter.as_deref() == Some("/")
            && (prefix.is_empty() || prefix.ends_with('/'))
            && !prefix.starts_with('/')
            && prefix.split('/').all(|part| part != ".." && part != ".")
            && input.continuation_token.is_none()
            && input.start_after.is_none()
            && !input.bucket.contains(['/', '.']);
        if !plain {
            return None;
        }
        let bucket = self.root.join(&input.bucket);
        if !bucket.is_dir() {
            return None;
        }
        let mut objects = Vec::new();
        let mut folders = Vec::new();
        let entries = match std::fs::read_dir(bucket.join(prefix)) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Some(Ok(ListObjectsV2Output {
                    key_count: Some(0),
                    max_keys: Some(input.max_keys.unwrap_or(1000)),
                    is_truncated: Some(false),
                    delimiter: input.delimiter.clone(),
                    name: Some(input.bucket.clone()),
                    prefix: input.prefix.clone(),
                    ..Default::default()
                }))
            }
            Err(_) => return None,
        };
        for entry in entries {
            let entry = entry.ok()?;
            let name = entry.file_name().into_string().ok()?;
            let stat = entry.metadata().ok()?;
            if stat.is_dir() {
                // S3 has no empty folders: a folder is listed when an object lies under it.
                if holds_a_file(&entry.path()) {
                    folders.push(format!("{prefix}{name}/"));
                }
            } else {
                // S3 lists every object's ETag: the MD5 of its bytes for a single-part upload.
                let etag = {
                    use md5::Digest as _;
                    let bytes = std::fs::read(entry.path()).ok()?;
                    hex::encode(md5::Md5::digest(&bytes))
                };
                objects.push(Object {
                    key: Some(format!("{prefix}{name}")),
                    last_modified: Some(Timestamp::from(stat.modified().ok()?)),
                    size: Some(stat.len() as i64),
                    e_tag: Some(ETag::Strong(etag)),
                    ..Default::default()
                });
            }
        }
        let max_keys = input.max_keys.unwrap_or(1000);
        if objects.len() + folders.len() > usize::try_from(max_keys).ok()? {
            return None;
        }
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        folders.sort();
        Some(Ok(ListObjectsV2Output {
            key_count: Some((objects.len() + folders.len()) as i32),
            max_keys: Some(max_keys),
            is_truncated: Some(false),
            contents: (!objects.is_empty()).then_some(objects),
            common_prefixes: (!folders.is_empty()).then(|| {
                folders
                    .into_iter()
                    .map(|f| CommonPrefix { prefix: Some(f) })
                    .collect()
            }),
            delimiter: input.delimiter.clone(),
            encoding_type: input.encoding_type.clone(),
            name: Some(input.bucket.clone()),
            prefix: input.prefix.clone(),
            ..Default::default()
        }))
    }
}

#[async_trait::async_trait]
impl S3 for Store {
    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        self.fs.create_bucket(req).await
    }
    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.fs.head_bucket(req).await
    }
    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.fs.get_bucket_location(req).await
    }
    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        self.fs.list_buckets(req).await
    }
    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        self.fs.put_object(req).await
    }
    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        self.fs.delete_object(req).await
    }
    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        match self.read_whole(&req.input) {
            Some(output) => output.map(S3Response::new),
            None => self.fs.get_object(req).await,
        }
    }
    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        self.fs.head_object(req).await
    }
    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        self.fs.list_objects(req).await
    }
    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let mut resp = match self.list_folder(&req.input) {
            Some(output) => S3Response::new(output?),
            None => self.fs.list_objects_v2(req).await?,
        };
        let glacier = self.state.faults.lock().unwrap().glacier.clone();
        if let Some(contents) = resp.output.contents.as_mut() {
            for object in contents.iter_mut() {
                let key = object.key.clone().unwrap_or_default();
                if glacier.iter().any(|g| key.contains(g.as_str())) {
                    object.storage_class =
                        Some(ObjectStorageClass::from_static(ObjectStorageClass::GLACIER));
                }
            }
        }
        Ok(resp)
    }
}

fn full(status: u16, content_type: &str, body: String) -> Reply {
    hyper::Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)).map_err(|e| match e {}).boxed())
        .unwrap()
}

fn s3_error(status: u16, code: &str, message: &str) -> Reply {
    full(
        status,
        "application/xml",
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{message}</Message><RequestId>test</RequestId></Error>"
        ),
    )
}

fn form_value<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    body.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then_some(v)
    })
}

fn list_public_keys(state: &State) -> Reply {
    let keys: Vec<String> = state
        .keys
        .lock()
        .unwrap()
        .iter()
        .map(|(der, from, to)| {
            format!(
                r#"{{"Value":"{}","ValidityStartTime":{from},"ValidityEndTime":{to},"Fingerprint":"{}"}}"#,
                base64::engine::general_purpose::STANDARD.encode(der),
                trailproof::keys::fingerprint(der)
            )
        })
        .collect();
    full(
        200,
        "application/x-amz-json-1.1",
        format!(r#"{{"PublicKeyList":[{}]}}"#, keys.join(",")),
    )
}

/// The CloudTrail, Organizations and STS calls.
fn aws_services(
    state: &State,
    faults: &Faults,
    path: &str,
    target: Option<&str>,
    action: Option<&str>,
) -> Reply {
    let json = |status: u16, body: String| full(status, "application/x-amz-json-1.1", body);
    if path == "/listRegions" {
        return full(
            200,
            "application/json",
            state.services.lock().unwrap().regions.clone(),
        );
    }
    // The operation is the target's last part: the SDK sends `CloudTrail_20131101.Op`, the AWS
    // CLI `com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.Op`.
    match target.and_then(|t| t.rsplit_once('.')) {
        Some((_, "ListPublicKeys")) if faults.deny_keys => json(
            400,
            r#"{"__type":"AccessDeniedException","message":"not allowed to list public keys"}"#.into(),
        ),
        Some((_, "ListPublicKeys")) => list_public_keys(state),
        Some((_, "DescribeTrails")) => json(200, state.services.lock().unwrap().describe_trails.clone()),
        Some((_, "GetTrailStatus")) => json(200, state.services.lock().unwrap().trail_status.clone()),
        Some((_, "ListAccounts")) => json(200, state.services.lock().unwrap().accounts.clone()),
        Some((_, other)) => json(
            400,
            format!(r#"{{"__type":"UnknownOperationException","message":"{other} is not served here"}}"#),
        ),
        None => match action {
            Some("AssumeRole") if faults.deny_assume_role => full(
                403,
                "text/xml",
                r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: arn:aws:iam::999999999999:user/auditor is not authorized to perform: sts:AssumeRole</Message></Error><RequestId>r3</RequestId></ErrorResponse>"#.into(),
            ),
            Some(action) => sts(action),
            None => s3_error(400, "InvalidAction", "no Action"),
        },
    }
}

fn sts(action: &str) -> Reply {
    let body = match action {
        "AssumeRole" => format!(
            r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials><AccessKeyId>{ACCESS_KEY}</AccessKeyId><SecretAccessKey>{SECRET_KEY}</SecretAccessKey><SessionToken>{SESSION_TOKEN}</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials><AssumedRoleUser><AssumedRoleId>AROATEST:trailproof</AssumedRoleId><Arn>arn:aws:sts::999999999999:assumed-role/reader/trailproof</Arn></AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>r1</RequestId></ResponseMetadata></AssumeRoleResponse>"#
        ),
        "GetCallerIdentity" => format!(
            r#"<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>{CALLER_ARN}</Arn><UserId>AIDATEST</UserId><Account>999999999999</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>r2</RequestId></ResponseMetadata></GetCallerIdentityResponse>"#
        ),
        other => return s3_error(400, "InvalidAction", other),
    };
    full(200, "text/xml", body)
}

/// Answers one request: S3's on the S3 endpoint, the other services' on theirs (`services`).
async fn handle(
    state: Arc<State>,
    service: s3s::service::S3Service,
    services: bool,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<Reply, std::io::Error> {
    let faults = state.faults.lock().unwrap().clone();
    if !faults.delay.is_zero() {
        tokio::time::sleep(faults.delay).await;
    }
    let n = state.counter.fetch_add(1, Ordering::SeqCst) + 1;
    if faults.stall_every > 0 && n % faults.stall_every == 0 {
        tokio::time::sleep(faults.stall).await;
    }
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let region = header("authorization").and_then(|a| {
        let scope = a.split("Credential=").nth(1)?.split(',').next()?;
        scope.split('/').nth(2).map(str::to_string)
    });
    let text = String::from_utf8_lossy(&body).into_owned();
    let target = header("x-amz-target");
    let is_form =
        header("content-type").is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    let action = target.clone().or_else(|| {
        (is_form && parts.uri.path() == "/")
            .then(|| form_value(&text, "Action").unwrap_or("").to_string())
    });
    let query = parts.uri.query().unwrap_or("").to_string();
    let signed_for = region.clone();
    state.requests.lock().unwrap().push(Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: query.clone(),
        action: action.clone(),
        region,
        security_token: header("x-amz-security-token"),
        body: if action.is_some() {
            text.clone()
        } else {
            String::new()
        },
        services,
    });

    if services {
        return Ok(aws_services(
            &state,
            &faults,
            parts.uri.path(),
            target.as_deref(),
            action.as_deref(),
        ));
    }
    if let Some(home) = &faults.bucket_region {
        let bucket_only = parts.uri.path().trim_matches('/').split('/').count() == 1;
        if signed_for.as_deref() != Some(home.as_str()) {
            let mut reply = s3_error(
                301,
                "PermanentRedirect",
                "The bucket you are attempting to access must be addressed using the specified endpoint.",
            );
            reply
                .headers_mut()
                .insert("x-amz-bucket-region", home.parse().unwrap());
            return Ok(reply);
        }
        if parts.method == hyper::Method::HEAD && bucket_only {
            let mut reply = full(200, "application/xml", String::new());
            reply
                .headers_mut()
                .insert("x-amz-bucket-region", home.parse().unwrap());
            return Ok(reply);
        }
    }
    // A request that was just reset or throttled is let through when it is sent again: the
    // every-Nth counter is shared by concurrent requests, and how they interleave must not
    // decide whether one request's retries run out.
    let again = {
        let identity = format!("{} {}", parts.method, parts.uri);
        let mut faulted = state.faulted.lock().unwrap();
        let reset = faults.reset_every > 0 && n % faults.reset_every == 0;
        let slow = faults.slow_down_every > 0 && n % faults.slow_down_every == 0;
        if faulted.remove(&identity) {
            None
        } else if reset || slow {
            faulted.insert(identity);
            Some(reset)
        } else {
            None
        }
    };
    if again == Some(true) {
        return Err(std::io::Error::other("injected connection reset"));
    }
    if again == Some(false) {
        return Ok(s3_error(
            503,
            "SlowDown",
            "Please reduce your request rate.",
        ));
    }
    let path = percent_decode(parts.uri.path());
    let key = path
        .trim_start_matches('/')
        .split_once('/')
        .map(|(_, k)| k.to_string())
        .unwrap_or_default();
    let is_read = parts.method == hyper::Method::GET || parts.method == hyper::Method::HEAD;
    if is_read && !key.is_empty() && faults.deny_get.iter().any(|d| key.contains(d.as_str())) {
        return Ok(s3_error(403, "AccessDenied", "Access Denied"));
    }
    if is_read && query.contains("list-type=2") {
        let prefix = query
            .split('&')
            .find_map(|p| p.strip_prefix("prefix="))
            .map(percent_decode)
            .unwrap_or_default();
        if faults.deny_list.iter().any(|d| prefix.contains(d.as_str())) {
            return Ok(s3_error(403, "AccessDenied", "Access Denied"));
        }
    }
    let truncate = parts.method == hyper::Method::GET
        && !key.is_empty()
        && !query.contains("list-type")
        && faults.truncate_every > 0
        && {
            let mut gets = state.gets.lock().unwrap();
            let count = gets.entry(key.clone()).or_default();
            *count += 1;
            (*count - 1) % faults.truncate_every == 0
        };
    let req = hyper::Request::from_parts(parts, s3s::Body::from(body));
    let resp = service
        .call(req)
        .await
        .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
    let (parts, body) = resp.into_parts();
    if truncate && parts.status.is_success() {
        let bytes = body
            .collect()
            .await
            .map_err(std::io::Error::other)?
            .to_bytes();
        let half = bytes.slice(..bytes.len() / 2);
        let frames: Vec<Result<Frame<Bytes>, BoxError>> =
            vec![Ok(Frame::data(half)), Err("injected truncation".into())];
        let stream = StreamBody::new(futures::stream::iter(frames));
        return Ok(hyper::Response::from_parts(parts, stream.boxed()));
    }
    Ok(hyper::Response::from_parts(
        parts,
        body.map_err(|e| -> BoxError { e }).boxed(),
    ))
}

/// Whether a file lies anywhere under `dir`.
fn holds_a_file(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            e.file_type()
                .is_ok_and(|t| !t.is_dir() || holds_a_file(&e.path()))
        })
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Options that send S3 calls to `s3` and CloudTrail's and STS's to `services`, in us-east-1,
/// signed with these credentials.
pub fn endpoint_options(
    s3: &str,
    services: &str,
    key: &str,
    secret: &str,
) -> trailproof::aws::AwsOptions {
    trailproof::aws::AwsOptions {
        endpoint_url: Some(s3.to_string()),
        cloudtrail_endpoint_url: Some(services.to_string()),
        sts_endpoint_url: Some(services.to_string()),
        region: Some("us-east-1".into()),
        static_credentials: Some((key.into(), secret.into())),
        ..trailproof::aws::AwsOptions::default()
    }
}

impl S3Server {
    /// Options that send S3 calls to this server's S3 endpoint and the others to its services
    /// endpoint, signed with the test credentials.
    pub fn aws_options(&self) -> trailproof::aws::AwsOptions {
        endpoint_options(&self.endpoint, &self.aws_endpoint, ACCESS_KEY, SECRET_KEY)
    }

    /// The environment that points the binary at this server, as a user would set it: S3 by
    /// `--endpoint-url` (given separately), CloudTrail and STS by their own variables.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL_CLOUDTRAIL", self.aws_endpoint.clone()),
            ("AWS_ENDPOINT_URL_STS", self.aws_endpoint.clone()),
            ("AWS_ENDPOINT_URL_ACCOUNT", self.aws_endpoint.clone()),
            ("AWS_ENDPOINT_URL_ORGANIZATIONS", self.aws_endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_string()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_string()),
            ("AWS_REGION", "us-east-1".to_string()),
        ]
    }

    /// Answers ListPublicKeys with the public half of `signer`, valid 2023 to 2030.
    pub fn trust(&self, signer: &rsa::RsaPrivateKey) {
        use rsa::pkcs1::EncodeRsaPublicKey;
        let der = signer.to_public_key().to_pkcs1_der().unwrap();
        self.state.keys.lock().unwrap().push((
            der.as_bytes().to_vec(),
            1_672_531_200,
            1_893_456_000,
        ));
    }

    /// Starts a server storing its buckets under `root`.
    pub fn start(root: &Path) -> S3Server {
        std::fs::create_dir_all(root).unwrap();
        let state = Arc::new(State {
            requests: Mutex::new(Vec::new()),
            faults: Mutex::new(Faults::default()),
            keys: Mutex::new(Vec::new()),
            services: Mutex::new(Services::default()),
            counter: AtomicU64::new(0),
            gets: Mutex::new(std::collections::HashMap::new()),
            faulted: Mutex::new(std::collections::HashSet::new()),
        });
        let fs = s3s_fs::FileSystem::new(root).unwrap();
        let mut builder = s3s::service::S3ServiceBuilder::new(Store {
            fs,
            root: root.to_path_buf(),
            state: state.clone(),
        });
        builder.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = builder.build();
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel::<SocketAddr>();
        let thread_state = state.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let s3 = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let others = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(s3.local_addr().unwrap()).unwrap();
                addr_tx.send(others.local_addr().unwrap()).unwrap();
                loop {
                    let (stream, services) = tokio::select! {
                        r = s3.accept() => match r { Ok((c, _)) => (c, false), Err(_) => continue },
                        r = others.accept() => match r { Ok((c, _)) => (c, true), Err(_) => continue },
                        _ = &mut stop_rx => break,
                    };
                    // Small objects stall on Nagle's algorithm without this.
                    let _ = stream.set_nodelay(true);
                    let state = thread_state.clone();
                    let service = service.clone();
                    tokio::spawn(async move {
                        let svc = hyper::service::service_fn(move |req| {
                            let state = state.clone();
                            let service = service.clone();
                            async move { handle(state, service, services, req).await }
                        });
                        let _ = hyper_util::server::conn::auto::Builder::new(
                            hyper_util::rt::TokioExecutor::new(),
                        )
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                    });
                }
            });
        });
        let addr = addr_rx.recv().unwrap();
        let services = addr_rx.recv().unwrap();
        S3Server {
            endpoint: format!("http://{addr}"),
            aws_endpoint: format!("http://{services}"),
            state,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }
}
