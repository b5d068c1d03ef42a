//! HTTP over wasi:http, the guest's only way out: requests wait on wasi:io
//! pollables (`send_async`), so several can be under way at once; `Body`'s
//! `Read` is the blocking form.

use std::io::{self, Read};
use std::task::Poll;

use url::Url;

use crate::concurrent::{self, ready, Blocking, PollRead};

use crate::bindings::wasi::http::outgoing_handler;
use crate::bindings::wasi::http::types::{
    Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};
use crate::bindings::wasi::io::streams::{InputStream, StreamError};

const SECOND_NS: u64 = 1_000_000_000;
const CONNECT_TIMEOUT: u64 = 30 * SECOND_NS;
const IDLE_TIMEOUT: u64 = 120 * SECOND_NS;
/// Request bodies are read from their source in pieces of this size.
const WRITE_BUFFER: usize = 1024 * 1024;
const READ_CHUNK: u64 = 256 * 1024;

/// How a certificate the host could not verify is described.
pub const UNTRUSTED_CERTIFICATE: &str = "TLS certificate not trusted";

/// How a TLS alert from the server is described: the server speaks TLS.
pub const TLS_ALERT: &str = "the registry ended the TLS handshake";

/// An HTTP response whose body is read as a stream.
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header names (lowercase) and values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Body,
}

impl Response {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// All values of header `name` (lowercase).
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Reads at most `limit` bytes of body; more is an error.
    pub fn read_limited(self, limit: u64) -> io::Result<Vec<u8>> {
        concurrent::block_on(self.read_limited_async(limit))
    }

    /// [`Response::read_limited`], waiting without blocking other transfers.
    pub async fn read_limited_async(mut self, limit: u64) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match concurrent::read(&mut self.body, &mut buf).await {
                Ok(0) => return Ok(out),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if (out.len() + n) as u64 > limit {
                return Err(io::Error::other(format!(
                    "response body larger than {limit} bytes"
                )));
            }
            out.extend_from_slice(&buf[..n]);
        }
    }
}

/// A response body, from wherever the transport gets it.
pub struct Body(Box<dyn PollRead>);

impl Body {
    /// A body read from `source`.
    pub fn new(source: impl PollRead + 'static) -> Body {
        Body(Box::new(source))
    }
}

impl PollRead for Body {
    fn poll_read(&mut self, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.0.poll_read(buf)
    }
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Blocking(self).read(buf)
    }
}

/// A body as wasi:http delivers it. The stream is a child of the body
/// resource, so it must be dropped first: field order matters.
struct WasiBody {
    stream: Option<InputStream>,
    _body: Option<IncomingBody>,
}

impl PollRead for WasiBody {
    fn poll_read(&mut self, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let Some(stream) = &self.stream else {
            return Poll::Ready(Ok(0));
        };
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let want = (buf.len() as u64).min(READ_CHUNK);
        Poll::Ready(match stream.read(want) {
            Ok(bytes) if bytes.is_empty() => {
                concurrent::wait_on(stream.subscribe());
                return Poll::Pending;
            }
            Ok(bytes) => {
                buf[..bytes.len()].copy_from_slice(&bytes);
                Ok(bytes.len())
            }
            Err(StreamError::Closed) => {
                self.stream = None;
                Ok(0)
            }
            Err(StreamError::LastOperationFailed(e)) => {
                // Hosts may append a backtrace: one line is the message.
                let text = e.to_debug_string();
                let line = text.lines().next().unwrap_or("read failed").to_string();
                Err(io::Error::new(io::ErrorKind::ConnectionReset, line))
            }
        })
    }
}

/// Why a request got no response.
#[derive(Debug)]
pub enum SendError {
    /// The connection or protocol failed; one line.
    Transport(String),
    /// Reading the request body failed (e.g. it did not match its digest).
    Body(io::Error),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Transport(m) => f.write_str(m),
            SendError::Body(e) => write!(f, "reading the request body: {e}"),
        }
    }
}

impl From<String> for SendError {
    fn from(s: String) -> Self {
        SendError::Transport(s)
    }
}

/// Sends one request, streaming `body` (whose length the caller put in a
/// `content-length` header), and waits for the response head without
/// blocking other transfers.
pub async fn send_async(
    method: &str,
    url: &Url,
    headers: &[(String, String)],
    body: Option<&mut dyn PollRead>,
) -> Result<Response, SendError> {
    let fields: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.as_bytes().to_vec()))
        .collect();
    let fields = Fields::from_list(&fields).map_err(|e| format!("invalid header: {e:?}"))?;
    let request = OutgoingRequest::new(fields);
    let method = match method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "PATCH" => Method::Patch,
        "DELETE" => Method::Delete,
        other => Method::Other(other.to_string()),
    };
    let scheme = match url.scheme() {
        "https" => Scheme::Https,
        "http" => Scheme::Http,
        other => return Err(format!("unsupported URL scheme {other:?} in {url}").into()),
    };
    let authority = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        (None, _) => return Err(format!("URL {url} has no host").into()),
    };
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let set = |ok: Result<(), ()>, what: &str| -> Result<(), SendError> {
        ok.map_err(|()| format!("invalid {what} in {url}").into())
    };
    set(request.set_method(&method), "method")?;
    set(request.set_scheme(Some(&scheme)), "scheme")?;
    set(request.set_authority(Some(&authority)), "host")?;
    set(request.set_path_with_query(Some(&path)), "path")?;
    let outgoing = request
        .body()
        .map_err(|()| "request body already taken".to_string())?;

    let options = RequestOptions::new();
    // Hosts may not support every timeout; they are advisory.
    let _ = options.set_connect_timeout(Some(CONNECT_TIMEOUT));
    let _ = options.set_first_byte_timeout(Some(IDLE_TIMEOUT));
    let _ = options.set_between_bytes_timeout(Some(IDLE_TIMEOUT));

    let future = outgoing_handler::handle(request, Some(options)).map_err(|e| describe(&e))?;
    let written = match body {
        Some(body) => write_body(outgoing, body).await,
        None => OutgoingBody::finish(outgoing, None).map_err(|e| describe(&e).into()),
    };
    // A server may answer (and close) before taking the whole body: its
    // answer says more than the broken write, so prefer it.
    let written = match written {
        Err(SendError::Transport(e)) => Some(e),
        Err(body_error) => return Err(body_error),
        Ok(()) => None,
    };

    ready(|| future.subscribe()).await;
    let response = match future.get() {
        Some(Ok(Ok(r))) => r,
        Some(Ok(Err(e))) => return Err(written.unwrap_or_else(|| describe(&e)).into()),
        Some(Err(())) | None => return Err("response already taken".to_string().into()),
    };
    let status = response.status();
    let headers = {
        let fields = response.headers();
        fields
            .entries()
            .into_iter()
            .map(|(n, v)| {
                (
                    n.to_ascii_lowercase(),
                    String::from_utf8_lossy(&v).into_owned(),
                )
            })
            .collect()
    };
    let body = response
        .consume()
        .map_err(|()| "response body already taken".to_string())?;
    let stream = body
        .stream()
        .map_err(|()| "response stream already taken".to_string())?;
    Ok(Response {
        status,
        headers,
        body: Body::new(WasiBody {
            stream: Some(stream),
            _body: Some(body),
        }),
    })
}

/// Streams `body` into the request as fast as the host accepts it; a read
/// error leaves the body unfinished, so the host aborts the request.
async fn write_body(outgoing: OutgoingBody, body: &mut dyn PollRead) -> Result<(), SendError> {
    {
        let stream = outgoing
            .write()
            .map_err(|()| "request body stream already taken".to_string())?;
        let failed = |e| format!("sending request body: {e:?}");
        let mut buf = vec![0u8; WRITE_BUFFER];
        loop {
            let n = match concurrent::read(body, &mut buf).await {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(SendError::Body(e)),
            };
            let mut done = 0;
            while done < n {
                let permit = stream.check_write().map_err(failed)?;
                if permit == 0 {
                    ready(|| stream.subscribe()).await;
                    continue;
                }
                let m = (permit as usize).min(n - done);
                stream.write(&buf[done..done + m]).map_err(failed)?;
                done += m;
            }
        }
        // A flush is done when the stream is ready again; check-write then
        // tells whether it failed (it may allow 0 bytes: the body is complete).
        stream.flush().map_err(failed)?;
        ready(|| stream.subscribe()).await;
        stream.check_write().map_err(failed)?;
    }
    OutgoingBody::finish(outgoing, None).map_err(|e| describe(&e).into())
}

fn describe(e: &crate::bindings::wasi::http::types::ErrorCode) -> String {
    use crate::bindings::wasi::http::types::ErrorCode as E;
    match e {
        E::DnsError(d) => format!(
            "DNS lookup failed{}",
            d.rcode
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ),
        E::ConnectionRefused => "connection refused".into(),
        E::ConnectionTimeout => "connection timed out".into(),
        E::ConnectionTerminated => "connection closed by the server".into(),
        E::TlsProtocolError => "TLS handshake failed".into(),
        E::TlsCertificateError => UNTRUSTED_CERTIFICATE.into(),
        E::TlsAlertReceived(alert) => {
            let what = alert.alert_message.as_deref().unwrap_or("an alert");
            // 116: certificate_required; 42, 46, 48: a certificate it
            // refused or lacks (servers use either for a missing one).
            let hint = match alert.alert_id {
                Some(42 | 46 | 48 | 116) => ": it wants a client certificate it trusts (NAME.cert and NAME.key in --cert-dir)",
                _ => "",
            };
            format!("{TLS_ALERT} ({what}){hint}")
        }
        E::HttpRequestDenied => "request denied by the host".into(),
        other => format!("{other:?}"),
    }
}
