//! Canonical Huffman codes as deflate defines them: decoding tables built
//! from code lengths (a fast table for short codes, a canonical walk for
//! the rest) and the matching encoding table.

use std::io::Read;

use crate::bits::BitReader;
use crate::{Error, Result};

/// Longest code deflate allows.
pub const MAX_BITS: usize = 15;
/// Codes up to this long decode with one table lookup.
const FAST_BITS: u32 = 10;

/// A decoder for one code.
pub struct Decoder {
    /// Per `FAST_BITS`-bit index: symbol and length (0: a longer code).
    fast: Vec<(u16, u8)>,
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
        let (counts, codes) = canonical(lengths)?;
        let mut fast = vec![(0u16, 0u8); 1 << FAST_BITS];
        let mut order: Vec<(u8, u16)> = Vec::new();
        for (sym, (&len, &code)) in lengths.iter().zip(&codes).enumerate() {
            if len == 0 {
                continue;
            }
            order.push((len, sym as u16));
            let len32 = u32::from(len);
            if len32 <= FAST_BITS {
                let rev = reverse(code, len32) as usize;
                let mut i = rev;
                while i < fast.len() {
                    fast[i] = (sym as u16, len);
                    i += 1 << len32;
                }
            }
        }
        order.sort_unstable();
        Ok(Decoder {
            fast,
            counts,
            symbols: order.into_iter().map(|(_, s)| s).collect(),
        })
    }

    /// Decodes one symbol.
    pub fn decode<R: Read>(&self, r: &mut BitReader<R>) -> Result<u16> {
        let peek = r.peek(MAX_BITS as u32)?;
        let (sym, len) = self.fast[(peek & ((1 << FAST_BITS) - 1)) as usize];
        if len > 0 {
            r.consume(u32::from(len))?;
            return Ok(sym);
        }
        // The canonical walk, over the bits already peeked.
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

/// An encoder for one code: per symbol, its reversed code and length.
pub struct Encoder {
    codes: Vec<(u32, u8)>,
}

impl Encoder {
    /// The encoder of the code with these lengths.
    pub fn new(lengths: &[u8]) -> Result<Encoder> {
        let (_, codes) = canonical(lengths)?;
        Ok(Encoder {
            codes: lengths
                .iter()
                .zip(codes)
                .map(|(&l, c)| (if l == 0 { 0 } else { reverse(c, u32::from(l)) }, l))
                .collect(),
        })
    }

    /// The bits to write for `symbol` and their count; an error for a
    /// symbol the code lacks.
    pub fn code(&self, symbol: u16) -> Result<(u32, u32)> {
        match self.codes.get(usize::from(symbol)) {
            Some(&(c, l)) if l > 0 => Ok((c, u32::from(l))),
            _ => Err(Error::Invalid("symbol not in the block's code")),
        }
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
