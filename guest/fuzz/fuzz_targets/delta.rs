//! Delta data and delta artifacts from an archive: never a panic. Any bytes
//! as delta data against a fixed base either fail or rebuild something that
//! the caller's digest check then judges; any document either parses as a
//! delta artifact or is refused.
#![no_main]

use imo_guest::delta;
use imo_guest::manifest::RawManifest;
use libfuzzer_sys::fuzz_target;

/// A small gzip member (an empty file, `gzip -n`), as the base layer.
const BASE: &[u8] = &[
    0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x03, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00,
];

fuzz_target!(|data: &[u8]| {
    let reference = delta::reference(BASE, BASE.len() as u64, 1 << 20).expect("the base layer puffs");
    // Bounded output: a crafted frame may claim a huge window or layer.
    let mut out = Vec::new();
    if let Ok(r) = delta::rebuilder(&reference, data) {
        let _ = std::io::Read::read_to_end(&mut std::io::Read::take(r, 1 << 22), &mut out);
    }
    if let Ok(m) = RawManifest::parse(data.to_vec(), None, "fuzz") {
        let _ = delta::parse_artifact(&m, "fuzz");
    }
});
