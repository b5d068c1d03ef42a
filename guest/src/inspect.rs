//! `inspect`: what an archive (or layout) holds and what it leaves to the
//! destination.

use crate::attach::Filter;
use crate::base::Bases;
use crate::bindings::imo::incremental::types::Role;
use crate::error::Result;
use crate::manifest::Descriptor;
use crate::plan::{Action, Plan};
use crate::platform::Platform;
use crate::source::{self, Transport};

/// An archive's content, as a plan whose "left out" blobs are the absent ones.
pub struct Inspection {
    /// The images and blobs; `Action::LeftOut` marks a blob the archive lacks.
    pub plan: Plan,
    /// Every blob present, manifests included.
    pub present: Vec<Descriptor>,
    /// Configs and layers absent (needed at the destination, including
    /// the base layers of deltas), each once.
    pub missing: Vec<Descriptor>,
}

/// Inspects `FILE` (an OCI archive) or any transport's image, every platform.
pub fn inspect(archive: &str) -> Result<Inspection> {
    let source = source::open(Transport::parse_file(archive)?, Role::Final, false, (0, 1))?;
    let mut plan = Plan::build(&Bases::none(), source.as_ref(), true, &Platform::default())?;
    plan.attach(source.as_ref(), &Bases::none(), &Filter::all())?;
    plan.find_deltas(source.as_ref())?;
    let mut present: Vec<Descriptor> = plan.manifests.iter().map(|m| m.descriptor()).collect();
    present.extend(
        plan.blobs
            .iter()
            .filter(|b| b.action == Action::Include)
            .map(|b| b.desc.clone()),
    );
    // Delta data sits beside the image; a delta's base layer is needed
    // where the image lands, in place of the layer it rebuilds.
    present.extend(plan.deltas.iter().map(|d| d.data.clone()));
    let mut missing: Vec<Descriptor> = plan.left_out().map(|b| b.desc.clone()).collect();
    for d in &plan.deltas {
        if !missing.iter().any(|m| m.digest == d.base.digest) {
            missing.push(d.base.clone());
        }
    }
    Ok(Inspection {
        plan,
        present,
        missing,
    })
}
