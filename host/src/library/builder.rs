//! The settings of an [`Imo`]: the builder and what it checks.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{CredentialFn, Imo};
use crate::credentials::{self, Credentials};
use crate::error::{Error, Result};
use crate::runtime::{
    self, BasicCredential, Credential, Limits, ProgressEvent, ProgressSink, Role,
};
use crate::{platform, progress};

/// The settings every call reads.
#[derive(Clone)]
pub(super) struct Config {
    pub(super) credentials: Credentials,
    pub(super) progress: ProgressSink,
    pub(super) platform: Option<runtime::Platform>,
    pub(super) all_platforms: bool,
    pub(super) jobs: u32,
    pub(super) retry_times: u32,
    pub(super) src_tls_verify: bool,
    pub(super) dest_tls_verify: bool,
    pub(super) cert_dir: Option<PathBuf>,
    pub(super) limits: Limits,
    pub(super) attachments: bool,
    pub(super) attachment_types: Vec<String>,
    pub(super) delta: bool,
    pub(super) mount_from: Vec<String>,
    pub(super) chunk_size: u64,
    pub(super) split: u64,
    pub(super) verify: bool,
    pub(super) owns_process: bool,
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
