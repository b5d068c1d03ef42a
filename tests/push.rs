//! `imo push`: an archive lands at the destination with every digest as at
//! the source, verified by hashing what the destination serves and by skopeo.

mod harness;

use std::process::{Command, Stdio};
use std::time::Duration;

use harness::faults::{Fault, FaultProxy, Rule};
use harness::*;

struct Setup {
    src: Registry,
    dest: Registry,
    dir: tempfile::TempDir,
    v1: Pushed,
    v2: Pushed,
}

/// v1 = [os, app1], v2 = [os, app2, extra] in `src`; nothing in `dest`.
fn setup(flavour: Flavour) -> Setup {
    let src = Registry::start();
    let os = layer(&[("etc/os-release", b"ID=test\n"), ("lib/big", &[9u8; 3000])]);
    let v1 = push_image(
        &src,
        "app",
        Some("v1"),
        flavour,
        host_arch(),
        &[os.clone(), layer(&[("app", b"1")])],
    );
    let v2 = push_image(
        &src,
        "app",
        Some("v2"),
        flavour,
        host_arch(),
        &[os, layer(&[("app", b"2")]), layer(&[("extra", b"x")])],
    );
    Setup {
        src,
        dest: Registry::start(),
        dir: workdir(),
        v1,
        v2,
    }
}

/// `src/app:v1` pulled in full by imo into `dir/full.tar`; its path.
fn full_archive(src: &Registry, dir: &tempfile::TempDir) -> String {
    let full = dir.path().join("full.tar");
    let full = full.to_str().unwrap().to_string();
    run_ok(&[
        "pull",
        "scratch",
        &format!("{}/app:v1", src.host()),
        "-o",
        &full,
    ]);
    full
}

fn run_ok(args: &[&str]) -> String {
    let out = imo(args);
    ok(&out, &args.join(" "));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

impl Setup {
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_string()
    }
    fn src_ref(&self, tag: &str) -> String {
        format!("{}/app:{tag}", self.src.host())
    }
    fn dest_ref(&self, tag: &str) -> String {
        format!("{}/app:{tag}", self.dest.host())
    }
    /// Full v1 to the destination, then the v1 -> v2 archive.
    fn full_v1_then_diff(&self) -> String {
        let full = self.path("full.tar");
        run_ok(&["pull", "scratch", &self.src_ref("v1"), "-o", &full]);
        run_ok(&["push", &full, &self.dest_ref("v1")]);
        let diff = self.path("diff.tar");
        run_ok(&[
            "pull",
            &self.src_ref("v1"),
            &self.src_ref("v2"),
            "-o",
            &diff,
        ]);
        diff
    }
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

/// skopeo pulls `reference` from `from` (verifying every blob as it goes)
/// into a third registry; returns that copy's top digest.
fn skopeo_pull_digest(from: &Registry, reference: &str) -> String {
    let third = Registry::start();
    let out = skopeo(&[
        "copy",
        "--all",
        "--preserve-digests",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &format!("docker://{}/{reference}", from.host()),
        &format!("docker://{}/copy:x", third.host()),
    ]);
    ok(&out, "skopeo copy from the destination");
    sha256(&third.manifest("copy", "x").0)
}

fn full_then_incremental(flavour: Flavour) {
    let s = setup(flavour);
    let diff = s.full_v1_then_diff();
    let vet = run_ok(&["vet", &diff, &s.dest_ref("v2")]);
    assert!(vet.contains("push can proceed"), "{vet}");
    let summary = run_ok(&["push", &diff, &s.dest_ref("v2")]);
    assert!(
        summary.contains("uploaded 3 blob(s)") && summary.contains("skipped 1"),
        "{summary}"
    );

    assert_eq!(
        sha256(&s.dest.manifest("app", "v2").0),
        s.v2.digest,
        "tag resolves to v2"
    );
    assert_complete(&s.dest, "app", &s.v2);
    assert_complete(&s.dest, "app", &s.v1);
    assert_eq!(skopeo_pull_digest(&s.dest, "app:v2"), s.v2.digest);
    assert_eq!(
        skopeo_pull_digest(&s.dest, &format!("app@{}", s.v2.digest)),
        s.v2.digest
    );
}

#[test]
fn oci_full_then_incremental_push_keeps_every_digest() {
    full_then_incremental(Flavour::Oci);
}

#[test]
fn docker_full_then_incremental_push_keeps_every_digest() {
    full_then_incremental(Flavour::Docker);
}

#[test]
fn two_platform_list_pushes_children_then_index() {
    let src = Registry::start();
    let shared = layer(&[("etc/os", b"shared")]);
    let mk = |tag: &str, arch: &str| {
        push_image(
            &src,
            "multi",
            None,
            Flavour::Docker,
            arch,
            &[
                shared.clone(),
                layer(&[("app", format!("{tag}{arch}").as_bytes())]),
            ],
        )
    };
    let (a1, r1) = (mk("1", "amd64"), mk("1", "arm64"));
    push_index(
        &src,
        "multi",
        "v1",
        Flavour::Docker,
        &[(&a1, "amd64"), (&r1, "arm64")],
    );
    let (a2, r2) = (mk("2", "amd64"), mk("2", "arm64"));
    let index = push_index(
        &src,
        "multi",
        "v2",
        Flavour::Docker,
        &[(&a2, "amd64"), (&r2, "arm64")],
    );
    let dest = Registry::start();
    let dir = workdir();
    let full = dir.path().join("full.tar");
    let diff = dir.path().join("diff.tar");
    let (full, diff) = (full.to_str().unwrap(), diff.to_str().unwrap());
    run_ok(&[
        "pull",
        "scratch",
        &format!("{}/multi:v1", src.host()),
        "--all-platforms",
        "-o",
        full,
    ]);
    run_ok(&["push", full, &format!("{}/multi:v1", dest.host())]);
    run_ok(&[
        "pull",
        &format!("{}/multi:v1", src.host()),
        &format!("{}/multi:v2", src.host()),
        "--all-platforms",
        "-o",
        diff,
    ]);
    run_ok(&["push", diff, &format!("{}/multi:v2", dest.host())]);
    assert_eq!(sha256(&dest.manifest("multi", "v2").0), index.digest);
    for child in [&a2, &r2] {
        assert_complete(&dest, "multi", child);
    }
    assert_eq!(skopeo_pull_digest(&dest, "multi:v2"), index.digest);
}

#[test]
fn vet_and_push_against_an_empty_repository_name_the_left_out_layers() {
    let s = setup(Flavour::Oci);
    let diff = s.path("diff.tar");
    run_ok(&["pull", &s.src_ref("v1"), &s.src_ref("v2"), "-o", &diff]);

    let vet = imo(&["vet", &diff, &s.dest_ref("v2")]);
    assert!(!vet.status.success());
    let listed: Vec<String> = String::from_utf8_lossy(&vet.stdout)
        .lines()
        .map(|l| l.split_whitespace().nth(1).unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        listed,
        vec![s.v1.layers[0].clone()],
        "exactly the shared layer"
    );
    let err = String::from_utf8_lossy(&vet.stderr);
    assert!(err.contains("lacks 1 of the 1"), "{err}");

    let push = imo(&["push", &diff, &s.dest_ref("v2"), "--quiet"]);
    assert!(!push.status.success());
    let err = String::from_utf8_lossy(&push.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains(&s.v1.layers[0]), "{err}");
    assert!(
        s.dest.blob("app", &s.v2.config).is_none(),
        "nothing uploaded before the check"
    );
    assert!(
        ureq::get(&format!("http://{}/v2/app/manifests/v2", s.dest.host()))
            .call()
            .is_err(),
        "nothing tagged"
    );
}

#[test]
fn missing_layers_are_mounted_from_another_repository() {
    let s = setup(Flavour::Oci);
    let full = s.path("full.tar");
    run_ok(&["pull", "scratch", &s.src_ref("v1"), "-o", &full]);
    run_ok(&["push", &full, &format!("{}/base:v1", s.dest.host())]);

    // Explicit --mount-from.
    let diff = s.path("diff.tar");
    run_ok(&["pull", &s.src_ref("v1"), &s.src_ref("v2"), "-o", &diff]);
    let summary = run_ok(&["push", &diff, &s.dest_ref("v2"), "--mount-from", "base"]);
    assert!(summary.contains("mounted 1"), "{summary}");
    assert_complete(&s.dest, "app", &s.v2);

    // The archive's base on the destination registry is tried by itself.
    let diff2 = s.path("diff2.tar");
    run_ok(&[
        "pull",
        &format!("{}/base:v1", s.dest.host()),
        &s.src_ref("v2"),
        "-o",
        &diff2,
    ]);
    let summary = run_ok(&["push", &diff2, &format!("{}/other:v2", s.dest.host())]);
    assert!(summary.contains("mounted 1"), "{summary}");
    assert_complete(&s.dest, "other", &s.v2);
}

#[test]
fn chunked_uploads_and_archives_written_by_skopeo() {
    let s = setup(Flavour::Oci);
    let archive = s.path("skopeo.tar");
    ok(
        &skopeo(&[
            "copy",
            "--preserve-digests",
            "--src-tls-verify=false",
            &format!("docker://{}", s.src_ref("v2")),
            &format!("oci-archive:{archive}:v2"),
        ]),
        "skopeo copy to oci-archive",
    );
    run_ok(&["push", &archive, &s.dest_ref("v2"), "--chunk-size", "700"]);
    assert_eq!(sha256(&s.dest.manifest("app", "v2").0), s.v2.digest);
    assert_complete(&s.dest, "app", &s.v2);
}

#[test]
fn a_push_killed_half_way_leaves_the_old_tag_and_a_rerun_completes() {
    let src = Registry::start();
    let big = noise(2_000_000, 42);
    let image = push_image(
        &src,
        "app",
        Some("v1"),
        Flavour::Oci,
        host_arch(),
        &[layer(&[("small", b"s")]), layer(&[("big", &big)])],
    );
    let dest = Registry::start();
    let old = push_image(
        &dest,
        "app",
        Some("v1"),
        Flavour::Oci,
        host_arch(),
        &[layer(&[("old", b"o")])],
    );
    let dir = workdir();
    let full = full_archive(&src, &dir);
    let full = full.as_str();

    let proxy = StallProxy::start(dest.port, 500_000);
    let log = dir.path().join("push.log");
    // One upload at a time, so that the small layer is known to be complete
    // when the big one stalls.
    let mut child = Command::new(env!("CARGO_BIN_EXE_imo"))
        .args(["push", full, &format!("127.0.0.1:{}/app:v1", proxy.port)])
        .args(["--jobs", "1"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("start imo push");
    assert!(
        proxy.wait_stalled(Duration::from_secs(30)),
        "the push never reached the big layer: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    std::thread::sleep(Duration::from_millis(200));
    child.kill().expect("kill -9 imo");
    child.wait().expect("reap imo");

    assert_eq!(
        sha256(&dest.manifest("app", "v1").0),
        old.digest,
        "tag still on the old image"
    );
    assert!(
        dest.blob("app", &image.layers[0]).is_some(),
        "the small layer arrived before the kill"
    );

    let summary = run_ok(&["push", full, &format!("{}/app:v1", dest.host())]);
    assert!(
        summary.contains("uploaded 1 blob(s)") && summary.contains("skipped 2"),
        "{summary}"
    );
    assert_eq!(sha256(&dest.manifest("app", "v1").0), image.digest);
    assert_complete(&dest, "app", &image);
}

/// Runs a push that must fail: one line, naming `needle`, and `app:v1` untagged.
fn failing_push(s: &Setup, archive: &str, needle: &str) {
    let out = imo(&["push", archive, &s.dest_ref("v1"), "--quiet"]);
    one_line_failure(&out, &[needle]);
    assert!(
        ureq::get(&format!("http://{}/v2/app/manifests/v1", s.dest.host()))
            .call()
            .is_err(),
        "nothing tagged"
    );
}

#[test]
fn broken_archives_are_refused_and_nothing_is_tagged() {
    let s = setup(Flavour::Oci);
    let full = s.path("full.tar");
    run_ok(&["pull", "scratch", &s.src_ref("v1"), "-o", &full]);
    let bytes = std::fs::read(&full).unwrap();

    let garbage = s.path("garbage.tar");
    std::fs::write(&garbage, b"this is not a tar archive at all, just text").unwrap();
    failing_push(&s, &garbage, &garbage);

    let truncated = s.path("truncated.tar");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    failing_push(&s, &truncated, &truncated);

    let no_index = s.path("no-index.tar");
    rewrite_archive(
        std::path::Path::new(&full),
        std::path::Path::new(&no_index),
        |name, _| name != "index.json",
    );
    failing_push(&s, &no_index, "index.json");

    let tampered = s.path("tampered.tar");
    let victim = s.v1.layers[1].clone();
    rewrite_archive(
        std::path::Path::new(&full),
        std::path::Path::new(&tampered),
        |name, body| {
            if name.ends_with(victim.trim_start_matches("sha256:")) {
                let last = body.len() - 1;
                body[last] ^= 0xff;
            }
            true
        },
    );
    failing_push(&s, &tampered, &victim);
}

#[test]
fn a_read_only_destination_is_refused_in_one_line() {
    let s = setup(Flavour::Oci);
    let full = s.path("full.tar");
    run_ok(&["pull", "scratch", &s.src_ref("v1"), "-o", &full]);
    let ro = Registry::start_with("  maintenance:\n    readonly:\n      enabled: true\n");
    let out = imo(&["push", &full, &format!("{}/app:v1", ro.host()), "--quiet"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains(&ro.host()) && err.contains("app"), "{err}");
}

/// Pushes `archive` through a proxy that holds every blob upload's answer
/// back 300 ms, so uploads running at once overlap; returns the most blob
/// uploads that were under way at once.
fn push_with_jobs(archive: &str, jobs: &str) -> (Registry, usize) {
    let dest = Registry::start();
    let proxy = FaultProxy::start(
        dest.port,
        vec![Rule::new("PUT", "digest=", 100, Fault::Delay(300))],
    );
    run_ok(&[
        "push",
        archive,
        &format!("{}/app:v1", proxy.host()),
        "--jobs",
        jobs,
    ]);
    let peak = proxy.peak("PUT /blobs/");
    (dest, peak)
}

#[test]
fn parallel_uploads_land_every_blob_and_digest() {
    let src = Registry::start();
    let layers: Vec<Vec<u8>> = (0..5u64)
        .map(|i| layer(&[("data", &noise(20_000 + 50_000 * i as usize, 70 + i))]))
        .collect();
    let image = push_image(
        &src,
        "app",
        Some("v1"),
        Flavour::Docker,
        host_arch(),
        &layers,
    );
    let dir = workdir();
    let full = full_archive(&src, &dir);
    let full = full.as_str();

    let (_, one_at_once) = push_with_jobs(full, "1");
    assert_eq!(one_at_once, 1, "--jobs 1 uploads one blob at a time");
    let (dest, four_at_once) = push_with_jobs(full, "4");
    assert_eq!(four_at_once, 4, "--jobs 4 uploads four blobs at once");
    assert_complete(&dest, "app", &image);
    assert_eq!(sha256(&dest.manifest("app", "v1").0), image.digest);
    assert_eq!(
        skopeo_pull_digest(&dest, "app:v1"),
        image.digest,
        "skopeo reads what the parallel push stored"
    );
}

/// Every `.tmp` file below `dir`: what a failed write must not leave.
fn temp_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(".tmp") {
                out.push(p);
            }
        }
    }
    out
}

fn skopeo_raw(at: &str) -> Vec<u8> {
    let raw = skopeo(&["inspect", "--raw", at]);
    ok(&raw, &format!("skopeo inspect --raw {at}"));
    raw.stdout
}

/// The digest `layout`'s index.json names `tag`, read by hand; the bytes
/// stored under it must hash to it.
fn layout_digest(layout: &std::path::Path, tag: &str) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no {tag} in {index}"));
    let digest = entry["digest"].as_str().unwrap().to_string();
    let bytes = std::fs::read(layout.join("blobs/sha256").join(&digest[7..])).unwrap();
    assert_eq!(sha256(&bytes), digest);
    digest
}

fn incremental_push_onto_a_layout(flavour: Flavour) {
    let s = setup(flavour);
    let layout = s.dir.path().join("far-side");
    let at = |tag: &str| format!("oci:{}:{tag}", layout.display());
    // The far side has no registry: v1 arrives whole into a layout.
    run_ok(&["pull", "scratch", &s.src_ref("v1"), "-o", &at("v1")]);
    assert_eq!(layout_digest(&layout, "v1"), s.v1.digest);
    let diff = s.path("diff.tar");
    run_ok(&["pull", &s.src_ref("v1"), &s.src_ref("v2"), "-o", &diff]);

    let vet = run_ok(&["vet", &diff, &at("v2")]);
    assert!(vet.contains("push can proceed"), "{vet}");
    let summary = run_ok(&["push", &diff, &at("v2")]);
    assert!(
        summary.contains("uploaded 3 blob(s)") && summary.contains("skipped 1"),
        "{summary}"
    );
    assert_eq!(layout_digest(&layout, "v2"), s.v2.digest);
    assert_eq!(layout_digest(&layout, "v1"), s.v1.digest, "v1 still there");
    assert!(temp_files(&layout).is_empty());
    if let Flavour::Docker = flavour {
        // skopeo 1.9 reads no Docker media types out of a layout; imo does.
        run_ok(&["copy", &at("v2"), &s.dest_ref("v2")]);
        assert_complete(&s.dest, "app", &s.v2);
        assert_eq!(skopeo_pull_digest(&s.dest, "app:v2"), s.v2.digest);
        return;
    }
    assert_eq!(sha256(&skopeo_raw(&at("v2"))), s.v2.digest);

    // The layout is a complete source for skopeo, digest for digest.
    let out = skopeo(&[
        "copy",
        "--preserve-digests",
        "--dest-tls-verify=false",
        &at("v2"),
        &format!("docker://{}/app:v2", s.dest.host()),
    ]);
    ok(&out, "skopeo copy oci: docker://");
    assert_eq!(sha256(&s.dest.manifest("app", "v2").0), s.v2.digest);
    assert_complete(&s.dest, "app", &s.v2);
}

#[test]
fn an_incremental_archive_lands_on_an_oci_layout() {
    incremental_push_onto_a_layout(Flavour::Oci);
}

#[test]
fn an_incremental_docker_archive_lands_on_an_oci_layout() {
    incremental_push_onto_a_layout(Flavour::Docker);
}

#[test]
fn a_push_onto_a_layout_that_fails_leaves_the_old_tag_whole() {
    let s = setup(Flavour::Oci);
    let layout = s.dir.path().join("far-side");
    let at = format!("oci:{}:app", layout.display());
    run_ok(&["pull", "scratch", &s.src_ref("v1"), "-o", &at]);
    let index_before = std::fs::read(layout.join("index.json")).unwrap();

    // A full v2 archive whose last layer was damaged in transit.
    let full = s.path("v2.tar");
    run_ok(&["pull", "scratch", &s.src_ref("v2"), "-o", &full]);
    let victim = s.v2.layers[2].clone();
    let damaged = s.path("damaged.tar");
    rewrite_archive(
        std::path::Path::new(&full),
        std::path::Path::new(&damaged),
        |name, body| {
            if name.ends_with(victim.trim_start_matches("sha256:")) {
                let last = body.len() - 1;
                body[last] ^= 1;
            }
            true
        },
    );
    let run = imo(&["push", "--quiet", "--jobs", "1", &damaged, &at]);
    let err = one_line_failure(&run, &[&victim]);
    assert!(err.contains("digest"), "{err}");
    assert_eq!(
        std::fs::read(layout.join("index.json")).unwrap(),
        index_before,
        "index.json untouched"
    );
    assert_eq!(
        layout_digest(&layout, "app"),
        s.v1.digest,
        "the tag still names v1"
    );
    assert_eq!(sha256(&skopeo_raw(&at)), s.v1.digest);
    assert!(temp_files(&layout).is_empty(), "{:?}", temp_files(&layout));

    // Blobs missing from both the archive and the layout: refused before
    // anything is written.
    let diff = s.path("diff.tar");
    run_ok(&["pull", &s.src_ref("v1"), &s.src_ref("v2"), "-o", &diff]);
    let empty = s.dir.path().join("empty");
    let run = imo(&[
        "push",
        "--quiet",
        &diff,
        &format!("oci:{}:v2", empty.display()),
    ]);
    one_line_failure(&run, &[&s.v1.layers[0]]);
    assert!(!empty.join("index.json").exists());
}
