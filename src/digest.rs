//! One digest file: its body, the string CloudTrail signs, and the six checks of a single digest
//! (read, parse, self-location, signature metadata, key, signature), in that order; the first
//! failure decides the digest's status.

use std::collections::BTreeMap;

use rsa::{Pkcs1v15Sign, RsaPublicKey};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::finding::Kind;
use crate::hash;
use crate::keys::{KeyLookup, KeyRing};
use crate::layout::{is_clean_key, DigestName, Timestamp};

/// The only algorithm CloudTrail signs digests with.
pub const SIGNATURE_ALGORITHM: &str = "SHA256withRSA";

/// Digests are small (a few KB to a few hundred KB inflated); anything past this is not one.
pub const MAX_DIGEST_BYTES: u64 = 64 * 1024 * 1024;

/// A digest's link to its predecessor.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct PreviousDigest {
    pub bucket: String,
    pub key: String,
    /// Lowercase hex SHA-256 of the predecessor's inflated bytes.
    pub hash: String,
    /// The predecessor's signature, lowercase hex.
    pub signature: String,
}

/// A log file a digest vouches for.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct ListedLog {
    pub bucket: String,
    pub key: String,
    /// Lowercase hex SHA-256 of the log's inflated bytes.
    pub hash: String,
}

/// The parts of a digest body the checks use.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct DigestBody {
    pub account: String,
    pub start: Timestamp,
    pub end: Timestamp,
    /// `digestEndTime` exactly as decoded from the JSON: the first line of the signing string.
    pub end_text: String,
    pub bucket: String,
    pub key: String,
    pub fingerprint: String,
    pub algorithm: String,
    /// `None` when all five `previousDigest*` fields are null: the first digest of a chain.
    pub previous: Option<PreviousDigest>,
    pub logs: Vec<ListedLog>,
}

#[derive(Deserialize)]
struct RawLog {
    #[serde(rename = "s3Bucket")]
    bucket: Option<String>,
    #[serde(rename = "s3Object")]
    key: Option<String>,
    #[serde(rename = "hashValue")]
    hash: Option<String>,
    #[serde(rename = "hashAlgorithm")]
    algorithm: Option<String>,
}

#[derive(Deserialize)]
struct RawBody {
    #[serde(rename = "awsAccountId")]
    account: Option<String>,
    #[serde(rename = "digestStartTime")]
    start: Option<String>,
    #[serde(rename = "digestEndTime")]
    end: Option<String>,
    #[serde(rename = "digestS3Bucket")]
    bucket: Option<String>,
    #[serde(rename = "digestS3Object")]
    key: Option<String>,
    #[serde(rename = "digestPublicKeyFingerprint")]
    fingerprint: Option<String>,
    #[serde(rename = "digestSignatureAlgorithm")]
    algorithm: Option<String>,
    #[serde(rename = "previousDigestS3Bucket")]
    prev_bucket: Option<String>,
    #[serde(rename = "previousDigestS3Object")]
    prev_key: Option<String>,
    #[serde(rename = "previousDigestHashValue")]
    prev_hash: Option<String>,
    #[serde(rename = "previousDigestHashAlgorithm")]
    prev_algorithm: Option<String>,
    #[serde(rename = "previousDigestSignature")]
    prev_signature: Option<String>,
    #[serde(rename = "logFiles")]
    logs: Option<Vec<RawLog>>,
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn parse_body_time(name: &str, value: &str) -> Result<Timestamp, String> {
    crate::parse_rfc3339(value).map_err(|_| format!("{name} is not a time: {value:?}"))
}

impl DigestBody {
    /// Parses inflated digest bytes. Every required field must be present, every key it names
    /// must be a clean relative key, every hash 64 hex digits.
    pub fn parse(content: &[u8]) -> Result<DigestBody, String> {
        let text =
            std::str::from_utf8(content).map_err(|e| format!("the body is not UTF-8 ({e})"))?;
        let raw: RawBody =
            serde_json::from_str(text).map_err(|e| format!("the body is not digest JSON ({e})"))?;
        let need = |name: &str, v: Option<String>| {
            v.ok_or_else(|| format!("the required field {name} is missing or null"))
        };
        let end_text = need("digestEndTime", raw.end)?;
        let start = parse_body_time("digestStartTime", &need("digestStartTime", raw.start)?)?;
        let end = parse_body_time("digestEndTime", &end_text)?;
        if start > end {
            return Err(format!(
                "digestStartTime ({}) lies after digestEndTime ({end_text}): CloudTrail never writes such a window",
                crate::layout::format_time(start)
            ));
        }
        let previous = match (
            raw.prev_bucket,
            raw.prev_key,
            raw.prev_hash,
            raw.prev_algorithm,
            raw.prev_signature,
        ) {
            (None, None, None, None, None) => None,
            (Some(bucket), Some(key), Some(hash), algorithm, Some(signature)) => {
                if !is_clean_key(&key) {
                    return Err(format!(
                        "previousDigestS3Object {key:?} is not a key CloudTrail writes; refused"
                    ));
                }
                if !is_sha256_hex(&hash) || algorithm.as_deref().is_some_and(|a| a != "SHA-256") {
                    return Err(format!(
                        "previousDigestHashValue {hash:?} is not SHA-256 hex"
                    ));
                }
                Some(PreviousDigest {
                    bucket,
                    key,
                    hash: hash.to_ascii_lowercase(),
                    signature: signature.to_ascii_lowercase(),
                })
            }
            _ => return Err("the previousDigest* fields are partly null".into()),
        };
        let raw_logs = need_logs(raw.logs)?;
        let mut logs = Vec::with_capacity(raw_logs.len());
        for (i, log) in raw_logs.into_iter().enumerate() {
            let (Some(bucket), Some(key), Some(hash)) = (log.bucket, log.key, log.hash) else {
                return Err(format!(
                    "logFiles[{i}] lacks s3Bucket, s3Object or hashValue"
                ));
            };
            if !is_clean_key(&key) {
                return Err(format!(
                    "logFiles[{i}].s3Object {key:?} is not a key CloudTrail writes; refused"
                ));
            }
            if !is_sha256_hex(&hash) || log.algorithm.as_deref().is_some_and(|a| a != "SHA-256") {
                return Err(format!(
                    "logFiles[{i}].hashValue {hash:?} is not SHA-256 hex"
                ));
            }
            logs.push(ListedLog {
                bucket,
                key,
                hash: hash.to_ascii_lowercase(),
            });
        }
        Ok(DigestBody {
            account: need("awsAccountId", raw.account)?,
            start,
            end,
            end_text,
            bucket: need("digestS3Bucket", raw.bucket)?,
            key: need("digestS3Object", raw.key)?,
            fingerprint: need("digestPublicKeyFingerprint", raw.fingerprint)?,
            algorithm: need("digestSignatureAlgorithm", raw.algorithm)?,
            previous,
            logs,
        })
    }
}

fn need_logs(logs: Option<Vec<RawLog>>) -> Result<Vec<RawLog>, String> {
    logs.ok_or_else(|| "the required field logFiles is missing or null".to_string())
}

/// The UTF-8 string CloudTrail signs: end time, `bucket/key`, hex SHA-256 of the inflated bytes,
/// and the previous digest's signature (or `null`), joined by `\n` with no trailing newline.
pub fn signing_string(
    end_text: &str,
    bucket: &str,
    key: &str,
    sha256_hex: &str,
    previous_signature: Option<&str>,
) -> String {
    format!(
        "{end_text}\n{bucket}/{key}\n{sha256_hex}\n{}",
        previous_signature.unwrap_or("null")
    )
}

/// RSASSA-PKCS1-v1_5 with SHA-256. The DigestInfo inside the block must name SHA-256: a block
/// made with SHA-1 or MD5 does not verify, whatever its hash.
///
/// Keys of 2048 bits and more (all CloudTrail keys) are checked with `ring`, whose modular
/// arithmetic is several times faster than the `rsa` crate's; smaller keys with `rsa`.
pub fn signature_verifies(key: &RsaPublicKey, message: &[u8], signature: &[u8]) -> bool {
    use rsa::traits::PublicKeyParts;
    if key.size() >= 256 {
        let components = ring::signature::RsaPublicKeyComponents {
            n: key.n().to_bytes_be(),
            e: key.e().to_bytes_be(),
        };
        return components
            .verify(
                &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                message,
                signature,
            )
            .is_ok();
    }
    let hashed = Sha256::digest(message);
    key.verify(Pkcs1v15Sign::new::<Sha256>(), &hashed, signature)
        .is_ok()
}

/// What became of one digest.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, Deserialize)]
pub enum DigestStatus {
    Valid,
    /// A finding: the digest is damaged, misplaced, or not signed by a trusted key.
    Failed {
        kind: Kind,
        message: String,
    },
    /// Could not be read; the cause says why.
    Unverified(String),
    /// A definite not-found.
    Missing,
}

/// One digest after checking: its status, and whatever could be learnt from it (a chain link
/// can be checked against a digest that itself failed).
#[derive(Clone, Debug, serde::Serialize, Deserialize)]
pub struct DigestCheck {
    pub key: String,
    pub name: DigestName,
    pub status: DigestStatus,
    pub body: Option<DigestBody>,
    /// Lowercase hex SHA-256 of the inflated bytes.
    pub sha256: Option<String>,
    /// The signature from the object's metadata, lowercase hex.
    pub signature: Option<String>,
}

impl DigestCheck {
    pub fn is_valid(&self) -> bool {
        self.status == DigestStatus::Valid
    }

    pub fn unread(key: String, name: DigestName, status: DigestStatus) -> DigestCheck {
        DigestCheck {
            key,
            name,
            status,
            body: None,
            sha256: None,
            signature: None,
        }
    }

    /// The digest's window: from its body when it parsed, else the hour its name ends.
    pub fn window(&self) -> (Timestamp, Timestamp) {
        match &self.body {
            Some(b) => (b.start, b.end),
            None => (self.name.end - chrono::Duration::hours(1), self.name.end),
        }
    }
}

/// Runs checks 2–6 on a digest that was read: `object` as stored, with its S3 user metadata
/// (lowercase names, without `x-amz-meta-`), `bucket` the bucket it was read from.
pub fn verify_digest(
    key: &str,
    name: &DigestName,
    bucket: &str,
    object: &crate::store::Object,
    keys: &KeyRing,
) -> DigestCheck {
    let (bytes, metadata) = (&object.bytes[..], &object.metadata);
    let signature = metadata
        .get("signature")
        .map(|s| s.trim().to_ascii_lowercase());
    let mut check = DigestCheck {
        key: key.to_string(),
        name: name.clone(),
        status: DigestStatus::Valid,
        body: None,
        sha256: None,
        signature: signature.clone(),
    };
    let fail = |kind, message: String| DigestStatus::Failed { kind, message };

    // 2. One complete gzip member of UTF-8 JSON with the required fields.
    let content = match hash::inflate_to_vec(bytes, MAX_DIGEST_BYTES) {
        Ok((content, summary)) => {
            check.sha256 = Some(hex::encode(summary.sha256));
            content
        }
        Err(damage) => {
            check.status = fail(
                Kind::DigestMalformed,
                format!("the digest is not one complete gzip member: {damage}"),
            );
            return check;
        }
    };
    let body = match DigestBody::parse(&content) {
        Ok(body) => body,
        Err(reason) => {
            check.status = fail(Kind::DigestMalformed, reason);
            return check;
        }
    };

    // 3. It is where it says it is, for the account and region its path names.
    let location = &name.scope.location;
    check.status = if body.bucket != bucket || body.key != key {
        fail(
            Kind::DigestRelocated,
            format!(
                "the digest says it was delivered to s3://{}/{}, but it was read from s3://{bucket}/{key}",
                body.bucket, body.key
            ),
        )
    } else if body.account != location.account {
        fail(
            Kind::DigestRelocated,
            format!(
                "the digest is for account {}, but it sits under account {}",
                body.account, location.account
            ),
        )
    } else if body.end != name.end {
        fail(
            Kind::DigestRelocated,
            format!(
                "the digest ends at {}, but its name says {}",
                body.end_text,
                crate::layout::format_time(name.end)
            ),
        )
    } else if let Some(why) = &object.metadata_invalid {
        fail(Kind::DigestSignatureInvalid, why.clone())
    } else {
        signature_status(
            &body,
            signature.as_deref(),
            metadata,
            keys,
            location,
            check.sha256.as_deref(),
        )
    };
    check.body = Some(body);
    check
}

/// Checks 4–6 over what was recorded of a digest verified before (an anchor a state keeps): its
/// body's signed fields, its SHA-256 and CloudTrail's signature, under the trusted keys. The
/// signature covers the end time, the bucket and key, the hash and the predecessor's signature,
/// so a record that was made up, or moved to another key or bucket, does not verify.
pub fn recorded_status(
    body: &DigestBody,
    signature: &str,
    sha256: &str,
    keys: &KeyRing,
    location: &crate::layout::Location,
) -> DigestStatus {
    signature_status(
        body,
        Some(signature),
        &BTreeMap::new(),
        keys,
        location,
        Some(sha256),
    )
}

/// Checks 4–6: signature metadata, trusted key, and the signature itself.
fn signature_status(
    body: &DigestBody,
    signature: Option<&str>,
    metadata: &BTreeMap<String, String>,
    keys: &KeyRing,
    location: &crate::layout::Location,
    sha256: Option<&str>,
) -> DigestStatus {
    let fail = |kind, message: String| DigestStatus::Failed { kind, message };
    let Some(signature) = signature.filter(|s| !s.is_empty()) else {
        return fail(
            Kind::DigestSignatureInvalid,
            "the digest has no signature metadata (x-amz-meta-signature)".into(),
        );
    };
    let Ok(signature_bytes) = hex::decode(signature) else {
        return fail(
            Kind::DigestSignatureInvalid,
            format!(
                "the signature metadata is not hex: {:?}",
                truncate(signature, 40)
            ),
        );
    };
    let meta_algorithm = metadata.get("signature-algorithm").map(String::as_str);
    if meta_algorithm.is_some_and(|a| a != SIGNATURE_ALGORITHM)
        || body.algorithm != SIGNATURE_ALGORITHM
    {
        return fail(
            Kind::DigestSignatureInvalid,
            format!(
                "the signature algorithm is {:?} (metadata) / {:?} (body), not {SIGNATURE_ALGORITHM}",
                meta_algorithm.unwrap_or("absent"),
                body.algorithm
            ),
        );
    }
    let key = match keys.lookup(&body.fingerprint, &location.region, body.end) {
        KeyLookup::Trusted(key) => key,
        KeyLookup::Expired(key) => {
            return fail(
                Kind::DigestKeyExpired,
                format!(
                    "the digest ends at {}, outside the validity of key {} ({} .. {}, ±2 h)",
                    body.end_text,
                    key.fingerprint,
                    key.valid_from
                        .map_or("-".into(), crate::layout::format_time),
                    key.valid_to.map_or("-".into(), crate::layout::format_time),
                ),
            )
        }
        KeyLookup::Unknown => {
            return fail(
                Kind::DigestKeyUnknown,
                format!(
                    "the digest names public key {}, which is not a trusted key for {}",
                    body.fingerprint, location.region
                ),
            )
        }
    };
    let message = signing_string(
        &body.end_text,
        &body.bucket,
        &body.key,
        sha256.unwrap_or_default(),
        body.previous.as_ref().map(|p| p.signature.as_str()),
    );
    if signature_verifies(&key.key, message.as_bytes(), &signature_bytes) {
        DigestStatus::Valid
    } else {
        fail(
            Kind::DigestSignatureInvalid,
            format!(
                "the signature does not verify with key {}: the digest's content, location or link was changed after signing",
                key.fingerprint
            ),
        )
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AWS CLI's published vector (`tests/unit/customizations/cloudtrail/test_validation.py`,
    /// `test_properly_signs_when_no_previous_signature`): end time `a`, bucket `b`, key `c`,
    /// inflated digest `abc`, no previous signature. Written out byte for byte here, not
    /// computed, so that a mistake shared by the simulator and the verifier cannot pass.
    #[test]
    fn the_signing_string_is_the_aws_clis_known_answer() {
        let sha = hex::encode(Sha256::digest(b"abc"));
        assert_eq!(
            signing_string("a", "b", "c", &sha, None).as_bytes(),
            b"a\nb/c\nba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\nnull"
        );
        // With a previous signature: it is the last line as it stands, with no newline after
        // (the AWS CLI's `"{}\n{}/{}\n{}\n{}".format(end, bucket, object, sha256, previous)`).
        assert_eq!(
            signing_string(
                "2015-08-17T14:02:00Z",
                "example-bucket",
                "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2015/08/17/111122223333_CloudTrail-Digest_us-east-1_t_us-east-1_20150817T140200Z.json.gz",
                &sha,
                Some("aeff"),
            ),
            "2015-08-17T14:02:00Z\nexample-bucket/AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2015/08/17/111122223333_CloudTrail-Digest_us-east-1_t_us-east-1_20150817T140200Z.json.gz\nba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\naeff"
        );
    }
}
