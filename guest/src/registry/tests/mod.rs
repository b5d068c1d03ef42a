//! The client's flows against a scripted transport ([`super::fake`]): auth,
//! redirects, error bodies; `transfers` the retry policy with exact counts
//! of tries and resume offsets, `lookups` the registry source's lookups.

use std::io::{Cursor, Read};
use std::rc::Rc;
use std::time::Duration;

use super::fake::{ok, status, Fake, Reply};
use super::retry::Backoff;
use super::upload::{upload, Content};
use super::{download, error_detail, is_loopback, Registry};
use crate::bindings::imo::incremental::types::{BasicCredential, Credential, Role};
use crate::concurrent::{block_on, run_all, Blocking, Ready, Task};
use crate::error::{Error, Result};
use crate::manifest::Descriptor;

const REALM: &str = "https://auth.test/token";

/// A client for `name` over `fake`, waiting nothing between retries.
fn client(fake: &Rc<Fake>, name: &str, retries: u32, credential: Option<Credential>) -> Registry {
    let mut r = Registry::with_transport(name, Role::Final, false, retries, Box::new(fake.clone()));
    r.backoff = Backoff {
        first: Duration::ZERO,
        cap: Duration::ZERO,
    };
    *r.credential.borrow_mut() = Some(credential);
    r
}

fn bearer_at(fake: &Fake, realm: &str) {
    let challenge = format!(r#"Bearer realm="{realm}",service="reg""#);
    fake.ping(status(401, &[("www-authenticate", &challenge)]));
}

fn token(t: &str) -> Reply {
    ok(format!(r#"{{"token":"{t}","expires_in":300}}"#).as_bytes())
}

fn manifest_body() -> Vec<u8> {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{}","size":2}},"layers":[]}}"#,
        "0".repeat(64)
    )
    .into_bytes()
}

fn manifest_reply() -> Reply {
    Reply::Answer(
        200,
        vec![(
            "content-type",
            "application/vnd.oci.image.manifest.v1+json".into(),
        )],
        manifest_body(),
    )
}

fn blob(bytes: &[u8]) -> Descriptor {
    use crate::digest::{Digest, DigestOf};
    serde_json::from_value(serde_json::json!({
        "mediaType": "application/octet-stream",
        "digest": Digest::sha256_of(bytes).to_string(),
        "size": bytes.len(),
    }))
    .expect("descriptor")
}

fn push(reg: &Registry, bytes: &[u8], chunk: u64) -> Result<()> {
    let desc = blob(bytes);
    let data = bytes.to_vec();
    let open =
        move || -> Result<Content<'static>> { Ok(Box::new(Ready(Cursor::new(data.clone())))) };
    block_on(upload(reg, "r", &desc, &open, chunk))
}

fn pull(reg: &Registry, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    Blocking(download::open(reg, "r", &blob(bytes))).read_to_end(&mut out)?;
    Ok(out)
}

/// A registry without auth where every upload starts at the same place.
fn uploads() -> Rc<Fake> {
    let fake = Fake::new();
    fake.ping(ok(b"{}"))
        .always("POST", "/blobs/uploads/", upload_location(0));
    fake
}

fn upload_location(n: u32) -> Reply {
    let at = format!("/v2/r/blobs/uploads/u?_state={n}");
    status(202, &[("location", &at)])
}

#[test]
fn anonymous_tokens_are_fetched_per_repository_scope_and_reused() {
    let fake = Fake::new();
    bearer_at(&fake, REALM);
    fake.always("GET", "scope=repository%3Aa%3Apull", token("ta"))
        .always("GET", "scope=repository%3Ab%3Apull", token("tb"))
        .always("GET", "/manifests/", manifest_reply());
    let reg = client(&fake, "anon.test", 0, None);
    for (repo, tag) in [("a", "1"), ("b", "1"), ("a", "2")] {
        reg.manifest(repo, tag, repo).expect("manifest");
    }
    assert_eq!(fake.count("GET", "auth.test/token"), 2);
    assert_eq!(fake.count("GET", "/manifests/"), 3);
    let sent = fake.sent();
    let tokens: Vec<_> = sent
        .iter()
        .filter(|s| s.url.contains("auth.test"))
        .collect();
    assert!(tokens.iter().all(|s| s.header("authorization").is_none()));
    assert!(tokens.iter().all(|s| s.url.contains("service=reg")));
    let auths: Vec<_> = sent
        .iter()
        .filter(|s| s.url.contains("/manifests/"))
        .map(|s| s.header("authorization").unwrap_or("-").to_string())
        .collect();
    assert_eq!(auths, ["Bearer ta", "Bearer tb", "Bearer ta"]);
}

/// Fetches four manifests of `r` at once.
fn four_at_once(reg: &Registry) {
    let tags: Vec<String> = (0..4).map(|i| format!("t{i}")).collect();
    let fetches = tags
        .iter()
        .map(|t| Box::pin(reg.fetch_manifest("r", t, "r")) as Task<'_, _, Error>);
    assert_eq!(run_all(4, fetches).expect("manifests").len(), 4);
}

#[test]
fn transfers_starting_together_share_one_discovery() {
    let fake = Fake::new();
    fake.ping(ok(b"{}"))
        .always("GET", "/manifests/", manifest_reply());
    let reg = client(&fake, "together.test", 0, None);
    four_at_once(&reg);
    assert_eq!(fake.pings(), 1);
}

#[test]
fn transfers_starting_together_share_one_token() {
    let fake = Fake::new();
    bearer_at(&fake, REALM);
    fake.always("GET", "auth.test/token", token("t")).always(
        "GET",
        "/manifests/",
        manifest_reply(),
    );
    let reg = client(&fake, "together.test", 0, None);
    four_at_once(&reg);
    assert_eq!(fake.count("GET", "auth.test/token"), 1);
    assert_eq!(fake.count("GET", "/manifests/"), 4);
}

#[test]
fn a_password_goes_to_a_realm_on_another_host_never_further() {
    let fake = Fake::new();
    bearer_at(&fake, "https://auth.other.test:8443/token");
    fake.always("GET", "auth.other.test:8443/token", token("t"))
        .on(
            "GET",
            "/blobs/",
            1,
            status(307, &[("location", "https://cdn.test/b")]),
        )
        .always("GET", "cdn.test/b", ok(b"data"));
    let cred = Credential::Basic(BasicCredential {
        username: "alice".into(),
        password: "pw".into(),
    });
    let reg = client(&fake, "realm.test", 0, Some(cred));
    assert_eq!(pull(&reg, b"data").expect("blob"), b"data");
    let sent = fake.sent();
    let to = |host: &str| sent.iter().find(|s| s.url.contains(host)).expect(host);
    assert_eq!(
        to("auth.other.test").header("authorization"),
        Some("Basic YWxpY2U6cHc=")
    );
    assert_eq!(to("/blobs/").header("authorization"), Some("Bearer t"));
    assert_eq!(to("cdn.test").header("authorization"), None);
}

#[test]
fn basic_auth_when_the_registry_asks_for_it() {
    let fake = Fake::new();
    fake.ping(status(401, &[("www-authenticate", "Basic realm=\"r\"")]))
        .always("GET", "/manifests/", manifest_reply());
    let cred = Credential::Basic(BasicCredential {
        username: "alice".into(),
        password: "pw".into(),
    });
    let reg = client(&fake, "basic.test", 0, Some(cred));
    reg.manifest("a", "1", "a").expect("manifest");
    let get = fake.sent().pop().expect("sent");
    assert_eq!(get.header("authorization"), Some("Basic YWxpY2U6cHc="));
}

#[test]
fn an_identity_token_is_exchanged_with_a_form_post() {
    let fake = Fake::new();
    bearer_at(&fake, REALM);
    fake.always(
        "POST",
        "auth.test/token",
        ok(br#"{"access_token":"fresh"}"#),
    )
    .always("GET", "/manifests/", manifest_reply());
    let reg = client(
        &fake,
        "identity.test",
        0,
        Some(Credential::IdentityToken("R".into())),
    );
    reg.manifest("a", "1", "a").expect("manifest");
    let sent = fake.sent();
    let post = sent
        .iter()
        .find(|s| s.method == "POST")
        .expect("token POST");
    let form = String::from_utf8_lossy(&post.body);
    assert!(form.contains("grant_type=refresh_token") && form.contains("refresh_token=R"));
    assert!(form.contains("scope=repository%3Aa%3Apull") && form.contains("service=reg"));
    assert_eq!(
        sent.last().and_then(|s| s.header("authorization")),
        Some("Bearer fresh")
    );
}

#[test]
fn redirects_to_plain_http_and_redirect_loops_are_refused() {
    let fake = Fake::new();
    fake.ping(ok(b"{}")).always(
        "GET",
        "/blobs/sha256:",
        status(302, &[("location", "http://cdn.test/b")]),
    );
    let err = pull(&client(&fake, "down.test", 0, None), b"x").unwrap_err();
    assert!(
        err.to_string().contains("redirected from HTTPS to http"),
        "{err}"
    );

    let fake = Fake::new();
    fake.ping(ok(b"{}")).always(
        "GET",
        "/blobs/sha256:",
        status(307, &[("location", "/v2/r/blobs/sha256:again")]),
    );
    let err = pull(&client(&fake, "loop.test", 0, None), b"x").unwrap_err();
    assert!(err.to_string().contains("more than 10 times"), "{err}");
    assert_eq!(fake.count("GET", "/blobs/"), 11);
}

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

mod lookups;
mod transfers;
