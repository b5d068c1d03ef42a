//! Connections kept open between requests, per origin: HTTP/1.1 connections
//! that are idle (each carries one exchange at a time) and one HTTP/2
//! connection that carries every exchange at once. Across a WAN each new
//! connection costs a TCP and often a TLS handshake; a push makes three
//! requests per blob.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::client::conn::{http1, http2};
use wasmtime_wasi_http::WasiBody;

/// An HTTP/1.1 connection unused for this long is closed rather than reused:
/// servers close idle connections too (distribution after its idle timeout),
/// and a request on one the server is closing fails.
const IDLE_LIMIT: Duration = Duration::from_secs(60);

/// Where a connection leads: the server, how it is reached, and whether its
/// certificate was checked (a connection opened without checking must not
/// serve a request that asks for checking).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Origin {
    /// `host:port`.
    pub target: String,
    /// Whether the connection speaks TLS.
    pub tls: bool,
    /// Whether the server's certificate was verified.
    pub verified: bool,
    /// The proxy the connection goes through, if any.
    pub via: Option<String>,
}

/// A connection that can take a request.
pub enum Sender {
    /// HTTP/1.1: one exchange at a time.
    H1(http1::SendRequest<WasiBody>),
    /// HTTP/2: exchanges multiplexed.
    H2(http2::SendRequest<WasiBody>),
}

impl Sender {
    /// Whether this connection speaks HTTP/2.
    pub fn is_h2(&self) -> bool {
        matches!(self, Sender::H2(_))
    }
}

#[derive(Default)]
struct Slot {
    /// HTTP/1.1 connections and when each last took a request.
    h1: Vec<(http1::SendRequest<WasiBody>, Instant)>,
    h2: Option<http2::SendRequest<WasiBody>>,
    /// What the origin spoke when last connected; unknown before.
    speaks_h2: Option<bool>,
    /// Held while the first connection to an origin that may speak HTTP/2 is
    /// opened, so requests made at the same moment share it.
    opening: Arc<tokio::sync::Mutex<()>>,
}

/// The open connections, shared by every request of the process.
#[derive(Clone, Default)]
pub struct Pool(Arc<Mutex<HashMap<Origin, Slot>>>);

impl Pool {
    fn with<T>(&self, origin: &Origin, f: impl FnOnce(&mut Slot) -> T) -> T {
        // A panic elsewhere while holding the lock leaves plain data behind.
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(map.entry(origin.clone()).or_default())
    }

    /// An open connection to `origin` free to take a request now: the HTTP/2
    /// one, or an idle HTTP/1.1 one, which is the caller's until it hands it
    /// back with [`Pool::put_back`].
    pub fn take(&self, origin: &Origin) -> Option<Sender> {
        self.with(origin, |slot| {
            if let Some(h2) = &slot.h2 {
                if !h2.is_closed() {
                    return Some(Sender::H2(h2.clone()));
                }
                slot.h2 = None;
            }
            let now = Instant::now();
            slot.h1
                .retain(|(s, used)| !s.is_closed() && now.duration_since(*used) < IDLE_LIMIT);
            let free = slot.h1.iter().position(|(s, _)| s.is_ready())?;
            Some(Sender::H1(slot.h1.swap_remove(free).0))
        })
    }

    /// What a caller about to open a connection to `origin` must hold while
    /// it does, if anything: unless the origin is known to speak HTTP/1.1,
    /// the first connection may be HTTP/2 and then serves every request.
    pub fn opening(&self, origin: &Origin) -> Option<Arc<tokio::sync::Mutex<()>>> {
        self.with(origin, |slot| {
            (slot.speaks_h2 != Some(false)).then(|| slot.opening.clone())
        })
    }

    /// Records a newly opened connection; an HTTP/2 one is shared from now on.
    pub fn opened(&self, origin: &Origin, sender: &Sender) {
        self.with(origin, |slot| {
            slot.speaks_h2 = Some(sender.is_h2());
            if let Sender::H2(h2) = sender {
                slot.h2 = Some(h2.clone());
            }
        })
    }

    /// Hands an HTTP/1.1 connection back once its request is under way: it
    /// becomes free again (`is_ready`) when that exchange is over.
    pub fn put_back(&self, origin: &Origin, sender: http1::SendRequest<WasiBody>) {
        if !sender.is_closed() {
            self.with(origin, |slot| slot.h1.push((sender, Instant::now())));
        }
    }
}
