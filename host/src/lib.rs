//! imo ships only what changed between two versions of a container image
//! across an air gap. The registry protocol, the diff and the archive
//! formats run in a WebAssembly component (embedded in this crate) under
//! wasmtime, sandboxed: it reaches the files, hosts and credentials each
//! call grants it, and nothing else.
//!
//! [`Imo`] is the library, shaped like the Go imo: a builder for the
//! settings, then [`Imo::pull`] (a reader of the archive as it is made),
//! [`Imo::vet`], [`Imo::push`] and the rest. The `imo` command runs on it.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Connected side: the archive of v2 without what v1 has.
//! let imo = imo::Imo::builder().build()?;
//! let mut archive = imo.pull("registry.example/app:v1", "registry.example/app:v2")?;
//! std::io::copy(&mut archive, &mut std::fs::File::create("app-v2.tar")?)?;
//! archive.finish()?;
//!
//! // Disconnected side: check, then land v2 with its original digests.
//! let imo = imo::Imo::builder().dest_auth("admin", "hunter2").build()?;
//! imo.vet("app-v2.tar", "registry.internal/app:v2")?;
//! imo.push("app-v2.tar", "registry.internal/app:v2")?;
//! # Ok(()) }
//! ```

mod cleanup;
pub mod cli;
mod credentials;
mod error;
mod files;
mod hashing;
mod library;
mod network;
mod platform;
mod pool;
mod progress;
mod report;
mod runtime;
mod sets;

pub use error::{Error, Result};
pub use library::{Builder, CredentialFn, Imo, PullReader, Pushed, Vetted};
pub use runtime::{
    AttachmentInfo, BasicCredential, BlobAction, BlobInfo, Credential, ImagePlan, MissingBlob,
    Outcome, PlanReport, PlannedBlob, Platform, ProgressEvent, PullReport, PushReport, Role,
    SetImageReport, SetPlanReport, SetPullReport, SetPushOutcome, SetVetOutcome, VetReport,
};
pub use runtime::{GuestError, COMMAND_COMPONENT, COMPONENT};
