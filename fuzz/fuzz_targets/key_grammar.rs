//! The key grammar on arbitrary UTF-8: `parse_digest_key`, `parse_log_key`, `location_of`,
//! `is_clean_key`. A parsed digest key must survive a round trip through `digest_key`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trailproof::layout::{digest_key, is_clean_key, location_of, parse_digest_key, parse_log_key};

fuzz_target!(|data: &[u8]| {
    let Ok(key) = std::str::from_utf8(data) else {
        return;
    };
    let clean = is_clean_key(key);
    let location = location_of(key);
    if let Some(log) = parse_log_key(key) {
        assert_eq!(location.as_ref(), Some(&log.location), "location_of disagrees");
    }
    let Some(name) = parse_digest_key(key) else {
        return;
    };
    assert_eq!(location.as_ref(), Some(&name.scope.location), "location_of disagrees");

    // The key CloudTrail would give this digest reads back as the same digest...
    let rebuilt = digest_key(&name.scope, name.end, name.backfill);
    assert_eq!(parse_digest_key(&rebuilt).as_ref(), Some(&name), "rebuilt: {rebuilt:?}");
    // ...and is the key itself, unless the key's date folders disagree with its file name (the
    // name alone is parsed) or it starts with `/` (an empty prefix either way).
    let segs: Vec<&str> = key.split('/').collect();
    let folders = segs[segs.len() - 4..segs.len() - 1].join("/");
    if clean && folders == name.end.format("%Y/%m/%d").to_string() {
        assert_eq!(rebuilt, key);
    }
});
