//! The `imo` crate as a library: the same archive as the command line,
//! streamed through `pull`'s reader; `push` lands the digest (checked with
//! skopeo); credentials from a callback; typed errors; progress events.

mod harness;

use std::collections::BTreeSet;
use std::io::Read;
use std::sync::{Arc, Mutex};

use harness::auth::{htpasswd, htpasswd_config};
use harness::*;

fn two_versions() -> (Registry, Pushed, Pushed) {
    let src = Registry::start();
    let (v1, v2) = harness::two_versions(&src);
    (src, v1, v2)
}

/// A library handle that reads no auth file of this machine's.
fn builder() -> imo::Builder {
    imo::Imo::builder().default_auth_files(false)
}

#[test]
fn pull_streams_the_same_archive_the_command_writes() {
    let (src, v1, v2) = two_versions();
    let dir = workdir();
    let base = format!("{}/app:v1", src.host());
    let final_ = format!("{}/app:v2", src.host());
    let cli_archive = dir.path().join("cli.tar");
    ok(
        &imo(&["pull", &base, &final_, "-o", cli_archive.to_str().unwrap()]),
        "imo pull",
    );

    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let lib = builder()
        .progress(move |e| seen.lock().unwrap().push(e))
        .build()
        .unwrap();
    let mut reader = lib.pull(&base, &final_).unwrap();
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes).unwrap();
    let report = reader.finish().unwrap();

    let from_cli = std::fs::read(&cli_archive).unwrap();
    assert!(
        bytes == from_cli,
        "the library's archive ({} bytes) differs from the command's ({} bytes)",
        bytes.len(),
        from_cli.len()
    );
    assert_eq!(report.digest, v2.digest);
    assert_eq!(report.archive_size, bytes.len() as u64);
    assert_eq!(report.layers_left_out, 1);
    let archive = Archive::from_bytes(&bytes);
    assert!(!archive.has(&v1.layers[0]), "the shared layer is left out");
    assert!(archive.has(&v2.layers[1]));

    // Every blob that started finished.
    let events = events.lock().unwrap();
    let mut started = BTreeSet::new();
    let mut finished = BTreeSet::new();
    for e in events.iter() {
        match e {
            imo::ProgressEvent::BlobStarted(b) => {
                started.insert(b.digest.clone());
            }
            imo::ProgressEvent::BlobFinished(d) => {
                finished.insert(d.clone());
            }
            _ => {}
        }
    }
    assert!(started.contains(&v2.layers[1]), "{events:?}");
    assert_eq!(started, finished);
}

#[test]
fn push_lands_the_digest_and_vet_agrees() {
    let (src, _v1, v2) = two_versions();
    let dest = Registry::start();
    let dir = workdir();
    let archive = dir.path().join("v2.tar");
    let archive = archive.to_str().unwrap();
    let lib = builder().build().unwrap();
    lib.pull_to("scratch", &format!("{}/app:v2", src.host()), archive)
        .unwrap();

    let target = format!("{}/app:v2", dest.host());
    match lib.vet(archive, &target).unwrap() {
        imo::Outcome::Single(v) => assert!(v.missing.is_empty(), "{:?}", v.missing),
        imo::Outcome::Set(_) => panic!("one image expected"),
    }
    let pushed = match lib.push(archive, &target).unwrap() {
        imo::Outcome::Single(r) => r,
        imo::Outcome::Set(_) => panic!("one image expected"),
    };
    assert_eq!(pushed.digest, v2.digest);
    let out = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!("docker://{target}"),
    ]);
    ok(&out, "skopeo inspect");
    assert_eq!(sha256(&out.stdout), v2.digest);

    // The same handle copies on, registry to registry.
    let copied = lib
        .copy(&target, &format!("{}/copy:v2", dest.host()))
        .unwrap();
    assert_eq!(copied.digest, v2.digest);
}

#[test]
fn failures_are_typed() {
    let (src, _, _) = two_versions();
    let lib = builder().build().unwrap();
    let missing = format!("{}/app:nope", src.host());

    // A pull that fails says so at the end of its stream, and in finish().
    let mut reader = lib.pull("scratch", &missing).unwrap();
    let mut sink = Vec::new();
    let err = reader.read_to_end(&mut sink).unwrap_err();
    let inner = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<imo::Error>())
        .expect("an imo::Error inside the io::Error");
    assert!(matches!(inner, imo::Error::NotFound(_)), "{inner:?}");
    assert!(inner.to_string().contains("nope"), "{inner}");
    assert!(matches!(reader.finish(), Err(imo::Error::NotFound(_))));

    match lib.plan("scratch", "Not A Reference") {
        Err(e @ imo::Error::InvalidReference(_)) => assert_eq!(e.kind(), "invalid-reference"),
        other => panic!("expected an invalid reference, got {other:?}"),
    }
    assert!(matches!(
        builder().platform("linux").build(),
        Err(imo::Error::InvalidArgument(_))
    ));
}

#[test]
fn credentials_come_from_the_callback() {
    let dir = workdir();
    let file = htpasswd(dir.path(), "carol", "Callback-Pa55");
    let reg = Registry::start_config(&Config {
        top: htpasswd_config(&file),
        ..Config::default()
    });
    let plain = Registry::start();
    let image = push_image(
        &plain,
        "app",
        Some("v1"),
        Flavour::Oci,
        host_arch(),
        &[layer(&[("a", b"1")])],
    );
    let archive = dir.path().join("a.tar");
    let archive = archive.to_str().unwrap();
    builder()
        .build()
        .unwrap()
        .pull_to("scratch", &format!("{}/app:v1", plain.host()), archive)
        .unwrap();
    let target = format!("{}/app:v1", reg.host());

    let without = builder().build().unwrap().push(archive, &target);
    assert!(
        matches!(without, Err(imo::Error::Unauthorized(_))),
        "{:?}",
        without.err()
    );

    let asked = Arc::new(Mutex::new(Vec::new()));
    let log = asked.clone();
    let lib = builder()
        .credentials(move |registry, role| {
            log.lock().unwrap().push((registry.to_string(), role));
            Some(imo::Credential::Basic(imo::BasicCredential {
                username: "carol".into(),
                password: "Callback-Pa55".into(),
            }))
        })
        .build()
        .unwrap();
    match lib.push(archive, &target).unwrap() {
        imo::Outcome::Single(r) => assert_eq!(r.digest, image.digest),
        imo::Outcome::Set(_) => panic!("one image expected"),
    }
    let asked = asked.lock().unwrap();
    assert!(
        asked
            .iter()
            .any(|(r, role)| r == &reg.host() && matches!(role, imo::Role::Destination)),
        "{asked:?}"
    );
}
