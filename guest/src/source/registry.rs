//! A registry as a [`Source`].

use std::cell::RefCell;
use std::collections::HashSet;

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
    /// The repository's tags once listed for attachment lookups; inside,
    /// `None` where one page did not list them all.
    tags: RefCell<Option<Option<HashSet<String>>>>,
}

impl RegistrySource {
    /// The image `reference` at `registry`, making up to `jobs` lookups at once.
    pub fn new(registry: Registry, reference: Reference, jobs: u32) -> Self {
        RegistrySource {
            registry,
            reference,
            jobs: jobs.max(1) as usize,
            tags: RefCell::new(None),
        }
    }
}

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

    /// Learns, in one round, what makes most attachment lookups needless:
    /// the repository's tags (cosign's and the fallback tags are among them
    /// or absent) and whether the registry has a referrers API (asking for
    /// `first`'s referrers, which are returned).
    fn learn(&self, first: &Descriptor) -> Result<Option<Probe>> {
        let repo = self.reference.repository();
        let mut rounds: Vec<Task<'_, Option<Probe>, Error>> = Vec::new();
        if self.tags.borrow().is_none() {
            rounds.push(Box::pin(async move {
                let listed = self.registry.tags_on_one_page(repo).await;
                *self.tags.borrow_mut() = Some(listed.map(HashSet::from_iter));
                Ok(None)
            }));
        }
        if self.registry.offers_referrers().is_none() {
            rounds.push(Box::pin(async move {
                let listed = self.registry.referrers(repo, &first.digest).await?;
                Ok(Some(Probe::Listed(listed)))
            }));
        }
        Ok(run_all(self.jobs, rounds)?.into_iter().flatten().next())
    }

    /// The lookups still needed to find `subject`'s attachments, given the
    /// repository's `tags` (if listed), whether the registry has a
    /// referrers API (if known) and whether `subject`'s referrers are
    /// already `listed`.
    fn probes<'a>(
        &'a self,
        subject: &'a Descriptor,
        tags: Option<&HashSet<String>>,
        api: Option<bool>,
        listed: bool,
    ) -> Vec<Task<'a, Probe, Error>> {
        let repo = self.reference.repository();
        let registry = &self.registry;
        let shown = |tag: &str| format!("{}/{repo}:{tag}", self.reference.registry());
        let absent = |tag: &str| tags.is_some_and(|t| !t.contains(tag));
        let mut probes: Vec<Task<'a, Probe, Error>> = Vec::new();
        for kind in TAG_KINDS {
            let tag = tag_for(&subject.digest, Some(kind));
            if absent(&tag) {
                continue;
            }
            let display = shown(&tag);
            probes.push(Box::pin(async move {
                let found = registry.try_manifest(repo, &tag, &display).await?;
                Ok(Probe::Tag(tag, found))
            }));
        }
        let fallback = tag_for(&subject.digest, None);
        if api != Some(true) && !absent(&fallback) {
            let display = shown(&fallback);
            // The fallback tag counts only where the registry has no
            // referrers API, and so do its errors.
            probes.push(Box::pin(async move {
                let found = registry.try_manifest(repo, &fallback, &display).await;
                Ok(Probe::Fallback(found))
            }));
        }
        if api != Some(false) && !listed {
            probes.push(Box::pin(async move {
                Ok(Probe::Listed(
                    registry.referrers(repo, &subject.digest).await?,
                ))
            }));
        }
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
        let manifests = self.manifests(&listed)?;
        for (desc, manifest) in listed.into_iter().zip(manifests) {
            out.push(Attachment {
                manifest,
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
        let Some(first) = subjects.first() else {
            return Ok(Vec::new());
        };
        // One round learns which lookups can find anything; the rest run
        // `--jobs` at once (over a WAN each costs a round trip).
        let early = self.learn(first)?;
        let tags = self.tags.borrow().clone().flatten();
        let api = self.registry.offers_referrers();
        let mut owners = Vec::new();
        let mut lookups = Vec::new();
        for (i, subject) in subjects.iter().enumerate() {
            let listed = i == 0 && early.is_some();
            for probe in self.probes(subject, tags.as_ref(), api, listed) {
                owners.push(i);
                lookups.push(probe);
            }
        }
        let mut probed: Vec<Vec<Probe>> = subjects.iter().map(|_| Vec::new()).collect();
        probed[0].extend(early);
        for (i, probe) in owners.into_iter().zip(run_all(self.jobs, lookups)?) {
            probed[i].push(probe);
        }
        subjects
            .iter()
            .zip(probed)
            .map(|(s, found)| self.found(s, found.into_iter()))
            .collect()
    }

    fn blob(&self, desc: &Descriptor) -> Result<Box<dyn PollRead + '_>> {
        let body = download::open(&self.registry, self.reference.repository(), desc);
        Ok(Box::new(body))
    }
}
