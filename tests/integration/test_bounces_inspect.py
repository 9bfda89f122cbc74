"""bounces inspect (SPEC §9): one JSON object per message for the samples
directory and for an mbox made of several samples; an unreadable file is
named on stderr and the others still come out (exit 1); the human output
masks addresses unless --show-addresses."""
import json
import os

import support
from support import run

SAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "bounces", "samples")
TOKEN = "cb3lq5xk2m7a4d6fhz2p4yq3nevw6tu5ja"

# file: (type, [(address, status, reply_code, hard, reason)], token)
EXPECTED = {
    "arf_complaint.eml": ("complaint", [("chloe.martin@yahoo.com", "", "", True, "spam-detected")], TOKEN),
    "delivered_dsn.eml": ("delivered", [("oliver.smith@example.co.uk", "2.0.0", "250", False, "other")], TOKEN),
    "dmarc_5726.eml": ("bounce", [("lena.schmidt@gmail.com", "5.7.26", "550", False, "auth-failure")], TOKEN),
    "exim_plain.eml": ("bounce", [("sam.taylor@example.org", "5.7.1", "550", False, "blocked")], TOKEN),
    "expired_447.eml": ("bounce", [("kenji.tanaka@example.jp", "4.4.7", "", False, "expired")], TOKEN),
    "global_dsn_utf8.eml": ("bounce", [("josé@exemplo.com.br", "5.1.1", "550", True, "user-unknown")], TOKEN),
    "gmail_mailbox_full.eml": ("bounce", [("ravi.sharma@gmail.com", "5.2.2", "552", False, "mailbox-full")], TOKEN),
    "o365_ndr.eml": ("bounce", [("anna.kowalska@contoso.pl", "5.1.1", "550", True, "user-unknown")],
                     "ke5tq2d7xbnm4hy6a3rfw2zpu4"),
    "out_of_office.eml": ("auto-reply", [], TOKEN),
    "postfix_dsn_verp.eml": ("bounce", [("marie.dupont@example.fr", "5.1.1", "550", True, "user-unknown")], TOKEN),
    "ses_bounce.eml": ("bounce", [("priya.nair@example.in", "5.1.1", "550", True, "user-unknown")], TOKEN),
}


def lines(proc):
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


class BouncesInspect(support.Case):
    def check(self, obj):
        name = os.path.basename(obj["file"])
        kind, recipients, token = EXPECTED[name]
        self.assertEqual(obj["type"], kind, name)
        got = [(r["address"], r["status"], r["reply_code"], r["hard"], r["reason"]) for r in obj["recipients"]]
        self.assertEqual(got, recipients, name)
        for r in obj["recipients"]:
            self.assertLessEqual(len(r["diagnostic"].encode()), 1000)
        self.assertEqual(obj.get("token"), token, name)

    def test_samples_directory(self):
        out = lines(run("bounces", "inspect", SAMPLES, "--json", check=0))
        self.assertEqual(sorted(os.path.basename(o["file"]) for o in out), sorted(EXPECTED))
        self.assertEqual([o["file"] for o in out], sorted(o["file"] for o in out), "files in sorted order")
        for o in out:
            self.assertNotIn("message", o)
            self.check(o)

    def test_mbox(self):
        names = ["postfix_dsn_verp.eml", "arf_complaint.eml", "out_of_office.eml", "gmail_mailbox_full.eml"]
        mbox = os.path.join(self.tmp, "returned.mbox")
        with open(mbox, "wb") as f:
            for n in names:
                with open(os.path.join(SAMPLES, n), "rb") as s:
                    body = s.read().replace(b"\r\n", b"\n")
                f.write(b"From MAILER-DAEMON Sat Nov 28 09:14:03 2026\n" + body.rstrip(b"\n") + b"\n\n")
        out = lines(run("bounces", "inspect", mbox, "--json", check=0))
        self.assertEqual([o["message"] for o in out], [1, 2, 3, 4])
        for o, n in zip(out, names):
            self.assertEqual(o["file"], mbox)
            o = dict(o, file=n)
            self.check(o)

    def test_unreadable_file_is_named_and_others_go_on(self):
        missing = os.path.join(self.tmp, "no-such-bounce.eml")
        proc = run("bounces", "inspect", missing, os.path.join(SAMPLES, "ses_bounce.eml"), "--json", check=1)
        self.assertIn("no-such-bounce.eml", proc.stderr)
        out = lines(proc)
        self.assertEqual(len(out), 1)
        self.check(out[0])

    def test_human_output_masks_addresses(self):
        path = os.path.join(SAMPLES, "postfix_dsn_verp.eml")
        masked = run("bounces", "inspect", path, check=0).stdout
        self.assertIn("bounce", masked)
        self.assertIn("user-unknown", masked)
        self.assertNotIn("marie.dupont@example.fr", masked)
        shown = run("bounces", "inspect", path, "--show-addresses", check=0).stdout
        self.assertIn("marie.dupont@example.fr", shown)


if __name__ == "__main__":
    support.main()
