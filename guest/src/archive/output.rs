//! Where an archive goes: stdout, or a file written under a temporary name in
//! the same directory and renamed only once complete.
//!
//! In the component, files are made with wasi:filesystem calls on the granted
//! directory (only `write` rights asked for), which every WASI host supports;
//! std's `File::create` asks for more and fails under some (jco's shim).

use std::hash::{BuildHasher, Hasher};
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::task::Poll;

use super::writer::{Ordered, Sink};
use crate::error::{Error, Result};

#[cfg(not(target_arch = "wasm32"))]
use native::TempFile;
#[cfg(target_arch = "wasm32")]
use wasi_fs::TempFile;

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

fn temp_name(name: &str) -> String {
    // std seeds RandomState from the host's wasi:random.
    let r = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    format!(".{name}.imo-{r:016x}.tmp")
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
        let file = TempFile::create(&dir, &temp_name(&name), &name)
            .map_err(|e| Error::io(path, "write", &e))?;
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

/// Native builds (unit tests): std's files.
#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::fs::{self, File};
    use std::io;
    use std::os::unix::fs::FileExt;
    use std::path::PathBuf;

    /// A file under a temporary name, removed unless committed.
    pub struct TempFile {
        file: Option<File>,
        temp: PathBuf,
        target: PathBuf,
    }

    impl TempFile {
        /// Creates `temp` in `dir`, to become `name`.
        pub fn create(dir: &str, temp: &str, name: &str) -> io::Result<Self> {
            let dir = PathBuf::from(dir);
            if dir.join(name).is_dir() {
                return Err(io::Error::other("it is a directory"));
            }
            let temp = dir.join(temp);
            let file = File::options().write(true).create_new(true).open(&temp)?;
            Ok(TempFile {
                file: Some(file),
                temp,
                target: dir.join(name),
            })
        }

        /// Syncs and renames into place.
        pub fn commit(mut self) -> io::Result<()> {
            let file = self.file.take().expect("open until commit");
            file.sync_all()?;
            drop(file);
            fs::rename(&self.temp, &self.target)
        }
    }

    impl TempFile {
        /// Writes all of `buf` at `offset`.
        pub fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
            self.file
                .as_ref()
                .ok_or_else(|| io::Error::other("file already closed"))?
                .write_all_at(buf, offset)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            if self.file.is_some() {
                let _ = fs::remove_file(&self.temp);
            }
        }
    }
}

/// The component: wasi:filesystem on the preopened directory. Writes are
/// positioned `write` calls of the caller's chunks (up to 256 KiB): several
/// blobs land at once, and there are far fewer host round trips than with
/// an output stream, whose writes wasmtime caps at 64 KiB.
#[cfg(target_arch = "wasm32")]
mod wasi_fs {
    use std::io;

    use crate::bindings::wasi::filesystem::preopens;
    use crate::bindings::wasi::filesystem::types::{
        Descriptor, DescriptorFlags, DescriptorType, ErrorCode, OpenFlags, PathFlags,
    };

    fn err(e: ErrorCode) -> io::Error {
        let kind = match e {
            ErrorCode::NoEntry => io::ErrorKind::NotFound,
            ErrorCode::Access | ErrorCode::NotPermitted | ErrorCode::ReadOnly => {
                io::ErrorKind::PermissionDenied
            }
            ErrorCode::Exist => io::ErrorKind::AlreadyExists,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, format!("{e:?}"))
    }

    /// A file under a temporary name, removed unless committed.
    pub struct TempFile {
        file: Option<Descriptor>,
        dir: Descriptor,
        temp: String,
        name: String,
    }

    /// The granted directory that is `dir` itself.
    fn granted(dir: &str) -> io::Result<Descriptor> {
        let wanted = dir.trim_end_matches('/');
        preopens::get_directories()
            .into_iter()
            .find(|(_, path)| path.trim_end_matches('/') == wanted)
            .map(|(d, _)| d)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("directory {dir} is not granted to imo"),
                )
            })
    }

    impl TempFile {
        /// Creates `temp` in `dir`, to become `name`.
        pub fn create(dir: &str, temp: &str, name: &str) -> io::Result<Self> {
            let dir = granted(dir)?;
            if let Ok(s) = dir.stat_at(PathFlags::empty(), name) {
                if s.type_ == DescriptorType::Directory {
                    return Err(io::Error::other("it is a directory"));
                }
            }
            let file = dir
                .open_at(
                    PathFlags::empty(),
                    temp,
                    OpenFlags::CREATE | OpenFlags::EXCLUSIVE,
                    DescriptorFlags::WRITE,
                )
                .map_err(err)?;
            Ok(TempFile {
                file: Some(file),
                dir,
                temp: temp.to_string(),
                name: name.to_string(),
            })
        }

        /// Syncs and renames into place.
        pub fn commit(mut self) -> io::Result<()> {
            if let Some(f) = self.file.take() {
                // Durability where the host offers it; not every host does.
                let _ = f.sync_data();
            }
            self.dir
                .rename_at(&self.temp, &self.dir, &self.name)
                .map_err(err)
        }
    }

    impl TempFile {
        /// Writes all of `buf` at `offset`.
        pub fn write_all_at(&self, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
            let file = self
                .file
                .as_ref()
                .ok_or_else(|| io::Error::other("file already closed"))?;
            while !buf.is_empty() {
                let n = file.write(buf, offset).map_err(err)?;
                if n == 0 {
                    return Err(io::ErrorKind::WriteZero.into());
                }
                buf = &buf[n as usize..];
                offset += n;
            }
            Ok(())
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            if self.file.take().is_some() {
                let _ = self.dir.unlink_file_at(&self.temp);
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
