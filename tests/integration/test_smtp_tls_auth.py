"""TLS (STARTTLS and implicit) and AUTH against a real peer with a certificate
made for the test; secrets only from files with strict permissions, and never
in any output or state."""
import os
import subprocess

import support
from support import FORCE, SmtpPeer, run, status, write_campaign

PASSWORD = "correct-horse-battery-9f3a"


def make_cert(root):
    key, cert = os.path.join(root, "key.pem"), os.path.join(root, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    return cert, key


def set_transport(d, lines):
    path = os.path.join(d, "campaign.toml")
    with open(path) as f:
        toml = f.read()
    toml = toml.replace('url = "maildir:out/maildir"', "\n".join(lines))
    with open(path, "w") as f:
        f.write(toml)


def write_secret(d, value, mode=0o600):
    os.makedirs(os.path.join(d, "secrets"), exist_ok=True)
    path = os.path.join(d, "secrets", "smtp.pass")
    with open(path, "w") as f:
        f.write(value + "\n")
    os.chmod(path, mode)
    return path


class SmtpTlsAuth(support.PeerCase):
    def setUp(self):
        super().setUp()
        self.cert, self.key = make_cert(self.tmp)
        self.peer_args = ("--cert", self.cert, "--key", self.key)

    def test_starttls_required_and_verified(self):
        p = self.peer("--require-tls")
        d = write_campaign(self.tmp, ["a@example.com", "b@example.com"])
        set_transport(d, [f'url = "smtp://127.0.0.1:{p.port}"', 'tls = "required"', f'ca_file = "{self.cert}"'])
        run("send", d, "--stage", "full", *FORCE, check=0)
        msgs = p.records("message")
        self.assertEqual(len(msgs), 2)
        self.assertTrue(all(m["tls"] for m in msgs))

    def test_tls_required_refuses_an_unverifiable_certificate(self):
        p = self.peer("--require-tls")
        d = write_campaign(self.tmp, ["a@example.com"])
        set_transport(d, [f'url = "smtp://127.0.0.1:{p.port}"', 'tls = "required"'])
        out = run("send", d, "--stage", "full", *FORCE)
        self.assertEqual(out.returncode, 1)
        self.assertIn("certificate", out.stderr)
        self.assertEqual(p.records("message"), [])
        self.assertEqual(status(d)["states"]["pending"], 1, "not attempted: back to pending, not a duplicate")
        self.assertEqual(status(d)["possible_duplicates"], 0)

    def test_implicit_tls(self):
        p = self.peer("--implicit-tls")
        d = write_campaign(self.tmp, ["a@example.com"])
        set_transport(d, [f'url = "smtps://127.0.0.1:{p.port}"', f'ca_file = "{self.cert}"'])
        run("send", d, "--stage", "full", *FORCE, check=0)
        self.assertTrue(p.records("message")[0]["tls"])

    def test_auth_over_starttls_with_password_file(self):
        p = self.peer("--auth", f"mailer:{PASSWORD}")
        d = write_campaign(self.tmp, ["a@example.com", "b@example.com"])
        write_secret(d, PASSWORD)
        set_transport(d, [f'url = "smtp://127.0.0.1:{p.port}"', 'tls = "required"', f'ca_file = "{self.cert}"',
                          'username = "mailer"', 'password_file = "secrets/smtp.pass"'])
        run("send", d, "--stage", "full", *FORCE, check=0)
        self.assertTrue(all(m["auth"] and m["tls"] for m in p.records("message")))
        self.assertEqual(len(p.records("message")), 2)

    def test_secret_file_permissions_are_enforced(self):
        d = write_campaign(self.tmp, ["a@example.com"])
        set_transport(d, ['url = "smtp://127.0.0.1:1"', 'username = "mailer"', 'password_file = "secrets/smtp.pass"'])
        for mode, part in [(0o644, "chmod 600"), (0o640, "chmod 600"), (0o604, "chmod 600")]:
            write_secret(d, PASSWORD, mode)
            out = run("send", d, "--stage", "full", *FORCE)
            self.assertEqual(out.returncode, 2, out.stderr)
            self.assertIn("secrets/smtp.pass", out.stderr)
            self.assertIn(part, out.stderr)
        os.remove(os.path.join(d, "secrets", "smtp.pass"))
        os.mkdir(os.path.join(d, "secrets", "smtp.pass"))
        out = run("send", d, "--stage", "full", *FORCE)
        self.assertEqual(out.returncode, 2)
        self.assertIn("not a regular file", out.stderr)

    def test_auth_refused_leaks_no_byte_of_the_password(self):
        p = self.peer("--auth", "mailer:something-else")
        d = write_campaign(self.tmp, ["a@example.com"])
        write_secret(d, PASSWORD)
        set_transport(d, [f'url = "smtp://127.0.0.1:{p.port}"', 'tls = "required"', f'ca_file = "{self.cert}"',
                          'username = "mailer"', 'password_file = "secrets/smtp.pass"'])
        out = run("send", d, "--stage", "full", *FORCE, "--log-format", "json")
        self.assertEqual(out.returncode, 1)
        self.assertIn("authentication refused", out.stderr)
        st = run("status", d, "--audit", "--json", check=0)
        haystack = out.stdout + out.stderr + st.stdout
        state_dir = os.path.join(d, ".blindcast")
        for name in os.listdir(state_dir):
            path = os.path.join(state_dir, name)
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    self.assertNotIn(PASSWORD.encode(), f.read(), name)
        self.assertNotIn(PASSWORD, haystack)
        import base64
        self.assertNotIn(base64.b64encode(PASSWORD.encode()).decode()[:12], haystack)

    def test_auth_refused_leaves_nobody_in_flight(self):
        # The batch after the refused one is already marked in flight when the
        # refusal arrives: it must go back to pending, not count as a possible
        # duplicate on the next run.
        p = self.peer("--auth", "mailer:something-else")
        d = write_campaign(self.tmp, [f"user{i}@example.com" for i in range(1200)])
        write_secret(d, PASSWORD)
        set_transport(d, [f'url = "smtp://127.0.0.1:{p.port}"', 'tls = "required"', f'ca_file = "{self.cert}"',
                          'username = "mailer"', 'password_file = "secrets/smtp.pass"'])
        out = run("send", d, "--stage", "full", *FORCE)
        self.assertEqual(out.returncode, 1, out.stderr)
        st = status(d)
        self.assertEqual(st["states"]["in_flight"], 0, st)
        self.assertEqual(st["states"]["pending"], 1200, st)
        self.assertEqual(st["possible_duplicates"], 0, st)
        self.assertIsNone(st["running"], "a send that stopped is not shown as running")
        self.assertEqual(p.records("message"), [])


if __name__ == "__main__":
    support.main()
