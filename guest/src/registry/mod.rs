//! An OCI distribution client in layers: a [`Transport`] at the bottom
//! (wasi:http in the component, a script in unit tests); above it scheme
//! discovery, auth (Basic; Bearer anonymous, with a password or an identity
//! token; one renewal on 401 for every request), the one retry policy
//! ([`retry`]) and redirects; above that the API calls (manifests, blobs,
//! uploads, mounts, listings).

mod auth;
pub use imo_grammar::challenge;
mod discover;
pub use discover::is_loopback;
pub mod download;
#[cfg(test)]
mod fake;
pub mod listing;
pub mod retry;
#[cfg(test)]
mod tests;
pub mod transport;
pub mod upload;

use auth::Auth;

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::time::Instant;

use url::Url;

use crate::bindings::imo::incremental::types::{Credential, Role};
use crate::concurrent::{block_on, PollRead, Ready};
use crate::digest::{classify_io, Digest, DigestOf};
use crate::error::{Error, Result};
use crate::http::{self, Response};
use crate::manifest::{RawManifest, ACCEPT, MAX_MANIFEST_BYTES};
use crate::reference::DOCKER_HUB;
use retry::{retry_after, transient, Backoff, Budget};
use transport::{Transport, WasiHttp};

const MAX_REDIRECTS: usize = 10;
pub(super) const MAX_TOKEN_BYTES: u64 = 1024 * 1024;
const MAX_ERROR_BYTES: u64 = 64 * 1024;
const USER_AGENT: &str = concat!("imo/", env!("CARGO_PKG_VERSION"));

/// A request body that can be sent again: streamed bodies go through
/// [`Registry::send_stream`] instead.
enum Payload<'a> {
    /// None.
    Empty,
    /// Bytes in memory.
    Bytes(&'a [u8]),
}

/// A client for one registry, acting in one role. Its methods take `&self`
/// (what it learns is kept in cells, borrowed only between waits), so
/// transfers running at once share one client, its scheme and its tokens.
pub struct Registry {
    name: String,
    authority: String,
    role: Role,
    allow_plain: bool,
    base: RefCell<Option<Url>>,
    auth: RefCell<Auth>,
    credential: RefCell<Option<Option<Credential>>>,
    tokens: RefCell<HashMap<String, (String, Option<Instant>)>>,
    /// Scopes whose token a transfer is fetching.
    fetching: RefCell<HashSet<String>>,
    retries: u32,
    backoff: Backoff,
    transport: Box<dyn Transport>,
    /// Set while a transfer finds the scheme and challenge.
    discovering: Cell<bool>,
    /// Whether it has a referrers API, once known.
    referrers_api: Cell<Option<bool>>,
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Base => "base",
        Role::Final => "final",
        Role::Destination => "destination",
    }
}

fn creds_flag(role: Role) -> &'static str {
    match role {
        Role::Base => "--base-creds",
        Role::Final => "--final-creds",
        Role::Destination => "--dest-creds",
    }
}

impl Registry {
    /// A client for `registry` as written in a reference, over wasi:http;
    /// `insecure` allows plain HTTP to it even if it is not on loopback;
    /// each transfer may retry `retries` times ([`retry`]).
    pub fn new(registry: &str, role: Role, insecure: bool, retries: u32) -> Self {
        Self::with_transport(registry, role, insecure, retries, Box::new(WasiHttp))
    }

    /// A client whose requests go through `transport`.
    pub fn with_transport(
        registry: &str,
        role: Role,
        insecure: bool,
        retries: u32,
        transport: Box<dyn Transport>,
    ) -> Self {
        let authority = if registry == DOCKER_HUB {
            "registry-1.docker.io".to_string()
        } else {
            registry.to_string()
        };
        Registry {
            name: registry.to_string(),
            authority,
            role,
            allow_plain: insecure || is_loopback(registry),
            base: RefCell::new(None),
            auth: RefCell::new(Auth::None),
            credential: RefCell::new(None),
            tokens: RefCell::new(HashMap::new()),
            fetching: RefCell::new(HashSet::new()),
            retries,
            backoff: Backoff::default(),
            transport,
            discovering: Cell::new(false),
            referrers_api: Cell::new(None),
        }
    }

    /// The retries one transfer may take.
    pub fn budget(&self) -> Budget {
        Budget::new(self.retries, self.backoff)
    }

    /// The registry's name as the user wrote it.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn unauthorized(&self, detail: &str) -> Error {
        Error::Unauthorized(format!(
            "unauthorized at {} for {}{detail}: check {} or the auth file",
            self.name,
            role_name(self.role),
            creds_flag(self.role)
        ))
    }

    fn credential(&self) -> Option<Credential> {
        self.credential
            .borrow_mut()
            .get_or_insert_with(|| crate::host::lookup(&self.name, self.role))
            .clone()
    }

    /// The URL of `target` (a path below the registry root, or an absolute
    /// URL from a `Location`), and the registry's base URL.
    async fn resolve(&self, target: &str, budget: &Budget) -> Result<(Url, Url)> {
        let base = self.connect(budget).await?;
        let url = base
            .join(target)
            .map_err(|e| Error::Registry(format!("invalid URL {target}: {e}")))?;
        Ok((url, base))
    }

    /// Sends a request for `target` with auth for `scope`. Bodiless
    /// requests follow redirects; a network failure or a transient status
    /// is retried from `budget`, a 401 once with a fresh token.
    async fn request(
        &self,
        method: &str,
        target: &str,
        scope: &str,
        extra: &[(String, String)],
        payload: Payload<'_>,
        budget: &Budget,
    ) -> Result<Response> {
        let (url, base) = self.resolve(target, budget).await?;
        let mut renewed = false;
        loop {
            let mut headers = vec![ua()];
            headers.extend_from_slice(extra);
            match &payload {
                Payload::Empty if matches!(method, "GET" | "HEAD" | "DELETE") => {}
                Payload::Empty => headers.push(("content-length".into(), "0".into())),
                Payload::Bytes(b) => headers.push(("content-length".into(), b.len().to_string())),
            }
            let auth = self.authorization(scope, budget).await?;
            let sent = match &payload {
                Payload::Empty => {
                    self.send_following(method, &url, &base, &headers, auth)
                        .await
                }
                Payload::Bytes(b) => {
                    let headers = with_auth(headers, auth, &url, &base);
                    let mut body = Ready(*b);
                    let sent = self
                        .transport
                        .send(method, &url, &headers, Some(&mut body))
                        .await;
                    self.sent(method, &url, sent)
                }
            };
            let resp = match sent {
                Err(Error::Network(msg)) => {
                    if budget.retry(None).await {
                        continue;
                    }
                    return Err(Error::Network(format!("{msg}{}", budget.after())));
                }
                other => other?,
            };
            if resp.status == 401 && !renewed {
                renewed = true;
                self.renew(scope, &resp);
                continue;
            }
            if transient(resp.status) && budget.retry(retry_after(&resp)).await {
                continue;
            }
            return self.authorized(method, &url, resp);
        }
    }

    /// `resp`, unless it says the credentials were refused.
    fn authorized(&self, method: &str, url: &Url, resp: Response) -> Result<Response> {
        let has_auth = !matches!(*self.auth.borrow(), Auth::None);
        if resp.status == 401 || (resp.status == 403 && has_auth) {
            return Err(self.unauthorized(&format!(" ({method} {})", url.path())));
        }
        Ok(resp)
    }

    /// The outcome of sending a body, in the guest's error terms.
    fn sent(
        &self,
        method: &str,
        url: &Url,
        sent: std::result::Result<Response, http::SendError>,
    ) -> Result<Response> {
        sent.map_err(|e| match e {
            http::SendError::Body(e) => classify_io(e, |e| {
                Error::Io(format!("reading the data for {method} {}: {e}", url.path()))
            }),
            http::SendError::Transport(e) => Error::Network(format!(
                "{method} {} at {} failed: {e}",
                url.path(),
                self.name
            )),
        })
    }

    /// Sends `method target` with a streamed body of `len` bytes, once: a
    /// stream cannot be replayed, so the caller retries (reopening its
    /// content) and answers a 401, which comes back as a response.
    async fn send_stream(
        &self,
        method: &str,
        target: &str,
        scope: &str,
        (extra, len): (&[(String, String)], u64),
        body: &mut dyn PollRead,
        budget: &Budget,
    ) -> Result<Response> {
        let (url, base) = self.resolve(target, budget).await?;
        let mut headers = vec![ua()];
        headers.extend_from_slice(extra);
        headers.push(("content-length".into(), len.to_string()));
        let auth = self.authorization(scope, budget).await?;
        let headers = with_auth(headers, auth, &url, &base);
        let sent = self
            .transport
            .send(method, &url, &headers, Some(body))
            .await;
        let resp = self.sent(method, &url, sent)?;
        if resp.status == 401 {
            return Ok(resp);
        }
        self.authorized(method, &url, resp)
    }

    async fn send_following(
        &self,
        method: &str,
        url: &Url,
        base: &Url,
        headers: &[(String, String)],
        auth: Option<String>,
    ) -> Result<Response> {
        let mut url = url.clone();
        for _ in 0..=MAX_REDIRECTS {
            let mut h = headers.to_vec();
            // Credentials go only to the registry itself, never to a redirect target.
            if let Some(a) = &auth {
                if url.origin() == base.origin() {
                    h.push(("authorization".into(), a.clone()));
                }
            }
            let resp = self
                .transport
                .send(method, &url, &h, None)
                .await
                .map_err(|e| {
                    Error::Network(format!(
                        "{method} {} at {} failed: {e}",
                        url.path(),
                        self.name
                    ))
                })?;
            if !matches!(resp.status, 301 | 302 | 303 | 307 | 308) {
                return Ok(resp);
            }
            let location = resp.header("location").ok_or_else(|| {
                Error::Registry(format!(
                    "{} answered {} without a Location to {method} {}",
                    self.name,
                    resp.status,
                    url.path()
                ))
            })?;
            let next = url.join(location).map_err(|e| {
                Error::Registry(format!("{} redirected to an invalid URL: {e}", self.name))
            })?;
            if url.scheme() == "https" && next.scheme() != "https" {
                return Err(Error::Registry(format!(
                    "{} redirected from HTTPS to {}: refused",
                    self.name,
                    next.scheme()
                )));
            }
            url = next;
        }
        Err(Error::Registry(format!(
            "{} redirected more than {MAX_REDIRECTS} times",
            self.name
        )))
    }

    fn status_error(&self, what: &str, resp: Response) -> Error {
        let status = resp.status;
        let detail = resp
            .read_limited(MAX_ERROR_BYTES)
            .ok()
            .map(|b| error_detail(&b))
            .unwrap_or_default();
        Error::Registry(format!(
            "{} answered {status} for {what}{detail}",
            self.name
        ))
    }

    /// Fetches the manifest `reference` (tag or digest) of `repository`;
    /// `display` names it for messages.
    pub fn manifest(
        &self,
        repository: &str,
        reference: &str,
        display: &str,
    ) -> Result<RawManifest> {
        block_on(self.fetch_manifest(repository, reference, display))
    }

    /// [`Registry::manifest`], waiting without blocking other transfers.
    pub async fn fetch_manifest(
        &self,
        repository: &str,
        reference: &str,
        display: &str,
    ) -> Result<RawManifest> {
        let scope = format!("repository:{repository}:pull");
        let path = format!("v2/{repository}/manifests/{reference}");
        let accept = [("accept".to_string(), ACCEPT.to_string())];
        let budget = self.budget();
        let get = self.request("GET", &path, &scope, &accept, Payload::Empty, &budget);
        let resp = get.await?;
        match resp.status {
            200 => {}
            404 => {
                return Err(Error::NotFound(format!(
                    "manifest {display} not found at {}",
                    self.name
                )))
            }
            _ => return Err(self.status_error(&format!("manifest {display}"), resp)),
        }
        let content_type = resp.header("content-type").map(str::to_string);
        let bytes = resp
            .read_limited_async(MAX_MANIFEST_BYTES)
            .await
            .map_err(|e| {
                Error::Network(format!(
                    "reading manifest {display} from {}: {e}",
                    self.name
                ))
            })?;
        let mut manifest = RawManifest::parse(bytes, content_type.as_deref(), display)?;
        if let Ok(wanted) = Digest::parse(reference) {
            let actual = wanted.same_algorithm_of(&manifest.bytes);
            if actual != wanted {
                return Err(Error::DigestMismatch(format!(
                    "manifest {display} from {} has digest {actual}",
                    self.name
                )));
            }
            manifest.digest = actual;
        }
        Ok(manifest)
    }
}

/// `headers` with `authorization`, which goes only to the registry itself.
fn with_auth(
    mut headers: Vec<(String, String)>,
    auth: Option<String>,
    url: &Url,
    base: &Url,
) -> Vec<(String, String)> {
    if let (Some(a), true) = (auth, url.origin() == base.origin()) {
        headers.push(("authorization".into(), a));
    }
    headers
}

pub(super) fn ua() -> (String, String) {
    ("user-agent".into(), USER_AGENT.into())
}

/// The `message`s of a distribution error body, as `: CODE: message; …`.
fn error_detail(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        code: Option<String>,
        message: Option<String>,
    }
    match serde_json::from_slice::<Errors>(body) {
        Ok(e) if !e.errors.is_empty() => {
            let parts: Vec<String> = e
                .errors
                .iter()
                .map(|x| {
                    format!(
                        "{}: {}",
                        x.code.as_deref().unwrap_or("?"),
                        x.message.as_deref().unwrap_or("")
                    )
                })
                .collect();
            format!(": {}", parts.join("; "))
        }
        _ => String::new(),
    }
}
