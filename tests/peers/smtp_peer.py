"""A scripted SMTP server for blindcast's integration tests (aiosmtpd, run
with Debian's /usr/bin/python3). It listens on 127.0.0.1 (or --host, another
loopback address) only and misbehaves
per recipient, chosen by the local part's prefix:

  reject...        RCPT  -> 550 5.1.1
  tempfail-once... RCPT  -> 450 4.2.1 the first time, then accepted
  tempfail...      RCPT  -> 450 4.2.1 always
  throttle-once... RCPT  -> 421 4.7.0 and the connection is closed, the first time
  drop-once...     DATA  -> the connection is dropped after the message, the first time
  slow-once...     DATA  -> the reply comes after --slow seconds, the first time

Every RCPT and every accepted message is appended to --log as one JSON line.
Prints "READY <port>" when listening.
"""
import argparse
import asyncio
import collections
import email
import email.policy
import json
import socket
import ssl
import sys
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Handler:
    def __init__(self, log_path, slow, delay, store=None, throttle_domain=None, throttle_count=0):
        self.store = store
        self.throttle_domain = throttle_domain
        self.throttle_count = throttle_count
        self.throttled = 0
        self.stored = 0
        self.log = open(log_path, "a", buffering=1)
        self.lock = threading.Lock()
        self.seen = collections.Counter()
        self.slow = slow
        self.delay = delay
        self.open_sessions = 0

    def write(self, record):
        with self.lock:
            self.log.write(json.dumps(record) + "\n")

    def first(self, kind, address):
        with self.lock:
            self.seen[(kind, address.lower())] += 1
            return self.seen[(kind, address.lower())] == 1

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0].lower()
        reply = "250 2.1.5 OK"
        if local.startswith("reject"):
            reply = "550 5.1.1 no such user"
        elif local.startswith("tempfail-once"):
            if self.first("rcpt", address):
                reply = "450 4.2.1 mailbox busy, try later"
        elif local.startswith("tempfail"):
            reply = "450 4.2.1 mailbox busy, try later"
        elif local.startswith("throttle-once") and self.first("rcpt", address):
            reply = "421 4.7.0 too many messages, slow down"
        elif self.throttle_domain and address.lower().endswith("@" + self.throttle_domain):
            with self.lock:
                self.throttled += 1
                throttle_now = self.throttled <= self.throttle_count
            if throttle_now:
                reply = "421 4.7.0 [TSS04] Messages temporarily deferred due to unexpected volume"
        self.write({"event": "rcpt", "address": address, "reply": reply, "count": len(envelope.rcpt_tos) + 1,
                    "t": time.time()})
        if reply.startswith("421"):
            await server.push(reply)
            server.transport.close()
            return "421 closing"
        if reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_DATA(self, server, session, envelope):
        rcpt = envelope.rcpt_tos[0] if envelope.rcpt_tos else ""
        local = rcpt.split("@")[0].lower()
        if self.delay:
            await asyncio.sleep(self.delay)
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        record = {
            "event": "message",
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "to": [a.addr_spec for a in msg["To"].addresses] if msg["To"] else [],
            "cc": msg["Cc"] is not None,
            "bcc": msg["Bcc"] is not None,
            "tls": session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None,
            "auth": bool(getattr(session, "authenticated", False)),
            "message_id": msg["Message-ID"],
            "t": time.time(),
        }
        if local.startswith("drop-once") and self.first("data", rcpt):
            record["dropped"] = True
            self.write(record)
            server.transport.close()
            return "250 never seen"
        if local.startswith("slow-once") and self.first("data", rcpt):
            self.write({"event": "slow", "address": rcpt})
            await asyncio.sleep(self.slow)
            record["slow"] = True
        if self.store:
            with self.lock:
                self.stored += 1
                n = self.stored
            with open(f"{self.store}/{n:06d}.eml", "wb") as f:
                f.write(envelope.original_content or envelope.content)
        self.write(record)
        return "250 2.0.0 OK queued"


class CountingController(Controller):
    """Logs every session's start with how many are open at once
    ({"event": "session", "open": N}): what a connection cap allows."""

    def factory(self):
        handler = self.handler

        class Counting(SMTP):
            def connection_made(self, transport):
                with handler.lock:
                    handler.open_sessions += 1
                    n = handler.open_sessions
                handler.write({"event": "session", "open": n})
                super().connection_made(transport)

            def connection_lost(self, exc):
                with handler.lock:
                    handler.open_sessions -= 1
                super().connection_lost(exc)

        return Counting(self.handler, **self.SMTP_kwargs)


def free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1", help="a loopback address (127.0.0.0/8) to listen on")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--require-tls", action="store_true")
    ap.add_argument("--implicit-tls", action="store_true")
    ap.add_argument("--auth", help="USER:PASS required to send")
    ap.add_argument("--auth-plaintext", action="store_true", help="allow AUTH without TLS")
    ap.add_argument("--slow", type=float, default=5.0)
    ap.add_argument("--delay", type=float, default=0.0, help="seconds before every DATA reply")
    ap.add_argument("--store", help="directory to keep each accepted message's exact bytes in")
    ap.add_argument("--throttle-domain", help="answer 421 4.7.0 [TSS04] to RCPTs for this domain ...")
    ap.add_argument("--throttle-count", type=int, default=0, help="... this many times")
    args = ap.parse_args()

    handler = Handler(args.log, args.slow, args.delay, args.store, args.throttle_domain, args.throttle_count)
    kwargs = {}
    context = None
    if args.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
    if args.implicit_tls:
        kwargs["ssl_context"] = context
    elif context is not None:
        kwargs["tls_context"] = context
        kwargs["require_starttls"] = args.require_tls
    if args.auth:
        user, password = args.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user and \
                auth_data.password.decode() == password
            handler.write({"event": "auth", "ok": ok, "mechanism": mechanism})
            return AuthResult(success=ok, handled=False)

        kwargs["authenticator"] = authenticator
        kwargs["auth_required"] = True
        kwargs["auth_require_tls"] = not args.auth_plaintext
    if not args.host.startswith("127."):
        ap.error("--host must be a loopback address")
    port = args.port or free_port(args.host)
    controller = CountingController(handler, hostname=args.host, port=port, ready_timeout=10, **kwargs)
    controller.start()
    print(f"READY {port}", flush=True)
    try:
        sys.stdin.read()  # run until the test closes our stdin
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
