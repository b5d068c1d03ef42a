//! A base layer's token form puffed in two halves at once, the second on a
//! worker (another instance of this component, on another core, where the
//! host runs workers; see `host::start_work`). Puffing the base is half of
//! a rebuilding push's time, and a push otherwise leaves a core idle.
//!
//! The worker looks for a deflate block starting past the middle of the
//! compressed base (`imo_puff::find_block`) and puffs from there on; this
//! instance puffs from the start and takes the worker's token form only
//! where its own puffing reaches a block starting exactly there. A guess
//! that was wrong, a worker that failed or none at all cost the
//! parallelism only: the rest is puffed here.

use imo_puff::{find_block, Puffer};

use crate::host::start_work;

/// The work a worker is asked to do: [`puff_blocks`].
pub const PUFF_BLOCKS: &str = "puff-blocks";

/// Smallest compressed base split in two: a worker's start costs a few
/// milliseconds, a megabyte's puffing about eight.
const SPLIT_FROM: usize = super::segments::HOLD_FROM as usize;

/// How far past the middle a block start is looked for (compressors' blocks
/// are 10-100 KB).
const SEARCH: usize = 4 << 20;

/// Most token form a worker gives back.
const MOST: usize = super::MAX_REFERENCE;

/// Appends the token form of the gzip file `gz` to `out`: false, with
/// `out` as it was, where it would pass `cap` bytes.
pub fn puff_into(gz: &[u8], out: &mut Vec<u8>, cap: usize) -> imo_puff::Result<bool> {
    let second = &gz[middle(gz.len())..];
    let job = (gz.len() >= SPLIT_FROM)
        .then(|| start_work(PUFF_BLOCKS, second))
        .flatten();
    puff_split(gz, out, cap, job.map(|job| move || job.join()))
}

/// [`puff_into`], with `job` (if any) puffing the second half, from byte
/// [`middle`] on ([`puff_blocks`]).
fn puff_split(
    gz: &[u8],
    out: &mut Vec<u8>,
    cap: usize,
    mut job: Option<impl FnOnce() -> Result<Vec<u8>, String>>,
) -> imo_puff::Result<bool> {
    let (held, mid) = (out.len(), middle(gz.len()));
    // Where the worker's token form starts, in bits, and its answer.
    let mut theirs: Option<(u64, Vec<u8>)> = None;
    let mut puffer = Puffer::new(gz);
    loop {
        if let Some(at) = puffer.block_start() {
            if at >= mid as u64 * 8 {
                if let Some(join) = job.take() {
                    theirs = join().ok().and_then(|r| joined(r, mid));
                }
            }
            match &theirs {
                Some((start, answer)) if at == *start => {
                    let tokens = &answer[8..];
                    if out.len() - held + tokens.len() > cap {
                        out.truncate(held);
                        return Ok(false);
                    }
                    out.extend_from_slice(tokens);
                    #[cfg(test)]
                    ACCEPTED.with(|a| a.set(a.get() + 1));
                    return Ok(true);
                }
                // Past it: it was no block start of this file.
                Some((start, _)) if at > *start => theirs = None,
                _ => {}
            }
        }
        if !puffer.step_into(out)? {
            return Ok(true);
        }
        if out.len() - held > cap {
            out.truncate(held);
            return Ok(false);
        }
    }
}

#[cfg(test)]
thread_local! {
    /// Workers' answers taken on this thread, for tests.
    pub static ACCEPTED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Workers' answers taken on this thread so far.
#[cfg(test)]
pub fn accepted() -> usize {
    ACCEPTED.with(|a| a.get())
}

/// Where the second half starts in a gzip file of `len` bytes: a little
/// past the middle, as a worker starts later (its input is copied in) and
/// runs in fresh memory. (`app`'s push: 55% a few percent faster than 50%,
/// 60% no faster.)
fn middle(len: usize) -> usize {
    len / 20 * 11
}

/// A worker's answer to the second half from `mid` on: where its token
/// form starts (in bits into the whole file), and the answer (the token
/// form after its first eight bytes, which are not moved: megabytes).
fn joined(answer: Vec<u8>, mid: usize) -> Option<(u64, Vec<u8>)> {
    let at = u64::from_le_bytes(answer.get(..8)?.try_into().ok()?);
    Some(((mid as u64 * 8).checked_add(at)?, answer))
}

/// A worker's part: the token form of `input` (the second half of a gzip
/// file) from the first block start found in it; the start, in bits, as
/// eight bytes (little-endian) before it.
pub fn puff_blocks(input: &[u8]) -> Result<Vec<u8>, String> {
    let at = find_block(input, 0, SEARCH).ok_or("no deflate block start found")?;
    let mut out = Vec::with_capacity((input.len() * 7 / 4).min(MOST) + 8);
    out.extend_from_slice(&at.to_le_bytes());
    let mut puffer = Puffer::from_block(&input[(at / 8) as usize..], (at % 8) as u32);
    while puffer.step_into(&mut out).map_err(|e| e.to_string())? {
        if out.len() > MOST + 8 {
            return Err(format!("a token form over {} MiB", MOST >> 20));
        }
    }
    Ok(out)
}

/// Runs the work `work` names on `input`, as a worker.
pub fn run(work: &str, input: &[u8]) -> Result<Vec<u8>, String> {
    match work {
        PUFF_BLOCKS => puff_blocks(input),
        other => Err(format!("no such work: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delta::tests::{compress, versions};

    /// The token form of `gz`, puffed in one piece.
    fn whole(gz: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        imo_puff::puff(gz, &mut out).unwrap();
        out
    }

    type Answer = Result<Vec<u8>, String>;

    /// `gz`'s token form, with the second half's job answering `answer`.
    fn split(gz: &[u8], cap: usize, answer: Option<Answer>) -> (bool, Vec<u8>) {
        let mut out = b"held".to_vec();
        let fits = puff_split(gz, &mut out, cap, answer.map(|a| move || a)).unwrap();
        assert_eq!(&out[..4], b"held", "what was held stays");
        (fits, out.split_off(4))
    }

    #[test]
    fn halves_puffed_apart_join_into_the_whole_token_form() {
        let (old, _) = versions();
        for cmd in [
            &["gzip", "-c", "-n", "-6"][..],
            &["pigz", "-c", "-n", "-6", "-b", "128"],
        ] {
            let gz = compress(cmd, &old);
            let expected = whole(&gz);
            let mid = middle(gz.len());
            let answer = puff_blocks(&gz[mid..]).unwrap();
            let at = u64::from_le_bytes(answer[..8].try_into().unwrap());
            assert!(at < 200_000 * 8, "{cmd:?}: a block start {at} bits in");
            assert_eq!(
                split(&gz, usize::MAX, Some(Ok(answer.clone()))),
                (true, expected.clone())
            );
            // Through the host's workers (threads, natively).
            let job = start_work(PUFF_BLOCKS, &gz[mid..]).expect("a thread natively");
            let mut out = Vec::new();
            let taken = accepted();
            assert!(puff_split(&gz, &mut out, usize::MAX, Some(move || job.join())).unwrap());
            assert!(out == expected, "{cmd:?}");
            assert_eq!(accepted(), taken + 1, "{cmd:?}: the worker's half taken");
            // A worker that failed, that started where no block does, that
            // answered nonsense, or none: the same token form, puffed here.
            let mut shifted = answer.clone();
            shifted[0] ^= 1;
            let mut early = answer.clone();
            early[..8].copy_from_slice(&(at - 8).to_le_bytes());
            for other in [
                Some(Err("failed".to_string())),
                Some(Ok(shifted)),
                Some(Ok(early)),
                Some(Ok(vec![1, 2, 3])),
                None,
            ] {
                assert_eq!(
                    split(&gz, usize::MAX, other),
                    (true, expected.clone()),
                    "{cmd:?}"
                );
            }
            // Over the cap: nothing added, whichever half passes it.
            assert!(!split(&gz, expected.len() - 1, Some(Ok(answer))).0);
            assert!(!split(&gz, expected.len() / 4, None).0);
        }
    }

    #[test]
    fn a_worker_refuses_what_is_not_deflate_and_unknown_work() {
        assert!(puff_blocks(&[0u8; 4096]).is_err());
        assert!(run("nothing", b"").unwrap_err().contains("no such work"));
    }
}
