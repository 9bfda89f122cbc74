"""A leak planted in the data: lint finds it, send is stopped by the guard
(exit 3), the message is quarantined 0600, the campaign is halted for every
sender, and nothing that leaks reaches the maildir."""
import json
import os
import stat

import support
from support import FORCE, run


class GuardEndToEnd(support.Case):
    def make(self):
        d = os.path.join(self.tmp, "c")
        run("init", d, check=0)
        with open(os.path.join(d, "templates", "body.txt"), "a") as f:
            f.write("{{#referrer}}Referred by {{referrer}}{{/referrer}}\n")
        rows = ["email,name,locale,assets,effective_date,ticket,referrer"]
        for i in range(1200):
            rows.append(f"user{i}@example.com,User {i},en,1,2026-12-01,,")
        rows.append("victim@example.org,Victim,en,1,2026-12-01,,")
        rows.append("leaky@example.com,Leaky,en,1,2026-12-01,,VICTIM@example.org")
        with open(os.path.join(d, "audience.csv"), "w") as f:
            f.write("\n".join(rows) + "\n")
        return d

    def test_leak_is_blocked_quarantined_and_halts(self):
        d = self.make()
        lint = run("lint", d)
        self.assertEqual(lint.returncode, 2)
        self.assertIn("audience.csv:1203: error: privacy guard: invariant 3", lint.stderr)
        self.assertNotIn("victim@example.org", lint.stderr.lower())

        out = run("send", d, "--stage", "full", *FORCE)
        self.assertEqual(out.returncode, 3, out.stderr)
        self.assertIn("line 1203", out.stderr)
        self.assertIn("invariant 3", out.stderr)
        self.assertNotIn("victim@example.org", (out.stdout + out.stderr).lower())

        qdir = os.path.join(d, ".blindcast", "quarantine")
        quarantined = os.listdir(qdir)
        self.assertEqual(len([q for q in quarantined if q.endswith(".eml")]), 1)
        for q in quarantined:
            self.assertEqual(stat.S_IMODE(os.stat(os.path.join(qdir, q)).st_mode), 0o600)

        # Nothing sent contains another recipient's address.
        for path in support.maildir_files(os.path.join(d, "out", "maildir")):
            msg = support.parse(path)
            rcpt = msg["To"].addresses[0].addr_spec.lower()
            body = msg.get_body(preferencelist=("plain",)).get_content().lower()
            if rcpt != "victim@example.org":
                self.assertNotIn("victim@example.org", body, path)
            self.assertNotEqual(rcpt, "leaky@example.com")

        status = json.loads(run("status", d, "--json", check=0).stdout)
        self.assertEqual(status["halted"]["kind"], "guard")
        self.assertTrue(any(e["kind"] == "guard_violation" for e in status["audit"]))
        self.assertEqual(run("send", d, "--stage", "full", *FORCE).returncode, 3, "halt holds for every later send")
        self.assertEqual(run("release", d).returncode, 3, "release refused while the content is unchanged")

        # Fix the content, release, finish.
        with open(os.path.join(d, "templates", "body.txt")) as f:
            fixed = f.read().replace("{{#referrer}}Referred by {{referrer}}{{/referrer}}\n", "")
        with open(os.path.join(d, "templates", "body.txt"), "w") as f:
            f.write(fixed)
        run("lint", d, check=0)
        run("release", d, check=0)
        run("send", d, "--stage", "full", *FORCE, check=0)
        self.assertEqual(len(support.maildir_files(os.path.join(d, "out", "maildir"))), 1202)


if __name__ == "__main__":
    support.main()
