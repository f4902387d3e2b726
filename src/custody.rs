//! Custody of an evidence copy: what a copy may be trusted for, and on whose word.
//!
//! A copy is as hostile as the bucket it came from: whoever can write the folder can plant a key
//! file, move the recorded acquisition time, or rewrite the manifest. So a copy's saved public
//! keys and its recorded range are used only when the user says so — `--trust-copy-keys`, or the
//! copy's own keys file passed as `--public-keys` — or when the manifest carries a custody
//! signature by a key the user holds: `acquire --sign-key` signs the manifest's exact bytes with
//! Ed25519, and the manifest records the SHA-256 of the keys file, so `verify --custody-key`
//! proves both came from that acquisition unchanged.

use std::path::{Path, PathBuf};

use base64::Engine;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use sha2::{Digest, Sha256};

use crate::keys::KeyRing;
use crate::store::local::{open_regular, read_file, MANIFEST};
use crate::store::{read_capped, LocalStore};

/// The custody signature beside the manifest: hex Ed25519 signature of the manifest's bytes.
pub const SIGNATURE_FILE: &str = "trailproof-manifest.json.sig";

/// The most a key file for custody (PEM) may hold.
const MAX_PEM_BYTES: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum CustodyError {
    #[error("cannot read {path}: {cause}")]
    Read { path: PathBuf, cause: String },
    #[error("{path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("the copy's custody signature does not verify: {0}")]
    Broken(String),
}

/// Where a run's trusted keys came from, and whether that source was authenticated: the report
/// states both.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySource {
    pub origin: String,
    pub authenticated: bool,
}

/// An Ed25519 key pair that signs manifests.
pub struct SigningKey {
    pair: Ed25519KeyPair,
}

impl SigningKey {
    /// Loads a PKCS#8 PEM (`openssl genpkey -algorithm ed25519`).
    pub fn load(path: &Path) -> Result<SigningKey, CustodyError> {
        let der = read_pem(path, "PRIVATE KEY")?;
        let pair =
            Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).map_err(|e| CustodyError::Key {
                path: path.to_path_buf(),
                reason: format!("not an Ed25519 private key in PKCS#8: {e}"),
            })?;
        Ok(SigningKey { pair })
    }

    /// The hex signature of `bytes`.
    pub fn sign(&self, bytes: &[u8]) -> String {
        hex::encode(self.pair.sign(bytes).as_ref())
    }

    /// The fingerprint of the public half.
    pub fn fingerprint(&self) -> String {
        fingerprint(self.pair.public_key().as_ref())
    }

    /// Whether `signature_hex` is this key's signature of `bytes`.
    pub fn signed(&self, bytes: &[u8], signature_hex: &str) -> bool {
        hex::decode(signature_hex.trim()).is_ok_and(|signature| {
            UnparsedPublicKey::new(&ED25519, self.pair.public_key().as_ref())
                .verify(bytes, &signature)
                .is_ok()
        })
    }
}

/// An Ed25519 public key that checks manifests.
pub struct CustodyKey {
    raw: Vec<u8>,
}

impl CustodyKey {
    /// Loads a SubjectPublicKeyInfo PEM (`openssl pkey -pubout`).
    pub fn load(path: &Path) -> Result<CustodyKey, CustodyError> {
        let der = read_pem(path, "PUBLIC KEY")?;
        // SubjectPublicKeyInfo of an Ed25519 key: a fixed 12-byte header (RFC 8410), then the
        // 32-byte key.
        const HEADER: [u8; 12] = [
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
        ];
        match der.strip_prefix(&HEADER[..]) {
            Some(raw) if raw.len() == 32 => Ok(CustodyKey { raw: raw.to_vec() }),
            _ => Err(CustodyError::Key {
                path: path.to_path_buf(),
                reason: "not an Ed25519 public key in SubjectPublicKeyInfo".into(),
            }),
        }
    }

    pub fn fingerprint(&self) -> String {
        fingerprint(&self.raw)
    }

    fn verify(&self, bytes: &[u8], signature_hex: &str) -> Result<(), CustodyError> {
        let signature = hex::decode(signature_hex.trim())
            .map_err(|_| CustodyError::Broken(format!("{SIGNATURE_FILE} is not hex")))?;
        UnparsedPublicKey::new(&ED25519, &self.raw)
            .verify(bytes, &signature)
            .map_err(|_| {
                CustodyError::Broken(format!(
                    "{SIGNATURE_FILE} is not a signature of {MANIFEST} by key {}: the manifest was changed after the copy was made, or another key signed it",
                    self.fingerprint()
                ))
            })
    }
}

/// The first 16 bytes of the SHA-256 of a raw public key, in hex.
fn fingerprint(raw: &[u8]) -> String {
    hex::encode(&Sha256::digest(raw)[..16])
}

/// Reads the DER inside a PEM of `label`.
fn read_pem(path: &Path, label: &str) -> Result<Vec<u8>, CustodyError> {
    let file = std::fs::File::open(path).map_err(|e| CustodyError::Read {
        path: path.to_path_buf(),
        cause: e.to_string(),
    })?;
    let bytes = read_capped(&path.display().to_string(), file, MAX_PEM_BYTES).map_err(|e| {
        CustodyError::Read {
            path: path.to_path_buf(),
            cause: e.cause(),
        }
    })?;
    let bad = |reason: &str| CustodyError::Key {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let text = std::str::from_utf8(&bytes).map_err(|_| bad("not a PEM file"))?;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let body = text
        .split_once(&begin)
        .and_then(|(_, rest)| rest.split_once(&end))
        .map(|(body, _)| body)
        .ok_or_else(|| bad(&format!("no {begin} block")))?;
    let joined: String = body.split_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(joined)
        .map_err(|_| bad("the PEM block is not base64"))
}

/// Proves a copy's custody: the manifest's signature by `key`, over the very bytes the copy
/// was opened with, and that `keys` (the saved keys file's bytes, as read for use) are the file
/// the manifest records. Each file is judged on the bytes that are used: one changed between two
/// reads cannot pass for the one that was signed.
pub fn check(
    store: &LocalStore,
    key: &CustodyKey,
    keys: Option<&[u8]>,
) -> Result<(), CustodyError> {
    let read = |name: &str| {
        open_regular(&store.root().join(name), name)
            .and_then(|f| read_file(name, f, crate::store::local::MAX_MANIFEST_BYTES))
            .map_err(|e| CustodyError::Broken(format!("{name}: {}", e.cause())))
    };
    let manifest = read(MANIFEST)?;
    let opened = store.manifest_sha256().unwrap_or_default();
    if crate::hash::sha256_hex(&manifest) != opened {
        return Err(CustodyError::Broken(format!(
            "{MANIFEST} changed while the run read it: the manifest the run uses is not the one whose signature it would check"
        )));
    }
    let signature = read(SIGNATURE_FILE)?;
    key.verify(&manifest, &String::from_utf8_lossy(&signature))?;
    let recorded = store
        .manifest()
        .and_then(|m| m.keys_file.clone().zip(m.keys_sha256.clone()));
    if let (Some((name, expected)), Some(keys)) = (recorded, keys) {
        let actual = hex::encode(Sha256::digest(keys));
        if actual != expected {
            return Err(CustodyError::Broken(format!(
                "the keys file {name} has SHA-256 {actual}, but the signed manifest records {expected}"
            )));
        }
    }
    Ok(())
}

/// The keys file saved with a copy, named and read: the copy's file is as hostile as the copy,
/// so it is opened only as a regular file, capped, and read once, so that the bytes checked
/// against the manifest are the bytes used.
fn saved_keys(store: &LocalStore) -> Result<Option<(String, Vec<u8>)>, String> {
    let Some(saved) = store.saved_keys() else {
        return Ok(None);
    };
    let name = saved
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let bytes = open_regular(&saved, &name)
        .and_then(|f| read_file(&name, f, crate::keys::MAX_KEY_FILE_BYTES))
        .map_err(|e| format!("the copy's keys file {name}: {}", e.cause()))?;
    Ok(Some((name, bytes)))
}

/// How far a run may trust a copy, as the user said.
#[derive(Default)]
pub struct CopyTrust<'k> {
    /// `--trust-copy-keys`: use the copy's saved keys on its own word.
    pub trust_copy_keys: bool,
    /// `--custody-key`: trust what the manifest says when its signature by this key verifies.
    pub custody_key: Option<&'k CustodyKey>,
}

/// The keys saved in a copy, if the user's trust allows them: `Ok(None)` when the copy has
/// none or the user gave no reason to trust them.
pub fn copy_keys(
    store: &LocalStore,
    trust: &CopyTrust<'_>,
) -> Result<Option<(KeyRing, KeySource)>, String> {
    if trust.custody_key.is_none() && !trust.trust_copy_keys {
        return Ok(None);
    }
    let Some((name, bytes)) = saved_keys(store)? else {
        return Ok(None);
    };
    let source = match (trust.custody_key, trust.trust_copy_keys) {
        (Some(key), _) => {
            check(store, key, Some(&bytes)).map_err(|e| e.to_string())?;
            KeySource {
                origin: format!(
                    "saved in the evidence copy ({name}); custody signature by Ed25519 key {} verified",
                    key.fingerprint()
                ),
                authenticated: true,
            }
        }
        (None, true) => KeySource {
            origin: format!(
                "saved in the evidence copy ({name}), trusted on its own word (--trust-copy-keys): not authenticated"
            ),
            authenticated: false,
        },
        (None, false) => return Ok(None),
    };
    let keys = crate::keys::parse_key_file(&bytes, &source.origin)
        .map_err(|e| format!("the copy's keys file {name}: {e}"))?;
    Ok(Some((KeyRing::new(keys), source)))
}

/// What a report says of an evidence copy: its manifest's record of the acquisition, the
/// manifest's SHA-256, and the custody key whose signature verified (`custody_key`, already
/// checked by the caller). `None` for a folder without a manifest.
pub fn provenance(
    store: &LocalStore,
    custody_key: Option<&CustodyKey>,
) -> Option<crate::report::Provenance> {
    let manifest = store.manifest()?;
    Some(crate::report::Provenance {
        tool: manifest.tool.clone(),
        source: manifest.source.clone(),
        caller: manifest.caller.clone(),
        acquisition_started_at: manifest.acquisition.as_ref().map(|a| a.started_at),
        acquisition_finished_at: manifest.observed_at(),
        manifest_sha256: store.manifest_sha256()?.to_string(),
        custody_key: custody_key.map(|k| k.fingerprint()),
    })
}

/// What a run over a local copy starts from: its trusted keys, the range's end, the horizon,
/// and the notes the report must carry about them.
pub struct CopyRun {
    pub keys: KeyRing,
    pub end: crate::layout::Timestamp,
    /// When the copy was observed: its recorded acquisition time, else `now`.
    pub horizon: crate::layout::Timestamp,
    pub notes: Vec<String>,
}

/// Decides where a copy's trusted keys come from (`given` with `--public-keys`; else the
/// copy's own keys, only as `trust` allows; never on the copy's word alone), the range's end
/// (`end` as given, else the manifest's, else `now`) and the horizon (the manifest's acquisition
/// time, else `now`). A custody key whose signature does not verify ends the run.
pub fn prepare(
    store: &LocalStore,
    given: Option<KeyRing>,
    trust: &CopyTrust<'_>,
    end: Option<crate::layout::Timestamp>,
    now: crate::layout::Timestamp,
) -> Result<CopyRun, String> {
    use crate::layout::format_time;
    if let Some(key) = trust.custody_key {
        let keys = saved_keys(store)?;
        check(store, key, keys.as_ref().map(|(_, bytes)| &bytes[..])).map_err(|e| e.to_string())?;
    }
    let keys = match (given, copy_keys(store, trust)?) {
        (Some(keys), _) => keys,
        (None, Some((keys, _))) => keys,
        (None, None) if store.saved_keys().is_some() => {
            return Err(format!(
                "no trusted public keys: the copy's own keys file ({}) is evidence, not trust. Pass --public-keys with keys you obtained yourself (aws cloudtrail list-public-keys, or that file if you made the copy), --custody-key with the public half of the key that signed the copy, or --trust-copy-keys to accept them on the copy's word",
                store.saved_keys().unwrap_or_default().display()
            ))
        }
        (None, None) => {
            return Err(
                "no trusted public keys: pass --public-keys with saved ListPublicKeys output, PEM or DER files (keys are never taken from the bucket)".into(),
            )
        }
    };
    let recorded = store.manifest().and_then(|m| m.range_end());
    let ranged_by_manifest = end.is_none() && recorded.is_some();
    let end = end.or(recorded).unwrap_or(now);
    let observed = store.manifest().and_then(|m| m.observed_at());
    let horizon = observed.unwrap_or(now);
    let mut notes = Vec::new();
    match observed {
        None => notes.push(format!(
            "the copy records no acquisition time: logs not yet listed are judged as of {}; pass --end with the time the copy was made",
            format_time(horizon.min(end))
        )),
        Some(at) if trust.custody_key.is_none() => notes.push(format!(
            "logs not yet listed are judged as of {}, the acquisition time the copy's manifest records (or the newest signed digest, where later); no custody signature authenticates it",
            format_time(at)
        )),
        Some(_) => {}
    }
    if ranged_by_manifest && trust.custody_key.is_none() {
        notes.push(format!(
            "the range ends at {}, as the copy's manifest records; no custody signature authenticates the manifest (pass --custody-key, or --end)",
            format_time(end)
        ));
    }
    Ok(CopyRun {
        keys,
        end,
        horizon,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A manifest put in the copy's place while a run reads it, though signed by the same key
    /// (another copy's, say), is not taken for the one the run opened.
    #[test]
    fn a_manifest_changed_after_the_copy_was_opened_is_refused_though_signed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let keys = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keys");
        let signer = SigningKey::load(&keys.join("TEST-ONLY-custody-key.pem")).unwrap();
        let key = CustodyKey::load(&keys.join("TEST-ONLY-custody-public-key.pem")).unwrap();
        let write_signed = |manifest: &str| {
            std::fs::write(root.join(MANIFEST), manifest).unwrap();
            std::fs::write(root.join(SIGNATURE_FILE), signer.sign(manifest.as_bytes())).unwrap();
        };
        let opened = r#"{"bucket":"b","acquired_at":"2024-01-01T07:00:00Z"}"#;
        write_signed(opened);
        let store = LocalStore::open(root, None).unwrap();
        check(&store, &key, None).unwrap();

        write_signed(&opened.replace("07:00", "03:00"));
        let err = check(&store, &key, None).unwrap_err().to_string();
        assert!(err.contains("changed while the run read it"), "{err}");
        // The report names the manifest the run used.
        let provenance = provenance(&store, Some(&key)).unwrap();
        assert_eq!(
            provenance.manifest_sha256,
            crate::hash::sha256_hex(opened.as_bytes())
        );
        assert_eq!(
            provenance.acquisition_finished_at,
            Some("2024-01-01T07:00:00Z".parse().unwrap())
        );
    }
}
