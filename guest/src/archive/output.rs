//! Where an archive goes: stdout, or a file written under a temporary name in
//! the same directory and renamed only once complete.

use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::task::Poll;

use super::writer::{Ordered, Sink};
use crate::digest::{Algorithm, Hasher};
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
    /// Parts `path.000`, `path.001`, … of `size` bytes each, and on commit
    /// `path.sha256` listing their digests.
    Split {
        /// The archive's path, for messages and the parts' names.
        path: String,
        /// The directory they go in.
        dir: Dir,
        /// The name of the archive in it.
        name: String,
        /// The parts, under temporary names.
        parts: Vec<TempFile>,
        /// Bytes per part.
        size: u64,
    },
}

/// `path`'s directory and file name, or why it names no file.
fn dir_and_name(path: &str) -> Result<(String, String)> {
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
    Ok((dir, name))
}

impl Output {
    /// Opens `path` (`-` for stdout).
    pub fn open(path: &str) -> Result<Self> {
        if path == "-" {
            let out = BufWriter::with_capacity(BUFFER, io::stdout());
            return Ok(Output::Stdout(Ordered::new(out, READ_AHEAD)));
        }
        let (dir, name) = dir_and_name(path)?;
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

    /// Opens `path` as parts of `size` bytes for an archive of `total`
    /// bytes.
    pub fn open_split(path: &str, size: u64, total: u64) -> Result<Self> {
        if path == "-" {
            return Err(Error::InvalidArgument(
                "standard output cannot be split: name a file".into(),
            ));
        }
        if size == 0 {
            return Err(Error::InvalidArgument("a part size of 0 bytes".into()));
        }
        let count = total.div_ceil(size).max(1);
        if count > 10_000 {
            return Err(Error::InvalidArgument(format!(
                "{path}: {count} parts of {size} bytes; choose a larger --split"
            )));
        }
        let (dir_path, name) = dir_and_name(path)?;
        let open = || {
            let dir = Dir::open(&dir_path)?;
            let parts = (0..count as usize)
                .map(|i| dir.temp_file(&super::parts::part_name(&name, i)))
                .collect::<io::Result<Vec<_>>>()?;
            Ok::<_, io::Error>((dir, parts))
        };
        let (dir, parts) = open().map_err(|e| Error::io(path, "write", &e))?;
        Ok(Output::Split {
            path: path.to_string(),
            dir,
            name,
            parts,
            size,
        })
    }

    /// Flushes and, for a file, syncs it and renames it into place; for
    /// parts, writes their digest list last.
    pub fn commit(self) -> Result<()> {
        match self {
            Output::Stdout(o) => o
                .into_inner()
                .and_then(|mut w| w.flush())
                .map_err(|e| Error::io("standard output", "write", &e)),
            Output::File { path, file } => {
                file.commit().map_err(|e| Error::io(&path, "finish", &e))
            }
            Output::Split {
                path,
                dir,
                name,
                parts,
                ..
            } => {
                let mut list = String::new();
                for (i, part) in parts.into_iter().enumerate() {
                    let mut h = Hasher::new(Algorithm::Sha256);
                    part.read_back(&mut |b| h.update(b))
                        .and_then(|()| part.commit())
                        .map_err(|e| Error::io(&path, "finish", &e))?;
                    let part_name = super::parts::part_name(&name, i);
                    list.push_str(&format!("{}  {part_name}\n", h.finish().hex()));
                }
                dir.write_atomic(&super::parts::list_name(&name), list.as_bytes())
                    .map_err(|e| Error::io(&path, "finish", &e))
            }
        }
    }

    /// The path shown in messages.
    pub fn display(&self) -> String {
        match self {
            Output::Stdout(_) => "standard output".into(),
            Output::File { path, .. } | Output::Split { path, .. } => path.clone(),
        }
    }
}

impl Sink for Output {
    fn poll_write_at(&mut self, offset: u64, bytes: &[u8]) -> Poll<io::Result<()>> {
        match self {
            Output::Stdout(o) => o.poll_write_at(offset, bytes),
            Output::File { file, .. } => Poll::Ready(file.write_all_at(bytes, offset)),
            Output::Split { parts, size, .. } => {
                let (mut bytes, mut offset) = (bytes, offset);
                while !bytes.is_empty() {
                    let i = (offset / *size) as usize;
                    let within = offset % *size;
                    let n = (*size - within).min(bytes.len() as u64) as usize;
                    let Some(part) = parts.get(i) else {
                        return Poll::Ready(Err(io::Error::other(format!(
                            "offset {offset} is past the last part"
                        ))));
                    };
                    if let Err(e) = part.write_all_at(&bytes[..n], within) {
                        return Poll::Ready(Err(e));
                    }
                    bytes = &bytes[n..];
                    offset += n as u64;
                }
                Poll::Ready(Ok(()))
            }
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
