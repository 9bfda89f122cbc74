#include "smtp/data_traits.hpp"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace blindcast::smtp {

DataTraits scan_data(std::string_view data) {
  DataTraits t;
  const char* const p = data.data();
  const std::size_t n = data.size();
  bool eight_bit = false;
  bool dot_lines = n > 0 && p[0] == '.';
  std::size_t i = 0;
#if defined(__SSE2__)
  const __m128i lf = _mm_set1_epi8('\n');
  const __m128i dot = _mm_set1_epi8('.');
  __m128i high = _mm_setzero_si128();
  unsigned carry = 0;  // 1 when the previous block ended with LF
  for (; i + 16 <= n; i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    high = _mm_or_si128(high, v);
    const auto lfs = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, lf)));
    const auto dots = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, dot)));
    // Bit k of (lfs << 1 | carry): byte k follows an LF.
    if (((lfs << 1) | carry) & dots) dot_lines = true;
    carry = lfs >> 15;
  }
  eight_bit = _mm_movemask_epi8(high) != 0;
#endif
  for (; i < n; ++i) {
    if (static_cast<unsigned char>(p[i]) >= 0x80) eight_bit = true;
    if (p[i] == '.' && i > 0 && p[i - 1] == '\n') dot_lines = true;
  }
  t.m_eight_bit = eight_bit;
  t.m_dot_lines = dot_lines;
  return t;
}

}  // namespace blindcast::smtp
