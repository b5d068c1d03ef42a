"""The layer-delta table of scripts/bench: bytes per corpus pair (full,
layer-level, delta, and the `zstd --patch-from` bound on the changed layers'
tars) and the time of a delta pull and of the push that rebuilds the layers,
for the corpus's own layers (klauspost/pgzip, as skopeo writes them) and the
same images recompressed with GNU gzip -6 and with Go's compress/gzip.
Every pushed image is checked with skopeo: its manifest digest equals the
source's, and a skopeo copy out of the destination verifies every blob."""
import gzip, hashlib, json, os, shutil, statistics, subprocess, sys, time

GO_RECOMPRESS = """package main

import (
\t"compress/gzip"
\t"io"
\t"os"
)

func main() {
\tw := gzip.NewWriter(os.Stdout)
\tif _, err := io.Copy(w, os.Stdin); err != nil {
\t\tpanic(err)
\t}
\tif err := w.Close(); err != nil {
\t\tpanic(err)
\t}
}
"""

PAIRS = [("app", []), ("multi", ["--all-platforms"]), ("basebump", [])]


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, **kw)


def go_recompressor(work):
    """Builds the Go recompressor (Debian's golang-go, offline)."""
    if not shutil.which("go"):
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        run(sudo + ["apt-get", "install", "-y", "-qq", "golang-go"], env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    d = os.path.join(work, "gogz")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "main.go"), "w") as f:
        f.write(GO_RECOMPRESS)
    exe = os.path.join(d, "gogz")
    env = dict(os.environ, GOFLAGS="-mod=mod", GO111MODULE="off", GOCACHE=os.path.join(d, "cache"))
    run(["go", "build", "-o", exe, os.path.join(d, "main.go")], env=env)
    return exe


def recompress(reg, skopeo, work, pair, family, command):
    """Pushes pair:v1 and pair:v2 to reg as {pair}-{family}, every gzip layer
    gunzipped and recompressed with `command` (deterministic: a layer both
    versions share stays shared)."""
    layout = os.path.join(work, f"rc-{pair}-{family}")
    shutil.rmtree(layout, ignore_errors=True)
    for v in ["v1", "v2"]:
        run(skopeo + ["copy", "-q", "--all", "--preserve-digests", "--src-tls-verify=false",
                      f"docker://{reg}/{pair}:{v}", f"oci:{layout}:{v}"])
    blobs = os.path.join(layout, "blobs", "sha256")
    done = {}

    def read(d):
        with open(os.path.join(blobs, d.split(":")[1]), "rb") as f:
            return f.read()

    def put(data):
        h = hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, h), "wb") as f:
            f.write(data)
        return "sha256:" + h

    def manifest(desc):
        doc = json.loads(read(desc["digest"]))
        if "manifests" in doc:
            for child in doc["manifests"]:
                child.update(manifest(child))
        else:
            for layer in doc["layers"]:
                if not layer["mediaType"].endswith("gzip"):
                    continue
                if layer["digest"] not in done:
                    raw = gzip.decompress(read(layer["digest"]))
                    out = subprocess.run(command, input=raw, capture_output=True, check=True).stdout
                    done[layer["digest"]] = (put(out), len(out))
                layer["digest"], layer["size"] = done[layer["digest"]]
        data = json.dumps(doc, separators=(",", ":")).encode()
        return {"digest": put(data), "size": len(data)}

    with open(os.path.join(layout, "index.json")) as f:
        index = json.load(f)
    for entry in index["manifests"]:
        entry.update(manifest(entry))
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump(index, f)
    repo = f"{pair}-{family}"
    for v in ["v1", "v2"]:
        run(skopeo + ["copy", "-q", "--all", "--preserve-digests", "--dest-tls-verify=false",
                      f"oci:{layout}:{v}", f"docker://{reg}/{repo}:{v}"])
    shutil.rmtree(layout, ignore_errors=True)
    return repo


def raw_manifest(skopeo, at):
    return run(skopeo + ["inspect", "--raw", "--tls-verify=false", at]).stdout


def images_of(skopeo, reg, repo, tag):
    """(platform, manifest) of each image of repo:tag."""
    top = json.loads(raw_manifest(skopeo, f"docker://{reg}/{repo}:{tag}"))
    if "manifests" not in top:
        return [("-", top)]
    out = []
    for child in top["manifests"]:
        p = child.get("platform", {})
        m = json.loads(raw_manifest(skopeo, f"docker://{reg}/{repo}@{child['digest']}"))
        out.append((f"{p.get('os')}/{p.get('architecture')}", m))
    return out


def tar_bound(skopeo, reg, repo, work):
    """Bytes of `zstd -19 --long=27 --patch-from` deltas of each changed
    layer's tar against the tar in its place in v1 (the bound the issue
    names): what a delta of the content alone would take."""
    v1 = dict(images_of(skopeo, reg, repo, "v1"))
    total = 0
    for plat, m in images_of(skopeo, reg, repo, "v2"):
        old = v1.get(plat, {}).get("layers", [])
        olds = {l["digest"] for l in old}
        for i, layer in enumerate(m["layers"]):
            if layer["digest"] in olds or i >= len(old):
                continue
            paths = []
            for d, name in [(old[i]["digest"], "old.tar"), (layer["digest"], "new.tar")]:
                body = run(["curl", "-fsS", f"http://{reg}/v2/{repo}/blobs/{d}"]).stdout
                path = os.path.join(work, name)
                with open(path, "wb") as f:
                    f.write(gzip.decompress(body))
                paths.append(path)
            out = os.path.join(work, "bound.zst")
            run(["zstd", "-q", "-f", "-19", "--long=27", f"--patch-from={paths[0]}", paths[1], "-o", out])
            total += os.path.getsize(out)
    return total


def table(imo, reg, skopeo, work, reps, fresh_dest, dest):
    """Measures every family and pair; returns the markdown lines and
    whether every goal was met."""
    families = [("corpus (pgzip)", None), ("GNU gzip -6", ["gzip", "-n", "-6", "-c"]),
                ("Go compress/gzip", [go_recompressor(work)])]
    out = lambda name: os.path.join(work, name)
    rows, met_all = [], True
    bounds = {}
    for family, command in families:
        for pair, extra in PAIRS:
            repo = pair if command is None else recompress(reg, skopeo, work, pair, family.split()[0].lower(), command)
            if pair not in bounds:
                bounds[pair] = tar_bound(skopeo, reg, pair, work)
            src = lambda v: f"{reg}/{repo}:{v}"
            full = json.loads(run([imo, "--json", "plan", "scratch", src("v2")] + extra).stdout)["archiveSize"]
            layer_level = json.loads(run([imo, "--json", "plan", src("v1"), src("v2")] + extra).stdout)["archiveSize"]
            times, report = [], None
            for i in range(reps):
                t = time.perf_counter()
                report = json.loads(run([imo, "--json", "--quiet", "pull", "--delta", src("v1"), src("v2"),
                                         "-o", out("delta.tar")] + extra).stdout)
                times.append(time.perf_counter() - t)
            pull_s = statistics.median(times)
            delta = report["archiveSize"]
            rebuilt_bytes = report["bytesDeltaLayers"]
            push_times = []
            for i in range(reps):
                fresh_dest()
                run(skopeo + ["copy", "-q", "--all", "--preserve-digests", "--src-tls-verify=false", "--dest-tls-verify=false",
                              f"docker://{src('v1')}", f"docker://{dest}/{pair}:v1"])
                t = time.perf_counter()
                pushed = json.loads(run([imo, "--json", "--quiet", "push", out("delta.tar"), f"{dest}/{pair}:v2"]).stdout)
                push_times.append(time.perf_counter() - t)
            push_s = statistics.median(push_times)
            # skopeo's word: the same manifest digest, and every blob verified on a copy out.
            same = hashlib.sha256(raw_manifest(skopeo, f"docker://{dest}/{pair}:v2")).hexdigest() == \
                hashlib.sha256(raw_manifest(skopeo, f"docker://{src('v2')}")).hexdigest()
            check = out("check")
            shutil.rmtree(check, ignore_errors=True)
            copied = subprocess.run(skopeo + ["copy", "-q", "--all", "--src-tls-verify=false",
                                              f"docker://{dest}/{pair}:v2", f"oci:{check}:x"], capture_output=True).returncode == 0
            rate = rebuilt_bytes / push_s / 1e6 if rebuilt_bytes else 0
            goal = 0.20 if pair == "basebump" else 0.01
            share = delta / layer_level
            met = share <= goal and delta <= layer_level and same and copied
            if pair == "app":
                met = met and pull_s < 10
            if rebuilt_bytes:
                met = met and rate >= 50
            met_all = met_all and met
            rows.append(f"| {family} | {pair} | {full / 1e6:.1f} MB | {layer_level / 1e6:.2f} MB | "
                        f"{delta / 1e3:.1f} KB ({share * 100:.2f}%) | {bounds[pair] / 1e3:.1f} KB | "
                        f"{pull_s:.1f} s | {push_s:.1f} s, {report['layersDelta']} layer(s) {rebuilt_bytes / 1e6:.1f} MB rebuilt"
                        f"{f', {rate:.0f} MB/s' if rebuilt_bytes else ''} | {'yes' if same and copied else '**no**'} | "
                        f"<= {goal * 100:.0f}%{', pull < 10 s' if pair == 'app' else ''}, push >= 50 MB/s: {'yes' if met else '**no**'} |")
    lines = [
        "## Layer deltas",
        "",
        f"`scripts/bench` (`BENCH_ONLY=delta` runs this table alone), REPS={reps} (median). Archive sizes in bytes of",
        "the file: full (`imo pull scratch`), layer-level (`imo pull`), delta (`imo pull --delta`); the bound is",
        "`zstd -19 --long=27 --patch-from` of each changed layer's tar against the tar in its place in v1, which",
        "re-creates the content but not the compressed layer. Push: `imo push` of the delta archive to a",
        "docker-registry holding v1 (copied there by skopeo), rebuilding each layer; digests checked by skopeo",
        "(manifest digest equal to the source's, and a `skopeo copy` out of the destination verifying every blob).",
        "",
        "| compressor | pair | full | layer-level | delta (of layer-level) | tar bound | delta pull | rebuilding push | digests equal (skopeo) | goals met |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ] + rows
    return lines, met_all
