//! imo as a Rust library: the calls the `imo` command makes, with the same
//! component, sandbox and defaults. One [`Imo`] holds the settings (the Go
//! imo's options); each method runs the component once.

use std::path::Path;
use std::sync::Arc;

use imo_grammar::reference::registry_authority;
use imo_grammar::transport::Transport;

use crate::cleanup::Cleanup;
use crate::error::{Error, Result};
use crate::files::Grants;
use crate::network::{AllowList, Network};
use crate::runtime::{
    self, Capabilities, Credential, Outcome, PlanReport, PullReport, PushReport, Role,
    SetPlanReport, SetPullReport, SetPushOutcome, SetVetOutcome, VetReport,
};
use crate::{platform, sets};

/// Answers which credential to use for a registry (`host[:port]`) in a role.
pub type CredentialFn = dyn Fn(&str, Role) -> Option<Credential> + Send + Sync;

/// What `vet` found: of one image, or of each image of a set archive.
pub type Vetted = Outcome<VetReport, SetVetOutcome>;

/// What `push` did: to one image, or to each image of a set archive.
pub type Pushed = Outcome<PushReport, SetPushOutcome>;

mod builder;
mod reader;

pub use builder::Builder;
use builder::Config;
use reader::pipe_file;
pub use reader::PullReader;

/// imo, configured. Cheap to clone; calls may run from several threads.
///
/// ```no_run
/// # fn main() -> imo::Result<()> {
/// let imo = imo::Imo::builder().jobs(8).build()?;
/// let report = imo.pull_to("registry.example/app:v1", "registry.example/app:v2", "app-v2.tar")?;
/// println!("{} layer(s) left out", report.layers_left_out);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Imo {
    config: Arc<Config>,
}

/// The registry (`host[:port]`, as requests name it) of an image reference;
/// `None` for `scratch` and file transports.
fn registry_of(reference: &str) -> Option<String> {
    if reference == "scratch" {
        return None;
    }
    // The guest parses the same grammar: what it would reach is allowed.
    Transport::parse(reference)
        .ok()?
        .registry()
        .map(|r| registry_authority(r).to_string())
}

/// A push or vet destination as the allow-list reads it: a reference, or a
/// set's prefix (`host[:port][/path]`), whichever the archive makes it.
fn destination_names(destination: &str) -> Vec<String> {
    let mut names = vec![destination.to_string()];
    if let Some(r) = sets::prefix_registry(destination) {
        names.push(format!("{r}/x"));
    }
    names
}

/// `names` when `verify` is off (their certificates go unchecked).
fn unless(verify: bool, names: &[String]) -> Vec<String> {
    if verify {
        Vec::new()
    } else {
        names.to_vec()
    }
}

impl Imo {
    /// Settings, starting from imo's defaults.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// What one call grants the component: `references` name the
    /// registries it may reach, `insecure` those whose certificates go
    /// unchecked.
    fn caps(
        &self,
        grants: Grants,
        references: &[String],
        insecure: &[String],
        stdout: Option<std::fs::File>,
    ) -> Result<Capabilities> {
        let c = &self.config;
        let mut allowed = AllowList::default();
        for r in references.iter().filter_map(|r| registry_of(r)) {
            allowed.allow_registry(&r);
        }
        let insecure = insecure.iter().filter_map(|r| registry_of(r)).collect();
        Ok(Capabilities {
            grants,
            credentials: c.credentials.clone(),
            progress: c.progress.clone(),
            network: Network::new(c.cert_dir.as_deref(), insecure, allowed)?,
            limits: c.limits,
            cleanup: Cleanup::default(),
            stdout,
            owns_process: c.owns_process,
        })
    }

    /// What a call reading the sources `named` grants.
    fn source_caps(&self, grants: Grants, named: &[String]) -> Result<Capabilities> {
        let insecure = unless(self.config.src_tls_verify, named);
        self.caps(grants, named, &insecure, None)
    }

    /// What a call writing to or looking at the destinations `named` grants.
    fn dest_caps(&self, grants: Grants, named: &[String]) -> Result<Capabilities> {
        let insecure = unless(self.config.dest_tls_verify, named);
        self.caps(grants, named, &insecure, None)
    }

    fn pull_options(&self) -> runtime::PullOptions {
        let c = &self.config;
        runtime::PullOptions {
            platform: c.platform.clone(),
            all_platforms: c.all_platforms,
            host_platform: platform::host(),
            tls_verify: c.src_tls_verify,
            retry_times: c.retry_times,
            jobs: c.jobs,
            split: c.split,
            attachments: c.attachments,
            attachment_types: c.attachment_types.clone(),
            delta: c.delta,
        }
    }

    fn push_options(&self) -> runtime::PushOptions {
        let c = &self.config;
        runtime::PushOptions {
            tls_verify: c.dest_tls_verify,
            mount_from: c.mount_from.clone(),
            chunk_size: c.chunk_size,
            verify: c.verify,
            retry_times: c.retry_times,
            jobs: c.jobs,
            attachments: c.attachments,
        }
    }

    /// BASE and FINAL granted; the names the network may reach.
    fn pair(
        &self,
        grants: &mut Grants,
        base: &str,
        final_: &str,
    ) -> Result<(String, String, Vec<String>)> {
        let guest_base = if base == "scratch" {
            base.to_string()
        } else {
            grants.source(base)?
        };
        let guest_final = grants.source(final_)?;
        Ok((
            guest_base,
            guest_final,
            vec![base.to_string(), final_.to_string()],
        ))
    }

    /// Streams the OCI archive of FINAL without what BASE has, as the
    /// component writes it (the Go imo's `Pull`). BASE `scratch` means the
    /// whole image.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let imo = imo::Imo::builder().build()?;
    /// let mut archive = imo.pull("registry.example/app:v1", "registry.example/app:v2")?;
    /// let mut file = std::fs::File::create("app-v2.tar")?;
    /// std::io::copy(&mut archive, &mut file)?;
    /// let report = archive.finish()?;
    /// println!("{} ({} bytes)", report.digest, report.archive_size);
    /// # Ok(()) }
    /// ```
    pub fn pull(&self, base: &str, final_: &str) -> Result<PullReader> {
        let mut grants = Grants::default();
        let (base, final_, named) = self.pair(&mut grants, base, final_)?;
        let (reader, writer) = std::io::pipe()
            .map_err(|e| Error::Host(format!("cannot make a pipe for the archive: {e}")))?;
        let caps = self.caps(
            grants,
            &named,
            &unless(self.config.src_tls_verify, &named),
            Some(pipe_file(writer)),
        )?;
        let mut options = self.pull_options();
        options.split = 0;
        let worker = std::thread::spawn(move || runtime::pull(caps, &base, &final_, "-", &options));
        Ok(PullReader {
            pipe: Some(reader),
            worker: Some(worker),
            outcome: None,
        })
    }

    /// Writes the archive of FINAL without what BASE has to `output`: a
    /// file, `oci-archive:FILE[:TAG]`, `oci:DIR[:TAG]` or
    /// `docker-archive:FILE[:REF]`.
    ///
    /// ```no_run
    /// # fn main() -> imo::Result<()> {
    /// let imo = imo::Imo::builder().build()?;
    /// let r = imo.pull_to("scratch", "registry.example/app:v2", "oci:/srv/images:v2")?;
    /// println!("{} blob(s) written", r.blobs_written);
    /// # Ok(()) }
    /// ```
    pub fn pull_to(&self, base: &str, final_: &str, output: &str) -> Result<PullReport> {
        let mut grants = Grants::default();
        let (base, final_, named) = self.pair(&mut grants, base, final_)?;
        let target = grants.target(output, true, true)?;
        let caps = self.source_caps(grants, &named)?;
        runtime::pull(caps, &base, &final_, &target.guest, &self.pull_options())
    }

    /// What [`Imo::pull_to`] would write: each blob kept or left out.
    ///
    /// ```no_run
    /// # fn main() -> imo::Result<()> {
    /// let imo = imo::Imo::builder().build()?;
    /// let plan = imo.plan("registry.example/app:v1", "registry.example/app:v2")?;
    /// println!("{} of {} bytes left out", plan.left_out_bytes, plan.full_bytes);
    /// # Ok(()) }
    /// ```
    pub fn plan(&self, base: &str, final_: &str) -> Result<PlanReport> {
        let mut grants = Grants::default();
        let (base, final_, named) = self.pair(&mut grants, base, final_)?;
        let caps = self.source_caps(grants, &named)?;
        runtime::plan(caps, &base, &final_, &self.pull_options())
    }

    /// The images of a set file and the far side's bases, granted.
    fn set(
        &self,
        grants: &mut Grants,
        set_file: &Path,
        bases: &[&str],
    ) -> Result<(Vec<runtime::SetImage>, Vec<String>, Vec<String>)> {
        let bases: Vec<String> = bases.iter().map(|b| b.to_string()).collect();
        Ok(sets::prepare(set_file, &bases, grants)?)
    }

    /// Writes the images of a set file into one archive, each blob once,
    /// leaving out what `bases` hold (images, archives, `inventory:FILE`).
    ///
    /// ```no_run
    /// # fn main() -> imo::Result<()> {
    /// let imo = imo::Imo::builder().build()?;
    /// let r = imo.pull_set("images.yaml", &["inventory:site.json"], "set.tar")?;
    /// println!("{} image(s), {} bytes", r.images.len(), r.archive_size);
    /// # Ok(()) }
    /// ```
    pub fn pull_set(
        &self,
        set_file: impl AsRef<Path>,
        bases: &[&str],
        output: &str,
    ) -> Result<SetPullReport> {
        let mut grants = Grants::default();
        let (images, bases, named) = self.set(&mut grants, set_file.as_ref(), bases)?;
        let target = grants.target(output, true, true)?;
        let caps = self.source_caps(grants, &named)?;
        runtime::pull_set(caps, &images, &bases, &target.guest, &self.pull_options())
    }

    /// What [`Imo::pull_set`] would write.
    ///
    /// ```no_run
    /// # fn main() -> imo::Result<()> {
    /// let imo = imo::Imo::builder().build()?;
    /// let plan = imo.plan_set("images.yaml", &[])?;
    /// println!("{} bytes saved by sharing", plan.shared_bytes_saved);
    /// # Ok(()) }
    /// ```
    pub fn plan_set(&self, set_file: impl AsRef<Path>, bases: &[&str]) -> Result<SetPlanReport> {
        let mut grants = Grants::default();
        let (images, bases, named) = self.set(&mut grants, set_file.as_ref(), bases)?;
        let caps = self.source_caps(grants, &named)?;
        runtime::plan_set(caps, &images, &bases, &self.pull_options())
    }

    /// What an archive (a file, `oci-archive:`, `oci:` or
    /// `docker-archive:`) holds and leaves out: one report, or one per
    /// image of a set archive.
    ///
    /// ```no_run
    /// # fn main() -> imo::Result<()> {
    /// let imo = imo::Imo::builder().build()?;
    /// for image in imo.inspect("app-v2.tar")? {
    ///     println!("{}: {} blob(s) left out", image.digest, image.missing.len());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn inspect(&self, archive: &str) -> Result<Vec<PlanReport>> {
        let mut grants = Grants::default();
        let archive = grants.archive(archive)?;
        let caps = self.caps(grants, &[], &[], None)?;
        runtime::inspect(caps, &archive)
    }

    /// Whether `destination` (a registry reference, `oci:DIR[:TAG]`, or a
    /// prefix for a set archive) holds every blob the archive leaves out
    /// (the Go imo's `PushVet`).
    ///
    /// ```no_run
    /// # fn main() -> imo::Result<()> {
    /// let imo = imo::Imo::builder().build()?;
    /// if let imo::Outcome::Single(v) = imo.vet("app-v2.tar", "registry.internal/app:v2")? {
    ///     for m in &v.missing {
    ///         println!("missing {} ({} bytes)", m.digest, m.size);
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn vet(&self, archive: &str, destination: &str) -> Result<Vetted> {
        let mut grants = Grants::default();
        let archive = grants.archive(archive)?;
        let target = grants.target(destination, false, false)?;
        let named = destination_names(destination);
        let caps = self.dest_caps(grants, &named)?;
        runtime::vet(caps, &archive, &target.guest, &self.push_options())
    }

    /// Lands the archive's image at `destination` by tag and by its
    /// original digest (the Go imo's `Push`); a set archive's images below
    /// a prefix.
    ///
    /// ```no_run
    /// # fn main() -> imo::Result<()> {
    /// let imo = imo::Imo::builder().dest_auth("admin", "hunter2").build()?;
    /// if let imo::Outcome::Single(r) = imo.push("app-v2.tar", "registry.internal/app:v2")? {
    ///     println!("{} now names {}", r.destination, r.digest);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn push(&self, archive: &str, destination: &str) -> Result<Pushed> {
        let mut grants = Grants::default();
        let archive = grants.archive(archive)?;
        let target = grants.target(destination, false, true)?;
        let named = destination_names(destination);
        let caps = self.dest_caps(grants, &named)?;
        runtime::push(caps, &archive, &target.guest, &self.push_options())
    }

    /// Copies an image between any two transports, digest for digest.
    ///
    /// ```no_run
    /// # fn main() -> imo::Result<()> {
    /// let imo = imo::Imo::builder().build()?;
    /// let r = imo.copy("registry.example/app:v2", "docker-archive:app.tar")?;
    /// println!("copied {}", r.digest);
    /// # Ok(()) }
    /// ```
    pub fn copy(&self, source: &str, destination: &str) -> Result<PushReport> {
        let c = &self.config;
        let mut grants = Grants::default();
        let guest_source = grants.source(source)?;
        let target = grants.target(destination, false, true)?;
        let mut insecure = unless(c.dest_tls_verify, &[destination.to_string()]);
        insecure.extend(unless(c.src_tls_verify, &[source.to_string()]));
        let caps = self.caps(
            grants,
            &[source.to_string(), destination.to_string()],
            &insecure,
            None,
        )?;
        let options = runtime::CopyOptions {
            platform: c.platform.clone(),
            all_platforms: c.all_platforms,
            host_platform: platform::host(),
            src_tls_verify: c.src_tls_verify,
            dest_tls_verify: c.dest_tls_verify,
            mount_from: c.mount_from.clone(),
            chunk_size: c.chunk_size,
            retry_times: c.retry_times,
            jobs: c.jobs,
            attachments: c.attachments,
            attachment_types: c.attachment_types.clone(),
        };
        runtime::copy(caps, &guest_source, &target.guest, &options)
    }

    /// What a far side's registry holds (`REGISTRY`: every repository of
    /// its catalog, or `REGISTRY/REPO`), as the inventory JSON that
    /// [`Imo::pull_set`] takes as `inventory:FILE`.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let imo = imo::Imo::builder().build()?;
    /// std::fs::write("site.json", imo.inventory(&["registry.internal"])?)?;
    /// # Ok(()) }
    /// ```
    pub fn inventory(&self, targets: &[&str]) -> Result<String> {
        let named: Vec<String> = targets
            .iter()
            .map(|t| sets::prefix_registry(t).map_or(t.to_string(), |r| format!("{r}/x")))
            .collect();
        let caps = self.dest_caps(Grants::default(), &named)?;
        let targets: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
        runtime::inventory(caps, &targets, None, &self.inventory_options())
    }

    /// What a far side's layout directory holds, as [`Imo::inventory`].
    ///
    /// ```no_run
    /// # fn main() -> imo::Result<()> {
    /// let imo = imo::Imo::builder().build()?;
    /// let inventory = imo.inventory_layout("/srv/images")?;
    /// # let _ = inventory; Ok(()) }
    /// ```
    pub fn inventory_layout(&self, dir: impl AsRef<Path>) -> Result<String> {
        let mut grants = Grants::default();
        let dir = dir.as_ref().to_str().ok_or_else(|| {
            Error::InvalidArgument(format!(
                "{} is not valid UTF-8",
                dir.as_ref().to_string_lossy()
            ))
        })?;
        let layout = grants.input_dir(dir)?;
        let caps = self.caps(grants, &[], &[], None)?;
        runtime::inventory(caps, &[], Some(&layout), &self.inventory_options())
    }

    fn inventory_options(&self) -> runtime::InventoryOptions {
        runtime::InventoryOptions {
            tls_verify: self.config.dest_tls_verify,
            retry_times: self.config.retry_times,
        }
    }
}
