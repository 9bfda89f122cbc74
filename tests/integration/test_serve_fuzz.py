"""Fuzzes `blindcast serve`'s request handling from outside, for a short run
on every `make test` (BLINDCAST_FUZZ_SECONDS, default 15): raw requests
mutated from valid ones — request lines, headers, lengths, JSON bodies
(types, nesting, sizes, UTF-8, control characters) — over raw sockets, as
an attacker would send them. The service must never crash or hang, must
answer every complete request with a well-formed HTTP response (JSON errors
for 4xx), must have stored everything it answered 202 for, and must stay
healthy. The seed is printed; BLINDCAST_FUZZ_SEED replays a run."""
import json
import os
import random
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
import test_serve  # noqa: E402

VALID = {"stream": "password-reset", "to": "zoe.mueller@example.de", "locale": "de",
         "data": {"name": "Zoë Müller", "reset_url": "https://example.com/r/x9", "code": "428113"}}
PATHS = ["/v1/messages", "/v1/messages/msg_0123456789abcdef01234567", "/v1/campaigns", "/v1/campaigns/x/send",
         "/v1/campaigns/x/halt", "/u/u1AAAA", "/metrics", "/healthz", "/", "/v1/messages/../../etc/passwd",
         "/u/" + "A" * 3000, "/v1/messages?x=%00", "//v1//messages"]
METHODS = ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "GETT", ""]
NASTY = ["", "\x00", "\r\n", "é", "\ud83d\ude00", "\u202e", "A" * 70000, "%00", "${jndi:x}", "'; DROP TABLE x; --",
         "<script>alert(1)</script>", "bob@example.net", "\\", "\"", "{{name}}", "{{{t.greeting}}}"]


def mutate_json(rng, value, depth=0):
    r = rng.random()
    if r < 0.08:
        return rng.choice([None, True, 0, -1, 2 ** 64, 1e308, "", [], {}, rng.choice(NASTY)])
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if rng.random() < 0.1:
                continue  # drop a field
            key = k if rng.random() > 0.05 else rng.choice(NASTY[:8]) + k
            out[key] = mutate_json(rng, v, depth + 1)
        if rng.random() < 0.1:
            out[rng.choice(["cc", "bcc", "data", "x" * 100, "to"])] = rng.choice(NASTY)
        return out
    if isinstance(value, str):
        if r < 0.3:
            i = rng.randrange(len(value) + 1)
            return value[:i] + rng.choice(NASTY) + value[i:]
        return value
    return value


def raw_request(rng, key):
    method = rng.choice(METHODS) if rng.random() < 0.1 else "POST"
    path = rng.choice(PATHS) if rng.random() < 0.3 else "/v1/messages"
    body = json.dumps(mutate_json(rng, VALID), ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")
    if rng.random() < 0.1:
        body = b"[" * rng.randrange(1, 200000)
    if rng.random() < 0.1:
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300)))
    headers = [("Host", "x"), ("Authorization", f"Bearer {key}" if rng.random() < 0.8 else rng.choice(
        ["", "Bearer", "Basic eDp5", f"Bearer {key}x", "Bearer " + "A" * 5000]))]
    length = len(body)
    r = rng.random()
    if r < 0.02:
        length += rng.randrange(1, 50)  # a lie: more than sent (the read times out)
    elif r < 0.05:
        length = max(0, length - rng.randrange(1, 50))
    if rng.random() > 0.02:  # without one, a POST's body is read until the read times out
        headers.append(("Content-Length", str(length)))
    if rng.random() < 0.05:
        headers.append(("Transfer-Encoding", "chunked"))
    if rng.random() < 0.1:
        headers.append(("Idempotency-Key", rng.choice(["k1", "k2", "\x7f", "A" * 300, ""])))
    if rng.random() < 0.05:
        headers.append((rng.choice(NASTY[:6]) or "X", rng.choice(NASTY[:6])))
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    data = head.encode("utf-8", "surrogatepass") + body
    if rng.random() < 0.05:  # flip bytes anywhere
        data = bytearray(data)
        for _ in range(rng.randrange(1, 5)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        data = bytes(data)
    return data, length != len(body)


class ServeFuzz(test_serve.ServeCase):
    def test_mutated_requests_never_crash_hang_or_store_unanswered_mail(self):
        s = self.service("[intake]\nrate = 100000\nburst = 100000\n[http]\nread_timeout = 1")
        key = s.key("fuzzer", "send,read,campaigns,approve")
        seed = int(os.environ.get("BLINDCAST_FUZZ_SEED", time.time_ns() % 2 ** 32))
        seconds = float(os.environ.get("BLINDCAST_FUZZ_SECONDS", "15"))
        print(f"\nseed {seed} for {seconds:.0f}s (BLINDCAST_FUZZ_SEED={seed} replays it)", flush=True)
        rng = random.Random(seed)
        accepted = set()
        lost = 0
        n = 0
        statuses = {}
        deadline = time.time() + seconds
        while time.time() < deadline:
            data, lying = raw_request(rng, key)
            n += 1
            with socket.create_connection(("127.0.0.1", s.port), timeout=5) as c:
                c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                try:
                    c.sendall(data)
                    c.shutdown(socket.SHUT_WR) if rng.random() < 0.1 else None
                    reply = b""
                    while True:
                        chunk = c.recv(65536)
                        if not chunk:
                            break
                        reply += chunk
                        if b"\r\n\r\n" in reply:
                            head, _, rest = reply.partition(b"\r\n\r\n")
                            lengths = [int(l.split(b":")[1]) for l in head.split(b"\r\n")
                                       if l.lower().startswith(b"content-length:")]
                            if lengths and len(rest) >= lengths[0]:
                                break
                except (ConnectionResetError, BrokenPipeError):
                    lost += 1  # dropped (or its answer lost to the reset of a body that lied about its length)
                    continue
                except socket.timeout:
                    self.assertTrue(lying, f"no answer in 5 s to {data[:200]!r}")
                    lost += 1
                    continue
            if not reply:
                lost += 1  # closed without an answer (a request it could not read, or a client that half-closed)
                continue
            self.assertTrue(reply.startswith(b"HTTP/1.1 "), reply[:100])
            status = int(reply[9:12])
            statuses[status] = statuses.get(status, 0) + 1
            self.assertLess(status, 500, (data[:300], reply[:500]))
            head, _, body = reply.partition(b"\r\n\r\n")
            lengths = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
            body = body[:lengths[0]] if lengths else body  # a body that lied about its length: more answers follow
            if status >= 400 and body and b"text/html" not in head:
                err = json.loads(body)["error"]
                self.assertTrue(err["code"] and err["message"], err)
            if status == 202:
                accepted.add(json.loads(body)["id"])
            self.assertIsNone(s.proc.poll(), f"serve died on request {n}: {data[:300]!r}")
        print(f"{n} requests: {dict(sorted(statuses.items()))}", flush=True)
        self.assertGreater(n, 100)
        self.assertEqual(s.request("GET", "/healthz")[0], 200)
        s.stop()
        import sqlite3
        db = sqlite3.connect(os.path.join(self.tmp, "state", "blindcast.db"))
        stored = {row[0] for row in db.execute("SELECT public_id FROM messages")}
        db.close()
        # Everything answered 202 is stored (durable before the answer); a
        # message stored without its answer reaching us had its answer lost
        # to a connection reset.
        self.assertLessEqual(accepted, stored)
        self.assertLessEqual(len(stored - accepted), lost)


if __name__ == "__main__":
    support.main()
