//! A docker-archive being written, as `docker load` reads it and as
//! go-containerregistry's `tarball` package writes it: the config as
//! `sha256:<hex>`, each layer as `<hex>.tar.gz` (the registry's blob byte
//! for byte, whatever its compression: `docker load` detects it), then
//! `manifest.json`: `[{"Config", "RepoTags", "Layers", "LayerSources"}]`.
//! Foreign layers are never downloaded: they are listed in `Layers` and
//! described in `LayerSources` under their diff ID, without a file.
//! Only a complete, single-platform image can be written.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::{Committed, Destination, Opener};
use crate::archive::output::Output;
use crate::archive::writer::{write_end_blocks, write_entry, Entry, Planner};
use crate::concurrent::{block_on, PollRead, Ready, Task};
use crate::digest::{classify_io, Digest};
use crate::error::{Error, Result};
use crate::manifest::{Descriptor, RawManifest, MAX_MANIFEST_BYTES};
use crate::plan::{Action, Plan};
use crate::reference::Reference;
use crate::source::Transport;
use imo_grammar::transport::{familiar, DockerArchiveImage};

/// One image in `manifest.json`.
#[derive(Serialize)]
struct Item<'a> {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags")]
    repo_tags: Vec<String>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
    #[serde(rename = "LayerSources", skip_serializing_if = "BTreeMap::is_empty")]
    layer_sources: BTreeMap<String, &'a Descriptor>,
}

/// `docker-archive:FILE[:REF]`.
pub struct DockerArchiveDestination {
    out: RefCell<Output>,
    shown: String,
    named: Option<Reference>,
    places: HashMap<Digest, Entry>,
    config: Option<Descriptor>,
    config_bytes: RefCell<Vec<u8>>,
    layers: Vec<Descriptor>,
    tags: Vec<String>,
    manifest_at: u64,
}

impl DockerArchiveDestination {
    /// Opens `path` for writing; `image` names the tag it gets.
    pub fn new(path: &str, image: Option<DockerArchiveImage>) -> Result<Self> {
        let named = match image {
            None => None,
            Some(DockerArchiveImage::Named(r)) => Some(r),
            Some(DockerArchiveImage::Index(_)) => {
                return Err(Error::InvalidReference(format!(
                    "docker-archive:{path}: @INDEX picks an image to read; name the tag to write, e.g. docker-archive:{path}:app:v1"
                )))
            }
        };
        let out = Output::open(path)?;
        Ok(DockerArchiveDestination {
            shown: out.display(),
            out: RefCell::new(out),
            named,
            places: HashMap::new(),
            config: None,
            config_bytes: RefCell::new(Vec::new()),
            layers: Vec::new(),
            tags: Vec::new(),
            manifest_at: 0,
        })
    }

    fn write_err(&self) -> impl Fn(std::io::Error) -> Error + '_ {
        |e| Error::io(&self.shown, "write", &e)
    }

    /// `manifest.json`, once the config (for the diff IDs of foreign
    /// layers) has gone by.
    fn manifest_json(&self) -> Result<Vec<u8>> {
        let config = self
            .config
            .as_ref()
            .ok_or_else(|| Error::Io(format!("{} was never begun", self.shown)))?;
        let foreign: Vec<usize> = (0..self.layers.len())
            .filter(|&i| self.layers[i].is_foreign())
            .collect();
        let mut layer_sources = BTreeMap::new();
        if !foreign.is_empty() {
            let diff_ids = diff_ids(&self.config_bytes.borrow(), &config.digest)?;
            for i in foreign {
                let id = diff_ids.get(i).ok_or_else(|| {
                    Error::CorruptArchive(format!(
                        "config {} lists {} diff IDs for {} layers",
                        config.digest,
                        diff_ids.len(),
                        self.layers.len()
                    ))
                })?;
                layer_sources.insert(id.clone(), &self.layers[i]);
            }
        }
        let item = Item {
            config: config.digest.to_string(),
            repo_tags: self.tags.clone(),
            layers: self.layers.iter().map(layer_file).collect(),
            layer_sources,
        };
        serde_json::to_vec(&[item])
            .map_err(|e| Error::Io(format!("cannot write manifest.json: {e}")))
    }
}

/// The file a layer is stored as.
fn layer_file(d: &Descriptor) -> String {
    format!("{}.tar.gz", d.digest.hex())
}

/// The config's `rootfs.diff_ids`.
fn diff_ids(config: &[u8], digest: &Digest) -> Result<Vec<String>> {
    #[derive(serde::Deserialize)]
    struct Config {
        rootfs: RootFs,
    }
    #[derive(serde::Deserialize)]
    struct RootFs {
        diff_ids: Vec<String>,
    }
    serde_json::from_slice::<Config>(config)
        .map(|c| c.rootfs.diff_ids)
        .map_err(|e| {
            Error::CorruptArchive(format!(
                "config {digest} has no usable rootfs.diff_ids: {e}"
            ))
        })
}

/// Passes bytes through, keeping a copy (the config is small).
struct Keep<'a, R> {
    inner: R,
    copy: &'a RefCell<Vec<u8>>,
}

impl<R: PollRead> PollRead for Keep<'_, R> {
    fn poll_read(&mut self, buf: &mut [u8]) -> std::task::Poll<std::io::Result<usize>> {
        let read = self.inner.poll_read(buf);
        if let std::task::Poll::Ready(Ok(n)) = read {
            self.copy.borrow_mut().extend_from_slice(&buf[..n]);
        }
        read
    }
}

impl Destination for DockerArchiveDestination {
    fn name(&self) -> String {
        self.shown.clone()
    }

    fn begin(&mut self, plans: &[&Plan]) -> Result<()> {
        let target = Transport::DockerArchive {
            path: self.shown.clone(),
            image: None,
        };
        let plan = super::single(plans, &target.to_string())?;
        if !plan.attachments.is_empty() {
            crate::host::emit(crate::bindings::imo::incremental::types::ProgressEvent::Note(
                format!(
                    "{target} keeps no attachments: {} signature(s), SBOM(s) or other(s) left behind",
                    plan.attachments.len()
                ),
            ));
        }
        let [image] = plan.images.as_slice() else {
            return Err(Error::Unsupported(format!(
                "{target} holds one image per tag, and {} has {} platforms: choose one with --platform",
                plan.reference,
                plan.images.len()
            )));
        };
        let left_out = plan.left_out().count();
        if left_out > 0 {
            return Err(Error::InvalidArgument(format!(
                "{target} needs the whole image, but {left_out} blob(s) of {} are left out: docker load cannot fill them in; pull with BASE scratch, or push the incremental archive into a registry or an oci: layout",
                plan.reference
            )));
        }
        let (config, layers) = image.blobs.split_first().ok_or_else(|| {
            Error::CorruptArchive(format!("{}: an image without a config", plan.reference))
        })?;
        if config.desc.size > MAX_MANIFEST_BYTES {
            return Err(Error::Unsupported(format!(
                "config {} of {} is {} bytes, more than the {MAX_MANIFEST_BYTES} allowed",
                config.desc.digest, plan.reference, config.desc.size
            )));
        }
        let mut planner = Planner::new();
        self.places.insert(
            config.desc.digest.clone(),
            planner.file(&[], &config.desc.digest.to_string(), config.desc.size),
        );
        for l in layers {
            if l.action == Action::Include && !self.places.contains_key(&l.desc.digest) {
                let e = planner.file(&[], &layer_file(&l.desc), l.desc.size);
                self.places.insert(l.desc.digest.clone(), e);
            }
        }
        self.manifest_at = planner.finish().0;
        self.config = Some(config.desc.clone());
        self.layers = layers.iter().map(|l| l.desc.clone()).collect();
        let named = self
            .named
            .clone()
            .or_else(|| plan.source_registry.clone().filter(|r| r.tag().is_some()));
        self.tags = named.iter().map(familiar).collect();
        Ok(())
    }

    fn has_blob<'a>(&'a self, _d: &'a Descriptor) -> Task<'a, bool, Error> {
        Box::pin(async { Ok(false) })
    }

    fn put_blob<'a>(&'a self, d: &'a Descriptor, open: &'a Opener<'a>) -> Task<'a, (), Error> {
        Box::pin(async move {
            let entry = self.places.get(&d.digest).ok_or_else(|| {
                Error::Io(format!("blob {} has no place in {}", d.digest, self.shown))
            })?;
            let content = open()?;
            let is_config = self.config.as_ref().is_some_and(|c| c.digest == d.digest);
            let copy = |e| {
                classify_io(e, |e| {
                    Error::Network(format!("copying blob {} to {}: {e}", d.digest, self.shown))
                })
            };
            if is_config {
                self.config_bytes.borrow_mut().clear();
                let mut kept = Keep {
                    inner: content,
                    copy: &self.config_bytes,
                };
                write_entry(&self.out, entry, &mut kept).await.map_err(copy)
            } else {
                let mut content = content;
                write_entry(&self.out, entry, &mut content)
                    .await
                    .map_err(copy)
            }
        })
    }

    fn put_manifest(&mut self, _m: &RawManifest) -> Result<()> {
        // docker load knows no manifests: manifest.json describes the image.
        Ok(())
    }

    fn commit(self: Box<Self>, _images: &[(&Plan, &RawManifest)]) -> Result<Committed> {
        let json = self.manifest_json()?;
        let mut last = Planner::starting_at(self.manifest_at);
        let entry = last.file(&[], "manifest.json", json.len() as u64);
        let (end, size) = last.finish();
        block_on(async {
            write_entry(&self.out, &entry, &mut Ready(&json[..])).await?;
            write_end_blocks(&self.out, end).await
        })
        .map_err(self.write_err())?;
        let name = match self.tags.first() {
            Some(t) => format!("{}:{t}", self.shown),
            None => self.shown.clone(),
        };
        let this = *self;
        this.out.into_inner().commit()?;
        Ok(Committed {
            name,
            size: Some(size),
        })
    }
}
