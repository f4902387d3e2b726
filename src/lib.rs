//! trailproof proves, or disproves, that the CloudTrail log files in a bucket (or in a local
//! mirror of one) are exactly the files CloudTrail delivered.
//!
//! The pipeline runs one way: a [`store`] is listed to discover every scope (prefix, org id,
//! account, region, trail); each digest in range is read and checked on its own ([`digest`]);
//! each scope's digests are linked into chains ([`chain`], pure logic); every log a valid digest
//! lists is inflated and hashed ([`hash`]); log objects no digest lists are found; and everything
//! observed is collected into one [`report::Report`], rendered once. [`verify::verify`] is the
//! entry point; [`simulate`] makes signed, optionally damaged buckets for tests and drills.
#![forbid(unsafe_code)]

pub mod acquire;
pub mod aws;
pub mod chain;
pub mod cpu;
pub mod custody;
pub mod digest;
pub mod finding;
pub mod hash;
pub mod keys;
pub mod layout;
pub mod report;
pub mod shard;
pub mod simulate;
pub mod state;
pub mod store;
pub mod verify;
pub mod versions;

use chrono::{NaiveDate, TimeZone, Utc};

pub use layout::Timestamp;

/// A time argument that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a time: use RFC 3339 (2024-01-01T00:00:00Z) or a date (2024-01-01)")]
pub struct TimeError(pub String);

/// Parses an RFC 3339 / ISO 8601 time with an offset (`Z`, `+00:00`); a space may stand for `T`.
pub fn parse_rfc3339(s: &str) -> Result<Timestamp, TimeError> {
    let normal = s.trim().replacen(' ', "T", 1);
    chrono::DateTime::parse_from_rfc3339(&normal)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| TimeError(s.to_string()))
}

/// Parses a time given as RFC 3339 or as a bare date (midnight UTC at its start).
pub fn parse_time(s: &str) -> Result<Timestamp, TimeError> {
    parse_rfc3339(s).or_else(|_| {
        NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
            .map(|d| Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight")))
            .map_err(|_| TimeError(s.to_string()))
    })
}

/// Parses the end of a range: a bare date means the whole of that day.
pub fn parse_end_time(s: &str) -> Result<Timestamp, TimeError> {
    match parse_rfc3339(s) {
        Ok(t) => Ok(t),
        Err(_) => parse_time(s).map(|t| t + chrono::Duration::days(1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let t = parse_time("2024-01-01T01:02:03Z").unwrap();
        assert_eq!(t.timestamp(), 1_704_070_923);
        assert_eq!(parse_time("2024-01-01 01:02:03+00:00").unwrap(), t);
        assert_eq!(parse_time("2024-01-01").unwrap().timestamp(), 1_704_067_200);
        assert_eq!(
            parse_end_time("2024-01-01").unwrap().timestamp(),
            1_704_153_600
        );
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("2024-13-01").is_err());
    }
}
