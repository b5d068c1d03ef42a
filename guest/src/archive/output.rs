//! Where an archive goes: stdout, or a file written under a temporary name in
//! the same directory and renamed only once complete.

use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::task::Poll;

use super::writer::{Ordered, Sink};
use crate::error::{Error, Result};
use crate::fsys::{Dir, TempFile};

const BUFFER: usize = 1024 * 1024;
/// Blob bytes that may wait in memory for their turn on stdout.
const READ_AHEAD: usize = 32 * 1024 * 1024;

/// An archive destination.
pub enum Output {
    /// Standard output (`-`), written in order.
    Stdout(Ordered<BufWriter<io::Stdout>>),
    /// A temporary file, written at offsets, renamed to `path` on commit.
    File {
        /// The final path, for messages.
        path: String,
        /// The open temporary file.
        file: TempFile,
    },
}

impl Output {
    /// Opens `path` (`-` for stdout).
    pub fn open(path: &str) -> Result<Self> {
        if path == "-" {
            let out = BufWriter::with_capacity(BUFFER, io::stdout());
            return Ok(Output::Stdout(Ordered::new(out, READ_AHEAD)));
        }
        let p = Path::new(path);
        let name = p
            .file_name()
            .filter(|_| !path.ends_with('/'))
            .ok_or_else(|| Error::InvalidArgument(format!("output path {path:?} names no file")))?
            .to_string_lossy()
            .into_owned();
        let dir = p
            .parent()
            .map(|d| d.to_string_lossy().into_owned())
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| ".".into());
        let open = || {
            let dir = Dir::open(&dir)?;
            if dir.is_dir(&name) {
                return Err(io::Error::other("it is a directory"));
            }
            dir.temp_file(&name)
        };
        let file = open().map_err(|e| Error::io(path, "write", &e))?;
        Ok(Output::File {
            path: path.to_string(),
            file,
        })
    }

    /// Flushes and, for a file, syncs it and renames it into place.
    pub fn commit(self) -> Result<()> {
        match self {
            Output::Stdout(o) => o
                .into_inner()
                .and_then(|mut w| w.flush())
                .map_err(|e| Error::io("standard output", "write", &e)),
            Output::File { path, file } => {
                file.commit().map_err(|e| Error::io(&path, "finish", &e))
            }
        }
    }

    /// The path shown in messages.
    pub fn display(&self) -> String {
        match self {
            Output::Stdout(_) => "standard output".into(),
            Output::File { path, .. } => path.clone(),
        }
    }
}

impl Sink for Output {
    fn poll_write_at(&mut self, offset: u64, bytes: &[u8]) -> Poll<io::Result<()>> {
        match self {
            Output::Stdout(o) => o.poll_write_at(offset, bytes),
            Output::File { file, .. } => Poll::Ready(file.write_all_at(bytes, offset)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::PathBuf;

    fn scratch_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("imo-output-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn renames_only_on_commit() {
        let d = scratch_dir("commit");
        let p = d.join("a.tar");
        let mut o = Output::open(p.to_str().unwrap()).unwrap();
        assert!(o.poll_write_at(2, b"ta").is_ready());
        assert!(o.poll_write_at(0, b"da").is_ready());
        assert!(!p.exists());
        o.commit().unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"data");
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn leaves_nothing_when_dropped() {
        let d = scratch_dir("drop");
        let p = d.join("a.tar");
        let mut o = Output::open(p.to_str().unwrap()).unwrap();
        assert!(o.poll_write_at(0, b"half").is_ready());
        drop(o);
        assert_eq!(fs::read_dir(&d).unwrap().count(), 0);
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn names_the_bad_path() {
        let err = Output::open("/nonexistent-dir-imo/x.tar")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("/nonexistent-dir-imo/x.tar"), "{err}");
        let d = scratch_dir("isdir");
        fs::create_dir(d.join("sub")).unwrap();
        let err = Output::open(d.join("sub").to_str().unwrap())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("directory"), "{err}");
        fs::remove_dir_all(d).unwrap();
    }
}
