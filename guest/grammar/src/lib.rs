//! The grammar imo's component and its host must agree on: image
//! references with Docker's normalisation, the transports that name images
//! and archives (`oci:`, `oci-archive:`, `docker-archive:`, `docker://`),
//! digests, platforms and `WWW-Authenticate` challenges. Pure code, compiled
//! into both sides, so the host grants and allows exactly what the guest
//! will use.

pub mod challenge;
pub mod digest;
pub mod error;
pub mod platform;
pub mod reference;
#[cfg(feature = "set")]
pub mod set;
pub mod transport;

pub use error::{Error, Result};
