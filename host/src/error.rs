//! What went wrong: the component's `error` variant case for case, and the
//! host's own (a path, a certificate, a credential) and stops (a limit, a
//! trap). Each displays as one line naming what it is about.

use std::fmt;

use crate::runtime::{GuestError, MissingBlob};

/// An imo failure.
#[derive(Debug, Clone)]
pub enum Error {
    /// A reference or transport name did not parse.
    InvalidReference(String),
    /// Another argument is wrong (platform, output path, …).
    InvalidArgument(String),
    /// A registry refused the credentials, or asked for some.
    Unauthorized(String),
    /// A repository, tag, manifest or blob is not there.
    NotFound(String),
    /// Blobs the destination lacks and nothing could mount.
    MissingBlobs(Vec<MissingBlob>),
    /// Content did not hash to its digest or size.
    DigestMismatch(String),
    /// An archive, layout or list could not be read.
    CorruptArchive(String),
    /// Valid input imo cannot handle (yet).
    Unsupported(String),
    /// A registry answered something unexpected.
    Registry(String),
    /// A registry could not be reached.
    Network(String),
    /// Reading or writing a file failed.
    Io(String),
    /// The host could not set the run up: a path, a certificate, an auth file.
    Host(String),
    /// The component was stopped: the time or memory limit, or a trap.
    Stopped(String),
}

/// Result with imo's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<GuestError> for Error {
    fn from(e: GuestError) -> Self {
        match e {
            GuestError::InvalidReference(m) => Error::InvalidReference(m),
            GuestError::InvalidArgument(m) => Error::InvalidArgument(m),
            GuestError::Unauthorized(m) => Error::Unauthorized(m),
            GuestError::NotFound(m) => Error::NotFound(m),
            GuestError::MissingBlobs(list) => Error::MissingBlobs(list),
            GuestError::DigestMismatch(m) => Error::DigestMismatch(m),
            GuestError::CorruptArchive(m) => Error::CorruptArchive(m),
            GuestError::Unsupported(m) => Error::Unsupported(m),
            GuestError::Registry(m) => Error::Registry(m),
            GuestError::Network(m) => Error::Network(m),
            GuestError::Io(m) => Error::Io(m),
        }
    }
}

impl From<anyhow::Error> for Error {
    fn from(e: anyhow::Error) -> Self {
        let text = format!("{e:#}");
        // A name the host parsed (with the guest's grammar) keeps its kind.
        match e
            .chain()
            .find_map(|c| c.downcast_ref::<imo_grammar::error::Error>())
        {
            Some(imo_grammar::error::Error::InvalidReference(_)) => Error::InvalidReference(text),
            Some(imo_grammar::error::Error::InvalidArgument(_)) => Error::InvalidArgument(text),
            None => Error::Host(text),
        }
    }
}

impl Error {
    /// The case's name as JSON reports give it: `not-found`,
    /// `missing-blobs`, … (the WIT names, plus `host` and `stopped`).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::InvalidReference(_) => "invalid-reference",
            Error::InvalidArgument(_) => "invalid-argument",
            Error::Unauthorized(_) => "unauthorized",
            Error::NotFound(_) => "not-found",
            Error::MissingBlobs(_) => "missing-blobs",
            Error::DigestMismatch(_) => "digest-mismatch",
            Error::CorruptArchive(_) => "corrupt-archive",
            Error::Unsupported(_) => "unsupported",
            Error::Registry(_) => "registry",
            Error::Network(_) => "network",
            Error::Io(_) => "io",
            Error::Host(_) => "host",
            Error::Stopped(_) => "stopped",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidReference(m)
            | Error::InvalidArgument(m)
            | Error::Unauthorized(m)
            | Error::NotFound(m)
            | Error::DigestMismatch(m)
            | Error::CorruptArchive(m)
            | Error::Unsupported(m)
            | Error::Registry(m)
            | Error::Network(m)
            | Error::Io(m)
            | Error::Host(m)
            | Error::Stopped(m) => f.write_str(m),
            Error::MissingBlobs(list) => {
                let names: Vec<String> = list
                    .iter()
                    .map(|b| format!("{} ({} bytes, {})", b.digest, b.size, b.platforms.join(" ")))
                    .collect();
                write!(
                    f,
                    "the destination lacks {} blob(s) the archive leaves out, and none could be mounted: {}",
                    list.len(),
                    names.join(", ")
                )
            }
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_each() {
        let missing = Error::from(GuestError::MissingBlobs(vec![MissingBlob {
            digest: "sha256:ab".into(),
            size: 3,
            media_type: "m".into(),
            platforms: vec!["linux/amd64".into()],
        }]));
        assert_eq!(
            missing.to_string(),
            "the destination lacks 1 blob(s) the archive leaves out, and none could be mounted: sha256:ab (3 bytes, linux/amd64)"
        );
        let e = Error::from(anyhow::anyhow!("inner").context("outer"));
        assert_eq!(e.to_string(), "outer: inner");
        assert_eq!(e.kind(), "host");
        let bad = imo_grammar::transport::Transport::parse("Not A Reference").unwrap_err();
        let e = Error::from(anyhow::Error::from(bad).context("reading FINAL"));
        assert_eq!(e.kind(), "invalid-reference");
        assert!(matches!(
            Error::from(GuestError::NotFound("x".into())),
            Error::NotFound(m) if m == "x"
        ));
    }
}
