//! The archive's side of deltas: one artifact manifest per image lists
//! its deltas, each a blob annotated with the layer it rebuilds and the
//! base layer it needs.

use serde_json::json;

use super::CODEC;
use crate::digest::{Digest, DigestOf};
use crate::error::{Error, Result};
use crate::manifest::{Descriptor, Parsed, RawManifest};

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
