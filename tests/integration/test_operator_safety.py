"""Operator safety: no command acts on, or creates, the wrong thing. A
mistyped campaign path or --state is refused (exit 2, naming what is
missing) and nothing is created; a state store is created only by `send`
(or at a campaign's default path) and only readable by its owner; `halt`
says whether a sender is running and which, and that sender stops. A
mistyped setting is an error with what was meant; lint errors close every
stage but test."""
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import time

import support
from support import FORCE, run, write_campaign


def tree(root):
    """Every path under `root`, relative: what a command may have created."""
    out = set()
    for base, dirs, files in os.walk(root):
        for name in dirs + files:
            out.add(os.path.relpath(os.path.join(base, name), root))
    return out


def rewrite(path, old, new):
    """Replaces the first `old` in the file at `path` by `new`; returns the text before."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if old not in text:
        raise AssertionError(f"{path} does not contain {old!r}")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text.replace(old, new, 1))
    return text


# Row 3 of init's audience (Bob Jones, en-GB) with a date ICU cannot format.
BAD_DATE_LINE = 3


def break_a_date(d):
    """Gives row BAD_DATE_LINE of `d`'s audience an unformattable date; returns the file as it was."""
    path = os.path.join(d, "audience.csv")
    with open(path, encoding="utf-8") as f:
        good = f.read()
    lines = good.splitlines()
    lines[BAD_DATE_LINE - 1] = lines[BAD_DATE_LINE - 1].replace(",2026-12-01,", ",next week,")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return good


class WrongPaths(support.Case):
    def setUp(self):
        super().setUp()
        self.camp = os.path.join(self.tmp, "spring-notice")
        run("init", self.camp, check=0)

    def test_every_command_refuses_a_mistyped_campaign_and_creates_nothing(self):
        typo = os.path.join(self.tmp, "spring-notcie")
        not_campaign = os.path.join(self.tmp, "notes")
        os.mkdir(not_campaign)
        before = tree(self.tmp)
        commands = [
            ("halt", "--reason", "stop now"),
            ("release",),
            ("status",),
            ("lint",),
            ("plan",),
            ("preview", "--out", os.path.join(self.tmp, "out")),
            ("send", "--stage", "test"),
            ("approve", "--by", "ops"),
            ("suppress", "list"),
        ]
        for path, missing in ((typo, "no such directory"), (not_campaign, "no campaign.toml")):
            for cmd in commands:
                args = [*cmd[:2], path, *cmd[2:]] if cmd[0] == "suppress" else [cmd[0], path, *cmd[1:]]
                out = run(*args)
                with self.subTest(command=cmd[0], path=os.path.basename(path)):
                    self.assertEqual(out.returncode, 2, out.stdout + out.stderr)
                    self.assertIn(missing, out.stderr)
                    self.assertIn(path, out.stderr)
                    self.assertNotIn("halted", out.stdout)
        self.assertEqual(tree(self.tmp), before, "a refused command created something")

    def test_a_mistyped_state_is_refused_and_never_created(self):
        typo = os.path.join(self.tmp, "stat.db")
        for args in (("status", self.camp), ("halt", self.camp, "--reason", "x"), ("release", self.camp),
                     ("approve", self.camp, "--by", "ops"), ("suppress", "list", self.camp)):
            out = run(*args, "--state", typo)
            with self.subTest(command=args[0]):
                self.assertEqual(out.returncode, 2, out.stdout + out.stderr)
                self.assertIn(f"--state {typo}: no state store there", out.stderr)
                self.assertFalse(os.path.exists(typo))
        # lint still lints, says its result is not recorded, and creates nothing.
        out = run("lint", self.camp, "--state", typo)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("does not exist (a typo?)", out.stderr)
        self.assertFalse(os.path.exists(typo))

    def test_a_new_state_for_a_campaign_that_has_sent_is_refused(self):
        d = write_campaign(self.tmp, ["ana.souza@example.com.br", "li.wei@example.cn", "o'neil@example.ie"])
        run("send", d, "--stage", "full", *FORCE, check=0)
        sent = len(support.maildir_files(os.path.join(d, "out", "maildir")))
        typo = os.path.join(d, ".blindcast", "state-db")
        out = run("send", d, "--stage", "full", *FORCE, "--state", typo)
        self.assertEqual(out.returncode, 2, out.stderr)
        self.assertIn("has sent before", out.stderr)
        self.assertFalse(os.path.exists(typo))
        self.assertEqual(len(support.maildir_files(os.path.join(d, "out", "maildir"))), sent, "nobody got it twice")
        # A --state in a directory that does not exist is a usage error too.
        fresh = write_campaign(self.tmp, ["zoe.martin@example.fr"], name="fresh")
        out = run("send", fresh, "--stage", "full", *FORCE, "--state", os.path.join(self.tmp, "nowhere", "s.db"))
        self.assertEqual(out.returncode, 2, out.stderr)
        self.assertIn("cannot create the state store", out.stderr)

    def test_status_of_a_campaign_that_never_sent(self):
        out = run("status", self.camp, check=0)
        self.assertIn("no state store yet", out.stdout)
        j = json.loads(run("status", self.camp, "--json", check=0).stdout)
        self.assertIsNone(j["state_store"])
        self.assertEqual(j["total"], 0)
        self.assertFalse(os.path.exists(os.path.join(self.camp, ".blindcast", "state.db")), "status created a store")

    def test_send_creates_its_state_store_owner_only(self):
        d = write_campaign(self.tmp, ["ana.souza@example.com.br", "li.wei@example.cn"])
        state = os.path.join(self.tmp, "elsewhere", "state.db")
        os.mkdir(os.path.dirname(state))
        os.umask(0o022)
        run("send", d, "--stage", "full", *FORCE, "--state", state, check=0)
        self.assertEqual(stat.S_IMODE(os.stat(state).st_mode), 0o600)
        # The default store too, and its directory (another campaign: this one has sent).
        d = write_campaign(self.tmp, ["ana.souza@example.com.br", "li.wei@example.cn"], name="other")
        run("send", d, "--stage", "full", *FORCE, check=0)
        default = os.path.join(d, ".blindcast", "state.db")
        self.assertEqual(stat.S_IMODE(os.stat(default).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.dirname(default)).st_mode), 0o700)


class TyposAreErrors(support.Case):
    """A mistyped setting is an error naming file, line and what was meant,
    never a warning that leaves the setting at its default."""

    def edit(self, old, new):
        d = os.path.join(self.tmp, "c")
        if not os.path.isdir(d):
            run("init", d, check=0)
        path = os.path.join(d, "campaign.toml")
        with open(path) as f:
            text = f.read()
        self.assertIn(old, text)
        with open(path, "w") as f:
            f.write(text.replace(old, new, 1))
        line = text[:text.index(old)].count("\n") + 1
        return d, line

    def check_typo(self, old, new, message):
        d, line = self.edit(old, new)
        out = run("lint", d)
        self.assertEqual(out.returncode, 2, out.stdout + out.stderr)
        self.assertIn(f"campaign.toml:{line}: error: {message}", out.stderr)
        sent = run("send", d, "--stage", "canary")
        self.assertEqual(sent.returncode, 2)
        self.assertIn(message, sent.stderr)
        self.assertFalse(os.path.exists(os.path.join(d, "out", "maildir")), "a campaign with a typo sent")

    def test_a_mistyped_approval_count(self):
        self.check_typo("approvals_required = 1", "approvals_requried = 2",
                        "unknown setting 'stages.approvals_requried'; did you mean 'stages.approvals_required'?")

    def test_a_mistyped_transport_url(self):
        self.check_typo('url = "maildir:', 'uri = "maildir:',
                        "unknown setting 'transport.uri'; did you mean 'transport.url'?")

    def test_a_top_level_setting_inside_a_section(self):
        d, _ = self.edit('reply_to = "support@example.com"\n', "")
        with open(os.path.join(d, "campaign.toml"), "a") as f:
            f.write('replyto = "support@example.com"\n')
        out = run("lint", d)
        self.assertEqual(out.returncode, 2)
        self.assertRegex(out.stderr, r"campaign\.toml:\d+: error: unknown setting '[a-z.]*replyto'; did you mean "
                                     r"the top-level 'reply_to'\?")

    def test_a_word_nothing_resembles_lists_the_settings(self):
        d, line = self.edit("[stages]\n", "[stages]\nmoonphase = 3\n")
        out = run("lint", d)
        self.assertIn(f"campaign.toml:{line + 1}: error: unknown setting 'stages.moonphase'; the settings of "
                      f"[stages] are: approvals_required, canary, test", out.stderr)


class NumbersHaveRanges(support.Case):
    def test_out_of_range_settings_are_errors_on_their_line(self):
        cases = [
            ("[shaping.yahoo]\nrate = \"1e308/s\"\n", "'shaping.yahoo.rate' must look like"),
            ("[shaping.yahoo]\nrate = \"inf/s\"\n", "'shaping.yahoo.rate' must look like"),
            ("[shaping.yahoo]\nrate = \"5abc/s\"\n", "'shaping.yahoo.rate' must look like"),
            ("[shaping.yahoo]\nconnections = 100000\n", "'shaping.yahoo.connections' must be a whole number "
                                                         "from 1 to 500"),
            ("[guard]\nmax_rate = \"2000000/s\"\n", "'guard.max_rate' must be a rate"),
        ]
        for extra, message in cases:
            with self.subTest(setting=extra):
                d = write_campaign(self.tmp, ["ana.souza@example.com.br"], extra_toml=extra, name="n")
                with open(os.path.join(d, "campaign.toml")) as f:
                    line = f.read().splitlines().index(extra.splitlines()[1]) + 1
                out = run("lint", d)
                self.assertEqual(out.returncode, 2, out.stderr)
                self.assertIn(f"campaign.toml:{line}: error: {message}", out.stderr)
                shutil.rmtree(d)
        d = os.path.join(self.tmp, "c")
        run("init", d, check=0)
        path = os.path.join(d, "campaign.toml")
        with open(path) as f:
            text = f.read()
        canary = next(l for l in text.splitlines() if l.startswith("canary = "))
        for old, new, message in (("[transport]\n", "[transport]\nconnections = 100000\n",
                                   "'transport.connections' must be a whole number from 1 to 500"),
                                  (canary, 'canary = { size = "nan%", min = 5 }',
                                   "'stages.canary.size' must be a percentage"),
                                  (canary, 'canary = { size = 5, min = -100 }',
                                   "'stages.canary.min' must be a whole number from 1 to 10000000")):
            self.assertIn(old, text)
            with open(path, "w") as f:
                f.write(text.replace(old, new, 1))
            out = run("lint", d)
            with self.subTest(setting=new):
                self.assertEqual(out.returncode, 2, out.stderr)
                self.assertIn(message, out.stderr)
        with open(path, "w") as f:
            f.write(text)
        run("lint", d, check=0)


class HostileCatalogs(support.Case):
    def set_ticket(self, d, message):
        path = os.path.join(d, "locales", "en.toml")
        with open(path) as f:
            lines = f.read().splitlines()
        self.assertTrue(any(l.startswith("ticket = ") for l in lines))
        lines = [f'ticket = "{message}"' if l.startswith("ticket = ") else l for l in lines]
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return lines.index(f'ticket = "{message}"') + 1

    def set_message(self, d, locale, key, message):
        path = os.path.join(d, "locales", f"{locale}.toml")
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        index = next(i for i, l in enumerate(lines) if l.startswith(f"{key} = "))
        lines[index] = f'{key} = "{message}"'
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        return index + 1

    def test_icu_mistakes_are_lint_errors_naming_file_line_key_and_locale(self):
        d = os.path.join(self.tmp, "c")
        run("init", d, check=0)
        mistakes = [
            ("en", "subject", "Index change on {effective_date, date, lng}",
             "message 'subject': argument 'effective_date': unknown date style 'lng'"),
            ("de", "assets", "{assets, plural, on {# Wert} other {# Werte}}",
             "message 'assets': argument 'assets': 'on' is not a plural category of de (one, other): its text is "
             "never chosen; did you mean 'one'?"),
            ("pt", "ticket", "Ticket {ticket, strng}", "message 'ticket': argument 'ticket' has the unknown type 'strng'"),
            ("en", "assets", "{assets, number, ##x}", "message 'assets': argument 'assets': unknown number style '##x'"),
        ]
        for locale, key, message, finding in mistakes:
            with self.subTest(locale=locale, key=key):
                run("init", os.path.join(self.tmp, f"{locale}-{key}"), check=0)
                dd = os.path.join(self.tmp, f"{locale}-{key}")
                line = self.set_message(dd, locale, key, message)
                out = run("lint", dd)
                self.assertEqual(out.returncode, 2, out.stderr)
                self.assertIn(f"locales/{locale}.toml:{line}: error: {finding}", out.stderr)
        # What real catalogs write passes: Arabic's six categories, explicit values, skeletons, patterns.
        self.set_message(d, "ar", "assets", "{assets, plural, =0 {لا أصول} zero {صفر} one {أصل واحد} two {أصلان} "
                                            "few {# أصول} many {# أصلًا} other {# أصل}}")
        self.set_message(d, "en", "subject", "Index change on {effective_date, date, ::yMMMd} ({effective_date, "
                                             "date, yyyy-MM-dd})")
        self.set_message(d, "de", "assets", "{assets, number, #,##0} {assets, Number, Integer} "
                                            "{assets, plural, one {Wert} other {Werte}}")
        self.set_message(d, "pt", "subject", "Mudança em {effective_date, Date, Long}")
        run("lint", d, check=0)

    def test_a_message_that_renders_blank_for_a_row_is_a_warning_naming_it(self):
        d = os.path.join(self.tmp, "c")
        run("init", d, check=0)
        line = self.set_message(d, "en", "assets", "{assets, plural, =0 {} one {# asset} other {# assets}}")
        audience = os.path.join(d, "audience.csv")
        with open(audience) as f:
            rows = f.read().splitlines()
        self.assertTrue(rows[1].startswith("alice@example.org,Alice Smith,en,3,"))
        rows[1] = rows[1].replace(",en,3,", ",en,0,", 1)
        with open(audience, "w") as f:
            f.write("\n".join(rows) + "\n")
        out = run("lint", d, check=0)
        self.assertIn(f"locales/en.toml:{line}: warning: message 'assets' renders blank for audience.csv line 2 "
                      "(locale 'en')", out.stderr)
        self.assertEqual(out.stderr.count("renders blank"), 1, "once per message")

    def test_a_message_nested_thousands_deep_is_refused_not_a_crash(self):
        d = os.path.join(self.tmp, "c")
        run("init", d, check=0)
        line = self.set_ticket(d, "{name, select, other {" * 4000 + "x" + "}}" * 4000)
        for args in (("lint", d), ("preview", d, "--out", os.path.join(self.tmp, "out"))):
            out = run(*args)
            with self.subTest(command=args[0]):
                self.assertEqual(out.returncode, 2, out.stderr[-2000:])
                self.assertIn(f"locales/en.toml:{line}: error: message 'ticket': braces nested 8000 deep; "
                              "at most 32", out.stderr)
        # An apostrophe before '#' quotes nothing outside a plural: no way around the limit.
        line = self.set_ticket(d, "No '#1 " + "{name, select, other {" * 4000 + "x" + "}}" * 4000)
        out = run("lint", d)
        self.assertEqual(out.returncode, 2, out.stderr[-2000:])
        self.assertIn(f"locales/en.toml:{line}: error: message 'ticket': braces nested 8000 deep", out.stderr)
        # Nesting a real message might have still renders.
        self.set_ticket(d, "{name, select, other {" * 10 + "Ticket {ticket}" + "}}" * 10)
        run("lint", d, check=0)


class FailedRowsComeBack(support.Case):
    def test_a_row_that_could_not_be_built_is_sent_once_fixed(self):
        d = os.path.join(self.tmp, "c")
        run("init", d, check=0)
        audience = os.path.join(d, "audience.csv")
        good = break_a_date(d)
        out = run("send", d, "--stage", "full", *FORCE, "--json")
        self.assertEqual(out.returncode, 1, out.stderr)
        st = support.status(d)
        self.assertEqual(st["states"]["failed"], 1)
        failure = st["last_errors"][0]
        self.assertEqual((failure["line"], failure["state"]), (BAD_DATE_LINE, "failed"))
        self.assertIn("cannot render: argument 'effective_date'", failure["reply"])
        # Unchanged content: not tried again by itself; --retry-failed does, on purpose.
        self.assertEqual(json.loads(run("send", d, "--stage", "full", *FORCE, "--json").stdout)["requeued"], 0)
        again = json.loads(run("send", d, "--stage", "full", *FORCE, "--json", "--retry-failed").stdout)
        self.assertEqual(again["requeued"], 1)
        self.assertEqual(again["states"]["failed"], 1, "still broken")
        # Fixed: the next send builds and sends it, once.
        with open(audience, "w") as f:
            f.write(good)
        fixed = json.loads(run("send", d, "--stage", "full", *FORCE, "--json", check=0).stdout)
        self.assertEqual((fixed["requeued"], fixed["sent_this_run"], fixed["states"]["failed"]), (1, 1, 0))
        self.assertIn("requeue", [e["kind"] for e in support.status(d)["audit"]])


class LintErrorsCloseTheCanary(support.Case):
    def test_canary_refused_while_lint_finds_errors_test_stage_still_sends(self):
        d = os.path.join(self.tmp, "c")
        run("init", d, check=0)
        good = break_a_date(d)
        out = run("send", d, "--stage", "canary")
        self.assertEqual(out.returncode, 4, out.stdout + out.stderr)
        self.assertIn("the canary stage is closed", out.stderr)
        self.assertIn("lint: 1 error(s) in the current content", out.stderr)
        self.assertEqual(support.maildir_files(os.path.join(d, "out", "maildir")), [])
        self.assertIn("canary refused", run("status", d, "--audit", check=0).stdout)
        run("send", d, "--stage", "test", check=0)  # seed addresses and synthetic rows only
        self.assertGreater(len(support.maildir_files(os.path.join(d, "out", "maildir"))), 0)
        # Fixed: the canary goes.
        with open(os.path.join(d, "audience.csv"), "w", encoding="utf-8") as f:
            f.write(good)
        run("send", d, "--stage", "canary", check=0)


class LongCommandsHonourSignals(support.Case):
    def test_sigterm_and_sigint_end_a_long_lint_within_a_second(self):
        d = os.path.join(self.tmp, "big")
        run("init", d, check=0)
        with open(os.path.join(d, "audience.csv"), "w") as f:
            f.write("email,name,locale,assets,effective_date,ticket\n")
            for i in range(300000):
                f.write(f"cliente.{i:06d}@exemplo.com.br,Ana Souza,pt,{i % 7},2026-12-01,\n")
        for sig in (signal.SIGTERM, signal.SIGINT):
            proc = subprocess.Popen([support.BINARY, "lint", d], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            time.sleep(1.0)
            self.assertIsNone(proc.poll(), "lint finished before the signal: the audience is too small")
            sent = time.time()
            proc.send_signal(sig)
            proc.wait(timeout=10)
            with self.subTest(signal=sig.name):
                self.assertLess(time.time() - sent, 1.0)
                self.assertEqual(proc.returncode, -sig)


class UnreachableRelay(support.PeerCase):
    def test_a_refusing_relay_is_named_at_once_and_the_send_gives_up(self):
        emails = [f"{n}@{dom}" for n, dom in (("ana.souza", "exemplo.com.br"), ("li.wei", "example.cn"),
                                              ("jean-luc.picard", "example.fr"), ("o'neil", "example.ie"))]
        d = write_campaign(self.tmp, emails)
        rewrite(os.path.join(d, "campaign.toml"), "[transport]\n", '[transport]\ngive_up_after = "2s"\n')
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))  # bound, never listening: every connection is refused
        port = closed.getsockname()[1]
        self.addCleanup(closed.close)
        started = time.time()
        out = run("send", d, "--stage", "full", *FORCE, "--transport", f"smtp://127.0.0.1:{port}", timeout=60)
        took = time.time() - started
        self.assertEqual(out.returncode, 1, out.stderr)
        self.assertLess(took, 10)
        self.assertRegex(out.stderr, r"progress: .*last: 451 4\.4\.1 cannot connect to 127\.0\.0\.1: Connection refused")
        self.assertIn("no message accepted for 2s ([transport] give_up_after)", out.stderr)
        self.assertIn("Connection refused", out.stderr.splitlines()[-1])
        st = support.status(d)
        self.assertEqual(st["states"]["pending"], len(emails), "recipients stay pending, not deferred or failed")
        self.assertIn("stage_stop", [e["kind"] for e in st["audit"]])
        # The relay is back: one resend delivers each recipient once.
        p = self.peer()
        run("send", d, "--stage", "full", *FORCE, "--transport", f"smtp://127.0.0.1:{p.port}", check=0, timeout=60)
        self.assertEqual(sorted(m["rcpt_tos"][0] for m in p.records("message")), sorted(emails))


class JsonOnEveryCommand(support.Case):
    """--json: stdout is exactly one JSON document on every command, its
    result or {"error": {...}} with the exit code unchanged; what is printed
    for people goes to stderr."""

    def doc(self, *args, code=0):
        out = run(*args, "--json")
        self.assertEqual(out.returncode, code, f"{args}: {out.stderr[-1500:]}")
        try:
            return json.loads(out.stdout)
        except json.JSONDecodeError as e:
            self.fail(f"{args}: stdout is not one JSON document ({e}): {out.stdout[:500]!r}")

    def error(self, *args, code):
        e = self.doc(*args, code=code)["error"]
        self.assertEqual(e["code"], code)
        self.assertTrue(e["message"])
        return e

    def test_every_command_prints_one_json_document(self):
        d = os.path.join(self.tmp, "c")
        self.assertEqual(self.doc("init", d)["created"], d)
        self.assertEqual(self.doc("suppress", "list", d), [], "no store yet: an empty list")
        # A path that is not UTF-8 still gives one JSON document (its bytes replaced).
        raw = subprocess.run([support.BINARY, "status", os.path.join(self.tmp, "caf\udce9"), "--json"],
                             capture_output=True, stdin=subprocess.DEVNULL)
        self.assertEqual(raw.returncode, 2)
        self.assertIn("no such directory", json.loads(raw.stdout.decode("utf-8"))["error"]["message"])
        self.assertEqual(self.doc("lint", d)["errors"], 0)
        self.assertTrue(self.doc("plan", d)["lanes"])
        self.assertTrue(self.doc("preview", d, "--out", os.path.join(self.tmp, "p")))
        refused = self.error("send", d, "--stage", "full", code=4)
        self.assertTrue(any(x.startswith("canary:") for x in refused["details"]), refused)
        self.assertEqual(self.doc("send", d, "--stage", "test")["stage"], "test")
        self.assertEqual(self.doc("send", d, "--stage", "canary")["stage"], "canary")
        self.assertEqual(self.doc("approve", d, "--by", "ops")["by"], "ops")
        self.assertIsNone(self.doc("halt", d, "--reason", "checking")["sender"])
        self.assertTrue(self.doc("release", d)["released"])
        bounces = os.path.join(self.tmp, "bounces.txt")
        with open(bounces, "w") as f:
            f.write("nao.existe@exemplo.com.br\nnot an address\n")
        self.assertEqual(self.doc("suppress", "import", d, bounces)["new"], 1)
        self.assertEqual(len(self.doc("suppress", "list", d)), 1)
        self.assertTrue(self.doc("suppress", "remove", d, "nao.existe@exemplo.com.br")["removed"])
        self.assertIn("states", self.doc("status", d))
        # Errors and refusals: one document too, naming file and line where there is one.
        self.error("status", os.path.join(self.tmp, "typo"), code=2)
        self.error("send", d, "--stage", "everything", code=2)
        with open(os.path.join(d, "campaign.toml"), "a") as f:
            f.write("\nreplyto = \"x@example.com\"\n")
        lint = self.doc("lint", d, code=2)
        self.assertEqual(lint["errors"], 1)
        e = self.error("send", d, "--stage", "canary", code=2)
        self.assertIn("the campaign has errors", e["message"])

    def test_demo_prints_its_summary_only(self):
        j = self.doc("demo", os.path.join(self.tmp, "demo"))
        self.assertTrue(j["full_stage_refused_first"])
        self.assertGreater(j["messages"], 0)


class LogFormatJson(support.PeerCase):
    def lines(self, out):
        rows = []
        for line in out.stderr.splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                self.fail(f"a stderr line is not JSON: {line!r}")
        return rows

    def test_every_stderr_line_is_json_findings_refusals_and_progress_with_fields(self):
        d = os.path.join(self.tmp, "c")
        run("init", d, check=0)
        with open(os.path.join(d, "campaign.toml"), "a") as f:
            f.write('\nreplyto = "x@example.com"\n')
        rows = self.lines(run("lint", d, "--log-format", "json"))
        finding = next(r for r in rows if r.get("level") == "error")
        self.assertEqual(finding["file"], "campaign.toml")
        self.assertIsInstance(finding["line"], int)
        self.assertIn("did you mean the top-level 'reply_to'", finding["finding"])
        rows = self.lines(run("send", d, "--stage", "canary", "--log-format", "json"))
        self.assertEqual(rows[-1]["level"], "error")
        self.assertEqual(rows[-1]["code"], 2)
        # Usage errors, and commands whose text for people would go to
        # stderr under --json, keep every stderr line JSON too.
        self.assertEqual(self.lines(run("approve", d, "--log-format", "json"))[-1]["code"], 2)
        d3 = os.path.join(self.tmp, "c3")
        for args in (("init", d3), ("send", d3, "--stage", "test"), ("halt", d3, "--reason", "x"), ("release", d3)):
            out = run(*args, "--json", "--log-format", "json", check=0)
            self.lines(out)
            json.loads(out.stdout)
        # Progress lines carry their numbers as fields.
        d2 = write_campaign(self.tmp, [f"cliente.{i:03d}@exemplo.com.br" for i in range(300)], name="slow")
        p = self.peer("--delay", "0.05")
        rewrite(os.path.join(d2, "campaign.toml"), "[transport]\n", "[transport]\nconnections = 2\n")
        out = run("send", d2, "--stage", "full", *FORCE, "--transport", f"smtp://127.0.0.1:{p.port}",
                  "--log-format", "json", check=0)
        progress = [r for r in self.lines(out) if r.get("msg") == "progress"]
        self.assertTrue(progress, out.stderr[-1000:])
        for key in ("sent", "total", "rate_per_second", "eta_seconds", "in_flight", "lanes", "last_reply"):
            self.assertIn(key, progress[-1])
        self.assertEqual(progress[-1]["total"], 300)
        forced = [r for r in self.lines(out) if r.get("forced")]
        self.assertTrue(forced and forced[0]["level"] == "warn")


class RightToLeft(support.Case):
    def test_the_html_part_has_its_language_and_direction_and_values_are_isolated(self):
        d = os.path.join(self.tmp, "c")
        run("init", d, check=0)
        out = os.path.join(self.tmp, "preview")
        files = {f["locale"]: f for f in json.loads(run("preview", d, "--out", out, "--json", check=0).stdout)}
        with open(files["ar"]["html"], encoding="utf-8") as f:
            ar = f.read()
        self.assertIn('<html lang="ar" dir="rtl">', ar)
        self.assertIn("\u2068layla@example.ae\u2069", ar, "the address keeps its place in Arabic text")
        self.assertIn("\u2068Example Exchange\u2069", ar, "the example shows a Latin brand isolated")
        with open(files["en"]["html"], encoding="utf-8") as f:
            en = f.read()
        self.assertIn('<html lang="en" dir="ltr">', en)
        self.assertNotIn("\u2068", en, "left-to-right text needs no isolates")
        # The .eml carries the same HTML part.
        msg = support.parse(files["ar"]["file"])
        self.assertIn('dir="rtl"', msg.get_body(preferencelist=("html",)).get_content())
        # Isolates stay out of tags (an attribute value, a URL); a document
        # without <html> gets lang and dir on <body>, after its doctype.
        for locale in ("ar", "en"):  # en: the default catalog, for every other locale
            with open(os.path.join(d, "locales", f"{locale}.toml"), "a", encoding="utf-8") as f:
                f.write('label = "{name}"\nlink = "https://example.com/t/{ticket}"\n')
        with open(os.path.join(d, "templates", "body.html")) as f:
            original = f.read()

        def arabic_page(template):
            """The Arabic row's HTML part as preview writes it, built from `template`."""
            with open(os.path.join(d, "templates", "body.html"), "w") as f:
                f.write(template)
            previews = json.loads(run("preview", d, "--out", out, "--json", check=0).stdout)
            with open(next(f["html"] for f in previews if f["locale"] == "ar"), encoding="utf-8") as f:
                return f.read()

        page = arabic_page('<!DOCTYPE html>\n<body>\n<p title="{{t.label}}">{{t.label}}</p>\n'
                           '<a href="{{t.link}}">{{t.link}}</a>\n</body>\n')
        self.assertTrue(page.startswith('<!DOCTYPE html>\n<body lang="ar" dir="rtl">'), page[:80])
        self.assertIn('title="ليلى أحمد"', page)
        self.assertIn(">\u2068ليلى أحمد\u2069</p>", page)
        self.assertNotIn("\u2068T-", page, "a value inside a URL is part of it, not isolated")
        # A '>' in a quoted attribute does not end the tag; comments, style
        # sheets and scripts are no text either; a commented-out <html> is not the element.
        page = arabic_page('<!-- <html lang="en"> -->\n<html><head><style>.b{background:url({{t.label}})}</style>'
                           '</head><body><a title="1 > 0" href="{{t.label}}">{{t.label}}</a></body></html>\n')
        self.assertTrue(page.startswith('<!-- <html lang="en"> -->\n<html lang="ar" dir="rtl">'), page[:80])
        self.assertIn('url(ليلى أحمد)', page)
        self.assertIn('href="ليلى أحمد">\u2068ليلى أحمد\u2069</a>', page)
        # A template that says its language and direction is left as it is.
        page = arabic_page(original.replace("<html>", '<html dir="auto" LANG="x-custom">', 1))
        self.assertIn('<html dir="auto" LANG="x-custom">', page)


class ProgressOnATerminal(support.PeerCase):
    def test_one_line_redrawn_in_place_never_wider_than_the_terminal(self):
        import fcntl
        import pty
        import struct
        import termios
        d = write_campaign(self.tmp, [f"cliente.{i:03d}@exemplo.com.br" for i in range(200)])
        rewrite(os.path.join(d, "campaign.toml"), "[transport]\n", "[transport]\nconnections = 2\n")
        p = self.peer("--delay", "0.02")
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 60, 0, 0))
        proc = subprocess.Popen([support.BINARY, "send", d, "--stage", "full", *FORCE, "--transport",
                                 f"smtp://127.0.0.1:{p.port}"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=slave)
        os.close(slave)
        seen = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the other end closed
                break
            if not chunk:
                break
            seen += chunk
        os.close(master)
        self.assertEqual(proc.wait(timeout=60), 0)
        # The terminal turns the final "\n" into "\r\n": not part of the line.
        redraws = [r.split(b"\n")[0].rstrip(b"\r") for r in seen.split(b"\r\x1b[K")[1:]]
        self.assertGreater(len(redraws), 3, seen[-500:])
        for r in redraws:
            self.assertLess(len(r.decode("utf-8", "replace")), 60, r)
        self.assertTrue(any(b"ETA" in r and b"/s" in r for r in redraws))


class HaltSaysWhoIsRunning(support.PeerCase):
    def test_halt_names_the_running_sender_and_it_stops(self):
        p = self.peer("--delay", "0.02")
        d = write_campaign(self.tmp, [f"cliente.{i:04d}@exemplo.com.br" for i in range(1500)])
        sender = subprocess.Popen([support.BINARY, "send", d, "--stage", "full", *FORCE, "--transport",
                                   f"smtp://127.0.0.1:{p.port}"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.time() + 30
            while len(p.records("message")) < 20 and time.time() < deadline:
                time.sleep(0.05)
            st = json.loads(run("status", d, "--json", check=0).stdout)
            self.assertEqual(st["sender"]["pid"], sender.pid)
            out = run("halt", d, "--reason", "wrong template", check=0)
            self.assertRegex(out.stdout, rf"the sender running \(pid {sender.pid} on .+, since "
                                         r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\) stops within a second")
            halted_at = time.time()
            sender.wait(timeout=30)
            self.assertLess(time.time() - halted_at, 5)
            self.assertEqual(sender.returncode, 5, sender.stderr.read())
        finally:
            if sender.poll() is None:
                sender.kill()
                sender.wait()
        self.assertLess(len(p.records("message")), 1500, "the halt did not stop the send")
        # With nobody sending, halt says so.
        run("release", d, check=0)
        out = run("halt", d, "--reason", "again", check=0)
        self.assertIn("no sender is running", out.stdout)
        self.assertIsNone(json.loads(run("status", d, "--json", check=0).stdout)["sender"])


if __name__ == "__main__":
    support.main()
