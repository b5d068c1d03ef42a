//! Renders plan and inspect reports as a table or JSON.

use serde_json::{json, Value};

use crate::error::Error;
use crate::progress::bytes;
use crate::runtime::{
    BlobAction, BlobInfo, MissingBlob, PlanReport, Platform, PullReport, PushReport, SetPullReport,
    SetPushOutcome, SetVetOutcome, VetReport,
};

fn platform(p: &Option<Platform>) -> String {
    match p {
        Some(p) => match &p.variant {
            Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
            None => format!("{}/{}", p.os, p.architecture),
        },
        None => "-".into(),
    }
}

fn action(a: BlobAction) -> &'static str {
    match a {
        BlobAction::Include => "include",
        BlobAction::LeftOut => "left-out",
        BlobAction::Foreign => "foreign",
        BlobAction::Delta => "delta",
    }
}

fn blob_list(list: &[BlobInfo]) -> Value {
    list.iter()
        .map(|b| json!({"digest": b.digest, "size": b.size, "mediaType": b.media_type}))
        .collect()
}

/// The report as JSON (stable field names, sizes in bytes).
pub fn to_json(r: &PlanReport) -> Value {
    let images: Vec<Value> = r
        .images
        .iter()
        .map(|i| {
            json!({
                "platform": i.platform.as_ref().map(|_| platform(&i.platform)),
                "manifest": {"digest": i.manifest_digest, "size": i.manifest_size},
                "blobs": i.blobs.iter().map(|b| json!({
                    "digest": b.digest,
                    "size": b.size,
                    "mediaType": b.media_type,
                    "kind": if b.is_layer { "layer" } else { "config" },
                    "action": action(b.action),
                    "delta": b.delta.as_ref().map(|d| json!({"base": d.base, "size": d.size})),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "reference": r.reference,
        "base": r.base,
        "tag": r.tag,
        "digest": r.digest,
        "mediaType": r.media_type,
        "images": images,
        "archiveBlobBytes": r.archive_blob_bytes,
        "archiveSize": r.archive_size,
        "fullBytes": r.full_bytes,
        "leftOutBytes": r.left_out_bytes,
        "layers": r.layers,
        "layersLeftOut": r.layers_left_out,
        "layersDelta": r.layers_delta,
        "deltaBytes": r.delta_bytes,
        "present": blob_list(&r.present),
        "missing": blob_list(&r.missing),
        "attachments": r.attachments.iter().map(|a| json!({
            "digest": a.digest,
            "size": a.size,
            "mediaType": a.media_type,
            "kind": a.kind,
            "subject": a.subject,
            "tag": a.tag,
            "bytes": a.bytes,
            "complete": a.complete,
        })).collect::<Vec<_>>(),
    })
}

/// The attachments of a report, a line each.
fn attachment_lines(r: &PlanReport) -> String {
    let mut out = String::new();
    for a in &r.attachments {
        out.push_str(&format!(
            "attachment {:<24} {} of {} ({}, {}{})\n",
            a.kind,
            a.digest,
            a.subject,
            a.tag.as_deref().unwrap_or("referrer"),
            bytes(a.bytes),
            if a.complete { "" } else { ", blobs left out" },
        ));
    }
    out
}

/// A digest shortened for a table: algorithm and 12 hex digits.
fn short(digest: &str) -> &str {
    let end = digest.find(':').map_or(0, |i| i + 13).min(digest.len());
    &digest[..end]
}

fn table(r: &PlanReport, left_out_label: &str) -> String {
    let mut out = format!(
        "{:<16} {:<7} {:<71} {:>10}  {}\n",
        "PLATFORM", "KIND", "DIGEST", "SIZE", "ACTION"
    );
    for i in &r.images {
        for b in &i.blobs {
            let act = match (&b.action, &b.delta) {
                (BlobAction::Delta, Some(d)) => {
                    format!("delta ({}, against {})", bytes(d.size), short(&d.base))
                }
                (BlobAction::Delta, None) => "delta".into(),
                (BlobAction::Include, _) => "include".into(),
                (BlobAction::LeftOut, _) => left_out_label.into(),
                (BlobAction::Foreign, _) => "foreign (never copied)".into(),
            };
            out.push_str(&format!(
                "{:<16} {:<7} {:<71} {:>10}  {act}\n",
                platform(&i.platform),
                if b.is_layer { "layer" } else { "config" },
                b.digest,
                bytes(b.size),
            ));
        }
    }
    out
}

/// `imo plan` as a table.
pub fn plan_table(r: &PlanReport) -> String {
    let mut out = format!(
        "{} -> {} ({})\n",
        r.base.as_deref().unwrap_or("scratch"),
        r.reference,
        r.digest
    );
    out.push_str(&table(r, "left out (base has it)"));
    let pct = if r.full_bytes == 0 {
        100.0
    } else {
        r.archive_blob_bytes as f64 * 100.0 / r.full_bytes as f64
    };
    out.push_str(&format!(
        "archive: {} of blobs ({:.1}% of the image's {}), file {} bytes; {} of {} layer(s) left out ({})\n",
        bytes(r.archive_blob_bytes),
        pct,
        bytes(r.full_bytes),
        r.archive_size,
        r.layers_left_out,
        r.layers,
        bytes(r.left_out_bytes),
    ));
    if r.layers_delta > 0 {
        out.push_str(&format!(
            "{} layer(s) as deltas: {} of delta data\n",
            r.layers_delta,
            bytes(r.delta_bytes)
        ));
    }
    out.push_str(&attachment_lines(r));
    out
}

/// `imo inspect` as a table.
pub fn inspect_table(r: &PlanReport) -> String {
    let mut out = format!(
        "{}\nreference: {}\ndigest: {} ({})\n",
        r.reference,
        r.tag.as_deref().unwrap_or("-"),
        r.digest,
        r.media_type
    );
    out.push_str(&table(r, "left out (needed at the destination)"));
    let present: u64 = r.present.iter().map(|b| b.size).sum();
    let missing: u64 = r.missing.iter().map(|b| b.size).sum();
    out.push_str(&format!(
        "present: {} blob(s), {}; left out: {} blob(s), {}\n",
        r.present.len(),
        bytes(present),
        r.missing.len(),
        bytes(missing)
    ));
    for m in &r.missing {
        out.push_str(&format!("  needs {} ({})\n", m.digest, bytes(m.size)));
    }
    out.push_str(&attachment_lines(r));
    out
}

/// A failure as JSON: `{"error": {"kind", "message"}}`.
pub fn error_json(e: &anyhow::Error) -> Value {
    let kind = e.downcast_ref::<Error>().map_or("host", Error::kind);
    let missing = match e.downcast_ref::<Error>() {
        Some(Error::MissingBlobs(list)) => Some(missing_list(list)),
        _ => None,
    };
    let mut inner = json!({"kind": kind, "message": format!("{e:#}")});
    if let Some(m) = missing {
        inner["missing"] = m;
    }
    json!({ "error": inner })
}

fn missing_list(list: &[MissingBlob]) -> Value {
    list.iter()
        .map(|m| json!({"digest": m.digest, "size": m.size, "mediaType": m.media_type, "platforms": m.platforms}))
        .collect()
}

/// `imo pull` as JSON.
pub fn pull_json(r: &PullReport, output: &str, seconds: f64) -> Value {
    json!({
        "output": output,
        "reference": r.reference,
        "digest": r.digest,
        "archiveSize": r.archive_size,
        "manifests": r.manifests,
        "blobsWritten": r.blobs_written,
        "bytesWritten": r.bytes_written,
        "layersLeftOut": r.layers_left_out,
        "bytesLeftOut": r.bytes_left_out,
        "layersDelta": r.layers_delta,
        "bytesDeltaLayers": r.bytes_delta_layers,
        "bytesDelta": r.bytes_delta,
        "seconds": seconds,
    })
}

/// `imo pull --set` as JSON.
pub fn set_pull_json(r: &SetPullReport, output: &str, seconds: f64) -> Value {
    json!({
        "output": output,
        "images": r.images.iter().map(|i| json!({
            "source": i.source,
            "target": i.target,
            "digest": i.digest,
            "layersLeftOut": i.layers_left_out,
            "bytesLeftOut": i.bytes_left_out,
            "bytes": i.bytes,
        })).collect::<Vec<_>>(),
        "archiveSize": r.archive_size,
        "manifests": r.manifests,
        "blobsWritten": r.blobs_written,
        "bytesWritten": r.bytes_written,
        "layersLeftOut": r.layers_left_out,
        "bytesLeftOut": r.bytes_left_out,
        "sharedBytesSaved": r.shared_bytes_saved,
        "seconds": seconds,
    })
}

/// `imo push` and `imo copy` as JSON.
pub fn push_json(r: &PushReport, seconds: Option<f64>) -> Value {
    let mut v = json!({
        "destination": r.destination,
        "digest": r.digest,
        "uploaded": r.uploaded,
        "bytesSent": r.bytes_sent,
        "skipped": r.skipped,
        "mounted": r.mounted,
        "manifests": r.manifests,
        "rebuilt": r.rebuilt,
    });
    if let Some(s) = seconds {
        v["seconds"] = json!(s);
    }
    v
}

/// `imo push` of a set archive as JSON; `ok` says whether every image landed.
pub fn set_push_json(outcomes: &[SetPushOutcome], seconds: f64) -> Value {
    let images: Vec<Value> = outcomes
        .iter()
        .map(|o| {
            let mut v = json!({"source": o.source, "target": o.target, "digest": o.digest});
            match &o.outcome {
                Ok(r) => v["pushed"] = push_json(r, None),
                Err(e) => v["error"] = error_fields(e),
            }
            v
        })
        .collect();
    json!({
        "ok": outcomes.iter().all(|o| o.outcome.is_ok()),
        "images": images,
        "seconds": seconds,
    })
}

fn error_fields(e: &crate::runtime::GuestError) -> Value {
    let e = Error::from(e.clone());
    json!({"kind": e.kind(), "message": e.to_string()})
}

/// `imo vet` as JSON; `ok` says whether push can proceed.
pub fn vet_json(r: &VetReport) -> Value {
    json!({
        "ok": r.missing.is_empty(),
        "destination": r.destination,
        "checked": r.checked,
        "missing": missing_list(&r.missing),
        "verified": r.verified,
    })
}

/// `imo vet` of a set archive as JSON.
pub fn set_vet_json(outcomes: &[SetVetOutcome]) -> Value {
    let images: Vec<Value> = outcomes
        .iter()
        .map(|o| {
            let mut v = json!({
                "source": o.source,
                "target": o.target,
                "destination": o.destination,
                "digest": o.digest,
            });
            match &o.outcome {
                Ok((checked, missing)) => {
                    v["checked"] = json!(checked);
                    v["missing"] = missing_list(missing);
                }
                Err(e) => v["error"] = error_fields(e),
            }
            v
        })
        .collect();
    let ok = outcomes
        .iter()
        .all(|o| matches!(&o.outcome, Ok((_, m)) if m.is_empty()));
    json!({ "ok": ok, "images": images })
}

/// `imo inventory -o FILE` as JSON: where it went and what it counts.
pub fn inventory_json(inventory: &str, output: &str, seconds: f64) -> Value {
    let parsed: Value = serde_json::from_str(inventory).unwrap_or(Value::Null);
    let repos = parsed["repositories"].as_object();
    let count = |key: &str| -> usize {
        repos.map_or(0, |r| {
            r.values()
                .map(|v| v[key].as_array().map_or(0, Vec::len))
                .sum()
        })
    };
    let tags: usize = repos.map_or(0, |r| {
        r.values()
            .map(|v| v["tags"].as_object().map_or(0, |t| t.len()))
            .sum()
    });
    json!({
        "output": output,
        "registry": parsed["registry"],
        "layout": parsed["layout"],
        "repositories": repos.map_or(0, |r| r.len()),
        "tags": tags,
        "manifests": count("manifests"),
        "blobs": count("blobs"),
        "seconds": seconds,
    })
}
