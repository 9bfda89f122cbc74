// Packs a row's fields into one blob: for each field a LEB128 length, then its
// bytes. Unambiguous for any byte content and cheap to decode.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace blindcast::store {

// Returns the packed form of `fields`.
std::string pack_fields(const std::vector<std::string>& fields);
// Unpacks `blob`; nullopt when it is corrupt.
std::optional<std::vector<std::string>> unpack_fields(std::string_view blob);

}  // namespace blindcast::store
