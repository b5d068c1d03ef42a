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
    codes: &BlockCodes,
) -> Result<()> {
    let (lit, dist) = (&codes.lit, &codes.dist);
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
                    // Literals until the bits held might not take another
                    // (15 bits at most): a flush every six or so instead of
                    // every three. A literal the code lacks adds nothing and
                    // fails the run.
                    let mut missing = false;
                    for &b in &window[p + 1..p + 1 + n] {
                        let (c, l) = codes.lit.literal_or_empty(b);
                        missing |= l == 0;
                        f.add(c, l);
                        if f.full() {
                            f.flush();
                        }
                    }
                    f.flush();
                    if missing {
                        return Err(Error::Invalid("symbol not in the block's code"));
                    }
                    p += 1 + n;
                }
                MATCH => {
                    // At most 20 and 28 bits.
                    let (lv, lc) = codes.length(window[p + 1]);
                    let (dv, dc) =
                        codes.distance(u16::from_le_bytes([window[p + 2], window[p + 3]]));
                    if lc == 0 || dc == 0 {
                        return Err(Error::Invalid("symbol not in the block's code"));
                    }
                    f.add(lv, lc);
                    f.add(dv, dc);
                    f.flush();
                    p += 4;
                }
                MATCH_258_AS_284 => {
                    let len = u16::from(window[p + 1]) + 3;
                    let distance =
                        u32::from(u16::from_le_bytes([window[p + 2], window[p + 3]])) + 1;
                    for (v, c) in match_bits(control, len, distance, &codes.lit, &codes.dist)? {
                        f.add(v, c);
                    }
                    f.flush();
                    p += 4;
                }
                END_OF_BLOCK => {
                    let (c, l) = codes.lit.code(256)?;
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

/// A block's codes, with every match length's bits (code and extra
/// bits) and every distance code's worked out once: a match is then two
/// lookups.
pub struct BlockCodes {
    lit: Encoder,
    dist: Encoder,
    /// Per `length - 3`: the bits and, from bit 24, their count (0: the
    /// code lacks the length's symbol).
    lengths: Box<[u32; 256]>,
    /// Per distance code: its bits, their count (0: not in the code) from
    /// bit 16, its extra bits' count from bit 24.
    distances: [u32; 30],
}

impl BlockCodes {
    /// The codes with these literal/length and distance code lengths.
    pub fn new(lit: &[u8], dist: &[u8]) -> Result<BlockCodes> {
        let (lit, dist) = (Encoder::new(lit)?, Encoder::new(dist)?);
        let mut lengths = Box::new([0u32; 256]);
        for (l, slot) in lengths.iter_mut().enumerate() {
            let (i, extra) = length_code(l as u16 + 3);
            if let Ok((c, cl)) = lit.code(257 + i as u16) {
                let count = cl + u32::from(LENGTH_EXTRA[i]);
                *slot = (c | u32::from(extra) << cl) | count << 24;
            }
        }
        let mut distances = [0u32; 30];
        for (i, slot) in distances.iter_mut().enumerate() {
            if let Ok((c, cl)) = dist.code(i as u16) {
                *slot = c | cl << 16 | u32::from(DIST_EXTRA[i]) << 24;
            }
        }
        Ok(BlockCodes {
            lit,
            dist,
            lengths,
            distances,
        })
    }

    /// The fixed codes.
    pub fn fixed() -> Result<BlockCodes> {
        BlockCodes::new(&fixed_literal_lengths(), &fixed_distance_lengths())
    }

    /// The bits of match length `l + 3` and their count (0: not in the
    /// code).
    #[inline(always)]
    fn length(&self, l: u8) -> (u32, u32) {
        let e = self.lengths[usize::from(l)];
        (e & 0xff_ffff, e >> 24)
    }

    /// The bits of distance `d + 1` and their count (0: not in the code,
    /// or over 32768).
    #[inline(always)]
    fn distance(&self, d: u16) -> (u32, u32) {
        let d = usize::from(d);
        if d >= 32768 {
            return (0, 0);
        }
        let i = usize::from(if d < 256 {
            DIST_INDEX[d]
        } else {
            DIST_INDEX[256 + (d >> 7)]
        });
        let e = self.distances[i];
        let (code, count) = (e & 0xffff, (e >> 16) & 0xff);
        if count == 0 {
            return (0, 0);
        }
        let extra = (d + 1 - usize::from(DIST_BASE[i])) as u32;
        (code | extra << count, count + (e >> 24))
    }
}

/// Puts one deflate block back together from token form, and after the
/// last block its padding; whether it was the last.
pub fn huff_block<R: Read, W: Write>(
    r: &mut Input<R>,
    w: &mut BitWriter<W>,
    fixed: &BlockCodes,
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
            huff_tokens(r, w, fixed)?;
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
            huff_tokens(r, w, &BlockCodes::new(&lit, &dist)?)?;
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
