//! Listing what a registry holds: its repositories (`GET /v2/_catalog`) and
//! a repository's tags (`GET /v2/<name>/tags/list`), following `Link`
//! pagination.

use serde::Deserialize;

use super::{Payload, Registry};
use crate::concurrent::block_on;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::{Descriptor, ImageIndex, RawManifest, OCI_INDEX};

/// Names asked for per page.
const PAGE: usize = 1000;
/// Pages followed at most (a million names at `PAGE` per page).
const MAX_PAGES: usize = 1000;
/// Largest page body read.
const MAX_PAGE_BYTES: u64 = 16 * 1024 * 1024;

/// The target of a `Link: <…>; rel="next"` header.
fn next_link(value: &str) -> Option<String> {
    value.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            })
            .then(|| target.to_string())
    })
}

/// What a listing's pages gave.
enum Paged<T> {
    /// Every name.
    Listed(Vec<T>),
    /// Nothing there (404).
    Absent,
    /// Another answer, from a listing the registry may not offer.
    Refused,
}

impl<T> Paged<T> {
    fn listed(self) -> Option<Vec<T>> {
        match self {
            Paged::Listed(v) => Some(v),
            Paged::Absent | Paged::Refused => None,
        }
    }
}

impl Registry {
    /// Fetches every page of a listing starting at `first`; `items` takes
    /// one page's body and returns its names.
    /// A listing the registry may not offer (`lenient`) counts as absent
    /// whatever status says so, not only 404.
    fn pages<T>(
        &self,
        first: String,
        scope: &str,
        what: &str,
        options: (Option<&str>, bool),
        items: impl Fn(&[u8]) -> std::result::Result<Vec<T>, serde_json::Error>,
    ) -> Result<Option<Vec<T>>> {
        let paged = block_on(self.pages_async(first, scope, what, options, MAX_PAGES, items))?;
        Ok(paged.listed())
    }

    /// [`Registry::pages`], waiting without blocking other transfers.
    async fn pages_async<T>(
        &self,
        first: String,
        scope: &str,
        what: &str,
        (accept, lenient): (Option<&str>, bool),
        max_pages: usize,
        items: impl Fn(&[u8]) -> std::result::Result<Vec<T>, serde_json::Error>,
    ) -> Result<Paged<T>> {
        let mut out = Vec::new();
        let mut target = first;
        let headers: Vec<(String, String)> = accept
            .map(|a| ("accept".to_string(), a.to_string()))
            .into_iter()
            .collect();
        for _ in 0..max_pages {
            let budget = self.budget();
            let get = self.request("GET", &target, scope, &headers, Payload::Empty, &budget);
            let resp = get.await?;
            match resp.status {
                200 => {}
                404 => return Ok(Paged::Absent),
                _ if lenient => return Ok(Paged::Refused),
                _ => return Err(self.status_error(what, resp)),
            }
            let next = resp.header("link").and_then(next_link);
            let body = resp
                .read_limited_async(MAX_PAGE_BYTES)
                .await
                .map_err(|e| Error::Network(format!("reading {what} from {}: {e}", self.name)))?;
            out.extend(items(&body).map_err(|e| {
                Error::Registry(format!(
                    "{} answered {what} with something unusable: {e}",
                    self.name
                ))
            })?);
            match next {
                // A relative Link keeps to the registry; an absolute one
                // goes through the same client (and its allow-list).
                Some(n) => target = n.trim_start_matches('/').to_string(),
                None => return Ok(Paged::Listed(out)),
            }
        }
        Err(Error::Registry(format!(
            "{} lists more than {max_pages} pages for {what}",
            self.name
        )))
    }

    /// Every repository the registry lists.
    pub fn catalog(&self) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        struct Catalog {
            #[serde(default)]
            repositories: Option<Vec<String>>,
        }
        self.pages(
            format!("v2/_catalog?n={PAGE}"),
            "registry:catalog:*",
            "the catalog",
            (None, false),
            |b| {
                Ok(serde_json::from_slice::<Catalog>(b)?
                    .repositories
                    .unwrap_or_default())
            },
        )?
        .ok_or_else(|| {
            Error::Unsupported(format!(
                "{} offers no catalog: name the repositories",
                self.name
            ))
        })
    }

    /// Every tag of `repository` (none for an unknown repository).
    pub fn tags(&self, repository: &str) -> Result<Vec<String>> {
        Ok(self
            .pages(
                format!("v2/{repository}/tags/list?n={PAGE}"),
                &format!("repository:{repository}:pull"),
                &format!("the tags of {repository}"),
                (None, false),
                tag_names,
            )?
            .unwrap_or_default())
    }

    /// Every tag of `repository` if one page lists them all; `None` where
    /// the registry will not list them or needs more pages (a caller then
    /// asks for the tags it wants one by one, which costs less than many
    /// pages).
    pub async fn tags_on_one_page(&self, repository: &str) -> Option<Vec<String>> {
        self.pages_async(
            format!("v2/{repository}/tags/list?n={PAGE}"),
            &format!("repository:{repository}:pull"),
            &format!("the tags of {repository}"),
            (None, true),
            1,
            tag_names,
        )
        .await
        .ok()
        .and_then(Paged::listed)
    }
}

/// The names in a page of `tags/list`.
fn tag_names(body: &[u8]) -> std::result::Result<Vec<String>, serde_json::Error> {
    #[derive(Deserialize)]
    struct Tags {
        #[serde(default)]
        tags: Option<Vec<String>>,
    }
    Ok(serde_json::from_slice::<Tags>(body)?
        .tags
        .unwrap_or_default())
}

impl Registry {
    /// What the referrers API lists for `digest` in `repository`; `None`
    /// where the registry offers no such API (then the fallback tag holds
    /// the list).
    pub async fn referrers(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<Option<Vec<Descriptor>>> {
        let listed = self
            .pages_async(
                format!("v2/{repository}/referrers/{digest}"),
                &format!("repository:{repository}:pull"),
                &format!("the referrers of {digest}"),
                (Some(OCI_INDEX), true),
                MAX_PAGES,
                |b| Ok(serde_json::from_slice::<ImageIndex>(b)?.manifests),
            )
            .await?;
        // Only a list or a 404 tells whether the API is there; another
        // refusal counts as no list for this subject alone.
        match &listed {
            Paged::Listed(_) => self.referrers_api.set(Some(true)),
            Paged::Absent => self.referrers_api.set(Some(false)),
            Paged::Refused => {}
        }
        Ok(listed.listed())
    }

    /// Whether the registry has a referrers API, once a lookup has told.
    /// One that has it never answers 404 there (OCI distribution 1.1), so
    /// one answer holds for every subject.
    pub fn offers_referrers(&self) -> Option<bool> {
        self.referrers_api.get()
    }

    /// The manifest `reference` of `repository`, or `None` if there is none.
    pub async fn try_manifest(
        &self,
        repository: &str,
        reference: &str,
        display: &str,
    ) -> Result<Option<RawManifest>> {
        match self.fetch_manifest(repository, reference, display).await {
            Ok(m) => Ok(Some(m)),
            Err(Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_next_links_only() {
        assert_eq!(
            next_link(r#"</v2/_catalog?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/_catalog?last=b&n=2")
        );
        assert_eq!(
            next_link(r#"<https://h/p?x=1>; rel="prev", </q>; rel=next"#).as_deref(),
            Some("/q")
        );
        assert_eq!(next_link(r#"</v2/x>; rel="last""#), None);
        assert_eq!(next_link("garbage"), None);
    }
}
