//! Attachment lookups of a registry source: which requests each registry
//! answer spares.

use super::*;

/// Attachment lookups for three manifests of `r` over `fake`.
fn attachments_of(fake: &Rc<Fake>) -> Vec<Vec<crate::attach::Attachment>> {
    use crate::source::{RegistrySource, Source};
    let reference = crate::reference::Reference::parse("att.test/r:v1").expect("reference");
    let source = RegistrySource::new(client(fake, "att.test", 0, None), reference, 4);
    let subjects = [blob(b"one"), blob(b"two"), blob(b"three")];
    source.attachments_of(&subjects).expect("attachments")
}

fn tag_of(subject: &[u8], suffix: &str) -> String {
    let d = blob(subject).digest;
    format!("{}-{}{suffix}", d.algorithm(), d.hex())
}

#[test]
fn one_listing_of_tags_spares_the_lookups_of_tags_that_are_absent() {
    let fake = Fake::new();
    let sig = tag_of(b"two", ".sig");
    let tags = format!(r#"{{"name":"r","tags":["v1","{sig}"]}}"#);
    fake.ping(ok(b"{}"))
        .always("GET", "/tags/list", ok(tags.as_bytes()))
        .always("GET", "/referrers/", status(404, &[]))
        .always("GET", &format!("/manifests/{sig}"), manifest_reply());
    let found = attachments_of(&fake);
    assert_eq!(found.iter().map(Vec::len).collect::<Vec<_>>(), [0, 1, 0]);
    assert_eq!(found[1][0].tag.as_deref(), Some(sig.as_str()));
    // The listing, one referrers lookup (no API: none for the others) and
    // the one tag that exists: not five lookups per manifest.
    assert_eq!(fake.count("GET", "/tags/list"), 1);
    assert_eq!(fake.count("GET", "/referrers/"), 1);
    assert_eq!(fake.count("GET", "/manifests/"), 1);
}

#[test]
fn a_listing_longer_than_a_page_falls_back_to_a_lookup_per_tag() {
    let fake = Fake::new();
    let sbom = blob(&manifest_body()).digest;
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{{"mediaType":"{}","digest":"{sbom}","size":{}}}]}}"#,
        crate::manifest::OCI_INDEX,
        crate::manifest::OCI_MANIFEST,
        manifest_body().len()
    );
    let index_reply = Reply::Answer(
        200,
        vec![("content-type", crate::manifest::OCI_INDEX.into())],
        index.into_bytes(),
    );
    fake.ping(ok(b"{}"))
        .always(
            "GET",
            "/tags/list",
            Reply::Answer(
                200,
                vec![("link", r#"</v2/r/tags/list?last=x>; rel="next""#.into())],
                br#"{"name":"r","tags":["v1"]}"#.to_vec(),
            ),
        )
        .always("GET", "/referrers/", status(404, &[]))
        .always("GET", ".sig", status(404, &[]))
        .always("GET", ".att", status(404, &[]))
        .always("GET", ".sbom", status(404, &[]))
        .always(
            "GET",
            &format!("/manifests/{}", tag_of(b"one", "")),
            index_reply,
        )
        .always("GET", &format!("/manifests/{sbom}"), manifest_reply())
        .always("GET", "/manifests/", status(404, &[]));
    let found = attachments_of(&fake);
    assert_eq!(found.iter().map(Vec::len).collect::<Vec<_>>(), [1, 0, 0]);
    assert_eq!(found[0][0].manifest.digest, sbom);
    // Only the first page; then each manifest's three cosign tags and its
    // fallback tag, the referrers API once, and the referrer listed.
    assert_eq!(fake.count("GET", "/tags/list"), 1);
    assert_eq!(fake.count("GET", "/referrers/"), 1);
    assert_eq!(fake.count("GET", "/manifests/sha256-"), 12);
    assert_eq!(fake.count("GET", &format!("/manifests/{sbom}")), 1);
}

#[test]
fn a_registry_with_a_referrers_api_is_asked_for_each_manifest_and_no_fallback_tag() {
    let fake = Fake::new();
    let fallback = tag_of(b"two", "");
    let tags = format!(r#"{{"name":"r","tags":["v1","{fallback}"]}}"#);
    let empty = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
    fake.ping(ok(b"{}"))
        .always("GET", "/tags/list", ok(tags.as_bytes()))
        .always("GET", "/referrers/", ok(empty));
    let found = attachments_of(&fake);
    assert!(found.iter().all(Vec::is_empty), "{found:?}");
    assert_eq!(fake.count("GET", "/referrers/"), 3);
    assert_eq!(fake.count("GET", "/manifests/"), 0);
}

#[test]
fn only_a_404_says_a_registry_has_no_referrers_api() {
    // The first manifest's referrers lookup is refused (500, no retries):
    // that says nothing of the API, so the others are still asked.
    let fake = Fake::new();
    fake.ping(ok(b"{}"))
        .always("GET", "/tags/list", ok(br#"{"name":"r","tags":["v1"]}"#))
        .on("GET", "/referrers/", 1, status(500, &[]))
        .always("GET", "/referrers/", status(404, &[]));
    let found = attachments_of(&fake);
    assert!(found.iter().all(Vec::is_empty), "{found:?}");
    assert_eq!(fake.count("GET", "/referrers/"), 3);
    assert_eq!(fake.count("GET", "/manifests/"), 0);
}
