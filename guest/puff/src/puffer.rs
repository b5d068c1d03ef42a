//! Puffing as a reader: a gzip file's token form comes out as it is read,
//! one gzip header, deflate block or trailing record at a time, so a
//! caller can take as much of it as it needs (a window of a base layer)
//! and memory stays bounded whatever the file's size.

use std::io::Read;

use crate::bits::BitReader;
use crate::{
    deflate, member_header, put, read_steps, Error, Result, Stats, StepBuf, Steps, END, MAGIC,
    MEMBER, TRAILING,
};

/// Bytes after the last member go in records of at most this many.
const TRAILING_RECORD: usize = 65536;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    Magic,
    /// A member or trailing bytes next, or the end; the byte already read.
    Record(Option<u8>),
    Blocks,
    /// More trailing bytes.
    Trailing,
    Done,
}

/// Puffing as a reader (see the module).
pub struct Puffer<R> {
    r: BitReader<R>,
    blocks: Option<deflate::Puffing>,
    step: Step,
    ready: StepBuf,
    pos: usize,
    /// An error a read met after it had bytes to give.
    held: Option<std::io::Error>,
    /// Bits to pass over before the first block ([`Puffer::from_block`]).
    skip: u32,
    stats: Stats,
}

impl<R: Read> Puffer<R> {
    /// Puffs the gzip file `input`.
    pub fn new(input: R) -> Self {
        Puffer {
            r: BitReader::new(input),
            blocks: None,
            step: Step::Magic,
            ready: StepBuf(Vec::new(), 0),
            pos: 0,
            held: None,
            skip: 0,
            stats: Stats::default(),
        }
    }

    /// Puffs a gzip file from a deflate block in its middle on: `input`
    /// starts with the byte the block starts in, `skip` (0-7) bits into
    /// it. The token form has no magic: it is what [`Puffer::new`] gives
    /// for the same file from that block on ([`Puffer::block_start`]), so
    /// the two halves of a file puffed apart join by concatenation.
    pub fn from_block(input: R, skip: u32) -> Self {
        let mut p = Puffer::new(input);
        p.step = Step::Blocks;
        p.skip = skip % 8;
        // What follows the member is read as it would be after a first one.
        p.stats.members = 1;
        p
    }

    /// The input. Read from it before the first step only: what a step
    /// reads is buffered past what it took.
    pub fn get_mut(&mut self) -> &mut R {
        self.r.get_mut()
    }

    /// Where, in bits into the input, the next step starts, when it is a
    /// deflate block and nothing of the last step is left to hand out.
    pub fn block_start(&self) -> Option<u64> {
        (self.step == Step::Blocks && self.pos == self.ready.0.len())
            .then(|| self.r.position() + u64::from(self.skip))
    }

    /// What puffing found so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Appends the rest of what [`Steps::fill`] gave, or else the next
    /// step's token form (a gzip header, a deflate block, a trailing
    /// record), to `out`, without copying it through a buffer of its own;
    /// false at the end.
    pub fn step_into(&mut self, out: &mut Vec<u8>) -> Result<bool> {
        if self.pos < self.ready.0.len() {
            out.extend_from_slice(&self.ready.0[self.pos..]);
            self.pos = self.ready.0.len();
            return Ok(true);
        }
        if self.step == Step::Done {
            return Ok(false);
        }
        std::mem::swap(&mut self.ready.0, out);
        self.ready.1 = self.ready.0.len();
        let stepped = self.advance();
        std::mem::swap(&mut self.ready.0, out);
        self.ready.0.clear();
        self.ready.1 = 0;
        self.pos = 0;
        stepped.map(|()| true)
    }

    /// Reads the rest of the gzip input to its end without puffing it, so
    /// a verifying reader beneath has seen all of it; the token form ends.
    pub fn read_rest(&mut self) -> Result<()> {
        self.r.read_rest()?;
        self.step = Step::Done;
        self.ready.0.clear();
        self.pos = 0;
        Ok(())
    }

    fn advance(&mut self) -> Result<()> {
        let (r, out) = (&mut self.r, &mut self.ready);
        match self.step {
            Step::Magic => {
                put(out, MAGIC)?;
                let first = r.byte()?;
                if first.is_none() {
                    return Err(Error::Invalid("empty input"));
                }
                self.step = Step::Record(first);
            }
            Step::Record(None) => {
                put(out, &[END])?;
                self.step = Step::Done;
            }
            Step::Record(Some(b1)) => {
                let b2 = r.byte()?;
                if b1 == 0x1f && b2 == Some(0x8b) {
                    let header = member_header(r)?;
                    put(out, &[MEMBER])?;
                    put(out, &(header.len() as u32).to_le_bytes())?;
                    put(out, &header)?;
                    self.step = Step::Blocks;
                } else if self.stats.members == 0 {
                    return Err(Error::Invalid("not a gzip file"));
                } else {
                    // Whatever follows the last member, as it is.
                    let mut rest = vec![b1];
                    rest.extend(b2);
                    self.trailing(rest)?;
                }
            }
            Step::Trailing => self.trailing(Vec::new())?,
            Step::Blocks => {
                if self.skip > 0 {
                    r.bits(std::mem::take(&mut self.skip))?;
                }
                if self.blocks.is_none() {
                    self.blocks = Some(deflate::Puffing::new()?);
                }
                let Some(blocks) = self.blocks.as_mut() else {
                    return Err(Error::Invalid("no block decoder"));
                };
                if deflate::puff_block(r, out, blocks)? {
                    let mut trailer = [0u8; 8];
                    r.bytes(&mut trailer)?;
                    put(out, &trailer)?;
                    self.stats.members += 1;
                    self.step = Step::Record(r.byte()?);
                }
            }
            Step::Done => {}
        }
        Ok(())
    }

    /// One trailing record: `rest` and what follows, up to a record's
    /// size; the end after a short one.
    fn trailing(&mut self, mut rest: Vec<u8>) -> Result<()> {
        while rest.len() < TRAILING_RECORD {
            match self.r.byte()? {
                Some(b) => rest.push(b),
                None => break,
            }
        }
        let out = &mut self.ready;
        put(out, &[TRAILING])?;
        put(out, &(rest.len() as u32).to_le_bytes())?;
        put(out, &rest)?;
        self.stats.trailing += rest.len() as u64;
        if rest.len() < TRAILING_RECORD {
            put(out, &[END])?;
            self.step = Step::Done;
        } else {
            self.step = Step::Trailing;
        }
        Ok(())
    }
}

impl<R: Read> Steps for Puffer<R> {
    /// The next bytes of the token form; empty at its end.
    fn fill(&mut self) -> Result<&[u8]> {
        while self.pos == self.ready.0.len() && self.step != Step::Done {
            self.ready.0.clear();
            self.pos = 0;
            self.advance()?;
        }
        Ok(&self.ready.0[self.pos..])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.ready.0.len());
    }

    fn held(&mut self) -> &mut Option<std::io::Error> {
        &mut self.held
    }
}

impl<R: Read> Read for Puffer<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        read_steps(self, buf)
    }
}
