//! Helpers of the delta tests (tests/delta.rs, tests/delta_sets.rs).

use std::path::Path;

use serde_json::Value;

use super::*;

/// ~700 KB of text-like content, and a version with a few small edits.
pub fn app_files(edited: bool) -> Vec<u8> {
    let mut text = Vec::new();
    let mut x: u64 = 0x9e37_79b9;
    while text.len() < 600_000 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        text.extend_from_slice(
            format!(
                "config.key{} = value-{}\n",
                (x >> 40) % 5000,
                (x >> 20) % 997
            )
            .as_bytes(),
        );
    }
    text.extend_from_slice(&noise(100_000, 42));
    if edited {
        text.splice(2_000..2_000, b"inserted = yes\n".iter().copied());
        text[300_000..300_010].copy_from_slice(b"EDITED.EDI");
    }
    text
}

pub fn json_of(run: &std::process::Output, what: &str) -> Value {
    ok(run, what);
    serde_json::from_slice(&run.stdout).unwrap_or_else(|e| panic!("{what}: JSON: {e}"))
}

/// Copies `src/REPO:v1` to `dest` with skopeo.
pub fn seed_repo(src: &Registry, repo: &str, dest: &str) {
    ok(
        &skopeo(&[
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--preserve-digests",
            &format!("docker://{}/{repo}:v1", src.host()),
            dest,
        ]),
        "skopeo copy v1",
    );
}

/// The digest skopeo reads for `at`, having copied it (every blob
/// verified) into a fresh layout.
pub fn copied_digest(at: &str, dir: &Path) -> String {
    let out = dir.join("check");
    ok(
        &skopeo(&[
            "copy",
            "--src-tls-verify=false",
            "--preserve-digests",
            at,
            &format!("oci:{}:x", out.display()),
        ]),
        "skopeo copy (verifies every blob)",
    );
    let raw = skopeo(&["inspect", "--raw", &format!("oci:{}:x", out.display())]);
    ok(&raw, "skopeo inspect");
    sha256(&raw.stdout)
}
