//! imo as a plain WASI command, for stock hosts such as
//! `wasmtime run -S http --dir D::D imo-command.wasm pull BASE FINAL D/out.tar`.
//! Same code as the library component; credentials come from
//! `IMO_BASE_CREDS`, `IMO_FINAL_CREDS`, `IMO_DEST_CREDS` (`USER:PASSWORD`),
//! the platform from `IMO_PLATFORM` (default linux/amd64).

use std::process::ExitCode;

use imo_guest::attach::Filter;
use imo_guest::error::Result;
use imo_guest::platform::Platform;
use imo_guest::{copy, inspect, pull, push};

/// Blobs transferred at once, as the imo binary's default `--jobs`.
const JOBS: u32 = 4;

const USAGE: &str = "usage: imo-command pull BASE FINAL OUTPUT [--all-platforms] [--delta] | vet ARCHIVE DEST | push ARCHIVE DEST | copy SOURCE DEST [--all-platforms] | inspect ARCHIVE";

fn pull_options(all_platforms: bool, delta: bool) -> Result<pull::PullOptions> {
    let platform = std::env::var("IMO_PLATFORM").unwrap_or_else(|_| "linux/amd64".into());
    Ok(pull::PullOptions {
        platform: None,
        all_platforms,
        host_platform: Platform::parse(&platform)?,
        tls_verify: std::env::var("IMO_TLS_VERIFY").map_or(true, |v| v != "false"),
        retry_times: 3,
        jobs: JOBS,
        split: 0,
        attachments: Filter::all(),
        delta,
    })
}

fn push_options() -> push::PushOptions {
    push::PushOptions {
        tls_verify: std::env::var("IMO_TLS_VERIFY").map_or(true, |v| v != "false"),
        mount_from: Vec::new(),
        chunk_size: 32 * 1024 * 1024,
        verify: false,
        retry_times: 3,
        jobs: JOBS,
        attachments: true,
    }
}

fn run(args: &[String]) -> Result<Option<String>> {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["pull", base, final_, output, rest @ ..] => {
            let all = rest.contains(&"--all-platforms");
            let delta = rest.contains(&"--delta");
            let r = pull::pull(base, final_, output, &pull_options(all, delta)?)?;
            Ok(Some(format!(
                "wrote {output} ({} bytes): {} {}; left out {} layer(s)",
                r.archive_size, r.reference, r.digest, r.layers_left_out
            )))
        }
        ["vet", archive, dest] => {
            let r = push::vet(archive, dest, &push_options())?;
            for m in &r.missing {
                println!("missing {} {}", m.digest, m.size);
            }
            if r.missing.is_empty() {
                Ok(Some(format!(
                    "{}: all {} left-out blob(s) present",
                    r.destination, r.checked
                )))
            } else {
                Err(imo_guest::error::Error::MissingBlobs(r.missing))
            }
        }
        ["push", archive, dest] => {
            let r = push::push(archive, dest, &push_options())?;
            Ok(Some(format!(
                "pushed {} ({}): uploaded {}, skipped {}",
                r.destination, r.digest, r.uploaded, r.skipped
            )))
        }
        ["copy", source, dest, rest @ ..] => {
            let p = pull_options(rest.contains(&"--all-platforms"), false)?;
            let options = copy::TransferOptions {
                platform: p.platform,
                all_platforms: p.all_platforms,
                host_platform: p.host_platform,
                src_tls_verify: p.tls_verify,
                dest_tls_verify: p.tls_verify,
                mount_from: Vec::new(),
                chunk_size: 32 * 1024 * 1024,
                retry_times: p.retry_times,
                jobs: JOBS,
                attachments: p.attachments,
            };
            let r = copy::copy(source, dest, &options)?;
            Ok(Some(format!(
                "copied {} ({}): uploaded {}, skipped {}, mounted {}",
                r.destination, r.digest, r.uploaded, r.skipped, r.mounted
            )))
        }
        ["inspect", archive] => {
            let i = inspect::inspect(archive)?;
            println!("{} {}", i.plan.top.digest, i.plan.reference);
            for m in &i.missing {
                println!("left out {} {}", m.digest, m.size);
            }
            Ok(None)
        }
        _ => Err(imo_guest::error::Error::InvalidArgument(USAGE.to_string())),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(summary) => {
            if let Some(s) = summary {
                eprintln!("{s}");
            }
            ExitCode::SUCCESS
        }
        Err(imo_guest::error::Error::MissingBlobs(list)) => {
            let names: Vec<String> = list.iter().map(|b| b.digest.clone()).collect();
            eprintln!("imo: {} blob(s) missing: {}", list.len(), names.join(", "));
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("imo: {e}");
            ExitCode::FAILURE
        }
    }
}
