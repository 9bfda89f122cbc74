"""The dashboard's campaign page against a 1,000,000-recipient campaign.

Imports a synthetic audience of N recipients (blindcast_bench gen + import),
serves it with `blindcast serve`, and loads the campaign page in Debian's
chromium (bench/dashboard_bench.mjs): time to first render (targets: <= 1 s)
and bytes transferred (<= 200 KB). Peer, on the same store in the same run:
`blindcast status --json` on the command line (a terminal operator's view of
the same numbers), and the API answer alone (GET /v1/campaigns/{id}).

Usage: dashboard_bench.py BUILD_DIR [--recipients N] [--runs K]
"""
import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(fn, runs):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--recipients", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    binary = os.path.abspath(os.path.join(a.build, "blindcast"))
    bench = os.path.abspath(os.path.join(a.build, "blindcast_bench"))
    work = tempfile.mkdtemp(prefix="blindcast-dashboard-")
    proc = None
    try:
        d = os.path.join(work, "campaigns", "big")
        subprocess.run([bench, "gen", d, str(a.recipients)], check=True, stdout=subprocess.DEVNULL)
        imported = subprocess.run([bench, "import", d], check=True, capture_output=True, text=True).stdout.strip()
        os.makedirs(os.path.join(d, ".blindcast"), exist_ok=True)
        os.replace(os.path.join(d, ".bench-state.db"), os.path.join(d, ".blindcast", "state.db"))
        subprocess.run([binary, "lint", d], check=False, capture_output=True)
        port = free_port()
        config = os.path.join(work, "server.toml")
        with open(config, "w") as f:
            f.write(f'listen = "127.0.0.1:{port}"\nstate = "state/blindcast.db"\ncampaigns = ["campaigns/*"]\n'
                    f'[transport]\nurl = "maildir:out"\n')
        key = subprocess.run([binary, "keys", "create", "viewer", "--scope", "read", "--cidr", "127.0.0.1/32",
                              "--config", config], check=True, capture_output=True, text=True).stdout.strip()
        log = open(os.path.join(work, "serve.log"), "w")
        proc = subprocess.Popen([binary, "serve", "--config", config], stdout=log, stderr=subprocess.STDOUT)
        cid = None
        deadline = time.time() + 30
        while time.time() < deadline and cid is None:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                c.request("GET", "/v1/campaigns", headers={"Authorization": f"Bearer {key}"})
                cid = json.loads(c.getresponse().read())["campaigns"][0]["id"]
            except (OSError, ValueError, KeyError, IndexError):
                time.sleep(0.2)

        def api():
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            c.request("GET", f"/v1/campaigns/{cid}", headers={"Authorization": f"Bearer {key}"})
            body = c.getresponse().read()
            assert json.loads(body)["total"] == a.recipients, body[:200]

        api()  # the first read builds the content hash cache, as any operator's first look does
        api_s = timed(api, a.runs)
        cli_s = timed(lambda: subprocess.run([binary, "status", d, "--json"], check=True, capture_output=True), a.runs)
        page = json.loads(subprocess.run(["node", os.path.join(HERE, "dashboard_bench.mjs"), f"http://127.0.0.1:{port}",
                                          cid, key, str(a.runs)], check=True, capture_output=True,
                                         text=True).stdout)
        print(f"import: {imported}")
        print(f"campaign page, {a.recipients:,} recipients, {a.runs} loads in fresh contexts: {json.dumps(page)}")
        print(f"GET /v1/campaigns/{{id}} alone: {api_s * 1000:.0f} ms (median)")
        print(f"peer: blindcast status --json on the same store: {cli_s * 1000:.0f} ms (median)")
        ms, kb = page["first_render_ms_median"], page["bytes_max"] / 1024
        print(f"target: first render {ms} ms <= 1000 ms: {'met' if page['first_render_ms_max'] <= 1000 else 'not met'} "
              f"(max {page['first_render_ms_max']} ms); transferred {kb:.1f} KB <= 200 KB: "
              f"{'met' if kb <= 200 else 'not met'}")
        print(f"ratio: the page's first render takes {ms / (cli_s * 1000):.2f}x the command line's status "
              f"({ms} ms vs {cli_s * 1000:.0f} ms)")
    finally:
        if proc:
            proc.terminate()
            proc.wait(timeout=15)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
