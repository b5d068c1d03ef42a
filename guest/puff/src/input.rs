//! Buffered input whose unread bytes a hot loop can parse as a slice.

use std::io::Read;

use crate::bits::CHUNK;
use crate::{Error, Result};

/// Buffered input whose unread bytes can be seen at once ([`Input::window`]),
/// so a hot loop can parse them from a slice.
pub struct Input<R> {
    inner: R,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    eof: bool,
}

impl<R: Read> Input<R> {
    /// Input read from `inner`.
    pub fn new(inner: R) -> Self {
        Input {
            inner,
            buf: vec![0; 4 * CHUNK].into_boxed_slice(),
            pos: 0,
            end: 0,
            eof: false,
        }
    }

    /// The bytes read and not yet used.
    pub fn window(&self) -> &[u8] {
        &self.buf[self.pos..self.end]
    }

    /// Marks `n` bytes of the window as used.
    pub fn advance(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.end);
    }

    /// Reads more, keeping the window's bytes; false at the end.
    pub fn more(&mut self) -> Result<bool> {
        if self.eof {
            return Ok(false);
        }
        self.buf.copy_within(self.pos..self.end, 0);
        self.end -= self.pos;
        self.pos = 0;
        if self.end == self.buf.len() {
            return Ok(true);
        }
        loop {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::Io(e)),
            }
        }
    }

    /// Makes the window at least `n` bytes long where the input allows
    /// (`n` at most a quarter of the buffer).
    pub fn want(&mut self, n: usize) -> Result<()> {
        while self.end - self.pos < n && self.more()? {}
        Ok(())
    }
}

impl<R: Read> Read for Input<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.end {
            if out.len() >= self.buf.len() {
                return self.inner.read(out);
            }
            self.more().map_err(|e| match e {
                Error::Io(e) => e,
                other => std::io::Error::other(other),
            })?;
        }
        let n = (self.end - self.pos).min(out.len());
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
