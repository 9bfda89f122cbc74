// DMARC identifier alignment (RFC 7489 §3.1): whether a DKIM signing domain
// can pass DMARC for a From domain. Relaxed alignment compares organizational
// domains, found with the Public Suffix List (libpsl, Debian's list).
#pragma once

#include <string_view>

namespace blindcast::mail {

// True when `dkim_domain` and `from_domain` (lower-case A-label form) have the
// same organizational domain: mail.example.com aligns with example.com and
// news.example.com, not with example.net or example.co.uk with other.co.uk.
bool dmarc_relaxed_aligned(std::string_view from_domain, std::string_view dkim_domain);

// False for a public suffix ("com.br") or a name the Public Suffix List
// knows no registrable part of: nobody can publish DKIM keys for it.
bool has_registrable_domain(std::string_view domain);

}  // namespace blindcast::mail
