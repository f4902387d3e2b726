//! What a failed AWS call says: the service, the operation, the endpoint, the HTTP status, the
//! error code and message, in the SDK's words rather than its `Debug` form. A body that is not
//! the service's protocol (a web page from a proxy, XML from an S3 server asked a CloudTrail
//! question) is shown by its content type and first bytes.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// One AWS call: which service and operation, sent where.
#[derive(Clone, Copy, Debug)]
pub struct Call<'a> {
    pub service: &'a str,
    pub operation: &'a str,
    pub endpoint: &'a str,
}

impl std::fmt::Display for Call<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} at {}",
            self.service, self.operation, self.endpoint
        )
    }
}

/// The first bytes of a body shown in a message.
const BODY_SHOWN: usize = 160;

/// Every message of an error and its sources, each once.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// The HTTP status, the error code and the message of an answer, or what the answer was when
/// it carried no error the service defines.
pub fn answer(
    status: u16,
    code: Option<&str>,
    message: Option<&str>,
    raw: &HttpResponse,
) -> String {
    let message = message.filter(|m| !m.is_empty());
    match (code.filter(|c| !c.is_empty()), message) {
        (Some(code), Some(message)) => format!("HTTP {status} {code}: {message}"),
        (Some(code), None) => format!("HTTP {status} {code}"),
        (None, _) => format!("HTTP {status}, {}", body_preview(raw)),
    }
}

/// "an answer of type T: first bytes", for a body that is not what the service speaks.
pub fn body_preview(raw: &HttpResponse) -> String {
    let content_type = raw
        .headers()
        .get("content-type")
        .unwrap_or("no content type");
    let bytes = raw.body().bytes().unwrap_or_default();
    if bytes.is_empty() {
        return format!("an empty answer ({content_type})");
    }
    let shown = &bytes[..bytes.len().min(BODY_SHOWN)];
    let text: String = String::from_utf8_lossy(shown)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!(
        "an answer that is not the service's protocol ({content_type}, {} bytes): {:?}{}",
        bytes.len(),
        text.trim(),
        if bytes.len() > BODY_SHOWN { "…" } else { "" }
    )
}

/// Why a call failed, without the call's name: `HTTP 403 AccessDenied: …`, `cannot connect:
/// …`, `timed out …`.
pub fn cause<E>(err: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::ServiceError(se) => answer(
            se.raw().status().as_u16(),
            se.err().code(),
            se.err().message(),
            se.raw(),
        ),
        SdkError::ResponseError(re) => format!(
            "HTTP {}, {} ({})",
            re.raw().status().as_u16(),
            body_preview(re.raw()),
            error_chain(err)
        ),
        SdkError::TimeoutError(_) => "timed out after retries".to_string(),
        SdkError::DispatchFailure(df) => {
            let what = if df.is_timeout() {
                "timed out connecting"
            } else if df.is_io() {
                "cannot connect"
            } else {
                "cannot send the request"
            };
            format!("{what}: {}", error_chain(err))
        }
        other => error_chain(other),
    }
}

/// `Service Operation at endpoint: cause`.
pub fn describe<E>(call: Call<'_>, err: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    format!("{call}: {}", cause(err))
}

/// The HTTP status of a failed call's answer, if one came.
pub fn status<E>(err: &SdkError<E, HttpResponse>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}
