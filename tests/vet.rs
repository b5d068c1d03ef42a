//! `imo vet`: before a push, the destination is checked for every blob the
//! archive leaves out; `--verify` re-hashes the archive's own blobs.

mod harness;

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
