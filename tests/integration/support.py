"""Helpers for blindcast's integration tests: run the binary, read maildirs,
parse messages with Python's email package (an independent parser)."""
import csv
import json
import email
import email.policy
import os
import signal
import subprocess
import sys
import tempfile
import time
import unicodedata
import unittest

BINARY = None
# Tests about delivery, not about gates, open the full stage's gates this way
# (recorded in the audit log like any forced send).
FORCE = ("--force", "--reason", "integration test of delivery")


def run(*args, check=None, timeout=300):
    """Runs blindcast with `args`; returns CompletedProcess (text)."""
    proc = subprocess.run([BINARY, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    if check is not None and proc.returncode != check:
        raise AssertionError(f"blindcast {' '.join(map(str, args))} exited {proc.returncode}, "
                             f"wanted {check}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def maildir_files(root):
    new = os.path.join(root, "new")
    if not os.path.isdir(new):
        return []
    return sorted(os.path.join(new, f) for f in os.listdir(new))


def parse(path):
    with open(path, "rb") as f:
        return email.message_from_binary_file(f, policy=email.policy.default)


def normalise(address):
    """Independent normalisation: lower-case domain in IDNA2008 form (Python's
    "idna" codec is IDNA 2003, which maps ß to ss: fußball.de is not fussball.de)."""
    local, _, domain = address.strip().rpartition("@")
    labels = []
    for label in domain.split("."):
        label = unicodedata.normalize("NFC", label.lower())
        labels.append(label if label.isascii() else "xn--" + label.encode("punycode").decode("ascii"))
    return local + "@" + ".".join(labels)


def audience_emails(path):
    with open(path, newline="", encoding="utf-8-sig") as f:
        return [row["email"] for row in csv.DictReader(f)]


def wait_for(predicate, timeout=30.0, what="the condition"):
    """Polls `predicate` every 50 ms until it holds; fails the test after `timeout` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Case(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="blindcast-it-")
        self.tmp = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()


def main():
    global BINARY
    BINARY = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)


PEER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "peers", "smtp_peer.py")


class SmtpPeer:
    """The scripted aiosmtpd server on 127.0.0.1 (tests/peers/smtp_peer.py)."""

    def __init__(self, workdir, *args):
        self.log_path = os.path.join(workdir, f"peer-{len(os.listdir(workdir))}.jsonl")
        self.proc = subprocess.Popen(["/usr/bin/python3", PEER, "--log", self.log_path, *map(str, args)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("READY "):
            raise AssertionError(f"SMTP peer did not start: {line!r}")
        self.port = int(line.split()[1])

    def records(self, event=None):
        if not os.path.exists(self.log_path):
            return []
        with open(self.log_path) as f:
            # The peer may be writing its last line while we read: a line
            # without its newline is not complete yet.
            rows = [json.loads(l) for l in f if l.endswith("\n") and l.strip()]
        return [r for r in rows if event is None or r["event"] == event]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class _DnsExited(Exception):
    pass


class Dns:
    """Debian's dnsmasq on 127.0.0.1 and a free port, authoritative for .test
    (anything else there is NXDOMAIN), serving `zone` (dnsmasq option lines:
    mx-host=, host-record=, dns-rr=)."""

    def __init__(self, workdir, zone, ttl=60):
        # The free port found may be taken again before dnsmasq binds it
        # (tests run side by side): a dnsmasq that exits at once is started
        # again on another port.
        for attempt in range(5):
            try:
                self._start(workdir, zone, ttl)
                return
            except _DnsExited:
                if attempt == 4:
                    raise AssertionError(f"dnsmasq did not start: {self.error}")

    def _start(self, workdir, zone, ttl):
        import pwd
        import socket
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        conf = os.path.join(workdir, "dnsmasq.conf")
        with open(conf, "w") as f:
            f.write(f"port={self.port}\nlisten-address=127.0.0.1\nbind-interfaces\nno-resolv\nno-hosts\n"
                    f"local=/test/\npid-file=\nuser={pwd.getpwuid(os.getuid()).pw_name}\nlocal-ttl={ttl}\n")
            f.write("\n".join(zone) + "\n")
        self.proc = subprocess.Popen(["/usr/sbin/dnsmasq", "--keep-in-foreground", f"--conf-file={conf}"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # Ready once it answers a query (a raw DNS query for test. SOA).
        query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x04test\x00\x00\x06\x00\x01"
        deadline = time.time() + 10
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(0.2)
                try:
                    s.sendto(query, ("127.0.0.1", self.port))
                    s.recv(512)
                    break
                except OSError:
                    if self.proc.poll() is not None:
                        self.error = self.proc.stderr.read()
                        self.proc.stderr.close()
                        raise _DnsExited()
                    if time.time() > deadline:
                        raise AssertionError(f"dnsmasq did not answer within 10 s")
        self.server = f"127.0.0.1:{self.port}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc.stderr.close()


class PeerCase(Case):
    """A test case that starts scripted SMTP peers and stops them afterwards."""

    peer_args = ()

    def setUp(self):
        super().setUp()
        self.peers = []

    def tearDown(self):
        for p in self.peers:
            p.stop()
        super().tearDown()

    def peer(self, *args):
        p = SmtpPeer(self.tmp, *self.peer_args, *args)
        self.peers.append(p)
        return p


def kill_after_resend(proc, peer, window, pause, timeout=30.0):
    """SIGKILLs a running `send` at a random moment of its own: once it has
    delivered `window` + 20 more messages (what the previous kill left in
    flight, sent again: a run killed before that halts on the guard's "third
    message" limit, by design) and `pause` seconds more. True when it was
    still running to be killed."""
    before = len(peer.records("message"))
    deadline = time.time() + timeout
    while len(peer.records("message")) < before + window + 20 and time.time() < deadline:
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    time.sleep(pause)
    killed = False
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        killed = True
    if proc.poll() is None:
        proc.kill()
    proc.communicate()
    return killed


def write_campaign(root, emails, extra_toml="", name="c"):
    """An init'ed campaign whose audience is `emails` (all locale en)."""
    d = os.path.join(root, name)
    run("init", d, check=0)
    with open(os.path.join(d, "audience.csv"), "w") as f:
        f.write("email,name,locale,assets,effective_date,ticket\n")
        for e in emails:
            f.write(f"{e},Person,en,1,2026-12-01,\n")
    if extra_toml:
        with open(os.path.join(d, "campaign.toml"), "a") as f:
            f.write("\n" + extra_toml + "\n")
    return d


def status(d):
    return json.loads(run("status", d, "--json", check=0).stdout)


def realistic_campaign(d, rows, relay_port, canary=None, campaign_id=None, extra_toml=""):
    """An init'ed campaign at `d` whose audience is `rows` ((email, name,
    locale), e.g. realistic_audience.generate()), sending to the relay on
    `relay_port`; `canary` replaces the canary table; linted."""
    import re
    run("init", d, check=0)
    with open(os.path.join(d, "audience.csv"), "w", encoding="utf-8") as f:
        f.write("email,name,locale,assets,effective_date,ticket\n")
        for email, person, locale in rows:
            f.write(f'{email},"{person}",{locale},2,2026-12-01,\n')
    toml = os.path.join(d, "campaign.toml")
    with open(toml) as f:
        text = f.read().replace('url = "maildir:out/maildir"', f'url = "smtp://127.0.0.1:{relay_port}"')
    if campaign_id:
        text = re.sub(r'^id = ".*"$', f'id = "{campaign_id}"', text, flags=re.M)
    if canary:
        text = re.sub(r"canary = \{[^}]*\}", "canary = " + canary, text)
    with open(toml, "w") as f:
        f.write(text + extra_toml)
    run("lint", d, check=0)
    return d
