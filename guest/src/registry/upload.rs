//! The push side of the distribution API: blob existence, cross-repository
//! mounts, monolithic and chunked uploads, manifests.

use std::io::{self, Read};
use std::task::Poll;

use url::Url;

use super::retry::{retry_after, transient, Budget};
use super::{Payload, Registry};
use crate::concurrent::{block_on, Blocking, PollRead};
use crate::digest::classify_io;
use crate::error::{Error, Result};
use crate::http::Response;
use crate::manifest::{Descriptor, RawManifest};

/// Token scope for pushing to `repository`.
pub fn push_scope(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

/// Token scope for reading `repository`.
pub fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

impl Registry {
    /// Where an upload continues: the response's `Location`, relative or absolute.
    fn location(&self, resp: &Response, what: &str) -> Result<String> {
        resp.header("location").map(str::to_string).ok_or_else(|| {
            Error::Registry(format!(
                "{} answered {} to {what} without a Location",
                self.name, resp.status
            ))
        })
    }

    /// Whether `repository` holds blob `digest` (the authoritative HEAD check).
    pub async fn blob_exists(&self, repository: &str, digest: &str, scope: &str) -> Result<bool> {
        let path = format!("v2/{repository}/blobs/{digest}");
        let budget = self.budget();
        let resp = self
            .request("HEAD", &path, scope, &[], Payload::Empty, &budget)
            .await?;
        match resp.status {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(self.status_error(&format!("blob {digest} in {repository}"), resp)),
        }
    }

    /// Mounts `digest` from repository `from` into `repository`; false if the
    /// registry would not.
    pub async fn mount(&self, repository: &str, digest: &str, from: &str) -> Result<bool> {
        let scope = format!("{} {}", push_scope(repository), pull_scope(from));
        let mut target = Url::parse("http://x/").expect("static URL");
        target.set_path(&format!("/v2/{repository}/blobs/uploads/"));
        target
            .query_pairs_mut()
            .append_pair("mount", digest)
            .append_pair("from", from);
        let path = format!("{}?{}", &target.path()[1..], target.query().unwrap_or(""));
        let budget = self.budget();
        let resp = self
            .request("POST", &path, &scope, &[], Payload::Empty, &budget)
            .await?;
        match resp.status {
            201 => Ok(true),
            202 => {
                // The registry opened a plain upload instead: cancel it.
                if let Ok(loc) = self.location(&resp, "a mount") {
                    let cancel = self.request("DELETE", &loc, &scope, &[], Payload::Empty, &budget);
                    let _ = cancel.await;
                }
                Ok(false)
            }
            404 => Ok(false),
            _ => Err(self.status_error(&format!("mounting {digest} from {from}"), resp)),
        }
    }

    async fn start_upload(&self, repository: &str, what: &str, budget: &Budget) -> Result<String> {
        let start = format!("v2/{repository}/blobs/uploads/");
        let scope = push_scope(repository);
        let resp = self
            .request("POST", &start, &scope, &[], Payload::Empty, budget)
            .await?;
        if resp.status != 202 {
            return Err(self.status_error(&format!("starting the {what}"), resp));
        }
        self.location(&resp, &format!("starting the {what}"))
    }

    /// How many bytes of the upload at `location` the registry holds, and
    /// where to send the next part. From `Range: 0-END` that is END + 1,
    /// except that distribution answers `0-0` both for an empty upload and
    /// for one byte: `0-0` reads as empty unless `zero_is_one` (an upload
    /// resumed at 0 was refused).
    async fn upload_status(
        &self,
        location: &str,
        scope: &str,
        zero_is_one: bool,
        budget: &Budget,
    ) -> Result<(u64, String)> {
        let resp = self
            .request("GET", location, scope, &[], Payload::Empty, budget)
            .await?;
        if resp.status != 204 {
            return Err(self.status_error("the status of an upload", resp));
        }
        let end = resp
            .header("range")
            .and_then(|r| r.split('-').nth(1))
            .and_then(|n| n.trim().parse::<u64>().ok());
        let next = self.location(&resp, "the status of an upload")?;
        let held = match end {
            Some(0) if !zero_is_one => 0,
            Some(e) => e + 1,
            None => 0,
        };
        Ok((held, next))
    }

    /// A 201 (or 204), or the registry's error.
    fn expect_created(&self, resp: Response, what: &str) -> Result<()> {
        match resp.status {
            201 | 204 => Ok(()),
            _ => Err(self.status_error(&format!("the {what}"), resp)),
        }
    }

    /// Stores `manifest` under `reference` (a digest or a tag), byte for byte.
    pub fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        manifest: &RawManifest,
    ) -> Result<()> {
        let path = format!("v2/{repository}/manifests/{reference}");
        let headers = [("content-type".to_string(), manifest.media_type.clone())];
        let scope = push_scope(repository);
        let body = Payload::Bytes(&manifest.bytes);
        let budget = self.budget();
        let resp = block_on(self.request("PUT", &path, &scope, &headers, body, &budget))?;
        let what = format!(
            "manifest {} as {}/{repository}:{reference}",
            manifest.digest, self.name
        );
        match resp.status {
            200 | 201 => Ok(()),
            _ => Err(self.status_error(&what, resp)),
        }
    }
}

/// Content for an upload, from its start, verified as it is read.
pub type Content<'c> = Box<dyn PollRead + 'c>;

/// Uploads blob `desc`, whose content `open` yields from the start: in one
/// PUT up to `chunk` bytes, in PATCH chunks beyond. A broken monolithic
/// upload starts over; a broken chunked one asks the registry how far it
/// got and goes on from there, or starts over if the registry will not say;
/// every retry comes from one [`Budget`]. A 401 is answered once with a
/// fresh token, then the upload starts over or resumes. Waits without
/// blocking other transfers.
pub async fn upload<'c>(
    registry: &Registry,
    repository: &str,
    desc: &Descriptor,
    open: &dyn Fn() -> Result<Content<'c>>,
    chunk: u64,
) -> Result<()> {
    let what = format!(
        "upload of blob {} to {}/{repository}",
        desc.digest, registry.name
    );
    let budget = registry.budget();
    let up = Upload {
        registry,
        repository,
        desc,
        what: &what,
        budget: &budget,
        scope: push_scope(repository),
    };
    if desc.size > chunk.max(1) {
        up.chunked(open, chunk.max(1)).await
    } else {
        up.whole(open).await
    }
}

/// One blob's upload and its retries.
struct Upload<'u> {
    registry: &'u Registry,
    repository: &'u str,
    desc: &'u Descriptor,
    what: &'u str,
    budget: &'u Budget,
    scope: String,
}

/// What a streamed part's answer means for the upload.
enum Outcome {
    /// Accepted: the response.
    Done(Response),
    /// Worth another try (from the budget, unless `free`), after `asked`.
    Again {
        why: String,
        asked: Option<std::time::Duration>,
        free: bool,
    },
}

impl Upload<'_> {
    /// Classifies the answer to a streamed PUT or PATCH; `renewed` says
    /// whether this upload already answered a 401.
    fn outcome(&self, sent: Result<Response>, renewed: &mut bool) -> Result<Outcome> {
        match sent {
            Err(Error::Network(why)) => Ok(Outcome::Again {
                why,
                asked: None,
                free: false,
            }),
            Err(other) => Err(other),
            Ok(resp) if resp.status == 401 && !*renewed => {
                *renewed = true;
                self.registry.renew(&self.scope, &resp);
                Ok(Outcome::Again {
                    why: "the token expired".into(),
                    asked: None,
                    free: true,
                })
            }
            Ok(resp) if resp.status == 401 => Err(self.registry.unauthorized("")),
            Ok(resp) if transient(resp.status) => Ok(Outcome::Again {
                asked: retry_after(&resp),
                why: self
                    .registry
                    .status_error(&format!("the {}", self.what), resp)
                    .to_string(),
                free: false,
            }),
            Ok(resp) => Ok(Outcome::Done(resp)),
        }
    }

    /// Whether to go on after `why`: a free try, or one from the budget.
    async fn again(
        &self,
        why: String,
        asked: Option<std::time::Duration>,
        free: bool,
    ) -> Result<()> {
        if free || self.budget.retry(asked).await {
            Ok(())
        } else {
            Err(Error::Network(format!("{why}{}", self.budget.after())))
        }
    }

    async fn whole<'c>(&self, open: &dyn Fn() -> Result<Content<'c>>) -> Result<()> {
        let mut renewed = false;
        loop {
            let location = self
                .registry
                .start_upload(self.repository, self.what, self.budget)
                .await?;
            let url = with_digest(&location, &self.desc.digest.to_string());
            let mut content = open()?;
            let sent = self
                .registry
                .send_stream(
                    "PUT",
                    &url,
                    &self.scope,
                    (&[octets()], self.desc.size),
                    &mut content,
                    self.budget,
                )
                .await;
            match self.outcome(sent, &mut renewed)? {
                Outcome::Done(resp) => return self.registry.expect_created(resp, self.what),
                Outcome::Again { why, asked, free } => self.again(why, asked, free).await?,
            }
        }
    }

    async fn chunked<'c>(&self, open: &dyn Fn() -> Result<Content<'c>>, chunk: u64) -> Result<()> {
        let (registry, desc) = (self.registry, self.desc);
        let mut location = registry
            .start_upload(self.repository, self.what, self.budget)
            .await?;
        let mut content = open()?;
        let mut offset = 0;
        let mut resumed = false;
        let mut renewed = false;
        // Set once a part sent at offset 0 was refused with 416 after a resume.
        let mut zero_is_one = false;
        while offset < desc.size {
            let n = chunk.min(desc.size - offset);
            let range = (
                "content-range".to_string(),
                format!("{offset}-{}", offset + n - 1),
            );
            let mut part = Take::new(&mut content, n);
            let headers = [octets(), range];
            let sent = registry
                .send_stream(
                    "PATCH",
                    &location,
                    &self.scope,
                    (&headers, n),
                    &mut part,
                    self.budget,
                )
                .await;
            let (why, asked, free) = match self.outcome(sent, &mut renewed)? {
                // The registry holds another amount than the part assumed (an
                // ambiguous `0-0` read as empty): ask again.
                Outcome::Done(resp) if resp.status == 416 && resumed => {
                    zero_is_one |= offset == 0;
                    let why = registry.status_error(&format!("a chunk of the {}", self.what), resp);
                    (why.to_string(), None, false)
                }
                Outcome::Done(resp) => {
                    if resp.status != 202 {
                        return Err(
                            registry.status_error(&format!("a chunk of the {}", self.what), resp)
                        );
                    }
                    location =
                        registry.location(&resp, &format!("a chunk of the {}", self.what))?;
                    offset += n;
                    continue;
                }
                Outcome::Again { why, asked, free } => (why, asked, free),
            };
            self.again(why, asked, free).await?;
            // Ask how far the registry got, then read again up to there.
            // distribution refuses the question once a part landed whose
            // answer was lost (the upload's `_state` names the old offset):
            // then the upload starts over.
            content = open()?;
            match registry
                .upload_status(&location, &self.scope, zero_is_one, self.budget)
                .await
            {
                Ok((at, next)) => {
                    resumed = true;
                    location = next;
                    skip(&mut content, at, desc)?;
                    offset = at;
                }
                Err(Error::Registry(_) | Error::NotFound(_)) => {
                    location = registry
                        .start_upload(self.repository, self.what, self.budget)
                        .await?;
                    (offset, resumed, zero_is_one) = (0, false, false);
                }
                Err(e) => return Err(e),
            }
        }
        // The verifying reader checks the digest when it reaches the end.
        let mut end = [0u8; 1];
        match Blocking(&mut content).read(&mut end) {
            Ok(0) => {}
            Ok(_) => {
                return Err(Error::DigestMismatch(format!(
                    "blob {} is larger than its descriptor's {} bytes",
                    desc.digest, desc.size
                )))
            }
            Err(e) => {
                return Err(classify_io(e, |e| {
                    Error::Io(format!("reading blob {}: {e}", desc.digest))
                }))
            }
        }
        let digest = desc.digest.to_string();
        let url = with_digest(&location, &digest);
        let put = match registry
            .request("PUT", &url, &self.scope, &[], Payload::Empty, self.budget)
            .await
        {
            Ok(resp) => registry.expect_created(resp, self.what),
            Err(e) => Err(e),
        };
        match put {
            // A retried PUT finds the upload gone if an earlier try committed
            // it and only the answer was lost: the blob itself tells.
            Err(e) if self.budget.taken() > 0 => {
                let landed = registry.blob_exists(self.repository, &digest, &self.scope);
                match landed.await {
                    Ok(true) => Ok(()),
                    _ => Err(e),
                }
            }
            done => done,
        }
    }
}

/// At most `left` bytes of a stream.
struct Take<R> {
    inner: R,
    left: u64,
}

impl<R> Take<R> {
    fn new(inner: R, left: u64) -> Self {
        Take { inner, left }
    }
}

impl<R: PollRead> PollRead for Take<R> {
    fn poll_read(&mut self, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let max = (buf.len() as u64).min(self.left) as usize;
        if max == 0 {
            return Poll::Ready(Ok(0));
        }
        let read = self.inner.poll_read(&mut buf[..max]);
        if let Poll::Ready(Ok(n)) = read {
            self.left -= n as u64;
        }
        read
    }
}

fn octets() -> (String, String) {
    (
        "content-type".to_string(),
        "application/octet-stream".to_string(),
    )
}

/// Reads and drops the first `n` bytes (they are hashed on the way).
fn skip(content: &mut Content<'_>, n: u64, desc: &Descriptor) -> Result<()> {
    let mut head = Blocking(Take::new(content, n));
    let skipped = io::copy(&mut head, &mut io::sink()).map_err(|e| {
        classify_io(e, |e| {
            Error::Io(format!("re-reading blob {}: {e}", desc.digest))
        })
    })?;
    if skipped != n {
        return Err(Error::CorruptArchive(format!(
            "blob {} is shorter than {n} bytes",
            desc.digest
        )));
    }
    Ok(())
}

/// Adds `digest=` to an upload location, which may already carry a query
/// (distribution's `_state`).
fn with_digest(location: &str, digest: &str) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    let encoded: String = url::form_urlencoded::byte_serialize(digest.as_bytes()).collect();
    format!("{location}{sep}digest={encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_goes_into_the_upload_query() {
        assert_eq!(
            with_digest("/v2/a/blobs/uploads/u?_state=x", "sha256:ab"),
            "/v2/a/blobs/uploads/u?_state=x&digest=sha256%3Aab"
        );
        assert_eq!(
            with_digest("https://h/up/u", "sha256:ab"),
            "https://h/up/u?digest=sha256%3Aab"
        );
        assert_eq!(push_scope("a/b"), "repository:a/b:pull,push");
    }
}
