//! `parse_metadata` (a local mirror's signature metadata sidecar) on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(metadata) = trailproof::store::local::parse_metadata(data) {
        // Names come back lowercased and without the `x-amz-meta-` prefix.
        for name in metadata.keys() {
            assert!(!name.bytes().any(|b| b.is_ascii_uppercase()), "{name:?}");
        }
    }
});
