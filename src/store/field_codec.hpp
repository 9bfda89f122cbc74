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

// A key's scopes and networks as both stores keep them: one space-separated
// text (the items hold no spaces).
std::string join_words(const std::vector<std::string>& words);
std::vector<std::string> split_words(std::string_view text);

}  // namespace blindcast::store
