//! Where images are read from and written to, named as skopeo names them:
//! `[docker://]REFERENCE`, `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]` and
//! `docker-archive:FILE[:REF]`. As in skopeo, a path ends at the first `:`.

use std::fmt;

use crate::error::{Error, Result};
use crate::reference::{Reference, DOCKER_HUB};

/// Which image of a `docker-archive:` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerArchiveImage {
    /// The image whose `RepoTags` hold this reference (written: the tag it gets).
    Named(Reference),
    /// The N-th entry of `manifest.json` (`@N`, reading only).
    Index(usize),
}

/// An image location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// `[docker://]REFERENCE`: a registry.
    Registry(Reference),
    /// `oci:DIR[:TAG]`: an OCI image layout directory.
    Layout {
        /// The directory.
        path: String,
        /// The tag (`org.opencontainers.image.ref.name`).
        tag: Option<String>,
    },
    /// `oci-archive:FILE[:TAG]`: an OCI image layout in a tar file.
    Archive {
        /// The file.
        path: String,
        /// The tag.
        tag: Option<String>,
    },
    /// `docker-archive:FILE[:REF]`: what `docker save` writes and `docker load` reads.
    DockerArchive {
        /// The file.
        path: String,
        /// Which image, if the file holds several (or, written, its tag).
        image: Option<DockerArchiveImage>,
    },
}

/// The transport prefixes that name files, and whether they name a directory.
pub const FILE_TRANSPORTS: [(&str, bool); 3] = [
    ("oci-archive:", false),
    ("docker-archive:", false),
    ("oci:", true),
];

fn split_path<'a>(input: &str, kind: &str, rest: &'a str) -> Result<(String, Option<&'a str>)> {
    let (path, suffix) = match rest.split_once(':') {
        Some((p, s)) => (p, Some(s)),
        None => (rest, None),
    };
    if path.is_empty() {
        return Err(Error::InvalidReference(format!(
            "invalid reference {input:?}: {kind} needs a path"
        )));
    }
    if suffix == Some("") {
        return Err(Error::InvalidReference(format!(
            "invalid reference {input:?}: empty tag"
        )));
    }
    Ok((path.to_string(), suffix))
}

impl Transport {
    /// Parses a name with a transport prefix; without one, a registry
    /// reference (`docker://` optional).
    pub fn parse(input: &str) -> Result<Self> {
        match Transport::parse_prefixed(input)? {
            Some(t) => Ok(t),
            None => Ok(Transport::Registry(Reference::parse(input)?)),
        }
    }

    /// Parses a name with a transport prefix; without one, a path to an
    /// OCI archive (as `-o FILE` and archive arguments are).
    pub fn parse_file(input: &str) -> Result<Self> {
        match Transport::parse_prefixed(input)? {
            Some(t) => Ok(t),
            None if input.starts_with("docker://") => {
                Ok(Transport::Registry(Reference::parse(input)?))
            }
            None if input.is_empty() => Err(Error::InvalidReference(
                "invalid reference \"\": empty path".into(),
            )),
            None => Ok(Transport::Archive {
                path: input.to_string(),
                tag: None,
            }),
        }
    }

    fn parse_prefixed(input: &str) -> Result<Option<Self>> {
        if let Some(rest) = input.strip_prefix("oci-archive:") {
            let (path, tag) = split_path(input, "oci-archive:", rest)?;
            return Ok(Some(Transport::Archive {
                path,
                tag: tag.map(str::to_string),
            }));
        }
        if let Some(rest) = input.strip_prefix("oci:") {
            let (path, tag) = split_path(input, "oci:", rest)?;
            return Ok(Some(Transport::Layout {
                path,
                tag: tag.map(str::to_string),
            }));
        }
        if let Some(rest) = input.strip_prefix("docker-archive:") {
            let (path, image) = split_path(input, "docker-archive:", rest)?;
            let image = match image {
                None => None,
                Some(i) if i.starts_with('@') => {
                    let n = i[1..].parse::<usize>().map_err(|_| {
                        Error::InvalidReference(format!(
                            "invalid reference {input:?}: {i:?} is not @INDEX"
                        ))
                    })?;
                    Some(DockerArchiveImage::Index(n))
                }
                Some(r) => {
                    let named = Reference::parse(r).map_err(|e| {
                        Error::InvalidReference(format!("invalid reference {input:?}: {e}"))
                    })?;
                    if named.digest().is_some() {
                        return Err(Error::InvalidReference(format!(
                            "invalid reference {input:?}: a docker-archive image is named by tag, not digest"
                        )));
                    }
                    Some(DockerArchiveImage::Named(named))
                }
            };
            return Ok(Some(Transport::DockerArchive { path, image }));
        }
        Ok(None)
    }

    /// The file or directory this names, for file transports.
    pub fn path(&self) -> Option<&str> {
        match self {
            Transport::Registry(_) => None,
            Transport::Layout { path, .. }
            | Transport::Archive { path, .. }
            | Transport::DockerArchive { path, .. } => Some(path),
        }
    }

    /// The registry (`host[:port]` as written) this names, for registries.
    pub fn registry(&self) -> Option<&str> {
        match self {
            Transport::Registry(r) => Some(r.registry()),
            _ => None,
        }
    }

    /// The same location with its path replaced (the host rewrites paths
    /// to the ones it grants).
    pub fn with_path(&self, new: &str) -> Transport {
        let mut t = self.clone();
        match &mut t {
            Transport::Registry(_) => {}
            Transport::Layout { path, .. }
            | Transport::Archive { path, .. }
            | Transport::DockerArchive { path, .. } => *path = new.to_string(),
        }
        t
    }
}

/// Where the images of a set go: a registry and a path below which each
/// image's target path lands (`host[:port][/path]`), or an OCI layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prefix {
    /// `[docker://]HOST[:PORT][/PATH]`.
    Registry {
        /// `host[:port]` as written.
        registry: String,
        /// The path below it, if any (`mirror` in `host:5000/mirror`).
        path: Option<String>,
    },
    /// `oci:DIR`: every image into one layout, tagged by its target.
    Layout {
        /// The directory.
        path: String,
    },
}

impl Prefix {
    /// Parses `[docker://]HOST[:PORT][/PATH]` or `oci:DIR`; the first part of
    /// a registry prefix must name a registry (a `.` or `:` in it, or
    /// `localhost`), as it is never Docker Hub's implied one.
    pub fn parse(input: &str) -> Result<Prefix> {
        if let Some(rest) = input.strip_prefix("oci:") {
            let (path, tag) = split_path(input, "oci:", rest)?;
            if tag.is_some() {
                return Err(Error::InvalidReference(format!(
                    "invalid prefix {input:?}: each image takes its own tag; name only the directory"
                )));
            }
            return Ok(Prefix::Layout { path });
        }
        let bad = |why: &str| Error::InvalidReference(format!("invalid prefix {input:?}: {why}"));
        let s = input
            .strip_prefix("docker://")
            .unwrap_or(input)
            .trim_end_matches('/');
        let first = s.split('/').next().unwrap_or("");
        if !(first.contains('.') || first.contains(':') || first == "localhost") {
            return Err(bad("it must start with a registry, as HOST[:PORT][/PATH]"));
        }
        if s.contains('@') || s[first.len()..].contains(':') {
            return Err(bad(
                "a prefix is HOST[:PORT][/PATH], without a tag or digest",
            ));
        }
        let r = Reference::parse(&format!("{s}/x")).map_err(|e| bad(&e.to_string()))?;
        let path = r.repository().strip_suffix("x").unwrap_or("");
        let path = path.trim_end_matches('/');
        Ok(Prefix::Registry {
            registry: r.registry().to_string(),
            path: (!path.is_empty()).then(|| path.to_string()),
        })
    }

    /// Where an image whose target is `path:tag` lands.
    pub fn target(&self, path: &str, tag: &str) -> Result<Transport> {
        match self {
            Prefix::Registry { registry, path: p } => {
                let full = match p {
                    Some(p) => format!("{registry}/{p}/{path}:{tag}"),
                    None => format!("{registry}/{path}:{tag}"),
                };
                Ok(Transport::Registry(Reference::parse(&full)?))
            }
            Prefix::Layout { path: dir } => Ok(Transport::Layout {
                path: dir.clone(),
                tag: Some(format!("{path}:{tag}")),
            }),
        }
    }

    /// The repository (`registry/path`) an image lands in, for a registry.
    pub fn repository(&self, path: &str) -> Option<String> {
        match self {
            Prefix::Registry {
                registry,
                path: Some(p),
            } => Some(format!("{registry}/{p}/{path}")),
            Prefix::Registry {
                registry,
                path: None,
            } => Some(format!("{registry}/{path}")),
            Prefix::Layout { .. } => None,
        }
    }
}

/// A reference as `docker load` and `docker images` show it: Docker Hub's
/// name and `library/` left out.
pub fn familiar(r: &Reference) -> String {
    let mut name = if r.registry() == DOCKER_HUB {
        r.repository()
            .strip_prefix("library/")
            .unwrap_or(r.repository())
            .to_string()
    } else {
        format!("{}/{}", r.registry(), r.repository())
    };
    if let Some(t) = r.tag() {
        name = format!("{name}:{t}");
    }
    name
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let suffix = |f: &mut fmt::Formatter<'_>, s: Option<&str>| match s {
            Some(s) => write!(f, ":{s}"),
            None => Ok(()),
        };
        match self {
            Transport::Registry(r) => write!(f, "{r}"),
            Transport::Layout { path, tag } => {
                write!(f, "oci:{path}")?;
                suffix(f, tag.as_deref())
            }
            Transport::Archive { path, tag } => {
                write!(f, "oci-archive:{path}")?;
                suffix(f, tag.as_deref())
            }
            Transport::DockerArchive { path, image } => {
                write!(f, "docker-archive:{path}")?;
                match image {
                    Some(DockerArchiveImage::Named(r)) => write!(f, ":{}", familiar(r)),
                    Some(DockerArchiveImage::Index(n)) => write!(f, ":@{n}"),
                    None => Ok(()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_transport() {
        assert_eq!(
            Transport::parse("oci:/data/layout:v1").unwrap(),
            Transport::Layout {
                path: "/data/layout".into(),
                tag: Some("v1".into())
            }
        );
        assert_eq!(
            Transport::parse("oci-archive:/x/a.tar").unwrap(),
            Transport::Archive {
                path: "/x/a.tar".into(),
                tag: None
            }
        );
        let d = Transport::parse("docker-archive:/x/d.tar:app:v1").unwrap();
        assert_eq!(d.path(), Some("/x/d.tar"));
        assert_eq!(d.to_string(), "docker-archive:/x/d.tar:app:v1");
        assert_eq!(
            Transport::parse("docker-archive:/x/d.tar:@1").unwrap(),
            Transport::DockerArchive {
                path: "/x/d.tar".into(),
                image: Some(DockerArchiveImage::Index(1))
            }
        );
        assert!(matches!(
            Transport::parse("docker://alpine").unwrap(),
            Transport::Registry(_)
        ));
        let r = Transport::parse("127.0.0.1:5000/app:v1").unwrap();
        assert_eq!(r.registry(), Some("127.0.0.1:5000"));
        assert_eq!(r.to_string(), "127.0.0.1:5000/app:v1");
    }

    #[test]
    fn bare_paths_are_archives_where_a_file_is_expected() {
        assert_eq!(
            Transport::parse_file("out/app.tar").unwrap(),
            Transport::Archive {
                path: "out/app.tar".into(),
                tag: None
            }
        );
        assert!(matches!(
            Transport::parse_file("docker://127.0.0.1:5000/a:b").unwrap(),
            Transport::Registry(_)
        ));
        assert_eq!(
            Transport::parse_file("oci:d:v2")
                .unwrap()
                .with_path("/abs/d"),
            Transport::Layout {
                path: "/abs/d".into(),
                tag: Some("v2".into())
            }
        );
    }

    #[test]
    fn refusals_name_the_input() {
        for bad in [
            "oci:",
            "oci-archive::v1",
            "oci:/d:",
            "docker-archive:/d.tar:@x",
            "docker-archive:/d.tar:App",
            "docker-archive:/d.tar:app@sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
            "",
        ] {
            let err = Transport::parse_file(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn prefixes() {
        let p = Prefix::parse("mirror.local:5000/mirror").unwrap();
        assert_eq!(
            p,
            Prefix::Registry {
                registry: "mirror.local:5000".into(),
                path: Some("mirror".into())
            }
        );
        assert_eq!(
            p.target("team/app", "v2").unwrap().to_string(),
            "mirror.local:5000/mirror/team/app:v2"
        );
        let bare = Prefix::parse("docker://127.0.0.1:5000/").unwrap();
        assert_eq!(
            bare.target("app", "v1").unwrap().to_string(),
            "127.0.0.1:5000/app:v1"
        );
        let layout = Prefix::parse("oci:/srv/images").unwrap();
        assert_eq!(
            layout.target("team/app", "v2").unwrap().to_string(),
            "oci:/srv/images:team/app:v2"
        );
        for bad in [
            "mirror",
            "mirror.local:5000/app:v1",
            "oci:/d:t",
            "h.example/A",
            "",
        ] {
            let err = Prefix::parse(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn familiar_names() {
        let f = |s: &str| familiar(&Reference::parse(s).unwrap());
        assert_eq!(f("alpine"), "alpine:latest");
        assert_eq!(f("user/app:v1"), "user/app:v1");
        assert_eq!(f("127.0.0.1:5000/app:v1"), "127.0.0.1:5000/app:v1");
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn never_panics(s in "\\PC{0,80}") {
                let _ = Transport::parse(&s);
                let _ = Transport::parse_file(&s);
            }
        }
    }
}
