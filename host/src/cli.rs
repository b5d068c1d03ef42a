//! The `imo` command: clap's parse of the arguments, one library call, the
//! report as text or JSON.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Context, Result};
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::credentials::parse_flag;
use crate::library::{Builder, Imo};
use crate::progress::{self, Progress};
use crate::runtime::{self, Outcome};
use crate::{report, sets};

/// Ship only what changed: move container images into air-gapped registries.
#[derive(Parser)]
#[command(name = "imo", version, about, long_about = None)]
pub struct Cli {
    /// Print no progress, only errors and the final summary.
    #[arg(short, long, global = true)]
    quiet: bool,

    /// Print the command's report as JSON on standard output (the schema is
    /// in the README); a failure as {"error": {"kind", "message"}}.
    #[arg(long, global = true)]
    json: bool,

    /// How progress is shown on standard error: bars on a terminal and
    /// lines otherwise (auto), or one JSON object per event (json).
    #[arg(long, global = true, value_name = "MODE", default_value = "auto")]
    progress: ProgressMode,

    /// Auth file to read first (docker config.json or containers auth.json
    /// format); then REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json
    /// and ~/.docker/config.json.
    #[arg(long, global = true, value_name = "FILE")]
    authfile: Option<std::path::PathBuf>,

    /// Also trust the CA certificates (*.crt) in this directory, as skopeo's
    /// --cert-dir does.
    #[arg(long, global = true, value_name = "DIR")]
    cert_dir: Option<std::path::PathBuf>,

    /// Retries per transfer (a manifest, a blob check, download or upload),
    /// shared by all its requests, after a connection error, a 5xx, a 429 or
    /// a 408, with backoff: no request goes more than N+1 times. Broken
    /// downloads resume with Range, broken chunked uploads where the
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

/// How progress is shown.
#[derive(Clone, Copy, ValueEnum)]
enum ProgressMode {
    /// Bars on a terminal, plain lines otherwise.
    Auto,
    /// One JSON object per event.
    Json,
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
    /// Ship each changed gzip layer as a delta against BASE's layer in its
    /// place where that is under half the layer; push rebuilds the exact
    /// layer from the base layer at the destination (reads the layers).
    /// With --set, against the --base image in the image's repository, or
    /// the only base image.
    #[arg(long)]
    delta: bool,
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
    /// The destination's settings.
    fn apply(&self, b: Builder) -> Result<Builder> {
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
    fn apply(&self, b: Builder) -> Builder {
        let types: Vec<&str> = self.attachment_type.iter().map(String::as_str).collect();
        b.attachments(!self.no_attachments).attachment_types(&types)
    }
}

impl ImageArgs {
    /// The sources' settings.
    fn apply(&self, mut b: Builder) -> Result<Builder> {
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
    fn pair(&self) -> Result<(&str, &str)> {
        match (&self.base, &self.final_) {
            (Some(b), Some(f)) => Ok((b, f)),
            _ => bail!("name BASE and FINAL, or a set with --set FILE"),
        }
    }

    fn bases(&self) -> Vec<&str> {
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

/// The summary line of push and copy.
fn print_landed(verb: &str, report: &runtime::PushReport, started: std::time::Instant) {
    eprintln!(
        "{verb} {} ({}) in {}: uploaded {} blob(s), {}{}; skipped {}, mounted {}; {} manifest(s)",
        report.destination,
        report.digest,
        progress::seconds(started.elapsed()),
        report.uploaded,
        progress::bytes(report.bytes_sent),
        if report.rebuilt > 0 {
            format!(" ({} rebuilt from deltas)", report.rebuilt)
        } else {
            String::new()
        },
        report.skipped,
        report.mounted,
        report.manifests,
    );
}

/// Whether the command printed its JSON report (a failure after it prints
/// no second document).
static PRINTED_JSON: AtomicBool = AtomicBool::new(false);

fn print_json(value: &serde_json::Value) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    PRINTED_JSON.store(true, Ordering::SeqCst);
    Ok(())
}

impl Cli {
    /// The settings every command shares.
    fn builder(&self) -> Builder {
        let mut b = Imo::builder()
            .owns_process()
            .jobs(self.jobs)
            .retry_times(self.retry_times)
            .max_memory(self.max_memory.saturating_mul(1024 * 1024));
        if let Some(t) = self.timeout {
            b = b.timeout(std::time::Duration::from_secs(t));
        }
        if let Some(d) = &self.cert_dir {
            b = b.cert_dir(d);
        }
        if let Some(f) = &self.authfile {
            b = b.auth_file(f);
        }
        match self.progress {
            ProgressMode::Json => b.progress_writer(std::io::stderr()),
            ProgressMode::Auto => {
                let mut p = Progress::new(self.quiet);
                b.progress(move |e| p.report(e))
            }
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let started = std::time::Instant::now();
    let elapsed = || started.elapsed().as_secs_f64();
    let json = cli.json;
    let b = cli.builder();
    match cli.command {
        Command::Pull {
            images,
            output,
            split,
        } => {
            if json && (output == "-" || output == "oci-archive:-") {
                bail!("--json prints the report on standard output, where -o - would write the archive: name a file");
            }
            let imo = images.apply(b)?.split(split.unwrap_or(0)).build()?;
            let mut shown = output.clone();
            if let Some(part) = split {
                shown = format!("{shown} in parts of {part} bytes");
            }
            if let Some(set) = &images.set {
                let report = imo.pull_set(set, &images.bases(), &output)?;
                if json {
                    return print_json(&report::set_pull_json(&report, &output, elapsed()));
                }
                sets::print_pulled(&shown, &report, started.elapsed());
                return Ok(());
            }
            let (base, final_) = images.pair()?;
            let report = imo.pull_to(base, final_, &output)?;
            if json {
                return print_json(&report::pull_json(&report, &output, elapsed()));
            }
            if output == "-" {
                shown = "standard output".into();
            }
            if report.layers_delta > 0 {
                eprintln!(
                    "{} layer(s), {}, shipped as {} of deltas",
                    report.layers_delta,
                    progress::bytes(report.bytes_delta_layers),
                    progress::bytes(report.bytes_delta),
                );
            }
            eprintln!(
                "wrote {} ({} bytes) in {}: {} manifest(s) and {} blob(s), {} of content; left out {} layer(s), {} saved; {} {}",
                shown,
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
            Ok(())
        }
        Command::Plan { images } => {
            let imo = images.apply(b)?.build()?;
            if let Some(set) = &images.set {
                let report = imo.plan_set(set, &images.bases())?;
                if json {
                    return print_json(&sets::plan_json(&report));
                }
                print!("{}", sets::plan_table(&report));
                return Ok(());
            }
            let (base, final_) = images.pair()?;
            let report = imo.plan(base, final_)?;
            if json {
                return print_json(&report::to_json(&report));
            }
            print!("{}", report::plan_table(&report));
            Ok(())
        }
        Command::Inventory {
            targets,
            output,
            base,
            dest,
        } => {
            let imo = dest.apply(b)?.build()?;
            let inventory = match base.as_deref() {
                Some(b) => match b.strip_prefix("oci:") {
                    Some(dir) => imo.inventory_layout(dir)?,
                    None => {
                        bail!("--base takes oci:DIR, a layout the far side keeps its images in")
                    }
                },
                None => {
                    let targets: Vec<&str> = targets.iter().map(String::as_str).collect();
                    imo.inventory(&targets)?
                }
            };
            sets::write_out(&output, &inventory)?;
            if output == "-" {
                PRINTED_JSON.store(true, Ordering::SeqCst);
                return Ok(());
            }
            if json {
                return print_json(&report::inventory_json(&inventory, &output, elapsed()));
            }
            eprintln!("wrote {output} in {}", progress::seconds(started.elapsed()));
            Ok(())
        }
        Command::Vet {
            archive,
            destination,
            verify,
            dest,
        } => {
            let imo = dest.apply(b)?.verify(verify).build()?;
            let report = match imo.vet(&archive, &destination)? {
                Outcome::Single(report) => report,
                Outcome::Set(outcomes) => {
                    if json {
                        print_json(&report::set_vet_json(&outcomes))?;
                    }
                    return sets::print_vetted(&outcomes, json);
                }
            };
            if json {
                print_json(&report::vet_json(&report))?;
            } else {
                for m in &report.missing {
                    println!(
                        "missing {} {} {}",
                        m.digest,
                        progress::bytes(m.size),
                        m.platforms.join(",")
                    );
                }
            }
            if verify && !json {
                eprintln!("verified {} blob(s) in {archive}", report.verified);
            }
            if !report.missing.is_empty() {
                bail!(
                    "{} lacks {} of the {} blob(s) the archive leaves out",
                    report.destination,
                    report.missing.len(),
                    report.checked
                )
            }
            if !json {
                eprintln!(
                    "{}: all {} blob(s) the archive leaves out are there; push can proceed",
                    report.destination, report.checked
                );
            }
            Ok(())
        }
        Command::Push {
            archive,
            destination,
            mount_from,
            chunk_size,
            no_attachments,
            dest,
        } => {
            let mounts: Vec<&str> = mount_from.iter().map(String::as_str).collect();
            let imo = dest
                .apply(b)?
                .mount_from(&mounts)
                .chunk_size(chunk_size)
                .attachments(!no_attachments)
                .build()?;
            match imo.push(&archive, &destination)? {
                Outcome::Single(report) if json => {
                    print_json(&report::push_json(&report, Some(elapsed())))
                }
                Outcome::Single(report) => {
                    print_landed("pushed", &report, started);
                    Ok(())
                }
                Outcome::Set(outcomes) => {
                    if json {
                        print_json(&report::set_push_json(&outcomes, elapsed()))?;
                    }
                    sets::print_pushed(&outcomes, started.elapsed(), json)
                }
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
            let mounts: Vec<&str> = mount_from.iter().map(String::as_str).collect();
            let mut b = attach
                .apply(dest.apply(b)?)
                .all_platforms(all_platforms)
                .src_tls_verify(src_tls_verify)
                .mount_from(&mounts)
                .chunk_size(chunk_size);
            if let Some(p) = &platform {
                b = b.platform(p);
            }
            if let Some(v) = &src_creds {
                let c = parse_flag("--src-creds", v)?;
                b = b.final_auth(&c.username, &c.password);
            }
            let report = b.build()?.copy(&source, &destination)?;
            if json {
                return print_json(&report::push_json(&report, Some(elapsed())));
            }
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
            if json {
                return print_json(&serde_json::json!({
                    "output": output.display().to_string(),
                    "bytes": bytes.len(),
                }));
            }
            eprintln!("wrote {} ({} bytes)", output.display(), bytes.len());
            Ok(())
        }
        Command::Inspect { archive } => {
            let reports = b.build()?.inspect(&archive)?;
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
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "imo", &mut std::io::stdout());
            Ok(())
        }
        Command::Man => clap_mangen::Man::new(Cli::command())
            .render(&mut std::io::stdout())
            .context("writing the manual page"),
    }
}

/// Runs the `imo` command line: parses the arguments, runs the command,
/// prints its report, and says what failed in one line.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if json && !PRINTED_JSON.load(Ordering::SeqCst) {
                println!("{}", report::error_json(&e));
            }
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
