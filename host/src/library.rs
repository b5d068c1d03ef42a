//! imo as a Rust library: the calls the `imo` command makes, with the same
//! component, sandbox and defaults. One [`Imo`] holds the settings (the Go
//! imo's options); each method runs the component once.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use imo_grammar::reference::registry_authority;
use imo_grammar::transport::Transport;

use crate::cleanup::Cleanup;
use crate::credentials::{self, Credentials};
use crate::error::{Error, Result};
use crate::files::Grants;
use crate::network::{AllowList, Network};
use crate::runtime::{
    self, BasicCredential, Capabilities, Credential, Limits, Outcome, PlanReport, ProgressEvent,
    ProgressSink, PullReport, PushReport, Role, SetPlanReport, SetPullReport, SetPushOutcome,
    SetVetOutcome, VetReport,
};
use crate::{platform, progress, sets};

/// Answers which credential to use for a registry (`host[:port]`) in a role.
pub type CredentialFn = dyn Fn(&str, Role) -> Option<Credential> + Send + Sync;

/// What `vet` found: of one image, or of each image of a set archive.
pub type Vetted = Outcome<VetReport, SetVetOutcome>;

/// What `push` did: to one image, or to each image of a set archive.
pub type Pushed = Outcome<PushReport, SetPushOutcome>;

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

#[derive(Clone)]
struct Config {
    credentials: Credentials,
    progress: ProgressSink,
    platform: Option<runtime::Platform>,
    all_platforms: bool,
    jobs: u32,
    retry_times: u32,
    src_tls_verify: bool,
    dest_tls_verify: bool,
    cert_dir: Option<PathBuf>,
    limits: Limits,
    attachments: bool,
    attachment_types: Vec<String>,
    delta: bool,
    mount_from: Vec<String>,
    chunk_size: u64,
    split: u64,
    verify: bool,
    owns_process: bool,
}

/// Settings for an [`Imo`]; every one has imo's command-line default.
///
/// ```no_run
/// # fn main() -> imo::Result<()> {
/// let imo = imo::Imo::builder()
///     .final_auth("robot", "s3cret")
///     .dest_auth("admin", "hunter2")
///     .platform("linux/arm64")
///     .retry_times(5)
///     .progress(|event| eprintln!("{event:?}"))
///     .build()?;
/// # let _ = imo; Ok(()) }
/// ```
pub struct Builder {
    auth: Vec<(Role, BasicCredential)>,
    callback: Option<Arc<CredentialFn>>,
    auth_files: Vec<PathBuf>,
    default_auth_files: bool,
    platform: Option<String>,
    config: Config,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            auth: Vec::new(),
            callback: None,
            auth_files: Vec::new(),
            default_auth_files: true,
            platform: None,
            config: Config {
                credentials: Credentials::default(),
                progress: Arc::new(Mutex::new(|_: ProgressEvent| {})),
                platform: None,
                all_platforms: false,
                jobs: 4,
                retry_times: 3,
                src_tls_verify: true,
                dest_tls_verify: true,
                cert_dir: None,
                limits: Limits {
                    max_memory: 512 * 1024 * 1024,
                    timeout: None,
                },
                attachments: true,
                attachment_types: Vec::new(),
                delta: false,
                mount_from: Vec::new(),
                chunk_size: 32 * 1024 * 1024,
                split: 0,
                verify: false,
                owns_process: false,
            },
        }
    }
}

fn basic(user: &str, password: &str) -> BasicCredential {
    BasicCredential {
        username: user.to_string(),
        password: password.to_string(),
    }
}

impl Builder {
    /// Credentials for BASE's registry (the Go imo's `WithBaseAuth`).
    pub fn base_auth(mut self, user: &str, password: &str) -> Self {
        self.auth.push((Role::Base, basic(user, password)));
        self
    }

    /// Credentials for FINAL's registry, and for `copy`'s source
    /// (`WithFinalAuth`).
    pub fn final_auth(mut self, user: &str, password: &str) -> Self {
        self.auth.push((Role::Final, basic(user, password)));
        self
    }

    /// Credentials for the destination registry of `vet`, `push`, `copy`
    /// and `inventory` (`WithPushAuth`).
    pub fn dest_auth(mut self, user: &str, password: &str) -> Self {
        self.auth.push((Role::Destination, basic(user, password)));
        self
    }

    /// Asked for a registry's credential when no `*_auth` names one for the
    /// role; `None` goes on to the auth files.
    pub fn credentials(
        mut self,
        f: impl Fn(&str, Role) -> Option<Credential> + Send + Sync + 'static,
    ) -> Self {
        self.callback = Some(Arc::new(f));
        self
    }

    /// An auth file (docker `config.json` or containers `auth.json`) read
    /// before the usual ones; repeatable.
    pub fn auth_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.auth_files.push(path.into());
        self
    }

    /// Whether to read the usual auth files too (`REGISTRY_AUTH_FILE`,
    /// `$XDG_RUNTIME_DIR/containers/auth.json`, `~/.docker/config.json`);
    /// on by default.
    pub fn default_auth_files(mut self, on: bool) -> Self {
        self.default_auth_files = on;
        self
    }

    /// Called with every progress event (`WithReporterWriter`'s events).
    pub fn progress(mut self, f: impl FnMut(ProgressEvent) + Send + 'static) -> Self {
        self.config.progress = Arc::new(Mutex::new(f));
        self
    }

    /// Writes every progress event to `w` as one JSON object per line
    /// (the format of `imo --progress json`).
    pub fn progress_writer(self, mut w: impl std::io::Write + Send + 'static) -> Self {
        self.progress(move |e| {
            let _ = writeln!(w, "{}", progress::json(&e));
        })
    }

    /// The platform to take out of an index, `OS/ARCH[/VARIANT]`; the
    /// machine's own by default.
    pub fn platform(mut self, platform: &str) -> Self {
        self.platform = Some(platform.to_string());
        self
    }

    /// Keep the whole index and every platform's image
    /// (`WithAllArchitectures`).
    pub fn all_platforms(mut self, on: bool) -> Self {
        self.config.all_platforms = on;
        self
    }

    /// Pull: ship each changed gzip layer as a delta against the base's
    /// layer in its place, where that is under half the layer (`--delta`);
    /// push rebuilds the exact layer at the destination.
    pub fn delta(mut self, on: bool) -> Self {
        self.config.delta = on;
        self
    }

    /// Blobs moved or looked up at once (1 to 64; default 4).
    pub fn jobs(mut self, n: u32) -> Self {
        self.config.jobs = n.clamp(1, 64);
        self
    }

    /// Retries per transfer, shared by all its requests, after a connection
    /// error, a 5xx, a 429 or a 408 (default 3): no request goes more than
    /// N+1 times.
    pub fn retry_times(mut self, n: u32) -> Self {
        self.config.retry_times = n;
        self
    }

    /// Require verified HTTPS of BASE's, FINAL's and `copy`'s source
    /// registries (default true; loopback ones may fall back to HTTP).
    pub fn src_tls_verify(mut self, on: bool) -> Self {
        self.config.src_tls_verify = on;
        self
    }

    /// Require verified HTTPS of the destination registry (default true).
    pub fn dest_tls_verify(mut self, on: bool) -> Self {
        self.config.dest_tls_verify = on;
        self
    }

    /// Also trust the CA certificates (`*.crt`) in `dir`, and present the
    /// client certificate there (`NAME.cert` + `NAME.key`).
    pub fn cert_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.cert_dir = Some(dir.into());
        self
    }

    /// Largest memory the component may use, in bytes (default 512 MiB).
    pub fn max_memory(mut self, bytes: usize) -> Self {
        self.config.limits.max_memory = bytes;
        self
    }

    /// Stop each call after this long.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.config.limits.timeout = Some(t);
        self
    }

    /// Carry signatures, attestations, SBOMs and referrers (default true).
    pub fn attachments(mut self, on: bool) -> Self {
        self.config.attachments = on;
        self
    }

    /// Carry only these attachments: `sig`, `att`, `sbom` or artifact types.
    pub fn attachment_types(mut self, types: &[&str]) -> Self {
        self.config.attachment_types = types.iter().map(|t| t.to_string()).collect();
        self
    }

    /// Repositories on the destination registry to mount missing blobs from.
    pub fn mount_from(mut self, repos: &[&str]) -> Self {
        self.config.mount_from = repos.iter().map(|r| r.to_string()).collect();
        self
    }

    /// Upload blobs larger than this in chunks of this size (default 32 MiB).
    pub fn chunk_size(mut self, bytes: u64) -> Self {
        self.config.chunk_size = bytes;
        self
    }

    /// Write archives as parts of this many bytes (`OUT.000`, …, and
    /// `OUT.sha256`); 0, the default, writes one file.
    pub fn split(mut self, bytes: u64) -> Self {
        self.config.split = bytes;
        self
    }

    /// `vet` also re-hashes every blob inside the archive.
    pub fn verify(mut self, on: bool) -> Self {
        self.config.verify = on;
        self
    }

    /// The command line's process: signals remove what a call was writing
    /// and end the process, as does the timeout.
    pub(crate) fn owns_process(mut self) -> Self {
        self.config.owns_process = true;
        self
    }

    /// Checks the settings and reads the auth files.
    pub fn build(mut self) -> Result<Imo> {
        let mut files = self.auth_files;
        if self.default_auth_files {
            files.extend(credentials::default_auth_files(None));
        }
        let mut creds = Credentials::load(
            [
                (Role::Base, "", None),
                (Role::Final, "", None),
                (Role::Destination, "", None),
            ],
            &files,
        )?;
        for (role, c) in self.auth {
            creds.set(role, c);
        }
        if let Some(f) = self.callback {
            creds.set_callback(f);
        }
        self.config.credentials = creds;
        if let Some(p) = &self.platform {
            self.config.platform =
                Some(platform::parse(p).map_err(|e| Error::InvalidArgument(format!("{e:#}")))?);
        }
        Ok(Imo {
            config: Arc::new(self.config),
        })
    }
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

/// The archive of a streaming [`Imo::pull`], read as the component writes it.
///
/// A read that reaches the end returns the pull's error, if it failed, as
/// an `std::io::Error` wrapping [`Error`]; [`PullReader::finish`] gives the
/// report.
pub struct PullReader {
    pipe: Option<std::io::PipeReader>,
    worker: Option<std::thread::JoinHandle<Result<PullReport>>>,
    outcome: Option<Result<PullReport>>,
}

impl PullReader {
    fn join(&mut self) -> &Result<PullReport> {
        if let Some(w) = self.worker.take() {
            let r = w
                .join()
                .unwrap_or_else(|_| Err(Error::Stopped("the pull's thread panicked".into())));
            self.outcome = Some(r);
        }
        self.outcome
            .get_or_insert_with(|| Err(Error::Stopped("the pull ended".into())))
    }

    /// What the pull wrote. Call it after reading to the end: an archive
    /// not read through is cut off, and the pull fails.
    pub fn finish(mut self) -> Result<PullReport> {
        self.pipe = None;
        self.join().clone()
    }
}

impl Read for PullReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some(pipe) = self.pipe.as_mut() else {
            return Ok(0);
        };
        let n = pipe.read(buf)?;
        if n == 0 && !buf.is_empty() {
            if let Err(e) = self.join() {
                return Err(std::io::Error::other(e.clone()));
            }
        }
        Ok(n)
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

/// The pipe's write end as the file the component's standard output is.
fn pipe_file(writer: std::io::PipeWriter) -> std::fs::File {
    #[cfg(unix)]
    {
        std::fs::File::from(std::os::fd::OwnedFd::from(writer))
    }
    #[cfg(windows)]
    {
        std::fs::File::from(std::os::windows::io::OwnedHandle::from(writer))
    }
}
