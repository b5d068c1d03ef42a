//! Where an archive goes: stdout, or a file written under a temporary name in
//! the same directory and renamed only once complete.

use std::fs::{self, File};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

const BUFFER: usize = 1024 * 1024;

/// An archive destination.
pub enum Output {
    /// Standard output (`-`).
    Stdout(BufWriter<io::Stdout>),
    /// A file being written under `temp`, renamed to `path` on commit.
    File {
        /// The final path.
        path: PathBuf,
        /// The temporary path.
        temp: PathBuf,
        /// The open temporary file.
        file: BufWriter<File>,
        /// Whether it was renamed.
        committed: bool,
    },
}

fn random_suffix() -> u64 {
    // std seeds RandomState from the host's wasi:random.
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

impl Output {
    /// Opens `path` (`-` for stdout).
    pub fn open(path: &str) -> Result<Self> {
        if path == "-" {
            return Ok(Output::Stdout(BufWriter::with_capacity(
                BUFFER,
                io::stdout(),
            )));
        }
        let final_path = PathBuf::from(path);
        let name = final_path
            .file_name()
            .ok_or_else(|| Error::InvalidArgument(format!("output path {path:?} names no file")))?
            .to_string_lossy()
            .into_owned();
        let dir = final_path.parent().unwrap_or(Path::new("."));
        if fs::metadata(&final_path).is_ok_and(|m| m.is_dir()) {
            return Err(Error::InvalidArgument(format!(
                "output path {path} is a directory"
            )));
        }
        let temp = dir.join(format!(".{name}.imo-{:016x}.tmp", random_suffix()));
        let file = File::create(&temp).map_err(|e| Error::io(path, "write", &e))?;
        Ok(Output::File {
            path: final_path,
            temp,
            file: BufWriter::with_capacity(BUFFER, file),
            committed: false,
        })
    }

    /// Flushes and, for a file, syncs it and renames it into place.
    pub fn commit(mut self) -> Result<()> {
        match &mut self {
            Output::Stdout(w) => w
                .flush()
                .map_err(|e| Error::io("standard output", "write", &e)),
            Output::File {
                path,
                temp,
                file,
                committed,
            } => {
                let shown = path.display().to_string();
                file.flush().map_err(|e| Error::io(&shown, "write", &e))?;
                file.get_ref()
                    .sync_all()
                    .map_err(|e| Error::io(&shown, "sync", &e))?;
                fs::rename(&*temp, &*path).map_err(|e| Error::io(&shown, "rename into", &e))?;
                *committed = true;
                Ok(())
            }
        }
    }

    /// The path shown in messages.
    pub fn display(&self) -> String {
        match self {
            Output::Stdout(_) => "standard output".into(),
            Output::File { path, .. } => path.display().to_string(),
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::Stdout(w) => w.write(buf),
            Output::File { file, .. } => file.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Stdout(w) => w.flush(),
            Output::File { file, .. } => file.flush(),
        }
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if let Output::File {
            temp,
            committed: false,
            ..
        } = self
        {
            let _ = fs::remove_file(temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        o.write_all(b"data").unwrap();
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
        o.write_all(b"half").unwrap();
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
    }
}
