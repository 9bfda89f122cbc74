#include "bounce/mime_tree.hpp"

#include <gmime/gmime.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define BC_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BC_LSAN 1
#endif
#endif
#if BC_LSAN
#include <sanitizer/lsan_interface.h>
#endif

#include "bounce/text_scan.hpp"
#include "util/strings.hpp"

namespace blindcast::bounce {

namespace {

constexpr int k_max_depth = 24;
constexpr int k_max_headers = 400;

// A returned message (message/rfc822) is read as a leaf: GMime finds where
// it ends and no more, and this layer reads its header section itself (the
// To and the token are all it needs of it) unless its body may hold a report
// of its own (a forwarded bounce), which is then parsed like the top one.
// Parsing every returned copy into objects — its Received trail, its parts,
// its attachments — was about a sixth of GMime's own time over the bench's
// files (GMime alone parses them 1.2x as fast with the type a leaf), for
// nothing the layer reads. The registration is process-wide: this layer is
// the only one in blindcast that parses MIME with GMime (compose builds
// messages, it never parses them).
void init_gmime() {
  static std::once_flag once;
  std::call_once(once, [] {
    // GMime replaces the registration g_mime_init made without freeing it
    // (16 bytes, once a process): not a leak worth a fuzzer's report.
#if BC_LSAN
    __lsan_disable();
#endif
    g_mime_init();
    g_mime_object_register_type("message", "rfc822", GMIME_TYPE_PART);
#if BC_LSAN
    __lsan_enable();
#endif
  });
}

// Where to stop reading `raw`: at k_max_input, or before the Content-Type
// header that would make the `entities`-th entity (GMime's parser recurses
// per nested entity: a few MB of nested multiparts must not exhaust the
// stack). `entities` is what is left of k_max_entities for the whole report
// (returned messages parsed on their own count against it too); it is
// lowered by the entities read.
std::size_t reading_limit(std::string_view raw, std::size_t& entities) {
  const std::size_t limit = raw.size() < k_max_input ? raw.size() : k_max_input;
  constexpr std::string_view k_needle = "content-type:";
  std::size_t count = 0;
  // Line starts only: memchr finds them far faster than a byte loop.
  for (std::size_t i = 0; i + k_needle.size() <= limit;) {
    if ((raw[i] == 'C' || raw[i] == 'c') && util::iequals(raw.substr(i, k_needle.size()), k_needle) &&
        ++count >= entities) {
      entities = 0;
      return i;
    }
    const void* lf = std::memchr(raw.data() + i, '\n', limit - i);
    if (lf == nullptr) break;
    i = static_cast<std::size_t>(static_cast<const char*>(lf) - raw.data()) + 1;
  }
  entities -= count;
  return limit;
}

// glibc loads an iconv module when a converter for its charset opens and
// unloads it soon after the last one closes: GMime opens and closes one per
// non-UTF-8 text part and encoded word, so without a converter held open
// every such message paid a dlopen and a dlclose (~8% of the parse time over
// the bench's files).
// One converter per charset seen (at most k_max_held_charsets) stays open
// for the life of the process; it is never used, only held.
constexpr std::size_t k_max_held_charsets = 32;

void hold_converter(std::string_view charset) {
  // Never destroyed: the converters must stay reachable (and open) until
  // the process ends, after static destructors too.
  static std::mutex mutex;
  static auto* held = new std::map<std::string, iconv_t, std::less<>>();
  const std::lock_guard lock(mutex);
  if (held->size() >= k_max_held_charsets || held->contains(charset)) return;
  const std::string name(charset);
  held->emplace(name, g_mime_iconv_open("UTF-8", name.c_str()));
}

// The charsets of the RFC 2047 encoded words ("=?iso-8859-1?q?...?=") in
// `raw`: GMime decodes the message's headers while it parses them.
void hold_encoded_word_converters(std::string_view raw) {
  constexpr std::size_t k_max_charset = 40;
  for (std::size_t i = raw.find("=?"); i != std::string_view::npos; i = raw.find("=?", i + 2)) {
    std::size_t e = i + 2;
    while (e < raw.size() && e - i - 2 <= k_max_charset &&
           (std::isalnum(static_cast<unsigned char>(raw[e])) != 0 || raw[e] == '-' || raw[e] == '_' ||
            raw[e] == ':' || raw[e] == '.')) {
      ++e;
    }
    if (e == i + 2 || e >= raw.size() || e - i - 2 > k_max_charset || (raw[e] != '?' && raw[e] != '*')) continue;
    const std::string_view charset = raw.substr(i + 2, e - i - 2);
    if (!util::iequals(charset, "utf-8") && !util::iequals(charset, "us-ascii")) hold_converter(charset);
  }
}

// The headers this layer reads; the others (Received, DKIM-Signature, ...)
// are not decoded or copied (most of a report's header bytes). The report's
// own: its envelope, sender and subject; a returned message's: To (the
// complained-about recipient) and the token.
constexpr std::string_view k_report_headers[] = {
    "From", "To", "Cc", "Subject", "Sender", "Reply-To", "Return-Path", "Errors-To", "Delivered-To",
    "X-Original-To", "Envelope-To", "X-Envelope-To", "Auto-Submitted", "X-Autoreply", "X-Autorespond",
    "X-Autoresponder", "Precedence", "X-Precedence", "X-Failed-Recipients", "X-Blindcast-Token"};
constexpr std::string_view k_returned_headers[] = {"To", "X-Blindcast-Token"};

bool is_field_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) { return c > ' ' && c < 127 && c != ':'; });
}

bool is_mime_field(std::string_view name) {
  return (name.size() >= 8 && util::iequals(name.substr(0, 8), "content-")) || util::iequals(name, "mime-version");
}

// `text` without the blanks and line ends around it (GMime's unfolding
// keeps any other control byte).
std::string_view trim_blanks(std::string_view text) {
  const auto b = text.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  return text.substr(b, text.find_last_not_of(" \t\r\n") - b + 1);
}

bool is_wanted(std::span<const std::string_view> wanted, std::string_view name) {
  return std::any_of(wanted.begin(), wanted.end(), [&](std::string_view w) { return util::iequals(name, w); });
}

// A header field's value as this layer keeps it when it reads the header
// section itself: unfolded (a fold is one space, as parse_header_block
// joins lines), then, when it has RFC 2047 words or 8-bit bytes, decoded by
// GMime as GMime decodes a field it parses (encoded words to UTF-8, 8-bit
// text through its fallback charsets); cut at a NUL byte, where GMime's
// C string ends, and without a stray CR (GMime's unfolding drops them).
std::string decoded_value(std::string value) {
  if (const auto nul = value.find('\0'); nul != std::string::npos) value.resize(nul);
  std::erase(value, '\r');
  const bool eight_bit = std::any_of(value.begin(), value.end(), [](char c) { return (c & 0x80) != 0; });
  if (eight_bit || value.find("=?") != std::string::npos) {
    if (char* decoded = g_mime_utils_header_decode_text(nullptr, value.c_str())) {
      value = decoded;
      g_free(decoded);
    }
  }
  return text::sanitize_utf8(value);
}

// A message's header section, split by this layer (RFC 5322 2.2 field
// syntax and nothing more) so that GMime builds objects only for what it
// must read: the MIME fields. Most of a report's header fields are its
// Received, DKIM and ARC trail (two thirds of the fields over the bench's
// files), and GMime makes a GObject of every field and parses each address
// field into address objects; making and freeing those was the larger part
// of its parse. GMime still reads every MIME field, every entity and every
// encoding; the fields this layer reads (`wanted`, among the first
// k_max_headers) are unfolded and decoded as decoded_value says.
struct HeaderSection {
  bool plain = false;  // "name: value" lines ended by an empty line; else GMime reads it all as it is
  HeaderList report;   // the fields the layer reads, in their order
  std::vector<std::pair<std::size_t, std::size_t>> mime_fields;  // [begin, end) of each MIME field
  std::size_t end = 0;   // where the empty line ending the section starts
  std::size_t body = 0;  // where the body starts

  // The message's MIME entity, as GMime is to parse it: its MIME fields, the
  // empty line and the body, as written.
  [[nodiscard]] std::string mime_entity(std::string_view raw) const {
    std::string out;
    out.reserve(raw.size() - end + 1024);
    for (const auto& [b, e] : mime_fields) out.append(raw.substr(b, e - b));
    out.append(raw.substr(end));
    return out;
  }
};

HeaderSection split_header_section(std::string_view raw, std::span<const std::string_view> wanted) {
  HeaderSection top;
  auto& mime_fields = top.mime_fields;
  std::size_t i = 0;
  enum class Kept { none, mime, report } keeping = Kept::none;
  int fields = 0;
  while (true) {
    if (i >= raw.size()) return top;  // no empty line: all header
    const void* lf = std::memchr(raw.data() + i, '\n', raw.size() - i);
    if (lf == nullptr) return top;
    const std::size_t end = static_cast<std::size_t>(static_cast<const char*>(lf) - raw.data()) + 1;
    const std::string_view line = raw.substr(i, end - i);
    if (line == "\n" || line == "\r\n") break;
    if (line[0] == ' ' || line[0] == '\t') {
      if (i == 0) return top;
      if (keeping == Kept::mime) mime_fields.back().second = end;
      if (keeping == Kept::report && !trim_blanks(line).empty()) {
        top.report.back().second += ' ';
        top.report.back().second += trim_blanks(line);
      }
    } else {
      const std::size_t colon = line.find(':');
      if (colon == std::string_view::npos || !is_field_name(line.substr(0, colon))) return top;
      const std::string_view name = line.substr(0, colon);
      keeping = Kept::none;
      if (is_mime_field(name)) {
        keeping = Kept::mime;
        mime_fields.emplace_back(i, end);
      } else if (fields < k_max_headers && is_wanted(wanted, name)) {
        keeping = Kept::report;
        top.report.emplace_back(std::string(name), std::string(trim_blanks(line.substr(colon + 1))));
      }
      ++fields;
    }
    i = end;
  }
  top.plain = true;
  top.end = i;
  top.body = i + (raw[i] == '\r' ? 2 : 1);
  for (auto& [name, value] : top.report) value = decoded_value(std::move(value));
  return top;
}

// Every header when `wanted` is empty.
void copy_headers(GMimeObject* object, std::span<const std::string_view> wanted, HeaderList& out) {
  GMimeHeaderList* list = g_mime_object_get_header_list(object);
  if (list == nullptr) return;
  const int n = g_mime_header_list_get_count(list);
  for (int i = 0; i < n && i < k_max_headers; ++i) {
    GMimeHeader* h = g_mime_header_list_get_header_at(list, i);
    if (h == nullptr) continue;
    // The name first: get_value unfolds and decodes (most of the cost).
    const char* name = g_mime_header_get_name(h);
    if (name == nullptr) continue;
    const std::string_view n_view(name);
    if (!wanted.empty() &&
        std::none_of(wanted.begin(), wanted.end(), [&](std::string_view w) { return util::iequals(n_view, w); })) {
      continue;
    }
    const char* value = g_mime_header_get_value(h);
    out.emplace_back(text::sanitize_utf8(name), text::sanitize_utf8(value != nullptr ? value : ""));
  }
}

// A part's content, transfer-decoded, at most `cap` bytes. The parser's
// stream is a GMimeStreamMem over the input, and a part's content is a
// window on it: its bytes are read where they are and decoded with GMime's
// decoder (g_mime_encoding_step), with no stream or filter objects made.
// `through_streams` (and any other kind of stream) takes GMime's own way,
// g_mime_data_wrapper_write_to_stream (a preview reads that way: the fuzz
// target compares the two).
std::string content_bytes(GMimePart* part, bool through_streams, std::size_t cap = k_max_body) {
  GMimeDataWrapper* content = g_mime_part_get_content(part);
  if (content == nullptr) return {};
  GMimeStream* window = g_mime_data_wrapper_get_stream(content);
  GByteArray* buffer = window != nullptr && GMIME_IS_STREAM_MEM(window)
                           ? g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(window))
                           : nullptr;
  if (!through_streams && buffer != nullptr && window->bound_start >= 0 &&
      static_cast<guint64>(window->bound_start) <= buffer->len) {
    const auto start = static_cast<std::size_t>(window->bound_start);
    const std::size_t end = window->bound_end < 0 || static_cast<guint64>(window->bound_end) > buffer->len
                                ? buffer->len
                                : static_cast<std::size_t>(window->bound_end);
    const std::string_view raw(reinterpret_cast<const char*>(buffer->data) + start, end > start ? end - start : 0);
    const GMimeContentEncoding encoding = g_mime_data_wrapper_get_encoding(content);
    if (encoding != GMIME_CONTENT_ENCODING_BASE64 && encoding != GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE &&
        encoding != GMIME_CONTENT_ENCODING_UUENCODE) {
      return std::string(raw.substr(0, cap));
    }
    GMimeEncoding state;
    g_mime_encoding_init_decode(&state, encoding);
    std::string out(g_mime_encoding_outlen(&state, raw.size()) + 16, '\0');
    std::size_t n = g_mime_encoding_step(&state, raw.data(), raw.size(), out.data());
    n += g_mime_encoding_flush(&state, "", 0, out.data() + n);
    out.resize(std::min(n, cap));
    return out;
  }
  GMimeStream* mem = g_mime_stream_mem_new();
  g_mime_data_wrapper_write_to_stream(content, mem);
  GByteArray* bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
  std::string out;
  if (bytes != nullptr) {
    out = std::string(std::string_view(reinterpret_cast<const char*>(bytes->data), bytes->len).substr(0, cap));
  }
  g_object_unref(mem);
  return out;
}

// One read_mime call: whether every header is kept, and how many MIME
// entities may still be read (k_max_entities for the whole report).
struct Reading {
  bool all_headers = false;
  std::size_t entities = k_max_entities;
};

MimeNode from_message(GMimeMessage* message, int depth, Reading& r);
MimeNode parse_message(std::string_view raw, int depth, Reading& r);
MimeNode read_message(std::string_view raw, int depth, Reading& r);

// What in a returned message's body makes it worth reading whole: a report
// forwarded inside it (message_with_dsn), returned headers or a message of
// its own, or a token quoted in its text (find_token).
constexpr std::string_view k_report_marks[] = {"/report",           "delivery-status", "feedback-report",
                                               "rfc822-headers",    "global-headers",  "message/",
                                               "x-blindcast-token"};

MimeNode returned_message(std::string_view bytes, int depth, Reading& r) {
  // Its header section split as any message's (split_header_section): its
  // To and token read there. Read whole (as GMime reads the top message)
  // when its body may hold what find_token or message_with_dsn look for: a
  // report or returned headers of its own, a message inside it, or a token
  // quoted in its text — which a base64 or quoted-printable part hides from
  // a scan of the raw bytes, so one of those is read whole too unless the
  // header section gave the token (find_token then looks no further; the
  // encoding may be the copy's own, in its header section). Also when the
  // section is not plainly fields ended by an empty line: GMime then decides
  // where it ends.
  static const text::PhraseSet marks(k_report_marks);
  static constexpr std::string_view k_encodings[] = {"base64", "quoted-printable"};
  static const text::PhraseSet encodings(k_encodings);
  HeaderSection section = split_header_section(bytes, k_returned_headers);
  const std::string_view token = header_value(section.report, "X-Blindcast-Token");
  const bool token_field = !text::valid_token(token).empty();
  if (r.all_headers || !section.plain || marks.any_in_ignoring_case(bytes.substr(section.body)) ||
      (!token_field && encodings.any_in_ignoring_case(bytes))) {
    bytes = bytes.substr(0, reading_limit(bytes, r.entities));
    return read_message(bytes, depth, r);
  }
  MimeNode node;
  node.is_message = true;
  node.headers = std::move(section.report);
  return node;
}

MimeNode from_object(GMimeObject* object, int depth, Reading& r) {
  MimeNode node;
  if (GMimeContentType* ct = g_mime_object_get_content_type(object)) {
    const char* media = g_mime_content_type_get_media_type(ct);
    const char* sub = g_mime_content_type_get_media_subtype(ct);
    node.type = util::to_lower_ascii(media != nullptr ? media : "");
    node.type += '/';
    node.type += util::to_lower_ascii(sub != nullptr ? sub : "");
    if (const char* rt = g_mime_content_type_get_parameter(ct, "report-type")) {
      node.report_type = util::to_lower_ascii(rt);
    }
  }
  if (depth >= k_max_depth) return node;
  if (GMIME_IS_MULTIPART(object)) {
    GMimeMultipart* multipart = GMIME_MULTIPART(object);
    const int n = g_mime_multipart_get_count(multipart);
    for (int i = 0; i < n; ++i) {
      if (GMimeObject* child = g_mime_multipart_get_part(multipart, i)) {
        node.children.push_back(from_object(child, depth + 1, r));
      }
    }
  } else if (GMIME_IS_MESSAGE_PART(object)) {
    if (GMimeMessage* inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(object))) {
      node.children.push_back(from_message(inner, depth + 1, r));
    }
  } else if (GMIME_IS_TEXT_PART(object)) {
    // ASCII and UTF-8 need no conversion (most reports: an iconv per part
    // would cost more than the rest of the parse). get_text converts from
    // any other declared charset; an unknown one leaves the bytes as they
    // are (sanitised below).
    const char* charset = g_mime_object_get_content_type_parameter(object, "charset");
    const std::string_view cs = charset != nullptr ? charset : "";
    const bool plain = cs.empty() || util::iequals(cs, "us-ascii") || util::iequals(cs, "utf-8") ||
                       util::iequals(cs, "ascii");
    if (!plain) hold_converter(charset);
    char* converted = plain ? nullptr : g_mime_text_part_get_text(GMIME_TEXT_PART(object));
    if (converted != nullptr) {
      node.body = text::sanitize_utf8(std::string_view(converted).substr(0, k_max_body));
      g_free(converted);
    } else {
      node.body = text::sanitize_utf8(content_bytes(GMIME_PART(object), r.all_headers));
    }
  } else if (GMIME_IS_PART(object) && node.type == "message/rfc822") {
    // The whole copy (the input is capped at k_max_input already): a
    // forwarded report's status part may come after a long text.
    node.children.push_back(returned_message(content_bytes(GMIME_PART(object), r.all_headers, k_max_input), depth + 1, r));
  } else if (GMIME_IS_PART(object)) {
    node.body = content_bytes(GMIME_PART(object), r.all_headers);
  }
  return node;
}

MimeNode from_message(GMimeMessage* message, int depth, Reading& r) {
  MimeNode node;
  node.is_message = true;
  copy_headers(GMIME_OBJECT(message),
               r.all_headers ? std::span<const std::string_view>()
               : depth == 0  ? std::span<const std::string_view>(k_report_headers)
                             : std::span<const std::string_view>(k_returned_headers),
               node.headers);
  if (GMimeObject* body = g_mime_message_get_mime_part(message)) {
    node.children.push_back(from_object(body, depth + 1, r));
  }
  return node;
}

// GMime's parser over `raw` where it is, not a copy: the array borrows the
// bytes (GMime only reads them), the stream does not own the array, and the
// array is freed without its data once the parser and what it built (its
// parts' contents are windows on the stream) are gone. `read` gets the
// parser and returns once it no longer needs what the parser built.
template <typename Read>
void with_parser(std::string_view raw, Read read) {
  GByteArray* bytes = g_byte_array_new_take(reinterpret_cast<guint8*>(const_cast<char*>(raw.data())), raw.size());
  GMimeStream* stream = g_mime_stream_mem_new_with_byte_array(bytes);
  g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(stream), FALSE);
  GMimeParser* parser = g_mime_parser_new_with_stream(stream);
  g_object_unref(stream);
  read(parser);
  g_object_unref(parser);
  g_byte_array_free(bytes, FALSE);
}

// `raw` read by GMime as a message: its header section as it is.
MimeNode parse_message(std::string_view raw, int depth, Reading& r) {
  MimeNode root;
  root.is_message = true;
  if (raw.empty()) return root;
  with_parser(raw, [&](GMimeParser* parser) {
    if (GMimeMessage* message = g_mime_parser_construct_message(parser, nullptr)) {
      root = from_message(message, depth, r);
      g_object_unref(message);
    }
  });
  return root;
}

// A message: its header section split by split_header_section, the fields
// this layer reads (the report's, or a returned message's) read here, the
// MIME entity under them by GMime as a part (no GMimeMessage: its address
// lists and header objects were a third of what GMime made for a report).
// No MIME field: by RFC 2045 (5.2, 6.1) the body is one text/plain part in
// US-ASCII, 7bit — nothing for a MIME parser to read — kept as GMime gives
// it (capped, invalid UTF-8 replaced). A section that is not plainly
// "name: value" lines, or a preview (all_headers), goes to GMime whole.
MimeNode read_message(std::string_view raw, int depth, Reading& r) {
  if (r.all_headers) return parse_message(raw, depth, r);
  HeaderSection top = split_header_section(raw, depth == 0 ? std::span<const std::string_view>(k_report_headers)
                                                     : std::span<const std::string_view>(k_returned_headers));
  if (!top.plain) return parse_message(raw, depth, r);
  MimeNode root;
  root.is_message = true;
  root.headers = std::move(top.report);
  if (top.mime_fields.empty()) {
    MimeNode& body = root.children.emplace_back();
    body.type = "text/plain";
    if (depth + 1 < k_max_depth) body.body = text::sanitize_utf8(raw.substr(top.body, k_max_body));  // as from_object
    return root;
  }
  with_parser(top.mime_entity(raw), [&](GMimeParser* parser) {
    if (GMimeObject* entity = g_mime_parser_construct_part(parser, nullptr)) {
      root.children.push_back(from_object(entity, depth + 1, r));
      g_object_unref(entity);
    }
  });
  return root;
}

}  // namespace

MimeNode read_mime(std::string_view raw, bool all_headers) {
  init_gmime();
  // An mbox "From " line (or a stray first line) is not a header: skip it.
  if (raw.starts_with("From ")) {
    const auto lf = raw.find('\n');
    raw = lf == std::string_view::npos ? std::string_view() : raw.substr(lf + 1);
  }
  Reading r;
  r.all_headers = all_headers;
  raw = raw.substr(0, reading_limit(raw, r.entities));
  hold_encoded_word_converters(raw);
  return read_message(raw, 0, r);
}

std::string_view header_value(const HeaderList& headers, std::string_view name) {
  for (const auto& [n, v] : headers) {
    if (util::iequals(n, name)) return v;
  }
  return {};
}

}  // namespace blindcast::bounce
