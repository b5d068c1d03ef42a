//! Image sets: many images in one archive or layout, each blob once,
//! incremental against every base the far side has (images, earlier set
//! archives, inventories); pushed image by image below a prefix, one
//! image's failure never stopping the others.

use std::collections::BTreeSet;

use crate::archive::reader::ArchiveReader;
use crate::attach::Filter;
use crate::base::Bases;
use crate::bindings::imo::incremental::types::{ProgressEvent, Role};
use crate::copy::{self, PushReport};
use crate::delta::{self, LayerDelta, WithData};
use crate::destination::{self, Access};
use crate::engine::{self, CopyOptions, LeftOut};
use crate::error::{Error, MissingBlob, Result};
use crate::host::emit;
use crate::inventory::Inventory;
use crate::manifest::{Descriptor, Parsed, MOUNT_FROM, REF_NAME, SOURCE_NAME};
use crate::plan::{written_by, Plan};
use crate::platform::Platform;
use crate::pull::PullOptions;
use crate::push::PushOptions;
use crate::reference::Reference;
use crate::registry::upload::pull_scope;
use crate::registry::Registry;
use crate::source::{self, DirStore, LayoutSource, LayoutStore, Source, Transport};
use imo_grammar::transport::Prefix;

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
/// in the same repository of the same registry, else the only base image
/// there is; none otherwise (its layers then go whole or left out).
fn delta_base<'b>(spec: &SetImage, images: &'b [Box<dyn Source>]) -> Option<&'b dyn Source> {
    let wanted = match Transport::parse(&spec.source) {
        Ok(Transport::Registry(r)) => Some(r),
        _ => None,
    };
    let same: Vec<&dyn Source> = images
        .iter()
        .filter(|b| match (b.registry_reference(), &wanted) {
            (Some(b), Some(w)) => b.registry() == w.registry() && b.repository() == w.repository(),
            _ => false,
        })
        .map(|b| b.as_ref())
        .collect();
    match (same.as_slice(), images) {
        ([one], _) => Some(*one),
        // A set archive holds many images: which one is the base is not
        // said, so it is none.
        ([], [only]) if only.registry_reference().is_some() || single(only.as_ref()) => {
            Some(only.as_ref())
        }
        _ => None,
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
                made = delta::make(&plan, base, src.as_ref(), &want)?;
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
    images
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let planned = plan_image(spec, (&bases, &base_images), opts)?;
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

/// A set archive or layout, read in place once for all its images.
enum Store {
    Archive(ArchiveReader),
    Dir(DirStore),
}

impl Store {
    fn open(archive: &str) -> Result<(Store, String)> {
        match Transport::parse_file(archive)? {
            Transport::Archive { path, .. } => Ok((
                Store::Archive(ArchiveReader::open(&path)?),
                format!("oci-archive:{path}"),
            )),
            Transport::Layout { path, .. } => {
                Ok((Store::Dir(DirStore::new(&path)?), format!("oci:{path}")))
            }
            other => Err(Error::InvalidArgument(format!(
                "{other} is not a set archive: sets are OCI archives or layouts"
            ))),
        }
    }

    fn store(&self) -> &dyn LayoutStore {
        match self {
            Store::Archive(a) => a,
            Store::Dir(d) => d,
        }
    }
}

/// The images of a set archive: their `index.json` entries.
fn set_entries(store: &dyn LayoutStore, shown: &str) -> Result<Vec<Descriptor>> {
    let index = LayoutSource::new(store, shown.to_string(), None).index()?;
    Ok(index
        .manifests
        .into_iter()
        .filter(|d| d.annotations.contains_key(SOURCE_NAME))
        .collect())
}

/// The targets of the images of a set `archive`; none for an ordinary
/// archive or anything else.
pub fn set_targets(archive: &str) -> Result<Vec<String>> {
    // One image of a set, named by its tag, is an ordinary image.
    if let Ok(Transport::Archive { tag: Some(_), .. } | Transport::Layout { tag: Some(_), .. }) =
        Transport::parse_file(archive)
    {
        return Ok(Vec::new());
    }
    let Ok((store, shown)) = Store::open(archive) else {
        return Ok(Vec::new());
    };
    Ok(set_entries(store.store(), &shown)?
        .into_iter()
        .filter_map(|d| d.annotations.get(REF_NAME).cloned())
        .collect())
}

/// One image of a set archive as a source, and its target `path:tag`.
fn entry_source<'a>(
    store: &'a dyn LayoutStore,
    shown: &str,
    entry: &Descriptor,
) -> Result<(LayoutSource<&'a dyn LayoutStore>, String, String)> {
    let target = entry.annotations.get(REF_NAME).cloned().ok_or_else(|| {
        Error::CorruptArchive(format!("{shown}: an image of the set has no target name"))
    })?;
    let (path, tag) = target.rsplit_once(':').ok_or_else(|| {
        Error::CorruptArchive(format!("{shown}: target {target:?} is not path:tag"))
    })?;
    let mut src = LayoutSource::new(store, shown.to_string(), Some(target.clone()));
    src.set_top(entry.clone());
    Ok((src, path.to_string(), tag.to_string()))
}

/// Where an image's left-out blobs may be mounted from, on the prefix's
/// registry: the places the archive recorded and `--mount-from`.
fn mount_places(prefix: &Prefix, entry: &Descriptor, extra: &[String]) -> Vec<Reference> {
    let Prefix::Registry { registry, .. } = prefix else {
        return Vec::new();
    };
    let recorded = entry
        .annotations
        .get(MOUNT_FROM)
        .map(|m| m.split(',').map(str::to_string).collect::<Vec<_>>())
        .unwrap_or_default();
    recorded
        .iter()
        .filter_map(|p| match p.strip_prefix("./") {
            Some(below) => prefix.repository(below),
            None => Some(p.clone()),
        })
        .chain(extra.iter().map(|r| format!("{registry}/{r}")))
        .filter_map(|r| Reference::parse(&r).ok())
        .filter(|r| r.registry() == registry)
        .collect()
}

/// An image vetted: the blobs it leaves out, and those it could not get.
pub type Vetted = (u32, Vec<MissingBlob>);

/// What became of one image of a set pushed or vetted.
#[derive(Debug)]
pub struct SetOutcome<T> {
    /// Its source, as recorded.
    pub source: String,
    /// Its target `path:tag`.
    pub target: String,
    /// Where it goes.
    pub destination: String,
    /// Its top digest.
    pub digest: String,
    /// The result.
    pub outcome: Result<T>,
}

/// Pushes every image of a set archive to `prefix`/its target, one at a
/// time; one failing does not stop the others.
pub fn push_set(
    archive: &str,
    prefix: &str,
    opts: &PushOptions,
) -> Result<Vec<SetOutcome<PushReport>>> {
    let prefix = Prefix::parse(prefix)?;
    let (store, shown) = Store::open(archive)?;
    let entries = set_entries(store.store(), &shown)?;
    if entries.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "{shown} is not a set archive"
        )));
    }
    let access = Access {
        tls_verify: opts.tls_verify,
        retry_times: opts.retry_times,
        chunk_size: opts.chunk_size,
        write: true,
        split: 0,
    };
    let mut landed: Vec<Reference> = Vec::new();
    let mut out = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let source = entry
            .annotations
            .get(SOURCE_NAME)
            .cloned()
            .unwrap_or_default();
        let mut outcome = SetOutcome {
            source,
            target: entry.annotations.get(REF_NAME).cloned().unwrap_or_default(),
            destination: String::new(),
            digest: entry.digest.to_string(),
            outcome: Err(Error::Io("not pushed".into())),
        };
        let result = (|| -> Result<(PushReport, Option<Reference>)> {
            let (src, path, tag) = entry_source(store.store(), &shown, entry)?;
            let dest = prefix.target(&path, &tag)?;
            outcome.destination = dest.to_string();
            let mut plan = Plan::build(&Bases::none(), &src, true, &Platform::default())?;
            if opts.attachments {
                plan.attach(&src, &Bases::none(), &Filter::all())?;
            }
            plan.find_deltas(&src)?;
            let reader = copy::delta_reader(
                &dest,
                &plan,
                !opts.tls_verify,
                (opts.retry_times, opts.jobs),
            )?;
            let mounts = mount_places(&prefix, entry, &opts.mount_from);
            let options = CopyOptions {
                jobs: opts.jobs,
                left_out: LeftOut::Require,
                reuse_from: &mounts,
                reuse_included: &landed,
                dest_source: reader.as_deref(),
            };
            let r = engine::copy(
                &plan,
                &src,
                destination::open(dest.clone(), access)?,
                &options,
            )?;
            let report = PushReport {
                destination: r.destination,
                digest: plan.top.digest.to_string(),
                uploaded: r.transferred,
                skipped: r.present,
                mounted: r.reused,
                bytes_sent: r.bytes,
                manifests: r.manifests,
                rebuilt: r.rebuilt,
            };
            let here = match dest {
                Transport::Registry(to) => Some(to),
                _ => None,
            };
            Ok((report, here))
        })();
        let result = result.map(|(report, here)| {
            landed.extend(here);
            report
        });
        emit(ProgressEvent::Note(format!(
            "{}/{} {}: {}",
            i + 1,
            entries.len(),
            outcome.target,
            match &result {
                Ok(_) => "landed".to_string(),
                Err(e) => format!("failed: {e}"),
            }
        )));
        outcome.outcome = result;
        out.push(outcome);
    }
    Ok(out)
}

/// Checks, for every image of a set archive, that its left-out blobs are in
/// its target repository or in a place it may mount them from.
pub fn vet_set(archive: &str, prefix: &str, opts: &PushOptions) -> Result<Vec<SetOutcome<Vetted>>> {
    let prefix = Prefix::parse(prefix)?;
    let (store, shown) = Store::open(archive)?;
    let entries = set_entries(store.store(), &shown)?;
    if entries.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "{shown} is not a set archive"
        )));
    }
    let access = Access {
        tls_verify: opts.tls_verify,
        retry_times: opts.retry_times,
        chunk_size: opts.chunk_size,
        write: false,
        split: 0,
    };
    let registry = match &prefix {
        Prefix::Registry { registry, .. } => Some(Registry::new(
            registry,
            Role::Destination,
            !opts.tls_verify,
            opts.retry_times,
        )),
        Prefix::Layout { .. } => None,
    };
    let mut out = Vec::new();
    for entry in &entries {
        let mut outcome = SetOutcome {
            source: entry
                .annotations
                .get(SOURCE_NAME)
                .cloned()
                .unwrap_or_default(),
            target: entry.annotations.get(REF_NAME).cloned().unwrap_or_default(),
            destination: String::new(),
            digest: entry.digest.to_string(),
            outcome: Err(Error::Io("not checked".into())),
        };
        let result = (|| -> Result<Vetted> {
            let (src, path, tag) = entry_source(store.store(), &shown, entry)?;
            let dest = prefix.target(&path, &tag)?;
            outcome.destination = dest.to_string();
            let mut plan = Plan::build(&Bases::none(), &src, true, &Platform::default())?;
            plan.attach(&src, &Bases::none(), &Filter::all())?;
            plan.find_deltas(&src)?;
            let mut target = destination::open(dest, access)?;
            target.begin(&[&plan])?;
            let missing = engine::sweep(&plan, target.as_ref(), opts.jobs)?;
            let mounts = mount_places(&prefix, entry, &opts.mount_from);
            let mut still = Vec::new();
            for m in missing {
                let mut found = false;
                if let Some(reg) = &registry {
                    for place in &mounts {
                        let scope = pull_scope(place.repository());
                        let exists = reg.blob_exists(place.repository(), &m.digest, &scope);
                        if crate::concurrent::block_on(exists)? {
                            found = true;
                            break;
                        }
                    }
                }
                if !found {
                    still.push(m);
                }
            }
            Ok((plan.left_out().count() as u32, still))
        })();
        outcome.outcome = result;
        out.push(outcome);
    }
    Ok(out)
}
