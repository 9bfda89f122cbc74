// Look-alike letters: a reader takes Cyrillic "һ" in `smitһ@gmail.com` for
// the Latin "h". Maps each character outside ASCII to the ASCII prototype
// of Unicode's confusables data (ICU uspoof skeletons, UTS #39) when there
// is one, so a reading can also be looked up as the address it imitates.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace blindcast::guard {

// `text` with every character outside ASCII replaced by its one-character
// ASCII look-alike; nullopt when `text` is ASCII already or a character has
// none (it reads as what it is).
std::optional<std::string> ascii_look_alike(std::string_view text);

}  // namespace blindcast::guard
