"""Stages and gates (SPEC §4): every gate and transition."""
import json
import os
import re

import support
from support import SmtpPeer, run, status, write_campaign


def set_canary(d, canary, approvals=1):
    path = os.path.join(d, "campaign.toml")
    with open(path) as f:
        toml = f.read()
    toml = re.sub(r"canary = \{[^}]*\}", "canary = " + canary, toml)
    toml = re.sub(r"approvals_required = \d+", f"approvals_required = {approvals}", toml)
    with open(path, "w") as f:
        f.write(toml)


def append(path, text):
    with open(path, "a") as f:
        f.write(text)


class Stages(support.Case):
    def campaign(self, n=400, canary='{ size = "5%", min = 10, wait = "0s", max_bounce_rate = 0.02, max_deferral_rate = 0.2 }',
                 emails=None, name="c"):
        emails = emails or [f"user{i:04d}@example.com" for i in range(n)]
        d = write_campaign(self.tmp, emails, name=name)
        set_canary(d, canary)
        return d

    def files(self, d):
        return support.maildir_files(os.path.join(d, "out", "maildir"))

    def test_full_refused_before_the_canary(self):
        d = self.campaign()
        out = run("send", d, "--stage", "full")
        self.assertEqual(out.returncode, 4)
        self.assertIn("canary: no canary has been sent", out.stderr)
        self.assertIn("--stage canary", out.stderr)
        self.assertIn("approvals: 0 of 1", out.stderr)
        self.assertEqual(self.files(d), [])
        self.assertIn("gate_refused", run("status", d, "--audit", check=0).stdout)

    def test_test_stage_sends_locales_times_test_addresses(self):
        d = self.campaign()
        with open(os.path.join(d, "audience.csv"), "a") as f:
            f.write("de1@example.com,Jörg,de,2,2026-12-01,\nja1@example.com,花子,ja,3,2026-12-01,\n"
                    "ar1@example.com,ليلى,ar,1,2026-12-01,\n")
        path = os.path.join(d, "campaign.toml")
        with open(path) as f:
            toml = f.read().replace('test = ["ops@example.com"]', 'test = ["ops@example.com", "qa@example.net"]')
        with open(path, "w") as f:
            f.write(toml)
        run("send", d, "--stage", "test", check=0)
        files = self.files(d)
        self.assertEqual(len(files), 4 * 2)  # en, de, ja, ar x two addresses
        seen = set()
        for p in files:
            msg = support.parse(p)
            to = msg["To"].addresses[0].addr_spec
            self.assertIn(to, {"ops@example.com", "qa@example.net"})
            m = re.match(r"\[TEST (\S+)\] ", str(msg["Subject"]))
            self.assertIsNotNone(m, msg["Subject"])
            seen.add((m.group(1), to))
            body = msg.get_body(preferencelist=("plain",)).get_content()
            self.assertNotRegex(body, r"(user\d+|de1|ja1|ar1)@example\.com", "no customer address to the seed list")
        self.assertEqual(len(seen), 8)
        self.assertEqual(status(d)["states"]["pending"], 403, "the test stage sends nobody in the audience")

    def test_test_stage_never_sends_a_customers_data(self):
        """Data minimisation: samples.csv rows, or placeholders of real rows; one message
        per catalog used (pt-BR and pt both read pt.toml), never a customer's values."""
        d = self.campaign(n=0, emails=[])
        customers = [("maria.souza@example.com.br", "Maria Aparecida Souza", "pt-BR", "T-77231"),
                     ("joao@example.pt", "João Gonçalves", "pt", "T-90412"),
                     ("j.mueller@example.de", "Jürgen Müller", "de-AT", "T-31337"),
                     ("hanako.yamada@example.jp", "山田 花子", "ja", "T-55501")]
        with open(os.path.join(d, "audience.csv"), "w") as f:
            f.write("email,name,locale,assets,effective_date,ticket\n")
            for e, n, loc, t in customers:
                f.write(f"{e},{n},{loc},7,2026-12-01,{t}\n")

        def sent_texts():
            out = []
            for p in self.files(d):
                msg = support.parse(p)
                out.append((str(msg["Subject"]), msg.get_body(preferencelist=("plain",)).get_content()
                            + msg.get_body(preferencelist=("html",)).get_content()))
            return out

        def assert_no_customer_data(texts):
            for subject, body in texts:
                for e, n, _, t in customers:
                    for value in (e, n, t, n.split()[0], n.split()[-1]):
                        self.assertNotIn(value, body + subject, f"customer value {value!r} in a test message")

        # Without samples.csv: placeholders of the same shape.
        os.remove(os.path.join(d, "samples.csv"))
        run("send", d, "--stage", "test", check=0)
        texts = sent_texts()
        self.assertEqual(sorted(re.match(r"\[TEST (\S+)\]", s).group(1) for s, _ in texts), ["de", "ja", "pt"],
                         "one message per catalog used, not per locale value")
        assert_no_customer_data(texts)
        self.assertTrue(any("Xxxxx Xxxxxx" in b for _, b in texts), "the name's shape is kept: Jürgen Müller")
        self.assertTrue(any("X-11111" in b for _, b in texts), "the ticket's shape is kept (T-77231)")

        # With samples.csv: its synthetic rows (a German one for de-AT's catalog).
        for p in self.files(d):
            os.remove(p)
        with open(os.path.join(d, "samples.csv"), "w") as f:
            f.write("email,name,locale,assets,effective_date,ticket\n"
                    "s1@example.com,Erika Mustermann,de,1,2026-12-01,T-0001\n"
                    "s2@example.com,Fulano de Tal,pt-BR,2,2026-12-01,\n")
        run("send", d, "--stage", "test", check=0)
        texts = sent_texts()
        self.assertEqual(len(texts), 3)
        assert_no_customer_data(texts)
        self.assertTrue(any("Erika Mustermann" in b for _, b in texts))
        self.assertTrue(any("Fulano de Tal" in b for _, b in texts))
        self.assertTrue(any("xx xx" in b for s, b in texts if "[TEST ja]" in s), "ja has no sample: placeholders")

        # A leak in a sample row is found by lint and stopped by the test stage like any other.
        with open(os.path.join(d, "samples.csv"), "a") as f:
            f.write("s3@example.com,\"Ask hanako.yamada@example.jp\",ja,1,2026-12-01,\n")
        lint = run("lint", d)
        self.assertEqual(lint.returncode, 2)
        self.assertRegex(lint.stderr, r"samples\.csv:4: error: privacy guard: invariant 3")
        self.assertEqual(run("send", d, "--stage", "test").returncode, 3)

    def test_canary_sample_is_identical_across_runs_and_machines(self):
        a = self.campaign(name="a")
        b = self.campaign(name="b")
        run("send", a, "--stage", "canary", check=0)
        run("send", b, "--stage", "canary", check=0)
        sa, sb = status(a)["gates"]["canary"], status(b)["gates"]["canary"]
        self.assertEqual(sa["size"], 20)  # 5% of 400
        self.assertEqual(sa["sample"], sb["sample"])
        sent_a = sorted(support.parse(p)["To"].addresses[0].addr_spec for p in self.files(a))
        sent_b = sorted(support.parse(p)["To"].addresses[0].addr_spec for p in self.files(b))
        self.assertEqual(sent_a, sent_b)
        self.assertEqual(len(sent_a), 20)
        self.assertNotEqual(sent_a, [f"user{i:04d}@example.com" for i in range(20)], "a random sample, not the top rows")

    def test_canary_bounce_rate_over_the_limit_closes_full(self):
        peer = SmtpPeer(self.tmp)
        try:
            emails = [f"reject{i:03d}@example.com" if i % 5 == 0 else f"ok{i:03d}@example.com" for i in range(300)]
            d = self.campaign(emails=emails)
            out = run("send", d, "--stage", "canary", "--transport", f"smtp://127.0.0.1:{peer.port}")
            st = status(d)["gates"]["canary"]
            self.assertFalse(st["passed"])
            self.assertIn("hard-bounce rate", st["why"])
            self.assertGreater(st["bounced"], 0)
            full = run("send", d, "--stage", "full", "--transport", f"smtp://127.0.0.1:{peer.port}")
            self.assertEqual(full.returncode, 4)
            self.assertIn("hard-bounce rate", full.stderr)
            self.assertEqual(out.returncode, 1)
        finally:
            peer.stop()

    def test_canary_waits_before_passing(self):
        d = self.campaign(canary='{ size = 10, min = 10, wait = "1h" }')
        run("send", d, "--stage", "canary", check=0)
        st = status(d)["gates"]["canary"]
        self.assertFalse(st["passed"])
        self.assertIn("waiting for late bounces", st["why"])

    def test_approval_is_voided_by_a_one_character_change(self):
        d = self.campaign()
        run("send", d, "--stage", "canary", check=0)
        run("lint", d, check=0)
        run("approve", d, "--by", "alice", check=0)
        self.assertTrue(status(d)["gates"]["open"])
        append(os.path.join(d, "templates", "body.txt"), "!")
        st = status(d)["gates"]
        self.assertFalse(st["open"])
        self.assertEqual(st["approvals"]["by"], [])
        self.assertEqual(st["approvals"]["voided"], 1)
        out = run("send", d, "--stage", "full")
        self.assertEqual(out.returncode, 4)
        self.assertIn("voided", out.stderr)

    def test_an_approval_names_the_content_it_was_shown(self):
        d = self.campaign()
        run("lint", d, check=0)
        shown = status(d)["content_hash"]
        append(os.path.join(d, "templates", "body.txt"), "!")  # changed after the reviewer looked
        out = run("approve", d, "--by", "alice", "--content-hash", shown)
        self.assertEqual(out.returncode, 4, out.stderr)
        self.assertIn("changed since it was shown", out.stderr)
        self.assertEqual(status(d)["gates"]["approvals"]["by"], [])
        run("approve", d, "--by", "alice", "--content-hash", status(d)["content_hash"], check=0)
        self.assertEqual(status(d)["gates"]["approvals"]["by"], ["alice"])

    def test_distinct_approvers_count(self):
        d = self.campaign()
        set_canary(d, '{ size = 10, min = 10, wait = "0s" }', approvals=2)
        run("send", d, "--stage", "canary", check=0)
        run("approve", d, "--by", "alice", check=0)
        run("approve", d, "--by", "alice", check=0)
        self.assertEqual(run("send", d, "--stage", "full").returncode, 4, "one person approving twice is one approval")
        run("approve", d, "--by", "bob", check=0)
        run("send", d, "--stage", "full", check=0)
        self.assertEqual(status(d)["states"]["sent"], 400)

    def test_full_after_every_gate_and_the_audit_log(self):
        d = self.campaign()
        run("lint", d, check=0)
        run("send", d, "--stage", "test", check=0)
        run("send", d, "--stage", "canary", check=0)
        run("approve", d, "--by", "alice", check=0)
        run("send", d, "--stage", "full", check=0)
        self.assertEqual(status(d)["states"]["sent"], 400)
        kinds = [e["kind"] for e in status(d)["audit"]]
        for k in ("stage_test", "canary_chosen", "canary_complete", "approve", "stage_start", "stage_end"):
            self.assertIn(k, kinds)

    def test_forced_send_is_recorded_with_its_reason(self):
        d = self.campaign()
        self.assertEqual(run("send", d, "--stage", "full", "--force").returncode, 2, "--force needs --reason")
        out = run("send", d, "--stage", "full", "--force", "--reason", "regulator deadline 17:00", check=0)
        self.assertIn("WARNING", out.stderr)
        audit = [e for e in status(d)["audit"] if e["kind"] == "force"]
        self.assertEqual(len(audit), 1)
        self.assertIn("regulator deadline 17:00", audit[0]["detail"])
        self.assertIn("canary", audit[0]["detail"])

    def test_force_never_opens_a_guard_halt(self):
        d = self.campaign()
        append(os.path.join(d, "templates", "body.txt"), "Also sent to user0001@example.com\n")
        out = run("send", d, "--stage", "full", "--force", "--reason", "try anyway")
        self.assertEqual(out.returncode, 3)
        again = run("send", d, "--stage", "full", "--force", "--reason", "try harder")
        self.assertEqual(again.returncode, 3)


if __name__ == "__main__":
    support.main()
