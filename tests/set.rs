//! Image sets: `imo pull --set`, `plan --set`, `push` and `vet` of a set
//! archive below a prefix, `imo inventory` — against real docker-registry,
//! checked by hashing every blob and with skopeo.

mod harness;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use harness::*;
use serde_json::Value;

fn run_ok(args: &[&str]) -> String {
    let out = imo(args);
    ok(&out, &args.join(" "));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A set archive read by hand: every blob hashes to its name; the
/// index.json entries by target.
struct SetArchive {
    entries: BTreeMap<String, Vec<u8>>,
    images: BTreeMap<String, Value>,
}

impl SetArchive {
    fn open(path: &Path) -> SetArchive {
        let entries = read_tar(&std::fs::read(path).unwrap());
        for (name, body) in &entries {
            if let Some(hex) = name.strip_prefix("blobs/sha256/") {
                assert_eq!(sha256(body), format!("sha256:{hex}"), "{name}");
            }
        }
        let index: Value = serde_json::from_slice(&entries["index.json"]).unwrap();
        let images = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let target = m["annotations"]["org.opencontainers.image.ref.name"]
                    .as_str()
                    .unwrap()
                    .to_string();
                (target, m.clone())
            })
            .collect();
        SetArchive { entries, images }
    }

    fn blobs(&self) -> BTreeSet<String> {
        self.entries
            .keys()
            .filter_map(|k| {
                k.strip_prefix("blobs/sha256/")
                    .map(|h| format!("sha256:{h}"))
            })
            .collect()
    }
}

/// Three images sharing an OS layer, two of them an app layer too.
struct Three {
    reg: Registry,
    os: String,
    shared: String,
    images: BTreeMap<&'static str, Pushed>,
}

fn three(reg: Registry, version: &str) -> Three {
    let os = layer(&[("etc/os-release", b"ID=set\n"), ("lib/libc", &[3u8; 4000])]);
    let shared = layer(&[("opt/runtime", &[5u8; 3000])]);
    let mut images = BTreeMap::new();
    for (repo, own) in [("team/web", true), ("team/api", true), ("tools/cli", false)] {
        let mut layers = vec![os.clone()];
        if own {
            layers.push(shared.clone());
        }
        layers.push(layer(&[("app", format!("{repo} {version}").as_bytes())]));
        let p = push_image(
            &reg,
            repo,
            Some(version),
            Flavour::Oci,
            host_arch(),
            &layers,
        );
        images.insert(repo, p);
    }
    let os = images["team/web"].layers[0].clone();
    let shared = images["team/web"].layers[1].clone();
    Three {
        reg,
        os,
        shared,
        images,
    }
}

fn set_file(dir: &Path, name: &str, reg: &Registry, version: &str) -> String {
    let text = format!(
        "images:\n  - source: {h}/team/web:{version}\n  - source: {h}/team/api:{version}\n    platforms: [linux/{a}]\n  - source: docker://{h}/tools/cli:{version}\n    as: cli:{version}\n",
        h = reg.host(),
        a = host_arch()
    );
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// Every blob of `image` is served by `reg` in `repo` and hashes to its digest.
fn assert_complete(reg: &Registry, repo: &str, tag: &str, image: &Pushed) {
    assert_eq!(
        sha256(&reg.manifest(repo, tag).0),
        image.digest,
        "{repo}:{tag}"
    );
    for d in image.layers.iter().chain([&image.config]) {
        let body = reg
            .blob(repo, d)
            .unwrap_or_else(|| panic!("{d} missing in {repo}"));
        assert_eq!(&sha256(&body), d);
    }
}

fn left_out(plan: &Value) -> BTreeMap<String, BTreeSet<String>> {
    plan["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let missing = i["missing"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["digest"].as_str().unwrap().to_string())
                .collect();
            (i["tag"].as_str().unwrap().to_string(), missing)
        })
        .collect()
}

#[test]
fn a_set_ships_each_shared_blob_once_and_lands_below_a_prefix() {
    let t = three(Registry::start(), "v1");
    let dir = workdir();
    let set = set_file(dir.path(), "set.yaml", &t.reg, "v1");
    let out = dir.path().join("set.tar");
    let summary = run_ok(&["pull", "--set", &set, "-o", out.to_str().unwrap()]);
    assert!(summary.contains("3 image(s)"), "{summary}");

    let archive = SetArchive::open(&out);
    let targets: BTreeSet<&str> = archive.images.keys().map(String::as_str).collect();
    assert_eq!(
        targets,
        BTreeSet::from(["team/web:v1", "team/api:v1", "cli:v1"])
    );
    let mut expected = BTreeSet::new();
    for p in t.images.values() {
        expected.insert(p.digest.clone());
        expected.insert(p.config.clone());
        expected.extend(p.layers.iter().cloned());
    }
    assert_eq!(archive.blobs(), expected, "every blob, each once");
    assert_eq!(
        archive.images["cli:v1"]["annotations"]["dev.imo.source"],
        format!("docker://{}/tools/cli:v1", t.reg.host())
    );
    for (target, entry) in &archive.images {
        let repo = if target.starts_with("cli") {
            "tools/cli"
        } else {
            &target[..target.len() - 3]
        };
        assert_eq!(entry["digest"], t.images[repo].digest.as_str());
    }
    // skopeo reads each image of it by its target.
    let raw = skopeo(&[
        "inspect",
        "--raw",
        &format!("oci-archive:{}:team/api:v1", out.display()),
    ]);
    ok(&raw, "skopeo inspect a set image");
    assert_eq!(sha256(&raw.stdout), t.images["team/api"].digest);

    // plan --set says the same, and what sharing saves.
    let plan = imo(&["plan", "--set", &set, "--json"]);
    ok(&plan, "plan --set");
    let plan: Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(plan["archiveSize"], std::fs::metadata(&out).unwrap().len());
    let os_size = t.reg.blob("team/web", &t.os).unwrap().len() as u64;
    let shared_size = t.reg.blob("team/web", &t.shared).unwrap().len() as u64;
    assert_eq!(plan["sharedBytesSaved"], 2 * os_size + shared_size);

    let dest = Registry::start();
    let prefix = format!("{}/mirror", dest.host());
    let vet = run_ok(&["vet", out.to_str().unwrap(), &prefix]);
    assert!(vet.contains("all 3 image(s) can land"), "{vet}");
    let pushed = run_ok(&["push", out.to_str().unwrap(), &prefix]);
    assert!(pushed.contains("pushed 3 image(s)"), "{pushed}");
    // Later images mount what earlier ones sent.
    assert!(pushed.contains("mounted 2"), "{pushed}");
    assert_complete(&dest, "mirror/team/web", "v1", &t.images["team/web"]);
    assert_complete(&dest, "mirror/team/api", "v1", &t.images["team/api"]);
    assert_complete(&dest, "mirror/cli", "v1", &t.images["tools/cli"]);
    let inspect = skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{prefix}/team/web:v1"),
    ]);
    ok(&inspect, "skopeo inspect at the prefix");
    let v: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(v["Digest"], t.images["team/web"].digest.as_str());

    // A far side without a registry: the set lands on a layout, each image
    // tagged by its target; a set can also be written as a layout.
    let far = dir.path().join("far");
    let pushed = run_ok(&[
        "push",
        out.to_str().unwrap(),
        &format!("oci:{}", far.display()),
    ]);
    assert!(pushed.contains("pushed 3 image(s)"), "{pushed}");
    let layout = dir.path().join("set-layout");
    run_ok(&[
        "pull",
        "--set",
        &set,
        "-o",
        &format!("oci:{}", layout.display()),
    ]);
    for dir in [&far, &layout] {
        let raw = skopeo(&[
            "inspect",
            "--raw",
            &format!("oci:{}:team/web:v1", dir.display()),
        ]);
        ok(&raw, "skopeo inspect oci:DIR:target");
        assert_eq!(sha256(&raw.stdout), t.images["team/web"].digest);
    }
}

#[test]
fn newer_versions_ship_only_new_layers_against_a_set_archive_or_an_inventory() {
    let src = Registry::start();
    let t1 = three(src, "v1");
    let dir = workdir();
    let first = dir.path().join("v1.tar");
    let set1 = set_file(dir.path(), "v1.yaml", &t1.reg, "v1");
    run_ok(&["pull", "--set", &set1, "-o", first.to_str().unwrap()]);
    let dest = Registry::start();
    let prefix = format!("{}/mirror", dest.host());
    run_ok(&["push", first.to_str().unwrap(), &prefix]);

    let t2 = three(t1.reg, "v2");
    let set2 = set_file(dir.path(), "v2.yaml", &t2.reg, "v2");
    // The far side confirms what it has.
    let inventory = dir.path().join("inventory.json");
    run_ok(&["inventory", &dest.host(), "-o", inventory.to_str().unwrap()]);
    let inv: Value = serde_json::from_slice(&std::fs::read(&inventory).unwrap()).unwrap();
    assert_eq!(inv["registry"], dest.host().as_str());
    assert!(inv["repositories"]["mirror/team/web"]["blobs"]
        .as_array()
        .unwrap()
        .contains(&Value::from(t2.os.as_str())));

    let by_archive = imo(&[
        "plan",
        "--set",
        &set2,
        "--base",
        first.to_str().unwrap(),
        "--json",
    ]);
    ok(&by_archive, "plan against the first set archive");
    let by_inventory = imo(&[
        "plan",
        "--set",
        &set2,
        "--base",
        &format!("inventory:{}", inventory.display()),
        "--json",
    ]);
    ok(&by_inventory, "plan against the inventory");
    let a: Value = serde_json::from_slice(&by_archive.stdout).unwrap();
    let b: Value = serde_json::from_slice(&by_inventory.stdout).unwrap();
    assert_eq!(left_out(&a), left_out(&b), "both plans leave out the same");
    let web = &left_out(&a)["team/web:v2"];
    assert_eq!(web, &BTreeSet::from([t2.os.clone(), t2.shared.clone()]));

    let second = dir.path().join("v2.tar");
    run_ok(&[
        "pull",
        "--set",
        &set2,
        "--base",
        &format!("inventory:{}", inventory.display()),
        "-o",
        second.to_str().unwrap(),
    ]);
    let archive = SetArchive::open(&second);
    let mut expected = BTreeSet::new();
    for p in t2.images.values() {
        expected.insert(p.digest.clone());
        expected.insert(p.config.clone());
        expected.insert(p.layers.last().unwrap().clone());
    }
    assert_eq!(archive.blobs(), expected, "only the new layers");
    let run = run_ok(&["push", second.to_str().unwrap(), &prefix]);
    assert!(run.contains("pushed 3 image(s)"), "{run}");
    assert_complete(&dest, "mirror/team/web", "v2", &t2.images["team/web"]);
    assert_complete(&dest, "mirror/cli", "v2", &t2.images["tools/cli"]);
    assert_complete(&dest, "mirror/team/web", "v1", &t1.images["team/web"]);
}

#[test]
fn a_missing_blob_fails_only_its_image_and_a_rerun_finishes() {
    let src = Registry::start();
    let base_layer = layer(&[("base", &[1u8; 2000])]);
    // `lib` is on the source side only; the set is made against it.
    push_image(
        &src,
        "lib",
        Some("v1"),
        Flavour::Oci,
        host_arch(),
        std::slice::from_ref(&base_layer),
    );
    let needs = push_image(
        &src,
        "needs",
        Some("v1"),
        Flavour::Oci,
        host_arch(),
        &[base_layer.clone(), layer(&[("n", b"1")])],
    );
    let alone = push_image(
        &src,
        "alone",
        Some("v1"),
        Flavour::Oci,
        host_arch(),
        &[layer(&[("a", b"1")])],
    );
    let dir = workdir();
    let set = dir.path().join("set.txt");
    std::fs::write(
        &set,
        format!("# plain list\n{h}/needs:v1\n{h}/alone:v1\n", h = src.host()),
    )
    .unwrap();
    let out = dir.path().join("set.tar");
    run_ok(&[
        "pull",
        "--set",
        set.to_str().unwrap(),
        "--base",
        &format!("{}/lib:v1", src.host()),
        "-o",
        out.to_str().unwrap(),
    ]);
    let dest = Registry::start();
    let prefix = dest.host();

    let vet = imo(&["vet", out.to_str().unwrap(), &prefix]);
    assert!(!vet.status.success());
    let listed = String::from_utf8_lossy(&vet.stdout);
    assert!(
        listed.contains(&needs.layers[0]) && listed.contains("needs:v1"),
        "{listed}"
    );

    let push = imo(&["--quiet", "push", out.to_str().unwrap(), &prefix]);
    assert!(!push.status.success());
    let err = String::from_utf8_lossy(&push.stderr);
    assert!(
        err.contains("failed") && err.contains(&needs.layers[0]),
        "{err}"
    );
    assert!(err.contains("1 of 2 image(s) failed"), "{err}");
    assert_complete(&dest, "alone", "v1", &alone);
    assert!(
        dest.blob("needs", &needs.config).is_none(),
        "nothing of the failed image"
    );

    // The blob arrives; the rerun finishes what is left.
    dest.put_blob("needs", &base_layer);
    let again = run_ok(&["push", out.to_str().unwrap(), &prefix]);
    assert!(again.contains("pushed 2 image(s)"), "{again}");
    assert_complete(&dest, "needs", "v1", &needs);
}

#[test]
fn set_files_are_checked_in_one_line() {
    let dir = workdir();
    for (text, needle) in [
        (
            "images:\n  - source: r.example/a:1\n    colour: red\n",
            "colour",
        ),
        ("images:\n  - source: oci:/x\n", "as: path:tag"),
        ("r.example/a:1\nq.example/a:1\n", "two images go to a:1"),
    ] {
        let path = dir.path().join("bad.yaml");
        std::fs::write(&path, text).unwrap();
        let out = dir.path().join("never.tar");
        let run = imo(&[
            "pull",
            "--set",
            path.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]);
        one_line_failure(&run, &[needle, "bad.yaml"]);
        assert!(!out.exists());
    }
    let run = imo(&["pull", "scratch", "--set", "x", "-o", "y"]);
    assert!(
        !run.status.success(),
        "BASE FINAL and --set exclude each other"
    );
}

#[test]
fn inventory_of_a_layout_and_of_named_repositories() {
    let src = Registry::start();
    let app = push_image(
        &src,
        "team/app",
        Some("v1"),
        Flavour::Oci,
        host_arch(),
        &[layer(&[("a", b"1")])],
    );
    push_image(
        &src,
        "other",
        Some("v1"),
        Flavour::Oci,
        host_arch(),
        &[layer(&[("o", b"1")])],
    );
    let dir = workdir();
    let named = dir.path().join("named.json");
    run_ok(&[
        "inventory",
        &format!("{}/team/app", src.host()),
        "-o",
        named.to_str().unwrap(),
    ]);
    let inv: Value = serde_json::from_slice(&std::fs::read(&named).unwrap()).unwrap();
    let repos: Vec<&String> = inv["repositories"].as_object().unwrap().keys().collect();
    assert_eq!(repos, ["team/app"]);
    assert_eq!(
        inv["repositories"]["team/app"]["tags"]["v1"],
        app.digest.as_str()
    );

    let layout = dir.path().join("layout");
    run_ok(&[
        "copy",
        &format!("{}/team/app:v1", src.host()),
        &format!("oci:{}:app", layout.display()),
    ]);
    let run = imo(&["inventory", "--base", &format!("oci:{}", layout.display())]);
    ok(&run, "inventory of a layout");
    let inv: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(inv["layout"], layout.to_str().unwrap());
    let blobs = inv["repositories"][""]["blobs"].as_array().unwrap();
    assert!(blobs.contains(&Value::from(app.layers[0].as_str())));
    assert!(blobs.contains(&Value::from(app.config.as_str())));

    one_line_failure(
        &imo(&[
            "inventory",
            &format!("{}/a", src.host()),
            "elsewhere.example/b",
        ]),
        &["one registry"],
    );
}

#[test]
fn split_parts_read_as_one_and_a_bad_part_is_named() {
    let t = three(Registry::start(), "v1");
    let dir = workdir();
    let set = set_file(dir.path(), "set.yaml", &t.reg, "v1");
    let whole = dir.path().join("whole.tar");
    run_ok(&["pull", "--set", &set, "-o", whole.to_str().unwrap()]);
    let out = dir.path().join("site.tar");
    let summary = run_ok(&[
        "pull",
        "--set",
        &set,
        "--split",
        "4K",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(summary.contains("parts"), "{summary}");
    let part = |i: usize| dir.path().join(format!("site.tar.{i:03}"));
    let list = std::fs::read_to_string(dir.path().join("site.tar.sha256")).unwrap();
    let mut joined = Vec::new();
    for (i, line) in list.lines().enumerate() {
        let bytes = std::fs::read(part(i)).unwrap();
        assert!(bytes.len() <= 4096);
        assert_eq!(line, format!("{}  site.tar.{i:03}", &sha256(&bytes)[7..]));
        joined.extend(bytes);
    }
    assert!(list.lines().count() > 2);
    assert_eq!(
        joined,
        std::fs::read(&whole).unwrap(),
        "the parts are the archive"
    );
    // sha256sum checks the list as it is.
    let check = std::process::Command::new("sha256sum")
        .arg("-c")
        .arg("site.tar.sha256")
        .current_dir(dir.path())
        .output()
        .unwrap();
    ok(&check, "sha256sum -c");

    let first = part(0);
    let inspect = imo(&["inspect", "--json", first.to_str().unwrap()]);
    ok(&inspect, "inspect the first part");
    let v: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(v["images"].as_array().unwrap().len(), 3);

    // A damaged part is named, and nothing is pushed.
    let dest = Registry::start();
    let keep = std::fs::read(part(1)).unwrap();
    let mut bad = keep.clone();
    bad[100] ^= 1;
    std::fs::write(part(1), &bad).unwrap();
    let run = imo(&["push", first.to_str().unwrap(), &dest.host()]);
    one_line_failure(&run, &["site.tar.001", "damaged"]);
    std::fs::remove_file(part(1)).unwrap();
    let run = imo(&["push", first.to_str().unwrap(), &dest.host()]);
    one_line_failure(&run, &["site.tar.001", "missing"]);
    assert!(dest
        .blob("team/web", &t.images["team/web"].config)
        .is_none());

    std::fs::write(part(1), &keep).unwrap();
    run_ok(&["push", first.to_str().unwrap(), &dest.host()]);
    assert_complete(&dest, "team/web", "v1", &t.images["team/web"]);
    assert_complete(&dest, "cli", "v1", &t.images["tools/cli"]);
}
