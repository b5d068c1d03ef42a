//! Attachments made and checked without imo: cosign-format signatures
//! (signed here with an ECDSA P-256 key through ring) and OCI 1.1
//! referrers, listed in the fallback tag index as a client does for a
//! registry without the referrers API.

use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, KeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_ASN1,
    ECDSA_P256_SHA256_ASN1_SIGNING,
};
use serde_json::{json, Value};

use super::{sha256, Registry, OCI_INDEX, OCI_MANIFEST};

/// cosign's payload media type.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The annotation holding cosign's base64 signature.
pub const SIGNATURE: &str = "dev.cosignproject.cosign/signature";
/// OCI's empty config.
pub const EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// A signing key and its public half.
pub struct Signer {
    key: EcdsaKeyPair,
    rng: SystemRandom,
}

impl Signer {
    pub fn new() -> Signer {
        let rng = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).expect("key");
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .expect("key");
        Signer { key, rng }
    }

    pub fn public(&self) -> Vec<u8> {
        self.key.public_key().as_ref().to_vec()
    }

    /// Signs `digest` (an image in `repo` of `reg`) as cosign does: the
    /// simple-signing payload as a layer, the signature in its annotation,
    /// under the tag `sha256-<hex>.sig`. Returns the signature manifest's digest.
    pub fn sign(&self, reg: &Registry, repo: &str, digest: &str) -> String {
        let payload = serde_json::to_vec(&json!({
            "critical": {
                "identity": {"docker-reference": format!("{}/{repo}", reg.host())},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": null,
        }))
        .expect("payload");
        let sig = self.key.sign(&self.rng, &payload).expect("sign");
        let sig = base64::engine::general_purpose::STANDARD.encode(sig.as_ref());
        let config =
            br#"{"architecture":"","config":{},"os":"","rootfs":{"type":"layers","diff_ids":[]}}"#;
        let config_digest = reg.put_blob(repo, config);
        let payload_digest = reg.put_blob(repo, &payload);
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
            "layers": [{
                "mediaType": SIMPLE_SIGNING,
                "digest": payload_digest,
                "size": payload.len(),
                "annotations": {SIGNATURE: sig},
            }],
        }))
        .expect("manifest");
        reg.put_manifest(repo, &sig_tag(digest), OCI_MANIFEST, &manifest)
    }
}

/// cosign's signature tag for `digest`.
pub fn sig_tag(digest: &str) -> String {
    format!("{}.sig", fallback_tag(digest))
}

/// The referrers fallback tag for `digest`.
pub fn fallback_tag(digest: &str) -> String {
    digest.replacen(':', "-", 1)
}

/// Checks, with `public` and nothing of imo's, that `reg` holds a cosign
/// signature of `digest` in `repo`: found under its tag, its payload naming
/// `digest`, its signature valid.
pub fn verify(reg: &Registry, repo: &str, digest: &str, public: &[u8]) -> Result<(), String> {
    let resp = ureq::get(&format!(
        "http://{}/v2/{repo}/manifests/{}",
        reg.host(),
        sig_tag(digest)
    ))
    .set("accept", OCI_MANIFEST)
    .call()
    .map_err(|e| format!("no signature tag: {e}"))?;
    let manifest: Value = serde_json::from_reader(resp.into_reader()).map_err(|e| e.to_string())?;
    let layer = &manifest["layers"][0];
    if layer["mediaType"] != SIMPLE_SIGNING {
        return Err(format!("not a simple-signing layer: {layer}"));
    }
    let payload = reg
        .blob(repo, layer["digest"].as_str().unwrap_or(""))
        .ok_or("no payload blob")?;
    let body: Value = serde_json::from_slice(&payload).map_err(|e| e.to_string())?;
    if body["critical"]["image"]["docker-manifest-digest"] != digest {
        return Err(format!("the payload names another image: {body}"));
    }
    let sig = base64::engine::general_purpose::STANDARD
        .decode(layer["annotations"][SIGNATURE].as_str().unwrap_or(""))
        .map_err(|e| e.to_string())?;
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, public)
        .verify(&payload, &sig)
        .map_err(|_| "the signature does not verify".to_string())
}

/// A referrer of `subject` (an OCI manifest with `subject`) carrying
/// `content` as one layer of type `artifact_type`; stored by digest.
/// Returns its digest and its descriptor as a referrers list gives it.
pub fn push_referrer(
    reg: &Registry,
    repo: &str,
    subject: (&str, usize, &str),
    artifact_type: &str,
    content: &[u8],
) -> (String, Value) {
    let (subject_digest, subject_size, subject_type) = subject;
    let empty = reg.put_blob(repo, b"{}");
    let blob = reg.put_blob(repo, content);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": EMPTY, "digest": empty, "size": 2},
        "layers": [{"mediaType": artifact_type, "digest": blob, "size": content.len()}],
        "subject": {"mediaType": subject_type, "digest": subject_digest, "size": subject_size},
        "annotations": {"org.opencontainers.image.created": "2026-12-01T00:00:00Z"},
    }))
    .expect("manifest");
    let digest = sha256(&manifest);
    reg.put_manifest(repo, &digest, OCI_MANIFEST, &manifest);
    let desc = json!({
        "mediaType": OCI_MANIFEST,
        "digest": digest,
        "size": manifest.len(),
        "artifactType": artifact_type,
        "annotations": {"org.opencontainers.image.created": "2026-12-01T00:00:00Z"},
    });
    (digest, desc)
}

/// Writes the fallback tag index of `subject` listing `entries`.
pub fn list_referrers(reg: &Registry, repo: &str, subject: &str, entries: &[Value]) {
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": entries,
    }))
    .expect("index");
    reg.put_manifest(repo, &fallback_tag(subject), OCI_INDEX, &index);
}

/// The digests a fallback tag index lists, if the tag exists.
pub fn listed(reg: &Registry, repo: &str, subject: &str) -> Option<Vec<String>> {
    let resp = ureq::get(&format!(
        "http://{}/v2/{repo}/manifests/{}",
        reg.host(),
        fallback_tag(subject)
    ))
    .set("accept", OCI_INDEX)
    .call()
    .ok()?;
    let index: Value = serde_json::from_reader(resp.into_reader()).ok()?;
    Some(
        index["manifests"]
            .as_array()?
            .iter()
            .filter_map(|d| d["digest"].as_str().map(str::to_string))
            .collect(),
    )
}
