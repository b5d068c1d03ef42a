//! Content digests (`sha256:…`) and a reader that verifies one while streaming.

use std::fmt;
use std::io::{self, Read};
use std::task::Poll;

use crate::concurrent::PollRead;
use crate::error::Error;

pub use imo_grammar::digest::{Algorithm, Digest};

/// Hashing content into a [`Digest`] (the grammar crate only parses them).
pub trait DigestOf: Sized {
    /// The SHA-256 digest of `bytes`.
    fn sha256_of(bytes: &[u8]) -> Self;
    /// The digest of `bytes` with this digest's algorithm.
    fn same_algorithm_of(&self, bytes: &[u8]) -> Self;
}

impl DigestOf for Digest {
    fn sha256_of(bytes: &[u8]) -> Self {
        let mut h = Hasher::new(Algorithm::Sha256);
        h.update(bytes);
        h.finish()
    }

    fn same_algorithm_of(&self, bytes: &[u8]) -> Self {
        let mut h = Hasher::new(self.kind());
        h.update(bytes);
        h.finish()
    }
}

/// An incremental hasher for one algorithm.
pub struct Hasher {
    algorithm: Algorithm,
    state: engine::State,
}

impl Hasher {
    /// A fresh hasher.
    pub fn new(algorithm: Algorithm) -> Self {
        Hasher {
            algorithm,
            state: engine::State::new(algorithm),
        }
    }

    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.state.update(bytes);
    }

    /// The digest of everything fed.
    pub fn finish(self) -> Digest {
        let raw = self.state.finish();
        // A hasher that gives the wrong number of bytes is a host bug.
        Digest::from_raw(self.algorithm, &raw).unwrap_or_else(|| {
            panic!(
                "the host's {} hasher returned {} bytes",
                self.algorithm.name(),
                raw.len()
            )
        })
    }
}

/// The library component hashes with the host's `hashing` import (native
/// code with the CPU's SHA instructions).
#[cfg(all(target_arch = "wasm32", not(feature = "command")))]
mod engine {
    use super::Algorithm;
    use crate::bindings::imo::incremental::hashing::{self, Hasher};

    pub struct State(Hasher);

    impl State {
        pub fn new(algorithm: Algorithm) -> Self {
            State(Hasher::new(match algorithm {
                Algorithm::Sha256 => hashing::Algorithm::Sha256,
                Algorithm::Sha512 => hashing::Algorithm::Sha512,
            }))
        }

        pub fn update(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }

        pub fn finish(self) -> Vec<u8> {
            self.0.digest()
        }
    }
}

/// Native builds (unit tests) and the wasi:cli command, whose stock hosts
/// know no `hashing` import, hash with `sha2` themselves.
#[cfg(not(all(target_arch = "wasm32", not(feature = "command"))))]
mod engine {
    use super::Algorithm;
    use sha2::{Digest as _, Sha256, Sha512};

    pub enum State {
        Sha256(Sha256),
        Sha512(Sha512),
    }

    impl State {
        pub fn new(algorithm: Algorithm) -> Self {
            match algorithm {
                Algorithm::Sha256 => State::Sha256(Sha256::new()),
                Algorithm::Sha512 => State::Sha512(Sha512::new()),
            }
        }

        pub fn update(&mut self, bytes: &[u8]) {
            match self {
                State::Sha256(h) => h.update(bytes),
                State::Sha512(h) => h.update(bytes),
            }
        }

        pub fn finish(self) -> Vec<u8> {
            match self {
                State::Sha256(h) => h.finalize().to_vec(),
                State::Sha512(h) => h.finalize().to_vec(),
            }
        }
    }
}

/// The error a [`VerifyingReader`] returns inside an `io::Error` when content
/// does not match its descriptor.
#[derive(Debug)]
pub struct Mismatch(pub String);

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Mismatch {}

/// Turns an `io::Error` from a copy through a [`VerifyingReader`] back into
/// the guest error, keeping digest mismatches distinct from I/O failures.
/// A guest error carried inside the `io::Error` (as a blob request's) comes
/// out as it was.
pub fn classify_io(err: io::Error, what: impl FnOnce(&io::Error) -> Error) -> Error {
    if let Some(m) = err.get_ref().and_then(|e| e.downcast_ref::<Mismatch>()) {
        return Error::DigestMismatch(m.0.clone());
    }
    match err.downcast::<Error>() {
        Ok(e) => e,
        Err(err) => what(&err),
    }
}

/// Passes bytes through while hashing them; fails the read that would exceed
/// `size`, and the final read if the length or digest is wrong, so a bad blob
/// is caught before anything after it is written.
pub struct VerifyingReader<R> {
    inner: R,
    expected: Digest,
    size: u64,
    seen: u64,
    hasher: Option<Hasher>,
    origin: String,
}

impl<R> VerifyingReader<R> {
    /// Verifies `inner` against `expected` and `size`; `origin` names where the
    /// bytes come from, for the error message.
    pub fn new(inner: R, expected: Digest, size: u64, origin: String) -> Self {
        let hasher = Some(Hasher::new(expected.kind()));
        VerifyingReader {
            inner,
            expected,
            size,
            seen: 0,
            hasher,
            origin,
        }
    }

    fn fail(&self, why: String) -> io::Error {
        io::Error::other(Mismatch(format!(
            "blob {} from {} {why}",
            self.expected, self.origin
        )))
    }
}

impl<R> VerifyingReader<R> {
    /// Accounts for `n` bytes just read into `buf` (0 at the end).
    fn check(&mut self, buf: &[u8], n: usize) -> io::Result<usize> {
        self.seen += n as u64;
        if self.seen > self.size {
            return Err(self.fail(format!(
                "is larger than its descriptor's {} bytes",
                self.size
            )));
        }
        match self.hasher.as_mut() {
            Some(h) if n > 0 => h.update(&buf[..n]),
            Some(_) => {
                if self.seen != self.size {
                    return Err(
                        self.fail(format!("ended after {} of {} bytes", self.seen, self.size))
                    );
                }
                let actual = self.hasher.take().map(Hasher::finish);
                if actual.as_ref() != Some(&self.expected) {
                    let actual = actual.map(|d| d.to_string()).unwrap_or_default();
                    return Err(self.fail(format!("has digest {actual}")));
                }
            }
            None => {}
        }
        Ok(n)
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.check(buf, n)
    }
}

impl<R: PollRead> PollRead for VerifyingReader<R> {
    fn poll_read(&mut self, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        match self.inner.poll_read(buf) {
            Poll::Ready(Ok(n)) => Poll::Ready(self.check(buf, n)),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO: &str = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    #[test]
    fn hashes() {
        assert_eq!(Digest::sha256_of(b"hello").to_string(), HELLO);
        let d = Digest::parse(HELLO).unwrap();
        assert_eq!(d.same_algorithm_of(b"hello"), d);
    }

    fn read_all(data: &[u8], digest: &str, size: u64) -> io::Result<Vec<u8>> {
        let mut r = VerifyingReader::new(data, Digest::parse(digest).unwrap(), size, "t".into());
        let mut out = Vec::new();
        r.read_to_end(&mut out).map(|_| out)
    }

    #[test]
    fn verifying_reader_accepts_good_and_rejects_bad() {
        assert_eq!(read_all(b"hello", HELLO, 5).unwrap(), b"hello");
        let err = read_all(b"hellO", HELLO, 5).unwrap_err();
        assert!(err.to_string().contains("has digest"), "{err}");
        let err = read_all(b"hell", HELLO, 5).unwrap_err();
        assert!(err.to_string().contains("ended after 4 of 5"), "{err}");
        let err = read_all(b"hello!", HELLO, 5).unwrap_err();
        assert!(err.to_string().contains("larger"), "{err}");
        let e = classify_io(err, |_| Error::Io("x".into()));
        assert!(matches!(e, Error::DigestMismatch(_)));
    }
}
