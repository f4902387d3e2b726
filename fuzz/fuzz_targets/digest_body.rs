//! `DigestBody::parse` on arbitrary bytes, and on whatever the strict gunzip inflates them to.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trailproof::digest::DigestBody;
use trailproof::hash::inflate_to_vec;

fuzz_target!(|data: &[u8]| {
    let _ = DigestBody::parse(data);
    if let Ok((content, _)) = inflate_to_vec(data, 1 << 20) {
        let _ = DigestBody::parse(&content);
    }
});
