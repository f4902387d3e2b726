//! The binary: parse arguments, build the runtime, call the library, write the report, and turn
//! the outcome into an exit code. Nothing else here decides anything.
#![forbid(unsafe_code)]

mod cli;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

use cli::{Cli, Command, SimulateArgs, VerifyArgs};
use trailproof::keys::KeyRing;
use trailproof::report::{self, exit};
use trailproof::simulate::{self, AccountSpec, Spec};
use trailproof::store::{LocalStore, Store};
use trailproof::verify::{self, Options};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Verify(args) => run_verify(args),
        Command::Simulate(args) => run_simulate(args),
    };
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(message) => {
            eprintln!("trailproof: error: {message}");
            ExitCode::from(exit::INCOMPLETE as u8)
        }
    }
}

fn run_verify(args: VerifyArgs) -> Result<i32, String> {
    if args.source.starts_with("s3://") {
        return Err(format!(
            "{}: this build reads local mirrors only; copy the bucket to a folder (keys as paths, each digest's metadata beside it as <key>.metadata.json) and verify that",
            args.source
        ));
    }
    if args.public_keys.is_empty() {
        return Err(
            "no trusted public keys: pass --public-keys with saved ListPublicKeys output, PEM or DER files (keys are never taken from the source)".into(),
        );
    }
    let keys = KeyRing::load(&args.public_keys).map_err(|e| e.to_string())?;
    let store = LocalStore::open(Path::new(&args.source), args.bucket.as_deref())
        .map_err(|e| e.to_string())?;
    let end = args
        .end
        .or_else(|| store.manifest().and_then(|m| m.acquired_at))
        .unwrap_or_else(chrono::Utc::now);
    let options = Options {
        start: args.start,
        end,
        accounts: args.accounts,
        regions: args.regions,
        trails: args.trails,
        jobs: args.jobs as usize,
        strict: args.strict,
    };
    if args.verbose > 0 && !args.quiet {
        eprintln!(
            "trailproof: verifying {} (bucket {}) with {} trusted key(s)",
            trailproof::report::text::printable(&args.source),
            store.bucket(),
            keys.infos().len()
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let report = runtime
        .block_on(verify::verify(&store, Arc::new(keys), options))
        .map_err(|e| e.to_string())?;
    for (format, path) in &args.reports {
        std::fs::write(path, report::render(&report, *format)).map_err(|e| {
            format!(
                "cannot write the {format} report to {}: {e}",
                path.display()
            )
        })?;
    }
    print!("{}", report::render(&report, args.format));
    Ok(report.exit_code)
}

fn run_simulate(args: SimulateArgs) -> Result<i32, String> {
    let pem = std::fs::read_to_string(&args.signing_key).map_err(|e| {
        format!(
            "cannot read the signing key {}: {e}",
            args.signing_key.display()
        )
    })?;
    let signer = {
        use rsa::pkcs1::DecodeRsaPrivateKey;
        use rsa::pkcs8::DecodePrivateKey;
        rsa::RsaPrivateKey::from_pkcs1_pem(&pem)
            .or_else(|_| rsa::RsaPrivateKey::from_pkcs8_pem(&pem))
            .map_err(|e| {
                format!(
                    "{} is not an RSA private key in PEM: {e}",
                    args.signing_key.display()
                )
            })?
    };
    let defaults = Spec::default();
    let or_default = |v: Vec<String>, d: Vec<String>| if v.is_empty() { d } else { v };
    let bucket = args.bucket.clone().unwrap_or_else(|| {
        args.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or(defaults.bucket.clone())
    });
    let spec = Spec {
        bucket,
        accounts: if args.accounts.is_empty() {
            defaults.accounts.clone()
        } else {
            args.accounts.into_iter().collect::<Vec<AccountSpec>>()
        },
        regions: or_default(args.regions, defaults.regions.clone()),
        trails: or_default(args.trails, defaults.trails.clone()),
        start: args.start,
        hours: args.hours,
        logs_per_hour: args.logs_per_hour,
        log_bytes: args.log_bytes,
        backfill: args.backfill,
        restart_at: args.restart_at,
        escape_slashes: args.escape_slashes,
        key_encoding: args.key_encoding,
        tampers: args.tampers,
        seed: args.seed,
    };
    if spec.tampers.contains(&simulate::Tamper::KeyExpired) && args.public_keys_out.is_none() {
        return Err("--tamper key-expired damages the key file: give --public-keys-out".into());
    }
    let bucket = simulate::simulate(&spec, &signer).map_err(|e| e.to_string())?;
    simulate::write_dir(&bucket, &args.dir).map_err(|e| e.to_string())?;
    if let Some(path) = &args.public_keys_out {
        std::fs::write(path, &bucket.public_keys)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    eprintln!(
        "trailproof: wrote {} objects for bucket {} into {}",
        bucket.objects.len(),
        bucket.name,
        args.dir.display()
    );
    Ok(exit::VERIFIED)
}
