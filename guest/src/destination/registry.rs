//! A registry repository as a destination: blobs looked up with `HEAD`,
//! mounted across repositories, uploaded in one `PUT` or `PATCH` chunks;
//! manifests by digest, the tag last.

use super::{Access, Committed, Destination, Opener};
use crate::bindings::imo::incremental::types::Role;
use crate::concurrent::Task;
use crate::error::{Error, Result};
use crate::manifest::{Descriptor, RawManifest};
use crate::plan::Plan;
use crate::reference::Reference;
use crate::registry::upload::{pull_scope, push_scope, upload};
use crate::registry::Registry;

/// `[docker://]REGISTRY/REPO[:TAG][@DIGEST]`.
pub struct RegistryDestination {
    registry: Registry,
    reference: Reference,
    scope: String,
    chunk: u64,
    tag: Option<String>,
}

impl RegistryDestination {
    /// The repository `reference` names, reached as `access` says.
    pub fn new(reference: Reference, access: Access) -> Self {
        let registry = Registry::new(
            reference.registry(),
            Role::Destination,
            !access.tls_verify,
            access.retry_times,
        );
        let scope = if access.write {
            push_scope(reference.repository())
        } else {
            pull_scope(reference.repository())
        };
        RegistryDestination {
            registry,
            tag: reference.explicit_tag().map(str::to_string),
            reference,
            scope,
            chunk: access.chunk_size,
        }
    }

    fn repo(&self) -> &str {
        self.reference.repository()
    }

    /// `registry/repo`, as messages name it.
    pub fn repository_name(&self) -> String {
        format!("{}/{}", self.reference.registry(), self.repo())
    }
}

impl Destination for RegistryDestination {
    fn name(&self) -> String {
        self.repository_name()
    }

    fn begin(&mut self, plans: &[&Plan]) -> Result<()> {
        let plan = super::single(plans, &self.reference.to_string())?;
        if let Some(d) = self.reference.digest() {
            if *d != plan.top.digest {
                return Err(Error::InvalidArgument(format!(
                    "{} names digest {d}, but the image is {}",
                    self.reference, plan.top.digest
                )));
            }
        }
        if self.tag.is_none() {
            self.tag = plan.tag.clone();
        }
        Ok(())
    }

    fn has_blob<'a>(&'a self, d: &'a Descriptor) -> Task<'a, bool, Error> {
        Box::pin(async move {
            self.registry
                .blob_exists(self.repo(), &d.digest.to_string(), &self.scope)
                .await
        })
    }

    fn try_reuse<'a>(&'a self, d: &'a Descriptor, from: &'a [Reference]) -> Task<'a, bool, Error> {
        Box::pin(async move {
            let digest = d.digest.to_string();
            for r in from {
                let same_registry = r.registry() == self.reference.registry();
                if same_registry
                    && r.repository() != self.repo()
                    && self
                        .registry
                        .mount(self.repo(), &digest, r.repository())
                        .await?
                {
                    return Ok(true);
                }
            }
            Ok(false)
        })
    }

    fn put_blob<'a>(&'a self, d: &'a Descriptor, open: &'a Opener<'a>) -> Task<'a, (), Error> {
        Box::pin(upload(&self.registry, self.repo(), d, open, self.chunk))
    }

    fn put_manifest(&mut self, m: &RawManifest) -> Result<()> {
        self.registry
            .put_manifest(self.repo(), &m.digest.to_string(), m)
    }

    fn commit(self: Box<Self>, images: &[(&Plan, &RawManifest)]) -> Result<Committed> {
        let [(_, top)] = images else {
            return Err(Error::Unsupported(format!(
                "{} takes one image at a time",
                self.reference
            )));
        };
        let name = match &self.tag {
            Some(tag) => {
                self.registry.put_manifest(self.repo(), tag, top)?;
                format!("{}:{tag}", self.repository_name())
            }
            None => format!("{}@{}", self.repository_name(), top.digest),
        };
        Ok(Committed { name, size: None })
    }
}
