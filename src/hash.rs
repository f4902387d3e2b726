//! Strict, streaming gunzip with SHA-256 of the inflated bytes.
//!
//! CloudTrail hashes the *uncompressed* content of logs and digests, and every genuine CloudTrail
//! object is exactly one complete gzip member. Reading more leniently than that would let damage
//! pass unseen: `flate2`'s readers accept a truncated deflate stream as a clean end, and a
//! multi-member reader would hash bytes that no digest vouches for. So the member is parsed here by
//! hand (RFC 1952) around a raw inflater, the CRC-32 and length in the trailer are checked, and
//! anything after the trailer is damage. Memory stays at one buffer, whatever the file size.

use std::io::{self, BufRead};

use flate2::{Decompress, FlushDecompress, Status};
use sha2::{Digest, Sha256};

/// How a gzip object fails to be one complete, intact member.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Damage {
    #[error("not gzip: the object starts with {0}")]
    NotGzip(String),
    #[error("unsupported gzip header: {0}")]
    BadHeader(String),
    #[error("truncated: the gzip stream ends inside its {0}")]
    Truncated(&'static str),
    #[error("invalid deflate data: {0}")]
    BadDeflate(String),
    #[error("CRC-32 mismatch: trailer says {stated:08x}, content gives {actual:08x}")]
    Crc { stated: u32, actual: u32 },
    #[error("length mismatch: trailer says {stated} bytes, content has {actual}")]
    Length { stated: u32, actual: u32 },
    #[error("a second gzip member follows the first")]
    SecondMember,
    #[error("{0} bytes of trailing data follow the gzip member")]
    TrailingData(u64),
    #[error("inflated content exceeds the {0}-byte limit")]
    TooLarge(u64),
}

/// Why strict inflation stopped: the bytes are damaged, or they could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum InflateError {
    #[error(transparent)]
    Damaged(#[from] Damage),
    #[error("read failed: {0}")]
    Read(#[source] io::Error),
}

/// SHA-256 and size of inflated content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inflated {
    pub sha256: [u8; 32],
    pub size: u64,
}

const BUF: usize = 64 * 1024;

/// Inflates exactly one gzip member from `input`, passing the content to `sink` piece by piece,
/// and fails on anything but one intact member with nothing after it. `limit` caps the inflated
/// size (a defence against decompression bombs where the content is kept in memory).
pub fn inflate_strict<R: BufRead>(
    mut input: R,
    limit: u64,
    mut sink: impl FnMut(&[u8]),
) -> Result<Inflated, InflateError> {
    read_header(&mut input)?;
    let mut inflater = Decompress::new(false);
    let mut out = vec![0u8; BUF];
    let mut crc = crc32fast::Hasher::new();
    let mut sha = Sha256::new();
    loop {
        let chunk = input.fill_buf().map_err(InflateError::Read)?;
        let at_eof = chunk.is_empty();
        let (in_before, out_before) = (inflater.total_in(), inflater.total_out());
        let status = inflater
            .decompress(chunk, &mut out, FlushDecompress::None)
            .map_err(|e| Damage::BadDeflate(e.to_string()))?;
        let consumed = (inflater.total_in() - in_before) as usize;
        let produced = (inflater.total_out() - out_before) as usize;
        input.consume(consumed);
        if produced > 0 {
            let piece = &out[..produced];
            crc.update(piece);
            sha.update(piece);
            sink(piece);
            if inflater.total_out() > limit {
                return Err(Damage::TooLarge(limit).into());
            }
        }
        match status {
            Status::StreamEnd => break,
            _ if at_eof && consumed == 0 && produced == 0 => {
                return Err(Damage::Truncated("deflate data").into())
            }
            _ => {}
        }
    }
    let mut trailer = [0u8; 8];
    read_exact(&mut input, &mut trailer, "trailer")?;
    let stated_crc = u32::from_le_bytes(trailer[..4].try_into().expect("4 bytes"));
    let stated_len = u32::from_le_bytes(trailer[4..].try_into().expect("4 bytes"));
    let size = inflater.total_out();
    let actual_crc = crc.finalize();
    if stated_crc != actual_crc {
        return Err(Damage::Crc {
            stated: stated_crc,
            actual: actual_crc,
        }
        .into());
    }
    // ISIZE is the length modulo 2^32 (RFC 1952 §2.3.1).
    if stated_len != size as u32 {
        return Err(Damage::Length {
            stated: stated_len,
            actual: size as u32,
        }
        .into());
    }
    let rest = input.fill_buf().map_err(InflateError::Read)?;
    if !rest.is_empty() {
        if rest.starts_with(&[0x1f, 0x8b]) {
            return Err(Damage::SecondMember.into());
        }
        let mut extra = 0u64;
        loop {
            let n = input.fill_buf().map_err(InflateError::Read)?.len();
            if n == 0 {
                break;
            }
            extra += n as u64;
            input.consume(n);
        }
        return Err(Damage::TrailingData(extra).into());
    }
    Ok(Inflated {
        sha256: sha.finalize().into(),
        size,
    })
}

/// Inflates a whole in-memory gzip object strictly, returning the content and its SHA-256.
pub fn inflate_to_vec(bytes: &[u8], limit: u64) -> Result<(Vec<u8>, Inflated), Damage> {
    let mut content = Vec::with_capacity(bytes.len() * 8);
    match inflate_strict(bytes, limit, |piece| content.extend_from_slice(piece)) {
        Ok(summary) => Ok((content, summary)),
        Err(InflateError::Damaged(d)) => Err(d),
        // Reading a byte slice cannot fail.
        Err(InflateError::Read(e)) => Err(Damage::BadDeflate(e.to_string())),
    }
}

/// Hashes a gzip object as a stream: SHA-256 of the inflated content, memory independent of size.
pub fn hash_gzip<R: BufRead>(input: R) -> Result<Inflated, InflateError> {
    inflate_strict(input, u64::MAX, |_| {})
}

fn read_exact<R: BufRead>(
    input: &mut R,
    buf: &mut [u8],
    part: &'static str,
) -> Result<(), InflateError> {
    input.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => InflateError::Damaged(Damage::Truncated(part)),
        _ => InflateError::Read(e),
    })
}

fn skip_zero_terminated<R: BufRead>(input: &mut R) -> Result<(), InflateError> {
    let mut field = Vec::new();
    input
        .read_until(0, &mut field)
        .map_err(InflateError::Read)?;
    if field.last() != Some(&0) {
        return Err(Damage::Truncated("header").into());
    }
    Ok(())
}

fn read_header<R: BufRead>(input: &mut R) -> Result<(), InflateError> {
    const FHCRC: u8 = 0x02;
    const FEXTRA: u8 = 0x04;
    const FNAME: u8 = 0x08;
    const FCOMMENT: u8 = 0x10;
    let mut fixed = [0u8; 10];
    let got = {
        let mut n = 0;
        while n < fixed.len() {
            let k = input.read(&mut fixed[n..]).map_err(InflateError::Read)?;
            if k == 0 {
                break;
            }
            n += k;
        }
        n
    };
    if got < 2 || fixed[..2] != [0x1f, 0x8b] {
        let shown = if got == 0 {
            "nothing (empty object)".to_string()
        } else {
            format!("bytes {}", hex::encode(&fixed[..got.min(4)]))
        };
        return Err(Damage::NotGzip(shown).into());
    }
    if got < fixed.len() {
        return Err(Damage::Truncated("header").into());
    }
    if fixed[2] != 8 {
        return Err(Damage::BadHeader(format!("compression method {}", fixed[2])).into());
    }
    let flags = fixed[3];
    if flags & 0xe0 != 0 {
        return Err(Damage::BadHeader(format!("reserved flag bits set ({flags:#04x})")).into());
    }
    if flags & FEXTRA != 0 {
        let mut len = [0u8; 2];
        read_exact(input, &mut len, "header")?;
        let mut extra = vec![0u8; u16::from_le_bytes(len) as usize];
        read_exact(input, &mut extra, "header")?;
    }
    if flags & FNAME != 0 {
        skip_zero_terminated(input)?;
    }
    if flags & FCOMMENT != 0 {
        skip_zero_terminated(input)?;
    }
    if flags & FHCRC != 0 {
        let mut crc = [0u8; 2];
        read_exact(input, &mut crc, "header")?;
    }
    Ok(())
}

/// Compresses `content` as one gzip member with a fixed header (mtime 0), so that the same
/// content always gives the same bytes.
pub fn gzip(content: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::GzBuilder::new().write(Vec::new(), flate2::Compression::default());
    encoder.write_all(content).expect("writing to a Vec");
    encoder.finish().expect("writing to a Vec")
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn damage(bytes: &[u8]) -> Damage {
        match hash_gzip(bytes) {
            Err(InflateError::Damaged(d)) => d,
            other => panic!("expected damage, got {other:?}"),
        }
    }

    #[test]
    fn hashes_inflated_content_not_compressed_bytes() {
        let content = b"{\"Records\":[]}".repeat(1000);
        let gz = gzip(&content);
        let got = hash_gzip(&gz[..]).unwrap();
        assert_eq!(hex::encode(got.sha256), sha256_hex(&content));
        assert_eq!(got.size, content.len() as u64);
    }

    #[test]
    fn every_kind_of_damage_is_named() {
        let gz = gzip(&b"0123456789".repeat(500));
        assert!(matches!(damage(b"{\"Records\":[]}"), Damage::NotGzip(_)));
        assert!(matches!(damage(b""), Damage::NotGzip(_)));
        assert_eq!(damage(&gz[..gz.len() - 8]), Damage::Truncated("trailer"));
        assert_eq!(
            damage(&gz[..gz.len() / 2]),
            Damage::Truncated("deflate data")
        );
        assert_eq!(damage(&gz[..5]), Damage::Truncated("header"));
        let mut two = gz.clone();
        two.extend_from_slice(&gzip(b"more"));
        assert_eq!(damage(&two), Damage::SecondMember);
        let mut tail = gz.clone();
        tail.extend_from_slice(b"junk!");
        assert_eq!(damage(&tail), Damage::TrailingData(5));
        let mut bad_crc = gz.clone();
        let n = bad_crc.len();
        bad_crc[n - 8] ^= 1;
        assert!(matches!(damage(&bad_crc), Damage::Crc { .. }));
        let mut bad_len = gz.clone();
        bad_len[n - 1] ^= 1;
        assert!(matches!(damage(&bad_len), Damage::Length { .. }));
    }

    #[test]
    fn limit_stops_bombs() {
        let gz = gzip(&vec![0u8; 1 << 20]);
        assert_eq!(
            inflate_to_vec(&gz, 1000).unwrap_err(),
            Damage::TooLarge(1000)
        );
    }
}
