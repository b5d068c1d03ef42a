//! Image set files: many images moved as one archive. YAML, as the peers
//! use it:
//!
//! ```yaml
//! images:
//!   - source: registry.example/team/app:v2   # required: anything FINAL may be
//!     as: apps/app:v2                         # optional: path:tag under the prefix
//!     platforms: all                          # optional: all, or [linux/amd64]
//! ```
//!
//! or plain text, one source per line (`#` starts a comment), each taking
//! the defaults: `as` is the source's repository path without its registry
//! and its tag (`registry.example/team/app:v2` -> `team/app:v2`), platforms
//! the machine's.

use std::collections::HashSet;
use std::fmt;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::platform::Platform;
use crate::reference::Reference;
use crate::transport::Transport;

/// Which platforms of an index an image takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Platforms {
    /// The machine's own (the default).
    Host,
    /// The whole index.
    All,
    /// These.
    Only(Vec<Platform>),
}

/// Where an image of a set lands, below the destination prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// The repository path, e.g. `team/app`.
    pub path: String,
    /// The tag.
    pub tag: String,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.path, self.tag)
    }
}

impl Target {
    /// Parses `path:tag` (a repository path as references have them).
    pub fn parse(input: &str) -> Result<Target> {
        let bad = |why: String| Error::InvalidReference(format!("invalid target {input:?}: {why}"));
        if input.contains('@') {
            return Err(bad("a target is path:tag, without a digest".into()));
        }
        // A registry nobody has, so the path is read exactly as written.
        let r =
            Reference::parse(&format!("imo.invalid/{input}")).map_err(|e| bad(e.to_string()))?;
        let tag = r
            .explicit_tag()
            .ok_or_else(|| bad("it needs a tag, as path:tag".into()))?;
        Ok(Target {
            path: r.repository().to_string(),
            tag: tag.to_string(),
        })
    }

    /// The default target of `source`: its repository path and its tag.
    pub fn default_for(source: &str) -> Result<Target> {
        let needs_as = |why: &str| {
            Error::InvalidReference(format!(
                "set image {source:?}: {why}; give it an `as: path:tag`"
            ))
        };
        match Transport::parse(source)? {
            Transport::Registry(r) => match r.tag() {
                Some(tag) => Ok(Target {
                    path: r.repository().to_string(),
                    tag: tag.to_string(),
                }),
                None => Err(needs_as("it names no tag")),
            },
            _ => Err(needs_as("only a registry reference has a default target")),
        }
    }
}

/// One image of a set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetImage {
    /// What FINAL would be for it: a reference or any transport.
    pub source: String,
    /// Where it lands below the prefix.
    pub target: Target,
    /// Which platforms.
    pub platforms: Platforms,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    images: Vec<Item>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Item {
    source: String,
    #[serde(rename = "as", default)]
    target: Option<String>,
    #[serde(default)]
    platforms: Option<PlatformsField>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum PlatformsField {
    Word(String),
    List(Vec<String>),
}

fn image(
    source: String,
    target: Option<String>,
    platforms: Option<PlatformsField>,
) -> Result<SetImage> {
    Transport::parse(&source)?;
    let target = match target {
        Some(t) => Target::parse(&t)?,
        None => Target::default_for(&source)?,
    };
    let platforms = match platforms {
        None => Platforms::Host,
        Some(PlatformsField::Word(w)) if w == "all" => Platforms::All,
        Some(PlatformsField::Word(p)) => Platforms::Only(vec![Platform::parse(&p)?]),
        Some(PlatformsField::List(list)) if list.is_empty() => Platforms::Host,
        Some(PlatformsField::List(list)) => Platforms::Only(
            list.iter()
                .map(|p| Platform::parse(p))
                .collect::<Result<_>>()?,
        ),
    };
    Ok(SetImage {
        source,
        target,
        platforms,
    })
}

/// Whether `text` is the YAML form (a top-level `images:` key).
fn is_yaml(text: &str) -> bool {
    text.lines()
        .map(str::trim_end)
        .filter(|l| !l.trim_start().is_empty() && !l.trim_start().starts_with('#'))
        .any(|l| l.starts_with("images:") || l == "---")
}

/// Parses a set file's `text`; `shown` names the file in messages. Every
/// image is checked; two images with one target are refused.
pub fn parse(text: &str, shown: &str) -> Result<Vec<SetImage>> {
    let in_file = |e: Error| match e {
        Error::InvalidReference(m) => Error::InvalidReference(format!("{shown}: {m}")),
        Error::InvalidArgument(m) => Error::InvalidArgument(format!("{shown}: {m}")),
    };
    let images: Vec<SetImage> = if is_yaml(text) {
        let file: File = serde_saphyr::from_str(text).map_err(|e| {
            let e = e.to_string();
            let first = e.lines().next().unwrap_or_default();
            Error::InvalidArgument(format!("{shown} is not a usable set file: {first}"))
        })?;
        file.images
            .into_iter()
            .map(|i| image(i.source, i.target, i.platforms))
            .collect::<Result<_>>()
            .map_err(in_file)?
    } else {
        text.lines()
            .map(|l| l.split('#').next().unwrap_or("").trim())
            .filter(|l| !l.is_empty())
            .map(|l| image(l.to_string(), None, None))
            .collect::<Result<_>>()
            .map_err(in_file)?
    };
    if images.is_empty() {
        return Err(Error::InvalidArgument(format!("{shown} names no image")));
    }
    let mut seen = HashSet::new();
    for i in &images {
        if !seen.insert(&i.target) {
            return Err(Error::InvalidArgument(format!(
                "{shown}: two images go to {}",
                i.target
            )));
        }
    }
    Ok(images)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_with_every_field() {
        let text = "# the site's images\nimages:\n  - source: registry.example/team/app:v2\n    as: apps/app:v2\n    platforms: all\n  - source: registry.example/team/db:15\n    platforms: [linux/amd64, linux/arm64/v8]\n  - source: alpine\n  - source: oci:/data/layout:x\n    as: tools/x:1\n    platforms: linux/arm64\n";
        let set = parse(text, "set.yaml").unwrap();
        assert_eq!(set.len(), 4);
        assert_eq!(set[0].target.to_string(), "apps/app:v2");
        assert_eq!(set[0].platforms, Platforms::All);
        assert_eq!(set[1].target.to_string(), "team/db:15");
        assert_eq!(
            set[1].platforms,
            Platforms::Only(vec![
                Platform::parse("linux/amd64").unwrap(),
                Platform::parse("linux/arm64/v8").unwrap()
            ])
        );
        assert_eq!(set[2].target.to_string(), "library/alpine:latest");
        assert_eq!(set[2].platforms, Platforms::Host);
        assert_eq!(set[3].source, "oci:/data/layout:x");
        assert_eq!(
            set[3].platforms,
            Platforms::Only(vec![Platform::parse("linux/arm64").unwrap()])
        );
    }

    #[test]
    fn plain_lines() {
        let set = parse(
            "registry.example/team/app:v2   # the app\n\n# nothing\n127.0.0.1:5000/db:15\n",
            "list.txt",
        )
        .unwrap();
        let targets: Vec<String> = set.iter().map(|i| i.target.to_string()).collect();
        assert_eq!(targets, ["team/app:v2", "db:15"]);
    }

    #[test]
    fn refusals_name_the_file_and_the_image() {
        for (text, needle) in [
            ("images:\n  - as: a:b\n", "set.yaml"),
            (
                "images:\n  - source: r.example/a:1\n    colour: red\n",
                "colour",
            ),
            ("images:\n  - source: r.example/A:1\n", "r.example/A:1"),
            ("images:\n  - source: oci:/d\n", "as: path:tag"),
            (
                "images:\n  - source: r.example/a:1\n    as: b\n",
                "needs a tag",
            ),
            (
                "images:\n  - source: r.example/a:1\n    platforms: linux\n",
                "linux",
            ),
            ("r.example/a:1\nother.example/a:1\n", "two images go to a:1"),
            ("# only comments\n", "names no image"),
            ("images: [\n", "set.yaml"),
        ] {
            let err = parse(text, "set.yaml").unwrap_err().to_string();
            assert!(
                err.contains(needle) && err.contains("set.yaml"),
                "{text:?}: {err}"
            );
        }
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn never_panics(s in "\\PC{0,200}") {
                let _ = parse(&s, "f");
                let _ = parse(&format!("images:\n{s}"), "f");
            }
        }
    }
}
