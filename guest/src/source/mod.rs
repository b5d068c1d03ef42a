//! Where images come from: a registry (`docker://`, the default), an OCI
//! layout directory (`oci:DIR[:TAG]`), an OCI archive
//! (`oci-archive:FILE[:TAG]`) or a docker-archive
//! (`docker-archive:FILE[:REF|:@N]`), behind one small trait.

mod docker_archive;
mod layout;
mod registry;

pub use docker_archive::{synthesise, DockerArchiveSource};
pub use layout::{DirStore, LayoutSource, LayoutStore};
pub use registry::RegistrySource;

use crate::archive::reader::ArchiveReader;
use crate::bindings::imo::incremental::types::Role;
use std::collections::BTreeMap;

use crate::attach::Attachment;
use crate::concurrent::PollRead;
use crate::digest::Digest;
use crate::error::Result;
use crate::manifest::{Descriptor, RawManifest};
use crate::reference::Reference;
use crate::registry::Registry;
pub use imo_grammar::transport::Transport;

/// An image source: its top document, child manifests and blobs.
pub trait Source {
    /// How messages name the image, e.g. `127.0.0.1:5000/app:v1`.
    fn name(&self) -> String;
    /// The tag to record in an archive's `index.json`.
    fn tag(&self) -> Result<Option<String>>;
    /// The manifest or index the reference names.
    fn top(&self) -> Result<RawManifest>;
    /// The manifest `desc` names (a child of an index), checked against it.
    fn manifest(&self, desc: &Descriptor) -> Result<RawManifest>;
    /// Whether it holds blob `digest` (an incremental archive lacks some).
    fn holds(&self, _digest: &Digest) -> bool {
        true
    }
    /// The base an incremental archive was made against, as it recorded it.
    fn recorded_base(&self) -> Option<String> {
        None
    }
    /// The attachments of the manifest `subject` (signatures, SBOMs…).
    fn attachments(&self, _subject: &Descriptor) -> Result<Vec<Attachment>> {
        Ok(Vec::new())
    }
    /// The manifests `descs` name, in their order; a source that fetches
    /// them remotely does so at once.
    fn manifests(&self, descs: &[Descriptor]) -> Result<Vec<RawManifest>> {
        descs.iter().map(|d| self.manifest(d)).collect()
    }
    /// The attachments of each of `subjects`, in their order; a source that
    /// looks them up remotely does so at once.
    fn attachments_of(&self, subjects: &[Descriptor]) -> Result<Vec<Vec<Attachment>>> {
        subjects.iter().map(|s| self.attachments(s)).collect()
    }
    /// The delta artifacts it carries (see [`crate::delta`]).
    fn deltas(&self) -> Result<Vec<RawManifest>> {
        Ok(Vec::new())
    }
    /// Every image it holds, as a base: its top manifest and the annotations
    /// that name it. An image source holds one; a layout named without a
    /// tag, every image it lists (a set archive).
    fn images(&self) -> Result<Vec<(RawManifest, BTreeMap<String, String>)>> {
        Ok(vec![(self.top()?, BTreeMap::new())])
    }
    /// The content of blob `desc`, unverified: callers verify while
    /// streaming. Takes `&self`, so several blobs can stream at once.
    fn blob(&self, desc: &Descriptor) -> Result<Box<dyn PollRead + '_>>;
    /// The registry reference, for a registry source.
    fn registry_reference(&self) -> Option<&Reference> {
        None
    }
}

/// Opens the image `t` names for reading; `insecure` allows plain HTTP to
/// a registry; `retries` bounds a transfer's retries, `jobs` how many
/// requests a registry source makes at once.
pub fn open(
    t: Transport,
    role: Role,
    insecure: bool,
    (retries, jobs): (u32, u32),
) -> Result<Box<dyn Source>> {
    Ok(match t {
        Transport::Registry(r) => {
            let reg = Registry::new(r.registry(), role, insecure, retries);
            Box::new(RegistrySource::new(reg, r, jobs))
        }
        Transport::Layout { path, tag } => Box::new(LayoutSource::new(
            DirStore::new(&path)?,
            format!("oci:{path}"),
            tag,
        )),
        Transport::Archive { path, tag } => Box::new(LayoutSource::new(
            ArchiveReader::open(&path)?,
            format!("oci-archive:{path}"),
            tag,
        )),
        Transport::DockerArchive { path, image } => {
            Box::new(DockerArchiveSource::open(&path, image)?)
        }
    })
}
