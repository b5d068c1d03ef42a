//! Where images come from: a registry (`docker://`, the default), an OCI
//! layout directory (`oci:DIR[:TAG]`) or an OCI archive
//! (`oci-archive:FILE[:TAG]`), behind one small trait.

mod layout;
mod registry;

pub use layout::{DirStore, LayoutSource};
pub use registry::RegistrySource;

use crate::archive::reader::ArchiveReader;
use crate::bindings::imo::incremental::types::Role;
use crate::concurrent::PollRead;
use crate::error::{Error, Result};
use crate::manifest::{Descriptor, RawManifest};
use crate::reference::Reference;
use crate::registry::Registry;

/// An image source: its top document, child manifests and blobs.
pub trait Source {
    /// How messages name the image, e.g. `127.0.0.1:5000/app:v1`.
    fn name(&self) -> String;
    /// The tag to record in an archive's `index.json`.
    fn tag(&self) -> Option<String>;
    /// The manifest or index the reference names.
    fn top(&mut self) -> Result<RawManifest>;
    /// The manifest `desc` names (a child of an index), checked against it.
    fn manifest(&mut self, desc: &Descriptor) -> Result<RawManifest>;
    /// The content of blob `desc`, unverified: callers verify while
    /// streaming. Takes `&self`, so several blobs can stream at once.
    fn blob(&self, desc: &Descriptor) -> Result<Box<dyn PollRead + '_>>;
    /// The registry reference, for a registry source.
    fn registry_reference(&self) -> Option<&Reference> {
        None
    }
}

/// A parsed source reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceRef {
    /// `[docker://]REFERENCE`.
    Registry(Reference),
    /// `oci:DIR[:TAG]`.
    Layout {
        /// The directory.
        path: String,
        /// The tag (`org.opencontainers.image.ref.name`).
        tag: Option<String>,
    },
    /// `oci-archive:FILE[:TAG]`.
    Archive {
        /// The archive file.
        path: String,
        /// The tag.
        tag: Option<String>,
    },
}

fn path_and_tag(kind: &str, input: &str, rest: &str) -> Result<(String, Option<String>)> {
    // As skopeo: the path ends at the first ':'.
    let (path, tag) = match rest.split_once(':') {
        Some((p, t)) => (p, Some(t.to_string())),
        None => (rest, None),
    };
    if path.is_empty() {
        return Err(Error::InvalidReference(format!(
            "invalid reference {input:?}: {kind} needs a path"
        )));
    }
    if tag.as_deref() == Some("") {
        return Err(Error::InvalidReference(format!(
            "invalid reference {input:?}: empty tag"
        )));
    }
    Ok((path.to_string(), tag))
}

impl SourceRef {
    /// Parses a reference with an optional transport prefix.
    pub fn parse(input: &str) -> Result<Self> {
        if let Some(rest) = input.strip_prefix("oci-archive:") {
            let (path, tag) = path_and_tag("oci-archive:", input, rest)?;
            return Ok(SourceRef::Archive { path, tag });
        }
        if let Some(rest) = input.strip_prefix("oci:") {
            let (path, tag) = path_and_tag("oci:", input, rest)?;
            return Ok(SourceRef::Layout { path, tag });
        }
        Ok(SourceRef::Registry(Reference::parse(input)?))
    }

    /// Opens the source; `insecure` allows plain HTTP to a registry,
    /// `retries` bounds its extra tries.
    pub fn open(self, role: Role, insecure: bool, retries: u32) -> Result<Box<dyn Source>> {
        Ok(match self {
            SourceRef::Registry(r) => {
                let reg = Registry::new(r.registry(), role, insecure, retries);
                Box::new(RegistrySource::new(reg, r))
            }
            SourceRef::Layout { path, tag } => Box::new(LayoutSource::new(
                DirStore::new(&path)?,
                format!("oci:{path}"),
                tag,
            )),
            SourceRef::Archive { path, tag } => Box::new(LayoutSource::new(
                ArchiveReader::open(&path)?,
                format!("oci-archive:{path}"),
                tag,
            )),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_transports() {
        assert_eq!(
            SourceRef::parse("oci:/data/layout:v1").unwrap(),
            SourceRef::Layout {
                path: "/data/layout".into(),
                tag: Some("v1".into())
            }
        );
        assert_eq!(
            SourceRef::parse("oci-archive:/x/a.tar").unwrap(),
            SourceRef::Archive {
                path: "/x/a.tar".into(),
                tag: None
            }
        );
        assert!(matches!(
            SourceRef::parse("docker://alpine").unwrap(),
            SourceRef::Registry(_)
        ));
        assert!(matches!(
            SourceRef::parse("127.0.0.1:5000/app:v1").unwrap(),
            SourceRef::Registry(_)
        ));
        for bad in ["oci:", "oci-archive::v1", "oci:/d:"] {
            let err = SourceRef::parse(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }
}
