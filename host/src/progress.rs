//! Renders the component's progress events on stderr: bars per blob and in
//! total on a terminal, plain lines otherwise, nothing with `--quiet`.

use std::collections::HashMap;
use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::runtime::ProgressEvent;

/// Progress renderer.
pub struct Progress {
    quiet: bool,
    sizes: HashMap<String, u64>,
    bars: Option<Bars>,
}

struct Bars {
    multi: MultiProgress,
    total: ProgressBar,
    blobs: HashMap<String, ProgressBar>,
}

impl Bars {
    fn new() -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let total = multi.add(ProgressBar::new(0));
        total.set_style(
            ProgressStyle::with_template(
                "total {bytes}/{total_bytes} {binary_bytes_per_sec} {elapsed}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Bars {
            multi,
            total,
            blobs: HashMap::new(),
        }
    }
}

/// `1.5 MiB`-style sizes.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// A duration for a summary line: `0.42 s`, `12.3 s`, `4 min 05 s`.
pub fn seconds(d: std::time::Duration) -> String {
    let s = d.as_secs_f64();
    if s < 10.0 {
        format!("{s:.2} s")
    } else if s < 60.0 {
        format!("{s:.1} s")
    } else {
        format!("{} min {:02} s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

/// One event as one line of JSON (`--progress json`): `event` names it
/// (`blob-started`, `blob-advanced`, `blob-finished`, `blob-skipped`,
/// `note`); blobs carry `digest`, and `size` and `mediaType` where known;
/// `blob-advanced` carries `bytes`, a note `message`.
pub fn json(event: &ProgressEvent) -> String {
    let blob = |name: &str, b: &crate::runtime::BlobInfo| serde_json::json!({"event": name, "digest": b.digest, "size": b.size, "mediaType": b.media_type});
    let v = match event {
        ProgressEvent::BlobStarted(b) => blob("blob-started", b),
        ProgressEvent::BlobAdvanced((d, n)) => {
            serde_json::json!({"event": "blob-advanced", "digest": d, "bytes": n})
        }
        ProgressEvent::BlobFinished(d) => {
            serde_json::json!({"event": "blob-finished", "digest": d})
        }
        ProgressEvent::BlobSkipped(b) => blob("blob-skipped", b),
        ProgressEvent::Note(n) => serde_json::json!({"event": "note", "message": n}),
    };
    v.to_string()
}

fn short(digest: &str) -> &str {
    let end = digest.find(':').map_or(0, |i| i + 1) + 12;
    digest.get(..end).unwrap_or(digest)
}

impl Progress {
    /// A renderer; `quiet` prints nothing.
    pub fn new(quiet: bool) -> Self {
        let bars = (!quiet && std::io::stderr().is_terminal()).then(Bars::new);
        Progress {
            quiet,
            sizes: HashMap::new(),
            bars,
        }
    }

    /// Handles one event.
    pub fn report(&mut self, event: ProgressEvent) {
        if self.quiet {
            return;
        }
        if let Some(bars) = &mut self.bars {
            bars.report(event);
            return;
        }
        match event {
            ProgressEvent::BlobStarted(b) => {
                self.sizes.insert(b.digest, b.size);
            }
            ProgressEvent::BlobAdvanced(_) => {}
            ProgressEvent::BlobFinished(d) => {
                let size = self.sizes.remove(&d).unwrap_or(0);
                eprintln!("copied blob {} ({})", short(&d), bytes(size));
            }
            ProgressEvent::BlobSkipped(b) => {
                eprintln!("skipped blob {} ({})", short(&b.digest), bytes(b.size));
            }
            ProgressEvent::Note(n) => eprintln!("{n}"),
        }
    }
}

impl Bars {
    fn report(&mut self, event: ProgressEvent) {
        match event {
            ProgressEvent::BlobStarted(b) => {
                let bar = self
                    .multi
                    .insert_before(&self.total, ProgressBar::new(b.size));
                bar.set_style(
                    ProgressStyle::with_template("{prefix} [{bar:30}] {bytes}/{total_bytes}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                );
                bar.set_prefix(short(&b.digest).to_string());
                self.total.inc_length(b.size);
                self.blobs.insert(b.digest, bar);
            }
            ProgressEvent::BlobAdvanced((digest, n)) => {
                if let Some(bar) = self.blobs.get(&digest) {
                    bar.inc(n);
                }
                self.total.inc(n);
            }
            ProgressEvent::BlobFinished(d) => {
                if let Some(bar) = self.blobs.remove(&d) {
                    bar.finish_and_clear();
                    let _ = self.multi.println(format!(
                        "copied blob {} ({})",
                        short(&d),
                        bytes(bar.length().unwrap_or(0))
                    ));
                }
            }
            ProgressEvent::BlobSkipped(b) => {
                let _ = self.multi.println(format!(
                    "skipped blob {} ({})",
                    short(&b.digest),
                    bytes(b.size)
                ));
            }
            ProgressEvent::Note(n) => {
                let _ = self.multi.println(n);
            }
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bars) = &self.bars {
            bars.total.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024), "3.0 MiB");
        let secs = |ms| seconds(std::time::Duration::from_millis(ms));
        assert_eq!(secs(420), "0.42 s");
        assert_eq!(secs(12_345), "12.3 s");
        assert_eq!(secs(245_000), "4 min 05 s");
        assert_eq!(short("sha256:0123456789abcdef"), "sha256:0123456789ab");
        assert_eq!(short("x"), "x");
        let line = json(&ProgressEvent::BlobAdvanced(("sha256:ab".into(), 7)));
        assert_eq!(
            line,
            r#"{"bytes":7,"digest":"sha256:ab","event":"blob-advanced"}"#
        );
    }
}
