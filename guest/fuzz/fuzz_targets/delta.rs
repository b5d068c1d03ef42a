//! Delta data and delta artifacts from an archive: never a panic. Any bytes
//! as delta data against a fixed base, whole or in segments, either fail or
//! rebuild something that the caller's digest check then judges; any
//! document either parses as a delta artifact or is refused.
#![no_main]

use imo_guest::delta::{self, Segment};
use imo_guest::manifest::RawManifest;
use libfuzzer_sys::fuzz_target;

/// A small gzip member (an empty file, `gzip -n`), as the base layer.
const BASE: &[u8] = &[
    0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x03, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00,
];

fuzz_target!(|data: &[u8]| {
    // As the original form (one frame, the whole base), and cut into two
    // segments whose windows the data's first bytes choose.
    let (len, half) = (data.len() as u64, data.len() as u64 / 2);
    let byte = |i: usize| u64::from(data.get(i).copied().unwrap_or(0));
    let cut = vec![
        Segment { from: 0, to: byte(0), frame: half },
        Segment { from: byte(1), to: byte(1) + byte(2), frame: len - half },
    ];
    for segments in [delta::whole(len), cut] {
        // Bounded output: a crafted frame may claim a huge layer.
        let r = delta::rebuilder(BASE, BASE.len() as u64, segments, data);
        let mut out = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::Read::take(r, 1 << 22), &mut out);
    }
    if let Ok(m) = RawManifest::parse(data.to_vec(), None, "fuzz") {
        let _ = delta::parse_artifact(&m, "fuzz");
    }
});
