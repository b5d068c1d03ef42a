//! `imo pull --set --delta`: each image's changed layers cross as deltas
//! against its repository's base image (a base image, or an image of the
//! previous set archive), and `push` of the set rebuilds them below a
//! prefix. Digests at the destination are checked with skopeo.

mod harness;

use std::path::Path;

use harness::delta::*;
use harness::*;
use serde_json::Value;

fn push_pair(reg: &Registry, repo: &str, salt: u8) -> (Pushed, Pushed) {
    let os = layer(&[("etc/os-release", b"ID=test\n")]);
    let push = |tag: &str, edited: bool| {
        let mut app = app_files(edited);
        app.push(salt);
        push_image(
            reg,
            repo,
            Some(tag),
            Flavour::Oci,
            host_arch(),
            &[os.clone(), layer(&[("app", &app)])],
        )
    };
    (push("v1", false), push("v2", true))
}

/// A set file naming `team/app` and `team/tools` at `tag` in `reg`,
/// written in `dir`.
fn set_file(dir: &Path, reg: &Registry, tag: &str) -> std::path::PathBuf {
    let file = dir.join(format!("{tag}.yaml"));
    std::fs::write(
        &file,
        format!(
            "images:\n  - source: {h}/team/app:{tag}\n  - source: {h}/team/tools:{tag}\n",
            h = reg.host()
        ),
    )
    .unwrap();
    file
}

#[test]
fn a_set_carries_deltas_against_the_base_image_of_each_repository() {
    let src = Registry::start();
    let (app1, app2) = push_pair(&src, "team/app", 1);
    let (tools1, tools2) = push_pair(&src, "team/tools", 2);
    let dir = workdir();
    let set = set_file(dir.path(), &src, "v2");
    let set = set.to_str().unwrap();
    let bases = [
        format!("{}/team/tools:v1", src.host()),
        format!("{}/team/app:v1", src.host()),
    ];
    let (delta_tar, plain_tar) = (dir.path().join("delta.tar"), dir.path().join("plain.tar"));
    let pull = |out: &Path, delta: bool| {
        let mut args = vec![
            "pull", "--set", set, "--base", &bases[0], "--base", &bases[1],
        ];
        if delta {
            args.push("--delta");
        }
        args.extend(["-o", out.to_str().unwrap(), "--quiet"]);
        ok(&imo(&args), "imo pull --set");
    };
    pull(&delta_tar, true);
    pull(&plain_tar, false);
    let (delta_len, plain_len) = (
        std::fs::metadata(&delta_tar).unwrap().len(),
        std::fs::metadata(&plain_tar).unwrap().len(),
    );
    assert!(
        delta_len * 5 < plain_len,
        "delta set {delta_len} bytes, layer-level {plain_len}"
    );
    // Each changed layer crossed as a delta against its own repository's v1.
    let index: Value =
        serde_json::from_slice(&read_tar(&std::fs::read(&delta_tar).unwrap())["index.json"])
            .unwrap();
    let subjects: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["annotations"]["dev.imo.delta.subject"].as_str())
        .collect();
    assert_eq!(subjects.len(), 2, "{index}");
    set_layers(&delta_tar, &[(&app1, &app2), (&tools1, &tools2)]);

    // The far side holds both v1 images below a prefix: push rebuilds both layers.
    let dest = Registry::start();
    for repo in ["team/app", "team/tools"] {
        seed_repo(
            &src,
            repo,
            &format!("docker://{}/mirror/{repo}:v1", dest.host()),
        );
    }
    let prefix = format!("{}/mirror", dest.host());
    ok(
        &imo(&["vet", delta_tar.to_str().unwrap(), &prefix]),
        "vet the set",
    );
    ok(
        &imo(&["push", delta_tar.to_str().unwrap(), &prefix, "--quiet"]),
        "push the set",
    );
    let landed = [("team/app", &app2), ("team/tools", &tools2)];
    each_v2_landed(dir.path(), &prefix, &landed);
    for (repo, v2) in landed {
        let layer = dest.blob(&format!("mirror/{repo}"), &v2.layers[1]);
        assert_eq!(
            layer.map(|b| sha256(&b)).as_deref(),
            Some(v2.layers[1].as_str())
        );
    }
}

#[test]
fn a_set_archive_is_the_delta_base_of_the_next_set() {
    let src = Registry::start();
    let (app1, app2) = push_pair(&src, "team/app", 1);
    let (tools1, tools2) = push_pair(&src, "team/tools", 2);
    let dir = workdir();
    let (first, second) = (dir.path().join("v1.tar"), dir.path().join("v2.tar"));
    let (set1, set2) = (
        set_file(dir.path(), &src, "v1"),
        set_file(dir.path(), &src, "v2"),
    );
    ok(
        &imo(&[
            "pull",
            "--quiet",
            "--set",
            set1.to_str().unwrap(),
            "-o",
            first.to_str().unwrap(),
        ]),
        "imo pull --set v1",
    );
    // The next set against the first archive: each image's changed layer
    // is a delta against its own repository's image there.
    let pulled = json_of(
        &imo(&[
            "--json",
            "pull",
            "--set",
            set2.to_str().unwrap(),
            "--base",
            first.to_str().unwrap(),
            "--delta",
            "-o",
            second.to_str().unwrap(),
        ]),
        "imo pull --set v2 --delta --base v1.tar",
    );
    assert_eq!(pulled["layersLeftOut"], 1, "the shared os layer: {pulled}");
    for os in set_layers(&second, &[(&app1, &app2), (&tools1, &tools2)]) {
        assert_eq!(os, "left-out");
    }

    // The far side took the first archive; the second lands on it.
    let dest = Registry::start();
    let prefix = format!("{}/mirror", dest.host());
    ok(
        &imo(&["push", "--quiet", first.to_str().unwrap(), &prefix]),
        "push v1",
    );
    ok(
        &imo(&["push", "--quiet", second.to_str().unwrap(), &prefix]),
        "push v2",
    );
    each_v2_landed(
        dir.path(),
        &prefix,
        &[("team/app", &app2), ("team/tools", &tools2)],
    );
}

/// Checks with skopeo that each repository's v2 below `prefix` is the
/// image pushed as `v2` (working in `dir`).
fn each_v2_landed(dir: &Path, prefix: &str, images: &[(&str, &Pushed)]) {
    for (repo, v2) in images {
        let check = dir.join(repo.replace('/', "-"));
        std::fs::create_dir_all(&check).unwrap();
        let at = format!("docker://{prefix}/{repo}:v2");
        assert_eq!(copied_digest(&at, &check), v2.digest);
    }
}

/// Checks with `inspect` that each `(v1, v2)` pair's changed layer is in
/// the set archive `archive` as a delta against v1's; each v2's first
/// layer's action, in order.
fn set_layers(archive: &Path, pairs: &[(&Pushed, &Pushed)]) -> Vec<Value> {
    let inspected = json_of(
        &imo(&["--json", "inspect", archive.to_str().unwrap()]),
        "imo inspect",
    );
    let mut firsts = Vec::new();
    for (v1, v2) in pairs {
        let image = inspected["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["digest"] == v2.digest)
            .unwrap_or_else(|| panic!("{} in {inspected}", v2.digest));
        let blobs = image["images"][0]["blobs"].as_array().unwrap();
        let action = |layer: &str| blobs.iter().find(|b| b["digest"] == layer).unwrap();
        let app = action(&v2.layers[1]);
        assert_eq!(app["action"], "delta", "{image}");
        assert_eq!(app["delta"]["base"], v1.layers[1]);
        firsts.push(action(&v2.layers[0])["action"].clone());
    }
    firsts
}
