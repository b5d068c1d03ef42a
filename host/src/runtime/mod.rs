//! Runs the embedded component with wasmtime: one store per command, with
//! WASI (stdio and the granted directory only), wasi:http, and imo's own
//! credentials and progress imports.

use anyhow::Context;
use wasmtime::component::{HasSelf, Linker, Resource, ResourceTable};
use wasmtime::{Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::cleanup::Cleanup;
use crate::credentials::Credentials;
use crate::error::{Error, Result};
use crate::files::Grants;
use crate::hashing::Hasher;
use crate::network::Network;

mod component;
#[cfg(target_os = "linux")]
mod memory;
mod workers;

use component::{engine, load_component};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "imo",
        with: {
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "wasi:filesystem": wasmtime_wasi::p2::bindings::filesystem,
            "imo:incremental/hashing.hasher": crate::hashing::Hasher,
            "imo:incremental/workers.job": super::workers::Job,
        },
        // A host bug (a hasher the component never made) traps, with a
        // message saying so, rather than answering something wrong.
        imports: { default: trappable },
        require_store_data_send: true,
    });
}

use bindings::imo::incremental::hashing::Algorithm as HashAlgorithm;
pub use bindings::imo::incremental::types::{
    AttachmentInfo, BasicCredential, BlobAction, BlobInfo, CopyOptions, Credential,
    Error as GuestError, ImagePlan, InventoryOptions, MissingBlob, PlanReport, PlannedBlob,
    Platform, ProgressEvent, PullOptions, PullReport, PushOptions, PushReport, Role, SetImage,
    SetImageReport, SetPlanReport, SetPullReport, SetPushOutcome, SetVetOutcome, VetReport,
};

/// wasmtime has its own error type; this gives it anyhow's `context`.
trait WasmContext<T> {
    fn ctx(self, what: &str) -> anyhow::Result<T>;
}

impl<T> WasmContext<T> for wasmtime::Result<T> {
    fn ctx(self, what: &str) -> anyhow::Result<T> {
        self.map_err(anyhow::Error::from).context(what.to_string())
    }
}

/// The component the build embedded.
pub static COMPONENT: &[u8] = include_bytes!(env!("IMO_COMPONENT"));

/// The same code built as a wasi:cli command, for stock `wasmtime run`.
pub static COMMAND_COMPONENT: &[u8] = include_bytes!(env!("IMO_COMMAND_COMPONENT"));

/// Everything the component can reach, and nothing more.
struct State {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    credentials: Credentials,
    progress: ProgressSink,
    network: Network,
    limits: StoreLimits,
    cleanup: Cleanup,
    /// How to start workers (none in a worker).
    workers: Option<workers::Workers>,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.network,
        }
    }
}

impl bindings::imo::incremental::types::Host for State {}

impl bindings::imo::incremental::credentials::Host for State {
    fn lookup(&mut self, registry: String, role: Role) -> wasmtime::Result<Option<Credential>> {
        Ok(self.credentials.lookup(&registry, role))
    }
}

impl bindings::imo::incremental::progress::Host for State {
    fn report(&mut self, event: ProgressEvent) -> wasmtime::Result<()> {
        if let Ok(mut p) = self.progress.lock() {
            p(event);
        }
        Ok(())
    }
}

impl bindings::imo::incremental::cleanup::Host for State {
    fn begun(&mut self, path: String) -> wasmtime::Result<()> {
        self.cleanup.begun(&path);
        Ok(())
    }

    fn ended(&mut self, path: String) -> wasmtime::Result<()> {
        self.cleanup.ended(&path);
        Ok(())
    }

    fn owner(&mut self) -> wasmtime::Result<u32> {
        Ok(std::process::id())
    }
}

/// What a command grants the component.
pub struct Capabilities {
    /// Directories.
    pub grants: Grants,
    /// Credentials per registry and role.
    pub credentials: Credentials,
    /// Where progress events go.
    pub progress: ProgressSink,
    /// TLS, proxies, reachable hosts.
    pub network: Network,
    /// Memory and time.
    pub limits: Limits,
    /// The files the component is writing, removed whatever stops it.
    pub cleanup: Cleanup,
    /// Where the component's standard output goes (an archive written to
    /// `-`); the process's own when none.
    pub stdout: Option<std::fs::File>,
    /// The process is the command line's: a signal or the timeout ends it
    /// (after the cleanup). A library call only stops the component.
    pub owns_process: bool,
}

/// Where progress events go: shared, as one library handle runs many calls.
pub type ProgressSink = std::sync::Arc<std::sync::Mutex<dyn FnMut(ProgressEvent) + Send>>;

/// What the component may use up.
#[derive(Clone, Copy)]
pub struct Limits {
    /// Largest linear memory, in bytes.
    pub max_memory: usize,
    /// Wall-clock budget for the whole command.
    pub timeout: Option<std::time::Duration>,
}

fn instantiate(caps: Capabilities) -> Result<(Store<State>, bindings::Imo)> {
    Ok(instantiate_host(caps)?)
}

fn instantiate_host(caps: Capabilities) -> anyhow::Result<(Store<State>, bindings::Imo)> {
    let limits = caps.limits;
    let engine = engine()?;
    let component = load_component(&engine)?;
    let mut linker: Linker<State> = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).ctx("linking WASI")?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker).ctx("linking WASI")?;
    bindings::imo::incremental::types::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)
        .ctx("linking imo imports")?;
    bindings::imo::incremental::credentials::add_to_linker::<State, HasSelf<State>>(
        &mut linker,
        |s| s,
    )
    .ctx("linking imo imports")?;
    bindings::imo::incremental::progress::add_to_linker::<State, HasSelf<State>>(
        &mut linker,
        |s| s,
    )
    .ctx("linking imo imports")?;
    bindings::imo::incremental::hashing::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)
        .ctx("linking imo imports")?;
    bindings::imo::incremental::cleanup::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)
        .ctx("linking imo imports")?;
    bindings::imo::incremental::workers::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)
        .ctx("linking imo imports")?;
    let pre = linker
        .instantiate_pre(&component)
        .and_then(bindings::ImoPre::new)
        .ctx("linking the imo component")?;

    for g in caps.grants.dirs().iter().filter(|g| g.writable) {
        crate::cleanup::remove_stale(&g.dir);
    }
    if caps.owns_process {
        caps.cleanup.on_signals();
    }
    let mut wasi = WasiCtxBuilder::new();
    match caps.stdout {
        Some(f) => wasi.stdout(wasmtime_wasi::cli::OutputFile::new(f)),
        None => wasi.inherit_stdout(),
    };
    wasi.inherit_stderr();
    for g in caps.grants.dirs() {
        let guest_dir = g.dir.to_str().context("directory is not valid UTF-8")?;
        let perms = if g.writable {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        wasi.preopened_dir(&g.dir, guest_dir, perms)
            .ctx(&format!("cannot open directory {}", g.dir.display()))?;
    }
    let workers = workers::Workers {
        engine: engine.clone(),
        pre: pre.clone(),
        network: caps.network.sealed(),
        limits,
    };
    let state = State {
        wasi: wasi.build(),
        http: WasiHttpCtx::new(),
        table: ResourceTable::new(),
        credentials: caps.credentials,
        progress: caps.progress,
        network: caps.network,
        limits: StoreLimitsBuilder::new()
            .memory_size(caps.limits.max_memory)
            .trap_on_grow_failure(true)
            .build(),
        cleanup: caps.cleanup.clone(),
        workers: Some(workers),
    };
    let mut store = Store::new(&engine, state);
    store.limiter(|s| &mut s.limits);
    store.set_epoch_deadline(1);
    if let Some(timeout) = caps.limits.timeout {
        let engine = engine.clone();
        let cleanup = caps.cleanup.clone();
        let owns_process = caps.owns_process;
        std::thread::spawn(move || {
            std::thread::sleep(timeout);
            // Stops running wasm at once; a guest blocked on the network is
            // stopped by the exit below, or, in a library, when the call
            // it waits for returns.
            engine.increment_epoch();
            if !owns_process {
                return;
            }
            std::thread::sleep(std::time::Duration::from_secs(2));
            cleanup.remove_all();
            eprintln!(
                "imo: stopped: the --timeout of {} s was reached",
                timeout.as_secs()
            );
            std::process::exit(1);
        });
    }
    let imo = pre
        .instantiate(&mut store)
        .map_err(|e| anyhow::Error::msg(trap(e, limits).to_string()))?;
    Ok((store, imo))
}

/// A trap, told in the user's terms where a limit caused it.
fn trap(e: wasmtime::Error, limits: Limits) -> Error {
    let text = format!("{e:?}");
    if matches!(
        e.downcast_ref::<wasmtime::Trap>(),
        Some(wasmtime::Trap::Interrupt)
    ) {
        let secs = limits.timeout.map_or(0, |t| t.as_secs());
        return Error::Stopped(format!("stopped: the --timeout of {secs} s was reached"));
    }
    if text.contains("forcing trap when growing memory") {
        return Error::Stopped(format!(
            "stopped: the component needed more memory than --max-memory allows ({} bytes)",
            limits.max_memory
        ));
    }
    // The causes on one line, without the wasm backtrace's frames.
    let causes: Vec<String> = e
        .chain()
        .map(|c| c.to_string())
        .filter(|c| !c.starts_with("error while executing at wasm backtrace"))
        .collect();
    Error::Stopped(format!("the imo component failed: {}", causes.join(": ")))
}

impl bindings::imo::incremental::hashing::Host for State {}

impl bindings::imo::incremental::hashing::HostHasher for State {
    fn new(&mut self, algorithm: HashAlgorithm) -> wasmtime::Result<Resource<Hasher>> {
        let sha512 = matches!(algorithm, HashAlgorithm::Sha512);
        Ok(self.table.push(Hasher::new(sha512))?)
    }

    fn update(&mut self, hasher: Resource<Hasher>, data: Vec<u8>) -> wasmtime::Result<()> {
        self.table
            .get_mut(&hasher)
            .map_err(|e| wasmtime::Error::msg(format!("imo host bug: no such hasher: {e}")))?
            .update(data);
        Ok(())
    }

    fn digest(&mut self, hasher: Resource<Hasher>) -> wasmtime::Result<Vec<u8>> {
        Ok(self
            .table
            .get(&hasher)
            .map_err(|e| wasmtime::Error::msg(format!("imo host bug: no such hasher: {e}")))?
            .digest())
    }

    fn drop(&mut self, hasher: Resource<Hasher>) -> wasmtime::Result<()> {
        self.table.delete(hasher)?;
        Ok(())
    }
}

/// Instantiates the component with `caps` and makes one call `f` of its api,
/// with the guest's errors and traps told as the user's one-line messages.
fn call<T>(
    caps: Capabilities,
    f: impl FnOnce(&Api, &mut Store<State>) -> wasmtime::Result<std::result::Result<T, GuestError>>,
) -> Result<T> {
    let limits = caps.limits;
    let cleanup = caps.cleanup.clone();
    let (mut store, imo) = instantiate(caps)?;
    let result = f(imo.imo_incremental_api(), &mut store);
    // The store goes first: a pipe the component wrote to closes with it.
    drop(store);
    // Whatever stopped the component, nothing it was writing stays.
    cleanup.remove_all();
    Ok(result.map_err(|e| trap(e, limits))??)
}

type Api = bindings::exports::imo::incremental::api::Guest;

/// Runs `pull` in the component.
pub fn pull(
    caps: Capabilities,
    base: &str,
    final_: &str,
    output: &str,
    options: &PullOptions,
) -> Result<PullReport> {
    call(caps, |api, store| {
        api.call_pull(store, base, final_, output, options)
    })
}

/// Runs `plan` in the component.
pub fn plan(
    caps: Capabilities,
    base: &str,
    final_: &str,
    options: &PullOptions,
) -> Result<PlanReport> {
    call(caps, |api, store| {
        api.call_plan(store, base, final_, options)
    })
}

/// Runs `inspect` in the component: of the archive's image, or of each
/// image of a set archive (`archive` is then a plain path or
/// `oci-archive:`/`oci:` without a tag).
pub fn inspect(caps: Capabilities, archive: &str) -> Result<Vec<PlanReport>> {
    call(caps, |api, store| {
        let targets = match api.call_set_targets(&mut *store, archive)? {
            Ok(t) => t,
            Err(e) => return Ok(Err(e)),
        };
        if targets.is_empty() {
            return Ok(api.call_inspect(store, archive)?.map(|r| vec![r]));
        }
        let base = if archive.starts_with("oci:") || archive.starts_with("oci-archive:") {
            archive.to_string()
        } else {
            format!("oci-archive:{archive}")
        };
        let mut out = Vec::new();
        for t in targets {
            match api.call_inspect(&mut *store, &format!("{base}:{t}"))? {
                Ok(r) => out.push(r),
                Err(e) => return Ok(Err(e)),
            }
        }
        Ok(Ok(out))
    })
}

/// Runs `copy` in the component.
pub fn copy(
    caps: Capabilities,
    source: &str,
    destination: &str,
    options: &CopyOptions,
) -> Result<PushReport> {
    call(caps, |api, store| {
        api.call_copy(store, source, destination, options)
    })
}

/// Runs `pull-set` in the component.
pub fn pull_set(
    caps: Capabilities,
    images: &[SetImage],
    bases: &[String],
    output: &str,
    options: &PullOptions,
) -> Result<SetPullReport> {
    call(caps, |api, store| {
        api.call_pull_set(store, images, bases, output, options)
    })
}

/// Runs `plan-set` in the component.
pub fn plan_set(
    caps: Capabilities,
    images: &[SetImage],
    bases: &[String],
    options: &PullOptions,
) -> Result<SetPlanReport> {
    call(caps, |api, store| {
        api.call_plan_set(store, images, bases, options)
    })
}

/// Runs `inventory` in the component; the inventory's JSON.
pub fn inventory(
    caps: Capabilities,
    targets: &[String],
    layout: Option<&str>,
    options: &InventoryOptions,
) -> Result<String> {
    call(caps, |api, store| {
        api.call_inventory(store, targets, layout, *options)
    })
}

/// What `vet` or `push` did: to one image, or to each image of a set.
pub enum Outcome<One, Set> {
    /// An ordinary archive.
    Single(One),
    /// A set archive, image by image.
    Set(Vec<Set>),
}

/// Runs `vet`, or `vet-set` when the archive is a set (DESTINATION is then
/// a prefix).
pub fn vet(
    caps: Capabilities,
    archive: &str,
    destination: &str,
    options: &PushOptions,
) -> Result<Outcome<VetReport, SetVetOutcome>> {
    call(caps, |api, store| {
        match api.call_set_targets(&mut *store, archive)? {
            Ok(t) if t.is_empty() => Ok(api
                .call_vet(store, archive, destination, options)?
                .map(Outcome::Single)),
            Ok(_) => Ok(api
                .call_vet_set(store, archive, destination, options)?
                .map(Outcome::Set)),
            Err(e) => Ok(Err(e)),
        }
    })
}

/// Runs `push`, or `push-set` when the archive is a set (DESTINATION is
/// then a prefix).
pub fn push(
    caps: Capabilities,
    archive: &str,
    destination: &str,
    options: &PushOptions,
) -> Result<Outcome<PushReport, SetPushOutcome>> {
    call(caps, |api, store| {
        match api.call_set_targets(&mut *store, archive)? {
            Ok(t) if t.is_empty() => Ok(api
                .call_push(store, archive, destination, options)?
                .map(Outcome::Single)),
            Ok(_) => Ok(api
                .call_push_set(store, archive, destination, options)?
                .map(Outcome::Set)),
            Err(e) => Ok(Err(e)),
        }
    })
}
