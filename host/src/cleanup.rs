//! The files the component is writing under temporary names: the component
//! tells the host of each (the `cleanup` import), and the host removes the
//! ones left whatever stops the component — an error, a trap (memory cap,
//! panic), the `--timeout`, SIGINT, SIGTERM or SIGHUP. Leftovers of runs
//! that died harder (`kill -9`, power loss) carry their process id in their
//! name, and the next run writing there removes them once that process is
//! gone.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The temporary files of this run.
#[derive(Clone, Default)]
pub struct Cleanup {
    files: Arc<Mutex<HashSet<PathBuf>>>,
}

impl Cleanup {
    /// `path` is being written.
    pub fn begun(&self, path: &str) {
        if let Ok(mut f) = self.files.lock() {
            f.insert(PathBuf::from(path));
        }
    }

    /// `path` is in place or gone.
    pub fn ended(&self, path: &str) {
        if let Ok(mut f) = self.files.lock() {
            f.remove(Path::new(path));
        }
    }

    /// Removes every file still being written.
    pub fn remove_all(&self) {
        let files: Vec<PathBuf> = match self.files.lock() {
            Ok(mut f) => f.drain().collect(),
            Err(_) => return,
        };
        for f in files {
            let _ = std::fs::remove_file(f);
        }
    }

    /// On SIGINT, SIGTERM or SIGHUP: removes them, then exits (130).
    pub fn on_signals(&self) {
        let this = self.clone();
        // Only one handler per process; a second command in it keeps the first.
        let _ = ctrlc::set_handler(move || {
            this.remove_all();
            eprintln!("imo: stopped by a signal");
            std::process::exit(130);
        });
    }
}

/// The process id in a temporary name `.NAME.imo-PID-HEX.tmp`.
fn owner_of(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (_, tail) = rest.rsplit_once(".imo-")?;
    let (pid, hex) = tail.split_once('-')?;
    (hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(())?;
    pid.parse().ok()
}

/// Whether process `pid` still runs (where `/proc` tells; else assumed).
fn alive(pid: u32) -> bool {
    let proc_fs = Path::new("/proc");
    !proc_fs.join("self").exists() || proc_fs.join(pid.to_string()).exists()
}

fn remove_stale_in(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(owner_of) else {
            continue;
        };
        if pid != 0 && !alive(pid) && e.file_type().is_ok_and(|t| t.is_file()) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Removes the temporary files of dead runs in `dir`, in its layout's
/// `blobs/*/`, and in those of the layouts directly below it.
pub fn remove_stale(dir: &Path) {
    let layouts = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .chain([dir.to_path_buf()]);
    for layout in layouts {
        for alg in ["sha256", "sha512"] {
            remove_stale_in(&layout.join("blobs").join(alg));
        }
    }
    remove_stale_in(dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_owners() {
        assert_eq!(
            owner_of(".app.tar.imo-1234-0123456789abcdef.tmp"),
            Some(1234)
        );
        assert_eq!(owner_of(".a.imo-b.imo-7-0123456789abcdef.tmp"), Some(7));
        assert_eq!(owner_of(".app.tar.imo-0123456789abcdef.tmp"), None);
        assert_eq!(owner_of("app.tar"), None);
        assert!(alive(std::process::id()));
    }

    #[test]
    fn only_dead_runs_leftovers_go() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = dir.path().join("layout/blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        let dead = {
            let mut child = std::process::Command::new("true").spawn().unwrap();
            let pid = child.id();
            child.wait().unwrap();
            pid
        };
        let mine = std::process::id();
        let files = [
            (
                dir.path()
                    .join(format!(".a.tar.imo-{dead}-0123456789abcdef.tmp")),
                false,
            ),
            (
                blobs.join(format!(".abc.imo-{dead}-0123456789abcdef.tmp")),
                false,
            ),
            (
                dir.path()
                    .join(format!(".b.tar.imo-{mine}-0123456789abcdef.tmp")),
                true,
            ),
            (dir.path().join(".c.tar.imo-0-0123456789abcdef.tmp"), true),
            (dir.path().join("keep.tar"), true),
        ];
        for (f, _) in &files {
            std::fs::write(f, b"x").unwrap();
        }
        remove_stale(dir.path());
        for (f, kept) in &files {
            assert_eq!(f.exists(), *kept, "{}", f.display());
        }
    }
}
