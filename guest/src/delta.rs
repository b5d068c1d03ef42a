//! Content-level layer deltas: a changed gzip layer shipped as the
//! difference between its token form and the base layer's (see
//! `imo-puff`), compressed by zstd with the base's token form as a
//! reference prefix ("patch-from"), and rebuilt bit for bit at the far
//! side, digest unchanged.
//!
//! The sender proves each delta before using it: it rebuilds the layer
//! with [`decode`], the very code the receiver runs, and checks the digest.

use std::io::{self, Read, Write};

use std::collections::HashMap;

use serde_json::json;

use crate::bindings::imo::incremental::types::ProgressEvent;
use crate::concurrent::{Blocking, PollRead, Ready};
use crate::digest::{classify_io, Digest, DigestOf, Hasher, VerifyingReader};
use crate::error::{Error, Result};
use crate::host::emit;
use crate::manifest::{select_platform, Descriptor, Parsed, RawManifest};
use crate::plan::{Action, Plan};
use crate::platform::Platform;
use crate::reference::Reference;
use crate::source::Source;

/// The codec's name, as delta descriptors record it.
pub const CODEC: &str = "puff+zstd-patch-from";

/// The artifact type of the manifest that lists an image's deltas.
pub const ARTIFACT_TYPE: &str = "application/vnd.imo.layer-deltas.v1";
/// The media type of one delta's data.
pub const DATA_MEDIA_TYPE: &str = "application/vnd.imo.layer-delta.v1.puff.zstd";
/// Annotation on a delta's descriptor: the layer it rebuilds.
pub const TARGET: &str = "dev.imo.delta.target";
/// Annotation: that layer's size.
pub const TARGET_SIZE: &str = "dev.imo.delta.target.size";
/// Annotation: that layer's media type.
pub const TARGET_TYPE: &str = "dev.imo.delta.target.mediaType";
/// Annotation: the base layer it is made against.
pub const BASE: &str = "dev.imo.delta.base";
/// Annotation: the base layer's size.
pub const BASE_SIZE: &str = "dev.imo.delta.base.size";
/// Annotation: the codec ([`CODEC`]).
pub const CODEC_KEY: &str = "dev.imo.delta.codec";
/// Annotation on the artifact's `index.json` entry: the image manifest
/// whose layers it rebuilds. (Not the attachment annotation: deltas are
/// the archive's business, they do not land at the destination.)
pub const SUBJECT: &str = "dev.imo.delta.subject";
/// The OCI empty config, `{}`.
pub const EMPTY_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// Its content.
pub const EMPTY: &[u8] = b"{}";

/// One layer shipped as a delta.
#[derive(Debug, Clone)]
pub struct LayerDelta {
    /// The image manifest whose layer it is.
    pub subject: Descriptor,
    /// The layer it rebuilds, as its manifest lists it.
    pub target: Descriptor,
    /// The layer it is made against, which the far side holds.
    pub base: Descriptor,
    /// The delta data blob.
    pub data: Descriptor,
}

impl LayerDelta {
    /// A delta of `target` against `base` whose data is `data`.
    pub fn new(subject: &Descriptor, target: &Descriptor, base: &Descriptor, data: &[u8]) -> Self {
        let mut d = Descriptor::new(DATA_MEDIA_TYPE, Digest::sha256_of(data), data.len() as u64);
        for (k, v) in [
            (TARGET, target.digest.to_string()),
            (TARGET_SIZE, target.size.to_string()),
            (TARGET_TYPE, target.media_type.clone()),
            (BASE, base.digest.to_string()),
            (BASE_SIZE, base.size.to_string()),
            (CODEC_KEY, CODEC.to_string()),
        ] {
            d.annotations.insert(k.to_string(), v);
        }
        LayerDelta {
            subject: subject.clone(),
            target: target.clone(),
            base: base.clone(),
            data: d,
        }
    }
}

/// The artifact manifest listing `deltas`, all of one image (`subject`).
pub fn artifact(subject: &Descriptor, deltas: &[&LayerDelta]) -> Result<RawManifest> {
    let plain = |d: &Descriptor| Descriptor::new(&d.media_type, d.digest.clone(), d.size);
    let doc = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": ARTIFACT_TYPE,
        "config": Descriptor::new(EMPTY_TYPE, Digest::sha256_of(EMPTY), EMPTY.len() as u64),
        "layers": deltas.iter().map(|d| &d.data).collect::<Vec<_>>(),
        "subject": plain(subject),
    });
    let bytes = serde_json::to_vec(&doc).map_err(|e| Error::Registry(e.to_string()))?;
    RawManifest::parse(bytes, None, "a delta artifact")
}

/// The deltas an artifact lists; `shown` names the archive for errors.
pub fn parse_artifact(m: &RawManifest, shown: &str) -> Result<Vec<LayerDelta>> {
    let bad =
        |why: String| Error::CorruptArchive(format!("{shown}: delta artifact {}: {why}", m.digest));
    let Parsed::Image(img) = &m.parsed else {
        return Err(bad("is an index".into()));
    };
    if img.artifact_type.as_deref() != Some(ARTIFACT_TYPE) {
        return Err(bad("is not a delta artifact".into()));
    }
    let subject = img
        .subject
        .clone()
        .ok_or_else(|| bad("names no subject".into()))?;
    let mut out = Vec::new();
    for data in &img.layers {
        let get = |k: &str| {
            data.annotations
                .get(k)
                .ok_or_else(|| bad(format!("delta {} lacks annotation {k}", data.digest)))
        };
        let size = |k: &str| {
            get(k)?
                .parse::<u64>()
                .map_err(|_| bad(format!("delta {}: {k} is not a size", data.digest)))
        };
        let digest = |k: &str| {
            Digest::parse(get(k)?).map_err(|e| bad(format!("delta {}: {k}: {e}", data.digest)))
        };
        if data.media_type != DATA_MEDIA_TYPE || get(CODEC_KEY)? != CODEC {
            return Err(bad(format!(
                "delta {} uses codec {}, which this imo does not know",
                data.digest,
                data.annotations.get(CODEC_KEY).map_or("?", String::as_str)
            )));
        }
        out.push(LayerDelta {
            subject: subject.clone(),
            target: Descriptor::new(get(TARGET_TYPE)?, digest(TARGET)?, size(TARGET_SIZE)?),
            base: Descriptor::new(get(TARGET_TYPE)?, digest(BASE)?, size(BASE_SIZE)?),
            data: data.clone(),
        });
    }
    Ok(out)
}

/// zstd level: on the corpus's `app` layer (21.0 MB) level 12 made a
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

/// Most delta data one pull holds before writing it.
const MAX_HELD: u64 = 64 << 20;

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
    // The huffer reads a token at a time: buffer the decoder's output.
    Ok(imo_puff::Huffer::new(io::BufReader::with_capacity(
        1 << 16,
        decoder,
    )))
}

/// Whether a layer of `media_type` can be shipped as a delta (gzip).
pub fn applies_to(media_type: &str) -> bool {
    media_type.ends_with("gzip")
}

/// Reads blob `d` of `source`, verified as it streams.
pub(crate) fn read_blob<'a>(source: &'a dyn Source, d: &Descriptor) -> Result<impl Read + 'a> {
    Ok(Blocking(VerifyingReader::new(
        source.blob(d)?,
        d.digest.clone(),
        d.size,
        source.name(),
    )))
}

/// The layers of the image of `base` for `platform` (its only image if it
/// is not an index).
fn base_layers(
    base: &dyn Source,
    top: &RawManifest,
    platform: &Platform,
) -> Result<Vec<Descriptor>> {
    let image = match &top.parsed {
        Parsed::Image(_) => top.clone(),
        Parsed::Index(ix) => match select_platform(ix, platform) {
            Some(d) => base.manifest(d)?,
            None => return Ok(Vec::new()),
        },
    };
    Ok(match image.parsed {
        Parsed::Image(img) => img.layers,
        Parsed::Index(_) => Vec::new(),
    })
}

/// The base layer to diff layer `i` of an image against: the base's layer
/// in the same position, else its gzip layer closest in size.
fn pick<'a>(base: &'a [Descriptor], i: usize, target: &Descriptor) -> Option<&'a Descriptor> {
    let usable = |d: &&Descriptor| applies_to(&d.media_type) && d.digest != target.digest;
    base.get(i).filter(usable).or_else(|| {
        base.iter()
            .filter(usable)
            .min_by_key(|d| d.size.abs_diff(target.size))
    })
}

/// Makes, proves and keeps a delta for each gzip layer `plan` copies whose
/// image has a counterpart in `base` (same platform), where the delta is
/// under half the layer; the rest go whole, as before. Each is proved by
/// rebuilding the layer with the receiver's code and checking its digest.
pub fn make(
    plan: &Plan,
    base: &dyn Source,
    final_: &dyn Source,
    want: &Platform,
) -> Result<Vec<(LayerDelta, Vec<u8>)>> {
    let base_top = base.top()?;
    let mut out: Vec<(LayerDelta, Vec<u8>)> = Vec::new();
    let mut held = 0u64;
    let mut cached: Option<(Digest, Vec<u8>)> = None;
    for image in &plan.images {
        let platform = image.platform.as_ref().unwrap_or(want);
        let base_layers = base_layers(base, &base_top, platform)?;
        let layers = image.blobs.iter().filter(|b| b.is_layer);
        for (i, b) in layers.enumerate() {
            let target = &b.desc;
            if b.action != Action::Include
                || !applies_to(&target.media_type)
                || out.iter().any(|(d, _)| d.target.digest == target.digest)
            {
                continue;
            }
            let Some(against) = pick(&base_layers, i, target) else {
                continue;
            };
            let made = if held >= MAX_HELD {
                Err(format!("the deltas so far hold {held} bytes"))
            } else {
                attempt(base, final_, against, target, &mut cached)?
            };
            match made {
                Ok(data) => {
                    emit(ProgressEvent::Note(format!(
                        "layer {}: a delta of {} bytes against {} ({} bytes)",
                        target.digest,
                        data.len(),
                        against.digest,
                        target.size
                    )));
                    held += data.len() as u64;
                    let delta = LayerDelta::new(&image.manifest, target, against, &data);
                    out.push((delta, data));
                }
                Err(why) => emit(ProgressEvent::Note(format!(
                    "layer {}: whole ({why})",
                    target.digest
                ))),
            }
        }
    }
    Ok(out)
}

/// A proved delta of `target` against `against` (whose token form is kept
/// in `cached` for the next layer), or why the layer goes whole; an error
/// only when reading fails.
fn attempt(
    base: &dyn Source,
    final_: &dyn Source,
    against: &Descriptor,
    target: &Descriptor,
    cached: &mut Option<(Digest, Vec<u8>)>,
) -> Result<std::result::Result<Vec<u8>, String>> {
    let whole = |e: Error| match e {
        Error::CorruptArchive(why) => Ok(Err(why)),
        other => Err(other),
    };
    if cached.as_ref().map(|(d, _)| d) != Some(&against.digest) {
        *cached = None;
        match reference(read_blob(base, against)?, against.size, MAX_REFERENCE) {
            Ok(r) => *cached = Some((against.digest.clone(), r)),
            Err(e) => return whole(e),
        }
    }
    let Some((_, r)) = cached.as_ref() else {
        return Ok(Err("no base layer".into()));
    };
    let data = match encode(r, read_blob(final_, target)?, target.size) {
        Ok(data) => data,
        Err(e) => return whole(e),
    };
    Ok(if data.len() as u64 * 2 >= target.size {
        Err(format!(
            "a delta would be {} of its {} bytes",
            data.len(),
            target.size
        ))
    } else if !proves(r, &data, &target.digest, target.size) {
        Err("its delta did not rebuild it exactly".into())
    } else {
        Ok(data)
    })
}

/// `inner` with the delta data (and the empty config) a pull made, which
/// the copy engine reads like any other blob.
pub struct WithData<'a> {
    inner: &'a dyn Source,
    data: HashMap<Digest, Vec<u8>>,
}

impl<'a> WithData<'a> {
    /// `inner` plus `made`.
    pub fn new(inner: &'a dyn Source, made: Vec<(LayerDelta, Vec<u8>)>) -> Self {
        let mut data: HashMap<Digest, Vec<u8>> = made
            .into_iter()
            .map(|(d, bytes)| (d.data.digest, bytes))
            .collect();
        data.insert(Digest::sha256_of(EMPTY), EMPTY.to_vec());
        WithData { inner, data }
    }
}

impl Source for WithData<'_> {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn tag(&self) -> Result<Option<String>> {
        self.inner.tag()
    }
    fn top(&self) -> Result<RawManifest> {
        self.inner.top()
    }
    fn manifest(&self, desc: &Descriptor) -> Result<RawManifest> {
        self.inner.manifest(desc)
    }
    fn holds(&self, digest: &Digest) -> bool {
        self.data.contains_key(digest) || self.inner.holds(digest)
    }
    fn blob(&self, desc: &Descriptor) -> Result<Box<dyn PollRead + '_>> {
        match self.data.get(&desc.digest) {
            Some(bytes) => Ok(Box::new(Ready(&bytes[..]))),
            None => self.inner.blob(desc),
        }
    }
    fn registry_reference(&self) -> Option<&Reference> {
        self.inner.registry_reference()
    }
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
