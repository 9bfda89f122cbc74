// Opening the full stage: refusals and forced sends are recorded in the audit log.
#include <gtest/gtest.h>

#include <algorithm>
#include <optional>

#include "campaign/example.hpp"
#include "send/gates.hpp"
#include "send/sender.hpp"
#include "test_support.hpp"

namespace blindcast::send {
namespace {

class GatesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(campaign::write_example_campaign(dir.path()));
    util::Diagnostics diags;
    loaded = campaign::load_campaign(dir.path(), diags);
    ASSERT_TRUE(loaded.has_value()) << (diags.empty() ? "" : diags.front().str());
    auto s = store::open_sqlite_store((dir.path() / "state.db").string());
    ASSERT_TRUE(s.has_value()) << s.error().message;
    store = std::move(*s);
  }
  // The audit events of `kind`, oldest first.
  std::vector<store::AuditEvent> events_of(const std::string& kind) {
    std::vector<store::AuditEvent> out;
    auto all = store->events(1000);
    EXPECT_TRUE(all.has_value());
    if (!all) return out;
    for (const auto& e : *all) {
      if (e.kind == kind) out.push_back(e);
    }
    return out;
  }
  testing::TempDir dir;
  std::optional<campaign::LoadedCampaign> loaded;
  std::unique_ptr<store::StateStore> store;
};

TEST(Gates, ForceNeedsTheFullStageAndAReason) {
  EXPECT_TRUE(check_force_request("full", false, ""));
  EXPECT_TRUE(check_force_request("canary", false, ""));
  EXPECT_TRUE(check_force_request("full", true, "board asked"));
  auto stage = check_force_request("canary", true, "board asked");
  ASSERT_FALSE(stage.has_value());
  EXPECT_EQ(stage.error().message, "--force applies to the full stage only");
  EXPECT_EQ(stage.error().exit_code, ExitCode::k_usage);
  auto no_reason = check_force_request("full", true, "  \t");
  ASSERT_FALSE(no_reason.has_value());
  EXPECT_EQ(no_reason.error().message, "--force needs --reason TEXT: the reason is recorded in the audit log");
}

TEST(Gates, ApproverMustBeNamed) {
  EXPECT_TRUE(check_approver("ann"));
  auto none = check_approver(" ");
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.error().message, "--by NAME is required: approvals are counted per person");
}

TEST_F(GatesTest, ClosedGatesRefuseAndTheRefusalIsRecorded) {
  auto d = decide_full_stage(*loaded, *store, "camp", false, "", "ann");
  ASSERT_TRUE(d.has_value()) << d.error().message;
  EXPECT_FALSE(d->open);
  EXPECT_FALSE(d->forced);
  EXPECT_FALSE(d->content_hash.empty());
  // No canary was sent and nobody approved; lint ran and passed.
  ASSERT_EQ(d->closed.size(), 2U);
  EXPECT_TRUE(d->closed[0].starts_with("canary: ")) << d->closed[0];
  EXPECT_NE(d->closed[0].find("blindcast send camp --stage canary"), std::string::npos) << d->closed[0];
  EXPECT_TRUE(d->closed[1].starts_with("approvals: 0 of 1")) << d->closed[1];
  const auto refused = events_of("gate_refused");
  ASSERT_EQ(refused.size(), 1U);
  EXPECT_EQ(refused[0].actor, "blindcast");
  EXPECT_TRUE(refused[0].detail.starts_with("full refused: canary: ")) << refused[0].detail;
  EXPECT_TRUE(events_of("force").empty());
}

TEST_F(GatesTest, ForcedSendIsRecordedWithActorAndReason) {
  auto d = decide_full_stage(*loaded, *store, "camp", true, "legal deadline", "ann");
  ASSERT_TRUE(d.has_value()) << d.error().message;
  EXPECT_TRUE(d->open);
  EXPECT_TRUE(d->forced);
  EXPECT_FALSE(d->closed.empty());
  const auto forced = events_of("force");
  ASSERT_EQ(forced.size(), 1U);
  EXPECT_EQ(forced[0].actor, "ann");
  EXPECT_TRUE(forced[0].detail.starts_with("forced full stage: legal deadline (closed: ")) << forced[0].detail;
  EXPECT_TRUE(events_of("gate_refused").empty());
}

TEST_F(GatesTest, ForceWithoutAReasonIsRefusedAndNothingIsRecorded) {
  auto d = decide_full_stage(*loaded, *store, "camp", true, "", "ann");
  ASSERT_FALSE(d.has_value());
  EXPECT_EQ(d.error().message, "--force needs --reason TEXT: the reason is recorded in the audit log");
  EXPECT_TRUE(events_of("force").empty());
  EXPECT_TRUE(events_of("gate_refused").empty());
}

TEST_F(GatesTest, ApprovalIsRecordedForTheCurrentContent) {
  auto a = approve_content(*loaded, *store, "ann");
  ASSERT_TRUE(a.has_value()) << a.error().message;
  EXPECT_EQ(a->gates.content_hash, a->content_hash);
  EXPECT_EQ(a->gates.approvers, std::vector<std::string>{"ann"});
  EXPECT_TRUE(a->gates.approvals_ok());
  const auto approved = events_of("approve");
  ASSERT_EQ(approved.size(), 1U);
  EXPECT_EQ(approved[0].actor, "ann");
  EXPECT_EQ(approved[0].detail, "approved content " + a->content_hash);
  // With the approval the refusal lists the canary only.
  auto d = decide_full_stage(*loaded, *store, "camp", false, "", "ann");
  ASSERT_TRUE(d.has_value()) << d.error().message;
  EXPECT_FALSE(d->open);
  ASSERT_EQ(d->closed.size(), 1U);
  EXPECT_TRUE(d->closed[0].starts_with("canary: ")) << d->closed[0];
  EXPECT_FALSE(approve_content(*loaded, *store, "").has_value());
}

// The send layer itself refuses the full stage without an open gate
// decision, whichever front end calls it; nothing is imported or sent.
TEST_F(GatesTest, RunSendRefusesTheFullStageWithoutAnOpenDecision) {
  SendOptions so;
  so.stage = "full";
  so.state_path = (dir.path() / "state.db").string();
  auto r = run_send(*loaded, *store, so, nullptr);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().exit_code, ExitCode::k_gate);
  EXPECT_NE(r.error().message.find("decide_full_stage"), std::string::npos) << r.error().message;
  so.full_stage = FullStageDecision{};  // decided, but closed
  r = run_send(*loaded, *store, so, nullptr);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().exit_code, ExitCode::k_gate);
  auto counts = store->counts();
  ASSERT_TRUE(counts.has_value());
  EXPECT_EQ(counts->total, 0) << "nothing was imported";
}

}  // namespace
}  // namespace blindcast::send
