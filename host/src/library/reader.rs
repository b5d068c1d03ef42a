//! A streaming pull's archive, read as the component writes it.

use std::io::Read;

use crate::error::{Error, Result};
use crate::runtime::PullReport;

/// The archive of a streaming [`Imo::pull`](super::Imo::pull), read as the
/// component writes it.
///
/// A read that reaches the end returns the pull's error, if it failed, as
/// an `std::io::Error` wrapping [`Error`]; [`PullReader::finish`] gives the
/// report.
pub struct PullReader {
    pub(super) pipe: Option<std::io::PipeReader>,
    pub(super) worker: Option<std::thread::JoinHandle<Result<PullReport>>>,
    pub(super) outcome: Option<Result<PullReport>>,
}

impl PullReader {
    fn join(&mut self) -> &Result<PullReport> {
        if let Some(w) = self.worker.take() {
            let r = w
                .join()
                .unwrap_or_else(|_| Err(Error::Stopped("the pull's thread panicked".into())));
            self.outcome = Some(r);
        }
        self.outcome
            .get_or_insert_with(|| Err(Error::Stopped("the pull ended".into())))
    }

    /// What the pull wrote. Call it after reading to the end: an archive
    /// not read through is cut off, and the pull fails.
    pub fn finish(mut self) -> Result<PullReport> {
        self.pipe = None;
        self.join().clone()
    }
}

impl Read for PullReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some(pipe) = self.pipe.as_mut() else {
            return Ok(0);
        };
        let n = pipe.read(buf)?;
        if n == 0 && !buf.is_empty() {
            if let Err(e) = self.join() {
                return Err(std::io::Error::other(e.clone()));
            }
        }
        Ok(n)
    }
}

/// The pipe's write end as the file the component's standard output is.
pub(super) fn pipe_file(writer: std::io::PipeWriter) -> std::fs::File {
    #[cfg(unix)]
    {
        std::fs::File::from(std::os::fd::OwnedFd::from(writer))
    }
    #[cfg(windows)]
    {
        std::fs::File::from(std::os::windows::io::OwnedHandle::from(writer))
    }
}
