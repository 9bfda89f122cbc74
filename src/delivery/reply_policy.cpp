#include "delivery/reply_policy.hpp"

#include <algorithm>
#include <cctype>
#include <string>

namespace blindcast::delivery {

namespace {

bool contains_ci(std::string_view hay, std::string_view needle) {
  return std::search(hay.begin(), hay.end(), needle.begin(), needle.end(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
         }) != hay.end();
}

// Yahoo: "421 4.7.0 [TSS04] Messages from ... temporarily deferred", "[TS01]".
bool yahoo_ts_code(std::string_view text) {
  for (std::size_t i = 0; i + 4 < text.size(); ++i) {
    if (text[i] == '[' && text[i + 1] == 'T' && text[i + 2] == 'S') {
      std::size_t j = i + 3;
      while (j < text.size() && std::isalnum(static_cast<unsigned char>(text[j]))) ++j;
      if (j < text.size() && text[j] == ']' && j > i + 3) return true;
    }
  }
  return false;
}

// Microsoft: "451 4.7.650 ... (S3150)", "(S3140)", "(S775)".
bool microsoft_s_code(std::string_view text) {
  for (std::size_t i = 0; i + 3 < text.size(); ++i) {
    if (text[i] == '(' && text[i + 1] == 'S' && std::isdigit(static_cast<unsigned char>(text[i + 2]))) {
      std::size_t j = i + 2;
      while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j]))) ++j;
      if (j < text.size() && text[j] == ')') return true;
    }
  }
  return false;
}

}  // namespace

ReplyVerdict classify_reply(int code, std::string_view enhanced, std::string_view text) {
  ReplyVerdict v;
  if (code == 0) return v;  // no reply: transient, not a throttling signal
  const int klass = code / 100;
  v.klass = klass == 2 ? ReplyClass::k_sent : klass == 5 ? ReplyClass::k_permanent : ReplyClass::k_transient;
  if (klass == 2) return v;
  const bool policy_code = enhanced.starts_with("4.7.") || code == 421;
  const bool wording = contains_ci(text, "rate limit") || contains_ci(text, "too many") ||
                       contains_ci(text, "throttl") || contains_ci(text, "slow down") ||
                       contains_ci(text, "try again later");
  v.throttling = klass == 4 && (policy_code || yahoo_ts_code(text) || microsoft_s_code(text) || wording);
  return v;
}

}  // namespace blindcast::delivery
