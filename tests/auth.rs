//! Registries that need credentials: Bearer token auth (the distribution
//! server's `auth.token` with the harness's token server) and htpasswd Basic
//! auth; credentials from flags and auth files; secrets never printed.

mod harness;

use harness::auth::{htpasswd, htpasswd_config, TokenServer, REFRESH_TOKEN};
use harness::faults::{Fault, FaultProxy, Rule};
use harness::*;

const USER: &str = "alice";
const PASSWORD: &str = "s3cret-Pa55word";

/// Builds v1 and v2 in a plain registry and copies them with skopeo into
/// `dest` (which needs `creds`).
fn seed(dest: &Registry, creds: &str) -> (Pushed, Pushed) {
    let plain = Registry::start();
    let os = layer(&[("etc/os-release", b"ID=test\n")]);
    let v1 = push_image(
        &plain,
        "app",
        Some("v1"),
        Flavour::Oci,
        host_arch(),
        &[os.clone(), layer(&[("a", b"1")])],
    );
    let v2 = push_image(
        &plain,
        "app",
        Some("v2"),
        Flavour::Oci,
        host_arch(),
        &[os, layer(&[("a", b"2")])],
    );
    for tag in ["v1", "v2"] {
        ok(
            &skopeo(&[
                "copy",
                "--preserve-digests",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
                "--dest-creds",
                creds,
                &format!("docker://{}/app:{tag}", plain.host()),
                &format!("docker://{}/app:{tag}", dest.host()),
            ]),
            "seed with skopeo",
        );
    }
    (v1, v2)
}

fn digest_via_skopeo(reg: &Registry, reference: &str, creds: &str) -> String {
    let out = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        creds,
        &format!("docker://{}/{reference}", reg.host()),
    ]);
    ok(&out, "skopeo inspect");
    sha256(&out.stdout)
}

/// pull, vet and push against `reg` with `creds` given by flag.
fn round_trip(reg: &Registry, creds: &str, v1: &Pushed, v2: &Pushed) {
    let dir = workdir();
    let full = dir.path().join("full.tar");
    let diff = dir.path().join("diff.tar");
    let (full, diff) = (full.to_str().unwrap(), diff.to_str().unwrap());
    let (r1, r2) = (
        format!("{}/app:v1", reg.host()),
        format!("{}/app:v2", reg.host()),
    );
    ok(
        &imo(&["pull", "scratch", &r1, "-o", full, "--final-creds", creds]),
        "pull scratch",
    );
    ok(
        &imo(&[
            "pull",
            &r1,
            &r2,
            "-o",
            diff,
            "--base-creds",
            creds,
            "--final-creds",
            creds,
        ]),
        "pull v1 v2",
    );
    assert!(!Archive::open(std::path::Path::new(diff)).has(&v1.layers[0]));
    let c1 = format!("{}/copy:v1", reg.host());
    let c2 = format!("{}/copy:v2", reg.host());
    ok(
        &imo(&["push", full, &c1, "--dest-creds", creds]),
        "push full",
    );
    ok(&imo(&["vet", diff, &c2, "--dest-creds", creds]), "vet");
    ok(
        &imo(&["push", diff, &c2, "--dest-creds", creds]),
        "push diff",
    );
    assert_eq!(digest_via_skopeo(reg, "copy:v2", creds), v2.digest);
    assert_eq!(digest_via_skopeo(reg, "copy:v1", creds), v1.digest);
}

/// A failing run: one line, naming the registry and role, never the secret.
fn assert_refused(out: &std::process::Output, reg: &Registry, role: &str, secret: &str) {
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains(secret), "secret leaked: {all}");
    one_line_failure(out, &["unauthorized", &reg.host(), role]);
}

/// A pull with a wrong password is refused in one line that never shows it.
fn refuses_wrong_password(reg: &Registry, out: &std::path::Path, wrong: &str) {
    let run = imo(&[
        "pull",
        "scratch",
        &format!("{}/app:v1", reg.host()),
        "-o",
        out.to_str().unwrap(),
        "--final-creds",
        &format!("{USER}:{wrong}"),
        "--quiet",
    ]);
    assert_refused(&run, reg, "final", wrong);
    assert!(!out.exists());
}

#[test]
fn bearer_token_auth_round_trip() {
    let tokens = TokenServer::start(Some((USER, PASSWORD)));
    let reg = Registry::start_config(&Config {
        top: tokens.config(),
        ..Config::default()
    });
    let creds = format!("{USER}:{PASSWORD}");
    let (v1, v2) = seed(&reg, &creds);
    round_trip(&reg, &creds, &v1, &v2);
    let scopes = tokens.requests.lock().unwrap().clone();
    assert!(
        scopes.iter().any(|s| s == "repository:app:pull"),
        "{scopes:?}"
    );
    assert!(
        scopes.iter().any(|s| s == "repository:copy:pull,push"),
        "{scopes:?}"
    );

    let dir = workdir();
    let out = dir.path().join("x.tar");
    let wrong = "Wr0ng-Secret-xyz";
    refuses_wrong_password(&reg, &out, wrong);
    let run = imo(&[
        "push",
        "/dev/null",
        &format!("{}/copy:v3", reg.host()),
        "--quiet",
    ]);
    assert!(!run.status.success());
    let run = imo(&[
        "vet",
        dir.path().join("x.tar").to_str().unwrap(),
        &format!("{}/copy:v3", reg.host()),
        "--quiet",
    ]);
    assert!(!run.status.success());
    assert!(!out.exists());
}

#[test]
fn credentials_from_auth_files() {
    let tokens = TokenServer::start(Some((USER, PASSWORD)));
    let reg = Registry::start_config(&Config {
        top: tokens.config(),
        ..Config::default()
    });
    let (v1, _) = seed(&reg, &format!("{USER}:{PASSWORD}"));
    let dir = workdir();
    let auth = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{USER}:{PASSWORD}"),
    );
    let file = dir.path().join("auth.json");
    std::fs::write(
        &file,
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.host()),
    )
    .unwrap();
    let reference = format!("{}/app:v1", reg.host());

    let out = dir.path().join("a.tar");
    ok(
        &imo(&[
            "pull",
            "scratch",
            &reference,
            "-o",
            out.to_str().unwrap(),
            "--authfile",
            file.to_str().unwrap(),
        ]),
        "--authfile",
    );
    assert_eq!(Archive::open(&out).top_digest(), v1.digest);

    let out = dir.path().join("b.tar");
    ok(
        &imo_env(
            &["pull", "scratch", &reference, "-o", out.to_str().unwrap()],
            &[("REGISTRY_AUTH_FILE", file.to_str().unwrap())],
        ),
        "REGISTRY_AUTH_FILE",
    );

    let docker = dir.path().join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    std::fs::copy(&file, docker.join("config.json")).unwrap();
    let out = dir.path().join("c.tar");
    ok(
        &imo_env(
            &["pull", "scratch", &reference, "-o", out.to_str().unwrap()],
            &[("DOCKER_CONFIG", docker.to_str().unwrap())],
        ),
        "docker config.json",
    );

    // No credentials at all: refused, and the hint names the flag.
    let out = dir.path().join("d.tar");
    let run = imo(&[
        "pull",
        "scratch",
        &reference,
        "-o",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert_refused(&run, &reg, "final", PASSWORD);
    assert!(String::from_utf8_lossy(&run.stderr).contains("--final-creds"));
}

#[test]
fn htpasswd_basic_auth_round_trip() {
    let dir = workdir();
    let file = htpasswd(dir.path(), USER, PASSWORD);
    let reg = Registry::start_config(&Config {
        top: htpasswd_config(&file),
        ..Config::default()
    });
    let creds = format!("{USER}:{PASSWORD}");
    let (v1, v2) = seed(&reg, &creds);
    round_trip(&reg, &creds, &v1, &v2);

    let wrong = "N0t-The-Password";
    let out = dir.path().join("x.tar");
    refuses_wrong_password(&reg, &out, wrong);
}

#[test]
fn identity_tokens_use_the_oauth2_refresh_flow() {
    let tokens = TokenServer::start(Some((USER, PASSWORD)));
    let reg = Registry::start_config(&Config {
        top: tokens.config(),
        ..Config::default()
    });
    let (v1, _) = seed(&reg, &format!("{USER}:{PASSWORD}"));
    let dir = workdir();
    let file = dir.path().join("auth.json");
    std::fs::write(
        &file,
        format!(
            r#"{{"auths":{{"{}":{{"identitytoken":"{REFRESH_TOKEN}"}}}}}}"#,
            reg.host()
        ),
    )
    .unwrap();
    let out = dir.path().join("a.tar");
    ok(
        &imo(&[
            "pull",
            "scratch",
            &format!("{}/app:v1", reg.host()),
            "-o",
            out.to_str().unwrap(),
            "--authfile",
            file.to_str().unwrap(),
        ]),
        "pull with an identity token",
    );
    assert_eq!(Archive::open(&out).top_digest(), v1.digest);
}

#[test]
fn a_token_server_that_is_down_is_named() {
    let tokens = TokenServer::start(Some((USER, PASSWORD)));
    let dead = free_port();
    let reg = Registry::start_config(&Config {
        top: tokens.config().replace(
            &format!("127.0.0.1:{}/token", tokens.port),
            &format!("127.0.0.1:{dead}/token"),
        ),
        ..Config::default()
    });
    let dir = workdir();
    let out = dir.path().join("a.tar");
    let run = imo(&[
        "pull",
        "scratch",
        &format!("{}/app:v1", reg.host()),
        "-o",
        out.to_str().unwrap(),
        "--final-creds",
        &format!("{USER}:{PASSWORD}"),
        "--quiet",
    ]);
    assert!(!run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("token server") && err.contains(&format!("127.0.0.1:{dead}")),
        "{err}"
    );
    assert!(!err.contains(PASSWORD));
    assert!(!out.exists());
}

#[test]
fn a_token_that_expires_mid_transfer_is_refreshed_once() {
    // Tokens the registry honours for 2 s, claimed good for 300 s: imo meets
    // the expiry as a 401 in the middle of a pull and of a push.
    let tokens = TokenServer::start_expiring(Some((USER, PASSWORD)), 2, 300);
    let config = Config {
        top: tokens.config(),
        ..Config::default()
    };
    let src = Registry::start_config(&config);
    let creds = format!("{USER}:{PASSWORD}");
    let plain = Registry::start();
    let slow = layer(&[("slow", &noise(100_000, 9))]);
    let image = push_image(
        &plain,
        "app",
        Some("v1"),
        Flavour::Oci,
        host_arch(),
        &[slow.clone(), layer(&[("after", b"the token expired")])],
    );
    ok(
        &skopeo(&[
            "copy",
            "--preserve-digests",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--dest-creds",
            &creds,
            &format!("docker://{}/app:v1", plain.host()),
            &format!("docker://{}/app:v1", src.host()),
        ]),
        "seed",
    );
    let slow_hex = image.layers[0].trim_start_matches("sha256:").to_string();
    // The first layer takes 3 s to arrive; the second is asked for after.
    let proxy = FaultProxy::start(
        src.port,
        vec![Rule::new("GET", &slow_hex, 1, Fault::Trickle(30))],
    );
    let count = |scope: &str| {
        tokens
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter(|s| *s == scope)
            .count()
    };
    tokens.requests.lock().unwrap().clear();
    let dir = workdir();
    let out = dir.path().join("app.tar");
    let run = imo(&[
        "pull",
        "scratch",
        &format!("{}/app:v1", proxy.host()),
        "-o",
        out.to_str().unwrap(),
        "--final-creds",
        &creds,
        "--jobs",
        "1",
        "--quiet",
    ]);
    ok(&run, "a pull across a token's expiry");
    assert_eq!(Archive::open(&out).top_digest(), image.digest);
    assert_eq!(count("repository:app:pull"), 2, "one token, one refresh");

    // The same mid-push: the first upload's answer comes after the expiry.
    let dest = Registry::start_config(&config);
    let proxy = FaultProxy::start(
        dest.port,
        vec![Rule::new("PUT", &slow_hex, 1, Fault::Delay(3000))],
    );
    tokens.requests.lock().unwrap().clear();
    let run = imo(&[
        "push",
        out.to_str().unwrap(),
        &format!("{}/app:v1", proxy.host()),
        "--dest-creds",
        &creds,
        "--jobs",
        "1",
        "--quiet",
    ]);
    ok(&run, "a push across a token's expiry");
    assert_eq!(
        digest_via_skopeo(&dest, "app:v1", &creds),
        image.digest,
        "the image landed whole"
    );
    assert_eq!(
        count("repository:app:pull,push"),
        2,
        "one token, one refresh"
    );
}
