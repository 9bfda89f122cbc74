#include "delivery/maildir_transport.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace blindcast::delivery {

namespace {

Result<void> write_all(int fd, std::string_view data, const std::string& name) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(fmt::format("maildir: cannot write {}: {}", name, std::strerror(errno)),
                  ExitCode::k_runtime);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

std::string safe_host() {
  char buf[256] = {0};
  ::gethostname(buf, sizeof buf - 1);
  std::string h;
  for (char* p = buf; *p != 0; ++p) {
    h += (*p == '/' || *p == ':') ? '_' : *p;  // Maildir forbids these in names
  }
  return h.empty() ? "localhost" : h;
}

}  // namespace

MaildirTransport::MaildirTransport(std::filesystem::path root, std::string campaign_id, int tmp_fd,
                                   int new_fd)
    : m_root(std::move(root)),
      m_campaign_id(std::move(campaign_id)),
      m_host(safe_host()),
      m_tmp_fd(tmp_fd),
      m_new_fd(new_fd) {}

MaildirTransport::~MaildirTransport() {
  if (m_tmp_fd >= 0) ::close(m_tmp_fd);
  if (m_new_fd >= 0) ::close(m_new_fd);
}

Result<std::unique_ptr<MaildirTransport>> MaildirTransport::open(const std::filesystem::path& root,
                                                                 std::string campaign_id) {
  std::error_code ec;
  for (const char* sub : {"tmp", "new", "cur"}) {
    std::filesystem::create_directories(root / sub, ec);
    if (ec) {
      return fail(fmt::format("maildir: cannot create {}: {}", (root / sub).string(), ec.message()),
                  ExitCode::k_runtime);
    }
  }
  const int tmp_fd = ::open((root / "tmp").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  const int new_fd = ::open((root / "new").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (tmp_fd < 0 || new_fd < 0) {
    if (tmp_fd >= 0) ::close(tmp_fd);
    if (new_fd >= 0) ::close(new_fd);
    return fail(fmt::format("maildir: cannot open {}: {}", root.string(), std::strerror(errno)),
                ExitCode::k_runtime);
  }
  return std::unique_ptr<MaildirTransport>(
      new MaildirTransport(root, std::move(campaign_id), tmp_fd, new_fd));
}

std::string MaildirTransport::describe() const { return "maildir:" + m_root.string(); }

namespace {
constexpr std::size_t k_batch = 500;  // messages written per sync, when that many are waiting
}  // namespace

void MaildirTransport::submit(std::vector<OutgoingMessage> messages) {
  m_submitted.fetch_add(messages.size());
  {
    std::lock_guard lock(m_mutex);
    for (auto& m : messages) m_inbox.push_back(std::move(m));
  }
  m_wake.notify_one();
}

void MaildirTransport::stop_starting() {
  m_stopped.store(true);
  m_wake.notify_one();
}

Result<void> MaildirTransport::poll(std::chrono::milliseconds max_wait, std::vector<DeliveryResult>& results) {
  std::vector<OutgoingMessage> messages;
  {
    // Every poll that writes costs a sync of the file system: gather up to
    // k_batch messages for as long as the caller lets us wait.
    std::unique_lock lock(m_mutex);
    m_wake.wait_for(lock, max_wait, [&] { return m_inbox.size() >= k_batch || m_stopped.load(); });
    messages.swap(m_inbox);
  }
  if (messages.empty()) return {};
  m_returned.fetch_add(messages.size());
  if (m_stopped.load()) {
    for (const auto& m : messages) results.push_back(DeliveryResult::stopped(m.recipient_id));
    return {};
  }
  std::vector<std::string> names;
  names.reserve(messages.size());
  for (const auto& m : messages) {
    std::string name = fmt::format("{}.{}.{}", m_campaign_id, m.delivery_key, m_host);
    const int fd = ::openat(m_tmp_fd, name.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
      return fail(fmt::format("maildir: cannot create tmp/{}: {}", name, std::strerror(errno)),
                  ExitCode::k_runtime);
    }
    auto w = write_all(fd, m.data, name);
    ::close(fd);
    if (!w) return std::unexpected(w.error());
    names.push_back(std::move(name));
  }
  if (::syncfs(m_tmp_fd) != 0) {
    return fail(fmt::format("maildir: sync failed: {}", std::strerror(errno)), ExitCode::k_runtime);
  }
  for (std::size_t i = 0; i < messages.size(); ++i) {
    if (::renameat(m_tmp_fd, names[i].c_str(), m_new_fd, names[i].c_str()) != 0) {
      return fail(fmt::format("maildir: cannot move {} into new/: {}", names[i], std::strerror(errno)),
                  ExitCode::k_runtime);
    }
  }
  if (::fsync(m_new_fd) != 0) {
    return fail(fmt::format("maildir: fsync of new/ failed: {}", std::strerror(errno)), ExitCode::k_runtime);
  }
  for (const auto& m : messages) {
    DeliveryResult r;
    r.recipient_id = m.recipient_id;
    r.code = 250;
    r.reply = "250 written to maildir";
    results.push_back(std::move(r));
  }
  return {};
}

}  // namespace blindcast::delivery
