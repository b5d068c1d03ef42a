//! `imo`: the native host that runs imo's WebAssembly component with
//! wasmtime and grants it the network, files and credentials it needs.

mod cleanup;
mod credentials;
mod files;
mod hashing;
mod network;
mod platform;
mod progress;
mod report;
mod runtime;
mod sets;

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use credentials::Credentials;
use files::Grants;
use imo_grammar::reference::registry_authority;
use imo_grammar::transport::Transport;
use progress::Progress;
use runtime::{Capabilities, Role};

/// Ship only what changed: move container images into air-gapped registries.
#[derive(Parser)]
#[command(name = "imo", version, about, long_about = None)]
struct Cli {
    /// Print no progress, only errors and the final summary.
    #[arg(short, long, global = true)]
    quiet: bool,

    /// Auth file to read first (docker config.json or containers auth.json
    /// format); then REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json
    /// and ~/.docker/config.json.
    #[arg(long, global = true, value_name = "FILE")]
    authfile: Option<std::path::PathBuf>,

    /// Also trust the CA certificates (*.crt) in this directory, as skopeo's
    /// --cert-dir does.
    #[arg(long, global = true, value_name = "DIR")]
    cert_dir: Option<std::path::PathBuf>,

    /// Extra tries after a connection error, a 5xx or a 429, with backoff;
    /// broken downloads resume with Range, broken chunked uploads where the
    /// registry got to.
    #[arg(long, global = true, value_name = "N", default_value_t = 3)]
    retry_times: u32,

    /// Blobs downloaded (pull), uploaded (push) or looked up at the
    /// destination (vet, push) at once.
    #[arg(long, global = true, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    jobs: u32,

    /// Largest memory the component may use, in MiB.
    #[arg(long, global = true, value_name = "MIB", default_value_t = 512)]
    max_memory: usize,

    /// Stop the command after this many seconds.
    #[arg(long, global = true, value_name = "SECONDS")]
    timeout: Option<u64>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
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
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Which attachments travel with an image.
#[derive(Args)]
struct AttachArgs {
    /// Leave signatures, attestations, SBOMs and other referrers behind
    /// (carried by default: cosign's sha256-<hex>.sig/.att/.sbom tags and
    /// OCI referrers).
    #[arg(long)]
    no_attachments: bool,
    /// Carry only these attachments (repeatable): sig, att, sbom (cosign's
    /// tags) or an artifact type, e.g. application/spdx+json.
    #[arg(long, value_name = "TYPE", conflicts_with = "no_attachments")]
    attachment_type: Vec<String>,
}

/// BASE, FINAL and how to read them.
#[derive(Args)]
struct ImageArgs {
    /// The image the destination already has, or `scratch` for the whole image.
    /// A registry reference (`docker://` optional), `oci:DIR[:TAG]`,
    /// `oci-archive:FILE[:TAG]` or `docker-archive:FILE[:REF]`.
    #[arg(required_unless_present = "set")]
    base: Option<String>,
    /// The image to ship, e.g. registry.example.com/app:v2 (same forms as BASE).
    #[arg(name = "FINAL", required_unless_present = "set")]
    final_: Option<String>,
    /// Many images into one archive, each blob once: a set file (YAML
    /// `images: [{source, as, platforms}]`, or one source per line), instead
    /// of BASE and FINAL.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["base", "FINAL", "platform", "all_platforms"])]
    set: Option<std::path::PathBuf>,
    /// With --set: what the far side has (repeatable): an image or archive
    /// (any form BASE takes; a set archive with every image), or
    /// inventory:FILE from `imo inventory`.
    #[arg(long = "base", value_name = "BASE", requires = "set")]
    bases: Vec<String>,
    /// Platform to take out of an index, OS/ARCH[/VARIANT] (default: this machine's).
    #[arg(long, value_name = "PLATFORM", conflicts_with = "all_platforms")]
    platform: Option<String>,
    /// Keep the whole index and every platform's image.
    #[arg(long)]
    all_platforms: bool,
    #[command(flatten)]
    attach: AttachArgs,
    /// Require HTTPS with a verified certificate for BASE's and FINAL's
    /// registries (loopback ones may always fall back to HTTP).
    #[arg(long, alias = "tls-verify", value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    src_tls_verify: bool,
    /// Credentials for BASE's registry, USER:PASSWORD.
    #[arg(long, value_name = "USER:PASSWORD")]
    base_creds: Option<String>,
    /// Credentials for FINAL's registry, USER:PASSWORD.
    #[arg(long, value_name = "USER:PASSWORD")]
    final_creds: Option<String>,
}

/// How to reach the destination registry.
#[derive(Args)]
struct DestArgs {
    /// Require HTTPS with a verified certificate for the destination
    /// (loopback registries may always fall back to HTTP).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    dest_tls_verify: bool,
    /// Credentials for the destination registry, USER:PASSWORD.
    #[arg(long, value_name = "USER:PASSWORD")]
    dest_creds: Option<String>,
}

impl DestArgs {
    /// The destination's names, when its certificate is not to be checked.
    fn insecure<'a>(&self, names: &'a [String]) -> Vec<&'a str> {
        if self.dest_tls_verify {
            Vec::new()
        } else {
            refs(names)
        }
    }

    /// Credentials for the destination, and for a source (`copy`'s
    /// `--src-creds`, used in the final role).
    fn credentials(
        &self,
        auth_files: &[std::path::PathBuf],
        src_creds: Option<&str>,
    ) -> Result<Credentials> {
        Credentials::load(
            [
                (Role::Base, "--base-creds", None),
                (Role::Final, "--src-creds", src_creds),
                (
                    Role::Destination,
                    "--dest-creds",
                    self.dest_creds.as_deref(),
                ),
            ],
            auth_files,
        )
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

/// The network for a command: it may reach the registries of `references`
/// (and what they name); `insecure` lists the references whose registries
/// skip certificate checks.
fn network(
    cert_dir: Option<&std::path::Path>,
    references: &[&str],
    insecure: &[&str],
) -> Result<network::Network> {
    let mut allowed = network::AllowList::default();
    for r in references.iter().filter_map(|r| registry_of(r)) {
        allowed.allow_registry(&r);
    }
    let insecure = insecure.iter().filter_map(|r| registry_of(r)).collect();
    network::Network::new(cert_dir, insecure, allowed)
}

/// What a pull or plan reads: BASE and FINAL, or a set and its bases.
enum Inputs {
    /// BASE and FINAL, as the component gets them.
    Pair(String, String),
    /// A set's images and bases.
    Set(Vec<runtime::SetImage>, Vec<String>),
}

impl ImageArgs {
    /// The images named, as the allow-list and the TLS settings read them.
    fn named(&self) -> Vec<String> {
        self.base.iter().chain(&self.final_).cloned().collect()
    }

    /// Those of `named` whose certificates are not to be checked.
    fn insecure<'a>(&self, named: &'a [String]) -> Vec<&'a str> {
        if self.src_tls_verify {
            Vec::new()
        } else {
            refs(named)
        }
    }

    /// Grants the inputs and builds what the component needs; also returns
    /// every image reference named (for the allow-list).
    fn prepare(
        &self,
        grants: &mut Grants,
        auth_files: &[std::path::PathBuf],
        retry_times: u32,
        jobs: u32,
    ) -> Result<(Inputs, Vec<String>, runtime::PullOptions, Credentials)> {
        let creds = Credentials::load(
            [
                (Role::Base, "--base-creds", self.base_creds.as_deref()),
                (Role::Final, "--final-creds", self.final_creds.as_deref()),
                (Role::Destination, "--dest-creds", None),
            ],
            auth_files,
        )?;
        let (inputs, named) = match (&self.set, &self.base, &self.final_) {
            (Some(file), _, _) => {
                let (images, bases, named) = sets::prepare(file, &self.bases, grants)?;
                (Inputs::Set(images, bases), named)
            }
            (None, Some(base), Some(final_)) => {
                let base = if base == "scratch" {
                    base.clone()
                } else {
                    grants.source(base)?
                };
                (Inputs::Pair(base, grants.source(final_)?), self.named())
            }
            _ => bail!("name BASE and FINAL, or a set with --set FILE"),
        };
        let options = runtime::PullOptions {
            platform: self.platform.as_deref().map(platform::parse).transpose()?,
            all_platforms: self.all_platforms,
            host_platform: platform::host(),
            tls_verify: self.src_tls_verify,
            retry_times,
            jobs,
            split: 0,
            attachments: !self.attach.no_attachments,
            attachment_types: self.attach.attachment_type.clone(),
        };
        Ok((inputs, named, options, creds))
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

/// Borrowed views of `names`.
fn refs(names: &[String]) -> Vec<&str> {
    names.iter().map(String::as_str).collect()
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

/// The summary line of push and copy.
fn print_landed(verb: &str, report: &runtime::PushReport, started: std::time::Instant) {
    eprintln!(
        "{verb} {} ({}) in {}: uploaded {} blob(s), {}; skipped {}, mounted {}; {} manifest(s)",
        report.destination,
        report.digest,
        progress::seconds(started.elapsed()),
        report.uploaded,
        progress::bytes(report.bytes_sent),
        report.skipped,
        report.mounted,
        report.manifests,
    );
}

fn print_json(value: &serde_json::Value) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// What every command hands the component besides its own grants.
struct Common<'a> {
    progress: Progress,
    cert_dir: Option<&'a std::path::Path>,
    limits: runtime::Limits,
}

impl Common<'_> {
    /// The capabilities of one command: `references` name the registries it
    /// may reach, `insecure` those whose certificates are not checked.
    fn caps(
        self,
        grants: Grants,
        credentials: Credentials,
        references: &[&str],
        insecure: &[&str],
    ) -> Result<Capabilities> {
        Ok(Capabilities {
            grants,
            credentials,
            progress: self.progress,
            network: network(self.cert_dir, references, insecure)?,
            limits: self.limits,
            cleanup: cleanup::Cleanup::default(),
        })
    }
}

fn run(cli: Cli) -> Result<()> {
    let mut grants = Grants::default();
    let started = std::time::Instant::now();
    let auth_files = credentials::default_auth_files(cli.authfile.as_deref());
    let common = Common {
        progress: Progress::new(cli.quiet),
        cert_dir: cli.cert_dir.as_deref(),
        limits: runtime::Limits {
            max_memory: cli.max_memory.saturating_mul(1024 * 1024),
            timeout: cli.timeout.map(std::time::Duration::from_secs),
        },
    };
    match cli.command {
        Command::Pull {
            images,
            output,
            split,
        } => {
            let (inputs, named, mut options, creds) =
                images.prepare(&mut grants, &auth_files, cli.retry_times, cli.jobs)?;
            options.split = split.unwrap_or(0);
            let mut output = grants.target(&output, true, true)?;
            if let Some(part) = split {
                output.shown = format!("{} in parts of {part} bytes", output.shown);
            }
            let caps = common.caps(grants, creds, &refs(&named), &images.insecure(&named))?;
            match inputs {
                Inputs::Pair(base, final_) => {
                    let report = runtime::pull(caps, &base, &final_, &output.guest, &options)?;
                    eprintln!(
                        "wrote {} ({} bytes) in {}: {} manifest(s) and {} blob(s), {} of content; left out {} layer(s), {} saved; {} {}",
                        output.shown,
                        report.archive_size,
                        progress::seconds(started.elapsed()),
                        report.manifests,
                        report.blobs_written,
                        progress::bytes(report.bytes_written),
                        report.layers_left_out,
                        progress::bytes(report.bytes_left_out),
                        report.reference,
                        report.digest,
                    );
                }
                Inputs::Set(set, bases) => {
                    let report = runtime::pull_set(caps, &set, &bases, &output.guest, &options)?;
                    sets::print_pulled(&output.shown, &report, started.elapsed());
                }
            }
            Ok(())
        }
        Command::Plan { images, json } => {
            let (inputs, named, options, creds) =
                images.prepare(&mut grants, &auth_files, cli.retry_times, cli.jobs)?;
            let caps = common.caps(grants, creds, &refs(&named), &images.insecure(&named))?;
            match inputs {
                Inputs::Pair(base, final_) => {
                    let report = runtime::plan(caps, &base, &final_, &options)?;
                    if json {
                        return print_json(&report::to_json(&report));
                    }
                    print!("{}", report::plan_table(&report));
                }
                Inputs::Set(set, bases) => {
                    let report = runtime::plan_set(caps, &set, &bases, &options)?;
                    if json {
                        return print_json(&sets::plan_json(&report));
                    }
                    print!("{}", sets::plan_table(&report));
                }
            }
            Ok(())
        }
        Command::Inventory {
            targets,
            output,
            base,
            dest,
        } => {
            let layout = base.as_deref().map(|b| match b.strip_prefix("oci:") {
                Some(dir) => grants.input_dir(dir),
                None => bail!("--base takes oci:DIR, a layout the far side keeps its images in"),
            });
            let layout = layout.transpose()?;
            let creds = dest.credentials(&auth_files, None)?;
            let insecure: Vec<&str> = if dest.dest_tls_verify {
                Vec::new()
            } else {
                targets.iter().map(String::as_str).collect()
            };
            let named: Vec<String> = targets
                .iter()
                .map(|t| sets::prefix_registry(t).map_or(t.clone(), |r| format!("{r}/x")))
                .collect();
            let insecure: Vec<String> = insecure
                .iter()
                .map(|t| sets::prefix_registry(t).map_or(t.to_string(), |r| format!("{r}/x")))
                .collect();
            let caps = common.caps(grants, creds, &refs(&named), &refs(&insecure))?;
            let options = runtime::InventoryOptions {
                tls_verify: dest.dest_tls_verify,
                retry_times: cli.retry_times,
            };
            let inventory = runtime::inventory(caps, &targets, layout.as_deref(), &options)?;
            sets::write_out(&output, &inventory)?;
            if output != "-" {
                eprintln!("wrote {output} in {}", progress::seconds(started.elapsed()));
            }
            Ok(())
        }
        Command::Vet {
            archive,
            destination,
            verify,
            dest,
        } => {
            let guest_archive = grants.archive(&archive)?;
            let target = grants.target(&destination, false, false)?;
            let options = runtime::PushOptions {
                tls_verify: dest.dest_tls_verify,
                mount_from: Vec::new(),
                chunk_size: 0,
                verify,
                retry_times: cli.retry_times,
                jobs: cli.jobs,
                attachments: true,
            };
            let creds = dest.credentials(&auth_files, None)?;
            let named = destination_names(&destination);
            let insecure = dest.insecure(&named);
            let caps = common.caps(grants, creds, &refs(&named), &insecure)?;
            let report = match runtime::vet(caps, &guest_archive, &target.guest, &options)? {
                runtime::Outcome::Single(report) => report,
                runtime::Outcome::Set(outcomes) => return sets::print_vetted(&outcomes),
            };
            for m in &report.missing {
                println!(
                    "missing {} {} {}",
                    m.digest,
                    progress::bytes(m.size),
                    m.platforms.join(",")
                );
            }
            if verify {
                eprintln!("verified {} blob(s) in {archive}", report.verified);
            }
            if report.missing.is_empty() {
                eprintln!(
                    "{}: all {} blob(s) the archive leaves out are there; push can proceed",
                    report.destination, report.checked
                );
                Ok(())
            } else {
                bail!(
                    "{} lacks {} of the {} blob(s) the archive leaves out",
                    report.destination,
                    report.missing.len(),
                    report.checked
                )
            }
        }
        Command::Push {
            archive,
            destination,
            mount_from,
            chunk_size,
            no_attachments,
            dest,
        } => {
            let guest_archive = grants.archive(&archive)?;
            let target = grants.target(&destination, false, true)?;
            let options = runtime::PushOptions {
                tls_verify: dest.dest_tls_verify,
                mount_from,
                chunk_size,
                verify: false,
                retry_times: cli.retry_times,
                jobs: cli.jobs,
                attachments: !no_attachments,
            };
            let creds = dest.credentials(&auth_files, None)?;
            let named = destination_names(&destination);
            let insecure = dest.insecure(&named);
            let caps = common.caps(grants, creds, &refs(&named), &insecure)?;
            match runtime::push(caps, &guest_archive, &target.guest, &options)? {
                runtime::Outcome::Single(report) => {
                    print_landed("pushed", &report, started);
                    Ok(())
                }
                runtime::Outcome::Set(outcomes) => sets::print_pushed(&outcomes, started.elapsed()),
            }
        }
        Command::Copy {
            source,
            destination,
            platform,
            all_platforms,
            src_tls_verify,
            src_creds,
            mount_from,
            chunk_size,
            attach,
            dest,
        } => {
            let guest_source = grants.source(&source)?;
            let target = grants.target(&destination, false, true)?;
            let options = runtime::CopyOptions {
                platform: platform.as_deref().map(platform::parse).transpose()?,
                all_platforms,
                host_platform: platform::host(),
                src_tls_verify,
                dest_tls_verify: dest.dest_tls_verify,
                mount_from,
                chunk_size,
                retry_times: cli.retry_times,
                jobs: cli.jobs,
                attachments: !attach.no_attachments,
                attachment_types: attach.attachment_type,
            };
            let creds = dest.credentials(&auth_files, src_creds.as_deref())?;
            let named = [destination.clone()];
            let mut insecure = dest.insecure(&named);
            if !src_tls_verify {
                insecure.push(&source);
            }
            let caps = common.caps(grants, creds, &[&source, &destination], &insecure)?;
            let report = runtime::copy(caps, &guest_source, &target.guest, &options)?;
            print_landed("copied", &report, started);
            Ok(())
        }
        Command::Component { output, command } => {
            let bytes = if command {
                runtime::COMMAND_COMPONENT
            } else {
                runtime::COMPONENT
            };
            if output.as_os_str() == "-" {
                use std::io::Write;
                return Ok(std::io::stdout().write_all(bytes)?);
            }
            // A temporary name in the same directory, renamed when complete.
            let name = output
                .file_name()
                .context("the output path names no file")?;
            let temp = output.with_file_name(format!(".{}.imo-tmp", name.to_string_lossy()));
            std::fs::write(&temp, bytes)
                .with_context(|| format!("cannot write {}", output.display()))?;
            std::fs::rename(&temp, &output)
                .with_context(|| format!("cannot write {}", output.display()))?;
            eprintln!(
                "wrote {} ({} bytes)",
                output.display(),
                runtime::COMPONENT.len()
            );
            Ok(())
        }
        Command::Inspect { archive, json } => {
            let guest_archive = grants.archive(&archive)?;
            let caps = common.caps(grants, Credentials::default(), &[], &[])?;
            let reports = runtime::inspect(caps, &guest_archive)?;
            match (json, reports.as_slice()) {
                (true, [one]) => print_json(&report::to_json(one)),
                (true, set) => print_json(&serde_json::json!({
                    "images": set.iter().map(report::to_json).collect::<Vec<_>>()
                })),
                (false, all) => {
                    for r in all {
                        print!("{}", report::inspect_table(r));
                    }
                    Ok(())
                }
            }
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("imo: {e:#}");
            ExitCode::FAILURE
        }
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
