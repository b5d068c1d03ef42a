//! What the component asks of whoever runs it: credentials and a place for
//! progress. As a library component these are the `credentials` and
//! `progress` imports; built as a plain WASI command (feature `command`, for
//! stock `wasmtime run`) they come from the environment the runner passes
//! and go to stderr.

use crate::bindings::imo::incremental::types::{BlobInfo, Credential, ProgressEvent, Role};
use crate::concurrent::PollRead;
use crate::digest::Digest;
use crate::manifest::Descriptor;
use std::io;
use std::task::Poll;

const PROGRESS_STEP: u64 = 1024 * 1024;

/// Reports `event` (owned, as callers build it).
pub fn emit(event: ProgressEvent) {
    report(&event);
}

/// A descriptor as progress events and reports carry it.
pub fn blob_info(d: &Descriptor) -> BlobInfo {
    BlobInfo {
        digest: d.digest.to_string(),
        size: d.size,
        media_type: d.media_type.clone(),
    }
}

/// The credential for `registry` in `role`.
#[cfg(not(feature = "command"))]
pub fn lookup(registry: &str, role: Role) -> Option<Credential> {
    crate::bindings::imo::incremental::credentials::lookup(registry, role)
}

/// Reports progress.
#[cfg(not(feature = "command"))]
pub fn report(event: &ProgressEvent) {
    crate::bindings::imo::incremental::progress::report(event);
}

/// The credential for `role` from `IMO_BASE_CREDS`, `IMO_FINAL_CREDS` or
/// `IMO_DEST_CREDS` (`USER:PASSWORD`), as `wasmtime run --env` passes them.
#[cfg(feature = "command")]
pub fn lookup(_registry: &str, role: Role) -> Option<Credential> {
    use crate::bindings::imo::incremental::types::BasicCredential;
    let name = match role {
        Role::Base => "IMO_BASE_CREDS",
        Role::Final => "IMO_FINAL_CREDS",
        Role::Destination => "IMO_DEST_CREDS",
    };
    let value = std::env::var(name).ok()?;
    let (username, password) = value.split_once(':')?;
    Some(Credential::Basic(BasicCredential {
        username: username.to_string(),
        password: password.to_string(),
    }))
}

/// Reports finished and skipped blobs on stderr.
#[cfg(feature = "command")]
pub fn report(event: &ProgressEvent) {
    match event {
        ProgressEvent::BlobFinished(d) => eprintln!("copied blob {d}"),
        ProgressEvent::BlobSkipped(b) => eprintln!("skipped blob {}", b.digest),
        ProgressEvent::Note(n) => eprintln!("{n}"),
        _ => {}
    }
}

/// Tells the host that `path` is being written under a temporary name.
pub fn temp_begun(path: &str) {
    #[cfg(all(target_arch = "wasm32", not(feature = "command")))]
    crate::bindings::imo::incremental::cleanup::begun(path);
    let _ = path;
}

/// Tells the host that `path` is renamed into place or removed.
pub fn temp_ended(path: &str) {
    #[cfg(all(target_arch = "wasm32", not(feature = "command")))]
    crate::bindings::imo::incremental::cleanup::ended(path);
    let _ = path;
}

/// The number temporary names carry: the host's process id, or 0 where the
/// host knows none (stock hosts, native tests).
pub fn owner() -> u32 {
    #[cfg(all(target_arch = "wasm32", not(feature = "command")))]
    return crate::bindings::imo::incremental::cleanup::owner();
    #[allow(unreachable_code)]
    0
}

/// Work running elsewhere: on another instance of the component (a
/// worker the host runs on a thread of its own), or, in native builds
/// (unit tests), on a thread.
pub struct Job {
    #[cfg(all(target_arch = "wasm32", not(feature = "command")))]
    inner: crate::bindings::imo::incremental::workers::Job,
    #[cfg(not(target_arch = "wasm32"))]
    inner: std::thread::JoinHandle<Result<Vec<u8>, String>>,
    #[cfg(all(target_arch = "wasm32", feature = "command"))]
    inner: std::convert::Infallible,
}

/// Starts `work` (see `delta::parallel::run`) on `input` elsewhere; `None`
/// where no worker is free or the host runs none (the caller then does
/// the work itself).
pub fn start_work(work: &str, input: &[u8]) -> Option<Job> {
    #[cfg(all(target_arch = "wasm32", not(feature = "command")))]
    return crate::bindings::imo::incremental::workers::start(work, input)
        .map(|inner| Job { inner });
    #[cfg(not(target_arch = "wasm32"))]
    {
        let (work, input) = (work.to_string(), input.to_vec());
        let inner = std::thread::spawn(move || crate::delta::run_work(&work, &input));
        return Some(Job { inner });
    }
    #[allow(unreachable_code)]
    {
        let _ = (work, input);
        None
    }
}

impl Job {
    /// Waits for the work's end: its output, or why it failed.
    pub fn join(self) -> Result<Vec<u8>, String> {
        #[cfg(all(target_arch = "wasm32", not(feature = "command")))]
        return self.inner.join();
        #[cfg(not(target_arch = "wasm32"))]
        return self
            .inner
            .join()
            .unwrap_or_else(|_| Err("the work panicked".into()));
        #[cfg(all(target_arch = "wasm32", feature = "command"))]
        match self.inner {}
    }
}

/// Reports bytes read to the host in steps, so progress costs little.
pub struct ProgressReader<R> {
    inner: R,
    digest: String,
    pending: u64,
}

impl<R> ProgressReader<R> {
    /// Wraps `inner`, the content of blob `digest`.
    pub fn new(inner: R, digest: &Digest) -> Self {
        ProgressReader {
            inner,
            digest: digest.to_string(),
            pending: 0,
        }
    }
}

impl<R> ProgressReader<R> {
    fn count(&mut self, n: usize) {
        self.pending += n as u64;
        if self.pending >= PROGRESS_STEP || (n == 0 && self.pending > 0) {
            emit(ProgressEvent::BlobAdvanced((
                self.digest.clone(),
                self.pending,
            )));
            self.pending = 0;
        }
    }
}

impl<R: PollRead> PollRead for ProgressReader<R> {
    fn poll_read(&mut self, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let read = self.inner.poll_read(buf);
        if let Poll::Ready(Ok(n)) = read {
            self.count(n);
        }
        read
    }
}
