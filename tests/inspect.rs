//! `imo inspect`: what an archive holds and what it leaves to the destination,
//! for archives written by imo and by skopeo.

mod harness;

use std::collections::BTreeSet;

use harness::*;
use serde_json::Value;

fn inspect_json(file: &str) -> Value {
    let run = imo(&["inspect", "--json", file]);
    ok(&run, "imo inspect --json");
    serde_json::from_slice(&run.stdout).expect("inspect JSON")
}

fn digests(list: &Value) -> BTreeSet<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|b| b["digest"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn lists_present_and_left_out_blobs_of_an_incremental_archive() {
    let src = Registry::start();
    let os = layer(&[("etc/os-release", b"ID=test\n")]);
    push_image(
        &src,
        "app",
        Some("v1"),
        Flavour::Oci,
        host_arch(),
        &[os.clone(), layer(&[("a", b"1")])],
    );
    let v2 = push_image(
        &src,
        "app",
        Some("v2"),
        Flavour::Oci,
        host_arch(),
        &[os, layer(&[("a", b"2")])],
    );
    let dir = workdir();
    let out = dir.path().join("diff.tar");
    let run = imo(&[
        "pull",
        &format!("{}/app:v1", src.host()),
        &format!("{}/app:v2", src.host()),
        "-o",
        out.to_str().unwrap(),
    ]);
    ok(&run, "imo pull");

    let report = inspect_json(out.to_str().unwrap());
    assert_eq!(report["digest"], v2.digest.as_str());
    assert_eq!(report["tag"], "v2");
    assert_eq!(
        digests(&report["missing"]),
        [v2.layers[0].clone()].into_iter().collect()
    );
    let archive = Archive::open(&out);
    assert_eq!(
        digests(&report["present"]),
        archive.blobs().into_iter().collect()
    );

    let table = imo(&["inspect", &format!("oci-archive:{}", out.display())]);
    ok(&table, "imo inspect");
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains(&format!("needs {}", v2.layers[0])), "{text}");
}

#[test]
fn reads_archives_written_by_skopeo() {
    let src = Registry::start();
    let (amd, arm) = (
        push_image(
            &src,
            "multi",
            None,
            Flavour::Oci,
            "amd64",
            &[layer(&[("a", b"amd")])],
        ),
        push_image(
            &src,
            "multi",
            None,
            Flavour::Oci,
            "arm64",
            &[layer(&[("a", b"arm")])],
        ),
    );
    let index = push_index(
        &src,
        "multi",
        "v1",
        Flavour::Oci,
        &[(&amd, "amd64"), (&arm, "arm64")],
    );
    let dir = workdir();
    let out = dir.path().join("skopeo.tar");
    ok(
        &skopeo(&[
            "copy",
            "--all",
            "--src-tls-verify=false",
            &format!("docker://{}/multi:v1", src.host()),
            &format!("oci-archive:{}:v1", out.display()),
        ]),
        "skopeo copy to oci-archive",
    );
    let report = inspect_json(out.to_str().unwrap());
    assert_eq!(report["digest"], index.digest.as_str());
    assert_eq!(report["images"].as_array().unwrap().len(), 2);
    assert!(report["missing"].as_array().unwrap().is_empty());
    let expected: BTreeSet<String> = [&amd, &arm]
        .iter()
        .flat_map(|c| [c.digest.clone(), c.config.clone(), c.layers[0].clone()])
        .chain([index.digest.clone()])
        .collect();
    assert_eq!(digests(&report["present"]), expected);
}

#[test]
fn a_file_that_is_not_an_archive_gets_one_line() {
    let dir = workdir();
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "just some text, not a tar archive").unwrap();
    let run = imo(&["inspect", file.to_str().unwrap()]);
    assert!(!run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains(file.to_str().unwrap()) && err.contains("not"),
        "{err}"
    );

    let run = imo(&["inspect", dir.path().join("missing.tar").to_str().unwrap()]);
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("missing.tar"));
}
