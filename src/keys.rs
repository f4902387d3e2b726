//! Trusted public keys: which RSA keys may sign digests, for which region, when.
//!
//! Keys come only from the user (`--public-keys`: saved `ListPublicKeys` output, PEM, DER, or a
//! folder of them) or from CloudTrail itself — never from the bucket under test. A key is named by
//! its fingerprint, the lowercase hex MD5 of its DER bytes *exactly as delivered*: CloudTrail
//! fingerprints the bytes it serves, so re-encoding a key (PKCS#1 ↔ SubjectPublicKeyInfo) before
//! hashing would change its name.

use std::path::{Path, PathBuf};

use base64::Engine;
use md5::{Digest, Md5};
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use rsa::RsaPublicKey;
use serde::Serialize;
use serde_json::Value;

use crate::layout::Timestamp;

/// A digest's end time may lie this far outside its key's validity window and still count: key
/// rotation and digest delivery are not instantaneous.
pub const VALIDITY_TOLERANCE: chrono::Duration = chrono::Duration::hours(2);

/// One trusted public key.
#[derive(Clone, Debug)]
pub struct TrustedKey {
    pub fingerprint: String,
    /// The DER bytes exactly as delivered.
    pub der: Vec<u8>,
    pub key: RsaPublicKey,
    /// The region whose `ListPublicKeys` returned it; `None` trusts it in every region.
    pub region: Option<String>,
    pub valid_from: Option<Timestamp>,
    pub valid_to: Option<Timestamp>,
    /// Where the key came from, for the report.
    pub origin: String,
}

/// How a key is described in the report.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
pub struct KeyInfo {
    pub fingerprint: String,
    pub region: Option<String>,
    pub valid_from: Option<Timestamp>,
    pub valid_to: Option<Timestamp>,
    pub origin: String,
}

/// Why a key source could not be used. Each names the file.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read public keys from {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("public key file {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

/// The answer to "may this key sign this digest?".
#[derive(Debug)]
pub enum KeyLookup<'k> {
    Trusted(&'k TrustedKey),
    /// Known, but its validity window (with tolerance) does not cover the digest's end time.
    Expired(&'k TrustedKey),
    Unknown,
}

/// All keys a run trusts.
#[derive(Clone, Debug, Default)]
pub struct KeyRing {
    keys: Vec<TrustedKey>,
}

impl KeyRing {
    pub fn new(mut keys: Vec<TrustedKey>) -> KeyRing {
        keys.sort_by(|a, b| {
            (&a.fingerprint, &a.region, a.valid_from, &a.origin).cmp(&(
                &b.fingerprint,
                &b.region,
                b.valid_from,
                &b.origin,
            ))
        });
        KeyRing { keys }
    }

    /// Loads every key from each path (file or folder).
    pub fn load(paths: &[PathBuf]) -> Result<KeyRing, KeyError> {
        let mut keys = Vec::new();
        for path in paths {
            keys.extend(load_path(path)?);
        }
        Ok(KeyRing::new(keys))
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn keys(&self) -> &[TrustedKey] {
        &self.keys
    }

    pub fn infos(&self) -> Vec<KeyInfo> {
        self.keys
            .iter()
            .map(|k| KeyInfo {
                fingerprint: k.fingerprint.clone(),
                region: k.region.clone(),
                valid_from: k.valid_from,
                valid_to: k.valid_to,
                origin: k.origin.clone(),
            })
            .collect()
    }

    /// Finds the key a digest names, for the digest's source region and end time.
    pub fn lookup(&self, fingerprint: &str, region: &str, at: Timestamp) -> KeyLookup<'_> {
        let fingerprint = fingerprint.to_ascii_lowercase();
        let mut known = None;
        for key in self.keys.iter().filter(|k| {
            k.fingerprint == fingerprint && k.region.as_deref().is_none_or(|r| r == region)
        }) {
            let after_start = key
                .valid_from
                .is_none_or(|from| at >= from - VALIDITY_TOLERANCE);
            let before_end = key.valid_to.is_none_or(|to| at <= to + VALIDITY_TOLERANCE);
            if after_start && before_end {
                return KeyLookup::Trusted(key);
            }
            known = Some(key);
        }
        known.map_or(KeyLookup::Unknown, KeyLookup::Expired)
    }
}

/// MD5 fingerprint of DER bytes as given.
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Md5::digest(der))
}

/// Parses an RSA public key in PKCS#1 `RSAPublicKey` or SubjectPublicKeyInfo DER.
pub fn parse_der(der: &[u8]) -> Result<RsaPublicKey, String> {
    RsaPublicKey::from_pkcs1_der(der)
        .or_else(|_| RsaPublicKey::from_public_key_der(der))
        .map_err(|e| format!("not an RSA public key in PKCS#1 or SubjectPublicKeyInfo DER ({e})"))
}

fn load_path(path: &Path) -> Result<Vec<TrustedKey>, KeyError> {
    let read_err = |source| KeyError::Read {
        path: path.to_path_buf(),
        source,
    };
    if path.is_dir() {
        // A folder holds key files beside anything else (a README, say): only these endings
        // are read, in name order.
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(read_err)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && p.extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| matches!(e, "json" | "pem" | "der" | "pub"))
            })
            .collect();
        files.sort();
        let mut keys = Vec::new();
        for file in files {
            keys.extend(load_path(&file)?);
        }
        if keys.is_empty() {
            return Err(KeyError::Invalid {
                path: path.to_path_buf(),
                reason: "the folder holds no .json, .pem, .der or .pub key files".into(),
            });
        }
        return Ok(keys);
    }
    // A path the user names may be a pipe (`<(aws cloudtrail list-public-keys …)`): it is read,
    // but never past the cap.
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(file, MAX_KEY_FILE_BYTES + 1),
        &mut bytes,
    )
    .map_err(read_err)?;
    if bytes.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(KeyError::Invalid {
            path: path.to_path_buf(),
            reason: format!(
                "larger than {MAX_KEY_FILE_BYTES} bytes: not a key file (ListPublicKeys output is kilobytes)"
            ),
        });
    }
    parse_key_file(&bytes, &path.display().to_string()).map_err(|reason| KeyError::Invalid {
        path: path.to_path_buf(),
        reason,
    })
}

/// The most a key file may hold. Saved ListPublicKeys output is a few kilobytes (a key is about
/// 600 bytes of base64); a PEM or DER key is smaller still.
pub const MAX_KEY_FILE_BYTES: u64 = 1024 * 1024;

/// Parses one key file's bytes, recognised by content: JSON, PEM, or DER.
pub fn parse_key_file(bytes: &[u8], origin: &str) -> Result<Vec<TrustedKey>, String> {
    let text = std::str::from_utf8(bytes).ok().map(str::trim_start);
    match text {
        Some(t) if t.starts_with('{') || t.starts_with('[') => parse_json(t, origin),
        Some(t) if t.contains("-----BEGIN") => parse_pem(t, origin),
        _ if bytes.first() == Some(&0x30) => Ok(vec![plain_key(bytes, origin)?]),
        _ => Err("neither ListPublicKeys JSON, PEM, nor DER".into()),
    }
}

fn plain_key(der: &[u8], origin: &str) -> Result<TrustedKey, String> {
    trusted_key(der.to_vec(), None, None, None, None, origin)
}

/// A trusted key from DER bytes as delivered; a stated fingerprint must match them.
pub fn trusted_key(
    der: Vec<u8>,
    region: Option<&str>,
    valid_from: Option<Timestamp>,
    valid_to: Option<Timestamp>,
    stated_fingerprint: Option<&str>,
    origin: &str,
) -> Result<TrustedKey, String> {
    let fp = fingerprint(&der);
    if let Some(stated) = stated_fingerprint {
        if !stated.eq_ignore_ascii_case(&fp) {
            return Err(format!(
                "stated Fingerprint {stated} disagrees with the MD5 of the key bytes, {fp}"
            ));
        }
    }
    Ok(TrustedKey {
        fingerprint: fp,
        key: parse_der(&der)?,
        der,
        region: region.map(str::to_string),
        valid_from,
        valid_to,
        origin: origin.to_string(),
    })
}

/// Saved `ListPublicKeys` output for `keys`, with each key's region: what `keys fetch` prints
/// and `--public-keys` reads back.
pub fn to_list_public_keys_json(keys: &[TrustedKey]) -> String {
    let list: Vec<Value> = keys
        .iter()
        .map(|k| {
            serde_json::json!({
                "Value": base64::engine::general_purpose::STANDARD.encode(&k.der),
                "ValidityStartTime": k.valid_from.map(|t| t.timestamp()),
                "ValidityEndTime": k.valid_to.map(|t| t.timestamp()),
                "Fingerprint": k.fingerprint,
                "Region": k.region,
            })
        })
        .collect();
    let mut out = serde_json::to_string_pretty(&serde_json::json!({ "PublicKeyList": list }))
        .expect("keys JSON");
    out.push('\n');
    out
}

fn parse_pem(text: &str, origin: &str) -> Result<Vec<TrustedKey>, String> {
    let mut keys = Vec::new();
    let mut rest = text;
    while let Some(begin) = rest.find("-----BEGIN ") {
        let after = &rest[begin + 11..];
        let label_end = after.find("-----").ok_or("unterminated PEM header")?;
        let label = &after[..label_end];
        let body_start = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let body_end = body_start
            .find(&end_marker)
            .ok_or_else(|| format!("PEM block {label} has no END line"))?;
        if label != "PUBLIC KEY" && label != "RSA PUBLIC KEY" {
            return Err(format!(
                "PEM block {label} is not a public key (expected PUBLIC KEY or RSA PUBLIC KEY)"
            ));
        }
        let b64: String = body_start[..body_end]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("PEM block {label} is not valid base64: {e}"))?;
        keys.push(plain_key(&der, origin)?);
        rest = &body_start[body_end + end_marker.len()..];
    }
    if keys.is_empty() {
        return Err("no PEM block found".into());
    }
    Ok(keys)
}

fn field<'v>(v: &'v Value, names: &[&str]) -> Option<&'v Value> {
    names.iter().find_map(|n| v.get(n)).filter(|v| !v.is_null())
}

fn parse_json(text: &str, origin: &str) -> Result<Vec<TrustedKey>, String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let file_region = field(&doc, &["Region", "region"]).and_then(Value::as_str);
    let list = match &doc {
        Value::Array(items) => items,
        _ => field(&doc, &["PublicKeyList", "publicKeyList"])
            .and_then(Value::as_array)
            .ok_or("JSON has no PublicKeyList (or publicKeyList) array")?,
    };
    let mut keys = Vec::new();
    for (i, entry) in list.iter().enumerate() {
        let at = |reason: String| format!("PublicKeyList[{i}]: {reason}");
        let value = field(entry, &["Value", "value"])
            .and_then(Value::as_str)
            .ok_or_else(|| at("no Value".into()))?;
        let der = decode_value(value).map_err(at)?;
        let stated = match field(entry, &["Fingerprint", "fingerprint"]) {
            Some(v) => Some(
                v.as_str()
                    .ok_or_else(|| at("Fingerprint is not a string".into()))?,
            ),
            None => None,
        };
        let time = |names: &[&str]| -> Result<Option<Timestamp>, String> {
            field(entry, names)
                .map(|v| parse_json_time(v).map_err(|e| at(format!("{}: {e}", names[0]))))
                .transpose()
        };
        let region = field(entry, &["Region", "region"])
            .and_then(Value::as_str)
            .or(file_region);
        keys.push(
            trusted_key(
                der,
                region,
                time(&["ValidityStartTime", "validityStartTime"])?,
                time(&["ValidityEndTime", "validityEndTime"])?,
                stated,
                origin,
            )
            .map_err(at)?,
        );
    }
    if keys.is_empty() {
        return Err("PublicKeyList is empty".into());
    }
    Ok(keys)
}

fn base64_text(s: &[u8]) -> Result<Vec<u8>, base64::DecodeError> {
    let clean: Vec<u8> = s
        .iter()
        .copied()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD.decode(clean)
}

/// `Value` is base64 of the DER; some tools have base64-encoded it a second time.
fn decode_value(value: &str) -> Result<Vec<u8>, String> {
    let once = base64_text(value.as_bytes()).map_err(|e| format!("Value is not base64: {e}"))?;
    der_from_value(once)
}

/// Key bytes as decoded once: DER (`0x30`) as they are, or, when they are themselves base64
/// text, decoded again.
pub fn der_from_value(bytes: Vec<u8>) -> Result<Vec<u8>, String> {
    if bytes.first() == Some(&0x30) {
        return Ok(bytes);
    }
    match base64_text(&bytes) {
        Ok(twice) if twice.first() == Some(&0x30) => Ok(twice),
        _ => Err("Value does not decode to DER (neither once nor twice base64)".into()),
    }
}

/// Epoch seconds (number or numeric string) or ISO 8601 / RFC 3339.
pub fn parse_json_time(v: &Value) -> Result<Timestamp, String> {
    let from_epoch = |secs: f64| {
        chrono::DateTime::from_timestamp(secs.trunc() as i64, 0)
            .ok_or_else(|| format!("epoch time {secs} out of range"))
    };
    match v {
        Value::Number(n) => from_epoch(n.as_f64().ok_or("not a number")?),
        Value::String(s) => {
            let s = s.trim();
            if let Ok(secs) = s.parse::<f64>() {
                return from_epoch(secs);
            }
            crate::parse_time(s).map_err(|e| e.to_string())
        }
        other => Err(format!("not a time: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs1::EncodeRsaPublicKey;
    use rsa::pkcs8::EncodePublicKey;

    fn test_key() -> RsaPublicKey {
        let pem = include_str!("../fixtures/keys/TEST-ONLY-public-key.pem");
        RsaPublicKey::from_pkcs1_pem(pem).unwrap()
    }

    #[test]
    fn json_variants_all_load_with_fingerprint_of_the_bytes_as_given() {
        let key = test_key();
        let der = key.to_pkcs1_der().unwrap().as_bytes().to_vec();
        let spki = key.to_public_key_der().unwrap().as_bytes().to_vec();
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        for (list, value, start, end, want_der) in [
            (
                "PublicKeyList",
                b64(&der),
                "1700000000".to_string(),
                "1800000000".to_string(),
                &der,
            ),
            (
                "publicKeyList",
                b64(b64(&der).as_bytes()),
                "\"1700000000\"".into(),
                "\"2027-01-15T00:00:00Z\"".into(),
                &der,
            ),
            (
                "PublicKeyList",
                b64(&spki),
                "\"2023-11-14T22:13:20+00:00\"".into(),
                "1800000000.0".into(),
                &spki,
            ),
        ] {
            let json = format!(
                r#"{{"{list}":[{{"Value":"{value}","ValidityStartTime":{start},"ValidityEndTime":{end},"Fingerprint":"{}"}}]}}"#,
                fingerprint(want_der)
            );
            let keys = parse_key_file(json.as_bytes(), "t").unwrap();
            assert_eq!(keys.len(), 1);
            assert_eq!(keys[0].fingerprint, fingerprint(want_der));
            assert_eq!(keys[0].valid_from.unwrap().timestamp(), 1_700_000_000);
        }
    }

    #[test]
    fn a_stated_fingerprint_that_disagrees_is_an_error() {
        let der = test_key().to_pkcs1_der().unwrap().as_bytes().to_vec();
        let json = format!(
            r#"{{"PublicKeyList":[{{"Value":"{}","Fingerprint":"00112233445566778899aabbccddeeff"}}]}}"#,
            base64::engine::general_purpose::STANDARD.encode(&der)
        );
        let err = parse_key_file(json.as_bytes(), "t").unwrap_err();
        assert!(err.contains("disagrees"), "{err}");
    }

    #[test]
    fn pem_and_der_in_both_encodings() {
        let key = test_key();
        let pkcs1 = key.to_pkcs1_pem(Default::default()).unwrap();
        let spki = key.to_public_key_pem(Default::default()).unwrap();
        let a = parse_key_file(pkcs1.as_bytes(), "a").unwrap();
        let b = parse_key_file(spki.as_bytes(), "b").unwrap();
        assert_ne!(
            a[0].fingerprint, b[0].fingerprint,
            "fingerprint of bytes as given"
        );
        let der = key.to_public_key_der().unwrap();
        assert_eq!(
            parse_key_file(der.as_bytes(), "c").unwrap()[0].fingerprint,
            b[0].fingerprint
        );
        assert!(parse_key_file(
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
            "d"
        )
        .is_err());
        assert!(parse_key_file(b"hello", "e").is_err());
    }

    #[test]
    fn lookup_honours_region_and_validity_with_tolerance() {
        let key = test_key();
        let t = |s: i64| chrono::DateTime::from_timestamp(s, 0).unwrap();
        let ring = KeyRing::new(vec![TrustedKey {
            fingerprint: "ab".into(),
            der: vec![],
            key,
            region: Some("us-east-1".into()),
            valid_from: Some(t(100_000)),
            valid_to: Some(t(200_000)),
            origin: "t".into(),
        }]);
        assert!(matches!(
            ring.lookup("AB", "us-east-1", t(150_000)),
            KeyLookup::Trusted(_)
        ));
        assert!(matches!(
            ring.lookup("ab", "us-east-1", t(200_000 + 7000)),
            KeyLookup::Trusted(_)
        ));
        assert!(matches!(
            ring.lookup("ab", "us-east-1", t(200_000 + 7300)),
            KeyLookup::Expired(_)
        ));
        assert!(matches!(
            ring.lookup("ab", "eu-west-1", t(150_000)),
            KeyLookup::Unknown
        ));
        assert!(matches!(
            ring.lookup("cd", "us-east-1", t(150_000)),
            KeyLookup::Unknown
        ));
    }
}
