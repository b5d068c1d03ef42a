//! The component as a first-class artifact, and the limits the host puts on it.

mod harness;

use std::time::{Duration, Instant};

use harness::*;

#[test]
fn the_component_is_written_out_as_embedded() {
    let dir = workdir();
    let out = dir.path().join("imo.wasm");
    ok(
        &imo(&["component", "-o", out.to_str().unwrap()]),
        "imo component",
    );
    let bytes = std::fs::read(&out).unwrap();
    // A component, not a core module: magic, then layer 1 of version 0x0d.
    assert_eq!(&bytes[..8], b"\0asm\x0d\x00\x01\x00");
    let again = imo(&["component", "-o", "-"]);
    ok(&again, "imo component -o -");
    assert_eq!(again.stdout, bytes, "the same bytes every time");
    assert_eq!(
        harness::listing(dir.path()),
        vec![out],
        "no temporary file left"
    );
}

fn image() -> (Registry, String, tempfile::TempDir) {
    let reg = Registry::start();
    push_image(
        &reg,
        "app",
        Some("v1"),
        Flavour::Oci,
        host_arch(),
        &[layer(&[("big", &noise(400_000, 3))])],
    );
    let reference = format!("{}/app:v1", reg.host());
    (reg, reference, workdir())
}

#[test]
fn a_memory_cap_stops_the_component_with_a_clear_error() {
    let (_reg, reference, dir) = image();
    let out = dir.path().join("a.tar");
    let run = imo(&[
        "pull",
        "scratch",
        &reference,
        "-o",
        out.to_str().unwrap(),
        // A pull fits in 2 MiB of linear memory; 1 MiB is too little.
        "--max-memory",
        "1",
        "--quiet",
    ]);
    assert!(!run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("--max-memory"), "{err}");
    assert!(listing(dir.path()).is_empty(), "nothing left behind");
    ok(
        &imo(&[
            "pull",
            "scratch",
            &reference,
            "-o",
            out.to_str().unwrap(),
            "--max-memory",
            "64",
        ]),
        "the same pull with room",
    );
}

#[test]
fn a_timeout_stops_a_hung_transfer() {
    let (reg, _, dir) = image();
    let proxy = StallProxy::start_download(reg.port, 100_000);
    let out = dir.path().join("a.tar");
    let started = Instant::now();
    let run = imo(&[
        "pull",
        "scratch",
        &format!("127.0.0.1:{}/app:v1", proxy.port),
        "-o",
        out.to_str().unwrap(),
        "--timeout",
        "2",
        "--quiet",
    ]);
    assert!(!run.status.success());
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("--timeout of 2 s"), "{err}");
    assert!(
        listing(dir.path()).is_empty(),
        "no temporary file either: {:?}",
        listing(dir.path())
    );
}

#[test]
fn a_signal_stops_a_transfer_and_leaves_nothing() {
    let (reg, _, dir) = image();
    let proxy = StallProxy::start_download(reg.port, 100_000);
    let out = dir.path().join("a.tar");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_imo"))
        .args([
            "pull",
            "scratch",
            &format!("127.0.0.1:{}/app:v1", proxy.port),
            "-o",
            out.to_str().unwrap(),
            "--quiet",
        ])
        .env("DOCKER_CONFIG", "/nonexistent/imo-test-docker-config")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        proxy.wait_stalled(Duration::from_secs(20)),
        "the download stalls"
    );
    // The archive is being written under a temporary name.
    let deadline = Instant::now() + Duration::from_secs(10);
    while listing(dir.path()).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        listing(dir.path()).len(),
        1,
        "a temporary file while it runs"
    );
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("stopped by a signal"), "{err}");
    assert!(listing(dir.path()).is_empty(), "{:?}", listing(dir.path()));
}

#[test]
fn a_dead_runs_temporary_files_go_and_a_live_ones_stay() {
    let (_reg, reference, dir) = image();
    let dead = {
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        pid
    };
    let stale = dir
        .path()
        .join(format!(".a.tar.imo-{dead}-0123456789abcdef.tmp"));
    let live = dir.path().join(format!(
        ".b.tar.imo-{}-0123456789abcdef.tmp",
        std::process::id()
    ));
    std::fs::write(&stale, b"left by a run killed with -9").unwrap();
    std::fs::write(&live, b"another run, still going").unwrap();
    let out = dir.path().join("a.tar");
    ok(
        &imo(&["pull", "scratch", &reference, "-o", out.to_str().unwrap()]),
        "pull",
    );
    assert!(!stale.exists(), "a dead run's leftover is removed");
    assert!(live.exists(), "a live run's file stays");
    assert!(out.exists());
}

#[test]
fn the_compiled_component_is_cached_and_a_damaged_cache_is_ignored() {
    let (_reg, reference, dir) = image();
    let cache = dir.path().join("cache");
    let cache_env = cache.to_str().unwrap().to_string();
    let out = dir.path().join("a.tar");
    let pull = |name: &str| {
        imo_env(
            &[
                "pull",
                "scratch",
                &reference,
                "-o",
                dir.path().join(name).to_str().unwrap(),
                "--quiet",
            ],
            // Past the build's precompiled component, to the cache.
            &[("IMO_CACHE_DIR", &cache_env), ("IMO_PRECOMPILED", "0")],
        )
    };
    ok(&pull("a.tar"), "first pull, compiling");
    let cached: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    assert!(cached[0].extension().is_some_and(|e| e == "cwasm"));
    std::fs::write(&cached[0], b"not a compiled component").unwrap();
    ok(&pull("b.tar"), "pull with a damaged cache");
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(dir.path().join("b.tar")).unwrap()
    );
    assert_ne!(
        std::fs::read(&cached[0]).unwrap(),
        b"not a compiled component",
        "the cache was rewritten"
    );
}
