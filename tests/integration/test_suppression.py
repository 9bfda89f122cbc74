"""Suppression (SPEC §5): a 5xx bounce joins the list and is never retried;
imported addresses are never sent and are counted; removing one sends it."""
import os

import support
from support import FORCE, run, status, write_campaign


class Suppression(support.PeerCase):
    def test_bounces_imports_and_removal(self):
        p = self.peer()
        url = f"smtp://127.0.0.1:{p.port}"
        emails = ["ok1@example.com", "reject-me@example.com", "Blocked@Example.com", "ok2@example.com"]
        d = write_campaign(self.tmp, emails)
        listfile = os.path.join(self.tmp, "suppress.csv")
        with open(listfile, "w") as f:
            f.write("email\nblocked@example.COM\nnot an address\n")
        out = run("suppress", "import", d, listfile, check=0)
        self.assertIn("1 new", out.stdout)
        self.assertIn("suppress.csv:3: warning: skipped", out.stderr)
        self.assertEqual(run("send", d, "--stage", "full", *FORCE, "--transport", url).returncode, 1)
        st = status(d)
        self.assertEqual(st["states"]["sent"], 2)
        self.assertEqual(st["states"]["bounced"], 1)
        self.assertEqual(st["states"]["suppressed"], 1)
        delivered = sorted(m["rcpt_tos"][0] for m in p.records("message"))
        self.assertEqual(delivered, ["ok1@example.com", "ok2@example.com"])
        listed = run("suppress", "list", d, "--show-addresses", check=0).stdout
        self.assertIn("reject-me@example.com", listed)
        self.assertIn("bounced: 550", listed)
        self.assertIn("blocked@example.com", listed)
        self.assertNotIn("reject-me@example.com", run("suppress", "list", d, check=0).stdout, "masked by default")
        run("suppress", "remove", d, "blocked@example.com", check=0)
        run("send", d, "--stage", "full", *FORCE, "--transport", url)
        delivered = sorted(m["rcpt_tos"][0] for m in p.records("message"))
        self.assertEqual(delivered, ["Blocked@example.com", "ok1@example.com", "ok2@example.com"])
        rcpts = [r["address"] for r in p.records("rcpt")]
        self.assertEqual(rcpts.count("reject-me@example.com"), 1, "a bounced address is never tried again")


if __name__ == "__main__":
    support.main()
