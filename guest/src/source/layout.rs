//! OCI image layouts as a [`Source`]: a directory, or an archive read in place.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::Read;
use std::path::PathBuf;

use super::Source;
use crate::archive::reader::ArchiveReader;
use crate::attach::{Attachment, FOUND_AS, SUBJECT};
use crate::concurrent::{PollRead, Ready};
use crate::delta;
use crate::digest::{Digest, DigestOf};
use crate::error::{Error, Result};
use crate::manifest::{
    Descriptor, ImageIndex, ImageManifest, Parsed, RawManifest, BASE_NAME, MAX_MANIFEST_BYTES,
    REF_NAME,
};
use crate::plan::MAX_DEPTH;

/// Files of a layout, by path inside it.
pub trait LayoutStore {
    /// Whether the file exists.
    fn exists(&self, name: &str) -> bool;
    /// Reads a small file, refusing more than `limit` bytes.
    fn read(&self, name: &str, limit: u64) -> Result<Vec<u8>>;
    /// Streams a file.
    fn stream(&self, name: &str) -> Result<Box<dyn Read + '_>>;
}

/// A layout directory.
pub struct DirStore {
    root: PathBuf,
    shown: String,
}

impl DirStore {
    /// Opens directory `path`, which must hold an `index.json`.
    pub fn new(path: &str) -> Result<Self> {
        let root = PathBuf::from(path);
        if !root.join("index.json").is_file() {
            return Err(Error::NotFound(format!(
                "{path} is not an OCI layout directory: it has no index.json"
            )));
        }
        Ok(DirStore {
            root,
            shown: path.to_string(),
        })
    }

    fn open(&self, name: &str) -> Result<File> {
        File::open(self.root.join(name))
            .map_err(|e| Error::io(&format!("{}/{name}", self.shown), "read", &e))
    }
}

impl LayoutStore for DirStore {
    fn exists(&self, name: &str) -> bool {
        self.root.join(name).is_file()
    }

    fn read(&self, name: &str, limit: u64) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.open(name)?
            .take(limit + 1)
            .read_to_end(&mut out)
            .map_err(|e| Error::io(&format!("{}/{name}", self.shown), "read", &e))?;
        if out.len() as u64 > limit {
            return Err(Error::CorruptArchive(format!(
                "{}/{name} is larger than {limit} bytes",
                self.shown
            )));
        }
        Ok(out)
    }

    fn stream(&self, name: &str) -> Result<Box<dyn Read + '_>> {
        Ok(Box::new(self.open(name)?))
    }
}

impl<S: LayoutStore + ?Sized> LayoutStore for &S {
    fn exists(&self, name: &str) -> bool {
        (**self).exists(name)
    }

    fn read(&self, name: &str, limit: u64) -> Result<Vec<u8>> {
        (**self).read(name, limit)
    }

    fn stream(&self, name: &str) -> Result<Box<dyn Read + '_>> {
        (**self).stream(name)
    }
}

impl LayoutStore for ArchiveReader {
    fn exists(&self, name: &str) -> bool {
        self.contains(name)
    }

    fn read(&self, name: &str, limit: u64) -> Result<Vec<u8>> {
        ArchiveReader::read(self, name, limit)
    }

    fn stream(&self, name: &str) -> Result<Box<dyn Read + '_>> {
        Ok(Box::new(self.open_entry(name)?))
    }
}

/// An image in a layout, chosen by tag or as its only image.
pub struct LayoutSource<S> {
    store: S,
    shown: String,
    tag: Option<String>,
    top: Option<Descriptor>,
}

impl<S: LayoutStore> LayoutSource<S> {
    /// The image tagged `tag` (or the only one) in `store`, named `shown`.
    pub fn new(store: S, shown: String, tag: Option<String>) -> Self {
        LayoutSource {
            store,
            shown,
            tag,
            top: None,
        }
    }

    /// The store, given back.
    pub fn into_store(self) -> S {
        self.store
    }

    /// Makes `top` the image this source names, whatever `index.json` says.
    pub fn set_top(&mut self, top: Descriptor) {
        self.top = Some(top);
    }

    /// The first image manifest, walking `index.json` and the indexes it
    /// names, for which `wanted` holds.
    pub fn find_image(
        &self,
        wanted: impl Fn(&ImageManifest) -> bool,
    ) -> Result<Option<Descriptor>> {
        let mut queue: Vec<(Descriptor, usize)> = self
            .index()?
            .manifests
            .into_iter()
            .map(|d| (d, 0))
            .collect();
        let mut seen = HashSet::new();
        while let Some((desc, depth)) = queue.pop() {
            if depth > MAX_DEPTH || !seen.insert(desc.digest.clone()) {
                continue;
            }
            match self.document(&desc)?.parsed {
                Parsed::Image(img) if wanted(&img) => return Ok(Some(desc)),
                Parsed::Image(_) => {}
                Parsed::Index(ix) => queue.extend(ix.manifests.into_iter().map(|d| (d, depth + 1))),
            }
        }
        Ok(None)
    }

    /// The images `index.json` lists: its entries but attachments.
    pub fn image_entries(&self) -> Result<Vec<Descriptor>> {
        Ok(self
            .index()?
            .manifests
            .into_iter()
            .filter(|d| {
                !d.annotations.contains_key(SUBJECT) && !d.annotations.contains_key(delta::SUBJECT)
            })
            .collect())
    }

    /// The layout's `index.json`.
    pub fn index(&self) -> Result<ImageIndex> {
        let bytes = self.store.read("index.json", MAX_MANIFEST_BYTES)?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::CorruptArchive(format!(
                "{}: index.json is not a valid OCI index: {e}",
                self.shown
            ))
        })
    }

    /// The `index.json` entry this source names.
    pub fn top_descriptor(&self) -> Result<Descriptor> {
        if let Some(top) = &self.top {
            return Ok(top.clone());
        }
        let images = self.image_entries()?;
        let name = self.name();
        match &self.tag {
            Some(tag) => images
                .into_iter()
                .find(|d| d.annotations.get(REF_NAME) == Some(tag))
                .ok_or_else(|| Error::NotFound(format!("{name}: no image tagged {tag}"))),
            None => match images.len() {
                1 => Ok(images.into_iter().next().expect("one entry")),
                0 => Err(Error::CorruptArchive(format!(
                    "{name}: index.json lists no image"
                ))),
                n => Err(Error::InvalidReference(format!(
                    "{name} holds {n} images: name one with :TAG"
                ))),
            },
        }
    }

    fn document(&self, desc: &Descriptor) -> Result<RawManifest> {
        let shown = format!("{}@{}", self.shown, desc.digest);
        let path = desc.digest.blob_path();
        if !self.store.exists(&path) {
            return Err(Error::CorruptArchive(format!(
                "{}: manifest {} is missing",
                self.shown, desc.digest
            )));
        }
        let bytes = self.store.read(&path, MAX_MANIFEST_BYTES)?;
        let actual = desc.digest.same_algorithm_of(&bytes);
        if actual != desc.digest || bytes.len() as u64 != desc.size {
            return Err(Error::DigestMismatch(format!(
                "manifest {shown} has digest {actual} and {} bytes, its descriptor says {} bytes",
                bytes.len(),
                desc.size
            )));
        }
        let mut m = RawManifest::parse(bytes, Some(&desc.media_type), &shown)?;
        // Keep the algorithm the descriptor uses (sha512 manifests exist).
        m.digest = actual;
        Ok(m)
    }

    /// Streams blob `desc` from the layout; `&self`, so it can be reopened.
    pub fn open_blob(&self, desc: &Descriptor) -> Result<Box<dyn Read + '_>> {
        let path = desc.digest.blob_path();
        if !self.store.exists(&path) {
            return Err(Error::NotFound(format!(
                "{}: blob {} is not in it",
                self.shown, desc.digest
            )));
        }
        self.store.stream(&path)
    }

    /// Whether the layout holds blob `digest`.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.store.exists(&digest.blob_path())
    }
}

impl<S: LayoutStore> Source for LayoutSource<S> {
    fn name(&self) -> String {
        match &self.tag {
            Some(t) => format!("{}:{t}", self.shown),
            None => self.shown.clone(),
        }
    }

    fn tag(&self) -> Result<Option<String>> {
        match &self.tag {
            Some(t) => Ok(Some(t.clone())),
            None => Ok(self.top_descriptor()?.annotations.get(REF_NAME).cloned()),
        }
    }

    fn top(&self) -> Result<RawManifest> {
        let desc = self.top_descriptor()?;
        self.document(&desc)
    }

    fn manifest(&self, desc: &Descriptor) -> Result<RawManifest> {
        self.document(desc)
    }

    fn blob(&self, desc: &Descriptor) -> Result<Box<dyn PollRead + '_>> {
        Ok(Box::new(Ready(self.open_blob(desc)?)))
    }

    fn holds(&self, digest: &Digest) -> bool {
        self.has_blob(digest)
    }

    fn attachments(&self, subject: &Descriptor) -> Result<Vec<Attachment>> {
        let wanted = subject.digest.to_string();
        let mut out = Vec::new();
        for mut desc in self.index()?.manifests {
            if desc.annotations.get(SUBJECT) != Some(&wanted) {
                continue;
            }
            desc.annotations.remove(SUBJECT);
            let tag = desc.annotations.remove(FOUND_AS);
            out.push(Attachment {
                manifest: self.document(&desc)?,
                desc,
                subject: subject.digest.clone(),
                tag,
            });
        }
        Ok(out)
    }

    fn deltas(&self) -> Result<Vec<RawManifest>> {
        let listed = self.index()?.manifests;
        listed
            .iter()
            .filter(|d| d.annotations.contains_key(delta::SUBJECT))
            .map(|d| self.document(d))
            .collect()
    }

    fn images(&self) -> Result<Vec<(RawManifest, BTreeMap<String, String>)>> {
        let images = self.image_entries()?;
        if self.tag.is_some() || self.top.is_some() || images.len() <= 1 {
            let desc = self.top_descriptor()?;
            return Ok(vec![(self.document(&desc)?, desc.annotations)]);
        }
        images
            .into_iter()
            .map(|d| Ok((self.document(&d)?, d.annotations)))
            .collect()
    }

    fn recorded_base(&self) -> Option<String> {
        self.top_descriptor()
            .ok()
            .and_then(|d| d.annotations.get(BASE_NAME).cloned())
    }
}
