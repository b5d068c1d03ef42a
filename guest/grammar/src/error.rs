//! Why a name did not parse: one line naming the input.

use thiserror::Error;

/// A name that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// An image reference or transport name.
    #[error("{0}")]
    InvalidReference(String),
    /// Another value: a digest, a platform.
    #[error("{0}")]
    InvalidArgument(String),
}

/// Result with the grammar's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
