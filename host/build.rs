//! Builds the guest component (wasm32-wasip2) so that a plain `cargo build`
//! of the host embeds a fresh one.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir
        .parent()
        .expect("host/ is inside the workspace")
        .to_path_buf();
    for watched in [
        "guest/src",
        "guest/Cargo.toml",
        "guest/grammar",
        "guest/puff",
        ".cargo/config.toml",
        "wit",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    // Its own target dir: sharing the outer one deadlocks on cargo's lock.
    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("guest-build");
    let guest = |target_dir: &PathBuf, extra: &[&str]| {
        let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(&root)
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-wasip2",
                "-p",
                "imo-guest",
            ])
            .args(extra)
            .arg("--target-dir")
            .arg(target_dir);
        // The outer build's settings (target, flags, jobserver) are not the guest's.
        for (key, _) in env::vars_os() {
            let key = key.to_string_lossy();
            let outer = (key.starts_with("CARGO_") && key != "CARGO_HOME")
                || matches!(
                    key.as_ref(),
                    "RUSTFLAGS"
                        | "RUSTC_WRAPPER"
                        | "RUSTC_WORKSPACE_WRAPPER"
                        | "MAKEFLAGS"
                        | "MFLAGS"
                        | "TARGET"
                        | "HOST"
                        | "OUT_DIR"
                        | "OPT_LEVEL"
                        | "PROFILE"
                        | "DEBUG"
                        | "NUM_JOBS"
                );
            if outer {
                cmd.env_remove(key.as_ref());
            }
        }
        let status = cmd
            .status()
            .expect("cannot run cargo to build the guest component");
        if !status.success() {
            panic!(
                "building the guest component failed (is the target installed? `rustup target add wasm32-wasip2`)"
            );
        }
    };
    let out = PathBuf::from(env::var("OUT_DIR").expect("set by cargo"));

    // The library component the binary runs.
    guest(&target_dir, &[]);
    let wasm = target_dir.join("wasm32-wasip2/release/imo_guest.wasm");
    std::fs::copy(&wasm, out.join("imo.wasm")).expect("copy the guest component into OUT_DIR");
    println!(
        "cargo:rustc-env=IMO_COMPONENT={}",
        out.join("imo.wasm").display()
    );
    precompile(&out.join("imo.wasm"), &out.join("imo.cwasm"));

    // The same code as a wasi:cli command for stock hosts; its own target
    // dir, so the `command` feature never reaches the library build.
    let command_dir = target_dir.with_file_name("guest-command-build");
    guest(
        &command_dir,
        &["--bin", "imo-command", "--features", "command"],
    );
    let wasm = command_dir.join("wasm32-wasip2/release/imo-command.wasm");
    std::fs::copy(&wasm, out.join("imo-command.wasm"))
        .expect("copy the command component into OUT_DIR");
    println!(
        "cargo:rustc-env=IMO_COMMAND_COMPONENT={}",
        out.join("imo-command.wasm").display()
    );
}

/// Compiles the component to machine code for this machine with the wasmtime
/// CLI (`scripts/setup` installs the version the host uses), so the binary
/// starts without running Cranelift even once. The host checks the result
/// (version, settings, CPU features) before using it; without a CLI, or if
/// it fails, an empty file is embedded and the host compiles on first use
/// and caches the result.
fn precompile(wasm: &Path, cwasm: &Path) {
    let home = env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    let cli = home
        .map(|h| h.join("bin").join("wasmtime"))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("wasmtime"));
    // The same settings as the host's engine (runtime/component.rs): epoch
    // interruption, no copy-on-write memory images.
    let compiled = Command::new(cli)
        .args([
            "compile",
            "-W",
            "epoch-interruption=y",
            "-O",
            "memory-init-cow=n",
        ])
        .arg(wasm)
        .arg("-o")
        .arg(cwasm)
        .status()
        .is_ok_and(|s| s.success());
    if !compiled {
        std::fs::write(cwasm, b"").expect("write an empty precompiled component");
    }
    println!("cargo:rustc-env=IMO_PRECOMPILED={}", cwasm.display());
}
