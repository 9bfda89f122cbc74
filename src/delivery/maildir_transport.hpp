// Maildir delivery (the embedded default): one file per message, written to
// tmp/ and renamed into new/ (the Maildir protocol), exactly the bytes that
// would go on the wire.
//
// Durability per batch: all files are written, the file system is synced once
// (syncfs), the files are renamed, and new/ is fsynced — a group commit, so a
// batch of a thousand costs two syncs instead of a thousand. File names derive
// from the campaign id and the message's delivery key, so a message retried
// after a crash replaces its earlier copy instead of adding a second one.
#pragma once

#include <atomic>

#include <filesystem>

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
  Result<DeliveryReport> deliver(std::span<const OutgoingMessage> messages) override;
  void stop_starting() override { m_stopped.store(true); }

 private:
  MaildirTransport(std::filesystem::path root, std::string campaign_id, int tmp_fd, int new_fd);
  std::filesystem::path m_root;
  std::string m_campaign_id;
  std::string m_host;
  int m_tmp_fd = -1;
  int m_new_fd = -1;
  std::atomic<bool> m_stopped{false};
};

}  // namespace blindcast::delivery
