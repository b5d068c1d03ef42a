//! Several transfers at once on the component's one thread.
//!
//! A transfer is a future. When it must wait (no bytes yet, a full request
//! body, no response yet), it leaves a wasi:io pollable here and returns
//! `Pending`. [`run_all`] polls every transfer in turn and, when none can go
//! on, blocks in `wasi:io/poll.poll` on all their pollables at once, so the
//! host keeps every connection busy while the guest works on whichever is
//! ready. No threads, no wakers: every unfinished transfer is polled again
//! after each wait, which is cheap for the handful `--jobs` allows.
//!
//! Blocking code runs unchanged: [`Blocking`] turns a [`PollRead`] into a
//! `Read`, and [`block_on`] runs one future, both by waiting on the same
//! pollables.

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::io::{self, Read};
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

pub use crate::bindings::wasi::io::poll::Pollable;

thread_local! {
    static WAITING: RefCell<Vec<Pollable>> = const { RefCell::new(Vec::new()) };
}

/// Leaves `p` with the runner: the next wait ends when it (or another) is ready.
pub fn wait_on(p: Pollable) {
    WAITING.with(|w| w.borrow_mut().push(p));
}

/// Drops every pollable left here. Pollables are children of their streams
/// and futures, so this must happen before a transfer is dropped.
fn forget_waits() {
    drop(WAITING.with(|w| std::mem::take(&mut *w.borrow_mut())));
}

/// Blocks until one of the pollables left here is ready, then drops them all.
fn wait() {
    let waiting = WAITING.with(|w| std::mem::take(&mut *w.borrow_mut()));
    // Native builds (unit tests) have no pollables: nothing waits there.
    #[cfg(target_arch = "wasm32")]
    if !waiting.is_empty() {
        let refs: Vec<&Pollable> = waiting.iter().collect();
        crate::bindings::wasi::io::poll::poll(&refs);
    }
    drop(waiting);
}

/// Ready when the pollable `subscribe` makes is; `subscribe` is called on
/// every poll, so no pollable outlives the wait.
pub async fn ready(subscribe: impl Fn() -> Pollable) {
    poll_fn(|_| {
        let p = subscribe();
        if p.ready() {
            Poll::Ready(())
        } else {
            wait_on(p);
            Poll::Pending
        }
    })
    .await
}

/// Lets the other transfers run once: pending on the first poll without a
/// pollable, so the runner waits on theirs and polls this again after.
pub async fn yield_now() {
    let mut yielded = false;
    poll_fn(|_| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            Poll::Pending
        }
    })
    .await
}

/// Waits `d` without blocking other transfers.
pub async fn sleep(d: Duration) {
    #[cfg(target_arch = "wasm32")]
    {
        use crate::bindings::wasi::clocks::monotonic_clock::{now, subscribe_duration};
        // The clock decides, not a fresh timer's `ready`: wasmtime reports a
        // new timer as not ready even once its time has come.
        let deadline = now().saturating_add(d.as_nanos() as u64);
        poll_fn(|_| match deadline.checked_sub(now()) {
            Some(left) if left > 0 => {
                wait_on(subscribe_duration(left));
                Poll::Pending
            }
            _ => Poll::Ready(()),
        })
        .await;
    }
    #[cfg(not(target_arch = "wasm32"))]
    std::thread::sleep(d);
}

/// Runs one future to its end on this thread.
pub fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        wait();
    }
}

/// A transfer for [`run_all`].
pub type Task<'a, T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + 'a>>;

/// Runs the tasks `tasks` yields, at most `jobs` at a time, in their order;
/// returns their results in that order, or the first error (the tasks still
/// running are dropped, which cancels their requests).
pub fn run_all<'a, T, E>(
    jobs: usize,
    tasks: impl IntoIterator<Item = Task<'a, T, E>>,
) -> Result<Vec<T>, E> {
    let mut queue = tasks.into_iter().enumerate();
    let mut running: Vec<(usize, Task<'a, T, E>)> = Vec::new();
    let mut done: Vec<(usize, T)> = Vec::new();
    let mut cx = Context::from_waker(Waker::noop());
    let result = loop {
        while running.len() < jobs.max(1) {
            match queue.next() {
                Some(t) => running.push(t),
                None => break,
            }
        }
        if running.is_empty() {
            break Ok(());
        }
        // Every unfinished task leaves a fresh pollable when polled: the old
        // ones go first, or a stream could not be dropped while its
        // pollable is still held here.
        forget_waits();
        let mut progressed = false;
        let mut failed = None;
        running.retain_mut(|(i, task)| {
            if failed.is_some() {
                return true;
            }
            match task.as_mut().poll(&mut cx) {
                Poll::Ready(Ok(v)) => {
                    done.push((*i, v));
                    progressed = true;
                    false
                }
                Poll::Ready(Err(e)) => {
                    failed = Some(e);
                    true
                }
                Poll::Pending => true,
            }
        });
        if let Some(e) = failed {
            break Err(e);
        }
        if !progressed {
            wait();
        }
    };
    forget_waits();
    drop(running);
    result?;
    done.sort_by_key(|(i, _)| *i);
    Ok(done.into_iter().map(|(_, v)| v).collect())
}

/// A byte source that can say "not yet": the non-blocking `Read`.
pub trait PollRead {
    /// Reads into `buf` what is there now (`Ok(0)` at the end); if nothing
    /// is, leaves a pollable with [`wait_on`] and returns `Pending`.
    fn poll_read(&mut self, buf: &mut [u8]) -> Poll<io::Result<usize>>;
}

impl<R: PollRead + ?Sized> PollRead for Box<R> {
    fn poll_read(&mut self, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        (**self).poll_read(buf)
    }
}

impl<R: PollRead + ?Sized> PollRead for &mut R {
    fn poll_read(&mut self, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        (**self).poll_read(buf)
    }
}

/// Reads from `r`, waiting for bytes without blocking other transfers.
pub async fn read(r: &mut (impl PollRead + ?Sized), buf: &mut [u8]) -> io::Result<usize> {
    poll_fn(|_| r.poll_read(buf)).await
}

/// A `Read` that is always ready (files, memory) as a [`PollRead`].
pub struct Ready<R>(pub R);

impl<R: Read> PollRead for Ready<R> {
    fn poll_read(&mut self, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(self.0.read(buf))
    }
}

/// A [`PollRead`] as a blocking `Read`.
pub struct Blocking<R>(pub R);

impl<R: PollRead> Read for Blocking<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.0.poll_read(buf) {
                Poll::Ready(r) => return r,
                Poll::Pending => wait(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// Pending `n` times, then `value`; counts how many run at once.
    async fn step(n: u32, value: u32, live: &Cell<u32>, peak: &Cell<u32>) -> Result<u32, String> {
        live.set(live.get() + 1);
        peak.set(peak.get().max(live.get()));
        for _ in 0..n {
            let mut first = true;
            poll_fn(|_| {
                if std::mem::take(&mut first) {
                    Poll::Pending
                } else {
                    Poll::Ready(())
                }
            })
            .await;
        }
        live.set(live.get() - 1);
        if value == 99 {
            return Err(format!("task {value} failed"));
        }
        Ok(value)
    }

    #[test]
    fn runs_at_most_jobs_at_once_and_keeps_the_order() {
        let (live, peak) = (Cell::new(0), Cell::new(0));
        let tasks = (0..10u32)
            .map(|i| -> Task<'_, u32, String> { Box::pin(step(10 - i, i, &live, &peak)) });
        let out = run_all(3, tasks).unwrap();
        assert_eq!(out, (0..10).collect::<Vec<_>>());
        assert_eq!(peak.get(), 3);
        assert_eq!(live.get(), 0);
    }

    #[test]
    fn one_job_runs_one_at_a_time() {
        let (live, peak) = (Cell::new(0), Cell::new(0));
        let tasks =
            (0..4u32).map(|i| -> Task<'_, u32, String> { Box::pin(step(2, i, &live, &peak)) });
        assert_eq!(run_all(0, tasks).unwrap(), vec![0, 1, 2, 3]);
        assert_eq!(peak.get(), 1);
    }

    #[test]
    fn the_first_error_stops_the_rest() {
        let (live, peak) = (Cell::new(0), Cell::new(0));
        let started = Cell::new(0);
        let tasks = [5u32, 99, 7, 8]
            .into_iter()
            .map(|v| -> Task<'_, u32, String> {
                started.set(started.get() + 1);
                Box::pin(step(if v == 99 { 1 } else { 50 }, v, &live, &peak))
            });
        assert_eq!(run_all(2, tasks).unwrap_err(), "task 99 failed");
        assert_eq!(started.get(), 2, "no task starts after a failure");
    }

    #[test]
    fn blocking_and_ready_adapters() {
        let mut r = Blocking(Ready(&b"abc"[..]));
        let mut out = String::new();
        r.read_to_string(&mut out).unwrap();
        assert_eq!(out, "abc");
        assert_eq!(block_on(async { 7 }), 7);
    }
}
