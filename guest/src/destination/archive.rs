//! An OCI archive being written: every entry's place is fixed by the plan
//! before the first byte, so blobs land at their offsets as they arrive.

use std::cell::RefCell;
use std::collections::HashSet;

use super::{Committed, Destination, Opener};
use crate::archive::output::Output;
use crate::archive::writer::{write_entry, Entry, Layout};
use crate::concurrent::{block_on, Ready, Task};
use crate::digest::{classify_io, Digest};
use crate::error::{Error, Result};
use crate::manifest::{Descriptor, LayoutIndex, RawManifest};
use crate::plan::{written_by, Plan};

/// `oci-archive:FILE[:TAG]`, a plain path, or `-` (standard output).
pub struct OciArchiveDestination {
    out: RefCell<Output>,
    /// Split into parts of this many bytes (0: one file); the parts are
    /// made once the archive's size is known.
    split: u64,
    shown: String,
    tag: Option<String>,
    layout: Option<Layout>,
    index_json: Vec<u8>,
    written: RefCell<HashSet<Digest>>,
}

impl OciArchiveDestination {
    /// Opens `path` for writing (under a temporary name until committed),
    /// or, with `split`, as parts of `split` bytes.
    pub fn new(path: &str, tag: Option<String>, split: u64) -> Result<Self> {
        let out = if split > 0 {
            // One part for now, to check the place; the real ones are made
            // when the size is known.
            Output::open_split(path, split, 0)?
        } else {
            Output::open(path)?
        };
        Ok(OciArchiveDestination {
            shown: out.display(),
            split,
            out: RefCell::new(out),
            tag,
            layout: None,
            index_json: Vec::new(),
            written: RefCell::new(HashSet::new()),
        })
    }

    fn entry(&self, digest: &Digest) -> Result<&Entry> {
        // The layout places every blob of the plan; anything else is a bug.
        self.layout
            .as_ref()
            .and_then(|l| l.blob(digest))
            .ok_or_else(|| Error::Io(format!("blob {digest} has no place in {}", self.shown)))
    }

    fn write_err(&self) -> impl Fn(std::io::Error) -> Error + '_ {
        |e| Error::io(&self.shown, "write", &e)
    }
}

impl Destination for OciArchiveDestination {
    fn name(&self) -> String {
        self.shown.clone()
    }

    fn begin(&mut self, plans: &[&Plan]) -> Result<()> {
        self.index_json = match plans {
            // One image: the destination's own tag, else the source's.
            [plan] => {
                let tag = self.tag.clone().or_else(|| plan.tag.clone());
                plan.index_json(tag.as_deref())
            }
            _ => {
                let entries = plans
                    .iter()
                    .flat_map(|p| p.index_entries(p.tag.as_deref()))
                    .collect();
                LayoutIndex::of(entries).to_bytes()
            }
        };
        let layout = Layout::new(written_by(plans), self.index_json.len() as u64);
        if self.split > 0 {
            let parts = Output::open_split(&self.shown, self.split, layout.size())?;
            // The placeholder part goes; the real ones take its place.
            drop(self.out.replace(parts));
        }
        block_on(layout.write_start(&self.out)).map_err(self.write_err())?;
        self.layout = Some(layout);
        Ok(())
    }

    fn has_blob<'a>(&'a self, _d: &'a Descriptor) -> Task<'a, bool, Error> {
        Box::pin(async { Ok(false) })
    }

    fn put_blob<'a>(&'a self, d: &'a Descriptor, open: &'a Opener<'a>) -> Task<'a, (), Error> {
        Box::pin(async move {
            let entry = self.entry(&d.digest)?;
            let mut content = open()?;
            write_entry(&self.out, entry, &mut content)
                .await
                .map_err(|e| {
                    classify_io(e, |e| {
                        Error::Network(format!("copying blob {} to {}: {e}", d.digest, self.shown))
                    })
                })?;
            self.written.borrow_mut().insert(d.digest.clone());
            Ok(())
        })
    }

    fn put_manifest(&mut self, m: &RawManifest) -> Result<()> {
        if !self.written.borrow_mut().insert(m.digest.clone()) {
            return Ok(());
        }
        let entry = self.entry(&m.digest)?;
        block_on(write_entry(&self.out, entry, &mut Ready(&m.bytes[..]))).map_err(self.write_err())
    }

    fn commit(self: Box<Self>, _images: &[(&Plan, &RawManifest)]) -> Result<Committed> {
        let this = *self;
        let layout = this
            .layout
            .as_ref()
            .ok_or_else(|| Error::Io(format!("{} was never begun", this.shown)))?;
        block_on(layout.write_end(&this.out, &this.index_json)).map_err(this.write_err())?;
        let size = layout.size();
        this.out.into_inner().commit()?;
        Ok(Committed {
            name: this.shown,
            size: Some(size),
        })
    }
}
