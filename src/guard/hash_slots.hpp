// Open addressing shared by the guard's two tables of 64-bit address hashes
// (AddressIndex, SendLedger): linear probing in a table of any size, at
// most three quarters full, so a table made for N keys takes ~1.33 N slots
// (a power-of-two size kept under half full took 2-4 N, and twice that
// again while it grew: ~700 MB for 10,000,000 recipients, now ~230 MB).
// Hashes are guard_hash() values, mixed well enough that their high bits
// choose the slot (the high half of h x size), and never 0 (0 is empty).
#pragma once

#include <cstddef>
#include <cstdint>

namespace blindcast::guard::slots {

__extension__ typedef unsigned __int128 wide;  // (a GCC type: __extension__ for -Wpedantic)

// The slot where a probe for `h` starts in a table of `size` slots.
inline std::size_t home(std::uint64_t h, std::size_t size) {
  return static_cast<std::size_t>((static_cast<wide>(h) * size) >> 64);
}

// The slot after `i` (wrapping).
inline std::size_t next(std::size_t i, std::size_t size) { return i + 1 == size ? 0 : i + 1; }

// Slots for `keys` keys at most three quarters full.
inline std::size_t for_keys(std::size_t keys) { return keys + keys / 3 + 16; }

// True when one more key would fill a table of `size` slots holding `used` past three quarters.
inline bool full(std::size_t used, std::size_t size) { return (used + 1) * 4 > size * 3; }

}  // namespace blindcast::guard::slots
