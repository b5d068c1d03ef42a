//! The far side's confirmed state: every tag of the named repositories (or
//! of all, through the catalog), the manifests they lead to, and every blob
//! those name, by repository. Taken on the far side with `imo inventory`,
//! carried back, and used as a base (`--base inventory:FILE`): what it lists
//! is left out, and where it lists it is where a push mounts from.
//!
//! The file, JSON:
//! `{"imoInventory":1,"registry":"host:port","repositories":{"path":{"tags":{"tag":"sha256:…"},"manifests":["sha256:…"],"blobs":["sha256:…"]}}}`
//! (`"layout":"/dir"` instead of `registry` for a far side without one,
//! its images under the repository `""`).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Read;

use serde::{Deserialize, Serialize};

use crate::bindings::imo::incremental::types::{ProgressEvent, Role};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::host::emit;
use crate::manifest::{Descriptor, Parsed, RawManifest, REF_NAME};
use crate::plan::{MAX_DEPTH, MAX_DOCUMENTS};
use crate::registry::Registry;
use crate::source::{DirStore, LayoutSource, Source};
use imo_grammar::transport::Prefix;

/// Largest inventory file read.
pub const MAX_INVENTORY_BYTES: u64 = 64 * 1024 * 1024;

/// What a repository holds.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Repository {
    /// Tag -> the digest it names.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Every manifest and index reached from the tags.
    #[serde(default)]
    pub manifests: BTreeSet<String>,
    /// Every config and layer those name (foreign layers left out).
    #[serde(default)]
    pub blobs: BTreeSet<String>,
}

/// An inventory.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Inventory {
    /// The format's version: 1.
    pub imo_inventory: u32,
    /// The registry the repositories are on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    /// Or the layout directory, for a far side without a registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<String>,
    /// Repository path -> what it holds.
    pub repositories: BTreeMap<String, Repository>,
}

impl Inventory {
    /// Where repository `repo` is, as a place to mount from.
    pub fn place(&self, repo: &str) -> Option<String> {
        self.registry.as_ref().map(|r| format!("{r}/{repo}"))
    }

    /// Reads an inventory file.
    pub fn read(path: &str) -> Result<Inventory> {
        let shown = format!("inventory:{path}");
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, "read", &e))?;
        let mut bytes = Vec::new();
        file.take(MAX_INVENTORY_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io(path, "read", &e))?;
        if bytes.len() as u64 > MAX_INVENTORY_BYTES {
            return Err(Error::CorruptArchive(format!(
                "{shown} is larger than {MAX_INVENTORY_BYTES} bytes"
            )));
        }
        let inv: Inventory = serde_json::from_slice(&bytes)
            .map_err(|e| Error::CorruptArchive(format!("{shown} is not an imo inventory: {e}")))?;
        if inv.imo_inventory != 1 {
            return Err(Error::Unsupported(format!(
                "{shown} is inventory format {}; this imo reads 1",
                inv.imo_inventory
            )));
        }
        Ok(inv)
    }
}

/// Walks from `top` through every child, adding what it reaches to `repo`.
fn walk(source: &dyn Source, top: RawManifest, repo: &mut Repository, name: &str) -> Result<()> {
    let mut queue = vec![(top, 0usize)];
    let mut seen = HashSet::new();
    while let Some((m, depth)) = queue.pop() {
        if !seen.insert(m.digest.clone()) {
            continue;
        }
        if seen.len() > MAX_DOCUMENTS {
            return Err(Error::Unsupported(format!(
                "{name} holds more than {MAX_DOCUMENTS} manifests"
            )));
        }
        repo.manifests.insert(m.digest.to_string());
        match &m.parsed {
            Parsed::Image(img) => {
                let blobs = std::iter::once(&img.config).chain(&img.layers);
                repo.blobs.extend(
                    blobs
                        .filter(|d| !d.is_foreign())
                        .map(|d| d.digest.to_string()),
                );
            }
            Parsed::Index(ix) => {
                if depth >= MAX_DEPTH {
                    return Err(Error::Unsupported(format!(
                        "{name}: indexes nested more than {MAX_DEPTH} deep"
                    )));
                }
                for child in &ix.manifests {
                    if !seen.contains(&child.digest) {
                        queue.push((source.manifest(child)?, depth + 1));
                    }
                }
            }
        }
    }
    Ok(())
}

/// A registry repository as a source whose top is one tag at a time.
struct Tagged<'a> {
    registry: &'a Registry,
    repository: &'a str,
}

impl Tagged<'_> {
    fn top(&self, tag: &str) -> Result<RawManifest> {
        let shown = format!("{}/{}:{tag}", self.registry.name(), self.repository);
        self.registry.manifest(self.repository, tag, &shown)
    }
}

impl Source for Tagged<'_> {
    fn name(&self) -> String {
        format!("{}/{}", self.registry.name(), self.repository)
    }
    fn tag(&self) -> Result<Option<String>> {
        Ok(None)
    }
    fn top(&self) -> Result<RawManifest> {
        Err(Error::InvalidArgument(format!(
            "{}: no tag named",
            self.name()
        )))
    }
    fn manifest(&self, desc: &Descriptor) -> Result<RawManifest> {
        let shown = format!("{}@{}", self.name(), desc.digest);
        let m = self
            .registry
            .manifest(self.repository, &desc.digest.to_string(), &shown)?;
        if m.bytes.len() as u64 != desc.size {
            return Err(Error::DigestMismatch(format!(
                "manifest {shown} is {} bytes, its descriptor says {}",
                m.bytes.len(),
                desc.size
            )));
        }
        Ok(m)
    }
    fn blob(&self, desc: &Descriptor) -> Result<Box<dyn crate::concurrent::PollRead + '_>> {
        Err(Error::InvalidArgument(format!(
            "{}: an inventory reads no blob ({})",
            self.name(),
            desc.digest
        )))
    }
}

/// Options of `inventory`.
pub struct InventoryOptions {
    /// False allows plain HTTP to the registry.
    pub tls_verify: bool,
    /// Extra tries after a network failure.
    pub retry_times: u32,
}

/// Takes the inventory of `targets` (`REGISTRY` for every repository its
/// catalog lists, or `REGISTRY/REPO`, all on one registry), or of the layout
/// `layout`.
pub fn take(
    targets: &[String],
    layout: Option<&str>,
    opts: &InventoryOptions,
) -> Result<Inventory> {
    if let Some(dir) = layout {
        if !targets.is_empty() {
            return Err(Error::InvalidArgument(
                "an inventory is of registry repositories or of one layout, not both".into(),
            ));
        }
        let src = LayoutSource::new(DirStore::new(dir)?, format!("oci:{dir}"), None);
        let mut repo = Repository::default();
        for d in src.index()?.manifests {
            let m = src.manifest(&d)?;
            if let Some(tag) = d.annotations.get(REF_NAME) {
                repo.tags.insert(tag.clone(), d.digest.to_string());
            }
            walk(&src, m, &mut repo, &format!("oci:{dir}"))?;
        }
        return Ok(Inventory {
            imo_inventory: 1,
            registry: None,
            layout: Some(dir.to_string()),
            repositories: BTreeMap::from([(String::new(), repo)]),
        });
    }
    let mut registry_name: Option<String> = None;
    let mut repositories: Vec<String> = Vec::new();
    let mut whole = false;
    for t in targets {
        let Prefix::Registry { registry, path } = Prefix::parse(t)? else {
            return Err(Error::InvalidArgument(format!(
                "{t}: name a layout as the only target, with --base"
            )));
        };
        if registry_name.as_deref().is_some_and(|r| r != registry) {
            return Err(Error::InvalidArgument(format!(
                "{t}: an inventory is of one registry, and {} was named first",
                registry_name.unwrap_or_default()
            )));
        }
        registry_name = Some(registry);
        match path {
            Some(p) => repositories.push(p),
            None => whole = true,
        }
    }
    let name = registry_name
        .ok_or_else(|| Error::InvalidArgument("name a registry, REGISTRY[/REPO]".into()))?;
    let reg = Registry::new(&name, Role::Destination, !opts.tls_verify, opts.retry_times);
    if whole {
        repositories.extend(reg.catalog()?);
    }
    repositories.sort();
    repositories.dedup();
    let mut out = BTreeMap::new();
    for (i, path) in repositories.iter().enumerate() {
        let src = Tagged {
            registry: &reg,
            repository: path,
        };
        let mut repo = Repository::default();
        for tag in reg.tags(path)? {
            let m = src.top(&tag)?;
            repo.tags.insert(tag, m.digest.to_string());
            walk(&src, m, &mut repo, &src.name())?;
        }
        emit(ProgressEvent::Note(format!(
            "{}/{}: {path}: {} tag(s), {} blob(s)",
            i + 1,
            repositories.len(),
            repo.tags.len(),
            repo.blobs.len()
        )));
        out.insert(path.clone(), repo);
    }
    Ok(Inventory {
        imo_inventory: 1,
        registry: Some(name),
        layout: None,
        repositories: out,
    })
}

/// Every digest an inventory holds, parsed (for checks).
pub fn digests(inv: &Inventory) -> Result<HashSet<Digest>> {
    let mut out = HashSet::new();
    for r in inv.repositories.values() {
        for d in r.blobs.iter().chain(&r.manifests) {
            out.insert(Digest::parse(d)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_format_and_refuses_others() {
        let inv = Inventory {
            imo_inventory: 1,
            registry: Some("h:5000".into()),
            layout: None,
            repositories: BTreeMap::from([(
                "mirror/app".to_string(),
                Repository {
                    tags: BTreeMap::from([("v1".into(), format!("sha256:{}", "a".repeat(64)))]),
                    manifests: BTreeSet::from([format!("sha256:{}", "a".repeat(64))]),
                    blobs: BTreeSet::from([format!("sha256:{}", "b".repeat(64))]),
                },
            )]),
        };
        let dir = std::env::temp_dir().join(format!("imo-inv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("inv.json");
        std::fs::write(&file, serde_json::to_vec(&inv).unwrap()).unwrap();
        let back = Inventory::read(file.to_str().unwrap()).unwrap();
        assert_eq!(back, inv);
        assert_eq!(
            back.place("mirror/app").as_deref(),
            Some("h:5000/mirror/app")
        );
        assert_eq!(digests(&back).unwrap().len(), 2);
        std::fs::write(&file, br#"{"imoInventory":2,"repositories":{}}"#).unwrap();
        let err = Inventory::read(file.to_str().unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("format 2"), "{err}");
        std::fs::write(&file, b"[1,2]").unwrap();
        let err = Inventory::read(file.to_str().unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("not an imo inventory") && err.contains("inv.json"),
            "{err}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
