"""SMTP delivery against real peers on 127.0.0.1: one scenario per test."""
import os
import signal
import subprocess
import threading
import time

import support
from support import FORCE, SmtpPeer, run, status, write_campaign

FAST_RETRY = '[delivery]\nretry = ["1s"]\n'


def transport(port, scheme="smtp"):
    return f"{scheme}://127.0.0.1:{port}"


class SmtpDelivery(support.PeerCase):
    def assert_one_recipient_each(self, peer):
        for m in peer.records("message"):
            self.assertEqual(len(m["rcpt_tos"]), 1, m)
            self.assertEqual([a.lower() for a in m["to"]], [m["rcpt_tos"][0].lower()], m)
            self.assertFalse(m["cc"] or m["bcc"], m)

    def test_every_recipient_once_one_rcpt_per_transaction(self):
        p = self.peer()
        emails = [f"user{i}@example.com" for i in range(300)]
        d = write_campaign(self.tmp, emails)
        out = run("send", d, "--stage", "full", *FORCE, "--transport", transport(p.port), check=0)
        self.assertIn("300 sent this run", out.stdout)
        got = sorted(m["rcpt_tos"][0] for m in p.records("message"))
        self.assertEqual(got, sorted(emails))
        self.assert_one_recipient_each(p)
        self.assertEqual(status(d)["states"]["sent"], 300)

    def test_short_addresses_arrive_intact_while_the_transport_takes_more_messages(self):
        # An address of at most 15 bytes lives inside its std::string: the
        # transport must not move a message while a session holds views of it
        # (it did when it took more messages than ever before, mid-send).
        p = self.peer("--delay", "0.01")
        for n in range(3):
            emails = [f"u{i}.{n}@ex.co" for i in range(400)]
            d = write_campaign(self.tmp, emails, name=f"short{n}")
            before = len(p.records("message"))
            run("send", d, "--stage", "full", *FORCE, "--transport", transport(p.port), check=0, timeout=120)
            got = sorted(m["rcpt_tos"][0] for m in p.records("message")[before:])
            self.assertEqual(got, sorted(emails))

    def test_next_batch_goes_out_while_a_slow_reply_holds_the_previous_one(self):
        # Batches are 500 recipients. One slow reply in the first batch must not
        # hold back the second: its messages go out on the other connections
        # as soon as the first batch's last messages are handed over.
        p = self.peer("--slow", "4")
        emails = [f"user{i}@example.com" for i in range(1000)]
        emails[400] = "slow-once@example.com"
        d = write_campaign(self.tmp, emails)
        out = run("send", d, "--stage", "full", *FORCE, "--transport", transport(p.port), check=0, timeout=120)
        self.assertIn("1,000 sent this run", out.stdout)
        msgs = p.records("message")
        self.assertEqual(sorted(m["rcpt_tos"][0] for m in msgs), sorted(emails), "every recipient once")
        self.assert_one_recipient_each(p)
        slow = [m for m in msgs if m.get("slow")]
        self.assertEqual(len(slow), 1, "the peer stalled once")
        answered = slow[0]["t"] + 4  # "t" is when DATA ended; the reply came 4 s later
        second = {f"user{i}@example.com" for i in range(500, 1000)}
        early = [m for m in msgs if m["rcpt_tos"][0] in second and m["t"] < answered - 0.5]
        self.assertGreaterEqual(len(early), 200, "the second batch waited for the first one's slow reply")
        st = status(d)
        self.assertEqual(st["states"]["sent"], 1000)
        self.assertEqual(st["states"]["in_flight"], 0)
        self.assertEqual(st["possible_duplicates"], 0)

    def test_550_bounces_and_is_never_retried_450_is_retried(self):
        p = self.peer()
        emails = ["ok1@example.com", "reject-me@example.com", "tempfail-once@example.com", "ok2@example.com"]
        d = write_campaign(self.tmp, emails, FAST_RETRY)
        out = run("send", d, "--stage", "full", *FORCE, "--transport", transport(p.port), timeout=120)
        self.assertEqual(out.returncode, 1, out.stderr)  # one recipient bounced
        st = status(d)
        self.assertEqual(st["states"]["sent"], 3)
        self.assertEqual(st["states"]["bounced"], 1)
        rcpts = [r["address"] for r in p.records("rcpt")]
        self.assertEqual(rcpts.count("reject-me@example.com"), 1, "a 5xx is never retried")
        self.assertEqual(rcpts.count("tempfail-once@example.com"), 2, "a 4xx is retried")
        delivered = [m["rcpt_tos"][0] for m in p.records("message")]
        self.assertEqual(sorted(delivered), sorted(["ok1@example.com", "tempfail-once@example.com", "ok2@example.com"]))
        self.assertIn("550", " ".join(e["reply"] for e in st["last_errors"]))

    def test_421_mid_session_defers_and_recovers(self):
        p = self.peer()
        emails = [f"user{i}@example.com" for i in range(50)] + ["throttle-once@example.com"] + \
                 [f"after{i}@example.com" for i in range(50)]
        d = write_campaign(self.tmp, emails, FAST_RETRY)
        run("send", d, "--stage", "full", *FORCE, "--transport", transport(p.port), check=0, timeout=120)
        self.assertIn("421", [r["reply"][:3] for r in p.records("rcpt")], "the peer did send 421")
        delivered = sorted(m["rcpt_tos"][0] for m in p.records("message"))
        self.assertEqual(delivered, sorted(emails))
        self.assert_one_recipient_each(p)

    def test_disconnect_during_data_is_retried_and_counted_as_possible_duplicate(self):
        p = self.peer()
        emails = ["a@example.com", "drop-once@example.com", "b@example.com"]
        d = write_campaign(self.tmp, emails, FAST_RETRY)
        run("send", d, "--stage", "full", *FORCE, "--transport", transport(p.port), check=0, timeout=120)
        msgs = [m for m in p.records("message") if m["rcpt_tos"][0] == "drop-once@example.com"]
        self.assertEqual(len(msgs), 2, "dropped after DATA, then retried")
        self.assertTrue(msgs[0].get("dropped"), "the peer did drop the first one")
        st = status(d)
        self.assertEqual(st["states"]["sent"], 3)
        self.assertGreaterEqual(st["possible_duplicates"], 1)

    def test_reply_slower_than_the_timeout(self):
        p = self.peer("--slow", "4")
        emails = ["a@example.com", "slow-once@example.com"]
        d = write_campaign(self.tmp, emails, FAST_RETRY)
        with open(os.path.join(d, "campaign.toml")) as f:
            toml = f.read()
        toml = toml.replace('url = "maildir:out/maildir"', f'url = "{transport(p.port)}"\ntimeout = "1s"')
        with open(os.path.join(d, "campaign.toml"), "w") as f:
            f.write(toml)
        start = time.time()
        run("send", d, "--stage", "full", *FORCE, check=0, timeout=120)
        self.assertLess(time.time() - start, 30)
        self.assertEqual(len(p.records("slow")), 1, "the peer stalled once")
        st = status(d)
        self.assertEqual(st["states"]["sent"], 2)
        self.assertGreaterEqual(st["possible_duplicates"], 1)

    def test_server_down_holds_recipients_pending_with_reason(self):
        emails = ["a@example.com"]
        d = write_campaign(self.tmp, emails, '[delivery]\nretry = ["1h"]\n')
        port = support_free_port()
        proc = subprocess.Popen([support.BINARY, "send", d, "--stage", "full", *FORCE, "--transport", transport(port)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        time.sleep(3)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 1, err)
        st = status(d)
        # Never reached a server: not an attempt, so pending (held), not deferred.
        self.assertEqual(st["states"]["pending"], 1)
        self.assertEqual(st["states"]["deferred"], 0)
        self.assertEqual(st["last_errors"][0]["state"], "pending")
        self.assertIn("cannot connect", st["last_errors"][0]["reply"])

    def test_halt_stops_a_running_send_within_a_second(self):
        p = self.peer("--delay", "0.05")
        emails = [f"user{i}@example.com" for i in range(3000)]
        d = write_campaign(self.tmp, emails)
        proc = subprocess.Popen([support.BINARY, "send", d, "--stage", "full", *FORCE, "--transport", transport(p.port)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())  # never leave a sender behind
        time.sleep(2.5)
        self.assertIsNone(proc.poll(), "still sending")
        self.assertIsNotNone(status(d)["running"], "status shows the running send")
        deadline = time.time() + 10
        while time.time() < deadline and status(d)["running"]["rate_per_second"] == 0:
            time.sleep(0.25)  # the first batch of 500 takes about 3 s at this peer's pace
        running = status(d)["running"]
        self.assertGreater(running["rate_per_second"], 0)
        self.assertGreater(running["eta_seconds"], 0)
        run("halt", d, "--reason", "bad numbers in the body", check=0)
        halted_at = time.time()
        time.sleep(1.2)
        count_after_1s = len(p.records("message"))
        out, err = proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 5, err)
        time.sleep(0.5)
        self.assertLessEqual(len(p.records("message")) - count_after_1s, 0, "no message finished after 1 s")
        self.assertLess(len(p.records("message")), 3000)
        self.assertEqual(run("send", d, "--stage", "full", *FORCE, "--transport", transport(p.port)).returncode, 5)
        self.assertLess(halted_at, time.time())


def support_free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    support.main()
