//! End-to-end harness: a real `docker-registry` per test on a free loopback
//! port, test images built and uploaded here, and independent checks
//! (sha256 of every blob, skopeo) of what imo writes.

#![allow(dead_code)]

pub mod attach;
pub mod auth;
pub mod delta;
pub mod docker_save;
pub mod faults;
pub mod relay;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    let h = Sha256::digest(bytes);
    let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a loopback port")
}

/// Extra configuration of a harness registry.
#[derive(Default)]
pub struct Config {
    /// YAML added to the `storage:` section (indented two spaces).
    pub storage: String,
    /// Top-level YAML sections (`auth:` …).
    pub top: String,
    /// Serve HTTPS with this certificate and key.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// With TLS, require client certificates signed by this CA.
    pub client_ca: Option<PathBuf>,
}

/// A `docker-registry` on 127.0.0.1, stopped on drop.
pub struct Registry {
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl Registry {
    /// Starts a registry with empty storage and waits until `/v2/` answers.
    pub fn start() -> Registry {
        Registry::start_config(&Config::default())
    }

    /// Starts a registry whose `storage:` section has `extra` YAML added.
    pub fn start_with(extra: &str) -> Registry {
        Registry::start_config(&Config {
            storage: extra.to_string(),
            ..Config::default()
        })
    }

    /// Starts a registry with `config` and waits until it answers.
    pub fn start_config(config: &Config) -> Registry {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let file = dir.path().join("config.yml");
        let tls = match &config.tls {
            Some((cert, key)) => {
                let mut t = format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    cert.display(),
                    key.display()
                );
                if let Some(ca) = &config.client_ca {
                    t.push_str(&format!("    clientcas:\n      - {}\n", ca.display()));
                }
                t
            }
            None => String::new(),
        };
        std::fs::write(
            &file,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n{}http:\n  addr: 127.0.0.1:{port}\n{tls}validation:\n  manifests:\n    urls:\n      allow:\n        - ^https?://\n{}",
                dir.path().join("data").display(),
                config.storage,
                config.top,
            ),
        )
        .expect("write registry config");
        // Its access log (stdout) names each request's protocol.
        let log = std::fs::File::create(dir.path().join("access.log")).expect("access log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&file)
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry (apt-get install docker-registry)");
        let reg = Registry { port, child, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let up = if config.tls.is_some() {
                std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            } else {
                // Any HTTP answer (401 from an auth registry too) means it is up.
                match ureq::get(&format!("{}/v2/", reg.base())).call() {
                    Ok(_) | Err(ureq::Error::Status(..)) => true,
                    Err(_) => false,
                }
            };
            if up {
                return reg;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("docker-registry did not answer on port {port}");
    }

    /// Where the registry stores the blob `digest` (to damage it on purpose).
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The requests served so far, one line each in the Combined Log Format
    /// (`"GET /v2/ HTTP/2.0" 200 …`).
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Uploads a blob (monolithic) and returns its digest.
    pub fn put_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        let resp = ureq::post(&format!("{}/v2/{repo}/blobs/uploads/", self.base()))
            .call()
            .expect("start upload");
        let location = resp
            .header("location")
            .expect("upload location")
            .to_string();
        let url = if location.starts_with("http") {
            location
        } else {
            format!("{}{location}", self.base())
        };
        let sep = if url.contains('?') { '&' } else { '?' };
        ureq::put(&format!("{url}{sep}digest={digest}"))
            .set("content-type", "application/octet-stream")
            .send_bytes(bytes)
            .expect("finish upload");
        digest
    }

    /// Uploads a manifest under `reference` (tag or digest); returns its digest.
    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> String {
        ureq::put(&format!("{}/v2/{repo}/manifests/{reference}", self.base()))
            .set("content-type", media_type)
            .send_bytes(bytes)
            .unwrap_or_else(|e| panic!("put manifest {repo}:{reference}: {e}"));
        sha256(bytes)
    }

    /// The manifest bytes and content type the registry serves for `reference`.
    pub fn manifest(&self, repo: &str, reference: &str) -> (Vec<u8>, String) {
        let resp = ureq::get(&format!("{}/v2/{repo}/manifests/{reference}", self.base()))
            .set("accept", ACCEPT)
            .call()
            .unwrap_or_else(|e| panic!("get manifest {repo}:{reference}: {e}"));
        let ct = resp.header("content-type").unwrap_or("").to_string();
        let mut body = Vec::new();
        resp.into_reader()
            .read_to_end(&mut body)
            .expect("read manifest");
        (body, ct)
    }

    /// The blob's bytes, or `None` if the repository lacks it.
    pub fn blob(&self, repo: &str, digest: &str) -> Option<Vec<u8>> {
        let resp = ureq::get(&format!("{}/v2/{repo}/blobs/{digest}", self.base()))
            .call()
            .ok()?;
        let mut body = Vec::new();
        resp.into_reader().read_to_end(&mut body).ok()?;
        Some(body)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A deterministic tar holding `files`: an uncompressed layer.
pub fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut h, name, *data).expect("tar layer");
    }
    tar.into_inner().expect("tar layer")
}

/// A deterministic gzip'd tar layer holding `files`.
pub fn layer(files: &[(&str, &[u8])]) -> Vec<u8> {
    let raw = tar_of(files);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).expect("gzip layer");
    gz.finish().expect("gzip layer")
}

/// Media types of one flavour of image.
#[derive(Clone, Copy, Debug)]
pub enum Flavour {
    Oci,
    Docker,
}

impl Flavour {
    pub fn manifest(self) -> &'static str {
        match self {
            Flavour::Oci => OCI_MANIFEST,
            Flavour::Docker => DOCKER_MANIFEST,
        }
    }
    pub fn index(self) -> &'static str {
        match self {
            Flavour::Oci => OCI_INDEX,
            Flavour::Docker => DOCKER_LIST,
        }
    }
    fn config(self) -> &'static str {
        match self {
            Flavour::Oci => OCI_CONFIG,
            Flavour::Docker => DOCKER_CONFIG,
        }
    }
    fn layer(self) -> &'static str {
        match self {
            Flavour::Oci => OCI_LAYER,
            Flavour::Docker => DOCKER_LAYER,
        }
    }
}

/// An image as uploaded: its manifest and the digests of its blobs.
#[derive(Clone, Debug)]
pub struct Pushed {
    pub digest: String,
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub config: String,
    pub layers: Vec<String>,
}

/// Uploads a single-platform image built from `layers` and tags it (if `tag`).
pub fn push_image(
    reg: &Registry,
    repo: &str,
    tag: Option<&str>,
    flavour: Flavour,
    arch: &str,
    layers: &[Vec<u8>],
) -> Pushed {
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| {
            let mut raw = Vec::new();
            flate2::read::GzDecoder::new(&l[..])
                .read_to_end(&mut raw)
                .expect("gunzip");
            sha256(&raw)
        })
        .collect();
    let config = serde_json::to_vec(&json!({
        "architecture": arch,
        "os": "linux",
        "config": {"Env": ["PATH=/usr/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .expect("config json");
    let config_digest = reg.put_blob(repo, &config);
    let mut layer_descs = Vec::new();
    let mut layer_digests = Vec::new();
    for l in layers {
        let d = reg.put_blob(repo, l);
        layer_descs.push(json!({"mediaType": flavour.layer(), "digest": d, "size": l.len()}));
        layer_digests.push(d);
    }
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": flavour.manifest(),
        "config": {"mediaType": flavour.config(), "digest": config_digest, "size": config.len()},
        "layers": layer_descs,
    }))
    .expect("manifest json");
    let digest = sha256(&manifest);
    reg.put_manifest(repo, tag.unwrap_or(&digest), flavour.manifest(), &manifest);
    Pushed {
        digest,
        bytes: manifest,
        media_type: flavour.manifest().to_string(),
        config: config_digest,
        layers: layer_digests,
    }
}

/// Uploads an index of `children` (amd64 and arm64 images) under `tag`.
pub fn push_index(
    reg: &Registry,
    repo: &str,
    tag: &str,
    flavour: Flavour,
    children: &[(&Pushed, &str)],
) -> Pushed {
    let entries: Vec<Value> = children
        .iter()
        .map(|(c, arch)| {
            json!({
                "mediaType": c.media_type,
                "digest": c.digest,
                "size": c.bytes.len(),
                "platform": {"architecture": arch, "os": "linux"},
            })
        })
        .collect();
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": flavour.index(),
        "manifests": entries,
    }))
    .expect("index json");
    let digest = reg.put_manifest(repo, tag, flavour.index(), &index);
    Pushed {
        digest,
        bytes: index,
        media_type: flavour.index().to_string(),
        config: String::new(),
        layers: Vec::new(),
    }
}

/// Pushes an amd64 + arm64 index; returns (index, amd64 child, arm64 child).
pub fn push_two_platforms(reg: &Registry, flavour: Flavour) -> (Pushed, Pushed, Pushed) {
    let shared = layer(&[("etc/os-release", b"ID=test\n")]);
    let amd = push_image(
        reg,
        "multi",
        None,
        flavour,
        "amd64",
        &[shared.clone(), layer(&[("bin/app", b"amd64")])],
    );
    let arm = push_image(
        reg,
        "multi",
        None,
        flavour,
        "arm64",
        &[shared, layer(&[("bin/app", b"arm64")])],
    );
    let index = push_index(
        reg,
        "multi",
        "v1",
        flavour,
        &[(&amd, "amd64"), (&arm, "arm64")],
    );
    (index, amd, arm)
}

/// app:v1 = [os, app 1] and app:v2 = [os, app 2] in `reg`: the smallest
/// pair with a shared layer to leave out.
pub fn two_versions(reg: &Registry) -> (Pushed, Pushed) {
    two_versions_of(reg, b"1", b"2")
}

/// app:v1 = [os, a layer holding `v1`] and app:v2 = [os, one holding `v2`].
pub fn two_versions_of(reg: &Registry, v1: &[u8], v2: &[u8]) -> (Pushed, Pushed) {
    let os = layer(&[("etc/os-release", b"ID=test\n"), ("lib/big", &[7u8; 5000])]);
    let push = |tag: &str, app: &[u8]| {
        push_image(
            reg,
            "app",
            Some(tag),
            Flavour::Oci,
            host_arch(),
            &[os.clone(), layer(&[("app", app)])],
        )
    };
    (push("v1", v1), push("v2", v2))
}

/// A registry with app:v1 (one small layer), pulled in full by imo into
/// `full.tar` in a fresh work dir: the start of many archive tests.
pub fn pulled_one_layer_image() -> (Registry, Pushed, tempfile::TempDir, PathBuf) {
    let src = Registry::start();
    let image = push_image(
        &src,
        "app",
        Some("v1"),
        Flavour::Oci,
        host_arch(),
        &[layer(&[("a", b"content")])],
    );
    let dir = workdir();
    let full = dir.path().join("full.tar");
    ok(
        &imo(&[
            "pull",
            "scratch",
            &format!("{}/app:v1", src.host()),
            "-o",
            full.to_str().unwrap(),
        ]),
        "pull",
    );
    (src, image, dir, full)
}

/// Runs the `imo` binary as a user would, with no auth file of this machine's.
pub fn imo(args: &[&str]) -> Output {
    imo_env(args, &[])
}

/// Runs `imo` with extra environment variables.
pub fn imo_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_imo"));
    cmd.args(args)
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("XDG_RUNTIME_DIR")
        .env("DOCKER_CONFIG", "/nonexistent/imo-test-docker-config");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run imo")
}

/// Runs skopeo without a system policy file.
pub fn skopeo(args: &[&str]) -> Output {
    Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .output()
        .expect("run skopeo (apt-get install skopeo)")
}

/// Asserts the command succeeded, showing its stderr otherwise.
pub fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A run that had to fail: non-zero exit and one line on stderr holding
/// every needle. Returns that line.
pub fn one_line_failure(run: &Output, needles: &[&str]) -> String {
    let err = String::from_utf8_lossy(&run.stderr).trim().to_string();
    assert!(
        !run.status.success(),
        "expected a failure, got success: {err}"
    );
    assert_eq!(err.lines().count(), 1, "one line expected: {err}");
    for needle in needles {
        assert!(err.contains(needle), "expected {needle:?} in: {err}");
    }
    err
}

/// The entries of a tar archive: name -> bytes (test images are small).
pub fn read_tar(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut ar = tar::Archive::new(bytes);
    for entry in ar.entries().expect("tar entries") {
        let mut e = entry.expect("tar entry");
        if e.header().entry_type().is_dir() {
            continue;
        }
        let name = e.path().expect("entry path").to_string_lossy().into_owned();
        let mut body = Vec::new();
        e.read_to_end(&mut body).expect("entry body");
        assert!(
            out.insert(name.clone(), body).is_none(),
            "duplicate entry {name}"
        );
    }
    out
}

/// An OCI archive, checked independently of imo's reader: every blob
/// hashes to its name and `index.json` names one manifest that is present.
pub struct Archive {
    pub entries: BTreeMap<String, Vec<u8>>,
    pub index: Value,
}

impl Archive {
    pub fn open(path: &Path) -> Archive {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        Archive::from_bytes(&bytes)
    }

    pub fn from_bytes(bytes: &[u8]) -> Archive {
        let entries = read_tar(bytes);
        let layout: Value =
            serde_json::from_slice(&entries["oci-layout"]).expect("oci-layout json");
        assert_eq!(layout["imageLayoutVersion"], "1.0.0");
        for (name, body) in &entries {
            if let Some(hex) = name.strip_prefix("blobs/sha256/") {
                assert_eq!(
                    sha256(body),
                    format!("sha256:{hex}"),
                    "blob {name} does not hash to its name"
                );
            }
        }
        let index: Value = serde_json::from_slice(&entries["index.json"]).expect("index.json");
        assert_eq!(
            index["manifests"].as_array().map(Vec::len),
            Some(1),
            "index.json: {index}"
        );
        let archive = Archive { entries, index };
        assert!(archive.has(&archive.top_digest()), "top manifest missing");
        archive
    }

    pub fn top_digest(&self) -> String {
        self.index["manifests"][0]["digest"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub fn has(&self, digest: &str) -> bool {
        self.entries.contains_key(&blob_path(digest))
    }

    pub fn blob(&self, digest: &str) -> &[u8] {
        &self.entries[&blob_path(digest)]
    }

    /// Names of the blob entries.
    pub fn blobs(&self) -> Vec<String> {
        self.entries
            .keys()
            .filter_map(|k| {
                k.strip_prefix("blobs/sha256/")
                    .map(|h| format!("sha256:{h}"))
            })
            .collect()
    }
}

fn blob_path(digest: &str) -> String {
    format!("blobs/{}", digest.replacen(':', "/", 1))
}

/// A temp dir for outputs.
pub fn workdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// The files in `dir`.
pub fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("dir entry").path())
        .collect();
    v.sort();
    v
}

/// Copies an archive into `dest` with skopeo (all platforms, digests kept).
pub fn skopeo_copy_to(archive: &Path, dest: &Registry, repo_tag: &str) -> Output {
    skopeo(&[
        "copy",
        "--all",
        "--preserve-digests",
        "--dest-tls-verify=false",
        &format!("oci-archive:{}", archive.display()),
        &format!("docker://{}/{repo_tag}", dest.host()),
    ])
}

/// The OCI architecture name of this machine.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Rewrites a tar archive entry by entry; `edit` may change an entry's bytes
/// (keeping or changing its size) or drop it by returning false.
pub fn rewrite_archive(src: &Path, dst: &Path, mut edit: impl FnMut(&str, &mut Vec<u8>) -> bool) {
    let entries = read_tar(&std::fs::read(src).expect("read archive"));
    let mut out = tar::Builder::new(Vec::new());
    for (name, mut body) in entries {
        if !edit(&name, &mut body) {
            continue;
        }
        let mut h = tar::Header::new_ustar();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        out.append_data(&mut h, &name, &body[..])
            .expect("write entry");
    }
    std::fs::write(dst, out.into_inner().expect("finish tar")).expect("write archive");
}

/// A TCP proxy to a loopback port that stops forwarding for good once
/// `limit` bytes went one way: a transfer that hangs half way.
pub struct StallProxy {
    pub port: u16,
    stalled: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl StallProxy {
    /// Stalls uploads: counts bytes from client to registry.
    pub fn start(upstream: u16, limit: u64) -> StallProxy {
        StallProxy::start_one_way(upstream, limit, true)
    }

    /// Stalls downloads: counts bytes from registry to client.
    pub fn start_download(upstream: u16, limit: u64) -> StallProxy {
        StallProxy::start_one_way(upstream, limit, false)
    }

    fn start_one_way(upstream: u16, limit: u64, upload: bool) -> StallProxy {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        use std::sync::Arc;
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let stalled = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let flag = stalled.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { break };
                let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let (c_read, s_write) = (
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                );
                let (s_read, c_write) = (server, client);
                // The watched direction goes through the counting copy.
                let ((mut c_read, mut s_write), (mut s_read, mut c_write)) = if upload {
                    ((c_read, s_write), (s_read, c_write))
                } else {
                    ((s_read, c_write), (c_read, s_write))
                };
                let (sent, flag) = (sent.clone(), flag.clone());
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16384];
                    loop {
                        let n = match c_read.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        if sent.fetch_add(n as u64, Ordering::SeqCst) + n as u64 > limit {
                            flag.store(true, Ordering::SeqCst);
                            // Hold the connection open, forwarding nothing more.
                            std::thread::sleep(Duration::from_secs(600));
                            return;
                        }
                        if s_write.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                });
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut s_read, &mut c_write);
                });
            }
        });
        StallProxy { port, stalled }
    }

    /// Waits until the proxy stalls a transfer; false on timeout.
    pub fn wait_stalled(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.stalled.load(std::sync::atomic::Ordering::SeqCst) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

/// `n` bytes that gzip cannot shrink (xorshift), for layers that take time.
pub fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A forwarding HTTP proxy on 127.0.0.1 (what `HTTP_PROXY` names): takes
/// requests in absolute form, one per connection, forwards them in origin
/// form, and records each absolute target.
pub struct ForwardProxy {
    pub port: u16,
    pub requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ForwardProxy {
    pub fn start() -> ForwardProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = requests.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { break };
                let log = log.clone();
                std::thread::spawn(move || forward(client, &log));
            }
        });
        ForwardProxy { port, requests }
    }
}

fn forward(client: std::net::TcpStream, log: &std::sync::Mutex<Vec<String>>) {
    use std::io::BufRead;
    let mut reader = std::io::BufReader::new(client.try_clone().expect("clone"));
    let mut client = client;
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if line == "\r\n" {
            break;
        }
        head.push(line.trim_end().to_string());
    }
    let mut words = head[0].split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let Ok(url) = url::Url::parse(target) else {
        let _ = client.write_all(b"HTTP/1.1 400 Not Absolute\r\nContent-Length: 0\r\n\r\n");
        return;
    };
    log.lock().expect("log").push(target.to_string());
    let length: usize = head
        .iter()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let upstream = format!(
        "{}:{}",
        url.host_str().unwrap_or(""),
        url.port_or_known_default().unwrap_or(80)
    );
    let Ok(mut server) = std::net::TcpStream::connect(upstream) else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
        return;
    };
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let mut out = format!("{method} {path} HTTP/1.1\r\n");
    for line in head.iter().skip(1) {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    if server
        .write_all(out.as_bytes())
        .and_then(|_| server.write_all(&body))
        .is_err()
    {
        return;
    }
    let _ = std::io::copy(&mut server, &mut client);
}

/// An HTTP CONNECT proxy on 127.0.0.1 that records each tunnel's target.
pub struct ConnectProxy {
    pub port: u16,
    pub targets: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ConnectProxy {
    pub fn start() -> ConnectProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let targets = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = targets.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { break };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
                    if client.read(&mut byte).unwrap_or(0) == 0 {
                        break;
                    }
                    head.push(byte[0]);
                }
                let text = String::from_utf8_lossy(&head).into_owned();
                let mut words = text.split_whitespace();
                let (Some("CONNECT"), Some(target)) = (words.next(), words.next()) else {
                    let _ = client.write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n");
                    continue;
                };
                log.lock().expect("log").push(target.to_string());
                let Ok(server) = std::net::TcpStream::connect(target) else {
                    let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
                    continue;
                };
                let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
                let (mut c2, mut s2) = (
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                );
                let (mut c1, mut s1) = (client, server);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c1, &mut s1);
                    let _ = s1.shutdown(std::net::Shutdown::Write);
                });
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut s2, &mut c2);
                    let _ = c2.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        ConnectProxy { port, targets }
    }
}

/// One tar entry written without the tar crate's path checks, so tests can
/// build archives no honest tool would: `..` names, links, lying sizes.
pub struct RawEntry {
    pub name: String,
    pub data: Vec<u8>,
    pub kind: tar::EntryType,
    /// The size the header claims (default: the data's length).
    pub claimed: Option<u64>,
    pub link: Option<String>,
}

impl RawEntry {
    pub fn file(name: &str, data: &[u8]) -> RawEntry {
        RawEntry {
            name: name.to_string(),
            data: data.to_vec(),
            kind: tar::EntryType::Regular,
            claimed: None,
            link: None,
        }
    }
}

/// A tar of `entries`, headers filled in by hand.
pub fn raw_tar(entries: &[RawEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    let push = |h: &tar::Header, data: &[u8], out: &mut Vec<u8>| {
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    };
    for e in entries {
        let name = e.name.as_bytes();
        if name.len() > 100 {
            // A GNU long-name entry carries names that do not fit the header.
            let mut long = tar::Header::new_gnu();
            long.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
            long.set_entry_type(tar::EntryType::GNULongName);
            long.set_size(name.len() as u64 + 1);
            long.set_cksum();
            let mut data = name.to_vec();
            data.push(0);
            push(&long, &data, &mut out);
        }
        let mut h = tar::Header::new_gnu();
        let short = &name[..name.len().min(100)];
        h.as_old_mut().name[..short.len()].copy_from_slice(short);
        h.set_mode(0o644);
        h.set_entry_type(e.kind);
        h.set_size(e.claimed.unwrap_or(e.data.len() as u64));
        if let Some(link) = &e.link {
            h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_cksum();
        push(&h, &e.data, &mut out);
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// The entries of an archive as raw entries, to be tampered with.
pub fn raw_entries(archive: &Path) -> Vec<RawEntry> {
    read_tar(&std::fs::read(archive).expect("read archive"))
        .into_iter()
        .map(|(name, data)| RawEntry::file(&name, &data))
        .collect()
}
