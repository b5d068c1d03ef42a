//! Where images go: a registry, an OCI layout directory (`oci:DIR[:TAG]`),
//! an OCI archive (`oci-archive:FILE[:TAG]`, or a plain path) or a
//! docker-archive (`docker-archive:FILE[:REF]`), behind one trait that the
//! copy engine ([`crate::engine`]) drives.

mod archive;
mod docker_archive;
mod layout;
mod registry;

pub use archive::OciArchiveDestination;
pub use docker_archive::DockerArchiveDestination;
pub use layout::LayoutDestination;
pub use registry::RegistryDestination;

use crate::concurrent::{PollRead, Task};
use crate::error::{Error, Result};
use crate::manifest::{Descriptor, RawManifest};
use crate::plan::Plan;
use crate::reference::Reference;
use crate::source::Transport;

/// Yields a blob's content from its start, verified as it is read; called
/// again when a transfer must start over.
pub type Opener<'a> = dyn Fn() -> Result<Box<dyn PollRead + 'a>> + 'a;

/// What a destination became once committed.
#[derive(Debug, Clone)]
pub struct Committed {
    /// How to name the image there now, e.g. `host/app:v2` or `oci:/srv:v2`.
    pub name: String,
    /// The size of the file written, for files.
    pub size: Option<u64>,
}

/// An image destination. Blob methods take `&self` so that `--jobs`
/// transfers run at once; dropping a destination before `commit` abandons
/// what it wrote (temporary files go; a registry keeps unreferenced blobs,
/// which a rerun reuses).
pub trait Destination {
    /// How messages name it.
    fn name(&self) -> String;

    /// Sees the plans of every image it will get (one, or a set) before
    /// anything is written: refuses what it cannot hold, fixes the places
    /// of what it will.
    fn begin(&mut self, plans: &[&Plan]) -> Result<()>;

    /// Whether it already holds blob `d`.
    fn has_blob<'a>(&'a self, d: &'a Descriptor) -> Task<'a, bool, Error>;

    /// Makes blob `d` present without sending its bytes, from one of the
    /// places in `from` that hold it (a cross-repository mount); false if
    /// none would do.
    fn try_reuse<'a>(
        &'a self,
        _d: &'a Descriptor,
        _from: &'a [Reference],
    ) -> Task<'a, bool, Error> {
        Box::pin(async { Ok(false) })
    }

    /// Stores blob `d`, whose content `open` yields.
    fn put_blob<'a>(&'a self, d: &'a Descriptor, open: &'a Opener<'a>) -> Task<'a, (), Error>;

    /// Stores a manifest or index byte for byte, under its digest.
    fn put_manifest(&mut self, m: &RawManifest) -> Result<()>;

    /// Names each image's top manifest by its tag, last, and makes
    /// everything final: until this returns, whatever a tag named before
    /// still names it.
    fn commit(self: Box<Self>, images: &[(&Plan, &RawManifest)]) -> Result<Committed>;
}

/// The one plan of a destination that takes one image at a time.
pub(crate) fn single<'a>(plans: &[&'a Plan], name: &str) -> Result<&'a Plan> {
    match plans {
        [one] => Ok(one),
        _ => Err(Error::Unsupported(format!(
            "{name} takes one image at a time, not {}",
            plans.len()
        ))),
    }
}

/// How a destination is reached, and what for.
#[derive(Debug, Clone, Copy)]
pub struct Access {
    /// False allows plain HTTP to a registry (loopback ones always may).
    pub tls_verify: bool,
    /// Extra tries of a request.
    pub retry_times: u32,
    /// Blobs larger than this go up to a registry in PATCH chunks of this size.
    pub chunk_size: u64,
    /// To write (false: to look only, as `vet` does: nothing is created).
    pub write: bool,
    /// An OCI archive split into parts of this many bytes (0: one file).
    pub split: u64,
}

/// Opens the destination `t` names.
pub fn open(t: Transport, access: Access) -> Result<Box<dyn Destination>> {
    Ok(match t {
        Transport::Registry(r) => Box::new(RegistryDestination::new(r, access)),
        Transport::Layout { path, tag } => {
            Box::new(LayoutDestination::new(&path, tag, access.write))
        }
        t @ (Transport::Archive { .. } | Transport::DockerArchive { .. }) if !access.write => {
            return Err(Error::InvalidArgument(format!(
                "{t} is a file being written, not a place to look blobs up in: name a registry or an oci: layout"
            )))
        }
        Transport::Archive { path, tag } => {
            Box::new(OciArchiveDestination::new(&path, tag, access.split)?)
        }
        Transport::DockerArchive { path, image } => {
            Box::new(DockerArchiveDestination::new(&path, image)?)
        }
    })
}
