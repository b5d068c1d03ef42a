//! `imo`: the native host that runs imo's WebAssembly component with
//! wasmtime and grants it the network, files and credentials it needs.

mod credentials;
mod files;
mod platform;
mod progress;
mod runtime;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use credentials::Credentials;
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
    Pull(PullArgs),
}

#[derive(Args)]
struct PullArgs {
    /// The image the destination already has, or `scratch` for the whole image.
    base: String,
    /// The image to ship, e.g. registry.example.com/app:v2.
    #[arg(name = "FINAL")]
    final_: String,
    /// Archive to write; `-` writes it to standard output.
    #[arg(short, long, value_name = "FILE")]
    output: String,
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

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Pull(args) => {
            let creds =
                Credentials::from_flags(args.base_creds.as_deref(), args.final_creds.as_deref())?;
            let output = files::Output::resolve(&args.output)?;
            let platform = args.platform.as_deref().map(platform::parse).transpose()?;
            let options = runtime::PullOptions {
                platform,
                all_platforms: args.all_platforms,
                host_platform: platform::host(),
                tls_verify: args.tls_verify,
            };
            let progress = Progress::new(cli.quiet);
            let report =
                runtime::pull(&args.base, &args.final_, &output, &options, creds, progress)?;
            eprintln!(
                "wrote {}: {} manifest(s), {} blob(s) ({}); left out {} layer(s) ({}); {} {}",
                output.shown(),
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
