//! Signatures, attestations, SBOMs and referrers travel with the image:
//! pulled into the archive, pushed after the image's tag, checked at the
//! destination without imo (the signature verified with the signer's key,
//! the fallback tag index read by hand).

mod harness;

use harness::attach::{self, Signer};
use harness::faults::{Fault, FaultProxy, Rule};
use harness::*;
use serde_json::{json, Value};

fn run_ok(args: &[&str]) -> String {
    let out = imo(args);
    ok(&out, &args.join(" "));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// index.json of an archive, read by hand.
fn index_of(path: &std::path::Path) -> Vec<Value> {
    let entries = read_tar(&std::fs::read(path).unwrap());
    let index: Value = serde_json::from_slice(&entries["index.json"]).unwrap();
    index["manifests"].as_array().unwrap().clone()
}

/// The attachment entries of an archive: subject and tag by digest.
fn attachments(path: &std::path::Path) -> Vec<(String, String, Option<String>)> {
    index_of(path)
        .into_iter()
        .filter_map(|e| {
            let a = &e["annotations"];
            let subject = a["dev.imo.attachment.subject"].as_str()?.to_string();
            assert!(
                a.get("org.opencontainers.image.ref.name").is_none(),
                "an attachment has no ref name: {e}"
            );
            let tag = a["dev.imo.attachment.tag"].as_str().map(str::to_string);
            Some((e["digest"].as_str().unwrap().to_string(), subject, tag))
        })
        .collect()
}

struct Signed {
    src: Registry,
    image: Pushed,
    signer: Signer,
    sig: String,
    sbom: (String, Value),
    attestation: (String, Value),
    sbom_sig: String,
}

/// app:v1, signed; an SBOM and an attestation as referrers, listed in the
/// fallback tag; the SBOM signed too.
fn signed() -> Signed {
    let src = Registry::start();
    let image = push_image(
        &src,
        "app",
        Some("v1"),
        Flavour::Oci,
        host_arch(),
        &[layer(&[("bin/app", b"signed")])],
    );
    let signer = Signer::new();
    let sig = signer.sign(&src, "app", &image.digest);
    let subject = (image.digest.as_str(), image.bytes.len(), OCI_MANIFEST);
    let sbom = attach::push_referrer(
        &src,
        "app",
        subject,
        "application/spdx+json",
        br#"{"spdxVersion":"SPDX-2.3"}"#,
    );
    let attestation = attach::push_referrer(
        &src,
        "app",
        subject,
        "application/vnd.in-toto+json",
        br#"{"_type":"https://in-toto.io/Statement/v1"}"#,
    );
    attach::list_referrers(
        &src,
        "app",
        &image.digest,
        &[sbom.1.clone(), attestation.1.clone()],
    );
    let sbom_sig = signer.sign(&src, "app", &sbom.0);
    Signed {
        src,
        image,
        signer,
        sig,
        sbom,
        attestation,
        sbom_sig,
    }
}

#[test]
fn a_signature_sboms_and_attestations_travel_through_an_archive() {
    let s = signed();
    let dir = workdir();
    let archive = dir.path().join("app.tar");
    run_ok(&[
        "pull",
        "scratch",
        &format!("{}/app:v1", s.src.host()),
        "-o",
        archive.to_str().unwrap(),
    ]);

    let found = attachments(&archive);
    let digests: Vec<&str> = found.iter().map(|(d, _, _)| d.as_str()).collect();
    for d in [&s.sig, &s.sbom.0, &s.attestation.0, &s.sbom_sig] {
        assert!(digests.contains(&d.as_str()), "{d} in {found:?}");
    }
    assert_eq!(found.len(), 4);
    let sig = found.iter().find(|(d, _, _)| *d == s.sig).unwrap();
    assert_eq!(sig.1, s.image.digest);
    assert_eq!(
        sig.2.as_deref(),
        Some(attach::sig_tag(&s.image.digest).as_str())
    );
    let sbom_sig = found.iter().find(|(d, _, _)| *d == s.sbom_sig).unwrap();
    assert_eq!(
        sbom_sig.1, s.sbom.0,
        "a signature of the SBOM attaches to the SBOM"
    );
    // The referrer's descriptor is kept as the registry listed it.
    let entry = index_of(&archive)
        .into_iter()
        .find(|e| e["digest"] == s.sbom.0.as_str())
        .unwrap();
    assert_eq!(entry["artifactType"], "application/spdx+json");
    assert_eq!(
        entry["annotations"]["org.opencontainers.image.created"],
        "2026-12-01T00:00:00Z"
    );
    // skopeo reads the image by its tag.
    let raw = skopeo(&[
        "inspect",
        "--raw",
        &format!("oci-archive:{}:v1", archive.display()),
    ]);
    ok(&raw, "skopeo inspect by tag");
    assert_eq!(sha256(&raw.stdout), s.image.digest);
    let inspect = imo(&["inspect", "--json", archive.to_str().unwrap()]);
    ok(&inspect, "inspect");
    let report: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    let kinds: Vec<&str> = report["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"sig") && kinds.contains(&"application/spdx+json"),
        "{kinds:?}"
    );

    // The destination already lists a referrer of its own for the image.
    let dest = Registry::start();
    let theirs = push_image(
        &dest,
        "other",
        Some("x"),
        Flavour::Oci,
        host_arch(),
        &[layer(&[("o", b"o")])],
    );
    let own = attach::push_referrer(
        &dest,
        "app",
        (s.image.digest.as_str(), s.image.bytes.len(), OCI_MANIFEST),
        "application/vnd.example.note",
        b"already here",
    );
    attach::list_referrers(&dest, "app", &s.image.digest, std::slice::from_ref(&own.1));
    let _ = theirs;
    run_ok(&[
        "push",
        archive.to_str().unwrap(),
        &format!("{}/app:v1", dest.host()),
    ]);
    assert_eq!(sha256(&dest.manifest("app", "v1").0), s.image.digest);
    attach::verify(&dest, "app", &s.image.digest, &s.signer.public())
        .expect("a valid signature lands");
    attach::verify(&dest, "app", &s.sbom.0, &s.signer.public())
        .expect("the SBOM's signature lands");
    let listed = attach::listed(&dest, "app", &s.image.digest).expect("a fallback index");
    for d in [&own.0, &s.sbom.0, &s.attestation.0] {
        assert!(listed.contains(d), "{d} listed in {listed:?}");
    }
    assert_eq!(listed.len(), 3, "merged, nothing dropped, nothing twice");
    for d in [&s.sbom.0, &s.attestation.0] {
        assert_eq!(
            &sha256(&dest.manifest("app", d).0),
            d,
            "the referrer by its digest"
        );
    }
    // A second push changes nothing in the list.
    run_ok(&[
        "push",
        archive.to_str().unwrap(),
        &format!("{}/app:v1", dest.host()),
    ]);
    assert_eq!(
        attach::listed(&dest, "app", &s.image.digest).unwrap().len(),
        3
    );

    // Without attachments, none lands.
    let bare = Registry::start();
    run_ok(&[
        "push",
        "--no-attachments",
        archive.to_str().unwrap(),
        &format!("{}/app:v1", bare.host()),
    ]);
    assert_eq!(sha256(&bare.manifest("app", "v1").0), s.image.digest);
    assert!(attach::verify(&bare, "app", &s.image.digest, &s.signer.public()).is_err());
    assert!(attach::listed(&bare, "app", &s.image.digest).is_none());

    // copy carries them too, and --attachment-type keeps only some.
    let copied = Registry::start();
    run_ok(&[
        "copy",
        "--attachment-type",
        "sig",
        &format!("{}/app:v1", s.src.host()),
        &format!("{}/app:v1", copied.host()),
    ]);
    attach::verify(&copied, "app", &s.image.digest, &s.signer.public()).expect("copied signature");
    assert!(
        attach::listed(&copied, "app", &s.image.digest).is_none(),
        "no SBOM asked for"
    );
}

#[test]
fn an_incremental_archive_carries_the_new_signature_only() {
    let src = Registry::start();
    let os = layer(&[("etc/os-release", b"ID=signed\n")]);
    let v1 = push_image(
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
    let signer = Signer::new();
    let sig1 = signer.sign(&src, "app", &v1.digest);
    let sig2 = signer.sign(&src, "app", &v2.digest);
    let dir = workdir();
    let diff = dir.path().join("diff.tar");
    run_ok(&[
        "pull",
        &format!("{}/app:v1", src.host()),
        &format!("{}/app:v2", src.host()),
        "-o",
        diff.to_str().unwrap(),
    ]);
    let found = attachments(&diff);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, sig2);
    assert_ne!(found[0].0, sig1);

    let full = dir.path().join("v1.tar");
    run_ok(&[
        "pull",
        "scratch",
        &format!("{}/app:v1", src.host()),
        "-o",
        full.to_str().unwrap(),
    ]);
    let dest = Registry::start();
    run_ok(&[
        "push",
        full.to_str().unwrap(),
        &format!("{}/app:v1", dest.host()),
    ]);
    run_ok(&[
        "push",
        diff.to_str().unwrap(),
        &format!("{}/app:v2", dest.host()),
    ]);
    attach::verify(&dest, "app", &v2.digest, &signer.public()).expect("v2's signature");
    attach::verify(&dest, "app", &v1.digest, &signer.public()).expect("v1's, from the first push");
}

#[test]
fn the_referrers_api_is_used_where_a_registry_offers_it() {
    let src = Registry::start();
    let image = push_image(
        &src,
        "app",
        Some("v1"),
        Flavour::Oci,
        host_arch(),
        &[layer(&[("a", b"api")])],
    );
    let subject = (image.digest.as_str(), image.bytes.len(), OCI_MANIFEST);
    let sbom = attach::push_referrer(&src, "app", subject, "application/spdx+json", b"sbom");
    let vex = attach::push_referrer(&src, "app", subject, "application/vnd.example.vex", b"vex");
    // No fallback tag: only the (paginated) API lists them.
    let page = |entries: Vec<Value>| {
        serde_json::to_vec(
            &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}),
        )
        .unwrap()
    };
    let first = format!("/v2/app/referrers/{}", image.digest);
    let proxy = FaultProxy::start(
        src.port,
        vec![
            Rule::new(
                "GET",
                &format!("{first}?page=2"),
                usize::MAX,
                Fault::Answer(
                    200,
                    vec![("Content-Type".into(), OCI_INDEX.into())],
                    page(vec![vex.1.clone()]),
                ),
            ),
            Rule::new(
                "GET",
                &first,
                usize::MAX,
                Fault::Answer(
                    200,
                    vec![
                        ("Content-Type".into(), OCI_INDEX.into()),
                        ("Link".into(), format!("<{first}?page=2>; rel=\"next\"")),
                    ],
                    page(vec![sbom.1.clone()]),
                ),
            ),
        ],
    );
    let dir = workdir();
    let archive = dir.path().join("app.tar");
    run_ok(&[
        "pull",
        "scratch",
        &format!("{}/app:v1", proxy.host()),
        "-o",
        archive.to_str().unwrap(),
    ]);
    let found: Vec<String> = attachments(&archive)
        .into_iter()
        .map(|(d, _, _)| d)
        .collect();
    assert!(
        found.contains(&sbom.0) && found.contains(&vex.0),
        "{found:?}"
    );

    // A destination with the API lists referrers itself: no fallback tag.
    let dest = Registry::start();
    let dest_proxy = FaultProxy::start(
        dest.port,
        vec![Rule::new(
            "GET",
            "/referrers/",
            usize::MAX,
            Fault::Answer(
                200,
                vec![("Content-Type".into(), OCI_INDEX.into())],
                page(vec![]),
            ),
        )],
    );
    run_ok(&[
        "push",
        archive.to_str().unwrap(),
        &format!("{}/app:v1", dest_proxy.host()),
    ]);
    assert_eq!(&sha256(&dest.manifest("app", &sbom.0).0), &sbom.0);
    assert!(attach::listed(&dest, "app", &image.digest).is_none());
    // Without the API, the same push lists them in the fallback tag.
    let plain = Registry::start();
    run_ok(&[
        "push",
        archive.to_str().unwrap(),
        &format!("{}/app:v1", plain.host()),
    ]);
    let listed = attach::listed(&plain, "app", &image.digest).unwrap();
    assert!(
        listed.contains(&sbom.0) && listed.contains(&vex.0),
        "{listed:?}"
    );
}
