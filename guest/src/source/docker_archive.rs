//! docker-archive files as a [`Source`], in every shape `docker save`
//! writes: Docker 25 and later (an OCI layout plus `manifest.json`: the
//! image manifest stored there is used, byte for byte), and the older
//! shapes (`manifest.json` naming a config file and layer files, as in
//! `<id>/layer.tar` or go-containerregistry's `<hex>.tar.gz`), for which a
//! manifest is made up (see [`synthesise`]).

use std::collections::HashMap;
use std::io::Read;

use serde::{Deserialize, Serialize};

use super::layout::LayoutSource;
use super::Source;
use crate::archive::reader::ArchiveReader;
use crate::concurrent::{PollRead, Ready};
use crate::digest::{Digest, DigestOf, Hasher};
use crate::error::{Error, Result};
use crate::manifest::{Descriptor, RawManifest, DOCKER_MANIFEST, MAX_MANIFEST_BYTES, OCI_MANIFEST};
use crate::reference::Reference;
use imo_grammar::transport::DockerArchiveImage;

/// Config media type of a Docker image.
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Config media type of an OCI image.
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// An entry of `manifest.json`.
#[derive(Debug, Deserialize)]
struct Item {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
    #[serde(rename = "LayerSources", default)]
    layer_sources: HashMap<String, Descriptor>,
}

/// How a layer file is compressed, told by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compression {
    None,
    Gzip,
    Zstd,
}

/// An image of a docker-archive.
pub enum DockerArchiveSource {
    /// A Docker 25+ save: its OCI layout holds the real manifest.
    Layout(Box<LayoutSource<ArchiveReader>>),
    /// An older shape: a manifest made up from `manifest.json`.
    Legacy(Box<Legacy>),
}

/// An image of a docker-archive without an OCI layout.
pub struct Legacy {
    reader: ArchiveReader,
    shown: String,
    tag: Option<String>,
    manifest: RawManifest,
    /// Which tar entry holds each blob.
    files: HashMap<Digest, String>,
}

/// The tag part of the first of `repo_tags` that parses.
fn first_tag(repo_tags: &[String]) -> Option<String> {
    repo_tags
        .iter()
        .filter_map(|t| Reference::parse(t).ok())
        .find_map(|r| r.tag().map(str::to_string))
}

/// The digest an entry's name carries: `sha256:<hex>` (go-containerregistry),
/// `<hex>.json` (docker save), `blobs/sha256/<hex>` (Docker 25).
fn digest_in_name(name: &str) -> Option<Digest> {
    let base = name.rsplit('/').next().unwrap_or(name);
    if let Ok(d) = Digest::parse(base) {
        return Some(d);
    }
    if let Some(hex) = base.strip_suffix(".json") {
        return Digest::parse(&format!("sha256:{hex}")).ok();
    }
    let hex = name.strip_prefix("blobs/sha256/")?;
    Digest::parse(&format!("sha256:{hex}")).ok()
}

impl DockerArchiveSource {
    /// Opens the image `image` picks (or the only one) in file `path`.
    pub fn open(path: &str, image: Option<DockerArchiveImage>) -> Result<Self> {
        let reader = ArchiveReader::open_tar(path)?;
        let shown = format!("docker-archive:{path}");
        if !reader.contains("manifest.json") {
            return Err(Error::CorruptArchive(format!(
                "{path} is not a docker-archive: it has no manifest.json"
            )));
        }
        let bytes = reader.read("manifest.json", MAX_MANIFEST_BYTES)?;
        let mut items: Vec<Item> = serde_json::from_slice(&bytes).map_err(|e| {
            Error::CorruptArchive(format!("{path}: manifest.json is not usable: {e}"))
        })?;
        let index = match &image {
            None if items.len() == 1 => 0,
            None => {
                return Err(Error::InvalidReference(format!(
                    "{shown} holds {} images: name one with :REF or :@INDEX",
                    items.len()
                )))
            }
            Some(DockerArchiveImage::Index(n)) if *n < items.len() => *n,
            Some(DockerArchiveImage::Index(n)) => {
                return Err(Error::NotFound(format!(
                    "{shown} has no image @{n}: it holds {}",
                    items.len()
                )))
            }
            Some(DockerArchiveImage::Named(want)) => items
                .iter()
                .position(|i| {
                    let tags = i.repo_tags.as_deref().unwrap_or_default();
                    tags.iter()
                        .any(|t| Reference::parse(t).is_ok_and(|r| r == *want))
                })
                .ok_or_else(|| Error::NotFound(format!("{shown}: no image tagged {want}")))?,
        };
        let item = items.swap_remove(index);
        let tag = match &image {
            Some(DockerArchiveImage::Named(r)) => r.tag().map(str::to_string),
            _ => first_tag(item.repo_tags.as_deref().unwrap_or_default()),
        };
        let shown = match &image {
            Some(i) => imo_grammar::transport::Transport::DockerArchive {
                path: path.to_string(),
                image: Some(i.clone()),
            }
            .to_string(),
            None => shown,
        };
        if reader.contains("index.json") {
            let config = digest_in_name(&item.config);
            let mut layout = LayoutSource::new(reader, shown.clone(), tag.clone());
            let found = match &config {
                Some(c) => layout.find_image(|img| img.config.digest == *c)?,
                None => None,
            };
            if let Some(top) = found {
                layout.set_top(top);
                return Ok(DockerArchiveSource::Layout(Box::new(layout)));
            }
            let reader = layout.into_store();
            return Legacy::open(reader, shown, tag, item)
                .map(|l| DockerArchiveSource::Legacy(Box::new(l)));
        }
        Legacy::open(reader, shown, tag, item).map(|l| DockerArchiveSource::Legacy(Box::new(l)))
    }

    fn inner(&self) -> &dyn Source {
        match self {
            DockerArchiveSource::Layout(l) => l.as_ref(),
            DockerArchiveSource::Legacy(l) => l.as_ref(),
        }
    }
}

/// Hashes entry `name` of `reader`; its digest, size and compression.
fn hash_entry(reader: &ArchiveReader, name: &str) -> Result<(Digest, u64, Compression)> {
    let mut r = reader.open_entry(name)?;
    let mut hasher = Hasher::new(crate::digest::Algorithm::Sha256);
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    let mut magic = Vec::new();
    loop {
        let n = r
            .read(&mut buf)
            .map_err(|e| Error::io(&format!("{}: {name}", reader.path()), "read", &e))?;
        if n == 0 {
            break;
        }
        if magic.len() < 4 {
            let want = (4 - magic.len()).min(n);
            magic.extend_from_slice(&buf[..want]);
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    let compression = match magic.as_slice() {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd] => Compression::Zstd,
        _ => Compression::None,
    };
    Ok((hasher.finish(), size, compression))
}

/// The config's `rootfs.diff_ids`.
fn diff_ids(config: &[u8], shown: &str) -> Result<Vec<String>> {
    #[derive(Deserialize)]
    struct Config {
        rootfs: RootFs,
    }
    #[derive(Deserialize)]
    struct RootFs {
        diff_ids: Vec<String>,
    }
    serde_json::from_slice::<Config>(config)
        .map(|c| c.rootfs.diff_ids)
        .map_err(|e| {
            Error::CorruptArchive(format!(
                "{shown}: the config has no usable rootfs.diff_ids: {e}"
            ))
        })
}

/// The manifest imo makes up for an image of an older docker-archive,
/// compact JSON in this field order:
/// `{"schemaVersion":2,"mediaType":M,"config":D,"layers":[D…]}`, each
/// descriptor `{"mediaType","digest","size"}` (plus `urls` for foreign
/// layers, from `LayerSources`). `M` is Docker's schema 2 manifest with
/// Docker's config and layer types (`…rootfs.diff.tar.gzip` for gzip,
/// `…rootfs.diff.tar` for uncompressed layers), or, when a layer is zstd,
/// an OCI manifest with OCI types throughout. Digests and sizes are those
/// of the stored files, which `docker save` writes uncompressed and
/// `imo pull`/`crane` write as the registry's blobs, so such an image
/// lands with its original layer and config digests.
pub fn synthesise(config: Descriptor, layers: Vec<Descriptor>, oci: bool) -> Result<RawManifest> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Manifest {
        schema_version: u32,
        media_type: &'static str,
        config: Descriptor,
        layers: Vec<Descriptor>,
    }
    let m = Manifest {
        schema_version: 2,
        media_type: if oci { OCI_MANIFEST } else { DOCKER_MANIFEST },
        config,
        layers,
    };
    let bytes =
        serde_json::to_vec(&m).map_err(|e| Error::Io(format!("cannot make a manifest: {e}")))?;
    RawManifest::parse(bytes, None, "the docker-archive's image")
}

impl Legacy {
    fn open(reader: ArchiveReader, shown: String, tag: Option<String>, item: Item) -> Result<Self> {
        let config_bytes = if reader.contains(&item.config) {
            reader.read(&item.config, MAX_MANIFEST_BYTES)?
        } else {
            return Err(Error::CorruptArchive(format!(
                "{shown}: config {} is missing",
                item.config
            )));
        };
        let config_digest = Digest::sha256_of(&config_bytes);
        if let Some(named) = digest_in_name(&item.config) {
            if named != config_digest {
                return Err(Error::DigestMismatch(format!(
                    "{shown}: config {} has digest {config_digest}",
                    item.config
                )));
            }
        }
        let ids = diff_ids(&config_bytes, &shown)?;
        if ids.len() != item.layers.len() {
            return Err(Error::CorruptArchive(format!(
                "{shown}: manifest.json lists {} layers, the config {} diff IDs",
                item.layers.len(),
                ids.len()
            )));
        }
        let mut files = HashMap::new();
        files.insert(config_digest.clone(), item.config.clone());
        let mut found = Vec::new();
        for (path, id) in item.layers.iter().zip(&ids) {
            if reader.contains(path) {
                let (digest, size, compression) = hash_entry(&reader, path)?;
                if compression == Compression::None && digest.to_string() != *id {
                    return Err(Error::DigestMismatch(format!(
                        "{shown}: layer {path} has digest {digest}, the config says {id}"
                    )));
                }
                files.insert(digest.clone(), path.clone());
                found.push((Some(compression), digest, size, path));
            } else {
                let d = item
                    .layer_sources
                    .get(id)
                    .filter(|d| d.is_foreign())
                    .ok_or_else(|| {
                        Error::CorruptArchive(format!("{shown}: layer {path} is missing"))
                    })?;
                found.push((None, d.digest.clone(), d.size, path));
            }
        }
        let oci = found.iter().any(|(c, ..)| *c == Some(Compression::Zstd));
        let layer_type = |c: Compression| match (c, oci) {
            (Compression::None, false) => "application/vnd.docker.image.rootfs.diff.tar",
            (Compression::Gzip, false) => "application/vnd.docker.image.rootfs.diff.tar.gzip",
            (Compression::None, true) => "application/vnd.oci.image.layer.v1.tar",
            (Compression::Gzip, true) => "application/vnd.oci.image.layer.v1.tar+gzip",
            (Compression::Zstd, _) => "application/vnd.oci.image.layer.v1.tar+zstd",
        };
        let layers = found
            .into_iter()
            .zip(&ids)
            .map(|((c, digest, size, _), id)| match c {
                Some(c) => Descriptor::new(layer_type(c), digest, size),
                None => item.layer_sources[id].clone(),
            })
            .collect();
        let config = Descriptor::new(
            if oci { OCI_CONFIG } else { DOCKER_CONFIG },
            config_digest,
            config_bytes.len() as u64,
        );
        let manifest = synthesise(config, layers, oci)?;
        Ok(Legacy {
            reader,
            shown,
            tag,
            manifest,
            files,
        })
    }
}

impl Source for Legacy {
    fn name(&self) -> String {
        self.shown.clone()
    }

    fn tag(&self) -> Result<Option<String>> {
        Ok(self.tag.clone())
    }

    fn top(&self) -> Result<RawManifest> {
        Ok(self.manifest.clone())
    }

    fn manifest(&self, desc: &Descriptor) -> Result<RawManifest> {
        Err(Error::NotFound(format!(
            "{}: no manifest {} (a docker-archive image has one)",
            self.shown, desc.digest
        )))
    }

    fn blob(&self, desc: &Descriptor) -> Result<Box<dyn PollRead + '_>> {
        let name = self.files.get(&desc.digest).ok_or_else(|| {
            Error::NotFound(format!("{}: blob {} is not in it", self.shown, desc.digest))
        })?;
        Ok(Box::new(Ready(self.reader.open_entry(name)?)))
    }

    fn holds(&self, digest: &Digest) -> bool {
        self.files.contains_key(digest)
    }
}

impl Source for DockerArchiveSource {
    fn name(&self) -> String {
        self.inner().name()
    }

    fn tag(&self) -> Result<Option<String>> {
        self.inner().tag()
    }

    fn top(&self) -> Result<RawManifest> {
        self.inner().top()
    }

    fn manifest(&self, desc: &Descriptor) -> Result<RawManifest> {
        self.inner().manifest(desc)
    }

    fn blob(&self, desc: &Descriptor) -> Result<Box<dyn PollRead + '_>> {
        self.inner().blob(desc)
    }

    fn holds(&self, digest: &Digest) -> bool {
        self.inner().holds(digest)
    }
}
