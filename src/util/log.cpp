#include "util/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace blindcast::util {

namespace {
std::atomic<LogFormat> g_format{LogFormat::k_text};
std::atomic<LogLevel> g_level{LogLevel::k_info};
std::mutex g_mutex;

const char* level_name(LogLevel level) {
  switch (level) {
    case LogLevel::k_debug: return "debug";
    case LogLevel::k_info: return "info";
    case LogLevel::k_warn: return "warn";
    case LogLevel::k_error: return "error";
  }
  return "info";
}
}  // namespace

void set_log_format(LogFormat format) { g_format = format; }
void set_log_level(LogLevel level) { g_level = level; }

bool log_is_json() { return g_format.load() == LogFormat::k_json; }

void log(LogLevel level, std::string_view message) { log_fields(level, message, nlohmann::json::object()); }

void log_fields(LogLevel level, std::string_view message, const nlohmann::json& fields) {
  if (level < g_level.load()) return;
  const auto now = std::chrono::time_point_cast<std::chrono::milliseconds>(
      std::chrono::system_clock::now());
  std::string line;
  if (g_format.load() == LogFormat::k_json) {
    nlohmann::json j{{"time", fmt::format("{:%FT%T}Z", now)},
                     {"level", level_name(level)},
                     {"msg", std::string(message)}};
    if (fields.is_object()) {
      for (const auto& [k, v] : fields.items()) {
        if (!j.contains(k)) j[k] = v;
      }
    }
    line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  } else {
    line = fmt::format("{:%FT%T}Z {} {}\n", now, level_name(level), message);
  }
  std::lock_guard lock(g_mutex);
  std::fputs(line.c_str(), stderr);
}

}  // namespace blindcast::util
