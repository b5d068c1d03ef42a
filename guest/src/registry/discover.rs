//! Scheme discovery: which of HTTPS and (where allowed) plain HTTP a
//! registry answers on, and what auth its `/v2/` asks for — once per
//! registry for every role, one transfer at a time.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use url::Url;

use super::auth::Auth;
use super::retry::{retry_after, transient, Budget};
use super::{ua, Registry};
use crate::bindings::imo::incremental::types::Role;
use crate::concurrent;
use crate::error::{Error, Result};
use crate::http::{self, Response};

/// Clears a flag when dropped, however the future holding it ends.
struct Unset<'a>(&'a Cell<bool>);

impl Drop for Unset<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

thread_local! {
    /// Per registry authority (and whether plain HTTP may be tried), the
    /// base URL whose scheme answered and the challenge `/v2/` gave: the
    /// registry's, whichever role asks. Kept for the component's life.
    static DISCOVERED: RefCell<HashMap<(String, bool), (Url, Auth)>> =
        RefCell::new(HashMap::new());
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

fn tls_flag(role: Role) -> &'static str {
    match role {
        Role::Base | Role::Final => "--src-tls-verify",
        Role::Destination => "--dest-tls-verify",
    }
}

impl Registry {
    /// Finds the scheme that works and what auth `/v2/` asks for, once per
    /// registry: clients in other roles reuse what the first one learned.
    /// A transient answer to the ping is retried from `budget`; a failed
    /// connection is not (a wrong address fails at once).
    pub(super) async fn connect(&self, budget: &Budget) -> Result<Url> {
        // Transfers starting together wait for the first one's discovery.
        while self.discovering.get() {
            concurrent::yield_now().await;
        }
        if let Some(base) = self.base.borrow().clone() {
            return Ok(base);
        }
        self.discovering.set(true);
        let _done = Unset(&self.discovering);
        let key = (self.authority.clone(), self.allow_plain);
        let known = DISCOVERED.with(|d| d.borrow().get(&key).cloned());
        if let Some((base, auth)) = known {
            *self.auth.borrow_mut() = auth;
            *self.base.borrow_mut() = Some(base.clone());
            return Ok(base);
        }
        let (base, mut resp) = match self.ping("https").await? {
            (base, Ok(resp)) => (base, resp),
            // A certificate problem means the server speaks TLS: plain HTTP is no way out.
            (_, Err(e)) if e.to_string().contains(http::TLS_ALERT) => {
                return Err(Error::Network(format!(
                    "cannot reach registry {} over HTTPS: {e}",
                    self.name
                )))
            }
            (_, Err(e)) if e.to_string().contains(http::UNTRUSTED_CERTIFICATE) => {
                return Err(Error::Network(format!(
                    "cannot reach registry {} over HTTPS: {e}: trust its CA with --cert-dir, or skip verification with {}=false",
                    self.name,
                    tls_flag(self.role)
                )))
            }
            (_, Err(https_err)) if self.allow_plain => match self.ping("http").await? {
                // A TLS server answers plain HTTP with 400: the HTTPS failure
                // is the one to tell.
                (_, Ok(resp)) if resp.status == 400 => {
                    return Err(Error::Network(format!(
                        "cannot reach registry {} over HTTPS: {https_err} (it speaks only HTTPS; if it wants a client certificate, put NAME.cert and NAME.key in --cert-dir)",
                        self.name
                    )))
                }
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
        while transient(resp.status) && budget.retry(retry_after(&resp)).await {
            let scheme = base.scheme().to_string();
            resp =
                self.ping(&scheme).await?.1.map_err(|e| {
                    Error::Network(format!("cannot reach registry {}: {e}", self.name))
                })?;
        }
        if transient(resp.status) {
            return Err(self.status_error("GET /v2/", resp));
        }
        if resp.status == 401 {
            *self.auth.borrow_mut() = self.auth_from(&resp);
        }
        *self.base.borrow_mut() = Some(base.clone());
        let learned = (base.clone(), self.auth.borrow().clone());
        DISCOVERED.with(|d| d.borrow_mut().insert(key, learned));
        Ok(base)
    }

    /// `GET /v2/` over `scheme`: the base URL, and the answer or why none came.
    async fn ping(
        &self,
        scheme: &str,
    ) -> Result<(Url, std::result::Result<Response, http::SendError>)> {
        let base = Url::parse(&format!("{scheme}://{}/", self.authority))
            .map_err(|e| Error::InvalidReference(format!("invalid registry {}: {e}", self.name)))?;
        let ping = base
            .join("v2/")
            .map_err(|e| Error::Registry(e.to_string()))?;
        let resp = self.transport.send("GET", &ping, &[ua()], None).await;
        Ok((base, resp))
    }
}
