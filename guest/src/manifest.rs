//! OCI and Docker v2 manifests and indexes: just the fields imo needs, with the
//! exact bytes kept alongside so digests never change.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::{Digest, DigestOf};
use crate::error::{Error, Result};
use crate::platform::Platform;

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker v2 schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker v2 manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Value of the Accept header for manifest requests.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// Largest manifest or index imo accepts, as containerd and distribution do.
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

/// Annotation naming the tag of an image in an OCI layout's `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    pub media_type: String,
    /// Digest of the referenced content.
    #[serde(with = "digest_serde")]
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
    /// Where a foreign layer can be fetched instead of the registry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    /// Platform, for index entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The artifact type, for artifacts and referrers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Any other field (`data`, …), kept as it was.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl Descriptor {
    /// A plain descriptor.
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Self {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            urls: Vec::new(),
            platform: None,
            annotations: BTreeMap::new(),
            artifact_type: None,
            other: BTreeMap::new(),
        }
    }

    /// Foreign or non-distributable layers must never be downloaded or pushed.
    pub fn is_foreign(&self) -> bool {
        !self.urls.is_empty()
            || self.media_type.contains("foreign")
            || self.media_type.contains("nondistributable")
    }
}

mod digest_serde {
    use super::Digest;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Digest, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(d)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    schema_version: Option<u32>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    config: Option<serde::de::IgnoredAny>,
}

/// An image manifest's blobs.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    /// The config blob.
    pub config: Descriptor,
    /// The layers, bottom first.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// The manifest this one refers to (a signature's, an SBOM's image).
    #[serde(default)]
    pub subject: Option<Descriptor>,
    /// The artifact type, for artifacts.
    #[serde(default)]
    pub artifact_type: Option<String>,
    /// Annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// An index or manifest list.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    /// The child manifests.
    pub manifests: Vec<Descriptor>,
}

/// A parsed manifest document.
#[derive(Debug, Clone)]
pub enum Parsed {
    /// A single-platform image.
    Image(Box<ImageManifest>),
    /// An index / manifest list.
    Index(ImageIndex),
}

/// A manifest or index exactly as served, with its media type and digest.
#[derive(Debug, Clone)]
pub struct RawManifest {
    /// The exact bytes.
    pub bytes: Vec<u8>,
    /// The media type (from the document, else the Content-Type header).
    pub media_type: String,
    /// The digest of `bytes`.
    pub digest: Digest,
    /// The parsed content.
    pub parsed: Parsed,
}

impl RawManifest {
    /// Parses `bytes`, using `content_type` when the document names no media
    /// type; `origin` names the manifest for error messages.
    pub fn parse(bytes: Vec<u8>, content_type: Option<&str>, origin: &str) -> Result<Self> {
        let bad = |why: String| Error::Registry(format!("manifest {origin} is not usable: {why}"));
        let probe: Probe =
            serde_json::from_slice(&bytes).map_err(|e| bad(format!("invalid JSON: {e}")))?;
        let content_type = content_type
            .map(|c| c.split(';').next().unwrap_or("").trim().to_string())
            .filter(|c| !c.is_empty());
        let media_type = match (probe.media_type, content_type) {
            (Some(m), _) => m,
            (None, Some(c)) if c != "application/json" && c != "text/plain" => c,
            // OCI documents may omit mediaType: tell them apart by shape.
            _ if probe.manifests.is_some() => OCI_INDEX.to_string(),
            _ if probe.config.is_some() => OCI_MANIFEST.to_string(),
            _ => return Err(bad("no media type".into())),
        };
        if probe.schema_version != Some(2) {
            return Err(bad(format!(
                "schemaVersion {:?} is not supported (only 2)",
                probe.schema_version
            )));
        }
        let parsed = match media_type.as_str() {
            OCI_INDEX | DOCKER_LIST => Parsed::Index(
                serde_json::from_slice(&bytes).map_err(|e| bad(format!("invalid index: {e}")))?,
            ),
            OCI_MANIFEST | DOCKER_MANIFEST => Parsed::Image(
                serde_json::from_slice(&bytes)
                    .map_err(|e| bad(format!("invalid manifest: {e}")))?,
            ),
            other => return Err(bad(format!("unsupported media type {other}"))),
        };
        let digest = Digest::sha256_of(&bytes);
        Ok(RawManifest {
            bytes,
            media_type,
            digest,
            parsed,
        })
    }

    /// A descriptor for this document.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(
            &self.media_type,
            self.digest.clone(),
            self.bytes.len() as u64,
        )
    }
}

/// Picks the entry of `index` for `wanted`, as docker and skopeo do.
pub fn select_platform<'a>(index: &'a ImageIndex, wanted: &Platform) -> Option<&'a Descriptor> {
    index
        .manifests
        .iter()
        .find(|d| d.platform.as_ref().is_some_and(|p| wanted.matches(p)))
}

/// The platforms an index offers, for error messages.
pub fn platforms(index: &ImageIndex) -> String {
    let list: Vec<String> = index
        .manifests
        .iter()
        .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
        .collect();
    if list.is_empty() {
        "none".into()
    } else {
        list.join(", ")
    }
}

/// Annotation imo adds in `index.json`: the registry reference of the base the
/// archive was made against, a mount source for `push`.
pub const BASE_NAME: &str = "dev.imo.base.name";

/// Annotation on an image of a set: the source it came from. Its presence
/// marks an archive as a set, whose tags are destination paths (`path:tag`).
pub const SOURCE_NAME: &str = "dev.imo.source";

/// Annotation on an image of a set: where the far side holds the blobs it
/// leaves out, comma-separated: `registry/repository`, or `./path` for a
/// repository below the prefix the set is pushed to.
pub const MOUNT_FROM: &str = "dev.imo.mount-from";

/// An OCI layout's `index.json`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LayoutIndex {
    schema_version: u32,
    media_type: &'static str,
    manifests: Vec<Descriptor>,
}

impl LayoutIndex {
    /// An `index.json` pointing at `top`, tagged `tag`, made against `base`.
    pub fn new(mut top: Descriptor, tag: Option<&str>, base: Option<&str>) -> Self {
        if let Some(tag) = tag {
            top.annotations
                .insert(REF_NAME.to_string(), tag.to_string());
        }
        if let Some(base) = base {
            top.annotations
                .insert(BASE_NAME.to_string(), base.to_string());
        }
        LayoutIndex {
            schema_version: 2,
            media_type: OCI_INDEX,
            manifests: vec![top],
        }
    }

    /// An `index.json` listing `entries`, annotated as they are.
    pub fn of(entries: Vec<Descriptor>) -> Self {
        LayoutIndex {
            schema_version: 2,
            media_type: OCI_INDEX,
            manifests: entries,
        }
    }

    /// The serialised JSON.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/");

    fn load(name: &str) -> RawManifest {
        let bytes = std::fs::read(format!("{CORPUS}{name}")).unwrap();
        RawManifest::parse(bytes, None, name).unwrap()
    }

    #[test]
    fn parses_oci_index_and_selects_platform() {
        let m = load("multi_v2.manifest.json");
        assert_eq!(m.media_type, OCI_INDEX);
        let Parsed::Index(index) = &m.parsed else {
            panic!("not an index")
        };
        assert_eq!(index.manifests.len(), 2);
        let arm = select_platform(index, &Platform::parse("linux/arm64").unwrap()).unwrap();
        assert_eq!(arm.platform.as_ref().unwrap().architecture, "arm64");
        assert!(select_platform(index, &Platform::parse("linux/s390x").unwrap()).is_none());
        assert_eq!(platforms(index), "linux/amd64, linux/arm64/v8");
    }

    #[test]
    fn parses_image_manifest_and_keeps_bytes() {
        let m = load("app_v2.manifest.json");
        let Parsed::Image(img) = &m.parsed else {
            panic!("not an image")
        };
        assert_eq!(img.layers.len(), 2);
        assert_eq!(m.digest, Digest::sha256_of(&m.bytes));
        assert!(!img.layers[0].is_foreign());
    }

    #[test]
    fn docker_types_and_content_type_fallback() {
        let doc = br#"{"schemaVersion":2,"manifests":[]}"#.to_vec();
        let m = RawManifest::parse(doc.clone(), Some(DOCKER_LIST), "x").unwrap();
        assert_eq!(m.media_type, DOCKER_LIST);
        let m = RawManifest::parse(doc, Some("application/json"), "x").unwrap();
        assert_eq!(m.media_type, OCI_INDEX);
    }

    #[test]
    fn rejects_unusable_documents() {
        for (doc, why) in [
            (
                &br#"{"schemaVersion":1,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#
                    [..],
                "schemaVersion",
            ),
            (br#"not json"#, "invalid JSON"),
            (
                br#"{"schemaVersion":2,"mediaType":"text/html"}"#,
                "unsupported media type",
            ),
            (
                br#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:00","size":1}}"#,
                "invalid digest",
            ),
        ] {
            let err = RawManifest::parse(doc.to_vec(), None, "repo@x")
                .unwrap_err()
                .to_string();
            assert!(err.contains(why) && err.contains("repo@x"), "{err}");
        }
    }

    #[test]
    fn foreign_layers() {
        let d = |mt: &str, urls: Vec<String>| Descriptor {
            urls,
            ..Descriptor::new(mt, Digest::sha256_of(b""), 0)
        };
        assert!(d(
            "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
            vec![]
        )
        .is_foreign());
        assert!(d(
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            vec![]
        )
        .is_foreign());
        assert!(d(
            "application/vnd.oci.image.layer.v1.tar+gzip",
            vec!["https://x".into()]
        )
        .is_foreign());
        assert!(!d("application/vnd.oci.image.layer.v1.tar+gzip", vec![]).is_foreign());
    }

    #[test]
    fn layout_index_names_tag() {
        let m = load("app_v2.manifest.json");
        let json = LayoutIndex::new(m.descriptor(), Some("v2"), Some("r/app:v1")).to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["manifests"][0]["annotations"][REF_NAME], "v2");
        assert_eq!(v["manifests"][0]["digest"], m.digest.to_string());
        assert_eq!(v["schemaVersion"], 2);
        assert_eq!(v["manifests"][0]["annotations"][BASE_NAME], "r/app:v1");
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        fn json() -> impl Strategy<Value = serde_json::Value> {
            let leaf = prop_oneof![
                Just(serde_json::Value::Null),
                any::<bool>().prop_map(serde_json::Value::from),
                any::<i64>().prop_map(serde_json::Value::from),
                "[a-z:0-9.+/]{0,20}".prop_map(serde_json::Value::from),
            ];
            leaf.prop_recursive(4, 32, 6, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
                    prop::collection::btree_map(
                        prop_oneof![
                            Just("schemaVersion".to_string()),
                            Just("mediaType".to_string()),
                            Just("manifests".to_string()),
                            Just("config".to_string()),
                            Just("layers".to_string()),
                            Just("digest".to_string()),
                            Just("size".to_string()),
                            "[a-z]{1,6}"
                        ],
                        inner,
                        0..6,
                    )
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
                ]
            })
        }

        proptest! {
            #[test]
            fn bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
                let _ = RawManifest::parse(bytes, None, "x");
            }

            #[test]
            fn json_never_panics(doc in json(), ct in prop_oneof![Just(None), Just(Some(OCI_INDEX)), Just(Some(DOCKER_MANIFEST))]) {
                if let Ok(m) = RawManifest::parse(serde_json::to_vec(&doc).unwrap(), ct, "x") {
                    prop_assert_eq!(m.digest, Digest::sha256_of(&m.bytes));
                }
            }
        }
    }
}
