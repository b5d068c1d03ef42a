//! Manifests and indexes as registries serve them: never a panic, and a
//! parsed document keeps its bytes and digest.
#![no_main]

use imo_guest::digest::{Digest, DigestOf};
use imo_guest::manifest::{RawManifest, DOCKER_LIST, OCI_INDEX};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for content_type in [None, Some(OCI_INDEX), Some(DOCKER_LIST)] {
        if let Ok(m) = RawManifest::parse(data.to_vec(), content_type, "fuzz") {
            assert_eq!(m.bytes, data);
            assert_eq!(m.digest, Digest::sha256_of(data));
            let _ = m.descriptor();
            let _ = serde_json::to_vec(&m.descriptor());
        }
    }
});
