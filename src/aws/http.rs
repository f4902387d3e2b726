//! The HTTP client every AWS call goes through, configured as the AWS CLI is: the proxies of
//! `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY`, and a CA bundle (`--ca-bundle`, `AWS_CA_BUNDLE`, or the
//! profile's `ca_bundle`) that replaces the system's roots, as it does for the CLI.

use std::path::{Path, PathBuf};

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
use aws_smithy_http_client::{Builder, Connector};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// A CA bundle larger than this is refused: bundles of every public CA are ~250 KB.
const MAX_BUNDLE_BYTES: u64 = 16 * 1024 * 1024;

/// Where the trusted certificate authorities come from.
#[derive(Clone, Debug)]
pub enum Roots {
    /// The system's.
    System,
    /// Only the certificates in this PEM file, and where the path came from.
    Bundle { path: PathBuf, from: &'static str },
}

/// Reads a PEM CA bundle, refusing one that holds no certificate.
fn read_bundle(path: &Path, from: &str) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path)
        .map_err(|e| format!("cannot read the CA bundle {} ({from}): {e}", path.display()))?;
    let mut pem = Vec::new();
    use std::io::Read;
    file.take(MAX_BUNDLE_BYTES + 1)
        .read_to_end(&mut pem)
        .map_err(|e| format!("cannot read the CA bundle {} ({from}): {e}", path.display()))?;
    if pem.len() as u64 > MAX_BUNDLE_BYTES {
        return Err(format!(
            "the CA bundle {} ({from}) is larger than {MAX_BUNDLE_BYTES} bytes",
            path.display()
        ));
    }
    // Checked here as the TLS library will read it, which it does only at the first
    // connection, and then without a way to say what is wrong.
    use rustls_pki_types::pem::PemObject;
    let certificates = rustls_pki_types::CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            format!(
                "the CA bundle {} ({from}) is not valid PEM: {e}",
                path.display()
            )
        })?;
    if certificates.is_empty() {
        return Err(format!(
            "the CA bundle {} ({from}) holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    let mut roots = rustls::RootCertStore::empty();
    for (n, certificate) in certificates.into_iter().enumerate() {
        roots.add(certificate).map_err(|e| {
            format!(
                "the CA bundle {} ({from}): certificate {} cannot be a trust anchor: {e}",
                path.display(),
                n + 1
            )
        })?;
    }
    Ok(pem)
}

/// The client, or why the CA bundle cannot be used.
pub fn client(roots: &Roots) -> Result<SharedHttpClient, String> {
    let store = match roots {
        Roots::System => TrustStore::empty().with_native_roots(true),
        Roots::Bundle { path, from } => {
            TrustStore::empty().with_pem_certificate(read_bundle(path, from)?)
        }
    };
    let context = TlsContext::builder()
        .with_trust_store(store)
        .build()
        .map_err(|e| format!("cannot use the CA bundle: {e}"))?;
    let proxies = ProxyConfig::from_env();
    Ok(
        Builder::new().build_with_connector_fn(move |settings, components| {
            let mut builder = Connector::builder().enable_tcp_nodelay(true);
            if let Some(settings) = settings {
                builder = builder.connector_settings(settings.clone());
            }
            if let Some(sleep) = components.and_then(|c| c.sleep_impl()) {
                builder = builder.sleep_impl(sleep);
            }
            builder
                .proxy_config(proxies.clone())
                .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
                .tls_context(context.clone())
                .build()
        }),
    )
}
