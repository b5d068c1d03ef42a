//! An OCI distribution client over wasi:http: scheme discovery, Basic and
//! Bearer auth, manifests and blobs, redirects.

pub mod challenge;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use url::Url;

use crate::bindings::imo::incremental::credentials;
use crate::bindings::imo::incremental::types::{BasicCredential, Credential, Role};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::http::{self, Response};
use crate::manifest::{Descriptor, RawManifest, ACCEPT, MAX_MANIFEST_BYTES};
use crate::reference::DOCKER_HUB;

const MAX_REDIRECTS: usize = 10;
const MAX_TOKEN_BYTES: u64 = 1024 * 1024;
const MAX_ERROR_BYTES: u64 = 64 * 1024;
const USER_AGENT: &str = concat!("imo/", env!("CARGO_PKG_VERSION"));

/// What the registry asked for at `/v2/`.
#[derive(Debug, Clone)]
enum Auth {
    None,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// A client for one registry, acting in one role.
pub struct Registry {
    name: String,
    authority: String,
    role: Role,
    allow_plain: bool,
    base: Option<Url>,
    auth: Auth,
    credential: Option<Option<Credential>>,
    tokens: HashMap<String, (String, Option<Instant>)>,
}

/// Whether `registry` (host[:port]) is on this machine, where docker allows
/// plain HTTP.
pub fn is_loopback(registry: &str) -> bool {
    let host = if registry.starts_with('[') {
        registry.split(']').next().map(|h| &h[1..]).unwrap_or("")
    } else {
        registry.split(':').next().unwrap_or("")
    };
    host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
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
    /// A client for `registry` as written in a reference; `insecure` allows
    /// plain HTTP to it even if it is not on loopback.
    pub fn new(registry: &str, role: Role, insecure: bool) -> Self {
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
            base: None,
            auth: Auth::None,
            credential: None,
            tokens: HashMap::new(),
        }
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

    fn credential(&mut self) -> Option<Credential> {
        if self.credential.is_none() {
            self.credential = Some(credentials::lookup(&self.name, self.role));
        }
        self.credential.clone().flatten()
    }

    /// Finds the scheme that works and what auth `/v2/` asks for.
    fn connect(&mut self) -> Result<Url> {
        if let Some(base) = &self.base {
            return Ok(base.clone());
        }
        let try_scheme = |scheme: &str| -> Result<(Url, std::result::Result<Response, String>)> {
            let base = Url::parse(&format!("{scheme}://{}/", self.authority)).map_err(|e| {
                Error::InvalidReference(format!("invalid registry {}: {e}", self.name))
            })?;
            let ping = base
                .join("v2/")
                .map_err(|e| Error::Registry(e.to_string()))?;
            let resp = http::send("GET", &ping, &[ua()], None);
            Ok((base, resp))
        };
        let (base, resp) = match try_scheme("https")? {
            (base, Ok(resp)) => (base, resp),
            (_, Err(https_err)) if self.allow_plain => match try_scheme("http")? {
                (base, Ok(resp)) => (base, resp),
                (_, Err(http_err)) => {
                    return Err(Error::Network(format!(
                        "cannot reach registry {}: HTTPS: {https_err}; HTTP: {http_err}",
                        self.name
                    )))
                }
            },
            (_, Err(e)) => {
                return Err(Error::Network(format!(
                    "cannot reach registry {} over HTTPS: {e}",
                    self.name
                )))
            }
        };
        if resp.status == 401 {
            self.auth = self.auth_from(&resp);
        }
        self.base = Some(base.clone());
        Ok(base)
    }

    fn auth_from(&self, resp: &Response) -> Auth {
        let challenges: Vec<_> = resp
            .headers_named("www-authenticate")
            .flat_map(challenge::parse)
            .collect();
        if let Some(c) = challenges.iter().find(|c| c.scheme == "bearer") {
            if let Some(realm) = c.params.get("realm") {
                return Auth::Bearer {
                    realm: realm.clone(),
                    service: c.params.get("service").cloned(),
                };
            }
        }
        if challenges.iter().any(|c| c.scheme == "basic") {
            return Auth::Basic;
        }
        Auth::None
    }

    fn authorization(&mut self, scope: &str) -> Result<Option<String>> {
        match self.auth.clone() {
            Auth::None => Ok(None),
            Auth::Basic => match self.credential() {
                Some(Credential::Basic(b)) => Ok(Some(basic(&b))),
                Some(Credential::RegistryToken(t)) => Ok(Some(format!("Bearer {t}"))),
                _ => Err(self.unauthorized(" (Basic auth needs a username and password)")),
            },
            Auth::Bearer { realm, service } => {
                if let Some((token, expiry)) = self.tokens.get(scope) {
                    if expiry.is_none_or(|e| Instant::now() < e) {
                        return Ok(Some(format!("Bearer {token}")));
                    }
                }
                let token = self.fetch_token(&realm, service.as_deref(), scope)?;
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    fn fetch_token(&mut self, realm: &str, service: Option<&str>, scope: &str) -> Result<String> {
        let mut url = Url::parse(realm).map_err(|e| {
            Error::Registry(format!(
                "registry {} named an invalid token realm {realm:?}: {e}",
                self.name
            ))
        })?;
        let credential = self.credential();
        let resp = match &credential {
            Some(Credential::RegistryToken(t)) => return Ok(t.clone()),
            Some(Credential::IdentityToken(refresh)) => {
                let mut form = url::form_urlencoded::Serializer::new(String::new());
                form.append_pair("grant_type", "refresh_token")
                    .append_pair("refresh_token", refresh)
                    .append_pair("client_id", "imo")
                    .append_pair("scope", scope);
                if let Some(s) = service {
                    form.append_pair("service", s);
                }
                let body = form.finish();
                let headers = [
                    ua(),
                    (
                        "content-type".into(),
                        "application/x-www-form-urlencoded".into(),
                    ),
                ];
                http::send("POST", &url, &headers, Some(body.as_bytes()))
            }
            other => {
                {
                    let mut q = url.query_pairs_mut();
                    if let Some(s) = service {
                        q.append_pair("service", s);
                    }
                    q.append_pair("scope", scope);
                }
                let mut headers = vec![ua()];
                if let Some(Credential::Basic(b)) = other {
                    headers.push(("authorization".into(), basic(b)));
                }
                http::send("GET", &url, &headers, None)
            }
        }
        .map_err(|e| {
            Error::Network(format!(
                "cannot reach the token server of {} at {}: {e}",
                self.name,
                url.host_str().unwrap_or("?")
            ))
        })?;
        if resp.status == 401 || resp.status == 403 {
            return Err(self.unauthorized(""));
        }
        if resp.status != 200 {
            return Err(Error::Registry(format!(
                "token server of {} answered {}",
                self.name, resp.status
            )));
        }
        let body = resp
            .read_limited(MAX_TOKEN_BYTES)
            .map_err(|e| Error::Network(format!("reading a token from {}: {e}", self.name)))?;
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
            expires_in: Option<u64>,
        }
        let parsed: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
            Error::Registry(format!(
                "token server of {} sent invalid JSON: {e}",
                self.name
            ))
        })?;
        let token = parsed
            .token
            .or(parsed.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Error::Registry(format!("token server of {} sent no token", self.name))
            })?;
        // Renew a little early; the spec's default lifetime is 60 s.
        let lifetime = parsed.expires_in.unwrap_or(60).saturating_sub(10).max(1);
        let expiry = Instant::now().checked_add(Duration::from_secs(lifetime));
        self.tokens
            .insert(scope.to_string(), (token.clone(), expiry));
        Ok(token)
    }

    /// Sends a request for `path` (below the registry root) with auth for
    /// `scope`, following redirects; retries once after a 401 with a fresh token.
    fn request(
        &mut self,
        method: &str,
        path: &str,
        scope: &str,
        extra: &[(String, String)],
    ) -> Result<Response> {
        let base = self.connect()?;
        let url = base
            .join(path)
            .map_err(|e| Error::Registry(format!("invalid path {path}: {e}")))?;
        for attempt in 0..2 {
            let mut headers = vec![ua()];
            headers.extend_from_slice(extra);
            let auth = self.authorization(scope)?;
            let resp = self.send_following(method, &url, &base, &headers, auth)?;
            if resp.status == 401 && attempt == 0 {
                self.tokens.remove(scope);
                let fresh = self.auth_from(&resp);
                if !matches!(fresh, Auth::None) {
                    self.auth = fresh;
                }
                continue;
            }
            if resp.status == 401 || (resp.status == 403 && !matches!(self.auth, Auth::None)) {
                return Err(self.unauthorized(&format!(" ({method} {})", url.path())));
            }
            return Ok(resp);
        }
        Err(self.unauthorized(""))
    }

    fn send_following(
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
            let resp = http::send(method, &url, &h, None).map_err(|e| {
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
        &mut self,
        repository: &str,
        reference: &str,
        display: &str,
    ) -> Result<RawManifest> {
        let scope = format!("repository:{repository}:pull");
        let path = format!("v2/{repository}/manifests/{reference}");
        let resp = self.request("GET", &path, &scope, &[("accept".into(), ACCEPT.into())])?;
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
        let bytes = resp.read_limited(MAX_MANIFEST_BYTES).map_err(|e| {
            Error::Network(format!(
                "reading manifest {display} from {}: {e}",
                self.name
            ))
        })?;
        let manifest = RawManifest::parse(bytes, content_type.as_deref(), display)?;
        if let Ok(wanted) = Digest::parse(reference) {
            let actual = wanted.same_algorithm_of(&manifest.bytes);
            if actual != wanted {
                return Err(Error::DigestMismatch(format!(
                    "manifest {display} from {} has digest {actual}",
                    self.name
                )));
            }
        }
        Ok(manifest)
    }

    /// Opens blob `desc` of `repository` for streaming; the caller verifies it.
    pub fn blob(&mut self, repository: &str, desc: &Descriptor) -> Result<http::Body> {
        let scope = format!("repository:{repository}:pull");
        let path = format!("v2/{repository}/blobs/{}", desc.digest);
        let resp = self.request("GET", &path, &scope, &[])?;
        match resp.status {
            200 => Ok(resp.body),
            404 => Err(Error::NotFound(format!(
                "blob {} not found in {}/{repository}",
                desc.digest, self.name
            ))),
            _ => Err(self.status_error(&format!("blob {}", desc.digest), resp)),
        }
    }
}

fn ua() -> (String, String) {
    ("user-agent".into(), USER_AGENT.into())
}

fn basic(b: &BasicCredential) -> String {
    let raw = format!("{}:{}", b.username, b.password);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries() {
        for r in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
            "[::1]",
        ] {
            assert!(is_loopback(r), "{r}");
        }
        for r in [
            "example.com",
            "10.0.0.1:5000",
            "[::2]:5000",
            "localhost.example.com",
        ] {
            assert!(!is_loopback(r), "{r}");
        }
    }

    #[test]
    fn distribution_error_bodies() {
        let body =
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
        assert_eq!(error_detail(body), ": MANIFEST_UNKNOWN: manifest unknown");
        assert_eq!(error_detail(b"<html>"), "");
    }

    #[test]
    fn basic_header() {
        let b = BasicCredential {
            username: "aladdin".into(),
            password: "opensesame".into(),
        };
        assert_eq!(basic(&b), "Basic YWxhZGRpbjpvcGVuc2VzYW1l");
    }
}
