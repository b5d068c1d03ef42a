//! Workers: more instances of the component, each on a thread of its own,
//! for work the component splits (the `workers` import). A worker gets the
//! bytes it is given and nothing else: no directories, no network, no
//! credentials; the memory limit and the timeout of the command apply to it
//! as to the component.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;

use wasmtime::component::{Resource, ResourceTable};
use wasmtime::{Engine, Store, StoreLimitsBuilder};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi_http::WasiHttpCtx;

use super::{bindings, trap, Limits, State};
use crate::cleanup::Cleanup;
use crate::credentials::Credentials;
use crate::network::Network;

/// Workers that may run at once in this process: `IMO_WORKERS`, else one
/// fewer than the CPUs (none on one CPU: the caller's own thread is
/// faster than two taking turns).
fn free() -> &'static AtomicUsize {
    static FREE: OnceLock<AtomicUsize> = OnceLock::new();
    FREE.get_or_init(|| {
        let n = std::env::var("IMO_WORKERS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(0, |n| n.get().saturating_sub(1))
            });
        AtomicUsize::new(n)
    })
}

/// What starting a worker needs: the component ready to instantiate.
pub(super) struct Workers {
    pub(super) engine: Engine,
    pub(super) pre: bindings::ImoPre<State>,
    /// A network that reaches nothing, with the TLS settings of the
    /// command (never used: a worker makes no requests).
    pub(super) network: Network,
    pub(super) limits: Limits,
}

/// A worker's work: its thread, until joined.
pub struct Job {
    thread: Option<JoinHandle<Result<Vec<u8>, String>>>,
}

impl Workers {
    /// Starts `work` on `input` on a new instance and thread, if a worker
    /// is free.
    fn start(&self, work: String, input: Vec<u8>) -> Option<Job> {
        let slot = Slot::take()?;
        let (engine, pre, limits) = (self.engine.clone(), self.pre.clone(), self.limits);
        let network = self.network.sealed();
        let thread = std::thread::Builder::new()
            .name("imo-worker".into())
            .spawn(move || {
                let _slot = slot;
                run(&engine, &pre, network, limits, &work, &input)
            });
        thread.ok().map(|t| Job { thread: Some(t) })
    }
}

/// A worker's place among those that may run at once, given back when
/// dropped, however its thread ends (or if it never started).
struct Slot;

impl Slot {
    fn take() -> Option<Slot> {
        free()
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .ok()
            .map(|_| Slot)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        free().fetch_add(1, Ordering::AcqRel);
    }
}

/// Runs `work` on `input` in a store of its own.
fn run(
    engine: &Engine,
    pre: &bindings::ImoPre<State>,
    network: Network,
    limits: Limits,
    work: &str,
    input: &[u8],
) -> Result<Vec<u8>, String> {
    let state = State {
        wasi: WasiCtxBuilder::new().inherit_stderr().build(),
        http: WasiHttpCtx::new(),
        table: ResourceTable::new(),
        credentials: Credentials::default(),
        progress: Arc::new(Mutex::new(|_| {})),
        network,
        limits: StoreLimitsBuilder::new()
            .memory_size(limits.max_memory)
            .trap_on_grow_failure(true)
            .build(),
        cleanup: Cleanup::default(),
        workers: None,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limits);
    store.set_epoch_deadline(1);
    let failed = |e: wasmtime::Error| trap(e, limits).to_string();
    let imo = pre.instantiate(&mut store).map_err(failed)?;
    imo.imo_incremental_worker()
        .call_run(&mut store, work, input)
        .map_err(failed)?
}

impl bindings::imo::incremental::workers::Host for State {
    fn start(&mut self, work: String, input: Vec<u8>) -> wasmtime::Result<Option<Resource<Job>>> {
        let Some(job) = self.workers.as_ref().and_then(|w| w.start(work, input)) else {
            return Ok(None);
        };
        Ok(Some(self.table.push(job)?))
    }
}

impl bindings::imo::incremental::workers::HostJob for State {
    fn join(&mut self, job: Resource<Job>) -> wasmtime::Result<Result<Vec<u8>, String>> {
        let job = self
            .table
            .get_mut(&job)
            .map_err(|e| wasmtime::Error::msg(format!("imo host bug: no such job: {e}")))?;
        Ok(match job.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err("the worker's thread panicked".into())),
            None => Err("the job was joined already".into()),
        })
    }

    fn drop(&mut self, job: Resource<Job>) -> wasmtime::Result<()> {
        // A job never joined runs on to its end; its answer is dropped.
        self.table.delete(job)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::Grants;
    use crate::network::AllowList;
    use crate::runtime::{instantiate_host, Capabilities};

    /// A store of the component as a command makes it, granted nothing.
    fn component() -> Store<State> {
        let caps = Capabilities {
            grants: Grants::default(),
            credentials: Credentials::default(),
            progress: Arc::new(Mutex::new(|_| {})),
            network: Network::new(None, Vec::new(), AllowList::default()).unwrap(),
            limits: Limits {
                max_memory: 512 << 20,
                timeout: None,
            },
            cleanup: Cleanup::default(),
            stdout: None,
            owns_process: false,
        };
        instantiate_host(caps).unwrap().0
    }

    /// 3 MB of text-like lines, gzipped by GNU gzip.
    fn gzipped() -> Vec<u8> {
        let mut text = Vec::new();
        let mut x: u32 = 7;
        while text.len() < 3_000_000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            text.extend_from_slice(format!("line {} of {}\n", x % 7919, x % 13).as_bytes());
        }
        let mut child = std::process::Command::new("gzip")
            .args(["-c", "-n"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("gzip");
        let mut stdin = child.stdin.take().unwrap();
        let feed = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &text));
        let out = child.wait_with_output().unwrap();
        feed.join().unwrap().unwrap();
        out.stdout
    }

    #[test]
    fn a_worker_instance_puffs_the_second_half_as_the_component_would() {
        let store = component();
        let w = store
            .data()
            .workers
            .as_ref()
            .expect("a command's store has workers");
        let gz = gzipped();
        let mut whole = Vec::new();
        imo_puff::puff(&gz[..], &mut whole).unwrap();
        let mid = gz.len() / 2;
        let work = |work: &str, input: &[u8]| {
            run(&w.engine, &w.pre, w.network.sealed(), w.limits, work, input)
        };
        let answer = work("puff-blocks", &gz[mid..]).unwrap();
        let at = u64::from_le_bytes(answer[..8].try_into().unwrap()) + mid as u64 * 8;
        // Where the worker started, a block starts: the halves join.
        let mut puffer = imo_puff::Puffer::new(&gz[..]);
        let mut first = Vec::new();
        while puffer.block_start().is_none_or(|b| b < at) {
            assert!(puffer.step_into(&mut first).unwrap());
        }
        assert_eq!(puffer.block_start(), Some(at));
        first.extend_from_slice(&answer[8..]);
        assert!(first == whole, "the worker's token form differs");
        // Work it does not know, and input it cannot use, fail as answers.
        assert!(work("nothing", &[1]).unwrap_err().contains("no such work"));
        assert!(work("puff-blocks", &[0; 4096]).is_err());
        // Started on a thread of its own, where a worker is free, the same.
        if let Some(mut job) = w.start("puff-blocks".into(), gz[mid..].to_vec()) {
            let again = job.thread.take().unwrap().join().unwrap().unwrap();
            assert!(again == answer);
        }
    }
}
