#!/usr/bin/env bash
# Start/stop a private Postfix instance used as a relay peer for benchmarks.
#
# Usage: bench/postfix_relay.sh start DIR LISTEN_PORT RELAY_PORT
#        bench/postfix_relay.sh stop DIR
#
# start: writes DIR/etc/{main.cf,master.cf}, uses DIR/queue as queue_directory,
#   DIR/data as data_directory (or /tmp/postfix-bench-data.XXXXXX when user
#   postfix cannot reach DIR, e.g. under a mode-700 mktemp -d parent; removed
#   again by stop) and DIR/maillog as its log, then runs
#   `postfix -c DIR/etc start`.  The instance accepts SMTP on
#   127.0.0.1:LISTEN_PORT from 127.0.0.0/8 only, does no local delivery and no
#   DNS lookups, and relays everything to [127.0.0.1]:RELAY_PORT with up to 20
#   parallel connections (connection cache on), no TLS.  Waits until
#   LISTEN_PORT answers with a 220 greeting.  Any old queue in DIR is discarded.
# stop: `postfix -c DIR/etc stop`, then waits until the master process exits.
#
# Needs root (Postfix's master runs as root and drops to the "postfix" user).
# Never touches /etc/postfix or the system instance: Postfix only requires
# alternate_config_directories (in the default main.cf) for its set-gid
# commands (postdrop/postqueue run by non-root users); `postfix -c` run by root
# and the daemons it starts do not need it.
set -euo pipefail

MARKER="# blindcast bench postfix_relay.sh instance"
prog=${0##*/}
die() { echo "$prog: error: $*" >&2; exit 1; }
usage() {
  echo "usage: $prog start DIR LISTEN_PORT RELAY_PORT" >&2
  echo "       $prog stop DIR" >&2
  exit 2
}

need_tools() {
  [ "$(id -u)" = 0 ] || die "must run as root (Postfix's master daemon needs root); try sudo"
  local t
  for t in postfix postconf; do
    command -v "$t" >/dev/null 2>&1 || [ -x "/usr/sbin/$t" ] || die "'$t' not found; install Postfix"
  done
  export PATH="$PATH:/usr/sbin:/sbin"
  id postfix >/dev/null 2>&1 || die "user 'postfix' does not exist (is Postfix installed?)"
  getent group postdrop >/dev/null 2>&1 || die "group 'postdrop' does not exist (is Postfix installed?)"
}

# Runs a command as the postfix user (to test path access).
as_postfix() {
  if command -v setpriv >/dev/null 2>&1; then
    setpriv --reuid=postfix --regid=postfix --clear-groups -- "$@"
  else
    runuser -u postfix -- "$@"
  fi
}

# Removes a data_directory that an earlier start made outside DIR.
remove_external_data() {
  local d
  d=$(postconf -c "$1/etc" -h data_directory 2>/dev/null) || return 0
  case "$d" in
    /tmp/postfix-bench-data.*) [ -d "$d" ] && rm -rf -- "$d" ;;
  esac
  return 0
}

is_port() { [[ $1 =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] && [ "$1" -le 65535 ]; }

# Prints the master pid if this instance's master is alive.
master_pid() {
  local f="$1/queue/pid/master.pid" pid
  [ -r "$f" ] || return 1
  pid=$(tr -dc '0-9' <"$f")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  grep -qa master "/proc/$pid/cmdline" 2>/dev/null || return 1
  echo "$pid"
}

# Succeeds when something on 127.0.0.1:$1 sends an SMTP 220 greeting.
smtp_answers() {
  local line
  (
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    IFS= read -r -t 2 line <&3 || exit 1
    printf 'QUIT\r\n' >&3
    [[ $line == 220* ]]
  ) 2>/dev/null
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

write_master_cf() {
  local etc=$1
  if [ -r /etc/postfix/master.cf ]; then
    cp /etc/postfix/master.cf "$etc/master.cf"
  else
    cat >"$etc/master.cf" <<'EOF'
# service type  private unpriv  chroot  wakeup  maxproc command + args
smtp      inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
  fi
}

cmd_start() {
  [ $# = 3 ] || usage
  local dir=$1 listen=$2 relay=$3
  is_port "$listen" || die "bad LISTEN_PORT '$listen'"
  is_port "$relay" || die "bad RELAY_PORT '$relay'"
  [ "$listen" != "$relay" ] || die "LISTEN_PORT and RELAY_PORT must differ"
  need_tools
  mkdir -p "$dir" || die "cannot create $dir"
  dir=$(cd "$dir" && pwd -P)
  [ "$dir" != / ] || die "DIR must not be /"
  case "$dir" in *[[:space:],]*) die "DIR must not contain spaces or commas: $dir";; esac
  local etc=$dir/etc
  if [ -n "$(ls -A "$dir")" ] && ! grep -qxF "$MARKER" "$etc/main.cf" 2>/dev/null; then
    die "$dir is not empty and was not set up by $prog; use an empty or new directory"
  fi
  if pid=$(master_pid "$dir"); then
    die "an instance is already running in $dir (master pid $pid); run: $prog stop $dir"
  fi
  port_in_use "$listen" && die "127.0.0.1:$listen is already in use"

  # Fresh config and queue every time (the directory is ours).
  remove_external_data "$dir"
  rm -rf "$etc" "$dir/queue" "$dir/data" "$dir/maillog"
  mkdir -p "$etc" "$dir/queue" "$dir/data"
  chmod 755 "$dir" "$etc" "$dir/queue"
  : >"$dir/maillog"
  # Postfix opens data_directory/master.lock as user postfix by absolute path,
  # so it must be reachable by that user.  When a parent of DIR is private
  # (e.g. made by mktemp -d, mode 700) use a private directory under /tmp.
  local data=$dir/data
  if ! as_postfix test -x "$dir/data/."; then
    rmdir "$dir/data"
    data=$(mktemp -d /tmp/postfix-bench-data.XXXXXX) || die "mktemp failed"
    chmod 755 "$data"
  fi
  chown postfix "$data"

  cat >"$etc/main.cf" <<EOF
$MARKER
# Written by bench/postfix_relay.sh; recreated at every start.
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $data
mail_owner = postfix
setgid_group = postdrop
maillog_file = $dir/maillog
maillog_file_prefixes = $dir
syslog_name = postfix-bench
myhostname = bench-relay.localdomain
mydomain = localdomain
myorigin = \$myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
mynetworks_style = host
# no local delivery
mydestination =
local_recipient_maps =
local_transport = error:local delivery is disabled
alias_maps =
alias_database =
relay_domains =
# everything goes to the sink
relayhost = [127.0.0.1]:$relay
default_transport = smtp
# no DNS anywhere
smtp_host_lookup = native
lmtp_host_lookup = native
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
# about 20 parallel outbound connections, reused
default_destination_concurrency_limit = 20
smtp_destination_concurrency_limit = 20
initial_destination_concurrency = 20
smtp_connection_cache_on_demand = yes
# no TLS
smtpd_tls_security_level = none
smtp_tls_security_level = none
tls_random_source =
# misc
biff = no
smtputf8_enable = no
message_size_limit = 104857600
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = permit_mynetworks, reject
smtpd_client_restrictions =
# a full active queue for the one destination is expected here
qmgr_clog_warn_time = 0
EOF
  write_master_cf "$etc"
  # Our own smtpd listener instead of port 25; no chroot (queue is private).
  postconf -c "$etc" -M# smtp/inet 2>/dev/null || true
  postconf -c "$etc" -M "$listen/inet=$listen inet n - n - - smtpd" \
    || die "postconf could not write master.cf"
  postconf -c "$etc" -F '*/*/chroot = n' || die "postconf could not write master.cf"
  chmod 644 "$etc/main.cf" "$etc/master.cf"

  local out
  if ! out=$(postfix -c "$etc" start 2>&1); then
    echo "$out" >&2
    tail -n 20 "$dir/maillog" >&2 2>/dev/null || true
    die "postfix -c $etc start failed"
  fi
  local i
  for i in $(seq 1 200); do
    if smtp_answers "$listen"; then
      echo "postfix relay running: 127.0.0.1:$listen -> [127.0.0.1]:$relay (dir $dir, log $dir/maillog)"
      return 0
    fi
    sleep 0.1
  done
  tail -n 20 "$dir/maillog" >&2 2>/dev/null || true
  postfix -c "$etc" stop >/dev/null 2>&1 || true
  die "postfix started but 127.0.0.1:$listen did not answer within 20s"
}

cmd_stop() {
  [ $# = 1 ] || usage
  local dir=$1
  need_tools
  [ -d "$dir" ] || die "no such directory: $dir"
  dir=$(cd "$dir" && pwd -P)
  grep -qxF "$MARKER" "$dir/etc/main.cf" 2>/dev/null \
    || die "$dir/etc/main.cf was not written by $prog"
  local pid
  if ! pid=$(master_pid "$dir"); then
    remove_external_data "$dir"
    echo "postfix relay in $dir is not running"
    return 0
  fi
  postfix -c "$dir/etc" stop >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
  local i
  for i in $(seq 1 300); do
    if ! kill -0 "$pid" 2>/dev/null; then
      remove_external_data "$dir"
      echo "postfix relay in $dir stopped"
      return 0
    fi
    sleep 0.1
  done
  die "postfix master (pid $pid) did not exit within 30s"
}

case "${1:-}" in
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  *) usage ;;
esac
