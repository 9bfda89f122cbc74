"""Helpers for blindcast's integration tests: run the binary, read maildirs,
parse messages with Python's email package (an independent parser)."""
import csv
import email
import email.policy
import os
import subprocess
import sys
import tempfile
import unittest

BINARY = None


def run(*args, check=None, timeout=300):
    """Runs blindcast with `args`; returns CompletedProcess (text)."""
    proc = subprocess.run([BINARY, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    if check is not None and proc.returncode != check:
        raise AssertionError(f"blindcast {' '.join(map(str, args))} exited {proc.returncode}, "
                             f"wanted {check}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def maildir_files(root):
    new = os.path.join(root, "new")
    if not os.path.isdir(new):
        return []
    return sorted(os.path.join(new, f) for f in os.listdir(new))


def parse(path):
    with open(path, "rb") as f:
        return email.message_from_binary_file(f, policy=email.policy.default)


def normalise(address):
    """Independent normalisation: lower-case domain in IDNA form."""
    local, _, domain = address.strip().rpartition("@")
    return local + "@" + domain.encode("idna").decode("ascii").lower()


def audience_emails(path):
    with open(path, newline="", encoding="utf-8-sig") as f:
        return [row["email"] for row in csv.DictReader(f)]


class Case(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="blindcast-it-")
        self.tmp = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()


def main():
    global BINARY
    BINARY = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
