//! The bottom of the client: one exchange, from request to response head,
//! with streamed bodies both ways. In the component that is wasi:http; in
//! unit tests a script (`fake`), so every path above it runs natively.

use std::future::Future;
use std::pin::Pin;

use url::Url;

use crate::concurrent::PollRead;
use crate::http::{Response, SendError};

/// A response under way.
pub type Sending<'a> = Pin<Box<dyn Future<Output = Result<Response, SendError>> + 'a>>;

/// Sends requests. A transport waits on wasi:io pollables (or is always
/// ready), never blocking the other transfers on the component's thread.
pub trait Transport {
    /// Sends `method url` with `headers` and, if any, `body` (its length is
    /// in a `content-length` header), and waits for the response head.
    fn send<'a>(
        &'a self,
        method: &'a str,
        url: &'a Url,
        headers: &'a [(String, String)],
        body: Option<&'a mut dyn PollRead>,
    ) -> Sending<'a>;
}

/// wasi:http's outgoing handler, as the host provides it.
pub struct WasiHttp;

impl Transport for WasiHttp {
    fn send<'a>(
        &'a self,
        method: &'a str,
        url: &'a Url,
        headers: &'a [(String, String)],
        body: Option<&'a mut dyn PollRead>,
    ) -> Sending<'a> {
        Box::pin(crate::http::send_async(method, url, headers, body))
    }
}
