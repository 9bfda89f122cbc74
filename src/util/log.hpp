// Process log on stderr, as text or one JSON object per line.
//
// Policy: callers pass messages that are already safe to show (addresses
// masked, no secrets); the logger adds time and level and never reads the
// environment. Thread-safe.
#pragma once

#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace blindcast::util {

enum class LogFormat { k_text, k_json };
enum class LogLevel { k_debug, k_info, k_warn, k_error };

// Sets the output format for every later log line.
void set_log_format(LogFormat format);
// Sets the lowest level that is printed.
void set_log_level(LogLevel level);
// Writes `message` at `level`.
void log(LogLevel level, std::string_view message);
// Writes `message` at `level`; in the JSON format `fields` (an object) are
// members of the line, beside time, level and msg.
void log_fields(LogLevel level, std::string_view message, const nlohmann::json& fields);
// True when lines are JSON objects.
bool log_is_json();

inline void log_info(std::string_view m) { log(LogLevel::k_info, m); }
inline void log_warn(std::string_view m) { log(LogLevel::k_warn, m); }
inline void log_error(std::string_view m) { log(LogLevel::k_error, m); }

}  // namespace blindcast::util
