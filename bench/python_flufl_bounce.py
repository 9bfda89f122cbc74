"""The peer of the bounces benchmark: flufl.bounce (Debian's
python3-flufl.bounce) reading the same files: the email package parses each
message, all_failures() runs every detector. Prints one line of JSON."""
import json
import sys
import time
from email import message_from_bytes

from flufl.bounce import all_failures

seconds = float(sys.argv[1])
messages = []
for path in sys.argv[2:]:
    with open(path, "rb") as f:
        messages.append(f.read())
parsed = 0
failures = 0
errors = 0  # messages flufl.bounce raises on (a non-ASCII From: is a Header object it cannot lower())
t0 = time.perf_counter()
while True:
    for raw in messages:
        try:
            temporary, permanent = all_failures(message_from_bytes(raw))
            failures += len(temporary) + len(permanent)
        except Exception:
            errors += 1
        parsed += 1
    elapsed = time.perf_counter() - t0
    if elapsed >= seconds:
        break
print(json.dumps({"bench": "flufl_bounce", "files": len(messages), "messages": parsed, "recipients": failures, "errors_per_round": errors * len(messages) // max(parsed, 1),
                  "seconds": round(elapsed, 2), "per_second": round(parsed / elapsed)}))
