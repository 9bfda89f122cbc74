"""Benchmarks of `blindcast serve` (SPEC §8) beside Postfix, in one run.

latency: transactional messages at 50 requests/s, from POST /v1/messages to
  their arrival at the relay (bench/timing_sink.py timestamps each before it
  answers 250), idle and while a campaign of N recipients is sending at full
  speed through the same relay; blindcast in turns with campaigns yielding to
  transactional mail (the default, [priority]) and without. Peer: a private Postfix (bench/postfix_relay.sh)
  relaying to the same sink, the same campaign in its queue (smtp-source), the
  transactional message injected over SMTP: from the start of that SMTP
  transaction to its arrival at the sink.
intake: durable accepted messages per second (wrk, keep-alive, an
  Idempotency-Key per request). Peer: Postfix's smtpd taking the same number
  of messages from smtp-source into its queue.

Usage: serve_bench.py BINARY [latency|intake ...] [--recipients N]
Prints one line per measurement and the ratios.
"""
import argparse
import http.client
import json
import os
import shutil
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


class Sink:
    """bench/timing_sink.py: arrival times of marked messages."""

    def __init__(self, work):
        self.log = os.path.join(work, f"sink-{time.time_ns()}.log")
        self.proc = subprocess.Popen([PY, os.path.join(HERE, "timing_sink.py"), "--port", "0", "--log", self.log, "--workers", "2"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("READY "), line
        self.port = int(line.split()[1])

    def arrivals(self):
        out = {}
        if os.path.exists(self.log):
            for line in open(self.log):
                parts = line.rstrip("\n").split("\t")
                if len(parts) == 2:
                    out[parts[0]] = float(parts[1])
        return out

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)
        total = [l for l in open(self.log) if l.startswith("TOTAL")]
        return int(total[-1].split()[1]) if total else 0


def quantiles(values):
    values = sorted(values)
    p = lambda q: values[min(len(values) - 1, int(q * len(values)))]
    return p(0.50), p(0.99)


class Service:
    def __init__(self, binary, work, relay_port, extra=""):
        self.binary, self.work = binary, work
        self.port = free_port()
        write(os.path.join(work, "secrets", "unsubscribe.key"), "bench-unsubscribe-key-0123456789abcdef\n", 0o600)
        d = os.path.join(work, "streams", "password-reset")
        write(os.path.join(d, "campaign.toml"), """kind = "transactional"
security = true
id = "password-reset"
from = "Example Exchange <security@example.com>"
default_locale = "en"
list_unsubscribe = "https://mail.example.com/u/{{unsubscribe_token}}"
[transport]
url = "maildir:out"
[unsubscribe]
secret_file = "../../secrets/unsubscribe.key"
""")
        write(os.path.join(d, "templates", "subject.txt"), "Reset your password, {{name}}\n")
        write(os.path.join(d, "templates", "body.txt"),
              "Hello {{name}},\n\nuse this link within 30 minutes: {{reset_url}}\n\nCode: {{code}}\n")
        write(os.path.join(d, "samples.csv"),
              "email,name,locale,reset_url,code\nsample@example.com,Sample,en,https://example.com/r/abc,123456\n")
        subprocess.run([binary, "lint", d], capture_output=True)
        subprocess.run([binary, "approve", d, "--by", "bench"], capture_output=True, check=True)
        self.config = os.path.join(work, "server.toml")
        write(self.config, f"""listen = "127.0.0.1:{self.port}"
state = "state/blindcast.db"
streams = "streams/"
campaigns = ["campaigns/*"]
[transport]
url = "smtp://127.0.0.1:{relay_port}"
connections = 20
[unsubscribe]
secret_file = "secrets/unsubscribe.key"
[intake]
rate = 1000000
burst = 1000000
max_queued = 100000000
{extra}
""")

    def key(self, name, scopes):
        return subprocess.run([self.binary, "keys", "create", name, "--scope", scopes, "--cidr", "127.0.0.1/32",
                               "--config", self.config], capture_output=True, text=True, check=True).stdout.strip()

    def start(self):
        self.proc = subprocess.Popen([self.binary, "serve", "--config", self.config], stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.work, "serve.log"), "w"))
        for _ in range(200):
            try:
                if self.request("GET", "/healthz")[0] == 200:
                    return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("serve did not start: " + open(os.path.join(self.work, "serve.log")).read())

    def request(self, method, path, body=None, key=None, conn=None):
        c = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        h = {"Content-Type": "application/json"}
        if key:
            h["Authorization"] = f"Bearer {key}"
        c.request(method, path, body=None if body is None else json.dumps(body), headers=h)
        r = c.getresponse()
        data = r.read()
        if conn is None:
            c.close()
        return r.status, json.loads(data) if data.startswith(b"{") else data

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)


def write_campaign(binary, work, relay_port, recipients):
    d = os.path.join(work, "campaigns", "announcement")
    subprocess.run([binary, "init", d], capture_output=True, check=True)
    with open(os.path.join(d, "audience.csv"), "w") as f:
        f.write("email,name,locale,assets,effective_date,ticket\n")
        for i in range(recipients):
            f.write(f"customer{i}@example.com,Customer {i},en,1,2026-12-01,\n")
    toml = os.path.join(d, "campaign.toml")
    text = open(toml).read().replace('url = "maildir:out/maildir"', f'url = "smtp://127.0.0.1:{relay_port}"')
    write(toml, text)
    subprocess.run([binary, "lint", d, "--sample", "200"], capture_output=True)
    return d


def paced_sends(count, rate, send_one):
    """Calls send_one(i) `count` times at `rate` per second (each on a thread: one slow answer holds up no other)."""
    threads = []
    start = time.time()
    for i in range(count):
        delay = start + i / rate - time.time()
        if delay > 0:
            time.sleep(delay)
        t = threading.Thread(target=send_one, args=(i,))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()


def measure_phase(sink, posted, count, phase, send_one):
    """Sends `count` marked messages at 50/s with send_one(i, phase) (which
    notes each send's start in `posted`); returns the seconds from each
    start to its arrival at `sink` (waiting up to 2 minutes for them)."""
    paced_sends(count, 50, lambda i: send_one(i, phase))
    mine = lambda m: m.startswith(f"bench-{phase}-")
    deadline = time.time() + 120
    while time.time() < deadline:
        got = sink.arrivals()
        if all(m in got for m in posted if mine(m)):
            break
        time.sleep(0.1)
    got = sink.arrivals()
    return [got[m] - posted[m] for m in posted if mine(m) and m in got]


def campaign_phase(svc, ops, approver, recipients, measure):
    """Runs the campaign's canary, approves it with a second key, starts the
    full stage and, once it sends at full speed, calls measure(); returns
    what measure() returned and the campaign's rate meanwhile (msg/s),
    after the stage has finished."""
    cid = "index-change-2026-11"
    status = lambda: svc.request("GET", f"/v1/campaigns/{cid}", key=ops)[1]
    running = lambda: status().get("run", {}).get("running") is not False
    svc.request("POST", f"/v1/campaigns/{cid}/send", {"stage": "canary"}, key=ops)
    while running():
        time.sleep(0.2)
    svc.request("POST", f"/v1/campaigns/{cid}/approve", key=approver)
    code, body = svc.request("POST", f"/v1/campaigns/{cid}/send", {"stage": "full"}, key=ops)
    assert code == 202, body
    while status()["states"]["sent"] < recipients // 20:
        time.sleep(0.05)
    before, t0 = status()["states"]["sent"], time.time()
    measured = measure()
    during = (status()["states"]["sent"] - before) / (time.time() - t0)
    while running():
        time.sleep(0.2)
    return measured, during


def ours_latency(binary, recipients, count, campaigns_yield=True):
    work = tempfile.mkdtemp(prefix="bc-serve-bench-")
    sink = Sink(work)
    svc = Service(binary, work, sink.port, "" if campaigns_yield else "[priority]\ncampaigns_yield = false")
    write_campaign(binary, work, sink.port, recipients)
    svc.start()
    sender, ops, approver = svc.key("bench", "send"), svc.key("ops", "campaigns,read"), svc.key("approver", "approve")
    posted = {}

    def send_one(i, phase):
        mid = f"bench-{phase}-{i}"
        t0 = time.time()
        status, _ = svc.request("POST", "/v1/messages", {"stream": "password-reset", "to": f"{mid}@example.org",
                                                          "data": {"name": "Zoë", "reset_url": "https://e.example/r",
                                                                   "code": str(i)}}, key=sender)
        assert status == 202, status
        posted[mid] = t0

    def measure(phase):
        return measure_phase(sink, posted, count, phase, send_one)

    # Warm-up, not measured: the first messages of a fresh service load the
    # stream and open its builders and store connections.
    measure_phase(sink, posted, 5, "warm", send_one)
    idle = measure("idle")
    loaded, during = campaign_phase(svc, ops, approver, recipients, lambda: measure("load"))
    svc.stop()
    sink.stop()
    shutil.rmtree(work, ignore_errors=True)
    return idle, loaded, during


def histogram(metrics_text):
    """The latency histogram's cumulative buckets: [(upper bound s, count)]."""
    import re
    return [(float("inf") if m.group(1) == "+Inf" else float(m.group(1)), int(m.group(2)))
            for m in re.finditer(r'blindcast_transactional_latency_seconds_bucket\{le="([^"]+)"\} (\d+)', metrics_text)]


def bucket_quantile(before, after, q):
    """Upper bound of the bucket holding quantile q of what was added between two readings."""
    added = [(le, a - b) for (le, a), (_, b) in zip(after, before)]
    total = added[-1][1]
    for le, n in added:
        if n >= q * total:
            return le
    return float("inf")


def ours_latency_c_relay(binary, recipients, count):
    """The same phases with Postfix's smtp-sink (C, not saturated) as the relay,
    timed by the service itself: acceptance to the relay's 250 (histogram)."""
    work = tempfile.mkdtemp(prefix="bc-serve-bench-c-")
    port = free_port()
    sink = subprocess.Popen(["smtp-sink", "-u", "nobody", f"127.0.0.1:{port}", "1024"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    svc = Service(binary, work, port)
    write_campaign(binary, work, port, recipients)
    svc.start()
    sender, ops, approver = svc.key("bench", "send"), svc.key("ops", "campaigns,read"), svc.key("approver", "approve")
    prom = svc.key("prom", "read")

    def phase(name):
        before = histogram(svc.request("GET", "/metrics", key=prom)[1].decode())
        paced_sends(count, 50, lambda i: svc.request(
            "POST", "/v1/messages", {"stream": "password-reset", "to": f"bench-{name}-{i}@example.org",
                                     "data": {"name": "Zoë", "reset_url": "https://e.example/r", "code": str(i)}},
            key=sender))
        deadline = time.time() + 60
        while time.time() < deadline:
            after = histogram(svc.request("GET", "/metrics", key=prom)[1].decode())
            if after[-1][1] - before[-1][1] >= count:
                break
            time.sleep(0.1)
        return [bucket_quantile(before, after, q) for q in (0.5, 0.99)]

    idle = phase("idle")
    loaded, during = campaign_phase(svc, ops, approver, recipients, lambda: phase("load"))
    svc.stop()
    sink.terminate()
    sink.wait()
    shutil.rmtree(work, ignore_errors=True)
    return idle, loaded, during


def postfix_latency(recipients, count):
    if os.geteuid() != 0:
        return None, None, "Postfix peer skipped: it needs root"
    work = tempfile.mkdtemp(prefix="bc-postfix-bench-")
    sink = Sink(work)
    pport = free_port()
    pdir = os.path.join(work, "postfix")
    subprocess.run([os.path.join(HERE, "postfix_relay.sh"), "start", pdir, str(pport), str(sink.port)], check=True,
                   capture_output=True)
    posted = {}

    def send_one(i, phase):
        mid = f"bench-{phase}-{i}"
        t0 = time.time()
        with smtplib.SMTP("127.0.0.1", pport, timeout=60) as c:
            c.sendmail("security@example.com", [f"{mid}@example.org"],
                       f"From: security@example.com\r\nTo: {mid}@example.org\r\nX-Bench-Id: {mid}\r\n"
                       f"Subject: Reset your password\r\n\r\nCode: {i}\r\n")
        posted[mid] = t0

    def measure(phase):
        return measure_phase(sink, posted, count, phase, send_one)

    idle = measure("idle")
    # The campaign in its queue: smtp-source as fast as Postfix takes it, while Postfix relays it.
    src = subprocess.Popen(["smtp-source", "-s", "20", "-m", str(recipients), "-l", "4000", "-c", "-f",
                            "news@example.com", "-t", "customer@example.com", f"127.0.0.1:{pport}"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(3)
    loaded = measure("load")
    src.wait()
    subprocess.run([os.path.join(HERE, "postfix_relay.sh"), "stop", pdir], capture_output=True)
    sink.stop()
    shutil.rmtree(work, ignore_errors=True)
    return idle, loaded, ""


WRK_SCRIPT = """
-- Each wrk thread numbers its own requests; the thread's number keeps their
-- Idempotency-Keys and addresses apart.
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("id", tostring(threads))
end
local n = 0
request = function()
  n = n + 1
  local body = '{"stream":"password-reset","to":"user' .. id .. '-' .. n .. '@example.org","data":{"name":"Customer ' .. n ..
               '","reset_url":"https://example.com/r/' .. n .. '","code":"' .. n .. '"}}'
  return wrk.format("POST", "/v1/messages", {["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer KEY", ["Idempotency-Key"] = id .. "-" .. n}, body)
end
"""


def ours_intake(binary, seconds):
    work = tempfile.mkdtemp(prefix="bc-intake-bench-")
    port = free_port()
    sink = subprocess.Popen(["smtp-sink", "-u", "nobody", f"127.0.0.1:{port}", "1024"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    svc = Service(binary, work, port)
    svc.start()
    key = svc.key("bench", "send")
    script = os.path.join(work, "post.lua")
    write(script, WRK_SCRIPT.replace("KEY", key))
    out = subprocess.run(["wrk", "-t", "2", "-c", "32", "-d", f"{seconds}s", "-s", script,
                          f"http://127.0.0.1:{svc.port}"], capture_output=True, text=True).stdout
    svc.stop()
    import sqlite3
    db = sqlite3.connect(os.path.join(work, "state", "blindcast.db"))
    stored = db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    db.close()
    sink.terminate()
    sink.wait()
    shutil.rmtree(work, ignore_errors=True)
    non2xx = 0
    for line in out.splitlines():
        if "Non-2xx" in line:
            non2xx = int(line.split(":")[1])
    return stored / seconds, non2xx, out


def postfix_intake(messages):
    if os.geteuid() != 0:
        return None
    work = tempfile.mkdtemp(prefix="bc-postfix-intake-")
    port = free_port()
    sink = subprocess.Popen(["smtp-sink", "-u", "nobody", f"127.0.0.1:{port}", "1024"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    pport = free_port()
    pdir = os.path.join(work, "postfix")
    subprocess.run([os.path.join(HERE, "postfix_relay.sh"), "start", pdir, str(pport), str(port)], check=True,
                   capture_output=True)
    t0 = time.time()
    subprocess.run(["smtp-source", "-s", "32", "-m", str(messages), "-l", "300", "-c", "-f", "app@example.com", "-t",
                    "user@example.org", f"127.0.0.1:{pport}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rate = messages / (time.time() - t0)
    subprocess.run([os.path.join(HERE, "postfix_relay.sh"), "stop", pdir], capture_output=True)
    sink.terminate()
    sink.wait()
    shutil.rmtree(work, ignore_errors=True)
    return rate


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("what", nargs="*", default=["latency", "intake"])
    ap.add_argument("--recipients", type=int, default=100000)
    ap.add_argument("--count", type=int, default=250, help="transactional messages per phase (50/s)")
    ap.add_argument("--seconds", type=int, default=10, help="intake: wrk's run")
    ap.add_argument("--rounds", type=int, default=4, help="latency: blindcast's rounds, their samples pooled")
    a = ap.parse_args()
    if "latency" in a.what:
        print(f"== transactional latency, {a.count} messages at 50/s: idle, and beside a {a.recipients:,}-recipient "
              "campaign on the same relay (POST -> arrival at the relay's sink)", flush=True)
        # p99 of one round's 250 messages is its third-worst: the rounds'
        # samples are pooled (a fresh service and campaign each round).
        # In turns: the default (campaigns yield to transactional mail,
        # [priority]) and campaigns_yield = false, which shows what yielding
        # costs the campaign and buys the password resets.
        runs = {"yield": ([], [], []), "no yield": ([], [], [])}
        for r in range(a.rounds):
            for name, (idle, loaded, rates) in runs.items():
                ri, rl, during = ours_latency(os.path.abspath(a.binary), a.recipients, a.count, name == "yield")
                idle += ri
                loaded += rl
                rates.append(during)
                (r50, r99), (s50, s99) = quantiles(ri), quantiles(rl)
                print(f"round {r + 1}, {name}: idle p50 {r50 * 1000:.1f} ms p99 {r99 * 1000:.1f} ms; under load p50 "
                      f"{s50 * 1000:.1f} ms p99 {s99 * 1000:.1f} ms ({len(rl)}/{a.count} arrived; campaign at "
                      f"{during:,.0f}/s meanwhile)", flush=True)
        for name, (idle, loaded, rates) in runs.items():
            i50, i99 = quantiles(idle)
            l50, l99 = quantiles(loaded)
            print(f"blindcast, {name} ({a.rounds} rounds pooled, {len(idle)} + {len(loaded)} messages): idle p50 "
                  f"{i50 * 1000:.1f} ms p99 {i99 * 1000:.1f} ms; under load p50 {l50 * 1000:.1f} ms p99 "
                  f"{l99 * 1000:.1f} ms (campaign at {min(rates):,.0f}-{max(rates):,.0f}/s meanwhile); p99 load/idle "
                  f"{l99 / i99:.2f}", flush=True)
        l99 = quantiles(runs["yield"][1])[1]
        l50 = quantiles(runs["yield"][1])[0]
        (c50, c99), (d50, d99), cdur = ours_latency_c_relay(os.path.abspath(a.binary), a.recipients, a.count)
        print(f"blindcast, relay Postfix smtp-sink (C), acceptance -> relay's 250 (histogram bucket bounds): idle p50 "
              f"<= {c50 * 1000:g} ms p99 <= {c99 * 1000:g} ms; under load p50 <= {d50 * 1000:g} ms p99 <= "
              f"{d99 * 1000:g} ms (campaign at {cdur:,.0f}/s meanwhile); p99 load/idle <= {d99 / c99:.2f}", flush=True)
        pidle, ploaded, note = postfix_latency(a.recipients, a.count)
        if pidle is None:
            print(note)
        else:
            p50, p99 = quantiles(pidle)
            q50, q99 = quantiles(ploaded)
            print(f"postfix:   idle p50 {p50 * 1000:.1f} ms p99 {p99 * 1000:.1f} ms; under load p50 {q50 * 1000:.1f} "
                  f"ms p99 {q99 * 1000:.1f} ms ({len(ploaded)}/{a.count} arrived)")
            print(f"ratio: under load, blindcast's p99 is {q99 / l99:.1f}x shorter than Postfix's "
                  f"(p50 {q50 / l50:.1f}x)")
    if "intake" in a.what:
        print(f"== intake: durable accepted messages/s, wrk 2 threads x 32 keep-alive connections, {a.seconds}s, "
              "an Idempotency-Key per request", flush=True)
        rate, non2xx, out = ours_intake(os.path.abspath(a.binary), a.seconds)
        print(f"blindcast: {rate:,.0f} messages/s stored (non-2xx answers: {non2xx})")
        peer = postfix_intake(int(max(rate, 1000) * a.seconds))
        if peer is None:
            print("Postfix peer skipped: it needs root")
        else:
            print(f"postfix smtpd (smtp-source, 32 sessions, into its queue): {peer:,.0f} messages/s")
            print(f"ratio: blindcast's intake is {rate / peer:.2f}x Postfix's")


if __name__ == "__main__":
    main()
