// `send`: runs the canary or full stage of a campaign (SPEC §2, §4, §7).
//
// One owner at a time: a send holds the store's owner lease (a lock the
// kernel releases when the process dies, however it dies); a second send of
// the same campaign and store is refused with exit code 2 naming the owner,
// and after `kill -9` the next send takes over at once.
//
// A run: take the lease; import the audience if it changed and give
// recipients their lanes; apply the suppression list; count the members of
// flights a crash left open as possible duplicates (due again); build the
// guard (its index and policy) and the guard's ledger; then the send engine
// (send/engine.hpp) sends every due recipient lane by lane and waits for
// deferred ones to come due; finally it records how the stage ended.
//
// Errors: a guard violation quarantines the message and halts the campaign
// for every sender (exit code 3, as does a limit of the guard's ledger); an
// operator halt ends the run with exit code 5; a state-store write error or
// a transport that cannot send ends it at once with exit code 1, and nothing
// unrecorded is sent.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "campaign/campaign.hpp"
#include "delivery/transport.hpp"
#include "send/engine.hpp"
#include "send/gates.hpp"
#include "store/state_store.hpp"
#include "util/error.hpp"

namespace blindcast::send {

struct SendOptions {
  std::string stage = "full";
  std::string transport_url;        // overrides campaign.toml when not empty
  std::string state_path;           // the store's file, for the halt watcher's and the journal's own connections
  std::string org_path;             // the organisation's list, when not in the store's own file
  std::size_t window = 0;           // messages in flight at most; 0: 8 x [transport] connections
  int workers = 0;                  // threads rendering, composing, signing and guarding;
                                    // 0: one per CPU this process may run on, 2 to 16
  // The full stage sends only with an open decision of decide_full_stage()
  // (its gates open, or forced and recorded): whatever front end calls.
  std::optional<FullStageDecision> full_stage;
  bool retry_failed = false;        // make every failed recipient due again first (not bounced ones)
  // A transport shared with other senders (serve: a channel of its one
  // connection pool); when set, used instead of one made from the settings.
  std::function<std::unique_ptr<delivery::Transport>()> shared_transport;
  std::string actor = "blindcast";  // who started the stage (a login name, an API key's name): audited; the
                                    // one who starts the canary cannot be the only approver of its content
};

struct SendSummary {
  SendProgress progress;            // elapsed_seconds counts from the start of sending
  double setup_seconds = 0;         // audience import, recovery, guard index
  store::StateCounts counts;
  std::int64_t recovered_in_flight = 0;
  std::int64_t requeued = 0;             // failed recipients made due again before this run
  std::int64_t imported = 0;
  std::int64_t rejected_rows = 0;
  std::int64_t duplicate_rows = 0;
  std::size_t window = 0;           // the in-flight window of this run
  std::size_t unconfirmed = 0;      // of it, what may be on a connection or answered, not recorded
  std::string transport;
};

// Builds the transport settings for `url`, reading the password from its secret file (SPEC §6).
Result<delivery::TransportConfig> transport_config(const campaign::LoadedCampaign& campaign, const std::string& url);

// "pid 4242 on mail1, since 2026-11-29T05:12:44Z".
std::string describe_owner(const store::Owner& o);

// Takes the store's owner lease for this process; fails with exit code 2,
// naming the owner, when another process holds it.
Result<std::unique_ptr<store::OwnerLease>> own_campaign(store::StateStore& store, const std::string& dir);

// Asks a running send to stop starting messages (signal handlers call this).
void request_stop();
// True once request_stop() was called.
bool stop_requested();

// Runs the canary or full stage; `on_progress` is called as it goes (at most every 100 ms).
Result<SendSummary> run_send(const campaign::LoadedCampaign& campaign, store::StateStore& store,
                             const SendOptions& options,
                             const std::function<void(const SendProgress&)>& on_progress);

}  // namespace blindcast::send
