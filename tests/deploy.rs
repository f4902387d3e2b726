//! The `deploy/` recipes: valid for their engines by the engines' own definitions (offline),
//! and their shard and merge commands, run exactly as the engines' containers would run them
//! with the variables the engines set, give the whole run's report.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use trailproof::layout::parse_digest_key;
use trailproof::simulate::{simulate, write_dir, Spec};

const CHECK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/check.py");

/// The Python packages `deploy/check.py` needs (deploy/requirements.txt), if installed.
fn checker() -> Result<(), String> {
    let out = Command::new("python3")
        .args(["-c", "import kubernetes, botocore, yaml"])
        .output()
        .map_err(|e| format!("python3 cannot run: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "deploy/check.py needs kubernetes, botocore and PyYAML (python3 -m pip install -r deploy/requirements.txt): {}",
            String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or_default()
        ))
    }
}

#[test]
fn the_recipes_are_valid_for_kubernetes_batch_and_github_actions() {
    let Some(()) = needs(
        checker(),
        "the_recipes_are_valid_for_kubernetes_batch_and_github_actions",
    ) else {
        return;
    };
    let out = Command::new("python3")
        .args([CHECK, "validate"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A bucket of three days with the first digest of 2 January deleted.
fn damaged(dir: &Path) -> std::path::PathBuf {
    let spec = Spec {
        bucket: "deploy-bucket".into(),
        accounts: ["111111111111", "222222222222", "333333333333"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect(),
        hours: 60,
        logs_per_hour: 1,
        log_bytes: 600,
        ..Spec::default()
    };
    let mut bucket = simulate(&spec, signer()).unwrap();
    let gone = bucket
        .objects
        .keys()
        .filter(|k| parse_digest_key(k).is_some() && k.contains("/2024/01/02/"))
        .min()
        .cloned()
        .unwrap();
    bucket.objects.remove(&gone);
    let root = dir.join("mirror");
    write_dir(&bucket, &root).unwrap();
    root
}

#[test]
fn each_recipes_shards_and_merge_run_as_its_engine_runs_them_give_the_whole_runs_report() {
    let Some(()) = needs(
        checker(),
        "each_recipes_shards_and_merge_run_as_its_engine_runs_them_give_the_whole_runs_report",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = damaged(dir.path());
    let keys = fixture("keys/TEST-ONLY-public-key.pem")
        .display()
        .to_string();
    let whole = Command::new(env!("CARGO_BIN_EXE_trailproof"))
        .args(["verify", root.to_str().unwrap(), "--public-keys", &keys])
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert_eq!(whole.status.code(), Some(1));
    let whole: serde_json::Value = serde_json::from_slice(&whole.stdout).unwrap();
    for recipe in ["kubernetes", "batch", "github"] {
        let out = dir.path().join(recipe);
        let listed = Command::new("python3")
            .args([CHECK, "commands", "--recipe", recipe, "--shards", "3"])
            .args(["--source", root.to_str().unwrap()])
            .args(["--out", out.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            listed.status.success(),
            "{}",
            String::from_utf8_lossy(&listed.stderr)
        );
        let steps: Vec<serde_json::Value> = serde_json::from_slice(&listed.stdout).unwrap();
        assert_eq!(steps.len(), 4, "{recipe}: three shards and the merge");
        let mut codes = Vec::new();
        for step in &steps {
            let argv: Vec<String> = step["argv"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string())
                .collect();
            assert_eq!(argv[0], "trailproof", "{recipe}: {argv:?}");
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_trailproof"));
            cmd.args(&argv[1..])
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("HOME", "/nonexistent");
            // The recipes fetch CloudTrail's keys; offline, the test key is given instead.
            if argv[1] == "verify" {
                cmd.args(["--public-keys", &keys]);
            }
            for (name, value) in step["env"].as_object().unwrap() {
                cmd.env(name, value.as_str().unwrap());
            }
            let run = cmd.output().unwrap();
            codes.push(run.status.code());
            assert!(
                matches!(run.status.code(), Some(0 | 1)),
                "{recipe}: {argv:?}: {}",
                String::from_utf8_lossy(&run.stderr)
            );
        }
        assert_eq!(
            codes.last(),
            Some(&Some(1)),
            "{recipe}: the merge's verdict"
        );
        let merged = std::fs::read(out.join("merged.json")).unwrap_or_else(|e| {
            panic!(
                "{recipe}: the merge wrote no merged.json in {}: {e}",
                out.display()
            )
        });
        let merged: serde_json::Value = serde_json::from_slice(&merged).unwrap();
        for field in ["findings", "unverified", "scopes", "exit_code"] {
            assert_eq!(whole[field], merged[field], "{recipe}: {field}");
        }
    }
}
