//! The push side of the distribution API: blob existence, cross-repository
//! mounts, monolithic and chunked uploads, manifests.

use std::io::Read;

use url::Url;

use super::{backoff, Payload, Registry};
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
    pub fn blob_exists(&mut self, repository: &str, digest: &str, scope: &str) -> Result<bool> {
        let path = format!("v2/{repository}/blobs/{digest}");
        let resp = self.request("HEAD", &path, scope, &[], Payload::Empty)?;
        match resp.status {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(self.status_error(&format!("blob {digest} in {repository}"), resp)),
        }
    }

    /// Mounts `digest` from repository `from` into `repository`; false if the
    /// registry would not.
    pub fn mount(&mut self, repository: &str, digest: &str, from: &str) -> Result<bool> {
        let scope = format!("{} {}", push_scope(repository), pull_scope(from));
        let mut target = Url::parse("http://x/").expect("static URL");
        target.set_path(&format!("/v2/{repository}/blobs/uploads/"));
        target
            .query_pairs_mut()
            .append_pair("mount", digest)
            .append_pair("from", from);
        let path = format!("{}?{}", &target.path()[1..], target.query().unwrap_or(""));
        let resp = self.request("POST", &path, &scope, &[], Payload::Empty)?;
        match resp.status {
            201 => Ok(true),
            202 => {
                // The registry opened a plain upload instead: cancel it.
                if let Ok(loc) = self.location(&resp, "a mount") {
                    let _ = self.request("DELETE", &loc, &scope, &[], Payload::Empty);
                }
                Ok(false)
            }
            404 => Ok(false),
            _ => Err(self.status_error(&format!("mounting {digest} from {from}"), resp)),
        }
    }

    /// Uploads blob `desc`, whose content `open` yields from the start,
    /// verified: in one PUT up to `chunk` bytes, in PATCH chunks beyond. A
    /// broken monolithic upload starts over; a broken chunked one asks the
    /// registry how far it got and goes on from there.
    pub fn upload<'c>(
        &mut self,
        repository: &str,
        desc: &Descriptor,
        open: &dyn Fn() -> Result<Box<dyn Read + 'c>>,
        chunk: u64,
    ) -> Result<()> {
        let what = format!(
            "upload of blob {} to {}/{repository}",
            desc.digest, self.name
        );
        let mut tries = 0;
        loop {
            let result = if desc.size > chunk.max(1) {
                self.upload_chunked(repository, desc, open, chunk.max(1), &what)
            } else {
                self.upload_whole(repository, desc, open, &what)
            };
            match result {
                Err(Error::Network(_)) if tries < self.retries => {
                    tries += 1;
                    backoff(tries, None);
                }
                other => return other,
            }
        }
    }

    fn start_upload(&mut self, repository: &str, what: &str) -> Result<String> {
        let start = format!("v2/{repository}/blobs/uploads/");
        let resp = self.request("POST", &start, &push_scope(repository), &[], Payload::Empty)?;
        if resp.status != 202 {
            return Err(self.status_error(&format!("starting the {what}"), resp));
        }
        self.location(&resp, &format!("starting the {what}"))
    }

    fn upload_whole<'c>(
        &mut self,
        repository: &str,
        desc: &Descriptor,
        open: &dyn Fn() -> Result<Box<dyn Read + 'c>>,
        what: &str,
    ) -> Result<()> {
        let location = self.start_upload(repository, what)?;
        let url = with_digest(&location, &desc.digest.to_string());
        let mut content = open()?;
        let resp = self.request(
            "PUT",
            &url,
            &push_scope(repository),
            &[octets()],
            Payload::Stream(&mut content, desc.size),
        )?;
        self.expect_created(resp, what)
    }

    fn upload_chunked<'c>(
        &mut self,
        repository: &str,
        desc: &Descriptor,
        open: &dyn Fn() -> Result<Box<dyn Read + 'c>>,
        chunk: u64,
        what: &str,
    ) -> Result<()> {
        let scope = push_scope(repository);
        let mut location = self.start_upload(repository, what)?;
        let mut content = open()?;
        let mut offset = 0;
        let mut resumes = 0;
        while offset < desc.size {
            let n = chunk.min(desc.size - offset);
            let range = (
                "content-range".to_string(),
                format!("{offset}-{}", offset + n - 1),
            );
            let mut part = Read::take(&mut *content, n);
            let headers = [octets(), range];
            let sent = self.request(
                "PATCH",
                &location,
                &scope,
                &headers,
                Payload::Stream(&mut part, n),
            );
            let resp = match sent {
                Err(Error::Network(e)) if resumes < self.retries => {
                    // Ask how far the registry got, then read again up to there.
                    resumes += 1;
                    backoff(resumes, None);
                    let (at, next) = self
                        .upload_status(&location, &scope)
                        .map_err(|_| Error::Network(e))?;
                    location = next;
                    content = open()?;
                    skip(&mut content, at, desc)?;
                    offset = at;
                    continue;
                }
                other => other?,
            };
            if resp.status != 202 {
                return Err(self.status_error(&format!("a chunk of the {what}"), resp));
            }
            location = self.location(&resp, &format!("a chunk of the {what}"))?;
            offset += n;
        }
        // The verifying reader checks the digest when it reaches the end.
        let mut end = [0u8; 1];
        match content.read(&mut end) {
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
        let url = with_digest(&location, &desc.digest.to_string());
        let resp = self.request("PUT", &url, &scope, &[], Payload::Empty)?;
        self.expect_created(resp, what)
    }

    /// How many bytes an upload holds (`Range: 0-N`), and where it continues.
    fn upload_status(&mut self, location: &str, scope: &str) -> Result<(u64, String)> {
        let resp = self.request("GET", location, scope, &[], Payload::Empty)?;
        if resp.status != 204 {
            return Err(self.status_error("the status of an upload", resp));
        }
        let end = resp
            .header("range")
            .and_then(|r| r.split('-').nth(1))
            .and_then(|n| n.trim().parse::<u64>().ok());
        let next = self.location(&resp, "the status of an upload")?;
        Ok((end.map_or(0, |e| e + 1), next))
    }

    /// A 201, or an error: a transient status counts as a network failure,
    /// so the upload is tried again.
    fn expect_created(&self, resp: Response, what: &str) -> Result<()> {
        match resp.status {
            201 | 204 => Ok(()),
            s if super::transient(s) => match self.status_error(&format!("the {what}"), resp) {
                Error::Registry(m) => Err(Error::Network(m)),
                other => Err(other),
            },
            _ => Err(self.status_error(&format!("the {what}"), resp)),
        }
    }

    /// Stores `manifest` under `reference` (a digest or a tag), byte for byte.
    pub fn put_manifest(
        &mut self,
        repository: &str,
        reference: &str,
        manifest: &RawManifest,
    ) -> Result<()> {
        let path = format!("v2/{repository}/manifests/{reference}");
        let headers = [("content-type".to_string(), manifest.media_type.clone())];
        let resp = self.request(
            "PUT",
            &path,
            &push_scope(repository),
            &headers,
            Payload::Bytes(&manifest.bytes),
        )?;
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

fn octets() -> (String, String) {
    (
        "content-type".to_string(),
        "application/octet-stream".to_string(),
    )
}

/// Reads and drops the first `n` bytes (they are hashed on the way).
fn skip(content: &mut dyn Read, n: u64, desc: &Descriptor) -> Result<()> {
    let skipped =
        std::io::copy(&mut Read::take(content, n), &mut std::io::sink()).map_err(|e| {
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
