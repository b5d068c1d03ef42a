//! What the far side has: every layer of every base (an image, an archive,
//! a set archive, an inventory the far side took of itself), and where it
//! holds each one, so a push there can mount what a repository lacks.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::inventory::Inventory;
use crate::manifest::{Parsed, REF_NAME, SOURCE_NAME};
use crate::plan::{MAX_DEPTH, MAX_DOCUMENTS};
use crate::source::Source;

/// The layers the far side has, and the places that hold each.
#[derive(Debug, Default)]
pub struct Bases {
    blobs: HashMap<Digest, BTreeSet<String>>,
    names: Vec<String>,
    registries: Vec<String>,
}

impl Bases {
    /// No base: the whole image goes.
    pub fn none() -> Self {
        Bases::default()
    }

    /// Adds the layers of every image `base` holds, every platform. A
    /// registry base is a place that holds them; so is each image of a set
    /// archive, below the prefix it was pushed to (`./path`).
    pub fn add(&mut self, base: &dyn Source) -> Result<()> {
        let name = base.name();
        let here = base
            .registry_reference()
            .map(|r| format!("{}/{}", r.registry(), r.repository()));
        if let Some(r) = base.registry_reference() {
            self.registries.push(r.to_string());
        }
        let mut seen = HashSet::new();
        for (top, annotations) in base.images()? {
            let place = here.clone().or_else(|| {
                annotations.contains_key(SOURCE_NAME).then(|| {
                    let target = annotations.get(REF_NAME).map_or("", String::as_str);
                    let path = target.rsplit_once(':').map_or(target, |(p, _)| p);
                    format!("./{path}")
                })
            });
            let mut queue = vec![(top, 0usize)];
            while let Some((m, depth)) = queue.pop() {
                if !seen.insert(m.digest.clone()) {
                    continue;
                }
                if seen.len() > MAX_DOCUMENTS {
                    return Err(Error::Unsupported(format!(
                        "{name} holds more than {MAX_DOCUMENTS} manifests"
                    )));
                }
                match m.parsed {
                    Parsed::Image(img) => {
                        for l in img.layers {
                            let places = self.blobs.entry(l.digest).or_default();
                            places.extend(place.clone());
                        }
                    }
                    Parsed::Index(ix) => {
                        if depth >= MAX_DEPTH {
                            return Err(Error::Unsupported(format!(
                                "{name}: indexes nested more than {MAX_DEPTH} deep"
                            )));
                        }
                        for child in &ix.manifests {
                            if !seen.contains(&child.digest) {
                                queue.push((base.manifest(child)?, depth + 1));
                            }
                        }
                    }
                }
            }
        }
        self.names.push(name);
        Ok(())
    }

    /// Adds every blob an inventory lists, held by the repositories it names.
    pub fn add_inventory(&mut self, inventory: &Inventory, shown: &str) -> Result<()> {
        for (repo, r) in &inventory.repositories {
            let place = inventory.place(repo);
            for b in &r.blobs {
                let d = Digest::parse(b).map_err(|e| {
                    Error::CorruptArchive(format!("{shown}: repository {repo}: {e}"))
                })?;
                self.blobs.entry(d).or_default().extend(place.clone());
            }
        }
        self.names.push(shown.to_string());
        Ok(())
    }

    /// Whether the far side has blob `d`.
    pub fn has(&self, d: &Digest) -> bool {
        self.blobs.contains_key(d)
    }

    /// Where the far side holds blob `d`.
    pub fn places(&self, d: &Digest) -> impl Iterator<Item = &str> {
        self.blobs.get(d).into_iter().flatten().map(String::as_str)
    }

    /// The bases, as messages name them; `None` without any.
    pub fn name(&self) -> Option<String> {
        (!self.names.is_empty()).then(|| self.names.join(", "))
    }

    /// The base's registry reference, when the only base is one.
    pub fn registry(&self) -> Option<String> {
        match (self.registries.as_slice(), self.names.len()) {
            ([one], 1) => Some(one.clone()),
            _ => None,
        }
    }
}
