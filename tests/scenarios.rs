//! One scenario per kind of damage or fault: a signed bucket is made, damaged in one way, and
//! verified; each test asserts the exact findings (kind and key) and the exit code.

mod common;

use common::*;
use trailproof::finding::{Kind, Severity};
use trailproof::report::exit;
use trailproof::simulate::{AccountSpec, KeyEncoding, Spec, Tamper};

const MIDDLE: usize = 3;

#[test]
fn clean_bucket_verifies_with_exit_0() {
    let s = make(small_spec());
    let r = s.verify();
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert!(r.unverified.is_empty(), "{:#?}", r.unverified);
    assert_eq!(r.exit_code, exit::VERIFIED);
    assert_eq!(r.scopes.len(), 1);
    assert_eq!(r.scopes[0].digests.valid, 6);
    assert_eq!(r.scopes[0].logs.valid, 12);
    assert_eq!(r.scopes[0].covered.len(), 1);
}

// --- logs -------------------------------------------------------------------------------------

fn one_log_damaged(tamper: Tamper, kind: Kind, words: &str) {
    let s = tampered(&[tamper]);
    let log = &s.logs(MIDDLE)[0];
    let r = s.verify();
    assert_eq!(pairs(&r), set([pair(kind, log)]), "{tamper}");
    let f = &r.findings[0];
    assert!(f.message.contains(words), "{tamper}: {}", f.message);
    assert_eq!(f.digest.as_deref(), Some(s.digests()[MIDDLE].as_str()));
    assert_eq!(f.trail.as_deref(), Some("management"));
    assert_eq!(r.exit_code, exit::FINDINGS);
    assert_eq!(r.scopes[0].logs.valid, 11);
}

#[test]
fn modified_log_is_log_modified_with_both_hashes() {
    one_log_damaged(
        Tamper::LogModified,
        Kind::LogModified,
        "SHA-256 does not match",
    );
    let s = tampered(&[Tamper::LogModified]);
    let r = s.verify();
    let f = &r.findings[0];
    let (expected, actual) = (f.expected.clone().unwrap(), f.actual.clone().unwrap());
    assert_eq!(expected.len(), 64);
    assert_eq!(actual.len(), 64);
    assert_ne!(expected, actual);
}

#[test]
fn deleted_log_is_log_missing() {
    one_log_damaged(Tamper::LogDeleted, Kind::LogMissing, "does not exist");
}

#[test]
fn uncompressed_log_is_log_corrupt() {
    one_log_damaged(Tamper::LogUncompressed, Kind::LogCorrupt, "not gzip");
}

#[test]
fn log_with_a_second_gzip_member_is_log_corrupt() {
    one_log_damaged(
        Tamper::LogSecondMember,
        Kind::LogCorrupt,
        "second gzip member",
    );
}

#[test]
fn log_with_bytes_appended_is_log_corrupt() {
    one_log_damaged(Tamper::LogTrailingBytes, Kind::LogCorrupt, "trailing data");
}

#[test]
fn log_with_its_gzip_trailer_cut_off_is_log_corrupt() {
    one_log_damaged(Tamper::LogTruncated, Kind::LogCorrupt, "truncated");
}

#[test]
fn log_named_by_no_digest_is_log_unlisted() {
    let s = tampered(&[Tamper::LogUnlisted]);
    let added = s.added();
    assert_eq!(added.len(), 1);
    let r = s.verify();
    assert_eq!(pairs(&r), set([pair(Kind::LogUnlisted, &added[0])]));
    assert_eq!(r.findings[0].trail, None);
    assert_eq!(r.exit_code, exit::FINDINGS);
}

#[test]
fn log_newer_than_the_digests_is_log_pending_and_not_an_error() {
    let s = tampered(&[Tamper::LogPending]);
    let added = s.added();
    let r = s.verify();
    assert_eq!(pairs(&r), set([pair(Kind::LogPending, &added[0])]));
    assert_eq!(r.findings[0].severity, Severity::Info);
    assert_eq!(r.exit_code, exit::VERIFIED);
}

#[test]
fn object_in_a_log_folder_with_a_foreign_name_is_log_unlisted() {
    let s = make(small_spec());
    let log = &s.logs(1)[0];
    let stranger = format!("{}/notes.txt", log.rsplit_once('/').unwrap().0);
    std::fs::write(s.root.join(&stranger), b"hello").unwrap();
    let r = s.verify();
    assert_eq!(pairs(&r), set([pair(Kind::LogUnlisted, &stranger)]));
}

// --- deleted digests ----------------------------------------------------------------------------

#[test]
fn deleted_digest_is_digest_missing_and_its_logs_are_reported_under_it() {
    // One deleted digest is one incident: the logs of its hours are its evidence, and no
    // finding names the deleted digest as one that vouched for a log.
    let s = tampered(&[Tamper::DigestDeleted]);
    let (d, logs) = (s.digests(), s.logs(MIDDLE));
    let r = s.verify();
    assert_eq!(pairs(&r), set([pair(Kind::DigestMissing, &d[MIDDLE])]));
    let missing = finding_of(&r, Kind::DigestMissing);
    assert_eq!(missing.logs, logs);
    assert_eq!(r.scopes[0].logs.unlisted, 2);
    assert_eq!(missing.digest.as_deref(), Some(d[MIDDLE + 1].as_str()));
    let w = missing.window.unwrap();
    assert_eq!(w.1 - w.0, chrono::Duration::hours(1));
    assert_eq!(r.scopes[0].digests.missing, 1);
    assert_eq!(r.exit_code, exit::FINDINGS);
}

#[test]
fn two_consecutive_deleted_digests_are_two_findings_with_the_hours_they_hide() {
    let s = tampered(&[Tamper::TwoDigestsDeleted]);
    let d = s.digests();
    let r = s.verify();
    let missing: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.kind == Kind::DigestMissing)
        .collect();
    assert_eq!(missing.len(), 2, "{missing:#?}");
    // The earlier one cannot be named (only the deleted digest knew its key); the later one is.
    assert_eq!(missing[0].key, None);
    assert_eq!(missing[1].key.as_deref(), Some(d[MIDDLE + 1].as_str()));
    let (w0, w1) = (missing[0].window.unwrap(), missing[1].window.unwrap());
    assert_eq!(w0.1, w1.0, "the two windows are consecutive");
    assert_eq!(w1.1 - w0.0, chrono::Duration::hours(2));
    assert_eq!(r.scopes[0].digests.missing, 2);
    assert_eq!(r.scopes[0].gaps.len(), 1);
    assert_eq!(r.exit_code, exit::FINDINGS);
}

#[test]
fn newest_digests_deleted_with_logs_in_the_gap_is_an_error() {
    // The attacker deletes the newest digests and rewrites a log of those hours: the gap hides
    // logs, so it is loss, and each log older than the horizon's 2 h is unlisted.
    let s = tampered(&[Tamper::NewestDigestsDeleted]);
    let d = s.digests();
    let gap_logs: Vec<String> = [4, 5].iter().flat_map(|&h| s.logs(h)).collect();
    let rewritten = &gap_logs[0];
    std::fs::write(
        s.root.join(rewritten),
        trailproof::hash::gzip(b"{\"Records\":[]}"),
    )
    .unwrap();
    let r = s.verify();
    let horizon = s.bucket.as_of;
    for log in &gap_logs {
        let t = trailproof::layout::parse_log_key(log).unwrap().time;
        let kind = if t + chrono::Duration::hours(2) > horizon {
            Kind::LogPending
        } else {
            Kind::LogUnlisted
        };
        assert!(
            pairs(&r).contains(&pair(kind, log)),
            "{log}: {:#?}",
            r.findings
        );
    }
    let unlisted = finding_of(&r, Kind::LogUnlisted);
    assert!(
        unlisted.message.contains("after the last digest"),
        "{}",
        unlisted.message
    );
    let gap = finding_of(&r, Kind::ChainTailGap);
    assert_eq!(gap.key.as_deref(), Some(d[3].as_str()));
    assert_eq!(gap.severity, Severity::Error);
    assert!(gap.logs.contains(rewritten), "{gap:#?}");
    assert_eq!(r.exit_code, exit::FINDINGS);
}

#[test]
fn newest_digests_deleted_is_a_tail_gap_warning_or_an_error_when_strict() {
    // Digests and logs both stop: logging was turned off. A warning, unless strict.
    let s = tampered(&[Tamper::NewestDigestsDeleted]);
    let d = s.digests();
    for log in [4, 5].iter().flat_map(|&h| s.logs(h)) {
        std::fs::remove_file(s.root.join(log)).unwrap();
    }
    let r = s.verify();
    let kinds: Vec<_> = r.findings.iter().map(|f| f.kind).collect();
    assert_eq!(kinds, vec![Kind::ChainTailGap]);
    let gap = finding_of(&r, Kind::ChainTailGap);
    assert_eq!(
        gap.key.as_deref(),
        Some(d[3].as_str()),
        "the newest digest left"
    );
    assert_eq!(gap.severity, Severity::Warning);
    assert_eq!(r.exit_code, exit::VERIFIED);

    let strict = s.verify_with(|o| o.strict = true);
    let gap = finding_of(&strict, Kind::ChainTailGap);
    assert_eq!(gap.severity, Severity::Error);
    assert_eq!(strict.exit_code, exit::FINDINGS);
}

#[test]
fn oldest_digest_deleted_is_digest_missing() {
    let s = tampered(&[Tamper::OldestDigestDeleted]);
    let (d, logs) = (s.digests(), s.logs(0));
    let r = s.verify();
    assert_eq!(pairs(&r), set([pair(Kind::DigestMissing, &d[0])]));
    assert_eq!(finding_of(&r, Kind::DigestMissing).logs, logs);
}

// --- damaged digests ----------------------------------------------------------------------------

/// The digest fails its own check, and (where its bytes or signature changed) its successor's
/// link to it no longer matches; the logs it lists are unverified, not vouched for.
fn digest_damaged(tamper: Tamper, kind: Kind, breaks_link: bool) {
    let s = tampered(&[tamper]);
    let d = s.digests();
    let r = s.verify();
    let mut want = set([pair(kind, &d[MIDDLE])]);
    if breaks_link {
        want.insert(pair(Kind::ChainLinkMismatch, &d[MIDDLE + 1]));
    }
    assert_eq!(pairs(&r), want, "{tamper}: {:#?}", r.findings);
    let unverified: Vec<&str> = r.unverified.iter().map(|u| u.key.as_str()).collect();
    assert_eq!(unverified, s.logs(MIDDLE), "{tamper}");
    assert!(r.unverified[0].cause.contains("failed verification"));
    assert_eq!(r.exit_code, exit::FINDINGS);
}

#[test]
fn digest_reserialized_with_other_whitespace_is_signature_invalid() {
    digest_damaged(
        Tamper::DigestReserialized,
        Kind::DigestSignatureInvalid,
        true,
    );
}

#[test]
fn digest_with_one_log_hash_edited_is_signature_invalid() {
    digest_damaged(
        Tamper::DigestLogHashEdited,
        Kind::DigestSignatureInvalid,
        true,
    );
}

#[test]
fn digest_without_signature_metadata_is_signature_invalid() {
    digest_damaged(
        Tamper::DigestSignatureMissing,
        Kind::DigestSignatureInvalid,
        false,
    );
}

#[test]
fn digest_with_non_hex_signature_is_signature_invalid() {
    digest_damaged(
        Tamper::DigestSignatureNotHex,
        Kind::DigestSignatureInvalid,
        true,
    );
}

#[test]
fn digest_with_another_digests_signature_is_signature_invalid() {
    digest_damaged(
        Tamper::DigestSignatureSwapped,
        Kind::DigestSignatureInvalid,
        true,
    );
}

#[test]
fn sha1_or_md5_inside_the_pkcs1_block_is_rejected() {
    digest_damaged(
        Tamper::DigestSignedSha1,
        Kind::DigestSignatureInvalid,
        false,
    );
    digest_damaged(Tamper::DigestSignedMd5, Kind::DigestSignatureInvalid, false);
}

#[test]
fn digest_naming_an_untrusted_key_is_key_unknown() {
    digest_damaged(Tamper::DigestKeyUnknown, Kind::DigestKeyUnknown, false);
}

#[test]
fn digest_copied_to_another_key_is_relocated() {
    let s = tampered(&[Tamper::DigestRelocated]);
    let copy = s.added();
    assert_eq!(copy.len(), 1);
    let r = s.verify();
    assert_eq!(pairs(&r), set([pair(Kind::DigestRelocated, &copy[0])]));
    assert!(r.findings[0].message.contains(&s.digests()[MIDDLE]));
}

#[test]
fn truncated_digest_is_malformed() {
    let s = tampered(&[Tamper::DigestMalformed]);
    let (d, logs) = (s.digests(), s.logs(MIDDLE));
    let r = s.verify();
    // The logs of its hours, which nothing now vouches for, are the evidence of that incident.
    assert_eq!(pairs(&r), set([pair(Kind::DigestMalformed, &d[MIDDLE])]));
    assert_eq!(finding_of(&r, Kind::DigestMalformed).logs, logs);
    assert_eq!(r.exit_code, exit::FINDINGS);
}

#[test]
fn object_in_a_digest_folder_with_a_foreign_name_is_malformed() {
    let s = make(small_spec());
    let d = &s.digests()[2];
    let stranger = format!("{}/evil.json.gz", d.rsplit_once('/').unwrap().0);
    std::fs::write(s.root.join(&stranger), b"x").unwrap();
    let r = s.verify();
    assert_eq!(pairs(&r), set([pair(Kind::DigestMalformed, &stranger)]));
}

// --- chain links ----------------------------------------------------------------------------

#[test]
fn wrong_previous_signature_or_hash_is_chain_link_mismatch() {
    for tamper in [Tamper::ChainLinkSignature, Tamper::ChainLinkHash] {
        let s = tampered(&[tamper]);
        let d = s.digests();
        let r = s.verify();
        assert_eq!(
            pairs(&r),
            set([pair(Kind::ChainLinkMismatch, &d[MIDDLE])]),
            "{tamper}"
        );
        let f = &r.findings[0];
        assert_eq!(f.digest.as_deref(), Some(d[MIDDLE - 1].as_str()));
        assert_ne!(f.expected, f.actual);
        assert_eq!(r.exit_code, exit::FINDINGS);
    }
}

#[test]
fn chain_restart_is_a_warning_with_the_gap_it_opens() {
    let s = make(Spec {
        restart_at: Some(2),
        ..small_spec()
    });
    let r = s.verify();
    let d = s.digests(); // hours 0, 1, 3, 4, 5
    assert_eq!(pairs(&r), set([pair(Kind::ChainRestart, &d[2])]));
    let f = &r.findings[0];
    assert_eq!(f.severity, Severity::Warning);
    let w = f.window.unwrap();
    assert_eq!(w.1 - w.0, chrono::Duration::hours(1));
    assert_eq!(r.scopes[0].gaps, vec![w]);
    assert_eq!(r.exit_code, exit::VERIFIED);
}

// --- keys that escape the mirror ----------------------------------------------------------------

#[test]
fn digest_naming_a_log_outside_the_mirror_is_refused() {
    let s = tampered(&[Tamper::DigestLogKeyEscape]);
    // Plant the file the key points at, outside the mirror: it must never be read.
    let outside = s.dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let name = s.logs(MIDDLE)[0].rsplit('/').next().unwrap().to_string();
    std::fs::write(
        outside.join(&name),
        &s.clean.objects[&s.logs(MIDDLE)[0]].bytes,
    )
    .unwrap();
    let r = s.verify();
    let d = s.digests();
    assert_eq!(pairs(&r), set([pair(Kind::DigestMalformed, &d[MIDDLE])]));
    assert_eq!(finding_of(&r, Kind::DigestMalformed).logs, s.logs(MIDDLE));
    assert!(r.findings.iter().any(|f| f.message.contains("refused")));
    assert_eq!(r.scopes[0].logs.valid, 10);
}

#[test]
fn digest_naming_an_absolute_previous_key_is_refused() {
    let s = tampered(&[Tamper::DigestPreviousKeyEscape]);
    let r = s.verify();
    let d = s.digests();
    assert!(pairs(&r).contains(&pair(Kind::DigestMalformed, &d[MIDDLE])));
    let f = finding_of(&r, Kind::DigestMalformed);
    assert!(
        f.message.contains("/etc/passwd") && f.message.contains("refused"),
        "{}",
        f.message
    );
}

#[cfg(unix)]
#[test]
fn log_replaced_by_a_symlink_out_of_the_mirror_is_refused_not_followed() {
    let s = make(small_spec());
    let log = s.logs(MIDDLE)[0].clone();
    // An exact copy outside: following the link would make the log look valid.
    let outside = s.dir.path().join("copy.json.gz");
    std::fs::write(&outside, &s.clean.objects[&log].bytes).unwrap();
    let path = s.root.join(&log);
    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink(&outside, &path).unwrap();
    let r = s.verify();
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert_eq!(r.unverified.len(), 1);
    assert_eq!(r.unverified[0].key, log);
    assert!(
        r.unverified[0].cause.contains("outside the mirror"),
        "{}",
        r.unverified[0].cause
    );
    assert_eq!(r.exit_code, exit::INCOMPLETE);
}

#[cfg(unix)]
#[test]
fn log_replaced_by_a_symlink_inside_the_mirror_is_followed() {
    let s = make(small_spec());
    let log = s.logs(MIDDLE)[0].clone();
    // A copy inside the mirror, outside any CloudTrail folder: the link stays in the evidence.
    let copy = s.root.join("copies/log.json.gz");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    std::fs::write(&copy, &s.clean.objects[&log].bytes).unwrap();
    let path = s.root.join(&log);
    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink(&copy, &path).unwrap();
    let clean = make(small_spec()).verify();
    let r = s.verify();
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert!(r.unverified.is_empty(), "{:#?}", r.unverified);
    assert_eq!(r.scopes[0].logs.valid, clean.scopes[0].logs.valid);
    assert_eq!(r.exit_code, exit::VERIFIED);
}

// --- could not read is never missing --------------------------------------------------------

#[test]
fn unreadable_log_is_unverified_never_missing() {
    let s = make(small_spec());
    let log = s.logs(1)[1].clone();
    // A folder where the file should be: it exists, but cannot be read as an object.
    let path = s.root.join(&log);
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    let r = s.verify();
    assert!(
        r.findings.iter().all(|f| f.kind != Kind::LogMissing),
        "{:#?}",
        r.findings
    );
    assert_unverified(&r, &log, "not a regular file (a folder)");
    assert_eq!(r.exit_code, exit::INCOMPLETE);
}

#[test]
fn unreadable_metadata_sidecar_is_unverified_not_a_finding() {
    // A sidecar that cannot be read (here a folder in its place) says nothing either way; one
    // that reads but is not a JSON object is `digest_signature_invalid` (tests/hostile.rs).
    let s = make(small_spec());
    let d = s.digests()[2].clone();
    let sidecar = s.root.join(format!("{d}.metadata.json"));
    std::fs::remove_file(&sidecar).unwrap();
    std::fs::create_dir(&sidecar).unwrap();
    let r = s.verify();
    assert_unverified(&r, &d, "not a regular file (a folder)");
    assert_eq!(r.exit_code, exit::INCOMPLETE);
}

// --- shapes CloudTrail really produces -----------------------------------------------------------

#[test]
fn escaped_slashes_and_underscored_trail_names_verify() {
    let s = make(Spec {
        escape_slashes: true,
        trails: vec!["org_trail_v2".into()],
        ..small_spec()
    });
    let raw = s
        .bucket
        .objects
        .iter()
        .find(|(k, _)| k.contains("CloudTrail-Digest"))
        .unwrap()
        .1;
    let (content, _) = trailproof::hash::inflate_to_vec(&raw.bytes, u64::MAX).unwrap();
    assert!(String::from_utf8(content).unwrap().contains("\\/"));
    let r = s.verify();
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert_eq!(r.scopes[0].trail, "org_trail_v2");
    assert_eq!(r.scopes[0].digests.valid, 6);
    assert_eq!(r.exit_code, exit::VERIFIED);
}

#[test]
fn backfill_digest_vouches_for_the_log_its_regular_digest_missed() {
    let s = make(Spec {
        backfill: true,
        ..small_spec()
    });
    let r = s.verify();
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert_eq!(r.scopes[0].digests.valid, 7);
    assert_eq!(r.scopes[0].logs.valid, 13);

    // Delete the backfilled log: it is missing, and the finding names the backfill digest.
    let backfill = s
        .bucket
        .objects
        .keys()
        .find(|k| k.ends_with("_backfill.json.gz"))
        .unwrap();
    let log = listed(&s.bucket.objects[backfill].bytes).remove(0);
    std::fs::remove_file(s.root.join(&log)).unwrap();
    let r = s.verify();
    assert_eq!(pairs(&r), set([pair(Kind::LogMissing, &log)]));
    assert_eq!(r.findings[0].digest.as_deref(), Some(backfill.as_str()));
}

#[test]
fn two_trails_sharing_a_log_folder_share_one_pool() {
    let s = make(Spec {
        trails: vec!["a".into(), "b_c".into()],
        ..small_spec()
    });
    let r = s.verify();
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    // Selecting one trail must not turn the other trail's logs into unlisted ones.
    let only_a = s.verify_with(|o| o.trails = vec!["a".into()]);
    assert!(only_a.findings.is_empty(), "{:#?}", only_a.findings);
    assert_eq!(only_a.scopes.len(), 1);
    assert_eq!(only_a.scopes[0].trail, "a");
    assert_eq!(only_a.scopes[0].logs.valid, 12);
}

// --- keys ---------------------------------------------------------------------------------------

fn key_list_json(der_b64: &str, from: i64, to: i64) -> String {
    format!(
        r#"{{"PublicKeyList":[{{"Value":"{der_b64}","ValidityStartTime":{from},"ValidityEndTime":{to}}}]}}"#
    )
}

fn test_key_der_b64() -> String {
    use base64::Engine;
    let pem = std::fs::read_to_string(fixture("keys/TEST-ONLY-public-key.pem")).unwrap();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    base64::engine::general_purpose::STANDARD.encode(der)
}

#[test]
fn key_whose_validity_does_not_cover_the_digests_is_key_expired() {
    let s = make(small_spec());
    let file = s.dir.path().join("keys.json");
    // Valid for 2020 only; the digests are from 2024.
    std::fs::write(
        &file,
        key_list_json(&test_key_der_b64(), 1_577_836_800, 1_609_459_200),
    )
    .unwrap();
    let keys = trailproof::keys::KeyRing::load(std::slice::from_ref(&file)).unwrap();
    let r = verify_dir(&s.root, keys, |_| {});
    let kinds: std::collections::BTreeSet<Kind> = r.findings.iter().map(|f| f.kind).collect();
    assert_eq!(kinds, [Kind::DigestKeyExpired].into_iter().collect());
    assert_eq!(r.findings.len(), 6);
    assert_eq!(r.exit_code, exit::FINDINGS);

    // Covering 2024: valid, and the report records where the key came from.
    std::fs::write(
        &file,
        key_list_json(&test_key_der_b64(), 1_700_000_000, 1_800_000_000),
    )
    .unwrap();
    let keys = trailproof::keys::KeyRing::load(std::slice::from_ref(&file)).unwrap();
    let r = verify_dir(&s.root, keys, |_| {});
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert_eq!(r.keys[0].origin, file.display().to_string());
    assert_eq!(r.keys[0].valid_to.unwrap().timestamp(), 1_800_000_000);
}

#[test]
fn subject_public_key_info_keys_verify_digests_that_name_them() {
    use rsa::pkcs8::EncodePublicKey;
    let s = make(Spec {
        key_encoding: KeyEncoding::Spki,
        ..small_spec()
    });
    let spki = signer()
        .to_public_key()
        .to_public_key_pem(Default::default())
        .unwrap();
    let file = s.dir.path().join("spki.pem");
    std::fs::write(&file, spki).unwrap();
    let r = verify_dir(
        &s.root,
        trailproof::keys::KeyRing::load(&[file]).unwrap(),
        |_| {},
    );
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    // The PKCS#1 file holds the same key under another fingerprint: it is not the key named.
    let r = s.verify();
    assert!(r.findings.iter().all(|f| f.kind == Kind::DigestKeyUnknown));
    assert_eq!(r.findings.len(), 6);
}

// --- ranges and filters ---------------------------------------------------------------------

fn grid() -> Scenario {
    make(Spec {
        accounts: vec![
            "111111111111".parse::<AccountSpec>().unwrap(),
            "o-exampleorg1/222222222222".parse().unwrap(),
            "custom/prefix/333333333333".parse().unwrap(),
        ],
        regions: vec!["us-east-1".into(), "eu-west-1".into()],
        trails: vec!["management".into(), "data".into()],
        hours: 4,
        logs_per_hour: 1,
        ..small_spec()
    })
}

#[test]
fn discovery_finds_org_and_prefixed_scopes_and_filters_select_exactly() {
    let s = grid();
    let r = s.verify();
    assert_eq!(r.scopes.len(), 12);
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert!(r
        .scopes
        .iter()
        .any(|x| x.org_id.as_deref() == Some("o-exampleorg1")));
    assert!(r
        .scopes
        .iter()
        .any(|x| x.prefix == "custom/prefix" && x.account == "333333333333"));

    let by_account = s.verify_with(|o| o.accounts = vec!["222222222222".into()]);
    assert_eq!(by_account.scopes.len(), 4);
    assert!(by_account
        .scopes
        .iter()
        .all(|x| x.account == "222222222222"));

    let by_region = s.verify_with(|o| o.regions = vec!["eu-west-1".into()]);
    assert_eq!(by_region.scopes.len(), 6);
    assert!(by_region.scopes.iter().all(|x| x.region == "eu-west-1"));

    let by_trail = s.verify_with(|o| {
        o.trails = vec!["data".into()];
        o.accounts = vec!["333333333333".into()];
        o.regions = vec!["us-east-1".into()];
    });
    assert_eq!(by_trail.scopes.len(), 1);
    assert_eq!(
        (
            by_trail.scopes[0].trail.as_str(),
            by_trail.scopes[0].account.as_str()
        ),
        ("data", "333333333333")
    );
    assert!(by_trail.findings.is_empty(), "{:#?}", by_trail.findings);
}

#[test]
fn start_and_end_select_exactly_the_hours_asked() {
    let s = make(small_spec());
    let start = chrono::DateTime::parse_from_rfc3339("2024-01-01T02:00:00Z")
        .unwrap()
        .to_utc();
    let end = chrono::DateTime::parse_from_rfc3339("2024-01-01T04:00:00Z")
        .unwrap()
        .to_utc();
    let r = s.verify_with(|o| {
        o.start = Some(start);
        o.end = end;
    });
    // Digests end at hh:00:41; those overlapping 02:00–04:00 end at 02:00:41, 03:00:41, 04:00:41.
    assert_eq!(r.scopes[0].digests.valid, 3);
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert_eq!(r.exit_code, exit::VERIFIED);
}

#[test]
fn a_range_with_no_digests_is_incomplete_with_a_note() {
    let s = make(small_spec());
    let start = chrono::DateTime::parse_from_rfc3339("2025-06-01T00:00:00Z")
        .unwrap()
        .to_utc();
    let r = s.verify_with(|o| {
        o.start = Some(start);
        o.end = start + chrono::Duration::days(1);
    });
    assert!(r.scopes.is_empty());
    assert_eq!(r.exit_code, exit::INCOMPLETE);
    assert!(
        r.notes[0].contains("no digest file was found"),
        "{:?}",
        r.notes
    );
}

#[test]
fn key_expired_tamper_ends_the_keys_validity_before_the_middle_digest() {
    let s = tampered(&[Tamper::KeyExpired]);
    let file = s.dir.path().join("keys.json");
    std::fs::write(&file, &s.bucket.public_keys).unwrap();
    let keys = trailproof::keys::KeyRing::load(&[file]).unwrap();
    let r = verify_dir(&s.root, keys, |_| {});
    let d = s.digests();
    let want: std::collections::BTreeSet<_> = d[MIDDLE..]
        .iter()
        .map(|k| pair(Kind::DigestKeyExpired, k))
        .collect();
    assert_eq!(pairs(&r), want);
    assert_eq!(r.exit_code, exit::FINDINGS);

    // Undamaged, the same file verifies everything.
    let s = make(small_spec());
    let file = s.dir.path().join("keys.json");
    std::fs::write(&file, &s.bucket.public_keys).unwrap();
    let r = verify_dir(
        &s.root,
        trailproof::keys::KeyRing::load(&[file]).unwrap(),
        |_| {},
    );
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
}

// --- runs over several days ---------------------------------------------------------------------

/// Fifty hours from 22:00: three date folders, and the middle digest's hour spans a midnight.
fn days_spec(tampers: &[Tamper]) -> Spec {
    Spec {
        start: chrono::DateTime::from_timestamp(1_704_146_400, 0).unwrap(), // 2024-01-01T22:00Z
        hours: 50,
        tampers: tampers.to_vec(),
        ..small_spec()
    }
}

/// The date folder (`YYYY/MM/DD`) a key sits in.
fn date_folder(key: &str) -> String {
    let segs: Vec<&str> = key.rsplit('/').skip(1).take(3).collect();
    format!("{}/{}/{}", segs[2], segs[1], segs[0])
}

#[test]
fn days_are_checked_in_turn_and_logs_listed_in_the_next_days_digests_count_as_listed() {
    let s = make(days_spec(&[]));
    let d = s.digests();
    let across = (0..d.len())
        .filter(|&i| {
            s.logs(i)
                .iter()
                .any(|l| date_folder(l) != date_folder(&d[i]))
        })
        .count();
    assert!(
        across >= 2,
        "the bucket must have logs listed by a digest of the next date"
    );
    let r = s.verify();
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert!(r.unverified.is_empty(), "{:#?}", r.unverified);
    assert_eq!(r.scopes[0].digests.valid, 50);
    assert_eq!(r.scopes[0].logs.valid, 100);
    assert_eq!(r.scopes[0].covered.len(), 1);
    assert_eq!(r.exit_code, exit::VERIFIED);
}

#[test]
fn damage_around_a_midnight_is_found_as_on_a_single_day() {
    let middle = 25;
    let s = make(days_spec(&[Tamper::DigestDeleted]));
    let (d, logs) = (s.digests(), s.logs(middle));
    assert_ne!(date_folder(&d[middle]), date_folder(&d[middle - 1]));
    let r = s.verify();
    assert_eq!(pairs(&r), set([pair(Kind::DigestMissing, &d[middle])]));
    let missing = finding_of(&r, Kind::DigestMissing);
    assert_eq!(missing.logs, logs);
    assert_eq!(r.exit_code, exit::FINDINGS);

    let s = make(days_spec(&[Tamper::LogUnlisted, Tamper::LogModified]));
    let added = s.added();
    let r = s.verify();
    assert_eq!(
        pairs(&r),
        set([
            pair(Kind::LogUnlisted, &added[0]),
            pair(Kind::LogModified, &s.logs(middle)[0]),
        ])
    );
    assert_eq!(r.scopes[0].logs.valid, 99);
    assert_eq!(r.scopes[0].logs.unlisted, 1);

    let s = make(days_spec(&[Tamper::LogPending]));
    let r = s.verify();
    assert_eq!(pairs(&r), set([pair(Kind::LogPending, &s.added()[0])]));
    assert_eq!(r.exit_code, exit::VERIFIED);
}

#[test]
fn a_range_inside_the_days_checks_only_its_hours() {
    let s = make(days_spec(&[]));
    let d = s.digests();
    let start = trailproof::layout::parse_digest_key(&d[10]).unwrap().end;
    let end = trailproof::layout::parse_digest_key(&d[30]).unwrap().end;
    let r = s.verify_with(|o| {
        o.start = Some(start);
        o.end = end;
    });
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    // Digests 10 to 30 end inside the range; the hour of digest 31 begins at its end.
    assert_eq!(r.scopes[0].digests.valid, 22);
    // Two logs for each of those 22 digests.
    assert_eq!(r.scopes[0].logs.valid, 44);
    assert_eq!(r.exit_code, exit::VERIFIED);
}

#[test]
fn logs_whose_digests_are_all_gone_are_reported_never_a_silent_success() {
    let s = make(Spec {
        regions: vec!["us-east-1".into(), "eu-west-1".into()],
        ..small_spec()
    });
    let folder = "AWSLogs/111111111111/CloudTrail-Digest/eu-west-1/";
    std::fs::remove_dir_all(s.root.join(folder)).unwrap();
    let logs: Vec<String> = s
        .clean
        .objects
        .keys()
        .filter(|k| k.contains("/CloudTrail/eu-west-1/"))
        .cloned()
        .collect();
    assert_eq!(logs.len(), 12);
    let r = s.verify();
    // No coverage vouches for their absence: judged by when the copy was made.
    let horizon = s.bucket.as_of;
    let mut expected = std::collections::BTreeSet::new();
    expected.extend(logs.iter().map(|l| {
        let t = trailproof::layout::parse_log_key(l).unwrap().time;
        if t + chrono::Duration::hours(2) > horizon {
            pair(Kind::LogPending, l)
        } else {
            pair(Kind::LogUnlisted, l)
        }
    }));
    assert_eq!(pairs(&r), expected);
    assert!(expected.iter().any(|(k, _)| *k == Kind::LogUnlisted));
    let unlisted = finding_of(&r, Kind::LogUnlisted);
    assert!(unlisted
        .message
        .contains("no digest exists for this log folder"));
    assert_eq!(r.scopes.len(), 1);
    assert_eq!(r.scopes[0].region, "us-east-1");
    assert_eq!(r.exit_code, exit::FINDINGS);
}

// --- expected coverage and --deny -----------------------------------------------------------------

fn expected(accounts: &[&str], regions: &[&str], trails: &[&str]) -> trailproof::report::Expected {
    let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect();
    trailproof::report::Expected {
        until: None,
        origin: None,
        accounts: v(accounts),
        regions: v(regions),
        trails: v(trails),
    }
}

#[test]
fn an_expected_region_account_or_trail_that_is_absent_is_scope_missing() {
    let s = make(small_spec());
    let horizon = s.bucket.as_of;
    let mut r = s.verify();
    r.expect(
        &expected(&["111111111111"], &["us-east-1"], &["management"]),
        horizon,
    );
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert_eq!(r.exit_code, exit::VERIFIED);

    for (e, what) in [
        (expected(&[], &["eu-west-1"], &[]), "region eu-west-1"),
        (
            expected(&["999999999999"], &[], &[]),
            "account 999999999999",
        ),
        (expected(&[], &[], &["security"]), "trail security"),
    ] {
        let mut r = s.verify();
        r.expect(&e, horizon);
        let f = finding_of(&r, Kind::ScopeMissing);
        assert!(f.message.contains(what), "{}", f.message);
        assert!(
            f.message.contains("no digest chain was found"),
            "{}",
            f.message
        );
        assert_eq!(r.exit_code, exit::FINDINGS);
    }
}

#[test]
fn a_whole_region_deleted_is_scope_missing_when_expected_and_silent_otherwise() {
    let s = make(Spec {
        regions: vec!["us-east-1".into(), "eu-west-1".into()],
        ..small_spec()
    });
    for kind in ["CloudTrail-Digest", "CloudTrail"] {
        std::fs::remove_dir_all(
            s.root
                .join(format!("AWSLogs/111111111111/{kind}/eu-west-1")),
        )
        .unwrap();
    }
    let mut r = s.verify();
    assert_eq!(
        r.exit_code,
        exit::VERIFIED,
        "nothing says what should have been there"
    );
    r.expect(
        &expected(&["111111111111"], &["us-east-1", "eu-west-1"], &[]),
        s.bucket.as_of,
    );
    let f = finding_of(&r, Kind::ScopeMissing);
    assert_eq!(
        (f.account.as_str(), f.region.as_str()),
        ("111111111111", "eu-west-1")
    );
    assert_eq!(r.findings.len(), 1);
    assert_eq!(r.exit_code, exit::FINDINGS);
}

#[test]
fn an_expected_scope_whose_chain_ends_early_is_scope_missing() {
    let s = tampered(&[Tamper::NewestDigestsDeleted]);
    for log in [4, 5].iter().flat_map(|&h| s.logs(h)) {
        std::fs::remove_file(s.root.join(log)).unwrap();
    }
    let mut r = s.verify();
    assert_eq!(r.exit_code, exit::VERIFIED);
    r.expect(
        &expected(&["111111111111"], &["us-east-1"], &[]),
        s.bucket.as_of,
    );
    let f = finding_of(&r, Kind::ScopeMissing);
    assert!(f.message.contains("chains end at"), "{}", f.message);
    assert_eq!(r.exit_code, exit::FINDINGS);
}

#[test]
fn deny_turns_warnings_or_a_kind_into_failures() {
    use trailproof::report::Deny;
    let s = make(Spec {
        restart_at: Some(3),
        ..small_spec()
    });
    let r = s.verify();
    assert_eq!(
        finding_of(&r, Kind::ChainRestart).severity,
        Severity::Warning
    );
    assert_eq!(r.exit_code, exit::VERIFIED);
    for deny in [Deny::Warnings, Deny::Kind(Kind::ChainRestart)] {
        let mut r = s.verify();
        r.deny(&[deny]);
        assert_eq!(finding_of(&r, Kind::ChainRestart).severity, Severity::Error);
        assert_eq!(r.exit_code, exit::FINDINGS, "{deny:?}");
    }
    let mut r = s.verify();
    r.deny(&[Deny::Kind(Kind::LogModified)]);
    assert_eq!(r.exit_code, exit::VERIFIED);
    assert!("chain_tail_gap".parse::<Deny>().is_ok());
    assert!("nonsense"
        .parse::<Deny>()
        .unwrap_err()
        .contains("log_pending"));
}
