//! The guest's error type: one variant per thing a host may act on, each message
//! naming the reference, registry, digest or path concerned.

use thiserror::Error;

/// A blob the destination lacks (used by vet and push).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingBlob {
    /// `sha256:…`
    pub digest: String,
    /// Size in bytes, from the descriptor.
    pub size: u64,
    /// Media type, from the descriptor.
    pub media_type: String,
    /// Platforms of the images that use it (`-` when none is named).
    pub platforms: Vec<String>,
}

/// Everything that can go wrong inside the component.
#[derive(Debug, Error)]
pub enum Error {
    /// A reference the user gave could not be parsed.
    #[error("{0}")]
    InvalidReference(String),
    /// Another argument is wrong (platform, output path, …).
    #[error("{0}")]
    InvalidArgument(String),
    /// The registry refused our credentials or gave none.
    #[error("{0}")]
    Unauthorized(String),
    /// Repository, tag, manifest or blob not found.
    #[error("{0}")]
    NotFound(String),
    /// Blobs the destination lacks.
    #[error("{} blob(s) missing", .0.len())]
    MissingBlobs(Vec<MissingBlob>),
    /// Content did not hash to its digest or size.
    #[error("{0}")]
    DigestMismatch(String),
    /// An archive could not be read.
    #[error("{0}")]
    CorruptArchive(String),
    /// Valid input imo cannot handle (yet).
    #[error("{0}")]
    Unsupported(String),
    /// A registry answered something unexpected.
    #[error("{0}")]
    Registry(String),
    /// A registry could not be reached.
    #[error("{0}")]
    Network(String),
    /// Reading or writing a file failed.
    #[error("{0}")]
    Io(String),
}

/// Result with the guest's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<imo_grammar::Error> for Error {
    fn from(e: imo_grammar::Error) -> Self {
        match e {
            imo_grammar::Error::InvalidReference(m) => Error::InvalidReference(m),
            imo_grammar::Error::InvalidArgument(m) => Error::InvalidArgument(m),
        }
    }
}

impl Error {
    /// An I/O error about `path`.
    pub fn io(path: &str, what: &str, err: &std::io::Error) -> Self {
        Error::Io(format!("cannot {what} {path}: {err}"))
    }
}
