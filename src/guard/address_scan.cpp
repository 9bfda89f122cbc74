#include "guard/address_scan.hpp"

#include <cstring>

namespace blindcast::guard::detail {

ScanTables::ScanTables() : local{}, alnum{}, domain{} {
  for (int c = 0; c < 256; ++c) {
    const bool an = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    alnum[c] = an;
    local[c] = an || (c != 0 && c < 128 && std::strchr("!#$%&'*+-/=?^_`{|}~.", c) != nullptr);
    domain[c] = an || c == '.' || c == '-' || c >= 0x80;
  }
}

const ScanTables k_scan_tables;

}  // namespace blindcast::guard::detail
