//! `pull` and `plan`: resolve FINAL (and BASE), decide what goes in, then
//! copy FINAL without the layers BASE has into an archive (or a layout).

use crate::attach::Filter;
use crate::base::Bases;
use crate::bindings::imo::incremental::types::{ProgressEvent, Role};
use crate::delta::{self, LayerDelta};
use crate::destination::{self, Access};
use crate::engine::{self, CopyOptions, LeftOut};
use crate::error::{Error, Result};
use crate::host::emit;
use crate::plan::Plan;
use crate::platform::Platform;
use crate::source::{self, Source, Transport};

/// Options of `pull` and `plan`, already parsed.
pub struct PullOptions {
    /// Platform to select; `None` means the host's.
    pub platform: Option<Platform>,
    /// Keep the whole index.
    pub all_platforms: bool,
    /// The host's platform.
    pub host_platform: Platform,
    /// False allows plain HTTP to the source registries.
    pub tls_verify: bool,
    /// Extra tries after a network failure.
    pub retry_times: u32,
    /// Blobs transferred at once.
    pub jobs: u32,
    /// Write the archive in parts of this many bytes (0: one file).
    pub split: u64,
    /// Which attachments (signatures, SBOMs…) to carry.
    pub attachments: Filter,
    /// Ship changed gzip layers as deltas against BASE's.
    pub delta: bool,
}

/// What a pull wrote.
#[derive(Debug, Default)]
pub struct PullReport {
    /// FINAL as named by its source.
    pub reference: String,
    /// Digest of the top manifest in the archive.
    pub digest: String,
    /// Manifests and indexes written.
    pub manifests: u32,
    /// Configs and layers written.
    pub blobs_written: u32,
    /// Bytes of blob content written, manifests included.
    pub bytes_written: u64,
    /// Layers left out because the base has them.
    pub layers_left_out: u32,
    /// Their bytes.
    pub bytes_left_out: u64,
    /// Layers shipped as deltas.
    pub layers_delta: u32,
    /// Their bytes.
    pub bytes_delta_layers: u64,
    /// Bytes of their delta data.
    pub bytes_delta: u64,
    /// Size of the archive file.
    pub archive_size: u64,
}

/// The attachments a destination can take: a docker-archive none.
pub(crate) fn for_target(target: &Transport, wanted: &Filter) -> Filter {
    match target {
        Transport::DockerArchive { .. } => Filter::none(),
        _ => wanted.clone(),
    }
}

/// Parts are for archive files only.
pub(crate) fn check_split(target: &Transport, split: u64) -> Result<()> {
    match target {
        Transport::Archive { .. } => Ok(()),
        other if split > 0 => Err(Error::InvalidArgument(format!(
            "--split writes an archive file in parts; {other} is not one"
        ))),
        _ => Ok(()),
    }
}

/// FINAL's source, with the delta data a `--delta` plan made.
type Planned = (Box<dyn Source>, Vec<(LayerDelta, Vec<u8>)>, Plan);

/// Opens FINAL (and BASE unless `scratch`) and plans the archive; with
/// `--delta`, makes and proves the deltas too (which reads the layers).
fn open_and_plan(
    base: &str,
    final_: &str,
    opts: &PullOptions,
    attachments: &Filter,
) -> Result<Planned> {
    let final_ref = Transport::parse(final_)?;
    let base_ref = match base {
        "scratch" => None,
        b => Some(Transport::parse(b)?),
    };
    let insecure = !opts.tls_verify;
    let base_src = base_ref
        .map(|b| source::open(b, Role::Base, insecure, (opts.retry_times, opts.jobs)))
        .transpose()?;
    let final_src = source::open(
        final_ref,
        Role::Final,
        insecure,
        (opts.retry_times, opts.jobs),
    )?;
    let want = opts
        .platform
        .clone()
        .unwrap_or_else(|| opts.host_platform.clone());
    let mut bases = Bases::none();
    if let Some(b) = &base_src {
        bases.add(b.as_ref())?;
    }
    let mut plan = Plan::build(&bases, final_src.as_ref(), opts.all_platforms, &want)?;
    plan.attach(final_src.as_ref(), &bases, attachments)?;
    let mut made = Vec::new();
    if opts.delta {
        let Some(base_src) = &base_src else {
            return Err(Error::InvalidArgument(
                "--delta needs a BASE to make deltas against, not scratch".into(),
            ));
        };
        made = delta::make(&plan, base_src.as_ref(), final_src.as_ref(), &want, &mut 0)?;
        plan.use_deltas(made.iter().map(|(d, _)| d.clone()).collect())?;
    }
    Ok((final_src, made, plan))
}

/// Plans a pull without downloading a layer (with `--delta`, it reads the
/// layers it makes deltas of).
pub fn plan(base: &str, final_: &str, opts: &PullOptions) -> Result<Plan> {
    open_and_plan(base, final_, opts, &opts.attachments).map(|(_, _, plan)| plan)
}

/// Runs a pull: FINAL minus what BASE has, copied by the engine into
/// `output` (an OCI archive file, `-` for stdout, `oci:DIR`,
/// `oci-archive:FILE` or `docker-archive:FILE`), `jobs` blobs at once, each
/// verified as it arrives.
pub fn pull(base: &str, final_: &str, output: &str, opts: &PullOptions) -> Result<PullReport> {
    if output.is_empty() {
        return Err(Error::InvalidArgument("output path is empty".into()));
    }
    let target = Transport::parse_file(output)?;
    if let Transport::Registry(r) = &target {
        return Err(Error::InvalidArgument(format!(
            "pull writes FILE, oci:DIR, oci-archive:FILE or docker-archive:FILE, not registry {r}: to copy into a registry, use imo copy"
        )));
    }
    check_split(&target, opts.split)?;
    if opts.delta && matches!(target, Transport::DockerArchive { .. }) {
        return Err(Error::InvalidArgument(format!(
            "{target} cannot carry deltas (docker load would not rebuild them): drop --delta"
        )));
    }
    let (source, made, plan) =
        open_and_plan(base, final_, opts, &for_target(&target, &opts.attachments))?;
    let source = delta::WithData::new(source.as_ref(), made);
    if let Some(base) = &plan.base {
        if plan.left_out().next().is_none() {
            emit(ProgressEvent::Note(format!(
                "{base} shares no layer with {}: the archive holds every layer",
                plan.reference
            )));
        }
    }
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
    let r = engine::copy(&plan, &source, dest, &options)?;
    Ok(PullReport {
        reference: plan.reference.clone(),
        digest: plan.top.digest.to_string(),
        manifests: r.manifests,
        blobs_written: r.transferred,
        bytes_written: r.bytes + r.manifest_bytes,
        layers_left_out: r.left_out,
        bytes_left_out: r.left_out_bytes,
        layers_delta: plan.deltas.len() as u32,
        bytes_delta_layers: plan.deltas.iter().map(|d| d.target.size).sum(),
        bytes_delta: plan.delta_bytes(),
        archive_size: r.size.unwrap_or(r.bytes + r.manifest_bytes),
    })
}
