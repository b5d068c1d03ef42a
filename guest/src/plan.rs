//! The plan: the manifests of an image and the fate of each of its blobs:
//! copied, left out (BASE has it, or the source lacks it, so the
//! destination must) or foreign. One value shared by pull, plan, inspect,
//! vet, push and copy, and walked by the copy engine.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::archive::writer::Layout;
use crate::attach::{self, Attachment, Filter, FOUND_AS, SUBJECT};
use crate::base::Bases;
use crate::bindings::imo::incremental::types::ProgressEvent;
use crate::delta::LayerDelta;
use crate::digest::Digest;
use crate::error::{Error, MissingBlob, Result};
use crate::host::emit;
use crate::manifest::{
    platforms, select_platform, Descriptor, LayoutIndex, Parsed, RawManifest, BASE_NAME, REF_NAME,
};
use crate::platform::Platform;
use crate::reference::Reference;
use crate::source::Source;

mod deltas;

/// Deepest index nesting followed (index -> index -> manifest is legal).
pub const MAX_DEPTH: usize = 4;

/// Most distinct manifests and indexes one walk of an image (or a base, or
/// an inventory's repository) reads: past it, the image is refused.
pub const MAX_DOCUMENTS: usize = 10_000;

/// What happens to a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Written into the archive.
    Include,
    /// Left out: the base has it, so the destination will.
    LeftOut,
    /// A foreign / non-distributable layer: never copied.
    Foreign,
    /// Shipped as a delta against a layer the far side has, rebuilt there
    /// (see [`crate::delta`]).
    Delta,
}

/// A blob of FINAL and its fate.
#[derive(Debug, Clone)]
pub struct PlannedBlob {
    /// The descriptor, as in the manifest.
    pub desc: Descriptor,
    /// Configs are never left out; layers may be.
    pub is_layer: bool,
    /// The decision.
    pub action: Action,
}

/// One image (platform) of FINAL.
#[derive(Debug, Clone)]
pub struct ImagePlan {
    /// Its platform, when an index names it.
    pub platform: Option<Platform>,
    /// Its manifest.
    pub manifest: Descriptor,
    /// Config first, then layers bottom-up.
    pub blobs: Vec<PlannedBlob>,
}

/// Everything a pull will write, decided before a byte of a layer moves.
#[derive(Debug, Clone)]
pub struct Plan {
    /// FINAL as named by its source.
    pub reference: String,
    /// BASE as named by its source, if not scratch.
    pub base: Option<String>,
    /// BASE's registry reference, when BASE is in a registry.
    pub base_registry: Option<String>,
    /// FINAL's registry reference, when FINAL is in a registry.
    pub source_registry: Option<Reference>,
    /// The base an incremental source recorded it was made against.
    pub recorded_base: Option<String>,
    /// More annotations for its `index.json` entry (a set's source, mounts).
    pub annotations: BTreeMap<String, String>,
    /// Signatures, SBOMs and other attachments, after the image's manifests
    /// in `manifests` and with their blobs in `blobs`.
    pub attachments: Vec<AttachmentPlan>,
    /// The tag for `index.json`.
    pub tag: Option<String>,
    /// The descriptor `index.json` names.
    pub top: Descriptor,
    /// Manifests and indexes, children before parents.
    pub manifests: Vec<RawManifest>,
    /// The images, in index order.
    pub images: Vec<ImagePlan>,
    /// The layers shipped as deltas (their blobs' action is `Delta`).
    pub deltas: Vec<LayerDelta>,
    /// The `index.json` entries of the delta artifacts this plan writes.
    delta_entries: Vec<Descriptor>,
    /// Bytes this plan writes for its deltas: data, artifacts, config.
    delta_overhead: u64,
    /// Distinct blobs in write order.
    pub blobs: Vec<PlannedBlob>,
    /// The digests in `blobs`, and of every manifest walked: each is
    /// planned once, however often it is listed.
    seen_blobs: HashSet<Digest>,
    walked: HashSet<Digest>,
}

/// An attachment of the image and the fates of its blobs.
#[derive(Debug, Clone)]
pub struct AttachmentPlan {
    /// What it is and what it attaches to.
    pub attachment: Attachment,
    /// Its config and layers.
    pub blobs: Vec<PlannedBlob>,
}

/// A blob's fate: foreign ones stay foreign; layers the far side has, and
/// blobs the source lacks, are left out; the rest is copied.
fn fate(bases: &Bases, source: &dyn Source, desc: &Descriptor, is_layer: bool) -> Action {
    if desc.is_foreign() {
        Action::Foreign
    } else if (is_layer && bases.has(&desc.digest)) || !source.holds(&desc.digest) {
        Action::LeftOut
    } else {
        Action::Include
    }
}

/// Blobs written into an archive holding all of `plans`, each once.
pub fn written_by<'a>(plans: &[&'a Plan]) -> Vec<(&'a Digest, u64)> {
    let mut seen = HashSet::new();
    plans
        .iter()
        .flat_map(|p| p.written())
        .filter(|(d, _)| seen.insert(*d))
        .collect()
}

fn too_deep(name: &str) -> Error {
    Error::Unsupported(format!("{name}: indexes nested more than {MAX_DEPTH} deep"))
}

impl Plan {
    /// Resolves FINAL (the whole tree with `all`, else the platform `want`)
    /// and decides each blob: foreign ones stay foreign; layers BASE has,
    /// and blobs FINAL's source lacks, are left out; the rest is copied.
    pub fn build(bases: &Bases, final_: &dyn Source, all: bool, want: &Platform) -> Result<Plan> {
        let decide = |desc: &Descriptor, is_layer: bool| fate(bases, final_, desc, is_layer);
        let mut plan = Plan::build_with(final_, all, want, &decide)?;
        plan.base = bases.name();
        plan.base_registry = bases.registry();
        Ok(plan)
    }

    /// Resolves FINAL and decides each blob with `decide(descriptor, is_layer)`.
    pub fn build_with(
        final_: &dyn Source,
        all: bool,
        want: &Platform,
        decide: &dyn Fn(&Descriptor, bool) -> Action,
    ) -> Result<Plan> {
        let top = final_.top()?;
        let reference = final_.name();
        let mut plan = Plan {
            tag: final_.tag()?,
            base: None,
            base_registry: None,
            source_registry: final_.registry_reference().cloned(),
            recorded_base: final_.recorded_base(),
            annotations: BTreeMap::new(),
            attachments: Vec::new(),
            top: top.descriptor(),
            reference,
            manifests: Vec::new(),
            images: Vec::new(),
            blobs: Vec::new(),
            deltas: Vec::new(),
            delta_entries: Vec::new(),
            delta_overhead: 0,
            seen_blobs: HashSet::new(),
            walked: HashSet::from([top.digest.clone()]),
        };
        let top = match (&top.parsed, all) {
            (Parsed::Index(ix), false) => {
                let chosen = select_platform(ix, want).ok_or_else(|| {
                    Error::NotFound(format!(
                        "{} has no image for platform {want} (it has: {}); use --platform or --all-platforms",
                        plan.reference,
                        platforms(ix)
                    ))
                })?;
                let child = final_.manifest(chosen)?;
                if matches!(child.parsed, Parsed::Index(_)) {
                    return Err(Error::Unsupported(format!(
                        "{}: the {want} entry is itself an index; use --all-platforms",
                        plan.reference
                    )));
                }
                let mut top = chosen.clone();
                top.annotations.clear();
                plan.top = top.clone();
                plan.add(final_, child, Some(top), 0, decide)?;
                return Ok(plan);
            }
            _ => top,
        };
        plan.add(final_, top, None, 0, decide)?;
        Ok(plan)
    }

    fn add(
        &mut self,
        src: &dyn Source,
        m: RawManifest,
        entry: Option<Descriptor>,
        depth: usize,
        decide: &dyn Fn(&Descriptor, bool) -> Action,
    ) -> Result<()> {
        match &m.parsed {
            Parsed::Image(img) => {
                let mut image = ImagePlan {
                    platform: entry.as_ref().and_then(|e| e.platform.clone()),
                    manifest: entry.unwrap_or_else(|| m.descriptor()),
                    blobs: Vec::new(),
                };
                let config = std::iter::once((&img.config, false));
                for (desc, is_layer) in config.chain(img.layers.iter().map(|l| (l, true))) {
                    let action = decide(desc, is_layer);
                    let planned = PlannedBlob {
                        desc: desc.clone(),
                        is_layer,
                        action,
                    };
                    if self.seen_blobs.insert(desc.digest.clone()) {
                        self.blobs.push(planned.clone());
                    }
                    image.blobs.push(planned);
                }
                self.images.push(image);
            }
            Parsed::Index(ix) => {
                if depth >= MAX_DEPTH {
                    return Err(too_deep(&self.reference));
                }
                let mut children = Vec::new();
                for child_desc in ix.manifests.clone() {
                    // A child listed again is planned once.
                    if !self.walked.insert(child_desc.digest.clone()) {
                        continue;
                    }
                    if self.walked.len() > MAX_DOCUMENTS {
                        return Err(Error::Unsupported(format!(
                            "{} lists more than {MAX_DOCUMENTS} distinct manifests",
                            self.reference
                        )));
                    }
                    children.push(child_desc);
                }
                // Fetched together: a registry source asks for them at once.
                let fetched = src.manifests(&children)?;
                for (child, child_desc) in fetched.into_iter().zip(children) {
                    self.add(src, child, Some(child_desc), depth + 1, decide)?;
                }
            }
        }
        if !self.manifests.iter().any(|x| x.digest == m.digest) {
            self.manifests.push(m);
        }
        Ok(())
    }

    /// The archive's `index.json`, naming the top manifest by `tag`.
    pub fn index_json(&self, tag: Option<&str>) -> Vec<u8> {
        LayoutIndex::of(self.index_entries(tag)).to_bytes()
    }

    /// The image's `index.json` entries: the image named `tag`, then each
    /// attachment, annotated with its subject and the tag it was found
    /// under (no ref name: tools that pick an image by name skip them).
    pub fn index_entries(&self, tag: Option<&str>) -> Vec<Descriptor> {
        let mut out = vec![self.index_entry(tag)];
        for a in &self.attachments {
            let mut d = a.attachment.desc.clone();
            d.annotations
                .insert(SUBJECT.to_string(), a.attachment.subject.to_string());
            if let Some(t) = &a.attachment.tag {
                d.annotations.insert(FOUND_AS.to_string(), t.clone());
            }
            out.push(d);
        }
        out.extend(self.delta_entries.iter().cloned());
        out
    }

    /// Adds the attachments `filter` keeps of every manifest of the image,
    /// and theirs in turn (to [`attach::MAX_DEPTH`]), their blobs decided as
    /// the image's are.
    pub fn attach(&mut self, source: &dyn Source, bases: &Bases, filter: &Filter) -> Result<()> {
        if !filter.enabled {
            return Ok(());
        }
        let mut seen: HashSet<Digest> = self.manifests.iter().map(|m| m.digest.clone()).collect();
        let budget = MAX_DOCUMENTS.saturating_sub(self.walked.len());
        let mut queue: Vec<(Descriptor, usize)> =
            self.manifests.iter().map(|m| (m.descriptor(), 1)).collect();
        // The image's own manifests are looked up together, up front.
        let subjects: Vec<Descriptor> = queue.iter().map(|(d, _)| d.clone()).collect();
        let mut looked_up: HashMap<Digest, Vec<Attachment>> = subjects
            .iter()
            .map(|d| d.digest.clone())
            .zip(source.attachments_of(&subjects)?)
            .collect();
        while let Some((subject, depth)) = queue.pop() {
            let found = match looked_up.remove(&subject.digest) {
                Some(found) => found,
                None => source.attachments(&subject)?,
            };
            for a in found {
                if !a.wanted(&filter.types) || !seen.insert(a.manifest.digest.clone()) {
                    continue;
                }
                if self.attachments.len() >= budget {
                    return Err(Error::Unsupported(format!(
                        "{} has more than {budget} attachments",
                        self.reference
                    )));
                }
                let Parsed::Image(img) = &a.manifest.parsed else {
                    emit(ProgressEvent::Note(format!(
                        "attachment {} of {} is an index: not carried",
                        a.manifest.digest, subject.digest
                    )));
                    continue;
                };
                let config = std::iter::once((&img.config, false));
                let mut blobs = Vec::new();
                for (desc, is_layer) in config.chain(img.layers.iter().map(|l| (l, true))) {
                    let planned = PlannedBlob {
                        desc: desc.clone(),
                        is_layer,
                        action: fate(bases, source, desc, is_layer),
                    };
                    if self.seen_blobs.insert(desc.digest.clone()) {
                        self.blobs.push(planned.clone());
                    }
                    blobs.push(planned);
                }
                if depth < attach::MAX_DEPTH {
                    queue.push((a.manifest.descriptor(), depth + 1));
                }
                self.manifests.push(a.manifest.clone());
                self.attachments.push(AttachmentPlan {
                    attachment: a,
                    blobs,
                });
            }
        }
        Ok(())
    }

    /// The image's `index.json` entry, named `tag`.
    pub fn index_entry(&self, tag: Option<&str>) -> Descriptor {
        let mut top = self.top.clone();
        if let Some(tag) = tag {
            top.annotations
                .insert(REF_NAME.to_string(), tag.to_string());
        }
        if let Some(base) = &self.base_registry {
            top.annotations.insert(BASE_NAME.to_string(), base.clone());
        }
        top.annotations.extend(self.annotations.clone());
        top
    }

    /// Blobs written into the archive, manifests included, each once.
    pub fn written(&self) -> impl Iterator<Item = (&Digest, u64)> {
        self.blobs
            .iter()
            .filter(|b| b.action == Action::Include)
            .map(|b| (&b.desc.digest, b.desc.size))
            .chain(
                self.manifests
                    .iter()
                    .map(|m| (&m.digest, m.bytes.len() as u64)),
            )
    }

    /// Bytes of blob content in the archive (configs, layers, manifests).
    pub fn archive_blob_bytes(&self) -> u64 {
        let mut seen = HashSet::new();
        self.written()
            .filter(|(d, _)| seen.insert(*d))
            .map(|(_, s)| s)
            .sum()
    }

    /// Where each entry of the archive goes, its image named by `tag`.
    pub fn layout(&self, tag: Option<&str>) -> Layout {
        Layout::new(self.written(), self.index_json(tag).len() as u64)
    }

    /// The exact size of the archive file.
    pub fn archive_size(&self) -> u64 {
        self.layout(self.tag.as_deref()).size()
    }

    /// Bytes of the layers left out.
    pub fn left_out_bytes(&self) -> u64 {
        self.left_out().map(|b| b.desc.size).sum()
    }

    /// The layers left out.
    pub fn left_out(&self) -> impl Iterator<Item = &PlannedBlob> {
        self.blobs.iter().filter(|b| b.action == Action::LeftOut)
    }

    /// Bytes of the whole image (every distributable blob and manifest).
    pub fn full_bytes(&self) -> u64 {
        let targets: u64 = self.deltas.iter().map(|d| d.target.size).sum();
        (self.archive_blob_bytes() + self.left_out_bytes() + targets)
            .saturating_sub(self.delta_overhead)
    }

    /// The platforms of the images that use blob `d` (`-` where none is named).
    pub fn platforms_of(&self, d: &Descriptor) -> Vec<String> {
        let mut out: Vec<String> = self
            .images
            .iter()
            .filter(|i| i.blobs.iter().any(|b| b.desc.digest == d.digest))
            .map(|i| {
                i.platform
                    .as_ref()
                    .map_or("-".to_string(), |p| p.to_string())
            })
            .collect();
        out.dedup();
        out
    }

    /// Blob `d` as a destination's lack is reported.
    pub fn missing_blob(&self, d: &Descriptor) -> MissingBlob {
        MissingBlob {
            digest: d.digest.to_string(),
            size: d.size,
            media_type: d.media_type.clone(),
            platforms: self.platforms_of(d),
        }
    }

    /// Number of distinct layers.
    pub fn layer_count(&self) -> usize {
        self.blobs.iter().filter(|b| b.is_layer).count()
    }
}
