// campaign.toml: the settings of one campaign (SPEC §1).
//
// Policy: every problem is a Diagnostic naming `campaign.toml`, the line and
// what to write instead; unknown keys are warnings (typos must not pass
// silently); inline secrets (`password`, `key`, `api_key`, ...) are errors
// because secrets are read only from files named by `*_file` keys (SPEC §6).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "delivery/providers.hpp"
#include "mail/mailbox.hpp"
#include "util/diagnostic.hpp"

namespace blindcast::campaign {

struct TransportSettings {
  std::string url;            // smtp://, smtps://, mx:, maildir:PATH
  std::string tls;            // "", "opportunistic", "required"
  std::string username;
  std::string password_file;  // relative to the campaign dir
  std::string ca_file;        // trust anchors for TLS verification
  int connections = 20;
  int messages_per_connection = 1000;
  int timeout_seconds = 0;    // 0: RFC 5321 defaults per phase
  std::string helo_name;
  // A send that has not had one message accepted for this long, while the
  // relay cannot be reached or refuses every connection, stops (exit 1).
  std::int64_t give_up_after_seconds = 300;
  // mx: (SPEC §11): the DNS server ("" the system's), the port of every MX
  // host, and connections per destination (one MX host set) at most.
  std::string resolver;
  int mx_port = 25;
  int connections_per_destination = 10;
  int mta_sts_port = 443;  // mx: the port of MTA-STS policy hosts (tests use others)
};

struct DeliverySettings {
  std::vector<std::int64_t> retry_seconds = {60, 300, 1800, 7200};  // the last step repeats
  std::int64_t max_retry_age_seconds = 3 * 86400;
  std::int64_t throttle_quiet_seconds = 60;  // quiet time before a throttled lane speeds up
};

struct CanarySettings {
  double size_fraction = 0.01;    // when size is a percentage
  std::int64_t size_count = 0;    // when size is a count (0 = use the fraction)
  std::int64_t min = 100;
  std::int64_t wait_seconds = 1800;
  double max_bounce_rate = 0.02;
  double max_deferral_rate = 0.20;
  double max_complaint_rate = 0.003;  // Gmail and Yahoo block senders above 0.3%
};

struct DkimSettings {
  std::string domain;
  std::vector<std::string> selectors;  // one per key (a DNS record holds one key)
  std::vector<std::string> key_files;  // one signature per key (RSA and/or Ed25519)
};

// [guard]: what strict mode lets appear, and the guard's own limits.
struct GuardSettings {
  bool strict = true;                    // every address must be own, reviewed or allowed
  std::vector<std::string> allow;        // address patterns that may appear ("*@example.com")
  std::vector<std::string> own_columns;  // audience columns holding the recipient's other addresses
  double max_rate = 0;                   // messages per second of a stage; 0: no limit
};

// [bounces] (SPEC §9): the VERP return path. With a domain, every message's
// envelope sender is bounce+TOKEN@domain, TOKEN sealed under the secret file's key.
struct BounceSettings {
  std::string domain;       // "bounces.example.com" (ASCII, lower case)
  std::string secret_file;  // relative to the campaign dir (or server.toml)
};

struct CampaignConfig {
  std::string id;
  // kind = "transactional": a stream sent by `serve` one message at a time
  // (SPEC §8); its samples.csv stands for the audience in lint and preview.
  bool transactional = false;
  // A security stream (password resets, withdrawal alerts): unsubscribes do
  // not stop it; hard bounces and complaints do.
  bool security = false;
  std::string from_text;            // as written
  mail::Mailbox from;
  std::optional<mail::Mailbox> reply_to;
  std::string default_locale = "en";
  // Mustache templates of List-Unsubscribe URLs: none, one, or an https and a
  // mailto URL. They render as one template, joined by a line feed (which no
  // rendered value may hold), and the builder splits them again.
  std::vector<std::string> list_unsubscribe;
  std::string unsubscribe_secret_file;  // HMAC key for {{unsubscribe_token}}
  std::optional<BounceSettings> bounces;  // [bounces]; none: the envelope sender is the From address
  TransportSettings transport;
  DeliverySettings delivery;
  std::optional<DkimSettings> dkim;
  std::vector<std::string> test_addresses;
  CanarySettings canary;
  std::int64_t approvals_required = 1;
  std::vector<delivery::LaneDefaults> shaping;  // [shaping.<lane>] overrides
  GuardSettings guard;
};

// Parses `dir`/campaign.toml; returns nullopt when it cannot be used at all.
std::optional<CampaignConfig> load_config(const std::filesystem::path& dir,
                                          util::Diagnostics& diags);

}  // namespace blindcast::campaign
