//! Where a deflate block starts in the middle of a gzip file, found
//! without puffing what comes before it, so that the file's two halves can
//! be puffed at once (a base layer's halves on two cores).
//!
//! Deflate marks no block boundaries: a block starts at any bit. A place
//! is taken for a block start when a block header a compressor would write
//! begins there (a dynamic header whose three codes are complete, or a
//! stored block's length and its complement) and that block and the next
//! one puff without error. Random bits pass that rarely; and whoever puffs
//! the first half checks that it ends exactly there, so a wrong guess
//! costs only the parallelism, never a wrong token form.

use crate::bits::{BitReader, CHUNK};
use crate::deflate::{puff_block, Puffing, CLEN_ORDER};

/// `count` (at most 32) bits of `data` from bit `at` on, first bit lowest;
/// zeros past its end.
fn bits_at(data: &[u8], at: u64, count: u32) -> u32 {
    let byte = (at / 8) as usize;
    let mut word = [0u8; 8];
    if byte < data.len() {
        let end = (byte + 8).min(data.len());
        word[..end - byte].copy_from_slice(&data[byte..end]);
    }
    let v = u64::from_le_bytes(word) >> (at % 8);
    (v & ((1u64 << count) - 1)) as u32
}

/// Whether code `lengths` (each at most `max`) form a complete prefix code.
fn complete(lengths: &[u8], max: u32) -> bool {
    let sum: u64 = lengths
        .iter()
        .filter(|&&l| l > 0)
        .map(|&l| 1u64 << (max - u32::from(l)))
        .sum();
    sum == 1 << max
}

/// A canonical code's decoding by walking it a bit at a time (for the
/// code length code: 19 symbols, lengths up to 7).
struct Walk {
    counts: [u16; 8],
    symbols: [u8; 19],
}

impl Walk {
    fn new(lengths: &[u8; 19]) -> Walk {
        let mut counts = [0u16; 8];
        for &l in lengths {
            counts[usize::from(l)] += 1;
        }
        counts[0] = 0;
        let mut offs = [0usize; 8];
        for l in 1..7 {
            offs[l + 1] = offs[l] + usize::from(counts[l]);
        }
        let mut symbols = [0u8; 19];
        for (s, &l) in lengths.iter().enumerate() {
            if l > 0 {
                symbols[offs[usize::from(l)]] = s as u8;
                offs[usize::from(l)] += 1;
            }
        }
        Walk { counts, symbols }
    }

    /// The symbol at bit `*at`, moving past it.
    fn decode(&self, data: &[u8], at: &mut u64) -> Option<u8> {
        let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
        for len in 1..8 {
            code |= bits_at(data, *at, 1) as i32;
            *at += 1;
            let count = i32::from(self.counts[len]);
            if code - count < first {
                return Some(self.symbols[(index + code - first) as usize]);
            }
            index += count;
            first = (first + count) << 1;
            code <<= 1;
        }
        None
    }
}

/// Whether a dynamic block header a compressor could have written starts
/// at bit `at` (just past BFINAL and BTYPE): its code length code and its
/// literal/length code complete, its distance code complete or of at most
/// one code, an end-of-block code.
fn plausible_dynamic(data: &[u8], mut at: u64) -> bool {
    let mut take = |n: u32| {
        let v = bits_at(data, at, n);
        at += u64::from(n);
        v as usize
    };
    let (hlit, hdist, hclen) = (take(5) + 257, take(5) + 1, take(4) + 4);
    if hlit > 286 || hdist > 30 {
        return false;
    }
    let mut clen = [0u8; 19];
    for &i in &CLEN_ORDER[..hclen] {
        clen[i] = take(3) as u8;
    }
    if !complete(&clen, 7) {
        return false;
    }
    let walk = Walk::new(&clen);
    let mut lengths = [0u8; 316];
    let mut n = 0;
    while n < hlit + hdist {
        let Some(sym) = walk.decode(data, &mut at) else {
            return false;
        };
        let mut take = |bits: u32| {
            let v = bits_at(data, at, bits);
            at += u64::from(bits);
            v as usize
        };
        let (value, repeat) = match sym {
            0..=15 => (sym, 1),
            16 if n > 0 => (lengths[n - 1], 3 + take(2)),
            16 => return false,
            17 => (0, 3 + take(3)),
            _ => (0, 11 + take(7)),
        };
        if n + repeat > hlit + hdist {
            return false;
        }
        lengths[n..n + repeat].fill(value);
        n += repeat;
    }
    let (lit, dist) = lengths[..n].split_at(hlit);
    lit[256] != 0
        && complete(lit, 15)
        && (complete(dist, 15) || dist.iter().filter(|&&l| l > 0).count() <= 1)
}

/// Whether a stored block's length and its complement follow at bit `at`
/// (just past BFINAL and BTYPE).
fn plausible_stored(data: &[u8], at: u64) -> bool {
    let aligned = at.div_ceil(8) * 8;
    let len = bits_at(data, aligned, 16);
    let nlen = bits_at(data, aligned + 16, 16);
    len == !nlen & 0xffff
}

/// Whether a stored or dynamic block's header, as a compressor would
/// write it, starts at bit `at` (fixed-code blocks are not taken: random
/// bits pass for one too often, and compressors rarely write them in the
/// middle of a large file).
fn plausible_header(data: &[u8], at: u64) -> bool {
    match bits_at(data, at + 1, 2) {
        0 => plausible_stored(data, at + 3),
        2 => plausible_dynamic(data, at + 3),
        _ => false,
    }
}

/// Most input the blocks tried at one place may take: compressors' blocks
/// are 10-100 KB.
const TRY_MOST: usize = 1 << 20;

/// Most work one search does, in bytes of input its tries read (each
/// counted as at least a reader's chunk, which it zeroes): crafted input
/// with a plausible header at every other byte stops here, not after hours.
const SEARCH_BUDGET: u64 = 64 << 20;

/// Whether the block at bit `at` and, unless it is the last, the one
/// after it puff without error within [`TRY_MOST`] bytes, the second's
/// header plausible too; what was read is taken off `budget`.
fn puffs(data: &[u8], at: u64, p: &mut Puffing, budget: &mut u64) -> bool {
    let start = at / 8 * 8;
    let Some(rest) = data.get((at / 8) as usize..) else {
        return false;
    };
    let mut r = BitReader::new(&rest[..rest.len().min(TRY_MOST)]);
    let mut sink = std::io::sink();
    let ok = r.bits((at % 8) as u32).is_ok()
        && match puff_block(&mut r, &mut sink, p) {
            Ok(true) => true,
            Ok(false) => {
                plausible_header(data, start + r.position())
                    && puff_block(&mut r, &mut sink, p).is_ok()
            }
            Err(_) => false,
        };
    *budget = budget.saturating_sub((r.position() / 8).max(CHUNK as u64));
    ok
}

/// The first bit from `from` on, within `within` bytes of it, where a
/// deflate block of `data` seems to start (see the module); `None` if
/// there is none, or none found within a bounded amount of work. A stored
/// block's start is ambiguous (zero bits before its header read as one
/// too): the block after it is taken instead, which starts on the byte its
/// length says.
pub fn find_block(data: &[u8], from: u64, within: usize) -> Option<u64> {
    search(data, from, within, SEARCH_BUDGET)
}

/// [`find_block`] with `budget` bytes of tries.
fn search(data: &[u8], from: u64, within: usize, mut budget: u64) -> Option<u64> {
    let end = (data.len() as u64 * 8).min(from.saturating_add(within as u64 * 8));
    let mut p = Puffing::new().ok()?;
    for at in from..end {
        if budget == 0 {
            return None;
        }
        match bits_at(data, at + 1, 2) {
            0 if plausible_stored(data, at + 3) => {
                let aligned = (at + 3).div_ceil(8) * 8;
                let next = aligned + 32 + 8 * u64::from(bits_at(data, aligned, 16));
                if plausible_header(data, next) && puffs(data, next, &mut p, &mut budget) {
                    return Some(next);
                }
            }
            2 if plausible_dynamic(data, at + 3) && puffs(data, at, &mut p, &mut budget) => {
                return Some(at);
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_read_from_any_place() {
        let data = [0b1010_1100, 0xff, 0x01];
        assert_eq!(bits_at(&data, 0, 4), 0b1100);
        assert_eq!(bits_at(&data, 2, 8), 0b1110_1011);
        assert_eq!(bits_at(&data, 16, 8), 1);
        assert_eq!(bits_at(&data, 20, 8), 0);
        assert_eq!(bits_at(&data, 100, 8), 0);
    }

    /// 300 KB of text-like lines, gzipped by miniz_oxide.
    fn gzipped() -> Vec<u8> {
        use std::io::Write;
        let mut text = Vec::new();
        for i in 0..20_000u32 {
            writeln!(
                text,
                "line {} of {}",
                i.wrapping_mul(2_654_435_761) % 7919,
                i % 13
            )
            .unwrap();
        }
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        e.write_all(&text).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn a_search_stops_when_its_budget_is_spent() {
        let gz = gzipped();
        let from = gz.len() as u64 / 2 * 8;
        let found = find_block(&gz, from, gz.len()).expect("a block past the middle");
        assert!(found >= from);
        assert_eq!(search(&gz, from, gz.len(), SEARCH_BUDGET), Some(found));
        // With no budget left, nothing is tried.
        assert_eq!(search(&gz, from, gz.len(), 0), None);
        // Nothing to search: empty input, or a start past the end.
        assert_eq!(find_block(&[], 0, 100), None);
        assert_eq!(find_block(&gz, u64::MAX - 5, 100), None);
    }

    #[test]
    fn completeness_is_kraft_equality() {
        assert!(complete(&[1, 1], 7));
        assert!(complete(&[1, 2, 2, 0], 7));
        assert!(!complete(&[1, 2], 7));
        assert!(!complete(&[1, 1, 1], 7));
    }
}
