//! The ledger of one location's logs: which log keys valid digests listed, which only failed
//! digests listed, and which log objects no valid digest has listed so far (the strays the
//! judge decides). Pure bookkeeping, no I/O: the day loop tells it what it listed and read.
//!
//! Digests list logs up to the delivery delay after their hour, so a log object may be seen
//! before the digest that lists it has been read (the next day's), or after: either order ends
//! the same way.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::NaiveDate;

use crate::layout::{parse_log_key, Timestamp};

/// A log object that no valid digest has listed so far: judged when the location is done,
/// unless a later digest lists it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stray {
    pub time: Option<Timestamp>,
    /// A digest that lists it but failed verification.
    pub listed_by_failed: Option<String>,
}

#[derive(Debug, Default)]
pub struct Ledger {
    /// Logs listed by valid digests whose date folder has not been matched yet.
    listed: HashSet<String>,
    /// Logs listed only by digests that failed, likewise, with the first such digest.
    listed_by_failed: HashMap<String, String>,
    strays: BTreeMap<String, Stray>,
}

impl Ledger {
    /// A valid digest lists `key`: whether seen already or not, it is no stray.
    pub fn vouched(&mut self, key: &str) {
        self.strays.remove(key);
        self.listed.insert(key.to_string());
    }

    /// A digest that failed verification lists `key`: the first such digest is kept.
    pub fn listed_by_failed(&mut self, key: &str, digest: &str) {
        if let Some(stray) = self.strays.get_mut(key) {
            stray
                .listed_by_failed
                .get_or_insert_with(|| digest.to_string());
        }
        self.listed_by_failed
            .entry(key.to_string())
            .or_insert_with(|| digest.to_string());
    }

    /// Whether a valid digest listed `key` (and its day is not yet forgotten).
    pub fn is_listed(&self, key: &str) -> bool {
        self.listed.contains(key)
    }

    /// A log object in the location's log folders, in range, named at `time` when it is named
    /// like a log: a stray unless a valid digest listed it.
    pub fn seen(&mut self, key: String, time: Option<Timestamp>) {
        if self.listed.contains(&key) {
            return;
        }
        let listed_by_failed = self.listed_by_failed.get(&key).cloned();
        self.strays.insert(
            key,
            Stray {
                time,
                listed_by_failed,
            },
        );
    }

    /// Every log folder before `date` has been matched: what digests listed there is
    /// forgotten (memory holds about two days of log names). Strays stay.
    pub fn forget_before(&mut self, date: NaiveDate) {
        let before = |key: &str| parse_log_key(key).is_some_and(|n| n.time.date_naive() < date);
        self.listed.retain(|k| !before(k));
        self.listed_by_failed.retain(|k, _| !before(k));
    }

    /// The strays, for the judge, once the location is done.
    pub fn take_strays(&mut self) -> BTreeMap<String, Stray> {
        std::mem::take(&mut self.strays)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(day: u32, hour: u32) -> String {
        use chrono::TimeZone;
        let location = crate::layout::Location {
            prefix: String::new(),
            org_id: None,
            account: "111111111111".into(),
            region: "us-east-1".into(),
        };
        let time = chrono::Utc
            .with_ymd_and_hms(2024, 1, day, hour, 50, 0)
            .unwrap();
        crate::layout::log_key(&location, time, "abcdefghijklmnop")
    }

    fn date(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 1, d).unwrap()
    }

    #[test]
    fn a_log_seen_before_or_after_its_digest_is_no_stray() {
        let (day1, day2) = (key(1, 23), key(2, 0));
        let (day1k, day2k) = (day1.as_str(), day2.as_str());
        let mut l = Ledger::default();
        l.seen(day1k.into(), None);
        l.vouched(day1k);
        l.vouched(day2k);
        l.seen(day2k.into(), None);
        assert!(l.take_strays().is_empty());
    }

    #[test]
    fn a_log_listed_only_by_a_failed_digest_is_a_stray_naming_it_until_a_valid_one_lists_it() {
        let (day1, day2) = (key(1, 23), key(2, 0));
        let (day1k, day2k) = (day1.as_str(), day2.as_str());
        let mut l = Ledger::default();
        l.listed_by_failed(day1k, "bad.json.gz");
        l.listed_by_failed(day1k, "later.json.gz");
        l.seen(day1k.into(), None);
        l.seen(day2k.into(), None);
        l.listed_by_failed(day2k, "bad2.json.gz");
        let strays = l.take_strays();
        assert_eq!(
            strays[day1k].listed_by_failed.as_deref(),
            Some("bad.json.gz")
        );
        assert_eq!(
            strays[day2k].listed_by_failed.as_deref(),
            Some("bad2.json.gz")
        );
        let mut l = Ledger::default();
        l.listed_by_failed(day1k, "bad.json.gz");
        l.seen(day1k.into(), None);
        l.vouched(day1k);
        assert!(l.take_strays().is_empty());
    }

    #[test]
    fn forgetting_a_matched_day_keeps_its_strays_and_the_next_days_listings() {
        let (day1, day2) = (key(1, 23), key(2, 0));
        let (day1k, day2k) = (day1.as_str(), day2.as_str());
        assert!(parse_log_key(day1k).is_some() && parse_log_key(day2k).is_some());
        let mut l = Ledger::default();
        l.vouched(day1k);
        l.vouched(day2k);
        l.seen("AWSLogs/1/CloudTrail/us-east-1/2024/01/01/x".into(), None);
        l.forget_before(date(2));
        assert!(!l.listed.contains(day1k));
        assert!(l.listed.contains(day2k));
        l.seen(day2k.into(), None);
        assert_eq!(l.take_strays().len(), 1);
    }
}
