// The messages named on the command line of `bounces inspect` and `bounces
// ingest`: a file is one message, or an mbox (it starts with "From ") of
// several; a directory stands for every regular file under it (sorted, as a
// Maildir's cur/ and new/). A file that cannot be read is named on stderr
// and the others go on.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace blindcast::cli {

// Calls `fn(file, message, raw)` for each message (`message`: 1-based within
// an mbox, 0 for a file of one message); stops early when `fn` returns
// false. Returns 1 when a path could not be read, else 0.
int for_each_returned_message(const std::vector<std::string>& paths,
                              const std::function<bool(const std::string&, int, std::string_view)>& fn);

}  // namespace blindcast::cli
