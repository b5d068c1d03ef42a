//! Auth for harness registries: a CA and server certificate for 127.0.0.1,
//! an htpasswd file, and a small Bearer token server whose ES256 tokens the
//! distribution server accepts (`auth.token` with an `x5c` chain rooted in
//! `rootcertbundle`).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde_json::json;

use super::Config;

/// A CA and a certificate it signed for 127.0.0.1 / localhost.
pub struct Tls {
    /// Holds `ca.crt` (as skopeo's and imo's `--cert-dir` expect), `server.crt`, `server.key`.
    pub dir: tempfile::TempDir,
}

impl Tls {
    pub fn generate() -> Tls {
        Tls::generate_for(&["localhost"], true)
    }

    /// A certificate for `names` (and 127.0.0.1 if `loopback_ip`).
    pub fn generate_for(names: &[&str], loopback_ip: bool) -> Tls {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "imo test CA");
        let ca_cert = ca.self_signed(&ca_key).expect("CA cert");
        let key = rcgen::KeyPair::generate().expect("server key");
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names).expect("server params");
        if loopback_ip {
            params
                .subject_alt_names
                .push(rcgen::SanType::IpAddress("127.0.0.1".parse().expect("ip")));
        }
        let cert = params
            .signed_by(&key, &ca_cert, &ca_key)
            .expect("server cert");
        std::fs::write(dir.path().join("ca.crt"), ca_cert.pem()).expect("write CA");
        std::fs::write(dir.path().join("server.cert"), cert.pem()).expect("write cert");
        std::fs::write(dir.path().join("server.key"), key.serialize_pem()).expect("write key");
        Tls { dir }
    }

    /// A CA for client certificates, and a `--cert-dir` holding this
    /// server's CA and a client certificate (`client.cert`, `client.key`)
    /// signed by that CA, as docker and podman keep them.
    pub fn client_cert_dir(&self, name: &str) -> (PathBuf, PathBuf) {
        let ca_key = rcgen::KeyPair::generate().expect("client CA key");
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, format!("imo client CA {name}"));
        let ca_cert = ca.self_signed(&ca_key).expect("client CA");
        let key = rcgen::KeyPair::generate().expect("client key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "imo test client");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params
            .signed_by(&key, &ca_cert, &ca_key)
            .expect("client cert");
        let d = self.dir.path().join(name);
        std::fs::create_dir_all(&d).expect("cert dir");
        std::fs::copy(self.dir.path().join("ca.crt"), d.join("ca.crt")).expect("copy CA");
        std::fs::write(d.join("client.cert"), cert.pem()).expect("write client cert");
        std::fs::write(d.join("client.key"), key.serialize_pem()).expect("write client key");
        let ca_file = self.dir.path().join(format!("{name}-client-ca.pem"));
        std::fs::write(&ca_file, ca_cert.pem()).expect("write client CA");
        (d, ca_file)
    }

    /// A directory holding only the CA certificate, for `--cert-dir`.
    pub fn cert_dir(&self) -> PathBuf {
        let d = self.dir.path().join("certs");
        std::fs::create_dir_all(&d).expect("cert dir");
        std::fs::copy(self.dir.path().join("ca.crt"), d.join("ca.crt")).expect("copy CA");
        d
    }

    /// Registry configuration serving HTTPS with this certificate.
    pub fn config(&self) -> Config {
        Config {
            tls: Some((
                self.dir.path().join("server.cert"),
                self.dir.path().join("server.key"),
            )),
            ..Config::default()
        }
    }
}

/// An htpasswd file (bcrypt, as the distribution server requires).
pub fn htpasswd(dir: &Path, user: &str, password: &str) -> PathBuf {
    let hash = bcrypt::hash(password, 4).expect("bcrypt");
    let path = dir.join("htpasswd");
    std::fs::write(&path, format!("{user}:{hash}\n")).expect("write htpasswd");
    path
}

/// `auth: htpasswd` configuration.
pub fn htpasswd_config(file: &Path) -> String {
    format!(
        "auth:\n  htpasswd:\n    realm: imo-test\n    path: {}\n",
        file.display()
    )
}

/// A token server on 127.0.0.1; stops when the test process ends.
pub struct TokenServer {
    pub port: u16,
    dir: tempfile::TempDir,
    /// The scopes of every token request, in order.
    pub requests: Arc<Mutex<Vec<String>>>,
}

const SERVICE: &str = "imo-test-registry";
/// The refresh token (docker's `identitytoken`) the server accepts.
pub const REFRESH_TOKEN: &str = "refresh-token-for-alice";
const ISSUER: &str = "imo-test-issuer";

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl TokenServer {
    /// Grants every requested scope to `user`:`password` (or to anyone if
    /// `user` is None).
    pub fn start(user: Option<(&str, &str)>) -> TokenServer {
        TokenServer::start_expiring(user, 300, 300)
    }

    /// As `start`, with tokens the registry honours for `valid` seconds
    /// while the answer claims `claimed` (`expires_in`): a client that
    /// trusts the claim meets the expiry as a 401 mid-transfer.
    pub fn start_expiring(user: Option<(&str, &str)>, valid: u64, claimed: u64) -> TokenServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = rcgen::KeyPair::generate().expect("token key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "imo test token signer");
        let cert = params.self_signed(&key).expect("token cert");
        std::fs::write(dir.path().join("token.crt"), cert.pem()).expect("write token cert");
        let rng = ring::rand::SystemRandom::new();
        let signer = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &key.serialize_der(),
            &rng,
        )
        .expect("signing key");
        let x5c = base64::engine::general_purpose::STANDARD.encode(cert.der());
        let expected = user.map(|(u, p)| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        });
        let subject = user.map(|(u, _)| u.to_string()).unwrap_or_default();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind token server");
        let port = listener.local_addr().expect("addr").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { break };
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let mut auth = None;
                let mut length = 0usize;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                        break;
                    }
                    if let Some((name, value)) = h.split_once(':') {
                        if name.eq_ignore_ascii_case("authorization") {
                            auth = Some(value.trim().to_string());
                        }
                        if name.eq_ignore_ascii_case("content-length") {
                            length = value.trim().parse().unwrap_or(0);
                        }
                    }
                }
                let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                let url = url::Url::parse(&format!("http://x{target}")).expect("url");
                let mut params: Vec<(String, String)> = url
                    .query_pairs()
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect();
                // OAuth2 refresh: a POST with a form body.
                if line.starts_with("POST") {
                    let mut body = vec![0u8; length.min(64 * 1024)];
                    let _ = std::io::Read::read_exact(&mut reader, &mut body);
                    params.extend(
                        url::form_urlencoded::parse(&body)
                            .map(|(k, v)| (k.into_owned(), v.into_owned())),
                    );
                }
                let param = |name: &str| -> Vec<String> {
                    params
                        .iter()
                        .filter(|(k, _)| k == name)
                        .map(|(_, v)| v.clone())
                        .collect()
                };
                let scopes: Vec<String> = param("scope")
                    .iter()
                    .flat_map(|s| s.split(' ').map(str::to_string).collect::<Vec<_>>())
                    .collect();
                log.lock().expect("log").push(scopes.join(" "));
                let refreshed = param("grant_type") == ["refresh_token"]
                    && param("refresh_token") == [REFRESH_TOKEN];
                if expected.is_some() && auth != expected && !refreshed {
                    let _ = stream.write_all(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                    continue;
                }
                let access: Vec<serde_json::Value> = scopes
                    .iter()
                    .filter_map(|s| {
                        let mut parts = s.splitn(3, ':');
                        let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
                        Some(json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
                    })
                    .collect();
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("clock")
                    .as_secs();
                let header = json!({"typ": "JWT", "alg": "ES256", "x5c": [x5c]});
                // The distribution server allows 60 s of clock skew past exp.
                let claims = json!({
                    "iss": ISSUER, "sub": subject, "aud": SERVICE,
                    "exp": (now + valid).saturating_sub(60), "nbf": now - 10, "iat": now, "jti": format!("{now}-{port}"),
                    "access": access,
                });
                let signing_input = format!(
                    "{}.{}",
                    b64url(header.to_string().as_bytes()),
                    b64url(claims.to_string().as_bytes())
                );
                let sig = signer.sign(&rng, signing_input.as_bytes()).expect("sign");
                let token = format!("{signing_input}.{}", b64url(sig.as_ref()));
                // Refresh grants answer as OAuth2 does, with access_token.
                let body = if refreshed {
                    json!({"access_token": token, "expires_in": claimed})
                } else {
                    json!({"token": token, "expires_in": claimed})
                }
                .to_string();
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        TokenServer {
            port,
            dir,
            requests,
        }
    }

    /// `auth: token` configuration for a registry trusting this server.
    pub fn config(&self) -> String {
        format!(
            "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
            self.port,
            self.dir.path().join("token.crt").display()
        )
    }
}
