// server.toml: the settings of `blindcast serve` (SPEC §8).
//
// Policy: as campaign.toml — unknown keys are errors naming the nearest known
// one, secrets only from `*_file` settings, every problem a Diagnostic with
// the file and line. Paths are relative to the file. The HTTP listener is on
// loopback unless written otherwise; a listener on another address without
// TLS (tls_cert_file, tls_key_file) is refused unless `insecure_http = true`.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "campaign/config.hpp"
#include "delivery/yield_controller.hpp"
#include "util/diagnostic.hpp"

namespace blindcast::serve {

struct IntakeSettings {
  std::size_t max_body_bytes = 64 * 1024;  // a larger request body is 413
  double rate = 10000;                     // accepted messages per second on this node (429 beyond)
  double burst = 2000;
  std::int64_t max_queued = 100000;        // unfinished messages at most (429 beyond)
};

// [bounces] (SPEC §9): the VERP domain and key every stream and served
// campaign uses, and the SMTP listener that receives bounces for the domain.
struct BounceListenerSettings {
  campaign::BounceSettings verp;           // domain, secret_file (absolute)
  std::string listen_host;                 // empty: no listener
  int listen_port = 0;
  std::size_t max_message_bytes = 10 * 1024 * 1024;  // a larger message is refused (552)
  double rate = 60;                        // messages per minute per client address (421 beyond)
  int max_connections = 50;                // sessions at once (421 beyond)
};

struct ServerConfig {
  std::filesystem::path file;              // server.toml
  std::filesystem::path base;              // its directory: relative paths start here
  std::string listen_host = "127.0.0.1";
  int listen_port = 8025;
  std::filesystem::path state;             // the service store: a SQLite file, or a postgresql:// URI (SPEC §10)
  std::filesystem::path node_dir;          // this node's own files (the SQLite file's directory, or base/state)
  std::vector<std::filesystem::path> campaigns;  // campaign directories (globs expanded)
  std::filesystem::path streams;           // streams/<name>/
  std::string public_url;                  // base of unsubscribe links
  std::filesystem::path tls_cert_file;
  std::filesystem::path tls_key_file;
  bool insecure_http = false;
  int http_threads = 16;                   // threads kept for connections
  int max_connections = 1000;              // connections served at once (a thread each; more wait)
  int read_timeout_seconds = 5;            // a client silent this long is dropped
  campaign::TransportSettings transport;
  bool has_transport = false;
  std::optional<campaign::DkimSettings> dkim;
  std::vector<delivery::LaneDefaults> shaping;
  std::filesystem::path unsubscribe_secret_file;
  std::optional<BounceListenerSettings> bounces;
  IntakeSettings intake;
  delivery::YieldSettings priority;        // [priority]: campaigns yield to transactional mail
  std::int64_t drain_seconds = 10;         // SIGTERM: messages on the wire get this long
};

// True when `host` is a loopback address (127.0.0.0/8, ::1, localhost).
bool is_loopback_host(const std::string& host);

// Reads `path`; nullopt when it cannot be used (findings in `diags`).
std::optional<ServerConfig> load_server_config(const std::filesystem::path& path, util::Diagnostics& diags);

}  // namespace blindcast::serve
