//! Content-level layer deltas: a changed gzip layer shipped as the
//! difference between its token form and the base layer's (see
//! `imo-puff`), compressed by zstd with the base's token form as a
//! reference prefix ("patch-from"), and rebuilt bit for bit at the far
//! side, digest unchanged.
//!
//! The sender proves each delta before using it: it rebuilds the layer
//! with [`decode`], the very code the receiver runs, and checks the digest.

use std::io::{self, Read, Write};

use crate::digest::{Digest, Hasher};
use crate::error::{Error, Result};

/// The codec's name, as delta descriptors record it.
pub const CODEC: &str = "puff+zstd-patch-from";

/// zstd level: on the corpus's `app` layer (21.0 MB) level 12 made a
/// 129 KB delta in 1.0 s natively; 19 made 121 KB in 13.6 s.
const LEVEL: i32 = 12;

/// Largest window: a 32-bit component cannot address more.
const MAX_WINDOW_LOG: u32 = 30;

/// Largest token form of a base layer kept as a reference.
pub const MAX_REFERENCE: usize = 256 << 20;

fn io_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::CorruptArchive(format!("{what}: {e}"))
}

/// A writer that refuses to grow past a limit.
struct Capped {
    out: Vec<u8>,
    limit: usize,
}

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.out.len() + buf.len() > self.limit {
            return Err(io::Error::other("over the limit"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The token form of a base layer, the reference both sides use; an
/// error if the layer is not gzip or its token form exceeds `limit`.
pub fn reference(base_layer: impl Read, limit: usize) -> Result<Vec<u8>> {
    let mut out = Capped {
        out: Vec::new(),
        limit,
    };
    imo_puff::puff(base_layer, &mut out).map_err(|e| io_error("base layer", e))?;
    Ok(out.out)
}

/// The window a delta against `reference` needs: it must reach back over
/// the reference from the end of the new layer's token form.
fn window_log(reference: usize, layer_size: u64) -> u32 {
    // Token forms run up to about 1.6 times the compressed size.
    let span = reference as u64 + layer_size.saturating_mul(2) + 1;
    (64 - span.leading_zeros()).clamp(20, MAX_WINDOW_LOG)
}

/// The delta of the gzip layer `layer` (`layer_size` bytes) against
/// `reference`. Errors if the layer is not gzip.
pub fn encode(reference: &[u8], layer: impl Read, layer_size: u64) -> Result<Vec<u8>> {
    let zstd = |e: io::Error| io_error("zstd", e);
    let mut encoder = zstd::stream::write::Encoder::with_ref_prefix(Vec::new(), LEVEL, reference)
        .map_err(zstd)?;
    encoder.long_distance_matching(true).map_err(zstd)?;
    encoder
        .window_log(window_log(reference.len(), layer_size))
        .map_err(zstd)?;
    encoder.include_checksum(true).map_err(zstd)?;
    imo_puff::puff(layer, &mut encoder).map_err(|e| io_error("layer", e))?;
    encoder.finish().map_err(zstd)
}

/// Rebuilds the layer from `reference` and `delta` into `out`; the bytes
/// written. Damaged delta data fails here or in the caller's digest check.
pub fn decode(reference: &[u8], delta: impl Read, out: impl Write) -> Result<u64> {
    let zstd = |e: io::Error| io_error("delta data", e);
    let mut decoder =
        zstd::stream::read::Decoder::with_ref_prefix(io::BufReader::new(delta), reference)
            .map_err(zstd)?;
    decoder.window_log_max(MAX_WINDOW_LOG).map_err(zstd)?;
    imo_puff::huff(decoder, out).map_err(|e| io_error("delta data", e))
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
        let mut child = Command::new("gzip")
            .args(["-c", "-n", "-6"])
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
        let (base, layer) = (gzip(&old), gzip(&new));
        let r = reference(&base[..], MAX_REFERENCE).unwrap();
        let delta = encode(&r, &layer[..], layer.len() as u64).unwrap();
        assert!(
            delta.len() * 20 < layer.len(),
            "delta {} bytes for a {} byte layer",
            delta.len(),
            layer.len()
        );
        let mut rebuilt = Vec::new();
        decode(&r, &delta[..], &mut rebuilt).unwrap();
        assert!(rebuilt == layer, "rebuilt layer differs");
        let digest = Digest::sha256_of(&layer);
        assert!(proves(&r, &delta, &digest, layer.len() as u64));
    }

    #[test]
    fn damaged_data_or_another_base_never_gives_the_layer() {
        let (old, new) = versions();
        let (base, layer) = (gzip(&old), gzip(&new));
        let r = reference(&base[..], MAX_REFERENCE).unwrap();
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
        let other = reference(&gzip(&other)[..], MAX_REFERENCE).unwrap();
        assert!(!proves(&other, &delta, &digest, layer.len() as u64));
    }

    #[test]
    fn references_are_capped_and_need_gzip() {
        let (old, _) = versions();
        let base = gzip(&old);
        assert!(reference(&base[..], 1000).is_err());
        assert!(reference(&old[..], MAX_REFERENCE).is_err());
    }
}
