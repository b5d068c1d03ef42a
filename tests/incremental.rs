//! `imo pull BASE FINAL` and `imo plan`: only what BASE lacks goes into the
//! archive, and the plan predicts it to the byte. Checked by listing the tar,
//! against the manifests, and with skopeo.

mod harness;

use std::collections::BTreeSet;
use std::path::Path;

use harness::*;
use serde_json::Value;

struct Pair {
    v1: Pushed,
    v2: Pushed,
    shared: Vec<String>,
}

/// v1 = [os, libs, app1]; v2 = [os, libs, app2, extra]: two shared layers.
fn push_pair(reg: &Registry, flavour: Flavour) -> Pair {
    let os = layer(&[("etc/os-release", b"ID=test\n")]);
    let libs = layer(&[("usr/lib/libx.so", &[7u8; 4096])]);
    let v1 = push_image(
        reg,
        "app",
        Some("v1"),
        flavour,
        host_arch(),
        &[os.clone(), libs.clone(), layer(&[("app/v", b"1")])],
    );
    let v2 = push_image(
        reg,
        "app",
        Some("v2"),
        flavour,
        host_arch(),
        &[
            os,
            libs,
            layer(&[("app/v", b"2")]),
            layer(&[("app/extra", b"new file")]),
        ],
    );
    let shared = v1.layers[..2].to_vec();
    Pair { v1, v2, shared }
}

fn plan_json(args: &[&str]) -> Value {
    let mut full = vec!["plan", "--json"];
    full.extend_from_slice(args);
    let run = imo(&full);
    ok(&run, "imo plan --json");
    serde_json::from_slice(&run.stdout).expect("plan JSON")
}

fn left_out(plan: &Value) -> BTreeSet<String> {
    plan["images"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["blobs"].as_array().unwrap().iter())
        .filter(|b| b["action"] == "left-out")
        .map(|b| b["digest"].as_str().unwrap().to_string())
        .collect()
}

fn pull(base: &str, final_: &str, out: &Path, extra: &[&str]) -> String {
    let mut args = vec!["pull", base, final_, "-o", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let run = imo(&args);
    ok(&run, "imo pull");
    String::from_utf8_lossy(&run.stderr).into_owned()
}

fn incremental_pull(flavour: Flavour) {
    let src = Registry::start();
    let pair = push_pair(&src, flavour);
    let (v1, v2) = (
        format!("{}/app:v1", src.host()),
        format!("{}/app:v2", src.host()),
    );
    let dir = workdir();
    let out = dir.path().join("diff.tar");

    let plan = plan_json(&[&v1, &v2]);
    let summary = pull(&v1, &v2, &out, &[]);
    assert!(summary.contains("left out 2 layer(s)"), "{summary}");

    let archive = Archive::open(&out);
    assert_eq!(archive.top_digest(), pair.v2.digest);
    let mut expected: Vec<String> = vec![pair.v2.digest.clone(), pair.v2.config.clone()];
    expected.extend(pair.v2.layers[2..].iter().cloned());
    expected.sort();
    assert_eq!(
        archive.blobs(),
        expected,
        "exactly the layers v1 lacks, plus config and manifest"
    );
    for shared in &pair.shared {
        assert!(
            !archive.has(shared),
            "shared layer {shared} must be left out"
        );
    }
    assert!(
        !archive.has(&pair.v1.layers[2]),
        "v1's own layer is not v2's"
    );
    // The manifest still names every layer.
    let manifest: Value = serde_json::from_slice(archive.blob(&pair.v2.digest)).unwrap();
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 4);

    // The plan predicted exactly this.
    assert_eq!(left_out(&plan), pair.shared.iter().cloned().collect());
    assert_eq!(
        plan["archiveSize"].as_u64().unwrap(),
        std::fs::metadata(&out).unwrap().len()
    );
    let blob_bytes: usize = archive.blobs().iter().map(|d| archive.blob(d).len()).sum();
    assert_eq!(
        plan["archiveBlobBytes"].as_u64().unwrap(),
        blob_bytes as u64
    );
    assert_eq!(plan["layersLeftOut"], 2);

    // skopeo reads the manifest and config of the incomplete archive.
    let inspected = skopeo(&["inspect", &format!("oci-archive:{}", out.display())]);
    ok(&inspected, "skopeo inspect");
    let inspected: Value = serde_json::from_slice(&inspected.stdout).unwrap();
    assert_eq!(inspected["Digest"], pair.v2.digest.as_str());
    let config = skopeo(&[
        "inspect",
        "--config",
        "--raw",
        &format!("oci-archive:{}", out.display()),
    ]);
    ok(&config, "skopeo inspect --config");
    assert_eq!(sha256(&config.stdout), pair.v2.config);
}

#[test]
fn oci_pair_leaves_out_exactly_the_shared_layers() {
    incremental_pull(Flavour::Oci);
}

#[test]
fn docker_pair_leaves_out_exactly_the_shared_layers() {
    incremental_pull(Flavour::Docker);
}

#[test]
fn two_platform_indexes_with_all_platforms() {
    let src = Registry::start();
    let os_amd = layer(&[("etc/os", b"amd64")]);
    let os_arm = layer(&[("etc/os", b"arm64")]);
    let mk = |tag: &str, arch: &str, os: &Vec<u8>| {
        push_image(
            &src,
            "multi",
            None,
            Flavour::Oci,
            arch,
            &[
                os.clone(),
                layer(&[("app", format!("{tag}-{arch}").as_bytes())]),
            ],
        )
    };
    let (a1, r1) = (mk("v1", "amd64", &os_amd), mk("v1", "arm64", &os_arm));
    push_index(
        &src,
        "multi",
        "v1",
        Flavour::Oci,
        &[(&a1, "amd64"), (&r1, "arm64")],
    );
    let (a2, r2) = (mk("v2", "amd64", &os_amd), mk("v2", "arm64", &os_arm));
    let index2 = push_index(
        &src,
        "multi",
        "v2",
        Flavour::Oci,
        &[(&a2, "amd64"), (&r2, "arm64")],
    );

    let (v1, v2) = (
        format!("{}/multi:v1", src.host()),
        format!("{}/multi:v2", src.host()),
    );
    let dir = workdir();
    let out = dir.path().join("multi.tar");
    let plan = plan_json(&[&v1, &v2, "--all-platforms"]);
    pull(&v1, &v2, &out, &["--all-platforms"]);

    let archive = Archive::open(&out);
    assert_eq!(archive.top_digest(), index2.digest);
    let expected: BTreeSet<String> = [&a2, &r2]
        .iter()
        .flat_map(|c| [c.digest.clone(), c.config.clone(), c.layers[1].clone()])
        .chain([index2.digest.clone()])
        .collect();
    assert_eq!(
        archive.blobs().into_iter().collect::<BTreeSet<_>>(),
        expected
    );
    assert_eq!(
        left_out(&plan),
        [a2.layers[0].clone(), r2.layers[0].clone()]
            .into_iter()
            .collect()
    );
    assert_eq!(
        plan["archiveSize"].as_u64().unwrap(),
        std::fs::metadata(&out).unwrap().len()
    );
    assert_eq!(plan["images"].as_array().unwrap().len(), 2);
}

#[test]
fn oci_layout_and_archive_bases_give_the_same_archive_as_the_registry() {
    let src = Registry::start();
    push_pair(&src, Flavour::Oci);
    let (v1, v2) = (
        format!("{}/app:v1", src.host()),
        format!("{}/app:v2", src.host()),
    );
    let dir = workdir();
    let full = dir.path().join("v1-full.tar");
    pull("scratch", &v1, &full, &[]);
    let layout = dir.path().join("v1-layout");
    tar::Archive::new(std::fs::File::open(&full).unwrap())
        .unpack(&layout)
        .unwrap();

    let from_registry = dir.path().join("a.tar");
    let from_archive = dir.path().join("b.tar");
    let from_layout = dir.path().join("c.tar");
    pull(&v1, &v2, &from_registry, &[]);
    pull(
        &format!("oci-archive:{}", full.display()),
        &v2,
        &from_archive,
        &[],
    );
    pull(
        &format!("oci:{}:v1", layout.display()),
        &v2,
        &from_layout,
        &[],
    );
    // Layout and archive bases give byte-identical archives; the registry
    // base differs only in index.json, which also names that base.
    let b = std::fs::read(&from_archive).unwrap();
    assert_eq!(
        b,
        std::fs::read(&from_layout).unwrap(),
        "oci: vs oci-archive: base"
    );
    let (a, b) = (Archive::open(&from_registry), Archive::open(&from_archive));
    let blobs = |x: &Archive| -> Vec<(String, Vec<u8>)> {
        x.entries
            .iter()
            .filter(|(k, _)| k.starts_with("blobs/"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    assert_eq!(blobs(&a), blobs(&b), "registry vs oci-archive: base");
    assert_eq!(a.top_digest(), b.top_digest());
    assert_eq!(
        a.index["manifests"][0]["annotations"]["dev.imo.base.name"],
        v1.as_str()
    );
    assert!(b.index["manifests"][0]["annotations"]
        .get("dev.imo.base.name")
        .is_none());

    // An archive as FINAL reproduces itself byte for byte.
    let again = dir.path().join("again.tar");
    pull(
        "scratch",
        &format!("oci-archive:{}", full.display()),
        &again,
        &[],
    );
    assert_eq!(
        std::fs::read(&full).unwrap(),
        std::fs::read(&again).unwrap()
    );
}

#[test]
fn base_and_final_on_different_registries() {
    let (a, b) = (Registry::start(), Registry::start());
    let pair = push_pair(&a, Flavour::Oci);
    push_pair(&b, Flavour::Oci);
    let dir = workdir();
    let out = dir.path().join("x.tar");
    pull(
        &format!("{}/app:v1", a.host()),
        &format!("{}/app:v2", b.host()),
        &out,
        &[],
    );
    let archive = Archive::open(&out);
    assert_eq!(archive.top_digest(), pair.v2.digest);
    assert!(pair.shared.iter().all(|d| !archive.has(d)));
}

#[test]
fn unrelated_equal_and_unknown_bases() {
    let src = Registry::start();
    let pair = push_pair(&src, Flavour::Oci);
    let other = push_image(
        &src,
        "other",
        Some("v1"),
        Flavour::Oci,
        host_arch(),
        &[layer(&[("x", b"unrelated")])],
    );
    let v2 = format!("{}/app:v2", src.host());
    let dir = workdir();

    let out = dir.path().join("unrelated.tar");
    let summary = pull(&format!("{}/other:v1", src.host()), &v2, &out, &[]);
    assert!(summary.contains("shares no layer"), "{summary}");
    let archive = Archive::open(&out);
    assert!(pair.v2.layers.iter().all(|l| archive.has(l)));
    assert!(!archive.has(&other.layers[0]));

    let out = dir.path().join("same.tar");
    pull(&v2, &v2, &out, &[]);
    let archive = Archive::open(&out);
    assert_eq!(archive.blobs(), {
        let mut v = vec![pair.v2.digest.clone(), pair.v2.config.clone()];
        v.sort();
        v
    });

    let out = dir.path().join("unknown.tar");
    let ghost = format!("{}/ghost:v1", src.host());
    let run = imo(&["pull", &ghost, &v2, "-o", out.to_str().unwrap(), "--quiet"]);
    assert!(!run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains(&ghost) && err.lines().count() == 1, "{err}");
    assert!(!out.exists());
}

#[test]
fn plan_table_names_each_layer() {
    let src = Registry::start();
    let pair = push_pair(&src, Flavour::Oci);
    let run = imo(&[
        "plan",
        &format!("{}/app:v1", src.host()),
        &format!("{}/app:v2", src.host()),
    ]);
    ok(&run, "imo plan");
    let table = String::from_utf8_lossy(&run.stdout);
    for shared in &pair.shared {
        let line = table
            .lines()
            .find(|l| l.contains(shared.as_str()))
            .expect("layer listed");
        assert!(line.contains("left out"), "{line}");
    }
    for kept in &pair.v2.layers[2..] {
        let line = table
            .lines()
            .find(|l| l.contains(kept.as_str()))
            .expect("layer listed");
        assert!(line.contains("include"), "{line}");
    }
    assert!(table.contains("2 of 4 layer(s) left out"), "{table}");
}

#[test]
fn foreign_layers_are_never_downloaded_nor_missing() {
    let src = Registry::start();
    let normal = layer(&[("a", b"normal")]);
    let normal_digest = src.put_blob("win", &normal);
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_digest = src.put_blob("win", config);
    // Never uploaded anywhere: a client that fetched it would fail.
    let foreign_digest = sha256(b"foreign layer content");
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [
            {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "digest": foreign_digest, "size": 21,
             "urls": ["https://foreign.invalid/layer"]},
            {"mediaType": DOCKER_LAYER, "digest": normal_digest, "size": normal.len()},
        ],
    }))
    .unwrap();
    let digest = src.put_manifest("win", "v1", DOCKER_MANIFEST, &manifest);
    let reference = format!("{}/win:v1", src.host());

    let plan = plan_json(&["scratch", &reference]);
    let actions: Vec<&str> = plan["images"][0]["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["include", "foreign", "include"]);

    let dir = workdir();
    let out = dir.path().join("win.tar");
    pull("scratch", &reference, &out, &[]);
    let archive = Archive::open(&out);
    assert_eq!(archive.top_digest(), digest);
    assert!(!archive.has(&foreign_digest));
    assert!(archive.has(&normal_digest));

    let run = imo(&["inspect", "--json", out.to_str().unwrap()]);
    ok(&run, "imo inspect");
    let report: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert!(report["missing"].as_array().unwrap().is_empty(), "{report}");
}
