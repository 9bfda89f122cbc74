"""DKIM (rsa-sha256 and ed25519-sha256) verified by an independent verifier
(Debian's python3-dkim, given the public keys by the test instead of DNS),
one-click unsubscribe with HMAC tokens, and the secret-file rules for keys."""
import base64
import glob
import json
import os
import subprocess

import dkim

import support
from support import FORCE, SmtpPeer, run, write_campaign

UNSUB_KEY = "k3y-for-unsubscribe-tokens-7d1c"


def openssl(*args, **kw):
    return subprocess.run(["openssl", *args], check=True, capture_output=True, **kw).stdout


class DkimUnsubscribe(support.Case):
    def make(self, emails=None, keys=("rsa", "ed25519")):
        emails = emails or ["alice@example.org", "bob@example.net", "carol@bücher.example"]
        d = write_campaign(self.tmp, emails)
        secrets = os.path.join(d, "secrets")
        os.makedirs(secrets, exist_ok=True)
        self.dns = {}
        files, selectors = [], []
        for kind in keys:
            path = os.path.join(secrets, f"{kind}.pem")
            if kind == "rsa":
                openssl("genpkey", "-algorithm", "rsa", "-pkeyopt", "rsa_keygen_bits:2048", "-out", path)
                der = openssl("pkey", "-in", path, "-pubout", "-outform", "DER")
                record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)
            else:
                openssl("genpkey", "-algorithm", "ed25519", "-out", path)
                der = openssl("pkey", "-in", path, "-pubout", "-outform", "DER")
                record = b"v=DKIM1; k=ed25519; p=" + base64.b64encode(der[-32:])
            os.chmod(path, 0o600)
            selector = f"s2026{kind[0]}"
            self.dns[f"{selector}._domainkey.example.com.".encode()] = record
            files.append(f'"secrets/{kind}.pem"')
            selectors.append(f'"{selector}"')
        with open(os.path.join(secrets, "unsub.key"), "w") as f:
            f.write(UNSUB_KEY + "\n")
        os.chmod(os.path.join(secrets, "unsub.key"), 0o600)
        path = os.path.join(d, "campaign.toml")
        with open(path) as f:
            toml = f.read()
        toml = toml.replace('list_unsubscribe = "mailto:unsubscribe@example.com?subject=unsubscribe-{{campaign_id}}"',
                            'list_unsubscribe = "https://example.com/u/{{unsubscribe_token}}"')
        toml += (f'\n[dkim]\ndomain = "example.com"\nselector = [{", ".join(selectors)}]\n'
                 f'key_file = [{", ".join(files)}]\n\n[unsubscribe]\nsecret_file = "secrets/unsub.key"\n')
        with open(path, "w") as f:
            f.write(toml)
        return d

    def dnsfunc(self, name, timeout=5):
        return self.dns.get(name, b"")

    def verify_all(self, raw):
        count = raw.count(b"DKIM-Signature:")
        results = []
        for i in range(count):
            try:
                results.append(bool(dkim.DKIM(raw).verify(idx=i, dnsfunc=self.dnsfunc)))
            except dkim.ValidationError:
                results.append(False)
        return results

    def test_init_dkim_writes_keys_and_prints_records_that_verify(self):
        d = os.path.join(self.tmp, "loja")
        out = run("init", d, "--dkim", "lojinha.com.br", "--json", check=0)
        records = json.loads(out.stdout)["dkim_records"]
        self.assertEqual(len(records), 2)
        self.dns = {(r["name"] + ".").encode(): r["value"].encode() for r in records}
        self.assertTrue(any("k=rsa; p=" in r["value"] for r in records))
        self.assertTrue(any("k=ed25519; p=" in r["value"] for r in records))
        for name in ("dkim-rsa.pem", "dkim-ed25519.pem", "unsubscribe.key"):
            path = os.path.join(d, "secrets", name)
            self.assertEqual(os.stat(path).st_mode & 0o777, 0o600, name)
        with open(os.path.join(d, "secrets", "dkim-rsa.pem")) as f:
            self.assertTrue(f.read().startswith("-----BEGIN PRIVATE KEY-----"), "unencrypted PKCS#8")
        lint = run("lint", d, check=0)
        self.assertIn("lint: 0 error(s), 0 warning(s)", lint.stdout)
        run("send", d, "--stage", "full", *FORCE, check=0)
        files = glob.glob(os.path.join(d, "out", "maildir", "new", "*"))
        self.assertTrue(files)
        with open(files[0], "rb") as f:
            raw = f.read()
        self.assertIn(b"From: Example Exchange <noreply@lojinha.com.br>", raw)
        self.assertIn(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", raw)
        self.assertEqual(self.verify_all(raw), [True, True])
        # The zone-file line splits the RSA key into strings of at most 255 characters.
        text = run("init", os.path.join(self.tmp, "zone"), "--dkim", "lojinha.com.br", check=0).stdout
        rsa_line = next(l for l in text.splitlines() if "k=rsa" in l)
        strings = rsa_line.split("IN TXT ", 1)[1].split('" "')
        self.assertGreater(len(strings), 1)
        self.assertTrue(all(len(x.strip('"')) <= 255 for x in strings))
        # A name that is no domain, a public suffix, or nothing at all (an unset
        # shell variable) is refused before anything is written.
        for bad_domain in ("not a domain", "com.br", "co.uk", ""):
            bad = os.path.join(self.tmp, "bad")
            out = run("init", bad, "--dkim", bad_domain)
            self.assertEqual(out.returncode, 2, bad_domain)
            self.assertFalse(os.path.exists(bad), bad_domain)

    def test_preview_and_smtp_messages_verify_with_both_algorithms(self):
        d = self.make()
        lint = run("lint", d, check=0)
        self.assertNotIn("no [dkim]", lint.stderr)
        self.assertNotIn("one-click", lint.stderr)
        # lint names the TXT record each key needs; the test derived its own
        # from the key files with openssl.
        published = {}
        for line in lint.stdout.splitlines():
            if line.startswith("dkim: publish TXT at "):
                name, value = line[len("dkim: publish TXT at "):].split(": ", 1)
                published[(name + ".").encode()] = value.encode()
        self.assertEqual(published, self.dns)
        lint_json = json.loads(run("lint", d, "--json", check=0).stdout)
        self.assertEqual({(r["name"] + ".").encode(): r["value"].encode() for r in lint_json["dkim_records"]},
                         self.dns)
        out = os.path.join(self.tmp, "preview")
        run("preview", d, "--out", out, check=0)
        previews = glob.glob(os.path.join(out, "*.eml"))
        self.assertTrue(previews)
        for p in previews:
            raw = open(p, "rb").read()
            self.assertIn(b"a=rsa-sha256", raw)
            self.assertIn(b"a=ed25519-sha256", raw)
            self.assertEqual(self.verify_all(raw), [True, True], p)
            # Altered after signing: both signatures fail.
            altered = raw.replace(b"Hello", b"Hallo", 1)
            self.assertNotEqual(altered, raw)
            self.assertEqual(self.verify_all(altered), [False, False])
        store = os.path.join(self.tmp, "received")
        os.makedirs(store)
        peer = SmtpPeer(self.tmp, "--store", store)
        try:
            run("send", d, "--stage", "full", *FORCE, "--transport", f"smtp://127.0.0.1:{peer.port}", check=0)
        finally:
            peer.stop()
        received = sorted(glob.glob(os.path.join(store, "*.eml")))
        self.assertEqual(len(received), 3)
        for p in received:
            self.assertEqual(self.verify_all(open(p, "rb").read()), [True, True], p)

    def test_one_click_unsubscribe_carries_a_token_not_the_address(self):
        d = self.make(keys=("ed25519",))
        out = os.path.join(self.tmp, "preview")
        tokens = {}
        for addr in ["alice@example.org", "bob@example.net"]:
            target = os.path.join(out, addr)
            run("preview", d, "--out", target, "--recipient", addr, check=0)
            [p] = glob.glob(os.path.join(target, "*.eml"))
            msg = support.parse(p)
            self.assertEqual(msg["List-Unsubscribe-Post"], "List-Unsubscribe=One-Click")
            url = str(msg["List-Unsubscribe"]).strip("<>")
            self.assertTrue(url.startswith("https://example.com/u/"), url)
            self.assertNotIn(addr.split("@")[0], url)
            token = url.rsplit("/", 1)[1]
            # Sealed (AES-GCM): letters, digits, '-' and '_', the address not in it in any form.
            self.assertRegex(token, r"^u1[A-Za-z0-9_-]{60,}$")
            self.assertNotIn(base64.urlsafe_b64encode(addr.encode()).decode().rstrip("=")[:8], token)
            # The same recipient gets the same token each time it is built.
            again = os.path.join(self.tmp, "again", addr)
            run("preview", d, "--out", again, "--recipient", addr, check=0)
            [q] = glob.glob(os.path.join(again, "*.eml"))
            self.assertEqual(str(support.parse(q)["List-Unsubscribe"]).strip("<>").rsplit("/", 1)[1], token)
            tokens[addr] = token
            self.assertIn(b"list-unsubscribe-post", open(p, "rb").read().split(b"bh=")[0])
        self.assertNotEqual(tokens["alice@example.org"], tokens["bob@example.net"])

    def test_https_and_mailto_together(self):
        d = self.make(keys=("ed25519",))
        path = os.path.join(d, "campaign.toml")
        toml = open(path).read().replace(
            'list_unsubscribe = "https://example.com/u/{{unsubscribe_token}}"',
            'list_unsubscribe = ["https://example.com/u/{{unsubscribe_token}}", '
            '"mailto:unsubscribe@example.com?subject=u-{{unsubscribe_token}}"]')
        open(path, "w").write(toml)
        self.assertNotIn("one-click", run("lint", d, check=0).stderr)
        out = os.path.join(self.tmp, "preview")
        run("preview", d, "--out", out, "--recipient", "alice@example.org", check=0)
        [p] = glob.glob(os.path.join(out, "*.eml"))
        raw = open(p, "rb").read()
        msg = support.parse(p)
        token = str(msg["List-Unsubscribe"]).split("/u/", 1)[1].split(">", 1)[0]
        self.assertRegex(token, r"^u1[A-Za-z0-9_-]{60,}$")
        self.assertEqual(str(msg["List-Unsubscribe"]),
                         f"<https://example.com/u/{token}>, <mailto:unsubscribe@example.com?subject=u-{token}>")
        self.assertEqual(msg["List-Unsubscribe-Post"], "List-Unsubscribe=One-Click")
        self.assertEqual(self.verify_all(raw), [True])
        for bad in ('["https://a.example/u", "https://b.example/u"]', '"ftp://example.com/u"', "[]"):
            open(path, "w").write(toml.replace(toml.split("list_unsubscribe = ", 1)[1].split("\n", 1)[0], bad))
            lint = run("lint", d)
            self.assertEqual(lint.returncode, 2, bad)
            self.assertIn("'list_unsubscribe' must be an https URL, a mailto URL, or a list of one of each", lint.stderr)

    def test_a_short_unsubscribe_key_is_refused(self):
        d = self.make(keys=("ed25519",))
        path = os.path.join(d, "secrets", "unsub.key")
        with open(path, "w") as f:
            f.write("pw-1234\n")  # a token and one's own address would give it away offline
        for command in (["lint", d], ["preview", d, "--out", os.path.join(self.tmp, "p")]):
            out = run(*command)
            self.assertEqual(out.returncode, 2, out.stderr)
            self.assertIn("secrets/unsub.key: 7 bytes", out.stderr)
            self.assertIn("at least 16", out.stderr)
            self.assertNotIn("pw-1234", out.stdout + out.stderr)

    def test_lint_warns_for_bulk_senders(self):
        d = write_campaign(self.tmp, ["a@example.org"], name="plain")
        lint = run("lint", d, check=0)
        self.assertIn("no [dkim]", lint.stderr)
        self.assertIn("no one-click unsubscribe", lint.stderr)
        d2 = self.make(keys=("ed25519",))
        path = os.path.join(d2, "campaign.toml")
        toml = open(path).read().replace('domain = "example.com"', 'domain = "other.example"')
        toml = toml.replace("{{unsubscribe_token}}", "{{email}}")
        open(path, "w").write(toml)
        lint = run("lint", d2)
        self.assertIn("does not align", lint.stderr)
        self.assertIn("must not carry the bare address", lint.stderr)
        self.assertEqual(lint.returncode, 2)

    def test_every_bad_secret_file_is_named_in_one_run_with_a_chmod_that_works_anywhere(self):
        d = self.make()
        files = [os.path.join(d, "secrets", name) for name in ("rsa.pem", "ed25519.pem", "unsub.key")]
        for path in files:
            os.chmod(path, 0o644)
        out = subprocess.run([support.BINARY, "lint", os.path.relpath(d, "/")], capture_output=True, text=True,
                             cwd="/", stdin=subprocess.DEVNULL)
        self.assertEqual(out.returncode, 2, out.stderr)
        self.assertIn("3 secret files need fixing", out.stderr)
        for path in files:
            self.assertIn(f"chmod 600 '{path}'", out.stderr)
        self.assertNotIn("PRIVATE KEY", out.stdout + out.stderr)

    def test_key_file_permissions(self):
        d = self.make(keys=("ed25519",))
        key = os.path.join(d, "secrets", "ed25519.pem")
        for mode in (0o644, 0o640):
            os.chmod(key, mode)
            out = run("lint", d)
            self.assertEqual(out.returncode, 2)
            self.assertIn("secrets/ed25519.pem", out.stderr)
            self.assertIn("chmod 600", out.stderr)
            self.assertNotIn("PRIVATE KEY", out.stdout + out.stderr)
        os.chmod(key, 0o600)
        # A symlink to a key owned by someone else.
        other = os.path.join(self.tmp, "other.pem")
        subprocess.run(["cp", key, other], check=True)
        os.chmod(other, 0o600)
        os.chown(other, 65534, 65534)
        os.rename(key, key + ".mine")
        os.symlink(other, key)
        out = run("lint", d)
        self.assertEqual(out.returncode, 2)
        self.assertIn("owned by uid 65534", out.stderr)
        os.remove(key)
        os.mkdir(key)
        out = run("send", d, "--stage", "full", *FORCE)
        self.assertEqual(out.returncode, 2)
        self.assertIn("not a regular file", out.stderr)

    def test_encrypted_or_unreadable_key_is_refused_without_a_prompt(self):
        d = self.make(keys=("ed25519",))
        key = os.path.join(d, "secrets", "ed25519.pem")
        openssl("pkey", "-in", key, "-out", key + ".enc", "-aes-256-cbc", "-passout", "pass:hunter2-passphrase")
        os.replace(key + ".enc", key)
        os.chmod(key, 0o600)
        for command in (["lint", d], ["send", d, "--stage", "full", *FORCE]):
            out = run(*command)
            self.assertEqual(out.returncode, 2, out.stderr)
            self.assertIn("secrets/ed25519.pem", out.stderr)
            self.assertIn("encrypted with a passphrase", out.stderr)
            self.assertNotIn("pass phrase", (out.stdout + out.stderr).lower())  # OpenSSL's own prompt
        with open(key, "w") as f:
            f.write("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
        out = run("lint", d)
        self.assertEqual(out.returncode, 2)
        self.assertIn("not a PEM private key", out.stderr)
        self.assertNotIn("pass phrase", (out.stdout + out.stderr).lower())


if __name__ == "__main__":
    support.main()
