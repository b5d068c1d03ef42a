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
//! `make` the sender's (which layers, against what, proved), `segments`
//! how large layers stay in bounded memory.

mod format;
mod make;
mod parallel;
mod segments;

pub use format::*;
pub(crate) use make::read_blob;
pub use make::{make, WithData};
pub use parallel::run as run_work;
use segments::{place, Rebuilt, Window};
pub use segments::{Segment, MAX_SEGMENTS, SEGMENT, WINDOW};

use std::io::{self, Read, Write};

use crate::digest::{classify_io, Digest, Hasher};
use crate::error::{Error, Result};

/// The codec's name, as delta descriptors record it: one zstd frame
/// against the whole base layer's token form.
pub const CODEC: &str = "puff+zstd-patch-from";

/// The same in segments, each against a window of the base's token form
/// (the descriptor lists them, see [`SEGMENTS`]).
pub const CODEC_SEGMENTS: &str = "puff+zstd-patch-from+segments";

/// 129 KB delta in 1.0 s natively; 19 made 121 KB in 13.6 s.
const LEVEL: i32 = 12;

/// Largest zstd window (256 MiB): a reference and a segment, or an
/// original-form delta's whole base and layer.
const MAX_WINDOW_LOG: u32 = 28;

/// Largest base token form an original-form (one frame, whole base) delta
/// is read against, and largest segment: deltas made before segments.
const MAX_REFERENCE: usize = 128 << 20;

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

/// The window a frame against `reference` needs: it must reach back over
/// the reference from the end of the segment's token form.
fn window_log(reference: usize, tokens: usize) -> u32 {
    let span = (reference + tokens + 1) as u64;
    (64 - span.leading_zeros()).clamp(20, MAX_WINDOW_LOG)
}

/// One segment's frame: `tokens` against `reference`, into `out` (cleared
/// first), whose capacity bounds it (else `CorruptArchive`: the delta
/// would not pay). One buffer for every frame of a layer: allocating one
/// per frame beside zstd's tables fragmented the component's heap until a
/// 1.3 GB layer's pull passed 300 MiB.
fn frame(reference: &[u8], tokens: &[u8], out: &mut Vec<u8>, layer_size: u64) -> Result<()> {
    use zstd::zstd_safe::{get_error_name, CCtx, CParameter};
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
    out.clear();
    match cctx.compress2(out, tokens) {
        Ok(_) => Ok(()),
        Err(code) if get_error_name(code).contains("too small") => Err(not_half(layer_size)),
        Err(code) => Err(zstd(code)),
    }
}

/// Why a layer's delta is not kept: it would not pay.
fn not_half(layer_size: u64) -> Error {
    io_error(
        "layer",
        format!("a delta would not be under half of its {layer_size} bytes"),
    )
}

/// A delta's data and, unless it is one frame against the whole base, its
/// segments.
pub type Encoded = (Vec<u8>, Option<Vec<Segment>>);

/// The delta of the gzip layer `layer` (`layer_size` bytes) against the
/// gzip layer `base` (`base_size` bytes), both read once, as streams:
/// `CorruptArchive` if either is not gzip, a legacy window overflows, or
/// the delta would not fit in `budget` bytes (at most half the layer).
pub fn encode(
    base: impl Read,
    base_size: u64,
    layer: impl Read,
    layer_size: u64,
    budget: u64,
) -> Result<Encoded> {
    encode_in(base, base_size, layer, layer_size, budget, SEGMENT, WINDOW)
}

/// [`encode`] with segments of at most `segment` bytes against windows of
/// at most `window`.
fn encode_in(
    base: impl Read,
    base_size: u64,
    layer: impl Read,
    layer_size: u64,
    budget: u64,
    segment: usize,
    window: usize,
) -> Result<Encoded> {
    let budget = budget.min(layer_size / 2) as usize;
    let mut base = Window::new(base, base_size, window, "base layer");
    let mut layer = Window::new(layer, layer_size, segment, "layer");
    let ratio = base_size as f64 / layer_size.max(1) as f64;
    let (mut frames, mut segments) = (Vec::<Vec<u8>>::new(), Vec::new());
    let mut out = Vec::with_capacity(budget.min(zstd::zstd_safe::compress_bound(segment)));
    let (mut at, mut last_from, mut used) = (0, 0, 0);
    loop {
        let piece = layer.get(at, at + segment as u64, segment)?;
        if piece.is_empty() {
            break;
        }
        if segments.len() == MAX_SEGMENTS {
            return Err(io_error("layer", "too many segments"));
        }
        let (from, to) = place(at, piece.len(), ratio, last_from, window);
        let reference = base.get(from, to, window)?;
        let to = from + reference.len() as u64;
        frame(reference, piece, &mut out, layer_size)?;
        used += out.len();
        if used > budget {
            return Err(not_half(layer_size));
        }
        frames.push(out.clone());
        segments.push(Segment {
            from,
            to,
            frame: out.len() as u64,
        });
        at += piece.len() as u64;
        last_from = from;
    }
    // One frame against the whole base: the original form.
    let whole = segments.len() == 1 && segments[0].from == 0 && base.ended();
    // A delta made against a base whose digest was never checked could not
    // rebuild at the far side: the windows may end before the base does.
    base.read_rest()?;
    drop(out);
    Ok((frames.concat(), (!whole).then_some(segments)))
}

/// The segments of a delta in the original form: one frame, the whole
/// base.
pub fn whole(data_size: u64) -> Vec<Segment> {
    vec![Segment {
        from: 0,
        to: u64::MAX,
        frame: data_size,
    }]
}

/// Rebuilds the layer from the gzip base layer `base` (`base_size`
/// bytes) and `data` cut into `segments`, into `out`; the bytes written.
/// Damaged data fails here or in the caller's digest check.
pub fn decode(
    base: impl Read,
    base_size: u64,
    segments: Vec<Segment>,
    data: &[u8],
    mut out: impl Write,
) -> Result<u64> {
    io::copy(&mut rebuilder(base, base_size, segments, data), &mut out)
        .map_err(|e| classify_io(e, |e| io_error("delta data", e)))
}

/// The layer rebuilt from the gzip base layer `base` (`base_size` bytes,
/// read as needed) and `data` cut into `segments`, as it is read: memory
/// holds one window of the base and one segment whatever the layer's
/// size. Read errors carry the guest's error; the caller verifies the
/// digest as it reads.
pub fn rebuilder<'a>(
    base: impl Read + 'a,
    base_size: u64,
    segments: Vec<Segment>,
    data: &'a [u8],
) -> impl Read + 'a {
    imo_puff::Huffer::new(Rebuilt::new(base, base_size, segments, data))
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

/// Whether `data` cut into `segments` rebuilds exactly the layer `digest`
/// of `size` bytes from the gzip base layer `base` (`base_size` bytes).
pub fn proves(
    base: impl Read,
    base_size: u64,
    segments: Vec<Segment>,
    data: &[u8],
    digest: &Digest,
    size: u64,
) -> bool {
    let mut h = Hashing {
        hasher: Hasher::new(digest.kind()),
        size: 0,
    };
    decode(base, base_size, segments, data, &mut h).is_ok()
        && h.size == size
        && &h.hasher.finish() == digest
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::digest::DigestOf;
    use std::process::{Command, Stdio};

    fn gzip(data: &[u8]) -> Vec<u8> {
        compress(&["gzip", "-c", "-n", "-6"], data)
    }

    /// `data` compressed by the command `cmd` (stdin to stdout).
    pub(super) fn compress(cmd: &[&str], data: &[u8]) -> Vec<u8> {
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
    pub(super) fn versions() -> (Vec<u8>, Vec<u8>) {
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

    /// `n` bytes that do not compress.
    fn noise(n: usize) -> Vec<u8> {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    /// The delta of `layer` against `base`, with the budget of a pull.
    fn delta(base: &[u8], layer: &[u8]) -> Result<Encoded> {
        encode(base, base.len() as u64, layer, layer.len() as u64, u64::MAX)
    }

    /// Whether `data` in `segments` rebuilds `layer` from `base`.
    fn rebuilds(base: &[u8], segments: Vec<Segment>, data: &[u8], layer: &[u8]) -> bool {
        let digest = Digest::sha256_of(layer);
        proves(
            base,
            base.len() as u64,
            segments,
            data,
            &digest,
            layer.len() as u64,
        )
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
            let (data, segments) = delta(&base, &layer).unwrap();
            assert!(segments.is_none(), "{cmd:?}: a small layer is one frame");
            assert!(
                data.len() * 20 < layer.len(),
                "{cmd:?}: delta {} bytes for a {} byte layer",
                data.len(),
                layer.len()
            );
            let mut rebuilt = Vec::new();
            let list = whole(data.len() as u64);
            decode(
                &base[..],
                base.len() as u64,
                list.clone(),
                &data,
                &mut rebuilt,
            )
            .unwrap();
            assert!(rebuilt == layer, "{cmd:?}: rebuilt layer differs");
            assert!(rebuilds(&base, list, &data, &layer));
        }
    }

    #[test]
    fn a_delta_that_does_not_pay_is_refused() {
        // Unrelated content: no delta under half the layer.
        let (old, _) = versions();
        let (base, layer) = (gzip(&old), gzip(&noise(400_000)));
        let err = delta(&base, &layer).unwrap_err();
        assert!(err.to_string().contains("half"), "{err}");
        // Nor one over the budget left.
        let (_, new) = versions();
        let layer = gzip(&new);
        let err = encode(&base[..], 0, &layer[..], layer.len() as u64, 100).unwrap_err();
        assert!(err.to_string().contains("half"), "{err}");
    }

    #[test]
    fn damaged_data_or_another_base_never_gives_the_layer() {
        let (old, new) = versions();
        let (base, layer) = (gzip(&old), gzip(&new));
        let (data, _) = delta(&base, &layer).unwrap();
        let list = || whole(data.len() as u64);
        for at in [0, 10, data.len() / 2, data.len() - 1] {
            let mut bad = data.clone();
            bad[at] ^= 0x40;
            assert!(!rebuilds(&base, list(), &bad, &layer), "flip at {at}");
        }
        let half = &data[..data.len() / 2];
        assert!(!rebuilds(&base, whole(half.len() as u64), half, &layer));
        // A base layer that differs from the one the delta was made against.
        let mut other = old.clone();
        other[5000] ^= 1;
        assert!(!rebuilds(&gzip(&other), list(), &data, &layer));
        // A base that is not gzip at all.
        assert!(!rebuilds(&old, list(), &data, &layer));
    }

    #[test]
    fn a_large_base_is_puffed_in_halves_and_rebuilds_the_exact_layer() {
        // 5 MB that does not compress, then text: a base read whole and
        // puffed in two halves at once, the second by a worker (a thread
        // here, another instance of the component in the imo host).
        let noise = noise(5_000_000);
        let (old, new) = versions();
        let (old, new) = ([&noise[..], &old].concat(), [&noise[..], &new].concat());
        let (base, layer) = (gzip(&old), gzip(&new));
        assert!(base.len() as u64 >= segments::HOLD_FROM, "{}", base.len());
        let (data, segments) = delta(&base, &layer).unwrap();
        let list = segments.unwrap_or_else(|| whole(data.len() as u64));
        let taken = parallel::accepted();
        assert!(rebuilds(&base, list.clone(), &data, &layer));
        assert_eq!(parallel::accepted(), taken + 1, "the worker's half taken");
        // A base that differs in its second half does not give the layer.
        let mut other = old.clone();
        other[old.len() - 1000] ^= 1;
        assert!(!rebuilds(&gzip(&other), list, &data, &layer));
    }

    /// A reader that counts what it hands out.
    struct Counted<'a>(&'a [u8], std::rc::Rc<std::cell::Cell<usize>>);

    impl Read for Counted<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.read(buf)?;
            self.1.set(self.1.get() + n);
            Ok(n)
        }
    }

    #[test]
    fn the_whole_base_is_read_even_where_windows_end_before_it() {
        // A base twice the layer: the last window ends halfway through it,
        // yet all of it must pass its verifying reader.
        let (old, new) = versions();
        let mut long = old.clone();
        long.extend(versions().1.iter().rev());
        let (base, layer) = (gzip(&long), gzip(&new));
        let seen = std::rc::Rc::new(std::cell::Cell::new(0));
        let counted = Counted(&base, seen.clone());
        // Said to be the layer's size: windows then follow the layer's
        // offsets and stop halfway through the base.
        let size = layer.len() as u64;
        let (data, segments) = encode_in(
            counted,
            size,
            &layer[..],
            layer.len() as u64,
            u64::MAX,
            256 << 10,
            512 << 10,
        )
        .unwrap();
        let segments = segments.expect("in segments");
        let mut puffed = Vec::new();
        imo_puff::puff(&base[..], &mut puffed).unwrap();
        let last = segments.last().unwrap().to;
        assert!(
            last < puffed.len() as u64,
            "windows reach {last} of {}",
            puffed.len()
        );
        assert_eq!(seen.get(), base.len(), "the base was read to its end");
        assert!(rebuilds(&base, segments, &data, &layer));
    }

    #[test]
    fn layers_past_a_window_go_in_segments_that_rebuild_them_exactly() {
        // About 3 MiB of token form each, with small windows and segments:
        // the segmented path the corpus's layers are too small to take.
        let (mut old, mut new) = versions();
        old.extend(versions().0);
        new.extend(versions().1);
        let (base, layer) = (gzip(&old), gzip(&new));
        let (data, segments) = encode_in(
            &base[..],
            base.len() as u64,
            &layer[..],
            layer.len() as u64,
            u64::MAX,
            256 << 10,
            1 << 20,
        )
        .unwrap();
        let segments = segments.expect("in segments");
        assert!(segments.len() > 3, "{} segments", segments.len());
        assert!(data.len() * 20 < layer.len(), "delta {} bytes", data.len());
        assert!(rebuilds(&base, segments.clone(), &data, &layer));
        // Damaged: a window moved by a byte, a frame cut short.
        let mut moved = segments.clone();
        moved[1].from += 1;
        moved[1].to += 1;
        assert!(!rebuilds(&base, moved, &data, &layer));
        let mut cut = segments.clone();
        cut[0].frame -= 1;
        assert!(!rebuilds(&base, cut, &data, &layer));
        // Another base.
        let mut other = old.clone();
        other[2_000_000] ^= 1;
        assert!(!rebuilds(&gzip(&other), segments, &data, &layer));
    }
}
