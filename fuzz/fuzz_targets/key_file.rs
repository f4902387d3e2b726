//! `parse_key_file` (ListPublicKeys JSON, PEM or DER, recognised by content) on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = trailproof::keys::parse_key_file(data, "fuzz");
});
