//! Attachments: signatures, attestations and SBOMs that travel with an
//! image. Two conventions find them: cosign's tags (`sha256-<hex>.sig`,
//! `.att`, `.sbom` beside the image) and OCI 1.1 referrers (manifests whose
//! `subject` names the image), listed by the registry's referrers API or,
//! where it has none, by the fallback tag `sha256-<hex>` holding an index.
//! In an archive each is an ordinary manifest, listed in `index.json`
//! without a ref name, annotated with what it attaches to
//! ([`SUBJECT`]) and the tag it was found under ([`FOUND_AS`]).

use crate::digest::Digest;
use crate::manifest::{Descriptor, Parsed, RawManifest};

/// Annotation on an attachment's `index.json` entry: the digest of the
/// manifest it attaches to.
pub const SUBJECT: &str = "dev.imo.attachment.subject";
/// Annotation on an attachment's `index.json` entry: the tag it was found
/// under (cosign's schema); absent for a referrer.
pub const FOUND_AS: &str = "dev.imo.attachment.tag";
/// The suffixes of cosign's attachment tags.
pub const TAG_KINDS: [&str; 3] = ["sig", "att", "sbom"];
/// How deep attachments of attachments are followed (a signature of an
/// SBOM of an image is depth 2).
pub const MAX_DEPTH: usize = 3;

/// An attachment found for a manifest.
#[derive(Debug, Clone)]
pub struct Attachment {
    /// Its manifest, byte for byte.
    pub manifest: RawManifest,
    /// Its descriptor as a referrers list carries it (artifactType,
    /// annotations), kept as found.
    pub desc: Descriptor,
    /// The manifest it attaches to.
    pub subject: Digest,
    /// The tag it was found under (cosign's schema), none for a referrer.
    pub tag: Option<String>,
}

impl Attachment {
    /// Its kind, for filters and reports: the tag's suffix (`sig`, `att`,
    /// `sbom`) for a tag-schema attachment, else its artifact type.
    pub fn kind(&self) -> String {
        if let Some(t) = &self.tag {
            if let Some((_, suffix)) = t.rsplit_once('.') {
                return suffix.to_string();
            }
        }
        self.desc
            .artifact_type
            .clone()
            .unwrap_or_else(|| self.desc.media_type.clone())
    }

    /// Whether `--attachment-type` keeps it (no types: every one). A type
    /// matches the kind, or the artifact type.
    pub fn wanted(&self, types: &[String]) -> bool {
        types.is_empty()
            || types.iter().any(|t| {
                *t == self.kind() || Some(t.as_str()) == self.desc.artifact_type.as_deref()
            })
    }
}

/// The tag cosign's schema gives `digest`'s attachment of `kind`, or, with
/// no kind, the referrers fallback tag: `sha256-<hex>[.kind]`.
pub fn tag_for(digest: &Digest, kind: Option<&str>) -> String {
    let base = format!("{}-{}", digest.algorithm(), digest.hex());
    match kind {
        Some(k) => format!("{base}.{k}"),
        None => base,
    }
}

/// A referrer's descriptor as the referrers API lists it: its artifact type
/// (the manifest's, else its config's media type) and its annotations.
pub fn referrer_descriptor(m: &RawManifest) -> Descriptor {
    let mut d = m.descriptor();
    if let Parsed::Image(img) = &m.parsed {
        d.artifact_type = img
            .artifact_type
            .clone()
            .or_else(|| Some(img.config.media_type.clone()));
        d.annotations = img.annotations.clone();
    }
    d
}

/// What pull, plan and copy collect.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Collect attachments at all.
    pub enabled: bool,
    /// Only these kinds or artifact types (empty: all).
    pub types: Vec<String>,
}

impl Filter {
    /// Every attachment.
    pub fn all() -> Self {
        Filter {
            enabled: true,
            types: Vec::new(),
        }
    }

    /// None.
    pub fn none() -> Self {
        Filter::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::DigestOf;

    fn manifest(json: &str) -> RawManifest {
        RawManifest::parse(json.as_bytes().to_vec(), None, "t").unwrap()
    }

    #[test]
    fn tags_kinds_and_descriptors() {
        let d = Digest::sha256_of(b"image");
        assert_eq!(tag_for(&d, Some("sig")), format!("sha256-{}.sig", d.hex()));
        assert_eq!(tag_for(&d, None), format!("sha256-{}", d.hex()));
        let cfg = Digest::sha256_of(b"{}");
        let sbom = manifest(&format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/spdx+json","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{cfg}","size":2}},"layers":[],"annotations":{{"a":"b"}}}}"#
        ));
        let desc = referrer_descriptor(&sbom);
        assert_eq!(desc.artifact_type.as_deref(), Some("application/spdx+json"));
        assert_eq!(desc.annotations["a"], "b");
        let att = Attachment {
            manifest: sbom.clone(),
            desc,
            subject: d.clone(),
            tag: None,
        };
        assert_eq!(att.kind(), "application/spdx+json");
        assert!(att.wanted(&[]) && att.wanted(&["application/spdx+json".into()]));
        assert!(!att.wanted(&["sig".into()]));
        let sig = Attachment {
            tag: Some(tag_for(&d, Some("sig"))),
            ..att
        };
        assert_eq!(sig.kind(), "sig");
        assert!(sig.wanted(&["sig".into()]));
        // Without an artifact type, a referrer's type is its config's.
        let plain = manifest(&format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"application/vnd.example.thing","digest":"{cfg}","size":2}},"layers":[]}}"#
        ));
        assert_eq!(
            referrer_descriptor(&plain).artifact_type.as_deref(),
            Some("application/vnd.example.thing")
        );
    }
}
