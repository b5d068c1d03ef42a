//! `imo pull scratch IMAGE`: full archives against a real registry, checked
//! by hashing every blob and by skopeo copying them into a second registry.

mod harness;

use harness::faults::{Fault, FaultProxy, Rule};
use harness::*;

fn two_layers(tag: &str) -> Vec<Vec<u8>> {
    vec![
        layer(&[("etc/os-release", b"ID=test\n"), ("bin/sh", b"#!shell\n")]),
        layer(&[("app/version", tag.as_bytes())]),
    ]
}

/// Pulls `src/app:v1` in full and checks the archive and a skopeo round trip.
fn full_pull_round_trip(flavour: Flavour) {
    let src = Registry::start();
    let image = push_image(
        &src,
        "app",
        Some("v1"),
        flavour,
        host_arch(),
        &two_layers("v1"),
    );
    let dir = workdir();
    let out = dir.path().join("app.tar");

    let run = imo(&[
        "pull",
        "scratch",
        &format!("{}/app:v1", src.host()),
        "-o",
        out.to_str().unwrap(),
    ]);
    ok(&run, "imo pull");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains(&image.digest),
        "summary names the digest: {stderr}"
    );
    assert_eq!(
        listing(dir.path()),
        vec![out.clone()],
        "only the archive is left"
    );

    let archive = Archive::open(&out);
    assert_eq!(archive.top_digest(), image.digest);
    assert_eq!(
        archive.index["manifests"][0]["mediaType"],
        flavour.manifest()
    );
    assert_eq!(
        archive.index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "v1"
    );
    assert_eq!(
        archive.blob(&image.digest),
        &image.bytes[..],
        "manifest bytes as served"
    );
    let mut expected = vec![image.digest.clone(), image.config.clone()];
    expected.extend(image.layers.iter().cloned());
    expected.sort();
    assert_eq!(archive.blobs(), expected);

    let raw = skopeo(&[
        "inspect",
        "--raw",
        &format!("oci-archive:{}", out.display()),
    ]);
    ok(&raw, "skopeo inspect --raw");
    assert_eq!(raw.stdout, image.bytes);

    let dest = Registry::start();
    ok(&skopeo_copy_to(&out, &dest, "app:v1"), "skopeo copy");
    let (bytes, _) = dest.manifest("app", "v1");
    assert_eq!(
        sha256(&bytes),
        image.digest,
        "digest unchanged through skopeo"
    );
    for blob in image.layers.iter().chain([&image.config]) {
        let body = dest
            .blob("app", blob)
            .unwrap_or_else(|| panic!("{blob} missing at destination"));
        assert_eq!(&sha256(&body), blob);
    }
}

#[test]
fn oci_image_round_trips_through_skopeo() {
    full_pull_round_trip(Flavour::Oci);
}

#[test]
fn docker_image_round_trips_through_skopeo() {
    full_pull_round_trip(Flavour::Docker);
}

fn all_platforms_round_trip(flavour: Flavour) {
    let src = Registry::start();
    let (index, amd, arm) = push_two_platforms(&src, flavour);
    let dir = workdir();
    let out = dir.path().join("multi.tar");
    let run = imo(&[
        "pull",
        "scratch",
        &format!("{}/multi:v1", src.host()),
        "--all-platforms",
        "-o",
        out.to_str().unwrap(),
    ]);
    ok(&run, "imo pull --all-platforms");

    let archive = Archive::open(&out);
    assert_eq!(archive.top_digest(), index.digest);
    assert_eq!(archive.index["manifests"][0]["mediaType"], flavour.index());
    assert_eq!(archive.blob(&index.digest), &index.bytes[..]);
    for child in [&amd, &arm] {
        assert_eq!(archive.blob(&child.digest), &child.bytes[..]);
        assert!(archive.has(&child.config));
        for l in &child.layers {
            assert!(archive.has(l), "layer {l} missing");
        }
    }
    // index + 2 manifests + 2 configs + 3 distinct layers
    assert_eq!(archive.blobs().len(), 8);

    let dest = Registry::start();
    ok(
        &skopeo_copy_to(&out, &dest, "multi:v1"),
        "skopeo copy --all",
    );
    let (bytes, _) = dest.manifest("multi", "v1");
    assert_eq!(
        sha256(&bytes),
        index.digest,
        "index digest unchanged through skopeo"
    );
    for child in [&amd, &arm] {
        let (bytes, _) = dest.manifest("multi", &child.digest);
        assert_eq!(sha256(&bytes), child.digest);
    }
}

#[test]
fn oci_index_all_platforms_round_trips() {
    all_platforms_round_trip(Flavour::Oci);
}

#[test]
fn docker_manifest_list_all_platforms_round_trips() {
    all_platforms_round_trip(Flavour::Docker);
}

#[test]
fn index_defaults_to_host_platform_and_honours_platform_flag() {
    let src = Registry::start();
    let (_, amd, arm) = push_two_platforms(&src, Flavour::Oci);
    let dir = workdir();
    let reference = format!("{}/multi:v1", src.host());

    let out = dir.path().join("default.tar");
    ok(
        &imo(&["pull", "scratch", &reference, "-o", out.to_str().unwrap()]),
        "imo pull",
    );
    let archive = Archive::open(&out);
    let expected = if host_arch() == "arm64" { &arm } else { &amd };
    assert_eq!(archive.top_digest(), expected.digest);
    assert_eq!(
        archive.index["manifests"][0]["platform"]["architecture"],
        if host_arch() == "arm64" {
            "arm64"
        } else {
            "amd64"
        }
    );
    assert_eq!(
        archive.blobs().len(),
        4,
        "one manifest, its config and two layers"
    );

    let dest = Registry::start();
    ok(&skopeo_copy_to(&out, &dest, "multi:one"), "skopeo copy");
    let (bytes, _) = dest.manifest("multi", "one");
    assert_eq!(sha256(&bytes), expected.digest);

    let out = dir.path().join("arm.tar");
    ok(
        &imo(&[
            "pull",
            "scratch",
            &reference,
            "--platform",
            "linux/arm64",
            "-o",
            out.to_str().unwrap(),
        ]),
        "imo pull --platform",
    );
    assert_eq!(Archive::open(&out).top_digest(), arm.digest);

    let out = dir.path().join("none.tar");
    let run = imo(&[
        "pull",
        "scratch",
        &reference,
        "--platform",
        "linux/s390x",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(!run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains("linux/s390x") && err.contains("linux/amd64, linux/arm64"),
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn streams_to_stdout() {
    let src = Registry::start();
    let image = push_image(
        &src,
        "app",
        Some("v1"),
        Flavour::Oci,
        host_arch(),
        &two_layers("v1"),
    );
    let run = imo(&[
        "pull",
        "scratch",
        &format!("{}/app:v1", src.host()),
        "-o",
        "-",
        "--quiet",
    ]);
    ok(&run, "imo pull -o -");
    let archive = Archive::from_bytes(&run.stdout);
    assert_eq!(archive.top_digest(), image.digest);
    assert_eq!(archive.blobs().len(), 4);
}

/// Runs a pull that must fail; returns its one-line message and checks that
/// nothing was left in the output directory.
fn failing_pull(args: &[&str], dir: &std::path::Path) -> String {
    let mut args = args.to_vec();
    args.push("--quiet");
    let err = one_line_failure(&imo(&args), &[]);
    assert!(
        listing(dir).is_empty(),
        "files left behind: {:?}",
        listing(dir)
    );
    err
}

#[test]
fn bad_input_gets_one_clear_line_and_no_file() {
    let src = Registry::start();
    push_image(
        &src,
        "app",
        Some("v1"),
        Flavour::Oci,
        host_arch(),
        &two_layers("v1"),
    );
    let dir = workdir();
    let out = dir.path().join("out.tar");
    let out = out.to_str().unwrap();

    let err = failing_pull(
        &["pull", "scratch", "127.0.0.1:5000/App:v1", "-o", out],
        dir.path(),
    );
    assert!(err.contains("\"127.0.0.1:5000/App:v1\""), "{err}");

    let missing_tag = format!("{}/app:nope", src.host());
    let err = failing_pull(&["pull", "scratch", &missing_tag, "-o", out], dir.path());
    assert!(
        err.contains(&missing_tag) && err.contains("not found"),
        "{err}"
    );

    let missing_repo = format!("{}/ghost:v1", src.host());
    let err = failing_pull(&["pull", "scratch", &missing_repo, "-o", out], dir.path());
    assert!(err.contains(&missing_repo), "{err}");

    let closed = format!("127.0.0.1:{}", free_port());
    let err = failing_pull(
        &["pull", "scratch", &format!("{closed}/app:v1"), "-o", out],
        dir.path(),
    );
    assert!(
        err.contains(&closed) && err.contains("cannot reach"),
        "{err}"
    );

    let nowhere = dir.path().join("no/such/dir/out.tar");
    let err = failing_pull(
        &[
            "pull",
            "scratch",
            &format!("{}/app:v1", src.host()),
            "-o",
            nowhere.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(err.contains(nowhere.to_str().unwrap()), "{err}");

    let err = failing_pull(
        &[
            "pull",
            "scratch",
            &format!("{}/app:v1", src.host()),
            "--platform",
            "linux",
            "-o",
            out,
        ],
        dir.path(),
    );
    assert!(err.contains("\"linux\""), "{err}");
}

#[test]
fn a_blob_that_does_not_match_its_digest_is_rejected() {
    let src = Registry::start();
    let image = push_image(
        &src,
        "app",
        Some("v1"),
        Flavour::Oci,
        host_arch(),
        &two_layers("v1"),
    );
    // Corrupt the top layer in the registry's storage, keeping its length:
    // the registry serves it as is, and only hashing can tell.
    let victim = &image.layers[1];
    let path = src.blob_file(victim);
    let mut bytes = std::fs::read(&path).expect("stored blob");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, &bytes).expect("corrupt blob");

    let dir = workdir();
    let out = dir.path().join("bad.tar");
    let err = failing_pull(
        &[
            "pull",
            "scratch",
            &format!("{}/app:v1", src.host()),
            "-o",
            out.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(err.contains(victim) && err.contains("has digest"), "{err}");
}

/// Pulls `reference` through a proxy that holds every blob answer back
/// 300 ms, so that downloads running at once overlap; returns the archive
/// and the most blob downloads the proxy saw at once.
fn pull_with_jobs(src: &Registry, jobs: &str, out: &std::path::Path) -> (Vec<u8>, usize) {
    let proxy = FaultProxy::start(
        src.port,
        vec![Rule::new("GET", "/blobs/", 100, Fault::Delay(300))],
    );
    let reference = format!("{}/app:v1", proxy.host());
    let target = out.to_str().unwrap();
    let run = imo(&[
        "pull", "scratch", &reference, "--jobs", jobs, "-o", target, "--quiet",
    ]);
    ok(&run, "imo pull --jobs");
    let bytes = if target == "-" {
        run.stdout
    } else {
        std::fs::read(out).expect("archive")
    };
    (bytes, proxy.peak("GET /blobs/"))
}

#[test]
fn parallel_downloads_write_the_archive_a_sequential_pull_writes() {
    let src = Registry::start();
    let layers: Vec<Vec<u8>> = (0..6u64)
        .map(|i| layer(&[("data", &noise(10_000 + 60_000 * i as usize, i))]))
        .collect();
    let image = push_image(&src, "app", Some("v1"), Flavour::Oci, host_arch(), &layers);
    let dir = workdir();

    let (one, one_at_once) = pull_with_jobs(&src, "1", &dir.path().join("one.tar"));
    let (four, four_at_once) = pull_with_jobs(&src, "4", &dir.path().join("four.tar"));
    let (streamed, _) = pull_with_jobs(&src, "4", std::path::Path::new("-"));
    assert_eq!(one_at_once, 1, "--jobs 1 downloads one blob at a time");
    assert_eq!(four_at_once, 4, "--jobs 4 downloads four blobs at once");
    assert!(
        one == four,
        "the same archive, whatever the order blobs arrive in"
    );
    assert!(one == streamed, "stdout carries the same archive");

    let archive = Archive::from_bytes(&four);
    assert_eq!(archive.top_digest(), image.digest);
    for l in &image.layers {
        assert!(archive.has(l), "layer {l} in the archive");
    }
    let raw = skopeo(&[
        "inspect",
        "--raw",
        &format!("oci-archive:{}", dir.path().join("four.tar").display()),
    ]);
    ok(&raw, "skopeo inspect --raw");
    assert_eq!(raw.stdout, image.bytes);
    let dest = Registry::start();
    ok(
        &skopeo_copy_to(&dir.path().join("four.tar"), &dest, "app:v1"),
        "skopeo copy",
    );
    assert_eq!(sha256(&dest.manifest("app", "v1").0), image.digest);
}

#[test]
fn a_bad_blob_among_parallel_downloads_leaves_no_file() {
    let src = Registry::start();
    let layers: Vec<Vec<u8>> = (0..4u64)
        .map(|i| layer(&[("data", &noise(50_000, 40 + i))]))
        .collect();
    let image = push_image(&src, "app", Some("v1"), Flavour::Oci, host_arch(), &layers);
    let victim = image.layers[2].trim_start_matches("sha256:").to_string();
    let proxy = FaultProxy::start(
        src.port,
        vec![
            Rule::new("GET", &victim, 10, Fault::WrongBody),
            Rule::new("GET", "/blobs/", 100, Fault::Trickle(1)),
        ],
    );
    let dir = workdir();
    let out = dir.path().join("bad.tar");
    let err = failing_pull(
        &[
            "pull",
            "scratch",
            &format!("{}/app:v1", proxy.host()),
            "--jobs",
            "4",
            "-o",
            out.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(err.contains(&victim) && err.contains("has digest"), "{err}");
}

/// The entries of a docker-archive and its manifest.json.
fn docker_archive(
    path: &std::path::Path,
) -> (
    std::collections::BTreeMap<String, Vec<u8>>,
    serde_json::Value,
) {
    let entries = read_tar(&std::fs::read(path).expect("read docker-archive"));
    let manifest = serde_json::from_slice(&entries["manifest.json"]).expect("manifest.json");
    (entries, manifest)
}

#[test]
fn pull_writes_a_docker_archive_that_skopeo_reads() {
    let src = Registry::start();
    let image = push_image(
        &src,
        "app",
        Some("v1"),
        Flavour::Docker,
        host_arch(),
        &two_layers("v1"),
    );
    let dir = workdir();
    let out = dir.path().join("app.docker.tar");
    let target = format!("docker-archive:{}", out.display());
    let run = imo(&[
        "pull",
        "scratch",
        &format!("{}/app:v1", src.host()),
        "-o",
        &target,
    ]);
    ok(&run, "imo pull -o docker-archive:");
    assert_eq!(
        listing(dir.path()),
        vec![out.clone()],
        "only the archive is left"
    );

    // As go-containerregistry's tarball package lays it out.
    let (entries, manifest) = docker_archive(&out);
    let hex = |d: &str| d.trim_start_matches("sha256:").to_string();
    let layer_files: Vec<String> = image
        .layers
        .iter()
        .map(|l| format!("{}.tar.gz", hex(l)))
        .collect();
    assert_eq!(
        manifest,
        serde_json::json!([{
            "Config": image.config,
            "RepoTags": [format!("{}/app:v1", src.host())],
            "Layers": layer_files,
        }])
    );
    assert_eq!(sha256(&entries[&image.config]), image.config);
    for (file, digest) in layer_files.iter().zip(&image.layers) {
        assert_eq!(
            &sha256(&entries[file]),
            digest,
            "{file} is the registry's blob"
        );
    }
    assert_eq!(entries.len(), 4, "config, two layers, manifest.json");

    // skopeo makes up its own manifest: the config digest and diff IDs.
    let config: serde_json::Value = serde_json::from_slice(&entries[&image.config]).unwrap();
    let raw = skopeo(&["inspect", "--raw", &target]);
    ok(&raw, "skopeo inspect --raw docker-archive:");
    let synthesised: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(synthesised["config"]["digest"], image.config.as_str());
    let layers: Vec<&serde_json::Value> = synthesised["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["digest"])
        .collect();
    let diff_ids: Vec<&serde_json::Value> = config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(layers, diff_ids);
    // skopeo copies it digest for digest (the Docker manifest it makes up
    // is kept as it is); the layout, read by hand, holds the registry's
    // config and the diff IDs.
    let layout = dir.path().join("layout");
    ok(
        &skopeo(&[
            "copy",
            "--preserve-digests",
            &target,
            &format!("oci:{}:v1", layout.display()),
        ]),
        "skopeo copy docker-archive: oci:",
    );
    let blob = |d: &str| std::fs::read(layout.join("blobs/sha256").join(hex(d))).unwrap();
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let copied: serde_json::Value =
        serde_json::from_slice(&blob(index["manifests"][0]["digest"].as_str().unwrap())).unwrap();
    assert_eq!(copied["config"]["digest"], image.config.as_str());
    assert_eq!(sha256(&blob(&image.config)), image.config);
    let copied_layers: Vec<&serde_json::Value> = copied["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["digest"])
        .collect();
    assert_eq!(copied_layers, diff_ids);

    // imo reads it back, and the image lands with its registry digests.
    let dest = Registry::start();
    let back = imo(&["copy", &target, &format!("{}/app:v1", dest.host())]);
    ok(&back, "imo copy docker-archive: registry");
    let (bytes, _) = dest.manifest("app", "v1");
    let landed: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(landed["config"]["digest"], image.config.as_str());
    for (l, digest) in landed["layers"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&image.layers)
    {
        assert_eq!(l["digest"], digest.as_str());
        assert_eq!(
            l["mediaType"],
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        );
    }
}

#[test]
fn a_foreign_layer_is_described_in_layer_sources_and_never_downloaded() {
    let src = Registry::start();
    let normal = layer(&[("a", b"normal")]);
    let normal_digest = src.put_blob("win", &normal);
    let foreign_id = sha256(b"the foreign layer, uncompressed");
    let normal_id = sha256(b"the normal layer, uncompressed");
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "windows",
        "rootfs": {"type": "layers", "diff_ids": [foreign_id, normal_id]},
    }))
    .unwrap();
    let config_digest = src.put_blob("win", &config);
    // Never uploaded anywhere: a client that fetched it would fail.
    let foreign_digest = sha256(b"foreign layer content");
    let foreign = serde_json::json!({
        "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "digest": foreign_digest, "size": 21, "urls": ["https://foreign.invalid/layer"],
    });
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [foreign, {"mediaType": DOCKER_LAYER, "digest": normal_digest, "size": normal.len()}],
    }))
    .unwrap();
    src.put_manifest("win", "v1", DOCKER_MANIFEST, &manifest);
    let dir = workdir();
    let out = dir.path().join("win.tar");
    let run = imo(&[
        "pull",
        "scratch",
        &format!("{}/win:v1", src.host()),
        "-o",
        &format!("docker-archive:{}:win:v1", out.display()),
    ]);
    ok(&run, "imo pull -o docker-archive: with a foreign layer");
    let (entries, manifest) = docker_archive(&out);
    let hex = |d: &str| d.trim_start_matches("sha256:").to_string();
    assert_eq!(manifest[0]["RepoTags"], serde_json::json!(["win:v1"]));
    assert_eq!(
        manifest[0]["Layers"],
        serde_json::json!([
            format!("{}.tar.gz", hex(&foreign_digest)),
            format!("{}.tar.gz", hex(&normal_digest))
        ])
    );
    assert_eq!(
        manifest[0]["LayerSources"],
        serde_json::json!({ foreign_id: foreign })
    );
    assert!(!entries.contains_key(&format!("{}.tar.gz", hex(&foreign_digest))));
    assert_eq!(
        sha256(&entries[&format!("{}.tar.gz", hex(&normal_digest))]),
        normal_digest
    );

    // Read back, the foreign layer comes from LayerSources.
    let again = dir.path().join("again.tar");
    let run = imo(&[
        "pull",
        "scratch",
        &format!("docker-archive:{}", out.display()),
        "-o",
        again.to_str().unwrap(),
    ]);
    ok(&run, "imo pull docker-archive: with a foreign layer");
    let archive = Archive::open(&again);
    let m: serde_json::Value = serde_json::from_slice(archive.blob(&archive.top_digest())).unwrap();
    assert_eq!(m["layers"][0], foreign);
    assert!(!archive.has(&foreign_digest));
}

#[test]
fn what_a_docker_archive_cannot_hold_is_refused_in_one_line() {
    let src = Registry::start();
    let v1 = push_image(
        &src,
        "app",
        Some("v1"),
        Flavour::Oci,
        host_arch(),
        &two_layers("v1"),
    );
    let _ = v1;
    push_image(
        &src,
        "app",
        Some("v2"),
        Flavour::Oci,
        host_arch(),
        &[two_layers("v1")[0].clone(), layer(&[("b", b"2")])],
    );
    push_two_platforms(&src, Flavour::Oci);
    let dir = workdir();
    let out = format!("docker-archive:{}", dir.path().join("d.tar").display());
    let incremental = imo(&[
        "pull",
        &format!("{}/app:v1", src.host()),
        &format!("{}/app:v2", src.host()),
        "-o",
        &out,
    ]);
    one_line_failure(&incremental, &[&out, "left out", "docker load"]);
    let all = imo(&[
        "pull",
        "scratch",
        "--all-platforms",
        &format!("{}/multi:v1", src.host()),
        "-o",
        &out,
    ]);
    one_line_failure(&all, &[&out, "2 platforms", "--platform"]);
    let registry = imo(&[
        "pull",
        "scratch",
        &format!("{}/app:v1", src.host()),
        "-o",
        &format!("docker://{}/x:v1", src.host()),
    ]);
    one_line_failure(&registry, &["imo copy"]);
    assert!(listing(dir.path()).is_empty(), "nothing left behind");
}
