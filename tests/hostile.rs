//! Hostile input: archives built to break a reader, and registries that
//! misbehave. imo must refuse them in one line, read nothing outside the
//! archive, push nothing broken, and forward no credentials elsewhere.

mod harness;

use std::path::{Path, PathBuf};

use harness::auth::TokenServer;
use harness::faults::{Fault, FaultProxy, Rule};
use harness::*;
use serde_json::json;

struct Setup {
    src: Registry,
    dest: Registry,
    image: Pushed,
    dir: tempfile::TempDir,
    full: PathBuf,
}

fn setup() -> Setup {
    let (src, image, dir, full) = pulled_one_layer_image();
    Setup {
        src,
        dest: Registry::start(),
        image,
        dir,
        full,
    }
}

impl Setup {
    fn write(&self, name: &str, entries: &[RawEntry]) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, raw_tar(entries)).unwrap();
        p.to_str().unwrap().to_string()
    }

    /// push and inspect both refuse `archive` in one line containing `needle`; nothing is tagged.
    fn refused(&self, archive: &str, needle: &str) {
        for args in [
            vec![
                "push",
                archive,
                &format!("{}/app:v1", self.dest.host()),
                "--quiet",
            ],
            vec!["inspect", archive],
        ] {
            let out = imo(&args.iter().map(|s| s.as_ref()).collect::<Vec<&str>>());
            one_line_failure(&out, &[needle]);
        }
        assert!(
            ureq::get(&format!("http://{}/v2/app/manifests/v1", self.dest.host()))
                .call()
                .is_err(),
            "nothing tagged"
        );
    }

    fn layer_entry(&self) -> String {
        format!(
            "blobs/sha256/{}",
            self.image.layers[0].trim_start_matches("sha256:")
        )
    }
}

#[test]
fn entries_escaping_the_archive_are_refused() {
    let s = setup();
    for bad in ["../evil", "/etc/passwd", "blobs/../../x"] {
        let mut entries = raw_entries(&s.full);
        entries.push(RawEntry::file(bad, b"x"));
        let a = s.write("escape.tar", &entries);
        s.refused(&a, "outside the archive");
    }
}

#[test]
fn duplicate_entries_are_refused() {
    let s = setup();
    let mut entries = raw_entries(&s.full);
    let layer = entries
        .iter()
        .find(|e| e.name == s.layer_entry())
        .map(|e| RawEntry::file(&e.name, &e.data))
        .unwrap();
    entries.push(layer);
    let a = s.write("dup.tar", &entries);
    s.refused(&a, "appears twice");
}

#[test]
fn links_are_never_followed() {
    let s = setup();
    let mut entries: Vec<RawEntry> = raw_entries(&s.full)
        .into_iter()
        .filter(|e| e.name != s.layer_entry())
        .collect();
    for kind in [tar::EntryType::Symlink, tar::EntryType::Link] {
        entries.retain(|e| e.name != s.layer_entry());
        entries.push(RawEntry {
            name: s.layer_entry(),
            data: Vec::new(),
            kind,
            claimed: Some(0),
            link: Some("/etc/passwd".into()),
        });
        let a = s.write("link.tar", &entries);
        // The layer counts as absent: the destination lacks it, so the push stops...
        let out = imo(&["push", &a, &format!("{}/app:v1", s.dest.host()), "--quiet"]);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains(&s.image.layers[0]));
        // ...and inspect lists it as left out, reading nothing through the link.
        let out = imo(&["inspect", "--json", &a]);
        ok(&out, "inspect");
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["missing"][0]["digest"], s.image.layers[0].as_str());
    }
}

#[test]
fn sizes_beyond_the_file_are_refused() {
    let s = setup();
    let mut entries = raw_entries(&s.full);
    entries.push(RawEntry {
        claimed: Some(1 << 40),
        ..RawEntry::file("blobs/sha256/huge", b"tiny")
    });
    let a = s.write("huge.tar", &entries);
    s.refused(&a, "truncated");
}

fn index_entry(digest: &str, size: usize) -> RawEntry {
    let index = json!({"schemaVersion": 2, "manifests": [{"mediaType": OCI_INDEX, "digest": digest, "size": size}]});
    RawEntry::file("index.json", index.to_string().as_bytes())
}

fn with_index(s: &Setup, name: &str, extra: Vec<RawEntry>, top: &str, size: usize) -> String {
    let mut entries: Vec<RawEntry> = raw_entries(&s.full)
        .into_iter()
        .filter(|e| e.name != "index.json")
        .collect();
    entries.extend(extra);
    entries.push(index_entry(top, size));
    s.write(name, &entries)
}

#[test]
fn an_index_naming_itself_and_deep_nesting_are_refused() {
    let s = setup();
    // An index that claims to be its own child: its content cannot hash to the
    // name it is stored under.
    let claimed = format!("sha256:{}", "ab".repeat(32));
    let cyclic = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{"mediaType": OCI_INDEX, "digest": claimed, "size": 100}]}).to_string();
    let entry = RawEntry::file(
        &format!("blobs/sha256/{}", "ab".repeat(32)),
        cyclic.as_bytes(),
    );
    let a = with_index(&s, "cycle.tar", vec![entry], &claimed, cyclic.len());
    s.refused(&a, &claimed);

    // index -> index -> ... (6 deep) -> the image: honest, but deeper than allowed.
    let mut child =
        json!({"mediaType": OCI_MANIFEST, "digest": s.image.digest, "size": s.image.bytes.len()});
    let mut extra = Vec::new();
    for _ in 0..6 {
        let doc =
            json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [child]}).to_string();
        let d = sha256(doc.as_bytes());
        extra.push(RawEntry::file(
            &format!("blobs/sha256/{}", d.trim_start_matches("sha256:")),
            doc.as_bytes(),
        ));
        child = json!({"mediaType": OCI_INDEX, "digest": d, "size": doc.len()});
    }
    let (top, size) = (
        child["digest"].as_str().unwrap().to_string(),
        child["size"].as_u64().unwrap() as usize,
    );
    let a = with_index(&s, "deep.tar", extra, &top, size);
    s.refused(&a, "nested more than");
}

#[test]
fn json_bombs_huge_manifests_and_unknown_algorithms_are_refused() {
    let s = setup();
    let bomb = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let mut entries: Vec<RawEntry> = raw_entries(&s.full)
        .into_iter()
        .filter(|e| e.name != "index.json")
        .collect();
    entries.push(RawEntry::file("index.json", bomb.as_bytes()));
    let a = s.write("bomb.tar", &entries);
    s.refused(&a, "index.json");

    let huge = vec![b' '; 5 * 1024 * 1024];
    let d = sha256(&huge);
    let entry = RawEntry::file(
        &format!("blobs/sha256/{}", d.trim_start_matches("sha256:")),
        &huge,
    );
    let a = with_index(&s, "huge-manifest.tar", vec![entry], &d, huge.len());
    s.refused(&a, "4194304");

    let a = with_index(
        &s,
        "md5.tar",
        vec![],
        "md5:d41d8cd98f00b204e9800998ecf8427e",
        10,
    );
    s.refused(&a, "md5:d41d8cd98f00b204e9800998ecf8427e");
}

#[test]
fn sha512_blobs_are_verified() {
    use sha2::Digest as _;
    let s = setup();
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let hex = |b: &[u8]| {
        sha2::Sha512::digest(b)
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<String>()
    };
    let manifest = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha512:{}", hex(config)), "size": config.len()},
        "layers": []})
    .to_string();
    let md = format!("sha512:{}", hex(manifest.as_bytes()));
    let entries = vec![
        RawEntry::file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#),
        RawEntry::file(&format!("blobs/sha512/{}", hex(config)), config),
        RawEntry::file(&format!("blobs/sha512/{}", hex(manifest.as_bytes())), manifest.as_bytes()),
        RawEntry::file("index.json", json!({"schemaVersion": 2, "manifests": [{"mediaType": OCI_MANIFEST, "digest": md, "size": manifest.len()}]}).to_string().as_bytes()),
    ];
    let good = s.write("sha512.tar", &entries);
    let out = imo(&["inspect", "--json", &good]);
    ok(&out, "inspect a sha512 archive");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["digest"], md.as_str());
    ok(
        &imo(&[
            "vet",
            &good,
            &format!("{}/app:v1", s.dest.host()),
            "--verify",
        ]),
        "vet --verify a sha512 archive",
    );

    let mut bad = entries;
    bad[1].data = b"{}".repeat(10);
    bad[1].data.truncate(config.len());
    let bad = s.write("sha512-bad.tar", &bad);
    let out = imo(&[
        "vet",
        &bad,
        &format!("{}/app:v1", s.dest.host()),
        "--verify",
        "--quiet",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("sha512:"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn pull_through(proxy: &FaultProxy, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "pull".to_string(),
        "scratch".into(),
        format!("{}/app:v1", proxy.host()),
        "-o".into(),
        out.to_str().unwrap().into(),
        "--quiet".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    imo(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn refused_in_one_line(run: &std::process::Output, out: &Path, needle: &str) {
    one_line_failure(run, &[needle]);
    assert!(!out.exists());
}

#[test]
fn misbehaving_registries() {
    let s = setup();
    let layer = s.image.layers[0].clone();
    let out = s.dir.path().join("x.tar");

    let looping = FaultProxy::start(s.src.port, vec![]);
    let self_url = format!("http://{}/v2/app/blobs/{layer}", looping.host());
    looping
        .rules
        .lock()
        .unwrap()
        .push(Rule::new("GET", &layer, 1000, Fault::Redirect(self_url)));
    refused_in_one_line(
        &pull_through(&looping, &out, &[]),
        &out,
        "redirected more than",
    );

    let other_scheme = FaultProxy::start(
        s.src.port,
        vec![Rule::new(
            "GET",
            &layer,
            1000,
            Fault::Redirect("ftp://127.0.0.1/x".into()),
        )],
    );
    refused_in_one_line(&pull_through(&other_scheme, &out, &[]), &out, "ftp");

    let grow = FaultProxy::start(
        s.src.port,
        vec![Rule::new("GET", &layer, 1000, Fault::Grow(4096))],
    );
    refused_in_one_line(
        &pull_through(&grow, &out, &[]),
        &out,
        "larger than its descriptor",
    );
}

#[test]
fn credentials_never_follow_a_redirect_to_another_host() {
    let tokens = TokenServer::start(Some(("alice", "pw-Secret-9")));
    let reg = Registry::start_config(&Config {
        top: tokens.config(),
        ..Config::default()
    });
    let plain = Registry::start();
    let image = push_image(
        &plain,
        "app",
        Some("v1"),
        Flavour::Oci,
        host_arch(),
        &[layer(&[("a", b"redirected")])],
    );
    ok(
        &skopeo(&[
            "copy",
            "--preserve-digests",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--dest-creds",
            "alice:pw-Secret-9",
            &format!("docker://{}/app:v1", plain.host()),
            &format!("docker://{}/app:v1", reg.host()),
        ]),
        "seed",
    );
    // Blob downloads are sent elsewhere (another origin serving the same blobs).
    let elsewhere = FaultProxy::start(plain.port, vec![]);
    let layer = image.layers[0].clone();
    let front = FaultProxy::start(
        reg.port,
        vec![Rule::new(
            "GET",
            &layer,
            10,
            Fault::Redirect(format!("http://{}/v2/app/blobs/{layer}", elsewhere.host())),
        )],
    );
    let dir = workdir();
    let out = dir.path().join("a.tar");
    ok(
        &imo(&[
            "pull",
            "scratch",
            &format!("{}/app:v1", front.host()),
            "-o",
            out.to_str().unwrap(),
            "--final-creds",
            "alice:pw-Secret-9",
        ]),
        "pull with a redirected blob",
    );
    assert!(Archive::open(&out).has(&layer));
    let at_front = front.seen.lock().unwrap().clone();
    assert!(
        at_front.iter().any(|r| r.authorization),
        "the registry itself got credentials"
    );
    let redirected = elsewhere.seen.lock().unwrap().clone();
    assert!(!redirected.is_empty(), "the redirect was followed");
    assert!(
        redirected.iter().all(|r| !r.authorization),
        "no Authorization sent to another host"
    );
}

/// An index listing `child` (a descriptor) `wide` times, as a tar entry;
/// returns the entry and the index's descriptor.
fn repeating_index(child: &serde_json::Value, wide: usize) -> (RawEntry, serde_json::Value) {
    let doc =
        json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": vec![child.clone(); wide]})
            .to_string();
    let d = sha256(doc.as_bytes());
    let entry = RawEntry::file(&format!("blobs/sha256/{}", &d[7..]), doc.as_bytes());
    (
        entry,
        json!({"mediaType": OCI_INDEX, "digest": d, "size": doc.len()}),
    )
}

#[test]
fn a_graph_that_repeats_its_children_is_walked_once_per_document() {
    let s = setup();
    // 60 x 60 x 60 paths to one image through three distinct indexes.
    let mut child =
        json!({"mediaType": OCI_MANIFEST, "digest": s.image.digest, "size": s.image.bytes.len()});
    let mut extra = Vec::new();
    for _ in 0..3 {
        let (entry, desc) = repeating_index(&child, 60);
        extra.push(entry);
        child = desc;
    }
    let top = child["digest"].as_str().unwrap().to_string();
    let a = with_index(
        &s,
        "wide.tar",
        extra,
        &top,
        child["size"].as_u64().unwrap() as usize,
    );
    let started = std::time::Instant::now();
    let run = imo(&["inspect", "--json", &a]);
    ok(&run, "inspect the wide graph");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(
        report["images"].as_array().unwrap().len(),
        1,
        "the image listed once"
    );
    // Pushed, it lands whole, each document once.
    let run = imo(&[
        "push",
        &a,
        &format!("{}/app:wide", s.dest.host()),
        "--quiet",
    ]);
    ok(&run, "push the wide graph");
    assert_eq!(sha256(&s.dest.manifest("app", "wide").0), top);

    // The same graph served by a registry.
    let mut child =
        json!({"mediaType": OCI_MANIFEST, "digest": s.image.digest, "size": s.image.bytes.len()});
    for level in 0..3 {
        let doc = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": vec![child.clone(); 60]}).to_string();
        let d = s
            .src
            .put_manifest("app", &format!("wide{level}"), OCI_INDEX, doc.as_bytes());
        child = json!({"mediaType": OCI_INDEX, "digest": d, "size": doc.len()});
    }
    let started = std::time::Instant::now();
    let plan = imo(&[
        "plan",
        "scratch",
        &format!("{}/app:wide2", s.src.host()),
        "--all-platforms",
        "--json",
    ]);
    ok(&plan, "plan the wide graph from a registry");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let report: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(report["images"].as_array().unwrap().len(), 1);
}

#[test]
fn a_graph_past_the_document_budget_is_refused_in_one_line() {
    let s = setup();
    // 101 indexes of 100 distinct image manifests each: 10,101 documents.
    let config = json!({"mediaType": "application/vnd.oci.image.config.v1+json", "digest": s.image.config, "size": 10});
    let mut extra = Vec::new();
    let mut children = Vec::new();
    for i in 0..101 {
        let mut manifests = Vec::new();
        for j in 0..100 {
            let doc = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [], "annotations": {"n": format!("{i}-{j}")}}).to_string();
            let d = sha256(doc.as_bytes());
            extra.push(RawEntry::file(
                &format!("blobs/sha256/{}", &d[7..]),
                doc.as_bytes(),
            ));
            manifests.push(json!({"mediaType": OCI_MANIFEST, "digest": d, "size": doc.len()}));
        }
        let doc =
            json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}).to_string();
        let d = sha256(doc.as_bytes());
        extra.push(RawEntry::file(
            &format!("blobs/sha256/{}", &d[7..]),
            doc.as_bytes(),
        ));
        children.push(json!({"mediaType": OCI_INDEX, "digest": d, "size": doc.len()}));
    }
    let doc =
        json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}).to_string();
    let d = sha256(doc.as_bytes());
    extra.push(RawEntry::file(
        &format!("blobs/sha256/{}", &d[7..]),
        doc.as_bytes(),
    ));
    let a = with_index(&s, "budget.tar", extra, &d, doc.len());
    s.refused(&a, "more than 10000 distinct manifests");
}
