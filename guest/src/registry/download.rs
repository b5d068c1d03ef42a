//! Blob downloads that survive a broken connection: the rest is fetched with
//! `Range` (checking `206` and `Content-Range`), and the caller's digest check
//! still covers the whole blob.

use std::future::Future;
use std::io::{self, Read};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use std::rc::Rc;

use super::retry::Budget;
use super::{Payload, Registry};
use crate::concurrent::PollRead;
use crate::error::{Error, Result};
use crate::http::Body;
use crate::manifest::Descriptor;

/// A request for a blob's body, under way.
type Opening<'a> = Pin<Box<dyn Future<Output = io::Result<Body>> + 'a>>;

enum State<'a> {
    Opening(Opening<'a>),
    Open(Body),
    /// Failed for good; the error was returned.
    Failed,
}

/// A blob being read, resumed where it broke off. Its request is sent when
/// it is first read, and waits like its body, so several blobs can be
/// requested and read at once.
pub struct BlobReader<'a> {
    registry: &'a Registry,
    repository: String,
    desc: Descriptor,
    state: State<'a>,
    offset: u64,
    budget: Rc<Budget>,
}

impl Registry {
    async fn blob_from(
        &self,
        repository: &str,
        desc: &Descriptor,
        offset: u64,
        budget: &Budget,
    ) -> Result<Body> {
        let scope = format!("repository:{repository}:pull");
        let path = format!("v2/{repository}/blobs/{}", desc.digest);
        let range = [("range".to_string(), format!("bytes={offset}-"))];
        let extra: &[(String, String)] = if offset > 0 { &range } else { &[] };
        let resp = self
            .request("GET", &path, &scope, extra, Payload::Empty, budget)
            .await?;
        match resp.status {
            200 if offset == 0 => Ok(resp.body),
            206 if offset > 0 => {
                let start = resp
                    .header("content-range")
                    .and_then(|v| v.trim().strip_prefix("bytes "))
                    .and_then(|v| v.split('-').next())
                    .and_then(|v| v.parse::<u64>().ok());
                if start != Some(offset) {
                    return Err(Error::Registry(format!(
                        "{} resumed blob {} at the wrong offset ({:?} instead of {offset})",
                        self.name,
                        desc.digest,
                        resp.header("content-range")
                    )));
                }
                Ok(resp.body)
            }
            // The server ignored the range: skip what already arrived.
            200 => {
                let mut body = resp.body;
                let skipped = io::copy(&mut (&mut body).take(offset), &mut io::sink())
                    .map_err(|e| Error::Network(format!("re-reading blob {}: {e}", desc.digest)))?;
                if skipped != offset {
                    return Err(Error::Network(format!(
                        "blob {} ended early when resumed",
                        desc.digest
                    )));
                }
                Ok(body)
            }
            404 => Err(Error::NotFound(format!(
                "blob {} not found in {}/{repository}",
                desc.digest, self.name
            ))),
            _ => Err(self.status_error(&format!("blob {}", desc.digest), resp)),
        }
    }
}

/// The blob `desc` of `repository`, for streaming; the caller verifies it.
/// Nothing is sent until it is first read.
pub fn open<'a>(registry: &'a Registry, repository: &str, desc: &Descriptor) -> BlobReader<'a> {
    let (repo, d) = (repository.to_string(), desc.clone());
    let budget = Rc::new(registry.budget());
    let shared = budget.clone();
    BlobReader {
        registry,
        repository: repository.to_string(),
        desc: desc.clone(),
        // Errors keep their kind (e.g. not found) inside the io::Error.
        state: State::Opening(Box::pin(async move {
            registry
                .blob_from(&repo, &d, 0, &shared)
                .await
                .map_err(io::Error::other)
        })),
        offset: 0,
        budget,
    }
}

impl<'a> BlobReader<'a> {
    /// Asks for the rest of the blob after `failure`, if the budget allows
    /// another try, after its backoff.
    fn resume(&mut self, failure: io::Error) -> Opening<'a> {
        let (registry, offset) = (self.registry, self.offset);
        let (repo, d, budget) = (
            self.repository.clone(),
            self.desc.clone(),
            self.budget.clone(),
        );
        Box::pin(async move {
            if !budget.retry(None).await {
                return Err(failure);
            }
            registry
                .blob_from(&repo, &d, offset, &budget)
                .await
                .map_err(|e| io::Error::other(format!("{failure}; resuming failed: {e}")))
        })
    }
}

impl PollRead for BlobReader<'_> {
    fn poll_read(&mut self, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        loop {
            let body = match &mut self.state {
                State::Open(body) => body,
                State::Failed => {
                    return Poll::Ready(Err(io::Error::other(format!(
                        "blob {} was read after it failed",
                        self.desc.digest
                    ))))
                }
                State::Opening(request) => {
                    let mut cx = Context::from_waker(Waker::noop());
                    match request.as_mut().poll(&mut cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Err(e)) => {
                            self.state = State::Failed;
                            return Poll::Ready(Err(e));
                        }
                        Poll::Ready(Ok(body)) => {
                            self.state = State::Open(body);
                            continue;
                        }
                    }
                }
            };
            let failure = match body.poll_read(buf) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) if self.offset < self.desc.size && !buf.is_empty() => {
                    io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "the body ended after {} of {} bytes",
                            self.offset, self.desc.size
                        ),
                    )
                }
                Poll::Ready(Ok(n)) => {
                    self.offset += n as u64;
                    return Poll::Ready(Ok(n));
                }
                Poll::Ready(Err(e)) => e,
            };
            self.state = State::Opening(self.resume(failure));
        }
    }
}
