//! `-v`: each AWS call on standard error, with its status and duration, as it happens; and
//! `--debug`: the SDK's own tracing.

use std::time::Instant;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

/// Prints one line per attempt of every call.
#[derive(Debug)]
pub struct Calls;

#[derive(Clone, Debug)]
struct Sent {
    at: Instant,
    method: String,
    uri: String,
}

impl Storable for Sent {
    type Storer = StoreReplace<Self>;
}

impl Intercept for Calls {
    fn name(&self) -> &'static str {
        "trailproof-verbose"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        // The query is shown, the signature headers are not.
        cfg.interceptor_state().store_put(Sent {
            at: Instant::now(),
            method: request.method().to_string(),
            uri: request.uri().to_string(),
        });
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = cfg
            .load::<Metadata>()
            .map_or(("?", "?"), |m| (m.service(), m.name()));
        let Some(sent) = cfg.load::<Sent>() else {
            return Ok(());
        };
        let outcome = match (context.response(), context.output_or_error()) {
            (Some(response), _) => format!("HTTP {}", response.status().as_u16()),
            (None, Some(Err(e))) => format!("failed: {}", super::error::error_chain(e)),
            (None, _) => "no answer".to_string(),
        };
        eprintln!(
            "trailproof: aws: {service} {operation} {} {} -> {outcome} ({} ms)",
            sent.method,
            sent.uri,
            sent.at.elapsed().as_millis()
        );
        Ok(())
    }
}

/// Counts the attempts S3 answered by throttling (503 SlowDown, 429), however the SDK's retries
/// then fared: what an adapting run backs off on.
#[derive(Debug)]
pub struct Throttles(pub std::sync::Arc<std::sync::atomic::AtomicU64>);

impl Intercept for Throttles {
    fn name(&self) -> &'static str {
        "trailproof-throttles"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(response) = context.response() {
            if matches!(response.status().as_u16(), 503 | 429) {
                self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        Ok(())
    }
}

/// Turns on the SDK's tracing (its crates and this one's) at debug level, on standard error.
pub fn debug() {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = Targets::new()
        .with_target("aws_config", LevelFilter::DEBUG)
        .with_target("aws_smithy_runtime", LevelFilter::DEBUG)
        .with_target("aws_smithy_http_client", LevelFilter::DEBUG)
        .with_target("aws_sigv4", LevelFilter::DEBUG)
        .with_target("aws_runtime", LevelFilter::DEBUG)
        .with_target("aws_sdk_s3", LevelFilter::DEBUG)
        .with_target("aws_sdk_sts", LevelFilter::DEBUG)
        .with_target("aws_sdk_cloudtrail", LevelFilter::DEBUG)
        .with_target("hyper_util", LevelFilter::DEBUG)
        .with_target("trailproof", LevelFilter::DEBUG);
    let _ = tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(filter)
        .try_init();
}
