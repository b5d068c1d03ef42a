//! `imo`: the native host that runs imo's WebAssembly component with
//! wasmtime and grants it the network, files and credentials it needs.

mod credentials;
mod files;
mod platform;
mod progress;
mod report;
mod runtime;

use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand};

use credentials::Credentials;
use files::Grants;
use progress::Progress;

/// Ship only what changed: move container images into air-gapped registries.
#[derive(Parser)]
#[command(name = "imo", version, about, long_about = None)]
struct Cli {
    /// Print no progress, only errors and the final summary.
    #[arg(short, long, global = true)]
    quiet: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write an OCI archive of FINAL without the layers BASE already has.
    Pull {
        #[command(flatten)]
        images: ImageArgs,
        /// Archive to write; `-` writes it to standard output.
        #[arg(short, long, value_name = "FILE")]
        output: String,
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
        /// The archive: FILE or oci-archive:FILE[:TAG].
        archive: String,
        /// REGISTRY/REPO[:TAG].
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
        /// The archive: FILE or oci-archive:FILE[:TAG].
        archive: String,
        /// REGISTRY/REPO[:TAG]; without a tag, the archive's own.
        destination: String,
        /// Repository on the destination registry to mount missing blobs from (repeatable).
        #[arg(long, value_name = "REPO")]
        mount_from: Vec<String>,
        /// Upload blobs larger than this many bytes in chunks of this size.
        #[arg(long, value_name = "BYTES", default_value_t = 32 * 1024 * 1024)]
        chunk_size: u64,
        #[command(flatten)]
        dest: DestArgs,
    },
    /// Show what an OCI archive holds and which blobs it leaves out.
    Inspect {
        /// The archive: FILE or oci-archive:FILE[:TAG].
        archive: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// BASE, FINAL and how to read them.
#[derive(Args)]
struct ImageArgs {
    /// The image the destination already has, or `scratch` for the whole image.
    /// A registry reference (`docker://` optional), `oci:DIR[:TAG]` or
    /// `oci-archive:FILE[:TAG]`.
    base: String,
    /// The image to ship, e.g. registry.example.com/app:v2 (same forms as BASE).
    #[arg(name = "FINAL")]
    final_: String,
    /// Platform to take out of an index, OS/ARCH[/VARIANT] (default: this machine's).
    #[arg(long, value_name = "PLATFORM", conflicts_with = "all_platforms")]
    platform: Option<String>,
    /// Keep the whole index and every platform's image.
    #[arg(long)]
    all_platforms: bool,
    /// Require HTTPS for the source registries (loopback ones may always use HTTP).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    tls_verify: bool,
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
    /// Require HTTPS for the destination (loopback registries may always use HTTP).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    dest_tls_verify: bool,
    /// Credentials for the destination registry, USER:PASSWORD.
    #[arg(long, value_name = "USER:PASSWORD")]
    dest_creds: Option<String>,
}

/// Grants the archive for reading; returns the path the guest is given.
fn grant_archive(grants: &mut Grants, archive: &str) -> Result<String> {
    if archive.starts_with("oci-archive:") {
        grants.source(archive)
    } else {
        grants.input_file(archive)
    }
}

impl ImageArgs {
    /// Grants the inputs and builds what the component needs.
    fn prepare(
        &self,
        grants: &mut Grants,
    ) -> Result<(String, String, runtime::PullOptions, Credentials)> {
        let creds = Credentials::sources(self.base_creds.as_deref(), self.final_creds.as_deref())?;
        let base = if self.base == "scratch" {
            self.base.clone()
        } else {
            grants.source(&self.base)?
        };
        let final_ = grants.source(&self.final_)?;
        let options = runtime::PullOptions {
            platform: self.platform.as_deref().map(platform::parse).transpose()?,
            all_platforms: self.all_platforms,
            host_platform: platform::host(),
            tls_verify: self.tls_verify,
        };
        Ok((base, final_, options, creds))
    }
}

fn print_json(value: &serde_json::Value) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    let progress = Progress::new(cli.quiet);
    let mut grants = Grants::default();
    match cli.command {
        Command::Pull { images, output } => {
            let (base, final_, options, creds) = images.prepare(&mut grants)?;
            let output = grants.output(&output)?;
            let report =
                runtime::pull(&base, &final_, &output, &grants, &options, creds, progress)?;
            eprintln!(
                "wrote {} ({} bytes): {} manifest(s) and {} blob(s), {} of content; left out {} layer(s), {} saved; {} {}",
                output.shown(),
                report.archive_size,
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
        Command::Plan { images, json } => {
            let (base, final_, options, creds) = images.prepare(&mut grants)?;
            let report = runtime::plan(&base, &final_, &grants, &options, creds, progress)?;
            if json {
                print_json(&report::to_json(&report))
            } else {
                print!("{}", report::plan_table(&report));
                Ok(())
            }
        }
        Command::Vet {
            archive,
            destination,
            verify,
            dest,
        } => {
            let guest_archive = grant_archive(&mut grants, &archive)?;
            let options = runtime::PushOptions {
                tls_verify: dest.dest_tls_verify,
                mount_from: Vec::new(),
                chunk_size: 0,
                verify,
            };
            let creds = Credentials::destination(dest.dest_creds.as_deref())?;
            let report = runtime::vet(
                &guest_archive,
                &destination,
                &grants,
                &options,
                creds,
                progress,
            )?;
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
            dest,
        } => {
            let guest_archive = grant_archive(&mut grants, &archive)?;
            let options = runtime::PushOptions {
                tls_verify: dest.dest_tls_verify,
                mount_from,
                chunk_size,
                verify: false,
            };
            let creds = Credentials::destination(dest.dest_creds.as_deref())?;
            let report = runtime::push(
                &guest_archive,
                &destination,
                &grants,
                &options,
                creds,
                progress,
            )?;
            eprintln!(
                "pushed {} ({}): uploaded {} blob(s), {}; skipped {}, mounted {}; {} manifest(s)",
                report.destination,
                report.digest,
                report.uploaded,
                progress::bytes(report.bytes_sent),
                report.skipped,
                report.mounted,
                report.manifests,
            );
            Ok(())
        }
        Command::Inspect { archive, json } => {
            let guest_archive = grant_archive(&mut grants, &archive)?;
            let report = runtime::inspect(&guest_archive, &grants, progress)?;
            if json {
                print_json(&report::to_json(&report))
            } else {
                print!("{}", report::inspect_table(&report));
                Ok(())
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
