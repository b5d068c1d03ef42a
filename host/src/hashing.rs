//! The `hashing` import: SHA-2 in native code, which uses the CPU's SHA
//! instructions where it has them (sha2 detects them at run time).
//!
//! A long stream is hashed on a thread of its own: the component runs on
//! one core and hashing every byte it reads or writes would otherwise take
//! its turn there (a tenth of a rebuilding push's time).

use std::sync::mpsc::{sync_channel, Receiver, SendError, SyncSender};

use sha2::{Digest as _, Sha256, Sha512};

/// Bytes hashed in place before a hasher moves to a thread: most blobs
/// (manifests, configs) never get there.
const OFFLOAD_AFTER: u64 = 1 << 20;

/// Updates in flight to a hashing thread: a bound on memory (the guest's
/// reads are at most a few hundred KiB each); a full queue makes the
/// component wait.
const QUEUE: usize = 16;

/// The hash state.
enum Algo {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl Algo {
    fn update(&mut self, data: &[u8]) {
        match self {
            Algo::Sha256(h) => h.update(data),
            Algo::Sha512(h) => h.update(data),
        }
    }

    fn digest(&self) -> Vec<u8> {
        match self {
            Algo::Sha256(h) => h.clone().finalize().to_vec(),
            Algo::Sha512(h) => h.clone().finalize().to_vec(),
        }
    }
}

/// What a hashing thread is asked.
enum Ask {
    Start(Box<Algo>),
    Update(Vec<u8>),
    Digest(SyncSender<Vec<u8>>),
}

/// The state behind one guest `hasher` resource.
pub struct Hasher {
    /// Here until [`OFFLOAD_AFTER`] bytes, then on a thread; `None` only
    /// if that thread could not start (it is then hashed here).
    here: Option<Algo>,
    thread: Option<SyncSender<Ask>>,
    fed: u64,
}

impl Hasher {
    /// A fresh SHA-256 (`sha512` false) or SHA-512 hasher.
    pub fn new(sha512: bool) -> Self {
        let algo = if sha512 {
            Algo::Sha512(Sha512::new())
        } else {
            Algo::Sha256(Sha256::new())
        };
        Hasher {
            here: Some(algo),
            thread: None,
            fed: 0,
        }
    }

    /// Feeds bytes.
    pub fn update(&mut self, data: Vec<u8>) {
        self.fed += data.len() as u64;
        if let Some(tx) = &self.thread {
            if tx.send(Ask::Update(data)).is_ok() {
                return;
            }
            // The thread is gone (it cannot fail: a host bug); nothing
            // sensible remains but a digest that will not match.
            self.thread = None;
            return;
        }
        let Some(algo) = self.here.as_mut() else {
            return;
        };
        algo.update(&data);
        if self.fed >= OFFLOAD_AFTER {
            if let Some(algo) = self.here.take() {
                self.thread = offload(Box::new(algo))
                    .map_err(|algo| self.here = Some(*algo))
                    .ok();
            }
        }
    }

    /// The digest of everything fed so far; the state is kept.
    pub fn digest(&self) -> Vec<u8> {
        if let Some(algo) = &self.here {
            return algo.digest();
        }
        let (tx, rx) = sync_channel(1);
        match &self.thread {
            Some(thread) if thread.send(Ask::Digest(tx)).is_ok() => rx.recv().unwrap_or_default(),
            _ => Vec::new(),
        }
    }
}

/// Moves `algo` to a thread of its own; back if none starts.
fn offload(algo: Box<Algo>) -> Result<SyncSender<Ask>, Box<Algo>> {
    let (tx, rx) = sync_channel(QUEUE);
    let started = std::thread::Builder::new()
        .name("imo-hash".into())
        .spawn(move || serve(rx));
    if started.is_err() {
        return Err(algo);
    }
    match tx.send(Ask::Start(algo)) {
        Ok(()) => Ok(tx),
        Err(SendError(Ask::Start(algo))) => Err(algo),
        Err(SendError(_)) => unreachable!("only the state was sent"),
    }
}

/// A hashing thread: the state first, then updates in order and digests
/// when asked, until the hasher is dropped.
fn serve(rx: Receiver<Ask>) {
    let Ok(Ask::Start(mut algo)) = rx.recv() else {
        return;
    };
    while let Ok(ask) = rx.recv() {
        match ask {
            Ask::Start(_) => return,
            Ask::Update(data) => algo.update(&data),
            Ask::Digest(reply) => {
                let _ = reply.send(algo.digest());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        let mut h = Hasher::new(false);
        h.update(b"hel".to_vec());
        h.update(b"lo".to_vec());
        let hex: String = h.digest().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(Hasher::new(true).digest().len(), 64);
    }

    #[test]
    fn long_streams_hash_alike_on_a_thread() {
        // Past OFFLOAD_AFTER, in uneven pieces, with digests asked midway.
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for sha512 in [false, true] {
            let mut h = Hasher::new(sha512);
            let mut at = 0;
            for (i, piece) in data.chunks(300_007).enumerate() {
                h.update(piece.to_vec());
                at += piece.len();
                if i % 3 == 0 {
                    let mut direct = Hasher::new(sha512);
                    direct.update(data[..at].to_vec());
                    assert_eq!(h.digest(), direct.digest());
                }
            }
            assert!(h.thread.is_some(), "never moved to a thread");
            let expect = if sha512 {
                Sha512::digest(&data).to_vec()
            } else {
                Sha256::digest(&data).to_vec()
            };
            assert_eq!(h.digest(), expect);
        }
    }
}
