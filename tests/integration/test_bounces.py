"""Bounces and complaints end to end (SPEC §9), behind a relay that accepts
everything (a scripted aiosmtpd peer), with a realistic audience (real name
patterns, country domains, suffix pairs, Unicode names):

- every message's envelope sender is bounce+TOKEN@DOMAIN, one token per
  recipient, and the same token rides in X-Blindcast-Token;
- DSNs that arrive later (ingested from files, or sent by a local MTA to the
  service's bounce receiver) close the canary on its bounce rate; a forged
  token suppresses nobody; the same report twice changes nothing;
- an ARF complaint that carries only the header token suppresses;
- the suppression list is the organisation's: a second campaign sharing the
  state store does not mail those addresses;
- the bounce receiver relays nothing, refuses oversized messages, and a
  transactional message's bounce stops the next message to that address."""
import json
import os
import re
import smtplib
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import realistic_audience  # noqa: E402
import support  # noqa: E402
import test_serve  # noqa: E402
from support import run  # noqa: E402

DOMAIN = "bounces.example.com"
VERP = re.compile(r"^bounce\+([a-z2-7]+)@bounces\.example\.com$")


def dsn(token, address, status="5.1.1", code="550", text="Recipient address rejected: User unknown"):
    """A Postfix-style RFC 3464 DSN sent back to the VERP address."""
    return f"""From: MAILER-DAEMON@mx1.example.net (Mail Delivery System)
To: bounce+{token}@{DOMAIN}
Subject: Undelivered Mail Returned to Sender
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B1"

--B1
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx1.example.net.
I'm sorry to have to inform you that your message could not be delivered.

--B1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx1.example.net
Arrival-Date: Sun, 29 Nov 2026 10:00:00 +0000

Final-Recipient: rfc822; {address}
Original-Recipient: rfc822;{address}
Action: failed
Status: {status}
Remote-MTA: dns; mx.example.net
Diagnostic-Code: smtp; {code} {status} <{address}>: {text}

--B1--
"""


def complaint(token, address):
    """An ARF report (RFC 5965) from a feedback loop: the returned headers
    carry the token; the envelope is the FBL address, not VERP."""
    return f"""From: feedback@fbl.mail.example.net
To: fbl@{DOMAIN}
Subject: FW: Important notice
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="F1"

--F1
Content-Type: text/plain

This is an email abuse report for an email message received from IP 192.0.2.10.

--F1
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: ExampleFBL/1.0
Version: 1
Original-Rcpt-To: {address}

--F1
Content-Type: text/rfc822-headers

From: Example Exchange <noreply@example.com>
To: <{address}>
Subject: Important notice
X-Blindcast-Token: {token}

--F1--
"""


def forge(token):
    """The token with one character of its MAC changed."""
    last = "a" if token[-1] != "a" else "b"
    return token[:-1] + last


class Bounces(support.PeerCase):
    def campaign(self, name, cid, rows, relay_port, canary):
        return support.realistic_campaign(
            os.path.join(self.tmp, name), rows, relay_port, canary, cid,
            f'\n[bounces]\ndomain = "{DOMAIN}"\nsecret_file = "../secrets/bounce.key"\n')

    def setUp(self):
        super().setUp()
        os.makedirs(os.path.join(self.tmp, "secrets"))
        key = os.path.join(self.tmp, "secrets", "bounce.key")
        with open(key, "wb") as f:
            f.write(os.urandom(32))
        os.chmod(key, 0o600)
        self.store = os.path.join(self.tmp, "messages")
        os.makedirs(self.store)
        self.relay = self.peer("--store", self.store)

    def tokens(self):
        """rcpt -> token, from the relay's envelopes; checks the header carries the same token."""
        out = {}
        headers = []
        for name in sorted(os.listdir(self.store)):
            with open(os.path.join(self.store, name), "rb") as f:
                m = re.search(rb"^X-Blindcast-Token: ([a-z2-7]+)\r?$", f.read(), re.M)
            headers.append(m.group(1).decode() if m else None)
        for rec in self.relay.records("message"):
            m = VERP.match(rec["mail_from"])
            self.assertIsNotNone(m, rec["mail_from"])
            out[rec["rcpt_tos"][0]] = m.group(1)
        self.assertEqual(sorted(headers), sorted(out.values()))
        self.assertEqual(len(set(out.values())), len(out), "one token per recipient")
        return out

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def test_late_bounces_close_the_canary_and_the_list_is_the_organisations(self):
        rows = realistic_audience.generate(120, seed=23)
        a = self.campaign("a", "year-end-notice", rows, self.relay.port,
                          '{ size = "10%", min = 12, wait = "1h", max_bounce_rate = 0.05 }')
        state = os.path.join(a, ".blindcast", "state.db")
        run("send", a, "--stage", "canary", check=0)
        tokens = self.tokens()
        self.assertEqual(len(tokens), 12)
        st = support.status(a)
        self.assertIn("waiting for late bounces", st["gates"]["canary"]["why"])
        sent = sorted(tokens)
        # Two hard bounces reported later: 2 of 12 is over 5%.
        inbox = os.path.join(self.tmp, "inbox")
        os.makedirs(inbox)
        for i, address in enumerate(sent[:2]):
            with open(os.path.join(inbox, f"dsn{i}.eml"), "w", encoding="utf-8") as f:
                f.write(dsn(tokens[address], address))
        # A forged one (another recipient's token with its MAC altered) and an
        # out-of-office reply change nothing.
        forged = self.write("forged.eml", dsn(forge(tokens[sent[2]]), sent[2]))
        ooo = self.write("ooo.eml", "From: li.wei@example.com.cn\nTo: noreply@example.com\nSubject: Out of office\n"
                                    "Auto-Submitted: auto-replied\n\nI am away until Monday.\n")
        out = run("bounces", "ingest", inbox, forged, ooo, "--state", state, "--json", check=0)
        lines = [json.loads(l) for l in out.stdout.splitlines()]
        self.assertEqual([l["outcome"] for l in lines], ["suppressed", "suppressed", "refused", "ignored"], lines)
        self.assertIn("does not verify", lines[2]["detail"])
        self.assertNotIn(sent[0], out.stdout + out.stderr, "addresses are masked")
        again = run("bounces", "ingest", inbox, "--state", state, "--json", check=0)
        self.assertEqual({json.loads(l)["outcome"] for l in again.stdout.splitlines()}, {"duplicate"})
        st = support.status(a)
        canary = st["gates"]["canary"]
        self.assertFalse(canary["passed"])
        self.assertIn("hard-bounce rate", canary["why"])
        self.assertIn("2 reported later", canary["why"])
        self.assertEqual(run("send", a, "--stage", "full").returncode, 4)
        # A complaint that carries only the header token.
        arf = self.write("arf.eml", complaint(tokens[sent[3]], sent[3]))
        out = run("bounces", "ingest", arf, "--state", state, "--json", check=0)
        self.assertIn('"outcome":"suppressed"', out.stdout.replace(" ", ""))
        st = support.status(a)
        total = [f for f in st["feedback"] if f["lane"] == "all"][0]
        self.assertEqual((total["reported"], total["complaints"], total["sent"]), (2, 1, 12), st["feedback"])
        listed = run("suppress", "list", a, "--json", "--show-addresses", check=0)
        entries = {e["address"]: e for e in json.loads(listed.stdout)}
        self.assertEqual(set(entries), {s.lower() for s in sent[:2]} | {sent[3].lower()})
        self.assertTrue(entries[sent[3].lower()]["reason"].startswith("complaint"))
        self.assertEqual(entries[sent[0].lower()]["scope"], "year-end-notice")
        # The next campaign that uses the same state store mails none of them.
        others = [r for r in rows if r[0] not in tokens][:4]
        again_rows = [r for r in rows if r[0] in sent[:4]] + others
        b = self.campaign("b", "spring-sale", again_rows, self.relay.port,
                          '{ size = "100%", min = 8, wait = "0s" }')
        before = len(self.relay.records("message"))
        run("send", b, "--stage", "canary", "--state", state, check=0)
        got = [r["rcpt_tos"][0] for r in self.relay.records("message")[before:]]
        domain_lowered = [support.normalise(x) for x in [sent[2]] + [r[0] for r in others]]
        self.assertEqual(sorted(support.normalise(x) for x in got), sorted(domain_lowered))
        st = json.loads(run("status", b, "--state", state, "--json", check=0).stdout)
        self.assertEqual(st["states"]["suppressed"], 3, st["states"])
        # Without that --state, status says where to look instead of "nothing sent".
        plain = run("status", b, check=0).stdout
        self.assertIn("give the --state it sent with", plain)


class Receiver(test_serve.ServeCase):
    """The service's bounce receiver ([bounces] listen)."""

    def setUp(self):
        super().setUp()
        key = os.path.join(self.tmp, "secrets", "bounce.key")
        with open(key, "wb") as f:
            f.write(os.urandom(32))
        os.chmod(key, 0o600)
        self.bport = test_serve.free_port()
        self.extra = (f'[bounces]\ndomain = "{DOMAIN}"\nsecret_file = "secrets/bounce.key"\n'
                      f'listen = "127.0.0.1:{self.bport}"\nmax_message_bytes = 65536\n')

    def mta(self, rcpt, text, mail_from=""):
        """A local MTA sending a report to the receiver; the final reply (code, text)."""
        with smtplib.SMTP("127.0.0.1", self.bport, timeout=10) as s:
            s.ehlo("mx1.example.net")
            s.mail(mail_from)
            code, msg = s.rcpt(rcpt)
            if code != 250:
                return code, msg
            return s.data(text.encode("utf-8"))

    def test_a_transactional_bounce_stops_the_next_message_and_nothing_is_relayed(self):
        s = self.service(extra=self.extra)
        key = s.key("auth-service", "send,read")
        to = "kenji.tanaka@example.co.jp"
        status, got, _ = s.send(key, to)
        self.assertEqual(status, 202, got)
        s.wait_status(key, got["id"], "sent")
        rec = [r for r in self.relay.records("message") if r["rcpt_tos"] == [to]][0]
        token = VERP.match(rec["mail_from"]).group(1)
        # Not a relay: another domain, or a local part that is no bounce address.
        code, _ = self.mta("victim@example.org", "Subject: hi\n\nhello\n")
        self.assertEqual(code, 550)
        code, _ = self.mta(f"someone@{DOMAIN}", "Subject: hi\n\nhello\n")
        self.assertEqual(code, 550)
        # Too big.
        code, _ = self.mta(f"bounce+{token}@{DOMAIN}", dsn(token, to) + "x" * 70000 + "\n")
        self.assertEqual(code, 552)
        # A forged token: accepted as mail (a bounce receiver must not tell), applied to nobody.
        code, _ = self.mta(f"bounce+{forge(token)}@{DOMAIN}", dsn(forge(token), to))
        self.assertEqual(code, 250)
        status, got, _ = s.send(key, to)
        self.assertEqual(status, 202)
        self.assertEqual(s.wait_status(key, got["id"], "sent")["status"], "sent")
        # The real bounce, its case changed by the MTA on the way.
        code, _ = self.mta(f"BOUNCE+{token.upper()}@{DOMAIN.upper()}", dsn(token.upper(), to))
        self.assertEqual(code, 250)
        status, got, _ = s.send(key, to)
        self.assertEqual(status, 202)
        self.assertEqual(s.wait_status(key, got["id"], "suppressed")["status"], "suppressed")
        _, metrics, _ = s.request("GET", "/metrics", key=key)
        self.assertIn('blindcast_bounce_reports_total{outcome="refused"} 1', metrics)
        self.assertIn('blindcast_bounce_reports_total{outcome="suppressed"} 1', metrics)
        self.assertRegex(metrics, r'blindcast_reported_bounces_total\{scope="password-reset",lane="[a-z]+",kind="hard"\} 1')
        log = open(s.log).read()
        self.assertNotIn(to, log, "addresses are masked in the log")

    def test_dsns_from_a_local_mta_close_a_served_campaigns_canary(self):
        rows = realistic_audience.generate(100, seed=29)
        d = support.realistic_campaign(os.path.join(self.tmp, "campaigns", "notice"), rows, self.relay.port,
                                       '{ size = "10%", min = 10, wait = "1h" }')
        s = self.service(extra=self.extra, campaigns=["campaigns/*"])
        ops = s.key("ops", "campaigns,read,approve")
        cid = "index-change-2026-11"
        status, got, _ = s.request("POST", f"/v1/campaigns/{cid}/send", {"stage": "canary"}, key=ops)
        self.assertEqual(status, 202, got)
        st = s.wait_run(cid, ops, timeout=60)
        self.assertIn("waiting for late bounces", st["gates"]["canary"]["why"])
        sent = {}
        for r in self.relay.records("message"):
            m = VERP.match(r["mail_from"])
            self.assertIsNotNone(m, r["mail_from"])  # the service's [bounces] applies to its campaigns
            sent[r["rcpt_tos"][0]] = m.group(1)
        self.assertEqual(len(sent), 10)
        for address in sorted(sent)[:3]:
            code, _ = self.mta(f"bounce+{sent[address]}@{DOMAIN}", dsn(sent[address], address))
            self.assertEqual(code, 250)
        _, st, _ = s.request("GET", f"/v1/campaigns/{cid}", key=ops)
        self.assertFalse(st["gates"]["canary"]["passed"])
        self.assertIn("3 reported later", st["gates"]["canary"]["why"])
        status, got, _ = s.request("POST", f"/v1/campaigns/{cid}/send", {"stage": "full"}, key=ops)
        self.assertEqual(status, 409, got)
        # The command line sees the same with the service's store as --state.
        cli = json.loads(run("status", d, "--state", os.path.join(self.tmp, "state", "blindcast.db"), "--json",
                             check=0).stdout)
        self.assertIn("3 reported later", cli["gates"]["canary"]["why"])
        self.assertEqual(cli["states"]["sent"], 10)
        _, metrics, _ = s.request("GET", "/metrics", key=ops)
        rates = re.findall(rf'blindcast_bounce_rate{{campaign="{cid}",lane="[a-z]+"}} ([0-9.]+)', metrics)
        self.assertTrue(rates and max(float(r) for r in rates) > 0, metrics)
        self.assertIn("blindcast_complaint_rate_limit 0.003", metrics)

    def test_starttls_and_the_per_client_rate(self):
        cert, key = os.path.join(self.tmp, "cert.pem"), os.path.join(self.tmp, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True)
        os.chmod(key, 0o600)
        extra = (f'tls_cert_file = "{cert}"\ntls_key_file = "{key}"\n' + self.extra.replace("max_message_bytes = 65536",
                                                                                        "rate = 3"))
        s = test_serve.Service(self.tmp, self.relay.port, extra)
        self.services.append(s)
        s.logf = open(s.log, "w")
        s.proc = subprocess.Popen([support.BINARY, "serve", "--config", s.config], stdout=s.logf,
                                  stderr=subprocess.STDOUT)
        deadline = time.time() + 15
        while True:
            try:
                with smtplib.SMTP("127.0.0.1", self.bport, timeout=5) as c:
                    c.noop()
                break
            except OSError:
                if time.time() > deadline or s.proc.poll() is not None:
                    raise AssertionError(open(s.log).read())
                time.sleep(0.1)
        ctx = ssl.create_default_context(cafile=cert)
        with smtplib.SMTP("127.0.0.1", self.bport, timeout=10) as c:
            c.ehlo("mx1.example.net")
            self.assertTrue(c.has_extn("starttls"))
            c.starttls(context=ctx)
            c.ehlo("mx1.example.net")
            self.assertFalse(c.has_extn("starttls"))
            self.assertEqual(c.sendmail("", [f"postmaster@{DOMAIN}"], "Subject: hello\n\nnot a report\n"), {})
        # Three messages a minute from one address; the fourth is told to come back later.
        codes = []
        for _ in range(4):
            try:
                with smtplib.SMTP("127.0.0.1", self.bport, timeout=10) as c:
                    c.ehlo("mx1.example.net")
                    codes.append(c.mail("")[0])
            except smtplib.SMTPServerDisconnected:
                codes.append("disconnected")
        self.assertEqual(codes[:2], [250, 250], codes)
        self.assertIn(codes[2], (421, "disconnected"), codes)

    def test_connection_churn_and_clients_that_hold_sessions_leave_the_receiver_up(self):
        s = self.service(extra=self.extra)
        # 600 sessions that only QUIT: each session's thread is joined when it
        # ends (they once piled up until the process could make no more).
        for _ in range(600):
            with socket.create_connection(("127.0.0.1", self.bport), timeout=10) as c:
                c.recv(200)
                c.sendall(b"QUIT\r\n")
                c.recv(200)
        time.sleep(0.5)
        threads = len(os.listdir(f"/proc/{s.proc.pid}/task"))
        self.assertLess(threads, 80, "session threads are not joined")
        # One address holds at most 10 sessions; others still get in.
        held = []
        for _ in range(10):
            c = socket.create_connection(("127.0.0.1", self.bport), timeout=10)
            self.assertTrue(c.recv(200).startswith(b"220"))
            held.append(c)
        with socket.create_connection(("127.0.0.1", self.bport), timeout=10) as c:
            self.assertTrue(c.recv(200).startswith(b"421"))
        other = smtplib.SMTP(timeout=10)
        other.source_address = ("127.0.0.2", 0)
        self.assertEqual(other.connect("127.0.0.1", self.bport)[0], 220)
        other.quit()
        # Bare LF around the dot does not end the data (the SMTP smuggling pattern).
        with socket.create_connection(("127.0.0.1", self.bport), timeout=10, source_address=("127.0.0.3", 0)) as c:
            c.settimeout(3)
            c.recv(200)
            c.sendall(b"EHLO x\r\nMAIL FROM:<>\r\nRCPT TO:<postmaster@bounces.example.com>\r\nDATA\r\n")
            time.sleep(0.3)
            c.recv(4096)
            c.sendall(b"Subject: a\r\n\r\nbody\n.\nMAIL FROM:<>\r\n")
            with self.assertRaises(socket.timeout):
                c.recv(200)  # still reading data: no reply to the smuggled command
            c.sendall(b"\r\n.\r\n")
            self.assertTrue(c.recv(200).startswith(b"250"))
        # Stopping does not wait for clients that hold sessions.
        started = time.time()
        s.stop()
        self.assertLess(time.time() - started, 8)
        self.assertEqual(s.proc.returncode, 0)
        for c in held:
            c.close()


if __name__ == "__main__":
    support.main()
