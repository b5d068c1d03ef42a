//! The copy engine: one walk from a [`Source`] to a [`Destination`] that
//! pull, push, copy and vet share. The plan says each blob's fate; the walk
//! settles the left-out blobs first (so nothing is written when one is
//! nowhere to be had), moves the included ones `--jobs` at a time, each
//! verified against its digest as it streams, stores manifests children
//! first and names the top one last.

use std::collections::HashSet;
use std::io::Read;

use crate::bindings::imo::incremental::types::ProgressEvent;
use crate::concurrent::{block_on, run_all, PollRead, Ready, Task};
use crate::delta::{self, LayerDelta};
use crate::destination::{Destination, Opener};
use crate::digest::{classify_io, VerifyingReader};
use crate::error::{Error, MissingBlob, Result};
use crate::host::{blob_info, emit, ProgressReader};
use crate::manifest::Descriptor;
use crate::plan::{Action, Plan};
use crate::reference::Reference;
use crate::source::Source;

/// What becomes of the blobs the plan leaves out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftOut {
    /// The destination is the medium across the gap: they stay absent, and
    /// the image names them (pull).
    Record,
    /// The destination must hold them when the image lands there: already,
    /// or reused from another place; else nothing is written (push, copy).
    Require,
}

/// How to run a copy.
pub struct CopyOptions<'a> {
    /// Blobs in flight at once.
    pub jobs: u32,
    /// What left-out blobs mean here.
    pub left_out: LeftOut,
    /// Places known to hold the left-out blobs (mount sources).
    pub reuse_from: &'a [Reference],
    /// Places that may hold blobs being copied (images of a set that
    /// landed before), tried before sending their bytes.
    pub reuse_included: &'a [Reference],
    /// The destination read as a source, where it can be (a registry, a
    /// layout): layers shipped as deltas are rebuilt from its base layers.
    pub dest_source: Option<&'a dyn Source>,
}

/// What a copy did.
#[derive(Debug, Default)]
pub struct CopyReport {
    /// The image's name at the destination.
    pub destination: String,
    /// The size of the file written, for file destinations.
    pub size: Option<u64>,
    /// Blobs whose bytes were sent, and their bytes.
    pub transferred: u32,
    /// Bytes of those blobs.
    pub bytes: u64,
    /// Blobs the destination already held.
    pub present: u32,
    /// Blobs made present without their bytes (mounted).
    pub reused: u32,
    /// Blobs left out (recorded, or found at the destination).
    pub left_out: u32,
    /// Bytes of the blobs left out.
    pub left_out_bytes: u64,
    /// Manifests and indexes stored.
    pub manifests: u32,
    /// Their bytes.
    pub manifest_bytes: u64,
    /// Layers rebuilt from deltas (counted in `transferred` and `bytes`).
    pub rebuilt: u32,
}

/// Where one blob stands after the walk.
enum Outcome {
    Present,
    Reused,
    Transferred,
}

/// Copies the image `plan` describes from `source` into `dest`.
pub fn copy(
    plan: &Plan,
    source: &dyn Source,
    dest: Box<dyn Destination>,
    opts: &CopyOptions<'_>,
) -> Result<CopyReport> {
    copy_many(&[(plan, source)], dest, opts)
}

/// Copies several images, each from its own source, into one destination
/// (an archive or a layout holding a set): each blob moves once, whichever
/// images share it.
pub fn copy_many(
    images: &[(&Plan, &dyn Source)],
    mut dest: Box<dyn Destination>,
    opts: &CopyOptions<'_>,
) -> Result<CopyReport> {
    let plans: Vec<&Plan> = images.iter().map(|(p, _)| *p).collect();
    dest.begin(&plans)?;
    let mut report = CopyReport::default();
    // Each distinct blob once: copied if any image copies it (from the
    // first such image's source), else left out.
    let mut included: Vec<(&Descriptor, usize)> = Vec::new();
    let mut left_out: Vec<(&Descriptor, &Plan)> = Vec::new();
    let mut seen = HashSet::new();
    for (i, (plan, _)) in images.iter().enumerate() {
        for b in plan.blobs.iter().filter(|b| b.action == Action::Include) {
            if seen.insert(&b.desc.digest) {
                included.push((&b.desc, i));
            }
        }
    }
    for (plan, _) in images {
        for b in plan.left_out() {
            if seen.insert(&b.desc.digest) {
                left_out.push((&b.desc, plan));
            }
        }
    }
    // Layers shipped as deltas: carried as their data to a file (pull),
    // rebuilt where the image lands (push, copy) unless already there.
    let mut deltas: Vec<(&LayerDelta, usize)> = Vec::new();
    for (i, (plan, _)) in images.iter().enumerate() {
        for d in &plan.deltas {
            if seen.insert(&d.target.digest) {
                deltas.push((d, i));
            }
        }
    }
    report.left_out = left_out.len() as u32;
    report.left_out_bytes = left_out.iter().map(|(d, _)| d.size).sum();
    let mut to_rebuild: Vec<(&LayerDelta, usize)> = Vec::new();
    match opts.left_out {
        LeftOut::Record => {
            for (d, _) in &left_out {
                emit(ProgressEvent::BlobSkipped(blob_info(d)));
            }
        }
        LeftOut::Require => {
            let dest = &*dest;
            let settle = left_out
                .iter()
                .map(|&(d, _)| -> Task<'_, Option<Outcome>, Error> {
                    Box::pin(settle_left_out(dest, d, opts.reuse_from))
                });
            let settled = run_all(opts.jobs as usize, settle)?;
            let mut missing = Vec::new();
            for ((d, plan), outcome) in left_out.iter().zip(settled) {
                match outcome {
                    Some(Outcome::Reused) => report.reused += 1,
                    Some(_) => report.present += 1,
                    None => missing.push(plan.missing_blob(d)),
                }
            }
            let settle = deltas
                .iter()
                .map(|&(d, _)| -> Task<'_, Option<bool>, Error> {
                    Box::pin(settle_delta(dest, d, opts.dest_source.is_some()))
                });
            let settled = run_all(opts.jobs as usize, settle)?;
            for (&(d, i), outcome) in deltas.iter().zip(settled) {
                match outcome {
                    Some(true) => report.present += 1,
                    Some(false) => to_rebuild.push((d, i)),
                    None => missing.push(images[i].0.missing_base(d)),
                }
            }
            if !missing.is_empty() {
                return Err(Error::MissingBlobs(missing));
            }
        }
    }

    let here: Vec<Vec<Reference>> = images
        .iter()
        .map(|(_, s)| {
            let source = s.registry_reference().cloned();
            source
                .into_iter()
                .chain(opts.reuse_included.iter().cloned())
                .collect()
        })
        .collect();
    let (dest_ref, here) = (&*dest, &here);
    let transfers = included.iter().map(|&(d, i)| -> Task<'_, Outcome, Error> {
        Box::pin(transfer(images[i].1, dest_ref, d, &here[i]))
    });
    let outcomes = run_all(opts.jobs as usize, transfers)?;
    for ((d, _), outcome) in included.iter().zip(outcomes) {
        match outcome {
            Outcome::Present => report.present += 1,
            Outcome::Reused => report.reused += 1,
            Outcome::Transferred => {
                report.transferred += 1;
                report.bytes += d.size;
            }
        }
    }

    // One at a time: each holds a base layer's token form and a window.
    if let Some(reader) = opts.dest_source {
        for (d, i) in to_rebuild {
            block_on(rebuild(images[i].1, &*dest, reader, d))?;
            report.rebuilt += 1;
            report.transferred += 1;
            report.bytes += d.target.size;
        }
    }

    // Children before parents, so each manifest's blobs and children are
    // there when it lands; the top ones last, named by their tags on commit.
    let mut stored = HashSet::new();
    let mut tops = Vec::new();
    for (plan, _) in images {
        for m in &plan.manifests {
            if stored.insert(&m.digest) {
                dest.put_manifest(m)?;
                report.manifests += 1;
                report.manifest_bytes += m.bytes.len() as u64;
            }
        }
        let top = plan
            .manifests
            .iter()
            .find(|m| m.digest == plan.top.digest)
            .ok_or_else(|| {
                Error::CorruptArchive(format!(
                    "{}: the top manifest {} is not among its manifests",
                    plan.reference, plan.top.digest
                ))
            })?;
        tops.push((*plan, top));
    }
    let committed = dest.commit(&tops)?;
    report.destination = committed.name;
    report.size = committed.size;
    Ok(report)
}

/// Makes sure the destination holds left-out blob `d`; `None` if it is
/// nowhere to be had.
async fn settle_left_out(
    dest: &dyn Destination,
    d: &Descriptor,
    from: &[Reference],
) -> Result<Option<Outcome>> {
    if dest.has_blob(d).await? {
        emit(ProgressEvent::BlobSkipped(blob_info(d)));
        return Ok(Some(Outcome::Present));
    }
    if !from.is_empty() && dest.try_reuse(d, from).await? {
        emit(ProgressEvent::Note(format!("mounted blob {}", d.digest)));
        return Ok(Some(Outcome::Reused));
    }
    Ok(None)
}

/// Whether the layer delta `d` rebuilds is at the destination already
/// (`Some(true)`), can be rebuilt there from its base layer (`Some(false)`),
/// or neither (`None`).
async fn settle_delta(
    dest: &dyn Destination,
    d: &LayerDelta,
    readable: bool,
) -> Result<Option<bool>> {
    if dest.has_blob(&d.target).await? {
        emit(ProgressEvent::BlobSkipped(blob_info(&d.target)));
        return Ok(Some(true));
    }
    if readable && dest.has_blob(&d.base).await? {
        return Ok(Some(false));
    }
    Ok(None)
}

/// Rebuilds the layer delta `d` ships from its base layer, read from the
/// destination (`reader`), and its data, read from `source`; stores it,
/// verified against the layer's digest as it goes up.
async fn rebuild(
    source: &dyn Source,
    dest: &dyn Destination,
    reader: &dyn Source,
    d: &LayerDelta,
) -> Result<()> {
    emit(ProgressEvent::Note(format!(
        "rebuilding layer {} from base layer {} and a {}-byte delta",
        d.target.digest, d.base.digest, d.data.size
    )));
    let mut data = Vec::new();
    delta::read_blob(source, &d.data)?
        .read_to_end(&mut data)
        .map_err(|e| classify_io(e, |e| Error::Io(format!("delta {}: {e}", d.data.digest))))?;
    emit(ProgressEvent::BlobStarted(blob_info(&d.target)));
    let origin = format!("delta {} against {}", d.data.digest, d.base.digest);
    let open = || -> Result<Box<dyn PollRead + '_>> {
        // The base is read from the destination as the rebuild needs it.
        let base = delta::read_blob(reader, &d.base)?;
        let rebuilt = Ready(delta::rebuilder(base, d.base.size, d.segments(), &data));
        Ok(Box::new(VerifyingReader::new(
            ProgressReader::new(rebuilt, &d.target.digest),
            d.target.digest.clone(),
            d.target.size,
            origin.clone(),
        )))
    };
    let open: &Opener<'_> = &open;
    dest.put_blob(&d.target, open).await?;
    emit(ProgressEvent::BlobFinished(d.target.digest.to_string()));
    Ok(())
}

/// Moves blob `d` unless the destination has it or can reuse it from `here`
/// (where the source holds it).
async fn transfer(
    source: &dyn Source,
    dest: &dyn Destination,
    d: &Descriptor,
    here: &[Reference],
) -> Result<Outcome> {
    if dest.has_blob(d).await? {
        emit(ProgressEvent::BlobSkipped(blob_info(d)));
        return Ok(Outcome::Present);
    }
    if !here.is_empty() && dest.try_reuse(d, here).await? {
        emit(ProgressEvent::Note(format!("mounted blob {}", d.digest)));
        return Ok(Outcome::Reused);
    }
    emit(ProgressEvent::BlobStarted(blob_info(d)));
    let open = || -> Result<Box<dyn PollRead + '_>> {
        let body = ProgressReader::new(source.blob(d)?, &d.digest);
        Ok(Box::new(VerifyingReader::new(
            body,
            d.digest.clone(),
            d.size,
            source.name(),
        )))
    };
    let open: &Opener<'_> = &open;
    dest.put_blob(d, open).await?;
    emit(ProgressEvent::BlobFinished(d.digest.to_string()));
    Ok(Outcome::Transferred)
}

/// The left-out blobs `dest` lacks, looked up `jobs` at a time, and the
/// base layers of deltas whose layers it lacks: what vet reports.
pub fn sweep(plan: &Plan, dest: &dyn Destination, jobs: u32) -> Result<Vec<MissingBlob>> {
    let left_out: Vec<&Descriptor> = plan.left_out().map(|b| &b.desc).collect();
    let checks = left_out
        .iter()
        .map(|&d| -> Task<'_, bool, Error> { dest.has_blob(d) });
    let present = run_all(jobs as usize, checks)?;
    let settle = plan
        .deltas
        .iter()
        .map(|d| -> Task<'_, Option<bool>, Error> { Box::pin(settle_delta(dest, d, true)) });
    let settled = run_all(jobs as usize, settle)?;
    let lacking = left_out
        .iter()
        .zip(present)
        .filter(|(_, here)| !here)
        .map(|(d, _)| plan.missing_blob(d));
    let bases = plan
        .deltas
        .iter()
        .zip(settled)
        .filter(|(_, s)| s.is_none())
        .map(|(d, _)| plan.missing_base(d));
    Ok(lacking.chain(bases).collect())
}
