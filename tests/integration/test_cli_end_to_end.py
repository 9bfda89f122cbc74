"""init -> lint -> preview -> send to maildir -> send again, and the exit codes."""
import json
import os
import re
import shutil
import stat

import support
from support import FORCE, run


class CliEndToEnd(support.Case):
    def init(self):
        d = os.path.join(self.tmp, "campaign")
        run("init", d, check=0)
        return d

    def test_init_writes_a_campaign_that_passes_lint(self):
        d = self.init()
        for rel in ["campaign.toml", "audience.csv", "templates/subject.txt", "templates/body.txt",
                    "templates/body.html", "locales/en.toml", "locales/ja.toml", "locales/ar.toml", ".gitignore"]:
            self.assertTrue(os.path.isfile(os.path.join(d, rel)), rel)
        with open(os.path.join(d, ".gitignore")) as f:
            ignore = f.read()
        self.assertIn("secrets/", ignore)
        self.assertIn(".blindcast/", ignore)
        out = run("lint", d, check=0)
        self.assertIn("0 error(s)", out.stdout)
        self.assertEqual(run("init", d).returncode, 2, "init must not overwrite a campaign")

    def test_send_writes_one_message_per_valid_unique_row_and_resumes(self):
        d = self.init()
        with open(os.path.join(d, "audience.csv"), "a", encoding="utf-8") as f:
            f.write("broken-address,X,en,1,2026-12-01,\n")
            f.write('eve@example.org,"Eve\r\nBcc: all@example.org",en,1,2026-12-01,\n')
            f.write("ALICE@EXAMPLE.ORG,Alice Again,en,1,2026-12-01,\n")
        first = run("send", d, "--stage", "full", *FORCE, check=0)
        self.assertIn("12 sent this run", first.stdout)
        files = support.maildir_files(os.path.join(d, "out", "maildir"))
        self.assertEqual(len(files), 12)
        expected = {support.normalise(e) for e in support.audience_emails(os.path.join(d, "audience.csv"))
                    if "@" in e and not e.startswith(("eve@", "ALICE@"))}
        seen = []
        for path in files:
            msg = support.parse(path)
            self.assertEqual(len(msg.get_all("To")), 1, path)
            tos = msg["To"].addresses
            self.assertEqual(len(tos), 1, path)
            for field in ("Cc", "Bcc", "Resent-To"):
                self.assertIsNone(msg[field], path)
            seen.append(support.normalise(tos[0].addr_spec))
            self.assertIsNotNone(msg["Message-ID"])
            self.assertIsNotNone(msg["Date"])
            self.assertEqual(msg["MIME-Version"], "1.0")
        self.assertEqual(sorted(seen), sorted(expected))
        before = {p: os.stat(p).st_mtime_ns for p in files}
        second = run("send", d, "--stage", "full", *FORCE, check=0)
        self.assertIn("0 sent this run", second.stdout)
        after = {p: os.stat(p).st_mtime_ns for p in support.maildir_files(os.path.join(d, "out", "maildir"))}
        self.assertEqual(before, after, "a second send must write nothing")
        status = json.loads(run("status", d, "--json", check=0).stdout)
        self.assertEqual(status["states"]["sent"], 12)
        self.assertEqual(status["total"], 12)
        reasons = " ".join(r["reason"] for r in status["rejected_rows"])
        self.assertIn("header injection", reasons)
        self.assertIn("invalid email", reasons)

    def test_lint_errors_are_file_line_and_exit_2(self):
        d = self.init()
        with open(os.path.join(d, "templates", "body.txt"), "a") as f:
            f.write("{{#unclosed}}\n")
        out = run("lint", d)
        self.assertEqual(out.returncode, 2)
        self.assertRegex(out.stderr, r"templates/body\.txt:\d+: error: section 'unclosed' is never closed")
        self.assertEqual(run("send", d, "--stage", "full", *FORCE).returncode, 2)
        self.assertEqual(support.maildir_files(os.path.join(d, "out", "maildir")), [])

    def test_preview_one_file_per_locale_and_one_recipient(self):
        d = self.init()
        out_dir = os.path.join(self.tmp, "preview")
        run("preview", d, "--out", out_dir, check=0)
        names = sorted(os.listdir(out_dir))
        # Each .eml with its HTML part beside it, to open in a browser.
        self.assertEqual({n[:-5] for n in names if n.endswith(".html")}, {n[:-4] for n in names if n.endswith(".eml")})
        locales = {re.sub(r"-line\d+\.eml$", "", n) for n in names if n.endswith(".eml")}
        self.assertTrue({"en", "de", "ja", "ar", "pt-BR", "pt", "default"} <= locales, locales)
        for n in names:
            mode = stat.S_IMODE(os.stat(os.path.join(out_dir, n)).st_mode)
            self.assertEqual(mode, 0o600, n)
        one = os.path.join(self.tmp, "one")
        run("preview", d, "--out", one, "--recipient", "Hanako@Example.JP", check=0)
        [only] = [n for n in os.listdir(one) if n.endswith(".eml")]
        self.assertEqual(support.parse(os.path.join(one, only))["To"].addresses[0].addr_spec, "hanako@example.jp")
        missing = run("preview", d, "--out", one, "--recipient", "nobody@example.com")
        self.assertEqual(missing.returncode, 2)
        self.assertNotIn("nobody@example.com", missing.stderr, "addresses are masked in errors")

    def test_plan_counts_lanes_and_locales(self):
        d = self.init()
        plan = json.loads(run("plan", d, "--json", check=0).stdout)
        self.assertEqual(plan["recipients"], 12)
        self.assertEqual(sum(l["recipients"] for l in plan["lanes"]), 12)
        self.assertEqual(plan["locales"]["ja-JP"], 1)
        self.assertGreater(plan["eta_seconds"], 0)

    def test_plan_uses_shaping_overrides_and_custom_lanes(self):
        d = self.init()
        with open(os.path.join(d, "audience.csv"), "a") as f:
            for i in range(600):
                f.write(f"y{i}@yahoo.com,Y,en,1,2026-12-01,\n")
            for i in range(30):
                f.write(f"c{i}@corp.example,C,en,1,2026-12-01,\n")
        with open(os.path.join(d, "campaign.toml"), "a") as f:
            f.write('\n[shaping.yahoo]\nrate = "60/min"\nconnections = 2\n'
                    '\n[shaping.corporate]\ndomains = ["corp.example"]\nrate = "30/min"\n')
        plan = json.loads(run("plan", d, "--json", check=0).stdout)
        lanes = {l["lane"]: l for l in plan["lanes"]}
        self.assertEqual(lanes["yahoo"]["recipients"], 600)
        self.assertAlmostEqual(lanes["yahoo"]["rate_per_second"], 1.0)
        # A shaped lane: (recipients - burst) / rate; the burst is one second's worth, at least 1.
        self.assertAlmostEqual(lanes["yahoo"]["eta_seconds"], 599, delta=0.01)
        self.assertEqual(lanes["corporate"]["recipients"], 30)
        self.assertAlmostEqual(lanes["corporate"]["eta_seconds"], 58, delta=0.01)
        self.assertAlmostEqual(plan["eta_seconds"], 599, delta=0.01)
        text = run("plan", d, check=0).stdout
        self.assertIn("warning: yahoo sets the pace", text)
        bad = os.path.join(self.tmp, "bad")
        shutil.copytree(d, bad)
        with open(os.path.join(bad, "campaign.toml"), "a") as f:
            f.write('\n[shaping.google]\nrate = "fast"\n')
        out = run("lint", bad)
        self.assertEqual(out.returncode, 2)
        self.assertRegex(out.stderr, r"campaign\.toml:\d+: error: 'shaping\.google\.rate' must look like")

    def test_halt_and_release(self):
        d = self.init()
        run("halt", d, "--reason", "checking DNS", "--by", "ops", check=0)
        out = run("send", d, "--stage", "full", *FORCE)
        self.assertEqual(out.returncode, 5)
        self.assertIn("checking DNS", out.stderr)
        self.assertIn("HALTED", run("status", d, check=0).stdout)
        run("release", d, "--by", "ops", check=0)
        run("send", d, "--stage", "full", *FORCE, check=0)
        audit = run("status", d, "--audit", check=0).stdout
        self.assertIn("halt", audit)
        self.assertIn("release", audit)

    def test_usage_errors_exit_2(self):
        self.assertEqual(run("no-such-command").returncode, 2)
        self.assertEqual(run("send").returncode, 2)
        d = self.init()
        self.assertEqual(run("send", d, "--stage", "everything").returncode, 2)
        self.assertEqual(run("lint", os.path.join(self.tmp, "missing")).returncode, 2)
        self.assertEqual(run("send", d, "--stage", "full", *FORCE, "--transport", "carrier-pigeon:x").returncode, 2)

    def test_demo_runs_end_to_end(self):
        d = os.path.join(self.tmp, "demo")
        out = run("demo", d, check=0, timeout=600)
        self.assertIn("refused by the gates", out.stdout)
        self.assertIn("20,005 message files", out.stdout)  # 20,000 recipients + 5 test-stage messages
        self.assertEqual(len(support.maildir_files(os.path.join(d, "out", "maildir"))), 20005)
        run("demo", d, check=0, timeout=600)  # runs again in the same place


if __name__ == "__main__":
    support.main()
