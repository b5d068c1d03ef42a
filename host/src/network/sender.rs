//! Sending one request: a pooled connection to its origin or a new one
//! (TCP, a `CONNECT` tunnel or a forwarding proxy; TLS; HTTP/2 if ALPN
//! chose it), the request shaped for that connection, timeouts for the
//! connection, the first byte and the gaps between bytes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody};

use super::{tls_alert_or, Proxy};
use crate::pool::{Origin, Pool, Sender};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// A response, and a future that reports how sending the request body ended.
pub(super) type Sent = Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ),
    HttpError,
>;

trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// Opens a tunnel to `target` through an HTTP proxy.
async fn connect_via(proxy: &str, target: &str) -> Result<TcpStream, HttpError> {
    let mut s = TcpStream::connect(proxy)
        .await
        .map_err(HttpError::Connect)?;
    let hello = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
    s.write_all(hello.as_bytes())
        .await
        .map_err(HttpError::Connect)?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 16 * 1024 || s.read(&mut byte).await.map_err(HttpError::Connect)? == 0 {
            return Err(HttpError::DestinationUnavailable);
        }
        head.push(byte[0]);
    }
    let status = String::from_utf8_lossy(&head);
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(HttpError::HttpRequestDenied);
    }
    Ok(s)
}

#[derive(Clone)]
struct Executor;

impl<F> hyper::rt::Executor<F> for Executor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        tokio::spawn(fut);
    }
}

/// A response body that fails if the server goes quiet for too long.
struct Quiet {
    inner: hyper::body::Incoming,
    limit: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl http_body::Body for Quiet {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, HttpError>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let deadline = tokio::time::Instant::now() + self.limit;
                self.timer.as_mut().reset(deadline);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(HttpError::from(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match self.timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
}

/// Sends `req` on a pooled connection to its origin, or a new one; a
/// request that a reused connection could not take (the server closed it
/// meanwhile) goes once more on a fresh connection.
pub(super) async fn send(
    mut req: http::Request<WasiBody>,
    options: Option<RequestOptions>,
    (tls, verified): (Arc<ClientConfig>, bool),
    (proxy, http_proxy): (Option<Proxy>, Option<Proxy>),
    pool: Pool,
) -> Sent {
    let uri = req.uri().clone();
    let use_tls = uri.scheme_str() == Some("https");
    let host = uri
        .host()
        .ok_or(HttpError::HttpRequestUriInvalid)?
        .to_string();
    let port = uri.port_u16().unwrap_or(if use_tls { 443 } else { 80 });
    let target = format!(
        "{}:{port}",
        if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.clone()
        }
    );
    let opt = |f: fn(&RequestOptions) -> Option<Duration>| {
        options.as_ref().and_then(f).unwrap_or(DEFAULT_TIMEOUT)
    };
    let (connect_timeout, first_byte, between) = (
        opt(|o| o.connect_timeout),
        opt(|o| o.first_byte_timeout),
        opt(|o| o.between_bytes_timeout),
    );
    let tunnel = proxy.filter(|p| use_tls && p.applies_to(&host));
    let forward = http_proxy.filter(|p| !use_tls && p.applies_to(&host));
    let origin = Origin {
        target: target.clone(),
        tls: use_tls,
        verified,
        via: tunnel
            .as_ref()
            .or(forward.as_ref())
            .map(|p| p.authority.clone()),
    };
    let way = Way {
        host: &host,
        target: &target,
        tls: use_tls.then_some(tls),
        tunnel: tunnel.as_ref(),
        forward: forward.as_ref(),
    };

    let mut reuse = true;
    loop {
        let pooled = if reuse { pool.take(&origin) } else { None };
        let (sender, fresh) = match pooled {
            Some(sender) => (sender, None),
            None => {
                let gate = pool.opening(&origin);
                let _opening = match &gate {
                    Some(g) => Some(g.lock().await),
                    None => None,
                };
                // Another request may have opened an HTTP/2 connection meanwhile.
                match pool.take(&origin).filter(|_| reuse) {
                    Some(sender) => (sender, None),
                    None => {
                        let (sender, task) = tokio::time::timeout(connect_timeout, way.open())
                            .await
                            .map_err(|_| HttpError::ConnectionTimeout)??;
                        pool.opened(&origin, &sender);
                        (sender, Some(task))
                    }
                }
            }
        };
        shape(&mut req, &uri, sender.is_h2(), forward.is_some())?;
        let sent = match sender {
            Sender::H1(mut s) => {
                let response = s.try_send_request(req);
                pool.put_back(&origin, s);
                tokio::time::timeout(first_byte, response).await
            }
            Sender::H2(mut s) => tokio::time::timeout(first_byte, s.try_send_request(req)).await,
        };
        let mut failed = match sent.map_err(|_| HttpError::ConnectionReadTimeout)? {
            Ok(response) => {
                let response = response.map(|inner| {
                    Quiet {
                        inner,
                        limit: between,
                        timer: Box::pin(tokio::time::sleep(between)),
                    }
                    .boxed_unsync()
                });
                return Ok((response, Box::new(async { Ok(()) })));
            }
            Err(failed) => failed,
        };
        match (fresh, failed.take_message()) {
            (None, Some(unsent)) if reuse => {
                req = unsent;
                reuse = false;
            }
            (None, _) => return Err(tls_alert_or(failed.into_error())),
            (Some(conn), _) => {
                // The connection's own failure says more (a TLS alert the
                // server sent after the handshake) than the request's.
                let e = failed.into_error();
                let why = tokio::time::timeout(Duration::from_secs(1), conn).await;
                return Err(match why {
                    Ok(Ok(Err(conn_err))) => match tls_alert_or(conn_err) {
                        tls @ HttpError::Tls(_) => tls,
                        _ => tls_alert_or(e),
                    },
                    _ => tls_alert_or(e),
                });
            }
        }
    }
}

/// How a new connection to one origin is made.
struct Way<'a> {
    host: &'a str,
    target: &'a str,
    tls: Option<Arc<ClientConfig>>,
    tunnel: Option<&'a Proxy>,
    forward: Option<&'a Proxy>,
}

impl Way<'_> {
    /// Connects, handshakes (TLS, then HTTP/2 if ALPN chose it) and starts
    /// the connection's task, whose result tells why it ended.
    async fn open(&self) -> Result<(Sender, JoinHandle<hyper::Result<()>>), HttpError> {
        let tcp = match (self.tunnel, self.forward) {
            (Some(p), _) => connect_via(&p.authority, self.target).await?,
            (None, Some(p)) => TcpStream::connect(&p.authority)
                .await
                .map_err(HttpError::Connect)?,
            (None, None) => TcpStream::connect(self.target)
                .await
                .map_err(HttpError::Connect)?,
        };
        // A reused connection's request head and body go as separate small
        // writes: Nagle would hold one back for the peer's delayed ACK.
        tcp.set_nodelay(true).map_err(HttpError::Connect)?;
        let (stream, h2): (Box<dyn Stream>, bool) = match &self.tls {
            Some(config) => {
                let name = ServerName::try_from(
                    self.host
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .to_string(),
                )
                .map_err(|_| HttpError::HttpRequestUriInvalid)?;
                let tls = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(HttpError::Tls)?;
                let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                (Box::new(tls), h2)
            }
            None => (Box::new(tcp), false),
        };
        let io = TokioIo::new(stream);
        Ok(if h2 {
            let (sender, conn) = hyper::client::conn::http2::Builder::new(Executor)
                .handshake(io)
                .await
                .map_err(HttpError::from)?;
            (Sender::H2(sender), tokio::spawn(conn))
        } else {
            let (sender, conn) = hyper::client::conn::http1::Builder::new()
                .handshake(io)
                .await
                .map_err(HttpError::from)?;
            (Sender::H1(sender), tokio::spawn(conn))
        })
    }
}

/// Gives `req` the target form its connection wants: the path for HTTP/1.1,
/// the absolute URI for a proxy forwarding plain HTTP, and for HTTP/2 the
/// absolute URI without a Host header (the authority comes from the URI).
fn shape(
    req: &mut http::Request<WasiBody>,
    uri: &http::Uri,
    h2: bool,
    forward: bool,
) -> Result<(), HttpError> {
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    *req.uri_mut() = if h2 {
        req.headers_mut().remove(http::header::HOST);
        http::Uri::builder()
            .scheme("https")
            .authority(uri.authority().map(|a| a.as_str()).unwrap_or_default())
            .path_and_query(path)
            .build()
            .map_err(|_| HttpError::HttpRequestUriInvalid)?
    } else if forward {
        uri.clone()
    } else {
        http::Uri::builder()
            .path_and_query(path)
            .build()
            .map_err(|_| HttpError::HttpRequestUriInvalid)?
    };
    Ok(())
}
