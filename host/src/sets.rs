//! The host's side of image sets: the set file read and granted, inventories
//! written, and the reports of set pulls, plans, pushes and vets rendered.

use std::path::Path;

use anyhow::{Context, Result};
use imo_grammar::set::{self, Platforms};
use imo_grammar::transport::Prefix;
use serde_json::{json, Value};

use crate::files::Grants;
use crate::progress::bytes;
use crate::report;
use crate::runtime::{
    Platform, SetImage, SetPlanReport, SetPullReport, SetPushOutcome, SetVetOutcome,
};

/// Largest set file read.
const MAX_SET_FILE: u64 = 16 * 1024 * 1024;

fn platform(p: &imo_grammar::platform::Platform) -> Platform {
    Platform {
        os: p.os.clone(),
        architecture: p.architecture.clone(),
        variant: p.variant.clone(),
    }
}

/// Reads the set file, grants each image's source and each base, and
/// returns what the component gets: the images and the bases, their paths
/// made absolute.
pub fn prepare(
    file: &Path,
    bases: &[String],
    grants: &mut Grants,
) -> Result<(Vec<SetImage>, Vec<String>, Vec<String>)> {
    let shown = file.display().to_string();
    let len = std::fs::metadata(file)
        .with_context(|| format!("cannot read set file {shown}"))?
        .len();
    if len > MAX_SET_FILE {
        anyhow::bail!("set file {shown} is larger than {MAX_SET_FILE} bytes");
    }
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read set file {shown}"))?;
    let parsed = set::parse(&text, &shown)?;
    let mut named = Vec::new();
    let mut images = Vec::new();
    for i in parsed {
        named.push(i.source.clone());
        let (platforms, all_platforms) = match &i.platforms {
            Platforms::Host => (Vec::new(), false),
            Platforms::All => (Vec::new(), true),
            Platforms::Only(list) => (list.iter().map(platform).collect(), false),
        };
        images.push(SetImage {
            source: grants.source(&i.source)?,
            target: i.target.to_string(),
            platforms,
            all_platforms,
        });
    }
    let mut granted = Vec::new();
    for b in bases {
        granted.push(match b.strip_prefix("inventory:") {
            Some(path) => format!("inventory:{}", grants.input_file(path)?),
            None => {
                // A path to an earlier archive needs no transport name.
                let b = match imo_grammar::transport::Transport::parse(b) {
                    Err(_) if Path::new(b).is_file() => format!("oci-archive:{b}"),
                    _ => b.clone(),
                };
                named.push(b.clone());
                grants.source(&b)?
            }
        });
    }
    Ok((images, granted, named))
}

/// The registry a set prefix names, for the host's allow-list.
pub fn prefix_registry(prefix: &str) -> Option<String> {
    match Prefix::parse(prefix).ok()? {
        Prefix::Registry { registry, .. } => Some(registry),
        Prefix::Layout { .. } => None,
    }
}

/// The summary of a set pull on stderr.
pub fn print_pulled(output: &str, r: &SetPullReport, elapsed: std::time::Duration) {
    for i in &r.images {
        eprintln!(
            "  {} <- {} ({}): {} layer(s) left out, {}",
            i.target,
            i.source,
            i.digest,
            i.layers_left_out,
            bytes(i.bytes_left_out)
        );
    }
    eprintln!(
        "wrote {output} ({} bytes) in {}: {} image(s), {} manifest(s) and {} blob(s), {} of content; left out {} layer(s), {}; {} not written twice by sharing",
        r.archive_size,
        crate::progress::seconds(elapsed),
        r.images.len(),
        r.manifests,
        r.blobs_written,
        bytes(r.bytes_written),
        r.layers_left_out,
        bytes(r.bytes_left_out),
        bytes(r.shared_bytes_saved),
    );
}

/// `plan --set` as JSON.
pub fn plan_json(r: &SetPlanReport) -> Value {
    json!({
        "images": r.images.iter().map(report::to_json).collect::<Vec<_>>(),
        "archiveBlobBytes": r.archive_blob_bytes,
        "archiveSize": r.archive_size,
        "sharedBytesSaved": r.shared_bytes_saved,
    })
}

/// `plan --set` as a table: each image, then the set.
pub fn plan_table(r: &SetPlanReport) -> String {
    let mut out = String::new();
    for i in &r.images {
        out.push_str(&format!("{}:\n", i.tag.as_deref().unwrap_or("-")));
        out.push_str(&report::plan_table(i));
        out.push('\n');
    }
    let alone: u64 = r.images.iter().map(|i| i.archive_blob_bytes).sum();
    out.push_str(&format!(
        "set: {} image(s), {} of blobs in one archive of {} bytes ({} as separate archives; {} saved by sharing)\n",
        r.images.len(),
        bytes(r.archive_blob_bytes),
        r.archive_size,
        bytes(alone),
        bytes(r.shared_bytes_saved),
    ));
    out
}

/// Each image of a set push (unless `json` printed them); the error if
/// any failed.
pub fn print_pushed(
    outcomes: &[SetPushOutcome],
    elapsed: std::time::Duration,
    json: bool,
) -> Result<()> {
    let failed = outcomes.iter().filter(|o| o.outcome.is_err()).count();
    for o in outcomes.iter().filter(|_| !json) {
        match &o.outcome {
            Ok(r) => eprintln!(
                "pushed {} ({}): uploaded {} blob(s), {}; skipped {}, mounted {}",
                r.destination,
                r.digest,
                r.uploaded,
                bytes(r.bytes_sent),
                r.skipped,
                r.mounted
            ),
            Err(e) => {
                eprintln!(
                    "failed {} <- {}: {}",
                    display(&o.destination, &o.target),
                    o.source,
                    crate::error::Error::from(e.clone())
                );
            }
        }
    }
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {} image(s) failed (in {}); rerun to finish them",
            outcomes.len(),
            crate::progress::seconds(elapsed)
        );
    }
    if json {
        return Ok(());
    }
    eprintln!(
        "pushed {} image(s) in {}",
        outcomes.len(),
        crate::progress::seconds(elapsed)
    );
    Ok(())
}

fn display<'a>(destination: &'a str, target: &'a str) -> &'a str {
    if destination.is_empty() {
        target
    } else {
        destination
    }
}

/// Each image of a set vet (unless `json` printed them); the error if any
/// lacks a blob or failed.
pub fn print_vetted(outcomes: &[SetVetOutcome], json: bool) -> Result<()> {
    let bad = outcomes
        .iter()
        .filter(|o| !matches!(&o.outcome, Ok((_, m)) if m.is_empty()))
        .count();
    for o in outcomes.iter().filter(|_| !json) {
        match &o.outcome {
            Ok((_, missing)) => {
                for m in missing {
                    println!(
                        "missing {} {} {} {}",
                        display(&o.destination, &o.target),
                        m.digest,
                        bytes(m.size),
                        m.platforms.join(",")
                    );
                }
            }
            Err(e) => {
                eprintln!(
                    "failed {}: {}",
                    display(&o.destination, &o.target),
                    crate::error::Error::from(e.clone())
                );
            }
        }
    }
    if bad > 0 {
        anyhow::bail!(
            "{bad} of {} image(s) cannot be pushed as they are",
            outcomes.len()
        );
    }
    if json {
        return Ok(());
    }
    let checked: u32 = outcomes
        .iter()
        .filter_map(|o| o.outcome.as_ref().ok().map(|(c, _)| *c))
        .sum();
    eprintln!(
        "all {} image(s) can land: every one of their {checked} left-out blob(s) is there or can be mounted",
        outcomes.len()
    );
    Ok(())
}

/// Writes `text` to `output` (temporary name, then rename), or to stdout
/// for `-`.
pub fn write_out(output: &str, text: &str) -> Result<()> {
    if output == "-" {
        println!("{text}");
        return Ok(());
    }
    let path = Path::new(output);
    let name = path
        .file_name()
        .with_context(|| format!("{output} names no file"))?;
    let temp = path.with_file_name(format!(".{}.imo-tmp", name.to_string_lossy()));
    std::fs::write(&temp, format!("{text}\n")).with_context(|| format!("cannot write {output}"))?;
    std::fs::rename(&temp, path).with_context(|| format!("cannot write {output}"))?;
    Ok(())
}
