// Applies bounces and complaints to the organisation's list (SPEC §9): a
// report whose VERP token verifies suppresses (hard bounce, complaint) or
// counts (soft bounce) the address the token names — never the address the
// report names, which its sender could choose. A report without a token, or
// with one this organisation's keys did not make, changes nothing.
//
// Keys: a campaign's token is opened with the key of the file the campaign
// registered when it sent (OrgList::campaign_of_tag); a stream's message
// token with the service's key. The address and lane of a campaign's
// recipient come from the campaign's store; those of a message from the
// service store (MessageLookup).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "bounce/report.hpp"
#include "bounce/verp.hpp"
#include "store/org_list.hpp"
#include "store/state_store.hpp"
#include "util/error.hpp"

namespace blindcast::send {

struct IngestOutcome {
  // "suppressed", "counted" (a soft bounce), "duplicate" (applied before),
  // "ignored" (not a bounce or complaint: auto-reply, delivered, unknown),
  // "refused" (no token, or one that does not verify or names nobody).
  std::string outcome;
  std::string detail;   // why; addresses masked
  std::string scope;    // the campaign id or stream
  std::string address;  // the address the token names ("" when none)
};

class BounceIngester {
 public:
  // A transactional message's recipient, lane and stream, by its id ("msg_...").
  struct MessageTarget {
    std::string recipient;
    std::string lane;
    std::string stream;
  };
  using MessageLookup = std::function<Result<std::optional<MessageTarget>>(std::string_view message_id)>;

  // `service_key`: the key of stream tokens (null: none are accepted).
  BounceIngester(store::OrgList& org, std::shared_ptr<const bounce::VerpKey> service_key, MessageLookup messages);
  ~BounceIngester();

  // Applies `report` (parsed from `raw`). `envelope_token`: the token of the
  // SMTP recipient it arrived for (bounce listener), which beats the
  // report's own.
  Result<IngestOutcome> apply(const bounce::Report& report, std::string_view raw,
                              std::string_view envelope_token = {});

 private:
  struct Target {
    std::string address;  // key
    std::string lane;
    std::string scope;
    std::string ref;
  };
  Result<std::optional<Target>> resolve(std::string_view token, std::string& why);

  store::OrgList& m_org;
  std::shared_ptr<const bounce::VerpKey> m_service_key;
  MessageLookup m_messages;
  std::map<std::string, std::shared_ptr<const bounce::VerpKey>> m_keys;     // by secret file
  std::map<std::string, std::unique_ptr<store::StateStore>> m_campaigns;   // by store path
};

}  // namespace blindcast::send
