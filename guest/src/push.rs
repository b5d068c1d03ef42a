//! `vet` and `push`: an archive (or any incomplete image) against a
//! destination registry or `oci:` layout. vet is the engine's has-blob sweep
//! over the blobs the archive leaves out; push is a copy of the whole
//! archive, every platform, that requires those blobs at the destination.

use std::io;

use crate::attach::Filter;
use crate::base::Bases;
use crate::bindings::imo::incremental::types::Role;
use crate::concurrent::Blocking;
use crate::copy::{self, TransferOptions};
use crate::destination::{self, Access};
use crate::digest::{classify_io, VerifyingReader};
use crate::engine;
use crate::error::{Error, MissingBlob, Result};
use crate::plan::{Action, Plan};
use crate::platform::Platform;
use crate::source::{self, Source, Transport};

pub use crate::copy::PushReport;

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
    /// push: land the archive's attachments too.
    pub attachments: bool,
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

/// Re-hashes every blob the archive holds, manifests included.
fn verify_all(src: &dyn Source, plan: &Plan) -> Result<u32> {
    let origin = src.name();
    let present = plan.manifests.iter().map(|m| m.descriptor()).chain(
        plan.blobs
            .iter()
            .filter(|b| b.action == Action::Include)
            .map(|b| b.desc.clone()),
    );
    let mut count = 0;
    for d in present {
        let body = Blocking(src.blob(&d)?);
        let mut verified = VerifyingReader::new(body, d.digest.clone(), d.size, origin.clone());
        io::copy(&mut verified, &mut io::sink())
            .map_err(|e| classify_io(e, |e| Error::Io(format!("reading {origin}: {e}"))))?;
        count += 1;
    }
    Ok(count)
}

/// Opens an archive argument (`FILE`, or any transport) and plans all of it.
fn open_archive(archive: &str) -> Result<(Box<dyn Source>, Plan)> {
    let source = source::open(Transport::parse_file(archive)?, Role::Final, false, (0, 1))?;
    // Every platform: an archive's content is what it is.
    let mut plan = Plan::build(&Bases::none(), source.as_ref(), true, &Platform::default())?;
    plan.attach(source.as_ref(), &Bases::none(), &Filter::all())?;
    plan.find_deltas(source.as_ref())?;
    Ok((source, plan))
}

/// Checks that the destination holds every blob the archive leaves out.
pub fn vet(archive: &str, dest: &str, opts: &PushOptions) -> Result<VetReport> {
    let (source, plan) = open_archive(archive)?;
    let access = Access {
        tls_verify: opts.tls_verify,
        retry_times: opts.retry_times,
        chunk_size: opts.chunk_size,
        write: false,
        split: 0,
    };
    let mut target = destination::open(Transport::parse(dest)?, access)?;
    target.begin(&[&plan])?;
    let missing = engine::sweep(&plan, target.as_ref(), opts.jobs)?;
    let verified = if opts.verify {
        verify_all(source.as_ref(), &plan)?
    } else {
        0
    };
    Ok(VetReport {
        destination: target.name(),
        checked: (plan.left_out().count() + plan.deltas.len()) as u32,
        missing,
        verified,
    })
}

/// Pushes the archive: blobs the destination lacks, then manifests children
/// first, then the tag — so a failure never leaves the tag on a partial image.
pub fn push(archive: &str, dest: &str, opts: &PushOptions) -> Result<PushReport> {
    let options = TransferOptions {
        platform: None,
        all_platforms: true,
        host_platform: Platform::default(),
        src_tls_verify: true,
        dest_tls_verify: opts.tls_verify,
        mount_from: opts.mount_from.clone(),
        chunk_size: opts.chunk_size,
        retry_times: opts.retry_times,
        jobs: opts.jobs,
        attachments: if opts.attachments {
            Filter::all()
        } else {
            Filter::none()
        },
    };
    copy::transfer(
        Transport::parse_file(archive)?,
        Transport::parse(dest)?,
        &options,
    )
}
