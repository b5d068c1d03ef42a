//! A fault-injecting HTTP proxy between imo and a registry on 127.0.0.1. It
//! takes one request per connection, forwards it, and damages the exchange
//! when a rule matches: an error status, a 429 with Retry-After, a dropped or
//! truncated body, a slow trickle, a wrong body.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What to do to a matching exchange.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer with this status and an empty body; the registry never sees it.
    Status(u16),
    /// Answer 429 with `Retry-After: secs`.
    TooMany(u64),
    /// Forward, then send the head and this many body bytes and close.
    DropAfter(usize),
    /// Forward, then answer with only this many body bytes (a shorter,
    /// well-formed body: the download ends early).
    Truncate(usize),
    /// Forward the request, then close without any answer.
    NoAnswer,
    /// Close without any answer; the registry never sees the request.
    Lost,
    /// Forward, then send the body in 1 KiB pieces this many ms apart.
    Trickle(u64),
    /// Forward, then flip one byte of the body.
    WrongBody,
    /// Forward, then send the body with extra bytes (and a matching length).
    Grow(usize),
    /// Answer 307 with this Location; the registry never sees it.
    Redirect(String),
    /// Forward, then hold the answer back this many ms.
    Delay(u64),
    /// Answer with this status, these headers and body; the registry never
    /// sees it (an endpoint the registry lacks, such as referrers).
    Answer(u16, Vec<(String, String)>, Vec<u8>),
}

/// Damage the next `times` requests whose method is `method` and whose path
/// contains `path`.
#[derive(Clone, Debug)]
pub struct Rule {
    pub method: &'static str,
    pub path: String,
    pub times: usize,
    pub fault: Fault,
}

impl Rule {
    pub fn new(method: &'static str, path: &str, times: usize, fault: Fault) -> Rule {
        Rule {
            method,
            path: path.to_string(),
            times,
            fault,
        }
    }
}

/// One request seen: method, path, whether it asked for a Range, fault applied.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub range: Option<String>,
    pub authorization: bool,
    pub fault: Option<Fault>,
}

pub struct FaultProxy {
    pub port: u16,
    pub rules: Arc<Mutex<Vec<Rule>>>,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    busy: Arc<Mutex<Busy>>,
}

/// Requests being answered now, and the most ever at once, per method.
#[derive(Default)]
struct Busy(HashMap<String, (usize, usize)>);

/// Counts one request as busy until dropped.
struct InFlight<'a>(&'a Mutex<Busy>, String);

impl<'a> InFlight<'a> {
    fn start(busy: &'a Mutex<Busy>, method: &str) -> Self {
        let mut b = busy.lock().expect("busy");
        let (now, peak) = b.0.entry(method.to_string()).or_default();
        *now += 1;
        *peak = (*peak).max(*now);
        InFlight(busy, method.to_string())
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Ok(mut b) = self.0.lock() {
            if let Some((now, _)) = b.0.get_mut(&self.1) {
                *now -= 1;
            }
        }
    }
}

fn read_head(reader: &mut impl BufRead) -> Option<Vec<String>> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end().to_string();
        if line.is_empty() {
            return Some(lines);
        }
        lines.push(line);
    }
}

fn header<'a>(lines: &'a [String], name: &str) -> Option<&'a str> {
    lines.iter().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

impl FaultProxy {
    pub fn start(upstream: u16, rules: Vec<Rule>) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fault proxy");
        let port = listener.local_addr().expect("addr").port();
        let rules = Arc::new(Mutex::new(rules));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let busy = Arc::new(Mutex::new(Busy::default()));
        let (r, s, b) = (rules.clone(), seen.clone(), busy.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { break };
                let (r, s, b) = (r.clone(), s.clone(), b.clone());
                std::thread::spawn(move || handle(client, upstream, &r, &s, &b));
            }
        });
        FaultProxy {
            port,
            rules,
            seen,
            busy,
        }
    }

    /// The most `method` requests that were being answered at once
    /// (`"GET /blobs/"`: blob requests only).
    pub fn peak(&self, method: &str) -> usize {
        self.busy
            .lock()
            .expect("busy")
            .0
            .get(method)
            .map_or(0, |(_, peak)| *peak)
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The faults applied so far.
    pub fn applied(&self) -> Vec<Seen> {
        self.seen
            .lock()
            .expect("seen")
            .iter()
            .filter(|s| s.fault.is_some())
            .cloned()
            .collect()
    }
}

fn handle(
    client: TcpStream,
    upstream: u16,
    rules: &Mutex<Vec<Rule>>,
    seen: &Mutex<Vec<Seen>>,
    busy: &Mutex<Busy>,
) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(client.try_clone().expect("clone"));
    let mut client = client;
    // A TLS ClientHello (imo tries HTTPS first): answer as a plain server does.
    if reader
        .fill_buf()
        .map(|b| b.first() == Some(&0x16))
        .unwrap_or(true)
    {
        let _ = client.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\n");
        return;
    }
    let Some(head) = read_head(&mut reader) else {
        return;
    };
    let mut words = head[0].split_whitespace();
    let (method, path) = (
        words.next().unwrap_or("").to_string(),
        words.next().unwrap_or("").to_string(),
    );
    let _busy = InFlight::start(busy, &method);
    // Blob requests counted apart too: manifests asked for around them
    // (attachments, children) are not transfers.
    let blob = path
        .contains("/blobs/")
        .then(|| InFlight::start(busy, &format!("{method} /blobs/")));
    let length: usize = header(&head, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let fault = {
        let mut rules = rules.lock().expect("rules");
        rules
            .iter_mut()
            .find(|r| r.times > 0 && r.method == method && path.contains(&r.path))
            .map(|r| {
                r.times -= 1;
                r.fault.clone()
            })
    };
    seen.lock().expect("seen").push(Seen {
        method: method.clone(),
        path: path.clone(),
        range: header(&head, "range").map(str::to_string),
        authorization: header(&head, "authorization").is_some(),
        fault: fault.clone(),
    });
    match fault {
        Some(Fault::Lost) => return,
        Some(Fault::Status(code)) => {
            let _ = write!(
                client,
                "HTTP/1.1 {code} Injected\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            return;
        }
        Some(Fault::Redirect(location)) => {
            let _ = write!(client, "HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            return;
        }
        Some(Fault::TooMany(secs)) => {
            let _ = write!(client, "HTTP/1.1 429 Too Many Requests\r\nRetry-After: {secs}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            return;
        }
        Some(Fault::Answer(status, headers, body)) => {
            let mut head = format!(
                "HTTP/1.1 {status} Answered\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let _ = client.write_all(head.as_bytes());
            let _ = client.write_all(&body);
            return;
        }
        _ => {}
    }
    // Forward, asking the registry to close after answering.
    let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)) else {
        return;
    };
    let mut out = format!("{}\r\n", head[0]);
    for line in head.iter().skip(1) {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    if server
        .write_all(out.as_bytes())
        .and_then(|_| server.write_all(&body))
        .is_err()
    {
        return;
    }
    let mut response = Vec::new();
    let _ = server.read_to_end(&mut response);
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(response.len(), |p| p + 4);
    let (resp_head, resp_body) = response.split_at(split);
    let mut resp_body = resp_body.to_vec();
    match fault {
        Some(Fault::NoAnswer) => {}
        Some(Fault::DropAfter(n)) => {
            let _ = client.write_all(resp_head);
            let _ = client.write_all(&resp_body[..n.min(resp_body.len())]);
        }
        Some(Fault::Truncate(_)) | Some(Fault::Grow(_)) => {
            let n = match fault {
                Some(Fault::Grow(extra)) => {
                    resp_body.extend(std::iter::repeat_n(b'x', extra));
                    resp_body.len()
                }
                Some(Fault::Truncate(n)) => n,
                _ => unreachable!(),
            };
            let text = String::from_utf8_lossy(resp_head);
            let mut fixed = String::new();
            for line in text.split("\r\n").filter(|l| !l.is_empty()) {
                if line.to_ascii_lowercase().starts_with("content-length:") {
                    fixed.push_str(&format!("Content-Length: {}\r\n", n.min(resp_body.len())));
                } else {
                    fixed.push_str(line);
                    fixed.push_str("\r\n");
                }
            }
            fixed.push_str("\r\n");
            let _ = client.write_all(fixed.as_bytes());
            let _ = client.write_all(&resp_body[..n.min(resp_body.len())]);
        }
        Some(Fault::Trickle(ms)) => {
            let _ = client.write_all(resp_head);
            for piece in resp_body.chunks(1024) {
                if client.write_all(piece).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(ms));
            }
        }
        Some(Fault::Delay(ms)) => {
            std::thread::sleep(Duration::from_millis(ms));
            // Answered: the client may ask for the next blob as soon as it
            // has read this one, perhaps before this thread runs again.
            drop(blob);
            let _ = client.write_all(&response);
        }
        Some(Fault::WrongBody) => {
            if let Some(b) = resp_body.last_mut() {
                *b ^= 0xff;
            }
            let _ = client.write_all(resp_head);
            let _ = client.write_all(&resp_body);
        }
        _ => {
            let _ = client.write_all(&response);
        }
    }
    let _ = client.shutdown(Shutdown::Both);
}
