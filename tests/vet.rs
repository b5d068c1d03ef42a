//! `imo vet`: before a push, the destination is checked for every blob the
//! archive leaves out; `--verify` re-hashes the archive's own blobs.

mod harness;

use harness::faults::{Fault, FaultProxy, Rule};
use harness::*;

#[test]
fn vet_passes_only_when_the_destination_has_the_left_out_layers() {
    let src = Registry::start();
    let os = layer(&[("etc/os-release", b"ID=test\n")]);
    let v1 = push_image(
        &src,
        "app",
        Some("v1"),
        Flavour::Oci,
        host_arch(),
        &[os.clone(), layer(&[("a", b"1")])],
    );
    push_image(
        &src,
        "app",
        Some("v2"),
        Flavour::Oci,
        host_arch(),
        &[os.clone(), layer(&[("a", b"2")])],
    );
    let dir = workdir();
    let diff = dir.path().join("diff.tar");
    let diff = diff.to_str().unwrap();
    ok(
        &imo(&[
            "pull",
            &format!("{}/app:v1", src.host()),
            &format!("{}/app:v2", src.host()),
            "-o",
            diff,
        ]),
        "pull",
    );

    let dest = Registry::start();
    let out = imo(&["vet", diff, &format!("{}/app:v2", dest.host())]);
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.contains(&v1.layers[0]) && stdout.contains(&format!("linux/{}", host_arch()))
            || stdout.contains(" -"),
        "{stdout}"
    );

    // A blob in the repository counts even if no tag lists it.
    dest.put_blob("app", &os);
    let out = imo(&["vet", diff, &format!("{}/app", dest.host()), "--verify"]);
    ok(&out, "vet --verify");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("verified 3 blob(s)"), "{err}");
}

#[test]
fn vet_verify_catches_a_tampered_blob() {
    let (_src, image, dir, full) = pulled_one_layer_image();
    let tampered = dir.path().join("tampered.tar");
    let victim = image.layers[0].trim_start_matches("sha256:").to_string();
    rewrite_archive(&full, &tampered, |name, body| {
        if name.ends_with(&victim) {
            body[10] ^= 1;
        }
        true
    });
    let dest = Registry::start();
    let out = imo(&[
        "vet",
        tampered.to_str().unwrap(),
        &format!("{}/app:v1", dest.host()),
        "--verify",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&image.layers[0]), "{err}");
}

#[test]
fn vet_looks_up_left_out_layers_in_parallel_and_names_each_missing_one() {
    let src = Registry::start();
    let shared: Vec<Vec<u8>> = (0..5u8).map(|i| layer(&[("base", &[i; 100])])).collect();
    let mut v2_layers = shared.clone();
    v2_layers.push(layer(&[("app", b"2")]));
    let v1 = push_image(&src, "app", Some("v1"), Flavour::Oci, host_arch(), &shared);
    push_image(
        &src,
        "app",
        Some("v2"),
        Flavour::Oci,
        host_arch(),
        &v2_layers,
    );
    let dir = workdir();
    let diff = dir.path().join("diff.tar");
    let diff = diff.to_str().unwrap();
    let (v1_ref, v2_ref) = (
        format!("{}/app:v1", src.host()),
        format!("{}/app:v2", src.host()),
    );
    ok(&imo(&["pull", &v1_ref, &v2_ref, "-o", diff]), "pull");

    // The destination has 3 of the 5 left-out layers.
    let dest = Registry::start();
    for l in &shared[..3] {
        dest.put_blob("app", l);
    }
    for (jobs, at_once) in [("1", 1), ("4", 4)] {
        let proxy = FaultProxy::start(
            dest.port,
            vec![Rule::new("HEAD", "/blobs/", 100, Fault::Delay(300))],
        );
        let out = imo(&[
            "vet",
            diff,
            &format!("{}/app:v2", proxy.host()),
            "--jobs",
            jobs,
        ]);
        assert!(!out.status.success(), "two layers are missing");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let named: Vec<&str> = stdout
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .collect();
        assert_eq!(
            named,
            [v1.layers[3].as_str(), v1.layers[4].as_str()],
            "{stdout}"
        );
        assert_eq!(proxy.peak("HEAD /blobs/"), at_once, "--jobs {jobs}");
    }
}

#[test]
fn vet_onto_a_layout_names_what_it_lacks_and_writes_nothing() {
    let src = Registry::start();
    let os = layer(&[("etc/os-release", b"ID=test\n")]);
    let v1 = push_image(
        &src,
        "app",
        Some("v1"),
        Flavour::Oci,
        host_arch(),
        &[os.clone(), layer(&[("a", b"1")])],
    );
    push_image(
        &src,
        "app",
        Some("v2"),
        Flavour::Oci,
        host_arch(),
        &[os, layer(&[("a", b"2")])],
    );
    let dir = workdir();
    let diff = dir.path().join("diff.tar");
    let diff = diff.to_str().unwrap();
    ok(
        &imo(&[
            "pull",
            &format!("{}/app:v1", src.host()),
            &format!("{}/app:v2", src.host()),
            "-o",
            diff,
        ]),
        "pull",
    );
    // A layout holding something else: the shared layer is not there.
    let layout = dir.path().join("layout");
    let other = push_image(
        &src,
        "other",
        Some("v1"),
        Flavour::Oci,
        host_arch(),
        &[layer(&[("o", b"o")])],
    );
    ok(
        &imo(&[
            "pull",
            "scratch",
            &format!("{}/other:v1", src.host()),
            "-o",
            &format!("oci:{}:other", layout.display()),
        ]),
        "pull into a layout",
    );
    let index = std::fs::read(layout.join("index.json")).unwrap();
    let out = imo(&["vet", diff, &format!("oci:{}:v2", layout.display())]);
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains(&v1.layers[0]), "{stdout}");
    one_line_failure(&out, &["lacks 1 of the 1"]);
    assert_eq!(std::fs::read(layout.join("index.json")).unwrap(), index);
    let _ = other;

    // A layout that does not exist lacks everything, and is not made.
    let none = dir.path().join("none");
    let out = imo(&["vet", diff, &format!("oci:{}", none.display())]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(&v1.layers[0]));
    assert!(!none.exists());
}
