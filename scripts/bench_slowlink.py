#!/usr/bin/env python3
"""A WAN-like link for scripts/bench, and the table measured through it.

As a program: `bench_slowlink.py LISTEN_PORT UPSTREAM_PORT COUNT_FILE` relays
127.0.0.1:LISTEN_PORT to 127.0.0.1:UPSTREAM_PORT, adding 40 ms to every
connection set-up (a TCP and TLS handshake across a WAN) and 20 ms to every
request (each time the client speaks after the server has answered, or
first), and keeps the number of connections accepted in COUNT_FILE.

As a module: `table(...)` pulls and pushes the corpus's `multi` image (every
platform) with imo and with skopeo through such links and returns the
Markdown table for bench/RESULTS.md.
"""
import os, socket, statistics, subprocess, sys, threading, time

CONNECT_DELAY = 0.040
REQUEST_DELAY = 0.020


def relay(listen, upstream, count_file):
    """Serves until killed: a thread per direction of each connection,
    moving bytes with splice(2), so the relay adds latency, not CPU time."""
    server = socket.create_server(("127.0.0.1", listen))
    accepted = 0

    def pump(src, dst, to_server, turn):
        r, w = os.pipe()
        try:
            while True:
                n = os.splice(src.fileno(), w, 1 << 20)
                if n == 0:
                    break
                # True when the server has spoken since the client last did:
                # the client's next bytes start a new request.
                if to_server and turn["answered"]:
                    turn["answered"] = False
                    time.sleep(REQUEST_DELAY)
                elif not to_server:
                    turn["answered"] = True
                while n:
                    n -= os.splice(r, dst.fileno(), n)
        except OSError:
            pass
        finally:
            os.close(r)
            os.close(w)
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def handle(client):
        time.sleep(CONNECT_DELAY)
        try:
            up = socket.create_connection(("127.0.0.1", upstream))
        except OSError:
            client.close()
            return
        turn = {"answered": True}
        back = threading.Thread(target=pump, args=(up, client, False, turn), daemon=True)
        back.start()
        pump(client, up, True, turn)
        back.join()
        client.close()
        up.close()

    while True:
        client, _ = server.accept()
        accepted += 1
        with open(count_file + ".tmp", "w") as f:
            f.write(str(accepted))
        os.replace(count_file + ".tmp", count_file)
        threading.Thread(target=handle, args=(client,), daemon=True).start()


class Link:
    """A slow link in front of 127.0.0.1:`upstream`, on 127.0.0.1:`listen`."""

    def __init__(self, listen, upstream, work):
        self.host = f"127.0.0.1:{listen}"
        self.count_file = os.path.join(work, f"link-{listen}.count")
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), str(listen), str(upstream), self.count_file])
        for _ in range(100):
            if subprocess.run(["curl", "-sS", "-o", "/dev/null", f"http://{self.host}/v2/"], capture_output=True).returncode == 0:
                break
            time.sleep(0.05)
        self.take()

    def take(self):
        """Connections accepted since the last call."""
        try:
            with open(self.count_file) as f:
                total = int(f.read() or 0)
        except FileNotFoundError:
            total = 0
        seen, self.seen = getattr(self, "seen", 0), total
        return total - seen

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def table(imo, reg, skopeo, work, reps, fresh_dest, dest):
    """Rows for pull and push of multi:v2 through slow links; (lines, met)."""
    src_link = Link(5002, int(reg.rsplit(":", 1)[1]), work)
    dest_link = Link(5003, int(dest.rsplit(":", 1)[1]), work)
    out = lambda name: os.path.join(work, name)
    rows, met_all = [], True

    def runs(make_cmd, link, prepare=None):
        times, conns = [], []
        for i in range(reps):
            if prepare:
                prepare(i)
            link.take()
            t = time.perf_counter()
            subprocess.run(make_cmd(i), check=True, capture_output=True)
            times.append(time.perf_counter() - t)
            conns.append(link.take())
        return statistics.median(times), max(conns)

    def gone(path):
        return lambda _i: os.path.exists(path) and os.remove(path)

    try:
        image = f"{src_link.host}/multi:v2"
        ti, ci = runs(lambda i: [imo, "pull", "scratch", image, "--all-platforms", "-o", out("slow-imo.tar"), "--quiet"], src_link)
        ts, cs = runs(lambda i: skopeo + ["copy", "-q", "--all", "--src-tls-verify=false", f"docker://{image}",
                                          f"oci-archive:{out('slow-sk.tar')}"], src_link, prepare=gone(out("slow-sk.tar")))
        mb = os.path.getsize(out("slow-imo.tar")) / 1e6
        rows.append((f"pull multi:v2, all platforms ({mb:.1f} MB)", ti, ci, ts, cs))
        target = f"{dest_link.host}/multi:v2"
        ti, ci = runs(lambda i: [imo, "push", out("slow-imo.tar"), target, "--quiet"], dest_link, prepare=fresh_dest)
        ts, cs = runs(lambda i: skopeo + ["copy", "-q", "--all", "--dest-tls-verify=false", f"oci-archive:{out('slow-imo.tar')}",
                                          f"docker://{target}"], dest_link, prepare=fresh_dest)
        rows.append((f"push multi:v2, all platforms ({mb:.1f} MB)", ti, ci, ts, cs))
    finally:
        src_link.stop()
        dest_link.stop()
    lines = [
        "## Slow link",
        "",
        f"Through a relay adding {CONNECT_DELAY * 1000:.0f} ms to every connection set-up and {REQUEST_DELAY * 1000:.0f} ms to every",
        "request (scripts/bench_slowlink.py; a WAN-like registry), both tools through the same relay,",
        f"REPS={reps} (median); connections: the most one run opened.",
        "",
        "| measure | imo | skopeo | target | met | ratio |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for what, ti, ci, ts, cs in rows:
        met = ts / ti >= 2
        met_all &= met
        lines.append(f"| {what} | {ti:.2f} s, {ci} connections | {ts:.2f} s, {cs} connections | >= 2x | "
                     f"{'yes' if met else '**no**'} | {ts / ti:.2f}x |")
    return lines, met_all


if __name__ == "__main__":
    relay(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
