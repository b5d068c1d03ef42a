//! Output for scripts: every command's `--json` report parses and says
//! what happened (checked against the registry and skopeo), failures are
//! JSON too, `--progress json` is one event per line, and the completion
//! script and manual page come out of the clap definitions.

mod harness;

use std::collections::BTreeSet;
use std::path::Path;

use harness::*;
use serde_json::Value;

fn json_of(out: &std::process::Output, what: &str) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{what}: stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn run_json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = imo(&all);
    ok(&out, args[0]);
    json_of(&out, args[0])
}

#[test]
fn every_command_reports_json() {
    let src = Registry::start();
    let dest = Registry::start();
    let (v1, v2) = two_versions(&src);
    let dir = workdir();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let (base, final_) = (
        format!("{}/app:v1", src.host()),
        format!("{}/app:v2", src.host()),
    );

    // pull
    let delta = path("delta.tar");
    let pulled = run_json(&["pull", &base, &final_, "-o", &delta]);
    assert_eq!(pulled["digest"], v2.digest.as_str());
    assert_eq!(pulled["output"], delta.as_str());
    assert_eq!(
        pulled["archiveSize"],
        std::fs::metadata(&delta).unwrap().len()
    );
    assert_eq!(pulled["layersLeftOut"], 1);
    assert_eq!(pulled["blobsWritten"], 2, "config and the changed layer");
    assert!(pulled["seconds"].as_f64().unwrap() >= 0.0);

    // vet before the base is there: not ok, exit 1, the missing layer named
    let target = format!("{}/app:v2", dest.host());
    let out = imo(&["vet", &delta, &target, "--json"]);
    assert!(!out.status.success());
    let vetted = json_of(&out, "vet");
    assert_eq!(vetted["ok"], false);
    assert_eq!(vetted["missing"][0]["digest"], v1.layers[0].as_str());
    assert_eq!(vetted["checked"], 1);

    // the base lands (skopeo), then vet is ok and push reports the digest
    ok(
        &skopeo(&[
            "copy",
            "--dest-tls-verify=false",
            "--src-tls-verify=false",
            &format!("docker://{base}"),
            &format!("docker://{}/app:v1", dest.host()),
        ]),
        "skopeo copy v1",
    );
    let vetted = run_json(&["vet", &delta, &target]);
    assert_eq!(vetted["ok"], true);
    assert_eq!(vetted["missing"].as_array().unwrap().len(), 0);
    let pushed = run_json(&["push", &delta, &target, "--mount-from", "app"]);
    assert_eq!(pushed["digest"], v2.digest.as_str());
    assert_eq!(pushed["destination"], target.as_str());
    assert_eq!(
        pushed["uploaded"].as_u64().unwrap()
            + pushed["skipped"].as_u64().unwrap()
            + pushed["mounted"].as_u64().unwrap(),
        3
    );
    let raw = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!("docker://{target}"),
    ]);
    ok(&raw, "skopeo inspect");
    assert_eq!(sha256(&raw.stdout), v2.digest);

    // copy
    let copied = run_json(&["copy", &final_, &format!("oci:{}:v2", path("layout"))]);
    assert_eq!(copied["digest"], v2.digest.as_str());
    assert_eq!(copied["uploaded"], 3, "config and two layers");

    // plan and inspect
    let plan = run_json(&["plan", &base, &final_]);
    assert_eq!(plan["digest"], v2.digest.as_str());
    assert_eq!(plan["layersLeftOut"], 1);
    let inspected = run_json(&["inspect", &delta]);
    assert_eq!(inspected["missing"][0]["digest"], v1.layers[0].as_str());

    // inventory to a file: a summary of what it recorded
    let inventory = path("inventory.json");
    let summary = run_json(&["inventory", &dest.host(), "-o", &inventory]);
    assert_eq!(summary["output"], inventory.as_str());
    assert_eq!(summary["repositories"], 1);
    assert_eq!(summary["tags"], 2);
    let recorded: Value = serde_json::from_slice(&std::fs::read(&inventory).unwrap()).unwrap();
    assert_eq!(
        summary["blobs"],
        recorded["repositories"]["app"]["blobs"]
            .as_array()
            .unwrap()
            .len()
    );

    // a set: pull and push report each image
    let set_file = path("set.txt");
    std::fs::write(&set_file, format!("{final_}\n")).unwrap();
    let set_archive = path("set.tar");
    let set = run_json(&[
        "pull",
        "--set",
        &set_file,
        "--base",
        &format!("inventory:{inventory}"),
        "-o",
        &set_archive,
    ]);
    assert_eq!(set["images"][0]["digest"], v2.digest.as_str());
    assert_eq!(
        set["images"][0]["layersLeftOut"], 2,
        "the far side has every layer"
    );
    let landed = run_json(&["push", &set_archive, &format!("{}/mirror", dest.host())]);
    assert_eq!(landed["ok"], true);
    assert_eq!(landed["images"][0]["pushed"]["digest"], v2.digest.as_str());

    // component
    let wasm = path("imo.wasm");
    let written = run_json(&["component", "-o", &wasm]);
    assert_eq!(written["bytes"], std::fs::metadata(&wasm).unwrap().len());
}

#[test]
fn failures_are_json_too() {
    let out = imo(&["plan", "scratch", "Not A Reference", "--json"]);
    assert!(!out.status.success());
    let v = json_of(&out, "plan");
    assert_eq!(v["error"]["kind"], "invalid-reference");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Not A Reference"));

    let reg = Registry::start();
    let out = imo(&[
        "plan",
        "scratch",
        &format!("{}/none:v1", reg.host()),
        "--json",
    ]);
    assert!(!out.status.success());
    assert_eq!(json_of(&out, "plan")["error"]["kind"], "not-found");

    // The archive and the report cannot share standard output.
    let out = imo(&[
        "pull",
        "scratch",
        &format!("{}/none:v1", reg.host()),
        "-o",
        "-",
        "--json",
    ]);
    assert!(!out.status.success());
    assert_eq!(json_of(&out, "pull")["error"]["kind"], "host");
}

#[test]
fn progress_json_has_a_start_and_a_finish_per_blob() {
    let (src, image, dir, _) = pulled_one_layer_image();
    let out = imo(&[
        "pull",
        "scratch",
        &format!("{}/app:v1", src.host()),
        "-o",
        dir.path().join("again.tar").to_str().unwrap(),
        "--progress",
        "json",
    ]);
    ok(&out, "pull --progress json");
    let mut started = BTreeSet::new();
    let mut finished = BTreeSet::new();
    let mut advanced = 0u64;
    for line in String::from_utf8_lossy(&out.stderr).lines() {
        if line.starts_with("wrote ") {
            continue;
        }
        let e: Value = serde_json::from_str(line)
            .unwrap_or_else(|err| panic!("not a JSON event ({err}): {line}"));
        let digest = e["digest"].as_str().map(str::to_string);
        match e["event"].as_str().unwrap() {
            "blob-started" => {
                assert!(e["size"].as_u64().is_some(), "{line}");
                started.insert(digest.unwrap());
            }
            "blob-finished" => {
                finished.insert(digest.unwrap());
            }
            "blob-advanced" => advanced += e["bytes"].as_u64().unwrap(),
            "blob-skipped" | "note" => {}
            other => panic!("unknown event {other}"),
        }
    }
    let expected: BTreeSet<String> = [image.config.clone(), image.layers[0].clone()].into();
    assert_eq!(started, expected);
    assert_eq!(finished, expected);
    assert!(advanced > 0);
}

#[test]
fn completions_load_in_bash_and_the_manual_renders() {
    let bin = Path::new(env!("CARGO_BIN_EXE_imo"));
    let script = format!(
        "source <('{}' completions bash) && complete -p imo",
        bin.display()
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &script])
        .output()
        .unwrap();
    ok(&out, "bash completions");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("imo"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The function completes subcommands.
    let script = format!(
        "source <('{}' completions bash); COMP_WORDS=(imo pu); COMP_CWORD=1; _imo imo pu imo; echo \"${{COMPREPLY[@]}}\"",
        bin.display()
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &script])
        .output()
        .unwrap();
    ok(&out, "completion of `imo pu`");
    let words = String::from_utf8_lossy(&out.stdout);
    assert!(words.split_whitespace().any(|w| w == "pull"), "{words}");
    assert!(words.split_whitespace().any(|w| w == "push"), "{words}");

    for shell in ["zsh", "fish"] {
        let out = imo(&["completions", shell]);
        ok(&out, shell);
        assert!(String::from_utf8_lossy(&out.stdout).contains("inventory"));
    }

    let out = imo(&["man"]);
    ok(&out, "imo man");
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(
        page.starts_with(".ie") || page.contains(".TH imo"),
        "{}",
        &page[..page.len().min(200)]
    );
    assert!(page.contains("pull") && page.contains("push"));
}
