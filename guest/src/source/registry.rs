//! A registry as a [`Source`].

use super::Source;
use crate::attach::{tag_for, Attachment, TAG_KINDS};
use crate::concurrent::{block_on, run_all, PollRead, Task};
use crate::error::{Error, Result};
use crate::manifest::{Descriptor, Parsed, RawManifest};
use crate::reference::Reference;
use crate::registry::{download, Registry};

/// What one attachment lookup found.
enum Probe {
    /// A cosign tag and the manifest under it, if any.
    Tag(String, Option<RawManifest>),
    /// The manifest under the referrers fallback tag, if any.
    Fallback(Result<Option<RawManifest>>),
    /// The referrers API's list; `None` without such an API.
    Listed(Option<Vec<Descriptor>>),
}

/// One image reference in one registry.
pub struct RegistrySource {
    registry: Registry,
    reference: Reference,
    /// Lookups made at once (`--jobs`).
    jobs: usize,
}

impl RegistrySource {
    /// The image `reference` at `registry`, making up to `jobs` lookups at once.
    pub fn new(registry: Registry, reference: Reference, jobs: u32) -> Self {
        RegistrySource {
            registry,
            reference,
            jobs: jobs.max(1) as usize,
        }
    }
}

/// Lookups per subject: its cosign tags, the referrers fallback tag and the
/// referrers API.
const PROBES: usize = TAG_KINDS.len() + 2;

impl RegistrySource {
    /// The manifest `desc` names, checked against its size (the client
    /// checks the digest).
    async fn fetch(&self, desc: &Descriptor) -> Result<RawManifest> {
        let shown = format!(
            "{}/{}@{}",
            self.reference.registry(),
            self.reference.repository(),
            desc.digest
        );
        let m = self
            .registry
            .fetch_manifest(
                self.reference.repository(),
                &desc.digest.to_string(),
                &shown,
            )
            .await?;
        if m.bytes.len() as u64 != desc.size {
            return Err(Error::DigestMismatch(format!(
                "manifest {shown} is {} bytes, its descriptor says {}",
                m.bytes.len(),
                desc.size
            )));
        }
        Ok(m)
    }

    /// The [`PROBES`] lookups that find `subject`'s attachments.
    fn probes<'a>(&'a self, subject: &'a Descriptor) -> Vec<Task<'a, Probe, Error>> {
        let repo = self.reference.repository();
        let registry = &self.registry;
        let shown = |tag: &str| format!("{}/{repo}:{tag}", self.reference.registry());
        let mut probes: Vec<Task<'a, Probe, Error>> = TAG_KINDS
            .iter()
            .map(|kind| {
                let tag = tag_for(&subject.digest, Some(kind));
                let display = shown(&tag);
                Box::pin(async move {
                    let found = registry.try_manifest(repo, &tag, &display).await?;
                    Ok(Probe::Tag(tag, found))
                }) as Task<'a, Probe, Error>
            })
            .collect();
        let fallback = tag_for(&subject.digest, None);
        let display = shown(&fallback);
        // The fallback tag counts only where the registry has no referrers
        // API, and so do its errors.
        probes.push(Box::pin(async move {
            let found = registry.try_manifest(repo, &fallback, &display).await;
            Ok(Probe::Fallback(found))
        }));
        probes.push(Box::pin(async move {
            Ok(Probe::Listed(
                registry.referrers(repo, &subject.digest).await?,
            ))
        }));
        probes
    }

    /// `subject`'s attachments, from what its lookups found.
    fn found(
        &self,
        subject: &Descriptor,
        probed: impl Iterator<Item = Probe>,
    ) -> Result<Vec<Attachment>> {
        let (mut out, mut listed, mut fallback) = (Vec::new(), None, None);
        for probe in probed {
            match probe {
                Probe::Tag(tag, Some(m)) => out.push(Attachment {
                    desc: m.descriptor(),
                    manifest: m,
                    subject: subject.digest.clone(),
                    tag: Some(tag),
                }),
                Probe::Tag(_, None) => {}
                Probe::Fallback(found) => fallback = Some(found),
                Probe::Listed(list) => listed = list,
            }
        }
        let listed = match (listed, fallback) {
            (Some(list), _) => list,
            (None, Some(found)) => match found? {
                Some(RawManifest {
                    parsed: Parsed::Index(ix),
                    ..
                }) => ix.manifests,
                _ => Vec::new(),
            },
            (None, None) => Vec::new(),
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
        block_on(self.fetch(desc))
    }

    fn manifests(&self, descs: &[Descriptor]) -> Result<Vec<RawManifest>> {
        let fetches = descs
            .iter()
            .map(|d| Box::pin(self.fetch(d)) as Task<'_, RawManifest, Error>);
        run_all(self.jobs, fetches)
    }

    fn registry_reference(&self) -> Option<&Reference> {
        Some(&self.reference)
    }

    fn attachments(&self, subject: &Descriptor) -> Result<Vec<Attachment>> {
        let mut found = self.attachments_of(std::slice::from_ref(subject))?;
        Ok(found.pop().unwrap_or_default())
    }

    fn attachments_of(&self, subjects: &[Descriptor]) -> Result<Vec<Vec<Attachment>>> {
        // The lookups are independent: `--jobs` at once, not five round
        // trips in a row per subject (over a WAN each costs one).
        let probes = subjects
            .iter()
            .flat_map(|s| self.probes(s))
            .collect::<Vec<_>>();
        let mut probed = run_all(self.jobs, probes)?.into_iter();
        subjects
            .iter()
            .map(|s| self.found(s, probed.by_ref().take(PROBES)))
            .collect()
    }

    fn blob(&self, desc: &Descriptor) -> Result<Box<dyn PollRead + '_>> {
        let body = download::open(&self.registry, self.reference.repository(), desc);
        Ok(Box::new(body))
    }
}
