//! imo's WebAssembly component: registry protocol, diff and archive logic.
//! It reaches registries only through wasi:http and files only in the
//! directories its host grants.

pub mod archive;
pub mod attach;
pub mod base;
pub mod concurrent;
pub mod copy;
pub mod delta;
pub mod destination;
pub mod digest;
pub mod engine;
pub mod error;
pub mod fsys;
pub mod host;
pub mod http;
pub mod inspect;
pub mod inventory;
pub mod manifest;
pub mod plan;
pub mod pull;
pub mod push;
pub mod registry;
pub mod set;
pub mod source;

pub use imo_grammar::{platform, reference};

#[allow(missing_docs, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "imo",
        generate_all,
    });
}

use bindings::exports::imo::incremental::api::Guest;
use bindings::imo::incremental::types as wit;

use error::Error;
use platform::Platform;

/// The exported component. Exported only on wasm: native builds (unit tests)
/// cannot link WIT export names.
#[cfg_attr(
    any(not(target_arch = "wasm32"), feature = "command"),
    allow(dead_code)
)]
struct Component;

fn platform_from(p: wit::Platform) -> Platform {
    Platform {
        os: p.os,
        architecture: p.architecture,
        variant: p.variant,
    }
}

fn platform_to(p: Platform) -> wit::Platform {
    wit::Platform {
        os: p.os,
        architecture: p.architecture,
        variant: p.variant,
    }
}

fn options_from(options: wit::PullOptions) -> pull::PullOptions {
    pull::PullOptions {
        platform: options.platform.map(platform_from),
        all_platforms: options.all_platforms,
        host_platform: platform_from(options.host_platform),
        tls_verify: options.tls_verify,
        retry_times: options.retry_times,
        jobs: options.jobs,
        split: options.split,
        attachments: filter(options.attachments, options.attachment_types),
        delta: options.delta,
    }
}

fn filter(enabled: bool, types: Vec<String>) -> attach::Filter {
    attach::Filter { enabled, types }
}

fn push_options(o: wit::PushOptions) -> push::PushOptions {
    push::PushOptions {
        tls_verify: o.tls_verify,
        mount_from: o.mount_from,
        chunk_size: o.chunk_size,
        verify: o.verify,
        retry_times: o.retry_times,
        jobs: o.jobs,
        attachments: o.attachments,
    }
}

fn set_image_from(i: wit::SetImage) -> set::SetImage {
    set::SetImage {
        source: i.source,
        target: i.target,
        platforms: i.platforms.into_iter().map(platform_from).collect(),
        all_platforms: i.all_platforms,
    }
}

fn push_report(r: copy::PushReport) -> wit::PushReport {
    wit::PushReport {
        destination: r.destination,
        digest: r.digest,
        uploaded: r.uploaded,
        skipped: r.skipped,
        mounted: r.mounted,
        bytes_sent: r.bytes_sent,
        manifests: r.manifests,
        rebuilt: r.rebuilt,
    }
}

fn missing_to(b: error::MissingBlob) -> wit::MissingBlob {
    wit::MissingBlob {
        digest: b.digest,
        size: b.size,
        media_type: b.media_type,
        platforms: b.platforms,
    }
}

fn plan_report(
    p: &plan::Plan,
    present: &[manifest::Descriptor],
    missing: &[manifest::Descriptor],
) -> wit::PlanReport {
    let action = |a: plan::Action| match a {
        plan::Action::Include => wit::BlobAction::Include,
        plan::Action::LeftOut => wit::BlobAction::LeftOut,
        plan::Action::Foreign => wit::BlobAction::Foreign,
        plan::Action::Delta => wit::BlobAction::Delta,
    };
    let images = p
        .images
        .iter()
        .map(|i| wit::ImagePlan {
            platform: i.platform.clone().map(platform_to),
            manifest_digest: i.manifest.digest.to_string(),
            manifest_size: i.manifest.size,
            blobs: i
                .blobs
                .iter()
                .map(|b| wit::PlannedBlob {
                    digest: b.desc.digest.to_string(),
                    size: b.desc.size,
                    media_type: b.desc.media_type.clone(),
                    is_layer: b.is_layer,
                    action: action(b.action),
                    delta: p.delta_for(&b.desc.digest).map(|d| wit::DeltaInfo {
                        base: d.base.digest.to_string(),
                        size: d.data.size,
                    }),
                })
                .collect(),
        })
        .collect();
    wit::PlanReport {
        reference: p.reference.clone(),
        base: p.base.clone(),
        tag: p.tag.clone(),
        digest: p.top.digest.to_string(),
        media_type: p.top.media_type.clone(),
        images,
        archive_blob_bytes: p.archive_blob_bytes(),
        archive_size: p.archive_size(),
        full_bytes: p.full_bytes(),
        left_out_bytes: p.left_out_bytes(),
        layers: p.layer_count() as u32,
        layers_left_out: p.left_out().count() as u32,
        layers_delta: p.deltas.len() as u32,
        delta_bytes: p.delta_bytes(),
        present: present.iter().map(host::blob_info).collect(),
        missing: missing.iter().map(host::blob_info).collect(),
        attachments: p
            .attachments
            .iter()
            .map(|a| wit::AttachmentInfo {
                digest: a.attachment.manifest.digest.to_string(),
                size: a.attachment.manifest.bytes.len() as u64,
                media_type: a.attachment.manifest.media_type.clone(),
                kind: a.attachment.kind(),
                subject: a.attachment.subject.to_string(),
                tag: a.attachment.tag.clone(),
                bytes: a.blobs.iter().map(|b| b.desc.size).sum(),
                complete: a.blobs.iter().all(|b| b.action != plan::Action::LeftOut),
            })
            .collect(),
    }
}

impl From<Error> for wit::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidReference(m) => wit::Error::InvalidReference(m),
            Error::InvalidArgument(m) => wit::Error::InvalidArgument(m),
            Error::Unauthorized(m) => wit::Error::Unauthorized(m),
            Error::NotFound(m) => wit::Error::NotFound(m),
            Error::MissingBlobs(list) => {
                wit::Error::MissingBlobs(list.into_iter().map(missing_to).collect())
            }
            Error::DigestMismatch(m) => wit::Error::DigestMismatch(m),
            Error::CorruptArchive(m) => wit::Error::CorruptArchive(m),
            Error::Unsupported(m) => wit::Error::Unsupported(m),
            Error::Registry(m) => wit::Error::Registry(m),
            Error::Network(m) => wit::Error::Network(m),
            Error::Io(m) => wit::Error::Io(m),
        }
    }
}

impl Guest for Component {
    fn pull(
        base: String,
        final_: String,
        output: String,
        options: wit::PullOptions,
    ) -> Result<wit::PullReport, wit::Error> {
        let r = pull::pull(&base, &final_, &output, &options_from(options))?;
        Ok(wit::PullReport {
            reference: r.reference,
            digest: r.digest,
            manifests: r.manifests,
            blobs_written: r.blobs_written,
            bytes_written: r.bytes_written,
            layers_left_out: r.layers_left_out,
            bytes_left_out: r.bytes_left_out,
            layers_delta: r.layers_delta,
            bytes_delta_layers: r.bytes_delta_layers,
            bytes_delta: r.bytes_delta,
            archive_size: r.archive_size,
        })
    }

    fn plan(
        base: String,
        final_: String,
        options: wit::PullOptions,
    ) -> Result<wit::PlanReport, wit::Error> {
        let p = pull::plan(&base, &final_, &options_from(options))?;
        let missing: Vec<manifest::Descriptor> = p.left_out().map(|b| b.desc.clone()).collect();
        Ok(plan_report(&p, &[], &missing))
    }

    fn vet(
        archive: String,
        destination: String,
        options: wit::PushOptions,
    ) -> Result<wit::VetReport, wit::Error> {
        let r = push::vet(&archive, &destination, &push_options(options))?;
        Ok(wit::VetReport {
            destination: r.destination,
            checked: r.checked,
            missing: r.missing.into_iter().map(missing_to).collect(),
            verified: r.verified,
        })
    }

    fn push(
        archive: String,
        destination: String,
        options: wit::PushOptions,
    ) -> Result<wit::PushReport, wit::Error> {
        let r = push::push(&archive, &destination, &push_options(options))?;
        Ok(push_report(r))
    }

    fn copy(
        source: String,
        destination: String,
        o: wit::CopyOptions,
    ) -> Result<wit::PushReport, wit::Error> {
        let options = copy::TransferOptions {
            platform: o.platform.map(platform_from),
            all_platforms: o.all_platforms,
            host_platform: platform_from(o.host_platform),
            src_tls_verify: o.src_tls_verify,
            dest_tls_verify: o.dest_tls_verify,
            mount_from: o.mount_from,
            chunk_size: o.chunk_size,
            retry_times: o.retry_times,
            jobs: o.jobs,
            attachments: filter(o.attachments, o.attachment_types),
        };
        Ok(push_report(copy::copy(&source, &destination, &options)?))
    }

    fn pull_set(
        images: Vec<wit::SetImage>,
        bases: Vec<String>,
        output: String,
        options: wit::PullOptions,
    ) -> Result<wit::SetPullReport, wit::Error> {
        let images: Vec<set::SetImage> = images.into_iter().map(set_image_from).collect();
        let r = set::pull_set(&images, &bases, &output, &options_from(options))?;
        Ok(wit::SetPullReport {
            images: r
                .images
                .into_iter()
                .map(|i| wit::SetImageReport {
                    source: i.source,
                    target: i.target,
                    digest: i.digest,
                    layers_left_out: i.layers_left_out,
                    bytes_left_out: i.bytes_left_out,
                    bytes: i.bytes,
                })
                .collect(),
            manifests: r.manifests,
            blobs_written: r.blobs_written,
            bytes_written: r.bytes_written,
            layers_left_out: r.layers_left_out,
            bytes_left_out: r.bytes_left_out,
            archive_size: r.archive_size,
            shared_bytes_saved: r.shared_bytes_saved,
        })
    }

    fn plan_set(
        images: Vec<wit::SetImage>,
        bases: Vec<String>,
        options: wit::PullOptions,
    ) -> Result<wit::SetPlanReport, wit::Error> {
        let images: Vec<set::SetImage> = images.into_iter().map(set_image_from).collect();
        let (plans, saved, layout) = set::plan_set(&images, &bases, &options_from(options))?;
        let blob_bytes = {
            let refs: Vec<&plan::Plan> = plans.iter().collect();
            plan::written_by(&refs).iter().map(|(_, s)| s).sum()
        };
        Ok(wit::SetPlanReport {
            images: plans
                .iter()
                .map(|p| {
                    let missing: Vec<manifest::Descriptor> =
                        p.left_out().map(|b| b.desc.clone()).collect();
                    plan_report(p, &[], &missing)
                })
                .collect(),
            archive_blob_bytes: blob_bytes,
            archive_size: layout.size(),
            shared_bytes_saved: saved,
        })
    }

    fn set_targets(archive: String) -> Result<Vec<String>, wit::Error> {
        Ok(set::set_targets(&archive)?)
    }

    fn push_set(
        archive: String,
        prefix: String,
        options: wit::PushOptions,
    ) -> Result<Vec<wit::SetPushOutcome>, wit::Error> {
        let outcomes = set::push_set(&archive, &prefix, &push_options(options))?;
        Ok(outcomes
            .into_iter()
            .map(|o| wit::SetPushOutcome {
                source: o.source,
                target: o.target,
                destination: o.destination,
                digest: o.digest,
                outcome: o.outcome.map(push_report).map_err(wit::Error::from),
            })
            .collect())
    }

    fn vet_set(
        archive: String,
        prefix: String,
        options: wit::PushOptions,
    ) -> Result<Vec<wit::SetVetOutcome>, wit::Error> {
        let outcomes = set::vet_set(&archive, &prefix, &push_options(options))?;
        Ok(outcomes
            .into_iter()
            .map(|o| wit::SetVetOutcome {
                source: o.source,
                target: o.target,
                destination: o.destination,
                digest: o.digest,
                outcome: o
                    .outcome
                    .map(|(checked, missing)| {
                        (checked, missing.into_iter().map(missing_to).collect())
                    })
                    .map_err(wit::Error::from),
            })
            .collect())
    }

    fn inventory(
        targets: Vec<String>,
        layout: Option<String>,
        options: wit::InventoryOptions,
    ) -> Result<String, wit::Error> {
        let opts = inventory::InventoryOptions {
            tls_verify: options.tls_verify,
            retry_times: options.retry_times,
        };
        let inv = inventory::take(&targets, layout.as_deref(), &opts)?;
        serde_json::to_string_pretty(&inv)
            .map_err(|e| wit::Error::Io(format!("cannot write the inventory: {e}")))
    }

    fn inspect(archive: String) -> Result<wit::PlanReport, wit::Error> {
        let i = inspect::inspect(&archive)?;
        Ok(plan_report(&i.plan, &i.present, &i.missing))
    }
}

impl bindings::exports::imo::incremental::worker::Guest for Component {
    fn run(work: String, input: Vec<u8>) -> std::result::Result<Vec<u8>, String> {
        delta::run_work(&work, &input)
    }
}

#[cfg(target_arch = "wasm32")]
bindings::export!(Component with_types_in bindings);
