//! Renders the component's progress events on stderr.

use std::collections::HashMap;

use crate::runtime::ProgressEvent;

/// Plain-line progress renderer.
pub struct Progress {
    quiet: bool,
    sizes: HashMap<String, u64>,
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

fn short(digest: &str) -> &str {
    let end = digest.find(':').map_or(0, |i| i + 1) + 12;
    digest.get(..end).unwrap_or(digest)
}

impl Progress {
    /// A renderer; `quiet` prints nothing.
    pub fn new(quiet: bool) -> Self {
        Progress {
            quiet,
            sizes: HashMap::new(),
        }
    }

    /// Handles one event.
    pub fn report(&mut self, event: ProgressEvent) {
        if self.quiet {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(short("sha256:0123456789abcdef"), "sha256:0123456789ab");
        assert_eq!(short("x"), "x");
    }
}
