//! A signed, CloudTrail-shaped bucket made to order, and damaged on purpose.
//!
//! Used by the tests, the benchmarks and the bundled demo bucket, and by users who want to drill
//! their own detection: every error finding kind has a `--tamper` that causes it. Output is a pure
//! function of the spec and the signing key (PKCS#1 v1.5 signatures are deterministic, gzip
//! headers carry no time, the "random" content comes from a seeded generator), so the same
//! arguments give byte-identical buckets.
//!
//! Accounts, regions and trails form a grid; the chain restart, the backfill digest and every
//! tamper apply to the first scope of the grid (first account, region and trail), at the middle
//! hour unless the tamper says otherwise, so a test knows exactly which keys to expect.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use chrono::Duration;
use rsa::pkcs1::EncodeRsaPublicKey;
use rsa::pkcs8::EncodePublicKey;
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::digest::{signing_string, SIGNATURE_ALGORITHM};
use crate::hash::{gzip, sha256_hex};
use crate::keys::fingerprint;
use crate::layout::{
    digest_key, format_time, is_account, is_org_id, log_key, Location, ScopeId, Timestamp,
};
use crate::store::local::{Manifest, MANIFEST, METADATA_SUFFIX};

/// `[<prefix>/][<o-org id>/]<account>`: where an account's trail delivers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountSpec {
    pub prefix: String,
    pub org_id: Option<String>,
    pub account: String,
}

impl FromStr for AccountSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<AccountSpec, String> {
        let mut parts: Vec<&str> = s.split('/').collect();
        let account = parts.pop().unwrap_or_default();
        if !is_account(account) {
            return Err(format!(
                "{s:?}: the last part must be a 12-digit account id"
            ));
        }
        let org_id = match parts.last() {
            Some(o) if o.starts_with("o-") => {
                if !is_org_id(o) {
                    return Err(format!("{s:?}: {o:?} is not an organization id (o- and 10-32 lowercase letters or digits)"));
                }
                parts.pop().map(str::to_string)
            }
            _ => None,
        };
        if parts
            .iter()
            .any(|p| p.is_empty() || *p == "." || *p == ".." || *p == "AWSLogs")
        {
            return Err(format!("{s:?}: the prefix must be plain folder names"));
        }
        Ok(AccountSpec {
            prefix: parts.join("/"),
            org_id,
            account: account.to_string(),
        })
    }
}

/// Which DER encoding of the public key the digests' fingerprint names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyEncoding {
    /// PKCS#1 `RSAPublicKey`, as CloudTrail serves its keys.
    #[default]
    Pkcs1,
    /// SubjectPublicKeyInfo.
    Spki,
}

macro_rules! tampers {
    ($($variant:ident = $name:literal : $help:literal,)*) => {
        /// Damage the simulator can do, each named after what it does.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
        pub enum Tamper { $($variant,)* }

        impl Tamper {
            pub const ALL: &'static [Tamper] = &[$(Tamper::$variant,)*];
            pub fn name(self) -> &'static str {
                match self { $(Tamper::$variant => $name,)* }
            }
            pub fn help(self) -> &'static str {
                match self { $(Tamper::$variant => $help,)* }
            }
        }
    };
}

tampers! {
    LogModified = "log-modified": "rewrite a log with other content (valid gzip, other hash)",
    LogDeleted = "log-deleted": "delete a log",
    LogUncompressed = "log-uncompressed": "store a log as plain JSON",
    LogSecondMember = "log-second-member": "append a second gzip member to a log",
    LogTrailingBytes = "log-trailing-bytes": "append junk bytes to a log",
    LogTruncated = "log-truncated": "cut the 8-byte gzip trailer off a log",
    LogUnlisted = "log-unlisted": "add a log that no digest lists",
    LogPending = "log-pending": "add a log newer than the newest digest",
    DigestDeleted = "digest-deleted": "delete the middle digest",
    TwoDigestsDeleted = "two-digests-deleted": "delete the middle digest and the one after it",
    NewestDigestsDeleted = "newest-digests-deleted": "delete the two newest digests",
    OldestDigestDeleted = "oldest-digest-deleted": "delete the oldest digest",
    DigestReserialized = "digest-reserialized": "re-serialize a digest's JSON with other whitespace",
    DigestLogHashEdited = "digest-log-hash-edited": "edit one log hash inside a digest",
    DigestSignatureMissing = "digest-signature-missing": "remove a digest's signature metadata",
    DigestSignatureNotHex = "digest-signature-not-hex": "make a digest's signature metadata not hex",
    DigestSignatureSwapped = "digest-signature-swapped": "give a digest the signature of the one before",
    DigestSignedSha1 = "digest-signed-sha1": "sign a digest with SHA-1 inside the PKCS#1 block",
    DigestSignedMd5 = "digest-signed-md5": "sign a digest with MD5 inside the PKCS#1 block",
    DigestRelocated = "digest-relocated": "copy a digest to another key",
    DigestMalformed = "digest-malformed": "replace a digest with a truncated gzip stream",
    DigestKeyUnknown = "digest-key-unknown": "sign a digest naming a key fingerprint nobody trusts",
    ChainLinkSignature = "chain-link-signature": "sign a digest whose previousDigestSignature is wrong",
    ChainLinkHash = "chain-link-hash": "sign a digest whose previousDigestHashValue is wrong",
    DigestLogKeyEscape = "digest-log-key-escape": "sign a digest that lists a log key with `..`",
    DigestPreviousKeyEscape = "digest-previous-key-escape": "sign a digest whose previous key is absolute",
    KeyExpired = "key-expired": "end the key's validity (in --public-keys-out) before the middle digest",
    DigestFolderDeleted = "digest-folder-deleted": "delete the first account's CloudTrail-Digest/<region>/ folder of the last region, keeping its logs",
    RegionDeleted = "region-deleted": "delete the first account's digest and log folders of the last region",
    FolderMarkers = "folder-markers": "add zero-byte folder markers (keys ending in /) at every level of the first account's folders, as the S3 console makes them (S3 targets; a folder target gets plain folders)",
}

impl FromStr for Tamper {
    type Err = String;
    fn from_str(s: &str) -> Result<Tamper, String> {
        Tamper::ALL
            .iter()
            .copied()
            .find(|t| t.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Tamper::ALL.iter().map(|t| t.name()).collect();
                format!("unknown tamper {s:?}; one of: {}", names.join(", "))
            })
    }
}

impl fmt::Display for Tamper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The shape of the bucket to make.
#[derive(Clone, Debug)]
pub struct Spec {
    pub bucket: String,
    pub accounts: Vec<AccountSpec>,
    pub regions: Vec<String>,
    pub trails: Vec<String>,
    pub start: Timestamp,
    pub hours: u32,
    pub logs_per_hour: u32,
    /// Mean uncompressed size of a log; sizes vary from a quarter to twice this.
    pub log_bytes: u32,
    /// When set, log sizes are drawn log-uniformly between `log_bytes` and this: many small
    /// logs and a few large ones, as CloudTrail delivers them.
    pub log_bytes_max: Option<u32>,
    pub backfill: bool,
    /// Hour index at which logging is off for an hour, after which a new chain starts.
    pub restart_at: Option<u32>,
    /// Write `/` as `\/` in digest JSON, as CloudTrail sometimes does.
    pub escape_slashes: bool,
    pub key_encoding: KeyEncoding,
    pub tampers: Vec<Tamper>,
    pub seed: u64,
}

impl Default for Spec {
    fn default() -> Spec {
        Spec {
            bucket: "trailproof-sim".into(),
            accounts: vec!["111111111111".parse().expect("valid")],
            regions: vec!["us-east-1".into()],
            trails: vec!["management".into()],
            start: chrono::DateTime::from_timestamp(1_704_067_200, 0).expect("2024-01-01"),
            hours: 6,
            logs_per_hour: 2,
            log_bytes: 4000,
            log_bytes_max: None,
            backfill: false,
            restart_at: None,
            escape_slashes: false,
            key_encoding: KeyEncoding::Pkcs1,
            tampers: Vec::new(),
            seed: 1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("invalid simulation: {0}")]
    Spec(String),
    #[error("signing failed: {0}")]
    Sign(String),
    #[error("{path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// One object of the simulated bucket.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimObject {
    pub bytes: Vec<u8>,
    pub metadata: BTreeMap<String, String>,
}

/// The simulated bucket: objects by key, and the time it is "as of".
#[derive(Clone, Debug)]
pub struct Bucket {
    pub name: String,
    pub objects: BTreeMap<String, SimObject>,
    pub as_of: Timestamp,
    /// The signing key's public half as saved `ListPublicKeys` output, valid for the whole
    /// simulated period (or, with `key-expired`, ending before the middle digest).
    pub public_keys: String,
}

impl Bucket {
    /// The bucket as it stood at `at`, observed ten minutes later: the digests that had ended
    /// by then and the logs they list (CloudTrail delivers a log before the digest that lists
    /// it). For runs that carry a state from one day to the next.
    pub fn as_it_stood(&self, at: Timestamp) -> Bucket {
        let mut kept = BTreeMap::new();
        for (key, object) in &self.objects {
            if crate::layout::parse_digest_key(key).is_none_or(|n| n.end > at) {
                continue;
            }
            let listed = crate::hash::inflate_to_vec(&object.bytes, u64::MAX)
                .ok()
                .and_then(|(content, _)| crate::digest::DigestBody::parse(&content).ok())
                .map(|body| body.logs)
                .unwrap_or_default();
            for log in listed {
                if let Some(o) = self.objects.get(&log.key) {
                    kept.insert(log.key, o.clone());
                }
            }
            kept.insert(key.clone(), object.clone());
        }
        Bucket {
            objects: kept,
            as_of: at + Duration::minutes(10),
            ..self.clone()
        }
    }
}

/// Small deterministic generator (SplitMix64): content needs variety, not secrecy.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn alnum(&mut self, n: usize) -> String {
        const SET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..n)
            .map(|_| SET[self.below(SET.len() as u64) as usize] as char)
            .collect()
    }
    fn hex(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b"0123456789abcdef"[self.below(16) as usize]))
            .collect()
    }
    /// A random identifier in UUID form, as CloudTrail writes event and request IDs.
    fn uuid(&mut self) -> String {
        format!(
            "{}-{}-4{}-a{}-{}",
            self.hex(8),
            self.hex(4),
            self.hex(3),
            self.hex(3),
            self.hex(12)
        )
    }
}

#[derive(Serialize)]
struct LogFileJson {
    #[serde(rename = "s3Bucket")]
    bucket: String,
    #[serde(rename = "s3Object")]
    key: String,
    #[serde(rename = "hashValue")]
    hash: String,
    #[serde(rename = "hashAlgorithm")]
    algorithm: &'static str,
    #[serde(rename = "newestEventTime")]
    newest: String,
    #[serde(rename = "oldestEventTime")]
    oldest: String,
}

/// Field order as CloudTrail writes it.
#[derive(Serialize)]
struct DigestJson {
    #[serde(rename = "awsAccountId")]
    account: String,
    #[serde(rename = "digestStartTime")]
    start: String,
    #[serde(rename = "digestEndTime")]
    end: String,
    #[serde(rename = "digestS3Bucket")]
    bucket: String,
    #[serde(rename = "digestS3Object")]
    key: String,
    #[serde(rename = "digestPublicKeyFingerprint")]
    fingerprint: String,
    #[serde(rename = "digestSignatureAlgorithm")]
    algorithm: &'static str,
    #[serde(rename = "newestEventTime")]
    newest: Option<String>,
    #[serde(rename = "oldestEventTime")]
    oldest: Option<String>,
    #[serde(rename = "previousDigestS3Bucket")]
    prev_bucket: Option<String>,
    #[serde(rename = "previousDigestS3Object")]
    prev_key: Option<String>,
    #[serde(rename = "previousDigestHashValue")]
    prev_hash: Option<String>,
    #[serde(rename = "previousDigestHashAlgorithm")]
    prev_algorithm: Option<&'static str>,
    #[serde(rename = "previousDigestSignature")]
    prev_signature: Option<String>,
    #[serde(rename = "logFiles")]
    logs: Vec<LogFileJson>,
}

/// A digest as written: key, inflated bytes, signature.
#[derive(Clone)]
struct Written {
    key: String,
    sha256: String,
    signature: String,
}

struct Maker<'k> {
    spec: &'k Spec,
    signer: &'k RsaPrivateKey,
    fingerprint: String,
    rng: Rng,
    bucket: Bucket,
    /// For scope 0: digest keys by hour (None where none was written) and log keys by hour.
    digests: Vec<Option<Written>>,
    logs: Vec<Vec<String>>,
    last_end: Timestamp,
}

/// Makes the bucket `spec` describes, signed with `signer`.
pub fn simulate(spec: &Spec, signer: &RsaPrivateKey) -> Result<Bucket, SimError> {
    if spec.accounts.is_empty() || spec.regions.is_empty() || spec.trails.is_empty() {
        return Err(SimError::Spec(
            "at least one account, region and trail are needed".into(),
        ));
    }
    if spec.hours == 0 {
        return Err(SimError::Spec("--hours must be at least 1".into()));
    }
    if !spec.tampers.is_empty() && spec.hours < 4 {
        return Err(SimError::Spec("tampering needs at least 4 hours".into()));
    }
    if !spec.tampers.is_empty() && spec.logs_per_hour == 0 {
        return Err(SimError::Spec(
            "tampering needs at least 1 log per hour".into(),
        ));
    }
    if let Some(r) = spec.restart_at {
        if r == 0 || r + 1 >= spec.hours {
            return Err(SimError::Spec(format!(
                "--restart-at must lie strictly inside the {} hours",
                spec.hours
            )));
        }
    }
    for trail in &spec.trails {
        if trail.is_empty() || trail.contains('/') {
            return Err(SimError::Spec(format!("{trail:?} is not a trail name")));
        }
    }
    let public = signer.to_public_key();
    let der = match spec.key_encoding {
        KeyEncoding::Pkcs1 => public
            .to_pkcs1_der()
            .map(|d| d.as_bytes().to_vec())
            .map_err(|e| e.to_string()),
        KeyEncoding::Spki => public
            .to_public_key_der()
            .map(|d| d.as_bytes().to_vec())
            .map_err(|e| e.to_string()),
    }
    .map_err(SimError::Sign)?;
    let mut maker = Maker {
        spec,
        signer,
        fingerprint: fingerprint(&der),
        rng: Rng(spec.seed),
        bucket: Bucket {
            name: spec.bucket.clone(),
            objects: BTreeMap::new(),
            as_of: spec.start,
            public_keys: String::new(),
        },
        digests: Vec::new(),
        logs: Vec::new(),
        last_end: spec.start,
    };
    let mut index = 0;
    for account in &spec.accounts {
        for region in &spec.regions {
            for trail in &spec.trails {
                let scope = ScopeId {
                    location: Location {
                        prefix: account.prefix.clone(),
                        org_id: account.org_id.clone(),
                        account: account.account.clone(),
                        region: region.clone(),
                    },
                    trail: trail.clone(),
                    home_region: spec.regions[0].clone(),
                };
                maker.scope(&scope, index)?;
                index += 1;
            }
        }
    }
    maker.bucket.as_of = maker.last_end + Duration::minutes(30);
    maker.post_sign()?;
    let valid_to = if spec.tampers.contains(&Tamper::KeyExpired) {
        // Digest end times sit less than 30 minutes past the hour; with the 2-hour tolerance the
        // digests up to the middle hour stay valid and the rest are expired.
        spec.start + Duration::hours(maker.middle() as i64) + Duration::minutes(30)
            - Duration::hours(2)
    } else {
        maker.bucket.as_of + Duration::days(30)
    };
    maker.bucket.public_keys = public_keys_json(&der, spec.start - Duration::days(30), valid_to);
    Ok(maker.bucket)
}

impl Maker<'_> {
    fn put(&mut self, key: String, bytes: Vec<u8>, metadata: BTreeMap<String, String>) {
        self.bucket
            .objects
            .insert(key, SimObject { bytes, metadata });
    }

    fn has(&self, tamper: Tamper) -> bool {
        self.spec.tampers.contains(&tamper)
    }

    fn middle(&self) -> usize {
        self.spec.hours as usize / 2
    }

    /// Writes one scope: logs and a chain of hourly digests.
    fn scope(&mut self, scope: &ScopeId, index: usize) -> Result<(), SimError> {
        let spec = self.spec;
        let first = index == 0;
        // Digest end times are not on the hour; each scope has its own minute and second.
        let offset = Duration::seconds((index as i64 * 197 + 41) % 1800);
        let mut previous: Option<Written> = None;
        let mut backfill_log = None;
        for h in 0..spec.hours as usize {
            let start = spec.start + Duration::hours(h as i64) + offset;
            let end = start + Duration::hours(1);
            if first && spec.restart_at == Some(h as u32) {
                // Logging is off for this hour: no logs, no digest, and the next chain is new.
                previous = None;
                self.digests.push(None);
                self.logs.push(Vec::new());
                continue;
            }
            let mut listed = Vec::new();
            let n = spec.logs_per_hour as i64;
            for i in 0..n {
                let time = minute(start + Duration::seconds(3600 * (i + 1) / (n + 1)));
                let (_, log) = self.make_log(&scope.location, time);
                listed.push(log);
            }
            // Backfill: one log of hour 1 that the regular digest missed.
            if first && spec.backfill && h == 1.min(spec.hours as usize - 1) {
                let time = minute(start + Duration::minutes(59));
                let (_, log) = self.make_log(&scope.location, time);
                backfill_log = Some((start, end, log));
            }
            if first {
                self.logs
                    .push(listed.iter().map(|l| l.key.clone()).collect());
            }
            let written = self.digest(
                scope,
                start,
                end,
                previous.as_ref(),
                listed,
                first && h == self.middle(),
                false,
            )?;
            if first {
                self.digests.push(Some(written.clone()));
            }
            previous = Some(written);
            self.last_end = self.last_end.max(end);
        }
        if let Some((start, end, log)) = backfill_log {
            self.digest(scope, start, end, None, vec![log], false, true)?;
        }
        Ok(())
    }

    /// Makes and stores one log, returning its key and a digest's record of it.
    fn make_log(&mut self, location: &Location, time: Timestamp) -> (String, LogFileJson) {
        let unique = self.rng.alnum(16);
        let key = log_key(location, time, &unique);
        let target = match self.spec.log_bytes_max {
            Some(max) if max > self.spec.log_bytes => {
                let (lo, hi) = ((self.spec.log_bytes as f64).ln(), (max as f64).ln());
                let u = self.rng.below(1 << 20) as f64 / (1u64 << 20) as f64;
                (lo + (hi - lo) * u).exp() as u64
            }
            _ => {
                (self.spec.log_bytes / 4) as u64
                    + self.rng.below(self.spec.log_bytes as u64 * 7 / 4 + 1)
            }
        };
        let content = log_content(&mut self.rng, location, time, target as usize);
        let log = LogFileJson {
            bucket: self.spec.bucket.clone(),
            key: key.clone(),
            hash: sha256_hex(&content),
            algorithm: "SHA-256",
            newest: format_time(time),
            oldest: format_time(time - Duration::minutes(4)),
        };
        self.bucket.objects.insert(
            key.clone(),
            SimObject {
                bytes: gzip(&content),
                metadata: BTreeMap::new(),
            },
        );
        (key, log)
    }

    #[allow(clippy::too_many_arguments)]
    fn digest(
        &mut self,
        scope: &ScopeId,
        start: Timestamp,
        end: Timestamp,
        previous: Option<&Written>,
        mut logs: Vec<LogFileJson>,
        target: bool,
        backfill: bool,
    ) -> Result<Written, SimError> {
        let spec = self.spec;
        let key = digest_key(scope, end, backfill);
        let mut fp = self.fingerprint.clone();
        let mut prev = previous.cloned();
        if target {
            if self.has(Tamper::DigestKeyUnknown) {
                fp = fingerprint(b"a key nobody trusts");
            }
            if let Some(p) = prev.as_mut() {
                if self.has(Tamper::ChainLinkSignature) {
                    p.signature = flip_hex(&p.signature);
                }
                if self.has(Tamper::ChainLinkHash) {
                    p.sha256 = flip_hex(&p.sha256);
                }
                if self.has(Tamper::DigestPreviousKeyEscape) {
                    p.key = "/etc/passwd".into();
                }
            }
            if self.has(Tamper::DigestLogKeyEscape) {
                if let Some(first) = logs.first_mut() {
                    first.key =
                        format!("../outside/{}", first.key.rsplit('/').next().unwrap_or("x"));
                }
            }
        }
        let body = DigestJson {
            account: scope.location.account.clone(),
            start: format_time(start),
            end: format_time(end),
            bucket: spec.bucket.clone(),
            key: key.clone(),
            fingerprint: fp,
            algorithm: SIGNATURE_ALGORITHM,
            newest: logs.iter().map(|l| l.newest.clone()).max(),
            oldest: logs.iter().map(|l| l.oldest.clone()).min(),
            prev_bucket: prev.as_ref().map(|_| spec.bucket.clone()),
            prev_key: prev.as_ref().map(|p| p.key.clone()),
            prev_hash: prev.as_ref().map(|p| p.sha256.clone()),
            prev_algorithm: prev.as_ref().map(|_| "SHA-256"),
            prev_signature: prev.as_ref().map(|p| p.signature.clone()),
            logs,
        };
        let mut json = serde_json::to_string(&body).expect("digest JSON");
        if spec.escape_slashes {
            // Only string values contain `/`, so this escapes exactly what CloudTrail escapes.
            json = json.replace('/', "\\/");
        }
        let sha256 = sha256_hex(json.as_bytes());
        let message = signing_string(
            &body.end,
            &spec.bucket,
            &key,
            &sha256,
            body.prev_signature.as_deref(),
        );
        let scheme = match () {
            _ if target && self.has(Tamper::DigestSignedSha1) => Scheme::Sha1,
            _ if target && self.has(Tamper::DigestSignedMd5) => Scheme::Md5,
            _ => Scheme::Sha256,
        };
        let signature = hex::encode(sign(self.signer, message.as_bytes(), scheme)?);
        let mut metadata = BTreeMap::from([
            ("signature".to_string(), signature.clone()),
            (
                "signature-algorithm".to_string(),
                SIGNATURE_ALGORITHM.to_string(),
            ),
        ]);
        if backfill {
            metadata.insert(
                "backfill-generation-timestamp".into(),
                format_time(
                    spec.start + Duration::hours(spec.hours as i64) + Duration::minutes(20),
                ),
            );
        }
        self.put(key.clone(), gzip(json.as_bytes()), metadata);
        Ok(Written {
            key,
            sha256,
            signature,
        })
    }

    /// Damage done after signing, to scope 0.
    fn post_sign(&mut self) -> Result<(), SimError> {
        let m = self.middle();
        let digest_at = |s: &Self, h: usize| -> Result<Written, SimError> {
            s.digests.get(h).cloned().flatten().ok_or_else(|| {
                SimError::Spec(format!("hour {h} has no digest to tamper with (restart?)"))
            })
        };
        let log_at = |s: &Self, h: usize| -> Result<String, SimError> {
            s.logs
                .get(h)
                .and_then(|l| l.first().cloned())
                .ok_or_else(|| SimError::Spec(format!("hour {h} has no log to tamper with")))
        };
        for tamper in self.spec.tampers.clone() {
            match tamper {
                Tamper::LogModified => {
                    let key = log_at(self, m)?;
                    let o = self.object(&key);
                    let mut content = crate::hash::inflate_to_vec(&o.bytes, u64::MAX)
                        .expect("own gzip")
                        .0;
                    let at = content.len() / 2;
                    content[at] = if content[at] == b'a' { b'b' } else { b'a' };
                    o.bytes = gzip(&content);
                }
                Tamper::LogDeleted => {
                    let key = log_at(self, m)?;
                    self.bucket.objects.remove(&key);
                }
                Tamper::LogUncompressed => {
                    let key = log_at(self, m)?;
                    let o = self.object(&key);
                    o.bytes = crate::hash::inflate_to_vec(&o.bytes, u64::MAX)
                        .expect("own gzip")
                        .0;
                }
                Tamper::LogSecondMember => {
                    let key = log_at(self, m)?;
                    self.object(&key).bytes.extend(gzip(b"{\"Records\":[]}"));
                }
                Tamper::LogTrailingBytes => {
                    let key = log_at(self, m)?;
                    self.object(&key).bytes.extend_from_slice(b"\n\0junk");
                }
                Tamper::LogTruncated => {
                    let key = log_at(self, m)?;
                    let o = self.object(&key);
                    o.bytes.truncate(o.bytes.len() - 8);
                }
                Tamper::LogUnlisted | Tamper::LogPending => {
                    let key = log_at(self, m)?;
                    let location = crate::layout::parse_log_key(&key)
                        .expect("own key")
                        .location;
                    let time = if tamper == Tamper::LogUnlisted {
                        minute(self.spec.start + Duration::hours(m as i64) + Duration::minutes(33))
                    } else {
                        minute(self.last_end + Duration::minutes(10))
                    };
                    let (key, _) = self.make_log(&location, time);
                    debug_assert!(self.bucket.objects.contains_key(&key));
                }
                Tamper::DigestDeleted => self.delete_digest(m)?,
                Tamper::TwoDigestsDeleted => {
                    self.delete_digest(m)?;
                    self.delete_digest(m + 1)?;
                }
                Tamper::DigestFolderDeleted | Tamper::RegionDeleted => {
                    let root = self.first_account_root()?;
                    let region = self.spec.regions.last().cloned().unwrap_or_default();
                    let mut gone = vec![format!("{root}CloudTrail-Digest/{region}/")];
                    if tamper == Tamper::RegionDeleted {
                        gone.push(format!("{root}CloudTrail/{region}/"));
                    }
                    self.bucket
                        .objects
                        .retain(|k, _| !gone.iter().any(|g| k.starts_with(g.as_str())));
                }
                Tamper::FolderMarkers => {
                    let root = self.first_account_root()?;
                    let mut markers = std::collections::BTreeSet::new();
                    for key in self.bucket.objects.keys().filter(|k| k.starts_with(&root)) {
                        let mut at = 0;
                        while let Some(i) = key[at..].find('/') {
                            at += i + 1;
                            markers.insert(key[..at].to_string());
                        }
                    }
                    for marker in markers {
                        self.bucket.objects.insert(marker, SimObject::default());
                    }
                }
                Tamper::NewestDigestsDeleted => {
                    let n = self.digests.len();
                    self.delete_digest(n - 1)?;
                    self.delete_digest(n - 2)?;
                }
                Tamper::OldestDigestDeleted => self.delete_digest(0)?,
                Tamper::DigestReserialized => {
                    let d = digest_at(self, m)?;
                    self.edit_digest_json(&d.key, |v| {
                        serde_json::to_string_pretty(v).expect("json")
                    });
                }
                Tamper::DigestLogHashEdited => {
                    let d = digest_at(self, m)?;
                    self.edit_digest_json(&d.key, |v| {
                        let mut v = v.clone();
                        let hash = &mut v["logFiles"][0]["hashValue"];
                        *hash = serde_json::Value::String(flip_hex(hash.as_str().unwrap_or("00")));
                        serde_json::to_string(&v).expect("json")
                    });
                }
                Tamper::DigestSignatureMissing => {
                    let d = digest_at(self, m)?;
                    self.object(&d.key).metadata.remove("signature");
                }
                Tamper::DigestSignatureNotHex => {
                    let d = digest_at(self, m)?;
                    self.object(&d.key)
                        .metadata
                        .insert("signature".into(), "not-a-hex-signature!".into());
                }
                Tamper::DigestSignatureSwapped => {
                    let d = digest_at(self, m)?;
                    let before = digest_at(self, m - 1)?;
                    self.object(&d.key)
                        .metadata
                        .insert("signature".into(), before.signature);
                }
                Tamper::DigestRelocated => {
                    // A copy of the middle digest under the key of a digest half an hour later.
                    let d = digest_at(self, m)?;
                    let mut name = crate::layout::parse_digest_key(&d.key).expect("own key");
                    name.end += Duration::minutes(30);
                    let copy = self.object(&d.key).clone();
                    self.bucket
                        .objects
                        .insert(digest_key(&name.scope, name.end, false), copy);
                }
                Tamper::DigestMalformed => {
                    let d = digest_at(self, m)?;
                    let o = self.object(&d.key);
                    o.bytes.truncate(o.bytes.len() / 2);
                }
                // Done before signing.
                Tamper::DigestSignedSha1
                | Tamper::DigestSignedMd5
                | Tamper::DigestKeyUnknown
                | Tamper::ChainLinkSignature
                | Tamper::ChainLinkHash
                | Tamper::DigestLogKeyEscape
                | Tamper::DigestPreviousKeyEscape
                | Tamper::KeyExpired => {}
            }
        }
        Ok(())
    }

    fn object(&mut self, key: &str) -> &mut SimObject {
        self.bucket
            .objects
            .get_mut(key)
            .expect("tamper target exists")
    }

    /// The first account's folder (`[prefix/]AWSLogs/[org/]account/`).
    fn first_account_root(&self) -> Result<String, SimError> {
        self.digests
            .iter()
            .flatten()
            .find_map(|d| crate::layout::parse_digest_key(&d.key))
            .map(|n| n.scope.location.account_root())
            .ok_or_else(|| SimError::Spec("the bucket has no digest to find its account by".into()))
    }

    fn delete_digest(&mut self, h: usize) -> Result<(), SimError> {
        let d = self
            .digests
            .get(h)
            .cloned()
            .flatten()
            .ok_or_else(|| SimError::Spec(format!("hour {h} has no digest to delete")))?;
        self.bucket.objects.remove(&d.key);
        Ok(())
    }

    fn edit_digest_json(&mut self, key: &str, edit: impl FnOnce(&serde_json::Value) -> String) {
        let o = self.object(key);
        let content = crate::hash::inflate_to_vec(&o.bytes, u64::MAX)
            .expect("own gzip")
            .0;
        let value: serde_json::Value = serde_json::from_slice(&content).expect("own json");
        o.bytes = gzip(edit(&value).as_bytes());
    }
}

/// `ListPublicKeys` output for one key (`der`, the encoding the digests name), as the AWS CLI
/// saves it.
fn public_keys_json(der: &[u8], from: Timestamp, to: Timestamp) -> String {
    use base64::Engine;
    let doc = serde_json::json!({
        "PublicKeyList": [{
            "Value": base64::engine::general_purpose::STANDARD.encode(der),
            "ValidityStartTime": from.timestamp(),
            "ValidityEndTime": to.timestamp(),
            "Fingerprint": fingerprint(der),
        }]
    });
    serde_json::to_string_pretty(&doc).expect("keys JSON") + "\n"
}

fn minute(t: Timestamp) -> Timestamp {
    chrono::DateTime::from_timestamp(t.timestamp() / 60 * 60, 0).expect("in range")
}

/// Changes the first hex digit, so the value stays hex but is wrong.
fn flip_hex(s: &str) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    if let Some(c) = chars.first_mut() {
        *c = if *c == '0' { '1' } else { '0' };
    }
    chars.into_iter().collect()
}

enum Scheme {
    Sha256,
    Sha1,
    Md5,
}

fn sign(key: &RsaPrivateKey, message: &[u8], scheme: Scheme) -> Result<Vec<u8>, SimError> {
    let result = match scheme {
        Scheme::Sha256 => key.sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(message)),
        Scheme::Sha1 => key.sign(
            Pkcs1v15Sign::new::<sha1::Sha1>(),
            &sha1::Sha1::digest(message),
        ),
        Scheme::Md5 => key.sign(Pkcs1v15Sign::new::<md5::Md5>(), &md5::Md5::digest(message)),
    };
    result.map_err(|e| SimError::Sign(e.to_string()))
}

const EVENTS: &[(&str, &str, bool)] = &[
    ("ec2.amazonaws.com", "DescribeInstances", true),
    ("s3.amazonaws.com", "GetBucketAcl", true),
    ("sts.amazonaws.com", "AssumeRole", false),
    ("iam.amazonaws.com", "ListRoles", true),
    ("kms.amazonaws.com", "Decrypt", true),
    (
        "lambda.amazonaws.com",
        "UpdateFunctionCode20150331v2",
        false,
    ),
    ("logs.amazonaws.com", "CreateLogStream", false),
    ("ssm.amazonaws.com", "GetParameter", true),
];

/// The `requestParameters` and `responseElements` of one event at `time`, as JSON values. Names
/// of things come from small pools; what real calls make fresh (session names, access keys,
/// build artifacts, log streams) is random, and is most of what keeps real logs from compressing
/// further.
fn event_details(
    rng: &mut Rng,
    name: &str,
    location: &Location,
    role: &str,
    time: Timestamp,
) -> (String, String) {
    let (a, region) = (&location.account, &location.region);
    let function = rng.below(6);
    match name {
        "DescribeInstances" => (
            format!(
                r#"{{"instancesSet":{{"items":[{{"instanceId":"i-0{:016x}"}}]}},"filterSet":{{}}}}"#,
                // A fleet of long-lived instances.
                (rng.below(24) + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 4
            ),
            "null".into(),
        ),
        "GetBucketAcl" => (
            format!(
                r#"{{"bucketName":"{a}-data-{n}","Host":"{a}-data-{n}.s3.{region}.amazonaws.com","acl":""}}"#,
                n = rng.below(4)
            ),
            "null".into(),
        ),
        "AssumeRole" => (
            format!(
                r#"{{"roleArn":"arn:aws:iam::{a}:role/{role}","roleSessionName":"session-{}","durationSeconds":3600}}"#,
                rng.hex(8)
            ),
            format!(
                concat!(
                    r#"{{"credentials":{{"accessKeyId":"ASIA{}","expiration":"Jan 1, 2025, 1:00:00 AM"}},"#,
                    r#""assumedRoleUser":{{"assumedRoleId":"AROA{a}{role}:session","arn":"arn:aws:sts::{a}:assumed-role/{role}/session"}}}}"#
                ),
                rng.alnum(16).to_uppercase(),
                a = a,
                role = role,
            ),
        ),
        "Decrypt" => (
            format!(
                concat!(
                    r#"{{"encryptionAlgorithm":"SYMMETRIC_DEFAULT","encryptionContext":{{"#,
                    r#""aws:lambda:FunctionArn":"arn:aws:lambda:{region}:{a}:function:worker-{f}"}}}}"#
                ),
                region = region,
                a = a,
                f = function
            ),
            "null".into(),
        ),
        "UpdateFunctionCode20150331v2" => (
            format!(
                r#"{{"functionName":"worker-{function}","s3Bucket":"{a}-builds","s3Key":"builds/{}.zip","publish":false}}"#,
                rng.uuid()
            ),
            format!(
                r#"{{"functionName":"worker-{function}","codeSha256":"{}=","codeSize":{},"revisionId":"{}"}}"#,
                rng.alnum(43),
                rng.below(50_000_000),
                rng.uuid()
            ),
        ),
        "CreateLogStream" => (
            format!(
                r#"{{"logGroupName":"/aws/lambda/worker-{function}","logStreamName":"{}/[$LATEST]{}"}}"#,
                time.format("%Y/%m/%d"),
                rng.hex(32)
            ),
            "null".into(),
        ),
        "GetParameter" => (
            format!(
                r#"{{"name":"/app/{}/config","withDecryption":true}}"#,
                ["api", "web", "batch", "etl"][rng.below(4) as usize]
            ),
            "null".into(),
        ),
        _ => ("null".into(), "null".into()),
    }
}

/// CloudTrail-like records (`{"Records":[…]}`) totalling about `target` bytes. Principals and
/// resources come from small pools, as in real trails where a few make most calls; event and
/// request IDs are random UUIDs, as CloudTrail's are. Logs of 100 KB and more compress 10–20×.
fn log_content(rng: &mut Rng, location: &Location, time: Timestamp, target: usize) -> Vec<u8> {
    let mut out = String::with_capacity(target + 2048);
    out.push_str("{\"Records\":[");
    let mut first = true;
    while out.len() < target || first {
        if !first {
            out.push(',');
        }
        first = false;
        let (source, name, read_only) = EVENTS[rng.below(EVENTS.len() as u64) as usize];
        let role = ["Admin", "ReadOnly", "Deployer", "Auditor"][rng.below(4) as usize];
        let session = rng.below(12);
        let t = time - Duration::seconds(rng.below(300) as i64);
        let ip = format!("10.{}.{}.{}", rng.below(4), rng.below(16), rng.below(250));
        let a = &location.account;
        let (parameters, response) = event_details(rng, name, location, role, t);
        out.push_str(&format!(
            concat!(
                r#"{{"eventVersion":"1.08","userIdentity":{{"type":"AssumedRole","principalId":"AROA{a}{role}:session-{s}","#,
                r#""arn":"arn:aws:sts::{a}:assumed-role/{role}/session-{s}","accountId":"{a}","accessKeyId":"ASIA{a}{s:04}","#,
                r#""sessionContext":{{"sessionIssuer":{{"type":"Role","principalId":"AROA{a}{role}","arn":"arn:aws:iam::{a}:role/{role}","#,
                r#""accountId":"{a}","userName":"{role}"}},"attributes":{{"creationDate":"{day}T00:00:00Z","mfaAuthenticated":"false"}}}}}},"#,
                r#""eventTime":"{t}","eventSource":"{src}","eventName":"{name}","awsRegion":"{region}","sourceIPAddress":"{ip}","#,
                r#""userAgent":"aws-cli/2.15.{ua} Python/3.11.6 Linux/6.1","requestParameters":{parameters},"responseElements":{response},"#,
                r#""requestID":"{req}","eventID":"{ev}","readOnly":{ro},"eventType":"AwsApiCall","managementEvent":true,"#,
                r#""recipientAccountId":"{a}","eventCategory":"Management","tlsDetails":{{"tlsVersion":"TLSv1.3","#,
                r#""cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":"{host}"}}}}"#
            ),
            a = a,
            role = role,
            s = session,
            day = t.format("%Y-%m-%d"),
            t = format_time(t),
            src = source,
            name = name,
            region = location.region,
            ip = ip,
            ua = rng.below(8),
            parameters = parameters,
            response = response,
            req = rng.uuid(),
            ev = rng.uuid(),
            ro = read_only,
            host = source,
        ));
    }
    out.push_str("]}");
    out.into_bytes()
}

/// Writes the bucket into the folder `dir` (created; must be empty): objects, metadata
/// sidecars for objects that have metadata, and the manifest.
pub fn write_dir(bucket: &Bucket, dir: &Path) -> Result<(), SimError> {
    let err = |path: &Path| {
        let path = path.display().to_string();
        move |source| SimError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(err(dir))?;
    if std::fs::read_dir(dir).map_err(err(dir))?.next().is_some() {
        return Err(SimError::Spec(format!(
            "{} is not empty; simulate writes only into a new or empty folder",
            dir.display()
        )));
    }
    for (key, object) in &bucket.objects {
        let path = dir.join(key);
        // A folder marker: a folder is all a file system can hold of it.
        if key.ends_with('/') {
            std::fs::create_dir_all(&path).map_err(err(&path))?;
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(err(parent))?;
        }
        std::fs::write(&path, &object.bytes).map_err(err(&path))?;
        if !object.metadata.is_empty() {
            let sidecar = dir.join(format!("{key}{METADATA_SUFFIX}"));
            let json =
                serde_json::to_string_pretty(&object.metadata).expect("metadata JSON") + "\n";
            std::fs::write(&sidecar, json).map_err(err(&sidecar))?;
        }
    }
    // What S3 would have said of each object, as `acquire` records it: its size, its ETag (the
    // MD5 of a single-part upload) and its last-modified time (its delivery).
    let objects = bucket
        .objects
        .iter()
        .filter(|(key, _)| !key.ends_with('/'))
        .map(|(key, object)| {
            let delivered = crate::layout::parse_digest_key(key)
                .map(|n| n.end)
                .or_else(|| crate::layout::parse_log_key(key).map(|n| n.time))
                .unwrap_or(bucket.as_of);
            crate::store::local::ManifestObject {
                key: key.clone(),
                size: object.bytes.len() as u64,
                etag: Some(format!(
                    "\"{}\"",
                    hex::encode(<md5::Md5 as md5::Digest>::digest(&object.bytes))
                )),
                version_id: None,
                last_modified: Some(crate::layout::format_time(delivered)),
                sha256: sha256_hex(&object.bytes),
            }
        })
        .collect();
    let manifest = Manifest {
        bucket: bucket.name.clone(),
        prefix: String::new(),
        acquired_at: Some(bucket.as_of),
        objects,
        tool: format!(
            "{} {} simulate",
            env!("CARGO_PKG_NAME"),
            env!("CARGO_PKG_VERSION")
        ),
        ..Manifest::default()
    };
    let path = dir.join(MANIFEST);
    let json = serde_json::to_string_pretty(&manifest).expect("manifest JSON") + "\n";
    std::fs::write(&path, json).map_err(err(&path))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_specs() {
        let a: AccountSpec = "custom/logs/o-abcdefghij/123456789012".parse().unwrap();
        assert_eq!(a.prefix, "custom/logs");
        assert_eq!(a.org_id.as_deref(), Some("o-abcdefghij"));
        assert!("o-abc/123456789012".parse::<AccountSpec>().is_err());
        assert!("../123456789012".parse::<AccountSpec>().is_err());
        assert!("12345".parse::<AccountSpec>().is_err());
    }

    #[test]
    fn every_tamper_name_parses_back() {
        for t in Tamper::ALL {
            assert_eq!(t.name().parse::<Tamper>().unwrap(), *t);
        }
    }

    /// Logs are valid CloudTrail JSON with every kind of event, and compress 10–20× as real
    /// ones do: the benchmarks' figures depend on how many bytes must be inflated per byte read.
    #[test]
    fn logs_are_json_records_that_compress_like_cloudtrail_logs() {
        let location = Location {
            prefix: String::new(),
            org_id: None,
            account: "111111111111".into(),
            region: "eu-west-1".into(),
        };
        let time: Timestamp = "2024-01-01T12:00:00Z".parse().unwrap();
        let mut rng = Rng(7);
        let mut names = std::collections::BTreeSet::new();
        for size in [100_000, 400_000, 1_600_000] {
            let content = log_content(&mut rng, &location, time, size);
            let json: serde_json::Value = serde_json::from_slice(&content).unwrap();
            for record in json["Records"].as_array().unwrap() {
                assert_eq!(record["recipientAccountId"], "111111111111");
                assert_eq!(record["eventID"].as_str().unwrap().len(), 36);
                names.insert(record["eventName"].as_str().unwrap().to_string());
            }
            let ratio = content.len() as f64 / gzip(&content).len() as f64;
            assert!(
                (10.0..=20.0).contains(&ratio),
                "{size} bytes compress {ratio:.1}x"
            );
        }
        assert_eq!(names.len(), EVENTS.len(), "{names:?}");
    }
}
