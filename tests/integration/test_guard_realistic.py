"""The privacy guard on a realistic audience of 100,000: every message shows the
recipient's own address and name, and nobody else's, so there must be no
violation at all - in particular none from suffix pairs (john.smith@x and
smith@x, anna+news@x and news@x, maria@yahoo.com and maria@yahoo.com.br), case,
internationalized domains or names in any script. lint must be clean of guard
errors, and a full send to Postfix's smtp-sink must deliver all 100,000."""
import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import time

import realistic_audience
import support

N = int(os.environ.get("BLINDCAST_REALISTIC_N", "100000"))
# A sink is no mailbox provider: open every built-in lane (README "Provider lanes").
UNSHAPED = "".join(f'\n[shaping.{lane}]\nrate = "1000000/s"\nburst = 100000\nconnections = 20\n'
                   for lane in ("google", "yahoo", "microsoft", "apple", "netease", "tencent"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_sink(log):
    sink = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    port = free_port()
    args = [sink, *(["-u", "nobody"] if os.geteuid() == 0 else []), f"127.0.0.1:{port}", "1024"]
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"smtp-sink exited {proc.returncode} at start: {' '.join(args)}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("smtp-sink did not start listening")


def suffix_partners(emails):
    """For each address, the other audience addresses written inside it: its local
    part from a '.', '_', '-' or '+' on, and/or its domain up to a dot
    (bob+news@yahoo.com.br holds news@yahoo.com.br, bob+news@yahoo.com, news@yahoo.com)."""
    by_lower = {e.lower() for e in emails}
    out = {}
    for e in emails:
        local, _, domain = e.lower().rpartition("@")
        locals_ = [local] + [local[i + 1:] for i, c in enumerate(local) if c in "._-+"]
        labels = domain.split(".")
        domains = [".".join(labels[:k]) for k in range(2, len(labels) + 1)]
        hits = [lp + "@" + dp for lp in locals_ for dp in domains
                if (lp, dp) != (local, domain) and lp + "@" + dp in by_lower]
        if hits:
            out[e] = hits
    return out


class GuardRealistic(support.Case):
    def make(self, rows):
        d = os.path.join(self.tmp, "c")
        support.run("init", d, check=0)
        with open(os.path.join(d, "audience.csv"), "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["email", "name", "locale", "assets", "effective_date", "ticket"])
            for email, name, locale in rows:
                w.writerow([email, name, locale, "1", "2026-12-01", ""])
        t = os.path.join(d, "templates")
        with open(os.path.join(t, "body.txt"), "a", encoding="utf-8") as f:
            f.write("\nYour account: {{name}} <{{email}}>\n")
        with open(os.path.join(t, "body.html"), encoding="utf-8") as f:
            body = f.read()
        self.assertEqual(body.count("</body>"), 1)
        with open(os.path.join(t, "body.html"), "w", encoding="utf-8") as f:
            f.write(body.replace("</body>", "<p>Your account: {{name}} &lt;<a href=\"mailto:{{email}}\">{{email}}</a>&gt;</p>\n</body>"))
        with open(os.path.join(d, "campaign.toml"), "a", encoding="utf-8") as f:
            f.write(UNSHAPED)
        return d

    def test_realistic_audience_has_no_false_positives(self):
        start = time.monotonic()
        rows = realistic_audience.generate(N, seed=1)
        self.assertEqual(len(rows), N)
        self.assertEqual(len({e.lower() for e, _, _ in rows}), N)
        emails = [e for e, _, _ in rows]
        partners = suffix_partners(emails)
        d = self.make(rows)
        t_gen = time.monotonic() - start
        problems = []

        t0 = time.monotonic()
        lint = support.run("lint", d, "--json", timeout=900)
        t_lint = time.monotonic() - t0
        try:
            report = json.loads(lint.stdout)
        except ValueError:
            report = {}
            problems.append(f"lint --json printed no JSON (exit {lint.returncode}): {lint.stderr[-500:]}")
        if lint.returncode != 0:
            problems.append(f"lint exited {lint.returncode}")
        for key, want in (("recipients", N), ("rendered", N), ("rejected", 0), ("duplicates", 0),
                          ("guard_violations", 0), ("errors", 0)):
            if report and report.get(key) != want:
                problems.append(f"lint: {key} = {report.get(key)}, want {want}")
        flagged = [f for f in report.get("findings", []) if f.get("severity") == "error"]
        if flagged:
            lines = [f["line"] for f in flagged if f.get("file") == "audience.csv" and f.get("line", 0) >= 2]
            rows_flagged = [emails[n - 2] for n in lines if n - 2 < N]
            paired = [e for e in rows_flagged if e in partners]
            problems.append(f"lint: {len(flagged)} errors; {len(rows_flagged)} name audience rows, of which "
                            f"{len(paired)} are the longer member of a suffix pair; first ones: " +
                            "; ".join(f"line {n} {emails[n - 2]} ({f['message']})"
                                      for n, f in zip(lines[:8], flagged[:8]) if n - 2 < N))

        with open(os.path.join(self.tmp, "sink.log"), "w") as log:
            sink, port = start_sink(log)
            try:
                t0 = time.monotonic()
                send = support.run("send", d, "--stage", "full", "--force", "--reason", "test",
                                   "--transport", f"smtp://127.0.0.1:{port}", timeout=1800)
                t_send = time.monotonic() - t0
            finally:
                sink.terminate()
                sink.wait(timeout=10)
        if send.returncode != 0:
            problems.append(f"send exited {send.returncode}: " + " | ".join(send.stderr.strip().splitlines()[-2:]))
        st = support.status(d)
        states = st.get("states", {})
        if states.get("sent") != N or st.get("total") != N:
            problems.append(f"status: {states.get('sent')} sent of {st.get('total')}, want {N} of {N} ({states})")
        if st.get("halted"):
            problems.append(f"halted: {st['halted']}")
        if st.get("rejected_rows"):
            problems.append(f"{len(st['rejected_rows'])} rows rejected: {st['rejected_rows'][:3]}")
        violations = [e for e in st.get("audit", []) if e.get("kind") == "guard_violation"]
        if violations:
            problems.append(f"{len(violations)} guard violations in the audit log: {violations[:3]}")

        total = time.monotonic() - start
        print(f"\n{N} recipients ({len(partners)} hold another recipient's address as a suffix or prefix): "
              f"generate+write {t_gen:.1f}s, lint {t_lint:.1f}s, send {t_send:.1f}s "
              f"({N / max(t_send, 1e-9):,.0f} msg/s), total {total:.1f}s", file=sys.stderr)
        self.assertEqual(problems, [], "\n" + "\n".join(problems))


if __name__ == "__main__":
    support.main()
