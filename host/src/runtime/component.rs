//! Loading the component: the machine code the build compiled, or else
//! compiled once per machine and kept in a cache.

use wasmtime::component::Component;
use wasmtime::{Config, Engine};

use super::{WasmContext, COMPONENT};

/// The engine; its settings must match build.rs's `wasmtime compile` flags.
pub(super) fn engine() -> anyhow::Result<Engine> {
    let mut config = Config::new();
    config.epoch_interruption(true);
    // Memory comes from the host's own mappings on Linux (see memory.rs),
    // which wasmtime cannot initialise copy-on-write: the component's data
    // is copied in instead (under a megabyte).
    config.memory_init_cow(false);
    #[cfg(target_os = "linux")]
    config.with_host_memory(super::memory::creator());
    // For profiling the component: `IMO_PERFMAP=1 perf record imo …` names
    // its functions (wasmtime writes /tmp/perf-PID.map).
    if std::env::var_os("IMO_PERFMAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    Engine::new(&config).ctx("starting wasmtime")
}

/// Where compiled components are kept: `IMO_CACHE_DIR` (`none` turns the
/// cache off), else `$XDG_CACHE_HOME/imo`, else `~/.cache/imo`.
fn cache_dir() -> Option<std::path::PathBuf> {
    match std::env::var_os("IMO_CACHE_DIR") {
        Some(d) if d == "none" => None,
        Some(d) => Some(d.into()),
        None => std::env::var_os("XDG_CACHE_HOME")
            .map(std::path::PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cache")))
            .map(|d| d.join("imo")),
    }
}

/// The component compiled to machine code at build time (empty when the
/// build had no wasmtime CLI).
static PRECOMPILED: &[u8] = include_bytes!(env!("IMO_PRECOMPILED"));

/// The build's precompiled component, if this engine can run it (same
/// wasmtime, same settings, a CPU with the features it was compiled for).
fn precompiled(engine: &Engine) -> Option<Component> {
    // `IMO_PRECOMPILED=0` skips it, to check the compile-and-cache path.
    if PRECOMPILED.is_empty() || std::env::var_os("IMO_PRECOMPILED").is_some_and(|v| v == "0") {
        return None;
    }
    // SAFETY: the bytes were made by the build of this very binary from the
    // embedded component; wasmtime checks their header, version and
    // settings against the engine. Whoever can change them can change the
    // binary itself.
    unsafe { Component::deserialize(engine, PRECOMPILED) }.ok()
}

/// The embedded component: precompiled at build time, or else compiled by
/// Cranelift once per machine and then loaded from the cache (about 3 ms
/// instead of 100+).
pub(super) fn load_component(engine: &Engine) -> anyhow::Result<Component> {
    if let Some(c) = precompiled(engine) {
        return Ok(c);
    }
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    COMPONENT.hash(&mut h);
    engine.precompile_compatibility_hash().hash(&mut h);
    env!("CARGO_PKG_VERSION").hash(&mut h);
    let file = cache_dir().map(|d| d.join(format!("imo-{:016x}.cwasm", h.finish())));
    if let Some(path) = file.as_ref().filter(|p| p.is_file()) {
        // SAFETY: the file is one this program wrote, in the user's own cache
        // directory, named after the component and the engine's settings;
        // wasmtime checks its header for version and configuration. Whoever
        // can rewrite it can already rewrite the user's binaries.
        if let Ok(c) = unsafe { Component::deserialize_file(engine, path) } {
            return Ok(c);
        }
    }
    let component = Component::new(engine, COMPONENT).ctx("loading the imo component")?;
    if let (Some(path), Ok(bytes)) = (file, component.serialize()) {
        // Best effort: a read-only home only costs the next start-up time.
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
            let temp = dir.join(format!(".{}.tmp", std::process::id()));
            if std::fs::write(&temp, bytes).is_ok() && std::fs::rename(&temp, &path).is_err() {
                let _ = std::fs::remove_file(&temp);
            }
        }
    }
    Ok(component)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The build's `wasmtime compile` settings match the engine's, so the
    /// precompiled component is used (CI's build always has the CLI).
    #[test]
    fn the_precompiled_component_loads() {
        if std::env::var_os("CI").is_some() {
            assert!(!PRECOMPILED.is_empty(), "the CI build has a wasmtime CLI");
        }
        if !PRECOMPILED.is_empty() {
            assert!(precompiled(&engine().unwrap()).is_some());
            // An engine with other settings must not run it.
            let other = Engine::new(&Config::new()).unwrap();
            assert!(precompiled(&other).is_none());
        }
    }
}
