#include "mail/composer.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <random>

#include <fmt/format.h>

#include "mail/encoding.hpp"

namespace blindcast::mail {

namespace {

void append_header(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out += ": ";
  out.append(value);
  out += "\r\n";
}

void append_part_body(std::string& out, std::string_view content_type, std::string_view body) {
  const std::string crlf = normalize_crlf(body);
  const TransferEncoding enc = choose_encoding(crlf);
  out += "Content-Type: ";
  out.append(content_type);
  out += "; charset=utf-8\r\nContent-Transfer-Encoding: ";
  out += encoding_name(enc);
  out += "\r\n\r\n";
  switch (enc) {
    case TransferEncoding::k_7bit:
      out += crlf;
      break;
    case TransferEncoding::k_quoted_printable:
      append_quoted_printable(out, crlf);
      break;
    case TransferEncoding::k_base64:
      append_base64_lines(out, crlf);
      return;  // base64 lines end with CRLF already
  }
  if (out.size() < 2 || out.compare(out.size() - 2, 2, "\r\n") != 0) out += "\r\n";
}

std::uint64_t random_seed() {
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}

std::string make_boundary() {
  static std::atomic<std::uint64_t> counter{random_seed()};
  // "=_" cannot occur in quoted-printable or base64 output (RFC 2045 §6.7 note).
  return fmt::format("=_bc_{:016x}", counter.fetch_add(0x9E3779B97F4A7C15ULL));
}

}  // namespace

std::string format_date(std::time_t t) {
  // Every message of a send formats the same few seconds: remember the last
  // one per thread (builders each have their own).
  thread_local std::time_t last_time = -1;
  thread_local std::string last_text;
  if (t == last_time) return last_text;
  static constexpr const char* k_days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* k_months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                             "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::tm tm{};
  gmtime_r(&t, &tm);
  last_text = fmt::format("{}, {:02} {} {} {:02}:{:02}:{:02} +0000", k_days[tm.tm_wday], tm.tm_mday,
                          k_months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  last_time = t;
  return last_text;
}

std::string make_message_id(std::string_view domain) {
  static const std::uint64_t k_process = random_seed();
  static std::atomic<std::uint64_t> counter{0};
  const auto now = std::chrono::duration_cast<std::chrono::microseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  return fmt::format("<{:x}.{:012x}.{:x}@{}>", now, k_process & 0xFFFFFFFFFFFFULL,
                     counter.fetch_add(1), domain);
}

std::string compose(const MessageSpec& spec) {
  std::string out;
  out.reserve(1024 + spec.text.size() * 2 + spec.html.size() * 2);
  append_header(out, "From", spec.from);
  out += "To: ";
  if (!spec.to_name.empty()) {
    append_display_name(out, spec.to_name);
    out += " <";
    out += spec.to_address;
    out += ">\r\n";
  } else {
    out += spec.to_address;
    out += "\r\n";
  }
  if (!spec.reply_to.empty()) append_header(out, "Reply-To", spec.reply_to);
  out += "Subject: ";
  append_unstructured(out, spec.subject, 7);
  out += "\r\n";
  append_header(out, "Date", format_date(spec.date));
  append_header(out, "Message-ID", spec.message_id);
  for (const auto& [name, value] : spec.extra_headers) append_header(out, name, value);
  out += "MIME-Version: 1.0\r\n";
  if (spec.html.empty()) {
    append_part_body(out, "text/plain", spec.text);
    return out;
  }
  const std::string boundary = spec.boundary.empty() ? make_boundary() : spec.boundary;
  out += "Content-Type: multipart/alternative; boundary=\"";
  out += boundary;
  out += "\"\r\n\r\n";
  // The CRLF before a delimiter belongs to the delimiter (RFC 2046 §5.1.1), so
  // each part gets one more to keep its own final line break.
  out += "--" + boundary + "\r\n";
  append_part_body(out, "text/plain", spec.text);
  out += "\r\n--" + boundary + "\r\n";
  append_part_body(out, "text/html", spec.html);
  out += "\r\n--" + boundary + "--\r\n";
  return out;
}

}  // namespace blindcast::mail
