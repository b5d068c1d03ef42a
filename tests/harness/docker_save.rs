//! Tars shaped like what `docker save` writes, built here from uncompressed
//! layers: the legacy shape (`<id>/layer.tar`, `<config hex>.json`,
//! `repositories`, `manifest.json`) and Docker 25's (an OCI layout whose
//! manifest names the uncompressed layers, plus `manifest.json`).

use serde_json::{json, Value};

use super::sha256;

/// An image as `docker save` knows it: a config and uncompressed layers.
pub struct SavedImage {
    pub config: Vec<u8>,
    pub layers: Vec<Vec<u8>>,
    pub repo_tag: String,
}

impl SavedImage {
    /// An image of `layers` (uncompressed tars) tagged `repo_tag`.
    pub fn new(repo_tag: &str, layers: Vec<Vec<u8>>) -> SavedImage {
        let diff_ids: Vec<String> = layers.iter().map(|l| sha256(l)).collect();
        let config = serde_json::to_vec(&json!({
            "architecture": super::host_arch(),
            "os": "linux",
            "config": {"Env": ["PATH=/usr/bin"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))
        .expect("config json");
        SavedImage {
            config,
            layers,
            repo_tag: repo_tag.to_string(),
        }
    }

    pub fn config_digest(&self) -> String {
        sha256(&self.config)
    }

    pub fn diff_ids(&self) -> Vec<String> {
        self.layers.iter().map(|l| sha256(l)).collect()
    }

    /// The OCI manifest Docker 25 stores for it.
    pub fn oci_manifest(&self) -> Vec<u8> {
        let layers: Vec<Value> = self
            .layers
            .iter()
            .map(|l| {
                json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256(l), "size": l.len()})
            })
            .collect();
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": self.config_digest(), "size": self.config.len()},
            "layers": layers,
        }))
        .expect("manifest json")
    }
}

fn hex(digest: &str) -> &str {
    digest.trim_start_matches("sha256:")
}

fn append(tar: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
    let mut h = tar::Header::new_ustar();
    if name.ends_with('/') {
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
    } else {
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
    }
    h.set_mtime(1_700_000_000);
    tar.append_data(&mut h, name, data).expect("tar entry");
}

/// What `docker save` wrote before Docker 25.
pub fn legacy(images: &[&SavedImage]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut manifest = Vec::new();
    let mut repositories = serde_json::Map::new();
    for image in images {
        let mut layer_paths = Vec::new();
        let mut last = String::new();
        for (i, l) in image.layers.iter().enumerate() {
            // Docker's v1 ids: any 64 hex digits unique per layer.
            let id = hex(&sha256(format!("{}-{i}", image.config_digest()).as_bytes())).to_string();
            append(&mut tar, &format!("{id}/"), b"");
            append(&mut tar, &format!("{id}/VERSION"), b"1.0");
            append(&mut tar, &format!("{id}/json"), br#"{"id":"x"}"#);
            append(&mut tar, &format!("{id}/layer.tar"), l);
            layer_paths.push(format!("{id}/layer.tar"));
            last = id;
        }
        let config_name = format!("{}.json", hex(&image.config_digest()));
        append(&mut tar, &config_name, &image.config);
        manifest.push(
            json!({"Config": config_name, "RepoTags": [image.repo_tag], "Layers": layer_paths}),
        );
        let (repo, tag) = image.repo_tag.rsplit_once(':').expect("repo:tag");
        repositories.insert(repo.to_string(), json!({ tag: last }));
    }
    append(
        &mut tar,
        "manifest.json",
        &serde_json::to_vec(&manifest).expect("json"),
    );
    append(
        &mut tar,
        "repositories",
        &serde_json::to_vec(&Value::Object(repositories)).expect("json"),
    );
    tar.into_inner().expect("tar")
}

/// What `docker save` writes since Docker 25: an OCI layout and manifest.json.
pub fn v25(images: &[&SavedImage]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    append(&mut tar, "blobs/", b"");
    append(&mut tar, "blobs/sha256/", b"");
    let mut seen = std::collections::HashSet::new();
    let mut blob = |tar: &mut tar::Builder<Vec<u8>>, data: &[u8]| {
        let d = sha256(data);
        if seen.insert(d.clone()) {
            append(tar, &format!("blobs/sha256/{}", hex(&d)), data);
        }
        d
    };
    let mut index = Vec::new();
    let mut manifest = Vec::new();
    for image in images {
        let mut layer_paths = Vec::new();
        let mut sources = serde_json::Map::new();
        for l in &image.layers {
            let d = blob(&mut tar, l);
            layer_paths.push(format!("blobs/sha256/{}", hex(&d)));
            sources.insert(
                d.clone(),
                json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "size": l.len(), "digest": d}),
            );
        }
        let config = blob(&mut tar, &image.config);
        let m = image.oci_manifest();
        let md = blob(&mut tar, &m);
        let (_, tag) = image.repo_tag.rsplit_once(':').expect("repo:tag");
        index.push(json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": md,
            "size": m.len(),
            "annotations": {
                "io.containerd.image.name": format!("docker.io/library/{}", image.repo_tag),
                "org.opencontainers.image.ref.name": tag,
            },
        }));
        manifest.push(json!({
            "Config": format!("blobs/sha256/{}", hex(&config)),
            "RepoTags": [image.repo_tag],
            "Layers": layer_paths,
            "LayerSources": sources,
        }));
    }
    append(
        &mut tar,
        "index.json",
        &serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": index}))
            .expect("json"),
    );
    append(
        &mut tar,
        "manifest.json",
        &serde_json::to_vec(&manifest).expect("json"),
    );
    append(
        &mut tar,
        "oci-layout",
        br#"{"imageLayoutVersion": "1.0.0"}"#,
    );
    append(&mut tar, "repositories", b"{}");
    tar.into_inner().expect("tar")
}
