//! Flaky networks and registries: a fault-injecting proxy between imo and a
//! real registry. imo must recover where recovery is possible and otherwise
//! fail in one line, with no file at the output path and no tag moved.

mod harness;

use std::time::{Duration, Instant};

use harness::faults::{Fault, FaultProxy, Rule};
use harness::*;

struct Case {
    reg: Registry,
    image: Pushed,
    dir: tempfile::TempDir,
}

/// A registry with app:v1 = [small layer, 300 KB layer].
fn case() -> Case {
    let reg = Registry::start();
    let image = push_image(
        &reg,
        "app",
        Some("v1"),
        Flavour::Oci,
        host_arch(),
        &[
            layer(&[("s", b"small")]),
            layer(&[("big", &noise(300_000, 7))]),
        ],
    );
    Case {
        reg,
        image,
        dir: workdir(),
    }
}

impl Case {
    fn out(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_string()
    }

    /// app:v1 pulled whole, straight from the registry: an archive to push.
    fn archive(&self) -> String {
        let full = self.out("full.tar");
        let source = format!("{}/app:v1", self.reg.host());
        ok(&imo(&["pull", "scratch", &source, "-o", &full]), "pull");
        full
    }

    /// Pulls app:v1 through `proxy`.
    fn pull(&self, proxy: &FaultProxy, out: &str, extra: &[&str]) -> std::process::Output {
        let mut args = vec!["pull", "scratch", "--quiet", "-o", out];
        let reference = format!("{}/app:v1", proxy.host());
        args.insert(2, &reference);
        args.extend_from_slice(extra);
        imo(&args)
    }
}

fn big_layer(c: &Case) -> String {
    c.image.layers[1].trim_start_matches("sha256:").to_string()
}

#[test]
fn transient_statuses_are_retried() {
    let c = case();
    let proxy = FaultProxy::start(
        c.reg.port,
        vec![
            Rule::new("GET", "/manifests/v1", 2, Fault::Status(503)),
            Rule::new("GET", &c.image.config, 1, Fault::Status(502)),
            Rule::new("GET", &big_layer(&c), 1, Fault::TooMany(1)),
            Rule::new("GET", &c.image.layers[0], 1, Fault::Status(500)),
        ],
    );
    let out = c.out("a.tar");
    let started = Instant::now();
    let run = c.pull(&proxy, &out, &[]);
    ok(&run, "pull through 503, 502, 500 and 429");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was honoured"
    );
    assert_eq!(proxy.applied().len(), 5);
    assert_eq!(
        Archive::open(std::path::Path::new(&out)).top_digest(),
        c.image.digest
    );
}

#[test]
fn broken_downloads_resume_with_range() {
    let c = case();
    let big = big_layer(&c);
    let proxy = FaultProxy::start(
        c.reg.port,
        vec![
            Rule::new("GET", &big, 1, Fault::DropAfter(100_000)),
            Rule::new("GET", &big, 1, Fault::Truncate(50_000)),
        ],
    );
    let out = c.out("a.tar");
    ok(
        &c.pull(&proxy, &out, &[]),
        "pull through a dropped and a truncated body",
    );
    let archive = Archive::open(std::path::Path::new(&out));
    assert!(archive.has(&c.image.layers[1]));
    let ranges: Vec<String> = proxy
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter_map(|s| s.range.clone())
        .collect();
    assert_eq!(ranges.len(), 2, "two resumptions: {ranges:?}");
    assert!(
        ranges
            .iter()
            .all(|r| r.starts_with("bytes=") && !r.starts_with("bytes=0-")),
        "{ranges:?}"
    );
}

#[test]
fn a_slow_trickle_still_completes() {
    let c = case();
    let proxy = FaultProxy::start(
        c.reg.port,
        vec![Rule::new("GET", &big_layer(&c), 1, Fault::Trickle(2))],
    );
    let out = c.out("a.tar");
    ok(&c.pull(&proxy, &out, &[]), "pull through a trickle");
    assert!(Archive::open(std::path::Path::new(&out)).has(&c.image.layers[1]));
}

/// The run failed in one line containing `needle`, leaving no output file.
fn failed_cleanly(run: &std::process::Output, out: &str, needle: &str) {
    one_line_failure(run, &[needle]);
    assert!(
        !std::path::Path::new(out).exists(),
        "no file at the output path"
    );
}

#[test]
fn a_wrong_body_fails_cleanly() {
    let c = case();
    let proxy = FaultProxy::start(
        c.reg.port,
        vec![Rule::new("GET", &big_layer(&c), 10, Fault::WrongBody)],
    );
    let out = c.out("a.tar");
    failed_cleanly(&c.pull(&proxy, &out, &[]), &out, &c.image.layers[1]);
}

#[test]
fn persistent_failures_stop_after_the_last_try() {
    let c = case();
    let proxy = FaultProxy::start(
        c.reg.port,
        vec![Rule::new("GET", "/manifests/", 100, Fault::Status(503))],
    );
    let out = c.out("a.tar");
    let started = Instant::now();
    let run = c.pull(&proxy, &out, &["--retry-times", "2"]);
    failed_cleanly(&run, &out, "503");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "bounded in time"
    );
    let tries = proxy
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.path.contains("/manifests/"))
        .count();
    assert_eq!(tries, 3, "one try and two retries");

    let proxy = FaultProxy::start(
        c.reg.port,
        vec![Rule::new(
            "GET",
            &big_layer(&c),
            100,
            Fault::DropAfter(1000),
        )],
    );
    failed_cleanly(
        &c.pull(&proxy, &out, &["--retry-times", "1"]),
        &out,
        &c.image.layers[1],
    );
}

#[test]
fn a_first_chunk_that_never_reached_the_registry_is_sent_again_from_the_start() {
    // distribution answers `Range: 0-0` for an empty upload as for one
    // byte held: the resume must start at 0, where the registry is.
    let c = case();
    let full = c.archive();
    let dest = Registry::start();
    let proxy = FaultProxy::start(
        dest.port,
        vec![Rule::new("PATCH", "/blobs/uploads/", 1, Fault::Lost)],
    );
    let run = imo(&[
        "push",
        &full,
        &format!("{}/app:v1", proxy.host()),
        "--chunk-size",
        "100000",
        "--jobs",
        "1",
        "--quiet",
    ]);
    ok(&run, "push after its first chunk was lost");
    assert_eq!(proxy.applied().len(), 1, "the first PATCH was lost");
    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}/app:v1", dest.host()),
    ]);
    ok(&raw, "skopeo inspect");
    assert_eq!(sha256(&raw.stdout), c.image.digest);
    for d in c.image.layers.iter().chain([&c.image.config]) {
        assert_eq!(
            &sha256(&dest.blob("app", d).expect("blob at destination")),
            d
        );
    }
}

#[test]
fn pushes_recover_from_broken_uploads_and_never_tag_on_failure() {
    let c = case();
    let full = c.archive();
    let dest = Registry::start();
    let proxy = FaultProxy::start(
        dest.port,
        vec![
            // A chunk lands but its answer is lost: distribution will not say
            // how far it got (the upload state names the old offset), so the
            // upload starts over.
            Rule::new("PATCH", "/blobs/uploads/", 1, Fault::NoAnswer),
            // A monolithic upload fails: start over.
            Rule::new("PUT", "digest=", 1, Fault::Status(500)),
            Rule::new("HEAD", "/blobs/", 1, Fault::Status(503)),
        ],
    );
    let run = imo(&[
        "push",
        &full,
        &format!("{}/app:v1", proxy.host()),
        "--chunk-size",
        "100000",
        "--quiet",
    ]);
    ok(&run, "push through a lost chunk answer, a 500 and a 503");
    assert_eq!(proxy.applied().len(), 3);
    let patches = proxy
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.method == "PATCH")
        .count();
    let size = c
        .reg
        .blob("app", &c.image.layers[1])
        .expect("big layer")
        .len();
    assert_eq!(
        patches,
        size.div_ceil(100_000) + 1,
        "100 KB chunks, one sent again after its answer was lost"
    );
    assert_eq!(sha256(&dest.manifest("app", "v1").0), c.image.digest);
    for d in c.image.layers.iter().chain([&c.image.config]) {
        assert_eq!(
            &sha256(&dest.blob("app", d).expect("blob at destination")),
            d
        );
    }

    // Manifests that cannot be stored: the tag is never moved.
    let old = push_image(
        &dest,
        "app",
        Some("v2"),
        Flavour::Oci,
        host_arch(),
        &[layer(&[("old", b"o")])],
    );
    let proxy = FaultProxy::start(
        dest.port,
        vec![Rule::new("PUT", "/manifests/", 100, Fault::Status(500))],
    );
    let run = imo(&[
        "push",
        &full,
        &format!("{}/app:v2", proxy.host()),
        "--retry-times",
        "1",
        "--quiet",
    ]);
    assert!(!run.status.success());
    assert_eq!(
        String::from_utf8_lossy(&run.stderr).trim().lines().count(),
        1
    );
    assert_eq!(
        sha256(&dest.manifest("app", "v2").0),
        old.digest,
        "tag still on the old image"
    );
}

#[test]
fn a_pull_killed_half_way_leaves_no_file_at_the_output_path() {
    let c = case();
    let proxy = StallProxy::start_download(c.reg.port, 100_000);
    let out = c.out("a.tar");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_imo"))
        .args([
            "pull",
            "scratch",
            &format!("127.0.0.1:{}/app:v1", proxy.port),
            "-o",
            &out,
            "--quiet",
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start imo pull");
    assert!(
        proxy.wait_stalled(Duration::from_secs(30)),
        "the pull never got going"
    );
    // Manifests and small blobs are far below the limit: the stall hits
    // while the big layer is being read.
    std::thread::sleep(Duration::from_millis(300));
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    assert!(
        !std::path::Path::new(&out).exists(),
        "no file at the output path"
    );

    ok(
        &c.pull(&FaultProxy::start(c.reg.port, vec![]), &out, &[]),
        "rerun completes",
    );
    assert_eq!(
        Archive::open(std::path::Path::new(&out)).top_digest(),
        c.image.digest
    );
}
