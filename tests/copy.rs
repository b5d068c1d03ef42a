//! `imo copy SRC DEST`: any transport to any other through the one copy
//! engine, digest for digest, checked by hashing what lands and by skopeo.

mod harness;

use harness::docker_save::{self, SavedImage};
use harness::faults::FaultProxy;
use harness::*;
use serde_json::Value;

fn run_ok(args: &[&str]) -> String {
    let out = imo(args);
    ok(&out, &args.join(" "));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every blob of `image` is served by `reg` and hashes to its digest.
fn assert_complete(reg: &Registry, repo: &str, image: &Pushed) {
    let (bytes, _) = reg.manifest(repo, &image.digest);
    assert_eq!(sha256(&bytes), image.digest);
    for d in image.layers.iter().chain([&image.config]) {
        let body = reg
            .blob(repo, d)
            .unwrap_or_else(|| panic!("{d} missing in {repo}"));
        assert_eq!(&sha256(&body), d);
    }
}

/// skopeo copies `reference` out of `from` (verifying every blob) into a
/// third registry; returns that copy's top digest.
fn skopeo_copy_digest(from: &str, tls_off: bool) -> String {
    let third = Registry::start();
    let mut args = vec![
        "copy",
        "--all",
        "--preserve-digests",
        "--dest-tls-verify=false",
    ];
    if tls_off {
        args.push("--src-tls-verify=false");
    }
    let dest = format!("docker://{}/copy:x", third.host());
    args.extend([from, dest.as_str()]);
    ok(&skopeo(&args), "skopeo copy from what imo wrote");
    sha256(&third.manifest("copy", "x").0)
}

#[test]
fn a_two_platform_index_lands_digest_exact_in_another_registry() {
    let src = Registry::start();
    let dest = Registry::start();
    let (index, amd, arm) = push_two_platforms(&src, Flavour::Oci);
    let summary = run_ok(&[
        "copy",
        "--all-platforms",
        &format!("{}/multi:v1", src.host()),
        &format!("{}/mirror/multi:v1", dest.host()),
    ]);
    assert!(summary.contains("uploaded 5 blob(s)"), "{summary}");
    assert_eq!(sha256(&dest.manifest("mirror/multi", "v1").0), index.digest);
    assert_complete(&dest, "mirror/multi", &amd);
    assert_complete(&dest, "mirror/multi", &arm);
    let copied = skopeo_copy_digest(&format!("docker://{}/mirror/multi:v1", dest.host()), true);
    assert_eq!(copied, index.digest);

    // Without --all-platforms, this machine's image, by its own digest.
    let again = Registry::start();
    run_ok(&[
        "copy",
        &format!("docker://{}/multi:v1", src.host()),
        &format!("docker://{}/one:v1", again.host()),
    ]);
    let mine = if host_arch() == "arm64" { &arm } else { &amd };
    assert_eq!(sha256(&again.manifest("one", "v1").0), mine.digest);
    assert_complete(&again, "one", mine);
}

#[test]
fn within_one_registry_blobs_are_mounted_not_uploaded() {
    let reg = Registry::start();
    let (index, amd, arm) = push_two_platforms(&reg, Flavour::Docker);
    let proxy = FaultProxy::start(reg.port, vec![]);
    let summary = run_ok(&[
        "copy",
        "--all-platforms",
        &format!("{}/multi:v1", proxy.host()),
        &format!("{}/mirror/multi:v1", proxy.host()),
    ]);
    let seen = proxy.seen.lock().unwrap().clone();
    let count = |method: &str, needle: &str| {
        seen.iter()
            .filter(|s| s.method == method && s.path.contains(needle))
            .count()
    };
    // Two configs and three distinct layers, none of them sent.
    assert_eq!(count("POST", "mount="), 5, "{summary}");
    assert_eq!(count("PUT", "/blobs/uploads/"), 0, "no blob uploaded");
    assert_eq!(count("PATCH", ""), 0, "no blob uploaded");
    assert_eq!(count("GET", "/blobs/"), 0, "no blob downloaded");
    assert!(summary.contains("mounted 5"), "{summary}");
    assert_eq!(sha256(&reg.manifest("mirror/multi", "v1").0), index.digest);
    assert_complete(&reg, "mirror/multi", &amd);
    assert_complete(&reg, "mirror/multi", &arm);
}

#[test]
fn registry_to_layout_to_registry() {
    let src = Registry::start();
    let image = push_image(
        &src,
        "app",
        Some("v1"),
        Flavour::Oci,
        host_arch(),
        &[layer(&[("a", b"one")]), layer(&[("b", b"two")])],
    );
    let dir = workdir();
    // The layout does not exist yet: copy makes it.
    let layout = dir.path().join("images");
    let at = format!("oci:{}:v1", layout.display());
    run_ok(&["copy", &format!("{}/app:v1", src.host()), &at]);
    let raw = skopeo(&["inspect", "--raw", &at]);
    ok(&raw, "skopeo inspect --raw oci:");
    assert_eq!(sha256(&raw.stdout), image.digest);
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["digest"], image.digest.as_str());

    let dest = Registry::start();
    let summary = run_ok(&["copy", &at, &format!("{}/app:v1", dest.host())]);
    assert!(summary.contains("uploaded 3 blob(s)"), "{summary}");
    assert_complete(&dest, "app", &image);
    assert_eq!(sha256(&dest.manifest("app", "v1").0), image.digest);
}

/// An image pushed to `reg` whose layers are the uncompressed tars of `saved`.
fn check_landed(reg: &Registry, repo: &str, saved: &SavedImage) -> Value {
    let (bytes, _) = reg.manifest(repo, "v1");
    let manifest: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(manifest["config"]["digest"], saved.config_digest().as_str());
    let layers: Vec<&str> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap())
        .collect();
    assert_eq!(layers, saved.diff_ids());
    for d in saved.diff_ids().iter().chain([&saved.config_digest()]) {
        assert_eq!(&sha256(&reg.blob(repo, d).expect("blob landed")), d);
    }
    // skopeo reads it back, config and all.
    let config = skopeo(&[
        "inspect",
        "--config",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}/{repo}:v1", reg.host()),
    ]);
    ok(&config, "skopeo inspect --config");
    assert_eq!(sha256(&config.stdout), saved.config_digest());
    manifest
}

#[test]
fn both_shapes_of_docker_save_copy_into_a_registry_and_pull_into_an_archive() {
    let saved = SavedImage::new(
        "app:v1",
        vec![
            tar_of(&[("etc/os-release", b"ID=saved\n")]),
            tar_of(&[("app/bin", &[7u8; 5000])]),
        ],
    );
    let dir = workdir();
    let dest = Registry::start();
    for (shape, bytes) in [
        ("legacy", docker_save::legacy(&[&saved])),
        ("v25", docker_save::v25(&[&saved])),
    ] {
        let file = dir.path().join(format!("{shape}.tar"));
        std::fs::write(&file, bytes).unwrap();
        let from = format!("docker-archive:{}", file.display());
        let repo = format!("saved-{shape}");
        run_ok(&["copy", &from, &format!("{}/{repo}:v1", dest.host())]);
        let manifest = check_landed(&dest, &repo, &saved);
        if shape == "v25" {
            // Docker 25 keeps the real manifest: it lands byte for byte.
            assert_eq!(
                sha256(&dest.manifest(&repo, "v1").0),
                sha256(&saved.oci_manifest())
            );
        } else {
            assert_eq!(
                manifest["mediaType"],
                "application/vnd.docker.distribution.manifest.v2+json"
            );
            assert_eq!(
                manifest["layers"][0]["mediaType"],
                "application/vnd.docker.image.rootfs.diff.tar"
            );
        }

        // As FINAL of a pull, by tag.
        let out = dir.path().join(format!("{shape}-pulled.tar"));
        run_ok(&[
            "pull",
            "scratch",
            &format!("{from}:app:v1"),
            "-o",
            out.to_str().unwrap(),
        ]);
        let archive = Archive::open(&out);
        assert_eq!(
            archive.top_digest(),
            sha256(&dest.manifest(&repo, "v1").0),
            "{shape}: the same manifest as the registry got"
        );
        for d in saved.diff_ids() {
            assert!(archive.has(&d), "{shape}: layer {d} in the archive");
        }
        ok(
            &skopeo(&["inspect", &format!("oci-archive:{}", out.display())]),
            "skopeo reads the archive",
        );
    }
}

#[test]
fn a_docker_archive_with_several_images_needs_a_name() {
    let one = SavedImage::new("one:v1", vec![tar_of(&[("a", b"1")])]);
    let two = SavedImage::new("two:v1", vec![tar_of(&[("b", b"2")])]);
    let dir = workdir();
    let file = dir.path().join("both.tar");
    std::fs::write(&file, docker_save::legacy(&[&one, &two])).unwrap();
    let dest = Registry::start();
    let from = format!("docker-archive:{}", file.display());
    one_line_failure(
        &imo(&["copy", &from, &format!("{}/x:v1", dest.host())]),
        &[&from, "2 images"],
    );
    run_ok(&[
        "copy",
        &format!("{from}:two:v1"),
        &format!("{}/two:v1", dest.host()),
    ]);
    check_landed(&dest, "two", &two);
    run_ok(&[
        "copy",
        &format!("{from}:@0"),
        &format!("{}/one:v1", dest.host()),
    ]);
    check_landed(&dest, "one", &one);
    one_line_failure(
        &imo(&[
            "copy",
            &format!("{from}:three:v1"),
            &format!("{}/x:v1", dest.host()),
        ]),
        &["no image tagged", "three"],
    );
}

#[test]
fn refusals_are_one_line_and_leave_nothing() {
    let src = Registry::start();
    push_image(
        &src,
        "app",
        Some("v1"),
        Flavour::Oci,
        host_arch(),
        &[layer(&[("a", b"x")])],
    );
    let dir = workdir();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let source = format!("{}/app:v1", src.host());
    one_line_failure(
        &imo(&["copy", &source, &format!("oci:{}:v1", file.display())]),
        &["not a directory"],
    );
    let out = dir.path().join("d.tar");
    one_line_failure(
        &imo(&[
            "copy",
            &source,
            &format!("docker-archive:{}:@1", out.display()),
        ]),
        &["@INDEX"],
    );
    one_line_failure(
        &imo(&[
            "copy",
            &format!("{}/app:nope", src.host()),
            &format!("oci:{}/l", dir.path().display()),
        ]),
        &["app:nope", "not found"],
    );
    let broken = dir.path().join("broken.tar");
    std::fs::write(&broken, b"not a tar at all, not even close to one").unwrap();
    one_line_failure(
        &imo(&[
            "copy",
            &format!("docker-archive:{}", broken.display()),
            &format!("{}/x:v1", src.host()),
        ]),
        &[broken.to_str().unwrap()],
    );
    assert_eq!(
        listing(dir.path()),
        vec![broken, file],
        "nothing else written"
    );
}
