//! AWS sessions and the two calls that are not S3: CloudTrail `ListPublicKeys` (the keys that
//! sign digests) and STS `GetCallerIdentity` (who made an evidence copy).
//!
//! Credentials come from the SDK's default chain (environment, profile, SSO, instance role), a
//! named `--profile`, or a role assumed with `--role-arn`/`--external-id`: the cross-account
//! reader role a log-bucket owner grants an auditor. `--endpoint-url` points every client at an
//! S3-compatible server (path-style addressing). The bucket's own region is asked of S3, not
//! guessed.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::error::ProvideErrorMetadata;

use crate::keys::{self, TrustedKey};
use crate::layout::Timestamp;
use crate::store::S3Store;

/// How to reach AWS.
#[derive(Clone, Debug, Default)]
pub struct AwsOptions {
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
    pub role_arn: Option<String>,
    pub external_id: Option<String>,
    pub session_name: Option<String>,
    /// The SDK's region; default from the environment or profile, else `us-east-1`.
    pub region: Option<String>,
    /// Fixed credentials (access key id, secret), instead of the default chain.
    pub static_credentials: Option<(String, String)>,
}

/// Why AWS could not be used at all. Each names what was asked.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    #[error("s3://{bucket}: {cause}")]
    Bucket { bucket: String, cause: String },
    #[error("CloudTrail ListPublicKeys in {region}: {cause}")]
    Keys { region: String, cause: String },
    #[error("STS GetCallerIdentity: {0}")]
    Identity(String),
}

/// A configured session.
#[derive(Clone, Debug)]
pub struct Session {
    config: SdkConfig,
    path_style: bool,
}

fn cause<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    err: &aws_sdk_s3::error::SdkError<E, R>,
) -> String {
    match err {
        aws_sdk_s3::error::SdkError::ServiceError(se) => format!(
            "{} {}",
            se.err().code().unwrap_or("error"),
            se.err().message().unwrap_or("")
        )
        .trim()
        .to_string(),
        other => {
            let mut out = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(s) = source {
                out.push_str(&format!(": {s}"));
                source = s.source();
            }
            out
        }
    }
}

fn to_aws_time(t: Timestamp) -> aws_sdk_s3::primitives::DateTime {
    aws_sdk_s3::primitives::DateTime::from_secs(t.timestamp())
}

fn from_aws_time(t: &aws_sdk_s3::primitives::DateTime) -> Option<Timestamp> {
    chrono::DateTime::from_timestamp(t.secs(), 0)
}

/// Attempts per request (the first and its retries) for throttling, 5xx, timeouts and resets:
/// with a third of all answers failing, ten in a row fail once in some 60,000 requests.
const MAX_ATTEMPTS: u32 = 10;

impl Session {
    pub async fn connect(options: &AwsOptions) -> Session {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
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
        if let Some(url) = &options.endpoint_url {
            loader = loader.endpoint_url(url);
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
        if let Some(role) = &options.role_arn {
            let mut builder = aws_config::sts::AssumeRoleProvider::builder(role)
                .session_name(options.session_name.as_deref().unwrap_or("trailproof"))
                .configure(&config);
            if let Some(id) = &options.external_id {
                builder = builder.external_id(id);
            }
            let provider = builder.build().await;
            config = config
                .into_builder()
                .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(provider))
                .build();
        }
        Session {
            config,
            path_style: options.endpoint_url.is_some(),
        }
    }

    /// The SDK's region for this session.
    pub fn region(&self) -> String {
        self.config
            .region()
            .map_or("us-east-1".to_string(), |r| r.to_string())
    }

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
        if let Some(r) = region {
            builder = builder.region(Region::new(r.to_string()));
        }
        aws_sdk_s3::Client::from_conf(builder.build())
    }

    /// A store for `s3://bucket/prefix`, with a client in the bucket's own region.
    ///
    /// The bucket's region is asked (HeadBucket) while discovery's first folders are listed with
    /// the session's region: when the bucket is there (or the answer names no region, as with
    /// an S3-compatible endpoint), those listings are kept and the run starts one round trip
    /// sooner; otherwise they are dropped and made again in the bucket's region.
    pub async fn s3_store(&self, bucket: &str, prefix: &str) -> Result<S3Store, AwsError> {
        let client = self.s3_client(None);
        let probe = S3Store::new(client.clone(), bucket, prefix);
        let first = crate::layout::first_folders(crate::store::Store::root(&probe));
        let (region, listed) = futures::join!(
            bucket_region(&client, bucket),
            futures::future::join_all(first.iter().map(|f| crate::store::Store::list(&probe, f)))
        );
        match region? {
            Some(region) if region != self.region() => {
                Ok(S3Store::new(self.s3_client(Some(&region)), bucket, prefix))
            }
            _ => Ok(probe.primed(
                first
                    .into_iter()
                    .zip(listed)
                    .filter_map(|(folder, listed)| Some((folder, listed.ok()?)))
                    .collect(),
            )),
        }
    }

    /// CloudTrail's public keys for `region`, valid at some time in `[start, end]`.
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

    pub async fn fetch_keys(
        &self,
        region: &str,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Vec<TrustedKey>, AwsError> {
        let err = |cause: String| AwsError::Keys {
            region: region.to_string(),
            cause,
        };
        let client = aws_sdk_cloudtrail::Client::from_conf(
            aws_sdk_cloudtrail::config::Builder::from(&self.config)
                .region(Region::new(region.to_string()))
                .build(),
        );
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
                .map_err(|e| err(cause(&e)))?;
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
        let client = self.s3_client(None);
        if let Err(e) = client.create_bucket().bucket(bucket).send().await {
            let code = e.as_service_error().and_then(|s| s.code()).unwrap_or("");
            if code != "BucketAlreadyOwnedByYou" && code != "BucketAlreadyExists" {
                return Err(err(format!("cannot create it: {}", cause(&e))));
            }
        }
        let client = &client;
        let results = crate::verify::bounded(jobs, objects, |(key, object)| async move {
            client
                .put_object()
                .bucket(bucket)
                .key(key)
                .body(object.bytes.clone().into())
                .set_metadata(Some(object.metadata.clone().into_iter().collect()))
                .send()
                .await
                .map_err(|e| format!("{key}: {}", cause(&e)))
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
        let client = aws_sdk_sts::Client::new(&self.config);
        let out = client
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| AwsError::Identity(cause(&e)))?;
        Ok(out.arn().unwrap_or("(unknown)").to_string())
    }
}

/// The bucket's region as S3 tells it (HeadBucket), `None` when it does not say.
async fn bucket_region(
    client: &aws_sdk_s3::Client,
    bucket: &str,
) -> Result<Option<String>, AwsError> {
    match client.head_bucket().bucket(bucket).send().await {
        Ok(out) => Ok(out.bucket_region().map(str::to_string)),
        Err(err) => {
            let header = err
                .raw_response()
                .and_then(|r| r.headers().get("x-amz-bucket-region"))
                .map(str::to_string);
            let status = err.raw_response().map(|r| r.status().as_u16());
            match (header, status) {
                (Some(region), _) => Ok(Some(region)),
                (None, Some(404)) => Err(AwsError::Bucket {
                    bucket: bucket.to_string(),
                    cause: "no such bucket (404)".into(),
                }),
                (None, Some(403)) => Ok(None),
                (None, _) => Err(AwsError::Bucket {
                    bucket: bucket.to_string(),
                    cause: cause(&err),
                }),
            }
        }
    }
}
