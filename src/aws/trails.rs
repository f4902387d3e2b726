//! What CloudTrail says must be in a bucket (`--expect-from-cloudtrail`): the trails that
//! deliver there, from DescribeTrails in every enabled region, with GetTrailStatus (logging or
//! not, since when), the account's enabled regions (Account ListRegions) for multi-region
//! trails, and the organization's active accounts (Organizations ListAccounts) for an
//! organization trail. Asked with the run's own credentials or role.
//!
//! IAM actions: `cloudtrail:DescribeTrails`, `cloudtrail:GetTrailStatus`,
//! `account:ListRegions`, and for organization trails `organizations:ListAccounts`.

use std::collections::BTreeMap;

use super::error::{self, Call};
use super::{from_aws_time, AwsError, Session};
use crate::layout::Timestamp;

/// One trail delivering into the bucket, and what it makes CloudTrail deliver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trail {
    pub name: String,
    pub arn: String,
    /// The account that owns the trail.
    pub account: String,
    pub home_region: String,
    /// The key prefix the trail writes under (empty for none).
    pub prefix: String,
    pub multi_region: bool,
    pub organization: bool,
    pub validation: bool,
    pub logging: bool,
    pub started: Option<Timestamp>,
    pub stopped: Option<Timestamp>,
    /// The accounts whose logs it delivers: its own, or an organization's active accounts.
    pub accounts: Vec<String>,
    /// The regions whose logs it delivers.
    pub regions: Vec<String>,
}

impl Trail {
    /// "multi-region organization trail, logging since …" and the like, for messages.
    pub fn describe(&self) -> String {
        let kind = match (self.multi_region, self.organization) {
            (true, true) => "multi-region organization trail",
            (true, false) => "multi-region trail",
            (false, true) => "organization trail",
            (false, false) => "single-region trail",
        };
        let state = match (self.logging, self.started, self.stopped) {
            (true, Some(t), _) => format!("logging since {}", crate::layout::format_time(t)),
            (true, None, _) => "logging".to_string(),
            (false, _, Some(t)) => {
                format!("logging stopped at {}", crate::layout::format_time(t))
            }
            (false, _, None) => "not logging".to_string(),
        };
        format!("{} ({}), a {kind}, {state}", self.name, self.arn)
    }
}

/// The account in `arn:aws:cloudtrail:REGION:ACCOUNT:trail/NAME`.
fn arn_account(arn: &str) -> Option<&str> {
    arn.split(':')
        .nth(4)
        .filter(|a| crate::layout::is_account(a))
}

impl Session {
    /// The regions enabled for the session's account (Account ListRegions).
    pub async fn enabled_regions(&self) -> Result<Vec<String>, AwsError> {
        use aws_sdk_account::types::RegionOptStatus;
        let region = self.region();
        let endpoint = self.endpoint("account", &region);
        let call = Call {
            service: "Account",
            operation: "ListRegions",
            endpoint: &endpoint,
        };
        let mut builder = aws_sdk_account::config::Builder::from(&self.config);
        if let Some(url) = &self.account_endpoint {
            builder = builder.endpoint_url(url);
        }
        if self.verbose {
            builder = builder.interceptor(super::trace::Calls);
        }
        let client = aws_sdk_account::Client::from_conf(builder.build());
        let mut regions = Vec::new();
        let mut token = None;
        loop {
            let out = client
                .list_regions()
                .region_opt_status_contains(RegionOptStatus::Enabled)
                .region_opt_status_contains(RegionOptStatus::EnabledByDefault)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| AwsError::Expectation(error::describe(call, &e)))?;
            // Only the regions the account can log in (the answer is filtered by the request;
            // checked again here).
            regions.extend(
                out.regions()
                    .iter()
                    .filter(|r| {
                        r.region_opt_status().is_none_or(|s| {
                            matches!(
                                s,
                                RegionOptStatus::Enabled | RegionOptStatus::EnabledByDefault
                            )
                        })
                    })
                    .filter_map(|r| r.region_name())
                    .filter(|r| crate::layout::is_region(r))
                    .map(str::to_string),
            );
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        regions.sort();
        regions.dedup();
        Ok(regions)
    }

    /// The active accounts of the organization (Organizations ListAccounts).
    async fn organization_accounts(&self) -> Result<Vec<String>, AwsError> {
        let region = self.region();
        let endpoint = self.endpoint("organizations", &region);
        let call = Call {
            service: "Organizations",
            operation: "ListAccounts",
            endpoint: &endpoint,
        };
        let mut builder = aws_sdk_organizations::config::Builder::from(&self.config);
        if let Some(url) = &self.organizations_endpoint {
            builder = builder.endpoint_url(url);
        }
        if self.verbose {
            builder = builder.interceptor(super::trace::Calls);
        }
        let client = aws_sdk_organizations::Client::from_conf(builder.build());
        let mut accounts = Vec::new();
        let mut token = None;
        loop {
            let out = client
                .list_accounts()
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| AwsError::Expectation(error::describe(call, &e)))?;
            for a in out.accounts() {
                let active = a
                    .status()
                    .is_none_or(|s| *s == aws_sdk_organizations::types::AccountStatus::Active);
                if let (Some(id), true) = (a.id(), active) {
                    accounts.push(id.to_string());
                }
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        accounts.sort();
        accounts.dedup();
        Ok(accounts)
    }

    /// The trails delivering into `bucket` below `root` (a key prefix, empty for the whole
    /// bucket), from DescribeTrails in every enabled region, each with its status.
    pub async fn trails_for(&self, bucket: &str, root: &str) -> Result<Vec<Trail>, AwsError> {
        let regions = self.enabled_regions().await?;
        let described = futures::future::join_all(regions.iter().map(|r| self.describe_trails(r)))
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        // A trail is described in its home region (shadow trails are not asked for).
        let mut trails: BTreeMap<String, Trail> = BTreeMap::new();
        let root = root.trim_matches('/');
        for (region, list) in regions.iter().zip(described) {
            for t in list {
                let (Some(name), Some(arn)) = (t.name(), t.trail_arn()) else {
                    continue;
                };
                let home = t.home_region().unwrap_or(region);
                let prefix = t
                    .s3_key_prefix()
                    .unwrap_or("")
                    .trim_matches('/')
                    .to_string();
                let under_root =
                    root.is_empty() || prefix == root || prefix.starts_with(&format!("{root}/"));
                if home != region || t.s3_bucket_name() != Some(bucket) || !under_root {
                    continue;
                }
                let Some(account) = arn_account(arn) else {
                    continue;
                };
                trails.insert(
                    arn.to_string(),
                    Trail {
                        name: name.to_string(),
                        arn: arn.to_string(),
                        account: account.to_string(),
                        home_region: home.to_string(),
                        prefix,
                        multi_region: t.is_multi_region_trail().unwrap_or(false),
                        organization: t.is_organization_trail().unwrap_or(false),
                        validation: t.log_file_validation_enabled().unwrap_or(false),
                        logging: false,
                        started: None,
                        stopped: None,
                        accounts: vec![account.to_string()],
                        regions: if t.is_multi_region_trail().unwrap_or(false) {
                            regions.clone()
                        } else {
                            vec![home.to_string()]
                        },
                    },
                );
            }
        }
        let mut trails: Vec<Trail> = trails.into_values().collect();
        let statuses = futures::future::join_all(trails.iter().map(|t| self.trail_status(t))).await;
        for (trail, status) in trails.iter_mut().zip(statuses) {
            let (logging, started, stopped) = status?;
            trail.logging = logging;
            trail.started = started;
            trail.stopped = stopped;
        }
        if trails.iter().any(|t| t.organization) {
            let members = self.organization_accounts().await?;
            for t in trails.iter_mut().filter(|t| t.organization) {
                t.accounts = members.clone();
            }
        }
        Ok(trails)
    }

    fn cloudtrail_in(&self, region: &str) -> aws_sdk_cloudtrail::Client {
        self.cloudtrail_client(region)
    }

    async fn describe_trails(
        &self,
        region: &str,
    ) -> Result<Vec<aws_sdk_cloudtrail::types::Trail>, AwsError> {
        let endpoint = self.endpoint("cloudtrail", region);
        let call = Call {
            service: "CloudTrail",
            operation: "DescribeTrails",
            endpoint: &endpoint,
        };
        let out = self
            .cloudtrail_in(region)
            .describe_trails()
            .include_shadow_trails(false)
            .send()
            .await
            .map_err(|e| {
                AwsError::Expectation(format!("{} (region {region})", error::describe(call, &e)))
            })?;
        Ok(out.trail_list().to_vec())
    }

    async fn trail_status(
        &self,
        trail: &Trail,
    ) -> Result<(bool, Option<Timestamp>, Option<Timestamp>), AwsError> {
        let endpoint = self.endpoint("cloudtrail", &trail.home_region);
        let call = Call {
            service: "CloudTrail",
            operation: "GetTrailStatus",
            endpoint: &endpoint,
        };
        let out = self
            .cloudtrail_in(&trail.home_region)
            .get_trail_status()
            .name(&trail.arn)
            .send()
            .await
            .map_err(|e| {
                AwsError::Expectation(format!(
                    "{} (trail {})",
                    error::describe(call, &e),
                    trail.arn
                ))
            })?;
        Ok((
            out.is_logging().unwrap_or(false),
            out.start_logging_time().and_then(from_aws_time),
            out.stop_logging_time().and_then(from_aws_time),
        ))
    }
}
