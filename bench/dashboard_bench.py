"""The dashboard's campaign page against a 1,000,000-recipient campaign.

Imports a synthetic audience of N recipients (blindcast_bench gen + import)
and one of 12 (the example campaign), serves both with `blindcast serve`, and
loads each campaign's page in Debian's chromium, in turns
(bench/dashboard_bench.mjs): time to first render (target: <= 1 s) and bytes
transferred (<= 200 KB). Peers in the same run: the same page of the
12-recipient campaign (the page must not cost per recipient: the ratio should
be ~1), `blindcast status --json` on the command line on the big store (a
terminal operator's view of the same numbers), and the API answer alone.

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
        small = os.path.join(work, "campaigns", "small")
        subprocess.run([bench, "gen", d, str(a.recipients)], check=True, stdout=subprocess.DEVNULL)
        subprocess.run([binary, "init", small], check=True, capture_output=True)
        with open(os.path.join(small, "campaign.toml")) as f:
            text = f.read().replace('id = "index-change-2026-11"', 'id = "small-12"')
        with open(os.path.join(small, "campaign.toml"), "w") as f:
            f.write(text)
        imported = ""
        for c in (d, small):
            imported = subprocess.run([bench, "import", c], check=True, capture_output=True, text=True).stdout.strip()
            if c == d:
                big_import = imported
            os.makedirs(os.path.join(c, ".blindcast"), exist_ok=True)
            os.replace(os.path.join(c, ".bench-state.db"), os.path.join(c, ".blindcast", "state.db"))
            subprocess.run([binary, "lint", c], check=False, capture_output=True)
        imported = big_import
        port = free_port()
        config = os.path.join(work, "server.toml")
        with open(config, "w") as f:
            f.write(f'listen = "127.0.0.1:{port}"\nstate = "state/blindcast.db"\ncampaigns = ["campaigns/*"]\n'
                    f'[transport]\nurl = "maildir:out"\n')
        key = subprocess.run([binary, "keys", "create", "viewer", "--scope", "read", "--cidr", "127.0.0.1/32",
                              "--config", config], check=True, capture_output=True, text=True).stdout.strip()
        log = open(os.path.join(work, "serve.log"), "w")
        proc = subprocess.Popen([binary, "serve", "--config", config], stdout=log, stderr=subprocess.STDOUT)
        ids = None
        deadline = time.time() + 30
        while time.time() < deadline and ids is None:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                c.request("GET", "/v1/campaigns", headers={"Authorization": f"Bearer {key}"})
                ids = [x["id"] for x in json.loads(c.getresponse().read())["campaigns"]]
            except (OSError, ValueError, KeyError, IndexError):
                time.sleep(0.2)
        cid = next(i for i in ids if i != "small-12")

        def api():
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            c.request("GET", f"/v1/campaigns/{cid}", headers={"Authorization": f"Bearer {key}"})
            body = c.getresponse().read()
            assert json.loads(body)["total"] == a.recipients, body[:200]

        api()  # the first read builds the content hash cache, as any operator's first look does
        api_s = timed(api, a.runs)
        cli_s = timed(lambda: subprocess.run([binary, "status", d, "--json"], check=True, capture_output=True), a.runs)
        lines = subprocess.run(["node", os.path.join(HERE, "dashboard_bench.mjs"), f"http://127.0.0.1:{port}", key,
                                str(a.runs), cid, "small-12"], check=True, capture_output=True, text=True).stdout
        pages = {p["campaign"]: p for p in map(json.loads, lines.splitlines())}
        page, tiny = pages[cid], pages["small-12"]
        print(f"import: {imported}")
        print(f"campaign page, {page['recipients']:,} recipients, {a.runs} loads in fresh contexts: {json.dumps(page)}")
        print(f"campaign page, {tiny['recipients']} recipients (peer), in turns with it: {json.dumps(tiny)}")
        print(f"GET /v1/campaigns/{{id}} alone, {a.recipients:,} recipients: {api_s * 1000:.0f} ms (median)")
        print(f"peer: blindcast status --json on the same store: {cli_s * 1000:.0f} ms (median)")
        ms, kb = page["first_render_ms_median"], page["bytes_max"] / 1024
        print(f"target: first render {ms} ms <= 1000 ms: {'met' if ms <= 1000 else 'not met'} "
              f"(slowest of {a.runs}: {page['first_render_ms_max']} ms); transferred {kb:.1f} KB <= 200 KB: "
              f"{'met' if kb <= 200 else 'not met'}")
        print(f"ratio: the page of {page['recipients']:,} recipients renders in {ms / tiny['first_render_ms_median']:.2f}x "
              f"the time of the page of {tiny['recipients']} ({ms} ms vs {tiny['first_render_ms_median']} ms); "
              f"its data answers in {api_s * 1000:.0f} ms, {cli_s / api_s:.1f}x faster than status on the command line")
    finally:
        if proc:
            proc.terminate()
            proc.wait(timeout=15)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
