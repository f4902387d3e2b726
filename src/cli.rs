//! The command line. Doc comments here are the `--help` text, written for the person who has to
//! defend the result.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use trailproof::report::Format;
use trailproof::simulate::{AccountSpec, KeyEncoding, Tamper};
use trailproof::Timestamp;

const AFTER_HELP: &str = "\
Exit codes:
  0  every object in scope verified; no error finding
  1  at least one error finding (tampering or loss)
  2  no error finding, but the run was incomplete (objects that could not be checked, nothing
     found in scope) or could not run (usage, keys, source)

Examples:
  Compliance job, the whole organization's log bucket, JSON for the archive:
    trailproof verify s3://org-log-archive --start 2024-03-01 --report json=report.json -q
  Auditor, a client's organization log archive through the role granted to you:
    trailproof verify s3://org-log-archive --role-arn arn:aws:iam::111122223333:role/LogReader \\
        --external-id 7f3c-audit --start 2024-03-01 --report json=report.json
  Evidence copy signed with your custody key, then verify it offline (no network calls):
    trailproof acquire s3://org-log-archive ./evidence --start 2024-03-01 --end 2024-03-07 \\
        --sign-key custody.pem
    trailproof verify ./evidence --custody-key custody.pub.pem
  CI, against the bundled demo bucket:
    trailproof verify fixtures/demo-bucket --public-keys fixtures/keys/TEST-ONLY-public-key.pem";

/// Proves whether the CloudTrail log files in a bucket, or in a local mirror of one, are exactly
/// what CloudTrail delivered.
#[derive(Debug, Parser)]
#[command(name = "trailproof", version, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Verify every digest chain and log file under a source, for every account, region and
    /// trail found there.
    Verify(Box<VerifyArgs>),
    /// Make an evidence copy of a bucket for offline verification: digests with their
    /// metadata, logs, CloudTrail's public keys, and a manifest. Resumes when interrupted.
    Acquire(AcquireArgs),
    /// CloudTrail's public keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Write a signed, CloudTrail-shaped bucket into a folder or an S3 bucket, optionally
    /// damaged on purpose.
    Simulate(SimulateArgs),
    /// Weigh every location under a source (by listing its date folders) and assign the work
    /// to N shards, heavy locations cut into windows of whole days: the plan that
    /// `verify --plan PLAN --shard K/N` follows.
    Plan(PlanArgs),
    /// Join the reports of every shard of a sharded run into the run's one report, in any
    /// format; its exit code is the run's verdict.
    Merge(MergeArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Print a man page (roff): trailproof's, or a subcommand's (`trailproof man verify`,
    /// `trailproof man keys fetch`).
    Man {
        /// The subcommand, as typed after `trailproof`.
        #[arg(value_name = "SUBCOMMAND")]
        subcommand: Vec<String>,
    },
}

/// When to colour the text report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Color {
    /// When standard output is a terminal and NO_COLOR is not set.
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Fetch the keys with ListPublicKeys and print them as JSON, for `--public-keys` in
    /// offline and air-gapped runs.
    Fetch(KeysFetchArgs),
}

/// How to reach AWS (S3 sources, acquire, keys fetch), as with the AWS CLI. Credentials come
/// from the SDK's default chain: environment, shared config and credentials files, SSO,
/// web identity, container or instance role.
#[derive(Debug, Default, Args)]
pub struct AwsArgs {
    /// The named profile to use from the shared AWS config and credentials files (default:
    /// AWS_PROFILE, else default).
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,

    /// The AWS region of the clients, as with the AWS CLI (default: AWS_REGION, the
    /// profile's, else us-east-1). The bucket's own region is asked of S3. This is not a
    /// filter: to check only some source regions, use --source-region (before 0.2, --region
    /// was that filter).
    #[arg(long, value_name = "NAME")]
    pub region: Option<String>,

    /// S3's endpoint: an S3-compatible server (SeaweedFS, MinIO, a fixture server), with
    /// path-style addressing. Only S3 calls go there, as with the AWS CLI; CloudTrail and STS
    /// take theirs from --cloudtrail-endpoint-url, --sts-endpoint-url or
    /// AWS_ENDPOINT_URL_CLOUDTRAIL / AWS_ENDPOINT_URL_STS. Default: AWS_ENDPOINT_URL_S3,
    /// AWS_ENDPOINT_URL, the profile's endpoint_url, else AWS's own.
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,

    /// CloudTrail's endpoint (ListPublicKeys, DescribeTrails). Default:
    /// AWS_ENDPOINT_URL_CLOUDTRAIL, AWS_ENDPOINT_URL, else AWS's own.
    #[arg(long, value_name = "URL")]
    pub cloudtrail_endpoint_url: Option<String>,

    /// STS's endpoint (AssumeRole, GetCallerIdentity). Default: AWS_ENDPOINT_URL_STS,
    /// AWS_ENDPOINT_URL, else AWS's own.
    #[arg(long, value_name = "URL")]
    pub sts_endpoint_url: Option<String>,

    /// How buckets are addressed: auto is path-style for any S3 endpoint that is not AWS's
    /// own, virtual-hosted for AWS.
    #[arg(long, value_enum, default_value_t = Addressing::Auto, value_name = "STYLE")]
    pub addressing_style: Addressing,

    /// Trust only the certificate authorities in this PEM file (default: AWS_CA_BUNDLE, the
    /// profile's ca_bundle, else the system's). HTTPS_PROXY, HTTP_PROXY and NO_PROXY are
    /// honoured as by the AWS CLI.
    #[arg(long, value_name = "PEM")]
    pub ca_bundle: Option<PathBuf>,

    /// Accept any server certificate, as the AWS CLI's option does: for a test endpoint with a
    /// self-signed certificate only. Every run that uses it warns; no proxy is used with it.
    #[arg(long, conflicts_with = "ca_bundle")]
    pub no_verify_ssl: bool,

    /// Assume this role first: the cross-account reader role a log-bucket owner grants an
    /// auditor or vendor.
    #[arg(long, value_name = "ARN")]
    pub role_arn: Option<String>,

    /// The external ID the role's trust policy requires. Also read from
    /// TRAILPROOF_EXTERNAL_ID, which keeps it out of the process list and shell history.
    #[arg(
        long,
        value_name = "ID",
        env = "TRAILPROOF_EXTERNAL_ID",
        hide_env_values = true
    )]
    pub external_id: Option<String>,

    /// The session name for the assumed role (shows in the bucket owner's CloudTrail).
    #[arg(long, value_name = "NAME", requires = "role_arn")]
    pub role_session_name: Option<String>,

    /// Turn on the AWS SDK's own tracing on standard error (requests, retries, credentials), and
    /// trailproof's (how many requests it keeps in flight, and why).
    #[arg(long)]
    pub debug: bool,
}

/// How buckets are addressed (`--addressing-style`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Addressing {
    #[default]
    Auto,
    Path,
    Virtual,
}

/// Which scopes and hours.
#[derive(Clone, Debug, Args)]
pub struct FilterArgs {
    /// Only this account (repeatable).
    #[arg(long = "account", value_name = "ID")]
    pub accounts: Vec<String>,

    /// Only this source region (repeatable): the region folders of CloudTrail/ and
    /// CloudTrail-Digest/. (--region sets the clients' region, as with the AWS CLI.)
    #[arg(long = "source-region", value_name = "NAME")]
    pub regions: Vec<String>,

    /// Only this trail (repeatable). Other trails delivering into the same log folders are
    /// still read, so that their logs are not mistaken for unlisted ones.
    #[arg(long = "trail", value_name = "NAME")]
    pub trails: Vec<String>,

    /// Start of the range: RFC 3339 (2024-01-01T00:00:00Z) or a date. Default: all history.
    #[arg(long, visible_alias = "start-time", value_name = "TIME", value_parser = start_time)]
    pub start: Option<Timestamp>,

    /// End of the range: RFC 3339, or a date (its whole day). Default: now, or for a copy
    /// made by `acquire`, the time it was made.
    #[arg(long, visible_alias = "end-time", value_name = "TIME", value_parser = end_time)]
    pub end: Option<Timestamp>,

    /// Organization ids a source prefix such as `AWSLogs/o-…/` selects.
    #[arg(skip)]
    pub orgs: Vec<String>,
}

/// Requests in flight: adapted to the source, or fixed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Jobs {
    Auto,
    Fixed(u16),
}

fn jobs_arg(s: &str) -> Result<Jobs, String> {
    if s == "auto" {
        return Ok(Jobs::Auto);
    }
    match s.parse::<u16>() {
        Ok(n) if (1..=4096).contains(&n) => Ok(Jobs::Fixed(n)),
        _ => Err(format!(
            "{s:?}: give auto, or a number of requests from 1 to 4096"
        )),
    }
}

fn listing_source(s: &str) -> Result<String, String> {
    match s.strip_prefix("inventory=") {
        Some(url) if url.starts_with("s3://") && url.len() > 5 => Ok(url.to_string()),
        _ => Err(format!(
            "{s:?}: give inventory=s3://DEST/[PREFIX/]BUCKET/CONFIG-ID[/YYYY-MM-DDTHH-MMZ], the S3 Inventory report's folder"
        )),
    }
}

fn start_time(s: &str) -> Result<Timestamp, String> {
    trailproof::parse_time(s).map_err(|e| e.to_string())
}

fn end_time(s: &str) -> Result<Timestamp, String> {
    trailproof::parse_end_time(s).map_err(|e| e.to_string())
}

/// The formats standard output takes, offered by shell completion.
fn stdout_format() -> impl clap::builder::TypedValueParser<Value = Format> {
    use clap::builder::PossibleValue;
    use clap::builder::TypedValueParser;
    // `objects` is accepted only to say where it belongs (--report objects=PATH).
    clap::builder::PossibleValuesParser::new([
        PossibleValue::new("text"),
        PossibleValue::new("json"),
        PossibleValue::new("junit"),
        PossibleValue::new("html"),
        PossibleValue::new("csv"),
        PossibleValue::new("jsonl"),
        PossibleValue::new("asff"),
        PossibleValue::new("ocsf"),
        PossibleValue::new("objects").hide(true),
    ])
    .map(|s| s.parse::<Format>().expect("a listed format"))
}

fn report_target(s: &str) -> Result<(Format, PathBuf), String> {
    let (format, path) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected FORMAT=PATH, such as json=report.json"))?;
    if path.is_empty() {
        return Err(format!("{s:?}: the path is empty"));
    }
    Ok((format.parse()?, PathBuf::from(path)))
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// `s3://bucket[/prefix]`, or a folder that mirrors a bucket (folder = bucket root; each
    /// digest's S3 metadata beside it as <key>.metadata.json), such as one made by `acquire`.
    pub source: String,

    #[command(flatten)]
    pub filters: FilterArgs,

    /// Trusted public keys: saved ListPublicKeys JSON, PEM, DER, or a folder of them
    /// (repeatable). Default: for S3, CloudTrail's ListPublicKeys in each source region. Keys
    /// are never taken from the bucket, nor from a copy on its own word (see --custody-key and
    /// --trust-copy-keys).
    #[arg(long = "public-keys", value_name = "PATH")]
    pub public_keys: Vec<PathBuf>,

    /// For a copy made by `acquire --sign-key`: the Ed25519 public key (PEM) whose signature
    /// over the copy's manifest proves its keys file and recorded times. A signature that does
    /// not verify ends the run.
    #[arg(long, value_name = "PEM")]
    pub custody_key: Option<PathBuf>,

    /// Trust the public keys saved in a copy (trailproof-keys.json) on the copy's own word.
    /// Whoever could write the copy could have planted them: the report says so.
    #[arg(long)]
    pub trust_copy_keys: bool,

    /// The bucket the mirror was copied from (digests sign bucket/key). Default: the mirror's
    /// manifest, else the folder's name.
    #[arg(long, value_name = "NAME")]
    pub bucket: Option<String>,

    /// The report format on standard output.
    #[arg(long, default_value = "text", value_parser = stdout_format())]
    pub format: Format,

    /// Colour in the text report.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,

    /// Also write the report in FORMAT to PATH (repeatable), e.g. --report json=report.json;
    /// PATH `-` is standard output, in place of --format. FORMAT: text, json, junit, html, csv
    /// (a row per finding), jsonl (a finding per line), asff (Security Hub), ocsf (OCSF Detection Findings), or objects (one JSON line per object
    /// examined).
    #[arg(long = "report", value_name = "FORMAT=PATH", value_parser = report_target)]
    pub reports: Vec<(Format, PathBuf)>,

    /// The Security Hub product ARN of the account that imports the asff report
    /// (arn:aws:securityhub:REGION:ACCOUNT:product/ACCOUNT/default). Default: each finding's own
    /// account and region.
    #[arg(long, value_name = "ARN")]
    pub asff_product_arn: Option<String>,

    /// Requests in flight at most: `auto` (the default) adapts them to the source (it grows
    /// while throughput grows, and halves when S3 throttles), or a number 1–4096 fixes them.
    #[arg(long, default_value = "auto", value_name = "auto|N", value_parser = jobs_arg)]
    pub jobs: Jobs,

    /// Count a chain that stops before the end of the range (chain_tail_gap) as an error: the
    /// same as --deny chain_tail_gap.
    #[arg(long)]
    pub strict: bool,

    /// Count these findings as failures (exit 1): `warnings`, or a finding kind such as
    /// chain_restart or log_pending (repeatable).
    #[arg(long = "deny", value_name = "warnings|KIND")]
    pub deny: Vec<trailproof::report::Deny>,

    /// This account must have a digest chain reaching the end of the range (repeatable); else
    /// a scope_missing error. Combined with --expect-region and --expect-trail.
    #[arg(long = "expect-account", value_name = "ID")]
    pub expect_accounts: Vec<String>,

    /// This source region must have a digest chain reaching the end of the range (repeatable).
    #[arg(long = "expect-region", value_name = "NAME")]
    pub expect_regions: Vec<String>,

    /// This trail must have a digest chain reaching the end of the range (repeatable).
    #[arg(long = "expect-trail", value_name = "NAME")]
    pub expect_trails: Vec<String>,

    /// Ask CloudTrail what must be in the bucket: every trail delivering here (DescribeTrails
    /// in every enabled region, GetTrailStatus), in each account (Organizations ListAccounts for
    /// an organization trail) and region (Account ListRegions for a multi-region trail) it logs,
    /// needs a digest chain reaching the horizon, or when it stopped logging; else
    /// scope_missing. S3 sources only, with the run's credentials or role.
    #[arg(long)]
    pub expect_from_cloudtrail: bool,

    /// Print only the report and fatal errors.
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Say more on standard error about what the run is doing.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Print no progress on standard error.
    #[arg(long)]
    pub no_progress: bool,

    /// Use the bucket's object versions as evidence: for each digest or log damaged or gone in
    /// its current version, find the original among its versions (one ListObjectVersions per
    /// damaged key), prove the chain through a recovered digest, and warn of keys written more
    /// than once (object_rewritten). Notes the bucket's versioning and Object Lock. Needs
    /// s3:ListBucketVersions and s3:GetObjectVersion.
    #[arg(long)]
    pub versions: bool,

    /// List the bucket's day folders from an S3 Inventory report instead of ListObjectsV2:
    /// `inventory=s3://DEST/[PREFIX/]BUCKET/CONFIG-ID[/YYYY-MM-DDTHH-MMZ]` (CSV; the newest
    /// report when none is named). Its manifest is checked against manifest.checksum, each data
    /// file against its MD5, its source bucket against this one. A hint, never evidence of
    /// absence: days not over when it was made, and the folders above the days, are listed
    /// live; objects only it shows are confirmed before they are reported.
    #[arg(long, value_name = "inventory=S3URL", value_parser = listing_source)]
    pub listing: Option<String>,

    /// Carry proof from run to run in a state (a file, or s3://BUCKET/KEY in your own account):
    /// the first run verifies as usual and writes it; each later run checks the state's
    /// anchors (the last digests verified, CloudTrail-signed), verifies only what came after
    /// them, re-lists the hours already covered and compares each object with what was
    /// verified. An anchor moves only over complete verification. Concurrent runs on one state
    /// are refused (a lock file; a conditional write in S3).
    #[arg(long, value_name = "PATH|S3URL", conflicts_with_all = ["shard", "shard_env", "versions"])]
    pub state: Option<String>,

    /// Sign the state with this Ed25519 private key (PKCS#8 PEM: `openssl genpkey -algorithm
    /// ed25519`), and refuse a state it did not sign.
    #[arg(long, value_name = "PATH", requires = "state")]
    pub state_key: Option<PathBuf>,

    /// Start the state over: do not use the state found (whatever it holds), verify everything,
    /// and write a new first state. The report says so.
    #[arg(long, requires = "state")]
    pub state_reset: bool,

    /// With --state, also re-hash slice K of N of the objects verified before (a stable hash of
    /// each key picks its slice): run K = 1…N in turn and a schedule re-reads everything once
    /// every N runs.
    #[arg(long, value_name = "K/N", requires = "state")]
    pub reverify: Option<trailproof::state::Slice>,

    /// Verify only part K of N (1-based: 1/16 … 16/16) of a sharded run, for `trailproof
    /// merge` to join. Its JSON report records what the merge needs; `--report json=DIR/`
    /// writes it as DIR/shard-000K-of-000N.json. Without --end, a sharded run of a bucket ends
    /// at 00:00 UTC of the day it runs, so that shards started the same day agree.
    #[arg(long, value_name = "K/N", conflicts_with = "shard_env")]
    pub shard: Option<trailproof::shard::Shard>,

    /// Take the shard from the engine running this process: kubernetes (JOB_COMPLETION_INDEX,
    /// with --shard-total), batch (AWS_BATCH_JOB_ARRAY_INDEX, with AWS_BATCH_JOB_ARRAY_SIZE or
    /// --shard-total), gitlab (CI_NODE_INDEX, CI_NODE_TOTAL). A variable that is not set is an
    /// error, never a run over the whole bucket.
    #[arg(long, value_enum, value_name = "ENGINE")]
    pub shard_env: Option<ShardEnv>,

    /// How many shards there are, where the engine does not say.
    #[arg(long, value_name = "N", requires = "shard_env", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub shard_total: Option<u32>,

    /// Follow a plan made by `trailproof plan` (with --shard or --shard-env): its range,
    /// filters and assignment of locations and windows of days to shards.
    #[arg(long, value_name = "PATH")]
    pub plan: Option<PathBuf>,

    #[command(flatten)]
    pub aws: AwsArgs,
}

/// An engine whose array index names the shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ShardEnv {
    /// A Kubernetes Indexed Job.
    Kubernetes,
    /// An AWS Batch array job.
    Batch,
    /// A GitLab CI job with `parallel:`.
    Gitlab,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The bucket (`s3://bucket[/prefix]`) or folder to plan for.
    pub source: String,

    #[command(flatten)]
    pub filters: FilterArgs,

    /// How many shards the work is split into.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub shards: u32,

    /// Write the plan to this file instead of standard output.
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,

    /// For a folder: the bucket it is a copy of, as in `verify --bucket`.
    #[arg(long, value_name = "NAME")]
    pub bucket: Option<String>,

    /// Requests in flight at most: `auto` (the default) or a number 1–4096.
    #[arg(long, default_value = "auto", value_name = "auto|N", value_parser = jobs_arg)]
    pub jobs: Jobs,

    /// Print how AWS is reached and each call, on standard error.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(flatten)]
    pub aws: AwsArgs,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shards' JSON reports; a folder stands for every shard-*-of-*.json in it.
    #[arg(required = true, value_name = "REPORT")]
    pub inputs: Vec<PathBuf>,

    /// The report on standard output.
    #[arg(long, default_value = "text", value_parser = stdout_format())]
    pub format: Format,

    /// When to colour the text report.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,

    /// Also write the report in FORMAT to PATH (repeatable), as `verify --report` does.
    #[arg(long = "report", value_name = "FORMAT=PATH", value_parser = report_target)]
    pub reports: Vec<(Format, PathBuf)>,

    /// The product ARN for --report asff=PATH, as in `verify`.
    #[arg(long, value_name = "ARN")]
    pub asff_product_arn: Option<String>,
}

#[derive(Debug, Args)]
pub struct AcquireArgs {
    /// The bucket to copy: `s3://bucket[/prefix]`.
    pub source: String,

    /// The folder to copy into (created; must be empty, or hold an interrupted copy).
    pub dir: PathBuf,

    #[command(flatten)]
    pub filters: FilterArgs,

    /// Also examine the bucket's object versions as `verify --versions` does, and copy the
    /// originals found of damaged objects (with the versions learnt), so that `verify DIR
    /// --versions` offline reaches the same findings and recoveries.
    #[arg(long)]
    pub versions: bool,

    /// Requests in flight at most: `auto` (the default) adapts them to the source (it grows
    /// while throughput grows, and halves when S3 throttles), or a number 1–4096 fixes them.
    #[arg(long, default_value = "auto", value_name = "auto|N", value_parser = jobs_arg)]
    pub jobs: Jobs,

    /// Save these public keys into the copy (saved ListPublicKeys JSON, PEM, DER, or a folder
    /// of them; repeatable) instead of fetching them with ListPublicKeys.
    #[arg(long = "public-keys", value_name = "PATH")]
    pub public_keys: Vec<PathBuf>,

    /// Sign the copy's manifest with this Ed25519 private key (PKCS#8 PEM, as made by
    /// `openssl genpkey -algorithm ed25519`): `verify --custody-key` with its public half then
    /// proves the copy's keys and times.
    #[arg(long, value_name = "PEM")]
    pub sign_key: Option<PathBuf>,

    /// Say on standard error how AWS is reached and each AWS call, with its status and duration.
    #[arg(short, long)]
    pub verbose: bool,

    #[command(flatten)]
    pub aws: AwsArgs,
}

#[derive(Debug, Args)]
pub struct KeysFetchArgs {
    /// A region to fetch keys for (repeatable). Default: the clients' region (--region).
    #[arg(long = "source-region", value_name = "NAME")]
    pub regions: Vec<String>,

    /// Keys valid at any time from here. Default: 90 days before the end.
    #[arg(long, visible_alias = "start-time", value_name = "TIME", value_parser = start_time)]
    pub start: Option<Timestamp>,

    /// Keys valid at any time up to here. Default: now.
    #[arg(long, visible_alias = "end-time", value_name = "TIME", value_parser = end_time)]
    pub end: Option<Timestamp>,

    /// Say on standard error how AWS is reached and each AWS call, with its status and duration.
    #[arg(short, long)]
    pub verbose: bool,

    #[command(flatten)]
    pub aws: AwsArgs,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// The folder to write (created; must be empty), or `s3://bucket[/prefix]` to upload to
    /// (the bucket is created if needed).
    pub target: String,

    /// The PEM private key (PKCS#1 or PKCS#8) that signs the digests. For tests and drills
    /// only: never a key anyone trusts for real logs.
    #[arg(long, value_name = "PEM")]
    pub signing_key: PathBuf,

    /// Also write the signing key's public half here, as saved ListPublicKeys JSON valid for
    /// the simulated period: the file to pass to `verify --public-keys`.
    #[arg(long, value_name = "PATH")]
    pub public_keys_out: Option<PathBuf>,

    /// The bucket name written into digests. Default: the folder's name.
    #[arg(long, value_name = "NAME")]
    pub bucket: Option<String>,

    /// An account, as [PREFIX/][o-ORGID/]ACCOUNT (repeatable). Default: 111111111111.
    #[arg(long = "account", value_name = "SPEC")]
    pub accounts: Vec<AccountSpec>,

    /// A source region (repeatable); the first is the trails' home region. Default: us-east-1.
    #[arg(long = "source-region", value_name = "NAME")]
    pub regions: Vec<String>,

    /// A trail writing into every account and region (repeatable). Default: management.
    #[arg(long = "trail", value_name = "NAME")]
    pub trails: Vec<String>,

    /// The start of the first hour.
    #[arg(long, default_value = "2024-01-01T00:00:00Z", value_parser = start_time)]
    pub start: Timestamp,

    /// How many hourly digests each trail writes.
    #[arg(long, default_value_t = 6)]
    pub hours: u32,

    /// Log files per trail, region and hour.
    #[arg(long, default_value_t = 2)]
    pub logs_per_hour: u32,

    /// Mean uncompressed log size in bytes (sizes range from a quarter to twice this).
    #[arg(long, default_value_t = 4000)]
    pub log_bytes: u32,

    /// Draw log sizes log-uniformly between --log-bytes and this (many small logs, a few
    /// large ones, as CloudTrail delivers them).
    #[arg(long, value_name = "BYTES")]
    pub log_bytes_max: Option<u32>,

    /// Add a backfill digest (first scope) listing a log its regular digest missed.
    #[arg(long)]
    pub backfill: bool,

    /// Turn logging off at this hour index (first scope); a new chain starts after it.
    #[arg(long, value_name = "HOUR")]
    pub restart_at: Option<u32>,

    /// Write `/` as `\/` in digest JSON, as CloudTrail may.
    #[arg(long)]
    pub escape_slashes: bool,

    /// Which DER encoding of the public key the digests' fingerprint names.
    #[arg(long, value_enum, default_value_t = KeyEncoding::Pkcs1)]
    pub key_encoding: KeyEncoding,

    /// Damage the bucket (repeatable; first scope, middle hour). `--tamper help` lists them.
    #[arg(long = "tamper", value_name = "KIND", value_parser = tamper())]
    pub tampers: Vec<TamperArg>,

    /// Upload to AWS's own S3 (no --endpoint-url or AWS_ENDPOINT_URL_S3 is set): without this,
    /// simulate refuses, so that forged digests never reach a real bucket by mistake.
    #[arg(long)]
    pub allow_aws: bool,

    /// Seed for the generated content.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    #[command(flatten)]
    pub aws: AwsArgs,
}

/// A `--tamper` value: a kind of damage, or `help`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TamperArg {
    Help,
    Kind(Tamper),
}

/// The kinds of damage, and `help`, offered by shell completion.
fn tamper() -> impl clap::builder::TypedValueParser<Value = TamperArg> {
    use clap::builder::TypedValueParser;
    let mut names: Vec<clap::builder::PossibleValue> =
        vec![clap::builder::PossibleValue::new("help").help("list the kinds of damage")];
    names.extend(
        Tamper::ALL
            .iter()
            .map(|t| clap::builder::PossibleValue::new(t.name()).help(t.help())),
    );
    clap::builder::PossibleValuesParser::new(names).map(|s| match s.as_str() {
        "help" => TamperArg::Help,
        name => TamperArg::Kind(name.parse().expect("a listed kind")),
    })
}

/// What `--tamper help` prints.
pub fn tamper_help() -> String {
    let lines: Vec<String> = Tamper::ALL
        .iter()
        .map(|t| format!("  {:<28} {}", t.name(), t.help()))
        .collect();
    format!(
        "The kinds of damage (--tamper KIND):\n{}\n",
        lines.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn report_targets_parse() {
        assert_eq!(
            report_target("json=out/r.json").unwrap(),
            (Format::Json, PathBuf::from("out/r.json"))
        );
        assert!(report_target("json").is_err());
        assert!(report_target("xml=a").is_err());
        assert!(report_target("json=").is_err());
    }

    #[test]
    fn time_aliases_and_dates() {
        let cli = Cli::try_parse_from([
            "trailproof",
            "verify",
            "d",
            "--start-time",
            "2024-01-01",
            "--end",
            "2024-01-01",
        ])
        .unwrap();
        let Command::Verify(v) = cli.command else {
            panic!()
        };
        assert_eq!(
            v.filters.end.unwrap() - v.filters.start.unwrap(),
            chrono::Duration::days(1)
        );
    }
}
