// Transactional streams (SPEC §8): the directories under `streams/`, each a
// campaign directory with kind = "transactional", turned into messages one
// request at a time.
//
// Policy:
// - a stream sends only content whose hash is linted clean and approved
//   (`blindcast lint` / `approve` on its directory, which record in the
//   stream's own store); its content is read again when its files change,
//   and until the new content is linted and approved every request is held
//   (HTTP 409 naming the stream);
// - a request's fields are the stream's samples.csv columns: every column
//   but email and locale must be given in `data` (and nothing else), values
//   are strings or numbers without control characters;
// - every message passes the privacy guard in strict mode before it is
//   accepted (422 when it refuses; nothing is stored or sent);
// - the stream's [dkim] and [unsubscribe] default to the server's.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "campaign/campaign.hpp"
#include "campaign/secrets.hpp"
#include "compose/guard_setup.hpp"
#include "compose/message_builder.hpp"
#include "delivery/providers.hpp"
#include "serve/server_config.hpp"
#include "util/error.hpp"

namespace blindcast::serve {

// A refusal to show the client: HTTP status, code, message, field.
struct ApiError {
  int status = 400;
  std::string code;
  std::string message;
  std::string field;
};

struct BuiltRequest {
  std::string stream;
  std::string recipient;     // normalised
  std::string locale;
  std::string lane;
  std::string envelope_from;
  std::string data;          // the exact bytes, guarded
  std::string content_hash;
  bool security = false;     // a security stream (unsubscribes do not stop it)
};

class Stream;

class StreamSet {
 public:
  // Loads every stream under `config.streams`; problems are logged and such
  // a stream refuses requests (409) until fixed.
  explicit StreamSet(const ServerConfig& config);
  ~StreamSet();
  StreamSet(const StreamSet&) = delete;
  StreamSet& operator=(const StreamSet&) = delete;

  // Reads streams whose files changed again (called about once a second).
  void refresh();
  // Builds and guards the message `request` asks for (the parsed JSON body).
  // `message_id` ("msg_...") goes into the VERP token with [bounces].
  std::expected<BuiltRequest, ApiError> build(const nlohmann::json& request, std::string_view message_id);
  // The streams' names with whether each may send now and why not.
  [[nodiscard]] std::vector<std::pair<std::string, std::string>> states();
  // The lane of `domain`.
  [[nodiscard]] std::string lane_for(const std::string& domain) const;
  // The key of unsubscribe tokens (server's [unsubscribe]), if any.
  [[nodiscard]] std::shared_ptr<const util::SealKey> unsubscribe_key() const { return m_unsubscribe_key; }
  // True when `scope` names a security stream.
  [[nodiscard]] bool is_security_stream(const std::string& scope);
  // Errors found at start that stop the service (an unreadable secret).
  [[nodiscard]] const std::vector<std::string>& fatal() const { return m_fatal; }

 private:
  std::shared_ptr<Stream> find(const std::string& name);
  void load(const std::filesystem::path& dir);

  const ServerConfig& m_config;
  delivery::LaneTable m_lanes;
  std::shared_ptr<const util::SealKey> m_unsubscribe_key;
  std::mutex m_mutex;
  std::map<std::string, std::shared_ptr<Stream>> m_streams;
  std::vector<std::string> m_fatal;
};

}  // namespace blindcast::serve
