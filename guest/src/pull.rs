//! `pull` and `plan`: resolve FINAL (and BASE), decide what goes in, then
//! stream FINAL into an OCI archive without the layers BASE has.

use std::cell::RefCell;
use std::collections::HashSet;
use std::io;

use crate::archive::output::Output;
use crate::archive::writer::{write_entry, Entry};
use crate::bindings::imo::incremental::types::{ProgressEvent, Role};
use crate::concurrent::{block_on, run_all, Ready, Task};
use crate::digest::{classify_io, Digest, VerifyingReader};
use crate::error::{Error, Result};
use crate::host::{blob_info, emit, ProgressReader};
use crate::manifest::Descriptor;
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
    /// Blobs transferred at once.
    pub jobs: u32,
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

/// Runs a pull: up to `jobs` blobs stream at once, each into its place in
/// the archive, verified as it arrives.
pub fn pull(base: &str, final_: &str, output: &str, opts: &PullOptions) -> Result<PullReport> {
    if output.is_empty() {
        return Err(Error::InvalidArgument("output path is empty".into()));
    }
    let (source, plan) = open_and_plan(base, final_, opts)?;
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
    let layout = plan.layout();
    let sink = RefCell::new(out);
    let mut report = PullReport {
        reference: plan.reference.clone(),
        digest: plan.top.digest.to_string(),
        ..PullReport::default()
    };
    let mut fetch = Vec::new();
    for blob in &plan.blobs {
        match blob.action {
            Action::Include => fetch.push(&blob.desc),
            Action::LeftOut => {
                report.layers_left_out += 1;
                report.bytes_left_out += blob.desc.size;
                emit(ProgressEvent::BlobSkipped(blob_info(&blob.desc)));
            }
            Action::Foreign => {}
        }
    }
    block_on(layout.write_start(&sink)).map_err(write_err)?;
    let (src, out, shown) = (&*source, &sink, &shown);
    let copies = fetch.iter().map(|&d| -> Task<'_, (), Error> {
        let entry = layout.blob(&d.digest);
        Box::pin(copy_blob(src, d, entry, out, shown))
    });
    run_all(opts.jobs as usize, copies)?;
    report.blobs_written = fetch.len() as u32;
    report.bytes_written = fetch.iter().map(|d| d.size).sum();

    let mut written: HashSet<&Digest> = fetch.iter().map(|d| &d.digest).collect();
    for m in &plan.manifests {
        if !written.insert(&m.digest) {
            continue;
        }
        let entry = placed(layout.blob(&m.digest), &m.digest)?;
        block_on(write_entry(&sink, entry, &mut Ready(&m.bytes[..]))).map_err(write_err)?;
        report.manifests += 1;
        report.bytes_written += m.bytes.len() as u64;
    }
    block_on(layout.write_end(&sink, &plan.index_json())).map_err(write_err)?;
    sink.into_inner().commit()?;
    report.archive_size = layout.size();
    Ok(report)
}

/// The layout places every blob of the plan; anything else is a bug, told
/// as one.
fn placed<'a>(entry: Option<&'a Entry>, digest: &Digest) -> Result<&'a Entry> {
    entry.ok_or_else(|| Error::Io(format!("blob {digest} has no place in the archive")))
}

/// Streams blob `d` from `source` into its `entry`, verified on the way.
async fn copy_blob(
    source: &dyn Source,
    d: &Descriptor,
    entry: Option<&Entry>,
    sink: &RefCell<Output>,
    shown: &str,
) -> Result<()> {
    let entry = placed(entry, &d.digest)?;
    emit(ProgressEvent::BlobStarted(blob_info(d)));
    let body = source.blob(d)?;
    let mut verified = VerifyingReader::new(
        ProgressReader::new(body, &d.digest),
        d.digest.clone(),
        d.size,
        source.name(),
    );
    write_entry(sink, entry, &mut verified).await.map_err(|e| {
        classify_io(e, |e| {
            Error::Network(format!("copying blob {} to {shown}: {e}", d.digest))
        })
    })?;
    emit(ProgressEvent::BlobFinished(d.digest.to_string()));
    Ok(())
}
