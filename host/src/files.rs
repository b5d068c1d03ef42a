//! Maps the paths the user names to directories granted to the component:
//! the output file's directory (read-write) and the directories of `oci:` and
//! `oci-archive:` inputs (read-only), each at its own absolute path.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// A directory granted to the guest.
pub struct Grant {
    /// The canonical directory, also the guest's path for it.
    pub dir: PathBuf,
    /// Whether the guest may create files in it.
    pub writable: bool,
}

/// The directories one command grants.
#[derive(Default)]
pub struct Grants {
    dirs: Vec<Grant>,
}

/// Where an archive goes.
pub enum Output {
    /// Standard output.
    Stdout,
    /// A file; `guest_path` is its absolute path inside a granted directory.
    File {
        /// As the user wrote it, for messages.
        given: String,
        /// The path the guest writes.
        guest_path: String,
    },
}

fn utf8(path: &Path, given: &str) -> Result<String> {
    path.to_str()
        .map(str::to_string)
        .with_context(|| format!("path {given} is not valid UTF-8"))
}

impl Grants {
    /// The granted directories.
    pub fn dirs(&self) -> &[Grant] {
        &self.dirs
    }

    fn grant(&mut self, dir: PathBuf, writable: bool) {
        match self.dirs.iter_mut().find(|g| g.dir == dir) {
            Some(g) => g.writable |= writable,
            None => self.dirs.push(Grant { dir, writable }),
        }
    }

    /// Checks `-o PATH`, grants its directory and says what the guest writes.
    pub fn output(&mut self, given: &str) -> Result<Output> {
        if given == "-" {
            return Ok(Output::Stdout);
        }
        if given.is_empty() {
            bail!("output path is empty");
        }
        let path = Path::new(given);
        let name = match path.file_name() {
            Some(n) if !given.ends_with('/') => n,
            _ => bail!("output path {given} names no file"),
        };
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let dir = std::fs::canonicalize(parent).with_context(|| {
            format!(
                "cannot write {given}: directory {} does not exist",
                parent.display()
            )
        })?;
        if !dir.is_dir() {
            bail!(
                "cannot write {given}: {} is not a directory",
                parent.display()
            );
        }
        if path.is_dir() {
            bail!("cannot write {given}: it is a directory");
        }
        let guest_path = utf8(&dir.join(name), given)?;
        self.grant(dir, true);
        Ok(Output::File {
            given: given.to_string(),
            guest_path,
        })
    }

    /// Grants read access to an existing file's directory; returns the
    /// file's absolute path.
    pub fn input_file(&mut self, given: &str) -> Result<String> {
        let file = std::fs::canonicalize(given).with_context(|| format!("cannot read {given}"))?;
        if !file.is_file() {
            bail!("cannot read {given}: not a file");
        }
        let dir = file.parent().context("a file has a parent")?.to_path_buf();
        self.grant(dir, false);
        utf8(&file, given)
    }

    /// Grants read access to an existing directory; returns its absolute path.
    pub fn input_dir(&mut self, given: &str) -> Result<String> {
        let dir = std::fs::canonicalize(given).with_context(|| format!("cannot read {given}"))?;
        if !dir.is_dir() {
            bail!("cannot read {given}: not a directory");
        }
        let abs = utf8(&dir, given)?;
        self.grant(dir, false);
        Ok(abs)
    }

    /// For an `oci:DIR[:TAG]` or `oci-archive:FILE[:TAG]` reference, grants
    /// the path and rewrites it absolute; other references pass unchanged.
    pub fn source(&mut self, reference: &str) -> Result<String> {
        for (prefix, is_dir) in [("oci-archive:", false), ("oci:", true)] {
            if let Some(rest) = reference.strip_prefix(prefix) {
                // As skopeo: the path ends at the first ':'.
                let (path, tag) = match rest.split_once(':') {
                    Some((p, t)) => (p, Some(t)),
                    None => (rest, None),
                };
                if path.is_empty() {
                    bail!("invalid reference {reference:?}: {prefix} needs a path");
                }
                let abs = if is_dir {
                    self.input_dir(path)?
                } else {
                    self.input_file(path)?
                };
                return Ok(match tag {
                    Some(t) => format!("{prefix}{abs}:{t}"),
                    None => format!("{prefix}{abs}"),
                });
            }
        }
        Ok(reference.to_string())
    }
}

impl Output {
    /// The path the guest is given.
    pub fn guest_path(&self) -> &str {
        match self {
            Output::Stdout => "-",
            Output::File { guest_path, .. } => guest_path,
        }
    }

    /// How messages name it.
    pub fn shown(&self) -> &str {
        match self {
            Output::Stdout => "standard output",
            Output::File { given, .. } => given,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_outputs() {
        let tmp = std::env::temp_dir().canonicalize().unwrap();
        let given = format!("{}/x.tar", tmp.display());
        let mut g = Grants::default();
        let o = g.output(&given).unwrap();
        assert_eq!(o.guest_path(), given);
        assert!(g.dirs()[0].writable && g.dirs()[0].dir == tmp);
        assert!(matches!(g.output("-").unwrap(), Output::Stdout));
        let err = g.output("/no/such/dir/x.tar").err().unwrap().to_string();
        assert!(
            err.contains("/no/such/dir/x.tar") && err.contains("does not exist"),
            "{err}"
        );
        assert!(g.output("dir/").is_err());
        assert!(g.output("").is_err());
    }

    #[test]
    fn grants_sources_read_only_and_merges() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().canonicalize().unwrap();
        std::fs::write(dir.join("a.tar"), b"x").unwrap();
        let mut g = Grants::default();
        let r = g
            .source(&format!("oci-archive:{}/a.tar:v1", dir.display()))
            .unwrap();
        assert_eq!(r, format!("oci-archive:{}/a.tar:v1", dir.display()));
        assert!(!g.dirs()[0].writable);
        g.output(&format!("{}/out.tar", dir.display())).unwrap();
        assert_eq!(g.dirs().len(), 1);
        assert!(g.dirs()[0].writable);
        assert_eq!(
            g.source("127.0.0.1:5000/app:v1").unwrap(),
            "127.0.0.1:5000/app:v1"
        );
        let err = g.source("oci:/no/such/layout").err().unwrap().to_string();
        assert!(err.contains("/no/such/layout"), "{err}");
    }
}
