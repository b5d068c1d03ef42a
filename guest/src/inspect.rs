//! `inspect`: what an OCI archive holds and what it leaves to the destination.

use std::collections::HashSet;

use crate::archive::reader::ArchiveReader;
use crate::digest::Digest;
use crate::error::Result;
use crate::manifest::Descriptor;
use crate::plan::{Action, Plan};
use crate::platform::Platform;
use crate::source::{LayoutSource, SourceRef};

/// An archive's content, as a plan whose "left out" blobs are the absent ones.
pub struct Inspection {
    /// The images and blobs; `Action::LeftOut` marks a blob the archive lacks.
    pub plan: Plan,
    /// Every blob present, manifests included.
    pub present: Vec<Descriptor>,
    /// Configs and layers absent (needed at the destination), each once.
    pub missing: Vec<Descriptor>,
}

/// Inspects `FILE`, `oci-archive:FILE` or `oci-archive:FILE:TAG`.
pub fn inspect(archive: &str) -> Result<Inspection> {
    open(archive).map(|(_, inspection)| inspection)
}

/// Opens an archive for reading and inspects it.
pub fn open(archive: &str) -> Result<(LayoutSource<ArchiveReader>, Inspection)> {
    let (path, tag) = match SourceRef::parse(archive) {
        Ok(SourceRef::Archive { path, tag }) => (path, tag),
        _ => (archive.to_string(), None),
    };
    let reader = ArchiveReader::open(&path)?;
    let present_digests: HashSet<Digest> = reader.blob_digests().collect();
    let mut source = LayoutSource::new(reader, format!("oci-archive:{path}"), tag);
    let decide = |d: &Descriptor, _is_layer: bool| {
        if d.is_foreign() {
            Action::Foreign
        } else if present_digests.contains(&d.digest) {
            Action::Include
        } else {
            Action::LeftOut
        }
    };
    // Every platform: an archive's content is what it is.
    let plan = Plan::build_with(&mut source, true, &Platform::default(), &decide)?;
    let mut present: Vec<Descriptor> = plan.manifests.iter().map(|m| m.descriptor()).collect();
    present.extend(
        plan.blobs
            .iter()
            .filter(|b| b.action == Action::Include)
            .map(|b| b.desc.clone()),
    );
    let missing = plan
        .blobs
        .iter()
        .filter(|b| b.action == Action::LeftOut)
        .map(|b| b.desc.clone())
        .collect();
    Ok((
        source,
        Inspection {
            plan,
            present,
            missing,
        },
    ))
}
