//! Transfers against a scripted transport: the retry policy with exact
//! counts of tries, uploads that resume or start over, downloads that
//! resume at the right offset.

use super::*;

/// A registry whose first download of a blob breaks after 40 bytes of
/// `data`, then answers 206 with `content_range` and `body`.
fn broken_then(data: &[u8], content_range: &str, body: Vec<u8>) -> Rc<Fake> {
    let fake = Fake::new();
    fake.ping(ok(b"{}"))
        .on("GET", "/blobs/sha256:", 1, Reply::Broken(data.to_vec(), 40))
        .always(
            "GET",
            "/blobs/sha256:",
            Reply::Answer(206, vec![("content-range", content_range.into())], body),
        );
    fake
}

#[test]
fn transient_statuses_take_exactly_retry_times_retries() {
    let fake = Fake::new();
    fake.ping(ok(b"{}"))
        .on("GET", "/manifests/ok", 2, status(503, &[]))
        .on(
            "GET",
            "/manifests/ok",
            1,
            status(429, &[("retry-after", "0")]),
        )
        .always("GET", "/manifests/ok", manifest_reply())
        .always("GET", "/manifests/down", status(503, &[]));
    let reg = client(&fake, "transient.test", 3, None);
    reg.manifest("a", "ok", "a:ok")
        .expect("after three retries");
    assert_eq!(fake.count("GET", "/manifests/ok"), 4);
    let err = reg.manifest("a", "down", "a:down").unwrap_err();
    assert_eq!(
        fake.count("GET", "/manifests/down"),
        4,
        "--retry-times 3: 4 tries"
    );
    assert!(err.to_string().contains("503"), "{err}");
}

#[test]
fn connection_failures_and_statuses_share_one_budget() {
    let fake = Fake::new();
    fake.ping(ok(b"{}"))
        .on("GET", "/manifests/a", 1, Reply::Lost)
        .on("GET", "/manifests/a", 1, status(502, &[]))
        .always("GET", "/manifests/a", manifest_reply())
        .always("GET", "/manifests/b", Reply::Lost);
    let reg = client(&fake, "budget.test", 2, None);
    reg.manifest("r", "a", "r:a").expect("two retries suffice");
    assert_eq!(fake.count("GET", "/manifests/a"), 3);
    let err = reg.manifest("r", "b", "r:b").unwrap_err();
    assert!(matches!(err, Error::Network(_)), "{err}");
    assert!(err.to_string().contains("(after 3 tries)"), "{err}");
    assert_eq!(fake.count("GET", "/manifests/b"), 3);
}

#[test]
fn a_failing_final_put_is_retried_alone_never_the_whole_upload() {
    let fake = uploads();
    fake.always("PATCH", "/blobs/uploads/", upload_location(1))
        .always("PUT", "/blobs/uploads/", status(500, &[]))
        .always("HEAD", "/blobs/sha256:", status(404, &[]));
    let reg = client(&fake, "finalput.test", 2, None);
    let err = push(&reg, b"0123456789", 4).unwrap_err();
    assert!(err.to_string().contains("500"), "{err}");
    assert_eq!(fake.count("POST", "/blobs/uploads/"), 1);
    assert_eq!(
        fake.count("PATCH", "/blobs/uploads/"),
        3,
        "three chunks, once each"
    );
    assert_eq!(
        fake.count("PUT", "/blobs/uploads/"),
        3,
        "--retry-times 2: 3 tries"
    );
}

#[test]
fn a_final_put_whose_answer_was_lost_is_found_committed() {
    let fake = uploads();
    fake.always("PATCH", "/blobs/uploads/", upload_location(1))
        .on("PUT", "/blobs/uploads/", 1, Reply::Lost)
        .always("PUT", "/blobs/uploads/", status(404, &[]))
        .always("HEAD", "/blobs/sha256:", status(200, &[]));
    let reg = client(&fake, "lostput.test", 2, None);
    push(&reg, b"0123456789", 4).expect("the blob landed");
    assert_eq!(fake.count("PUT", "/blobs/uploads/"), 2);
    assert_eq!(fake.count("HEAD", "/blobs/"), 1);
}

#[test]
fn a_broken_monolithic_upload_starts_over_within_the_budget() {
    let fake = uploads();
    fake.always("PUT", "/blobs/uploads/", Reply::Lost);
    let reg = client(&fake, "mono.test", 2, None);
    let err = push(&reg, b"small", 1024).unwrap_err();
    assert!(err.to_string().contains("(after 3 tries)"), "{err}");
    assert_eq!(fake.count("POST", "/blobs/uploads/"), 3);
    assert_eq!(fake.count("PUT", "/blobs/uploads/"), 3);
    assert!(fake
        .sent()
        .iter()
        .filter(|s| s.method == "PUT")
        .all(|s| s.body == b"small"));
}

#[test]
fn a_token_expiring_mid_upload_is_renewed_free_and_the_upload_resumes() {
    let fake = Fake::new();
    bearer_at(&fake, REALM);
    let expired = r#"Bearer realm="https://auth.test/token",service="reg",error="invalid_token""#;
    fake.on("GET", "auth.test/token", 1, token("old"))
        .always("GET", "auth.test/token", token("new"))
        .always("POST", "/blobs/uploads/", upload_location(0))
        .on("PATCH", "/blobs/uploads/", 1, upload_location(1))
        .on(
            "PATCH",
            "/blobs/uploads/",
            1,
            status(401, &[("www-authenticate", expired)]),
        )
        .always("PATCH", "/blobs/uploads/", upload_location(2))
        .always(
            "GET",
            "/blobs/uploads/",
            status(
                204,
                &[
                    ("range", "0-3"),
                    ("location", "/v2/r/blobs/uploads/u?_state=3"),
                ],
            ),
        )
        .always("PUT", "/blobs/uploads/", status(201, &[]));
    // No retries at all: the renewal costs none.
    let reg = client(&fake, "expiry.test", 0, None);
    push(&reg, b"0123456789", 4).expect("upload");
    assert_eq!(fake.count("GET", "auth.test/token"), 2);
    let patches: Vec<_> = fake
        .sent()
        .into_iter()
        .filter(|s| s.method == "PATCH")
        .map(|s| {
            (
                s.header("content-range").unwrap_or("").to_string(),
                s.header("authorization").unwrap_or("").to_string(),
            )
        })
        .collect();
    let want = [
        ("0-3", "Bearer old"),
        ("4-7", "Bearer old"),
        ("4-7", "Bearer new"),
        ("8-9", "Bearer new"),
    ];
    assert_eq!(patches, want.map(|(r, a)| (r.to_string(), a.to_string())));
}

#[test]
fn a_401_on_a_monolithic_put_renews_the_token_and_starts_over() {
    let fake = Fake::new();
    bearer_at(&fake, REALM);
    fake.always("GET", "auth.test/token", token("t"))
        .always("POST", "/blobs/uploads/", upload_location(0))
        .on("PUT", "/blobs/uploads/", 1, status(401, &[]))
        .always("PUT", "/blobs/uploads/", status(201, &[]));
    let reg = client(&fake, "put401.test", 0, None);
    push(&reg, b"small", 1024).expect("upload");
    assert_eq!(fake.count("GET", "auth.test/token"), 2);
    assert_eq!(fake.count("PUT", "/blobs/uploads/"), 2);
}

/// Upload status answers, as distribution gives them.
fn held(range: &str, state: u32) -> Reply {
    let at = format!("/v2/r/blobs/uploads/u?_state={state}");
    status(204, &[("range", range), ("location", &at)])
}

fn content_ranges(fake: &Fake) -> Vec<String> {
    fake.sent()
        .iter()
        .filter(|s| s.method == "PATCH")
        .map(|s| s.header("content-range").unwrap_or("").to_string())
        .collect()
}

#[test]
fn an_empty_upload_resumes_at_zero_after_range_0_0() {
    let fake = uploads();
    fake.on("PATCH", "/blobs/uploads/", 1, Reply::Lost)
        .always("PATCH", "/blobs/uploads/", upload_location(1))
        .always("GET", "/blobs/uploads/", held("0-0", 2))
        .always("PUT", "/blobs/uploads/", status(201, &[]));
    let reg = client(&fake, "zero.test", 1, None);
    push(&reg, b"0123456789", 4).expect("upload");
    assert_eq!(content_ranges(&fake), ["0-3", "0-3", "4-7", "8-9"]);
}

#[test]
fn range_0_0_after_one_byte_resumes_at_one_after_a_416() {
    let fake = uploads();
    fake.on("PATCH", "/blobs/uploads/", 1, Reply::Lost)
        .on("PATCH", "/blobs/uploads/", 1, status(416, &[]))
        .always("PATCH", "/blobs/uploads/", upload_location(1))
        .always("GET", "/blobs/uploads/", held("0-0", 2))
        .always("PUT", "/blobs/uploads/", status(201, &[]));
    let reg = client(&fake, "one.test", 2, None);
    push(&reg, b"0123456789", 4).expect("upload");
    assert_eq!(content_ranges(&fake), ["0-3", "0-3", "1-4", "5-8", "9-9"]);
    let body: Vec<u8> = fake
        .sent()
        .iter()
        .filter(|s| s.method == "PATCH")
        .skip(2)
        .flat_map(|s| s.body.clone())
        .collect();
    assert_eq!(body, b"123456789");
}

#[test]
fn an_upload_the_registry_will_not_resume_starts_over() {
    let fake = uploads();
    fake.on("PATCH", "/blobs/uploads/", 1, upload_location(1))
        .on("PATCH", "/blobs/uploads/", 1, Reply::Lost)
        .always("PATCH", "/blobs/uploads/", upload_location(2))
        .always(
            "GET",
            "/blobs/uploads/",
            Reply::Answer(
                404,
                Vec::new(),
                br#"{"errors":[{"code":"BLOB_UPLOAD_INVALID"}]}"#.to_vec(),
            ),
        )
        .always("PUT", "/blobs/uploads/", status(201, &[]));
    let reg = client(&fake, "stale.test", 1, None);
    push(&reg, b"0123456789", 4).expect("upload");
    assert_eq!(fake.count("POST", "/blobs/uploads/"), 2);
    assert_eq!(content_ranges(&fake), ["0-3", "4-7", "0-3", "4-7", "8-9"]);
}

#[test]
fn a_broken_download_resumes_with_range_and_checks_the_offset() {
    let data: Vec<u8> = (0..100u8).collect();
    let fake = broken_then(&data, "bytes 40-99/100", data[40..].to_vec());
    let reg = client(&fake, "resume.test", 1, None);
    assert_eq!(pull(&reg, &data).expect("resumed"), data);
    let ranges: Vec<_> = fake
        .sent()
        .iter()
        .filter(|s| s.url.contains("/blobs/"))
        .map(|s| s.header("range").map(str::to_string))
        .collect();
    assert_eq!(ranges, [None, Some("bytes=40-".to_string())]);

    // A resume at the wrong offset is refused; no retries: the break is final.
    let fake = broken_then(&data, "bytes 0-99/100", data.clone());
    let err = pull(&client(&fake, "wrong.test", 1, None), &data).unwrap_err();
    assert!(err.to_string().contains("wrong offset"), "{err}");
    let fake = Fake::new();
    fake.ping(ok(b"{}"))
        .always("GET", "/blobs/sha256:", Reply::Broken(data.clone(), 40));
    let err = pull(&client(&fake, "final.test", 0, None), &data).unwrap_err();
    assert!(err.to_string().contains("connection reset"), "{err}");
    assert_eq!(fake.count("GET", "/blobs/"), 1);
}
