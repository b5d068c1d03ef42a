//! The archive's side of deltas: one artifact manifest per image lists
//! its deltas, each a blob annotated with the layer it rebuilds and the
//! base layer it needs.

use serde_json::json;

use super::{whole, Segment, CODEC, CODEC_SEGMENTS, MAX_SEGMENTS, WINDOW};
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
/// Annotation: the codec ([`CODEC`] or [`CODEC_SEGMENTS`]).
pub const CODEC_KEY: &str = "dev.imo.delta.codec";
/// Annotation with [`CODEC_SEGMENTS`]: the segments in order, a JSON array
/// of `[from, to, frame]`: the base token form's window and the frame's
/// size in the data.
pub const SEGMENTS: &str = "dev.imo.delta.segments";
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
    /// Its segments; `None`: one frame against the whole base.
    pub segments: Option<Vec<Segment>>,
}

impl LayerDelta {
    /// A delta of `target` against `base` whose data is `data`, cut into
    /// `segments` (`None`: one frame against the whole base).
    pub fn new(
        subject: &Descriptor,
        target: &Descriptor,
        base: &Descriptor,
        data: &[u8],
        segments: Option<Vec<Segment>>,
    ) -> Self {
        let mut d = Descriptor::new(DATA_MEDIA_TYPE, Digest::sha256_of(data), data.len() as u64);
        let codec = if segments.is_some() {
            CODEC_SEGMENTS
        } else {
            CODEC
        };
        for (k, v) in [
            (TARGET, target.digest.to_string()),
            (TARGET_SIZE, target.size.to_string()),
            (TARGET_TYPE, target.media_type.clone()),
            (BASE, base.digest.to_string()),
            (BASE_SIZE, base.size.to_string()),
            (CODEC_KEY, codec.to_string()),
        ] {
            d.annotations.insert(k.to_string(), v);
        }
        if let Some(list) = &segments {
            let triples: Vec<[u64; 3]> = list.iter().map(|s| [s.from, s.to, s.frame]).collect();
            d.annotations
                .insert(SEGMENTS.to_string(), json!(triples).to_string());
        }
        LayerDelta {
            subject: subject.clone(),
            target: target.clone(),
            base: base.clone(),
            data: d,
            segments,
        }
    }

    /// The segments to rebuild from, the original form's one included.
    pub fn segments(&self) -> Vec<Segment> {
        self.segments
            .clone()
            .unwrap_or_else(|| whole(self.data.size))
    }
}

/// The segments an annotation lists, checked against the data's `size`:
/// in order, windows that never move back nor exceed [`WINDOW`], frames
/// that add up to the data.
fn parse_segments(text: &str, size: u64) -> std::result::Result<Vec<Segment>, String> {
    let triples: Vec<[u64; 3]> = serde_json::from_str(text)
        .map_err(|e| format!("{SEGMENTS} is not a list of triples: {e}"))?;
    if triples.is_empty() || triples.len() > MAX_SEGMENTS {
        return Err(format!("{} segments", triples.len()));
    }
    let mut last_from = 0;
    let mut total = 0u64;
    let mut out = Vec::with_capacity(triples.len());
    for [from, to, frame] in triples {
        if from < last_from || to < from || to - from > WINDOW as u64 {
            return Err(format!(
                "segment window {from}-{to} is out of order or too wide"
            ));
        }
        last_from = from;
        total = total.saturating_add(frame);
        out.push(Segment { from, to, frame });
    }
    if total != size {
        return Err(format!("segments of {total} bytes in {size} bytes of data"));
    }
    Ok(out)
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
        let codec = get(CODEC_KEY)?;
        if data.media_type != DATA_MEDIA_TYPE || (codec != CODEC && codec != CODEC_SEGMENTS) {
            return Err(bad(format!(
                "delta {} uses codec {codec}, which this imo does not know",
                data.digest,
            )));
        }
        let segments = if codec == CODEC_SEGMENTS {
            let list = parse_segments(get(SEGMENTS)?, data.size)
                .map_err(|why| bad(format!("delta {}: {why}", data.digest)))?;
            Some(list)
        } else {
            None
        };
        out.push(LayerDelta {
            subject: subject.clone(),
            target: Descriptor::new(get(TARGET_TYPE)?, digest(TARGET)?, size(TARGET_SIZE)?),
            base: Descriptor::new(get(TARGET_TYPE)?, digest(BASE)?, size(BASE_SIZE)?),
            data: data.clone(),
            segments,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(media_type: &str, seed: &[u8]) -> Descriptor {
        Descriptor::new(
            media_type,
            Digest::sha256_of(seed),
            seed.len() as u64 * 1000,
        )
    }

    #[test]
    fn deltas_read_back_from_their_artifact_whole_or_in_segments() {
        let subject = desc("application/vnd.oci.image.manifest.v1+json", b"m");
        let (target, base) = (desc("x+gzip", b"t"), desc("x+gzip", b"b"));
        let segments = vec![
            Segment {
                from: 0,
                to: 100,
                frame: 7,
            },
            Segment {
                from: 40,
                to: 140,
                frame: 3,
            },
        ];
        let whole_one = LayerDelta::new(&subject, &target, &base, b"0123456789", None);
        let cut = LayerDelta::new(
            &subject,
            &target,
            &base,
            b"abcdefghij",
            Some(segments.clone()),
        );
        assert_eq!(whole_one.data.annotations[CODEC_KEY], CODEC);
        assert!(!whole_one.data.annotations.contains_key(SEGMENTS));
        assert_eq!(cut.data.annotations[CODEC_KEY], CODEC_SEGMENTS);
        let m = artifact(&subject.clone(), &[&whole_one, &cut]).unwrap();
        let back = parse_artifact(&m, "test").unwrap();
        assert_eq!(back[0].segments, None);
        assert_eq!(back[0].segments(), whole(10));
        assert_eq!(back[1].segments.as_deref(), Some(&segments[..]));
        assert_eq!(back[1].target.digest, target.digest);
    }

    #[test]
    fn segment_lists_that_do_not_fit_the_data_are_refused() {
        assert!(parse_segments("[[0,10,4],[5,15,6]]", 10).is_ok());
        for (text, why) in [
            ("[[0,10,4],[5,15,5]]", "frames short of the data"),
            ("[[5,10,4],[0,15,6]]", "a window moving back"),
            ("[[10,5,10]]", "a window ending before it starts"),
            (
                &format!("[[0,{},10]]", WINDOW as u64 + 1),
                "a window too wide",
            ),
            ("[]", "no segments"),
            ("[[0,10]]", "not triples"),
            ("{}", "not a list"),
        ] {
            assert!(parse_segments(text, 10).is_err(), "{why}: {text}");
        }
    }
}
