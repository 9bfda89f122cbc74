#include "guard/address_index.hpp"

#include "guard/hash_slots.hpp"

#include <idn2.h>

#include <cstdlib>
#include <cstring>

namespace blindcast::guard {

namespace {
char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }
}  // namespace

std::uint64_t guard_hash(std::string_view text) {
  // Eight bytes at a time; ASCII 'A'-'Z' are folded to lower case with SWAR
  // arithmetic (a byte is upper case when it is ASCII, >= 'A' and <= 'Z').
  constexpr std::uint64_t k_hi = 0x8080808080808080ULL;
  constexpr std::uint64_t k_lo7 = 0x7f7f7f7f7f7f7f7fULL;
  constexpr std::uint64_t k_mul = 0x9E3779B97F4A7C15ULL;
  std::uint64_t h = 0x84222325cbf29ce4ULL ^ (text.size() * k_mul);
  std::size_t i = 0;
  const std::size_t n = text.size();
  while (i < n) {
    std::uint64_t w = 0;
    const std::size_t take = n - i < 8 ? n - i : 8;
    std::memcpy(&w, text.data() + i, take);
    const std::uint64_t low7 = w & k_lo7;
    const std::uint64_t ge_a = low7 + 0x3f3f3f3f3f3f3f3fULL;  // bit 7 set when byte >= 'A'
    const std::uint64_t gt_z = low7 + 0x2525252525252525ULL;  // bit 7 set when byte > 'Z'
    const std::uint64_t upper = ge_a & ~gt_z & ~w & k_hi;
    w |= upper >> 2;                                          // +0x20 for upper-case letters
    h = (h ^ w) * k_mul;
    h ^= h >> 29;
    i += take;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h == 0 ? 1 : h;
}

std::string normalize_for_guard(std::string_view address) {
  std::string out;
  out.reserve(address.size());
  bool high = false;
  for (char c : address) {
    out += lower(c);
    high = high || static_cast<unsigned char>(c) >= 0x80;
  }
  if (!high) return out;
  const auto at = out.rfind('@');
  if (at == std::string::npos) return out;
  const std::string domain = out.substr(at + 1);
  char* ascii = nullptr;
  if (idn2_to_ascii_8z(domain.c_str(), &ascii, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL) != IDN2_OK) {
    std::free(ascii);
    return out;  // unconvertible: compare as written
  }
  out.resize(at + 1);
  for (const char* p = ascii; *p != 0; ++p) out += lower(*p);
  std::free(ascii);
  return out;
}

std::uint64_t address_hash(std::string_view address) {
  for (char c : address) {
    if (static_cast<unsigned char>(c) >= 0x80) return guard_hash(normalize_for_guard(address));
  }
  return guard_hash(address);
}

void AddressIndex::reserve(std::size_t n) {
  const std::size_t size = slots::for_keys(n);
  if (size <= m_slots.size()) return;
  std::vector<std::uint64_t> old = std::move(m_slots);
  m_slots = std::vector<std::uint64_t>();
  m_slots.assign(size, 0);
  m_size = 0;
  for (const auto h : old) {
    if (h == 0) continue;
    std::size_t i = slots::home(h, size);
    while (m_slots[i] != 0) i = slots::next(i, size);
    m_slots[i] = h;
    ++m_size;
  }
}

void AddressIndex::grow() { reserve(m_size < 8 ? 8 : m_size * 2); }

void AddressIndex::add(std::string_view address) {
  if (slots::full(m_size, m_slots.size())) grow();
  const std::uint64_t h = address_hash(address);
  const std::size_t size = m_slots.size();
  std::size_t i = slots::home(h, size);
  while (m_slots[i] != 0) {
    if (m_slots[i] == h) return;
    i = slots::next(i, size);
  }
  m_slots[i] = h;
  ++m_size;
}

bool AddressIndex::contains_normalized(std::string_view normalized) const {
  return contains_hash(guard_hash(normalized));
}

bool AddressIndex::contains_hash(std::uint64_t h) const {
  const std::size_t size = m_slots.size();
  if (size == 0) return false;
  std::size_t i = slots::home(h, size);
  while (m_slots[i] != 0) {
    if (m_slots[i] == h) return true;
    i = slots::next(i, size);
  }
  return false;
}

bool AddressIndex::contains(std::string_view address) const {
  return contains_hash(address_hash(address));
}

}  // namespace blindcast::guard
