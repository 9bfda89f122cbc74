"""Delivery to Postfix's smtp-sink (run as `smtp-sink -u nobody 127.0.0.1:PORT
1024`, without the Postfix daemon): many messages over pooled, pipelined
connections, every one accepted and recorded as sent, resumable."""
import os
import shutil
import socket
import subprocess
import time

import support
from support import FORCE, run, status, write_campaign


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SmtpSink(support.Case):
    def test_thousands_through_smtp_sink(self):
        sink = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
        port = free_port()
        count_file = os.path.join(self.tmp, "count")
        proc = subprocess.Popen([sink, "-u", "nobody", "-c", f"127.0.0.1:{port}", "1024"],
                                stdout=open(count_file, "w"), stderr=subprocess.STDOUT)
        try:
            time.sleep(0.5)
            emails = [f"user{i}@example.com" for i in range(5000)]
            d = write_campaign(self.tmp, emails)
            out = run("send", d, "--stage", "full", *FORCE, "--transport", f"smtp://127.0.0.1:{port}", check=0)
            self.assertIn("5,000 sent this run", out.stdout)
            st = status(d)
            self.assertEqual(st["states"]["sent"], 5000)
            self.assertEqual(st["possible_duplicates"], 0)
            again = run("send", d, "--stage", "full", *FORCE, "--transport", f"smtp://127.0.0.1:{port}", check=0)
            self.assertIn("0 sent this run", again.stdout)
        finally:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    support.main()
