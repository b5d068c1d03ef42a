//! Writing files where the host allows it: a directory (or any directory
//! below it) the host granted, and files there that appear only once
//! complete (written under a temporary name, then renamed).
//!
//! In the component, everything written goes through wasi:filesystem calls
//! on the granted directories, which every WASI host supports; std's
//! `File::create` asks for more rights and fails under some (jco's shim).
//! Reading uses std, which works everywhere. Native builds (unit tests) use
//! std throughout.

use std::hash::{BuildHasher, Hasher};
use std::io;

#[cfg(not(target_arch = "wasm32"))]
use native as imp;
#[cfg(target_arch = "wasm32")]
use wasi_fs as imp;

/// A directory the component writes in.
pub struct Dir {
    inner: imp::Dir,
    path: String,
}

/// A file under a temporary name, renamed into place by [`TempFile::commit`]
/// and removed if dropped before that. The host hears of it, so it can
/// remove it too if the component is stopped.
pub struct TempFile {
    inner: Option<imp::TempFile>,
    path: String,
}

/// `.NAME.imo-OWNER-RANDOM.tmp`: hidden, recognisably imo's, and naming the
/// process that writes it (the host's id), so a later run removes it only
/// once that process is gone.
pub fn temp_name(name: &str) -> String {
    // std seeds RandomState from the host's wasi:random.
    let r = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    format!(".{name}.imo-{}-{r:016x}.tmp", crate::host::owner())
}

/// Splits `a/b/c` into (`a/b`, `c`); a bare name has the parent `.`.
fn split(rel: &str) -> (&str, &str) {
    match rel.rsplit_once('/') {
        Some((dir, name)) if !dir.is_empty() => (dir, name),
        Some((_, name)) => ("/", name),
        None => (".", rel),
    }
}

impl Dir {
    /// Opens directory `path`, which must exist, for writing.
    pub fn open(path: &str) -> io::Result<Dir> {
        Ok(Dir {
            inner: imp::Dir::open(path)?,
            path: path.trim_end_matches('/').to_string(),
        })
    }

    /// Opens directory `path`, creating it (not its parents) if need be.
    pub fn create(path: &str) -> io::Result<Dir> {
        if let Ok(d) = Dir::open(path) {
            return Ok(d);
        }
        let trimmed = path.trim_end_matches('/');
        let (parent, name) = split(trimmed);
        let parent = Dir::open(parent)?;
        parent.create_dir_all(name)?;
        Dir::open(trimmed)
    }

    /// Makes directory `rel` below this one, and its parents, unless present.
    pub fn create_dir_all(&self, rel: &str) -> io::Result<()> {
        let mut at = String::new();
        for part in rel.split('/').filter(|p| !p.is_empty() && *p != ".") {
            if !at.is_empty() {
                at.push('/');
            }
            at.push_str(part);
            self.inner.create_dir(&at)?;
        }
        Ok(())
    }

    /// The size of `rel` if it is a regular file.
    pub fn file_size(&self, rel: &str) -> Option<u64> {
        self.inner.file_size(rel)
    }

    /// Whether `rel` is a directory.
    pub fn is_dir(&self, rel: &str) -> bool {
        self.inner.is_dir(rel)
    }

    /// A new file next to where `rel` goes, to become `rel` on commit.
    pub fn temp_file(&self, rel: &str) -> io::Result<TempFile> {
        let (dir, name) = split(rel);
        let temp = match dir {
            "." => temp_name(name),
            d => format!("{d}/{}", temp_name(name)),
        };
        let inner = self.inner.temp_file(&temp, rel)?;
        let path = format!("{}/{temp}", self.path);
        crate::host::temp_begun(&path);
        Ok(TempFile {
            inner: Some(inner),
            path,
        })
    }

    /// Writes `bytes` to `rel` in one go: a temporary file, synced, renamed.
    pub fn write_atomic(&self, rel: &str, bytes: &[u8]) -> io::Result<()> {
        let f = self.temp_file(rel)?;
        f.write_all_at(bytes, 0)?;
        f.commit()
    }
}

impl TempFile {
    fn inner(&self) -> io::Result<&imp::TempFile> {
        self.inner
            .as_ref()
            .ok_or_else(|| io::Error::other("file already closed"))
    }

    /// Writes all of `buf` at `offset`.
    pub fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.inner()?.write_all_at(buf, offset)
    }

    /// Syncs and renames into place.
    pub fn commit(mut self) -> io::Result<()> {
        match self.inner.take() {
            Some(inner) => inner.commit(),
            None => Err(io::Error::other("file already closed")),
        }
    }

    /// Reads back everything written so far, in order, in pieces.
    pub fn read_back(&self, each: &mut dyn FnMut(&[u8])) -> io::Result<()> {
        self.inner()?.read_back(each)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        // The file is gone (removed, or renamed into place) before the host hears.
        drop(self.inner.take());
        crate::host::temp_ended(&self.path);
    }
}

/// Native builds (unit tests): std's files.
#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::fs::{self, File};
    use std::io;
    use std::os::unix::fs::FileExt;
    use std::path::PathBuf;

    pub struct Dir {
        root: PathBuf,
    }

    impl Dir {
        pub fn open(path: &str) -> io::Result<Dir> {
            let root = PathBuf::from(path);
            if !root.is_dir() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("directory {path} does not exist"),
                ));
            }
            Ok(Dir { root })
        }

        pub fn create_dir(&self, rel: &str) -> io::Result<()> {
            match fs::create_dir(self.root.join(rel)) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
                other => other,
            }
        }

        pub fn file_size(&self, rel: &str) -> Option<u64> {
            fs::symlink_metadata(self.root.join(rel))
                .ok()
                .filter(|m| m.is_file())
                .map(|m| m.len())
        }

        pub fn is_dir(&self, rel: &str) -> bool {
            fs::symlink_metadata(self.root.join(rel)).is_ok_and(|m| m.is_dir())
        }

        pub fn temp_file(&self, temp: &str, target: &str) -> io::Result<TempFile> {
            let temp = self.root.join(temp);
            let file = File::options().write(true).create_new(true).open(&temp)?;
            Ok(TempFile {
                file: Some(file),
                temp,
                target: self.root.join(target),
            })
        }
    }

    pub struct TempFile {
        file: Option<File>,
        temp: PathBuf,
        target: PathBuf,
    }

    impl TempFile {
        pub fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
            self.file
                .as_ref()
                .ok_or_else(|| io::Error::other("file already closed"))?
                .write_all_at(buf, offset)
        }

        pub fn read_back(&self, each: &mut dyn FnMut(&[u8])) -> io::Result<()> {
            use std::io::Read;
            let mut f = File::open(&self.temp)?;
            let mut buf = vec![0u8; 1024 * 1024];
            loop {
                match f.read(&mut buf)? {
                    0 => return Ok(()),
                    n => each(&buf[..n]),
                }
            }
        }

        pub fn commit(mut self) -> io::Result<()> {
            let file = self
                .file
                .take()
                .ok_or_else(|| io::Error::other("file already closed"))?;
            file.sync_all()?;
            drop(file);
            let renamed = fs::rename(&self.temp, &self.target);
            if renamed.is_err() {
                let _ = fs::remove_file(&self.temp);
            }
            renamed
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            if self.file.take().is_some() {
                let _ = fs::remove_file(&self.temp);
            }
        }
    }
}

/// The component: wasi:filesystem on the granted directories. Writes are
/// positioned `write` calls of the caller's chunks (up to 256 KiB): several
/// files are written at once, with far fewer host round trips than an
/// output stream, whose writes wasmtime caps at 64 KiB.
#[cfg(target_arch = "wasm32")]
mod wasi_fs {
    use std::io;
    use std::rc::Rc;

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
        io::Error::new(kind, e.name().replace('-', " "))
    }

    /// The granted directory holding `path` (the deepest, if several do)
    /// and the rest of the path below it.
    fn resolve(path: &str) -> io::Result<(Descriptor, String)> {
        let wanted = path.trim_end_matches('/');
        let mut best: Option<(Descriptor, String)> = None;
        for (d, granted) in preopens::get_directories() {
            let g = granted.trim_end_matches('/');
            let rest = if g == wanted {
                Some("")
            } else if g.is_empty() {
                wanted.strip_prefix('/')
            } else {
                wanted.strip_prefix(g).and_then(|r| r.strip_prefix('/'))
            };
            if let Some(rest) = rest {
                if best.as_ref().is_none_or(|(_, r)| rest.len() < r.len()) {
                    best = Some((d, rest.to_string()));
                }
            }
        }
        best.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("directory {path} is not granted to imo"),
            )
        })
    }

    pub struct Dir {
        fd: Rc<Descriptor>,
    }

    impl Dir {
        pub fn open(path: &str) -> io::Result<Dir> {
            let (granted, rest) = resolve(path)?;
            if rest.is_empty() {
                return Ok(Dir {
                    fd: Rc::new(granted),
                });
            }
            let fd = granted
                .open_at(
                    PathFlags::empty(),
                    &rest,
                    OpenFlags::DIRECTORY,
                    DescriptorFlags::READ | DescriptorFlags::MUTATE_DIRECTORY,
                )
                .map_err(err)?;
            Ok(Dir { fd: Rc::new(fd) })
        }

        pub fn create_dir(&self, rel: &str) -> io::Result<()> {
            match self.fd.create_directory_at(rel) {
                Err(ErrorCode::Exist) => Ok(()),
                other => other.map_err(err),
            }
        }

        fn stat(&self, rel: &str) -> Option<(DescriptorType, u64)> {
            self.fd
                .stat_at(PathFlags::empty(), rel)
                .ok()
                .map(|s| (s.type_, s.size))
        }

        pub fn file_size(&self, rel: &str) -> Option<u64> {
            match self.stat(rel) {
                Some((DescriptorType::RegularFile, size)) => Some(size),
                _ => None,
            }
        }

        pub fn is_dir(&self, rel: &str) -> bool {
            matches!(self.stat(rel), Some((DescriptorType::Directory, _)))
        }

        pub fn temp_file(&self, temp: &str, target: &str) -> io::Result<TempFile> {
            let file = self
                .fd
                .open_at(
                    PathFlags::empty(),
                    temp,
                    OpenFlags::CREATE | OpenFlags::EXCLUSIVE,
                    DescriptorFlags::WRITE,
                )
                .map_err(err)?;
            Ok(TempFile {
                file: Some(file),
                dir: self.fd.clone(),
                temp: temp.to_string(),
                target: target.to_string(),
            })
        }
    }

    pub struct TempFile {
        file: Option<Descriptor>,
        dir: Rc<Descriptor>,
        temp: String,
        target: String,
    }

    impl TempFile {
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

        pub fn read_back(&self, each: &mut dyn FnMut(&[u8])) -> io::Result<()> {
            let f = self
                .dir
                .open_at(
                    PathFlags::empty(),
                    &self.temp,
                    OpenFlags::empty(),
                    DescriptorFlags::READ,
                )
                .map_err(err)?;
            let mut at = 0u64;
            loop {
                let (data, end) = f.read(1024 * 1024, at).map_err(err)?;
                at += data.len() as u64;
                each(&data);
                if end || data.is_empty() {
                    return Ok(());
                }
            }
        }

        pub fn commit(mut self) -> io::Result<()> {
            if let Some(f) = self.file.take() {
                match f.sync_data() {
                    // Durability where the host offers it; not every host does.
                    Ok(()) | Err(ErrorCode::Unsupported) => {}
                    Err(e) => {
                        let _ = self.dir.unlink_file_at(&self.temp);
                        return Err(err(e));
                    }
                }
            }
            let renamed = self
                .dir
                .rename_at(&self.temp, &self.dir, &self.target)
                .map_err(err);
            if renamed.is_err() {
                let _ = self.dir.unlink_file_at(&self.temp);
            }
            renamed
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

    #[test]
    fn files_appear_only_once_committed() {
        let tmp = std::env::temp_dir().join(format!("imo-fsys-{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(&tmp).unwrap();
        let layout = format!("{}/layout", tmp.display());
        let d = Dir::create(&layout).unwrap();
        d.create_dir_all("blobs/sha256").unwrap();
        d.create_dir_all("blobs/sha256").unwrap();
        assert!(d.is_dir("blobs/sha256"));
        let f = d.temp_file("blobs/sha256/abc").unwrap();
        f.write_all_at(b"lo", 2).unwrap();
        f.write_all_at(b"he", 0).unwrap();
        assert_eq!(d.file_size("blobs/sha256/abc"), None);
        f.commit().unwrap();
        assert_eq!(d.file_size("blobs/sha256/abc"), Some(4));
        drop(d.temp_file("blobs/sha256/never").unwrap());
        let names: Vec<_> = fs::read_dir(tmp.join("layout/blobs/sha256"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["abc"]);
        d.write_atomic("index.json", b"{}").unwrap();
        assert_eq!(fs::read(tmp.join("layout/index.json")).unwrap(), b"{}");
        assert!(Dir::open(&format!("{}/missing", tmp.display())).is_err());
        fs::remove_dir_all(tmp).unwrap();
    }
}
