//! `copy` and `push`: any source to any destination through the copy
//! engine, digest for digest. A blob the source lacks (an incremental
//! archive's left-out layers) must already be at the destination, or be
//! mounted there; otherwise nothing is written.

use crate::attach::Filter;
use crate::base::Bases;
use crate::bindings::imo::incremental::types::Role;
use crate::destination::{self, Access};
use crate::engine::{self, CopyOptions, LeftOut};
use crate::error::Result;
use crate::plan::Plan;
use crate::platform::Platform;
use crate::reference::Reference;
use crate::source::{self, Source, Transport};

/// Options of a copy, already parsed.
pub struct TransferOptions {
    /// Platform to select out of an index; `None` means the host's.
    pub platform: Option<Platform>,
    /// Keep the whole index.
    pub all_platforms: bool,
    /// The host's platform.
    pub host_platform: Platform,
    /// False allows plain HTTP to the source registry.
    pub src_tls_verify: bool,
    /// False allows plain HTTP to the destination registry.
    pub dest_tls_verify: bool,
    /// Repositories on the destination registry to mount missing blobs from.
    pub mount_from: Vec<String>,
    /// Blobs larger than this are uploaded in PATCH chunks of this size.
    pub chunk_size: u64,
    /// Extra tries after a network failure.
    pub retry_times: u32,
    /// Blobs moved at once.
    pub jobs: u32,
    /// Which attachments (signatures, SBOMs…) to carry.
    pub attachments: Filter,
}

/// What a copy or push did.
#[derive(Debug, Default)]
pub struct PushReport {
    /// The destination, with the tag pushed.
    pub destination: String,
    /// The top digest, which now resolves there.
    pub digest: String,
    /// Blobs whose bytes were sent.
    pub uploaded: u32,
    /// Blobs the destination already had.
    pub skipped: u32,
    /// Blobs mounted from another repository.
    pub mounted: u32,
    /// Blob bytes sent.
    pub bytes_sent: u64,
    /// Manifests and indexes stored.
    pub manifests: u32,
    /// Layers rebuilt from deltas.
    pub rebuilt: u32,
}

/// Where the destination may mount left-out blobs from: the `--mount-from`
/// repositories and the base an incremental archive was made against, when
/// they are on the destination's registry.
fn mount_sources(dest: &Transport, plan: &Plan, opts: &TransferOptions) -> Vec<Reference> {
    let Transport::Registry(to) = dest else {
        return Vec::new();
    };
    let mut from: Vec<Reference> = opts
        .mount_from
        .iter()
        .filter_map(|repo| Reference::parse(&format!("{}/{repo}", to.registry())).ok())
        .collect();
    from.extend(
        plan.recorded_base
            .as_deref()
            .and_then(|b| Reference::parse(b).ok())
            .filter(|b| b.registry() == to.registry()),
    );
    from
}

/// Where the layers `plan` ships as deltas are rebuilt from base layers:
/// the destination read as a source (a registry, or an `oci:` layout that
/// exists); none when the plan has no deltas.
pub fn delta_reader(
    dest: &Transport,
    plan: &Plan,
    insecure: bool,
    (retries, jobs): (u32, u32),
) -> Result<Option<Box<dyn Source>>> {
    Ok(match dest {
        _ if plan.deltas.is_empty() => None,
        Transport::Registry(r) => Some(source::open(
            Transport::Registry(r.clone()),
            Role::Destination,
            insecure,
            (retries, jobs),
        )?),
        Transport::Layout { path, .. } => source::open(
            Transport::Layout {
                path: path.clone(),
                tag: None,
            },
            Role::Destination,
            false,
            (0, 1),
        )
        .ok(),
        _ => None,
    })
}

/// Copies the image `src` names to `dest`.
pub fn transfer(src: Transport, dest: Transport, opts: &TransferOptions) -> Result<PushReport> {
    let source = source::open(
        src,
        Role::Final,
        !opts.src_tls_verify,
        (opts.retry_times, opts.jobs),
    )?;
    let want = opts
        .platform
        .clone()
        .unwrap_or_else(|| opts.host_platform.clone());
    let mut plan = Plan::build(&Bases::none(), source.as_ref(), opts.all_platforms, &want)?;
    let filter = crate::pull::for_target(&dest, &opts.attachments);
    plan.attach(source.as_ref(), &Bases::none(), &filter)?;
    plan.find_deltas(source.as_ref())?;
    let from = mount_sources(&dest, &plan, opts);
    let reader = delta_reader(
        &dest,
        &plan,
        !opts.dest_tls_verify,
        (opts.retry_times, opts.jobs),
    )?;
    let access = Access {
        tls_verify: opts.dest_tls_verify,
        retry_times: opts.retry_times,
        chunk_size: opts.chunk_size,
        write: true,
        split: 0,
    };
    let target = destination::open(dest, access)?;
    let options = CopyOptions {
        jobs: opts.jobs,
        left_out: LeftOut::Require,
        reuse_from: &from,
        reuse_included: &[],
        dest_source: reader.as_deref(),
    };
    let r = engine::copy(&plan, source.as_ref(), target, &options)?;
    Ok(PushReport {
        destination: r.destination,
        digest: plan.top.digest.to_string(),
        uploaded: r.transferred,
        skipped: r.present,
        mounted: r.reused,
        bytes_sent: r.bytes,
        manifests: r.manifests,
        rebuilt: r.rebuilt,
    })
}

/// `copy SRC DEST`: bare names are registry references on both sides.
pub fn copy(src: &str, dest: &str, opts: &TransferOptions) -> Result<PushReport> {
    transfer(Transport::parse(src)?, Transport::parse(dest)?, opts)
}
