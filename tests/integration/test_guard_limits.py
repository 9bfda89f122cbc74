"""The guard's own limits (its ledger beside the journal): two sends of one
campaign, each with its own --state so no journal can see the other, are
halted after at most 2 x connections second messages and nobody gets
a third; a kill -9 and resume trips no limit."""
import collections
import os
import random
import signal
import subprocess
import time

import support
from support import FORCE, SmtpPeer, run, status, write_campaign

# What one run may send twice: what a crash can leave possibly delivered,
# 2 x [transport] connections (20): ends of DATA written, outcome not yet recorded.
WINDOW = 40


def send(d, url, state):
    return subprocess.Popen([support.BINARY, "send", d, "--stage", "full", *FORCE, "--transport", url,
                             "--state", state], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


class GuardLimits(support.Case):
    def test_two_senders_with_their_own_state_are_halted(self):
        peer = SmtpPeer(self.tmp)
        try:
            emails = [f"{n}.{i}@example.com" for i, n in
                      enumerate(random.Random(7).choices(["anna", "li.wei", "jose", "o'neil", "mueller"], k=8000))]
            d = write_campaign(self.tmp, emails)
            url = f"smtp://127.0.0.1:{peer.port}"
            # Each operator has a store of their own already (a new --state
            # for a campaign that has sent is refused before the ledger is
            # even asked): the ledger is what stops the two of them.
            for name in ("a.db", "b.db", "c.db"):
                open(os.path.join(self.tmp, name), "w").close()
            a = send(d, url, os.path.join(self.tmp, "a.db"))
            time.sleep(0.5)
            b = send(d, url, os.path.join(self.tmp, "b.db"))
            out_a, err_a = a.communicate(timeout=300)
            out_b, err_b = b.communicate(timeout=300)
            codes = sorted([a.returncode, b.returncode])
            self.assertIn(3, codes, f"a: {err_a[-500:]}\nb: {err_b[-500:]}")
            for rc, err in ((a.returncode, err_a), (b.returncode, err_b)):
                if rc == 3:
                    self.assertRegex(err, r"limit: (second messages|third message)")
            counts = collections.Counter(m["rcpt_tos"][0] for m in peer.records("message"))
            self.assertLessEqual(max(counts.values()), 2, "nobody gets a third message")
            doubled = sum(1 for n in counts.values() if n == 2)
            self.assertLessEqual(doubled, WINDOW, "at most 2 x connections second messages")
            print(f"delivered {sum(counts.values())}, {doubled} recipients twice; exit codes {codes}")

            # Both stay stopped (the ledger is halted for every sender) until release.
            again = run("send", d, "--stage", "full", *FORCE, "--transport", url,
                        "--state", os.path.join(self.tmp, "c.db"))
            self.assertEqual(again.returncode, 3, again.stderr)
            self.assertIn("limit", again.stderr)
            rel = run("release", d, "--state", os.path.join(self.tmp, "c.db"), check=0)
            self.assertIn("released", rel.stdout)
        finally:
            peer.stop()

    def test_kill_and_resume_trips_no_limit(self):
        peer = SmtpPeer(self.tmp)
        try:
            emails = [f"user{i:05d}@example.com" for i in range(4000)]
            d = write_campaign(self.tmp, emails)
            url = f"smtp://127.0.0.1:{peer.port}"
            proc = subprocess.Popen([support.BINARY, "send", d, "--stage", "full", *FORCE, "--transport", url],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.2)
            self.assertIsNone(proc.poll(), "the send must still be running when it is killed")
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            final = run("send", d, "--stage", "full", *FORCE, "--transport", url, timeout=300)
            self.assertEqual(final.returncode, 0, final.stderr)
            counts = collections.Counter(m["rcpt_tos"][0] for m in peer.records("message"))
            self.assertEqual(set(counts), set(emails))
            self.assertEqual(status(d)["states"]["sent"], len(emails))
        finally:
            peer.stop()


if __name__ == "__main__":
    support.main()
