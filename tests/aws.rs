//! The AWS plumbing as a user meets it, through the binary: S3 and CloudTrail on different
//! endpoints, set the ways the AWS CLI and the SDK take them, and every failure to reach AWS
//! said with the service, the operation, the endpoint and the cause (exit 2).

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use common::s3::{Faults, S3Server};
use common::{signer, small_spec};
use trailproof::simulate::{simulate, Bucket, Spec};

/// A server holding a small clean bucket named `name`, trusting the test key.
fn serve(dir: &Path, name: &str) -> (S3Server, Bucket) {
    serve_spec(
        dir,
        Spec {
            bucket: name.into(),
            ..small_spec()
        },
    )
}

/// A server holding the bucket `spec` makes, trusting the test key.
fn serve_spec(dir: &Path, spec: Spec) -> (S3Server, Bucket) {
    let bucket = simulate(&spec, signer()).unwrap();
    let server = S3Server::start(&dir.join("s3"));
    server.trust(signer());
    common::upload(&server.aws_options(), &bucket);
    server.state.clear();
    (server, bucket)
}

/// The binary in a clean environment (no shared config, no instance metadata) with `env`.
fn run(args: &[&str], env: &[(&str, String)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trailproof"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", "/nonexistent")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn verify_args<'a>(source: &'a str, end: &'a str) -> Vec<&'a str> {
    vec![
        "verify",
        source,
        "--end",
        end,
        "--format",
        "json",
        "--no-progress",
    ]
}

/// `verify SOURCE` as of the bucket's end, S3 at the server by `--endpoint-url`, with `more`
/// arguments and the environment `env`.
fn verify_on(
    server: &S3Server,
    bucket: &Bucket,
    source: &str,
    more: &[&str],
    env: &[(&str, String)],
) -> Output {
    let end = end_of(bucket);
    let mut args = verify_args(source, &end);
    args.extend(["--endpoint-url", &server.endpoint]);
    args.extend_from_slice(more);
    run(&args, env)
}

fn end_of(bucket: &Bucket) -> String {
    trailproof::layout::format_time(bucket.as_of)
}

/// The server's environment with `name` set to `value` (added or replaced).
fn env_with(server: &S3Server, name: &'static str, value: &str) -> Vec<(&'static str, String)> {
    let mut env: Vec<_> = server
        .env()
        .into_iter()
        .filter(|(k, _)| *k != name)
        .collect();
    env.push((name, value.to_string()));
    env
}

fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stderr: {}\nstdout: {}",
        stderr(out),
        String::from_utf8_lossy(&out.stdout)
    );
}

/// `--endpoint-url` is S3's alone: CloudTrail's ListPublicKeys goes to the endpoint of
/// `AWS_ENDPOINT_URL_CLOUDTRAIL`, and the digests verify with the keys it answers.
#[test]
fn endpoint_url_is_s3s_and_cloudtrail_takes_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let (server, bucket) = serve(dir.path(), "split-bucket");
    let out = verify_on(&server, &bucket, "s3://split-bucket", &[], &server.env());
    assert_exit(&out, 0);
    let requests = server.state.requests();
    let keys: Vec<_> = requests
        .iter()
        .filter(|r| r.action.as_deref() == Some("CloudTrail_20131101.ListPublicKeys"))
        .collect();
    assert!(!keys.is_empty(), "no ListPublicKeys call");
    assert!(keys.iter().all(|r| r.services), "{keys:?}");
    assert!(
        requests
            .iter()
            .filter(|r| !r.services)
            .all(|r| r.action.is_none()),
        "a non-S3 call went to the S3 endpoint"
    );
}

/// `AWS_ENDPOINT_URL_S3=http://localhost:PORT` alone (a host name, no `--endpoint-url`)
/// addresses buckets path-style, as for any endpoint that is not AWS's own.
#[test]
fn a_host_named_s3_endpoint_from_the_environment_is_addressed_path_style() {
    let dir = tempfile::tempdir().unwrap();
    let (server, bucket) = serve(dir.path(), "localhost-bucket");
    let end = end_of(&bucket);
    let by_name = server.endpoint.replace("127.0.0.1", "localhost");
    let out = run(
        &verify_args("s3://localhost-bucket", &end),
        &env_with(&server, "AWS_ENDPOINT_URL_S3", &by_name),
    );
    assert_exit(&out, 0);
    // Forced virtual-hosted, the same endpoint fails on the bucket's host name, and says so.
    let mut args = verify_args("s3://localhost-bucket", &end);
    args.extend(["--addressing-style", "virtual"]);
    let out = run(&args, &env_with(&server, "AWS_ENDPOINT_URL_S3", &by_name));
    assert_exit(&out, 2);
    let says = stderr(&out);
    assert!(says.contains("S3 ") && says.contains(&by_name), "{says}");
}

/// A CloudTrail endpoint where nothing listens: exit 2, naming CloudTrail, the operation, the
/// endpoint and that it could not connect; never a verdict on the bucket.
#[test]
fn a_closed_cloudtrail_port_is_said_with_service_endpoint_and_cause() {
    let dir = tempfile::tempdir().unwrap();
    let (server, bucket) = serve(dir.path(), "closed-bucket");
    let closed = "http://127.0.0.1:9";
    let out = verify_on(
        &server,
        &bucket,
        "s3://closed-bucket",
        &[],
        &env_with(&server, "AWS_ENDPOINT_URL_CLOUDTRAIL", closed),
    );
    assert_exit(&out, 2);
    let says = stderr(&out);
    assert!(
        says.contains("CloudTrail ListPublicKeys at http://127.0.0.1:9")
            && says.contains("cannot connect"),
        "{says}"
    );
    assert!(out.stdout.is_empty());
}

/// CloudTrail's calls sent to an S3 server (which answers them with an S3 XML error): the
/// message shows the status, the content type and the first bytes of what came back.
#[test]
fn an_answer_in_the_wrong_protocol_shows_its_type_and_first_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (server, bucket) = serve(dir.path(), "xml-bucket");
    let out = verify_on(
        &server,
        &bucket,
        "s3://xml-bucket",
        &[],
        &env_with(&server, "AWS_ENDPOINT_URL_CLOUDTRAIL", &server.endpoint),
    );
    assert_exit(&out, 2);
    let says = stderr(&out);
    assert!(
        says.contains(&format!("CloudTrail ListPublicKeys at {}", server.endpoint))
            && says.contains("HTTP 501")
            && says.contains("application/xml")
            && says.contains("<Error><Code>NotImplemented"),
        "{says}"
    );
}

/// Credentials S3 does not accept: exit 2 with S3's own code, and no ListBucket hint (it
/// applies to a GET of an object, not to a signature).
#[test]
fn wrong_credentials_are_said_with_the_code_and_no_listbucket_hint() {
    let dir = tempfile::tempdir().unwrap();
    let (server, bucket) = serve(dir.path(), "wrong-bucket");
    let out = verify_on(
        &server,
        &bucket,
        "s3://wrong-bucket",
        &[],
        &env_with(&server, "AWS_SECRET_ACCESS_KEY", "not-the-secret"),
    );
    assert_exit(&out, 2);
    let says = stderr(&out);
    assert!(
        says.contains(&format!("S3 ListObjectsV2 at {}", server.endpoint))
            && says.contains("HTTP 403 SignatureDoesNotMatch"),
        "{says}"
    );
    assert!(!says.contains("ListBucket"), "{says}");
}

/// A profile that the config files do not define: one plain sentence naming it, not an
/// instance-metadata error.
#[test]
fn a_missing_profile_is_said_plainly() {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".aws")).unwrap();
    std::fs::write(
        home.path().join(".aws/config"),
        "[default]\nregion = us-east-1\n\n[profile audit]\nregion = eu-west-1\n",
    )
    .unwrap();
    let home_dir = home.path().to_str().unwrap().to_string();
    let out = run(
        &["verify", "s3://any-bucket", "--profile", "nosuch"],
        &[("HOME", home_dir.clone())],
    );
    assert_exit(&out, 2);
    let says = stderr(&out);
    assert!(
        says.contains("the profile `nosuch` (--profile) is not defined")
            && says.contains("~/.aws/config"),
        "{says}"
    );
    assert!(!says.to_lowercase().contains("imds"), "{says}");
    // AWS_PROFILE names it as well.
    let out = run(
        &["verify", "s3://any-bucket"],
        &[("HOME", home_dir), ("AWS_PROFILE", "nosuch".into())],
    );
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("(AWS_PROFILE) is not defined"),
        "{}",
        stderr(&out)
    );
}

/// An SSO profile without a live session: the sentence says to run `aws sso login`.
#[test]
fn an_sso_profile_without_a_session_says_to_log_in() {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".aws")).unwrap();
    std::fs::write(
        home.path().join(".aws/config"),
        "[profile org-audit]\nsso_session = corp\nsso_account_id = 111122223333\nsso_role_name = Auditor\nregion = us-east-1\n\n[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = us-east-1\n",
    )
    .unwrap();
    let out = run(
        &["verify", "s3://any-bucket", "--profile", "org-audit"],
        &[("HOME", home.path().to_str().unwrap().to_string())],
    );
    assert_exit(&out, 2);
    let says = stderr(&out);
    assert!(
        says.contains("SSO session of profile `org-audit`")
            && says.contains("aws sso login --profile org-audit"),
        "{says}"
    );
}

/// No credentials anywhere: one sentence that says where they were looked for.
#[test]
fn no_credentials_at_all_is_said_plainly() {
    let out = run(&["verify", "s3://any-bucket"], &[]);
    assert_exit(&out, 2);
    let says = stderr(&out);
    assert!(says.contains("no AWS credentials found"), "{says}");
    assert!(!says.contains("dispatch failure"), "{says}");
}

/// AssumeRole refused by STS: the message names STS, its endpoint, the role and whether an
/// external ID was given, never its value.
#[test]
fn a_denied_assume_role_names_sts_the_role_and_the_external_ids_presence() {
    let dir = tempfile::tempdir().unwrap();
    let (server, bucket) = serve(dir.path(), "role-bucket");
    server.state.set_faults(Faults {
        deny_assume_role: true,
        ..Faults::default()
    });
    let role = "arn:aws:iam::111122223333:role/LogReader";
    let out = verify_on(
        &server,
        &bucket,
        "s3://role-bucket",
        &["--role-arn", role, "--external-id", "secret-7f3c"],
        &server.env(),
    );
    assert_exit(&out, 2);
    let says = stderr(&out);
    assert!(
        says.contains(&format!("STS AssumeRole at {}", server.aws_endpoint))
            && says.contains("was denied")
            && says.contains(role)
            && says.contains("with an external ID")
            && says.contains("HTTP 403 AccessDenied"),
        "{says}"
    );
    assert!(!says.contains("secret-7f3c"), "{says}");
    // Nothing was read from S3 with no credentials.
    assert!(server.state.requests().iter().all(|r| r.services));
}

/// `-v` says the region, each service's endpoint, where the credentials came from, and every
/// call with its status and duration.
#[test]
fn verbose_says_how_aws_is_reached_and_each_call() {
    let dir = tempfile::tempdir().unwrap();
    let (server, bucket) = serve(dir.path(), "verbose-bucket");
    let out = verify_on(
        &server,
        &bucket,
        "s3://verbose-bucket",
        &["-v"],
        &server.env(),
    );
    assert_exit(&out, 0);
    let says = stderr(&out);
    for line in [
        "trailproof: aws: region us-east-1".to_string(),
        format!(
            "trailproof: aws: S3 endpoint {} (path-style addressing)",
            server.endpoint
        ),
        format!(
            "trailproof: aws: CloudTrail endpoint {}",
            server.aws_endpoint
        ),
        "trailproof: aws: credentials from the environment (AWS_ACCESS_KEY_ID)".to_string(),
    ] {
        assert!(says.contains(&line), "{line}\n{says}");
    }
    assert!(
        says.lines()
            .any(|l| l.starts_with("trailproof: aws: S3 ListObjectsV2 GET")
                && l.contains("-> HTTP 200")
                && l.ends_with(" ms)")),
        "{says}"
    );
    assert!(
        says.lines()
            .any(|l| l.starts_with("trailproof: aws: CloudTrail ListPublicKeys POST")),
        "{says}"
    );
}

/// A CA bundle that cannot be used is said before any call, naming the file and where its
/// path came from; it never panics.
#[test]
fn an_unusable_ca_bundle_is_said_with_its_path_and_origin() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("bundle.pem");
    std::fs::write(&not_pem, "not a certificate\n").unwrap();
    let broken = dir.path().join("broken.pem");
    std::fs::write(
        &broken,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let env = [
        ("AWS_ACCESS_KEY_ID", "k".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "s".to_string()),
    ];
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, String)>, &'a str);
    let cases: [Case; 3] = [
        (
            vec!["--ca-bundle", not_pem.to_str().unwrap()],
            vec![],
            "(--ca-bundle) holds no PEM certificate",
        ),
        (
            vec![],
            vec![("AWS_CA_BUNDLE", broken.to_str().unwrap().to_string())],
            "(AWS_CA_BUNDLE)",
        ),
        (
            vec!["--ca-bundle", "/nonexistent/ca.pem"],
            vec![],
            "cannot read the CA bundle /nonexistent/ca.pem (--ca-bundle)",
        ),
    ];
    for (flags, more, says) in cases {
        let mut args = vec!["verify", "s3://any-bucket"];
        args.extend(flags);
        let mut all = env.to_vec();
        all.extend(more);
        let out = run(&args, &all);
        assert_exit(&out, 2);
        assert!(stderr(&out).contains(says), "{says}: {}", stderr(&out));
        assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    }
}

/// The console's path to an account (`s3://bucket/AWSLogs/<account>`) or to a region's digest
/// folder is a scope filter: only that account (and region) is verified, with a note.
#[test]
fn a_source_prefix_inside_awslogs_selects_the_scope_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let (server, bucket) = serve_spec(
        dir.path(),
        Spec {
            bucket: "console-bucket".into(),
            accounts: vec![
                "111111111111".parse().unwrap(),
                "222222222222".parse().unwrap(),
            ],
            regions: vec!["us-east-1".into(), "eu-west-1".into()],
            ..small_spec()
        },
    );
    let end = end_of(&bucket);
    let scopes = |source: &str| {
        let mut args = verify_args(source, &end);
        args.extend(["--endpoint-url", &server.endpoint]);
        let out = run(&args, &server.env());
        assert_exit(&out, 0);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut scopes: Vec<(String, String)> = report["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["account"].as_str().unwrap().to_string(),
                    s["region"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        scopes.sort();
        scopes.dedup();
        let notes = report["notes"].to_string();
        (scopes, notes)
    };
    let (found, notes) = scopes("s3://console-bucket/AWSLogs/222222222222");
    assert_eq!(
        found,
        [
            ("222222222222".to_string(), "eu-west-1".to_string()),
            ("222222222222".to_string(), "us-east-1".to_string())
        ]
    );
    assert!(notes.contains("lies inside AWSLogs/"), "{notes}");
    let (found, _) =
        scopes("s3://console-bucket/AWSLogs/111111111111/CloudTrail-Digest/eu-west-1/");
    assert_eq!(
        found,
        [("111111111111".to_string(), "eu-west-1".to_string())]
    );
    // A prefix below a region's folder is refused with the reason.
    let mut args = verify_args(
        "s3://console-bucket/AWSLogs/111111111111/CloudTrail/eu-west-1/2024/01",
        &end,
    );
    args.extend(["--endpoint-url", &server.endpoint]);
    let out = run(&args, &server.env());
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("checks whole regions"),
        "{}",
        stderr(&out)
    );
}

/// The findings of a JSON report as (kind, account, region, trail).
fn findings(out: &Output) -> Vec<(String, String, String, String)> {
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut found: Vec<_> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or("").to_string();
            (s("kind"), s("account"), s("region"), s("trail"))
        })
        .collect();
    found.sort();
    found
}

/// A bucket of one account's multi-region trail in two regions, on a server that answers
/// CloudTrail, Account and Organizations as told.
fn expectation_bucket(dir: &Path, name: &str) -> (S3Server, Bucket) {
    let (server, bucket) = serve_spec(
        dir,
        Spec {
            bucket: name.into(),
            regions: vec!["us-east-1".into(), "eu-west-1".into()],
            ..small_spec()
        },
    );
    {
        let mut services = server.state.services.lock().unwrap();
        services.regions = r#"{"Regions":[
            {"RegionName":"us-east-1","RegionOptStatus":"ENABLED_BY_DEFAULT"},
            {"RegionName":"eu-west-1","RegionOptStatus":"ENABLED_BY_DEFAULT"},
            {"RegionName":"ap-south-1","RegionOptStatus":"ENABLED"},
            {"RegionName":"me-south-1","RegionOptStatus":"DISABLED"}]}"#
            .into();
        services.trail_status = r#"{"IsLogging":true,"StartLoggingTime":1700000000}"#.into();
    }
    (server, bucket)
}

fn trail_json(bucket: &str, multi_region: bool, organization: bool, validation: bool) -> String {
    format!(
        r#"{{"trailList":[{{"Name":"management","S3BucketName":"{bucket}","IsMultiRegionTrail":{multi_region},"HomeRegion":"us-east-1","TrailARN":"arn:aws:cloudtrail:us-east-1:111111111111:trail/management","LogFileValidationEnabled":{validation},"IsOrganizationTrail":{organization}}},{{"Name":"elsewhere","S3BucketName":"another-bucket","IsMultiRegionTrail":true,"HomeRegion":"us-east-1","TrailARN":"arn:aws:cloudtrail:us-east-1:111111111111:trail/elsewhere","LogFileValidationEnabled":true}}]}}"#
    )
}

fn verify_expecting(server: &S3Server, bucket: &Bucket) -> Output {
    let source = format!("s3://{}", bucket.name);
    verify_on(
        server,
        bucket,
        &source,
        &["--expect-from-cloudtrail"],
        &server.env(),
    )
}

/// `--expect-from-cloudtrail`: a multi-region trail must have a chain in every enabled region
/// of its account. The bucket has two of the three: the third is `scope_missing`; a disabled
/// region and a trail writing to another bucket expect nothing.
#[test]
fn expectation_from_cloudtrail_finds_a_region_a_multi_region_trail_never_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let (server, bucket) = expectation_bucket(dir.path(), "expect-bucket");
    server.state.services.lock().unwrap().describe_trails =
        trail_json("expect-bucket", true, false, true);
    let out = verify_expecting(&server, &bucket);
    assert_exit(&out, 1);
    let scope = |region: &str| {
        (
            "scope_missing".to_string(),
            "111111111111".to_string(),
            region.to_string(),
            "management".to_string(),
        )
    };
    assert_eq!(findings(&out), [scope("ap-south-1")]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains("a multi-region trail, logging since"),
        "{report}"
    );
    // The calls were the read-only ones, on the services endpoint.
    let asked: BTreeSet<String> = server
        .state
        .requests()
        .iter()
        .filter(|r| r.services)
        .filter_map(|r| {
            r.action
                .clone()
                .or_else(|| (r.path == "/listRegions").then(|| r.path.clone()))
        })
        .collect();
    for call in [
        "CloudTrail_20131101.DescribeTrails",
        "CloudTrail_20131101.GetTrailStatus",
        "/listRegions",
    ] {
        assert!(asked.contains(call), "{call} not asked: {asked:?}");
    }
}

/// An organization trail expects every active account of the organization; one with no
/// folder in the bucket is `scope_missing` in each region.
#[test]
fn expectation_from_cloudtrail_finds_an_organization_account_with_no_logs() {
    let dir = tempfile::tempdir().unwrap();
    let (server, bucket) = expectation_bucket(dir.path(), "org-expect-bucket");
    {
        let mut services = server.state.services.lock().unwrap();
        services.describe_trails = trail_json("org-expect-bucket", false, true, true);
        services.accounts = r#"{"Accounts":[
            {"Id":"111111111111","Status":"ACTIVE"},
            {"Id":"444444444444","Status":"ACTIVE"},
            {"Id":"555555555555","Status":"SUSPENDED"}]}"#
            .into();
    }
    let out = verify_expecting(&server, &bucket);
    assert_exit(&out, 1);
    assert_eq!(
        findings(&out),
        [(
            "scope_missing".to_string(),
            "444444444444".to_string(),
            "us-east-1".to_string(),
            "management".to_string()
        )]
    );
}

/// A trail with log file validation off expects no digests (a note says its logs cannot be
/// proven); a clean bucket of a trail that is logging verifies; a call that cannot be made
/// ends the run with exit 2, naming the service and the endpoint.
#[test]
fn expectation_from_cloudtrail_notes_validation_off_and_says_why_it_cannot_ask() {
    let dir = tempfile::tempdir().unwrap();
    let (server, bucket) = expectation_bucket(dir.path(), "off-bucket");
    server.state.services.lock().unwrap().describe_trails =
        trail_json("off-bucket", true, false, false);
    let out = verify_expecting(&server, &bucket);
    assert_exit(&out, 0);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains("log file validation turned off"),
        "{report}"
    );

    let source = "s3://off-bucket".to_string();
    let out = verify_on(
        &server,
        &bucket,
        &source,
        &["--expect-from-cloudtrail"],
        &env_with(&server, "AWS_ENDPOINT_URL_ACCOUNT", "http://127.0.0.1:9"),
    );
    assert_exit(&out, 2);
    let says = stderr(&out);
    assert!(
        says.contains("cannot derive the expected coverage from CloudTrail")
            && says.contains("Account ListRegions at http://127.0.0.1:9"),
        "{says}"
    );
    // Offline, the expectation is stated by hand.
    let out = run(&["verify", "/tmp", "--expect-from-cloudtrail"], &[]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("--expect-account"),
        "{}",
        stderr(&out)
    );
}

/// Over S3, each line of the objects report carries the object's ETag as listed (the MD5 of
/// its bytes for these single-part uploads).
#[test]
fn the_objects_report_over_s3_carries_each_objects_etag() {
    use md5::Digest as _;
    let dir = tempfile::tempdir().unwrap();
    let (server, bucket) = serve(dir.path(), "etag-bucket");
    let path = dir.path().join("objects.jsonl");
    let target = format!("objects={}", path.display());
    let out = verify_on(
        &server,
        &bucket,
        "s3://etag-bucket",
        &["--report", &target],
        &server.env(),
    );
    assert_exit(&out, 0);
    let lines = std::fs::read_to_string(&path).unwrap();
    let mut seen = 0;
    for line in lines.lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        let key = record["key"].as_str().unwrap();
        let bytes = &bucket.objects[key].bytes;
        let md5 = hex::encode(md5::Md5::digest(bytes));
        assert_eq!(
            record["etag"].as_str(),
            Some(format!("\"{md5}\"").as_str()),
            "{line}"
        );
        seen += 1;
    }
    assert_eq!(seen, bucket.objects.len());
}

/// HTTPS endpoints whose certificate a test authority signed: `--ca-bundle` and
/// `AWS_CA_BUNDLE` make the run trust it (and only it); without them the run stops, naming
/// the endpoint and the certificate; `--no-verify-ssl` accepts it, with a warning.
#[test]
fn ca_bundles_are_trusted_and_no_verify_ssl_warns() {
    let dir = tempfile::tempdir().unwrap();
    let (server, bucket) = serve(dir.path(), "tls-bucket");
    let ca = common::tls::TestCa::new(dir.path());
    let s3 = ca.front(&server.endpoint);
    let services = ca.front(&server.aws_endpoint);
    let end = end_of(&bucket);
    let mut env = server.env();
    env.retain(|(k, _)| !k.starts_with("AWS_ENDPOINT_URL"));
    for name in ["CLOUDTRAIL", "STS", "ACCOUNT", "ORGANIZATIONS"] {
        let var: &'static str = Box::leak(format!("AWS_ENDPOINT_URL_{name}").into_boxed_str());
        env.push((var, services.endpoint.clone()));
    }
    env.push(("AWS_ENDPOINT_URL_S3", s3.endpoint.clone()));
    let bundle = ca.ca_pem.to_str().unwrap().to_string();
    let args = verify_args("s3://tls-bucket", &end);

    let mut with_flag = args.clone();
    with_flag.extend(["--ca-bundle", &bundle]);
    assert_exit(&run(&with_flag, &env), 0);

    let mut with_env = env.clone();
    with_env.push(("AWS_CA_BUNDLE", bundle.clone()));
    assert_exit(&run(&args, &with_env), 0);

    let out = run(&args, &env);
    assert_exit(&out, 2);
    let says = stderr(&out);
    assert!(
        says.contains(&s3.endpoint) && says.to_lowercase().contains("certificate"),
        "{says}"
    );

    let mut insecure = args.clone();
    insecure.push("--no-verify-ssl");
    let out = run(&insecure, &env);
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("--no-verify-ssl: no server certificate is verified"));
}

/// Through the binary over SeaweedFS: S3 by `--endpoint-url`, CloudTrail elsewhere by
/// `AWS_ENDPOINT_URL_CLOUDTRAIL`, keys from ListPublicKeys; wrong credentials are said with
/// SeaweedFS's own error code; `--debug` turns on the SDK's tracing.
#[test]
fn over_seaweedfs_s3_and_cloudtrail_on_their_own_endpoints() {
    let Some(seaweed) = common::needs(
        common::seaweed::Seaweed::start(),
        "over_seaweedfs_s3_and_cloudtrail_on_their_own_endpoints",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cloudtrail = S3Server::start(&dir.path().join("unused-s3"));
    cloudtrail.trust(signer());
    let bucket = simulate(
        &Spec {
            bucket: "weed-cli-bucket".into(),
            ..small_spec()
        },
        signer(),
    )
    .unwrap();
    common::upload(&seaweed.aws_options(), &bucket);
    let env = vec![
        ("AWS_ACCESS_KEY_ID", common::seaweed::ACCESS_KEY.to_string()),
        (
            "AWS_SECRET_ACCESS_KEY",
            common::seaweed::SECRET_KEY.to_string(),
        ),
        ("AWS_REGION", "us-east-1".to_string()),
        (
            "AWS_ENDPOINT_URL_CLOUDTRAIL",
            cloudtrail.aws_endpoint.clone(),
        ),
    ];
    let end = end_of(&bucket);
    let mut args = verify_args("s3://weed-cli-bucket", &end);
    args.extend(["--endpoint-url", &seaweed.endpoint]);
    let out = run(&args, &env);
    assert_exit(&out, 0);
    assert!(cloudtrail
        .state
        .requests()
        .iter()
        .any(|r| r.action.as_deref() == Some("CloudTrail_20131101.ListPublicKeys")));

    let mut wrong = env.clone();
    wrong[1].1 = "not-the-secret".into();
    let out = run(&args, &wrong);
    assert_exit(&out, 2);
    let says = stderr(&out);
    assert!(
        says.contains(&format!("S3 ListObjectsV2 at {}", seaweed.endpoint))
            && says.contains("HTTP 403"),
        "{says}"
    );

    let mut debug = args.clone();
    debug.push("--debug");
    let out = run(&debug, &env);
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("DEBUG"), "{}", stderr(&out));
}

/// A trail that started logging too recently to have delivered a digest expects none yet: a
/// note, never a false `scope_missing`.
#[test]
fn expectation_from_cloudtrail_waits_for_a_trail_that_just_started() {
    let dir = tempfile::tempdir().unwrap();
    let (server, bucket) = expectation_bucket(dir.path(), "recent-bucket");
    {
        let mut services = server.state.services.lock().unwrap();
        services.describe_trails = trail_json("recent-bucket", true, false, true);
        services.trail_status = format!(
            r#"{{"IsLogging":true,"StartLoggingTime":{}}}"#,
            bucket.as_of.timestamp() - 1800
        );
    }
    let out = verify_expecting(&server, &bucket);
    assert_exit(&out, 0);
    assert!(findings(&out).is_empty(), "{:?}", findings(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("started logging too recently"));
}

/// The external ID can come from TRAILPROOF_EXTERNAL_ID (kept out of the process list): it
/// reaches AssumeRole; without --role-arn it is refused rather than ignored.
#[test]
fn the_external_id_from_the_environment_reaches_assume_role() {
    let dir = tempfile::tempdir().unwrap();
    let (server, bucket) = serve(dir.path(), "env-id-bucket");
    let out = verify_on(
        &server,
        &bucket,
        "s3://env-id-bucket",
        &["--role-arn", "arn:aws:iam::111122223333:role/LogReader"],
        &env_with(&server, "TRAILPROOF_EXTERNAL_ID", "from-env-7f3c"),
    );
    assert_exit(&out, 0);
    let asked = server.state.requests();
    let assume = asked
        .iter()
        .find(|r| r.action.as_deref() == Some("AssumeRole"))
        .expect("AssumeRole was called");
    assert!(
        assume.body.contains("ExternalId=from-env-7f3c"),
        "{}",
        assume.body
    );
    let out = verify_on(
        &server,
        &bucket,
        "s3://env-id-bucket",
        &[],
        &env_with(&server, "TRAILPROOF_EXTERNAL_ID", "x"),
    );
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("without --role-arn"),
        "{}",
        stderr(&out)
    );
}

/// `keys fetch -v` says where CloudTrail is and each call, like `verify -v`.
#[test]
fn keys_fetch_verbose_says_each_call() {
    let dir = tempfile::tempdir().unwrap();
    let server = S3Server::start(&dir.path().join("s3"));
    server.trust(signer());
    let out = run(
        &["keys", "fetch", "-v", "--start", "2024-01-01"],
        &server.env(),
    );
    assert_exit(&out, 0);
    let says = stderr(&out);
    assert!(
        says.contains(&format!(
            "trailproof: aws: CloudTrail endpoint {}",
            server.aws_endpoint
        )) && says.lines().any(|l| l
            .starts_with("trailproof: aws: CloudTrail ListPublicKeys POST")
            && l.contains("-> HTTP 200")),
        "{says}"
    );
    let saved: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(saved["PublicKeyList"].as_array().unwrap().len(), 1);
}
