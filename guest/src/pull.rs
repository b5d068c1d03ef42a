//! `pull`: resolve FINAL (and BASE), then stream FINAL into an OCI archive,
//! leaving out the layers BASE has.

use std::collections::HashSet;
use std::io::{self, Read};

use crate::archive::output::Output;
use crate::archive::writer::ArchiveWriter;
use crate::bindings::imo::incremental::progress;
use crate::bindings::imo::incremental::types::{BlobInfo, ProgressEvent, Role};
use crate::digest::{classify_io, Digest, VerifyingReader};
use crate::error::{Error, Result};
use crate::manifest::{platforms, select_platform, Descriptor, LayoutIndex, Parsed, RawManifest};
use crate::platform::Platform;
use crate::reference::Reference;
use crate::registry::Registry;

/// Deepest index nesting followed (index -> index -> manifest is legal).
const MAX_DEPTH: usize = 4;
const PROGRESS_STEP: u64 = 1024 * 1024;

/// Options of a pull, already parsed.
pub struct PullOptions {
    /// Platform to select; `None` means the host's.
    pub platform: Option<Platform>,
    /// Keep the whole index.
    pub all_platforms: bool,
    /// The host's platform.
    pub host_platform: Platform,
    /// False allows plain HTTP to the source registries.
    pub tls_verify: bool,
}

impl PullOptions {
    fn registry(&self, name: &str, role: Role) -> Registry {
        Registry::new(name, role, !self.tls_verify)
    }
}

/// What a pull did.
#[derive(Debug, Default)]
pub struct PullReport {
    /// Normalised final reference.
    pub reference: String,
    /// Digest of the top manifest in the archive.
    pub digest: String,
    /// Manifests and indexes written.
    pub manifests: u32,
    /// Configs and layers written.
    pub blobs_written: u32,
    /// Bytes of those blobs.
    pub bytes_written: u64,
    /// Layers left out because the base has them.
    pub layers_left_out: u32,
    /// Their bytes.
    pub bytes_left_out: u64,
}

/// A blob of the image and whether it is a layer (which the base may cover).
struct Blob {
    desc: Descriptor,
    is_layer: bool,
}

/// An image resolved down to its documents and blobs.
struct Resolved {
    /// The descriptor `index.json` names.
    top: Descriptor,
    /// Manifests and indexes, children before parents.
    manifests: Vec<RawManifest>,
    /// Configs and layers, each once.
    blobs: Vec<Blob>,
}

fn emit(event: ProgressEvent) {
    progress::report(&event);
}

fn info(d: &Descriptor) -> BlobInfo {
    BlobInfo {
        digest: d.digest.to_string(),
        size: d.size,
        media_type: d.media_type.clone(),
    }
}

/// Runs a pull.
pub fn pull(base: &str, final_: &str, output: &str, opts: &PullOptions) -> Result<PullReport> {
    if output.is_empty() {
        return Err(Error::InvalidArgument("output path is empty".into()));
    }
    let final_ref = Reference::parse(final_)?;
    let base_ref = match base {
        "scratch" => None,
        b => Some(Reference::parse(b)?),
    };
    let want = opts
        .platform
        .clone()
        .unwrap_or_else(|| opts.host_platform.clone());

    let mut source = opts.registry(final_ref.registry(), Role::Final);
    let image = resolve(&mut source, &final_ref, opts.all_platforms, &want)?;
    let base_layers = match &base_ref {
        None => HashSet::new(),
        Some(b) => {
            let mut reg = opts.registry(b.registry(), Role::Base);
            layers_of(&mut reg, b)?
        }
    };

    let mut report = PullReport {
        reference: final_ref.to_string(),
        digest: image.top.digest.to_string(),
        ..PullReport::default()
    };
    let out = Output::open(output)?;
    let shown = out.display();
    let write_err = |e: io::Error| Error::io(&shown, "write", &e);
    let mut writer = ArchiveWriter::new(out).map_err(write_err)?;
    for blob in &image.blobs {
        let d = &blob.desc;
        if writer.contains(&d.digest) {
            continue;
        }
        if d.is_foreign() || (blob.is_layer && base_layers.contains(&d.digest)) {
            if !d.is_foreign() {
                report.layers_left_out += 1;
                report.bytes_left_out += d.size;
            }
            emit(ProgressEvent::BlobSkipped(info(d)));
            continue;
        }
        emit(ProgressEvent::BlobStarted(info(d)));
        let body = source.blob(final_ref.repository(), d)?;
        let origin = format!("{}/{}", final_ref.registry(), final_ref.repository());
        let verified = VerifyingReader::new(
            Progress::new(body, &d.digest),
            d.digest.clone(),
            d.size,
            origin,
        );
        writer
            .put_stream(&d.digest, d.size, verified)
            .map_err(|e| {
                classify_io(e, |e| {
                    Error::Network(format!("copying blob {} to {shown}: {e}", d.digest))
                })
            })?;
        emit(ProgressEvent::BlobFinished(d.digest.to_string()));
        report.blobs_written += 1;
        report.bytes_written += d.size;
    }
    for m in &image.manifests {
        writer.put_bytes(&m.digest, &m.bytes).map_err(write_err)?;
        report.manifests += 1;
    }
    let index = LayoutIndex::new(image.top.clone(), final_ref.tag()).to_bytes();
    let out = writer.finish(&index).map_err(write_err)?;
    out.commit()?;
    Ok(report)
}

/// Every layer digest of every manifest of `reference`, all platforms.
fn layers_of(reg: &mut Registry, reference: &Reference) -> Result<HashSet<Digest>> {
    let top = reg.manifest(
        reference.repository(),
        &reference.manifest_reference(),
        &reference.to_string(),
    )?;
    let mut layers = HashSet::new();
    let mut queue = vec![(top, 0usize)];
    while let Some((m, depth)) = queue.pop() {
        match m.parsed {
            Parsed::Image(img) => layers.extend(img.layers.into_iter().map(|l| l.digest)),
            Parsed::Index(ix) if depth < MAX_DEPTH => {
                for child in ix.manifests {
                    let shown =
                        format!("{}/{}@{}", reg.name(), reference.repository(), child.digest);
                    queue.push((fetch_child(reg, reference, &child, &shown)?, depth + 1));
                }
            }
            Parsed::Index(_) => return Err(too_deep(reference)),
        }
    }
    Ok(layers)
}

fn too_deep(reference: &Reference) -> Error {
    Error::Unsupported(format!(
        "{reference}: indexes nested more than {MAX_DEPTH} deep"
    ))
}

fn fetch_child(
    reg: &mut Registry,
    reference: &Reference,
    child: &Descriptor,
    shown: &str,
) -> Result<RawManifest> {
    let m = reg.manifest(reference.repository(), &child.digest.to_string(), shown)?;
    if m.bytes.len() as u64 != child.size {
        return Err(Error::DigestMismatch(format!(
            "manifest {shown} is {} bytes, its index says {}",
            m.bytes.len(),
            child.size
        )));
    }
    Ok(m)
}

/// Fetches FINAL's documents: the whole tree with `all`, else the one
/// platform `want` out of an index.
fn resolve(
    reg: &mut Registry,
    reference: &Reference,
    all: bool,
    want: &Platform,
) -> Result<Resolved> {
    let top = reg.manifest(
        reference.repository(),
        &reference.manifest_reference(),
        &reference.to_string(),
    )?;
    let mut resolved = Resolved {
        top: top.descriptor(),
        manifests: Vec::new(),
        blobs: Vec::new(),
    };
    let top = match (&top.parsed, all) {
        (Parsed::Index(ix), false) => {
            let chosen = select_platform(ix, want).ok_or_else(|| {
                Error::NotFound(format!(
                    "{reference} has no manifest for platform {want} (it has: {}); use --platform or --all-platforms",
                    platforms(ix)
                ))
            })?;
            let shown = format!(
                "{}/{}@{}",
                reg.name(),
                reference.repository(),
                chosen.digest
            );
            let child = fetch_child(reg, reference, chosen, &shown)?;
            if matches!(child.parsed, Parsed::Index(_)) {
                return Err(Error::Unsupported(format!(
                    "{reference}: the {want} entry is itself an index; use --all-platforms"
                )));
            }
            let mut top = chosen.clone();
            top.annotations.clear();
            resolved.top = top;
            child
        }
        _ => top,
    };
    collect(reg, reference, top, 0, &mut resolved)?;
    Ok(resolved)
}

fn collect(
    reg: &mut Registry,
    reference: &Reference,
    m: RawManifest,
    depth: usize,
    out: &mut Resolved,
) -> Result<()> {
    match &m.parsed {
        Parsed::Image(img) => {
            let mut seen: HashSet<Digest> =
                out.blobs.iter().map(|b| b.desc.digest.clone()).collect();
            for (desc, is_layer) in
                std::iter::once((&img.config, false)).chain(img.layers.iter().map(|l| (l, true)))
            {
                if seen.insert(desc.digest.clone()) {
                    out.blobs.push(Blob {
                        desc: desc.clone(),
                        is_layer,
                    });
                }
            }
        }
        Parsed::Index(ix) => {
            if depth >= MAX_DEPTH {
                return Err(too_deep(reference));
            }
            for child in &ix.manifests {
                let shown = format!("{}/{}@{}", reg.name(), reference.repository(), child.digest);
                let c = fetch_child(reg, reference, child, &shown)?;
                collect(reg, reference, c, depth + 1, out)?;
            }
        }
    }
    out.manifests.push(m);
    Ok(())
}

/// Reports bytes read to the host in steps, so progress costs little.
struct Progress<R> {
    inner: R,
    digest: String,
    pending: u64,
}

impl<R> Progress<R> {
    fn new(inner: R, digest: &Digest) -> Self {
        Progress {
            inner,
            digest: digest.to_string(),
            pending: 0,
        }
    }
}

impl<R: Read> Read for Progress<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pending += n as u64;
        if self.pending >= PROGRESS_STEP || (n == 0 && self.pending > 0) {
            emit(ProgressEvent::BlobAdvanced((
                self.digest.clone(),
                self.pending,
            )));
            self.pending = 0;
        }
        Ok(n)
    }
}
