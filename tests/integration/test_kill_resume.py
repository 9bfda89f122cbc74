"""Crash safety (SPEC §7): a 20,000-recipient SMTP send is killed with SIGKILL
at ten random moments and resumed each time. Every recipient must be
delivered; at most 2 x connections messages per kill may arrive twice, and
`status` counts every one of them among its possible duplicates, which are
no more than that bound either (the outcome log names the ends of DATA
written without a recorded reply)."""
import collections
import random
import subprocess

import support
from support import FORCE, SmtpPeer, run, status, write_campaign

RECIPIENTS = 20000
KILLS = 10
DUPLICATE_BOUND = 40    # what one kill can deliver twice, and leaves "possibly delivered": 2 x connections (20)


class KillResume(support.Case):
    def test_sigkill_at_random_moments_loses_nothing(self):
        peer = SmtpPeer(self.tmp)
        try:
            emails = [f"user{i:05d}@example.com" for i in range(RECIPIENTS)]
            d = write_campaign(self.tmp, emails)
            url = f"smtp://127.0.0.1:{peer.port}"
            rng = random.Random(20261122)
            kills = 0
            attempts = 0
            while kills < KILLS and attempts < KILLS * 3:
                attempts += 1
                proc = subprocess.Popen([support.BINARY, "send", d, "--stage", "full", *FORCE, "--transport", url],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                if support.kill_after_resend(proc, peer, DUPLICATE_BOUND, rng.uniform(0.0, 2.0)):
                    kills += 1
            self.assertEqual(kills, KILLS, "the send finished before it could be killed often enough")
            final = run("send", d, "--stage", "full", *FORCE, "--transport", url, timeout=600)
            self.assertEqual(final.returncode, 0, final.stderr)

            counts = collections.Counter(m["rcpt_tos"][0] for m in peer.records("message"))
            self.assertEqual(set(counts), set(emails), "every recipient delivered")
            duplicates = sum(n - 1 for n in counts.values())
            st = status(d)
            self.assertEqual(st["states"]["sent"], RECIPIENTS)
            self.assertLessEqual(duplicates, KILLS * DUPLICATE_BOUND)
            self.assertLessEqual(duplicates, st["possible_duplicates"],
                                 "every extra delivery is among those status reports")
            self.assertLessEqual(st["possible_duplicates"], KILLS * DUPLICATE_BOUND)
            doubled = {r for r, n in counts.items() if n > 1}
            self.assertLessEqual(len(doubled), st["possible_duplicate_recipients"])
            for m in peer.records("message"):
                self.assertEqual(len(m["rcpt_tos"]), 1)
            print(f"kills={kills} delivered={sum(counts.values())} duplicates={duplicates} "
                  f"possible_duplicates={st['possible_duplicates']} "
                  f"recipients={st['possible_duplicate_recipients']}")
        finally:
            peer.stop()


if __name__ == "__main__":
    support.main()
