#!/usr/bin/python3
"""Fast SMTP sink that timestamps marked messages (blindcast benchmarks).

Usage: /usr/bin/python3 bench/timing_sink.py --port PORT --log FILE [--workers N]

Listens on 127.0.0.1:PORT (0 = pick a free port) and prints "READY <port>"
(flushed) once listening.  Every message is accepted with "250 2.0.0 Ok".
When a message's header section has a line starting with "X-Bench-Id:"
(case-insensitive), or its envelope recipient's local part starts with
"bench-" (the ID is then that local part: blindcast's messages carry no
header of the benchmark's), the line "ID<TAB>unix_time_float" is appended
to FILE (flushed) as soon as the final "." arrives, before the 250 reply is
written.
On SIGTERM/SIGINT, or when stdin (a pipe, socket or tty) reaches EOF, the
line "TOTAL <n>" (all messages received) is written to FILE and it exits.
FILE is truncated at start.  If stdin is /dev/null or a regular file it is
ignored (stop with SIGTERM).

--workers N forks N processes sharing the port via SO_REUSEPORT (default 1);
the parent sums their counts into the one TOTAL line.

Standard library only; per-message work is a substring search, no MIME parsing.
"""
import argparse
import asyncio
import os
import signal
import socket
import stat
import sys
import threading
import time

GREETING = b"220 localhost ESMTP timing_sink\r\n"
EHLO_REPLY = (b"250-localhost\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
              b"250-SIZE 104857600\r\n250 ENHANCEDSTATUSCODES\r\n")
R_OK = b"250 2.0.0 Ok\r\n"
R_MSG_OK = b"250 2.0.0 Ok\r\n"
R_DATA = b"354 End data with <CR><LF>.<CR><LF>\r\n"
R_BYE = b"221 2.0.0 Bye\r\n"
R_SEQ = b"503 5.5.1 Bad sequence of commands\r\n"
R_UNK = b"502 5.5.2 Command not recognized\r\n"
R_SYNTAX = b"501 5.5.4 Syntax error\r\n"
R_LONG = b"500 5.5.2 Line too long\r\n"
R_VRFY = b"252 2.0.0 Cannot VRFY\r\n"

MAX_LINE = 4096            # command line limit
MAX_HEADER = 1 << 20       # header bytes examined for X-Bench-Id
MARK = b"x-bench-id:"

state = {"count": 0, "log": None}


def log_marks(hdr):
    """hdr: bytes of the header section (after the initial virtual CRLF)."""
    now = time.time()
    log = state["log"]
    for line in hdr.split(b"\n"):
        if line[:11].lower() == MARK:
            ident = line[11:].strip().decode("utf-8", "replace")
            log.write("%s\t%.6f\n" % (ident, now))
    log.flush()


class SMTP(asyncio.Protocol):
    __slots__ = ("t", "buf", "data", "mbuf", "scan", "hdr", "mail", "rcpt", "mark")

    def connection_made(self, transport):
        self.t = transport
        self.buf = b""
        self.data = False
        self.mbuf = None
        self.scan = 0
        self.hdr = None
        self.mail = False
        self.rcpt = False
        self.mark = None
        transport.write(GREETING)

    def data_received(self, chunk):
        out = []
        if self.data:
            rest = self._data(chunk, out)
            if rest is None:
                if out:
                    self.t.write(b"".join(out))
                return
            chunk = rest
        buf = self.buf + chunk if self.buf else chunk
        pos = 0
        n = len(buf)
        while pos < n:
            i = buf.find(b"\n", pos)
            if i < 0:
                if n - pos > MAX_LINE:
                    out.append(R_LONG)
                    self.t.write(b"".join(out))
                    self.t.close()
                    return
                break
            line = buf[pos:i]
            pos = i + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            verb = line[:4].upper()
            if verb == b"MAIL":
                if self.mail:
                    out.append(R_SEQ)
                elif line[4:10].upper() != b" FROM:":
                    out.append(R_SYNTAX)
                else:
                    self.mail = True
                    self.mark = None
                    out.append(R_OK)
            elif verb == b"RCPT":
                if not self.mail:
                    out.append(R_SEQ)
                elif line[4:8].upper() != b" TO:":
                    out.append(R_SYNTAX)
                else:
                    self.rcpt = True
                    addr = line[8:].strip().lstrip(b"<")
                    if addr[:6].lower() == b"bench-":
                        self.mark = addr.split(b"@")[0].decode("ascii", "replace")
                    out.append(R_OK)
            elif verb == b"DATA":
                if not self.rcpt:
                    out.append(R_SEQ)
                    continue
                out.append(R_DATA)
                self.data = True
                self.mbuf = bytearray(b"\r\n")   # virtual CRLF before line 1
                self.scan = 0
                self.hdr = None
                rest = self._data(buf[pos:], out)
                if rest is None:
                    pos = n
                    break
                buf, pos, n = rest, 0, len(rest)
            elif verb == b"EHLO":
                self.mail = self.rcpt = False
                out.append(EHLO_REPLY)
            elif verb == b"HELO":
                self.mail = self.rcpt = False
                out.append(b"250 localhost\r\n")
            elif verb == b"RSET":
                self.mail = self.rcpt = False
                out.append(R_OK)
            elif verb == b"NOOP":
                out.append(R_OK)
            elif verb == b"QUIT":
                out.append(R_BYE)
                self.t.write(b"".join(out))
                self.t.close()
                self.buf = b""
                return
            elif verb == b"VRFY":
                out.append(R_VRFY)
            else:
                out.append(R_UNK)
        self.buf = buf[pos:] if pos < n else b""
        if out:
            self.t.write(b"".join(out))

    def _data(self, chunk, out):
        """Feed message bytes.  Returns None while the message is open, or the
        bytes following the terminating CRLF.CRLF (possibly b"")."""
        m = self.mbuf
        m += chunk
        end = m.find(b"\r\n.\r\n", self.scan)
        hdr = self.hdr
        if end < 0:
            if hdr is None:
                h = m.find(b"\r\n\r\n")
                if h >= 0:
                    hdr = self.hdr = bytes(m[2:h + 2])
                elif len(m) > MAX_HEADER:
                    hdr = self.hdr = bytes(m[2:])
            if hdr is not None and len(m) > 65536:
                del m[:-4]       # keep only what the end search needs
            self.scan = max(len(m) - 4, 0)
            return None
        if hdr is None:
            h = m.find(b"\r\n\r\n", 0, end + 2)
            hdr = m[2:h + 2] if h >= 0 else m[2:end + 2]
        if MARK in hdr.lower():
            # dot-unstuffing only matters where content is used: the headers
            log_marks(bytes(hdr).replace(b"\n..", b"\n."))
        elif self.mark is not None:
            state["log"].write("%s\t%.6f\n" % (self.mark, time.time()))
            state["log"].flush()
        self.mark = None
        state["count"] += 1
        out.append(R_MSG_OK)
        rest = bytes(m[end + 5:])
        self.data = False
        self.mbuf = self.hdr = None
        self.mail = self.rcpt = False
        return rest

    def connection_lost(self, exc):
        self.mbuf = None


def make_socket(port, reuseport):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuseport:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind(("127.0.0.1", port))
    s.listen(4096)
    s.setblocking(False)
    return s


def watch_stdin(loop, stop):
    """Stop when stdin hits EOF, if stdin is something that can 'close'."""
    try:
        mode = os.fstat(0).st_mode
    except OSError:
        return
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(0)):
        return

    def reader():
        try:
            while os.read(0, 65536):
                pass
        except OSError:
            pass
        loop.call_soon_threadsafe(stop)

    threading.Thread(target=reader, daemon=True).start()


def serve(sock, log_path, on_stop):
    """Run the event loop on sock until stopped; returns the message count."""
    state["log"] = open(log_path, "a", buffering=1 << 16)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    done = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    on_stop(loop, done.set)

    async def main():
        server = await loop.create_server(SMTP, sock=sock, backlog=4096)
        await done.wait()
        server.close()

    loop.run_until_complete(main())
    state["log"].flush()
    return state["count"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--workers", type=int, default=1)
    a = ap.parse_args()

    try:
        open(a.log, "w").close()
    except OSError as e:
        sys.exit("timing_sink: cannot open log: %s" % e)
    workers = max(1, a.workers)
    try:
        first = make_socket(a.port, workers > 1)
    except OSError as e:
        sys.exit("timing_sink: cannot listen on 127.0.0.1:%d: %s" % (a.port, e))
    port = first.getsockname()[1]

    if workers == 1:
        print("READY %d" % port, flush=True)
        n = serve(first, a.log, lambda loop, stop: watch_stdin(loop, stop))
        with open(a.log, "a") as f:
            f.write("TOTAL %d\n" % n)
        return

    # Multi-process: each child serves its own SO_REUSEPORT socket and reports
    # its count on a pipe when it gets SIGTERM; the parent writes TOTAL.
    socks = [first] + [make_socket(port, True) for _ in range(workers - 1)]
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    kids = []
    for s in socks:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            for o in socks:
                if o is not s:
                    o.close()
            n = serve(s, a.log, lambda loop, stop: None)
            os.write(w, b"%d\n" % n)
            os._exit(0)
        os.close(w)
        kids.append((pid, r))
    for s in socks:
        s.close()
    print("READY %d" % port, flush=True)

    class Loop:  # minimal shim so watch_stdin can be reused
        def call_soon_threadsafe(self, f):
            f()
    watch_stdin(Loop(), stop.set)
    while not stop.wait(0.5):
        pass
    total = 0
    for pid, r in kids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for pid, r in kids:
        with os.fdopen(r) as f:
            txt = f.read().strip()
        os.waitpid(pid, 0)
        total += int(txt or 0)
    with open(a.log, "a") as f:
        f.write("TOTAL %d\n" % total)


if __name__ == "__main__":
    main()
