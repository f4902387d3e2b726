//! The CloudTrail key grammar: where CloudTrail puts digest and log files, and how to read
//! account, region, trail and time back out of a key.
//!
//! Keys are parsed from the right, because everything left of `AWSLogs/` is a free-form prefix
//! chosen by the trail owner, and a trail name may itself contain `_`: regions and timestamps have
//! fixed shapes, so the trail name is whatever lies between them.

use chrono::{DateTime, TimeZone, Utc};
use chrono::{Duration, NaiveDate};
use serde::Serialize;

/// A point in time, always UTC.
pub type Timestamp = DateTime<Utc>;

/// Where one account's logs for one source region are delivered: the folder
/// `[<prefix>/]AWSLogs/[<org id>/]<account>/CloudTrail/<region>/`. Trails that deliver into the
/// same location share one pool of log names, because log names carry no trail name.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
pub struct Location {
    /// The key prefix before `AWSLogs/`, without a trailing `/`; empty for none.
    pub prefix: String,
    pub org_id: Option<String>,
    pub account: String,
    pub region: String,
}

impl Location {
    /// `[<prefix>/]AWSLogs/[<org id>/]<account>/`
    pub fn account_root(&self) -> String {
        let mut root = String::new();
        if !self.prefix.is_empty() {
            root.push_str(&self.prefix);
            root.push('/');
        }
        root.push_str("AWSLogs/");
        if let Some(org) = &self.org_id {
            root.push_str(org);
            root.push('/');
        }
        root.push_str(&self.account);
        root.push('/');
        root
    }

    /// The folder holding this location's digest date folders.
    pub fn digest_folder(&self) -> String {
        format!("{}CloudTrail-Digest/{}/", self.account_root(), self.region)
    }

    /// The folder holding this location's log date folders.
    pub fn log_folder(&self) -> String {
        format!("{}CloudTrail/{}/", self.account_root(), self.region)
    }
}

/// One chain owner: the digests one trail writes for one source region.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
pub struct ScopeId {
    #[serde(flatten)]
    pub location: Location,
    pub trail: String,
    /// The trail's home region, from the digest names; two trails of one name in different home
    /// regions are different trails.
    pub home_region: String,
}

/// What a digest key says about the digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct DigestName {
    pub scope: ScopeId,
    /// The digest's end time, from the name.
    pub end: Timestamp,
    pub backfill: bool,
}

/// What a log key says about the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogName {
    pub location: Location,
    /// The time in the name, close to delivery time (minute precision).
    pub time: Timestamp,
}

const DIGEST_TIME: &str = "%Y%m%dT%H%M%SZ";
const LOG_TIME: &str = "%Y%m%dT%H%MZ";

/// An AWS account id: twelve digits.
pub fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// An AWS Organizations id: `o-` and 10 to 32 lowercase letters or digits.
pub fn is_org_id(s: &str) -> bool {
    s.strip_prefix("o-").is_some_and(|rest| {
        (10..=32).contains(&rest.len())
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

/// A region name such as `us-east-1`, `us-gov-west-1` or `cn-northwest-1`.
pub fn is_region(s: &str) -> bool {
    let lower = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase());
    let Some((head, number)) = s.rsplit_once('-') else {
        return false;
    };
    let Some((area, middle)) = head.split_once('-') else {
        return false;
    };
    area.len() == 2
        && lower(area)
        && middle.split('-').all(lower)
        && !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
}

/// Where CloudTrail writes, below any custom prefix.
pub const LOG_ROOT: &str = "AWSLogs/";

/// The folders discovery lists first, at once, below `root` (a source's root): the root, and
/// `AWSLogs/` below it unless the root is that folder. Most sources keep their trails right
/// there, so it is listed along with the root rather than a round trip after it (and its
/// listing is used only if the root has it).
pub fn first_folders(root: &str) -> Vec<String> {
    let mut folders = vec![root.to_string()];
    if last_segment(root) != "AWSLogs" {
        folders.push(format!("{root}{LOG_ROOT}"));
    }
    folders
}

/// The last segment of a folder (`a/b/` gives `b`).
pub fn last_segment(folder: &str) -> &str {
    folder
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("")
}

/// True when `key` is a plain relative key of the kind CloudTrail writes: no leading `/`, no
/// empty, `.` or `..` segment, no backslash or control character. Keys that are not clean are
/// never opened: in a local mirror they could resolve outside the folder.
pub fn is_clean_key(key: &str) -> bool {
    !key.is_empty()
        && !key.starts_with('/')
        && !key.contains('\\')
        && !key.chars().any(|c| c.is_control())
        && key
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
}

/// Splits `…/AWSLogs/[org/]<account>/<kind>/<region>/<YYYY>/<MM>/<DD>/<file>` from the right,
/// returning the location, the kind folder and the file name.
fn split_key(key: &str) -> Option<(Location, &str, &str)> {
    let segs: Vec<&str> = key.split('/').collect();
    let n = segs.len();
    if n < 8 {
        return None;
    }
    let file = segs[n - 1];
    let (y, m, d) = (segs[n - 4], segs[n - 3], segs[n - 2]);
    let ok_date = y.len() == 4
        && m.len() == 2
        && d.len() == 2
        && [y, m, d]
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_digit()));
    let region = segs[n - 5];
    let kind = segs[n - 6];
    let account = segs[n - 7];
    if !ok_date || !is_region(region) || !is_account(account) {
        return None;
    }
    let (org_id, logs_at) = if n >= 9 && is_org_id(segs[n - 8]) && segs[n - 9] == "AWSLogs" {
        (Some(segs[n - 8].to_string()), n - 9)
    } else if segs[n - 8] == "AWSLogs" {
        (None, n - 8)
    } else {
        return None;
    };
    let prefix = segs[..logs_at].join("/");
    Some((
        Location {
            prefix,
            org_id,
            account: account.to_string(),
            region: region.to_string(),
        },
        kind,
        file,
    ))
}

/// Parses a key's compact UTC time, `20240101T0105Z` (logs) or `20240101T010000Z` (digests):
/// exactly these digits, nothing more.
fn parse_time(s: &str, with_seconds: bool) -> Option<Timestamp> {
    let b = s.as_bytes();
    let len = if with_seconds { 16 } else { 14 };
    if b.len() != len || b[8] != b'T' || b[len - 1] != b'Z' {
        return None;
    }
    let number = |from: usize, to: usize| -> Option<u32> {
        b[from..to].iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let date = chrono::NaiveDate::from_ymd_opt(number(0, 4)? as i32, number(4, 6)?, number(6, 8)?)?;
    let seconds = if with_seconds { number(13, 15)? } else { 0 };
    let time = date.and_hms_opt(number(9, 11)?, number(11, 13)?, seconds)?;
    Some(Utc.from_utc_datetime(&time))
}

/// Parses a digest key; `None` when the key is not shaped like one.
pub fn parse_digest_key(key: &str) -> Option<DigestName> {
    let (location, kind, file) = split_key(key)?;
    if kind != "CloudTrail-Digest" {
        return None;
    }
    let stem = file.strip_suffix(".json.gz")?;
    let (stem, backfill) = match stem.strip_suffix("_backfill") {
        Some(s) => (s, true),
        None => (stem, false),
    };
    let rest = stem
        .strip_prefix(location.account.as_str())?
        .strip_prefix("_CloudTrail-Digest_")?
        .strip_prefix(location.region.as_str())?
        .strip_prefix('_')?;
    let (rest, time) = rest.rsplit_once('_')?;
    let end = parse_time(time, true)?;
    let (trail, home_region) = rest.rsplit_once('_')?;
    if trail.is_empty() || !is_region(home_region) {
        return None;
    }
    Some(DigestName {
        scope: ScopeId {
            location,
            trail: trail.to_string(),
            home_region: home_region.to_string(),
        },
        end,
        backfill,
    })
}

/// Parses a log key; `None` when the key is not shaped like one.
pub fn parse_log_key(key: &str) -> Option<LogName> {
    let (location, kind, file) = split_key(key)?;
    if kind != "CloudTrail" {
        return None;
    }
    let stem = file.strip_suffix(".json.gz")?;
    let rest = stem
        .strip_prefix(location.account.as_str())?
        .strip_prefix("_CloudTrail_")?
        .strip_prefix(location.region.as_str())?
        .strip_prefix('_')?;
    let (time, unique) = rest.split_once('_')?;
    if unique.is_empty() {
        return None;
    }
    let time = parse_time(time, false)?;
    Some(LogName { location, time })
}

/// The key CloudTrail gives a digest.
pub fn digest_key(scope: &ScopeId, end: Timestamp, backfill: bool) -> String {
    format!(
        "{}{}/{}_CloudTrail-Digest_{}_{}_{}_{}{}.json.gz",
        scope.location.digest_folder(),
        end.format("%Y/%m/%d"),
        scope.location.account,
        scope.location.region,
        scope.trail,
        scope.home_region,
        end.format(DIGEST_TIME),
        if backfill { "_backfill" } else { "" }
    )
}

/// The key CloudTrail gives a log file.
pub fn log_key(location: &Location, time: Timestamp, unique: &str) -> String {
    format!(
        "{}{}/{}_CloudTrail_{}_{}_{}.json.gz",
        location.log_folder(),
        time.format("%Y/%m/%d"),
        location.account,
        location.region,
        time.format(LOG_TIME),
        unique
    )
}

/// Formats a time the way CloudTrail writes it in digest bodies: `2024-01-01T01:00:00Z`.
pub fn format_time(t: Timestamp) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// What a source prefix that reaches into `AWSLogs/` names, as the S3 console's path to an
/// account or region does (`…/AWSLogs/[o-…/]<account>[/CloudTrail[-Digest]/<region>]`): where
/// discovery starts (the prefix up to `AWSLogs/`) and the scope the rest selects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrefixScope {
    pub root: String,
    pub org_id: Option<String>,
    pub account: Option<String>,
    pub region: Option<String>,
}

/// The scope a prefix names below `AWSLogs/`, `Ok(None)` for a prefix that stops above it, or
/// why the rest is not a CloudTrail scope.
pub fn scope_of_prefix(prefix: &str) -> Result<Option<PrefixScope>, String> {
    let segs: Vec<&str> = prefix.split('/').filter(|s| !s.is_empty()).collect();
    let Some(at) = segs.iter().rposition(|s| *s == "AWSLogs") else {
        return Ok(None);
    };
    if at + 1 == segs.len() {
        return Ok(None);
    }
    let mut scope = PrefixScope {
        root: segs[..=at].iter().map(|s| format!("{s}/")).collect(),
        ..PrefixScope::default()
    };
    let mut rest = segs[at + 1..].iter().copied().peekable();
    if let Some(org) = rest.next_if(|s| is_org_id(s)) {
        scope.org_id = Some(org.to_string());
    }
    match rest.next() {
        None => return Ok(Some(scope)),
        Some(account) if is_account(account) => scope.account = Some(account.to_string()),
        Some(other) => {
            return Err(format!(
                "the source prefix {prefix:?}: {other:?} is not an account id (12 digits) or organization id (o-…) below AWSLogs/"
            ))
        }
    }
    match rest.next() {
        None => return Ok(Some(scope)),
        Some("CloudTrail" | "CloudTrail-Digest") => {}
        Some(other) => {
            return Err(format!(
                "the source prefix {prefix:?}: trailproof checks CloudTrail/ and CloudTrail-Digest/ together, and {other:?} is neither"
            ))
        }
    }
    match rest.next() {
        None => return Ok(Some(scope)),
        Some(region) if is_region(region) => scope.region = Some(region.to_string()),
        Some(other) => {
            return Err(format!(
                "the source prefix {prefix:?}: {other:?} is not a region"
            ))
        }
    }
    match rest.next() {
        None => Ok(Some(scope)),
        Some(_) => Err(format!(
            "the source prefix {prefix:?} goes below a region's folder: trailproof checks whole regions; choose the days with --start and --end"
        )),
    }
}

/// The location of any key below `…/AWSLogs/[org/]<account>/<kind>/<region>/`.
pub fn location_of(key: &str) -> Option<Location> {
    let segs: Vec<&str> = key.split('/').collect();
    let at = segs.iter().rposition(|s| *s == "AWSLogs")?;
    let rest = &segs[at + 1..];
    let (org_id, rest) = match rest.first() {
        Some(o) if is_org_id(o) => (Some(o.to_string()), &rest[1..]),
        _ => (None, rest),
    };
    match rest {
        [account, _kind, region, ..] if is_account(account) && is_region(region) => {
            Some(Location {
                prefix: segs[..at].join("/"),
                org_id,
                account: account.to_string(),
                region: region.to_string(),
            })
        }
        _ => None,
    }
}

/// How long after a log's name time CloudTrail may deliver it (and so list it in a digest): a
/// digest may list logs up to this long after its end.
pub const DELIVERY_DELAY: Duration = Duration::minutes(15);

// --- date folders: `YYYY/`, `YYYY/MM/`, `YYYY/MM/DD/` below a location's folders -------------

/// The hours whose logs the digests of dates `first` to `last` may list: those digests end on
/// those dates, so they cover from an hour before the first midnight, and list logs up to the
/// delivery delay before their end.
pub fn date_hours(first: NaiveDate, last: NaiveDate) -> (Timestamp, Timestamp) {
    let midnight = |d: NaiveDate| d.and_time(chrono::NaiveTime::MIN).and_utc();
    let after = last.succ_opt().unwrap_or(last);
    (
        midnight(first) - Duration::hours(1),
        midnight(after) + DELIVERY_DELAY,
    )
}

/// The hours of a digest date folder below a location's digest folder: `""` (all of them),
/// `YYYY/`, `YYYY/MM/` or `YYYY/MM/DD/`.
pub fn folder_hours(rest: &str) -> Option<(Timestamp, Timestamp)> {
    let parts: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    let num = |i: usize| parts.get(i).and_then(|p| p.parse::<u32>().ok());
    let (first, last) = match parts.as_slice() {
        [""] => return Some((Timestamp::MIN_UTC, Timestamp::MAX_UTC)),
        [_] => {
            let y = num(0)? as i32;
            (
                NaiveDate::from_ymd_opt(y, 1, 1)?,
                NaiveDate::from_ymd_opt(y, 12, 31)?,
            )
        }
        [_, _] => {
            let (y, m) = (num(0)? as i32, num(1)?);
            let first = NaiveDate::from_ymd_opt(y, m, 1)?;
            let next = first.checked_add_months(chrono::Months::new(1))?;
            (first, next.pred_opt()?)
        }
        [_, _, _] => {
            let d = NaiveDate::from_ymd_opt(num(0)? as i32, num(1)?, num(2)?)?;
            (d, d)
        }
        _ => return None,
    };
    Some(date_hours(first, last))
}

/// Whether a date folder of `depth` levels (`YYYY/`, `YYYY/MM/`, `YYYY/MM/DD/`) lies after `hi`.
pub fn folder_after(folder: &str, depth: usize, hi: [u32; 3]) -> bool {
    let mut nums: Vec<u32> = folder
        .trim_end_matches('/')
        .rsplit('/')
        .take(depth)
        .filter_map(|p| p.parse().ok())
        .collect();
    nums.reverse();
    nums.len() == depth && nums[..] > hi[..depth]
}

/// Splits `<base>YYYY/MM/DD/` into `<base>` and the date.
pub fn split_date_folder(folder: &str) -> Option<(&str, NaiveDate)> {
    let trimmed = folder.strip_suffix('/')?;
    let mut parts = trimmed.rsplitn(4, '/');
    let (d, m, y) = (parts.next()?, parts.next()?, parts.next()?);
    parts.next()?;
    let date = NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)?;
    let base = trimmed.len() - d.len() - m.len() - y.len() - 2;
    Some((&folder[..base], date))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_folders_cover_their_dates_hours() {
        let t = |s: &str| crate::parse_rfc3339(s).unwrap();
        assert_eq!(
            folder_hours("2024/02/"),
            Some((t("2024-01-31T23:00:00Z"), t("2024-03-01T00:15:00Z")))
        );
        assert_eq!(
            folder_hours("2024/12/31/"),
            Some((t("2024-12-30T23:00:00Z"), t("2025-01-01T00:15:00Z")))
        );
        assert_eq!(
            folder_hours("2023/"),
            Some((t("2022-12-31T23:00:00Z"), t("2024-01-01T00:15:00Z")))
        );
        assert_eq!(
            folder_hours(""),
            Some((Timestamp::MIN_UTC, Timestamp::MAX_UTC))
        );
        assert_eq!(folder_hours("2024/13/"), None);
        assert_eq!(folder_hours("x/y/z/w/"), None);
    }

    #[test]
    fn date_folders_split_into_base_and_date() {
        let (base, date) =
            split_date_folder("p/AWSLogs/1/CloudTrail/us-east-1/2024/01/05/").unwrap();
        assert_eq!(base, "p/AWSLogs/1/CloudTrail/us-east-1/");
        assert_eq!(date, NaiveDate::from_ymd_opt(2024, 1, 5).unwrap());
        assert!(split_date_folder("x/2024/02/30/").is_none());
        assert!(split_date_folder("2024/01/05/").is_none());
    }

    #[test]
    fn prefixes_inside_awslogs_name_scopes() {
        assert_eq!(scope_of_prefix("").unwrap(), None);
        assert_eq!(scope_of_prefix("org-logs/AWSLogs/").unwrap(), None);
        let s = scope_of_prefix("org-logs/AWSLogs/111122223333")
            .unwrap()
            .unwrap();
        assert_eq!(s.root, "org-logs/AWSLogs/");
        assert_eq!(s.account.as_deref(), Some("111122223333"));
        let s = scope_of_prefix("AWSLogs/o-abcdefghij/111122223333/CloudTrail-Digest/eu-west-1/")
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                s.root.as_str(),
                s.org_id.as_deref(),
                s.account.as_deref(),
                s.region.as_deref()
            ),
            (
                "AWSLogs/",
                Some("o-abcdefghij"),
                Some("111122223333"),
                Some("eu-west-1")
            )
        );
        let s = scope_of_prefix("AWSLogs/o-abcdefghij").unwrap().unwrap();
        assert_eq!(
            (s.org_id.as_deref(), s.account),
            (Some("o-abcdefghij"), None)
        );
        assert!(scope_of_prefix("AWSLogs/notanaccount").is_err());
        assert!(scope_of_prefix("AWSLogs/111122223333/Config").is_err());
        assert!(scope_of_prefix("AWSLogs/111122223333/CloudTrail/xx").is_err());
        assert!(scope_of_prefix("AWSLogs/111122223333/CloudTrail/us-east-1/2024").is_err());
    }

    #[test]
    fn discovery_starts_at_the_root_and_the_trails_folder_below_it() {
        assert_eq!(first_folders(""), ["", "AWSLogs/"]);
        assert_eq!(
            first_folders("org-logs/"),
            ["org-logs/", "org-logs/AWSLogs/"]
        );
        assert_eq!(first_folders("org-logs/AWSLogs/"), ["org-logs/AWSLogs/"]);
        assert_eq!(last_segment("a/b/"), "b");
        assert_eq!(last_segment(""), "");
    }

    #[test]
    fn location_of_reads_prefix_org_account_region() {
        let l = location_of("p/AWSLogs/o-abcdefghij/111122223333/CloudTrail-Digest/us-east-1/x")
            .unwrap();
        assert_eq!(l.prefix, "p");
        assert_eq!(l.org_id.as_deref(), Some("o-abcdefghij"));
        assert_eq!(l.region, "us-east-1");
        assert!(location_of("AWSLogs/xyz/CloudTrail/us-east-1/a").is_none());
    }

    fn scope(prefix: &str, org: Option<&str>, trail: &str) -> ScopeId {
        ScopeId {
            location: Location {
                prefix: prefix.into(),
                org_id: org.map(Into::into),
                account: "111122223333".into(),
                region: "eu-west-1".into(),
            },
            trail: trail.into(),
            home_region: "us-gov-west-1".into(),
        }
    }

    #[test]
    fn digest_keys_round_trip_with_prefixes_org_ids_and_underscored_trails() {
        let end = Utc.with_ymd_and_hms(2024, 2, 29, 23, 5, 9).unwrap();
        for s in [
            scope("", None, "main"),
            scope("a/AWSLogs/b", Some("o-abcdefghij"), "my_trail_v2"),
            scope("custom", None, "_"),
        ] {
            for backfill in [false, true] {
                let key = digest_key(&s, end, backfill);
                let parsed = parse_digest_key(&key).unwrap_or_else(|| panic!("{key}"));
                assert_eq!(parsed.scope, s);
                assert_eq!(parsed.end, end);
                assert_eq!(parsed.backfill, backfill);
            }
        }
    }

    #[test]
    fn log_keys_round_trip() {
        let loc = scope("p/q", Some("o-0123456789abcdef"), "t").location;
        let t = Utc.with_ymd_and_hms(2024, 1, 1, 0, 55, 0).unwrap();
        let key = log_key(&loc, t, "AbCd1234EfGh5678");
        let parsed = parse_log_key(&key).unwrap();
        assert_eq!(parsed.location, loc);
        assert_eq!(parsed.time, t);
    }

    #[test]
    fn rejects_near_misses() {
        let good = "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/01/01/111122223333_CloudTrail-Digest_us-east-1_t_us-east-1_20240101T010000Z.json.gz";
        assert!(parse_digest_key(good).is_some());
        for bad in [
            good.replace("111122223333_", "999999999999_"),
            good.replace("_us-east-1_t", "_us-east-2_t"),
            good.replace("T010000Z", "T0100Z"),
            good.replace(".json.gz", ".json"),
            good.replace("AWSLogs/", "Logs/"),
            good.replace("/2024/", "/24/"),
            good.replace("_t_us-east-1", "_t_useast1"),
            good.replace("T010000Z", "T016000Z"),
            good.replace("T010000Z", "T01000Z0"),
            good.replace("20240101T", "20240230T"),
            good.replace("20240101T", "+2024010T"),
            good.replace("T010000Z", "T0100000Z"),
        ] {
            assert!(parse_digest_key(&bad).is_none(), "{bad}");
        }
        assert!(parse_log_key(good).is_none());
    }

    #[test]
    fn shapes() {
        assert!(is_org_id("o-abcdefghij") && !is_org_id("o-abc") && !is_org_id("o-ABCDEFGHIJ"));
        assert!(is_region("us-gov-west-1") && is_region("ap-southeast-2") && !is_region("us-east"));
        for bad in [
            "use-east-1",
            "us--1",
            "us-east-",
            "US-east-1",
            "us-east-1a",
            "-east-1",
        ] {
            assert!(!is_region(bad), "{bad}");
        }
        assert!(is_clean_key("a/b.json.gz"));
        for bad in ["", "/etc/passwd", "a/../b", "a//b", "./a", "a\\b", "a/\0"] {
            assert!(!is_clean_key(bad), "{bad:?}");
        }
    }
}
