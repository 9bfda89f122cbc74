"""The dashboard of `blindcast serve`, in a real browser: Debian's chromium,
headless, driven by playwright-core (tests/browser/dashboard.mjs) against a
service with a realistic campaign (real name patterns, country domains,
Unicode, and two names that are HTML: a <script> and an <img onerror>)
sending to a local sink. The browser signs in with scoped keys, runs the
canary, approves with two people, watches the full send move, halts it and
counts at the sink that nothing starts after 1 s, and checks that nothing
from the data runs anywhere. The same page is checked in Debian's Firefox ESR
(tests/browser/firefox.mjs, puppeteer-core over WebDriver BiDi). The
HTTP-level rules (CSRF, cookie flags, sessions bound to their key) are
checked here without a browser too.

DASHBOARD_SCREENSHOTS=DIR keeps the screenshots (docs/dashboard/ holds them)."""
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import realistic_audience  # noqa: E402
import support  # noqa: E402
from support import run  # noqa: E402
from test_serve import ServeCase  # noqa: E402

BROWSER_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "browser")
SCRIPT_NAME = "<script>window.__pwned=1</script>"
IMG_NAME = '<img src=x onerror="window.__pwned=2">'


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def campaign_id(d):
    return re.search(r'^id = "(.*)"$', read(os.path.join(d, "campaign.toml")), re.M).group(1)


def chromium():
    return shutil.which("chromium")


def node_ready():
    return shutil.which("node") and os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", "playwright-core"))


class Dashboard(ServeCase):
    def setUp(self):
        super().setUp()
        # The campaign's own sink: a little slow, so a send takes long enough
        # to watch and halt.
        self.sink = self.peer("--delay", "0.04")

    def campaign(self, rows):
        """An init'ed campaign in campaigns/launch whose audience is `rows`
        (written with the csv module: names hold quotes and commas), two
        approvers, sending to the sink."""
        d = os.path.join(self.tmp, "campaigns", "launch")
        run("init", d, check=0)
        with open(os.path.join(d, "audience.csv"), "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(["email", "name", "locale", "assets", "effective_date", "ticket"])
            for email, person, locale in rows:
                w.writerow([email, person, locale, 2, "2026-12-01", ""])
        toml = os.path.join(d, "campaign.toml")
        text = read(toml).replace('url = "maildir:out/maildir"', f'url = "smtp://127.0.0.1:{self.sink.port}"')
        text = text.replace("approvals_required = 1", "approvals_required = 2")
        text = re.sub(r"canary = \{[^}]*\}", 'canary = { size = "1%", min = 20, wait = "0s", max_bounce_rate = 0.2, '
                      'max_deferral_rate = 0.5 }', text)
        with open(toml, "w") as f:
            f.write(text)
        run("lint", d, check=0)
        return d

    def test_dashboard_in_chromium(self):
        if not chromium() or not node_ready():
            self.fail("chromium and tests/browser/node_modules are needed: run `make test` (it installs them)")
        rows = realistic_audience.generate(1600, seed=23)
        hostile = "zoe.script@example.de"
        rows[5] = (hostile, SCRIPT_NAME, "de")
        rows[9] = ("img.onerror@example.co.uk", IMG_NAME, "en-GB")
        rows[11] = ("reject-olga@mail.ru", "Ольга Иванова", "ru")
        d = self.campaign(rows)
        cid = campaign_id(d)
        s = self.service(campaigns=["campaigns/*"])
        keys = {"ops": s.key("ops-alice", "campaigns,read,approve"), "bob": s.key("bob", "approve,read"),
                "viewer": s.key("viewer", "read"), "admin": s.key("admin-carol", "admin,read")}
        sender = s.key("app", "send")
        # Transactional mail: one delivered (to look up), one refused (a failure with its reason).
        status, got, _ = s.send(sender, "lena.mueller@example.de", name=IMG_NAME)
        self.assertEqual(status, 202, got)
        s.wait_status(sender, got["id"], "sent")
        status, got, _ = s.send(sender, "reject-someone@example.org")
        self.assertEqual(status, 202, got)
        s.wait_status(sender, got["id"], "bounced")
        config = os.path.join(self.tmp, "browser.json")
        with open(config, "w") as f:
            json.dump({"base": f"http://127.0.0.1:{s.port}", "campaign": cid, "keys": keys,
                       "sink_log": self.sink.log_path, "hostile_address": hostile, "hostile_name_text": SCRIPT_NAME,
                       "transactional_address": "lena.mueller@example.de",
                       "screenshots": os.environ.get("DASHBOARD_SCREENSHOTS")}, f)
        out = subprocess.run(["node", os.path.join(BROWSER_DIR, "dashboard.mjs"), config], cwd=BROWSER_DIR,
                             capture_output=True, text=True, timeout=300)
        print(out.stdout, out.stderr, file=sys.stderr)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr + read(s.log)[-3000:])
        # The streams' view: counts, latency and the refused message with its reply, in unix seconds.
        _, streams, _ = s.request("GET", "/v1/streams", key=keys["viewer"])
        reset = next(x for x in streams["streams"] if x["name"] == "password-reset")
        self.assertEqual(reset["last_24h"], {"sent": 1, "bounced": 1}, reset)
        self.assertGreater(reset["latency_p99"], 0)
        failure = reset["failures"][0]
        self.assertEqual((failure["status"], failure["to"]), ("bounced", "r***@e***.org"), failure)
        self.assertIn("5.1.1", failure["reply"])
        self.assertLess(abs(failure["at"] - time.time()), 300, failure)
        # The audit names the people, as the command line's does.
        _, st, _ = s.request("GET", f"/v1/campaigns/{cid}", key=keys["viewer"])
        kinds = {(e["kind"], e["actor"]) for e in st["audit"]}
        self.assertIn(("approve", "bob"), kinds)
        self.assertIn(("approve", "ops-alice"), kinds)
        self.assertIn(("halt", "ops-alice"), kinds)
        # The keys never reach the service's log.
        log = read(s.log)
        for k in keys.values():
            self.assertNotIn(k, log)

    def test_dashboard_in_firefox(self):
        if not shutil.which("firefox-esr") or not node_ready():
            self.fail("firefox-esr and tests/browser/node_modules are needed: run `make test` (it installs them)")
        rows = realistic_audience.generate(300, seed=31)
        hostile = "zoe.script@example.de"
        rows[3] = (hostile, SCRIPT_NAME, "de")
        rows[4] = ("img.onerror@example.co.uk", IMG_NAME, "en-GB")
        d = self.campaign(rows)
        cid = campaign_id(d)
        s = self.service(campaigns=["campaigns/*"])
        ops = s.key("ops-alice", "campaigns,read,approve,admin")
        self.assertEqual(s.request("POST", f"/v1/campaigns/{cid}/send", {"stage": "canary"}, key=ops)[0], 202)
        s.wait_run(cid, ops, timeout=60)
        config = os.path.join(self.tmp, "firefox.json")
        with open(config, "w") as f:
            json.dump({"base": f"http://127.0.0.1:{s.port}", "campaign": cid, "keys": {"ops": ops},
                       "hostile_address": hostile, "hostile_name_text": SCRIPT_NAME}, f)
        out = subprocess.run(["node", os.path.join(BROWSER_DIR, "firefox.mjs"), config], cwd=BROWSER_DIR,
                             capture_output=True, text=True, timeout=300)
        print(out.stdout, out.stderr, file=sys.stderr)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)

    def test_sessions_without_a_browser(self):
        d = self.campaign(realistic_audience.generate(40, seed=5))
        cid = campaign_id(d)
        s = self.service(campaigns=["campaigns/*"])
        ops = s.key("ops", "campaigns,read")
        # The page itself carries no data and a strict policy.
        status, page, headers = s.request("GET", "/")
        self.assertEqual(status, 200)
        csp = headers["Content-Security-Policy"]
        self.assertIn("default-src 'none'", csp)
        self.assertIn("script-src 'self'", csp)
        self.assertNotIn("unsafe-inline", csp.split("style-src")[0])
        self.assertIn("frame-ancestors 'none'", csp)
        self.assertNotIn("http://", page + csp)  # no CDN, no font service
        # Sign-in takes JSON only (a cross-site form cannot send it).
        status, got, _ = s.request("POST", "/ui/sign-in", f"key={ops}",
                                   headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(status, 415, got)
        status, got, headers = s.request("POST", "/ui/sign-in", {"key": ops})
        self.assertEqual(status, 200, got)
        cookie = headers["Set-Cookie"]
        for flag in ("HttpOnly", "SameSite=Strict", "Path=/"):
            self.assertIn(flag, cookie)
        self.assertNotIn("Secure", cookie)  # plain HTTP on loopback; with TLS it is Secure
        session = cookie.split(";")[0]
        csrf = got["csrf"]
        jar = {"Cookie": session}
        self.assertEqual(s.request("GET", f"/v1/campaigns/{cid}", headers=jar)[0], 200)
        # State changes need the token, and the page's origin when the browser names one.
        halt = {"reason": "test"}
        self.assertEqual(s.request("POST", f"/v1/campaigns/{cid}/halt", halt, headers=jar)[0], 403)
        self.assertEqual(s.request("POST", f"/v1/campaigns/{cid}/halt", halt,
                                   headers={**jar, "X-CSRF-Token": csrf[:-1] + ("A" if csrf[-1] != "A" else "B")})[0], 403)
        self.assertEqual(s.request("POST", f"/v1/campaigns/{cid}/halt", halt,
                                   headers={**jar, "X-CSRF-Token": csrf, "Origin": "https://evil.example"})[0], 403)
        self.assertEqual(s.request("POST", f"/v1/campaigns/{cid}/halt", halt,
                                   headers={**jar, "X-CSRF-Token": csrf, "Sec-Fetch-Site": "cross-site"})[0], 403)
        status, got, _ = s.request("POST", f"/v1/campaigns/{cid}/halt", halt,
                                   headers={**jar, "X-CSRF-Token": csrf, "Origin": f"http://127.0.0.1:{s.port}"})
        self.assertEqual(status, 200, got)
        self.assertEqual(got["by"], "ops")
        # A preview's HTML is sandboxed and can load nothing.
        status, got, _ = s.request("POST", f"/v1/campaigns/{cid}/preview", {}, headers={**jar, "X-CSRF-Token": csrf})
        self.assertEqual(status, 200, got)
        url = next(p["html_url"] for p in got["previews"] if p["html_url"])
        status, html, headers = s.request("GET", url, headers=jar)
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Security-Policy"].startswith("sandbox;"), headers)
        self.assertIn("default-src 'none'", headers["Content-Security-Policy"])
        # Another key cannot read a preview it did not ask for.
        other = s.key("other", "read")
        self.assertEqual(s.request("GET", url, key=other)[0], 404)
        # A revoked key's sessions end at once; so does sign-out's.
        run("keys", "revoke", "ops", "--config", s.config, check=0)
        deadline = time.time() + 3
        while time.time() < deadline and s.request("GET", f"/v1/campaigns/{cid}", headers=jar)[0] == 200:
            time.sleep(0.1)
        status, got, _ = s.request("GET", f"/v1/campaigns/{cid}", headers=jar)
        self.assertEqual((status, got["error"]["code"]), (401, "session_expired"), got)
        # Guessing keys is throttled per address.
        codes = [s.request("POST", "/ui/sign-in", {"key": f"bc_{i:016x}_guess"})[0] for i in range(12)]
        self.assertEqual(codes[:10], [401] * 10)
        self.assertEqual(codes[10:], [429, 429])


if __name__ == "__main__":
    support.main()
