//! The sender's side of deltas: which layers get one, against which base
//! layer, each proved before it is kept; and the source that serves the
//! delta data to the copy engine.

use std::collections::HashMap;
use std::io::Read;

use super::{applies_to, encode, proves, whole, Encoded, LayerDelta, EMPTY};
use crate::bindings::imo::incremental::types::ProgressEvent;
use crate::concurrent::{Blocking, PollRead, Ready};
use crate::digest::{Digest, DigestOf, VerifyingReader};
use crate::error::{Error, Result};
use crate::host::emit;
use crate::manifest::{select_platform, Descriptor, Parsed, RawManifest};
use crate::plan::{Action, Plan};
use crate::platform::Platform;
use crate::reference::Reference;
use crate::source::Source;

/// Most delta data one pull holds before writing it (a set's images share
/// it: every image's data waits for the archive to be written).
pub const MAX_HELD: u64 = 64 << 20;

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
/// in the same position, else its gzip layer closest in size; only layers
/// the base holds (an incremental archive lacks some).
fn pick<'a>(
    base: &'a [Descriptor],
    i: usize,
    target: &Descriptor,
    holds: impl Fn(&Digest) -> bool,
) -> Option<&'a Descriptor> {
    let usable = |d: &&Descriptor| {
        applies_to(&d.media_type) && d.digest != target.digest && holds(&d.digest)
    };
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
/// `held` counts the delta data held so far, up to [`MAX_HELD`].
pub fn make(
    plan: &Plan,
    base: &dyn Source,
    final_: &dyn Source,
    want: &Platform,
    held: &mut u64,
) -> Result<Vec<(LayerDelta, Vec<u8>)>> {
    let base_top = base.top()?;
    let mut out: Vec<(LayerDelta, Vec<u8>)> = Vec::new();
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
            let Some(against) = pick(&base_layers, i, target, |d| base.holds(d)) else {
                continue;
            };
            let made = if *held >= MAX_HELD {
                Err(format!("the deltas so far hold {held} bytes"))
            } else {
                attempt(base, final_, against, target, MAX_HELD - *held)?
            };
            match made {
                Ok((data, segments)) => {
                    emit(ProgressEvent::Note(format!(
                        "layer {}: a delta of {} bytes against {} ({} bytes)",
                        target.digest,
                        data.len(),
                        against.digest,
                        target.size
                    )));
                    *held += data.len() as u64;
                    let delta = LayerDelta::new(&image.manifest, target, against, &data, segments);
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

/// A proved delta of `target` against `against`, in at most `budget`
/// bytes, or why the layer goes whole; an error only when reading fails.
/// The base is read twice: once to make the delta, once to prove it with
/// the receiver's code (neither holds more than a window of it).
fn attempt(
    base: &dyn Source,
    final_: &dyn Source,
    against: &Descriptor,
    target: &Descriptor,
    budget: u64,
) -> Result<std::result::Result<Encoded, String>> {
    let made = encode(
        read_blob(base, against)?,
        against.size,
        read_blob(final_, target)?,
        target.size,
        budget,
    );
    let (data, segments) = match made {
        Ok(made) => made,
        Err(Error::CorruptArchive(why)) => return Ok(Err(why)),
        Err(other) => return Err(other),
    };
    let list = segments.clone().unwrap_or_else(|| whole(data.len() as u64));
    let base_layer = read_blob(base, against)?;
    Ok(if data.len() as u64 * 2 >= target.size {
        Err(format!(
            "a delta would be {} of its {} bytes",
            data.len(),
            target.size
        ))
    } else if !proves(
        base_layer,
        against.size,
        list,
        &data,
        &target.digest,
        target.size,
    ) {
        Err("its delta did not rebuild it exactly".into())
    } else {
        Ok((data, segments))
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
