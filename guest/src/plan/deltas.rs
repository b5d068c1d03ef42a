//! The plan's layer deltas: made by a pull and written beside the image,
//! or found in an archive and rebuilt where the image lands.

use super::{Action, Plan, PlannedBlob};
use crate::delta::{self, LayerDelta};
use crate::digest::{Digest, DigestOf};
use crate::error::{MissingBlob, Result};
use crate::manifest::{Descriptor, Parsed};
use crate::source::Source;

impl Plan {
    fn set_action(&mut self, d: &Digest, action: Action) {
        let blobs = self.images.iter_mut().flat_map(|i| i.blobs.iter_mut());
        for b in blobs.chain(self.blobs.iter_mut()) {
            if b.desc.digest == *d {
                b.action = action;
            }
        }
    }

    /// Ships `deltas` (made and proved by the caller) instead of their
    /// layers: each layer's action becomes `Delta`, and the delta data,
    /// one artifact per image listing them, and the empty config those
    /// artifacts name are written.
    pub fn use_deltas(&mut self, deltas: Vec<LayerDelta>) -> Result<()> {
        if deltas.is_empty() {
            return Ok(());
        }
        let empty = Descriptor::new(
            delta::EMPTY_TYPE,
            Digest::sha256_of(delta::EMPTY),
            delta::EMPTY.len() as u64,
        );
        let mut extra = vec![empty];
        let mut subjects: Vec<&Descriptor> = Vec::new();
        for d in &deltas {
            extra.push(d.data.clone());
            if !subjects.iter().any(|s| s.digest == d.subject.digest) {
                subjects.push(&d.subject);
            }
        }
        let mut artifacts = Vec::new();
        for subject in subjects {
            let mine: Vec<&LayerDelta> = deltas
                .iter()
                .filter(|d| d.subject.digest == subject.digest)
                .collect();
            artifacts.push(delta::artifact(subject, &mine)?);
        }
        for desc in extra {
            if self.seen_blobs.insert(desc.digest.clone()) {
                self.delta_overhead += desc.size;
                self.blobs.push(PlannedBlob {
                    desc,
                    is_layer: false,
                    action: Action::Include,
                });
            }
        }
        for a in artifacts {
            let mut entry = a.descriptor();
            entry.artifact_type = Some(delta::ARTIFACT_TYPE.to_string());
            if let Parsed::Image(img) = &a.parsed {
                if let Some(s) = &img.subject {
                    entry
                        .annotations
                        .insert(delta::SUBJECT.to_string(), s.digest.to_string());
                }
            }
            self.delta_overhead += a.bytes.len() as u64;
            self.delta_entries.push(entry);
            self.manifests.push(a);
        }
        for d in &deltas {
            self.set_action(&d.target.digest, Action::Delta);
        }
        self.deltas = deltas;
        Ok(())
    }

    /// Finds the deltas `source` carries for the layers it lacks: their
    /// layers' action becomes `Delta`, to be rebuilt where the image lands.
    pub fn find_deltas(&mut self, source: &dyn Source) -> Result<()> {
        let shown = source.name();
        for artifact in source.deltas()? {
            for d in delta::parse_artifact(&artifact, &shown)? {
                let mine = self.manifests.iter().any(|m| m.digest == d.subject.digest);
                let lacking = self
                    .blobs
                    .iter()
                    .any(|b| b.desc.digest == d.target.digest && b.action == Action::LeftOut);
                if mine
                    && lacking
                    && !self
                        .deltas
                        .iter()
                        .any(|x| x.target.digest == d.target.digest)
                {
                    self.set_action(&d.target.digest, Action::Delta);
                    self.deltas.push(d);
                }
            }
        }
        Ok(())
    }

    /// The delta that ships layer `d`, if one does.
    pub fn delta_for(&self, d: &Digest) -> Option<&LayerDelta> {
        self.deltas.iter().find(|x| x.target.digest == *d)
    }

    /// Bytes of delta data this plan carries.
    pub fn delta_bytes(&self) -> u64 {
        self.deltas.iter().map(|d| d.data.size).sum()
    }

    /// The base layer of delta `d`, as a destination's lack is reported:
    /// the platforms are those of the layer it rebuilds.
    pub fn missing_base(&self, d: &LayerDelta) -> MissingBlob {
        MissingBlob {
            digest: d.base.digest.to_string(),
            size: d.base.size,
            media_type: d.base.media_type.clone(),
            platforms: self.platforms_of(&d.target),
        }
    }
}
