//! Canonical Huffman codes as deflate defines them: decoding tables built
//! from code lengths (a fast table for short codes, a canonical walk for
//! the rest) and the matching encoding table.

use std::io::Read;

use crate::bits::BitReader;
use crate::{Error, Result};

/// Longest code deflate allows.
pub const MAX_BITS: usize = 15;
/// Codes up to this long decode with one table lookup (most of a
/// layer's literal and distance codes are; the table stays in L1).
const FAST_BITS: u32 = 11;
const FAST_SIZE: usize = 1 << FAST_BITS;
/// A fast-table entry: the symbol in the low bits, the code's length
/// above them (0: a longer code).
const SYMBOL_BITS: u32 = 9;

/// A decoder for one code.
pub struct Decoder {
    /// Per `FAST_BITS`-bit index: symbol and length, packed.
    fast: Box<[u16; FAST_SIZE]>,
    /// Codes per length, and the symbols ordered by (length, symbol).
    counts: [u16; MAX_BITS + 1],
    symbols: Vec<u16>,
}

/// `code` of `len` bits, reversed (deflate sends Huffman codes MSB first).
fn reverse(code: u32, len: u32) -> u32 {
    code.reverse_bits() >> (32 - len)
}

/// The canonical code of each symbol, from the lengths; an error if the
/// lengths oversubscribe the code space. Incomplete codes are allowed
/// (deflate permits them; an unused code is an error when decoded).
fn canonical(lengths: &[u8]) -> Result<([u16; MAX_BITS + 1], Vec<u32>)> {
    let mut counts = [0u16; MAX_BITS + 1];
    for &l in lengths {
        if l as usize > MAX_BITS {
            return Err(Error::Invalid("code length over 15"));
        }
        counts[l as usize] += 1;
    }
    counts[0] = 0;
    let mut left: i32 = 1;
    for &c in &counts[1..] {
        left = (left << 1) - i32::from(c);
        if left < 0 {
            return Err(Error::Invalid("oversubscribed Huffman code"));
        }
    }
    let mut next = [0u32; MAX_BITS + 2];
    let mut code = 0u32;
    for len in 1..=MAX_BITS {
        code = (code + u32::from(counts[len - 1])) << 1;
        next[len] = code;
    }
    let codes = lengths
        .iter()
        .map(|&l| {
            if l == 0 {
                return 0;
            }
            let c = next[l as usize];
            next[l as usize] += 1;
            c
        })
        .collect();
    Ok((counts, codes))
}

impl Decoder {
    /// The decoder of the code with these lengths (0: symbol unused).
    pub fn new(lengths: &[u8]) -> Result<Decoder> {
        if lengths.len() > 1 << SYMBOL_BITS {
            return Err(Error::Invalid("too many symbols"));
        }
        let (counts, codes) = canonical(lengths)?;
        let mut fast = Box::new([0u16; FAST_SIZE]);
        // Symbols ordered by (length, symbol): each length's slots start
        // after the shorter lengths' (a counting sort).
        let mut start = [0usize; MAX_BITS + 1];
        for len in 1..MAX_BITS {
            start[len + 1] = start[len] + usize::from(counts[len]);
        }
        let mut symbols = vec![0u16; start[MAX_BITS] + usize::from(counts[MAX_BITS])];
        for (sym, (&len, &code)) in lengths.iter().zip(&codes).enumerate() {
            if len == 0 {
                continue;
            }
            symbols[start[usize::from(len)]] = sym as u16;
            start[usize::from(len)] += 1;
            let len32 = u32::from(len);
            if len32 <= FAST_BITS {
                let entry = sym as u16 | u16::from(len) << SYMBOL_BITS;
                let mut i = reverse(code, len32) as usize;
                while i < FAST_SIZE {
                    fast[i] = entry;
                    i += 1 << len32;
                }
            }
        }
        Ok(Decoder {
            fast,
            counts,
            symbols,
        })
    }

    /// Decodes one symbol.
    #[inline(always)]
    pub fn decode<R: Read>(&self, r: &mut BitReader<R>) -> Result<u16> {
        let peek = r.peek(MAX_BITS as u32)?;
        let entry = self.fast[peek as usize & (FAST_SIZE - 1)];
        let len = u32::from(entry >> SYMBOL_BITS);
        if len > 0 {
            r.consume(len)?;
            return Ok(entry & ((1 << SYMBOL_BITS) - 1));
        }
        self.decode_long(r, peek)
    }

    /// The symbol and code length the fast table gives for the next bits
    /// `peek`; length 0 for a longer code ([`Decoder::decode`] finds it).
    #[inline(always)]
    pub(crate) fn lookup(&self, peek: u64) -> (u16, u32) {
        let entry = self.fast[peek as usize & (FAST_SIZE - 1)];
        (
            entry & ((1 << SYMBOL_BITS) - 1),
            u32::from(entry >> SYMBOL_BITS),
        )
    }

    /// The canonical walk, over the bits already peeked: codes longer than
    /// the fast table's.
    #[cold]
    fn decode_long<R: Read>(&self, r: &mut BitReader<R>, peek: u32) -> Result<u16> {
        let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
        for len in 1..=MAX_BITS {
            code |= ((peek >> (len - 1)) & 1) as i32;
            let count = i32::from(self.counts[len]);
            if code - first < count {
                r.consume(len as u32)?;
                return Ok(self.symbols[(index + code - first) as usize]);
            }
            index += count;
            first = (first + count) << 1;
            code <<= 1;
        }
        Err(Error::Invalid("unused Huffman code"))
    }
}

/// Most symbols a code has (literal/length: 288).
const MAX_SYMBOLS: usize = 288;

/// An encoder for one code: per symbol, its reversed code and, above
/// it, its length (0: not in the code).
pub struct Encoder {
    codes: Box<[u32; MAX_SYMBOLS]>,
}

impl Encoder {
    /// The encoder of the code with these lengths.
    pub fn new(lengths: &[u8]) -> Result<Encoder> {
        if lengths.len() > MAX_SYMBOLS {
            return Err(Error::Invalid("too many symbols"));
        }
        let (_, codes) = canonical(lengths)?;
        let mut table = Box::new([0u32; MAX_SYMBOLS]);
        for ((slot, &l), c) in table.iter_mut().zip(lengths).zip(codes) {
            if l > 0 {
                *slot = reverse(c, u32::from(l)) | u32::from(l) << 16;
            }
        }
        Ok(Encoder { codes: table })
    }

    /// The bits to write for `symbol` and their count; an error for a
    /// symbol the code lacks.
    #[inline(always)]
    pub fn code(&self, symbol: u16) -> Result<(u32, u32)> {
        match self.codes.get(usize::from(symbol)) {
            Some(&e) if e >> 16 != 0 => Ok((e & 0xffff, e >> 16)),
            _ => Err(Error::Invalid("symbol not in the block's code")),
        }
    }

    /// A literal byte's bits and their count, 0 if the code lacks it (for
    /// loops that check a run at once).
    #[inline(always)]
    pub fn literal_or_empty(&self, b: u8) -> (u32, u32) {
        let e = self.codes[usize::from(b)];
        (e & 0xffff, e >> 16)
    }

    /// [`Encoder::code`] for a literal byte.
    #[inline(always)]
    pub fn literal(&self, b: u8) -> Result<(u32, u32)> {
        let e = self.codes[usize::from(b)];
        if e >> 16 == 0 {
            return Err(Error::Invalid("symbol not in the block's code"));
        }
        Ok((e & 0xffff, e >> 16))
    }
}

/// The fixed literal/length code lengths (RFC 1951, 3.2.6).
pub fn fixed_literal_lengths() -> [u8; 288] {
    let mut l = [0u8; 288];
    for (i, v) in l.iter_mut().enumerate() {
        *v = match i {
            0..=143 => 8,
            144..=255 => 9,
            256..=279 => 7,
            _ => 8,
        };
    }
    l
}

/// The fixed distance code lengths.
pub fn fixed_distance_lengths() -> [u8; 30] {
    [5; 30]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bits::BitWriter;

    #[test]
    fn encodes_what_it_decodes() {
        // A skewed code with long codes, past the fast table.
        let mut lengths = vec![0u8; 40];
        let spec = [1u8, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 15];
        lengths[..spec.len()].copy_from_slice(&spec);
        let enc = Encoder::new(&lengths).unwrap();
        let dec = Decoder::new(&lengths).unwrap();
        let mut w = BitWriter::new(Vec::new());
        for s in (0..16).chain((0..16).rev()) {
            let (c, l) = enc.code(s).unwrap();
            w.bits(c, l).unwrap();
        }
        let (_, bytes) = w.finish().unwrap();
        let mut r = BitReader::new(&bytes[..]);
        for s in (0..16).chain((0..16).rev()) {
            assert_eq!(dec.decode(&mut r).unwrap(), s);
        }
        assert!(enc.code(20).is_err());
    }

    #[test]
    fn refuses_oversubscribed_codes() {
        assert!(Decoder::new(&[1, 1, 1]).is_err());
        // Incomplete is allowed; an unused code fails when met.
        let d = Decoder::new(&[0, 2]).unwrap();
        let mut r = BitReader::new(&[0xFFu8][..]);
        assert!(d.decode(&mut r).is_err());
    }
}
