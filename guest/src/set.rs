//! Image sets: many images in one archive or layout, each blob once,
//! incremental against every base the far side has (images, earlier set
//! archives, inventories); pushed image by image below a prefix, one
//! image's failure never stopping the others.

use std::collections::BTreeSet;

use crate::base::Bases;
use crate::bindings::imo::incremental::types::{ProgressEvent, Role};
use crate::concurrent::PollRead;
use crate::delta::{self, LayerDelta, WithData};
use crate::destination::{self, Access};
use crate::digest::Digest;
use crate::engine::{self, CopyOptions, LeftOut};
use crate::error::{Error, Result};
use crate::host::emit;
use crate::inventory::Inventory;
use crate::manifest::{Descriptor, Parsed, RawManifest, MOUNT_FROM, SOURCE_NAME};
use crate::plan::{written_by, Plan};
use crate::platform::Platform;
use crate::pull::PullOptions;
use crate::reference::Reference;
use crate::source::{self, Source, Transport};

mod land;
pub use land::{push_set, set_targets, vet_set, SetOutcome, Vetted};

/// One image of a set, as the host parsed it.
#[derive(Debug, Clone)]
pub struct SetImage {
    /// Anything FINAL may be.
    pub source: String,
    /// `path:tag` below the prefix.
    pub target: String,
    /// Platforms to take (none: the host's; one: that one).
    pub platforms: Vec<Platform>,
    /// The whole index.
    pub all_platforms: bool,
}

/// What became of one image in a set pull.
#[derive(Debug)]
pub struct ImageReport {
    /// Its source.
    pub source: String,
    /// Its target.
    pub target: String,
    /// Its top digest.
    pub digest: String,
    /// Its layers left out, and their bytes.
    pub layers_left_out: u32,
    /// Bytes of those.
    pub bytes_left_out: u64,
    /// Bytes it alone would put in an archive.
    pub bytes: u64,
}

/// What a set pull wrote.
#[derive(Debug, Default)]
pub struct SetReport {
    /// Each image.
    pub images: Vec<ImageReport>,
    /// Manifests and indexes stored.
    pub manifests: u32,
    /// Configs and layers written.
    pub blobs_written: u32,
    /// Bytes written, manifests included.
    pub bytes_written: u64,
    /// Distinct layers left out, and their bytes.
    pub layers_left_out: u32,
    /// Bytes of those.
    pub bytes_left_out: u64,
    /// Size of the archive file (for a layout, the bytes written).
    pub archive_size: u64,
    /// Bytes not written twice because images share them.
    pub shared_bytes_saved: u64,
}

/// Every base: an image or archive (any transport, a set archive's every
/// image), or `inventory:FILE`; and, with `--delta`, the base images kept
/// open to make deltas against.
fn open_bases(bases: &[String], opts: &PullOptions) -> Result<(Bases, Vec<Box<dyn Source>>)> {
    let mut out = Bases::none();
    let mut images = Vec::new();
    for b in bases {
        if let Some(path) = b.strip_prefix("inventory:") {
            out.add_inventory(&Inventory::read(path)?, b)?;
        } else {
            let src = source::open(
                Transport::parse(b)?,
                Role::Base,
                !opts.tls_verify,
                (opts.retry_times, opts.jobs),
            )?;
            out.add(src.as_ref())?;
            if opts.delta {
                images.push(src);
            }
        }
    }
    Ok((out, images))
}

/// The base image a set image's deltas are made against: the one base image
/// in the same repository of the same registry (a base image from there,
/// or an image of a set archive that came from there), else the only base
/// image there is; none otherwise (its layers then go whole or left out).
fn delta_base<'b>(spec: &SetImage, images: &'b [Box<dyn Source>]) -> Option<OneImage<'b>> {
    let Ok(Transport::Registry(wanted)) = Transport::parse(&spec.source) else {
        return None;
    };
    let same_repo =
        |r: &Reference| r.registry() == wanted.registry() && r.repository() == wanted.repository();
    let mut same: Vec<OneImage<'b>> = Vec::new();
    for b in images {
        if let Some(r) = b.registry_reference() {
            if same_repo(r) {
                same.push(OneImage::all(b.as_ref()));
            }
            continue;
        }
        // A set archive's images say where they came from.
        for (top, annotations) in b.images().unwrap_or_default() {
            let from = annotations.get(SOURCE_NAME).map(|s| Transport::parse(s));
            if let Some(Ok(Transport::Registry(r))) = from {
                if same_repo(&r) {
                    same.push(OneImage::of(b.as_ref(), top));
                }
            }
        }
    }
    match (same.len(), images) {
        (1, _) => same.pop(),
        (0, [only]) if only.registry_reference().is_some() || single(only.as_ref()) => {
            Some(OneImage::all(only.as_ref()))
        }
        _ => None,
    }
}

/// A base as one image: a source of one image as it is, or one image of a
/// set archive.
struct OneImage<'b> {
    inner: &'b dyn Source,
    top: Option<RawManifest>,
}

impl<'b> OneImage<'b> {
    fn all(inner: &'b dyn Source) -> Self {
        OneImage { inner, top: None }
    }

    fn of(inner: &'b dyn Source, top: RawManifest) -> Self {
        OneImage {
            inner,
            top: Some(top),
        }
    }
}

impl Source for OneImage<'_> {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn tag(&self) -> Result<Option<String>> {
        self.inner.tag()
    }
    fn top(&self) -> Result<RawManifest> {
        match &self.top {
            Some(top) => Ok(top.clone()),
            None => self.inner.top(),
        }
    }
    fn manifest(&self, desc: &Descriptor) -> Result<RawManifest> {
        self.inner.manifest(desc)
    }
    fn holds(&self, digest: &Digest) -> bool {
        self.inner.holds(digest)
    }
    fn blob(&self, desc: &Descriptor) -> Result<Box<dyn PollRead + '_>> {
        self.inner.blob(desc)
    }
    fn registry_reference(&self) -> Option<&Reference> {
        self.inner.registry_reference()
    }
}

/// Whether `source` holds one image.
fn single(source: &dyn Source) -> bool {
    source.images().is_ok_and(|i| i.len() == 1)
}

/// Whether to take the whole index, and which platform otherwise. Several
/// platforms must be all of the index: a registry stores an index only
/// with every child, and changing it would change its digest.
fn platforms(spec: &SetImage, src: &dyn Source, host: &Platform) -> Result<(bool, Platform)> {
    match spec.platforms.as_slice() {
        _ if spec.all_platforms => Ok((true, host.clone())),
        [] => Ok((false, host.clone())),
        [one] => Ok((false, one.clone())),
        wanted => match src.top()?.parsed {
            Parsed::Index(ix) => {
                let covered = ix.manifests.iter().all(|d| {
                    d.platform
                        .as_ref()
                        .is_some_and(|p| wanted.iter().any(|w| w.matches(p)))
                });
                if covered {
                    Ok((true, host.clone()))
                } else {
                    Err(Error::Unsupported(format!(
                        "{}: {} platforms are not every one of its index ({}): a registry keeps an index only with all its children; list one platform, or all",
                        spec.source,
                        wanted.len(),
                        crate::manifest::platforms(&ix)
                    )))
                }
            }
            Parsed::Image(_) => Ok((false, host.clone())),
        },
    }
}

/// One image of a set: its source, its plan, and the deltas made for it.
type Planned = (Box<dyn Source>, Plan, Vec<(LayerDelta, Vec<u8>)>);

/// Plans one image of a set against `bases`; with `--delta`, makes deltas
/// against its base image among `base_images`.
fn plan_image(
    spec: &SetImage,
    (bases, base_images): (&Bases, &[Box<dyn Source>]),
    opts: &PullOptions,
    held: &mut u64,
) -> Result<Planned> {
    let src = source::open(
        Transport::parse(&spec.source)?,
        Role::Final,
        !opts.tls_verify,
        (opts.retry_times, opts.jobs),
    )?;
    let (all, want) = platforms(spec, src.as_ref(), &opts.host_platform)?;
    let mut plan = Plan::build(bases, src.as_ref(), all, &want)?;
    plan.attach(src.as_ref(), bases, &opts.attachments)?;
    let mut made = Vec::new();
    if opts.delta {
        match delta_base(spec, base_images) {
            Some(base) => {
                made = delta::make(&plan, &base, src.as_ref(), &want, held)?;
                plan.use_deltas(made.iter().map(|(d, _)| d.clone()).collect())?;
            }
            None => emit(ProgressEvent::Note(format!(
                "{}: no base image to make deltas against (none in its repository, and not one base image alone): its layers go whole or left out",
                spec.source
            ))),
        }
    }
    plan.tag = Some(spec.target.clone());
    plan.annotations
        .insert(SOURCE_NAME.to_string(), spec.source.clone());
    let places: BTreeSet<&str> = plan
        .left_out()
        .flat_map(|b| bases.places(&b.desc.digest))
        .collect();
    if !places.is_empty() {
        let list: Vec<&str> = places.into_iter().collect();
        plan.annotations
            .insert(MOUNT_FROM.to_string(), list.join(","));
    }
    Ok((src, plan, made))
}

/// Plans every image of a set.
fn plan_all(images: &[SetImage], bases: &[String], opts: &PullOptions) -> Result<Vec<Planned>> {
    let (bases, base_images) = open_bases(bases, opts)?;
    // Every image's delta data waits for the archive: one budget for all.
    let mut held = 0;
    images
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let planned = plan_image(spec, (&bases, &base_images), opts, &mut held)?;
            emit(ProgressEvent::Note(format!(
                "planned {}/{} {} <- {}: {} layer(s) left out",
                i + 1,
                images.len(),
                spec.target,
                spec.source,
                planned.1.left_out().count()
            )));
            Ok(planned)
        })
        .collect()
}

/// Bytes the images would take in archives of their own, less what one
/// archive of all of them takes.
fn shared_saving(plans: &[&Plan]) -> u64 {
    let alone: u64 = plans.iter().map(|p| p.archive_blob_bytes()).sum();
    let together: u64 = written_by(plans).iter().map(|(_, s)| s).sum();
    alone.saturating_sub(together)
}

/// What `plan --set` shows: each image's plan, and the saving from sharing.
pub fn plan_set(
    images: &[SetImage],
    bases: &[String],
    opts: &PullOptions,
) -> Result<(Vec<Plan>, u64, crate::archive::writer::Layout)> {
    let planned = plan_all(images, bases, opts)?;
    let plans: Vec<Plan> = planned.into_iter().map(|(_, p, _)| p).collect();
    let refs: Vec<&Plan> = plans.iter().collect();
    let saved = shared_saving(&refs);
    let entries = refs
        .iter()
        .flat_map(|p| p.index_entries(p.tag.as_deref()))
        .collect();
    let index = crate::manifest::LayoutIndex::of(entries).to_bytes();
    let layout = crate::archive::writer::Layout::new(written_by(&refs), index.len() as u64);
    Ok((plans, saved, layout))
}

/// Writes every image of the set into `output` (an archive or `oci:DIR`),
/// each blob once, leaving out what the bases have.
pub fn pull_set(
    images: &[SetImage],
    bases: &[String],
    output: &str,
    opts: &PullOptions,
) -> Result<SetReport> {
    let target = Transport::parse_file(output)?;
    if matches!(
        target,
        Transport::Registry(_) | Transport::DockerArchive { .. }
    ) {
        return Err(Error::InvalidArgument(format!(
            "a set is written to FILE, oci:DIR or oci-archive:FILE, not {target}"
        )));
    }
    crate::pull::check_split(&target, opts.split)?;
    let planned = plan_all(images, bases, opts)?;
    let (sources, plans_made): (Vec<_>, Vec<_>) =
        planned.into_iter().map(|(s, p, m)| (s, (p, m))).unzip();
    let (owned_plans, made): (Vec<Plan>, Vec<_>) = plans_made.into_iter().unzip();
    // Each image's source, with the delta data made for it.
    let with_data: Vec<WithData> = sources
        .iter()
        .zip(made)
        .map(|(s, m)| WithData::new(s.as_ref(), m))
        .collect();
    let items: Vec<(&Plan, &dyn Source)> = owned_plans
        .iter()
        .zip(&with_data)
        .map(|(p, s)| (p, s as &dyn Source))
        .collect();
    let plans: Vec<&Plan> = items.iter().map(|(p, _)| *p).collect();
    let access = Access {
        tls_verify: true,
        retry_times: opts.retry_times,
        chunk_size: 0,
        write: true,
        split: opts.split,
    };
    let dest = destination::open(target, access)?;
    let options = CopyOptions {
        jobs: opts.jobs,
        left_out: LeftOut::Record,
        reuse_from: &[],
        reuse_included: &[],
        dest_source: None,
    };
    let r = engine::copy_many(&items, dest, &options)?;
    Ok(SetReport {
        images: plans
            .iter()
            .map(|p| ImageReport {
                source: p.annotations.get(SOURCE_NAME).cloned().unwrap_or_default(),
                target: p.tag.clone().unwrap_or_default(),
                digest: p.top.digest.to_string(),
                layers_left_out: p.left_out().count() as u32,
                bytes_left_out: p.left_out_bytes(),
                bytes: p.archive_blob_bytes(),
            })
            .collect(),
        manifests: r.manifests,
        blobs_written: r.transferred,
        bytes_written: r.bytes + r.manifest_bytes,
        layers_left_out: r.left_out,
        bytes_left_out: r.left_out_bytes,
        archive_size: r.size.unwrap_or(r.bytes + r.manifest_bytes),
        shared_bytes_saved: shared_saving(&plans),
    })
}
