//! Maps the paths the user names to directories granted to the component.
//! Only the output file's own directory is granted, at the same absolute path.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Where an archive goes, as the host grants it.
pub enum Output {
    /// Standard output.
    Stdout,
    /// A file in `dir`, which is granted to the guest under the same path.
    File {
        /// As the user wrote it, for messages.
        given: String,
        /// The canonical directory granted.
        dir: PathBuf,
        /// The path the guest writes.
        guest_path: String,
    },
}

impl Output {
    /// Checks `-o PATH` and works out what to grant.
    pub fn resolve(given: &str) -> Result<Self> {
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
        let guest_path = dir
            .join(name)
            .to_str()
            .map(str::to_string)
            .with_context(|| format!("output path {given} is not valid UTF-8"))?;
        Ok(Output::File {
            given: given.to_string(),
            dir,
            guest_path,
        })
    }

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
    fn resolves_paths() {
        let tmp = std::env::temp_dir().canonicalize().unwrap();
        let given = format!("{}/x.tar", tmp.display());
        let o = Output::resolve(&given).unwrap();
        assert_eq!(o.guest_path(), given);
        assert!(matches!(Output::resolve("-").unwrap(), Output::Stdout));
        let err = Output::resolve("/no/such/dir/x.tar")
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("/no/such/dir/x.tar") && err.contains("does not exist"),
            "{err}"
        );
        assert!(Output::resolve("dir/").is_err());
        assert!(Output::resolve("").is_err());
    }
}
