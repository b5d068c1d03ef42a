//! Archives split into parts (`OUT.000`, `OUT.001`, …, with `OUT.sha256`
//! listing each part's digest as `sha256sum` writes it), for media with a
//! size limit. Read as one file: the first part is named, every part is
//! checked against the list before use, and a missing or damaged one is
//! named.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

use crate::digest::{Algorithm, Digest, Hasher};
use crate::error::{Error, Result};

/// Largest `.sha256` list read.
const MAX_LIST_BYTES: u64 = 1024 * 1024;

/// The name of part `i` of `out`.
pub fn part_name(out: &str, i: usize) -> String {
    format!("{out}.{i:03}")
}

/// The name of the digest list of `out`.
pub fn list_name(out: &str) -> String {
    format!("{out}.sha256")
}

/// The archive a first part belongs to: `OUT` for `OUT.000`.
pub fn split_base(path: &str) -> Option<&str> {
    path.strip_suffix(".000")
}

/// The files an archive is read from, in order, with their sizes.
#[derive(Debug, Clone)]
pub struct Parts {
    files: Vec<(String, u64)>,
}

fn hash_file(path: &str) -> io::Result<(Digest, u64)> {
    let mut f = File::open(path)?;
    let mut h = Hasher::new(Algorithm::Sha256);
    let mut buf = vec![0u8; 1024 * 1024];
    let mut n = 0u64;
    loop {
        let got = f.read(&mut buf)?;
        if got == 0 {
            return Ok((h.finish(), n));
        }
        h.update(&buf[..got]);
        n += got as u64;
    }
}

impl Parts {
    /// `path` itself, or, for `OUT.000`, every part `OUT.sha256` lists,
    /// each checked against its digest.
    pub fn open(path: &str) -> Result<Parts> {
        let Some(base) = split_base(path) else {
            let len = std::fs::metadata(path)
                .map_err(|e| Error::io(path, "read", &e))?
                .len();
            return Ok(Parts {
                files: vec![(path.to_string(), len)],
            });
        };
        let list = list_name(base);
        let mut text = String::new();
        File::open(&list)
            .map_err(|e| {
                Error::CorruptArchive(format!(
                    "{path} is the first part of a split archive, but its list {list} cannot be read: {e}"
                ))
            })?
            .take(MAX_LIST_BYTES)
            .read_to_string(&mut text)
            .map_err(|e| Error::io(&list, "read", &e))?;
        let dir = base.rsplit_once('/').map_or("", |(d, _)| d);
        let mut files = Vec::new();
        for (i, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
            let (hex, name) = line.split_once("  ").ok_or_else(|| {
                Error::CorruptArchive(format!("{list}: line {} is not `HEX  NAME`", i + 1))
            })?;
            let want = Digest::parse(&format!("sha256:{}", hex.trim()))
                .map_err(|e| Error::CorruptArchive(format!("{list}: line {}: {e}", i + 1)))?;
            let expected = part_name(base.rsplit('/').next().unwrap_or(base), i);
            if name.trim() != expected {
                return Err(Error::CorruptArchive(format!(
                    "{list}: line {} names {}, expected {expected}",
                    i + 1,
                    name.trim()
                )));
            }
            let part = if dir.is_empty() {
                expected.clone()
            } else {
                format!("{dir}/{expected}")
            };
            let (got, len) = hash_file(&part).map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => {
                    Error::CorruptArchive(format!("part {part} of the split archive is missing"))
                }
                _ => Error::io(&part, "read", &e),
            })?;
            if got != want {
                return Err(Error::DigestMismatch(format!(
                    "part {part} of the split archive is damaged: it has digest {got}, {list} says {want}"
                )));
            }
            files.push((part, len));
        }
        if files.is_empty() {
            return Err(Error::CorruptArchive(format!("{list} lists no part")));
        }
        Ok(Parts { files })
    }

    /// The whole length.
    pub fn len(&self) -> u64 {
        self.files.iter().map(|(_, l)| l).sum()
    }

    /// Whether there is nothing to read.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A reader over all parts, as one file.
    pub fn reader(&self) -> MultiReader {
        MultiReader {
            parts: self.files.clone(),
            pos: 0,
            open: None,
        }
    }
}

/// The parts read as one file, opened as they are reached.
pub struct MultiReader {
    parts: Vec<(String, u64)>,
    pos: u64,
    open: Option<(usize, File)>,
}

impl MultiReader {
    /// The part holding `pos` and where it starts.
    fn locate(&self) -> Option<(usize, u64)> {
        let mut start = 0;
        for (i, (_, len)) in self.parts.iter().enumerate() {
            if self.pos < start + len {
                return Some((i, start));
            }
            start += len;
        }
        None
    }
}

impl Read for MultiReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some((i, start)) = self.locate() else {
            return Ok(0);
        };
        let within = self.pos - start;
        if self.open.as_ref().is_none_or(|(j, _)| *j != i) {
            self.open = Some((i, File::open(&self.parts[i].0)?));
        }
        let len = self.parts[i].1;
        let (_, f) = self.open.as_mut().expect("just opened");
        f.seek(SeekFrom::Start(within))?;
        let want = (buf.len() as u64).min(len - within) as usize;
        let n = f.read(&mut buf[..want])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for MultiReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let total: u64 = self.parts.iter().map(|(_, l)| l).sum();
        let new = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => total.checked_add_signed(d),
        };
        self.pos = new.ok_or_else(|| io::Error::other("seek before the start"))?;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_parts_as_one_file_and_names_a_bad_one() {
        let dir = std::env::temp_dir().join(format!("imo-parts-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let out = format!("{}/a.tar", dir.display());
        let data: Vec<u8> = (0..2500u32).map(|i| (i % 251) as u8).collect();
        let mut list = String::new();
        for (i, chunk) in data.chunks(1000).enumerate() {
            std::fs::write(part_name(&out, i), chunk).unwrap();
            let d = <Digest as crate::digest::DigestOf>::sha256_of(chunk);
            list.push_str(&format!("{}  a.tar.{i:03}\n", d.hex()));
        }
        std::fs::write(list_name(&out), &list).unwrap();
        let parts = Parts::open(&part_name(&out, 0)).unwrap();
        assert_eq!(parts.len(), 2500);
        let mut r = parts.reader();
        r.seek(SeekFrom::Start(990)).unwrap();
        let mut got = vec![0u8; 20];
        r.read_exact(&mut got).unwrap();
        assert_eq!(got, &data[990..1010]);
        let mut all = Vec::new();
        parts.reader().read_to_end(&mut all).unwrap();
        assert_eq!(all, data);

        std::fs::write(part_name(&out, 1), b"tampered").unwrap();
        let err = Parts::open(&part_name(&out, 0)).unwrap_err().to_string();
        assert!(
            err.contains("a.tar.001") && err.contains("damaged"),
            "{err}"
        );
        std::fs::remove_file(part_name(&out, 1)).unwrap();
        let err = Parts::open(&part_name(&out, 0)).unwrap_err().to_string();
        assert!(
            err.contains("a.tar.001") && err.contains("missing"),
            "{err}"
        );
        std::fs::remove_file(list_name(&out)).unwrap();
        let err = Parts::open(&part_name(&out, 0)).unwrap_err().to_string();
        assert!(err.contains("a.tar.sha256"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
