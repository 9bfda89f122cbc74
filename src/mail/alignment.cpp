#include "mail/alignment.hpp"

#include <libpsl.h>

#include <string>

namespace blindcast::mail {

namespace {

// The organizational domain of `domain`, or `domain` itself when the list
// knows no registrable part (a public suffix, or a name like "localhost").
std::string organizational_domain(std::string_view domain) {
  // The newer of libpsl's built-in list and the system's; read-only after.
  static const psl_ctx_t* const psl = psl_latest(nullptr);
  const std::string name(domain);
  const char* registrable = psl != nullptr ? psl_registrable_domain(psl, name.c_str()) : nullptr;
  return registrable != nullptr ? std::string(registrable) : name;
}

}  // namespace

bool has_registrable_domain(std::string_view domain) {
  static const psl_ctx_t* const psl = psl_latest(nullptr);
  const std::string name(domain);
  return psl == nullptr || psl_registrable_domain(psl, name.c_str()) != nullptr;
}

bool dmarc_relaxed_aligned(std::string_view from_domain, std::string_view dkim_domain) {
  if (from_domain == dkim_domain) return true;
  return organizational_domain(from_domain) == organizational_domain(dkim_domain);
}

}  // namespace blindcast::mail
