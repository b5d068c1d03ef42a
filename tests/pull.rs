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

/// Pushes an amd64 + arm64 index; returns (index, amd64 child, arm64 child).
fn push_two_platforms(reg: &Registry, flavour: Flavour) -> (Pushed, Pushed, Pushed) {
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
    (bytes, proxy.peak("GET"))
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
