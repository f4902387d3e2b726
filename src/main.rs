//! The binary: parse arguments, build the runtime, call the library, write the report, and turn
//! the outcome into an exit code. Nothing else here decides anything.
#![forbid(unsafe_code)]

mod cli;
mod progress;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use futures::FutureExt;

use cli::{
    AcquireArgs, AwsArgs, Cli, Command, FilterArgs, KeysCommand, KeysFetchArgs, SimulateArgs,
    VerifyArgs,
};
use trailproof::aws::{AwsOptions, Session};
use trailproof::custody::{self, CopyTrust, CustodyKey};
use trailproof::keys::{self, KeyRing};
use trailproof::report::{self, exit, Report};
use trailproof::simulate::{self, Spec};
use trailproof::store::LocalStore;
use trailproof::verify::{self, Options};
use trailproof::Timestamp;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
        .and_then(|runtime| {
            runtime.block_on(async {
                match cli.command {
                    Command::Verify(args) => run_verify(*args).await,
                    Command::Acquire(args) => run_acquire(args).await,
                    Command::Keys(KeysCommand::Fetch(args)) => run_keys_fetch(args).await,
                    Command::Simulate(args) => run_simulate(args).await,
                    Command::Plan(args) => run_plan(args).await,
                    Command::Merge(args) => run_merge(args).await,
                    Command::Completions { shell } => {
                        let mut command = <Cli as clap::CommandFactory>::command();
                        clap_complete::generate(
                            shell,
                            &mut command,
                            "trailproof",
                            &mut std::io::stdout(),
                        );
                        Ok(exit::VERIFIED)
                    }
                    Command::Man { subcommand } => man(&subcommand),
                }
            })
        });
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(message) => {
            eprintln!("trailproof: error: {message}");
            ExitCode::from(exit::INCOMPLETE as u8)
        }
    }
}

/// Prints the man page of trailproof or of one of its subcommands (`keys fetch` as two words).
fn man(path: &[String]) -> Result<i32, String> {
    let mut command = <Cli as clap::CommandFactory>::command();
    let mut name = "trailproof".to_string();
    for word in path {
        let sub = command.find_subcommand(word).cloned().ok_or_else(|| {
            let known: Vec<String> = command
                .get_subcommands()
                .map(|c| c.get_name().to_string())
                .collect();
            format!(
                "{name} has no subcommand {word:?} (it has: {})",
                known.join(", ")
            )
        })?;
        name = format!("{name}-{word}");
        command = sub.name(name.clone()).bin_name(name.replace('-', " "));
    }
    clap_mangen::Man::new(command)
        .render(&mut std::io::stdout())
        .map_err(|e| format!("cannot write the man page: {e}"))?;
    Ok(exit::VERIFIED)
}

/// `s3://bucket[/prefix]` → (bucket, prefix).
fn s3_url(source: &str) -> Option<(&str, &str)> {
    let rest = source.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    Some((bucket, prefix))
}

/// A session as the AWS arguments say; `verbose` prints how AWS is reached and every call.
async fn session(aws: &AwsArgs, verbose: bool) -> Result<Session, String> {
    if aws.debug {
        trailproof::aws::trace::debug();
    }
    if aws.external_id.is_some() && aws.role_arn.is_none() {
        return Err("an external ID (--external-id or TRAILPROOF_EXTERNAL_ID) is given without --role-arn: it is for assuming a role".into());
    }
    Session::connect(&AwsOptions {
        profile: aws.profile.clone(),
        region: aws.region.clone(),
        endpoint_url: aws.endpoint_url.clone(),
        cloudtrail_endpoint_url: aws.cloudtrail_endpoint_url.clone(),
        sts_endpoint_url: aws.sts_endpoint_url.clone(),
        addressing: match aws.addressing_style {
            cli::Addressing::Auto => trailproof::aws::Addressing::Auto,
            cli::Addressing::Path => trailproof::aws::Addressing::Path,
            cli::Addressing::Virtual => trailproof::aws::Addressing::Virtual,
        },
        ca_bundle: aws.ca_bundle.clone(),
        no_verify_ssl: aws.no_verify_ssl,
        role_arn: aws.role_arn.clone(),
        external_id: aws.external_id.clone(),
        session_name: aws.role_session_name.clone(),
        verbose,
        static_credentials: None,
    })
    .await
    .map_err(|e| e.to_string())
}

/// A session and a store for `s3://bucket[/prefix]`.
///
/// A prefix that reaches into `AWSLogs/` (the console's path to an account or a region) is
/// read as a scope filter: discovery starts at `AWSLogs/`, and the account, region or
/// organization the rest names joins `filters`; the returned note says so.
async fn s3_source(
    bucket: &str,
    prefix: &str,
    aws: &AwsArgs,
    verbose: bool,
    filters: &mut FilterArgs,
) -> Result<(Session, trailproof::store::S3Store, Option<String>), String> {
    if bucket.is_empty() {
        return Err("no bucket name in the s3:// address".into());
    }
    let (prefix, note) = match trailproof::layout::scope_of_prefix(prefix)? {
        None => (prefix.to_string(), None),
        Some(scope) => {
            let mut read_as = Vec::new();
            let mut narrow = |flag: &str, given: &mut Vec<String>, named: Option<String>| {
                let Some(named) = named else { return Ok(()) };
                if !given.is_empty() && !given.contains(&named) {
                    return Err(format!(
                        "the source prefix {prefix:?} names {flag} {named}, and {flag} {} is given: nothing would be in scope",
                        given.join(", ")
                    ));
                }
                *given = vec![named.clone()];
                read_as.push(format!("{flag} {named}"));
                Ok(())
            };
            narrow("--account", &mut filters.accounts, scope.account)?;
            narrow("--source-region", &mut filters.regions, scope.region)?;
            if let Some(org) = scope.org_id {
                read_as.push(format!("organization {org}"));
                filters.orgs = vec![org];
            }
            let note = format!(
                "the source prefix {prefix:?} lies inside AWSLogs/: read from s3://{bucket}/{} as {}",
                scope.root,
                read_as.join(" and ")
            );
            (scope.root, Some(note))
        }
    };
    let session = session(aws, verbose).await?;
    let store = session
        .s3_store(bucket, &prefix)
        .await
        .map_err(|e| e.to_string())?;
    Ok((session, store, note))
}

fn options(
    filters: FilterArgs,
    end: Timestamp,
    horizon: Timestamp,
    jobs: cli::Jobs,
    strict: bool,
    progress: Option<Arc<dyn trailproof::verify::Progress>>,
) -> Options {
    Options {
        start: filters.start,
        end,
        horizon: horizon.min(end),
        orgs: filters.orgs,
        accounts: filters.accounts,
        regions: filters.regions,
        trails: filters.trails,
        jobs: match jobs {
            cli::Jobs::Auto => trailproof::verify::pace::MAX_AUTO,
            cli::Jobs::Fixed(n) => n as usize,
        },
        adaptive: jobs == cli::Jobs::Auto,
        strict,
        progress,
        objects: None,
        part: None,
        resume: None,
        proof: None,
    }
}

async fn run_verify(mut args: VerifyArgs) -> Result<i32, String> {
    // With -v, the calls are printed as they happen, and a bar would break the lines.
    let progress = progress::display(args.quiet, args.no_progress || args.verbose > 0);
    let _clear = progress::ClearOnDrop(progress.clone());
    let color = colors(args.color);
    let part = shard_part(&mut args)?;
    if let Some(part) = &part {
        if args.expect_from_cloudtrail {
            return Err("--expect-from-cloudtrail is not taken by a shard: state the expectation with --expect-account, --expect-region and --expect-trail, which the merge judges over every shard".into());
        }
        if args
            .reports
            .iter()
            .any(|(f, _)| *f == report::Format::Objects)
        {
            return Err("--report objects= is a run's own: a shard cannot decide every object alone (the merge settles the edges of its windows); verify without --shard for it".into());
        }
        // `--report json=DIR/`: the shard's file in that folder, named for the merge.
        for (_, path) in args.reports.iter_mut() {
            let text = path.to_string_lossy();
            if text.ends_with('/') || path.is_dir() {
                std::fs::create_dir_all(&*path)
                    .map_err(|e| format!("cannot make the folder {}: {e}", path.display()))?;
                *path = path.join(part.shard.file_name());
            }
        }
    }
    let given = if args.public_keys.is_empty() {
        None
    } else {
        Some(KeyRing::load(&args.public_keys).map_err(|e| e.to_string())?)
    };
    let local_source = s3_url(&args.source)
        .is_none()
        .then(|| Path::new(&args.source));
    let (stdout_format, files) = outputs(args.format, &args.reports)?;
    let mut reports = open_reports(&files, local_source)?;
    // The per-object evidence is streamed while the run goes, not rendered after it.
    let objects = match reports
        .iter()
        .position(|r| r.format == report::Format::Objects)
    {
        Some(at) => {
            let file = reports.remove(at);
            file.file.set_len(0).map_err(|e| {
                format!(
                    "cannot write the objects report to {}: {e}",
                    file.path.display()
                )
            })?;
            Some((
                Arc::new(report::ObjectLog::new(Box::new(file.file))),
                file.path,
            ))
        }
        None => None,
    };
    if let Some(again) = reports.iter().find(|r| r.format == report::Format::Objects) {
        return Err(format!(
            "--report objects= is given twice ({})",
            again.path.display()
        ));
    }
    let mut held = hold_state(&args).await?;
    let mut carried = None;
    let mut horizon = chrono::Utc::now();
    let mut prefix_note = None;
    let mut from_cloudtrail: Option<(Vec<trailproof::aws::trails::Trail>, FilterArgs)> = None;
    if args.expect_from_cloudtrail && local_source.is_some() {
        return Err("--expect-from-cloudtrail asks CloudTrail, online, about a bucket: for a copy, state the expectation with --expect-account, --expect-region and --expect-trail".into());
    }
    let mut extra_notes: Vec<String> = Vec::new();
    let report = match s3_url(&args.source) {
        Some((bucket, prefix)) => {
            let (session, store, note) = s3_source(
                bucket,
                prefix,
                &args.aws,
                args.verbose > 0,
                &mut args.filters,
            )
            .await?;
            prefix_note = note;
            let (store, inventory) = match &args.listing {
                None => (store, None),
                Some(url) => {
                    let (dest, path) = s3_url(url).unwrap_or_default();
                    let dest = session
                        .s3_store(dest, "")
                        .await
                        .map_err(|e| e.to_string())?;
                    let root = trailproof::store::Store::root(&store).to_string();
                    let inventory = Arc::new(
                        trailproof::store::inventory::Inventory::load(
                            &dest,
                            path,
                            bucket,
                            &root,
                            chrono::Utc::now(),
                        )
                        .await?,
                    );
                    (store.with_inventory(inventory.clone()), Some(inventory))
                }
            };
            if args.expect_from_cloudtrail {
                let root = trailproof::store::Store::root(&store);
                let root = if trailproof::layout::last_segment(root) == "AWSLogs" {
                    root.strip_suffix("AWSLogs/").unwrap_or(root)
                } else {
                    root
                };
                let trails = session
                    .trails_for(bucket, root)
                    .await
                    .map_err(|e| e.to_string())?;
                let scope = FilterArgs {
                    accounts: args.filters.accounts.clone(),
                    regions: args.filters.regions.clone(),
                    trails: args.filters.trails.clone(),
                    start: None,
                    end: None,
                    orgs: args.filters.orgs.clone(),
                };
                from_cloudtrail = Some((trails, scope));
            }
            let now = chrono::Utc::now();
            let end = match (&part, args.filters.end) {
                (_, Some(end)) => end,
                (Some(_), None) => midnight(now),
                (None, None) => now,
            };
            let mut opts = options(args.filters, end, now, args.jobs, args.strict, progress);
            opts.objects = objects.as_ref().map(|(log, _)| log.clone());
            opts.part = part.clone();
            if let Some(held) = &held {
                held.prepare(&mut opts);
            }
            let plan = verify::plan(&store, &opts)
                .await
                .map_err(|e| e.to_string())?;
            let report = match (given, held.as_mut()) {
                (given, Some(held)) => {
                    let keys = match given {
                        Some(keys) => keys,
                        None => {
                            let ranges = anchor_ranges(plan.key_ranges(&opts), held);
                            let mut found = Vec::new();
                            for fetched in session.fetch_keys_all(&ranges).await {
                                found.extend(
                                    fetched.map_err(|e| format!("{e} (or pass --public-keys)"))?,
                                );
                            }
                            KeyRing::new(found)
                        }
                    };
                    held.check(bucket, &keys).map_err(|e| e.to_string())?;
                    let keys = Arc::new(keys);
                    let recheck_opts = opts.clone();
                    let mut report = verify::execute(&store, plan, keys, opts).await;
                    carried = Some(held.recheck(&store, &mut report, &recheck_opts).await);
                    report
                }
                (given, None) if args.versions => {
                    if part.is_some() || opts.objects.is_some() {
                        return Err("--versions runs the verification again through recovered digests: it is not taken with --shard or --report objects=".into());
                    }
                    let ranges = plan.key_ranges(&opts);
                    drop(plan);
                    let keys = match given {
                        Some(keys) => keys,
                        None => {
                            let mut found = Vec::new();
                            for fetched in session.fetch_keys_all(&ranges).await {
                                found.extend(
                                    fetched.map_err(|e| format!("{e} (or pass --public-keys)"))?,
                                );
                            }
                            KeyRing::new(found)
                        }
                    };
                    Box::pin(trailproof::versions::verify_with_versions(
                        store.clone(),
                        Arc::new(keys),
                        opts,
                    ))
                    .await
                    .map_err(|e| e.to_string())?
                    .0
                }
                (Some(keys), None) => verify::execute(&store, plan, Arc::new(keys), opts).await,
                (None, None) => {
                    // The run lists and reads while CloudTrail's keys are fetched; only digest
                    // checks wait for them, and a failed fetch ends the run.
                    let ranges = plan.key_ranges(&opts);
                    let fetch = async move {
                        let mut found = Vec::new();
                        for fetched in session.fetch_keys_all(&ranges).await {
                            found.extend(
                                fetched.map_err(|e| format!("{e} (or pass --public-keys)"))?,
                            );
                        }
                        Ok::<_, String>(Arc::new(KeyRing::new(found)))
                    }
                    .boxed()
                    .shared();
                    let keys = fetch
                        .clone()
                        .map(Result::unwrap_or_default)
                        .boxed()
                        .shared();
                    let run = verify::execute_as_keys_arrive(&store, plan, keys, opts).map(Ok);
                    futures::future::try_join(fetch, run).await?.1
                }
            };
            if let Some(inventory) = inventory {
                extra_notes.extend(inventory.notes());
            }
            report
        }
        None => {
            if args.listing.is_some() {
                return Err("--listing inventory= lists a bucket from its S3 Inventory; a folder is listed from the disk".into());
            }
            let store = LocalStore::open(Path::new(&args.source), args.bucket.as_deref())
                .map_err(|e| e.to_string())?;
            // Compared with what earlier runs verified, a copy's files answer for themselves.
            let store = match held {
                Some(_) => store.with_file_sizes(),
                None => store,
            };
            let custody_key = match &args.custody_key {
                Some(path) => Some(CustodyKey::load(path).map_err(|e| e.to_string())?),
                None => None,
            };
            let trust = CopyTrust {
                trust_copy_keys: args.trust_copy_keys,
                custody_key: custody_key.as_ref(),
            };
            let now = chrono::Utc::now();
            // Shards of a copy without a recorded range must agree on its end too.
            let unrecorded = store.manifest().and_then(|m| m.range_end()).is_none();
            if part.is_some() && unrecorded && args.filters.end.is_none() {
                args.filters.end = Some(midnight(now));
            }
            let copy = custody::prepare(&store, given, &trust, args.filters.end, now)?;
            horizon = copy.horizon;
            let mut opts = options(
                args.filters,
                copy.end,
                copy.horizon,
                args.jobs,
                args.strict,
                progress,
            );
            opts.objects = objects.as_ref().map(|(log, _)| log.clone());
            opts.part = part.clone();
            if let Some(held) = &held {
                held.prepare(&mut opts);
                held.check(trailproof::store::Store::bucket(&store), &copy.keys)
                    .map_err(|e| e.to_string())?;
            }
            let keys = Arc::new(copy.keys);
            let recheck_opts = opts.clone();
            let mut report = if args.versions {
                if part.is_some() || opts.objects.is_some() {
                    return Err("--versions runs the verification again through recovered digests: it is not taken with --shard or --report objects=".into());
                }
                Box::pin(trailproof::versions::verify_with_versions(
                    store.clone(),
                    keys,
                    opts,
                ))
                .await
                .map_err(|e| e.to_string())?
                .0
            } else {
                verify::verify(&store, keys, opts)
                    .await
                    .map_err(|e| e.to_string())?
            };
            if let Some(held) = held.as_mut() {
                carried = Some(held.recheck(&store, &mut report, &recheck_opts).await);
            }
            report.provenance = custody::provenance(&store, custody_key.as_ref());
            extra_notes.extend(copy.notes);
            report
        }
    };
    let mut report = report;
    extra_notes.extend(prefix_note);
    report.notes.extend(extra_notes.iter().cloned());
    let expected = report::Expected {
        accounts: args.expect_accounts,
        regions: args.expect_regions,
        trails: args.expect_trails,
        until: None,
        origin: None,
    };
    if let Some(shard) = report.shard.as_mut() {
        // Expectations are over the whole bucket: the merge judges them.
        shard.notes = extra_notes;
        shard.provenance = report.provenance.clone();
        shard.deny = args.deny.iter().map(|d| d.to_string()).collect();
        if !expected.is_empty() {
            report.notes.push("--expect-account, --expect-region and --expect-trail are judged by the merge, over every shard's scopes".into());
        }
        shard.expected = expected;
    } else {
        report.expect(&expected, horizon.min(report.range.end));
    }
    if let Some((trails, scope)) = from_cloudtrail {
        let judged_at = horizon.min(report.range.end);
        expect_trails(&mut report, &trails, &scope, judged_at);
    }
    report.deny(&args.deny);
    if let (Some(held), Some((proof, troubled))) = (held, carried) {
        // The state records the SHA-256 of the report exactly as `--report json=` writes it.
        let json = report::render(&report, report::Format::Json, false);
        let place = held.place.to_string();
        if let Err(e) = held
            .write(
                &report.bucket,
                proof,
                &troubled,
                horizon.min(report.range.end),
                json.as_bytes(),
            )
            .await
        {
            eprintln!("trailproof: error: the state was not written to {place}: {e}");
            report.notes.push(format!(
                "the state was not written to {place}: the next run starts from the state before"
            ));
            // Incomplete, unless findings already failed the run (1 wins over 2).
            if report.exit_code != exit::FINDINGS {
                report.exit_code = exit::INCOMPLETE;
            }
        }
    }
    let mut code = write_reports(
        &report,
        reports,
        stdout_format,
        color,
        args.asff_product_arn.as_deref(),
    );
    if let Some((log, path)) = objects {
        if let Err(e) = log.finish() {
            eprintln!(
                "trailproof: error: cannot write the objects report to {}: {e}",
                path.display()
            );
            if code != exit::FINDINGS {
                code = exit::INCOMPLETE;
            }
        }
    }
    Ok(code)
}

/// The state `--state` names, locked and read (a reset reads it only to take its place).
async fn hold_state(args: &VerifyArgs) -> Result<Option<trailproof::state::Held>, String> {
    use trailproof::state::{Held, Place};
    let Some(text) = &args.state else {
        return Ok(None);
    };
    let key = match &args.state_key {
        Some(path) => Some(trailproof::custody::SigningKey::load(path).map_err(|e| e.to_string())?),
        None => None,
    };
    let held = match Place::parse(text)? {
        Place::File(path) => Held::file(&path, key, args.state_reset, args.reverify),
        Place::S3 {
            bucket,
            key: object,
        } => {
            let session = session(&args.aws, args.verbose > 0).await?;
            let store = session
                .s3_store(&bucket, "")
                .await
                .map_err(|e| e.to_string())?;
            Held::s3(store, &object, key, args.state_reset, args.reverify).await
        }
    };
    held.map(Some).map_err(|e| e.to_string())
}

/// Key ranges widened to the anchors a state resumes from: their signatures are checked too.
fn anchor_ranges(
    mut ranges: Vec<(String, Timestamp, Timestamp)>,
    held: &trailproof::state::Held,
) -> Vec<(String, Timestamp, Timestamp)> {
    let Some((state, _)) = &held.prior else {
        return ranges;
    };
    for l in &state.locations {
        for a in &l.anchors {
            let from = a.end - chrono::Duration::hours(2);
            let to = a.end + chrono::Duration::hours(2);
            match ranges.iter_mut().find(|(r, _, _)| *r == l.location.region) {
                Some((_, s, e)) => {
                    *s = (*s).min(from);
                    *e = (*e).max(to);
                }
                None => ranges.push((l.location.region.clone(), from, to)),
            }
        }
    }
    ranges
}

/// 00:00 UTC of the day of `t`.
fn midnight(t: Timestamp) -> Timestamp {
    t.date_naive().and_time(chrono::NaiveTime::MIN).and_utc()
}

/// Whether the text report is coloured.
fn colors(color: cli::Color) -> bool {
    match color {
        cli::Color::Always => true,
        cli::Color::Never => false,
        cli::Color::Auto => {
            use std::io::IsTerminal;
            std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    }
}

/// Standard output's format and the report files: `--report FORMAT=-` is standard output's
/// report, in place of --format.
fn outputs(
    format: report::Format,
    reports: &[(report::Format, std::path::PathBuf)],
) -> Result<(report::Format, Vec<(report::Format, std::path::PathBuf)>), String> {
    if format == report::Format::Objects {
        return Err("objects is a file of its own, not a report for standard output: use --report objects=PATH".into());
    }
    let (to_stdout, files): (Vec<_>, Vec<_>) = reports
        .iter()
        .cloned()
        .partition(|(_, p)| p.as_os_str() == "-");
    let stdout_format = match to_stdout.as_slice() {
        [] => format,
        [(report::Format::Objects, _)] => {
            return Err(
                "--report objects=- : the objects report is a file of its own; give it a path"
                    .into(),
            )
        }
        [(format, _)] => *format,
        [_, second, ..] => {
            return Err(format!(
                "--report {}=- : standard output takes one report; give the others a file",
                second.0
            ))
        }
    };
    Ok((stdout_format, files))
}

/// The part of a sharded run that `verify` is asked for, if any, with the plan it follows
/// (whose range and filters then hold for the run).
fn shard_part(args: &mut VerifyArgs) -> Result<Option<Arc<trailproof::shard::Part>>, String> {
    use trailproof::shard::{Engine, Part, PlanFile};
    let shard = match (args.shard, args.shard_env) {
        (Some(shard), _) => shard,
        (None, Some(env)) => {
            let engine = match env {
                cli::ShardEnv::Kubernetes => Engine::Kubernetes,
                cli::ShardEnv::Batch => Engine::Batch,
                cli::ShardEnv::Gitlab => Engine::Gitlab,
            };
            engine.shard(args.shard_total.map(|n| n as usize), |name| {
                std::env::var(name).ok()
            })?
        }
        (None, None) if args.plan.is_some() => {
            return Err("--plan is followed by a shard: give --shard K/N or --shard-env".into())
        }
        (None, None) => return Ok(None),
    };
    let plan = match &args.plan {
        None => None,
        Some(path) => {
            let bytes = read_capped(path, 256 << 20, "plan")?;
            let plan: PlanFile = serde_json::from_slice(&bytes).map_err(|e| {
                format!(
                    "{} is not a plan made by `trailproof plan`: {e}",
                    path.display()
                )
            })?;
            if plan.plan_version != trailproof::shard::PLAN_VERSION {
                return Err(format!(
                    "{} is a plan of version {}; this trailproof reads version {}",
                    path.display(),
                    plan.plan_version,
                    trailproof::shard::PLAN_VERSION
                ));
            }
            if plan.source != args.source {
                return Err(format!(
                    "{} is a plan for {}, not for {}",
                    path.display(),
                    plan.source,
                    args.source
                ));
            }
            if plan.shards != shard.total {
                return Err(format!(
                    "{} splits the work into {} shards, but this is shard {shard}",
                    path.display(),
                    plan.shards
                ));
            }
            let f = &mut args.filters;
            let conflicts = |given: bool, same: bool, flag: &str| -> Result<(), String> {
                if given && !same {
                    return Err(format!(
                        "{flag} differs from the plan {}'s: a shard follows its plan's range and filters (give none, or the same)",
                        path.display()
                    ));
                }
                Ok(())
            };
            conflicts(f.start.is_some(), f.start == plan.start, "--start")?;
            conflicts(f.end.is_some(), f.end == plan.end, "--end")?;
            conflicts(
                !f.accounts.is_empty(),
                f.accounts == plan.filters.accounts,
                "--account",
            )?;
            conflicts(
                !f.regions.is_empty(),
                f.regions == plan.filters.regions,
                "--source-region",
            )?;
            conflicts(
                !f.trails.is_empty(),
                f.trails == plan.filters.trails,
                "--trail",
            )?;
            f.start = plan.start;
            f.end = plan.end;
            f.accounts = plan.filters.accounts.clone();
            f.regions = plan.filters.regions.clone();
            f.trails = plan.filters.trails.clone();
            let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
            Some((plan, sha))
        }
    };
    Ok(Some(Arc::new(Part { shard, plan })))
}

/// Reads a file that is at most `cap` bytes, or says which file is too big.
fn read_capped(path: &Path, cap: u64, what: &str) -> Result<Vec<u8>, String> {
    // Only a regular file, opened without blocking: a FIFO planted among shard reports would
    // otherwise hold the merge forever.
    let key = path.display().to_string();
    let read = trailproof::store::local::open_regular(path, &key)
        .and_then(|file| trailproof::store::local::read_file(&key, file, cap));
    read.map_err(|e| format!("cannot read the {what} {key}: {}", e.cause()))
}

async fn run_plan(mut args: cli::PlanArgs) -> Result<i32, String> {
    use trailproof::shard::{balance, PlanFile, PLAN_VERSION};
    let now = chrono::Utc::now();
    let given = (args.filters.start, args.filters.end);
    let planned = match s3_url(&args.source) {
        Some((bucket, prefix)) => {
            let (_, store, _) = s3_source(
                bucket,
                prefix,
                &args.aws,
                args.verbose > 0,
                &mut args.filters,
            )
            .await?;
            // The shards' default end, fixed here so that they agree.
            let end = args.filters.end.unwrap_or(midnight(now));
            args.filters.end = Some(end);
            let filters = args.filters.clone();
            let opts = options(args.filters, end, now, args.jobs, false, None);
            let plan = verify::plan(&store, &opts)
                .await
                .map_err(|e| e.to_string())?;
            (verify::digest_days(&plan), filters)
        }
        None => {
            let store = LocalStore::open(Path::new(&args.source), args.bucket.as_deref())
                .map_err(|e| e.to_string())?;
            let recorded = store.manifest().and_then(|m| m.range_end());
            if args.filters.end.is_none() && recorded.is_none() {
                args.filters.end = Some(midnight(now));
            }
            let end = args.filters.end.or(recorded).unwrap_or(now);
            let filters = args.filters.clone();
            let opts = options(args.filters, end, now, args.jobs, false, None);
            let plan = verify::plan(&store, &opts)
                .await
                .map_err(|e| e.to_string())?;
            (verify::digest_days(&plan), filters)
        }
    };
    let (weights, filters) = planned;
    let locations = weights.len();
    let days: usize = weights.iter().map(|(_, d)| d.len()).sum();
    let units = balance(weights, args.shards as usize);
    let mut load = vec![0usize; args.shards as usize];
    for u in &units {
        load[u.shard - 1] += u.days;
    }
    let windows = units.iter().filter(|u| u.window.is_some()).count();
    let plan = PlanFile {
        plan_version: PLAN_VERSION,
        tool: format!("trailproof {}", env!("CARGO_PKG_VERSION")),
        source: args.source.clone(),
        start: filters.start.or(given.0),
        end: filters.end,
        filters: report::Filters {
            orgs: filters.orgs,
            accounts: filters.accounts,
            regions: filters.regions,
            trails: filters.trails,
        },
        shards: args.shards as usize,
        units,
    };
    let mut text = serde_json::to_string_pretty(&plan).map_err(|e| e.to_string())?;
    text.push('\n');
    match &args.out {
        Some(path) => std::fs::write(path, &text)
            .map_err(|e| format!("cannot write the plan to {}: {e}", path.display()))?,
        None => print!("{text}"),
    }
    eprintln!(
        "trailproof: {locations} location(s), {days} day(s) of digests, into {} shard(s) ({windows} window(s) of a heavy location's days); days per shard: {}",
        args.shards,
        load.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(" ")
    );
    Ok(exit::VERIFIED)
}

async fn run_merge(args: cli::MergeArgs) -> Result<i32, String> {
    #[derive(serde::Deserialize)]
    struct ShardFile {
        shard: Option<trailproof::shard::ShardRecord>,
    }
    let color = colors(args.color);
    let (stdout_format, files) = outputs(args.format, &args.reports)?;
    if files.iter().any(|(f, _)| *f == report::Format::Objects) {
        return Err(
            "--report objects= is a run's own: the merge has no objects report to give".into(),
        );
    }
    let mut inputs = Vec::new();
    for path in &args.inputs {
        if path.is_dir() {
            let mut found: Vec<std::path::PathBuf> = std::fs::read_dir(path)
                .map_err(|e| format!("cannot list {}: {e}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    let name = p.file_name().unwrap_or_default().to_string_lossy();
                    name.starts_with("shard-") && name.contains("-of-") && name.ends_with(".json")
                })
                .collect();
            if found.is_empty() {
                return Err(format!(
                    "{} holds no shard-*-of-*.json report",
                    path.display()
                ));
            }
            found.sort();
            inputs.extend(found);
        } else {
            inputs.push(path.clone());
        }
    }
    let mut shards = Vec::new();
    for path in &inputs {
        let bytes = read_capped(path, 4 << 30, "shard report")?;
        let file: ShardFile = serde_json::from_slice(&bytes).map_err(|e| {
            format!(
                "{} is not a JSON report of trailproof verify: {e}",
                path.display()
            )
        })?;
        let record = file.shard.ok_or_else(|| {
            format!(
                "{} is the report of a whole run, not of a shard (verify made it without --shard)",
                path.display()
            )
        })?;
        shards.push((path.display().to_string(), record));
    }
    let merged = trailproof::shard::merge(shards).map_err(|e| e.to_string())?;
    let end = merged.record.range.end;
    let mut report = Report::assemble(merged.record);
    report.notes.extend(merged.notes);
    report.provenance = merged.provenance;
    report.expect(&merged.expected, merged.horizon.min(end));
    let deny: Vec<report::Deny> = merged
        .deny
        .iter()
        .map(|d| d.parse())
        .collect::<Result<_, String>>()?;
    report.deny(&deny);
    let reports = open_reports(&files, None)?;
    Ok(write_reports(
        &report,
        reports,
        stdout_format,
        color,
        args.asff_product_arn.as_deref(),
    ))
}

/// What CloudTrail says must be in the bucket, judged: each trail with log file validation on
/// expects a chain in every account and region it logs (within the run's filters), reaching the
/// horizon or the time it stopped logging.
fn expect_trails(
    report: &mut Report,
    trails: &[trailproof::aws::trails::Trail],
    scope: &FilterArgs,
    horizon: Timestamp,
) {
    let within = |given: &[String], all: &[String]| -> Vec<String> {
        all.iter()
            .filter(|v| given.is_empty() || given.contains(v))
            .cloned()
            .collect()
    };
    if trails.is_empty() {
        report.notes.push("CloudTrail names no trail delivering into this bucket and prefix (DescribeTrails in every enabled region of the account asked): nothing is expected of it; an organization trail is described only in its management account".into());
    }
    for trail in trails {
        if !scope.trails.is_empty() && !scope.trails.contains(&trail.name) {
            continue;
        }
        if !trail.validation {
            report.notes.push(format!(
                "trail {} has log file validation turned off: CloudTrail writes no digests for it, and its logs cannot be proven",
                trail.describe()
            ));
            continue;
        }
        let until = if trail.logging { None } else { trail.stopped };
        if !trail.logging && trail.stopped.is_none() {
            report.notes.push(format!(
                "trail {} is not logging and CloudTrail gives no time it stopped: nothing is expected of it",
                trail.describe()
            ));
            continue;
        }
        // A trail that started logging too recently to have delivered a digest expects none
        // yet; one that stopped before the range expects nothing in it.
        let first_due = horizon - trailproof::chain::TAIL_ALLOWANCE - chrono::Duration::hours(1);
        if trail.started.is_some_and(|s| s > first_due) {
            report.notes.push(format!(
                "trail {} started logging too recently to have delivered a digest by {}: nothing is expected of it yet",
                trail.describe(),
                trailproof::layout::format_time(horizon)
            ));
            continue;
        }
        if let (Some(stopped), Some(start)) = (until, report.range.start) {
            if stopped < start {
                continue;
            }
        }
        // A source prefix inside AWSLogs/o-…/ selects an organization's folders: only an
        // organization trail delivers there.
        if !scope.orgs.is_empty() && !trail.organization {
            continue;
        }
        let accounts = within(&scope.accounts, &trail.accounts);
        let regions = within(&scope.regions, &trail.regions);
        if accounts.is_empty() || regions.is_empty() {
            continue;
        }
        report.notes.push(format!(
            "expected from CloudTrail: trail {}: {} account(s) × {} region(s)",
            trail.describe(),
            accounts.len(),
            regions.len()
        ));
        let expected = report::Expected {
            accounts,
            regions,
            trails: vec![trail.name.clone()],
            until,
            origin: Some(trail.describe()),
        };
        report.expect(&expected, horizon);
    }
}

/// A report file, opened before the run so that a path that cannot be written is known before
/// any work is done.
struct ReportFile {
    format: report::Format,
    path: std::path::PathBuf,
    file: std::fs::File,
}

/// Opens (or creates) every `--report` path, refusing two outputs to one file and any file
/// inside a local source (a report must never overwrite the evidence it reports on).
fn open_reports(
    files: &[(report::Format, std::path::PathBuf)],
    source: Option<&Path>,
) -> Result<Vec<ReportFile>, String> {
    let source = source.and_then(|s| std::fs::canonicalize(s).ok());
    let mut opened: Vec<ReportFile> = Vec::new();
    let mut seen: Vec<std::path::PathBuf> = Vec::new();
    for (format, path) in files {
        // A link as the report file could lead anywhere, the evidence included.
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(format!(
                "--report {format}={}: the path is a symbolic link; give the report a plain file path",
                path.display()
            ));
        }
        // Where the file is (or would be), before anything is created.
        let real = std::fs::canonicalize(path).unwrap_or_else(|_| {
            let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
            let parent = parent.unwrap_or(Path::new("."));
            std::fs::canonicalize(parent)
                .map(|p| p.join(path.file_name().unwrap_or_default()))
                .unwrap_or_else(|_| path.clone())
        });
        if let Some(at) = seen.iter().position(|p| *p == real) {
            return Err(format!(
                "--report {format}={} and --report {}={} name the same file: give each report a file of its own",
                path.display(),
                opened[at].format,
                opened[at].path.display()
            ));
        }
        if let Some(root) = source.as_ref().filter(|r| real.starts_with(r)) {
            return Err(format!(
                "--report {format}={}: the file lies inside the source being verified ({}); write reports outside the evidence",
                path.display(),
                root.display()
            ));
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(path)
            .map_err(|e| {
                format!(
                    "cannot write the {format} report to {}: {e}",
                    path.display()
                )
            })?;
        // A hard link to another file (evidence, say) would be overwritten through its other name.
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let meta = file.metadata().map_err(|e| {
                format!(
                    "cannot write the {format} report to {}: {e}",
                    path.display()
                )
            })?;
            if meta.nlink() > 1 {
                return Err(format!(
                    "--report {format}={}: the file has other names (hard links); give the report a file of its own",
                    path.display()
                ));
            }
        }
        seen.push(real);
        opened.push(ReportFile {
            format: *format,
            path: path.clone(),
            file,
        });
    }
    Ok(opened)
}

/// Renders the report once per format: into the files opened before the run, then standard
/// output. A file that cannot be written is said on standard error and never costs the report:
/// standard output still carries it, and an error verdict stays 1.
fn write_reports(
    report: &Report,
    files: Vec<ReportFile>,
    stdout: report::Format,
    color: bool,
    asff_product_arn: Option<&str>,
) -> i32 {
    let render = |format: report::Format, color: bool| match format {
        report::Format::Asff => report::asff::render_asff(report, asff_product_arn),
        other => report::render(report, other, color),
    };
    let mut failed = false;
    for ReportFile {
        format,
        path,
        mut file,
    } in files
    {
        use std::io::Write;
        let written = file
            .set_len(0)
            .and_then(|_| file.write_all(render(format, false).as_bytes()));
        if let Err(e) = written {
            eprintln!(
                "trailproof: error: cannot write the {format} report to {}: {e}",
                path.display()
            );
            failed = true;
        }
    }
    print!("{}", render(stdout, color));
    if failed && report.exit_code != exit::FINDINGS {
        exit::INCOMPLETE
    } else {
        report.exit_code
    }
}

async fn run_acquire(mut args: AcquireArgs) -> Result<i32, String> {
    let source = args.source.clone();
    let (bucket, prefix) = s3_url(&source)
        .ok_or_else(|| format!("{source}: acquire copies from s3://bucket[/prefix]"))?;
    let (session, store, note) =
        s3_source(bucket, prefix, &args.aws, args.verbose, &mut args.filters).await?;
    if let Some(note) = note {
        eprintln!("trailproof: note: {note}");
    }
    let now = chrono::Utc::now();
    let end = args.filters.end.unwrap_or(now);
    let progress = progress::display(false, args.verbose);
    let _clear = progress::ClearOnDrop(progress.clone());
    let opts = options(args.filters, end, now, args.jobs, false, progress);
    let public_keys = if args.public_keys.is_empty() {
        None
    } else {
        let ring = KeyRing::load(&args.public_keys).map_err(|e| e.to_string())?;
        Some(ring.keys().to_vec())
    };
    let sign_key = match &args.sign_key {
        Some(path) => Some(custody::SigningKey::load(path).map_err(|e| e.to_string())?),
        None => None,
    };
    let custody = trailproof::acquire::Custody {
        public_keys,
        sign_key: sign_key.as_ref(),
        versions: args.versions,
    };
    let summary = trailproof::acquire::acquire(&session, &store, &args.dir, opts, custody)
        .await
        .map_err(|e| e.to_string())?;
    eprintln!(
        "trailproof: copied {} objects ({} bytes{}) and {} public key(s) into {}",
        summary.copied,
        summary.bytes,
        if summary.resumed > 0 {
            format!(", {} kept from the interrupted copy", summary.resumed)
        } else {
            String::new()
        },
        summary.keys,
        args.dir.display()
    );
    for note in &summary.notes {
        eprintln!("trailproof: note: {note}");
    }
    for u in &summary.unreadable {
        eprintln!("trailproof: not copied: {}: {}", u.key, u.cause);
    }
    for problem in &summary.problems {
        eprintln!("trailproof: error: {problem}; the copy cannot stand on its own (the manifest says so too)");
    }
    Ok(
        if summary.unreadable.is_empty() && summary.problems.is_empty() {
            exit::VERIFIED
        } else {
            exit::INCOMPLETE
        },
    )
}

async fn run_keys_fetch(args: KeysFetchArgs) -> Result<i32, String> {
    let session = session(&args.aws, args.verbose).await?;
    let end = args.end.unwrap_or_else(chrono::Utc::now);
    let start = args.start.unwrap_or(end - chrono::Duration::days(90));
    if start >= end {
        return Err("--start must come before --end".into());
    }
    let regions = if args.regions.is_empty() {
        vec![session.region()]
    } else {
        args.regions
    };
    let ranges: Vec<_> = regions.into_iter().map(|r| (r, start, end)).collect();
    let mut found = Vec::new();
    for fetched in session.fetch_keys_all(&ranges).await {
        found.extend(fetched.map_err(|e| e.to_string())?);
    }
    print!("{}", keys::to_list_public_keys_json(&found));
    Ok(exit::VERIFIED)
}

async fn run_simulate(args: SimulateArgs) -> Result<i32, String> {
    if args.tampers.contains(&cli::TamperArg::Help) {
        print!("{}", cli::tamper_help());
        return Ok(exit::VERIFIED);
    }
    let tampers: Vec<simulate::Tamper> = args
        .tampers
        .iter()
        .filter_map(|t| match t {
            cli::TamperArg::Kind(k) => Some(*k),
            cli::TamperArg::Help => None,
        })
        .collect();
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
    let s3 = s3_url(&args.target).map(|(b, p)| (b.to_string(), p.trim_matches('/').to_string()));
    let bucket = match (&args.bucket, &s3) {
        (Some(b), _) => b.clone(),
        (None, Some((b, _))) => b.clone(),
        (None, None) => Path::new(&args.target)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or(defaults.bucket.clone()),
    };
    let mut accounts = if args.accounts.is_empty() {
        defaults.accounts.clone()
    } else {
        args.accounts
    };
    if let Some((_, prefix)) = &s3 {
        // Under s3://bucket/prefix, every account's trail delivers below the prefix.
        for a in accounts.iter_mut().filter(|_| !prefix.is_empty()) {
            a.prefix = if a.prefix.is_empty() {
                prefix.clone()
            } else {
                format!("{prefix}/{}", a.prefix)
            };
        }
    }
    let spec = Spec {
        bucket,
        accounts,
        regions: or_default(args.regions, defaults.regions.clone()),
        trails: or_default(args.trails, defaults.trails.clone()),
        start: args.start,
        hours: args.hours,
        logs_per_hour: args.logs_per_hour,
        log_bytes: args.log_bytes,
        log_bytes_max: args.log_bytes_max,
        backfill: args.backfill,
        restart_at: args.restart_at,
        escape_slashes: args.escape_slashes,
        key_encoding: args.key_encoding,
        tampers,
        seed: args.seed,
    };
    if spec.tampers.contains(&simulate::Tamper::KeyExpired) && args.public_keys_out.is_none() {
        return Err("--tamper key-expired damages the key file: give --public-keys-out".into());
    }
    let made = simulate::simulate(&spec, &signer).map_err(|e| e.to_string())?;
    match &s3 {
        Some((bucket, _)) => {
            let session = session(&args.aws, false).await?;
            if session.s3_is_aws() && !args.allow_aws {
                return Err(format!(
                    "simulate would upload forged, test-signed digests to AWS's own S3 (s3://{bucket}): give --endpoint-url (or AWS_ENDPOINT_URL_S3) for a test server, or --allow-aws if that is truly meant"
                ));
            }
            session
                .upload(bucket, &made.objects, 32)
                .await
                .map_err(|e| e.to_string())?;
        }
        None => simulate::write_dir(&made, Path::new(&args.target)).map_err(|e| e.to_string())?,
    }
    if let Some(path) = &args.public_keys_out {
        std::fs::write(path, &made.public_keys)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    eprintln!(
        "trailproof: wrote {} objects for bucket {} to {}",
        made.objects.len(),
        made.name,
        args.target
    );
    Ok(exit::VERIFIED)
}
