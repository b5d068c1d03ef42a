//! Token form back to deflate bits.

use std::io::{Read, Write};

use super::*;
use crate::bits::BitReader;
use crate::input::Input;

fn read_byte<R: Read>(r: &mut R) -> Result<u8> {
    let mut b = [0u8];
    r.read_exact(&mut b).map_err(|_| Error::Truncated)?;
    Ok(b[0])
}

fn read_array<const N: usize, R: Read>(r: &mut R) -> Result<[u8; N]> {
    let mut b = [0u8; N];
    r.read_exact(&mut b).map_err(|_| Error::Truncated)?;
    Ok(b)
}

/// The longest token: a run's control byte and 128 literals.
const MAX_TOKEN: usize = 129;

/// A match's bits: the length code and its extra bits, then the distance
/// code and its extra bits, each pair as one value and count.
#[inline(always)]
fn match_bits(
    control: u8,
    len: u16,
    distance: u32,
    lit: &Encoder,
    dist: &Encoder,
) -> Result<[(u32, u32); 2]> {
    let (i, extra) = if control == MATCH_258_AS_284 {
        if len != 258 {
            return Err(Error::Invalid("the 284 form is only for length 258"));
        }
        (27, 31)
    } else {
        length_code(len)
    };
    if distance > 32768 {
        return Err(Error::Invalid("distance over 32768"));
    }
    let (c, cl) = lit.code(257 + i as u16)?;
    let (di, dextra) = distance_code(distance as u16);
    let (dc, dcl) = dist.code(di as u16)?;
    Ok([
        (c | u32::from(extra) << cl, cl + u32::from(LENGTH_EXTRA[i])),
        (
            dc | u32::from(dextra) << dcl,
            dcl + u32::from(DIST_EXTRA[di]),
        ),
    ])
}

/// Writes one Huffman-coded block's tokens back as bits.
fn huff_tokens<R: Read, W: Write>(
    r: &mut Input<R>,
    w: &mut BitWriter<W>,
    lit: &Encoder,
    dist: &Encoder,
) -> Result<()> {
    loop {
        // Most tokens: parsed from the input's window, written from
        // registers. A token near the window's end goes the general way.
        r.want(4 * MAX_TOKEN)?;
        let window = r.window();
        let mut f = w.fast()?;
        let mut p = 0;
        let mut ended = false;
        while p + MAX_TOKEN <= window.len() && f.room() {
            let control = window[p];
            match control {
                0x00..=0x7F => {
                    let n = usize::from(control) + 1;
                    // Three literals (at most 45 bits) between flushes.
                    let mut three = window[p + 1..p + 1 + n].chunks_exact(3);
                    for t in &mut three {
                        for &b in t {
                            let (c, l) = lit.literal(b)?;
                            f.add(c, l);
                        }
                        f.flush();
                    }
                    for &b in three.remainder() {
                        let (c, l) = lit.literal(b)?;
                        f.add(c, l);
                    }
                    f.flush();
                    p += 1 + n;
                }
                MATCH | MATCH_258_AS_284 => {
                    let len = u16::from(window[p + 1]) + 3;
                    let distance =
                        u32::from(u16::from_le_bytes([window[p + 2], window[p + 3]])) + 1;
                    // At most 20 and 28 bits.
                    for (v, c) in match_bits(control, len, distance, lit, dist)? {
                        f.add(v, c);
                    }
                    f.flush();
                    p += 4;
                }
                END_OF_BLOCK => {
                    let (c, l) = lit.code(256)?;
                    f.add(c, l);
                    f.flush();
                    p += 1;
                    ended = true;
                    break;
                }
                _ => return Err(Error::Invalid("unknown token")),
            }
        }
        let state = f.state();
        w.resume(state);
        r.advance(p);
        if ended {
            return Ok(());
        }
        if p > 0 {
            continue;
        }
        // One token the general way (the window holds less than the
        // longest token: the input is ending).
        let control = read_byte(r)?;
        match control {
            0x00..=0x7F => {
                let mut run = [0u8; 128];
                let n = usize::from(control) + 1;
                r.read_exact(&mut run[..n]).map_err(|_| Error::Truncated)?;
                for &b in &run[..n] {
                    let (c, l) = lit.literal(b)?;
                    w.bits(c, l)?;
                }
            }
            MATCH | MATCH_258_AS_284 => {
                let [l, d0, d1] = read_array::<3, _>(r)?;
                let len = u16::from(l) + 3;
                let distance = u32::from(u16::from_le_bytes([d0, d1])) + 1;
                for (v, c) in match_bits(control, len, distance, lit, dist)? {
                    w.bits(v, c)?;
                }
            }
            END_OF_BLOCK => {
                let (c, l) = lit.code(256)?;
                return w.bits(c, l);
            }
            _ => return Err(Error::Invalid("unknown token")),
        }
    }
}

/// The fixed Huffman codes, made once per stream.
pub struct FixedCodes {
    lit: Encoder,
    dist: Encoder,
}

impl FixedCodes {
    /// The codes of fixed blocks.
    pub fn new() -> Result<FixedCodes> {
        Ok(FixedCodes {
            lit: Encoder::new(&fixed_literal_lengths())?,
            dist: Encoder::new(&fixed_distance_lengths())?,
        })
    }
}

/// Puts one deflate block back together from token form, and after the
/// last block its padding; whether it was the last.
pub fn huff_block<R: Read, W: Write>(
    r: &mut Input<R>,
    w: &mut BitWriter<W>,
    fixed: &FixedCodes,
) -> Result<bool> {
    let tag = read_byte(r)?;
    let last = tag.is_ascii_uppercase();
    w.bits(u32::from(last), 1)?;
    match tag.to_ascii_lowercase() {
        STORED => {
            w.bits(0, 2)?;
            let pad = read_byte(r)?;
            let count = w.misalignment();
            if u32::from(pad) >> count != 0 {
                return Err(Error::Invalid("padding wider than the gap"));
            }
            w.bits(u32::from(pad), count)?;
            let head = read_array::<4, _>(r)?;
            w.bytes(&head)?;
            let len = usize::from(u16::from_le_bytes([head[0], head[1]]));
            let mut data = vec![0u8; len];
            r.read_exact(&mut data).map_err(|_| Error::Truncated)?;
            w.bytes(&data)?;
        }
        FIXED => {
            w.bits(1, 2)?;
            huff_tokens(r, w, &fixed.lit, &fixed.dist)?;
        }
        DYNAMIC => {
            w.bits(2, 2)?;
            let nbits = u64::from(u16::from_le_bytes(read_array::<2, _>(r)?));
            let mut bits = vec![0u8; nbits.div_ceil(8) as usize];
            r.read_exact(&mut bits).map_err(|_| Error::Truncated)?;
            // The header's own bits tell the codes.
            let mut header = BitReader::new(&bits[..]);
            header.start_recording();
            let (lit, dist) = read_dynamic_header(&mut header)?;
            let (used, _) = header.stop_recording()?;
            if used != nbits {
                return Err(Error::Invalid("dynamic header length does not match"));
            }
            let mut hr = BitReader::new(&bits[..]);
            let mut left = nbits;
            while left > 0 {
                let n = left.min(16) as u32;
                w.bits(hr.bits(n)?, n)?;
                left -= u64::from(n);
            }
            huff_tokens(r, w, &Encoder::new(&lit)?, &Encoder::new(&dist)?)?;
        }
        _ => return Err(Error::Invalid("unknown block tag")),
    }
    if last {
        let pad = read_byte(r)?;
        let count = w.misalignment();
        if u32::from(pad) >> count != 0 {
            return Err(Error::Invalid("padding wider than the gap"));
        }
        w.bits(u32::from(pad), count)?;
    }
    Ok(last)
}
