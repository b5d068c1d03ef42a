//! Maps the paths the user names to directories granted to the component,
//! each at its own absolute path: an output file's directory and an output
//! `oci:` layout (read-write; its parent, when the layout is yet to be
//! made), and the files and directories of inputs (read-only). Transport
//! names are read with the guest's own grammar.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use imo_grammar::transport::{Transport, FILE_TRANSPORTS};

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

    /// Checks an output file, grants its directory and returns the path the
    /// guest writes (`-`, standard output, stays `-`).
    pub fn output(&mut self, given: &str) -> Result<String> {
        if given == "-" {
            return Ok(given.to_string());
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
        Ok(guest_path)
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

    /// For a file transport (`oci:`, `oci-archive:`, `docker-archive:`),
    /// grants the path for reading and rewrites it absolute; registry
    /// references pass unchanged.
    pub fn source(&mut self, reference: &str) -> Result<String> {
        self.input(reference, Transport::parse(reference)?)
    }

    /// An archive argument: a plain path is an OCI archive, else as
    /// [`Grants::source`].
    pub fn archive(&mut self, given: &str) -> Result<String> {
        self.input(given, Transport::parse_file(given)?)
    }

    fn input(&mut self, given: &str, t: Transport) -> Result<String> {
        let abs = match &t {
            Transport::Registry(_) => return Ok(given.to_string()),
            Transport::Layout { path, .. } => self.input_dir(path)?,
            Transport::Archive { path, .. } | Transport::DockerArchive { path, .. } => {
                self.input_file(path)?
            }
        };
        Ok(rewrite(given, &t, &abs))
    }

    /// Grants what a destination needs: a file's directory (read-write), a
    /// layout directory or, if it is yet to be made, its parent
    /// (read-write; read-only when `write` is false, as for `vet`).
    /// `bare_is_file` says how a name without a transport is read.
    pub fn target(&mut self, given: &str, bare_is_file: bool, write: bool) -> Result<Target> {
        let parsed = if bare_is_file {
            Transport::parse_file(given)
        } else {
            Transport::parse(given)
        };
        let t = match parsed {
            Ok(t) => t,
            // Not a reference, and no file: maybe a set's prefix; the
            // component says what it is not.
            Err(_) if !FILE_TRANSPORTS.iter().any(|(p, _)| given.starts_with(p)) => {
                return Ok(Target {
                    guest: given.to_string(),
                })
            }
            Err(e) => return Err(e.into()),
        };
        let abs = match &t {
            Transport::Registry(_) => {
                return Ok(Target {
                    guest: given.to_string(),
                })
            }
            Transport::Archive { path, .. } if path == "-" => {
                return Ok(Target {
                    guest: given.to_string(),
                })
            }
            Transport::Layout { path, .. } => self.layout_dir(path, write)?,
            Transport::Archive { path, .. } | Transport::DockerArchive { path, .. } => {
                self.output(path)?
            }
        };
        Ok(Target {
            guest: rewrite(given, &t, &abs),
        })
    }

    /// A layout directory to write into (or look at): granted itself if it
    /// exists, else its parent, in which the guest makes it.
    fn layout_dir(&mut self, given: &str, write: bool) -> Result<String> {
        let path = Path::new(given);
        if path.is_dir() {
            let dir = std::fs::canonicalize(path).with_context(|| format!("cannot use {given}"))?;
            let abs = utf8(&dir, given)?;
            self.grant(dir, write);
            return Ok(abs);
        }
        if path.exists() {
            bail!("cannot use oci:{given}: it is not a directory");
        }
        let name = path
            .file_name()
            .with_context(|| format!("oci:{given} names no directory"))?;
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let dir = std::fs::canonicalize(parent).with_context(|| {
            format!(
                "cannot write oci:{given}: directory {} does not exist",
                parent.display()
            )
        })?;
        let abs = utf8(&dir.join(name), given)?;
        self.grant(dir, write);
        Ok(abs)
    }
}

/// A destination as the guest is given it.
pub struct Target {
    /// The name the guest gets: its path absolute, in a granted directory.
    pub guest: String,
}

/// `given` with its path replaced by `abs`. A plain path stays plain: as a
/// transport name, a `:` in it would start a tag.
fn rewrite(given: &str, t: &Transport, abs: &str) -> String {
    match t {
        Transport::Archive { path, tag: None } if path == given => abs.to_string(),
        _ => t.with_path(abs).to_string(),
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
        assert_eq!(g.output(&given).unwrap(), given);
        assert!(g.dirs()[0].writable && g.dirs()[0].dir == tmp);
        assert_eq!(g.output("-").unwrap(), "-");
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
