"""PostgreSQL as the state store (SPEC §10), against a private cluster this
file starts (Debian's postgresql 15, pg_cluster.py): the whole campaign flow
with --state postgresql://..., a password only from a passfile, and several
senders of one campaign: every recipient once, a killed sender's work taken
over after its lease with its in-flight messages the only duplicates (and
reported), and `halt` stopping every sender within a second."""
import collections
import concurrent.futures
import json
import os
import re
import signal
import subprocess
import time

import pg_cluster
import realistic_audience
import support
from support import run
from test_bounces import DOMAIN, dsn

CLUSTER = None
LEASE = 10  # store/pg_store.hpp: k_lease


def setUpModule():
    global CLUSTER
    CLUSTER = pg_cluster.PgCluster()


def tearDownModule():
    if CLUSTER is not None:
        CLUSTER.close()


def wait_for(predicate, timeout=60.0, what="the condition"):
    return support.wait_for(predicate, timeout, what)


class Postgres(support.PeerCase):
    def setUp(self):
        super().setUp()
        self.uri = CLUSTER.uri
        os.makedirs(os.path.join(self.tmp, "secrets"))
        key = os.path.join(self.tmp, "secrets", "bounce.key")
        with open(key, "wb") as f:
            f.write(os.urandom(32))
        os.chmod(key, 0o600)

    def campaign(self, name, cid, rows, port, canary='{ size = "10%", min = 10, wait = "0s" }', extra=""):
        return support.realistic_campaign(
            os.path.join(self.tmp, name), rows, port, canary, cid,
            f'\n[bounces]\ndomain = "{DOMAIN}"\nsecret_file = "../secrets/bounce.key"\n' + extra)

    def status(self, d):
        return json.loads(run("status", d, "--state", self.uri, "--json", check=0).stdout)

    def test_a_password_in_the_uri_is_refused_and_never_printed(self):
        d = support.write_campaign(self.tmp, ["a@example.com"])
        out = run("status", d, "--state", "postgresql://mailer:Hunter2pw@127.0.0.1:1/db")
        self.assertEqual(out.returncode, 2, out.stderr)
        self.assertIn("passfile", out.stderr)
        self.assertNotIn("Hunter2pw", out.stdout + out.stderr)

    def test_the_whole_campaign_flow(self):
        relay_store = os.path.join(self.tmp, "messages")
        os.makedirs(relay_store)
        relay = self.peer("--store", relay_store)
        rows = realistic_audience.generate(150, seed=31)
        rows.append(("reject.me@example.org", "Rejected Person", "en"))
        d = self.campaign("a", "pg-flow", rows, relay.port)
        st = self.uri
        run("lint", d, "--state", st, check=0)
        self.assertEqual(run("send", d, "--stage", "full", "--state", st).returncode, 4, "gates are shared")
        run("send", d, "--stage", "test", "--state", st, check=0)
        run("send", d, "--stage", "canary", "--state", st, check=0)
        self.assertEqual(run("send", d, "--stage", "full", "--state", st).returncode, 4, "no approval yet")
        run("approve", d, "--by", "alice", "--state", st, check=0)
        # An operator's halt stops the full stage before it starts; release lifts it.
        run("halt", d, "--reason", "checking the numbers", "--state", st, check=0)
        self.assertEqual(run("send", d, "--stage", "full", "--state", st).returncode, 5)
        run("release", d, "--state", st, check=0)
        out = run("send", d, "--stage", "full", "--state", st)
        self.assertIn(out.returncode, (0, 1), out.stderr)
        messages = [m for m in relay.records("message") if not m["rcpt_tos"][0].startswith("ops@")]
        counts = collections.Counter(support.normalise(m["rcpt_tos"][0]) for m in messages)
        self.assertEqual(set(counts), {support.normalise(r[0]) for r in rows if not r[0].startswith("reject")})
        self.assertEqual(max(counts.values()), 1, "every recipient exactly once")
        s = self.status(d)
        self.assertEqual(s["states"]["sent"], len(rows) - 1)
        self.assertEqual(s["states"]["bounced"], 1)
        self.assertEqual(s["possible_duplicates"], 0)
        self.assertTrue(s["state_store"].startswith("postgresql://blindcast@127.0.0.1:"), s["state_store"])
        self.assertNotIn("passfile", json.dumps(s))
        # The audit log, approvals and halts live in the database.
        audit = CLUSTER.query("SELECT kind FROM audit WHERE campaign = 'pg-flow' ORDER BY id").split()
        for kind in ("import", "stage_test", "stage_start", "halt", "release", "stage_end"):
            self.assertIn(kind, audit)
        self.assertEqual(CLUSTER.query("SELECT by FROM approvals WHERE campaign = 'pg-flow'"), "alice")
        # The 5xx joined the organisation's list; an operator's suppression too.
        listed = json.loads(run("suppress", "list", d, "--state", st, "--json", "--show-addresses", check=0).stdout)
        self.assertIn("reject.me@example.org", {e["address"] for e in listed})
        extra = os.path.join(self.tmp, "suppress.txt")
        first = rows[0][0]
        with open(extra, "w") as f:
            f.write(first + "\n")
        run("suppress", "import", d, extra, "--reason", "asked by phone", "--state", st, check=0)
        # A hard bounce reported later, through the campaign's VERP token.
        tokens = {}
        for rec in relay.records("message"):
            m = re.match(r"^bounce\+([a-z2-7]+)@", rec["mail_from"])
            if m:
                tokens[rec["rcpt_tos"][0]] = m.group(1)
        victim = rows[5][0]
        inbox = os.path.join(self.tmp, "inbox")
        os.makedirs(inbox)
        with open(os.path.join(inbox, "dsn.eml"), "w", encoding="utf-8") as f:
            f.write(dsn(tokens[victim], victim))
        out = run("bounces", "ingest", inbox, "--state", st, "--json", check=0)
        self.assertEqual(json.loads(out.stdout.splitlines()[0])["outcome"], "suppressed", out.stdout)
        # The next campaign on the same database mails none of them.
        b_rows = [r for r in rows if r[0] in (first, victim, "reject.me@example.org")] + rows[10:14]
        b = self.campaign("b", "pg-next", b_rows, relay.port, '{ size = "100%", min = 7, wait = "0s" }')
        before = len(relay.records("message"))
        run("send", b, "--stage", "canary", "--state", st, check=0)
        got = {m["rcpt_tos"][0] for m in relay.records("message")[before:]}
        self.assertEqual(got, {r[0] for r in rows[10:14]})
        self.assertEqual(self.status(b)["states"]["suppressed"], 3)
        # Removing one from the list makes it due again for the campaign.
        run("suppress", "remove", b, first, "--state", st, check=0)
        self.assertEqual(self.status(b)["states"]["pending"], 1)
        # Each campaign keeps its own rows in the shared database.
        self.assertEqual(CLUSTER.query("SELECT COUNT(*) FROM recipients WHERE campaign = 'pg-next'"), str(len(b_rows)))
        # Every migration applied, each once (versions 1..N, the latest at least the flights'/slowdown's).
        count, latest = map(int, CLUSTER.query("SELECT COUNT(*), MAX(version) FROM schema_migrations").split("|"))
        self.assertEqual(count, latest)
        self.assertGreaterEqual(latest, 6)

    # ---- several senders of one campaign

    def senders_campaign(self, n, relay, cid):
        rows = [(f"member{i:05d}@example.com", "Member", "en") for i in range(n)]
        return self.campaign("many", cid, rows, relay.port), [r[0] for r in rows]

    def start(self, d, *extra):
        return subprocess.Popen([support.BINARY, "send", d, "--stage", "full", *support.FORCE, "--state", self.uri,
                                 *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def test_three_senders_send_everyone_exactly_once(self):
        relay = self.peer("--delay", "0.02")
        d, emails = self.senders_campaign(6000, relay, "pg-three")
        started = time.time()
        procs = [self.start(d) for _ in range(3)]
        outs = [p.communicate(timeout=300) for p in procs]
        elapsed = time.time() - started
        for p, (out, err) in zip(procs, outs):
            self.assertEqual(p.returncode, 0, out + err)
        counts = collections.Counter(m["rcpt_tos"][0] for m in relay.records("message"))
        self.assertEqual(set(counts), set(emails))
        self.assertEqual(max(counts.values()), 1, "every recipient exactly once")
        sent_by = [int(m.group(1).replace(",", "")) for out, _ in outs
                   for m in [re.search(r": ([\d,]+) sent this run", out)] if m]
        self.assertEqual(sum(sent_by), len(emails), outs)
        self.assertGreater(min(sent_by), 0, f"every sender took a share: {sent_by}")
        s = self.status(d)
        self.assertEqual(s["states"]["sent"], len(emails))
        self.assertEqual(s["possible_duplicates"], 0)
        print(f"three senders: {len(emails)} in {elapsed:.1f}s, shares {sent_by}")

    def test_a_killed_sender_is_taken_over_after_its_lease(self):
        relay = self.peer("--delay", "0.02")
        d, emails = self.senders_campaign(3000, relay, "pg-kill")
        procs = [self.start(d) for _ in range(3)]
        wait_for(lambda: len(relay.records("message")) >= 300, what="the senders to deliver")
        # The sender with the most messages in flight (its node id is host:pid:...).
        busiest = CLUSTER.query("SELECT node FROM flights WHERE campaign = 'pg-kill' "
                                "GROUP BY node ORDER BY SUM(cardinality(recipients)) DESC LIMIT 1")
        pid = int(busiest.split(":")[1]) if busiest else procs[0].pid
        victim = [p for p in procs if p.pid == pid][0]
        procs.remove(victim)
        procs.insert(0, victim)
        victim.send_signal(signal.SIGKILL)
        killed_at = time.time()
        victim.communicate()
        outs = [p.communicate(timeout=300) for p in procs[1:]]
        finished = time.time() - killed_at
        for p, (out, err) in zip(procs[1:], outs):
            self.assertEqual(p.returncode, 0, out + err)
        counts = collections.Counter(m["rcpt_tos"][0] for m in relay.records("message"))
        self.assertEqual(set(counts), set(emails), "nothing lost")
        duplicates = sum(n - 1 for n in counts.values())
        s = self.status(d)
        self.assertEqual(s["states"]["sent"], len(emails))
        # Only what the killed sender had in flight may arrive twice, and
        # status counts every one of them.
        self.assertLessEqual(duplicates, s["possible_duplicates"])
        self.assertGreater(s["possible_duplicates"], 0, "the killed sender had messages in flight")
        recovered = CLUSTER.query("SELECT detail FROM audit WHERE campaign = 'pg-kill' AND kind = 'recover'")
        self.assertIn("lease expired", recovered)
        self.assertIn(f":{victim.pid}:", recovered, "the report names the node that died")
        self.assertGreaterEqual(finished, LEASE - 1, "its work waited for its lease")
        print(f"kill -9 of one of three senders: the others finished {finished:.1f}s after it "
              f"(lease {LEASE}s); duplicates={duplicates} possible={s['possible_duplicates']}")

    def test_a_lane_of_30_per_second_holds_across_three_senders(self):
        relay = self.peer()
        rows = [(f"member{i:04d}@paced.example", "Member", "en") for i in range(600)]
        d = self.campaign("paced", "pg-paced", rows, relay.port,
                          extra='\n[shaping.paced]\ndomains = ["paced.example"]\nrate = "30/s"\n')
        started = time.time()
        procs = [self.start(d) for _ in range(3)]
        outs = [p.communicate(timeout=300) for p in procs]
        for p, (out, err) in zip(procs, outs):
            self.assertEqual(p.returncode, 0, out + err)
        times = sorted(m["t"] for m in relay.records("message"))
        self.assertEqual(len(times), len(rows))
        counts = collections.Counter(m["rcpt_tos"][0] for m in relay.records("message"))
        self.assertEqual(max(counts.values()), 1)
        sent_by = [int(m.group(1).replace(",", "")) for out, _ in outs
                   for m in [re.search(r": ([\d,]+) sent this run", out)] if m]
        self.assertGreaterEqual(sum(1 for n in sent_by if n > 0), 2, f"the senders shared the lane: {sent_by}")
        # Every 5 s window (sliding by 0.1 s) holds at most 30/s + 10%.
        worst = 0
        t = times[0]
        while t + 5 <= times[-1]:
            n = sum(1 for x in times if t <= x < t + 5)
            worst = max(worst, n)
            t += 0.1
        self.assertLessEqual(worst, 165, "the lane's rate held for the three senders together")
        span = times[-1] - times[0]
        self.assertGreaterEqual(span, (len(rows) - 165) / 30, "no faster than the lane's rate overall")
        print(f"30/s across three senders: {len(times)} in {span:.1f}s ({len(times) / span:.1f}/s), busiest 5 s "
              f"window {worst} (limit 165), shares {sent_by}, {time.time() - started:.1f}s in all")

    def test_a_lanes_connection_cap_holds_across_three_senders(self):
        relay = self.peer("--delay", "0.03")
        rows = realistic_audience.generate(900, seed=47)
        # Every ASCII domain of the audience goes to the capped lane (the
        # internationalised ones to the default lane, outside the count).
        domains = sorted({r[0].rsplit("@", 1)[1].lower() for r in rows if r[0].isascii()})
        lane = "\n[shaping.capped]\ndomains = [{}]\nrate = \"100/s\"\nconnections = 3\n".format(
            ", ".join(f'"{x}"' for x in domains))
        d = self.campaign("capped", "pg-capped", rows, relay.port, extra=lane)
        procs = [self.start(d) for _ in range(3)]
        outs = [p.communicate(timeout=300) for p in procs]
        for p, (out, err) in zip(procs, outs):
            self.assertEqual(p.returncode, 0, out + err)
        sent = [m["rcpt_tos"][0] for m in relay.records("message")]
        counts = collections.Counter(sent)
        self.assertEqual(max(counts.values()), 1)
        s = self.status(d)
        self.assertEqual(s["states"]["sent"], len(counts))
        self.assertEqual(s["states"]["pending"], 0)
        # A message is on a connection from its RCPT to the end of its DATA
        # (a connection carries one at a time): at most 3 at once, whichever
        # of the three senders started them.
        began = {r["address"]: r["t"] for r in relay.records("rcpt")}
        edges = []
        for m in relay.records("message"):
            if m["rcpt_tos"][0].rsplit("@", 1)[1].lower() in domains:
                edges += [(began[m["rcpt_tos"][0]], 1), (m["t"], -1)]
        at_once = worst = 0
        for _, step in sorted(edges, key=lambda e: (e[0], e[1])):
            at_once += step
            worst = max(worst, at_once)
        self.assertLessEqual(worst, 3, "the lane's connection cap held for the three senders together")
        self.assertEqual(worst, 3, "the cap was used")
        # The slots are shared: a sender that came first and took them all
        # gave them back as the others asked.
        sent_by = [int(m.group(1).replace(",", "")) for out, _ in outs
                   for m in [re.search(r": ([\d,]+) sent this run", out)] if m]
        self.assertEqual(sum(sent_by), len(counts))
        self.assertGreater(min(sent_by), len(counts) // 10, f"every sender had a share of the lane: {sent_by}")
        print(f"connections = 3 across three senders: at most {worst} messages on connections at once, "
              f"shares {sent_by}")

    def test_halt_stops_every_sender_within_a_second(self):
        relay = self.peer("--delay", "0.05")
        d, emails = self.senders_campaign(3000, relay, "pg-halt")
        procs = [self.start(d) for _ in range(3)]
        wait_for(lambda: len(relay.records("message")) >= 100, what="the senders to deliver")
        run("halt", d, "--reason", "wrong template", "--state", self.uri, check=0)
        halted_at = time.time()
        for p in procs:
            p.communicate(timeout=60)
            self.assertEqual(p.returncode, 5)
        # Sessions already on the wire finish their message: nothing starts later than a second after.
        late = [m for m in relay.records("message") if m["t"] > halted_at + 1.0 + 0.05 + 0.5]
        self.assertEqual(late, [], "a message started more than a second after the halt")
        self.assertLess(len(relay.records("message")), len(emails))
        print(f"halt: every sender stopped; {len(relay.records('message'))} of {len(emails)} sent")


    def test_a_restart_of_postgresql_mid_send_is_waited_out(self):
        relay = self.peer("--delay", "0.02")
        d, emails = self.senders_campaign(3000, relay, "pg-restart")
        procs = [self.start(d) for _ in range(2)]
        wait_for(lambda: len(relay.records("message")) >= 300, what="the senders to deliver")
        # A restart as an operator does one (fast: sessions are cut), and
        # the database away for longer than a lease.
        CLUSTER.stop("fast")
        stopped_at = time.time()
        at_stop = len(relay.records("message"))
        time.sleep(LEASE + 2)
        CLUSTER.start()
        outs = [p.communicate(timeout=300) for p in procs]
        for p, (out, err) in zip(procs, outs):
            self.assertEqual(p.returncode, 0, out + err)
            self.assertIn("unreachable", err, "the wait is said")
            self.assertIn("connected again", err)
        counts = collections.Counter(m["rcpt_tos"][0] for m in relay.records("message"))
        self.assertEqual(set(counts), set(emails), "nothing lost")
        self.assertEqual(max(counts.values()), 1, "nobody sent twice: both kept their leases")
        during = [m for m in relay.records("message") if stopped_at + 1 < m["t"] < stopped_at + LEASE]
        s = self.status(d)
        self.assertEqual(s["states"]["sent"], len(emails))
        self.assertEqual(s["possible_duplicates"], 0)
        self.assertEqual(CLUSTER.query("SELECT COUNT(*) FROM audit WHERE campaign = 'pg-restart' AND kind = 'recover'"),
                         "0", "no node was taken for dead")
        print(f"PostgreSQL stopped for {LEASE + 2}s after {at_stop} of {len(emails)} messages: both senders "
              f"waited and finished, each recipient once ({len(during)} delivered while it was away)")


class ServeOnPostgres(support.PeerCase):
    """Two `serve` nodes on one database: API keys, idempotency keys and the
    queue of transactional messages are shared."""

    def setUp(self):
        super().setUp()
        import test_serve
        self.ts = test_serve
        os.makedirs(os.path.join(self.tmp, "secrets"))
        test_serve.write(os.path.join(self.tmp, "secrets", "unsubscribe.key"),
                         "k3y-for-unsubscribe-tokens-0b5e9d1c77\n", 0o600)
        d = test_serve.make_stream(self.tmp, "password-reset", security=True)
        # The stream's approval lives in the shared database, under its id.
        run("lint", d, "--state", CLUSTER.uri, check=0)
        run("approve", d, "--by", "alice", "--state", CLUSTER.uri, check=0)
        self.relay = self.peer()
        self.nodes = []

    def tearDown(self):
        for n in self.nodes:
            n.stop(signal.SIGKILL)
        super().tearDown()

    def node(self, i):
        s = self.ts.Service(self.tmp, self.relay.port)
        with open(s.config) as f:
            text = f.read().replace('state = "state/blindcast.db"', f'state = "{CLUSTER.uri}"')
        s.config = os.path.join(self.tmp, f"node{i}.toml")
        self.ts.write(s.config, text)
        self.nodes.append(s)
        return s.start()

    def test_two_nodes_share_keys_idempotency_and_the_queue(self):
        a = self.node(1)
        b = self.node(2)
        sender = a.key("auth-service", "send")  # created through node 1's config, used on both
        status, first, _ = b.send(sender, "zoe@example.com")
        self.assertEqual(status, 202, first)
        b.wait_status(sender, first["id"], "sent")
        _, seen, _ = a.request("GET", f"/v1/messages/{first['id']}", key=sender)
        self.assertEqual(seen["status"], "sent", "every node sees every message")
        # The same Idempotency-Key sent to both nodes at once: one message.
        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(lambda i: (a if i % 2 else b).send(sender, "retry@example.com", idem="reset-9"),
                                    range(20)))
        self.assertEqual({x[0] for x in answers}, {202}, answers)
        ids = {x[1]["id"] for x in answers}
        self.assertEqual(len(ids), 1, answers)
        a.wait_status(sender, ids.pop(), "sent")
        status, clash, _ = b.send(sender, "someone-else@example.com", idem="reset-9")
        self.assertEqual((status, clash["error"]["code"]), (409, "idempotency_conflict"), clash)
        # Many messages through both nodes: each delivered once.
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            sent = list(pool.map(lambda i: (a if i % 2 else b).send(sender, f"user{i:03d}@example.org"), range(60)))
        for st, body, _ in sent:
            self.assertEqual(st, 202, body)
        for st, body, _ in sent:
            a.wait_status(sender, body["id"], "sent")
        counts = collections.Counter(m["rcpt_tos"][0] for m in self.relay.records("message"))
        self.assertEqual(counts["retry@example.com"], 1)
        for i in range(60):
            self.assertEqual(counts[f"user{i:03d}@example.org"], 1)
        # Revoked on one node, refused by the other.
        run("keys", "revoke", "auth-service", "--config", b.config, check=0)
        time.sleep(1.5)
        status, _, _ = a.send(sender, "late@example.com")
        self.assertEqual(status, 401)

    def test_transactional_sending_rides_out_a_restart_of_postgresql(self):
        # The relay takes 2 s over each message: one is on the wire while
        # the database is away, and its outcome waits to be recorded.
        self.relay = self.peer("--delay", "2")
        a = self.node(1)
        sender = a.key("auth-restart", "send")  # (the database is the module's: a name of its own)
        status, before, _ = a.send(sender, "before@example.com")
        self.assertEqual(status, 202, before)
        time.sleep(0.5)
        CLUSTER.stop("fast")
        try:
            time.sleep(3)
            status, health, _ = a.request("GET", "/healthz")
            self.assertEqual(status, 503, health)
        finally:
            CLUSTER.start()
        # Back: what was on the wire is recorded once, and new mail goes out.
        a.wait_status(sender, before["id"], "sent", timeout=40)
        status, after, _ = a.send(sender, "after@example.com")
        self.assertEqual(status, 202, after)
        a.wait_status(sender, after["id"], "sent", timeout=30)
        deadline = time.time() + 10
        while a.request("GET", "/healthz")[0] != 200 and time.time() < deadline:
            time.sleep(0.2)
        self.assertEqual(a.request("GET", "/healthz")[0], 200)
        counts = collections.Counter(m["rcpt_tos"][0] for m in self.relay.records("message"))
        self.assertEqual(counts["before@example.com"], 1)
        self.assertEqual(counts["after@example.com"], 1)
        with open(a.log) as f:
            log = f.read()
        self.assertIn("transactional sending pauses", log)
        self.assertIn("transactional sending resumes", log)


if __name__ == "__main__":
    support.main()
