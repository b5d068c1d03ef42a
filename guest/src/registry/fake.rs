//! A scripted transport for unit tests: each request is matched against a
//! table of rules (method, a piece of the URL, how many times) and gets the
//! rule's reply; every request is logged, so a test can count exactly what
//! the client sent. An unmatched request fails the test.

use std::cell::RefCell;
use std::io::{self, Read};
use std::rc::Rc;
use std::task::Poll;

use url::Url;

use super::transport::{Sending, Transport};
use crate::concurrent::{Blocking, PollRead};
use crate::http::{Body, Response, SendError};

/// What a rule answers.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A status, headers and a body.
    Answer(u16, Vec<(&'static str, String)>, Vec<u8>),
    /// A 200 whose body breaks (connection reset) after this many bytes.
    Broken(Vec<u8>, usize),
    /// No response: the connection failed.
    Lost,
}

/// A status with headers and no body.
pub fn status(code: u16, headers: &[(&'static str, &str)]) -> Reply {
    let headers = headers.iter().map(|(n, v)| (*n, v.to_string())).collect();
    Reply::Answer(code, headers, Vec::new())
}

/// A 200 with `body`.
pub fn ok(body: &[u8]) -> Reply {
    Reply::Answer(200, Vec::new(), body.to_vec())
}

struct Rule {
    method: &'static str,
    /// A piece of the URL; `None`: the ping, `/v2/` exactly.
    url: Option<String>,
    times: usize,
    reply: Reply,
}

/// One request as sent.
#[derive(Clone, Debug)]
pub struct Sent {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Sent {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The script and what was sent.
#[derive(Default)]
pub struct Fake {
    rules: RefCell<Vec<Rule>>,
    log: RefCell<Vec<Sent>>,
}

impl Fake {
    /// A shared script, to hand to a client and keep for checking.
    pub fn new() -> Rc<Fake> {
        Rc::new(Fake::default())
    }

    /// Answers the next `times` `method` requests whose URL contains `url`
    /// with `reply`; earlier rules match first.
    pub fn on(&self, method: &'static str, url: &str, times: usize, reply: Reply) -> &Self {
        self.rules.borrow_mut().push(Rule {
            method,
            url: Some(url.to_string()),
            times,
            reply,
        });
        self
    }

    /// Answers every `GET /v2/` with `reply`.
    pub fn ping(&self, reply: Reply) -> &Self {
        self.rules.borrow_mut().push(Rule {
            method: "GET",
            url: None,
            times: usize::MAX,
            reply,
        });
        self
    }

    /// Answers such requests always.
    pub fn always(&self, method: &'static str, url: &str, reply: Reply) -> &Self {
        self.on(method, url, usize::MAX, reply)
    }

    /// Every request sent so far.
    pub fn sent(&self) -> Vec<Sent> {
        self.log.borrow().clone()
    }

    /// How many pings (`GET /v2/`) were sent.
    pub fn pings(&self) -> usize {
        self.log
            .borrow()
            .iter()
            .filter(|s| s.method == "GET" && s.url.ends_with("/v2/"))
            .count()
    }

    /// How many `method` requests went to a URL containing `url`.
    pub fn count(&self, method: &str, url: &str) -> usize {
        self.log
            .borrow()
            .iter()
            .filter(|s| s.method == method && s.url.contains(url))
            .count()
    }
}

/// A body that yields `data` up to `at`, then fails.
struct Breaking {
    data: Vec<u8>,
    pos: usize,
    at: usize,
}

impl PollRead for Breaking {
    fn poll_read(&mut self, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        if self.pos >= self.at {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "connection reset",
            )));
        }
        let n = buf.len().min(self.at - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Poll::Ready(Ok(n))
    }
}

impl Transport for Rc<Fake> {
    fn send<'a>(
        &'a self,
        method: &'a str,
        url: &'a Url,
        headers: &'a [(String, String)],
        body: Option<&'a mut dyn PollRead>,
    ) -> Sending<'a> {
        Box::pin(async move {
            // An answer takes a moment, as over a network: other transfers
            // run meanwhile.
            crate::concurrent::yield_now().await;
            let mut sent = Vec::new();
            if let Some(body) = body {
                Blocking(body)
                    .read_to_end(&mut sent)
                    .map_err(SendError::Body)?;
            }
            self.log.borrow_mut().push(Sent {
                method: method.to_string(),
                url: url.to_string(),
                headers: headers.to_vec(),
                body: sent,
            });
            let reply = {
                let mut rules = self.rules.borrow_mut();
                let rule = rules
                    .iter_mut()
                    .find(|r| {
                        r.times > 0
                            && r.method == method
                            && match &r.url {
                                Some(piece) => url.as_str().contains(piece.as_str()),
                                None => url.path() == "/v2/",
                            }
                    })
                    .unwrap_or_else(|| panic!("unscripted request: {method} {url}"));
                rule.times = rule.times.saturating_sub(1);
                rule.reply.clone()
            };
            let (status, headers, body) = match reply {
                Reply::Lost => return Err(SendError::Transport("connection reset".into())),
                Reply::Answer(status, headers, body) => (
                    status,
                    headers,
                    Body::new(crate::concurrent::Ready(io::Cursor::new(body))),
                ),
                Reply::Broken(data, at) => {
                    (200, Vec::new(), Body::new(Breaking { data, pos: 0, at }))
                }
            };
            Ok(Response {
                status,
                headers: headers
                    .into_iter()
                    .map(|(n, v)| (n.to_ascii_lowercase(), v))
                    .collect(),
                body,
            })
        })
    }
}
