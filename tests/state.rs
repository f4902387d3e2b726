//! Scheduled runs that carry proof forward (`verify --state`), through the real binary: a
//! bucket that grows between two runs, damage done to what the first run verified, states
//! that were edited, signed, locked or reset, an incomplete first run, and the same over S3
//! with the test server's request log.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::s3::{Faults, S3Server};
use common::*;
use serde_json::Value;
use trailproof::aws::Session;
use trailproof::layout::{parse_digest_key, Timestamp};
use trailproof::simulate::{simulate, write_dir, AccountSpec, Bucket, Spec};
use trailproof::state::State;

fn trailproof(args: &[&str], env: &[(&str, String)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trailproof"))
        .args(args)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("the binary runs")
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited normally")
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

fn pem() -> String {
    path(&fixture("keys/TEST-ONLY-public-key.pem"))
}

/// Two accounts, two regions, two trails: ten hours of digests.
fn spec(bucket: &str, trails: &[&str]) -> Spec {
    Spec {
        bucket: bucket.into(),
        accounts: vec![
            "111111111111".parse::<AccountSpec>().unwrap(),
            "222222222222".parse().unwrap(),
        ],
        regions: vec!["us-east-1".into(), "eu-west-1".into()],
        trails: trails.iter().map(|t| t.to_string()).collect(),
        hours: 10,
        logs_per_hour: 2,
        log_bytes: 1200,
        ..Spec::default()
    }
}

fn as_it_stood(bucket: &Bucket, at: Timestamp) -> Bucket {
    bucket.as_it_stood(at)
}

fn hour(h: i64) -> Timestamp {
    trailproof::parse_rfc3339("2024-01-01T00:00:00Z").unwrap() + chrono::Duration::hours(h)
}

/// Writes `bucket` as an evidence copy in `dir/name`.
fn copy(dir: &Path, name: &str, bucket: &Bucket) -> PathBuf {
    let root = dir.join(name);
    write_dir(bucket, &root).unwrap();
    root
}

/// `verify SOURCE --state STATE` with the test key, as JSON, plus `extra`.
/// A full run over `source`, without a state: what a run with one must agree with.
fn verify_whole(source: &str) -> Output {
    let pem = pem();
    trailproof(
        &["verify", source, "--public-keys", &pem, "--format", "json"],
        &[],
    )
}

fn verify_with_state(source: &str, state: &Path, extra: &[&str]) -> Output {
    let pem = pem();
    let state = path(state);
    let mut args = vec![
        "verify",
        source,
        "--public-keys",
        &pem,
        "--format",
        "json",
        "--state",
        &state,
    ];
    args.extend_from_slice(extra);
    trailproof(&args, &[])
}

fn kinds(report: &Value) -> BTreeSet<(String, String)> {
    json_pairs(report).into_iter().collect()
}

/// The error findings as (kind, key) pairs.
fn errors(report: &Value) -> BTreeSet<(String, String)> {
    let severities = report["findings"].as_array().unwrap().iter();
    json_pairs(report)
        .into_iter()
        .zip(severities)
        .filter(|(_, f)| f["severity"] == "error")
        .map(|(pair, _)| pair)
        .collect()
}

fn load(state: &Path) -> State {
    let bytes = std::fs::read(state).unwrap();
    State::open(&bytes, "test", None).unwrap()
}

fn digest_keys(bucket: &Bucket) -> BTreeSet<String> {
    bucket
        .objects
        .keys()
        .filter(|k| parse_digest_key(k).is_some())
        .cloned()
        .collect()
}

#[test]
fn a_second_run_over_a_grown_copy_verifies_only_what_is_new_and_agrees_with_a_full_run() {
    let dir = tempfile::tempdir().unwrap();
    let full = simulate(&spec("grown", &["management", "data"]), signer()).unwrap();
    let day1 = copy(dir.path(), "day1", &as_it_stood(&full, hour(6)));
    let day2 = copy(dir.path(), "day2", &full);
    let state = dir.path().join("state.json");

    let first = verify_with_state(&path(&day1), &state, &[]);
    assert_eq!(
        code(&first),
        0,
        "{}",
        String::from_utf8_lossy(&first.stdout)
    );
    let first = json(&first);
    assert_eq!(first["state"]["sequence"], 1);
    assert_eq!(first["state"]["anchors"], 0);
    let written = load(&state);
    // One anchor per chain: 2 accounts × 2 regions × 2 trails.
    let anchors: usize = written.locations.iter().map(|l| l.anchors.len()).sum();
    assert_eq!(anchors, 8);
    assert_eq!(written.previous, None);

    let second = verify_with_state(&path(&day2), &state, &[]);
    assert_eq!(
        code(&second),
        0,
        "{}",
        String::from_utf8_lossy(&second.stdout)
    );
    let second = json(&second);
    let new_digests = digest_keys(&full).len() - digest_keys(&as_it_stood(&full, hour(6))).len();
    assert_eq!(second["state"]["anchors"], 8);
    assert_eq!(second["state"]["digests_verified"], new_digests as u64);
    assert!(second["state"]["objects_compared"].as_u64().unwrap() > 100);
    assert_eq!(
        second["state"]["objects_reread"].as_u64().unwrap(),
        4,
        "the earliest anchor of each of the 4 locations is read again"
    );
    // The next state follows this one.
    let again = load(&state);
    assert_eq!(again.sequence, 2);
    assert_eq!(
        Some(second["state"]["previous"].as_str().unwrap()),
        again.previous.as_deref()
    );

    // The same findings as a full run over the grown copy.
    let whole = json(&verify_whole(&path(&day2)));
    assert_eq!(kinds(&second), kinds(&whole));
}

/// Day 1 verified; then each change to what it verified, found by day 2.
#[test]
fn damage_to_what_was_verified_before_is_found_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let full = simulate(&spec("damaged", &["management"]), signer()).unwrap();
    let before = as_it_stood(&full, hour(6));
    let day1 = copy(dir.path(), "day1", &before);
    let state = dir.path().join("state.json");
    assert_eq!(code(&verify_with_state(&path(&day1), &state, &[])), 0);
    let written = load(&state);
    let l = &written.locations[0];
    let anchor = l.anchors[0].key.clone();
    let mut digests: Vec<(Timestamp, String)> = l
        .ledger
        .iter()
        .filter_map(|r| Some((parse_digest_key(&r.key)?.end, r.key.clone())))
        .collect();
    digests.sort();
    let old_digest = digests[2].1.clone();
    let old_log = l
        .ledger
        .iter()
        .find(|r| r.object == "log")
        .unwrap()
        .key
        .clone();
    let log_folder = old_log.rsplit_once('/').unwrap().0.to_string();
    let newcomer = format!(
        "{log_folder}/{}_CloudTrail_{}_20240101T0130Z_NEWCOMERxxxxxxxx.json.gz",
        l.location.account, l.location.region
    );

    let mut grown = full.clone();
    grown.objects.remove(&old_digest);
    grown.objects.remove(&anchor);
    grown.objects.get_mut(&old_log).unwrap().bytes = trailproof::hash::gzip(b"{\"Records\":[]}");
    grown.objects.insert(
        newcomer.clone(),
        trailproof::simulate::SimObject {
            bytes: trailproof::hash::gzip(b"{\"Records\":[]}"),
            metadata: Default::default(),
        },
    );
    let day2 = copy(dir.path(), "day2", &grown);
    let out = verify_with_state(&path(&day2), &state, &[]);
    assert_eq!(code(&out), 1);
    let report = json(&out);
    let found = errors(&report);
    for want in [
        ("digest_changed_since_verified", old_digest.as_str()),
        ("digest_changed_since_verified", anchor.as_str()),
        ("log_changed_since_verified", old_log.as_str()),
        ("log_unlisted", newcomer.as_str()),
    ] {
        assert!(
            found.contains(&(want.0.to_string(), want.1.to_string())),
            "{want:?} not in {found:#?}"
        );
    }
    // Each is said once, and nothing else in that location is an error.
    let here: Vec<_> = found
        .iter()
        .filter(|(_, k)| {
            k.contains(&format!("/{}/", l.location.region)) && k.contains(&l.location.account)
        })
        .collect();
    assert_eq!(here.len(), 4, "{here:#?}");
    let changed = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == old_log.as_str())
        .unwrap();
    assert!(changed["message"].as_str().unwrap().contains("verified at"));
    assert_eq!(
        changed["expected"],
        l.ledger
            .iter()
            .find(|r| r.key == old_log)
            .unwrap()
            .sha256
            .as_str()
    );

    // Nothing moved in the damaged location: its anchors and ledger stay, and the next run
    // reports the same again.
    let after = load(&state);
    let kept = after
        .locations
        .iter()
        .find(|x| x.location == l.location)
        .unwrap();
    assert_eq!(kept.anchors, l.anchors);
    assert_eq!(kept.ledger, l.ledger);
    assert!(!report["state"]["held"].as_array().unwrap().is_empty());
    let third = verify_with_state(&path(&day2), &state, &[]);
    assert_eq!(code(&third), 1);
    assert_eq!(errors(&json(&third)), found);
}

#[test]
fn an_edited_state_is_refused_and_a_reset_starts_over_saying_so() {
    let dir = tempfile::tempdir().unwrap();
    let full = simulate(&spec("edited", &["management"]), signer()).unwrap();
    let day1 = copy(dir.path(), "day1", &as_it_stood(&full, hour(6)));
    let day2 = copy(dir.path(), "day2", &full);
    let state = dir.path().join("state.json");
    assert_eq!(code(&verify_with_state(&path(&day1), &state, &[])), 0);
    let good = std::fs::read_to_string(&state).unwrap();
    let written = load(&state);

    // A ledger row or the link to the previous state edited in place: its hash fails.
    let sha = &written.locations[0].ledger[0].sha256;
    for edited in [
        good.replacen(sha.as_str(), &"0".repeat(64), 1),
        good.replacen(
            "\"previous\":null",
            &format!("\"previous\":\"{}\"", "1".repeat(64)),
            1,
        ),
    ] {
        assert_ne!(edited, good);
        std::fs::write(&state, &edited).unwrap();
        let out = verify_with_state(&path(&day2), &state, &[]);
        assert_eq!(code(&out), 2);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("changed after it was written"), "{stderr}");
        assert_eq!(
            std::fs::read_to_string(&state).unwrap(),
            edited,
            "a refused state stays as it is"
        );
    }

    // An anchor's signature changed and the state sealed again: CloudTrail's signature fails.
    let mut forged = written.clone();
    let sig = &mut forged.locations[0].anchors[0].signature;
    let flip = if sig.starts_with('0') { "1" } else { "0" };
    sig.replace_range(0..1, flip);
    std::fs::write(&state, forged.seal(None).0).unwrap();
    let out = verify_with_state(&path(&day2), &state, &[]);
    assert_eq!(code(&out), 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("does not verify under the trusted keys"),
        "{stderr}"
    );

    // A ledger row moved out of its location's folders and the state sealed again: refused.
    let mut moved = written.clone();
    moved.locations[0].ledger[0].key = "elsewhere/AWSLogs/x.json.gz".into();
    std::fs::write(&state, moved.seal(None).0).unwrap();
    let out = verify_with_state(&path(&day2), &state, &[]);
    assert_eq!(code(&out), 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is not an object of its location"),
        "{stderr}"
    );

    // A reset: a full run, said in the report, and a new first state.
    let out = verify_with_state(&path(&day2), &state, &["--state-reset"]);
    assert_eq!(code(&out), 0);
    let report = json(&out);
    assert_eq!(report["state"]["reset"], true);
    assert_eq!(report["state"]["anchors"], 0);
    assert!(report["notes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n.as_str().unwrap().contains("--state-reset")));
    let fresh = load(&state);
    assert_eq!((fresh.sequence, fresh.previous), (1, None));
}

#[test]
fn a_signed_state_needs_its_key_and_a_held_lock_refuses_a_second_run() {
    let dir = tempfile::tempdir().unwrap();
    let full = simulate(&spec("signed", &["management"]), signer()).unwrap();
    let day1 = copy(dir.path(), "day1", &as_it_stood(&full, hour(6)));
    let day2 = copy(dir.path(), "day2", &full);
    let state = dir.path().join("state.json");
    let key = path(&fixture("keys/TEST-ONLY-state-key.pem"));
    let other = path(&fixture("keys/TEST-ONLY-other-state-key.pem"));
    assert_eq!(
        code(&verify_with_state(
            &path(&day1),
            &state,
            &["--state-key", &key]
        )),
        0
    );

    for (args, why) in [
        (
            vec!["--state-key", other.as_str()],
            "does not verify under --state-key",
        ),
        (vec![], "the state is signed"),
    ] {
        let out = verify_with_state(&path(&day2), &state, &args);
        assert_eq!(code(&out), 2);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(why), "{stderr}");
    }
    // A link planted where the new state is first written is replaced, not written through.
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "untouched").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(&victim, dir.path().join("state.json.tmp")).unwrap();
    let out = verify_with_state(&path(&day2), &state, &["--state-key", &key]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(json(&out)["state"]["sequence"], 2);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");

    // Another run holds the lock.
    std::fs::write(dir.path().join("state.json.lock"), "process 1 since then\n").unwrap();
    let out = verify_with_state(&path(&day2), &state, &["--state-key", &key]);
    assert_eq!(code(&out), 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("locked by another run"), "{stderr}");
    assert_eq!(load_signed(&state).sequence, 2, "the state is untouched");
}

fn load_signed(state: &Path) -> State {
    let key =
        trailproof::custody::SigningKey::load(&fixture("keys/TEST-ONLY-state-key.pem")).unwrap();
    State::open(&std::fs::read(state).unwrap(), "test", Some(&key)).unwrap()
}

#[test]
fn reverify_rehashes_its_slice_and_all_slices_cover_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let full = simulate(&spec("slices", &["management"]), signer()).unwrap();
    let day1 = copy(dir.path(), "day1", &as_it_stood(&full, hour(6)));
    let state = dir.path().join("state.json");
    assert_eq!(code(&verify_with_state(&path(&day1), &state, &[])), 0);
    let rows: usize = load(&state).locations.iter().map(|l| l.ledger.len()).sum();
    let mut total = 0;
    for k in 1..=3 {
        let slice = format!("{k}/3");
        let out = verify_with_state(&path(&day1), &state, &["--reverify", &slice]);
        assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stdout));
        let report = json(&out);
        assert_eq!(report["state"]["reverify"], slice.as_str());
        total += report["state"]["objects_rehashed"].as_u64().unwrap() as usize;
    }
    // Every row but the anchors (read again every run) is re-hashed once over the three runs.
    let anchors = 4;
    assert_eq!(total, rows - anchors);
}

// ---- Over S3 ----

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

/// Uploads what `bucket` holds beyond `before`: the objects delivered since.
fn upload_new(server: &S3Server, bucket: &Bucket, before: &Bucket) {
    let objects = bucket
        .objects
        .iter()
        .filter(|(k, _)| !before.objects.contains_key(*k))
        .map(|(k, o)| (k.clone(), o.clone()))
        .collect();
    upload_objects(&server.aws_options(), &bucket.name, &objects);
}

fn verify_s3(server: &S3Server, bucket: &str, end: Timestamp, extra: &[&str]) -> Output {
    let source = format!("s3://{bucket}");
    let end = trailproof::layout::format_time(end);
    let mut args = vec![
        "verify",
        source.as_str(),
        "--endpoint-url",
        server.endpoint.as_str(),
        "--end",
        end.as_str(),
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    trailproof(&args, &server.env())
}

fn gets(server: &S3Server, bucket: &str) -> BTreeSet<String> {
    server
        .state
        .requests()
        .iter()
        .filter(|r| !r.services && r.method == "GET" && !r.query.contains("list-type"))
        .filter_map(|r| {
            r.path
                .strip_prefix(&format!("/{bucket}/"))
                .map(str::to_string)
        })
        .collect()
}

#[test]
fn over_s3_a_second_run_reads_only_the_new_objects_and_the_anchors() {
    let dir = tempfile::tempdir().unwrap();
    let server = S3Server::start(&dir.path().join("s3"));
    server.trust(signer());
    let full = simulate(&spec("grows", &["management"]), signer()).unwrap();
    let before = as_it_stood(&full, hour(6));
    upload(&server.aws_options(), &before);
    let state = path(&dir.path().join("state.json"));
    let out = verify_s3(&server, "grows", before.as_of, &["--state", &state]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let anchors: BTreeSet<String> = load(Path::new(&state))
        .locations
        .iter()
        .flat_map(|l| l.anchors.iter().map(|a| a.key.clone()))
        .collect();
    assert_eq!(anchors.len(), 4);

    upload_new(&server, &full, &before);
    server.state.clear();
    let out = verify_s3(&server, "grows", full.as_of, &["--state", &state]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let new: BTreeSet<String> = full
        .objects
        .keys()
        .filter(|k| !before.objects.contains_key(*k))
        .cloned()
        .collect();
    let read = gets(&server, "grows");
    let want: BTreeSet<String> = new.union(&anchors).cloned().collect();
    let percent = |k: &String| k.replace(':', "%3A");
    let want: BTreeSet<String> = want.iter().map(percent).collect();
    let read: BTreeSet<String> = read.iter().map(percent).collect();
    assert_eq!(
        read, want,
        "the second run reads the new objects and the anchors, nothing else"
    );
    let report = json(&out);
    assert_eq!(
        report["state"]["digests_verified"].as_u64().unwrap() as usize,
        new.iter().filter(|k| parse_digest_key(k).is_some()).count()
    );
}

#[test]
fn over_s3_an_incomplete_first_run_holds_its_anchor_and_the_next_run_retries() {
    let dir = tempfile::tempdir().unwrap();
    let server = S3Server::start(&dir.path().join("s3"));
    server.trust(signer());
    let full = simulate(&spec("retry", &["management"]), signer()).unwrap();
    upload(&server.aws_options(), &full);
    let denied = full
        .objects
        .keys()
        .find(|k| k.contains("/CloudTrail/us-east-1/") && k.contains("111111111111"))
        .unwrap()
        .clone();
    server.state.set_faults(Faults {
        deny_get: vec![denied.clone()],
        ..Faults::default()
    });
    let state = path(&dir.path().join("state.json"));
    let out = verify_s3(&server, "retry", full.as_of, &["--state", &state]);
    assert_eq!(code(&out), 2);
    let report = json(&out);
    assert!(report["unverified"]
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["key"] == denied.as_str()));
    let held = report["state"]["held"].as_array().unwrap();
    assert_eq!(held.len(), 1, "{held:?}");
    assert!(held[0].as_str().unwrap().contains("111111111111"));
    let written = load(Path::new(&state));
    assert_eq!(
        written.locations.len(),
        3,
        "the location with the denied log has no anchor yet"
    );

    server.state.set_faults(Faults::default());
    server.state.clear();
    let out = verify_s3(&server, "retry", full.as_of, &["--state", &state]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        gets(&server, "retry")
            .iter()
            .any(|k| k.replace("%3A", ":") == denied),
        "the denied log is read again"
    );
    assert_eq!(load(Path::new(&state)).locations.len(), 4);
}

#[test]
fn over_s3_the_state_itself_can_live_in_a_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let server = S3Server::start(&dir.path().join("s3"));
    server.trust(signer());
    let full = simulate(&spec("logs", &["management"]), signer()).unwrap();
    let before = as_it_stood(&full, hour(6));
    upload(&server.aws_options(), &before);
    // The auditor's own bucket, beside the log bucket.
    let mut one = BTreeMap::new();
    one.insert(
        "readme.txt".to_string(),
        trailproof::simulate::SimObject {
            bytes: b"the auditor's bucket".to_vec(),
            metadata: Default::default(),
        },
    );
    upload_objects(&server.aws_options(), "audit", &one);
    let url = "s3://audit/trailproof/grows.state.json";
    server.state.clear();
    let out = verify_s3(&server, "logs", before.as_of, &["--state", url]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let puts: Vec<String> = server
        .state
        .requests()
        .iter()
        .filter(|r| r.method == "PUT")
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(
        puts,
        vec!["/audit/trailproof/grows.state.json".to_string()],
        "the one write is the state's"
    );
    upload_new(&server, &full, &before);
    let out = verify_s3(&server, "logs", full.as_of, &["--state", url]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let report = json(&out);
    assert_eq!(report["state"]["sequence"], 2);
    assert_eq!(report["state"]["path"], url);
}

/// Another run writes the state between this run's read and its write: the conditional
/// write fails, naming the race, whether the state existed (`If-Match`) or not yet
/// (`If-None-Match: *`). `options` reach the S3 server holding the `audit` bucket.
fn a_racing_writer_is_refused(options: trailproof::aws::AwsOptions) {
    runtime().block_on(async {
        let session = Session::connect(&options).await.unwrap();
        session.upload("audit", &BTreeMap::new(), 1).await.unwrap();
        let other = |bytes: &[u8]| {
            let mut one = BTreeMap::new();
            one.insert(
                "race.state.json".to_string(),
                trailproof::simulate::SimObject {
                    bytes: bytes.to_vec(),
                    metadata: Default::default(),
                },
            );
            one
        };
        for existed in [false, true] {
            let store = session.s3_store("audit", "").await.unwrap();
            // Once it exists, what is there is the other run's bytes, not a state: this run
            // resets it (reads only its ETag).
            let reset = existed;
            let held = trailproof::state::Held::s3(store, "race.state.json", None, reset, None)
                .await
                .unwrap();
            // The other run's state lands first.
            let theirs = format!("another run's state, written while the state existed: {existed}");
            session
                .upload("audit", &other(theirs.as_bytes()), 1)
                .await
                .unwrap();
            let written = held
                .write("logs", BTreeMap::new(), &BTreeSet::new(), hour(0), b"{}")
                .await;
            let Err(e) = written else {
                panic!("the second writer overwrote the first (existed: {existed})")
            };
            assert!(e.to_string().contains("written by another run"), "{e}");
        }
    });
}

#[test]
fn over_s3_a_state_written_meanwhile_by_another_run_is_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let server = S3Server::start(&dir.path().join("s3"));
    a_racing_writer_is_refused(server.aws_options());
}

/// The same over SeaweedFS, a second real S3 server: the log bucket and the auditor's state
/// bucket on it, a second run that carries the state, and a racing writer refused.
#[test]
fn over_seaweedfs_the_state_carries_forward_and_a_racing_write_is_refused() {
    let Some(weed) = needs(
        common::seaweed::Seaweed::start(),
        "over_seaweedfs_the_state_carries_forward_and_a_racing_write_is_refused",
    ) else {
        return;
    };
    let full = simulate(&spec("sw-logs", &["management"]), signer()).unwrap();
    let before = as_it_stood(&full, hour(6));
    let put = |bucket: &Bucket| upload(&weed.aws_options(), bucket);
    put(&before);
    put(&Bucket {
        name: "sw-audit".into(),
        objects: BTreeMap::new(),
        ..before.clone()
    });
    let env = [
        ("AWS_ACCESS_KEY_ID", common::seaweed::ACCESS_KEY.to_string()),
        (
            "AWS_SECRET_ACCESS_KEY",
            common::seaweed::SECRET_KEY.to_string(),
        ),
        ("AWS_REGION", "us-east-1".to_string()),
    ];
    let pem = pem();
    let run = |end: Timestamp| {
        let end = trailproof::layout::format_time(end);
        trailproof(
            &[
                "verify",
                "s3://sw-logs",
                "--endpoint-url",
                &weed.endpoint,
                "--public-keys",
                &pem,
                "--end",
                &end,
                "--format",
                "json",
                "--state",
                "s3://sw-audit/trailproof/state.json",
            ],
            &env,
        )
    };
    let out = run(before.as_of);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let rest = Bucket {
        objects: full
            .objects
            .iter()
            .filter(|(k, _)| !before.objects.contains_key(*k))
            .map(|(k, o)| (k.clone(), o.clone()))
            .collect(),
        ..full.clone()
    };
    put(&rest);
    let out = run(full.as_of);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let report = json(&out);
    assert_eq!(report["state"]["sequence"], 2);
    assert_eq!(report["state"]["anchors"], 4);
    assert_eq!(
        report["state"]["digests_verified"].as_u64().unwrap() as usize,
        rest.objects
            .keys()
            .filter(|k| parse_digest_key(k).is_some())
            .count()
    );
    a_racing_writer_is_refused(weed.aws_options());
}

/// A run narrowed by `--account` re-checks only that account, and leaves the others' anchors
/// and ledger as they were.
#[test]
fn a_narrowed_run_rechecks_only_what_it_selects_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let full = simulate(&spec("narrowed", &["management"]), signer()).unwrap();
    let day1 = copy(dir.path(), "day1", &as_it_stood(&full, hour(6)));
    let state = dir.path().join("state.json");
    assert_eq!(code(&verify_with_state(&path(&day1), &state, &[])), 0);
    let before = load(&state);
    let other = before
        .locations
        .iter()
        .find(|l| l.location.account == "222222222222")
        .unwrap()
        .clone();
    let rewritten = other
        .ledger
        .iter()
        .find(|r| r.object == "log")
        .unwrap()
        .key
        .clone();
    let mut grown = full.clone();
    grown.objects.get_mut(&rewritten).unwrap().bytes = trailproof::hash::gzip(b"{\"Records\":[]}");
    let day2 = copy(dir.path(), "day2", &grown);

    let out = verify_with_state(&path(&day2), &state, &["--account", "111111111111"]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stdout));
    let report = json(&out);
    assert!(kinds(&report)
        .iter()
        .all(|(_, k)| !k.contains("222222222222")));
    let after = load(&state);
    let kept = after
        .locations
        .iter()
        .find(|l| l.location == other.location)
        .unwrap();
    assert_eq!(
        kept, &other,
        "the account not selected keeps its anchors and ledger"
    );

    // The whole bucket again: the rewritten log is found.
    let out = verify_with_state(&path(&day2), &state, &[]);
    assert_eq!(code(&out), 1);
    assert!(errors(&json(&out)).contains(&("log_changed_since_verified".to_string(), rewritten)));
}

/// A copy's file edited after the copy was made, its manifest left as it was: the file's own
/// size gives it away, and it is read again and reported.
#[test]
fn a_file_edited_in_a_copy_behind_its_manifest_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let full = simulate(&spec("edited-copy", &["management"]), signer()).unwrap();
    let day1 = copy(dir.path(), "day1", &as_it_stood(&full, hour(6)));
    let state = dir.path().join("state.json");
    assert_eq!(code(&verify_with_state(&path(&day1), &state, &[])), 0);
    let row = load(&state).locations[0]
        .ledger
        .iter()
        .find(|r| r.object == "log")
        .unwrap()
        .clone();
    let day2 = copy(dir.path(), "day2", &full);
    std::fs::write(
        day2.join(&row.key),
        trailproof::hash::gzip(b"{\"Records\":[]}"),
    )
    .unwrap();
    let out = verify_with_state(&path(&day2), &state, &[]);
    assert_eq!(code(&out), 1);
    assert!(errors(&json(&out)).contains(&("log_changed_since_verified".to_string(), row.key)));
}

/// Damage in the hours after the anchors: the daily run reports exactly what a full run of the
/// grown copy reports, and with the same exit code.
#[test]
fn damage_in_the_new_hours_is_reported_as_a_full_run_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let full = simulate(&spec("new-damage", &["management", "data"]), signer()).unwrap();
    let before = as_it_stood(&full, hour(6));
    let day1 = copy(dir.path(), "day1", &before);
    let state = dir.path().join("state.json");
    assert_eq!(code(&verify_with_state(&path(&day1), &state, &[])), 0);

    let mut new_digests: Vec<(Timestamp, String)> = full
        .objects
        .keys()
        .filter(|k| !before.objects.contains_key(*k))
        .filter_map(|k| Some((parse_digest_key(k)?.end, k.clone())))
        .collect();
    new_digests.sort();
    let deleted = new_digests[new_digests.len() / 2].1.clone();
    let mut grown = full.clone();
    let modified = listed(&grown.objects[&new_digests[0].1].bytes)[0].clone();
    grown.objects.remove(&deleted);
    grown.objects.get_mut(&modified).unwrap().bytes = trailproof::hash::gzip(b"{\"Records\":[]}");
    let day2 = copy(dir.path(), "day2", &grown);

    let daily = verify_with_state(&path(&day2), &state, &[]);
    let whole = verify_whole(&path(&day2));
    assert_eq!((code(&daily), code(&whole)), (1, 1));
    let (daily, whole) = (json(&daily), json(&whole));
    let found = errors(&daily);
    assert!(
        found.contains(&("digest_missing".to_string(), deleted)),
        "{found:#?}"
    );
    assert!(
        found.contains(&("log_modified".to_string(), modified)),
        "{found:#?}"
    );
    assert_eq!(kinds(&daily), kinds(&whole));
}
