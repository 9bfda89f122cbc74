// What a server's reply means (SPEC §5), decided in one place.
//
//  2xx                                  -> sent
//  4xx                                  -> deferred (retry on the schedule)
//  5xx                                  -> bounced (and suppressed)
//  throttling: 421, any 4.7.x, Yahoo's "[TSnn]" codes, Microsoft's
//  "S3150"-style rate-limit texts, and "rate limit"/"too many" wording
//                                       -> deferred, and the lane should slow down
// A local failure (no reply: connection lost, timeout) is transient.
#pragma once

#include <string_view>

namespace blindcast::delivery {

enum class ReplyClass { k_sent, k_transient, k_permanent };

struct ReplyVerdict {
  ReplyClass klass = ReplyClass::k_transient;
  bool throttling = false;  // the provider asks us to send more slowly
};

// Classifies a reply with `code`, enhanced status `enhanced` ("4.7.0" or "")
// and `text`; `code` 0 means there was no reply (local failure).
ReplyVerdict classify_reply(int code, std::string_view enhanced, std::string_view text);

}  // namespace blindcast::delivery
