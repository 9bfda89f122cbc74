// Maildir delivery (the embedded default): one file per message, written to
// tmp/ and renamed into new/ (the Maildir protocol), exactly the bytes that
// would go on the wire.
//
// Durability per group: every message submitted since the last poll() is
// written, the file system is synced once (syncfs), the files are renamed,
// and new/ is fsynced — a group commit, so a group of a hundred costs two
// syncs instead of a hundred. File names derive
// from the campaign id and the message's delivery key, so a message retried
// after a crash replaces its earlier copy instead of adding a second one.
#pragma once

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>

#include "delivery/transport.hpp"

namespace blindcast::delivery {

class MaildirTransport final : public Transport {
 public:
  // Opens (creating tmp/, new/ and cur/ as needed) the maildir at `root`.
  static Result<std::unique_ptr<MaildirTransport>> open(const std::filesystem::path& root,
                                                        std::string campaign_id);
  ~MaildirTransport() override;
  MaildirTransport(const MaildirTransport&) = delete;
  MaildirTransport& operator=(const MaildirTransport&) = delete;

  [[nodiscard]] std::string describe() const override;
  void submit(std::vector<OutgoingMessage> messages) override;
  Result<void> poll(std::chrono::milliseconds max_wait, std::vector<DeliveryResult>& results) override;
  [[nodiscard]] std::size_t unfinished() const override { return m_submitted.load() - m_returned.load(); }
  void stop_starting() override;
  [[nodiscard]] bool paced() const override { return false; }
  [[nodiscard]] bool idempotent() const override { return true; }

 private:
  MaildirTransport(std::filesystem::path root, std::string campaign_id, int tmp_fd, int new_fd);
  std::filesystem::path m_root;
  std::string m_campaign_id;
  std::string m_host;
  int m_tmp_fd = -1;
  int m_new_fd = -1;
  std::atomic<bool> m_stopped{false};
  std::mutex m_mutex;
  std::condition_variable m_wake;
  std::vector<OutgoingMessage> m_inbox;
  std::atomic<std::size_t> m_submitted{0};
  std::atomic<std::size_t> m_returned{0};
};

}  // namespace blindcast::delivery
