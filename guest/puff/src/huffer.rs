//! Huffing as a reader: a puffed stream back into its gzip file, one
//! record or deflate block at a time.

use std::io::Read;

use crate::bits::BitWriter;
use crate::input::Input;
use crate::{
    deflate, read_exact, read_steps, Error, Result, StepBuf, Steps, END, MAGIC, MEMBER, TRAILING,
};

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
    /// An error a read met after it had bytes to give.
    held: Option<std::io::Error>,
}

impl<R: Read> Huffer<R> {
    /// Huffs the puffed stream `input`.
    pub fn new(input: R) -> Self {
        Huffer {
            input: Input::new(input),
            w: Some(BitWriter::new(StepBuf(Vec::new(), 0))),
            fixed: None,
            step: Step::Magic,
            ready: Vec::new(),
            pos: 0,
            held: None,
        }
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

impl<R: Read> Steps for Huffer<R> {
    /// The next bytes of the gzip file; empty at its end.
    fn fill(&mut self) -> Result<&[u8]> {
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

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.ready.len());
    }

    fn held(&mut self) -> &mut Option<std::io::Error> {
        &mut self.held
    }
}

impl<R: Read> Read for Huffer<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        read_steps(self, buf)
    }
}
