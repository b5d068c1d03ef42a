//! The same guest code as a plain wasi:cli command under a stock host:
//! `wasmtime run -S http --dir D::D imo-command.wasm …`, no imo binary involved
//! in the transfer.

mod harness;

use std::path::PathBuf;
use std::process::{Command, Output};

use harness::*;

/// The wasmtime CLI (`scripts/setup` installs it with cargo).
fn wasmtime() -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    let candidates = [
        std::env::var_os("WASMTIME").map(PathBuf::from),
        home.map(|h| h.join("bin/wasmtime")),
        Some(PathBuf::from("/usr/local/bin/wasmtime")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.exists())
        .or_else(|| {
            Command::new("wasmtime")
                .arg("--version")
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|_| PathBuf::from("wasmtime"))
        })
        .expect(
            "the wasmtime CLI is needed: scripts/setup installs it (cargo install wasmtime-cli)",
        )
}

fn run(dir: &std::path::Path, wasm: &std::path::Path, args: &[&str]) -> Output {
    let grant = format!("{0}::{0}", dir.display());
    Command::new(wasmtime())
        .args(["run", "-S", "http", "--dir", &grant])
        .arg(wasm)
        .args(args)
        .output()
        .expect("run wasmtime")
}

#[test]
fn stock_wasmtime_runs_pull_push_and_copy() {
    let src = Registry::start();
    let image = push_image(
        &src,
        "app",
        Some("v1"),
        Flavour::Oci,
        host_arch(),
        &[layer(&[("a", b"wasmtime run")])],
    );
    let dest = Registry::start();
    let tmp = workdir();
    let dir = tmp.path().canonicalize().unwrap();
    let wasm = dir.join("imo-command.wasm");
    ok(
        &imo(&["component", "--command", "-o", wasm.to_str().unwrap()]),
        "imo component --command",
    );

    // A subdirectory of the granted directory, not granted itself.
    std::fs::create_dir(dir.join("sub")).unwrap();
    let archive = dir.join("sub/app.tar");
    let out = run(
        &dir,
        &wasm,
        &[
            "pull",
            "scratch",
            &format!("{}/app:v1", src.host()),
            archive.to_str().unwrap(),
        ],
    );
    ok(&out, "wasmtime run … pull");
    let raw = skopeo(&[
        "inspect",
        "--raw",
        &format!("oci-archive:{}", archive.display()),
    ]);
    ok(&raw, "skopeo inspect");
    assert_eq!(sha256(&raw.stdout), image.digest);

    let out = run(
        &dir,
        &wasm,
        &[
            "push",
            archive.to_str().unwrap(),
            &format!("{}/app:v1", dest.host()),
        ],
    );
    ok(&out, "wasmtime run … push");
    assert_eq!(sha256(&dest.manifest("app", "v1").0), image.digest);

    // Any transport to any other, a layout made inside the granted directory.
    let layout = format!("oci:{}/sub/layout:v1", dir.display());
    let out = run(
        &dir,
        &wasm,
        &["copy", &format!("{}/app:v1", dest.host()), &layout],
    );
    ok(&out, "wasmtime run … copy");
    let raw = skopeo(&["inspect", "--raw", &layout]);
    ok(&raw, "skopeo inspect oci:");
    assert_eq!(sha256(&raw.stdout), image.digest);

    // Only the granted directory exists for it.
    let outside = tmp
        .path()
        .parent()
        .unwrap()
        .join(format!("imo-outside-{}.tar", std::process::id()));
    let out = run(
        &dir,
        &wasm,
        &[
            "pull",
            "scratch",
            &format!("{}/app:v1", src.host()),
            outside.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(outside.to_str().unwrap()));
    assert!(!outside.exists());
}
