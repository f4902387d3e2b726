//! Shared scenario helpers: make a signed bucket with the simulator (and its undamaged twin, to
//! know which keys to expect), mirror it to a temporary folder, and verify it.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::RsaPrivateKey;
use trailproof::digest::DigestBody;
use trailproof::finding::Kind;
use trailproof::keys::KeyRing;
use trailproof::layout::parse_digest_key;
use trailproof::report::Report;
use trailproof::simulate::{simulate, write_dir, Bucket, Spec, Tamper};
use trailproof::store::LocalStore;
use trailproof::verify::{verify, Options};

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

/// A tool a test needs from outside Cargo (Chromium, SeaweedFS): `Some` when present. When it
/// is absent, in CI (`CI` set) the test fails with how to install it; elsewhere the skip is
/// said on the terminal (not in the captured output, so it shows even when the test passes)
/// and the test returns, so that one missing tool never stops the other suites.
#[allow(dead_code)]
pub fn needs<T>(found: Result<T, String>, test: &str) -> Option<T> {
    match found {
        Ok(tool) => Some(tool),
        Err(why) if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) => {
            panic!("{test}: {why}")
        }
        Err(why) => {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPED {test}: {why}. It fails instead when CI is set. ***\n"
            );
            None
        }
    }
}

pub fn fixture(path: &str) -> PathBuf {
    Path::new(FIXTURES).join(path)
}

pub fn signer() -> &'static RsaPrivateKey {
    static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let pem = std::fs::read_to_string(fixture("keys/TEST-ONLY-signing-key.pem")).unwrap();
        RsaPrivateKey::from_pkcs1_pem(&pem).unwrap()
    })
}

pub fn test_keys() -> KeyRing {
    KeyRing::load(&[fixture("keys/TEST-ONLY-public-key.pem")]).unwrap()
}

/// One trail, one account, one region, six hours, two logs an hour.
pub fn small_spec() -> Spec {
    Spec {
        bucket: "scenario-bucket".into(),
        hours: 6,
        logs_per_hour: 2,
        log_bytes: 1500,
        ..Spec::default()
    }
}

pub struct Scenario {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    /// The same bucket without the damage.
    pub clean: Bucket,
    pub bucket: Bucket,
}

pub fn make(spec: Spec) -> Scenario {
    let clean = simulate(
        &Spec {
            tampers: Vec::new(),
            ..spec.clone()
        },
        signer(),
    )
    .unwrap();
    let bucket = simulate(&spec, signer()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mirror");
    write_dir(&bucket, &root).unwrap();
    Scenario {
        dir,
        root,
        clean,
        bucket,
    }
}

pub fn tampered(tampers: &[Tamper]) -> Scenario {
    make(Spec {
        tampers: tampers.to_vec(),
        ..small_spec()
    })
}

impl Scenario {
    /// The first scope's regular digest keys, oldest first, in the undamaged bucket.
    pub fn digests(&self) -> Vec<String> {
        let mut keys: Vec<(chrono::DateTime<chrono::Utc>, String)> = self
            .clean
            .objects
            .keys()
            .filter_map(|k| {
                let name = parse_digest_key(k)?;
                let first = name.scope.location.account == "111111111111"
                    && name.scope.location.region == "us-east-1"
                    && name.scope.trail == "management"
                    && name.scope.location.org_id.is_none()
                    && name.scope.location.prefix.is_empty();
                (first && !name.backfill).then(|| (name.end, k.clone()))
            })
            .collect();
        keys.sort();
        keys.into_iter().map(|(_, k)| k).collect()
    }

    /// The log keys the first scope's digest at `hour` lists, in the undamaged bucket.
    pub fn logs(&self, hour: usize) -> Vec<String> {
        let key = &self.digests()[hour];
        listed(&self.clean.objects[key].bytes)
    }

    /// Keys the damage added.
    pub fn added(&self) -> Vec<String> {
        self.bucket
            .objects
            .keys()
            .filter(|k| !self.clean.objects.contains_key(*k))
            .cloned()
            .collect()
    }

    pub fn verify(&self) -> Report {
        self.verify_with(|_| {})
    }

    /// Verifies the bucket, and checks that a sharded run of it gives the same report: split
    /// into 1, 2, 3 and 7 shards as `trailproof plan` balances them (heavy locations cut into
    /// windows of days), and into 3 by the hash of each location, then merged.
    pub fn verify_with(&self, adjust: impl Fn(&mut Options)) -> Report {
        let full = verify_dir(&self.root, test_keys(), &adjust);
        for (n, planned) in [(1, true), (2, true), (3, true), (7, true), (3, false)] {
            let merged = verify_sharded(&self.root, &test_keys(), &adjust, n, planned).0;
            assert_same_report(&full, &merged, &format!("{n} shards, planned: {planned}"));
        }
        full
    }
}

/// Fails unless two reports have the same findings, unverified objects, scopes, notes and exit
/// code.
pub fn assert_same_report(full: &Report, merged: &Report, what: &str) {
    let json = |v: &dyn erased::Json| v.json();
    assert_eq!(
        json(&full.findings),
        json(&merged.findings),
        "{what}: findings"
    );
    assert_eq!(
        json(&full.unverified),
        json(&merged.unverified),
        "{what}: unverified"
    );
    assert_eq!(json(&full.scopes), json(&merged.scopes), "{what}: scopes");
    assert_eq!(full.notes, merged.notes, "{what}: notes");
    assert_eq!(full.exit_code, merged.exit_code, "{what}: exit code");
}

mod erased {
    pub trait Json {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> String {
            serde_json::to_string_pretty(self).unwrap()
        }
    }
}

/// Verifies the folder at `root` as `n` shards and merges them: with `planned`, following a
/// plan balanced as `trailproof plan` makes it; otherwise each location by its hash. Each
/// shard's record goes through its JSON form, as `trailproof merge` reads it. Returns the
/// merged report and each shard's own.
pub fn verify_sharded(
    root: &Path,
    keys: &KeyRing,
    adjust: impl Fn(&mut Options),
    n: usize,
    planned: bool,
) -> (Report, Vec<Report>) {
    use trailproof::shard::{balance, merge, Part, PlanFile, Shard, ShardRecord};
    let store = LocalStore::open(root, None).unwrap();
    let manifest = store.manifest().unwrap();
    let base = || {
        let mut options = options_at(manifest.range_end().unwrap());
        options.horizon = manifest.observed_at().unwrap();
        adjust(&mut options);
        options
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let plan = planned.then(|| {
        let found = runtime
            .block_on(trailproof::verify::plan(&store, &base()))
            .unwrap();
        let options = base();
        let plan = PlanFile {
            plan_version: trailproof::shard::PLAN_VERSION,
            tool: "test".into(),
            source: root.display().to_string(),
            start: options.start,
            end: Some(options.end),
            filters: Default::default(),
            shards: n,
            units: balance(trailproof::verify::digest_days(&found), n),
        };
        (plan, "plan-sha256".to_string())
    });
    let mut records = Vec::new();
    let mut own = Vec::new();
    for index in 1..=n {
        let mut options = base();
        options.part = Some(Arc::new(Part {
            shard: Shard { index, total: n },
            plan: plan.clone(),
        }));
        let report = runtime
            .block_on(verify(&store, Arc::new(keys.clone()), options))
            .unwrap();
        let text = serde_json::to_string(report.shard.as_ref().unwrap()).unwrap();
        let record: ShardRecord = serde_json::from_str(&text).unwrap();
        records.push((format!("shard {index}"), record));
        own.push(report);
    }
    let merged = merge(records).unwrap();
    let end = merged.record.range.end;
    let mut report = Report::assemble(merged.record);
    report.notes.extend(merged.notes);
    report.expect(&merged.expected, merged.horizon.min(end));
    (report, own)
}

/// The log keys a digest object lists.
pub fn listed(gz: &[u8]) -> Vec<String> {
    let (content, _) = trailproof::hash::inflate_to_vec(gz, u64::MAX).unwrap();
    DigestBody::parse(&content)
        .unwrap()
        .logs
        .into_iter()
        .map(|l| l.key)
        .collect()
}

/// Options for the whole history up to `end`, the bucket observed at `end`, 8 requests at once.
pub fn options_at(end: chrono::DateTime<chrono::Utc>) -> Options {
    Options {
        start: None,
        end,
        horizon: end,
        orgs: vec![],
        accounts: vec![],
        regions: vec![],
        trails: vec![],
        jobs: 8,
        adaptive: false,
        strict: false,
        progress: None,
        objects: None,
        part: None,
        resume: None,
        proof: None,
    }
}

pub fn verify_dir(root: &Path, keys: KeyRing, adjust: impl FnOnce(&mut Options)) -> Report {
    let store = LocalStore::open(root, None).unwrap();
    let manifest = store.manifest().unwrap();
    let mut options = options_at(manifest.range_end().unwrap());
    options.horizon = manifest.observed_at().unwrap();
    adjust(&mut options);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime
        .block_on(verify(&store, Arc::new(keys), options))
        .unwrap()
}

/// The findings as (kind, key) pairs.
pub fn pairs(report: &Report) -> BTreeSet<(Kind, Option<String>)> {
    report
        .findings
        .iter()
        .map(|f| (f.kind, f.key.clone()))
        .collect()
}

/// The first finding of `kind`; the test fails if there is none.
pub fn finding_of(report: &Report, kind: Kind) -> &trailproof::finding::Finding {
    report
        .findings
        .iter()
        .find(|f| f.kind == kind)
        .unwrap_or_else(|| panic!("no {kind:?} finding in {:#?}", report.findings))
}

/// Fails unless `key` is reported unverified with a cause that contains `cause`.
pub fn assert_unverified(report: &Report, key: &str, cause: &str) {
    assert!(
        report
            .unverified
            .iter()
            .any(|u| u.key == key && u.cause.contains(cause)),
        "{key} is not unverified with a cause containing {cause:?}: {:#?}",
        report.unverified
    );
}

pub fn pair(kind: Kind, key: &str) -> (Kind, Option<String>) {
    (kind, Some(key.to_string()))
}

pub fn set<const N: usize>(items: [(Kind, Option<String>); N]) -> BTreeSet<(Kind, Option<String>)> {
    items.into_iter().collect()
}

pub mod s3;
pub mod seaweed;
pub mod tls;

/// Uploads `objects` into `bucket` on the S3 server `options` reach (made if needed), 16 at a
/// time, and waits for it.
pub fn upload_objects(
    options: &trailproof::aws::AwsOptions,
    bucket: &str,
    objects: &std::collections::BTreeMap<String, trailproof::simulate::SimObject>,
) {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let session = trailproof::aws::Session::connect(options).await.unwrap();
        session.upload(bucket, objects, 16).await.unwrap();
    });
}

/// Uploads a simulated bucket whole.
pub fn upload(options: &trailproof::aws::AwsOptions, bucket: &Bucket) {
    upload_objects(options, &bucket.name, &bucket.objects);
}

/// A JSON report's findings as (kind, key) pairs, in report order.
pub fn json_pairs(report: &serde_json::Value) -> Vec<(String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_string(),
                f["key"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}
