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
pub mod huffman;
pub mod input;

use std::fmt;
use std::io::{Read, Write};

use bits::{BitReader, BitWriter};
use input::Input;

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

const MEMBER: u8 = b'M';
const TRAILING: u8 = b'T';
const END: u8 = b'E';
const FTEXT_RESERVED: u8 = 0xE0;

fn put<W: Write>(w: &mut W, bytes: &[u8]) -> Result<()> {
    w.write_all(bytes).map_err(Error::Io)
}

fn need<R: Read>(r: &mut BitReader<R>) -> Result<u8> {
    r.byte()?.ok_or(Error::Truncated)
}

/// A gzip member's header, its first two bytes already read.
fn member_header<R: Read>(r: &mut BitReader<R>) -> Result<Vec<u8>> {
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
pub fn puff<R: Read, W: Write>(input: R, mut output: W) -> Result<Stats> {
    let mut r = BitReader::new(input);
    let mut stats = Stats::default();
    put(&mut output, MAGIC)?;
    let mut first = r.byte()?;
    if first.is_none() {
        return Err(Error::Invalid("empty input"));
    }
    while let Some(b1) = first {
        let b2 = r.byte()?;
        if b1 == 0x1f && b2 == Some(0x8b) {
            let header = member_header(&mut r)?;
            put(&mut output, &[MEMBER])?;
            put(&mut output, &(header.len() as u32).to_le_bytes())?;
            put(&mut output, &header)?;
            deflate::puff_stream(&mut r, &mut output)?;
            let mut trailer = [0u8; 8];
            r.bytes(&mut trailer)?;
            put(&mut output, &trailer)?;
            stats.members += 1;
            first = r.byte()?;
            continue;
        }
        if stats.members == 0 {
            return Err(Error::Invalid("not a gzip file"));
        }
        // Whatever follows the last member, as it is, in bounded records.
        let mut rest = vec![b1];
        rest.extend(b2);
        loop {
            while rest.len() < 65536 {
                match r.byte()? {
                    Some(b) => rest.push(b),
                    None => break,
                }
            }
            put(&mut output, &[TRAILING])?;
            put(&mut output, &(rest.len() as u32).to_le_bytes())?;
            put(&mut output, &rest)?;
            stats.trailing += rest.len() as u64;
            if rest.len() < 65536 {
                break;
            }
            rest.clear();
        }
        first = None;
    }
    put(&mut output, &[END])?;
    output.flush().map_err(Error::Io)?;
    Ok(stats)
}

fn read_exact<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<()> {
    r.read_exact(buf).map_err(|_| Error::Truncated)
}

/// Huffs a puffed stream back into the gzip file it came from; the number
/// of bytes written.
pub fn huff<R: Read, W: Write>(input: R, mut output: W) -> Result<u64> {
    let mut h = Huffer::new(input);
    let mut n = 0u64;
    loop {
        let chunk = h.fill()?;
        if chunk.is_empty() {
            break;
        }
        put(&mut output, chunk)?;
        n += chunk.len() as u64;
        let len = chunk.len();
        h.consume(len);
    }
    output.flush().map_err(Error::Io)?;
    Ok(n)
}

/// Most output one step of huffing may buffer: a gzip header, a trailing
/// record or one deflate block. Compressors' blocks are far smaller; a
/// crafted one past this is refused rather than held.
const MAX_STEP: usize = 64 << 20;

/// A buffer that refuses to grow past [`MAX_STEP`].
struct StepBuf(Vec<u8>);

impl Write for StepBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + buf.len() > MAX_STEP {
            return Err(std::io::Error::other("a deflate block over 64 MiB"));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    Magic,
    Record,
    Blocks,
    Done,
}

/// Huffing as a reader: the gzip file comes out as it is read, one gzip
/// header, deflate block or trailing record at a time, so memory stays
/// bounded whatever the file's size.
pub struct Huffer<R> {
    input: Input<R>,
    w: Option<BitWriter<StepBuf>>,
    fixed: Option<deflate::BlockCodes>,
    step: Step,
    ready: Vec<u8>,
    pos: usize,
}

impl<R: Read> Huffer<R> {
    /// Huffs the puffed stream `input`.
    pub fn new(input: R) -> Self {
        Huffer {
            input: Input::new(input),
            w: Some(BitWriter::new(StepBuf(Vec::new()))),
            fixed: None,
            step: Step::Magic,
            ready: Vec::new(),
            pos: 0,
        }
    }

    /// The next bytes of the gzip file; empty at its end.
    pub fn fill(&mut self) -> Result<&[u8]> {
        while self.pos == self.ready.len() && self.step != Step::Done {
            self.ready.clear();
            self.pos = 0;
            self.advance()?;
            if let Some(w) = &mut self.w {
                w.flush_out()?;
                std::mem::swap(&mut self.ready, &mut w.get_mut().0);
            }
        }
        Ok(&self.ready[self.pos..])
    }

    /// Marks `n` bytes of what [`Huffer::fill`] gave as used.
    pub fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.ready.len());
    }

    fn advance(&mut self) -> Result<()> {
        let input = &mut self.input;
        let Some(w) = &mut self.w else {
            self.step = Step::Done;
            return Ok(());
        };
        match self.step {
            Step::Magic => {
                let mut magic = [0u8; 8];
                read_exact(input, &mut magic)?;
                if &magic != MAGIC {
                    return Err(Error::Invalid("not a puffed stream"));
                }
                self.step = Step::Record;
            }
            Step::Record => {
                let mut tag = [0u8];
                read_exact(input, &mut tag)?;
                match tag[0] {
                    MEMBER => {
                        let mut len = [0u8; 4];
                        read_exact(input, &mut len)?;
                        let len = u32::from_le_bytes(len) as usize;
                        if len > 1 << 20 {
                            return Err(Error::Invalid("gzip header over 1 MiB"));
                        }
                        let mut header = vec![0u8; len];
                        read_exact(input, &mut header)?;
                        w.bytes(&header)?;
                        self.step = Step::Blocks;
                    }
                    TRAILING => {
                        let mut len = [0u8; 4];
                        read_exact(input, &mut len)?;
                        let len = u32::from_le_bytes(len) as usize;
                        if len > 65536 {
                            return Err(Error::Invalid("trailing record over 64 KiB"));
                        }
                        let mut data = vec![0u8; len];
                        read_exact(input, &mut data)?;
                        w.bytes(&data)?;
                    }
                    END => {
                        let mut extra = [0u8];
                        if input.read(&mut extra).map_err(Error::Io)? != 0 {
                            return Err(Error::Invalid("data after the end"));
                        }
                        if let Some(w) = self.w.take() {
                            let (_, rest) = w.finish()?;
                            self.ready.extend_from_slice(&rest.0);
                        }
                        self.step = Step::Done;
                    }
                    _ => return Err(Error::Invalid("unknown record")),
                }
            }
            Step::Blocks => {
                if self.fixed.is_none() {
                    self.fixed = Some(deflate::BlockCodes::fixed()?);
                }
                let Some(fixed) = &self.fixed else {
                    return Err(Error::Invalid("no fixed codes"));
                };
                if deflate::huff_block(input, w, fixed)? {
                    let mut trailer = [0u8; 8];
                    read_exact(input, &mut trailer)?;
                    w.bytes(&trailer)?;
                    self.step = Step::Record;
                }
            }
            Step::Done => {}
        }
        Ok(())
    }
}

impl<R: Read> Read for Huffer<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let chunk = self.fill().map_err(|e| match e {
            Error::Io(e) => e,
            other => std::io::Error::new(std::io::ErrorKind::InvalidData, other),
        })?;
        let n = chunk.len().min(buf.len());
        buf[..n].copy_from_slice(&chunk[..n]);
        self.consume(n);
        Ok(n)
    }
}
