//! A registry repository as a destination: blobs looked up with `HEAD`,
//! mounted across repositories, uploaded in one `PUT` or `PATCH` chunks;
//! manifests by digest, the tag last.

use super::{Access, Committed, Destination, Opener};
use crate::bindings::imo::incremental::types::Role;
use crate::concurrent::{block_on, Task};
use crate::error::{Error, Result};
use std::collections::HashMap;

use serde_json::{json, Value};

use crate::attach::{tag_for, Attachment};
use crate::digest::Digest;
use crate::manifest::{Descriptor, Parsed, RawManifest, OCI_INDEX};
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

impl RegistryDestination {
    /// After the image's tag, its attachments' names: cosign's tags, and,
    /// where the registry lists no referrers itself, the fallback tag's
    /// index, merged with what it held.
    fn land_attachments(&self, plan: &Plan) -> Result<()> {
        let mut api: HashMap<&Digest, bool> = HashMap::new();
        for a in &plan.attachments {
            let att = &a.attachment;
            match &att.tag {
                Some(tag) => self
                    .registry
                    .put_manifest(self.repo(), tag, &att.manifest)?,
                None => {
                    let has_api = match api.get(&att.subject) {
                        Some(known) => *known,
                        None => {
                            let lookup = self.registry.referrers(self.repo(), &att.subject);
                            let known = block_on(lookup)?.is_some();
                            api.insert(&att.subject, known);
                            known
                        }
                    };
                    if !has_api {
                        self.list_referrer(att)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Adds `att` to the referrers fallback index of its subject, keeping
    /// every entry already there.
    fn list_referrer(&self, att: &Attachment) -> Result<()> {
        let tag = tag_for(&att.subject, None);
        let shown = format!("{}:{tag}", self.repository_name());
        let lookup = self.registry.try_manifest(self.repo(), &tag, &shown);
        let mut index: Value = match block_on(lookup)? {
            Some(m) if matches!(m.parsed, Parsed::Index(_)) => serde_json::from_slice(&m.bytes)
                .map_err(|e| Error::Registry(format!("{shown} is not usable: {e}")))?,
            Some(_) => {
                return Err(Error::Registry(format!(
                    "{shown} holds something other than an index: the referrers of {} cannot be listed there",
                    att.subject
                )))
            }
            None => json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}),
        };
        let digest = att.manifest.digest.to_string();
        let entry = serde_json::to_value(&att.desc)
            .map_err(|e| Error::Io(format!("cannot describe {digest}: {e}")))?;
        match index.get_mut("manifests").and_then(Value::as_array_mut) {
            Some(list)
                if list
                    .iter()
                    .any(|d| d.get("digest") == Some(&Value::from(digest.as_str()))) =>
            {
                return Ok(())
            }
            Some(list) => list.push(entry),
            None => index["manifests"] = Value::Array(vec![entry]),
        }
        let bytes = serde_json::to_vec(&index)
            .map_err(|e| Error::Io(format!("cannot write {shown}: {e}")))?;
        let m = RawManifest::parse(bytes, Some(OCI_INDEX), &shown)?;
        self.registry.put_manifest(self.repo(), &tag, &m)
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
        let [(plan, top)] = images else {
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
        self.land_attachments(plan)?;
        Ok(Committed { name, size: None })
    }
}
