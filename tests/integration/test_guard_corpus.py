"""The privacy guard against a corpus of leak attempts and a corpus of look-alikes
that are not leaks (tests/data/guard/).

leaks.tsv: each payload goes into alice's `note`, printed raw in one placement
(subject, text/plain or text/html) of an otherwise clean campaign whose audience is
audience.csv. Every row, in every placement, must be stopped by the guard: `send`
exits 3, the campaign is halted by the guard on alice's line (invariant 3 for an
audience victim), her message is the quarantined one, and nothing reaches her.
Rows of the outsider-* classes name addresses that are not in the audience; only a
strict mode can catch them, so they run in a separate test, skipped (visibly) when
the binary does not know the setting STRICT_TOML.

clean.tsv: each payload is shown to its own recipient and must not be blocked:
all rows go out in one send per placement (a recipient's payloads joined with
" ; "), and every audience row must be delivered.

The files are read by a reference reader here too (CorpusFiles), so a row that
is malformed, shows no victim, or shows a second audience member fails without
the binary. Set BLINDCAST_TEST_WORKERS to change the 2 worker threads.
"""
import base64
import binascii
import collections
import concurrent.futures
import csv
import html
import json
import os
import re
import shutil
import sys
import tempfile
import time
import unicodedata
import unittest
import urllib.parse

import support

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.normpath(os.path.join(HERE, "..", "data", "guard"))
PLACEMENTS = ("subject", "text", "html")
WORKERS = int(os.environ.get("BLINDCAST_TEST_WORKERS", "2"))
FORCE = ("--force", "--reason", "test")
# How a campaign turns the strict mode on (every address-shaped string that is not
# the recipient's own or written in the campaign's own files is a violation).
STRICT_TOML = os.environ.get("BLINDCAST_GUARD_STRICT_TOML", "[guard]\nstrict = true\n")
MIN_LEAK_ROWS = 150
MIN_CLEAN_ROWS = 60
EXTRA_COLUMNS = {"assets": "1", "effective_date": "2026-12-01", "ticket": ""}  # used by the init campaign's catalogs


# --------------------------------------------------------------------------- data

ESCAPE = re.compile(r"\\u\{([0-9A-Fa-f]{1,6})\}|\\\\|\\")


def decode_payload(text):
    r"""The files' notation: \u{HEX} is that code point, \\ a backslash; any other
    backslash is an error (so a typo cannot silently change a payload)."""
    def sub(m):
        if m.group(0) == "\\\\":
            return "\\"
        if m.group(1) is None:
            raise ValueError(f"stray backslash (write \\\\ for one) in {text!r}")
        return chr(int(m.group(1), 16))
    return ESCAPE.sub(sub, text)


def data_lines(name):
    """(line number, fields) of every row that is not blank or a # comment."""
    with open(os.path.join(DATA, name), encoding="utf-8", newline="") as f:
        text = f.read()
    rows = []
    for n, line in enumerate(text.split("\n"), 1):
        if line.strip() and not line.startswith("#"):
            rows.append((n, line.split("\t")))
    return rows


Leak = collections.namedtuple("Leak", "line cls victim raw payload placements")
PLACEMENT_LETTERS = {"s": "subject", "t": "text", "h": "html"}
# Rows below this comment in leaks.tsv came from a review that checked them
# with a browser's HTML parser (parse5) and the Unicode bidi algorithm
# (bidi-js); the simple reference reader here does not model CSS, bidi or
# hidden elements, so it does not judge them.
REVIEWED_MARKER = "# Found by a red-team review"
Clean = collections.namedtuple("Clean", "line recipient raw payload note")


def placements_of(fields):
    """The placements a leak row runs in: all, or those its fourth column names (s, t, h)."""
    if len(fields) < 4:
        return PLACEMENTS
    return tuple(PLACEMENT_LETTERS[x.strip()] for x in fields[3].split(","))


def load_leaks():
    return [Leak(n, f[0], f[1], f[2], decode_payload(f[2]), placements_of(f))
            for n, f in data_lines("leaks.tsv") if len(f) in (3, 4)]


def reviewed_from():
    """The line of leaks.tsv after which rows are judged by the review, not the reference reader."""
    with open(os.path.join(DATA, "leaks.tsv"), encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.startswith(REVIEWED_MARKER):
                return n
    return 10 ** 9


def applies(row, placement):
    """A clean row marked 'html only:' shows its markup as written outside HTML (see clean.tsv)."""
    return placement == "html" or not row.note.startswith("html only")


def load_clean():
    return [Clean(n, f[0], f[1], decode_payload(f[1]), f[2]) for n, f in data_lines("clean.tsv") if len(f) == 3]


def load_audience():
    with open(os.path.join(DATA, "audience.csv"), encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


AUDIENCE = load_audience()
ALICE = AUDIENCE[0]["email"]
ALICE_LINE = 2  # the header is line 1


def shown(text, limit=160):
    """A payload in a failure message: in the files' notation, so invisible characters show."""
    out = "".join(c if (c.isprintable() and unicodedata.category(c) not in ("Cf", "Zs", "Mn")) or c == " "
                  else f"\\u{{{ord(c):X}}}" for c in text)
    return out if len(out) <= limit else out[:limit] + f"... ({len(text)} characters)"


# ------------------------------------------------------------ reference reader
# How a person reads a payload, independent of the guard: the rendered text and
# each attribute value, character references decoded, percent-decoding applied up
# to twice, data: URIs opened, right-to-left overrides displayed, invisible
# characters dropped, NFKC. Used only to check the data files.

BLOCK_TAGS = {"br", "p", "div", "li", "tr", "td", "th", "table", "ul", "ol", "hr", "h1", "h2", "h3", "h4",
              "h5", "h6", "blockquote", "pre"}


def html_segments(text):
    """(text content, [attribute values]). A '<...>' whose name holds '@'
    ("Bob <bob@example.org>") is text: mail clients show it."""
    out, attrs, i, n = [], [], 0, len(text)
    while i < n:
        if text.startswith("<!--", i):
            end = text.find("-->", i + 4)
            i = n if end < 0 else end + 3
            continue
        j = i + 1 + (text[i + 1:i + 2] == "/")
        if text[i] == "<" and text[j:j + 1].isascii() and text[j:j + 1].isalpha():
            k = j
            while k < n and not text[k].isspace() and text[k] not in "/>":
                k += 1
            name = text[j:k]
            if "@" not in name:
                while k < n and text[k] != ">":
                    if text[k].isspace() or text[k] == "/":
                        k += 1
                        continue
                    a = k
                    while k < n and not text[k].isspace() and text[k] not in "=/>":
                        k += 1
                    if k < n and text[k] == "=":
                        k += 1
                        if k < n and text[k] in "\"'":
                            e = text.find(text[k], k + 1)
                            e = n if e < 0 else e
                            attrs.append(text[k + 1:e])
                            k = e + 1
                        else:
                            e = k
                            while e < n and not text[e].isspace() and text[e] != ">":
                                e += 1
                            attrs.append(text[k:e])
                            k = e
                    elif k == a:
                        k += 1
                if name.lower() in BLOCK_TAGS:
                    out.append("\n")
                i = k + 1
                continue
        out.append(text[i])
        i += 1
    return "".join(out), attrs


def displayed(text):
    while "\u202e" in text:  # RIGHT-TO-LEFT OVERRIDE ... POP DIRECTIONAL FORMATTING (or the end)
        s = text.index("\u202e")
        e = text.find("\u202c", s)
        e = len(text) if e < 0 else e
        text = text[:s] + text[s + 1:e][::-1] + text[e + 1:]
    text = "".join(c for c in text if not (unicodedata.category(c) == "Cf" or c == "\u034f"
                                           or 0xFE00 <= ord(c) <= 0xFE0F or 0xE0000 <= ord(c) <= 0xE0FFF))
    text = unicodedata.normalize("NFKC", text)
    return text.replace("\u3002", ".")  # ideographic full stop: a dot in a domain (UTS #46)


DATA_URI = re.compile(r"data:([^,\s]*),([^\s\"'<>]*)", re.I)


def views(text, depth=0):
    content, attrs = html_segments(text)
    out = []
    for seg in [content, *attrs]:
        layers = [html.unescape(seg)]
        for _ in range(2):
            layers.append(urllib.parse.unquote(layers[-1]))
        for layer in layers:
            out.append(displayed(layer))
            for m in DATA_URI.finditer(layer) if depth < 2 else ():
                body = m.group(2)
                if m.group(1).lower().endswith(";base64"):
                    try:
                        body = base64.b64decode(urllib.parse.unquote(body), validate=True).decode("utf-8")
                    except (binascii.Error, UnicodeDecodeError):
                        continue
                out.extend(views(body, depth + 1))
    return out


def u_form(address):
    local, _, domain = address.rpartition("@")
    labels = []
    for label in domain.split("."):
        if label.lower().startswith("xn--"):
            try:
                label = label.lower().encode("ascii").decode("idna")
            except UnicodeError:
                pass
        labels.append(label)
    return unicodedata.normalize("NFC", (local + "@" + ".".join(labels)).lower())


def reads_as(address, view):
    """True when `address` appears in `view` as a whole address (not inside a longer one)."""
    view = re.sub(r'"((?:[^"\\]|\\.)*)"@', lambda m: re.sub(r"\\(.)", r"\1", m.group(1)) + "@", view)
    view = re.sub(r"(?i)xn--[a-z0-9-]+", lambda m: u_form("x@" + m.group(0))[2:], view)
    view = unicodedata.normalize("NFC", view.lower())
    a = u_form(address)
    i = view.find(a)
    while i >= 0:
        before = view[i - 1] if i else " "
        after = view[i + len(a):i + len(a) + 2]
        longer_local = before.isascii() and (before.isalnum() or before in "._+-")  # "john.smith@" holds no "smith@"
        if before == "-":  # ... but a Hebrew prefix joined by a hyphen does not lengthen it: "ל-bob@"
            j = i - 1
            while j > 0 and view[j - 1] == "-":
                j -= 1
            longer_local = not (j > 0 and not view[j - 1].isascii())
        nxt = after[:1]
        longer_domain = (nxt != "" and nxt.isascii() and (nxt.isalnum() or nxt in "-_")) or \
            (nxt == "." and after[1:2].isalnum())
        if not longer_local and not longer_domain:
            return True
        i = view.find(a, i + 1)
    return False


def shows(address, payload):
    return any(reads_as(address, v) for v in views(payload))


# ------------------------------------------------------------------ campaigns

def fast_tmp_root():
    """A state store fsyncs; on tmpfs that costs nothing, which is most of a case's time."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None


def write_audience(d, notes):
    """audience.csv: the data audience with the init campaign's columns; notes by address."""
    with open(os.path.join(d, "audience.csv"), "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["email", "name", "locale", *EXTRA_COLUMNS, "note"])
        for row in AUDIENCE:
            w.writerow([row["email"], row["name"], row["locale"], *EXTRA_COLUMNS.values(),
                        notes.get(row["email"], "")])


def make_base(root, placement, extra_toml=""):
    """An init'ed campaign that prints {{{note}}} in one placement."""
    d = os.path.join(root, f"base-{placement}" + ("-strict" if extra_toml else ""))
    support.run("init", d, check=0)
    t = os.path.join(d, "templates")
    if placement == "subject":
        with open(os.path.join(t, "subject.txt"), encoding="utf-8") as f:
            lines = f.read().split("\n")
        assert lines[0] and not any(lines[1:]), f"subject.txt is not one line: {lines!r}"
        with open(os.path.join(t, "subject.txt"), "w", encoding="utf-8") as f:
            f.write(lines[0] + " {{{note}}}\n")
    elif placement == "text":
        with open(os.path.join(t, "body.txt"), encoding="utf-8") as f:
            body = f.read()
        with open(os.path.join(t, "body.txt"), "w", encoding="utf-8") as f:
            f.write(body.rstrip("\n") + "\n{{{note}}}\n")
    else:
        with open(os.path.join(t, "body.html"), encoding="utf-8") as f:
            body = f.read()
        assert body.count("</body>") == 1, "body.html has no single </body>"
        with open(os.path.join(t, "body.html"), "w", encoding="utf-8") as f:
            f.write(body.replace("</body>", "<p>{{{note}}}</p>\n</body>"))
    if extra_toml:
        with open(os.path.join(d, "campaign.toml"), "a", encoding="utf-8") as f:
            f.write("\n" + extra_toml)
    write_audience(d, {})
    return d


def recipient_of(path):
    msg = support.parse(path)
    return msg["To"].addresses[0].addr_spec if msg["To"] is not None and msg["To"].addresses else ""


def same_address(a, b):
    try:
        return support.normalise(a).lower() == support.normalise(b).lower()
    except UnicodeError:
        return a.lower() == b.lower()


def halt_of(d):
    out = support.run("status", d, "--json")
    if out.returncode != 0:
        return None, {}, f"status exited {out.returncode}: {out.stderr.strip()[-300:]}"
    st = json.loads(out.stdout)
    return st.get("halted"), st, ""


def blocked_problems(d, send, audience_victim):
    """Why this send does NOT show the guard stopping alice's message ([] when it does)."""
    problems = []
    if send.returncode != 3:
        problems.append(f"send exited {send.returncode}, not 3")
    halted, st, err = halt_of(d)
    if err:
        problems.append(err)
    elif not halted or halted.get("kind") != "guard":
        problems.append(f"not halted by the guard (halted: {halted})")
    else:
        reason = halted.get("reason", "")
        if not re.search(rf"\bline {ALICE_LINE}\b", reason):
            problems.append(f"halted for another row, not alice's line {ALICE_LINE}: {reason}")
        elif audience_victim and not re.search(r"\binvariant 3\b", reason):
            problems.append(f"halted, but not for invariant 3: {reason}")
    if st.get("rejected_rows"):
        problems.append(f"rows rejected by the loader: {st['rejected_rows']}")
    qdir = os.path.join(d, ".blindcast", "quarantine")
    quarantined = [os.path.join(qdir, q) for q in sorted(os.listdir(qdir)) if q.endswith(".eml")] \
        if os.path.isdir(qdir) else []
    if send.returncode == 3 and not any(same_address(recipient_of(q), ALICE) for q in quarantined):
        problems.append("alice's message is not the quarantined one")
    delivered = [p for p in support.maildir_files(os.path.join(d, "out", "maildir"))
                 if same_address(recipient_of(p), ALICE)]
    if delivered:
        problems.append("alice's message was DELIVERED")
    return problems


def run_parallel(fn, items):
    with concurrent.futures.ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return list(pool.map(fn, items))


# ---------------------------------------------------------------------- tests

class CorpusFiles(unittest.TestCase):
    """The data files are what they claim to be (no binary involved)."""

    def test_audience(self):
        emails = [r["email"] for r in AUDIENCE]
        self.assertEqual(ALICE, "alice.smith@example.com")
        self.assertEqual(len({u_form(e) for e in emails}), len(emails), "duplicate audience addresses")
        for r in AUDIENCE:
            self.assertTrue(r["email"].split("@")[0].isascii(), r["email"])
            self.assertEqual(r["note"], "", "notes are filled by the tests")
        self.assertGreaterEqual(len(emails), 30)

    def test_leak_rows(self):
        raw = data_lines("leaks.tsv")
        self.assertEqual([n for n, f in raw if len(f) not in (3, 4)], [], "rows without 3 or 4 tab-separated fields")
        rows = load_leaks()
        self.assertGreaterEqual(len(rows), MIN_LEAK_ROWS)
        emails = {r["email"] for r in AUDIENCE}
        reviewed = reviewed_from()
        bad = []
        for r in rows:
            why = []
            if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", r.cls):
                why.append("class name")
            if re.search(r"[\r\n\t]", r.payload):
                why.append("CR, LF or TAB in the payload")
            if r.cls.startswith("outsider-") == (r.victim in emails):
                why.append("outsider-* classes are exactly the victims outside the audience")
            if r.victim == ALICE:
                why.append("alice is the reader, not a victim")
            if r.line < reviewed and not shows(r.victim, r.payload):
                why.append("the reference reader does not see the victim")
            others = [e for e in emails if e not in (r.victim, ALICE) and shows(e, r.payload)]
            if r.line < reviewed and others:
                why.append(f"shows other audience members too: {others}")
            if why:
                bad.append(f"leaks.tsv:{r.line}: {r.cls}: {'; '.join(why)}")
        self.assertEqual(bad, [])

    def test_clean_rows(self):
        raw = data_lines("clean.tsv")
        self.assertEqual([n for n, f in raw if len(f) != 3], [], "rows without exactly 3 tab-separated fields")
        rows = load_clean()
        self.assertGreaterEqual(len(rows), MIN_CLEAN_ROWS)
        emails = {r["email"] for r in AUDIENCE}
        bad = []
        for r in rows:
            why = []
            if r.recipient not in emails:
                why.append("recipient not in audience.csv")
            if re.search(r"[\r\n\t]", r.payload):
                why.append("CR, LF or TAB in the payload")
            if "own address" in r.note and not shows(r.recipient, r.payload):
                why.append("note says own address, the reference reader does not see it")
            # A member whose address ends another's shown in full ("neil@" in
            # "o'neil@") is not shown: the longer address is what is read.
            shown = [e for e in emails if shows(e, r.payload)]
            others = [e for e in shown if e != r.recipient and
                      not any(o != e and u_form(o).endswith(u_form(e)) for o in shown)]
            if others:
                why.append(f"shows other audience members: {others}")
            if why:
                bad.append(f"clean.tsv:{r.line}: {'; '.join(why)}")
        self.assertEqual(bad, [])


class GuardCorpus(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory(prefix="blindcast-guard-corpus-", dir=fast_tmp_root())
        cls.root = cls._tmp.name
        cls.bases = {p: make_base(cls.root, p) for p in PLACEMENTS}
        cls._strict = None

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    def strict_bases(self):
        """Bases with STRICT_TOML, or a skip when the binary does not know the setting."""
        if self._strict is None:
            bases = {p: make_base(self.root, p, STRICT_TOML) for p in PLACEMENTS}
            lint = support.run("lint", bases["text"])
            out = lint.stdout + lint.stderr
            unknown = [l for l in out.splitlines() if re.search(r"unknown|not supported|invalid", l, re.I)
                       and re.search(r"guard|strict", l, re.I)]
            type(self)._strict = ("", bases) if not unknown else (unknown[0].strip(), None)
        why, bases = self._strict
        if bases is None:
            self.skipTest(f"no strict mode in this binary ({STRICT_TOML.strip()!r}: {why})")
        return bases

    def leak_cases(self, rows, bases):
        """Runs every row in every placement; returns ([(row, placement, problems)], cases run)."""
        cases = [(r, p) for r in rows for p in r.placements]

        def one(case):
            r, p = case
            d = os.path.join(self.root, f"leak-{r.line}-{p}")
            shutil.copytree(bases[p], d)
            write_audience(d, {ALICE: r.payload})
            send = support.run("send", d, "--stage", "full", *FORCE)
            problems = blocked_problems(d, send, not r.cls.startswith("outsider-"))
            shutil.rmtree(d, ignore_errors=True)
            return r, p, problems

        results = run_parallel(one, cases)
        return results, len(results)

    def report(self, results):
        missed = [(r, p, why) for r, p, why in results if why]
        by_class = collections.Counter(r.cls for r, _, _ in missed)
        lines = [f"{len(missed)} of {len(results)} leak cases NOT blocked "
                 f"({len({(r.line) for r, _, _ in missed})} rows, {len(by_class)} classes):"]
        for r, p, why in sorted(missed, key=lambda x: (x[0].line, PLACEMENTS.index(x[1]))):
            lines.append(f"  leaks.tsv:{r.line} {r.cls} [{p}] victim {r.victim}: {shown(r.payload)} -> {'; '.join(why)}")
        lines.append("classes missed (cases): " + ", ".join(f"{c} {n}" for c, n in sorted(by_class.items())))
        return "\n".join(lines)

    def test_harness_puts_the_note_where_it_says(self):
        """The payload reaches alice's message verbatim, in the chosen placement only
        (preview does not guard), so a placement that silently lost it cannot pass."""
        probe = "probe \u202eolleh\u202c <b>ｂ</b>&#64; \u200b%40 \"q\\r\" 李雷 ليلى"
        for p in PLACEMENTS:
            d = os.path.join(self.root, f"probe-{p}")
            shutil.copytree(self.bases[p], d)
            write_audience(d, {ALICE: probe})
            support.run("preview", d, "--out", os.path.join(d, "pv"), "--recipient", ALICE, check=0)
            (eml,) = [os.path.join(d, "pv", f) for f in os.listdir(os.path.join(d, "pv")) if f.endswith(".eml")]
            msg = support.parse(eml)
            self.assertTrue(same_address(recipient_of(eml), ALICE))
            found = {"subject": probe in " ".join(str(msg["Subject"]).split()),
                     "text": probe in msg.get_body(preferencelist=("plain",)).get_content(),
                     "html": probe in msg.get_body(preferencelist=("html",)).get_content()}
            self.assertEqual(found, {q: q == p for q in PLACEMENTS}, f"placement {p}")
            shutil.rmtree(d)

    def test_leaks_are_blocked(self):
        start = time.monotonic()
        rows = [r for r in load_leaks() if not r.cls.startswith("outsider-")]
        expected_rows = len([1 for _, f in data_lines("leaks.tsv") if not f[0].startswith("outsider-")])
        self.assertEqual(len(rows), expected_rows, "a leak row was dropped while loading")
        self.assertGreaterEqual(len(rows), MIN_LEAK_ROWS)
        results, ran = self.leak_cases(rows, self.bases)
        print(f"\n{ran} leak cases in {time.monotonic() - start:.1f}s", file=sys.stderr)
        self.assertEqual(ran, sum(len(r.placements) for r in rows), "every row must run in every placement")
        self.assertEqual({(r.line, p) for r, p, _ in results}, {(r.line, p) for r in rows for p in r.placements})
        self.assertFalse(any(why for _, _, why in results), self.report(results))

    def test_outsiders_are_blocked_in_strict_mode(self):
        bases = self.strict_bases()
        start = time.monotonic()
        rows = [r for r in load_leaks() if r.cls.startswith("outsider-")]
        expected_rows = len([1 for _, f in data_lines("leaks.tsv") if f[0].startswith("outsider-")])
        self.assertEqual(len(rows), expected_rows)
        self.assertGreater(len(rows), 0)
        results, ran = self.leak_cases(rows, bases)
        print(f"\n{ran} outsider cases in {time.monotonic() - start:.1f}s", file=sys.stderr)
        self.assertEqual(ran, sum(len(r.placements) for r in rows))
        self.assertFalse(any(why for _, _, why in results), self.report(results))

    # -- the clean corpus

    def clean_send(self, bases, placement, notes, tag):
        """One send of the whole audience with `notes`; returns problems ([] when all went out)."""
        d = os.path.join(self.root, f"clean-{tag}-{placement}")
        shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(bases[placement], d)
        write_audience(d, notes)
        problems = []
        lint = support.run("lint", d)
        flagged = sorted(set(re.findall(r"audience\.csv:(\d+): error: privacy guard[^\n]*", lint.stderr)), key=int)
        if lint.returncode != 0:
            errors = [l for l in lint.stderr.splitlines() if ": error:" in l]
            problems.append(f"lint exited {lint.returncode}: " + " | ".join(errors[:5]))
        send = support.run("send", d, "--stage", "full", *FORCE)
        if send.returncode != 0:
            problems.append(f"send exited {send.returncode}: {send.stderr.strip().splitlines()[-1:]}")
        halted, st, err = halt_of(d)
        if err:
            problems.append(err)
        else:
            if halted:
                problems.append(f"halted: {halted.get('reason')}")
            if st.get("rejected_rows"):
                problems.append(f"rows rejected by the loader: {st['rejected_rows']}")
            sent = st.get("states", {}).get("sent")
            if sent != len(AUDIENCE) or st.get("total") != len(AUDIENCE):
                problems.append(f"status: {sent} sent of {st.get('total')}, want {len(AUDIENCE)} of {len(AUDIENCE)}")
        got = sorted(support.normalise(recipient_of(p)).lower()
                     for p in support.maildir_files(os.path.join(d, "out", "maildir")))
        want = sorted(support.normalise(r["email"]).lower() for r in AUDIENCE)
        if got != want:
            problems.append(f"maildir holds {len(got)} messages, want one for each of the {len(want)} rows")
        shutil.rmtree(d, ignore_errors=True)
        return problems, [int(n) for n in flagged]

    def diagnose_clean(self, bases, rows):
        """Which rows the guard (through lint) flags on their own, and what it flags with no note at all."""
        def lint_flags(args):
            placement, notes, tag = args
            d = os.path.join(self.root, f"diag-{tag}-{placement}")
            shutil.copytree(bases[placement], d)
            write_audience(d, notes)
            lint = support.run("lint", d)
            shutil.rmtree(d, ignore_errors=True)
            return {int(n) for n in re.findall(r"audience\.csv:(\d+): error: privacy guard", lint.stderr)}

        line_of = {r["email"]: i + 2 for i, r in enumerate(AUDIENCE)}
        baseline = dict(zip(PLACEMENTS, run_parallel(lint_flags, [(p, {}, "none") for p in PLACEMENTS])))
        cases = [(r, p) for r in rows for p in PLACEMENTS if applies(r, p)]
        flags = run_parallel(lint_flags, [(p, {r.recipient: r.payload}, f"row{r.line}") for r, p in cases])
        out = []
        for p in PLACEMENTS:
            if baseline[p]:
                names = [a["email"] for a in AUDIENCE if line_of[a["email"]] in baseline[p]]
                out.append(f"  [{p}] flagged with NO note at all (own address in the template): {names}")
        for (r, p), f in zip(cases, flags):
            if line_of[r.recipient] in f - baseline[p]:
                out.append(f"  clean.tsv:{r.line} [{p}] {r.recipient}: {shown(r.payload)} ({r.note})")
        return out

    def check_clean(self, bases, tag):
        start = time.monotonic()
        rows = load_clean()
        self.assertEqual(len(rows), len(data_lines("clean.tsv")), "a clean row was dropped while loading")
        failures = []
        for p in PLACEMENTS:
            joined = collections.defaultdict(list)
            for r in rows:
                if applies(r, p):
                    joined[r.recipient].append(r.payload)
            notes = {k: " ; ".join(v) for k, v in joined.items()}
            self.assertEqual(sum(len(v) for v in joined.values()), sum(applies(r, p) for r in rows))
            problems, flagged = self.clean_send(bases, p, notes, tag)
            if problems:
                names = [AUDIENCE[n - 2]["email"] for n in flagged if 2 <= n < len(AUDIENCE) + 2]
                failures.append(f"[{p}] " + "; ".join(problems) + (f"; lint flags {names}" if names else ""))
        print(f"\n{len(rows)} clean rows x {len(PLACEMENTS)} placements in {time.monotonic() - start:.1f}s",
              file=sys.stderr)
        if failures:
            detail = self.diagnose_clean(bases, rows)
            self.fail("clean corpus blocked or not delivered:\n" + "\n".join(failures) +
                      "\nrows flagged on their own (lint):\n" + ("\n".join(detail) or "  (none)"))

    def test_clean_corpus_is_delivered(self):
        self.check_clean(self.bases, "default")

    def test_clean_corpus_is_delivered_in_strict_mode(self):
        self.check_clean(self.strict_bases(), "strict")


if __name__ == "__main__":
    support.main()
