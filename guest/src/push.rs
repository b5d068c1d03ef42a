//! `vet` and `push`: land an archive in a destination repository with its
//! original digests, reusing what the destination already has.

use std::io;

use crate::archive::reader::ArchiveReader;
use crate::bindings::imo::incremental::types::{ProgressEvent, Role};
use crate::concurrent::{run_all, Blocking, Ready, Task};
use crate::digest::{classify_io, VerifyingReader};
use crate::error::{Error, MissingBlob, Result};
use crate::host::{blob_info, emit, ProgressReader};
use crate::inspect::{self, Inspection};
use crate::manifest::{Descriptor, BASE_NAME};
use crate::plan::{Action, Plan};
use crate::reference::Reference;
use crate::registry::upload::{pull_scope, push_scope, upload, Content};
use crate::registry::Registry;
use crate::source::{LayoutSource, Source};

/// Options of `vet` and `push`.
pub struct PushOptions {
    /// False allows plain HTTP to the destination.
    pub tls_verify: bool,
    /// Repositories (on the destination registry) to mount missing blobs from.
    pub mount_from: Vec<String>,
    /// Blobs larger than this are uploaded in PATCH chunks of this size.
    pub chunk_size: u64,
    /// vet: also re-hash every blob in the archive.
    pub verify: bool,
    /// Extra tries after a network failure.
    pub retry_times: u32,
    /// Blobs uploaded at once.
    pub jobs: u32,
}

/// What `vet` found.
pub struct VetReport {
    /// The destination repository.
    pub destination: String,
    /// Blobs the archive leaves out, looked up at the destination.
    pub checked: u32,
    /// Those the destination lacks.
    pub missing: Vec<MissingBlob>,
    /// Blobs re-hashed (with `verify`).
    pub verified: u32,
}

/// What `push` did.
#[derive(Default)]
pub struct PushReport {
    /// The destination, with the tag pushed.
    pub destination: String,
    /// The top digest, which now resolves there.
    pub digest: String,
    /// Blobs uploaded from the archive.
    pub uploaded: u32,
    /// Blobs the destination already had.
    pub skipped: u32,
    /// Blobs mounted from another repository.
    pub mounted: u32,
    /// Blob bytes sent.
    pub bytes_sent: u64,
    /// Manifests and indexes stored.
    pub manifests: u32,
}

struct Destination {
    registry: Registry,
    reference: Reference,
    tag: Option<String>,
}

/// Parses DESTINATION; its digest, if any, must be the archive's.
fn destination(destination: &str, plan: &Plan, opts: &PushOptions) -> Result<Destination> {
    let reference = Reference::parse(destination)?;
    if let Some(d) = reference.digest() {
        if *d != plan.top.digest {
            return Err(Error::InvalidArgument(format!(
                "{destination} names digest {d}, but the archive holds {}",
                plan.top.digest
            )));
        }
    }
    let tag = reference
        .explicit_tag()
        .map(str::to_string)
        .or_else(|| plan.tag.clone());
    let registry = Registry::new(
        reference.registry(),
        Role::Destination,
        !opts.tls_verify,
        opts.retry_times,
    );
    Ok(Destination {
        registry,
        reference,
        tag,
    })
}

/// The platforms of the images that use blob `d`.
fn platforms_of(plan: &Plan, d: &Descriptor) -> Vec<String> {
    let mut out: Vec<String> = plan
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

fn missing_blob(plan: &Plan, d: &Descriptor) -> MissingBlob {
    MissingBlob {
        digest: d.digest.to_string(),
        size: d.size,
        media_type: d.media_type.clone(),
        platforms: platforms_of(plan, d),
    }
}

/// Re-hashes every blob the archive holds.
fn verify_all(src: &mut dyn Source, inspection: &Inspection) -> Result<u32> {
    let origin = src.name();
    let mut count = 0;
    for d in &inspection.present {
        let body = Blocking(src.blob(d)?);
        let mut verified = VerifyingReader::new(body, d.digest.clone(), d.size, origin.clone());
        io::copy(&mut verified, &mut io::sink())
            .map_err(|e| classify_io(e, |e| Error::Io(format!("reading {origin}: {e}"))))?;
        count += 1;
    }
    Ok(count)
}

/// Checks that the destination holds every blob the archive leaves out.
pub fn vet(archive: &str, dest: &str, opts: &PushOptions) -> Result<VetReport> {
    let (mut src, inspection) = inspect::open(archive)?;
    let plan = &inspection.plan;
    let target = destination(dest, plan, opts)?;
    let repo = target.reference.repository().to_string();
    let scope = pull_scope(&repo);
    let (reg, repo_ref, scope_ref) = (&target.registry, &repo, &scope);
    let checks = inspection.missing.iter().map(|d| -> Task<'_, bool, Error> {
        Box::pin(async move {
            reg.blob_exists(repo_ref, &d.digest.to_string(), scope_ref)
                .await
        })
    });
    let present = run_all(opts.jobs as usize, checks)?;
    let missing = (inspection.missing.iter().zip(present))
        .filter(|(_, here)| !here)
        .map(|(d, _)| missing_blob(plan, d))
        .collect();
    let verified = if opts.verify {
        verify_all(&mut src, &inspection)?
    } else {
        0
    };
    Ok(VetReport {
        destination: format!("{}/{repo}", target.reference.registry()),
        checked: inspection.missing.len() as u32,
        missing,
        verified,
    })
}

/// Where a blob the archive leaves out stands at the destination.
enum Presence {
    /// The repository has it.
    There,
    /// Mounted from another repository of the registry.
    Mounted,
    /// Nowhere to be had.
    Missing,
}

/// Makes sure the destination repository holds left-out blob `d`, mounting
/// it from one of `mounts` if need be.
async fn make_present(
    reg: &Registry,
    repo: &str,
    scope: &str,
    mounts: &[String],
    d: &Descriptor,
) -> Result<Presence> {
    let digest = d.digest.to_string();
    if reg.blob_exists(repo, &digest, scope).await? {
        emit(ProgressEvent::BlobSkipped(blob_info(d)));
        return Ok(Presence::There);
    }
    for from in mounts {
        if reg.mount(repo, &digest, from).await? {
            emit(ProgressEvent::Note(format!("mounted blob {digest}")));
            return Ok(Presence::Mounted);
        }
    }
    Ok(Presence::Missing)
}

/// Where blobs go, as each upload needs it.
struct Target<'a> {
    registry: &'a Registry,
    repo: &'a str,
    scope: &'a str,
    chunk: u64,
}

/// Uploads blob `d` from the archive unless the destination has it; true if
/// it was sent.
async fn upload_blob(
    src: &LayoutSource<ArchiveReader>,
    d: &Descriptor,
    to: &Target<'_>,
) -> Result<bool> {
    let digest = d.digest.to_string();
    if to.registry.blob_exists(to.repo, &digest, to.scope).await? {
        emit(ProgressEvent::BlobSkipped(blob_info(d)));
        return Ok(false);
    }
    emit(ProgressEvent::BlobStarted(blob_info(d)));
    let open = || -> Result<Content<'_>> {
        let body = ProgressReader::new(Ready(src.open_blob(d)?), &d.digest);
        Ok(Box::new(VerifyingReader::new(
            body,
            d.digest.clone(),
            d.size,
            src.name(),
        )))
    };
    upload(to.registry, to.repo, d, &open, to.chunk).await?;
    emit(ProgressEvent::BlobFinished(digest));
    Ok(true)
}

/// Pushes the archive: blobs the destination lacks, then manifests children
/// first, then the tag — so a failure never leaves the tag on a partial image.
pub fn push(archive: &str, dest: &str, opts: &PushOptions) -> Result<PushReport> {
    let (src, inspection) = inspect::open(archive)?;
    let plan = &inspection.plan;
    let target = destination(dest, plan, opts)?;
    let repo = target.reference.repository().to_string();
    let scope = push_scope(&repo);
    let reg = &target.registry;
    let mut report = PushReport {
        digest: plan.top.digest.to_string(),
        ..PushReport::default()
    };

    // Mount sources: the user's, then the base the archive was made against
    // when it lives on the destination registry.
    let mut mounts = opts.mount_from.clone();
    let base = src.top_descriptor()?.annotations.get(BASE_NAME).cloned();
    if let Some(base) = base.and_then(|b| Reference::parse(&b).ok()) {
        if base.registry() == target.reference.registry() && base.repository() != repo {
            mounts.push(base.repository().to_string());
        }
    }

    // Left-out blobs first: if one is nowhere to be had, fail before any upload.
    let (mounts, to_repo, to_scope) = (&mounts, &repo, &scope);
    let checks = inspection
        .missing
        .iter()
        .map(|d| -> Task<'_, Presence, Error> {
            Box::pin(make_present(reg, to_repo, to_scope, mounts, d))
        });
    let presence = run_all(opts.jobs as usize, checks)?;
    let mut missing = Vec::new();
    for (d, p) in inspection.missing.iter().zip(presence) {
        match p {
            Presence::There => report.skipped += 1,
            Presence::Mounted => report.mounted += 1,
            Presence::Missing => missing.push(missing_blob(plan, d)),
        }
    }
    if !missing.is_empty() {
        return Err(Error::MissingBlobs(missing));
    }

    // Up to `jobs` uploads at once, each checked for first.
    let included: Vec<&Descriptor> = plan
        .blobs
        .iter()
        .filter(|b| b.action == Action::Include)
        .map(|b| &b.desc)
        .collect();
    let to = Target {
        registry: reg,
        repo: &repo,
        scope: &scope,
        chunk: opts.chunk_size,
    };
    let (src, to) = (&src, &to);
    let uploads = included
        .iter()
        .map(|&d| -> Task<'_, bool, Error> { Box::pin(upload_blob(src, d, to)) });
    let uploaded = run_all(opts.jobs as usize, uploads)?;
    for (d, sent) in included.iter().zip(uploaded) {
        if sent {
            report.uploaded += 1;
            report.bytes_sent += d.size;
        } else {
            report.skipped += 1;
        }
    }
    // Children before parents; the top last, by digest, then by tag.
    for m in &plan.manifests {
        reg.put_manifest(&repo, &m.digest.to_string(), m)?;
        report.manifests += 1;
    }
    let top = plan
        .manifests
        .iter()
        .find(|m| m.digest == plan.top.digest)
        .ok_or_else(|| Error::CorruptArchive(format!("{archive}: top manifest missing")))?;
    let shown = match &target.tag {
        Some(tag) => {
            reg.put_manifest(&repo, tag, top)?;
            format!("{}/{repo}:{tag}", target.reference.registry())
        }
        None => format!("{}/{repo}@{}", target.reference.registry(), top.digest),
    };
    report.destination = shown;
    Ok(report)
}
