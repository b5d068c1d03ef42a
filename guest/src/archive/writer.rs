//! Writes an OCI layout as a tar. Every entry's place is computed up front
//! from the sizes descriptors give ([`Layout`]), so blobs can arrive in any
//! order and still land where a sequential writer would have put them: a
//! file is written at those offsets by several transfers at once, a stream
//! (stdout) in order through [`Ordered`]. Nothing is staged on disk.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::poll_fn;
use std::io::{self, Write};
use std::task::Poll;

use crate::concurrent::{self, PollRead, Ready};
use crate::digest::Digest;
#[cfg(test)]
use crate::digest::DigestOf;

/// Content of the `oci-layout` file.
pub const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

const BLOCK: u64 = 512;
/// Bytes moved per read and write while streaming a blob.
const CHUNK: usize = 256 * 1024;
static ZEROS: [u8; 2 * BLOCK as usize] = [0; 2 * BLOCK as usize];

fn padded(n: u64) -> u64 {
    n.div_ceil(BLOCK) * BLOCK
}

/// One file of the archive and where it goes.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Offset of the first byte written for it.
    pub offset: u64,
    /// Bytes before its content: directory entries it needs first, a GNU
    /// long-name entry where the path does not fit ustar, its own header.
    pub header: Vec<u8>,
    /// Size of its content.
    pub size: u64,
}

impl Entry {
    /// Offset of its content.
    pub fn data(&self) -> u64 {
        self.offset + self.header.len() as u64
    }

    /// Offset just past its padding: where the next entry starts.
    pub fn end(&self) -> u64 {
        self.data() + padded(self.size)
    }
}

/// Where every entry of an archive goes: `oci-layout`, the blobs in the
/// order given (each once, `blobs/` and `blobs/ALG/` before the first one
/// that needs them), `index.json`, then the end-of-archive blocks.
#[derive(Debug, Clone)]
pub struct Layout {
    oci_layout: Entry,
    blobs: HashMap<Digest, Entry>,
    index_json: Entry,
    len: u64,
}

/// Header blocks for one entry, exactly as the `tar` crate writes them.
fn header(path: &str, size: u64, directory: bool) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_entry_type(if directory {
        tar::EntryType::Directory
    } else {
        tar::EntryType::Regular
    });
    h.set_mode(if directory { 0o755 } else { 0o644 });
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    // With no content, the builder writes only the header blocks (and a
    // long-name entry first when the path needs one).
    let mut b = tar::Builder::new(Vec::new());
    b.mode(tar::HeaderMode::Deterministic);
    b.append_data(&mut h, path, io::empty())
        .expect("writing a header to memory cannot fail");
    std::mem::take(b.get_mut())
}

/// Places entries one after another, each at the offset a sequential
/// writer would give it; a directory entry goes before the first file that
/// needs it, when asked for.
#[derive(Debug, Default)]
pub struct Planner {
    at: u64,
    dirs: HashSet<String>,
}

impl Planner {
    /// An empty tar.
    pub fn new() -> Self {
        Planner::default()
    }

    /// A tar whose next entry goes at `offset` (after entries placed before).
    pub fn starting_at(offset: u64) -> Self {
        Planner {
            at: offset,
            dirs: HashSet::new(),
        }
    }

    /// Places file `path` of `size` bytes, after entries for those of
    /// `dirs` (each ending in `/`) not placed yet.
    pub fn file(&mut self, dirs: &[&str], path: &str, size: u64) -> Entry {
        let mut head = Vec::new();
        for d in dirs {
            if self.dirs.insert(d.to_string()) {
                head.extend(header(d, 0, true));
            }
        }
        head.extend(header(path, size, false));
        let e = Entry {
            offset: self.at,
            header: head,
            size,
        };
        self.at = e.end();
        e
    }

    /// Where the end-of-archive blocks go, and the size of the whole tar.
    pub fn finish(self) -> (u64, u64) {
        (self.at, self.at + ZEROS.len() as u64)
    }
}

/// Writes the end-of-archive blocks at `offset`.
pub async fn write_end_blocks(sink: &RefCell<impl Sink + ?Sized>, offset: u64) -> io::Result<()> {
    write_at(sink, offset, &ZEROS).await
}

impl Layout {
    /// The layout of an archive holding these blobs (duplicates once) and an
    /// `index.json` of `index_json_len` bytes.
    pub fn new<'a>(
        blobs: impl IntoIterator<Item = (&'a Digest, u64)>,
        index_json_len: u64,
    ) -> Layout {
        let mut planner = Planner::new();
        let oci_layout = planner.file(&[], "oci-layout", OCI_LAYOUT.len() as u64);
        let mut placed = HashMap::new();
        for (digest, size) in blobs {
            if placed.contains_key(digest) {
                continue;
            }
            let alg_dir = format!("blobs/{}/", digest.algorithm());
            let e = planner.file(&["blobs/", &alg_dir], &digest.blob_path(), size);
            placed.insert(digest.clone(), e);
        }
        let index_json = planner.file(&[], "index.json", index_json_len);
        let (_, len) = planner.finish();
        Layout {
            oci_layout,
            blobs: placed,
            index_json,
            len,
        }
    }

    /// The entry of blob `digest`.
    pub fn blob(&self, digest: &Digest) -> Option<&Entry> {
        self.blobs.get(digest)
    }

    /// Size of the whole archive.
    pub fn size(&self) -> u64 {
        self.len
    }

    /// Writes `oci-layout`: first, so a stream can start at once.
    pub async fn write_start(&self, sink: &RefCell<impl Sink + ?Sized>) -> io::Result<()> {
        write_entry(sink, &self.oci_layout, &mut Ready(OCI_LAYOUT)).await
    }

    /// Writes `index.json` and the end-of-archive blocks, after every blob.
    pub async fn write_end(
        &self,
        sink: &RefCell<impl Sink + ?Sized>,
        index_json: &[u8],
    ) -> io::Result<()> {
        write_entry(sink, &self.index_json, &mut Ready(index_json)).await?;
        write_end_blocks(sink, self.index_json.end()).await
    }
}

/// Where an archive's bytes go, each at the offset the [`Layout`] gives.
pub trait Sink {
    /// Writes all of `bytes` at `offset`, or returns `Pending` when it must
    /// wait for earlier bytes first (an ordered sink whose read-ahead is full).
    fn poll_write_at(&mut self, offset: u64, bytes: &[u8]) -> Poll<io::Result<()>>;
}

async fn write_at(sink: &RefCell<impl Sink + ?Sized>, offset: u64, bytes: &[u8]) -> io::Result<()> {
    poll_fn(|_| sink.borrow_mut().poll_write_at(offset, bytes)).await
}

/// Writes entry `e`: header, content from `content` (which must yield
/// exactly `e.size` bytes: a verifying reader fails otherwise), padding.
pub async fn write_entry(
    sink: &RefCell<impl Sink + ?Sized>,
    e: &Entry,
    content: &mut (impl PollRead + ?Sized),
) -> io::Result<()> {
    write_at(sink, e.offset, &e.header).await?;
    let mut at = e.data();
    let mut buf = vec![0u8; e.size.saturating_add(1).min(CHUNK as u64) as usize];
    loop {
        let n = concurrent::read(content, &mut buf).await?;
        if n == 0 {
            break;
        }
        if at + n as u64 > e.data() + e.size {
            return Err(io::Error::other(format!(
                "content longer than its {} bytes",
                e.size
            )));
        }
        write_at(sink, at, &buf[..n]).await?;
        at += n as u64;
    }
    if at != e.data() + e.size {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    match (e.end() - at) as usize {
        0 => Ok(()),
        pad => write_at(sink, at, &ZEROS[..pad]).await,
    }
}

/// A stream written in order: bytes that arrive ahead of their turn wait in
/// memory, up to `budget` bytes, then their writer waits.
pub struct Ordered<W> {
    out: W,
    at: u64,
    ahead: BTreeMap<u64, Vec<u8>>,
    buffered: usize,
    budget: usize,
}

impl<W: Write> Ordered<W> {
    /// Writes to `out`, holding at most `budget` bytes that are ahead.
    pub fn new(out: W, budget: usize) -> Self {
        Ordered {
            out,
            at: 0,
            ahead: BTreeMap::new(),
            buffered: 0,
            budget,
        }
    }

    /// The stream, once everything is written.
    pub fn into_inner(self) -> io::Result<W> {
        if !self.ahead.is_empty() {
            return Err(io::Error::other("the archive has a gap"));
        }
        Ok(self.out)
    }
}

impl<W: Write> Sink for Ordered<W> {
    fn poll_write_at(&mut self, offset: u64, bytes: &[u8]) -> Poll<io::Result<()>> {
        if bytes.is_empty() {
            return Poll::Ready(Ok(()));
        }
        if offset < self.at {
            return Poll::Ready(Err(io::Error::other(format!(
                "offset {offset} was already written"
            ))));
        }
        if offset > self.at {
            if self.buffered + bytes.len() > self.budget && self.buffered > 0 {
                return Poll::Pending;
            }
            self.buffered += bytes.len();
            self.ahead.insert(offset, bytes.to_vec());
            return Poll::Ready(Ok(()));
        }
        let write = |out: &mut W, at: &mut u64, b: &[u8]| {
            out.write_all(b)?;
            *at += b.len() as u64;
            io::Result::Ok(())
        };
        if let Err(e) = write(&mut self.out, &mut self.at, bytes) {
            return Poll::Ready(Err(e));
        }
        while let Some(entry) = self.ahead.first_entry() {
            if *entry.key() != self.at {
                break;
            }
            let b = entry.remove();
            self.buffered -= b.len();
            if let Err(e) = write(&mut self.out, &mut self.at, &b) {
                return Poll::Ready(Err(e));
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// An archive of in-memory blobs, written in order, for tests.
#[cfg(test)]
pub fn in_memory(blobs: &[&[u8]], index_json: &[u8]) -> Vec<u8> {
    let digests: Vec<Digest> = blobs.iter().map(|b| Digest::sha256_of(b)).collect();
    let layout = Layout::new(
        digests.iter().zip(blobs).map(|(d, b)| (d, b.len() as u64)),
        index_json.len() as u64,
    );
    let sink = RefCell::new(Ordered::new(Vec::new(), 0));
    let mut seen = HashSet::new();
    concurrent::block_on(async {
        layout.write_start(&sink).await?;
        for (d, b) in digests.iter().zip(blobs) {
            if seen.insert(d) {
                write_entry(&sink, layout.blob(d).expect("placed"), &mut Ready(*b)).await?;
            }
        }
        layout.write_end(&sink, index_json).await
    })
    .expect("writing to memory");
    sink.into_inner().into_inner().expect("complete")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::concurrent::{block_on, run_all, Task};
    use crate::digest::VerifyingReader;
    use std::io::Read;

    /// A file in memory, written at offsets.
    struct Positioned(Vec<u8>);

    impl Sink for Positioned {
        fn poll_write_at(&mut self, offset: u64, bytes: &[u8]) -> Poll<io::Result<()>> {
            let end = offset as usize + bytes.len();
            if self.0.len() < end {
                self.0.resize(end, 0xee);
            }
            self.0[offset as usize..end].copy_from_slice(bytes);
            Poll::Ready(Ok(()))
        }
    }

    fn entries(tar: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        let mut ar = tar::Archive::new(tar);
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut body = Vec::new();
            e.read_to_end(&mut body).unwrap();
            out.push((name, body));
        }
        out
    }

    #[test]
    fn writes_a_readable_layout() {
        let layer = b"layer bytes".to_vec();
        let manifest = b"{}".to_vec();
        let (ld, md) = (Digest::sha256_of(&layer), Digest::sha256_of(&manifest));
        let out = in_memory(&[&layer, &layer, &manifest], b"{\"index\":1}");
        let got = entries(&out);
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "oci-layout",
                "blobs/",
                "blobs/sha256/",
                &ld.blob_path(),
                &md.blob_path(),
                "index.json"
            ]
        );
        assert_eq!(got[3].1, layer);
        assert_eq!(got[5].1, b"{\"index\":1}");
    }

    #[test]
    fn predicts_its_own_size() {
        let big = vec![3u8; 1500];
        let long = Digest::parse(&format!("sha512:{}", "ab".repeat(64))).unwrap();
        let small = Digest::sha256_of(b"x");
        let layout = Layout::new(
            [
                (&small, 1),
                (&Digest::sha256_of(&big), 1500),
                (&long, 700),
                (&small, 1),
            ],
            513,
        );
        let sink = RefCell::new(Positioned(Vec::new()));
        block_on(async {
            layout.write_start(&sink).await?;
            write_entry(&sink, layout.blob(&small).unwrap(), &mut Ready(&b"x"[..])).await?;
            write_entry(
                &sink,
                layout.blob(&Digest::sha256_of(&big)).unwrap(),
                &mut Ready(&big[..]),
            )
            .await?;
            write_entry(
                &sink,
                layout.blob(&long).unwrap(),
                &mut Ready(&[1u8; 700][..]),
            )
            .await?;
            layout.write_end(&sink, &[b'{'; 513]).await
        })
        .unwrap();
        let out = sink.into_inner().0;
        assert_eq!(layout.size(), out.len() as u64);
        let got = entries(&out);
        // The sha512 path does not fit ustar: a long-name entry carries it.
        assert!(got.iter().any(|(n, _)| *n == long.blob_path()));
        assert!(got.iter().any(|(n, _)| n == "blobs/sha512/"));
    }

    #[test]
    fn any_write_order_gives_the_same_archive() {
        let blobs: Vec<Vec<u8>> = (0..6u8).map(|i| vec![i; 300 + 997 * i as usize]).collect();
        let refs: Vec<&[u8]> = blobs.iter().map(Vec::as_slice).collect();
        let expected = in_memory(&refs, b"{}");
        let digests: Vec<Digest> = blobs.iter().map(|b| Digest::sha256_of(b)).collect();
        let layout = Layout::new(
            digests.iter().zip(&blobs).map(|(d, b)| (d, b.len() as u64)),
            2,
        );
        for jobs in [1, 3, 6] {
            let sink = RefCell::new(Positioned(Vec::new()));
            // Writers that each deliver 100 bytes a turn, interleaved.
            let tasks = digests
                .iter()
                .zip(&blobs)
                .rev()
                .map(|(d, b)| -> Task<'_, (), io::Error> {
                    let (sink, layout) = (&sink, &layout);
                    Box::pin(async move {
                        let mut r = Trickle(b, 0);
                        write_entry(sink, layout.blob(d).unwrap(), &mut r).await
                    })
                });
            run_all(jobs, tasks).unwrap();
            block_on(async {
                layout.write_start(&sink).await?;
                layout.write_end(&sink, b"{}").await
            })
            .unwrap();
            assert_eq!(sink.into_inner().0, expected, "jobs {jobs}");
        }
    }

    /// 100 bytes per read, `Pending` in between.
    struct Trickle<'a>(&'a [u8], usize);

    impl PollRead for Trickle<'_> {
        fn poll_read(&mut self, buf: &mut [u8]) -> Poll<io::Result<usize>> {
            self.1 += 1;
            if self.1.is_multiple_of(2) {
                return Poll::Pending;
            }
            let n = buf.len().min(self.0.len()).min(100);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Poll::Ready(Ok(n))
        }
    }

    #[test]
    fn ordered_streams_hold_what_is_ahead_within_a_budget() {
        let mut o = Ordered::new(Vec::new(), 10);
        assert!(matches!(o.poll_write_at(4, b"efgh"), Poll::Ready(Ok(()))));
        assert!(matches!(o.poll_write_at(8, b"ijklmnop"), Poll::Pending));
        assert!(matches!(o.poll_write_at(0, b"abcd"), Poll::Ready(Ok(()))));
        assert!(matches!(
            o.poll_write_at(8, b"ijklmnop"),
            Poll::Ready(Ok(()))
        ));
        assert!(matches!(o.poll_write_at(2, b"x"), Poll::Ready(Err(_))));
        // Nothing to write is never out of turn.
        assert!(matches!(o.poll_write_at(4, b""), Poll::Ready(Ok(()))));
        assert_eq!(o.into_inner().unwrap(), b"abcdefghijklmnop");
        let mut gap = Ordered::new(Vec::new(), 10);
        assert!(matches!(gap.poll_write_at(3, b"x"), Poll::Ready(Ok(()))));
        assert!(gap.into_inner().is_err());
    }

    #[test]
    fn a_bad_blob_fails_the_write() {
        let good = Digest::sha256_of(b"good");
        let layout = Layout::new([(&good, 4)], 2);
        let sink = RefCell::new(Positioned(Vec::new()));
        let mut r = VerifyingReader::new(Ready(&b"evil"[..]), good.clone(), 4, "t".into());
        let e = block_on(write_entry(&sink, layout.blob(&good).unwrap(), &mut r));
        assert!(e.unwrap_err().to_string().contains("has digest"));
        let mut short = Ready(&b"goo"[..]);
        let e = block_on(write_entry(&sink, layout.blob(&good).unwrap(), &mut short));
        assert_eq!(e.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    }
}
