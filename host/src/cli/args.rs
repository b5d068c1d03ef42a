//! The command line as clap reads it: flags, commands and their checks.

use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::credentials::parse_flag;
use crate::library::Builder;

/// Ship only what changed: move container images into air-gapped registries.
#[derive(Parser)]
#[command(name = "imo", version, about, long_about = None)]
pub struct Cli {
    /// Print no progress, only errors and the final summary.
    #[arg(short, long, global = true)]
    pub(super) quiet: bool,

    /// Print the command's report as JSON on standard output (the schema is
    /// in the README); a failure as {"error": {"kind", "message"}}.
    #[arg(long, global = true)]
    pub(super) json: bool,

    /// How progress is shown on standard error: bars on a terminal and
    /// lines otherwise (auto), or one JSON object per event (json).
    #[arg(long, global = true, value_name = "MODE", default_value = "auto")]
    pub(super) progress: ProgressMode,

    /// Auth file to read first (docker config.json or containers auth.json
    /// format); then REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json
    /// and ~/.docker/config.json.
    #[arg(long, global = true, value_name = "FILE")]
    pub(super) authfile: Option<std::path::PathBuf>,

    /// Also trust the CA certificates (*.crt) in this directory, as skopeo's
    /// --cert-dir does.
    #[arg(long, global = true, value_name = "DIR")]
    pub(super) cert_dir: Option<std::path::PathBuf>,

    /// Retries per transfer (a manifest, a blob check, download or upload),
    /// shared by all its requests, after a connection error, a 5xx, a 429 or
    /// a 408, with backoff: no request goes more than N+1 times. Broken
    /// downloads resume with Range, broken chunked uploads where the
    /// registry got to.
    #[arg(long, global = true, value_name = "N", default_value_t = 3)]
    pub(super) retry_times: u32,

    /// Blobs downloaded (pull), uploaded (push) or looked up at the
    /// destination (vet, push) at once.
    #[arg(long, global = true, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub(super) jobs: u32,

    /// Largest memory the component may use, in MiB (each instance: a
    /// worker puffing half a base layer has its own).
    #[arg(long, global = true, value_name = "MIB", default_value_t = 512)]
    pub(super) max_memory: usize,

    /// Stop the command after this many seconds.
    #[arg(long, global = true, value_name = "SECONDS")]
    pub(super) timeout: Option<u64>,

    #[command(subcommand)]
    pub(super) command: Command,
}

/// How progress is shown.
#[derive(Clone, Copy, ValueEnum)]
pub(super) enum ProgressMode {
    /// Bars on a terminal, plain lines otherwise.
    Auto,
    /// One JSON object per event.
    Json,
}

#[derive(Subcommand)]
pub(super) enum Command {
    /// Write an OCI archive of FINAL without the layers BASE already has.
    Pull {
        #[command(flatten)]
        images: ImageArgs,
        /// Where to write: FILE (an OCI archive; `-` for standard output),
        /// oci-archive:FILE[:TAG], oci:DIR[:TAG] (made, or added to) or
        /// docker-archive:FILE[:REF] (what `docker load` reads; whole images only).
        #[arg(short, long, value_name = "FILE")]
        output: String,
        /// Write the archive as parts of SIZE bytes (K, M, G: powers of 1024,
        /// e.g. 4G): OUT.000, OUT.001, …, and OUT.sha256 with their digests.
        /// inspect, vet and push take OUT.000 and check every part.
        #[arg(long, value_name = "SIZE", value_parser = parse_size)]
        split: Option<u64>,
    },
    /// Copy an image from any source to any destination, digest for digest:
    /// registries (`docker://` optional), oci:DIR[:TAG],
    /// oci-archive:FILE[:TAG], docker-archive:FILE[:REF].
    Copy {
        /// The image to copy.
        source: String,
        /// Where it goes; without a tag, the source's own.
        destination: String,
        /// Platform to take out of an index, OS/ARCH[/VARIANT] (default: this machine's).
        #[arg(long, value_name = "PLATFORM", conflicts_with = "all_platforms")]
        platform: Option<String>,
        /// Keep the whole index and every platform's image.
        #[arg(long)]
        all_platforms: bool,
        /// Require HTTPS with a verified certificate for the source registry.
        #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
        src_tls_verify: bool,
        /// Credentials for the source registry, USER:PASSWORD.
        #[arg(long, alias = "final-creds", value_name = "USER:PASSWORD")]
        src_creds: Option<String>,
        /// Repository on the destination registry to mount missing blobs from (repeatable).
        #[arg(long, value_name = "REPO")]
        mount_from: Vec<String>,
        /// Upload blobs larger than this many bytes in chunks of this size.
        #[arg(long, value_name = "BYTES", default_value_t = 32 * 1024 * 1024)]
        chunk_size: u64,
        #[command(flatten)]
        attach: AttachArgs,
        #[command(flatten)]
        dest: DestArgs,
    },
    /// Show what `pull` would write: each layer kept or left out, and totals.
    Plan {
        #[command(flatten)]
        images: ImageArgs,
    },
    /// Check that DESTINATION holds every blob the archive leaves out.
    Vet {
        /// The archive: FILE, oci-archive:FILE[:TAG] or oci:DIR[:TAG].
        archive: String,
        /// REGISTRY/REPO[:TAG] or oci:DIR[:TAG].
        destination: String,
        /// Also re-hash every blob inside the archive.
        #[arg(long)]
        verify: bool,
        #[command(flatten)]
        dest: DestArgs,
    },
    /// Upload the archive to DESTINATION so that its image resolves there by
    /// tag and by its original digest.
    Push {
        /// The archive: FILE, oci-archive:FILE[:TAG] or oci:DIR[:TAG].
        archive: String,
        /// REGISTRY/REPO[:TAG] or oci:DIR[:TAG]; without a tag, the archive's own.
        destination: String,
        /// Repository on the destination registry to mount missing blobs from (repeatable).
        #[arg(long, value_name = "REPO")]
        mount_from: Vec<String>,
        /// Upload blobs larger than this many bytes in chunks of this size.
        #[arg(long, value_name = "BYTES", default_value_t = 32 * 1024 * 1024)]
        chunk_size: u64,
        /// Land the archive's image without its signatures, attestations,
        /// SBOMs and other referrers.
        #[arg(long)]
        no_attachments: bool,
        #[command(flatten)]
        dest: DestArgs,
    },
    /// Write the WebAssembly component this binary runs (for other hosts).
    Component {
        /// Where to write it (`-` for standard output).
        #[arg(short, long, value_name = "FILE")]
        output: std::path::PathBuf,
        /// Write the wasi:cli command built from the same code instead, for
        /// `wasmtime run -S http --dir D::D imo-command.wasm pull …`.
        #[arg(long)]
        command: bool,
    },
    /// Record what a far side holds: every tag, manifest and blob of the
    /// named repositories (or of all, through the registry's catalog), as
    /// JSON for `pull --set --base inventory:FILE`.
    Inventory {
        /// REGISTRY (every repository its catalog lists) or REGISTRY/REPO; all
        /// on one registry.
        #[arg(required_unless_present = "base")]
        targets: Vec<String>,
        /// Where to write it (`-` for standard output).
        #[arg(short, long, value_name = "FILE", default_value = "-")]
        output: String,
        /// Instead of a registry: the layout directory the far side keeps
        /// its images in, as oci:DIR.
        #[arg(long, value_name = "oci:DIR", conflicts_with = "targets")]
        base: Option<String>,
        #[command(flatten)]
        dest: DestArgs,
    },
    /// Show what an OCI archive holds and which blobs it leaves out.
    Inspect {
        /// The archive: FILE, oci-archive:FILE[:TAG], oci:DIR[:TAG] or
        /// docker-archive:FILE[:REF].
        archive: String,
    },
    /// Print a completion script for a shell, e.g. `source <(imo completions bash)`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print imo's manual page (troff), e.g. `imo man | man -l -`.
    Man,
}

/// Which attachments travel with an image.
#[derive(Args)]
pub(super) struct AttachArgs {
    /// Leave signatures, attestations, SBOMs and other referrers behind
    /// (carried by default: cosign's sha256-<hex>.sig/.att/.sbom tags and
    /// OCI referrers).
    #[arg(long)]
    pub(super) no_attachments: bool,
    /// Carry only these attachments (repeatable): sig, att, sbom (cosign's
    /// tags) or an artifact type, e.g. application/spdx+json.
    #[arg(long, value_name = "TYPE", conflicts_with = "no_attachments")]
    pub(super) attachment_type: Vec<String>,
}

/// BASE, FINAL and how to read them.
#[derive(Args)]
pub(super) struct ImageArgs {
    /// The image the destination already has, or `scratch` for the whole image.
    /// A registry reference (`docker://` optional), `oci:DIR[:TAG]`,
    /// `oci-archive:FILE[:TAG]` or `docker-archive:FILE[:REF]`.
    #[arg(required_unless_present = "set")]
    pub(super) base: Option<String>,
    /// The image to ship, e.g. registry.example.com/app:v2 (same forms as BASE).
    #[arg(name = "FINAL", required_unless_present = "set")]
    pub(super) final_: Option<String>,
    /// Many images into one archive, each blob once: a set file (YAML
    /// `images: [{source, as, platforms}]`, or one source per line), instead
    /// of BASE and FINAL.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["base", "FINAL", "platform", "all_platforms"])]
    pub(super) set: Option<std::path::PathBuf>,
    /// With --set: what the far side has (repeatable): an image or archive
    /// (any form BASE takes; a set archive with every image), or
    /// inventory:FILE from `imo inventory`.
    #[arg(long = "base", value_name = "BASE", requires = "set")]
    pub(super) bases: Vec<String>,
    /// Platform to take out of an index, OS/ARCH[/VARIANT] (default: this machine's).
    #[arg(long, value_name = "PLATFORM", conflicts_with = "all_platforms")]
    pub(super) platform: Option<String>,
    /// Keep the whole index and every platform's image.
    #[arg(long)]
    pub(super) all_platforms: bool,
    /// Ship each changed gzip layer as a delta against BASE's layer in its
    /// place where that is under half the layer; push rebuilds the exact
    /// layer from the base layer at the destination (reads the layers).
    /// With --set, against the --base image in the image's repository, or
    /// the only base image.
    #[arg(long)]
    pub(super) delta: bool,
    #[command(flatten)]
    pub(super) attach: AttachArgs,
    /// Require HTTPS with a verified certificate for BASE's and FINAL's
    /// registries (loopback ones may always fall back to HTTP).
    #[arg(long, alias = "tls-verify", value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub(super) src_tls_verify: bool,
    /// Credentials for BASE's registry, USER:PASSWORD.
    #[arg(long, value_name = "USER:PASSWORD")]
    pub(super) base_creds: Option<String>,
    /// Credentials for FINAL's registry, USER:PASSWORD.
    #[arg(long, value_name = "USER:PASSWORD")]
    pub(super) final_creds: Option<String>,
}

/// How to reach the destination registry.
#[derive(Args)]
pub(super) struct DestArgs {
    /// Require HTTPS with a verified certificate for the destination
    /// (loopback registries may always fall back to HTTP).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub(super) dest_tls_verify: bool,
    /// Credentials for the destination registry, USER:PASSWORD.
    #[arg(long, value_name = "USER:PASSWORD")]
    pub(super) dest_creds: Option<String>,
}

impl DestArgs {
    /// The destination's settings.
    pub(super) fn apply(&self, b: Builder) -> Result<Builder> {
        let b = b.dest_tls_verify(self.dest_tls_verify);
        Ok(match &self.dest_creds {
            Some(v) => {
                let c = parse_flag("--dest-creds", v)?;
                b.dest_auth(&c.username, &c.password)
            }
            None => b,
        })
    }
}

impl AttachArgs {
    pub(super) fn apply(&self, b: Builder) -> Builder {
        let types: Vec<&str> = self.attachment_type.iter().map(String::as_str).collect();
        b.attachments(!self.no_attachments).attachment_types(&types)
    }
}

impl ImageArgs {
    /// The sources' settings.
    pub(super) fn apply(&self, mut b: Builder) -> Result<Builder> {
        if let Some(v) = &self.base_creds {
            let c = parse_flag("--base-creds", v)?;
            b = b.base_auth(&c.username, &c.password);
        }
        if let Some(v) = &self.final_creds {
            let c = parse_flag("--final-creds", v)?;
            b = b.final_auth(&c.username, &c.password);
        }
        if let Some(p) = &self.platform {
            b = b.platform(p);
        }
        Ok(self
            .attach
            .apply(b)
            .all_platforms(self.all_platforms)
            .delta(self.delta)
            .src_tls_verify(self.src_tls_verify))
    }

    /// BASE and FINAL, when no set is named.
    pub(super) fn pair(&self) -> Result<(&str, &str)> {
        match (&self.base, &self.final_) {
            (Some(b), Some(f)) => Ok((b, f)),
            _ => bail!("name BASE and FINAL, or a set with --set FILE"),
        }
    }

    pub(super) fn bases(&self) -> Vec<&str> {
        self.bases.iter().map(String::as_str).collect()
    }
}

/// A size in bytes: digits, optionally followed by K, M or G (powers of 1024).
fn parse_size(s: &str) -> Result<u64, String> {
    let (digits, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => s.split_at(i),
        None => (s, ""),
    };
    let shift = match unit.to_ascii_uppercase().trim_end_matches(['B', 'I']) {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        _ => return Err(format!("{s:?} is not a size: use bytes, or K, M, G")),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a size: use bytes, or K, M, G"))?;
    match n.checked_mul(1 << shift) {
        Some(0) | None => Err(format!("{s:?} is not a usable size")),
        Some(v) => Ok(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4G"), Ok(4 << 30));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("3MiB"), Ok(3 << 20));
        assert_eq!(parse_size("1000"), Ok(1000));
        for bad in ["", "0", "G", "4T", "x1", "99999999999999999999"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
