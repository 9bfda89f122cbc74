#include "send/halt.hpp"

#include <nlohmann/json.hpp>

namespace blindcast::send {

namespace {
constexpr const char* k_key = "halt";
}

Result<std::optional<HaltState>> read_halt(store::StateStore& store) {
  auto raw = store.get_meta(k_key);
  if (!raw) return std::unexpected(raw.error());
  if (!*raw) return std::optional<HaltState>();
  const auto j = nlohmann::json::parse(**raw, nullptr, false);
  HaltState h;
  if (j.is_object()) {
    h.kind = j.value("kind", "operator");
    h.reason = j.value("reason", "");
    h.by = j.value("by", "");
    h.at = j.value("at", std::int64_t{0});
    h.content_hash = j.value("content_hash", "");
  } else {
    h.kind = "operator";
    h.reason = "unreadable halt record";
  }
  return std::optional<HaltState>(h);
}

Result<void> write_halt(store::StateStore& store, const HaltState& halt) {
  const nlohmann::json j{{"kind", halt.kind}, {"reason", halt.reason}, {"by", halt.by},
                         {"at", halt.at}, {"content_hash", halt.content_hash}};
  return store.set_meta(k_key, j.dump());
}

Result<void> clear_halt(store::StateStore& store) { return store.delete_meta(k_key); }

}  // namespace blindcast::send
