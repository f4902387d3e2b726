//! An S3 Inventory report as a listing hint: the day folders it covers are listed from it
//! instead of by ListObjectsV2, one request per 1,000 keys saved. It is a hint, never evidence
//! of absence: every folder above the days, and every day folder not yet complete when the
//! inventory was made, is listed live; a log a digest lists is read whatever the inventory says;
//! and an object seen only in the inventory is confirmed in the bucket before it is reported.
//!
//! The layout is the one S3 writes (`<dest prefix>/<source bucket>/<config id>/`): a folder per
//! report named `YYYY-MM-DDTHH-MMZ/` holding `manifest.json` and `manifest.checksum` (the MD5
//! of the manifest), and `data/` with the gzipped CSV files the manifest names with their MD5s.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::BufRead;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use chrono::Duration;
use md5::{Digest, Md5};

use super::{Listing, ObjectInfo, S3Store, Store, StoreError};
use crate::layout::{format_time, split_date_folder, Timestamp};

/// The most a manifest may hold, and a data file (gzipped).
const MAX_MANIFEST_BYTES: u64 = 16 << 20;
const MAX_DATA_FILE_BYTES: u64 = 1 << 30;
/// The most a data file may inflate to, and one of its rows.
const MAX_DATA_INFLATED: u64 = 16 << 30;
const MAX_ROW_BYTES: u64 = 64 << 10;
/// A day folder is complete once the day is over and its last digests delivered: taken from an
/// inventory made at least this long after the day's end.
const COMPLETE_AFTER: Duration = Duration::hours(2);
/// How many of the newest reports are tried when none is named.
const REPORTS_TRIED: usize = 3;

/// An inventory report, read and checked, indexed by the day folders it covers.
#[derive(Debug)]
pub struct Inventory {
    /// Each day folder's objects and sub-folders, as the inventory lists them.
    days: HashMap<String, Listing>,
    /// When S3 made the report.
    pub created: Timestamp,
    /// `s3://dest/…/manifest.json`.
    pub manifest: String,
    /// MD5 of the manifest, as `manifest.checksum` gives it and as computed.
    pub manifest_md5: String,
    /// Day folders answered from the inventory, and listed live.
    answered: Mutex<HashSet<String>>,
    live_days: AtomicUsize,
    gone: AtomicUsize,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    source_bucket: String,
    creation_timestamp: String,
    file_format: String,
    file_schema: String,
    files: Vec<DataFile>,
}

#[derive(serde::Deserialize)]
struct DataFile {
    key: String,
    #[serde(rename = "MD5checksum")]
    md5: String,
}

/// Whether a folder name is a report's: `YYYY-MM-DDTHH-MMZ`.
fn is_report_folder(name: &str) -> bool {
    chrono::NaiveDateTime::parse_from_str(name, "%Y-%m-%dT%H-%MZ").is_ok()
}

impl Inventory {
    /// Reads the report at `path` in the destination bucket (`dest`): a report folder, or the
    /// configuration's folder, whose newest report is used. Checks the manifest against its
    /// checksum, each data file against its MD5, and the source bucket against `bucket`;
    /// keeps the keys under `root` that lie in day folders.
    pub async fn load(
        dest: &S3Store,
        path: &str,
        bucket: &str,
        root: &str,
        now: Timestamp,
    ) -> Result<Inventory, String> {
        let path = path.trim_matches('/');
        let at = |key: &str| format!("s3://{}/{key}", dest.bucket());
        let last = path.rsplit('/').next().unwrap_or_default();
        let reports: Vec<String> = if is_report_folder(last) {
            vec![format!("{path}/")]
        } else {
            let listing = dest.list(&format!("{path}/")).await.map_err(|e| {
                format!(
                    "cannot list the S3 Inventory at {}/: {}",
                    at(path),
                    e.cause()
                )
            })?;
            let mut found: Vec<String> = listing
                .folders
                .into_iter()
                .filter(|f| is_report_folder(crate::layout::last_segment(f)))
                .collect();
            found.sort();
            found.reverse();
            if found.is_empty() {
                return Err(format!(
                    "{}/ holds no S3 Inventory report (no YYYY-MM-DDTHH-MMZ/ folder): give the configuration's folder, <destination prefix>/{bucket}/<configuration id>",
                    at(path)
                ));
            }
            found.truncate(REPORTS_TRIED);
            found
        };
        let mut manifest = None;
        for folder in &reports {
            let key = format!("{folder}manifest.json");
            match dest.get_up_to(&key, MAX_MANIFEST_BYTES).await {
                Ok((object, _)) => {
                    manifest = Some((key, object.bytes));
                    break;
                }
                Err(StoreError::NotFound { .. }) => continue,
                Err(e) => return Err(format!("cannot read {}: {}", at(&key), e.cause())),
            }
        }
        let Some((key, bytes)) = manifest else {
            return Err(format!(
                "no manifest.json in the S3 Inventory report(s) {}",
                reports.iter().map(|r| at(r)).collect::<Vec<_>>().join(", ")
            ));
        };
        let folder = key.trim_end_matches("manifest.json");
        let checksum_key = format!("{folder}manifest.checksum");
        let stated = match dest.get_up_to(&checksum_key, 1024).await {
            Ok((object, _)) => String::from_utf8_lossy(&object.bytes).trim().to_lowercase(),
            Err(e) => {
                return Err(format!(
                    "cannot read {}: {} (the manifest cannot be checked without it)",
                    at(&checksum_key),
                    e.cause()
                ))
            }
        };
        let computed = hex::encode(Md5::digest(&bytes));
        if stated != computed {
            return Err(format!(
                "{} does not match {}: its MD5 is {computed}, the checksum says {stated}; the inventory is not used",
                at(&key),
                at(&checksum_key)
            ));
        }
        let m: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| format!("{} is not an S3 Inventory manifest: {e}", at(&key)))?;
        if m.source_bucket != bucket {
            return Err(format!(
                "{} is an inventory of bucket {}, not of {bucket}",
                at(&key),
                m.source_bucket
            ));
        }
        if !m.file_format.eq_ignore_ascii_case("CSV") {
            return Err(format!(
                "{} is an inventory in {} format; only CSV inventories are read (configure the inventory's output format as CSV)",
                at(&key),
                m.file_format
            ));
        }
        let created = m
            .creation_timestamp
            .parse::<i64>()
            .ok()
            .and_then(chrono::DateTime::from_timestamp_millis)
            .ok_or_else(|| {
                format!(
                    "{}: creationTimestamp {:?} is not a time in milliseconds",
                    at(&key),
                    m.creation_timestamp
                )
            })?;
        if created > now + Duration::minutes(5) {
            return Err(format!(
                "{} says it was made at {}, after now: not used",
                at(&key),
                format_time(created)
            ));
        }
        let schema: Vec<String> = m
            .file_schema
            .split(',')
            .map(|f| f.trim().to_string())
            .collect();
        let column = |name: &str| schema.iter().position(|f| f == name);
        let (Some(key_at), Some(bucket_at)) = (column("Key"), column("Bucket")) else {
            return Err(format!(
                "{}: fileSchema {:?} has no Bucket and Key fields",
                at(&key),
                m.file_schema
            ));
        };
        let columns = Columns {
            bucket: bucket_at,
            key: key_at,
            etag: column("ETag"),
            size: column("Size"),
            storage_class: column("StorageClass"),
            is_latest: column("IsLatest"),
            delete_marker: column("IsDeleteMarker"),
        };
        let mut days: HashMap<String, Listing> = HashMap::new();
        let mut sub_folders: HashMap<String, BTreeSet<String>> = HashMap::new();
        for file in &m.files {
            let (object, _) = dest
                .get_up_to(&file.key, MAX_DATA_FILE_BYTES)
                .await
                .map_err(|e| format!("cannot read {}: {}", at(&file.key), e.cause()))?;
            let md5 = hex::encode(Md5::digest(&object.bytes));
            if !md5.eq_ignore_ascii_case(file.md5.trim()) {
                return Err(format!(
                    "{} does not match the MD5 the manifest {} gives it ({md5}, not {}); the inventory is not used",
                    at(&file.key),
                    at(&key),
                    file.md5
                ));
            }
            let gz = flate2::bufread::MultiGzDecoder::new(object.bytes.as_slice());
            let reader = std::io::BufReader::new(std::io::Read::take(gz, MAX_DATA_INFLATED));
            let mut reader = reader;
            let mut raw = Vec::new();
            for n in 0.. {
                // Each row is read with a cap of its own: S3 keys are at most 1,024 bytes.
                raw.clear();
                let read = std::io::Read::take(&mut reader, MAX_ROW_BYTES + 1)
                    .read_until(b'\n', &mut raw)
                    .map_err(|e| format!("{}: not gzipped CSV: {e}", at(&file.key)))?;
                if read == 0 {
                    break;
                }
                if raw.len() as u64 > MAX_ROW_BYTES {
                    return Err(format!(
                        "{} line {}: longer than {MAX_ROW_BYTES} bytes, which no inventory row is",
                        at(&file.key),
                        n + 1
                    ));
                }
                let line = std::str::from_utf8(&raw)
                    .map_err(|_| format!("{} line {}: not UTF-8", at(&file.key), n + 1))?
                    .trim_end_matches(['\n', '\r']);
                if line.is_empty() {
                    continue;
                }
                let fields = parse_csv_line(line)
                    .map_err(|why| format!("{} line {}: {why}", at(&file.key), n + 1))?;
                let Some(row) = columns.row(&fields) else {
                    return Err(format!(
                        "{} line {}: {} field(s), the schema has {}",
                        at(&file.key),
                        n + 1,
                        fields.len(),
                        schema.len()
                    ));
                };
                if row.bucket != bucket {
                    return Err(format!(
                        "{} line {}: an object of bucket {}, not of {bucket}",
                        at(&file.key),
                        n + 1,
                        row.bucket
                    ));
                }
                if !row.current {
                    continue;
                }
                let object_key = percent_decode(&row.key).ok_or_else(|| {
                    format!(
                        "{} line {}: a key that is not URL-encoded",
                        at(&file.key),
                        n + 1
                    )
                })?;
                if !object_key.starts_with(root) || (object_key.ends_with('/') && row.empty) {
                    continue;
                }
                index(
                    &mut days,
                    &mut sub_folders,
                    object_key,
                    row.etag,
                    row.storage_class,
                );
            }
        }
        for (day, folders) in sub_folders {
            days.entry(day).or_default().folders = folders.into_iter().collect();
        }
        for listing in days.values_mut() {
            listing.objects.sort_by(|a, b| a.key.cmp(&b.key));
        }
        Ok(Inventory {
            days,
            created,
            manifest: at(&key),
            manifest_md5: computed,
            answered: Mutex::default(),
            live_days: AtomicUsize::new(0),
            gone: AtomicUsize::new(0),
        })
    }

    /// Whether the inventory covers the day folder `prefix` whole: the day was over, and its
    /// last digests delivered, before the inventory was made.
    fn covers(&self, prefix: &str) -> bool {
        let Some((base, date)) = split_date_folder(prefix) else {
            return false;
        };
        let base = base.trim_end_matches('/');
        let mut parts = base.rsplitn(3, '/');
        let (region, kind) = (parts.next(), parts.next());
        if region.is_none_or(|r| !crate::layout::is_region(r))
            || !matches!(kind, Some("CloudTrail" | "CloudTrail-Digest"))
        {
            return false;
        }
        let Some(next) = date.succ_opt() else {
            return false;
        };
        next.and_time(chrono::NaiveTime::MIN).and_utc() + COMPLETE_AFTER <= self.created
    }

    /// The listing of `prefix` from the inventory, when it covers that day folder.
    pub fn answer(&self, prefix: &str) -> Option<Listing> {
        if !self.covers(prefix) {
            return None;
        }
        self.answered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(prefix.to_string());
        Some(self.days.get(prefix).cloned().unwrap_or_default())
    }

    /// A day folder the inventory does not cover was listed live.
    pub fn listed_live(&self, prefix: &str) {
        if split_date_folder(prefix).is_some() {
            self.live_days.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Whether `key` was seen only in the inventory (its day folder was answered from it).
    pub fn hinted(&self, key: &str) -> bool {
        let Some((folder, _)) = key.rsplit_once('/') else {
            return false;
        };
        self.answered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&format!("{folder}/"))
    }

    /// An object the inventory lists was not in the bucket when confirmed.
    pub fn gone(&self) {
        self.gone.fetch_add(1, Ordering::Relaxed);
    }

    /// What the report says about the inventory used.
    pub fn notes(&self) -> Vec<String> {
        let answered = self
            .answered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len();
        let mut notes = vec![format!(
            "listing: the S3 Inventory {} (made {}, MD5 {}) listed {answered} day folder(s) completed before it was made; {} later day folder(s) and every folder above the days were listed live. An inventory is a hint: logs the digests list were read whatever it says, and objects only it showed were confirmed in the bucket",
            self.manifest,
            format_time(self.created),
            self.manifest_md5,
            self.live_days.load(Ordering::Relaxed)
        )];
        let gone = self.gone.load(Ordering::Relaxed);
        if gone > 0 {
            notes.push(format!(
                "{gone} object(s) the S3 Inventory lists, and no digest lists, were no longer in the bucket when confirmed: not reported"
            ));
        }
        notes
    }
}

/// Where each field is in the inventory's rows.
struct Columns {
    bucket: usize,
    key: usize,
    etag: Option<usize>,
    size: Option<usize>,
    storage_class: Option<usize>,
    is_latest: Option<usize>,
    delete_marker: Option<usize>,
}

struct Row {
    bucket: String,
    key: String,
    etag: Option<String>,
    storage_class: Option<String>,
    /// The current version of a live object (not an older version, not a delete marker).
    current: bool,
    empty: bool,
}

impl Columns {
    fn row(&self, fields: &[String]) -> Option<Row> {
        let get = |i: Option<usize>| -> Option<Option<String>> {
            match i {
                None => Some(None),
                Some(i) => fields
                    .get(i)
                    .map(|v| Some(v.clone()).filter(|v| !v.is_empty())),
            }
        };
        let flag = |i: Option<usize>, default: bool| -> Option<bool> {
            Some(get(i)?.map_or(default, |v| v.eq_ignore_ascii_case("true")))
        };
        Some(Row {
            bucket: fields.get(self.bucket)?.clone(),
            key: fields.get(self.key)?.clone(),
            // ListObjectsV2 gives ETags in quotes; the inventory without.
            etag: get(self.etag)?.map(|e| format!("\"{}\"", e.trim_matches('"'))),
            storage_class: get(self.storage_class)?,
            current: flag(self.is_latest, true)? && !flag(self.delete_marker, false)?,
            empty: get(self.size)?.is_some_and(|s| s == "0"),
        })
    }
}

/// Files `key` under the day folder it lies in (directly, or below it as a nested folder).
fn index(
    days: &mut HashMap<String, Listing>,
    sub_folders: &mut HashMap<String, BTreeSet<String>>,
    key: String,
    etag: Option<String>,
    storage_class: Option<String>,
) {
    let Some((parent, _)) = key.rsplit_once('/') else {
        return;
    };
    let parent = format!("{parent}/");
    if split_date_folder(&parent).is_some() {
        days.entry(parent).or_default().objects.push(ObjectInfo {
            key,
            storage_class,
            etag,
            ..ObjectInfo::default()
        });
        return;
    }
    // A folder nested below a day folder: the day folder lists it as a sub-folder.
    let mut folder = parent.as_str();
    for _ in 0..4 {
        let Some((up, _)) = folder.trim_end_matches('/').rsplit_once('/') else {
            return;
        };
        let up = &folder[..up.len() + 1];
        if split_date_folder(up).is_some() {
            sub_folders
                .entry(up.to_string())
                .or_default()
                .insert(folder.to_string());
            return;
        }
        folder = up;
    }
}

/// One CSV line: fields separated by commas, each optionally in double quotes (a quote inside
/// doubled).
fn parse_csv_line(line: &str) -> Result<Vec<String>, &'static str> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err("a quoted field is not closed"),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => {}
                Some(_) => return Err("text after a closing quote"),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some(c) => field.push(c),
                }
            }
        }
        fields.push(field);
    }
}

/// Decodes `%XX` escapes (S3 Inventory URL-encodes keys); `None` for a broken escape or bytes
/// that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_quoted_or_not() {
        assert_eq!(
            parse_csv_line(r#""b","a%2Fb","12",,"x""y""#).unwrap(),
            ["b", "a%2Fb", "12", "", "x\"y"]
        );
        assert!(parse_csv_line(r#""open"#).is_err());
        assert!(parse_csv_line(r#""a"b"#).is_err());
    }

    #[test]
    fn keys_are_url_decoded_and_broken_escapes_refused() {
        assert_eq!(
            percent_decode("AWSLogs/1%3A2/x%20y").as_deref(),
            Some("AWSLogs/1:2/x y")
        );
        assert_eq!(percent_decode("a%2"), None);
        assert_eq!(percent_decode("a%zz"), None);
        assert_eq!(percent_decode("%ff"), None);
    }

    #[test]
    fn objects_are_filed_under_their_day_folder_and_nested_folders_under_it() {
        let mut days = HashMap::new();
        let mut subs = HashMap::new();
        let day = "AWSLogs/111111111111/CloudTrail/us-east-1/2024/01/02/";
        index(&mut days, &mut subs, format!("{day}a.json.gz"), None, None);
        index(
            &mut days,
            &mut subs,
            format!("{day}x/y/b.json.gz"),
            None,
            None,
        );
        assert_eq!(days[day].objects[0].key, format!("{day}a.json.gz"));
        assert_eq!(
            subs[day].iter().cloned().collect::<Vec<_>>(),
            [format!("{day}x/")]
        );
    }
}
