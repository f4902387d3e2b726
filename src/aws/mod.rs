//! AWS sessions and the calls that are not S3: CloudTrail `ListPublicKeys` (the keys that sign
//! digests) and STS `GetCallerIdentity` (who made an evidence copy).
//!
//! Configured as the AWS CLI and the SDK are: credentials from the SDK's default chain
//! (environment, profile, SSO, instance role), a named `--profile`, or a role assumed with
//! `--role-arn`/`--external-id` (the cross-account reader role a log-bucket owner grants an
//! auditor); `--region` is the clients' region; each service has its own endpoint
//! (`--endpoint-url` is S3's; `AWS_ENDPOINT_URL_<SERVICE>` and `AWS_ENDPOINT_URL` as the SDK
//! documents them); path-style addressing for any S3 endpoint that is not AWS's own; the
//! proxies and CA bundle of the environment ([`http`]). Credentials are resolved when the
//! session starts, so that a missing profile, an expired SSO session or a refused AssumeRole is
//! said in one plain sentence before any work. The bucket's own region is asked of S3, not
//! guessed.

pub mod error;
pub mod http;
pub mod insecure;
pub mod trace;
pub mod trails;

use std::path::PathBuf;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::credential_feature::AwsCredentialFeature;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::ProvideCredentials;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};

use crate::keys::{self, TrustedKey};
use crate::layout::Timestamp;
use crate::store::S3Store;
use error::Call;

/// How S3 buckets are addressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Addressing {
    /// Path-style (`endpoint/bucket/key`) for any endpoint that is not AWS's own, virtual-hosted
    /// (`bucket.endpoint/key`) for AWS.
    #[default]
    Auto,
    Path,
    Virtual,
}

/// How to reach AWS.
#[derive(Clone, Debug, Default)]
pub struct AwsOptions {
    pub profile: Option<String>,
    /// S3's endpoint (`--endpoint-url`). Unset: `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, the
    /// profile's `endpoint_url`, else AWS's own.
    pub endpoint_url: Option<String>,
    /// CloudTrail's endpoint; unset, as for S3 with `AWS_ENDPOINT_URL_CLOUDTRAIL`.
    pub cloudtrail_endpoint_url: Option<String>,
    /// STS's endpoint; unset, as for S3 with `AWS_ENDPOINT_URL_STS`.
    pub sts_endpoint_url: Option<String>,
    pub addressing: Addressing,
    /// A PEM file of the only certificate authorities to trust (`--ca-bundle`). Unset:
    /// `AWS_CA_BUNDLE`, the profile's `ca_bundle`, else the system's.
    pub ca_bundle: Option<PathBuf>,
    /// Accept any server certificate (`--no-verify-ssl`), with a warning on every run.
    pub no_verify_ssl: bool,
    pub role_arn: Option<String>,
    pub external_id: Option<String>,
    pub session_name: Option<String>,
    /// The SDK's region; default from the environment or profile, else `us-east-1`.
    pub region: Option<String>,
    /// Fixed credentials (access key id, secret), instead of the default chain.
    pub static_credentials: Option<(String, String)>,
    /// Say on standard error how AWS is reached, and each call with its status and duration.
    pub verbose: bool,
}

/// Why AWS could not be used at all. Each names what was asked.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    #[error("s3://{bucket}: {cause}")]
    Bucket { bucket: String, cause: String },
    #[error("{0}")]
    Keys(String),
    #[error("{0}")]
    Identity(String),
    /// No session: the profile, the credentials, the role or the CA bundle.
    #[error("{0}")]
    Session(String),
    /// What CloudTrail says must be in the bucket could not be asked.
    #[error("cannot derive the expected coverage from CloudTrail: {0}")]
    Expectation(String),
}

/// A configured session.
#[derive(Clone, Debug)]
pub struct Session {
    config: SdkConfig,
    path_style: bool,
    verbose: bool,
    /// The endpoints configured for S3, CloudTrail and STS; `None` for AWS's own.
    s3_endpoint: Option<String>,
    cloudtrail_endpoint: Option<String>,
    sts_endpoint: Option<String>,
    /// The Account and Organizations endpoints (`AWS_ENDPOINT_URL_ACCOUNT`,
    /// `AWS_ENDPOINT_URL_ORGANIZATIONS`); `None` for AWS's own.
    account_endpoint: Option<String>,
    organizations_endpoint: Option<String>,
    /// S3 answers that were throttling (503, 429), counted over every attempt.
    throttles: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// A service's configured endpoint: the one given, else the SDK's service configuration
/// (`AWS_ENDPOINT_URL_<SERVICE>`, `AWS_ENDPOINT_URL`, the profile's `endpoint_url` and
/// `services` section), exactly as the service's client will resolve it.
fn configured_endpoint(
    config: &SdkConfig,
    service_id: &str,
    given: Option<&str>,
) -> Option<String> {
    if let Some(url) = given {
        return Some(url.to_string());
    }
    let key = ServiceConfigKey::builder()
        .service_id(service_id)
        .env("AWS_ENDPOINT_URL")
        .profile("endpoint_url")
        .build()
        .ok()?;
    config
        .service_config()
        .and_then(|c| c.load_config(key))
        .or_else(|| config.endpoint_url().map(str::to_string))
}

/// Whether an endpoint is AWS's own (virtual-hosted addressing works there).
fn is_aws_host(url: &str) -> bool {
    let host = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split(['/', ':'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn")
}

/// A service configuration that answers nothing: for the STS client of AssumeRole when its
/// endpoint is given, so that the environment's does not override it.
#[derive(Debug)]
struct NoServiceConfig;

impl LoadServiceConfig for NoServiceConfig {
    fn load_config(&self, _key: ServiceConfigKey<'_>) -> Option<String> {
        None
    }
}

/// The profile the user named (`--profile`, else `AWS_PROFILE`), and what the shared files say
/// of it: `None` when none was named.
struct NamedProfile {
    name: String,
    properties: Option<std::collections::BTreeMap<String, String>>,
}

impl NamedProfile {
    /// The profile named by `--profile`, else `AWS_PROFILE`, else `default` (whose settings,
    /// such as `ca_bundle`, apply as they do for the AWS CLI); or why the shared files cannot
    /// be read.
    async fn load(given: Option<&str>) -> Result<Option<NamedProfile>, String> {
        let name = given
            .map(str::to_string)
            .or_else(|| std::env::var("AWS_PROFILE").ok().filter(|p| !p.is_empty()))
            .unwrap_or_else(|| "default".to_string());
        let set = aws_config::profile::load(
            &aws_types::os_shim_internal::Fs::real(),
            &aws_types::os_shim_internal::Env::real(),
            &aws_runtime::env_config::file::EnvConfigFiles::default(),
            None,
        )
        .await
        .map_err(|e| {
            format!(
                "cannot read the shared AWS config files ({}): {e}",
                shared_files()
            )
        })?;
        let set = Some(set);
        let properties = set.as_ref().and_then(|s| s.get_profile(&name)).map(|p| {
            const KEYS: [&str; 8] = [
                "sso_session",
                "sso_start_url",
                "role_arn",
                "credential_process",
                "aws_access_key_id",
                "source_profile",
                "ca_bundle",
                "web_identity_token_file",
            ];
            KEYS.iter()
                .filter_map(|k| Some((k.to_string(), p.get(k)?.to_string())))
                .collect()
        });
        Ok(Some(NamedProfile { name, properties }))
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.properties.as_ref()?.get(key).map(String::as_str)
    }

    fn uses_sso(&self) -> bool {
        self.get("sso_session").is_some() || self.get("sso_start_url").is_some()
    }
}

/// A proxy URL with any user and password before `@` hidden, for printing.
fn without_password(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    match rest.split_once('@') {
        Some((_, host)) if scheme.is_empty() => format!("***@{host}"),
        Some((_, host)) => format!("{scheme}://***@{host}"),
        None => url.to_string(),
    }
}

/// Where the shared config files are, for messages.
fn shared_files() -> String {
    let config = std::env::var("AWS_CONFIG_FILE").unwrap_or_else(|_| "~/.aws/config".into());
    let credentials = std::env::var("AWS_SHARED_CREDENTIALS_FILE")
        .unwrap_or_else(|_| "~/.aws/credentials".into());
    format!("{config} or {credentials}")
}

/// What the credentials came from, in words.
fn credential_source(
    features: Option<&Vec<AwsCredentialFeature>>,
    options: &AwsOptions,
    profile: Option<&NamedProfile>,
) -> String {
    use AwsCredentialFeature as F;
    let has = |f: F| features.is_some_and(|all| all.contains(&f));
    let base = if options.static_credentials.is_some() || has(F::CredentialsCode) {
        "credentials given in code".to_string()
    } else if has(F::CredentialsEnvVars) {
        "the environment (AWS_ACCESS_KEY_ID)".to_string()
    } else if has(F::CredentialsProfileSso) || has(F::CredentialsSso) {
        format!(
            "SSO (profile {})",
            profile.map_or("default", |p| p.name.as_str())
        )
    } else if has(F::CredentialsProfileProcess) || has(F::CredentialsProcess) {
        "the profile's credential_process".to_string()
    } else if has(F::CredentialsProfile) {
        format!(
            "the shared credentials files (profile {})",
            profile.map_or("default", |p| p.name.as_str())
        )
    } else if has(F::CredentialsEnvVarsStsWebIdToken) || has(F::CredentialsProfileStsWebIdToken) {
        "a web identity token".to_string()
    } else if has(F::CredentialsHttp) {
        "the container's credentials endpoint".to_string()
    } else if has(F::CredentialsImds) {
        "the instance's role (IMDS)".to_string()
    } else {
        "the SDK's default chain".to_string()
    };
    match &options.role_arn {
        Some(role) => format!("role {role} assumed with STS, from {base}"),
        None => base,
    }
}

/// The AssumeRole failure inside a credentials error, if that is what it is.
fn assume_role_failure(
    err: &CredentialsError,
) -> Option<
    &aws_sdk_sts::error::SdkError<
        aws_sdk_sts::operation::assume_role::AssumeRoleError,
        aws_sdk_sts::config::http::HttpResponse,
    >,
> {
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        if let Some(found) = s.downcast_ref() {
            return Some(found);
        }
        source = s.source();
    }
    None
}

/// AWS's own endpoint for a service in a region, for messages.
fn aws_endpoint(service: &str, region: &str) -> String {
    format!("https://{service}.{region}.amazonaws.com")
}

/// Attempts per request (the first and its retries) for throttling, 5xx, timeouts and resets:
/// with a third of all answers failing, ten in a row fail once in some 60,000 requests.
const MAX_ATTEMPTS: u32 = 10;

impl Session {
    /// A session, with its credentials already resolved; or the one sentence that says why
    /// there is none.
    pub async fn connect(options: &AwsOptions) -> Result<Session, AwsError> {
        let fail = |m: String| AwsError::Session(m);
        let profile = NamedProfile::load(options.profile.as_deref())
            .await
            .map_err(fail)?;
        if let Some(p) = profile
            .as_ref()
            .filter(|p| p.properties.is_none() && p.name != "default")
        {
            let how = if options.profile.is_some() {
                "--profile"
            } else {
                "AWS_PROFILE"
            };
            return Err(fail(format!(
                "the profile `{}` ({how}) is not defined in {}: check its name with `aws configure list-profiles`",
                p.name,
                shared_files()
            )));
        }
        let roots = match (&options.ca_bundle, std::env::var_os("AWS_CA_BUNDLE")) {
            (Some(path), _) => http::Roots::Bundle {
                path: path.clone(),
                from: "--ca-bundle",
            },
            (None, Some(path)) if !path.is_empty() => http::Roots::Bundle {
                path: path.into(),
                from: "AWS_CA_BUNDLE",
            },
            _ => match profile.as_ref().and_then(|p| p.get("ca_bundle")) {
                Some(path) => http::Roots::Bundle {
                    path: path.into(),
                    from: "the profile's ca_bundle",
                },
                None => http::Roots::System,
            },
        };
        let http_client = if options.no_verify_ssl {
            eprintln!("trailproof: warning: --no-verify-ssl: no server certificate is verified; whoever sits between here and the endpoints can answer in their place, and a verdict made this way proves nothing about the bucket");
            aws_smithy_runtime_api::client::http::SharedHttpClient::new(
                insecure::Insecure::new().map_err(fail)?,
            )
        } else {
            http::client(&roots).map_err(fail)?
        };
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http_client)
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(MAX_ATTEMPTS)
                    .with_initial_backoff(Duration::from_millis(50)),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .read_timeout(Duration::from_secs(60))
                    .build(),
            );
        if let Some(profile) = &options.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(region) = &options.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some((id, secret)) = &options.static_credentials {
            loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
                id, secret, None, None, "static",
            ));
        }
        let mut config = loader.load().await;
        if config.region().is_none() {
            config = config
                .into_builder()
                .region(Region::from_static("us-east-1"))
                .build();
        }
        let region = config
            .region()
            .map_or("us-east-1".to_string(), |r| r.to_string());
        let s3_endpoint = configured_endpoint(&config, "S3", options.endpoint_url.as_deref());
        let cloudtrail_endpoint = configured_endpoint(
            &config,
            "CloudTrail",
            options.cloudtrail_endpoint_url.as_deref(),
        );
        let sts_endpoint = configured_endpoint(&config, "STS", options.sts_endpoint_url.as_deref());
        let account_endpoint = configured_endpoint(&config, "Account", None);
        let organizations_endpoint = configured_endpoint(&config, "Organizations", None);
        if let Some(role) = &options.role_arn {
            let sts_config = match &options.sts_endpoint_url {
                Some(url) => config
                    .to_builder()
                    .service_config(NoServiceConfig)
                    .endpoint_url(url)
                    .build(),
                None => config.clone(),
            };
            let mut builder = aws_config::sts::AssumeRoleProvider::builder(role)
                .session_name(options.session_name.as_deref().unwrap_or("trailproof"))
                .configure(&sts_config);
            if let Some(id) = &options.external_id {
                builder = builder.external_id(id);
            }
            let provider = builder.build().await;
            config = config
                .into_builder()
                .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(provider))
                .build();
        }
        let credentials = match config.credentials_provider() {
            Some(provider) => provider.provide_credentials().await,
            None => Err(CredentialsError::not_loaded("no credentials provider")),
        };
        let credentials = credentials.map_err(|e| {
            let sts = sts_endpoint
                .clone()
                .unwrap_or_else(|| aws_endpoint("sts", &region));
            fail(credentials_failure(&e, options, profile.as_ref(), &sts))
        })?;
        let path_style = match options.addressing {
            Addressing::Path => true,
            Addressing::Virtual => false,
            Addressing::Auto => s3_endpoint.as_deref().is_some_and(|u| !is_aws_host(u)),
        };
        let session = Session {
            config,
            path_style,
            verbose: options.verbose,
            s3_endpoint,
            cloudtrail_endpoint,
            sts_endpoint,
            account_endpoint,
            organizations_endpoint,
            throttles: Default::default(),
        };
        if options.verbose {
            let source = credential_source(
                credentials.get_property::<Vec<AwsCredentialFeature>>(),
                options,
                profile.as_ref(),
            );
            eprintln!("trailproof: aws: region {region}");
            eprintln!(
                "trailproof: aws: S3 endpoint {} ({} addressing)",
                session.endpoint("s3", &region),
                if path_style {
                    "path-style"
                } else {
                    "virtual-hosted"
                }
            );
            eprintln!(
                "trailproof: aws: CloudTrail endpoint {}",
                session.endpoint("cloudtrail", &region)
            );
            eprintln!(
                "trailproof: aws: STS endpoint {}",
                session.endpoint("sts", &region)
            );
            eprintln!("trailproof: aws: credentials from {source}");
            match &roots {
                http::Roots::System => {
                    eprintln!("trailproof: aws: trusting the system's certificate authorities")
                }
                http::Roots::Bundle { path, from } => {
                    eprintln!(
                        "trailproof: aws: trusting only the CA bundle {} ({from})",
                        path.display()
                    )
                }
            }
            for var in [
                "HTTPS_PROXY",
                "https_proxy",
                "HTTP_PROXY",
                "http_proxy",
                "NO_PROXY",
                "no_proxy",
            ] {
                if let Ok(v) = std::env::var(var) {
                    eprintln!("trailproof: aws: {var}={}", without_password(&v));
                }
            }
        }
        Ok(session)
    }

    /// The endpoint a service's calls go to, for messages: the configured one, else AWS's own
    /// in `region`.
    pub fn endpoint(&self, service: &str, region: &str) -> String {
        let configured = match service {
            "s3" => &self.s3_endpoint,
            "cloudtrail" => &self.cloudtrail_endpoint,
            "sts" => &self.sts_endpoint,
            "account" => &self.account_endpoint,
            "organizations" => &self.organizations_endpoint,
            _ => &None,
        };
        // Account and Organizations are global services, answered in us-east-1.
        let region = match service {
            "account" | "organizations" => "us-east-1",
            _ => region,
        };
        configured
            .clone()
            .unwrap_or_else(|| aws_endpoint(service, region))
    }

    /// Whether S3 calls go to AWS's own S3.
    pub fn s3_is_aws(&self) -> bool {
        self.s3_endpoint.as_deref().is_none_or(is_aws_host)
    }

    /// The SDK's region for this session.
    pub fn region(&self) -> String {
        self.config
            .region()
            .map_or("us-east-1".to_string(), |r| r.to_string())
    }

    /// An S3 client, in `region` when given (the bucket's), else the session's.
    pub fn s3_client(&self, region: Option<&str>) -> aws_sdk_s3::Client {
        use aws_sdk_s3::config::retry::{RetryPartition, TokenBucket};
        // The SDK's retry quota (a token bucket shared by the client) stops retrying once many
        // requests in a row were throttled: at a third of requests throttled it ran dry within
        // a few hundred objects, and clean buckets ended incomplete. The run bounds its own
        // requests (the permits), and backoff spaces the attempts, so S3 gets a partition with
        // no quota; each request still has at most MAX_ATTEMPTS.
        let partition = RetryPartition::custom("trailproof-s3")
            .token_bucket(TokenBucket::unlimited())
            .build();
        let mut builder = aws_sdk_s3::config::Builder::from(&self.config)
            .force_path_style(self.path_style)
            .retry_partition(partition);
        if let Some(url) = &self.s3_endpoint {
            builder = builder.endpoint_url(url);
        }
        if let Some(r) = region {
            builder = builder.region(Region::new(r.to_string()));
        }
        if self.verbose {
            builder = builder.interceptor(trace::Calls);
        }
        builder = builder.interceptor(trace::Throttles(self.throttles.clone()));
        aws_sdk_s3::Client::from_conf(builder.build())
    }

    pub(crate) fn cloudtrail_client(&self, region: &str) -> aws_sdk_cloudtrail::Client {
        let mut builder = aws_sdk_cloudtrail::config::Builder::from(&self.config)
            .region(Region::new(region.to_string()));
        if let Some(url) = &self.cloudtrail_endpoint {
            builder = builder.endpoint_url(url);
        }
        if self.verbose {
            builder = builder.interceptor(trace::Calls);
        }
        aws_sdk_cloudtrail::Client::from_conf(builder.build())
    }

    fn sts_client(&self) -> aws_sdk_sts::Client {
        let mut builder = aws_sdk_sts::config::Builder::from(&self.config);
        if let Some(url) = &self.sts_endpoint {
            builder = builder.endpoint_url(url);
        }
        if self.verbose {
            builder = builder.interceptor(trace::Calls);
        }
        aws_sdk_sts::Client::from_conf(builder.build())
    }

    /// A store for `s3://bucket/prefix`, with a client in the bucket's own region.
    ///
    /// The bucket's region is asked (HeadBucket) while discovery's first folders are listed with
    /// the session's region: when the bucket is there (or the answer names no region, as with
    /// an S3-compatible endpoint), those listings are kept and the run starts one round trip
    /// sooner; otherwise they are dropped and made again in the bucket's region.
    pub async fn s3_store(&self, bucket: &str, prefix: &str) -> Result<S3Store, AwsError> {
        let client = self.s3_client(None);
        let home = self.region();
        let probe = S3Store::new(client.clone(), bucket, prefix, self.endpoint("s3", &home));
        let first = crate::layout::first_folders(crate::store::Store::root(&probe));
        let call = Call {
            service: "S3",
            operation: "HeadBucket",
            endpoint: &self.endpoint("s3", &home),
        };
        let (region, listed) = futures::join!(
            bucket_region(&client, bucket, call),
            futures::future::join_all(first.iter().map(|f| crate::store::Store::list(&probe, f)))
        );
        let store = match region? {
            Some(region) if region != home => S3Store::new(
                self.s3_client(Some(&region)),
                bucket,
                prefix,
                self.endpoint("s3", &region),
            ),
            _ => probe.primed(
                first
                    .into_iter()
                    .zip(listed)
                    .filter_map(|(folder, listed)| Some((folder, listed.ok()?)))
                    .collect(),
            ),
        };
        Ok(store.with_throttles(self.throttles.clone()))
    }

    /// [`Session::fetch_keys`] for each `(region, start, end)`, all regions at once, in order.
    pub async fn fetch_keys_all(
        &self,
        ranges: &[(String, Timestamp, Timestamp)],
    ) -> Vec<Result<Vec<TrustedKey>, AwsError>> {
        futures::future::join_all(
            ranges
                .iter()
                .map(|(region, start, end)| self.fetch_keys(region, *start, *end)),
        )
        .await
    }

    /// CloudTrail's public keys for `region`, valid at some time in `[start, end]`.
    pub async fn fetch_keys(
        &self,
        region: &str,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Vec<TrustedKey>, AwsError> {
        let endpoint = self.endpoint("cloudtrail", region);
        let call = Call {
            service: "CloudTrail",
            operation: "ListPublicKeys",
            endpoint: &endpoint,
        };
        let err = |cause: String| AwsError::Keys(format!("{call} (region {region}): {cause}"));
        let client = self.cloudtrail_client(region);
        let mut found = Vec::new();
        let mut token = None;
        loop {
            let out = client
                .list_public_keys()
                .start_time(to_aws_time(start))
                .end_time(to_aws_time(end))
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| err(error::cause(&e)))?;
            for key in out.public_key_list() {
                let value = key
                    .value()
                    .map(|b| b.as_ref().to_vec())
                    .ok_or_else(|| err("a key has no Value".into()))?;
                let der = keys::der_from_value(value).map_err(&err)?;
                let trusted = keys::trusted_key(
                    der,
                    Some(region),
                    key.validity_start_time().and_then(from_aws_time),
                    key.validity_end_time().and_then(from_aws_time),
                    key.fingerprint(),
                    &format!("CloudTrail ListPublicKeys in {region}"),
                )
                .map_err(&err)?;
                found.push(trusted);
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(found)
    }

    /// Uploads a simulated bucket (creating the bucket if needed), with each object's user
    /// metadata as `x-amz-meta-*`: fixture buckets for tests and drills. Never used on a bucket
    /// under verification.
    pub async fn upload(
        &self,
        bucket: &str,
        objects: &std::collections::BTreeMap<String, crate::simulate::SimObject>,
        jobs: usize,
    ) -> Result<usize, AwsError> {
        let err = |cause: String| AwsError::Bucket {
            bucket: bucket.to_string(),
            cause,
        };
        let endpoint = self.endpoint("s3", &self.region());
        let client = self.s3_client(None);
        if let Err(e) = client.create_bucket().bucket(bucket).send().await {
            let code = e.as_service_error().and_then(|s| s.code()).unwrap_or("");
            if code != "BucketAlreadyOwnedByYou" && code != "BucketAlreadyExists" {
                let call = Call {
                    service: "S3",
                    operation: "CreateBucket",
                    endpoint: &endpoint,
                };
                return Err(err(error::describe(call, &e)));
            }
        }
        let client = &client;
        let endpoint = &endpoint;
        let results = crate::verify::bounded(jobs, objects, |(key, object)| async move {
            client
                .put_object()
                .bucket(bucket)
                .key(key)
                .body(object.bytes.clone().into())
                .set_metadata(Some(object.metadata.clone().into_iter().collect()))
                .send()
                .await
                .map_err(|e| {
                    let call = Call {
                        service: "S3",
                        operation: "PutObject",
                        endpoint,
                    };
                    format!("{key}: {}", error::describe(call, &e))
                })
        })
        .await;
        let failed: Vec<String> = results.into_iter().filter_map(Result::err).collect();
        if let Some(first) = failed.first() {
            return Err(err(format!(
                "{} uploads failed, first {first}",
                failed.len()
            )));
        }
        Ok(objects.len())
    }

    /// The ARN of whoever the session runs as.
    pub async fn caller_identity(&self) -> Result<String, AwsError> {
        let endpoint = self.endpoint("sts", &self.region());
        let call = Call {
            service: "STS",
            operation: "GetCallerIdentity",
            endpoint: &endpoint,
        };
        let out = self
            .sts_client()
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| AwsError::Identity(error::describe(call, &e)))?;
        Ok(out.arn().unwrap_or("(unknown)").to_string())
    }
}

/// The one sentence for credentials that could not be had.
fn credentials_failure(
    err: &CredentialsError,
    options: &AwsOptions,
    profile: Option<&NamedProfile>,
    sts_endpoint: &str,
) -> String {
    let chain = error::error_chain(err);
    if let Some(role) = &options.role_arn {
        let external = if options.external_id.is_some() {
            "with an external ID"
        } else {
            "without an external ID"
        };
        if let Some(failed) = assume_role_failure(err) {
            let denied = matches!(error::status(failed), Some(403))
                || failed.as_service_error().and_then(|e| e.code()) == Some("AccessDenied");
            return format!(
                "STS AssumeRole at {sts_endpoint} {} for role {role} ({external}): {}",
                if denied { "was denied" } else { "failed" },
                error::cause(failed)
            );
        }
        if !matches!(err, CredentialsError::CredentialsNotLoaded(_)) {
            return format!(
                "cannot assume role {role} ({external}) with STS at {sts_endpoint}: {chain}"
            );
        }
    }
    if let Some(p) = profile.filter(|p| p.uses_sso()) {
        // An SSO profile whose token is missing or expired; a network failure on the way to
        // the SSO portal is said as what it is, below.
        let lower = chain.to_lowercase();
        if lower.contains("sso") || lower.contains("token") {
            return format!(
                "the SSO session of profile `{}` has expired or was never started: run `aws sso login --profile {}` ({chain})",
                p.name, p.name
            );
        }
    }
    match err {
        CredentialsError::CredentialsNotLoaded(_) => format!(
            "no AWS credentials found: looked in the environment (AWS_ACCESS_KEY_ID), {}{}, SSO, web identity, and the container's and instance's roles; pass --profile, set AWS_PROFILE or run `aws configure`",
            shared_files(),
            profile.map_or(String::new(), |p| format!(" (profile {})", p.name))
        ),
        _ => format!("cannot get AWS credentials: {chain}"),
    }
}

/// The bucket's region as S3 tells it (HeadBucket), `None` when it does not say.
async fn bucket_region(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    call: Call<'_>,
) -> Result<Option<String>, AwsError> {
    match client.head_bucket().bucket(bucket).send().await {
        Ok(out) => Ok(out.bucket_region().map(str::to_string)),
        Err(err) => {
            let header = err
                .raw_response()
                .and_then(|r| r.headers().get("x-amz-bucket-region"))
                .map(str::to_string);
            match (header, error::status(&err)) {
                (Some(region), _) => Ok(Some(region)),
                (None, Some(404)) => Err(AwsError::Bucket {
                    bucket: bucket.to_string(),
                    cause: format!("{call}: no such bucket (HTTP 404)"),
                }),
                // Without s3:ListBucket on the bucket itself, HeadBucket is refused while
                // the objects may still be readable: the listings say.
                (None, Some(403)) => Ok(None),
                (None, _) => Err(AwsError::Bucket {
                    bucket: bucket.to_string(),
                    cause: error::describe(call, &err),
                }),
            }
        }
    }
}

fn to_aws_time(t: Timestamp) -> aws_sdk_s3::primitives::DateTime {
    aws_sdk_s3::primitives::DateTime::from_secs(t.timestamp())
}

pub(crate) fn from_aws_time(t: &aws_sdk_s3::primitives::DateTime) -> Option<Timestamp> {
    chrono::DateTime::from_timestamp(t.secs(), 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_passwords_are_never_printed() {
        assert_eq!(
            without_password("http://user:secret@proxy.corp:3128"),
            "http://***@proxy.corp:3128"
        );
        assert_eq!(without_password("proxy.corp:3128"), "proxy.corp:3128");
        assert_eq!(without_password("u:p@proxy:1"), "***@proxy:1");
    }

    #[test]
    fn only_amazonaws_hosts_are_aws() {
        assert!(is_aws_host("https://s3.eu-west-1.amazonaws.com"));
        assert!(is_aws_host("https://s3.cn-north-1.amazonaws.com.cn/"));
        assert!(!is_aws_host("http://localhost:9000"));
        assert!(!is_aws_host("https://amazonaws.com.evil.example"));
    }
}
