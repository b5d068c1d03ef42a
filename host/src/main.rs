//! `imo`: the native host that runs imo's WebAssembly component with
//! wasmtime and grants it the network, files and credentials it needs.

mod credentials;
mod files;
mod platform;
mod progress;
mod report;
mod runtime;

use std::process::ExitCode;

use anyhow::Result;
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

impl ImageArgs {
    /// Grants the inputs and builds what the component needs.
    fn prepare(
        &self,
        grants: &mut Grants,
    ) -> Result<(String, String, runtime::PullOptions, Credentials)> {
        let creds =
            Credentials::from_flags(self.base_creds.as_deref(), self.final_creds.as_deref())?;
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
        Command::Inspect { archive, json } => {
            let guest_archive = if archive.starts_with("oci-archive:") {
                grants.source(&archive)?
            } else {
                grants.input_file(&archive)?
            };
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
