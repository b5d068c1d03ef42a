//! Streams an OCI layout into a tar as blobs arrive: each entry's size comes
//! from its descriptor, so nothing is staged on disk or in memory.

use std::collections::HashSet;
use std::io::{self, Read, Write};

use crate::digest::Digest;

/// Content of the `oci-layout` file.
pub const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

const BLOCK: u64 = 512;

fn padded(n: u64) -> u64 {
    n.div_ceil(BLOCK) * BLOCK
}

/// Whether `path` fits a ustar header (name, or prefix + name) as the tar
/// crate splits it; otherwise it writes a GNU long-name entry first.
fn fits_ustar(path: &str) -> bool {
    if path.len() <= 100 {
        return true;
    }
    // The longest parent that fits the 155-byte prefix field.
    let cut = path.rmatch_indices('/').map(|(i, _)| i).find(|&i| i <= 155);
    cut.is_some_and(|i| path.len() - i - 1 <= 100)
}

/// Bytes one entry of `size` bytes at `path` takes in the tar.
pub fn entry_len(path: &str, size: u64) -> u64 {
    let long_name = if fits_ustar(path) {
        0
    } else {
        BLOCK + padded(path.len() as u64 + 1)
    };
    long_name + BLOCK + padded(size)
}

/// Exact size of the archive [`ArchiveWriter`] writes for these blobs
/// (each once) and this `index.json`.
pub fn archive_len<'a>(
    blobs: impl IntoIterator<Item = (&'a Digest, u64)>,
    index_json_len: u64,
) -> u64 {
    let mut seen = HashSet::new();
    let mut dirs = HashSet::new();
    let mut total = entry_len("oci-layout", OCI_LAYOUT.len() as u64);
    for (digest, size) in blobs {
        if !seen.insert(digest) {
            continue;
        }
        if dirs.is_empty() {
            total += BLOCK;
        }
        if dirs.insert(digest.algorithm()) {
            total += BLOCK;
        }
        total += entry_len(&digest.blob_path(), size);
    }
    total + entry_len("index.json", index_json_len) + 2 * BLOCK
}

/// Writes an OCI archive entry by entry; blobs are written once each.
pub struct ArchiveWriter<W: Write> {
    tar: tar::Builder<W>,
    written: HashSet<Digest>,
    dirs: HashSet<&'static str>,
}

fn header(size: u64, kind: tar::EntryType, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

impl<W: Write> ArchiveWriter<W> {
    /// Starts an archive on `out` with its `oci-layout` file.
    pub fn new(out: W) -> io::Result<Self> {
        let mut tar = tar::Builder::new(out);
        tar.mode(tar::HeaderMode::Deterministic);
        let mut w = ArchiveWriter {
            tar,
            written: HashSet::new(),
            dirs: HashSet::new(),
        };
        w.file("oci-layout", OCI_LAYOUT)?;
        Ok(w)
    }

    fn file(&mut self, path: &str, bytes: &[u8]) -> io::Result<()> {
        let mut h = header(bytes.len() as u64, tar::EntryType::Regular, 0o644);
        self.tar.append_data(&mut h, path, bytes)
    }

    fn blob_dirs(&mut self, digest: &Digest) -> io::Result<()> {
        let alg_dir: &'static str = match digest.algorithm() {
            "sha512" => "blobs/sha512/",
            _ => "blobs/sha256/",
        };
        for dir in ["blobs/", alg_dir] {
            if self.dirs.insert(dir) {
                let mut h = header(0, tar::EntryType::Directory, 0o755);
                self.tar.append_data(&mut h, dir, io::empty())?;
            }
        }
        Ok(())
    }

    /// Whether the blob is already in the archive.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.written.contains(digest)
    }

    /// Writes a blob held in memory (a manifest or index, its exact bytes).
    pub fn put_bytes(&mut self, digest: &Digest, bytes: &[u8]) -> io::Result<()> {
        if self.written.contains(digest) {
            return Ok(());
        }
        self.blob_dirs(digest)?;
        self.file(&digest.blob_path(), bytes)?;
        self.written.insert(digest.clone());
        Ok(())
    }

    /// Streams a blob of `size` bytes from `content`, which must yield exactly
    /// that many bytes (a verifying reader fails the copy otherwise).
    pub fn put_stream(&mut self, digest: &Digest, size: u64, content: impl Read) -> io::Result<()> {
        if self.written.contains(digest) {
            return Ok(());
        }
        self.blob_dirs(digest)?;
        let mut h = header(size, tar::EntryType::Regular, 0o644);
        self.tar.append_data(&mut h, digest.blob_path(), content)?;
        self.written.insert(digest.clone());
        Ok(())
    }

    /// Writes `index.json` and the end-of-archive marker; returns the sink.
    pub fn finish(mut self, index_json: &[u8]) -> io::Result<W> {
        self.file("index.json", index_json)?;
        self.tar.into_inner()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::VerifyingReader;

    #[test]
    fn writes_a_readable_layout() {
        let layer = b"layer bytes".to_vec();
        let ld = Digest::sha256_of(&layer);
        let manifest = b"{}".to_vec();
        let md = Digest::sha256_of(&manifest);
        let mut w = ArchiveWriter::new(Vec::new()).unwrap();
        let r = VerifyingReader::new(&layer[..], ld.clone(), layer.len() as u64, "t".into());
        w.put_stream(&ld, layer.len() as u64, r).unwrap();
        w.put_stream(&ld, layer.len() as u64, &b"ignored"[..])
            .unwrap();
        w.put_bytes(&md, &manifest).unwrap();
        let out = w.finish(b"{\"index\":1}").unwrap();

        let mut names = Vec::new();
        let mut ar = tar::Archive::new(&out[..]);
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut body = Vec::new();
            e.read_to_end(&mut body).unwrap();
            if let Some(hex) = name.strip_prefix("blobs/sha256/").filter(|h| !h.is_empty()) {
                assert_eq!(Digest::sha256_of(&body).hex(), hex);
            }
            names.push(name);
        }
        assert_eq!(
            names,
            [
                "oci-layout".to_string(),
                "blobs/".into(),
                "blobs/sha256/".into(),
                ld.blob_path(),
                md.blob_path(),
                "index.json".into()
            ]
        );
    }

    #[test]
    fn predicts_its_own_size() {
        let small = Digest::sha256_of(b"x");
        let big = vec![3u8; 1500];
        let big_d = Digest::sha256_of(&big);
        let long = Digest::parse(&format!("sha512:{}", "ab".repeat(64))).unwrap();
        let mut w = ArchiveWriter::new(Vec::new()).unwrap();
        w.put_bytes(&small, b"x").unwrap();
        w.put_bytes(&big_d, &big).unwrap();
        w.put_bytes(&long, &[1; 700]).unwrap();
        w.put_bytes(&small, b"x").unwrap();
        let out = w.finish(&[b'{'; 513]).unwrap();
        let predicted = archive_len(
            [(&small, 1), (&big_d, 1500), (&long, 700), (&small, 1)],
            513,
        );
        assert_eq!(predicted, out.len() as u64);
        assert!(fits_ustar(&small.blob_path()));
        assert!(!fits_ustar(&long.blob_path()));
    }

    #[test]
    fn a_bad_blob_fails_the_write() {
        let good = Digest::sha256_of(b"good");
        let mut w = ArchiveWriter::new(Vec::new()).unwrap();
        let r = VerifyingReader::new(&b"evil"[..], good.clone(), 4, "t".into());
        assert!(w.put_stream(&good, 4, r).is_err());
        assert!(!w.contains(&good));
    }
}
