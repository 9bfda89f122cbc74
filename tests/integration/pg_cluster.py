"""A private PostgreSQL 15 cluster for tests (Debian's `postgresql` package).

`PgCluster()` runs `initdb` in a temporary directory as an unprivileged user
(tests may run as root; PostgreSQL refuses to), starts the server on a free
port of 127.0.0.1 with its unix socket inside that directory, creates a role
with a password and a database, and writes the password to a 0600 passfile
owned by the user running the tests. `uri` is what `--state` takes;
`stop()` stops the server and removes everything.

Run as a program it starts a cluster, prints `URI <uri>` and waits for its
standard input to close (ctest uses it through `run_with_cluster`).
"""
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time

BIN = "/usr/lib/postgresql/15/bin"


def available():
    return os.path.exists(os.path.join(BIN, "initdb"))


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgCluster:
    def __init__(self, db="blindcast", user="blindcast"):
        if not available():
            raise RuntimeError(f"PostgreSQL 15 is not installed ({BIN}); run scripts/install-deps.sh test")
        self.root = tempfile.mkdtemp(prefix="blindcast-pg-")
        self.data = os.path.join(self.root, "data")
        self.sockets = os.path.join(self.root, "sockets")
        self.port = _free_port()
        self.db = db
        self.user = user
        self.password = secrets.token_hex(16)
        self._as = []  # how to run a PostgreSQL program as the cluster's owner
        if os.geteuid() == 0:
            owner = pwd.getpwnam("nobody")
            os.chmod(self.root, 0o755)
            os.makedirs(self.sockets)
            os.chown(self.sockets, owner.pw_uid, owner.pw_gid)
            os.makedirs(self.data, mode=0o700)
            os.chown(self.data, owner.pw_uid, owner.pw_gid)
            self._as = ["setpriv", f"--reuid={owner.pw_uid}", f"--regid={owner.pw_gid}", "--clear-groups", "--"]
        else:
            os.makedirs(self.sockets)
        pwfile = os.path.join(self.root, "initdb-password")
        with open(pwfile, "w") as f:
            f.write("postgres-superuser-" + secrets.token_hex(8) + "\n")
        if self._as:
            os.chown(pwfile, pwd.getpwnam("nobody").pw_uid, -1)
        self._run([os.path.join(BIN, "initdb"), "-D", self.data, "-U", "postgres", "-A", "scram-sha-256",
                   "--pwfile", pwfile, "-E", "UTF8", "--locale", "C.UTF-8", "--no-sync"])
        os.remove(pwfile)
        # Local socket connections of the superuser are trusted (set-up only);
        # everything over TCP needs the password.
        with open(os.path.join(self.data, "pg_hba.conf"), "w") as f:
            f.write("local all postgres trust\nhost all all 127.0.0.1/32 scram-sha-256\n")
        self.log = os.path.join(self.root, "server.log")
        if self._as:
            open(self.log, "w").close()
            os.chown(self.log, pwd.getpwnam("nobody").pw_uid, -1)
        self.start()
        self.psql(f"CREATE ROLE {user} LOGIN PASSWORD '{self.password}'")
        self.psql(f"CREATE DATABASE {db} OWNER {user}")
        self.passfile = os.path.join(self.root, "pgpass")
        fd = os.open(self.passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"127.0.0.1:{self.port}:{db}:{user}:{self.password}\n")
        self.uri = f"postgresql://{user}@127.0.0.1:{self.port}/{db}?passfile={self.passfile}&sslmode=disable"

    def _run(self, args, **kw):
        return subprocess.run(self._as + args, check=True, capture_output=True, text=True, **kw)

    def start(self):
        self._run([os.path.join(BIN, "pg_ctl"), "-D", self.data, "-l", self.log, "-w", "-t", "60",
                   "-o", f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.sockets} -c fsync=off "
                         f"-c max_connections=200 -c shared_buffers=32MB", "start"])

    def stop(self, mode="fast"):
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            subprocess.run(self._as + [os.path.join(BIN, "pg_ctl"), "-D", self.data, "-m", mode, "-w", "stop"],
                           capture_output=True, text=True)

    def psql(self, sql, db="postgres"):
        """Runs `sql` as the superuser over the unix socket; returns stdout."""
        out = self._run([os.path.join(BIN, "psql"), "-h", self.sockets, "-p", str(self.port), "-U", "postgres",
                         "-d", db, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
        return out.stdout.strip()

    def query(self, sql):
        """Runs `sql` in the test database; returns stdout (rows as a|b lines)."""
        return self.psql(sql, db=self.db)

    def close(self):
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def run_with_cluster(argv):
    """Starts a cluster, runs `argv` with BLINDCAST_TEST_PG_URI set, stops it; returns argv's exit code."""
    cluster = PgCluster()
    try:
        env = dict(os.environ, BLINDCAST_TEST_PG_URI=cluster.uri)
        return subprocess.run(argv, env=env).returncode
    finally:
        cluster.close()


if __name__ == "__main__":
    if len(sys.argv) > 1:
        sys.exit(run_with_cluster(sys.argv[1:]))
    c = PgCluster()
    try:
        print("URI", c.uri, flush=True)
        sys.stdin.read()
    finally:
        c.close()
