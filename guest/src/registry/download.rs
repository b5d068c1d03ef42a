//! Blob downloads that survive a broken connection: the rest is fetched with
//! `Range` (checking `206` and `Content-Range`), and the caller's digest check
//! still covers the whole blob.

use std::io::{self, Read};

use super::{backoff, Payload, Registry};
use crate::error::{Error, Result};
use crate::http::Body;
use crate::manifest::Descriptor;

/// A blob being read, resumed where it broke off.
pub struct BlobReader<'a> {
    registry: &'a mut Registry,
    repository: String,
    desc: Descriptor,
    body: Body,
    offset: u64,
    resumes: u32,
}

impl Registry {
    fn blob_from(&mut self, repository: &str, desc: &Descriptor, offset: u64) -> Result<Body> {
        let scope = format!("repository:{repository}:pull");
        let path = format!("v2/{repository}/blobs/{}", desc.digest);
        let range = [("range".to_string(), format!("bytes={offset}-"))];
        let extra: &[(String, String)] = if offset > 0 { &range } else { &[] };
        let resp = self.request("GET", &path, &scope, extra, Payload::Empty)?;
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

    /// Opens blob `desc` of `repository` for streaming; the caller verifies it.
    pub fn blob(&mut self, repository: &str, desc: &Descriptor) -> Result<BlobReader<'_>> {
        let body = self.blob_from(repository, desc, 0)?;
        Ok(BlobReader {
            registry: self,
            repository: repository.to_string(),
            desc: desc.clone(),
            body,
            offset: 0,
            resumes: 0,
        })
    }
}

impl Read for BlobReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let failure = match self.body.read(buf) {
                Ok(0) if self.offset < self.desc.size && !buf.is_empty() => io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "the body ended after {} of {} bytes",
                        self.offset, self.desc.size
                    ),
                ),
                Ok(n) => {
                    self.offset += n as u64;
                    return Ok(n);
                }
                Err(e) => e,
            };
            if self.resumes >= self.registry.retries {
                return Err(failure);
            }
            self.resumes += 1;
            backoff(self.resumes, None);
            let (repository, desc) = (self.repository.clone(), self.desc.clone());
            self.body = self
                .registry
                .blob_from(&repository, &desc, self.offset)
                .map_err(|e| io::Error::other(format!("{failure}; resuming failed: {e}")))?;
        }
    }
}
