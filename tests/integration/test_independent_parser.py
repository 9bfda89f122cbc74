"""Every generated message, parsed by Python's email package, gives back the
Subject, To and body text that were meant: ASCII, accented, CJK and
right-to-left locales, plain text and HTML."""
import html
import os

import support
from support import FORCE, run

LOCALES = {
    "en": ("Your statement is ready", "Hello {name}, your statement is ready."),
    "fr": ("Votre relevé est prêt — à très bientôt", "Bonjour {name}, votre relevé est prêt. Ça va ?"),
    "zh": ("您的账单已准备好，请查收。这是一封很长的主题行，用来测试编码后的折行是否正确。", "{name}，您好！您的账单已准备好。"),
    "he": ("הדוח שלך מוכן", "שלום {name}, הדוח שלך מוכן."),
}
RTL = {"he"}
ROWS = [
    ("ann@example.com", "Ann O'Neil", "en"),
    ("zoe@example.fr", "Zoé Lefèvre", "fr"),
    ("li@example.cn", "李雷", "zh"),
    ("dana@example.co.il", "דנה כהן", "he"),
    ("max@bücher.example", "Max \"The Reader\" Kühn", "fr"),
]


class IndependentParser(support.Case):
    def test_round_trip(self):
        d = os.path.join(self.tmp, "c")
        run("init", d, check=0)
        for name in os.listdir(os.path.join(d, "locales")):
            os.remove(os.path.join(d, "locales", name))
        for loc, (subject, body) in LOCALES.items():
            with open(os.path.join(d, "locales", f"{loc}.toml"), "w", encoding="utf-8") as f:
                f.write(f'subject = "{subject}"\nbody = "{body}"\n')
        with open(os.path.join(d, "templates", "subject.txt"), "w") as f:
            f.write("{{t.subject}}\n")
        with open(os.path.join(d, "templates", "body.txt"), "w") as f:
            f.write("{{t.body}}\n")
        with open(os.path.join(d, "templates", "body.html"), "w") as f:
            f.write("<p>{{t.body}}</p>\n")
        with open(os.path.join(d, "audience.csv"), "w", encoding="utf-8", newline="") as f:
            f.write("email,name,locale\n")
            for email_, name, loc in ROWS:
                quoted = '"' + name.replace('"', '""') + '"'
                f.write(f"{email_},{quoted},{loc}\n")
        run("lint", d, check=0)
        run("send", d, "--stage", "full", *FORCE, check=0)
        files = support.maildir_files(os.path.join(d, "out", "maildir"))
        self.assertEqual(len(files), len(ROWS))
        by_rcpt = {}
        for path in files:
            msg = support.parse(path)
            self.assertEqual(len(msg["To"].addresses), 1)
            by_rcpt[support.normalise(msg["To"].addresses[0].addr_spec)] = msg
        for email_, name, loc in ROWS:
            msg = by_rcpt[support.normalise(email_)]
            subject, body = LOCALES[loc]
            self.assertEqual(str(msg["Subject"]), subject, loc)
            self.assertEqual(msg["To"].addresses[0].display_name, name, loc)
            # In a right-to-left catalog a value sits in bidi isolates (FSI ... PDI).
            rtl = loc in RTL
            shown = "\u2068" + name + "\u2069" if rtl else name
            text = msg.get_body(preferencelist=("plain",)).get_content()
            self.assertEqual(text.replace("\r\n", "\n"), body.format(name=shown) + "\n", loc)
            page = msg.get_body(preferencelist=("html",)).get_content()
            # An HTML fragment is given its language and direction in a <div>.
            opening = f'<div lang="{loc}" dir="{"rtl" if rtl else "ltr"}">'
            page = page.replace("\r\n", "\n").rstrip("\n")
            self.assertTrue(page.startswith(opening) and page.endswith("</div>"), (loc, page[:80]))
            page = page[len(opening):-len("</div>")]
            # Values are HTML-escaped in the HTML part ({{x}}); compare what a reader sees.
            self.assertEqual(html.unescape(page.replace("\r\n", "\n")), "<p>" + body.format(name=shown) + "</p>\n", loc)
            inner = page[3:-5]
            self.assertNotIn('"', inner, loc)
            self.assertNotIn("'", inner, loc)
        for path in files:
            with open(path, "rb") as f:
                raw = f.read()
            self.assertNotIn(b"\n", raw.replace(b"\r\n", b""), "CRLF line ends only")
            for line in raw.split(b"\r\n"):
                self.assertLessEqual(len(line), 998)


if __name__ == "__main__":
    support.main()
