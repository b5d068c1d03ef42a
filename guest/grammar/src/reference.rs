//! Image references with Docker's normalisation: `alpine` is
//! `docker.io/library/alpine:latest`.

use std::fmt;

use crate::digest::Digest;
use crate::error::{Error, Result};

/// Docker Hub's canonical registry name.
pub const DOCKER_HUB: &str = "docker.io";

/// Docker Hub's names, all meaning one registry.
pub const DOCKER_HUB_ALIASES: [&str; 4] = [
    "docker.io",
    "index.docker.io",
    "registry-1.docker.io",
    "registry.hub.docker.com",
];

/// Where requests for `registry` (as a reference names it) go: Docker Hub's
/// API host for `docker.io`, else the registry itself.
pub fn registry_authority(registry: &str) -> &str {
    if registry == DOCKER_HUB {
        "registry-1.docker.io"
    } else {
        registry
    }
}

/// A registry name as auth files and helpers write it: `https://host/v1/`
/// -> `host`, Docker Hub's aliases -> `docker.io`.
pub fn normalise_registry(key: &str) -> String {
    let host = key
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = host.split('/').next().unwrap_or(host);
    if DOCKER_HUB_ALIASES.contains(&host) {
        DOCKER_HUB.to_string()
    } else {
        host.to_string()
    }
}

/// A parsed, normalised image reference: registry, repository and a tag,
/// a digest, or both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
    explicit_tag: bool,
}

impl Reference {
    /// Parses `[docker://][REGISTRY/]REPO[:TAG][@DIGEST]`.
    pub fn parse(input: &str) -> Result<Self> {
        let bad =
            |why: &str| Error::InvalidReference(format!("invalid reference {input:?}: {why}"));
        let s = input.strip_prefix("docker://").unwrap_or(input);
        if s.is_empty() {
            return Err(bad("empty"));
        }
        if s.len() > 1024 {
            return Err(bad("too long"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((rest, d)) => (
                rest,
                Some(Digest::parse(d).map_err(|e| bad(&e.to_string()))?),
            ),
            None => (s, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag {
            validate_tag(tag).map_err(|why| bad(&why))?;
        }
        let (registry, repository) = split_registry(name);
        if registry.is_empty() {
            return Err(bad("empty registry"));
        }
        validate_registry(registry).map_err(|why| bad(&why))?;
        let registry = if registry == "index.docker.io" {
            DOCKER_HUB
        } else {
            registry
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository.to_string()
        };
        validate_repository(&repository).map_err(|why| bad(&why))?;
        if registry.len() + 1 + repository.len() > 255 {
            return Err(bad("repository name longer than 255 characters"));
        }
        let explicit_tag = tag.is_some();
        let tag = match (tag, &digest) {
            (None, None) => Some("latest".to_string()),
            (t, _) => t.map(str::to_string),
        };
        Ok(Reference {
            registry: registry.to_string(),
            repository,
            tag,
            digest,
            explicit_tag,
        })
    }

    /// The tag only if the user wrote one (not the implied `latest`).
    pub fn explicit_tag(&self) -> Option<&str> {
        self.tag.as_deref().filter(|_| self.explicit_tag)
    }

    /// The registry as written (`docker.io`, `127.0.0.1:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path, e.g. `library/alpine`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What to ask the registry for: the digest if there is one, else the tag.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// Splits off the registry the way docker does: the first component is a
/// registry if it has a `.` or `:`, or is `localhost`; otherwise Docker Hub.
fn split_registry(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first, rest)
        }
        _ => (DOCKER_HUB, name),
    }
}

fn validate_registry(registry: &str) -> std::result::Result<(), String> {
    let (host, port) = if let Some(v6) = registry.strip_prefix('[') {
        let (addr, rest) = v6
            .split_once(']')
            .ok_or_else(|| format!("unclosed '[' in registry {registry:?}"))?;
        if addr.is_empty() || !addr.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return Err(format!("invalid IPv6 registry {registry:?}"));
        }
        match rest {
            "" => ("x", None),
            p => match p.strip_prefix(':') {
                Some(port) => ("x", Some(port)),
                None => return Err(format!("invalid registry {registry:?}")),
            },
        }
    } else {
        match registry.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (registry, None),
        }
    };
    if host.is_empty()
        || !host
            .split('.')
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    {
        return Err(format!("invalid registry host in {registry:?}"));
    }
    if let Some(port) = port {
        if port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(format!("invalid port in registry {registry:?}"));
        }
    }
    Ok(())
}

fn validate_repository(repo: &str) -> std::result::Result<(), String> {
    if repo.is_empty() {
        return Err("empty repository name".into());
    }
    for component in repo.split('/') {
        if component.is_empty() {
            return Err("empty path component in repository name".into());
        }
        if component.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(format!("repository name {repo:?} must be lowercase"));
        }
        let bytes = component.as_bytes();
        let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
            return Err(format!(
                "path component {component:?} must start and end with a letter or digit"
            ));
        }
        // Separators: one '.', one or two '_', or any run of '-'.
        let mut i = 0;
        while i < bytes.len() {
            if alnum(bytes[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < bytes.len() && !alnum(bytes[i]) {
                i += 1;
            }
            let sep = &component[start..i];
            let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
            if !ok {
                return Err(format!("invalid characters {sep:?} in repository name"));
            }
        }
    }
    Ok(())
}

fn validate_tag(tag: &str) -> std::result::Result<(), String> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!("invalid tag {tag:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    fn norm(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn normalises_like_docker() {
        assert_eq!(norm("alpine"), "docker.io/library/alpine:latest");
        assert_eq!(
            norm("docker://alpine:3.20"),
            "docker.io/library/alpine:3.20"
        );
        assert_eq!(norm("user/app"), "docker.io/user/app:latest");
        assert_eq!(
            norm("index.docker.io/user/app"),
            "docker.io/user/app:latest"
        );
        assert_eq!(norm("localhost/app"), "localhost/app:latest");
        assert_eq!(norm("127.0.0.1:5000/ns/app:v1"), "127.0.0.1:5000/ns/app:v1");
        assert_eq!(norm("[::1]:5000/app:v1"), "[::1]:5000/app:v1");
        assert_eq!(norm("quay.io/a/b/c:1.0-rc_1"), "quay.io/a/b/c:1.0-rc_1");
        assert_eq!(
            norm("my-reg.example.com/a__b/c.d/e---f"),
            "my-reg.example.com/a__b/c.d/e---f:latest"
        );
    }

    #[test]
    fn registry_names() {
        assert_eq!(registry_authority("docker.io"), "registry-1.docker.io");
        assert_eq!(registry_authority("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(
            normalise_registry("https://index.docker.io/v1/"),
            "docker.io"
        );
        assert_eq!(normalise_registry("registry.hub.docker.com"), "docker.io");
        assert_eq!(normalise_registry("http://quay.io"), "quay.io");
    }

    #[test]
    fn digests_and_tags() {
        let r = Reference::parse(&format!("host:5000/app@{D}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.manifest_reference(), D);
        let r = Reference::parse(&format!("host:5000/app:v2@{D}")).unwrap();
        assert_eq!(r.tag(), Some("v2"));
        assert_eq!(r.manifest_reference(), D);
        assert_eq!(r.registry(), "host:5000");
        assert_eq!(r.repository(), "app");
        assert_eq!(r.to_string(), format!("host:5000/app:v2@{D}"));
        assert_eq!(r.explicit_tag(), Some("v2"));
        assert_eq!(Reference::parse("app").unwrap().explicit_tag(), None);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "App",
            "host:5000/App:v1",
            "app:",
            "app:-x",
            "app:v1:v2",
            "app@sha256:abc",
            "app@md5:00",
            "host:0/app",
            "host:99999/app",
            "host:port/app",
            "/app",
            "app/",
            "a//b",
            "a/-b",
            "a/b.",
            "a/b..c",
            "a/b___c",
            "[::1/app",
            "bad_host.com/app",
            &format!("app:{}", "t".repeat(129)),
        ] {
            let err = Reference::parse(bad);
            assert!(err.is_err(), "{bad:?} parsed as {err:?}");
            let msg = err.unwrap_err().to_string();
            assert!(msg.contains(&format!("{bad:?}")), "{msg}");
        }
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn never_panics(s in "\\PC{0,80}") {
                let _ = Reference::parse(&s);
            }

            #[test]
            fn normal_forms_round_trip(
                host in "[a-z][a-z0-9-]{0,10}(\\.[a-z]{2,5})?",
                port in "(:[1-9][0-9]{0,3})?",
                path in "[a-z0-9]{1,8}((\\.|_|__|-+)[a-z0-9]{1,8}){0,2}(/[a-z0-9]{1,8}){0,2}",
                tag in "[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}",
            ) {
                let input = format!("{host}.test{port}/{path}:{tag}");
                let r = Reference::parse(&input).unwrap();
                prop_assert_eq!(r.to_string(), input.clone());
                prop_assert_eq!(Reference::parse(&r.to_string()).unwrap(), r);
            }
        }
    }
}
