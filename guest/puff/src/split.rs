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

use crate::bits::BitReader;
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

/// Whether the block at bit `at` and, unless it is the last, the one
/// after it puff without error, the second's header plausible too.
fn puffs(data: &[u8], at: u64) -> bool {
    let start = at / 8 * 8;
    let Some(rest) = data.get((at / 8) as usize..) else {
        return false;
    };
    let mut r = BitReader::new(rest);
    let Ok(mut p) = Puffing::new() else {
        return false;
    };
    if r.bits((at % 8) as u32).is_err() {
        return false;
    }
    let mut sink = std::io::sink();
    match puff_block(&mut r, &mut sink, &mut p) {
        Ok(true) => true,
        Ok(false) => {
            plausible_header(data, start + r.position())
                && puff_block(&mut r, &mut sink, &mut p).is_ok()
        }
        Err(_) => false,
    }
}

/// The first bit from `from` on, within `within` bytes of it, where a
/// deflate block of `data` seems to start (see the module); `None` if
/// there is none. A stored block's start is ambiguous (zero bits before
/// its header read as one too): the block after it is taken instead, which
/// starts on the byte its length says.
pub fn find_block(data: &[u8], from: u64, within: usize) -> Option<u64> {
    let end = (data.len() as u64 * 8).min(from + within as u64 * 8);
    (from..end).find_map(|at| match bits_at(data, at + 1, 2) {
        0 if plausible_stored(data, at + 3) => {
            let aligned = (at + 3).div_ceil(8) * 8;
            let next = aligned + 32 + 8 * u64::from(bits_at(data, aligned, 16));
            (plausible_header(data, next) && puffs(data, next)).then_some(next)
        }
        2 if plausible_dynamic(data, at + 3) && puffs(data, at) => Some(at),
        _ => None,
    })
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

    #[test]
    fn completeness_is_kraft_equality() {
        assert!(complete(&[1, 1], 7));
        assert!(complete(&[1, 2, 2, 0], 7));
        assert!(!complete(&[1, 2], 7));
        assert!(!complete(&[1, 1, 1], 7));
    }
}
