//! Reads an OCI archive in place: the tar is indexed once (entry name ->
//! offset, size) and blobs are read by seeking, never extracted.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};

use super::parts::Parts;
use crate::digest::Digest;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy)]
struct Entry {
    offset: u64,
    size: u64,
}

/// An indexed OCI archive file.
pub struct ArchiveReader {
    path: String,
    parts: Parts,
    entries: HashMap<String, Entry>,
}

/// Entry names as written by imo, skopeo or GNU tar (`./blobs/...`).
fn normalise(name: &str) -> Option<String> {
    let mut parts = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            p => parts.push(p),
        }
    }
    (!parts.is_empty() && !name.starts_with('/')).then(|| parts.join("/"))
}

impl ArchiveReader {
    /// Opens and indexes `path`, an OCI archive (it must hold `index.json`).
    pub fn open(path: &str) -> Result<Self> {
        let r = ArchiveReader::open_tar(path)?;
        if !r.contains("index.json") {
            return Err(Error::CorruptArchive(format!(
                "{path} is not an OCI archive: it has no index.json"
            )));
        }
        Ok(r)
    }

    /// Opens and indexes `path`, any tar: its regular files by name.
    /// `OUT.000` opens the archive split into parts (see [`super::parts`]).
    pub fn open_tar(path: &str) -> Result<Self> {
        let parts = Parts::open(path)?;
        let not_tar = |e: std::io::Error| {
            Error::CorruptArchive(format!("{path} is not a readable tar archive: {e}"))
        };
        let mut entries = HashMap::new();
        {
            let mut archive = tar::Archive::new(parts.reader());
            for entry in archive.entries_with_seek().map_err(not_tar)? {
                let entry = entry.map_err(not_tar)?;
                let kind = entry.header().entry_type();
                if !(kind.is_file() || kind == tar::EntryType::Continuous) {
                    continue;
                }
                let raw = entry.path().map_err(not_tar)?;
                let raw = raw.to_string_lossy();
                let Some(name) = normalise(&raw) else {
                    return Err(Error::CorruptArchive(format!(
                        "{path}: entry {raw:?} points outside the archive"
                    )));
                };
                let at = Entry {
                    offset: entry.raw_file_position(),
                    size: entry.size(),
                };
                if entries.insert(name.clone(), at).is_some() {
                    return Err(Error::CorruptArchive(format!(
                        "{path}: entry {name} appears twice"
                    )));
                }
            }
        }
        let len = parts.len();
        if let Some((name, _)) = entries
            .iter()
            .find(|(_, e)| e.offset.saturating_add(e.size) > len)
        {
            return Err(Error::CorruptArchive(format!(
                "{path} is truncated: entry {name} ends past the end of the file"
            )));
        }
        Ok(ArchiveReader {
            path: path.to_string(),
            parts,
            entries,
        })
    }

    /// The archive's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether the entry exists.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// Whether the blob is in the archive.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.contains(&digest.blob_path())
    }

    /// The digests of every `blobs/ALG/HEX` entry.
    pub fn blob_digests(&self) -> impl Iterator<Item = Digest> + '_ {
        self.entries.keys().filter_map(|name| {
            let rest = name.strip_prefix("blobs/")?;
            let (alg, hex) = rest.split_once('/')?;
            Digest::parse(&format!("{alg}:{hex}")).ok()
        })
    }

    /// The entry's size.
    pub fn size(&self, name: &str) -> Option<u64> {
        self.entries.get(name).map(|e| e.size)
    }

    /// A reader over entry `name`, with a file handle of its own, so that
    /// readers of several entries can take turns.
    pub fn open_entry(&self, name: &str) -> Result<impl Read + 'static> {
        let e = self
            .entries
            .get(name)
            .ok_or_else(|| Error::NotFound(format!("{} has no entry {name}", self.path)))?;
        let mut f = self.parts.reader();
        f.seek(SeekFrom::Start(e.offset))
            .map_err(|err| Error::io(&self.path, "read", &err))?;
        Ok(f.take(e.size))
    }

    /// Reads entry `name` into memory, refusing more than `limit` bytes.
    pub fn read(&self, name: &str, limit: u64) -> Result<Vec<u8>> {
        let size = self.size(name).unwrap_or(0);
        if size > limit {
            return Err(Error::CorruptArchive(format!(
                "{}: entry {name} is {size} bytes, more than the {limit} allowed",
                self.path
            )));
        }
        let mut out = Vec::with_capacity(size as usize);
        self.open_entry(name)?
            .read_to_end(&mut out)
            .map_err(|e| Error::io(&self.path, "read", &e))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::writer::in_memory;
    use crate::digest::DigestOf;

    fn temp(name: &str, bytes: &[u8]) -> String {
        let p = std::env::temp_dir().join(format!("imo-reader-{name}-{}", std::process::id()));
        std::fs::write(&p, bytes).unwrap();
        p.to_string_lossy().into_owned()
    }

    #[test]
    fn indexes_and_reads_entries() {
        let blob = b"some blob".to_vec();
        let d = Digest::sha256_of(&blob);
        let tar = in_memory(&[&blob], b"{}");
        let path = temp("ok", &tar);
        let r = ArchiveReader::open(&path).unwrap();
        assert!(r.has_blob(&d));
        assert_eq!(r.read(&d.blob_path(), 100).unwrap(), blob);
        assert_eq!(r.read("index.json", 100).unwrap(), b"{}");
        assert!(r.read(&d.blob_path(), 3).is_err());
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn rejects_non_archives_and_truncation() {
        let path = temp("text", b"hello, this is not a tar file at all");
        let err = ArchiveReader::open(&path).err().unwrap().to_string();
        assert!(err.contains(&path) && err.contains("not"), "{err}");
        std::fs::remove_file(path).unwrap();

        let tar = in_memory(&[&[7; 3000]], b"{}");
        let path = temp("trunc", &tar[..1800]);
        let err = ArchiveReader::open(&path).err().unwrap().to_string();
        assert!(err.contains(&path), "{err}");
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn normalises_names() {
        assert_eq!(
            normalise("./blobs/sha256/ab").as_deref(),
            Some("blobs/sha256/ab")
        );
        assert_eq!(normalise("index.json").as_deref(), Some("index.json"));
        assert_eq!(normalise("../x"), None);
        assert_eq!(normalise("/etc/passwd"), None);
        assert_eq!(normalise("./"), None);
    }

    mod properties {
        use super::super::*;
        use crate::archive::writer::in_memory;
        use proptest::prelude::*;

        fn valid_archive() -> Vec<u8> {
            let blobs: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 700 * i as usize]).collect();
            let refs: Vec<&[u8]> = blobs.iter().map(Vec::as_slice).collect();
            in_memory(&refs, br#"{"schemaVersion":2,"manifests":[]}"#)
        }

        fn open_bytes(bytes: &[u8], n: u64) -> Result<ArchiveReader> {
            let p = std::env::temp_dir().join(format!("imo-prop-{}-{n}", std::process::id()));
            std::fs::write(&p, bytes).unwrap();
            let r = ArchiveReader::open(p.to_str().unwrap());
            if let Ok(r) = &r {
                // Whatever was indexed must be readable within the file.
                for d in r.blob_digests().collect::<Vec<_>>() {
                    let _ = r.read(&d.blob_path(), 1 << 20);
                }
            }
            let _ = std::fs::remove_file(&p);
            r
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(128))]
            #[test]
            fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..4096), n in any::<u64>()) {
                let _ = open_bytes(&bytes, n);
            }

            #[test]
            fn damaged_archives_never_panic(flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8), cut in any::<prop::sample::Index>(), n in any::<u64>()) {
                let mut bytes = valid_archive();
                for (at, v) in flips {
                    let i = at.index(bytes.len());
                    bytes[i] ^= v;
                }
                let len = bytes.len();
                bytes.truncate(cut.index(len) + 1);
                let _ = open_bytes(&bytes, n);
            }
        }
    }
}
