//! Deltas in segments, so memory stays bounded whatever a layer's size:
//! the layer's token form is cut into segments of at most [`SEGMENT`]
//! bytes, each a zstd frame made against a window of at most [`WINDOW`]
//! bytes of the base layer's token form. Windows never move back, so both
//! sides puff the base once, as a stream, holding one window, one segment
//! and zstd's tables.
//!
//! A delta of one segment whose window is the whole base is the original
//! single-frame form ([`super::CODEC`]); anything else records its
//! segments ([`super::CODEC_SEGMENTS`]).

use std::io::{self, Read};

use imo_puff::Puffer;

use super::{io_error, parallel, puff_error, MAX_REFERENCE, MAX_WINDOW_LOG};
use crate::error::Result;

/// Most token form in one segment: app's 21 MB layer (32 MiB puffed) is
/// one. A layer's segments share one window when the base fits in it.
pub const SEGMENT: usize = 32 << 20;

/// Most base token form one segment is made against.
pub const WINDOW: usize = 96 << 20;

/// Base layers from this size up to [`HOLD_MOST`] (compressed) are read
/// whole before they are puffed, in two halves at once where a worker is
/// free (see `parallel`); smaller ones are puffed as they download, larger
/// ones a window at a time.
pub(super) const HOLD_FROM: u64 = 4 << 20;
const HOLD_MOST: u64 = 48 << 20;

/// Most segments a delta may have (a 64 GiB layer's token form).
pub const MAX_SEGMENTS: usize = 2048;

/// One segment: a zstd frame of `frame` bytes that rebuilds the next part
/// of the layer's token form against the base's token form from `from` to
/// `to` (`u64::MAX`: to its end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Where the window starts in the base's token form.
    pub from: u64,
    /// Where it ends.
    pub to: u64,
    /// The frame's size in the delta data.
    pub frame: u64,
}

/// The token form of a layer, read as needed from its puffer, from some
/// offset on: bytes before the current window are dropped for good.
pub struct Window<R> {
    puffer: Puffer<R>,
    what: &'static str,
    buf: Vec<u8>,
    start: u64,
    ended: bool,
}

impl<R: Read> Window<R> {
    /// The token form of the gzip stream `gz` of `size` bytes, held at
    /// most `most` bytes at a time; `what` names it in errors.
    pub fn new(gz: R, size: u64, most: usize, what: &'static str) -> Self {
        Window {
            puffer: Puffer::new(gz),
            what,
            // About the token form's size, up to what is held and a block
            // or two more: growing by doubling would need twice the memory
            // for a moment.
            buf: Vec::with_capacity(
                (size.saturating_mul(7) / 4).min(most as u64 + (1 << 20)) as usize
            ),
            start: 0,
            ended: false,
        }
    }

    /// Reads on until `end` (an offset) is held or the token form ends;
    /// a step may bring a block more.
    fn read_to(&mut self, end: u64) -> Result<()> {
        while !self.ended && self.end() < end {
            let more = self
                .puffer
                .step_into(&mut self.buf)
                .map_err(|e| puff_error(self.what, e))?;
            self.ended = !more;
        }
        Ok(())
    }

    /// The token form from `from` to `to` (to its end for `u64::MAX`),
    /// at most `limit` bytes; fewer if it ends first. Windows must not
    /// start before the last one did.
    pub fn get(&mut self, from: u64, to: u64, limit: usize) -> Result<&[u8]> {
        if from < self.start {
            return Err(io_error("delta data", "its windows go back"));
        }
        // Drop what lies before `from`, reading past what is not read yet.
        loop {
            let drop = (from - self.start).min(self.buf.len() as u64) as usize;
            self.buf.drain(..drop);
            self.start += drop as u64;
            if self.start == from || self.ended {
                break;
            }
            self.read_to(from.min(self.start + SEGMENT as u64))?;
        }
        let most = from.saturating_add(limit as u64);
        self.read_to(to.min(most.saturating_add(1)))?;
        if to > most && self.end() > most {
            return Err(io_error(
                self.what,
                format!("its token form is over {} MiB", limit >> 20),
            ));
        }
        let held = self.buf.len() as u64;
        let lo = (from - self.start).min(held) as usize;
        let hi = (to.min(self.end()) - self.start) as usize;
        Ok(&self.buf[lo..hi.max(lo)])
    }

    /// Reads the rest of the layer without puffing it: its verifying
    /// reader then checks its digest, whatever the windows used.
    pub fn read_rest(&mut self) -> Result<()> {
        self.puffer
            .read_rest()
            .map_err(|e| puff_error(self.what, e))
    }

    /// Whether the token form has ended within what is held.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Where what is held ends.
    pub fn end(&self) -> u64 {
        self.start + self.buf.len() as u64
    }
}

impl<'a> Window<Box<dyn Read + 'a>> {
    /// Reads all of the gzip stream (`size` bytes) now and puffs it, in
    /// two halves at once where a worker is free; a token form over `cap`
    /// bytes is left to be puffed as needed, from the bytes read. Before
    /// anything else is read.
    fn puff_all(&mut self, size: u64, cap: usize) -> Result<()> {
        let mut gz = Vec::with_capacity(size as usize);
        let read = self.puffer.get_mut().read_to_end(&mut gz);
        read.map_err(|e| puff_error(self.what, imo_puff::Error::Io(e)))?;
        let held = parallel::puff_into(&gz, &mut self.buf, cap);
        if held.map_err(|e| puff_error(self.what, e))? {
            self.ended = true;
            self.puffer = Puffer::new(Box::new(io::empty()));
        } else {
            self.puffer = Puffer::new(Box::new(io::Cursor::new(gz)));
        }
        Ok(())
    }
}

/// The window of at most `window` bytes a segment of `len` bytes at `at`
/// in the layer's token form is made against: around the place in the
/// base that is as far in, proportionally, as the segment is in the layer
/// (`ratio`: base size over layer size), never before the last window's
/// start.
pub fn place(at: u64, len: usize, ratio: f64, last_from: u64, window: usize) -> (u64, u64) {
    let middle = ((at + len as u64 / 2) as f64 * ratio) as u64;
    let from = middle.saturating_sub(window as u64 / 2).max(last_from);
    (from, from + window as u64)
}

/// The layer's token form rebuilt from the base's (read as needed) and
/// the delta data's frames, as it is read; then huffed by the caller.
pub struct Rebuilt<'a> {
    base: Window<Box<dyn Read + 'a>>,
    /// The base's size, while it is still to be read whole first.
    hold: Option<u64>,
    segments: Vec<Segment>,
    /// Most bytes one window may hold.
    limit: usize,
    next: usize,
    data: &'a [u8],
    at: usize,
    out: Vec<u8>,
    pos: usize,
}

impl<'a> Rebuilt<'a> {
    /// Rebuilds from the base layer `base` (gzip, `base_size` bytes) and
    /// `data`, cut into `segments`.
    pub fn new(
        base: impl Read + 'a,
        base_size: u64,
        segments: Vec<Segment>,
        data: &'a [u8],
    ) -> Self {
        let whole = segments.len() == 1 && segments[0].to == u64::MAX;
        let limit = if whole { MAX_REFERENCE } else { WINDOW };
        Rebuilt {
            base: Window::new(Box::new(base), base_size, limit, "base layer"),
            hold: (HOLD_FROM..=HOLD_MOST)
                .contains(&base_size)
                .then_some(base_size),
            segments,
            limit,
            next: 0,
            data,
            at: 0,
            out: Vec::new(),
            pos: 0,
        }
    }

    /// Decodes the next segment into `out`.
    fn decode_next(&mut self) -> Result<()> {
        use zstd::zstd_safe::{get_error_name, get_frame_content_size, DCtx, DParameter};
        let damaged = |why: String| io_error("delta data", why);
        let seg = self.segments[self.next];
        let frame = usize::try_from(seg.frame)
            .ok()
            .and_then(|n| self.data.get(self.at..self.at.checked_add(n)?))
            .ok_or_else(|| damaged("its segments run past its end".into()))?;
        let size = match get_frame_content_size(frame) {
            Ok(Some(n)) if n <= MAX_REFERENCE as u64 => n as usize,
            Ok(Some(n)) => return Err(damaged(format!("a segment of {n} bytes"))),
            Ok(None) => return Err(damaged("a segment without its size".into())),
            Err(_) => return Err(damaged("a segment that is not a zstd frame".into())),
        };
        if let Some(size) = self.hold.take() {
            self.base.puff_all(size, self.limit)?;
        }
        let prefix = self.base.get(seg.from, seg.to, self.limit)?;
        if seg.to != u64::MAX && prefix.len() as u64 != seg.to - seg.from {
            return Err(io_error(
                "base layer",
                "its token form ends before the delta's window: not the layer the delta was made against",
            ));
        }
        let zstd = |code: usize| damaged(get_error_name(code).to_string());
        let mut dctx = DCtx::create();
        dctx.set_parameter(DParameter::WindowLogMax(MAX_WINDOW_LOG))
            .map_err(zstd)?;
        dctx.ref_prefix(prefix).map_err(zstd)?;
        self.out.clear();
        self.out.reserve_exact(size);
        let n = dctx.decompress(&mut self.out, frame).map_err(zstd)?;
        if n != size {
            return Err(damaged(
                "a segment rebuilds fewer bytes than it records".into(),
            ));
        }
        self.pos = 0;
        self.at += frame.len();
        self.next += 1;
        Ok(())
    }
}

impl Read for Rebuilt<'_> {
    /// Errors carry the guest's error (a damaged delta, a base that is not
    /// the recorded one, a failed read of it) for `classify_io`.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.out.len() {
            if self.next == self.segments.len() {
                if self.at != self.data.len() {
                    let e = io_error("delta data", "bytes after its last segment");
                    return Err(io::Error::other(e));
                }
                return Ok(0);
            }
            self.decode_next().map_err(io::Error::other)?;
        }
        let n = (self.out.len() - self.pos).min(buf.len());
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
