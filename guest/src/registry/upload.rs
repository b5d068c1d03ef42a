//! The push side of the distribution API: blob existence, cross-repository
//! mounts, monolithic and chunked uploads, manifests.

use std::io::Read;

use url::Url;

use super::{Payload, Registry};
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

    /// Uploads blob `desc` from `content` (which verifies it), in one PUT up
    /// to `chunk` bytes and in PATCH chunks of `chunk` bytes beyond.
    pub fn upload(
        &mut self,
        repository: &str,
        desc: &Descriptor,
        content: &mut dyn Read,
        chunk: u64,
    ) -> Result<()> {
        let scope = push_scope(repository);
        let what = format!(
            "upload of blob {} to {}/{repository}",
            desc.digest, self.name
        );
        let start = format!("v2/{repository}/blobs/uploads/");
        let resp = self.request("POST", &start, &scope, &[], Payload::Empty)?;
        if resp.status != 202 {
            return Err(self.status_error(&format!("starting the {what}"), resp));
        }
        let mut location = self.location(&resp, &format!("starting the {what}"))?;
        let octets = (
            "content-type".to_string(),
            "application/octet-stream".to_string(),
        );
        let chunk = chunk.max(1);
        if desc.size > chunk {
            let mut offset = 0;
            while offset < desc.size {
                let n = chunk.min(desc.size - offset);
                let range = (
                    "content-range".to_string(),
                    format!("{offset}-{}", offset + n - 1),
                );
                let mut part = Read::take(&mut *content, n);
                let headers = [octets.clone(), range];
                let resp = self.request(
                    "PATCH",
                    &location,
                    &scope,
                    &headers,
                    Payload::Stream(&mut part, n),
                )?;
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
            return self.expect_created(resp, &what);
        }
        let url = with_digest(&location, &desc.digest.to_string());
        let resp = self.request(
            "PUT",
            &url,
            &scope,
            &[octets],
            Payload::Stream(content, desc.size),
        )?;
        self.expect_created(resp, &what)
    }

    fn expect_created(&self, resp: Response, what: &str) -> Result<()> {
        match resp.status {
            201 | 204 => Ok(()),
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
