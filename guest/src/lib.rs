//! imo's WebAssembly component: registry protocol, diff and archive logic.
//! It reaches registries only through wasi:http and files only in the
//! directories its host grants.

pub mod archive;
pub mod digest;
pub mod error;
pub mod http;
pub mod manifest;
pub mod platform;
pub mod pull;
pub mod reference;
pub mod registry;

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
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Component;

fn platform_from(p: wit::Platform) -> Platform {
    Platform {
        os: p.os,
        architecture: p.architecture,
        variant: p.variant,
    }
}

impl From<Error> for wit::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidReference(m) => wit::Error::InvalidReference(m),
            Error::InvalidArgument(m) => wit::Error::InvalidArgument(m),
            Error::Unauthorized(m) => wit::Error::Unauthorized(m),
            Error::NotFound(m) => wit::Error::NotFound(m),
            Error::MissingBlobs(list) => wit::Error::MissingBlobs(
                list.into_iter()
                    .map(|b| wit::MissingBlob {
                        digest: b.digest,
                        size: b.size,
                        media_type: b.media_type,
                    })
                    .collect(),
            ),
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
        let opts = pull::PullOptions {
            platform: options.platform.map(platform_from),
            all_platforms: options.all_platforms,
            host_platform: platform_from(options.host_platform),
            tls_verify: options.tls_verify,
        };
        let r = pull::pull(&base, &final_, &output, &opts)?;
        Ok(wit::PullReport {
            reference: r.reference,
            digest: r.digest,
            manifests: r.manifests,
            blobs_written: r.blobs_written,
            bytes_written: r.bytes_written,
            layers_left_out: r.layers_left_out,
            bytes_left_out: r.bytes_left_out,
        })
    }
}

#[cfg(target_arch = "wasm32")]
bindings::export!(Component with_types_in bindings);
