//! `pull` and `plan`: resolve FINAL (and BASE), decide what goes in, then
//! stream FINAL into an OCI archive without the layers BASE has.

use std::io;

use crate::archive::output::Output;
use crate::archive::writer::ArchiveWriter;
use crate::bindings::imo::incremental::types::{ProgressEvent, Role};
use crate::digest::{classify_io, VerifyingReader};
use crate::error::{Error, Result};
use crate::host::{blob_info, emit, ProgressReader};
use crate::plan::{Action, Plan};
use crate::platform::Platform;
use crate::source::{Source, SourceRef};

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
    /// Size of the archive file.
    pub archive_size: u64,
}

/// Opens FINAL (and BASE unless `scratch`) and plans the archive.
fn open_and_plan(base: &str, final_: &str, opts: &PullOptions) -> Result<(Box<dyn Source>, Plan)> {
    let final_ref = SourceRef::parse(final_)?;
    let base_ref = match base {
        "scratch" => None,
        b => Some(SourceRef::parse(b)?),
    };
    let insecure = !opts.tls_verify;
    let mut base_src = base_ref
        .map(|b| b.open(Role::Base, insecure, opts.retry_times))
        .transpose()?;
    let mut final_src = final_ref.open(Role::Final, insecure, opts.retry_times)?;
    let want = opts
        .platform
        .clone()
        .unwrap_or_else(|| opts.host_platform.clone());
    let plan = Plan::build(
        base_src.as_mut().map(|b| b.as_mut() as &mut dyn Source),
        final_src.as_mut(),
        opts.all_platforms,
        &want,
    )?;
    Ok((final_src, plan))
}

/// Plans a pull without downloading a layer.
pub fn plan(base: &str, final_: &str, opts: &PullOptions) -> Result<Plan> {
    open_and_plan(base, final_, opts).map(|(_, plan)| plan)
}

/// Runs a pull.
pub fn pull(base: &str, final_: &str, output: &str, opts: &PullOptions) -> Result<PullReport> {
    if output.is_empty() {
        return Err(Error::InvalidArgument("output path is empty".into()));
    }
    let (mut source, plan) = open_and_plan(base, final_, opts)?;
    if let Some(base) = &plan.base {
        if plan.left_out().next().is_none() {
            emit(ProgressEvent::Note(format!(
                "{base} shares no layer with {}: the archive holds every layer",
                plan.reference
            )));
        }
    }
    let out = Output::open(output)?;
    let shown = out.display();
    let write_err = |e: io::Error| Error::io(&shown, "write", &e);
    let mut writer = ArchiveWriter::new(out).map_err(write_err)?;
    let mut report = PullReport {
        reference: plan.reference.clone(),
        digest: plan.top.digest.to_string(),
        ..PullReport::default()
    };
    for blob in &plan.blobs {
        let d = &blob.desc;
        match blob.action {
            Action::Include => {}
            Action::LeftOut => {
                report.layers_left_out += 1;
                report.bytes_left_out += d.size;
                emit(ProgressEvent::BlobSkipped(blob_info(d)));
                continue;
            }
            Action::Foreign => continue,
        }
        emit(ProgressEvent::BlobStarted(blob_info(d)));
        let origin = source.name();
        let body = source.blob(d)?;
        let verified = VerifyingReader::new(
            ProgressReader::new(body, &d.digest),
            d.digest.clone(),
            d.size,
            origin,
        );
        writer
            .put_stream(&d.digest, d.size, verified)
            .map_err(|e| {
                classify_io(e, |e| {
                    Error::Network(format!("copying blob {} to {shown}: {e}", d.digest))
                })
            })?;
        emit(ProgressEvent::BlobFinished(d.digest.to_string()));
        report.blobs_written += 1;
        report.bytes_written += d.size;
    }
    for m in &plan.manifests {
        writer.put_bytes(&m.digest, &m.bytes).map_err(write_err)?;
        report.manifests += 1;
        report.bytes_written += m.bytes.len() as u64;
    }
    let out = writer.finish(&plan.index_json()).map_err(write_err)?;
    out.commit()?;
    report.archive_size = plan.archive_size();
    Ok(report)
}
