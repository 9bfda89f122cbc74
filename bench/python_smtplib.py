"""Peer for the SMTP benchmark: a plain Python smtplib loop over one
connection, one message per recipient, against the same sink."""
import json
import smtplib
import sys
import time


def main():
    port, n, size = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    body = ("x" * 76 + "\r\n") * (size // 78)
    start = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as s:
        for i in range(n):
            rcpt = f"user{i}@example.com"
            msg = f"From: noreply@example.com\r\nTo: {rcpt}\r\nSubject: bench {i}\r\n\r\n{body}"
            s.sendmail("noreply@example.com", [rcpt], msg)
    secs = time.perf_counter() - start
    print(json.dumps({"bench": "python_smtplib", "messages": n, "seconds": round(secs, 2),
                      "per_second": round(n / secs)}))


if __name__ == "__main__":
    main()
