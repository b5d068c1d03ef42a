//! The host's side of wasi:http: how the component's requests reach the
//! network. TLS trusts the system store (which honours `SSL_CERT_FILE`) plus
//! `--cert-dir` certificates; `--*-tls-verify=false` turns verification off
//! for the registries named on the command line only; HTTP/2 is negotiated by
//! ALPN; `HTTPS_PROXY`/`NO_PROXY` tunnel HTTPS through a proxy and
//! `HTTP_PROXY` forwards plain HTTP; a client certificate in `--cert-dir`
//! (`NAME.cert` and `NAME.key`) answers registries that ask for one.

use std::collections::HashSet;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, TlsAlertReceivedPayload};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::pool::Pool;
use sender::{send, Sent};

mod sender;

/// How requests leave the host.
pub struct Network {
    verified: Arc<ClientConfig>,
    unverified: Arc<ClientConfig>,
    /// Registry authorities (`host[:port]`) whose certificates are not checked.
    insecure: Vec<String>,
    /// `HTTPS_PROXY`: HTTPS requests go through a `CONNECT` tunnel.
    proxy: Option<Proxy>,
    /// `HTTP_PROXY`: plain HTTP requests go to it, in absolute form.
    http_proxy: Option<Proxy>,
    allowed: Arc<Mutex<AllowList>>,
    /// Connections kept open for the next request to the same origin.
    pool: Pool,
}

/// The hosts the component may reach: the registries named on the command
/// line, and the token realms and redirect targets that those (and hosts
/// learned so) name in their answers. Anything else is refused.
#[derive(Default, Debug)]
pub struct AllowList {
    hosts: HashSet<String>,
}

/// `host:port` of a URI, with the scheme's default port made explicit.
fn host_port(scheme: Option<&str>, host: &str, port: Option<u16>) -> String {
    let port = port.unwrap_or(if scheme == Some("http") { 80 } else { 443 });
    format!("{}:{port}", host.to_ascii_lowercase())
}

impl AllowList {
    /// Allows registry `authority` (`host[:port]`, as references name it) over
    /// either scheme.
    pub fn allow_registry(&mut self, authority: &str) {
        if let Ok(uri) = format!("https://{authority}/").parse::<http::Uri>() {
            let host = uri.host().unwrap_or_default();
            self.hosts
                .insert(host_port(Some("https"), host, uri.port_u16()));
            self.hosts
                .insert(host_port(Some("http"), host, uri.port_u16()));
        }
    }

    fn allows(&self, uri: &http::Uri) -> bool {
        uri.host().is_some_and(|h| {
            self.hosts
                .contains(&host_port(uri.scheme_str(), h, uri.port_u16()))
        })
    }

    /// Learns the realms and redirect targets an allowed host named.
    fn learn(&mut self, base: &http::Uri, headers: &http::HeaderMap) {
        let mut targets: Vec<String> = headers
            .get_all(http::header::LOCATION)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect();
        for v in headers.get_all(http::header::WWW_AUTHENTICATE).iter() {
            // The parser the guest uses: every challenge's realm, any case.
            let text = v.to_str().unwrap_or_default();
            targets.extend(
                imo_grammar::challenge::parse(text)
                    .into_iter()
                    .filter_map(|c| c.params.get("realm").cloned()),
            );
        }
        for t in targets {
            // Relative locations stay on the same host.
            if let Ok(uri) = t.parse::<http::Uri>() {
                if let Some(h) = uri.host() {
                    let scheme = uri.scheme_str().or(base.scheme_str());
                    self.hosts.insert(host_port(scheme, h, uri.port_u16()));
                }
            }
        }
    }
}

#[derive(Clone)]
struct Proxy {
    authority: String,
    no_proxy: Vec<String>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client certificate and its key, for registries that ask for one.
type ClientCert = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

fn client_config(roots: RootCertStore, client: Option<ClientCert>) -> Result<ClientConfig> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("TLS configuration")?
        .with_root_certificates(roots);
    let mut c = match client {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .context("unusable client certificate in --cert-dir")?,
        None => builder.with_no_client_auth(),
    };
    c.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(c)
}

/// The client certificate in `cert_dir`, as docker and podman keep one:
/// `NAME.cert` with its key in `NAME.key`.
fn client_cert(cert_dir: Option<&Path>) -> Result<Option<ClientCert>> {
    let Some(dir) = cert_dir else {
        return Ok(None);
    };
    let mut certs: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read --cert-dir {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("cert"))
        .collect();
    certs.sort();
    let Some(cert) = certs.into_iter().next() else {
        return Ok(None);
    };
    let key = cert.with_extension("key");
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| anyhow::anyhow!("{e:?}"))
        .with_context(|| format!("cannot read client certificate {}", cert.display()))?;
    if chain.is_empty() {
        bail!(
            "client certificate {} holds no PEM certificate",
            cert.display()
        );
    }
    let key = PrivateKeyDer::from_pem_file(&key)
        .map_err(|e| anyhow::anyhow!("{e:?}"))
        .with_context(|| {
            format!(
                "client certificate {} has no usable key in {}",
                cert.display(),
                key.display()
            )
        })?;
    Ok(Some((chain, key)))
}

/// The system's trust store (or the webpki roots where it is empty) plus
/// every `*.crt` in `cert_dir`.
fn roots(cert_dir: Option<&Path>) -> Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = store.add(cert);
    }
    if store.is_empty() {
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    if let Some(dir) = cert_dir {
        let entries = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read --cert-dir {}", dir.display()))?;
        for entry in entries {
            let path = entry
                .with_context(|| format!("cannot read --cert-dir {}", dir.display()))?
                .path();
            if path.extension().and_then(|e| e.to_str()) != Some("crt") {
                continue;
            }
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&path)
                .and_then(|it| it.collect::<Result<_, _>>())
                .map_err(|e| anyhow::anyhow!("{e:?}"))
                .with_context(|| format!("cannot read certificate {}", path.display()))?;
            if certs.is_empty() {
                bail!(
                    "certificate file {} holds no PEM certificate",
                    path.display()
                );
            }
            for cert in certs {
                store
                    .add(cert)
                    .with_context(|| format!("unusable certificate in {}", path.display()))?;
            }
        }
    }
    Ok(store)
}

/// Accepts any certificate: only for registries the user marked with
/// `--tls-verify=false`. Signatures are still checked.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn env_any(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok())
        .filter(|v| !v.is_empty())
}

impl Proxy {
    /// The proxy the first set of `names` gives, with `NO_PROXY`.
    fn from_env(names: &[&str]) -> Result<Option<Proxy>> {
        let Some(url) = env_any(names) else {
            return Ok(None);
        };
        let rest = url.strip_prefix("http://").unwrap_or(&url);
        let authority = rest.split('/').next().unwrap_or(rest).to_string();
        if authority.is_empty() || authority.contains('@') {
            bail!(
                "{} {url:?} is not supported: expected http://HOST:PORT",
                names[0]
            );
        }
        let authority = if authority.contains(':') {
            authority
        } else {
            format!("{authority}:80")
        };
        let no_proxy = env_any(&["NO_PROXY", "no_proxy"])
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().trim_start_matches('.').to_ascii_lowercase())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        Ok(Some(Proxy {
            authority,
            no_proxy,
        }))
    }

    fn applies_to(&self, host: &str) -> bool {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        !self
            .no_proxy
            .iter()
            .any(|n| n == "*" || host == *n || host.ends_with(&format!(".{n}")))
    }
}

impl Network {
    /// Trust `cert_dir` besides the system store; skip verification for
    /// `insecure`; reach only `allowed` and what it names.
    pub fn new(cert_dir: Option<&Path>, insecure: Vec<String>, allowed: AllowList) -> Result<Self> {
        let client = client_cert(cert_dir)?;
        let again = client.as_ref().map(|(c, k)| (c.clone(), k.clone_key()));
        let verified = Arc::new(client_config(roots(cert_dir)?, again)?);
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .context("TLS configuration")?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider())));
        let mut unverified = match client {
            Some((chain, key)) => builder
                .with_client_auth_cert(chain, key)
                .context("unusable client certificate in --cert-dir")?,
            None => builder.with_no_client_auth(),
        };
        unverified.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Network {
            verified,
            unverified: Arc::new(unverified),
            insecure,
            proxy: Proxy::from_env(&["HTTPS_PROXY", "https_proxy"])?,
            http_proxy: Proxy::from_env(&["HTTP_PROXY", "http_proxy"])?,
            allowed: Arc::new(Mutex::new(allowed)),
            pool: Pool::default(),
        })
    }

    /// A network that reaches nothing (an empty allow list), with the same
    /// TLS settings: for a worker, which makes no requests.
    pub fn sealed(&self) -> Network {
        Network {
            verified: self.verified.clone(),
            unverified: self.unverified.clone(),
            insecure: Vec::new(),
            proxy: None,
            http_proxy: None,
            allowed: Arc::new(Mutex::new(AllowList::default())),
            pool: Pool::default(),
        }
    }
}

fn is_cert_error(err: &io::Error) -> bool {
    matches!(
        err.get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>()),
        Some(rustls::Error::InvalidCertificate(_))
    )
}

impl WasiHttpHooks for Network {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = Sent> + Send> {
        let authority = request
            .uri()
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_default();
        let verified = !self.insecure.contains(&authority);
        let tls = if verified {
            self.verified.clone()
        } else {
            self.unverified.clone()
        };
        let proxy = self.proxy.clone();
        let http_proxy = self.http_proxy.clone();
        let allowed = self.allowed.clone();
        let permitted = allowed
            .lock()
            .map(|a| a.allows(request.uri()))
            .unwrap_or(false);
        if !permitted {
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        let pool = self.pool.clone();
        Box::new(async move {
            let uri = request.uri().clone();
            let (response, io) =
                send(request, options, (tls, verified), (proxy, http_proxy), pool).await?;
            if let Ok(mut a) = allowed.lock() {
                a.learn(&uri, response.headers());
            }
            Ok((response, io))
        })
    }

    fn p2_error_from_tls(&mut self, err: &io::Error) -> ErrorCode {
        let tls = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>());
        let text = err.get_ref().and_then(|e| e.downcast_ref::<AlertText>());
        match (tls, text) {
            (Some(rustls::Error::AlertReceived(alert)), _) => {
                ErrorCode::TlsAlertReceived(TlsAlertReceivedPayload {
                    alert_id: Some(u8::from(*alert)),
                    alert_message: Some(format!("{alert:?}")),
                })
            }
            (_, Some(AlertText(name))) => ErrorCode::TlsAlertReceived(TlsAlertReceivedPayload {
                alert_id: alert_id(name),
                alert_message: Some(name.clone()),
            }),
            _ if is_cert_error(err) => ErrorCode::TlsCertificateError,
            _ => ErrorCode::TlsProtocolError,
        }
    }
}

/// A TLS alert the server sent, by the name rustls gives it.
#[derive(Debug)]
struct AlertText(String);

impl std::fmt::Display for AlertText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "received fatal alert: {}", self.0)
    }
}

impl std::error::Error for AlertText {}

/// The number of a TLS alert rustls names (the ones a registry sends about
/// client certificates).
fn alert_id(name: &str) -> Option<u8> {
    use rustls::AlertDescription as A;
    [
        A::BadCertificate,
        A::UnsupportedCertificate,
        A::CertificateRevoked,
        A::CertificateExpired,
        A::CertificateUnknown,
        A::UnknownCA,
        A::AccessDenied,
        A::HandshakeFailure,
        A::CertificateRequired,
    ]
    .into_iter()
    .find(|a| format!("{a:?}") == name)
    .map(u8::from)
}

/// A failed exchange as wasi:http tells it; an alert the server sent after
/// the handshake (TLS 1.3 servers check client certificates then) stays a
/// TLS error, so the component knows the server speaks TLS.
fn tls_alert_or(e: hyper::Error) -> HttpError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = source {
        // io::Error's source() skips the error it wraps: look inside.
        let inner = s
            .downcast_ref::<io::Error>()
            .and_then(|io| io.get_ref())
            .map(|e| e as &(dyn std::error::Error + 'static));
        for candidate in [Some(s), inner].into_iter().flatten() {
            if let Some(rustls::Error::AlertReceived(alert)) =
                candidate.downcast_ref::<rustls::Error>()
            {
                return HttpError::Tls(io::Error::other(rustls::Error::AlertReceived(*alert)));
            }
            // tokio-rustls passes it on as text.
            if let Some(name) = candidate.to_string().strip_prefix("received fatal alert: ") {
                return HttpError::Tls(io::Error::other(AlertText(name.to_string())));
            }
        }
        source = s.source();
    }
    HttpError::from(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_proxy_rules() {
        let p = Proxy {
            authority: "proxy:3128".into(),
            no_proxy: vec!["example.com".into(), "10.0.0.1".into()],
        };
        assert!(p.applies_to("registry.io"));
        assert!(!p.applies_to("example.com"));
        assert!(!p.applies_to("r.example.com"));
        assert!(p.applies_to("notexample.com"));
        assert!(!p.applies_to("10.0.0.1"));
        let all = Proxy {
            authority: "proxy:3128".into(),
            no_proxy: vec!["*".into()],
        };
        assert!(!all.applies_to("anything"));
    }

    #[test]
    fn only_named_hosts_and_what_they_name_are_reachable() {
        let mut a = AllowList::default();
        a.allow_registry("127.0.0.1:5000");
        a.allow_registry("registry.example");
        let uri = |s: &str| s.parse::<http::Uri>().unwrap();
        assert!(a.allows(&uri("http://127.0.0.1:5000/v2/")));
        assert!(a.allows(&uri("https://registry.example/v2/")));
        assert!(a.allows(&uri("https://registry.example:443/v2/")));
        assert!(!a.allows(&uri("https://registry.example:8443/v2/")));
        assert!(!a.allows(&uri("http://127.0.0.1:5001/v2/")));
        assert!(!a.allows(&uri("https://elsewhere.example/")));
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::WWW_AUTHENTICATE,
            r#"Bearer realm="https://auth.example/token",service="r""#
                .parse()
                .unwrap(),
        );
        h.append(
            http::header::LOCATION,
            "http://blobs.example:9000/x".parse().unwrap(),
        );
        a.learn(&uri("https://registry.example/v2/"), &h);
        assert!(a.allows(&uri("https://auth.example/token?scope=x")));
        assert!(a.allows(&uri("http://blobs.example:9000/x")));
        assert!(!a.allows(&uri("https://blobs.example/x")));
    }

    #[test]
    fn cert_dir_problems_are_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bad.crt"), "not a certificate").unwrap();
        let err = roots(Some(dir.path())).err().unwrap();
        assert!(format!("{err:#}").contains("bad.crt"), "{err:#}");
        let err = roots(Some(&dir.path().join("missing"))).err().unwrap();
        assert!(format!("{err:#}").contains("missing"), "{err:#}");
    }
}
