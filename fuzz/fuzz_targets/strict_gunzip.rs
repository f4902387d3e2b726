//! The strict gunzip on arbitrary bytes. Whenever it accepts an object:
//! - flate2's single-member `GzDecoder` accepts it too and yields content of the same SHA-256
//!   and size;
//! - `inflate_to_vec` gives that content, and its summary matches;
//! and, accepted or not, feeding the same bytes to `Gunzip` in small chunks gives the same answer
//! (or the same error) as reading them whole. Only the inflater's own wording of bad deflate data
//! is not compared: zlib-rs 0.6 reports some of it as "repeated call with bad state" when it is
//! met in its fast path, "invalid distance too far back" when met a byte at a time
//! (regressions/strict_gunzip/zlib-rs-bad-state-message).
#![no_main]

use std::io::{Cursor, Read};

use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use trailproof::hash::{hash_gzip, inflate_to_vec, Damage, Gunzip, Inflated, InflateError};

/// The strict gunzip's limit where the content is kept in memory.
const LIMIT: u64 = 16 << 20;

/// The damage, without the inflater's wording of bad deflate data.
fn kind(damage: Damage) -> String {
    match damage {
        Damage::BadDeflate(_) => "BadDeflate".into(),
        other => other.to_string(),
    }
}

fn chunked(data: &[u8], chunk: usize) -> Result<Inflated, String> {
    let mut g = Gunzip::new(u64::MAX);
    for piece in data.chunks(chunk) {
        g.feed(piece, &mut |_| {}).map_err(kind)?;
    }
    g.finish(&mut |_| {}).map_err(kind)
}

fuzz_target!(|data: &[u8]| {
    let whole = hash_gzip(Cursor::new(data)).map_err(|e| match e {
        InflateError::Damaged(d) => kind(d),
        InflateError::Read(e) => panic!("reading a Cursor failed: {e}"),
    });

    for chunk in [1, 3, 17] {
        assert_eq!(whole, chunked(data, chunk), "fed in {chunk}-byte chunks");
    }

    let Ok(summary) = whole else { return };

    let mut reference = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut reference)
        .expect("flate2's GzDecoder refuses an object the strict gunzip accepted");
    assert_eq!(summary.size, reference.len() as u64, "size differs from flate2's");
    let expected: [u8; 32] = Sha256::digest(&reference).into();
    assert_eq!(summary.sha256, expected, "SHA-256 differs from flate2's");

    if summary.size <= LIMIT {
        let (content, again) = inflate_to_vec(data, LIMIT).expect("inflate_to_vec refused it");
        assert_eq!(again, summary);
        assert_eq!(content, reference);
    }
});
