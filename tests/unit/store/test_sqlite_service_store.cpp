// The SQLite service store's syncs: what a transactional message is made
// durable by, counted by interposing fsync/fdatasync for this test binary
// (SQLite's unix VFS calls them through the PLT). Only syncs of files under
// the watched directory count (every other call just goes through).
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <string_view>
#include <ctime>
#include <filesystem>

#include "store/service_store.hpp"
#include "test_support.hpp"

namespace {
std::atomic<int> g_syncs{0};
std::atomic<const std::string*> g_watched{nullptr};  // a directory; null: count nothing

void count_sync(int fd) {
  const std::string* dir = g_watched.load();
  if (dir == nullptr) return;
  char path[4096];
  const ssize_t n = readlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), path, sizeof path - 1);
  if (n > 0 && std::string_view(path, static_cast<std::size_t>(n)).starts_with(*dir)) g_syncs.fetch_add(1);
}

template <typename F>
F real(const char* name) {
  return reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
}
}  // namespace

extern "C" int fdatasync(int fd) {
  static const auto next = real<int (*)(int)>("fdatasync");
  count_sync(fd);
  return next(fd);
}

extern "C" int fsync(int fd) {
  static const auto next = real<int (*)(int)>("fsync");
  count_sync(fd);
  return next(fd);
}

namespace blindcast::store {
namespace {

NewMessage reset_for(const std::string& to, const std::string& id) {
  NewMessage m;
  m.public_id = id;
  m.stream = "password-reset";
  m.recipient = to;
  m.locale = "pt-BR";
  m.lane = "default";
  m.key_name = "app";
  m.envelope_from = "bounce+x@bounces.example.com.br";
  m.data = "From: Banco <seguranca@example.com.br>\r\nTo: " + to + "\r\nSubject: Redefinir senha\r\n\r\nC\xc3\xb3" "digo 481516\r\n";
  return m;
}

void intake(ServiceStore& s, const NewMessage& m) {
  ASSERT_TRUE(s.begin_batch().has_value());
  ASSERT_TRUE(s.add_message(m).has_value());
  ASSERT_TRUE(s.commit_batch().has_value());
}

// Watches `dir`'s files while it lives.
struct Watch {
  explicit Watch(const std::filesystem::path& dir) : path(std::filesystem::canonical(dir).string()) {
    g_watched.store(&path);
  }
  ~Watch() { g_watched.store(nullptr); }
  std::string path;
};

TEST(SqliteServiceStore, IntakeAndOutcomesAreSyncedAClaimIsWrittenOnly) {
  testing::TempDir dir;
  const Watch watch(dir.path());
  auto opened = open_sqlite_service_store((dir.path() / "service.db").string());
  ASSERT_TRUE(opened.has_value()) << opened.error().message;
  ServiceStore& s = **opened;
  const std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));

  int before = g_syncs.load();
  intake(s, reset_for("joão.silva@example.com.br", "msg_1"));
  EXPECT_GE(g_syncs.load() - before, 1) << "a 202 needs the message on disk";

  before = g_syncs.load();
  auto claimed = s.claim_due(now, 10);
  ASSERT_TRUE(claimed.has_value());
  ASSERT_EQ(claimed->size(), 1U);
  EXPECT_EQ(g_syncs.load() - before, 0) << "the claim is on the transactional message's way to the relay";

  before = g_syncs.load();
  const MessageOutcome sent{claimed->front().id, MessageState::k_sent, "250 2.0.0 queued as 4Xk9", 0, true, false};
  ASSERT_TRUE(s.record_outcomes({&sent, 1}).has_value());
  EXPECT_GE(g_syncs.load() - before, 1) << "an outcome is synced";

  // The connection is back at synchronous=FULL after the claim: the next
  // intake is synced too.
  before = g_syncs.load();
  intake(s, reset_for("anaïs.dupont@exemple.fr", "msg_2"));
  EXPECT_GE(g_syncs.load() - before, 1);

  // What the claim and the outcome wrote is in the database (another
  // connection reads it; that it survives a power loss is the syncs' above).
  auto again = open_sqlite_service_store((dir.path() / "service.db").string());
  ASSERT_TRUE(again.has_value());
  auto first = (*again)->message("msg_1");
  ASSERT_TRUE(first.has_value() && first->has_value());
  EXPECT_EQ((*first)->state, MessageState::k_sent);
  EXPECT_EQ((*first)->attempts, 1);
}

// The service's writers leave the WAL to a connection of its own
// (checkpoint_after far away, checkpoint() in the housekeeping loop).
TEST(SqliteServiceStore, TheWalIsCopiedByTheCheckpointerNotByTheWriter) {
  testing::TempDir dir;
  const auto path = dir.path() / "service.db";
  auto writer = open_sqlite_service_store(path.string());
  ASSERT_TRUE(writer.has_value());
  ASSERT_TRUE((*writer)->checkpoint_after(1'000'000).has_value());
  const auto db_size = [&] { return std::filesystem::file_size(path); };
  const auto before = db_size();
  // Well past SQLite's own threshold (1,000 pages) for a writer.
  for (int i = 0; i < 600; ++i) {
    intake(**writer, reset_for("user" + std::to_string(i) + "@example.co.jp", "msg_" + std::to_string(i)));
  }
  ASSERT_GT(std::filesystem::file_size(path.string() + "-wal"), 1000U * 4096U);
  EXPECT_EQ(db_size(), before) << "the writer copied the WAL itself";
  auto checkpointer = open_sqlite_service_store(path.string());
  ASSERT_TRUE(checkpointer.has_value());
  ASSERT_TRUE((*checkpointer)->checkpoint().has_value());
  EXPECT_GT(db_size(), before);
  // Nothing was lost on the way.
  auto last = (*checkpointer)->message("msg_599");
  ASSERT_TRUE(last.has_value() && last->has_value());
  EXPECT_EQ((*last)->recipient, "user599@example.co.jp");
}

}  // namespace
}  // namespace blindcast::store
