//! Connections per command: imo keeps connections open and reuses them, so
//! pull, vet and push each open at most `--jobs` + 1 per registry over
//! HTTP/1.1, and one over HTTP/2, whatever the number of blobs. A relay
//! between imo and the registry counts what imo opens; skopeo checks what
//! landed.

mod harness;

use harness::auth::Tls;
use harness::relay::Relay;
use harness::*;

const JOBS: &str = "3";
const LIMIT: usize = 4;

/// app:v1 (one layer) and app:v2 (that layer and eight more) in `reg`; the
/// first layer's bytes.
fn eight_new_layers(reg: &Registry) -> (Pushed, Vec<u8>) {
    let os = layer(&[("etc/os-release", b"ID=test\n")]);
    push_image(
        reg,
        "app",
        Some("v1"),
        Flavour::Oci,
        host_arch(),
        std::slice::from_ref(&os),
    );
    let mut layers = vec![os.clone()];
    for i in 0..8u8 {
        layers.push(layer(&[("f", &vec![i; 50_000 + i as usize])]));
    }
    let v2 = push_image(reg, "app", Some("v2"), Flavour::Oci, host_arch(), &layers);
    (v2, os)
}

/// The digest of the manifest skopeo reads at `reference` (plain HTTP or
/// trusting `cert_dir`).
fn skopeo_digest(reference: &str, cert_dir: Option<&str>) -> String {
    let tls = match cert_dir {
        Some(d) => format!("--cert-dir={d}"),
        None => "--tls-verify=false".to_string(),
    };
    let out = skopeo(&["inspect", "--raw", &tls, &format!("docker://{reference}")]);
    ok(&out, "skopeo inspect");
    sha256(&out.stdout)
}

#[test]
fn pull_vet_and_push_reuse_connections_over_http1() {
    let src = Registry::start();
    let (v2, os) = eight_new_layers(&src);
    let src_relay = Relay::start(src.port);
    let dir = workdir();
    let diff = dir.path().join("diff.tar");
    let diff = diff.to_str().unwrap();
    let (base, final_) = (
        format!("{}/app:v1", src_relay.host()),
        format!("{}/app:v2", src_relay.host()),
    );
    let run = imo(&[
        "pull", &base, &final_, "-o", diff, "--jobs", JOBS, "--quiet",
    ]);
    ok(&run, "pull through the relay");
    let opened = src_relay.take_count();
    assert!(
        (1..=LIMIT).contains(&opened),
        "pull of 9 blobs with --jobs {JOBS} opened {opened} connections"
    );

    let dest = Registry::start();
    dest.put_blob("app", &os);
    let dest_relay = Relay::start(dest.port);
    let target = format!("{}/app:v2", dest_relay.host());
    ok(&imo(&["vet", diff, &target, "--jobs", JOBS]), "vet");
    let opened = dest_relay.take_count();
    assert!((1..=LIMIT).contains(&opened), "vet opened {opened}");

    ok(
        &imo(&["push", diff, &target, "--jobs", JOBS, "--quiet"]),
        "push",
    );
    let opened = dest_relay.take_count();
    assert!((1..=LIMIT).contains(&opened), "push opened {opened}");
    assert_eq!(
        skopeo_digest(&format!("{}/app:v2", dest.host()), None),
        v2.digest
    );
    assert!(!dest.access_log().contains("HTTP/2.0"));
}

#[test]
fn one_multiplexed_connection_to_a_registry_that_speaks_http2() {
    let tls = Tls::generate();
    let reg = Registry::start_config(&tls.config());
    let plain = Registry::start();
    let (v2, _) = eight_new_layers(&plain);
    let cert_dir = tls.cert_dir();
    let cert_dir = cert_dir.to_str().unwrap();
    for tag in ["v1", "v2"] {
        ok(
            &skopeo(&[
                "copy",
                "--preserve-digests",
                "--src-tls-verify=false",
                &format!("--dest-cert-dir={cert_dir}"),
                &format!("docker://{}/app:{tag}", plain.host()),
                &format!("docker://{}/app:{tag}", reg.host()),
            ]),
            "seed the TLS registry",
        );
    }
    let seeded = reg.access_log().lines().count();
    let relay = Relay::start(reg.port);
    let dir = workdir();
    let full = dir.path().join("full.tar");
    let full = full.to_str().unwrap();
    let source = format!("{}/app:v2", relay.host());
    let run = imo(&[
        "pull",
        "scratch",
        &source,
        "-o",
        full,
        "--jobs",
        JOBS,
        "--cert-dir",
        cert_dir,
        "--quiet",
    ]);
    ok(&run, "pull over HTTPS through the relay");
    assert_eq!(relay.take_count(), 1, "pull: one HTTP/2 connection");

    let target = format!("{}/copy:v2", relay.host());
    let run = imo(&[
        "push",
        full,
        &target,
        "--jobs",
        JOBS,
        "--cert-dir",
        cert_dir,
        "--quiet",
    ]);
    ok(&run, "push over HTTPS through the relay");
    assert_eq!(relay.take_count(), 1, "push: one HTTP/2 connection");

    let log = reg.access_log();
    let imo_lines: Vec<&str> = log.lines().skip(seeded).collect();
    assert!(imo_lines.len() > 20, "{log}");
    assert!(
        imo_lines.iter().all(|l| l.contains(" HTTP/2.0\"")),
        "every request of imo went over HTTP/2: {imo_lines:#?}"
    );
    assert_eq!(
        skopeo_digest(&format!("{}/copy:v2", reg.host()), Some(cert_dir)),
        v2.digest
    );
}
