//! A registry as a [`Source`].

use super::Source;
use crate::attach::{tag_for, Attachment, TAG_KINDS};
use crate::concurrent::PollRead;
use crate::error::{Error, Result};
use crate::manifest::{Descriptor, Parsed, RawManifest};
use crate::reference::Reference;
use crate::registry::{download, Registry};

/// One image reference in one registry.
pub struct RegistrySource {
    registry: Registry,
    reference: Reference,
}

impl RegistrySource {
    /// The image `reference` at `registry`.
    pub fn new(registry: Registry, reference: Reference) -> Self {
        RegistrySource {
            registry,
            reference,
        }
    }
}

impl Source for RegistrySource {
    fn name(&self) -> String {
        self.reference.to_string()
    }

    fn tag(&self) -> Result<Option<String>> {
        Ok(self.reference.tag().map(str::to_string))
    }

    fn top(&self) -> Result<RawManifest> {
        let name = self.name();
        self.registry.manifest(
            self.reference.repository(),
            &self.reference.manifest_reference(),
            &name,
        )
    }

    fn manifest(&self, desc: &Descriptor) -> Result<RawManifest> {
        let shown = format!(
            "{}/{}@{}",
            self.reference.registry(),
            self.reference.repository(),
            desc.digest
        );
        let m = self.registry.manifest(
            self.reference.repository(),
            &desc.digest.to_string(),
            &shown,
        )?;
        if m.bytes.len() as u64 != desc.size {
            return Err(Error::DigestMismatch(format!(
                "manifest {shown} is {} bytes, its descriptor says {}",
                m.bytes.len(),
                desc.size
            )));
        }
        Ok(m)
    }

    fn registry_reference(&self) -> Option<&Reference> {
        Some(&self.reference)
    }

    fn attachments(&self, subject: &Descriptor) -> Result<Vec<Attachment>> {
        let repo = self.reference.repository();
        let shown = |tag: &str| format!("{}/{repo}:{tag}", self.reference.registry());
        let mut out = Vec::new();
        for kind in TAG_KINDS {
            let tag = tag_for(&subject.digest, Some(kind));
            if let Some(m) = self.registry.try_manifest(repo, &tag, &shown(&tag))? {
                out.push(Attachment {
                    desc: m.descriptor(),
                    manifest: m,
                    subject: subject.digest.clone(),
                    tag: Some(tag),
                });
            }
        }
        let listed = match self.registry.referrers(repo, &subject.digest)? {
            Some(list) => list,
            None => {
                let fallback = tag_for(&subject.digest, None);
                match self
                    .registry
                    .try_manifest(repo, &fallback, &shown(&fallback))?
                {
                    Some(RawManifest {
                        parsed: Parsed::Index(ix),
                        ..
                    }) => ix.manifests,
                    _ => Vec::new(),
                }
            }
        };
        for desc in listed {
            out.push(Attachment {
                manifest: self.manifest(&desc)?,
                desc,
                subject: subject.digest.clone(),
                tag: None,
            });
        }
        Ok(out)
    }

    fn blob(&self, desc: &Descriptor) -> Result<Box<dyn PollRead + '_>> {
        let body = download::open(&self.registry, self.reference.repository(), desc);
        Ok(Box::new(body))
    }
}
