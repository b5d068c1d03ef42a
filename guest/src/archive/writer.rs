//! Streams an OCI layout into a tar as blobs arrive: each entry's size comes
//! from its descriptor, so nothing is staged on disk or in memory.

use std::collections::HashSet;
use std::io::{self, Read, Write};

use crate::digest::Digest;

/// Content of the `oci-layout` file.
pub const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

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
    fn a_bad_blob_fails_the_write() {
        let good = Digest::sha256_of(b"good");
        let mut w = ArchiveWriter::new(Vec::new()).unwrap();
        let r = VerifyingReader::new(&b"evil"[..], good.clone(), 4, "t".into());
        assert!(w.put_stream(&good, 4, r).is_err());
        assert!(!w.contains(&good));
    }
}
