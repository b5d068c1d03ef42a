//! An OCI image layout directory as a destination (`oci:DIR[:TAG]`): made
//! if need be, added to otherwise (images by tag, blobs shared). Every file
//! appears complete (temporary name, then rename) and `index.json` is
//! rewritten last, so a copy that dies half way leaves every tag naming
//! the complete image it named before.

use std::io::Read;

use serde_json::{Map, Value};

use super::{Committed, Destination, Opener};
use crate::archive::writer::OCI_LAYOUT;
use crate::concurrent::{read, PollRead, Ready, Task};
use crate::digest::classify_io;
use crate::error::{Error, Result};
use crate::fsys::Dir;
use crate::manifest::{Descriptor, RawManifest, MAX_MANIFEST_BYTES, OCI_INDEX, REF_NAME};
use crate::plan::Plan;

const CHUNK: usize = 256 * 1024;

/// `oci:DIR[:TAG]`.
pub struct LayoutDestination {
    path: String,
    tag: Option<String>,
    dir: Option<Dir>,
    index: Map<String, Value>,
    /// The `index.json` entry each image gets.
    entries: Vec<Descriptor>,
    write: bool,
}

impl LayoutDestination {
    /// The layout at `path` (made when first written, unless only
    /// looked at: `write` false), the image to be tagged `tag`.
    pub fn new(path: &str, tag: Option<String>, write: bool) -> Self {
        LayoutDestination {
            path: path.trim_end_matches('/').to_string(),
            tag,
            dir: None,
            index: Map::new(),
            entries: Vec::new(),
            write,
        }
    }

    fn shown(&self) -> String {
        match &self.tag {
            Some(t) => format!("oci:{}:{t}", self.path),
            None => format!("oci:{}", self.path),
        }
    }

    fn dir(&self) -> Result<&Dir> {
        self.dir
            .as_ref()
            .ok_or_else(|| Error::Io(format!("{} was never begun", self.shown())))
    }

    fn io_err(&self, what: &str) -> impl Fn(std::io::Error) -> Error + '_ {
        let what = format!("{what} {}", self.shown());
        move |e| Error::Io(format!("cannot {what}: {e}"))
    }

    /// Reads a small file of the layout, if it exists.
    fn read_small(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let path = format!("{}/{name}", self.path);
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, "read", &e)),
        };
        let mut out = Vec::new();
        file.take(MAX_MANIFEST_BYTES + 1)
            .read_to_end(&mut out)
            .map_err(|e| Error::io(&path, "read", &e))?;
        if out.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(Error::CorruptArchive(format!(
                "{path} is larger than {MAX_MANIFEST_BYTES} bytes"
            )));
        }
        Ok(Some(out))
    }

    /// Streams `content` into the layout as blob `d`, under a temporary
    /// name until it is complete.
    async fn store(&self, d: &Descriptor, content: &mut dyn PollRead) -> Result<()> {
        let dir = self.dir()?;
        let shown = self.shown();
        let write_err = |e: std::io::Error| {
            Error::Io(format!("cannot write blob {} into {shown}: {e}", d.digest))
        };
        dir.create_dir_all(&format!("blobs/{}", d.digest.algorithm()))
            .map_err(write_err)?;
        let file = dir.temp_file(&d.digest.blob_path()).map_err(write_err)?;
        let mut buf = vec![0u8; d.size.saturating_add(1).min(CHUNK as u64) as usize];
        let mut at = 0u64;
        loop {
            let n = read(content, &mut buf).await.map_err(|e| {
                classify_io(e, |e| {
                    Error::Network(format!("copying blob {} to {shown}: {e}", d.digest))
                })
            })?;
            if n == 0 {
                break;
            }
            file.write_all_at(&buf[..n], at).map_err(write_err)?;
            at += n as u64;
        }
        file.commit().map_err(write_err)
    }
}

impl Destination for LayoutDestination {
    fn name(&self) -> String {
        self.shown()
    }

    fn begin(&mut self, plans: &[&Plan]) -> Result<()> {
        self.entries = match plans {
            // One image: the destination's own tag, else the source's.
            [plan] => {
                if self.tag.is_none() {
                    self.tag = plan.tag.clone();
                }
                plan.index_entries(self.tag.as_deref())
            }
            _ => plans
                .iter()
                .flat_map(|p| p.index_entries(p.tag.as_deref()))
                .collect(),
        };
        if !self.write {
            // Looking only: a layout that is not there holds nothing.
            return Ok(());
        }
        let dir = Dir::create(&self.path).map_err(self.io_err("write"))?;
        match self.read_small("oci-layout")? {
            Some(bytes) => {
                let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                if v.get("imageLayoutVersion")
                    .and_then(Value::as_str)
                    .is_none()
                {
                    return Err(Error::CorruptArchive(format!(
                        "{}/oci-layout is not an OCI layout marker",
                        self.path
                    )));
                }
            }
            None => dir
                .write_atomic("oci-layout", OCI_LAYOUT)
                .map_err(self.io_err("write"))?,
        }
        if let Some(bytes) = self.read_small("index.json")? {
            let index: Value = serde_json::from_slice(&bytes).map_err(|e| {
                Error::CorruptArchive(format!("{}/index.json is not valid JSON: {e}", self.path))
            })?;
            match index {
                Value::Object(map) if map.get("manifests").is_none_or(Value::is_array) => {
                    self.index = map
                }
                _ => {
                    return Err(Error::CorruptArchive(format!(
                        "{}/index.json is not an OCI index",
                        self.path
                    )))
                }
            }
        }
        self.dir = Some(dir);
        Ok(())
    }

    fn has_blob<'a>(&'a self, d: &'a Descriptor) -> Task<'a, bool, Error> {
        Box::pin(async move {
            // Files appear only complete, so the right size means present.
            let path = format!("{}/{}", self.path, d.digest.blob_path());
            Ok(std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file() && m.len() == d.size))
        })
    }

    fn put_blob<'a>(&'a self, d: &'a Descriptor, open: &'a Opener<'a>) -> Task<'a, (), Error> {
        Box::pin(async move {
            let mut content = open()?;
            self.store(d, &mut content).await
        })
    }

    fn put_manifest(&mut self, m: &RawManifest) -> Result<()> {
        let d = m.descriptor();
        if self.dir()?.file_size(&d.digest.blob_path()) == Some(d.size) {
            return Ok(());
        }
        crate::concurrent::block_on(self.store(&d, &mut Ready(&m.bytes[..])))
    }

    fn commit(self: Box<Self>, _images: &[(&Plan, &RawManifest)]) -> Result<Committed> {
        let mut manifests: Vec<Value> = match self.index.get("manifests") {
            Some(Value::Array(list)) => list.clone(),
            _ => Vec::new(),
        };
        for entry in &self.entries {
            let tag = entry.annotations.get(REF_NAME);
            let value = serde_json::to_value(entry)
                .map_err(|e| Error::Io(format!("cannot describe the image: {e}")))?;
            // The tag moves: an entry it named before goes; so does an
            // untagged entry for the same manifest.
            let digest = value.get("digest").cloned();
            manifests.retain(|m| {
                let named = m
                    .get("annotations")
                    .and_then(|a| a.get(REF_NAME))
                    .and_then(Value::as_str);
                match (tag, named) {
                    (Some(t), Some(n)) => n != t,
                    (_, None) => m.get("digest") != digest.as_ref(),
                    (None, Some(_)) => true,
                }
            });
            manifests.push(value);
        }
        let mut index = self.index.clone();
        index.insert("schemaVersion".into(), Value::from(2));
        index
            .entry("mediaType")
            .or_insert_with(|| Value::from(OCI_INDEX));
        index.insert("manifests".into(), Value::Array(manifests));
        let bytes = serde_json::to_vec(&Value::Object(index))
            .map_err(|e| Error::Io(format!("cannot write index.json: {e}")))?;
        self.dir()?
            .write_atomic("index.json", &bytes)
            .map_err(self.io_err("write"))?;
        Ok(Committed {
            name: self.shown(),
            size: None,
        })
    }
}
