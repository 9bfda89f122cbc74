// `blindcast serve` (SPEC §8): one process per node that sends the
// transactional streams and runs the campaigns it is given, behind an HTTP
// API with named, scoped, network-bound keys.
//
// Threads: the HTTP server's pool (cpp-httplib; `[http] threads`, each
// request read under `[http] read_timeout`), the intake's writer (group
// commit), the transactional sender, a stage thread per running campaign,
// and the caller's thread, which waits for SIGTERM/SIGINT and does the
// housekeeping (keys every 250 ms, streams every second, idempotency keys
// hourly).
//
// Stopping (SIGTERM): the listener closes (no new requests), the intake
// answers what it holds, the transactional sender starts nothing new and
// lets what is on the wire finish (at most `drain_seconds`, 10 by default),
// running campaign stages stop as on a halt; the process exits 0.
#pragma once

#include <memory>

#include "serve/server_config.hpp"
#include "util/error.hpp"

namespace blindcast::serve {

// Runs the service until SIGTERM or SIGINT; an Error when it cannot start
// (exit code 2 for settings, 1 for the rest).
Result<void> run_service(const ServerConfig& config);

}  // namespace blindcast::serve
