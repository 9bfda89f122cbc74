"""The send engine: one owner per campaign (a second send is refused, a killed
owner is replaced at once), lanes that do not wait for one another, and
what a crash can deliver twice: at most 2 x connections per kill, every one
of them among the recipients `status` reports, and `status` reports no more
than those (the outcome log says which ends of DATA were written)."""
import collections
import json
import os
import random
import shutil
import signal
import subprocess
import time

import support
from support import FORCE, run, status, write_campaign

CONNECTIONS = 20                       # [transport] connections of an init'ed campaign
DUPLICATE_BOUND = 2 * CONNECTIONS      # what one crash can deliver twice, and status reports


def start_send(d, url):
    return subprocess.Popen([support.BINARY, "send", d, "--stage", "full", *FORCE, "--transport", url],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


class SendEngine(support.PeerCase):
    def test_a_second_send_is_refused_and_every_recipient_arrives_once(self):
        # 20 ms per reply: the first send runs for a few seconds.
        p = self.peer("--delay", "0.02")
        emails = [f"member{i:04d}@example.com" for i in range(1500)]
        d = write_campaign(self.tmp, emails)
        url = f"smtp://127.0.0.1:{p.port}"
        first = start_send(d, url)
        try:
            support.wait_for(lambda: len(p.records("message")) >= 50, what="the first send to deliver")
            second = run("send", d, "--stage", "full", *FORCE, "--transport", url, timeout=60)
            self.assertEqual(second.returncode, 2, second.stderr)
            self.assertRegex(second.stderr, r"is being sent by another process \(pid \d+ on .+, since "
                                            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)")
            self.assertIsNone(first.poll(), "the first send was still running when the second was refused")
            _, err = first.communicate(timeout=120)
            self.assertEqual(first.returncode, 0, err)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
        counts = collections.Counter(m["rcpt_tos"][0] for m in p.records("message"))
        self.assertEqual(set(counts), set(emails))
        self.assertEqual([r for r, n in counts.items() if n != 1], [], "a recipient got more than one message")
        st = status(d)
        self.assertEqual(st["states"]["sent"], len(emails))
        self.assertEqual(st["possible_duplicates"], 0)

    def test_a_killed_owner_is_replaced_at_once(self):
        p = self.peer("--delay", "0.02")
        emails = [f"member{i:04d}@example.com" for i in range(1200)]
        d = write_campaign(self.tmp, emails)
        url = f"smtp://127.0.0.1:{p.port}"
        first = start_send(d, url)
        support.wait_for(lambda: len(p.records("message")) >= 100, what="the first send to deliver")
        first.send_signal(signal.SIGKILL)
        first.wait()
        start = time.time()
        second = run("send", d, "--stage", "full", *FORCE, "--transport", url, timeout=120)
        self.assertEqual(second.returncode, 0, second.stderr)
        self.assertNotIn("another process", second.stderr)
        counts = collections.Counter(m["rcpt_tos"][0] for m in p.records("message"))
        self.assertEqual(set(counts), set(emails), "nothing lost")
        duplicates = sum(n - 1 for n in counts.values())
        st = status(d)
        self.assertLessEqual(duplicates, DUPLICATE_BOUND)
        self.assertLessEqual(duplicates, st["possible_duplicates"])
        self.assertLessEqual(st["possible_duplicates"], DUPLICATE_BOUND)
        print(f"takeover: the new owner finished in {time.time() - start:.1f}s; duplicates={duplicates} "
              f"possible={st['possible_duplicates']}")

    def test_a_transport_that_fails_ends_the_send_and_loses_nothing(self):
        # A maildir that can no longer be written (its tmp/ replaced by a
        # file mid-send): the send stops with the reason instead of hanging,
        # and once the maildir is mended a new send delivers the rest.
        emails = [f"member{i:05d}@example.com" for i in range(40000)]
        d = write_campaign(self.tmp, emails)
        md = os.path.join(self.tmp, "md")
        url = f"maildir:{md}"
        proc = start_send(d, url)
        try:
            new = os.path.join(md, "new")
            support.wait_for(lambda: os.path.isdir(new) and len(os.listdir(new)) >= 2000, what="the send to write files")
            # The transport writes through its handle on tmp/: move it away
            # and delete it (files may still appear in it while we do).
            gone = os.path.join(self.tmp, "tmp-gone")
            os.rename(os.path.join(md, "tmp"), gone)
            with open(os.path.join(md, "tmp"), "w") as f:
                f.write("not a directory")
            for _ in range(200):
                shutil.rmtree(gone, ignore_errors=True)
                if not os.path.exists(gone):
                    break
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
                self.fail("the send did not end after its transport failed")
        self.assertNotEqual(proc.returncode, 0, err)
        self.assertIn("maildir", err)
        os.remove(os.path.join(md, "tmp"))
        final = run("send", d, "--stage", "full", *FORCE, "--transport", url, timeout=300)
        self.assertEqual(final.returncode, 0, final.stderr)
        self.assertEqual(len(os.listdir(os.path.join(md, "new"))), len(emails), "one file per recipient")
        self.assertEqual(status(d)["states"]["sent"], len(emails))

    def stray_reply_send(self, stray):
        """Sends 400 recipients to a peer that answers every fifth DATA with
        354 and `stray` in one write; returns the recipients it accepted."""
        log = os.path.join(self.tmp, "stray.jsonl")
        peer = subprocess.Popen(["/usr/bin/python3", os.path.join(os.path.dirname(support.PEER), "stray_reply_peer.py"),
                                 "--log", log, "--every", "5", "--stray", stray],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            port = int(peer.stdout.readline().split()[1])
            emails = [f"member{i:04d}@example.com" for i in range(400)]
            d = write_campaign(self.tmp, emails, '[delivery]\nretry = ["1s"]\n')
            out = run("send", d, "--stage", "full", *FORCE, "--transport", f"smtp://127.0.0.1:{port}", timeout=120)
            self.assertEqual(out.returncode, 0, out.stderr[-2000:])
            with open(log) as f:
                got = [json.loads(l)["rcpt"] for l in f if l.endswith("\n")]
            self.assertEqual(sorted(set(got)), sorted(emails), "every recipient delivered")
            self.assertEqual(status(d)["states"]["sent"], len(emails))
            return got, emails
        finally:
            peer.stdin.close()
            peer.wait(timeout=10)
            peer.stdout.close()

    def test_sessions_broken_after_354_do_not_use_up_the_duplicate_limit(self):
        # A server that sends a stray reply right behind every fifth 354: the
        # client drops that session before writing the message, which goes
        # back to the queue. Far more such messages than the limit on
        # unconfirmed ends of DATA (40): none may count against it.
        got, emails = self.stray_reply_send("250 stray")
        self.assertEqual(len(got), len(emails), "none twice: no body was written for a dropped session")

    def test_a_421_while_a_body_waits_for_its_record_ends_only_that_message(self):
        # The 421 ends a message whose body waits for its end-of-DATA record:
        # its place must not pass to the next message as already recorded.
        got, emails = self.stray_reply_send("421 4.3.2 closing")
        self.assertEqual(len(got), len(emails), "none twice")

    def test_three_kills_with_slow_replies_double_at_most_two_per_connection(self):
        # Every reply takes 20 ms, so each connection always has a message
        # awaiting its reply when the kill comes: the worst case.
        p = self.peer("--delay", "0.02")
        emails = [f"member{i:04d}@example.com" for i in range(3000)]
        d = write_campaign(self.tmp, emails)
        url = f"smtp://127.0.0.1:{p.port}"
        rng = random.Random(20261129)
        kills = 0
        in_flight = []  # what status reports after each kill, before the next run recovers it
        for _ in range(3):
            proc = start_send(d, url)
            if support.kill_after_resend(proc, p, DUPLICATE_BOUND, rng.uniform(0.0, 0.6)):
                kills += 1
            in_flight.append(status(d)["states"]["in_flight"])
        self.assertEqual(kills, 3, "the send finished before it could be killed three times")
        final = run("send", d, "--stage", "full", *FORCE, "--transport", url, timeout=300)
        self.assertEqual(final.returncode, 0, final.stderr)
        counts = collections.Counter(m["rcpt_tos"][0] for m in p.records("message"))
        self.assertEqual(set(counts), set(emails), "every recipient delivered")
        duplicates = sum(n - 1 for n in counts.values())
        doubled = {r for r, n in counts.items() if n > 1}
        st = status(d)
        self.assertEqual(st["states"]["sent"], len(emails))
        self.assertLessEqual(duplicates, kills * DUPLICATE_BOUND)
        # After each kill status names the recipients whose end of DATA was
        # written without a recorded reply: every duplicate is among them, and
        # they are no more than one per connection awaiting a reply plus one
        # answered and not yet in the outcome log.
        for n in in_flight:
            self.assertLessEqual(n, DUPLICATE_BOUND)
        self.assertLessEqual(duplicates, sum(in_flight))
        self.assertEqual(st["possible_duplicates"], sum(in_flight), "recovery counted what status reported")
        self.assertLessEqual(len(doubled), st["possible_duplicate_recipients"])
        print(f"kills={kills} duplicates={duplicates} (bound {kills * DUPLICATE_BOUND}) "
              f"in flight after each kill: {in_flight}; possible_duplicates={st['possible_duplicates']}")


if __name__ == "__main__":
    support.main()
