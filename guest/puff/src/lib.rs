//! A gzip file taken apart into a byte-aligned token form ("puffed") and
//! put back together bit for bit ("huffed"), whatever compressor made it.
//!
//! Two versions of a layer share most of their content, so their puffed
//! forms share most of their bytes — unlike their compressed forms, where a
//! change early on shifts every bit after it. A delta between puffed forms
//! is small, and huffing the rebuilt form gives back the exact compressed
//! layer, digest and all. (The idea is ChromiumOS update_engine's "puffin";
//! this format is imo's own.)
//!
//! The puffed form: `IMOPUFF1`, then for each gzip member `M`, its header's
//! length (u32, little-endian) and bytes, its deflate stream in token form
//! (see [`deflate`]) and its 8-byte trailer; bytes after the last member as
//! `T` records (u32 length, bytes); `E` at the end. Both directions stream
//! in constant memory.

pub mod bits;
pub mod deflate;
mod huffer;
pub mod huffman;
pub mod input;
mod puffer;
mod split;

pub use huffer::Huffer;
pub use puffer::Puffer;
pub use split::find_block;

use std::fmt;
use std::io::{Read, Write};

use bits::BitReader;

/// The first bytes of a puffed stream.
pub const MAGIC: &[u8; 8] = b"IMOPUFF1";

/// Why a stream could not be puffed or huffed.
#[derive(Debug)]
pub enum Error {
    /// Reading or writing failed.
    Io(std::io::Error),
    /// The input ended early.
    Truncated,
    /// The input is not what it should be.
    Invalid(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "{e}"),
            Error::Truncated => f.write_str("the stream ends early"),
            Error::Invalid(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for Error {}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) const MEMBER: u8 = b'M';
pub(crate) const TRAILING: u8 = b'T';
pub(crate) const END: u8 = b'E';
const FTEXT_RESERVED: u8 = 0xE0;

pub(crate) fn put<W: Write>(w: &mut W, bytes: &[u8]) -> Result<()> {
    w.write_all(bytes).map_err(Error::Io)
}

pub(crate) fn need<R: Read>(r: &mut BitReader<R>) -> Result<u8> {
    r.byte()?.ok_or(Error::Truncated)
}

/// A gzip member's header, its first two bytes already read.
pub(crate) fn member_header<R: Read>(r: &mut BitReader<R>) -> Result<Vec<u8>> {
    let mut h = vec![0x1f, 0x8b];
    for _ in 0..8 {
        h.push(need(r)?);
    }
    if h[2] != 8 {
        return Err(Error::Invalid("gzip compression method is not deflate"));
    }
    let flags = h[3];
    if flags & FTEXT_RESERVED != 0 {
        return Err(Error::Invalid("gzip reserved flags set"));
    }
    if flags & 4 != 0 {
        let (a, b) = (need(r)?, need(r)?);
        h.extend([a, b]);
        for _ in 0..u16::from_le_bytes([a, b]) {
            h.push(need(r)?);
        }
    }
    for flag in [8u8, 16] {
        if flags & flag != 0 {
            loop {
                let b = need(r)?;
                h.push(b);
                if b == 0 {
                    break;
                }
            }
        }
    }
    if flags & 2 != 0 {
        h.extend([need(r)?, need(r)?]);
    }
    Ok(h)
}

/// What puffing found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// gzip members.
    pub members: u64,
    /// Bytes after the last member, kept as they are.
    pub trailing: u64,
}

/// Puffs the gzip file `input` into `output`.
pub fn puff<R: Read, W: Write>(input: R, output: W) -> Result<Stats> {
    let mut p = Puffer::new(input);
    copy_steps(&mut p, output)?;
    Ok(p.stats())
}

/// Output handed out a piece at a time ([`Puffer`], [`Huffer`]): one step
/// (a header, a deflate block, a record) is held, whatever the stream's
/// size.
pub trait Steps {
    /// The next bytes; empty at the end.
    fn fill(&mut self) -> Result<&[u8]>;

    /// Marks `n` bytes of what [`Steps::fill`] gave as used.
    fn consume(&mut self, n: usize);

    /// Where a read keeps an error met after it had bytes to give.
    fn held(&mut self) -> &mut Option<std::io::Error>;
}

/// Writes the rest of `steps` to `out`; the number of bytes.
fn copy_steps<S: Steps, W: Write>(steps: &mut S, mut out: W) -> Result<u64> {
    let mut n = 0u64;
    loop {
        let chunk = steps.fill()?;
        if chunk.is_empty() {
            out.flush().map_err(Error::Io)?;
            return Ok(n);
        }
        put(&mut out, chunk)?;
        let len = chunk.len();
        n += len as u64;
        steps.consume(len);
    }
}

/// [`Read::read`] for [`Steps`]: as much as `buf` holds, across steps
/// (a step may be a few bytes, and a reader's every read may cost its
/// caller a call to the host: a hash update, a write to a socket). An
/// error after some bytes is kept for the next read; format errors come
/// as `InvalidData`.
pub(crate) fn read_steps<S: Steps>(steps: &mut S, buf: &mut [u8]) -> std::io::Result<usize> {
    if let Some(e) = steps.held().take() {
        return Err(e);
    }
    let mut n = 0;
    while n < buf.len() {
        let chunk = match steps.fill() {
            Ok([]) => break,
            Ok(chunk) => chunk,
            Err(e) => {
                let e = match e {
                    Error::Io(e) => e,
                    other => std::io::Error::new(std::io::ErrorKind::InvalidData, other),
                };
                if n == 0 {
                    return Err(e);
                }
                *steps.held() = Some(e);
                break;
            }
        };
        let m = chunk.len().min(buf.len() - n);
        buf[n..n + m].copy_from_slice(&chunk[..m]);
        steps.consume(m);
        n += m;
    }
    Ok(n)
}

pub(crate) fn read_exact<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<()> {
    r.read_exact(buf).map_err(|_| Error::Truncated)
}

/// Huffs a puffed stream back into the gzip file it came from; the number
/// of bytes written.
pub fn huff<R: Read, W: Write>(input: R, output: W) -> Result<u64> {
    copy_steps(&mut Huffer::new(input), output)
}

/// Most output one step of huffing may buffer: a gzip header, a trailing
/// record or one deflate block. Compressors' blocks are far smaller; a
/// crafted one past this is refused rather than held.
pub(crate) const MAX_STEP: usize = 64 << 20;

/// A buffer that refuses to grow more than [`MAX_STEP`] past where the
/// step began (the second field).
pub(crate) struct StepBuf(pub(crate) Vec<u8>, pub(crate) usize);

impl Write for StepBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() - self.1 + buf.len() > MAX_STEP {
            return Err(std::io::Error::other("a deflate block over 64 MiB"));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
