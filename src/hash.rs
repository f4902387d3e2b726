//! Strict, streaming gunzip with SHA-256 of the inflated bytes.
//!
//! CloudTrail hashes the *uncompressed* content of logs and digests, and every genuine CloudTrail
//! object is exactly one complete gzip member. Reading more leniently than that would let damage
//! pass unseen: `flate2`'s readers accept a truncated deflate stream as a clean end, and a
//! multi-member reader would hash bytes that no digest vouches for. So the member is parsed here by
//! hand (RFC 1952) around a raw inflater, the CRC-32 and length in the trailer are checked, and
//! anything after the trailer is damage. Memory stays at one buffer, whatever the file size.

use std::cell::RefCell;
use std::io::{self, BufRead};
use std::sync::Mutex;

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

/// Large enough that copying the last 32 KB of each call's output into the inflater's window
/// costs little, small enough to stay in a core's L2 cache for the checksums that read it.
const BUF: usize = 256 * 1024;

/// Inflaters of finished objects, reset for the next: each holds a few tens of KB of state and
/// window that a new one would allocate and clear again.
static SPARE_INFLATERS: Mutex<Vec<Decompress>> = Mutex::new(Vec::new());

/// Enough spares for every object in flight at once in a run.
const MAX_SPARE_INFLATERS: usize = 64;

thread_local! {
    /// Inflated bytes pass through this buffer on their way to the checksums and the sink. It
    /// holds nothing between calls, so one per thread serves every object: no allocation, and no
    /// zeroing, per object.
    static OUT: RefCell<Box<[u8]>> = RefCell::new(vec![0u8; BUF].into_boxed_slice());
}

/// Where a [`Gunzip`] is in the member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Header,
    Body,
    Trailer,
    Done,
}

/// A strict gunzip fed bytes as they arrive (from a file or a network stream), keeping one
/// output buffer whatever the object's size.
pub struct Gunzip {
    stage: Stage,
    /// Header bytes until the header is complete, then the trailer's bytes.
    pending: Vec<u8>,
    /// Always present; taken only when the Gunzip is dropped, to be kept as a spare.
    inflater: Option<Decompress>,
    crc: crc32fast::Hasher,
    sha: Sha256,
    limit: u64,
    /// Bytes after the trailer, and the first two of them.
    extra: u64,
    extra_head: Vec<u8>,
}

impl Gunzip {
    /// `limit` caps the inflated size (a defence against decompression bombs where the content
    /// is kept in memory).
    pub fn new(limit: u64) -> Gunzip {
        Gunzip {
            stage: Stage::Header,
            pending: Vec::new(),
            inflater: Some(spare_inflater().unwrap_or_else(|| Decompress::new(false))),
            crc: crc32fast::Hasher::new(),
            sha: Sha256::new(),
            limit,
            extra: 0,
            extra_head: Vec::new(),
        }
    }

    fn inflater(&mut self) -> &mut Decompress {
        self.inflater
            .as_mut()
            .expect("the inflater is taken only on drop")
    }

    /// Takes the next bytes of the object, passing inflated content to `sink`.
    pub fn feed(&mut self, mut input: &[u8], sink: &mut dyn FnMut(&[u8])) -> Result<(), Damage> {
        while !input.is_empty() {
            match self.stage {
                // The usual case: the first bytes hold the whole header, and need no copy.
                Stage::Header if self.pending.is_empty() => {
                    if let Some(len) = header_len(input, false)? {
                        input = &input[len..];
                        self.stage = Stage::Body;
                    } else {
                        self.pending.extend_from_slice(input);
                        input = &[];
                    }
                }
                Stage::Header => {
                    self.pending.extend_from_slice(input);
                    input = &[];
                    if let Some(len) = header_len(&self.pending, false)? {
                        let rest = self.pending.split_off(len);
                        self.pending.clear();
                        self.stage = Stage::Body;
                        return self.feed(&rest, sink);
                    }
                }
                Stage::Body => {
                    let before = input.len();
                    self.pump(&mut input, sink)?;
                    if self.stage == Stage::Body && input.len() == before {
                        return Err(Damage::BadDeflate("the inflater made no progress".into()));
                    }
                }
                Stage::Trailer => {
                    let take = (8 - self.pending.len()).min(input.len());
                    self.pending.extend_from_slice(&input[..take]);
                    input = &input[take..];
                    if self.pending.len() == 8 {
                        self.stage = Stage::Done;
                    }
                }
                Stage::Done => {
                    let head = (2 - self.extra_head.len().min(2)).min(input.len());
                    self.extra_head.extend_from_slice(&input[..head]);
                    self.extra += input.len() as u64;
                    input = &[];
                }
            }
        }
        Ok(())
    }

    /// Inflates as much of `input` as it can (and any output the inflater still holds).
    fn pump(&mut self, input: &mut &[u8], sink: &mut dyn FnMut(&[u8])) -> Result<(), Damage> {
        OUT.with(|out| match out.try_borrow_mut() {
            Ok(mut out) => self.pump_through(&mut out, input, sink),
            // A sink that inflates another object on this thread gets a buffer of its own.
            Err(_) => self.pump_through(&mut vec![0u8; BUF], input, sink),
        })
    }

    fn pump_through(
        &mut self,
        out: &mut [u8],
        input: &mut &[u8],
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<(), Damage> {
        loop {
            let inflater = self.inflater();
            let (in_before, out_before) = (inflater.total_in(), inflater.total_out());
            let status = inflater
                .decompress(input, out, FlushDecompress::None)
                .map_err(|e| Damage::BadDeflate(e.to_string()))?;
            let (total_in, total_out) = (inflater.total_in(), inflater.total_out());
            let consumed = (total_in - in_before) as usize;
            let produced = (total_out - out_before) as usize;
            *input = &input[consumed..];
            if produced > 0 {
                let piece = &out[..produced];
                self.crc.update(piece);
                self.sha.update(piece);
                sink(piece);
                if total_out > self.limit {
                    return Err(Damage::TooLarge(self.limit));
                }
            }
            if status == Status::StreamEnd {
                self.stage = Stage::Trailer;
                return Ok(());
            }
            if consumed == 0 && produced == 0 {
                return Ok(());
            }
        }
    }

    /// The object has ended: checks that it was one whole member with nothing after it.
    pub fn finish(mut self, sink: &mut dyn FnMut(&[u8])) -> Result<Inflated, Damage> {
        if self.stage == Stage::Body {
            let mut nothing: &[u8] = &[];
            self.pump(&mut nothing, sink)?;
        }
        match self.stage {
            Stage::Header if self.pending.is_empty() => {
                return Err(Damage::NotGzip("nothing (empty object)".into()))
            }
            Stage::Header => {
                header_len(&self.pending, true)?;
                return Err(Damage::Truncated("header"));
            }
            Stage::Body => return Err(Damage::Truncated("deflate data")),
            Stage::Trailer => return Err(Damage::Truncated("trailer")),
            Stage::Done => {}
        }
        let stated_crc = u32::from_le_bytes(self.pending[..4].try_into().expect("4 bytes"));
        let stated_len = u32::from_le_bytes(self.pending[4..8].try_into().expect("4 bytes"));
        let size = self.inflater().total_out();
        let actual_crc = std::mem::take(&mut self.crc).finalize();
        if stated_crc != actual_crc {
            return Err(Damage::Crc {
                stated: stated_crc,
                actual: actual_crc,
            });
        }
        // ISIZE is the length modulo 2^32 (RFC 1952 §2.3.1).
        if stated_len != size as u32 {
            return Err(Damage::Length {
                stated: stated_len,
                actual: size as u32,
            });
        }
        if self.extra > 0 {
            return Err(if self.extra_head.starts_with(&[0x1f, 0x8b]) {
                Damage::SecondMember
            } else {
                Damage::TrailingData(self.extra)
            });
        }
        Ok(Inflated {
            sha256: std::mem::take(&mut self.sha).finalize().into(),
            size,
        })
    }
}

impl Drop for Gunzip {
    fn drop(&mut self) {
        let Some(mut inflater) = self.inflater.take() else {
            return;
        };
        inflater.reset(false);
        let mut spares = SPARE_INFLATERS.lock().unwrap_or_else(|e| e.into_inner());
        if spares.len() < MAX_SPARE_INFLATERS {
            spares.push(inflater);
        }
    }
}

fn spare_inflater() -> Option<Decompress> {
    SPARE_INFLATERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .pop()
}

/// The length of the gzip header at the start of `buf`, `None` while more bytes are needed.
/// `ended`: no more bytes will come (so a short non-gzip object is named as such).
fn header_len(buf: &[u8], ended: bool) -> Result<Option<usize>, Damage> {
    const FHCRC: u8 = 0x02;
    const FEXTRA: u8 = 0x04;
    const FNAME: u8 = 0x08;
    const FCOMMENT: u8 = 0x10;
    let not_gzip =
        buf.first().is_some_and(|b| *b != 0x1f) || buf.get(1).is_some_and(|b| *b != 0x8b);
    // Wait for four bytes to show, however the object is split into chunks.
    if not_gzip && buf.len() < 4 && !ended {
        return Ok(None);
    }
    if not_gzip {
        return Err(Damage::NotGzip(format!(
            "bytes {}",
            hex::encode(&buf[..buf.len().min(4)])
        )));
    }
    if buf.len() < 10 {
        return Ok(None);
    }
    if buf[2] != 8 {
        return Err(Damage::BadHeader(format!("compression method {}", buf[2])));
    }
    let flags = buf[3];
    if flags & 0xe0 != 0 {
        return Err(Damage::BadHeader(format!(
            "reserved flag bits set ({flags:#04x})"
        )));
    }
    let mut at = 10;
    if flags & FEXTRA != 0 {
        let Some(len) = buf.get(at..at + 2) else {
            return header_pending(buf);
        };
        at += 2 + u16::from_le_bytes([len[0], len[1]]) as usize;
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            match buf
                .get(at..)
                .and_then(|rest| rest.iter().position(|b| *b == 0))
            {
                Some(zero) => at += zero + 1,
                None => return header_pending(buf),
            }
        }
    }
    if flags & FHCRC != 0 {
        // RFC 1952: the two low bytes of the CRC-32 of every header byte before them.
        let Some(stated) = buf.get(at..at + 2) else {
            return header_pending(buf);
        };
        let stated = u16::from_le_bytes([stated[0], stated[1]]);
        let actual = (crc32fast::hash(&buf[..at]) & 0xffff) as u16;
        if stated != actual {
            return Err(Damage::BadHeader(format!(
                "header CRC mismatch: the header says {stated:04x}, its bytes give {actual:04x}"
            )));
        }
        at += 2;
    }
    if buf.len() >= at {
        Ok(Some(at))
    } else {
        header_pending(buf)
    }
}

/// The most a gzip header may hold (extra field, name and comment included): CloudTrail's
/// headers are 10 bytes; a longer one is never buffered without end.
const MAX_HEADER_BYTES: usize = 256 * 1024;

/// More header bytes are needed, unless the header is already longer than any reasonable one.
fn header_pending(buf: &[u8]) -> Result<Option<usize>, Damage> {
    if buf.len() > MAX_HEADER_BYTES {
        return Err(Damage::BadHeader(format!(
            "the header is longer than {MAX_HEADER_BYTES} bytes"
        )));
    }
    Ok(None)
}

/// Inflates exactly one gzip member from `input`, passing the content to `sink` piece by piece,
/// and fails on anything but one intact member with nothing after it.
pub fn inflate_strict<R: BufRead>(
    mut input: R,
    limit: u64,
    mut sink: impl FnMut(&[u8]),
) -> Result<Inflated, InflateError> {
    let mut gunzip = Gunzip::new(limit);
    loop {
        let chunk = input.fill_buf().map_err(InflateError::Read)?;
        if chunk.is_empty() {
            break;
        }
        let n = chunk.len();
        gunzip.feed(chunk, &mut sink)?;
        input.consume(n);
    }
    Ok(gunzip.finish(&mut sink)?)
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

    /// `gz` with the FHCRC flag set and a header CRC inserted after its 10-byte header.
    fn with_header_crc(gz: &[u8], crc: Option<u16>) -> Vec<u8> {
        let mut header = gz[..10].to_vec();
        header[3] |= 0x02;
        let crc = crc.unwrap_or((crc32fast::hash(&header) & 0xffff) as u16);
        let mut out = header;
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&gz[10..]);
        out
    }

    #[test]
    fn a_header_crc_is_checked_when_present() {
        let content = b"header crc".repeat(50);
        let gz = gzip(&content);
        let good = with_header_crc(&gz, None);
        let got = hash_gzip(&good[..]).unwrap();
        assert_eq!(hex::encode(got.sha256), sha256_hex(&content));
        let right = (crc32fast::hash(&good[..10]) & 0xffff) as u16;
        let bad = with_header_crc(&gz, Some(right ^ 1));
        assert!(matches!(damage(&bad), Damage::BadHeader(m) if m.contains("header CRC")));
    }

    #[test]
    fn an_endless_header_name_is_refused_not_buffered() {
        let mut gz = gzip(b"x")[..10].to_vec();
        gz[3] |= 0x08;
        gz.extend(std::iter::repeat_n(b'a', 300 * 1024));
        assert!(matches!(damage(&gz), Damage::BadHeader(m) if m.contains("longer than")));
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
    fn fed_a_byte_at_a_time_it_gives_the_same_answers() {
        let gz = gzip(&b"{\"eventName\":\"GetObject\"}".repeat(3000));
        let mut damaged = gz.clone();
        damaged.extend_from_slice(&gzip(b"x"));
        for bytes in [&gz[..], &gz[..gz.len() - 3], &damaged[..], b"{}"] {
            let whole = hash_gzip(bytes).map_err(|e| e.to_string());
            let mut g = Gunzip::new(u64::MAX);
            let mut fed = Ok(());
            for b in bytes {
                fed = g.feed(std::slice::from_ref(b), &mut |_| {});
                if fed.is_err() {
                    break;
                }
            }
            let bytewise = fed
                .and_then(|_| g.finish(&mut |_| {}))
                .map_err(|e| e.to_string());
            assert_eq!(whole, bytewise);
        }
    }

    #[test]
    fn an_inflater_given_up_mid_object_serves_the_next_object_afresh() {
        let content = b"{\"eventName\":\"ListBuckets\"}".repeat(5000);
        let gz = gzip(&content);
        for _ in 0..4 {
            // Dropped halfway through its body: its inflater goes back to the spares.
            let mut abandoned = Gunzip::new(u64::MAX);
            abandoned.feed(&gz[..gz.len() / 2], &mut |_| {}).unwrap();
            drop(abandoned);
            let mut g = Gunzip::new(u64::MAX);
            g.feed(&gz, &mut |_| {}).unwrap();
            let whole = g.finish(&mut |_| {}).unwrap();
            assert_eq!(hex::encode(whole.sha256), sha256_hex(&content));
            assert_eq!(whole.size, content.len() as u64);
        }
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
