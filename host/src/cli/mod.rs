//! The `imo` command: clap's parse of the arguments, one library call, the
//! report as text or JSON.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Context, Result};
use clap::{CommandFactory, Parser};

use crate::credentials::parse_flag;
use crate::library::{Builder, Imo};
use crate::progress::{self, Progress};
use crate::runtime::{self, Outcome};
use crate::{report, sets};

mod args;

use args::{Cli, Command, ProgressMode};

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
