"""Peer for the render + compose benchmark: Python's email.message.EmailMessage
building the same kind of message (From, To with display name, Reply-To,
Subject, Date, Message-ID, List-Unsubscribe, text + HTML alternative) from the
same audience file, with str.format standing in for the template engine."""
import csv
import html
import json
import sys
import time
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from datetime import datetime, timezone

SUBJECTS = {"en": "Index change on December 1, 2026", "de": "Indexänderung am 1. Dezember 2026",
            "ja": "2026年12月1日の指数変更のお知らせ", "ar": "تغيير المؤشر في ١ ديسمبر ٢٠٢٦",
            "pt-BR": "Mudança de índice em 1 de dezembro de 2026"}
BODY = ("{greeting}\n\nOn December 1, 2026 we change how our price indexes are computed. Nothing changes in "
        "your account and you do not need to do anything.\n\nYou hold {assets} affected assets.\n\n"
        "This message was sent to {email}.\n\n-- \nThe Example Exchange team\n")


def main():
    audience, n = sys.argv[1], int(sys.argv[2])
    with open(audience, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    now = datetime.now(timezone.utc)
    start = time.perf_counter()
    total = 0
    for i in range(n):
        r = rows[i % len(rows)]
        text = BODY.format(greeting=f"Hello {r['name']},", assets=r["assets"], email=r["email"])
        msg = EmailMessage(policy=SMTP)
        msg["From"] = "Example Exchange <noreply@example.com>"
        msg["To"] = f"{r['name']} <{r['email']}>"
        msg["Reply-To"] = "support@example.com"
        msg["Subject"] = SUBJECTS.get(r["locale"], SUBJECTS["en"])
        msg["Date"] = format_datetime(now)
        msg["Message-ID"] = make_msgid(domain="example.com")
        msg["List-Unsubscribe"] = "<mailto:unsubscribe@example.com?subject=unsubscribe>"
        msg.set_content(text)
        msg.add_alternative("<p>" + html.escape(text) + "</p>", subtype="html")
        total += len(msg.as_bytes())
    secs = time.perf_counter() - start
    print(json.dumps({"bench": "python_email_compose", "messages": n, "seconds": round(secs, 3),
                      "per_second": round(n / secs), "avg_bytes": total // n}))


if __name__ == "__main__":
    main()
