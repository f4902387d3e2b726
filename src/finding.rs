//! What a run observes, as data: findings (evidence about the trail) and unverified objects
//! (what could not be decided, and why). Neither is an error of the run: a run that finds
//! tampering has done its job.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::layout::{format_time, Location, Timestamp};

/// The kinds of finding, named as a user sees them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    DigestMissing,
    DigestMalformed,
    DigestRelocated,
    DigestSignatureInvalid,
    DigestKeyUnknown,
    DigestKeyExpired,
    ChainLinkMismatch,
    ChainRestart,
    ChainTailGap,
    LogMissing,
    LogModified,
    LogCorrupt,
    LogUnlisted,
    LogPending,
    ScopeMissing,
    ObjectRewritten,
    DigestChangedSinceVerified,
    LogChangedSinceVerified,
}

impl Kind {
    pub const ALL: [Kind; 18] = [
        Kind::DigestMissing,
        Kind::DigestMalformed,
        Kind::DigestRelocated,
        Kind::DigestSignatureInvalid,
        Kind::DigestKeyUnknown,
        Kind::DigestKeyExpired,
        Kind::ChainLinkMismatch,
        Kind::ChainRestart,
        Kind::ChainTailGap,
        Kind::LogMissing,
        Kind::LogModified,
        Kind::LogCorrupt,
        Kind::LogUnlisted,
        Kind::LogPending,
        Kind::ScopeMissing,
        Kind::ObjectRewritten,
        Kind::DigestChangedSinceVerified,
        Kind::LogChangedSinceVerified,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::DigestMissing => "digest_missing",
            Kind::DigestMalformed => "digest_malformed",
            Kind::DigestRelocated => "digest_relocated",
            Kind::DigestSignatureInvalid => "digest_signature_invalid",
            Kind::DigestKeyUnknown => "digest_key_unknown",
            Kind::DigestKeyExpired => "digest_key_expired",
            Kind::ChainLinkMismatch => "chain_link_mismatch",
            Kind::ChainRestart => "chain_restart",
            Kind::ChainTailGap => "chain_tail_gap",
            Kind::LogMissing => "log_missing",
            Kind::LogModified => "log_modified",
            Kind::LogCorrupt => "log_corrupt",
            Kind::LogUnlisted => "log_unlisted",
            Kind::LogPending => "log_pending",
            Kind::ScopeMissing => "scope_missing",
            Kind::ObjectRewritten => "object_rewritten",
            Kind::DigestChangedSinceVerified => "digest_changed_since_verified",
            Kind::LogChangedSinceVerified => "log_changed_since_verified",
        }
    }

    /// The kind named `name` (`log_modified`, …).
    pub fn named(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Errors are evidence of tampering or loss; a restart or a short tail is a warning (logging
    /// may simply have been off), unless `strict` asks for a stopped trail to count as loss.
    pub fn severity(self, strict: bool) -> Severity {
        match self {
            Kind::ChainRestart => Severity::Warning,
            Kind::ChainTailGap if strict => Severity::Error,
            Kind::ChainTailGap => Severity::Warning,
            Kind::LogPending => Severity::Info,
            // Its current version verifies; that CloudTrail's write was not the last is a
            // warning a reader must see.
            Kind::ObjectRewritten => Severity::Warning,
            _ => Severity::Error,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        })
    }
}

/// A span of time `[start, end]`, serialized as a two-element array.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Window(pub Timestamp, pub Timestamp);

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} .. {}", format_time(self.0), format_time(self.1))
    }
}

/// One observed problem, with the evidence for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: Kind,
    pub severity: Severity,
    pub account: String,
    pub region: String,
    pub trail: Option<String>,
    /// The object the finding is about; `None` for a digest whose key cannot be known (an
    /// earlier one of several consecutive deleted digests).
    pub key: Option<String>,
    /// One sentence a reader can act on.
    pub message: String,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub prefix: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub org_id: Option<String>,
    /// The time the finding is about (a log's name time, a window's start): the sort order.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub time: Option<Timestamp>,
    /// Hours left uncovered (missing digest, restart, tail gap) or the digest's own window.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub window: Option<Window>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub expected: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub actual: Option<String>,
    /// The digest that lists the log, or that refers to the missing digest.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub digest: Option<String>,
    /// Log objects found inside the window of a missing digest.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub logs: Vec<String>,
    /// `--versions`: an older version of the object that is what CloudTrail delivered.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub recoverable_version: Option<VersionRef>,
    /// `--versions`: when the object was deleted (its delete marker), and by whom if S3 says.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub deleted_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub deleted_by: Option<String>,
    /// `--versions`: how many older versions were checked, when none matched.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub versions_checked: Option<usize>,
    /// `--versions`: the object's version timeline, oldest first (`object_rewritten`).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub versions: Vec<VersionRef>,
}

/// One version of an object, as ListObjectVersions gives it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRef {
    pub version_id: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_modified: Option<Timestamp>,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub delete_marker: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub etag: Option<String>,
}

impl Finding {
    pub fn new(
        kind: Kind,
        strict: bool,
        location: &Location,
        trail: Option<&str>,
        key: Option<&str>,
        message: impl Into<String>,
    ) -> Finding {
        Finding {
            kind,
            severity: kind.severity(strict),
            account: location.account.clone(),
            region: location.region.clone(),
            trail: trail.map(str::to_string),
            key: key.map(str::to_string),
            message: message.into(),
            prefix: location.prefix.clone(),
            org_id: location.org_id.clone(),
            time: None,
            window: None,
            expected: None,
            actual: None,
            digest: None,
            logs: Vec::new(),
            recoverable_version: None,
            deleted_at: None,
            deleted_by: None,
            versions_checked: None,
            versions: Vec::new(),
        }
    }

    /// The hash a digest recorded, for a finding without an actual one (a missing log).
    pub fn expecting(mut self, expected: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self
    }

    pub fn at(mut self, time: Timestamp) -> Self {
        self.time = Some(time);
        self
    }

    pub fn window(mut self, window: Window) -> Self {
        self.time = Some(window.0);
        self.window = Some(window);
        self
    }

    pub fn hashes(mut self, expected: impl Into<String>, actual: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self.actual = Some(actual.into());
        self
    }

    pub fn digest(mut self, digest: &str) -> Self {
        self.digest = Some(digest.to_string());
        self
    }

    /// The order findings are reported in, so two runs over the same data diff cleanly.
    pub fn sort_key(&self) -> impl Ord + '_ {
        (
            &self.account,
            &self.region,
            &self.trail,
            &self.prefix,
            &self.org_id,
            self.time,
            &self.key,
            self.kind,
        )
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.severity, self.kind, self.message)
    }
}

/// An object that could not be checked, and why. Never a finding: "could not read" is not
/// "missing".
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
pub struct Unverified {
    pub key: String,
    pub cause: String,
}
