//! Content-level layer deltas: a changed gzip layer shipped as the
//! difference between its token form and the base layer's (see
//! `imo-puff`), compressed by zstd with the base's token form as a
//! reference prefix ("patch-from"), and rebuilt bit for bit at the far
//! side, digest unchanged.
//!
//! The sender proves each delta before using it: it rebuilds the layer
//! with [`decode`], the very code the receiver runs, and checks the digest.
//!
//! `format` is the archive's side (the artifact that lists deltas),
//! `make` the sender's (which layers, against what, proved).

mod format;
mod make;

pub use format::*;
pub(crate) use make::read_blob;
pub use make::{make, WithData};

use std::io::{self, Read, Write};

use crate::digest::{classify_io, Digest, Hasher};
use crate::error::{Error, Result};

/// The codec's name, as delta descriptors record it.
pub const CODEC: &str = "puff+zstd-patch-from";

/// 129 KB delta in 1.0 s natively; 19 made 121 KB in 13.6 s.
const LEVEL: i32 = 12;

/// Largest window (256 MiB): a reference and a layer's token form, each
/// at most [`MAX_REFERENCE`].
const MAX_WINDOW_LOG: u32 = 28;

/// Largest token form of a layer taking part in a delta, base or new
/// (layers of about 75 MB and more go whole). Sender: the reference, the
/// layer's token form and the delta (under half the layer) at once;
/// receiver: the reference and the decoder's buffer (at most the token
/// form). Either stays under the component's default 512 MiB.
pub const MAX_REFERENCE: usize = 128 << 20;

fn io_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::CorruptArchive(format!("{what}: {e}"))
}

/// A puff failure: a read that failed (the network, a digest mismatch)
/// as itself, a stream that is not gzip as a corrupt one.
fn puff_error(what: &str, e: imo_puff::Error) -> Error {
    match e {
        imo_puff::Error::Io(io) => classify_io(io, |err| Error::Io(format!("{what}: {err}"))),
        other => io_error(what, other),
    }
}

/// A writer that refuses to grow past a limit.
struct Capped {
    out: Vec<u8>,
    limit: usize,
    full: bool,
}

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.out.len() + buf.len() > self.limit {
            self.full = true;
            return Err(io::Error::other("over the limit"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A gzip stream's token form, read from `gz` (`size` bytes); an error if
/// it is not gzip or its token form exceeds `limit` (both
/// `CorruptArchive`: the layer cannot take part in a delta).
fn token_form(what: &str, gz: impl Read, size: u64, limit: usize) -> Result<Vec<u8>> {
    // One allocation of about the right size: growing by doubling would
    // need twice the memory for a moment, and linear memory never shrinks.
    let guess = (size.saturating_mul(7) / 4).min(limit as u64) as usize;
    let mut out = Capped {
        out: Vec::with_capacity(guess),
        limit,
        full: false,
    };
    match imo_puff::puff(gz, &mut out) {
        Ok(_) => {
            out.out.shrink_to_fit();
            Ok(out.out)
        }
        Err(_) if out.full => Err(io_error(
            what,
            format!("its token form is over {} MiB", limit >> 20),
        )),
        Err(e) => Err(puff_error(what, e)),
    }
}

/// The token form of a base layer (`size` bytes), the reference both
/// sides use; an error if the layer is not gzip or its token form exceeds
/// `limit` (both `CorruptArchive`: the layer cannot serve as a base).
pub fn reference(base_layer: impl Read, size: u64, limit: usize) -> Result<Vec<u8>> {
    token_form("base layer", base_layer, size, limit)
}

/// The window a delta against `reference` needs: it must reach back over
/// the reference from the end of the new layer's token form.
fn window_log(reference: usize, tokens: usize) -> u32 {
    let span = (reference + tokens + 1) as u64;
    (64 - span.leading_zeros()).clamp(20, MAX_WINDOW_LOG)
}

/// The delta of the gzip layer `layer` (`layer_size` bytes) against
/// `reference`: `CorruptArchive` if the layer is not gzip, its token form
/// is over [`MAX_REFERENCE`], or the delta would not be under half the
/// layer. One shot, not streamed: a streaming zstd encoder would hold a
/// window as large as reference and layer together on top of both.
pub fn encode(reference: &[u8], layer: impl Read, layer_size: u64) -> Result<Vec<u8>> {
    use zstd::zstd_safe::{get_error_name, CCtx, CParameter};
    let tokens = token_form("layer", layer, layer_size, MAX_REFERENCE)?;
    let zstd = |code: usize| io_error("zstd", get_error_name(code));
    let mut cctx = CCtx::create();
    for p in [
        CParameter::CompressionLevel(LEVEL),
        CParameter::EnableLongDistanceMatching(true),
        CParameter::WindowLog(window_log(reference.len(), tokens.len())),
        CParameter::ChecksumFlag(true),
        CParameter::ContentSizeFlag(true),
    ] {
        cctx.set_parameter(p).map_err(zstd)?;
    }
    cctx.ref_prefix(reference).map_err(zstd)?;
    let mut out = Vec::with_capacity((layer_size / 2) as usize);
    match cctx.compress2(&mut out, &tokens) {
        Ok(_) => Ok(out),
        Err(code) if get_error_name(code).contains("too small") => Err(io_error(
            "layer",
            format!("a delta would not be under half of its {layer_size} bytes"),
        )),
        Err(code) => Err(zstd(code)),
    }
}

/// Rebuilds the layer from `reference` and `delta` into `out`; the bytes
/// written. Damaged delta data fails here or in the caller's digest check.
pub fn decode(reference: &[u8], delta: impl Read, mut out: impl Write) -> Result<u64> {
    io::copy(&mut rebuilder(reference, delta)?, &mut out).map_err(|e| io_error("delta data", e))
}

/// The layer rebuilt from `reference` and `delta`, as it is read: memory
/// stays bounded whatever the layer's size. Read errors mean damaged data;
/// the caller verifies the digest as it reads.
pub fn rebuilder<'a>(reference: &'a [u8], delta: impl Read + 'a) -> Result<impl Read + 'a> {
    let zstd = |e: io::Error| io_error("delta data", e);
    let mut decoder =
        zstd::stream::read::Decoder::with_ref_prefix(io::BufReader::new(delta), reference)
            .map_err(zstd)?;
    decoder.window_log_max(MAX_WINDOW_LOG).map_err(zstd)?;
    // The huffer buffers its input itself.
    Ok(imo_puff::Huffer::new(decoder))
}

/// Whether a layer of `media_type` can be shipped as a delta (gzip).
pub fn applies_to(media_type: &str) -> bool {
    media_type.ends_with("gzip")
}

/// Hashes what is written.
struct Hashing {
    hasher: Hasher,
    size: u64,
}

impl Write for Hashing {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hasher.update(buf);
        self.size += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Whether `delta` rebuilds exactly the layer `digest` of `size` bytes.
pub fn proves(reference: &[u8], delta: &[u8], digest: &Digest, size: u64) -> bool {
    let mut h = Hashing {
        hasher: Hasher::new(digest.kind()),
        size: 0,
    };
    decode(reference, delta, &mut h).is_ok() && h.size == size && &h.hasher.finish() == digest
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::DigestOf;
    use std::process::{Command, Stdio};

    fn gzip(data: &[u8]) -> Vec<u8> {
        compress(&["gzip", "-c", "-n", "-6"], data)
    }

    /// `data` compressed by the command `cmd` (stdin to stdout).
    fn compress(cmd: &[&str], data: &[u8]) -> Vec<u8> {
        let mut child = Command::new(cmd[0])
            .args(&cmd[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let owned = data.to_vec();
        let w = std::thread::spawn(move || stdin.write_all(&owned));
        let out = child.wait_with_output().unwrap();
        w.join().unwrap().unwrap();
        out.stdout
    }

    /// 1.5 MB of text-like content and a copy with small edits.
    fn versions() -> (Vec<u8>, Vec<u8>) {
        let mut x: u32 = 12345;
        let mut old = Vec::new();
        while old.len() < 1_500_000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            old.extend_from_slice(format!("entry {} value {}\n", x % 9973, x % 101).as_bytes());
        }
        let mut new = old.clone();
        new.splice(1000..1000, b"inserted line\n".iter().copied());
        new[800_000..800_010].copy_from_slice(b"EDITED....");
        (old, new)
    }

    #[test]
    fn a_small_edit_makes_a_small_delta_that_rebuilds_the_exact_layer() {
        let (old, new) = versions();
        // Each compressor family at hand (the base and the layer made alike).
        for cmd in [
            &["gzip", "-c", "-n", "-6"][..],
            &["gzip", "-c", "-n", "-1"],
            &["gzip", "-c", "-n", "-9"],
            &["pigz", "-c", "-n", "-6"],
            &["pigz", "-c", "-n", "-i"],
        ] {
            let (base, layer) = (compress(cmd, &old), compress(cmd, &new));
            let r = reference(&base[..], base.len() as u64, MAX_REFERENCE).unwrap();
            let delta = encode(&r, &layer[..], layer.len() as u64).unwrap();
            assert!(
                delta.len() * 20 < layer.len(),
                "{cmd:?}: delta {} bytes for a {} byte layer",
                delta.len(),
                layer.len()
            );
            let mut rebuilt = Vec::new();
            decode(&r, &delta[..], &mut rebuilt).unwrap();
            assert!(rebuilt == layer, "{cmd:?}: rebuilt layer differs");
            let digest = Digest::sha256_of(&layer);
            assert!(proves(&r, &delta, &digest, layer.len() as u64));
        }
    }

    #[test]
    fn a_delta_that_does_not_pay_is_refused() {
        // Unrelated content: no delta under half the layer.
        let (old, _) = versions();
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let other: Vec<u8> = (0..400_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        let (base, layer) = (gzip(&old), gzip(&other));
        let r = reference(&base[..], base.len() as u64, MAX_REFERENCE).unwrap();
        let err = encode(&r, &layer[..], layer.len() as u64).unwrap_err();
        assert!(err.to_string().contains("half"), "{err}");
    }

    #[test]
    fn damaged_data_or_another_base_never_gives_the_layer() {
        let (old, new) = versions();
        let (base, layer) = (gzip(&old), gzip(&new));
        let r = reference(&base[..], base.len() as u64, MAX_REFERENCE).unwrap();
        let delta = encode(&r, &layer[..], layer.len() as u64).unwrap();
        let digest = Digest::sha256_of(&layer);
        for at in [0, 10, delta.len() / 2, delta.len() - 1] {
            let mut bad = delta.clone();
            bad[at] ^= 0x40;
            assert!(
                !proves(&r, &bad, &digest, layer.len() as u64),
                "flip at {at}"
            );
        }
        assert!(!proves(
            &r,
            &delta[..delta.len() / 2],
            &digest,
            layer.len() as u64
        ));
        // A base layer that differs from the one the delta was made against.
        let mut other = old.clone();
        other[5000] ^= 1;
        let other = reference(&gzip(&other)[..], 0, MAX_REFERENCE).unwrap();
        assert!(!proves(&other, &delta, &digest, layer.len() as u64));
    }

    #[test]
    fn references_are_capped_and_need_gzip() {
        let (old, _) = versions();
        let base = gzip(&old);
        assert!(reference(&base[..], 0, 1000).is_err());
        assert!(reference(&old[..], 0, MAX_REFERENCE).is_err());
    }
}
