// `send`: runs the full stage of a campaign through the state store, the
// privacy guard and a transport (SPEC §2, §3, §7).
//
// Order for every batch of recipients (group commit):
//   build (render + compose) -> guard -> record in flight -> deliver -> record results.
// Building runs on `workers` threads, and batch k+1 is built while batch k is
// delivered, so both cores stay busy. Deferred recipients are retried on the
// `[delivery] retry` schedule; `send` waits for the next retry while any remain.
// A row that cannot be rendered is recorded as failed with the reason. A guard
// violation stops everything: the message is quarantined (0600), the campaign
// is halted in the store for every sender, the audit log records it, and the
// Error carries ExitCode::k_guard. An operator halt (`halt`) is seen between
// batches and ends the run with ExitCode::k_halted. A state-store write error
// ends the run at once with ExitCode::k_runtime; nothing unrecorded is sent.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "campaign/campaign.hpp"
#include "delivery/transport.hpp"
#include "guard/privacy_guard.hpp"
#include "store/state_store.hpp"
#include "util/error.hpp"

namespace blindcast::send {

struct SendOptions {
  std::string stage = "full";
  std::string transport_url;        // overrides campaign.toml when not empty
  std::string state_path;           // the store's file, for the halt watcher's own connection
  std::size_t batch_size = 500;     // recipients per group commit (the in-flight window)
  int workers = 0;                  // threads rendering, composing, signing and guarding;
                                    // 0: one per CPU this process may run on, 2 to 16
};

struct SendProgress {
  std::int64_t total = 0;           // recipients in the store
  std::int64_t done = 0;            // sent + bounced + failed + suppressed + removed
  std::int64_t sent_this_run = 0;
  std::int64_t failed_this_run = 0;
  double elapsed_seconds = 0;
  std::map<std::string, std::int64_t> sent_by_lane;
  std::map<std::string, std::int64_t> deferred_by_lane;
  std::map<std::string, std::int64_t> bounced_by_lane;
  std::map<std::string, double> rate_by_lane;       // shaped lanes: current rate (messages/s)
  std::map<std::string, std::int64_t> todo_by_lane; // unsent when this run started
};

struct SendSummary {
  SendProgress progress;            // elapsed_seconds counts from the first batch
  double setup_seconds = 0;         // audience import, recovery, guard index
  store::StateCounts counts;
  std::int64_t recovered_in_flight = 0;
  std::int64_t imported = 0;
  std::int64_t rejected_rows = 0;
  std::int64_t duplicate_rows = 0;
  std::string transport;
};

// Builds the transport settings for `url`, reading the password from its secret file (SPEC §6).
Result<delivery::TransportConfig> transport_config(const campaign::LoadedCampaign& campaign, const std::string& url);

// Fails with exit code 3 or 5 when the campaign is halted.
Result<void> check_not_halted(store::StateStore& store, const campaign::LoadedCampaign& campaign);

// Quarantines `data`, halts the campaign for every sender, records the
// violation, and returns the error to stop with (exit code 3).
// `line` is the audience line of the message (0 for the test stage, whose
// rows are samples or placeholders).
Error guard_halt(const campaign::LoadedCampaign& campaign, store::StateStore& store, std::int64_t line,
                 const std::string& data, const guard::Violation& violation);

// Asks a running send to stop after its current batch (signal handlers call this).
void request_stop();
// True once request_stop() was called.
bool stop_requested();

// Imports the audience into `store` when the file changed since the last import.
Result<void> sync_audience(const campaign::LoadedCampaign& campaign, store::StateStore& store, SendSummary& summary);

// Runs the send; `on_progress` is called after every batch.
Result<SendSummary> run_send(const campaign::LoadedCampaign& campaign, store::StateStore& store,
                             const SendOptions& options,
                             const std::function<void(const SendProgress&)>& on_progress);

}  // namespace blindcast::send
