//! The far side of a set: reading a set archive in place, and pushing or
//! vetting each of its images below a prefix, one failing not stopping the
//! others.

use crate::archive::reader::ArchiveReader;
use crate::attach::Filter;
use crate::base::Bases;
use crate::bindings::imo::incremental::types::{ProgressEvent, Role};
use crate::copy::{self, PushReport};
use crate::destination::{self, Access};
use crate::engine::{self, CopyOptions, LeftOut};
use crate::error::{Error, MissingBlob, Result};
use crate::host::emit;
use crate::manifest::{Descriptor, MOUNT_FROM, REF_NAME, SOURCE_NAME};
use crate::plan::Plan;
use crate::platform::Platform;
use crate::push::PushOptions;
use crate::reference::Reference;
use crate::registry::upload::pull_scope;
use crate::registry::Registry;
use crate::source::{DirStore, LayoutSource, LayoutStore, Transport};
use imo_grammar::transport::Prefix;

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

impl<T> SetOutcome<T> {
    /// The outcome for `entry` of a set archive, until it has one (`not`:
    /// what did not happen yet).
    fn pending(entry: &Descriptor, not: &str) -> Self {
        let named = |k: &str| entry.annotations.get(k).cloned().unwrap_or_default();
        SetOutcome {
            source: named(SOURCE_NAME),
            target: named(REF_NAME),
            destination: String::new(),
            digest: entry.digest.to_string(),
            outcome: Err(Error::Io(not.into())),
        }
    }
}

/// The set archive `archive`: its store, its name for messages, and its
/// images; an error if it is not a set.
fn open_set(archive: &str) -> Result<(Store, String, Vec<Descriptor>)> {
    let (store, shown) = Store::open(archive)?;
    let entries = set_entries(store.store(), &shown)?;
    if entries.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "{shown} is not a set archive"
        )));
    }
    Ok((store, shown, entries))
}

/// Pushes every image of a set archive to `prefix`/its target, one at a
/// time; one failing does not stop the others.
pub fn push_set(
    archive: &str,
    prefix: &str,
    opts: &PushOptions,
) -> Result<Vec<SetOutcome<PushReport>>> {
    let prefix = Prefix::parse(prefix)?;
    let (store, shown, entries) = open_set(archive)?;
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
        let mut outcome = SetOutcome::pending(entry, "not pushed");
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
    let (store, shown, entries) = open_set(archive)?;
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
        let mut outcome = SetOutcome::pending(entry, "not checked");
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
