//! Registry auth: the `/v2/` challenge, HTTP Basic, and the Bearer token
//! flow (anonymous, Basic-authenticated, or an OAuth2 refresh token).

use std::cell::RefCell;
use std::collections::HashSet;
use std::time::{Duration, Instant};

use base64::Engine as _;
use url::Url;

use super::retry::{retry_after, transient, Budget};
use super::{challenge, ua, Registry, MAX_TOKEN_BYTES};
use crate::bindings::imo::incremental::types::{BasicCredential, Credential};
use crate::concurrent::{self, Ready};
use crate::error::{Error, Result};
use crate::http::Response;

/// What the registry asked for at `/v2/`.
#[derive(Debug, Clone)]
pub(super) enum Auth {
    None,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// Marks a scope's token as being fetched while it lives.
struct Fetching<'a>(&'a RefCell<HashSet<String>>, &'a str);

impl Drop for Fetching<'_> {
    fn drop(&mut self) {
        self.0.borrow_mut().remove(self.1);
    }
}

impl Registry {
    pub(super) fn auth_from(&self, resp: &Response) -> Auth {
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

    /// After a 401: the token for `scope` is stale, and the challenge may
    /// name another realm or scheme.
    pub(super) fn renew(&self, scope: &str, resp: &Response) {
        self.tokens.borrow_mut().remove(scope);
        let fresh = self.auth_from(resp);
        if !matches!(fresh, Auth::None) {
            *self.auth.borrow_mut() = fresh;
        }
    }

    /// The `Authorization` value for a request in `scope`, fetching a
    /// token if the registry wants one and none is cached.
    pub(super) async fn authorization(
        &self,
        scope: &str,
        budget: &Budget,
    ) -> Result<Option<String>> {
        let auth = self.auth.borrow().clone();
        match auth {
            Auth::None => Ok(None),
            Auth::Basic => match self.credential() {
                Some(Credential::Basic(b)) => Ok(Some(basic(&b))),
                Some(Credential::RegistryToken(t)) => Ok(Some(format!("Bearer {t}"))),
                _ => Err(self.unauthorized(" (Basic auth needs a username and password)")),
            },
            Auth::Bearer { realm, service } => {
                // Transfers starting together wait for the first one's
                // token for their scope (if it fails, each tries in turn).
                loop {
                    let cached = self.tokens.borrow().get(scope).cloned();
                    if let Some((token, expiry)) = cached {
                        if expiry.is_none_or(|e| Instant::now() < e) {
                            return Ok(Some(format!("Bearer {token}")));
                        }
                    }
                    if !self.fetching.borrow().contains(scope) {
                        break;
                    }
                    concurrent::yield_now().await;
                }
                self.fetching.borrow_mut().insert(scope.to_string());
                let _done = Fetching(&self.fetching, scope);
                let token = self
                    .fetch_token(&realm, service.as_deref(), scope, budget)
                    .await?;
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        budget: &Budget,
    ) -> Result<String> {
        let mut url = Url::parse(realm).map_err(|e| {
            Error::Registry(format!(
                "registry {} named an invalid token realm {realm:?}: {e}",
                self.name
            ))
        })?;
        let credential = self.credential();
        // An identity token is exchanged with a form POST; anything else asks
        // with GET, a password going along as Basic auth.
        let (method, form, headers) = match &credential {
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
                let form = form.finish();
                let headers = vec![
                    ua(),
                    (
                        "content-type".into(),
                        "application/x-www-form-urlencoded".into(),
                    ),
                    ("content-length".into(), form.len().to_string()),
                ];
                ("POST", Some(form), headers)
            }
            other => {
                {
                    let mut q = url.query_pairs_mut();
                    if let Some(s) = service {
                        q.append_pair("service", s);
                    }
                    // Several scopes (a mount needs two) go as repeated parameters.
                    for one in scope.split(' ') {
                        q.append_pair("scope", one);
                    }
                }
                let mut headers = vec![ua()];
                if let Some(Credential::Basic(b)) = other {
                    headers.push(("authorization".into(), basic(b)));
                }
                ("GET", None, headers)
            }
        };
        let resp = loop {
            let mut body = form.as_deref().map(|f| Ready(f.as_bytes()));
            let body = body
                .as_mut()
                .map(|b| b as &mut dyn crate::concurrent::PollRead);
            match self.transport.send(method, &url, &headers, body).await {
                Ok(resp) if transient(resp.status) && budget.retry(retry_after(&resp)).await => {}
                Ok(resp) => break resp,
                Err(_) if budget.retry(None).await => {}
                Err(e) => {
                    return Err(Error::Network(format!(
                        "cannot reach the token server of {} at {}: {e}{}",
                        self.name,
                        match (url.host_str(), url.port()) {
                            (Some(h), Some(p)) => format!("{h}:{p}"),
                            (h, None) => h.unwrap_or("?").to_string(),
                            (None, Some(_)) => "?".to_string(),
                        },
                        budget.after()
                    )))
                }
            }
        };
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
            .read_limited_async(MAX_TOKEN_BYTES)
            .await
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
            .borrow_mut()
            .insert(scope.to_string(), (token.clone(), expiry));
        Ok(token)
    }
}

pub(super) fn basic(b: &BasicCredential) -> String {
    let raw = format!("{}:{}", b.username, b.password);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header() {
        let b = BasicCredential {
            username: "aladdin".into(),
            password: "opensesame".into(),
        };
        assert_eq!(basic(&b), "Basic YWxhZGRpbjpvcGVuc2VzYW1l");
    }
}
