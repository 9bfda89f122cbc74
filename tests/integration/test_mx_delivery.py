"""Direct delivery to MX hosts (SPEC §11), all on loopback: dnsmasq serves
test zones whose MX records point at SMTP peers on 127.0.0.2 and 127.0.0.3
(one port for both: `[transport] mx_port`), and a dead address, 127.0.0.4.

Per domain: MX by preference; the next MX host when the first refuses, closes,
or greets with a 4xx or 5xx;
equal preferences spread; the address record when there is no MX; null MX
and NXDOMAIN failed at once without a connection; a domain whose DNS does not
answer retried and aged; a destination's connection cap; lanes by MX host."""
import collections
import http.server
import json
import os
import re
import socket
import ssl
import subprocess
import threading

import support
from support import FORCE, Dns, SmtpPeer, run, status, write_campaign

ZONE = [
    # the lower preference first, whatever the order served
    "mx-host=pref.test,mx2.pref.test,20", "mx-host=pref.test,mx1.pref.test,10",
    "host-record=mx1.pref.test,127.0.0.2", "host-record=mx2.pref.test,127.0.0.3",
    # the first MX host refuses connections: the second takes the mail
    "mx-host=down.test,dead.down.test,10", "mx-host=down.test,up.down.test,20",
    "host-record=dead.down.test,127.0.0.4", "host-record=up.down.test,127.0.0.3",
    # the first MX host accepts the connection and closes it at once
    "mx-host=mute.test,closer.mute.test,10", "mx-host=mute.test,up.mute.test,20",
    "host-record=closer.mute.test,127.0.0.5", "host-record=up.mute.test,127.0.0.3",
    # the first MX host greets with 421 (busy) or 554 (refused): the second takes the mail
    "mx-host=busy.test,busy.busy.test,10", "mx-host=busy.test,up.busy.test,20",
    "host-record=busy.busy.test,127.0.0.7", "host-record=up.busy.test,127.0.0.3",
    "mx-host=refusing.test,no.refusing.test,10", "mx-host=refusing.test,up.refusing.test,20",
    "host-record=no.refusing.test,127.0.0.8", "host-record=up.refusing.test,127.0.0.3",
    # an internationalized domain: its MX record is under the A-label (münchen.test)
    "mx-host=xn--mnchen-3ya.test,mx.xn--mnchen-3ya.test,10", "host-record=mx.xn--mnchen-3ya.test,127.0.0.2",
    # equal preferences
    "mx-host=equal.test,a.equal.test,10", "mx-host=equal.test,b.equal.test,10",
    "host-record=a.equal.test,127.0.0.2", "host-record=b.equal.test,127.0.0.3",
    # no MX: the domain's own address
    "host-record=nomx.test,127.0.0.3",
    # null MX (RFC 7505): MX 0 "." as raw RDATA
    "dns-rr=null.test,15,000000",
    # a company hosted by Google (the built-in google lane matches *.google.com)
    "mx-host=company.test,aspmx.l.google.com,1", "host-record=aspmx.l.google.com,127.0.0.2",
]


def mx_campaign(root, emails, transport, extra=""):
    """An init'ed campaign whose [transport] holds `transport` instead of its maildir url."""
    d = write_campaign(root, emails, extra)
    path = os.path.join(d, "campaign.toml")
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text.replace('url = "maildir:out/maildir"', 'url = "mx:"\n' + transport))
    return d


class Closer:
    """Accepts TCP connections on `host`:`port` and closes each at once,
    before any greeting (or after `greeting`, a reply line)."""

    def __init__(self, host, port, greeting=None):
        self.greeting = greeting
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(64)
        self.accepted = 0
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            if self.greeting:
                try:
                    conn.sendall(self.greeting.encode() + b"\r\n")
                except OSError:
                    pass
            conn.close()

    def stop(self):
        self.sock.close()


class PolicyServer:
    """HTTPS on 127.0.0.6 serving /.well-known/mta-sts.txt by Host from
    `policies` (a host not there: 404); `fetched` lists the requests."""

    def __init__(self, cert, key, policies):
        self.policies = policies
        self.fetched = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                host = self.headers.get("Host", "").split(":")[0]
                outer.fetched.append((host, self.path))
                body = outer.policies.get(host)
                if self.path != "/.well-known/mta-sts.txt" or body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.6", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def make_cert(root, name, sans):
    cert, key = os.path.join(root, f"{name}.pem"), os.path.join(root, f"{name}.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={name}",
                    "-addext", "subjectAltName=" + ",".join(f"DNS:{s}" for s in sans), "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    return cert, key


def last_replies(d):
    """The replies `status` lists as the last errors, in one string."""
    return " ".join(e["reply"] for e in status(d)["last_errors"])


def port_free_on_both():
    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.2", 0))
            port = a.getsockname()[1]
            with socket.socket() as b:
                try:
                    b.bind(("127.0.0.3", port))
                except OSError:
                    continue
            return port
    raise AssertionError("no port free on both 127.0.0.2 and 127.0.0.3")


class MxDelivery(support.Case):
    def test_each_domain_goes_to_its_own_mx_hosts(self):
        dns = Dns(self.tmp, ZONE)
        port = port_free_on_both()
        first = SmtpPeer(self.tmp, "--host", "127.0.0.2", "--port", port)
        second = SmtpPeer(self.tmp, "--host", "127.0.0.3", "--port", port)
        closer = Closer("127.0.0.5", port)
        busy = Closer("127.0.0.7", port, "421 4.3.2 busy, try later")
        refusing = Closer("127.0.0.8", port, "554 5.7.1 no service for you")
        try:
            groups = {"pref.test": 30, "down.test": 20, "mute.test": 15, "busy.test": 6, "refusing.test": 6, "equal.test": 80, "nomx.test": 10, "null.test": 5,
                      "missing.test": 5}
            emails = [f"person{i:03d}@{domain}" for domain, n in groups.items() for i in range(n)]
            # Real names, an internationalized domain written in Unicode, a mixed-case domain.
            emails += ["juergen.mueller@münchen.test", "anna-lena.o'neil@münchen.test", "Zoe.Weiss@PREF.Test"]
            # At most 10 messages a connection: equal.test's 80 need eight
            # connections or more, and connections take equal MX hosts in
            # turn (one fast connection could otherwise carry them all).
            d = mx_campaign(self.tmp, emails,
                            f'resolver = "{dns.server}"\nmx_port = {port}\nconnections = 20\n'
                            'connections_per_destination = 8\nmessages_per_connection = 10\n',
                            '[delivery]\nretry = ["1s"]\n')
            out = run("send", d, "--stage", "full", *FORCE, timeout=120)
            self.assertEqual(out.returncode, 1, "finished with undelivered recipients: " + out.stderr[-3000:])

            def domains(peer):
                got = collections.Counter(m["rcpt_tos"][0].split("@")[1] for m in peer.records("message"))
                return got

            at_first, at_second = domains(first), domains(second)
            self.assertEqual(at_first["pref.test"], 31, "preference 10 (127.0.0.2) takes the mail")
            self.assertEqual(at_first["xn--mnchen-3ya.test"], 2, "a Unicode domain is looked up by its A-label")
            self.assertEqual(at_second["pref.test"], 0)
            self.assertEqual(at_second["down.test"], 20, "the first MX host refuses: the second")
            self.assertEqual(at_second["mute.test"], 15, "the first MX host closes before its greeting: the second")
            self.assertGreaterEqual(closer.accepted, 1)
            self.assertEqual(at_second["busy.test"], 6, "a 4xx greeting: the next MX host")
            self.assertEqual(at_second["refusing.test"], 6, "a 5xx greeting bounces nobody while other hosts remain")
            self.assertGreaterEqual(busy.accepted, 1)
            self.assertGreaterEqual(refusing.accepted, 1)
            self.assertEqual(at_first["equal.test"] + at_second["equal.test"], 80)
            self.assertGreaterEqual(at_first["equal.test"], 10, "equal preferences share the mail")
            self.assertGreaterEqual(at_second["equal.test"], 10, "equal preferences share the mail")
            self.assertEqual(at_second["nomx.test"], 10, "no MX: the domain's own address")
            for peer in (first, second):
                for m in peer.records("message"):
                    self.assertEqual(len(m["rcpt_tos"]), 1)
                seen = {r["address"].split("@")[1] for r in peer.records("rcpt")}
                self.assertFalse(seen & {"null.test", "missing.test"}, "no connection for them")

            st = status(d)
            self.assertEqual(st["states"]["sent"], 170)
            self.assertEqual(st["states"]["bounced"], 10, "null MX and NXDOMAIN fail at once")
            replies = last_replies(d)
            self.assertIn("5.1.10", replies)
            self.assertIn("null MX", replies)
            self.assertIn("5.1.2", replies)
        finally:
            closer.stop()
            busy.stop()
            refusing.stop()
            first.stop()
            second.stop()
            dns.stop()

    def test_a_destination_opens_at_most_its_connection_cap(self):
        dns = Dns(self.tmp, ZONE)
        port = port_free_on_both()
        first = SmtpPeer(self.tmp, "--host", "127.0.0.2", "--port", port, "--delay", "0.005")
        try:
            emails = [f"person{i:03d}@pref.test" for i in range(300)]
            d = mx_campaign(self.tmp, emails, f'resolver = "{dns.server}"\nmx_port = {port}\nconnections = 20\n'
                                              'connections_per_destination = 3\n')
            out = run("send", d, "--stage", "full", *FORCE, timeout=120)
            self.assertEqual(out.returncode, 0, out.stderr[-3000:])
            self.assertEqual(len(first.records("message")), 300)
            # Sessions open at once, counted by the server: the cap, reached and held.
            self.assertEqual(max(r["open"] for r in first.records("session")), 3)
        finally:
            first.stop()
            dns.stop()

    def test_lanes_match_by_mx_host_in_plan_and_send(self):
        dns = Dns(self.tmp, ZONE)
        port = port_free_on_both()
        first = SmtpPeer(self.tmp, "--host", "127.0.0.2", "--port", port)
        second = SmtpPeer(self.tmp, "--host", "127.0.0.3", "--port", port)
        try:
            emails = ([f"staff{i:02d}@company.test" for i in range(12)] +
                      [f"person{i:02d}@equal.test" for i in range(8)] + [f"person{i:02d}@pref.test" for i in range(5)])
            d = mx_campaign(self.tmp, emails, f'resolver = "{dns.server}"\nmx_port = {port}\n',
                            '[shaping.acme]\nmx = ["*.equal.test"]\nrate = "100/s"\n')
            plan = json.loads(run("plan", d, "--json").stdout)
            lanes = {l["lane"]: l["recipients"] for l in plan["lanes"]}
            self.assertEqual(lanes, {"google": 12, "acme": 8, "default": 5},
                             "a domain hosted by Google is in Google's lane; a lane of our own by its MX pattern")
            out = run("send", d, "--stage", "full", *FORCE, timeout=120)
            self.assertEqual(out.returncode, 0, out.stderr[-3000:])
            self.assertIn("lanes by MX host: 2 of 3 domains", out.stderr)
            self.assertEqual(status(d)["states"]["sent"], len(emails))
            # A bad pattern is refused with the form it must take.
            with open(os.path.join(d, "campaign.toml"), "a") as f:
                f.write('[shaping.bad]\nmx = ["*"]\n')
            lint = run("lint", d)
            self.assertEqual(lint.returncode, 2, lint.stdout + lint.stderr)
            self.assertIn("shaping.bad.mx", lint.stdout + lint.stderr)
        finally:
            first.stop()
            second.stop()
            dns.stop()

    def test_a_domain_whose_dns_does_not_answer_is_retried_and_aged(self):
        # Nothing listens on the resolver's port: every lookup fails for now.
        # The recipient's own domain cannot be resolved: retried on the
        # schedule and aged (failed at max_retry_age), not held like a relay.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            dead = s.getsockname()[1]
        emails = [f"person{i:02d}@pref.test" for i in range(5)]
        d = mx_campaign(self.tmp, emails, f'resolver = "127.0.0.1:{dead}"\nmx_port = 2525\n',
                        '[delivery]\nretry = ["1s"]\nmax_retry_age = "3s"\n')
        out = run("send", d, "--stage", "full", *FORCE, timeout=120)
        self.assertEqual(out.returncode, 1, out.stderr[-2000:])
        st = status(d)
        self.assertEqual(st["states"]["failed"], 5, st["states"])
        self.assertEqual(st["states"]["bounced"], 0)
        replies = last_replies(d)
        self.assertIn("4.4.3", replies)
        self.assertIn("max_retry_age", replies)

    def test_mta_sts_enforce_sends_only_over_verified_tls_to_the_hosts_it_names(self):
        # One certificate (its own trust anchor) for the policy hosts and the MX host.
        cert, key = make_cert(self.tmp, "mx.sts.test", ["mx.sts.test", "mta-sts.sts.test", "mta-sts.wrong.test"])
        policy = PolicyServer(cert, key, {
            "mta-sts.sts.test": "version: STSv1\nmode: enforce\nmx: mx.sts.test\nmax_age: 86400\n",
            "mta-sts.wrong.test": "version: STSv1\nmode: enforce\nmx: *.elsewhere.example\nmax_age: 86400\n"})
        fetched = policy.fetched
        zone = ZONE + [
            'txt-record=_mta-sts.sts.test,"v=STSv1; id=20261129"', "host-record=mta-sts.sts.test,127.0.0.6",
            "mx-host=sts.test,mx.sts.test,10", "host-record=mx.sts.test,127.0.0.2",
            'txt-record=_mta-sts.wrong.test,"v=STSv1; id=20261129"', "host-record=mta-sts.wrong.test,127.0.0.6",
            "mx-host=wrong.test,mx.wrong.test,10", "host-record=mx.wrong.test,127.0.0.3",
        ]
        dns = Dns(self.tmp, zone)
        port = port_free_on_both()
        tls_peer = SmtpPeer(self.tmp, "--host", "127.0.0.2", "--port", port, "--cert", cert, "--key", key)
        plain_peer = SmtpPeer(self.tmp, "--host", "127.0.0.3", "--port", port)
        try:
            emails = [f"person{i:02d}@sts.test" for i in range(6)] + [f"person{i:02d}@wrong.test" for i in range(4)]
            d = mx_campaign(self.tmp, emails,
                            f'resolver = "{dns.server}"\nmx_port = {port}\nmta_sts_port = {policy.port}\n'
                            f'ca_file = "{cert}"\n', '[delivery]\nretry = ["1s"]\nmax_retry_age = "2s"\n')
            out = run("send", d, "--stage", "full", *FORCE, timeout=120)
            self.assertEqual(out.returncode, 1, out.stderr[-3000:])
            got = tls_peer.records("message")
            self.assertEqual(sorted(m["rcpt_tos"][0] for m in got), sorted(e for e in emails if e.endswith("@sts.test")))
            self.assertTrue(all(m["tls"] for m in got), "over TLS only")
            self.assertEqual(plain_peer.records("rcpt"), [], "never to an MX host the policy does not name")
            self.assertIn(("mta-sts.sts.test", "/.well-known/mta-sts.txt"), fetched)
            st = status(d)
            self.assertEqual(st["states"]["sent"], 6)
            self.assertEqual(st["states"]["failed"], 4, "deferred, retried, then aged out")
            replies = last_replies(d)
            self.assertIn("4.7.5", replies)
            self.assertIn("MTA-STS", replies)
            with open(os.path.join(d, ".blindcast", "mta-sts-cache")) as f:
                cache = f.read()
            self.assertIn("sts.test\t20261129\t", cache, "kept for its max_age beyond this process")
        finally:
            policy.stop()
            tls_peer.stop()
            plain_peer.stop()
            dns.stop()

    def test_a_failed_fetch_keeps_the_policy_and_an_untrusted_certificate_is_not_used(self):
        # The policy names mx.sts.test, whose server shows a certificate no
        # trust anchor signed: nothing is sent (deferred, then aged out).
        cert, key = make_cert(self.tmp, "policy", ["mta-sts.sts.test"])
        rogue_cert, rogue_key = make_cert(self.tmp, "rogue", ["mx.sts.test"])
        policy = PolicyServer(cert, key, {
            "mta-sts.sts.test": "version: STSv1\nmode: enforce\nmx: mx.sts.test\nmax_age: 86400\n"})
        port = port_free_on_both()
        peer = SmtpPeer(self.tmp, "--host", "127.0.0.2", "--port", port, "--cert", rogue_cert, "--key", rogue_key)

        def zone(policy_id):
            return ZONE + [f'txt-record=_mta-sts.sts.test,"v=STSv1; id={policy_id}"',
                           "host-record=mta-sts.sts.test,127.0.0.6", "mx-host=sts.test,mx.sts.test,10",
                           "host-record=mx.sts.test,127.0.0.2"]

        dns = Dns(self.tmp, zone("one"))
        d = None
        try:
            d = mx_campaign(self.tmp, ["person00@sts.test"],
                            f'resolver = "{dns.server}"\nmx_port = {port}\nmta_sts_port = {policy.port}\n'
                            f'ca_file = "{cert}"\n', '[delivery]\nretry = ["1s"]\nmax_retry_age = "2s"\n')
            out = run("send", d, "--stage", "full", *FORCE, timeout=120)
            self.assertEqual(out.returncode, 1, out.stderr[-3000:])
            self.assertEqual(peer.records("message"), [], "not to a server whose certificate fails")
            self.assertEqual(status(d)["states"]["failed"], 1)
        finally:
            dns.stop()
        # A new policy id, and the policy host now answers 404: the policy in
        # force stays (enforce), so a new recipient is still not sent in clear.
        policy.policies.clear()
        dns = Dns(self.tmp, zone("two"))
        try:
            path = os.path.join(d, "campaign.toml")
            with open(path) as f:
                text = f.read()
            with open(path, "w") as f:
                f.write(re.sub(r'resolver = "[^"]*"', f'resolver = "{dns.server}"', text))
            with open(os.path.join(d, "audience.csv"), "a") as f:
                f.write("person01@sts.test,Person,en,1,2026-12-01,\n")
            out = run("send", d, "--stage", "full", *FORCE, timeout=120)
            self.assertEqual(out.returncode, 1, out.stderr[-3000:])
            self.assertIn("could not be fetched", out.stderr)
            self.assertIn("the one in force stays", out.stderr)
            self.assertEqual(peer.records("message"), [])
            with open(os.path.join(d, ".blindcast", "mta-sts-cache")) as f:
                self.assertIn("sts.test\tone\t", f.read(), "the cached policy was not replaced")
        finally:
            policy.stop()
            peer.stop()
            dns.stop()

    def test_mx_settings_that_cannot_work_are_refused(self):
        d = mx_campaign(self.tmp, ["a@pref.test"], 'resolver = "dns.example:fifty"\n')
        out = run("send", d, "--stage", "full", *FORCE, timeout=60)
        self.assertEqual(out.returncode, 2, out.stderr)
        self.assertIn("[transport] resolver", out.stderr)
        self.assertIn("HOST:PORT", out.stderr)


if __name__ == "__main__":
    support.main()
