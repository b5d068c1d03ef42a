//! `imo pull --delta`: a changed layer crosses as a delta against the layer
//! in its place in BASE, and `push` rebuilds the exact layer at the
//! destination (a registry or an `oci:` layout) from the base layer there.
//! Digests at the destination are checked with skopeo, which verifies every
//! blob it copies.

mod harness;

use std::path::Path;

use harness::delta::*;
use harness::*;
use serde_json::Value;

/// app:v1 = [os, app 1] and app:v2 = [os, app 2], the app layer big and
/// barely changed.
fn push_versions(reg: &Registry) -> (Pushed, Pushed) {
    two_versions_of(reg, &app_files(false), &app_files(true))
}

/// Copies `src/app:v1` to `dest` with skopeo: the far side's BASE.
fn seed(src: &Registry, dest: &str) {
    seed_repo(src, "app", dest);
}

/// vet then push of `archive` to `target`: push's JSON report.
fn vet_and_push(archive: &Path, target: &str) -> Value {
    ok(&imo(&["vet", archive.to_str().unwrap(), target]), "vet");
    json_of(
        &imo(&["--json", "push", archive.to_str().unwrap(), target]),
        "imo push",
    )
}

/// `imo --json COMMAND --delta app:v1 app:v2 EXTRA...` against `src`: its report.
fn with_delta(command: &str, src: &Registry, extra: &[&str]) -> Value {
    let (v1, v2) = (
        format!("{}/app:v1", src.host()),
        format!("{}/app:v2", src.host()),
    );
    let mut args = vec!["--json", command, "--delta", &v1, &v2];
    args.extend_from_slice(extra);
    json_of(&imo(&args), &format!("imo {command} --delta"))
}

fn pull_delta(src: &Registry, out: &Path) -> Value {
    with_delta("pull", src, &["-o", out.to_str().unwrap()])
}

#[test]
fn a_delta_crosses_instead_of_the_layer_and_push_lands_the_exact_layer() {
    let src = Registry::start();
    let (v1, v2) = push_versions(&src);
    let changed = &v2.layers[1];
    let layer_size = src.blob("app", changed).unwrap().len() as u64;
    let dir = workdir();
    let (delta_tar, plain_tar) = (dir.path().join("delta.tar"), dir.path().join("plain.tar"));

    let pulled = pull_delta(&src, &delta_tar);
    assert_eq!(pulled["layersDelta"], 1, "{pulled}");
    assert_eq!(pulled["bytesDeltaLayers"], layer_size);
    let delta_bytes = pulled["bytesDelta"].as_u64().unwrap();
    assert!(
        delta_bytes * 20 < layer_size,
        "a {delta_bytes}-byte delta for a {layer_size}-byte layer"
    );
    ok(
        &imo(&[
            "pull",
            &format!("{}/app:v1", src.host()),
            &format!("{}/app:v2", src.host()),
            "-o",
            plain_tar.to_str().unwrap(),
        ]),
        "imo pull",
    );
    let (delta_len, plain_len) = (
        std::fs::metadata(&delta_tar).unwrap().len(),
        std::fs::metadata(&plain_tar).unwrap().len(),
    );
    assert!(
        delta_len * 10 < plain_len,
        "delta archive {delta_len} bytes, layer-level {plain_len}"
    );
    assert_eq!(pulled["archiveSize"], delta_len);
    // The layer is not in the archive; its delta is, beside the image.
    let entries = read_tar(&std::fs::read(&delta_tar).unwrap());
    let hex = |d: &str| d.trim_start_matches("sha256:").to_string();
    assert!(!entries.keys().any(|k| k.ends_with(&hex(changed))));
    // skopeo still reads the archive's image, by its tag.
    let raw = skopeo(&[
        "inspect",
        "--raw",
        &format!("oci-archive:{}:v2", delta_tar.display()),
    ]);
    ok(&raw, "skopeo inspect the delta archive");
    assert_eq!(sha256(&raw.stdout), v2.digest);

    // plan and inspect say it per layer.
    let plan = with_delta("plan", &src, &[]);
    assert_eq!(plan["layersDelta"], 1);
    assert_eq!(plan["archiveSize"], delta_len, "plan predicts the file");
    let inspected = json_of(
        &imo(&["--json", "inspect", delta_tar.to_str().unwrap()]),
        "imo inspect",
    );
    let blobs = inspected["images"][0]["blobs"].as_array().unwrap().clone();
    let app = blobs.iter().find(|b| b["digest"] == *changed).unwrap();
    assert_eq!(app["action"], "delta");
    assert_eq!(app["delta"]["base"], v1.layers[1]);
    assert_eq!(app["delta"]["size"], delta_bytes);
    let os = blobs.iter().find(|b| b["digest"] == v2.layers[0]).unwrap();
    assert_eq!(os["action"], "left-out");

    // The far side has v1: vet passes, push rebuilds the layer.
    let dest = Registry::start();
    seed(&src, &format!("docker://{}/app:v1", dest.host()));
    let target = format!("{}/app:v2", dest.host());
    let pushed = vet_and_push(&delta_tar, &target);
    assert_eq!(pushed["rebuilt"], 1, "{pushed}");
    assert_eq!(pushed["digest"], v2.digest);
    assert_eq!(
        dest.blob("app", changed).map(|b| sha256(&b)).as_deref(),
        Some(changed.as_str())
    );
    assert_eq!(
        copied_digest(&format!("docker://{target}"), dir.path()),
        v2.digest
    );
    // The delta artifact does not land: the repository has the image tags only.
    let tags = skopeo(&[
        "list-tags",
        "--tls-verify=false",
        &format!("docker://{}/app", dest.host()),
    ]);
    ok(&tags, "skopeo list-tags");
    let tags: Value = serde_json::from_slice(&tags.stdout).unwrap();
    assert_eq!(tags["Tags"], serde_json::json!(["v1", "v2"]));
}

#[test]
fn push_onto_an_oci_layout_rebuilds_the_layer_there() {
    let src = Registry::start();
    let (_, v2) = push_versions(&src);
    let dir = workdir();
    let delta_tar = dir.path().join("delta.tar");
    pull_delta(&src, &delta_tar);
    let layout = dir.path().join("far");
    seed(&src, &format!("oci:{}:v1", layout.display()));
    let target = format!("oci:{}:v2", layout.display());
    let pushed = vet_and_push(&delta_tar, &target);
    assert_eq!(pushed["rebuilt"], 1, "{pushed}");
    let file = layout
        .join("blobs/sha256")
        .join(v2.layers[1].trim_start_matches("sha256:"));
    assert_eq!(sha256(&std::fs::read(file).unwrap()), v2.layers[1]);
    assert_eq!(copied_digest(&target, dir.path()), v2.digest);
}

#[test]
fn without_the_base_layer_at_the_destination_nothing_lands() {
    let src = Registry::start();
    let (v1, _) = push_versions(&src);
    let dir = workdir();
    let delta_tar = dir.path().join("delta.tar");
    pull_delta(&src, &delta_tar);
    // The far side has the shared os layer but not v1's app layer.
    let dest = Registry::start();
    let os = src.blob("app", &v1.layers[0]).unwrap();
    dest.put_blob("app", &os);
    let target = format!("{}/app:v2", dest.host());
    let vet = imo(&["vet", delta_tar.to_str().unwrap(), &target]);
    assert!(!vet.status.success());
    let said =
        String::from_utf8_lossy(&vet.stdout).to_string() + &String::from_utf8_lossy(&vet.stderr);
    assert!(
        said.contains(&v1.layers[1]),
        "vet names the base layer: {said}"
    );
    let push = imo(&["push", "--quiet", delta_tar.to_str().unwrap(), &target]);
    one_line_failure(&push, &[&v1.layers[1]]);
    let tagged = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{target}"),
    ]);
    assert!(!tagged.status.success(), "v2 must not be tagged");
}

#[test]
fn damaged_delta_data_is_refused_and_no_layer_lands() {
    let src = Registry::start();
    let (v1, v2) = push_versions(&src);
    let dir = workdir();
    let delta_tar = dir.path().join("delta.tar");
    let pulled = pull_delta(&src, &delta_tar);
    let delta_size = pulled["bytesDelta"].as_u64().unwrap() as usize;
    // Flip a byte in the middle of the delta data.
    let damaged = dir.path().join("damaged.tar");
    let mut hit = false;
    rewrite_archive(&delta_tar, &damaged, |name, body| {
        if name.starts_with("blobs/") && body.len() == delta_size && !hit {
            body[delta_size / 2] ^= 0x40;
            hit = true;
        }
        true
    });
    assert!(hit, "the delta data is in the archive");
    let dest = Registry::start();
    seed(&src, &format!("docker://{}/app:v1", dest.host()));
    let target = format!("{}/app:v2", dest.host());
    let push = imo(&["push", "--quiet", damaged.to_str().unwrap(), &target]);
    one_line_failure(&push, &["digest"]);
    assert!(
        dest.blob("app", &v2.layers[1]).is_none(),
        "no wrong layer lands"
    );
    let tagged = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{target}"),
    ]);
    assert!(!tagged.status.success(), "v2 must not be tagged");
    assert_eq!(
        dest.blob("app", &v1.layers[1])
            .map(|b| sha256(&b))
            .as_deref(),
        Some(v1.layers[1].as_str())
    );
}

#[test]
fn delta_needs_a_base_and_a_medium_that_can_carry_it() {
    let src = Registry::start();
    push_versions(&src);
    let dir = workdir();
    let out = dir.path().join("x.tar");
    let scratch = imo(&[
        "pull",
        "--delta",
        "scratch",
        &format!("{}/app:v2", src.host()),
        "-o",
        out.to_str().unwrap(),
    ]);
    one_line_failure(&scratch, &["--delta", "scratch"]);
    let docker = imo(&[
        "pull",
        "--delta",
        &format!("{}/app:v1", src.host()),
        &format!("{}/app:v2", src.host()),
        "-o",
        &format!("docker-archive:{}", out.display()),
    ]);
    one_line_failure(&docker, &["docker-archive", "--delta"]);
    assert!(listing(dir.path()).is_empty(), "nothing written");
}

/// REPO:v1 and REPO:v2 like [`push_versions`], their app content salted so
/// that repositories differ.
#[test]
fn a_layer_past_one_segment_crosses_in_segments_and_lands_exact() {
    // 36 MiB that does not compress: its token form is over one 32 MiB
    // segment, so the delta goes in two, each against the whole base.
    let old = noise(36 << 20, 7);
    let mut new = old.clone();
    new.splice(2_000..2_000, b"inserted".iter().copied());
    new[30 << 20..(30 << 20) + 8].copy_from_slice(b"EDITED!!");
    let src = Registry::start();
    let (_, v2) = two_versions_of(&src, &old, &new);
    let dir = workdir();
    let delta_tar = dir.path().join("delta.tar");
    let pulled = pull_delta(&src, &delta_tar);
    assert_eq!(pulled["layersDelta"], 1, "{pulled}");
    let delta_bytes = pulled["bytesDelta"].as_u64().unwrap();
    assert!(delta_bytes < 1 << 20, "a {delta_bytes}-byte delta");
    // The artifact lists the segments, whose frames make up the data.
    let entries = read_tar(&std::fs::read(&delta_tar).unwrap());
    let listed = entries
        .values()
        .filter_map(|body| serde_json::from_slice::<Value>(body).ok())
        .flat_map(|m| m["layers"].as_array().cloned().unwrap_or_default())
        .find_map(|l| {
            let a = &l["annotations"];
            assert_ne!(a["dev.imo.delta.codec"], "puff+zstd-patch-from");
            a["dev.imo.delta.segments"].as_str().map(String::from)
        })
        .expect("a delta in segments");
    let segments: Vec<[u64; 3]> = serde_json::from_str(&listed).unwrap();
    assert_eq!(segments.len(), 2, "{listed}");
    assert_eq!(segments.iter().map(|s| s[2]).sum::<u64>(), delta_bytes);

    let dest = Registry::start();
    seed(&src, &format!("docker://{}/app:v1", dest.host()));
    let target = format!("{}/app:v2", dest.host());
    let pushed = vet_and_push(&delta_tar, &target);
    assert_eq!(pushed["rebuilt"], 1, "{pushed}");
    assert_eq!(
        copied_digest(&format!("docker://{target}"), dir.path()),
        v2.digest
    );
}
