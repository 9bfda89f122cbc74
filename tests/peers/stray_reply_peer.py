"""A minimal SMTP server for one integration test (Debian's /usr/bin/python3,
no dependencies): it speaks ESMTP with PIPELINING on 127.0.0.1 and, to every
`--every`-th DATA command, answers "354" and a stray reply (`--stray`,
"250 stray" by default; "421 ..." says the server is closing) in one write,
which a client must take for a broken session. Each accepted message is
logged as one JSON line ({"rcpt": ...}) to --log. Prints "READY <port>";
runs until its stdin closes.
"""
import argparse
import asyncio
import json
import sys
import threading


class Peer:
    def __init__(self, log_path, every, stray):
        self.log = open(log_path, "a", buffering=1)
        self.every = every
        self.stray = stray.encode("ascii") + b"\r\n"
        self.data_commands = 0

    async def session(self, reader, writer):
        writer.write(b"220 stray.test ESMTP\r\n")
        rcpt = None
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                cmd = line.decode("latin-1").strip()
                verb = cmd[:4].upper()
                if verb in ("EHLO", "HELO"):
                    writer.write(b"250-stray.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
                elif verb == "MAIL":
                    rcpt = None
                    writer.write(b"250 2.1.0 ok\r\n")
                elif verb == "RCPT":
                    rcpt = cmd[cmd.find("<") + 1:cmd.rfind(">")]
                    writer.write(b"250 2.1.5 ok\r\n")
                elif verb == "DATA":
                    self.data_commands += 1
                    if self.data_commands % self.every == 0:
                        writer.write(b"354 go\r\n" + self.stray)
                        await writer.drain()
                    else:
                        writer.write(b"354 go\r\n")
                    await writer.drain()
                    while True:
                        body = await reader.readline()
                        if not body or body in (b".\r\n", b".\n"):
                            break
                    if not body:
                        break
                    self.log.write(json.dumps({"rcpt": rcpt}) + "\n")
                    writer.write(b"250 2.0.0 queued\r\n")
                elif verb == "RSET":
                    writer.write(b"250 ok\r\n")
                elif verb == "QUIT":
                    writer.write(b"221 bye\r\n")
                    await writer.drain()
                    break
                else:
                    writer.write(b"502 5.5.2 not implemented\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", required=True)
    ap.add_argument("--every", type=int, default=5)
    ap.add_argument("--stray", default="250 stray")
    args = ap.parse_args()
    peer = Peer(args.log, args.every, args.stray)
    server = await asyncio.start_server(peer.session, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(f"READY {port}", flush=True)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    threading.Thread(target=lambda: (sys.stdin.read(), loop.call_soon_threadsafe(done.set)), daemon=True).start()
    async with server:
        await done.wait()


if __name__ == "__main__":
    asyncio.run(main())
