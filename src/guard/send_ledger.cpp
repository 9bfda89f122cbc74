#include "guard/send_ledger.hpp"

#include "guard/hash_slots.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "guard/address_index.hpp"

namespace blindcast::guard {

struct SendLedger::Record {
  std::uint64_t key;
  std::uint32_t time;
  std::uint8_t kind;  // k_pass, k_release, k_halt, k_clear
  std::uint8_t code;  // the limit, for k_halt
  std::uint16_t reserved;
};
static_assert(sizeof(SendLedger::Record) == 16);

namespace {

constexpr std::uint8_t k_pass = 1;
constexpr std::uint8_t k_release = 2;
constexpr std::uint8_t k_halt = 3;
constexpr std::uint8_t k_clear = 4;

constexpr std::uint8_t k_limit_third = 1;
constexpr std::uint8_t k_limit_seconds = 2;
constexpr std::uint8_t k_limit_rate = 3;
constexpr std::int64_t k_rate_seconds = 10;

const char* limit_name(std::uint8_t code) {
  switch (code) {
    case k_limit_third: return "limit: third message";
    case k_limit_seconds: return "limit: second messages";
    case k_limit_rate: return "limit: rate";
    default: return "limit";
  }
}

// Holds an exclusive flock(2) on the ledger while it lives.
struct Locked {
  int fd;
  bool ok;
  explicit Locked(int f) : fd(f), ok(::flock(f, LOCK_EX) == 0) {}
  ~Locked() {
    if (ok) ::flock(fd, LOCK_UN);
  }
  Locked(const Locked&) = delete;
  Locked& operator=(const Locked&) = delete;
};

// Creates `dir` and missing parents, each owner-only (the guard shares no
// code with the rest of blindcast, so not util::make_private_dirs).
void make_private_dirs(const std::filesystem::path& dir) {
  std::error_code ec;
  if (dir.empty() || std::filesystem::is_directory(dir, ec)) return;
  if (dir.has_parent_path() && dir.parent_path() != dir) make_private_dirs(dir.parent_path());
  ::mkdir(dir.c_str(), 0700);
}

}  // namespace

std::unique_ptr<SendLedger> SendLedger::open(const std::filesystem::path& path, LedgerLimits limits,
                                             std::string& error) {
  make_private_dirs(path.parent_path());
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    error = fmt::format("{}: cannot open the guard's ledger: {}", path.string(), std::strerror(errno));
    return nullptr;
  }
  std::unique_ptr<SendLedger> l(new SendLedger());
  l->m_fd = fd;
  l->m_limits = limits;
  // Room for the campaign's recipients at once: growing doubles the table
  // and holds both copies for a moment.
  l->make_room(std::max<std::size_t>(limits.expected, 768));
  const Locked lock(fd);
  if (!lock.ok || !l->catch_up(error)) {
    if (error.empty()) error = fmt::format("{}: cannot lock the guard's ledger: {}", path.string(), std::strerror(errno));
    return nullptr;
  }
  l->m_seconds = 0;  // a run starts now
  return l;
}

SendLedger::~SendLedger() {
  if (m_fd >= 0) ::close(m_fd);
}

std::uint64_t SendLedger::key(std::string_view recipient) { return address_hash(recipient); }

void SendLedger::make_room(std::size_t keys) {
  const std::size_t size = slots::for_keys(keys);
  if (size <= m_keys.size()) return;
  std::vector<std::uint64_t> new_keys(size, 0);
  std::vector<std::uint8_t> new_counts(size, 0);
  for (std::size_t i = 0; i < m_keys.size(); ++i) {
    if (m_keys[i] == 0) continue;
    std::size_t j = slots::home(m_keys[i], size);
    while (new_keys[j] != 0) j = slots::next(j, size);
    new_keys[j] = m_keys[i];
    new_counts[j] = m_counts[i];
  }
  m_keys = std::move(new_keys);
  m_counts = std::move(new_counts);
}

std::uint8_t& SendLedger::count_of(std::uint64_t key) {
  if (key == 0) key = 1;
  if (slots::full(m_used, m_keys.size())) make_room(m_used * 2);
  const std::size_t size = m_keys.size();
  std::size_t i = slots::home(key, size);
  while (m_keys[i] != 0 && m_keys[i] != key) i = slots::next(i, size);
  if (m_keys[i] == 0) {
    m_keys[i] = key;
    ++m_used;
  }
  return m_counts[i];
}

void SendLedger::apply(const Record& r) {
  switch (r.kind) {
    case k_pass: {
      std::uint8_t& c = count_of(r.key);
      if (c < 255) ++c;
      const std::int64_t t = r.time;
      const auto slot = static_cast<std::size_t>(t % k_rate_seconds);
      if (m_second_of[slot] != t) {
        m_second_of[slot] = t;
        m_admitted_in[slot] = 0;
      }
      ++m_admitted_in[slot];
      break;
    }
    case k_release: {
      std::uint8_t& c = count_of(r.key);
      if (c > 0) --c;
      break;
    }
    case k_halt: m_halt_code = r.code == 0 ? 255 : r.code; break;
    case k_clear: m_halt_code = 0; break;
    default: break;
  }
}

bool SendLedger::catch_up(std::string& error) {
  struct stat st {};
  if (::fstat(m_fd, &st) != 0) {
    error = fmt::format("the guard's ledger: {}", std::strerror(errno));
    return false;
  }
  const auto size = static_cast<std::uint64_t>(st.st_size);
  std::vector<Record> buf(4096);
  while (m_offset + sizeof(Record) <= size) {
    const std::uint64_t want = std::min<std::uint64_t>((size - m_offset) / sizeof(Record), buf.size());
    const ssize_t got = ::pread(m_fd, buf.data(), want * sizeof(Record), static_cast<off_t>(m_offset));
    if (got < 0) {
      error = fmt::format("the guard's ledger: {}", std::strerror(errno));
      return false;
    }
    const auto records = static_cast<std::size_t>(got) / sizeof(Record);
    if (records == 0) break;
    for (std::size_t i = 0; i < records; ++i) apply(buf[i]);
    m_offset += records * sizeof(Record);
  }
  return true;
}

bool SendLedger::append(std::span<const Record> records, std::string& error) {
  const auto* p = reinterpret_cast<const char*>(records.data());
  std::size_t left = records.size_bytes();
  while (left > 0) {
    const ssize_t n = ::write(m_fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error = fmt::format("cannot write the guard's ledger: {}", std::strerror(errno));
      return false;
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  for (const auto& r : records) apply(r);
  m_offset += records.size_bytes();
  return true;
}

std::optional<Violation> SendLedger::admit(std::span<const std::uint64_t> keys, std::int64_t now,
                                           std::string& error, std::size_t* which) {
  error.clear();
  const Locked lock(m_fd);
  if (!lock.ok) {
    error = fmt::format("cannot lock the guard's ledger: {}", std::strerror(errno));
    return std::nullopt;
  }
  if (!catch_up(error)) return std::nullopt;
  if (m_halt_code != 0) {
    return Violation{0, limit_name(m_halt_code), "the guard's ledger",
                     "another sender of this campaign tripped this limit; every sender stops", ""};
  }
  auto trip = [&](std::uint8_t code, std::size_t index, std::string detail) -> std::optional<Violation> {
    if (which != nullptr) *which = index;
    const Record halt{0, static_cast<std::uint32_t>(now), k_halt, code, 0};
    (void)append(std::span(&halt, 1), error);
    return Violation{0, limit_name(code), "the guard's ledger", std::move(detail), ""};
  };
  // Counts as if the group went one message at a time (a key may repeat).
  std::vector<std::pair<std::size_t, std::uint8_t>> pending;  // slot-free: index, count before
  std::size_t seconds = m_seconds;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    std::uint8_t before = count_of(keys[i]);
    for (const auto& [j, _] : pending) {
      if (keys[j] == keys[i]) ++before;
    }
    if (before >= 2) {
      return trip(k_limit_third, i,
                  fmt::format("this recipient may already have {} messages of this campaign; a third would go out",
                              static_cast<int>(before)));
    }
    const std::size_t resends = m_limits.resends > 0 ? m_limits.resends : m_limits.window;
    if (before == 1 && ++seconds > resends) {
      return trip(k_limit_seconds, i,
                  fmt::format("{} recipients would get a second message in this run, more than the {} a resend "
                              "after a crash can explain (two senders at once, or a loop)",
                              seconds, resends));
    }
    pending.emplace_back(i, before);
  }
  if (m_limits.max_rate > 0) {
    std::uint64_t recent = 0;
    for (std::size_t s = 0; s < static_cast<std::size_t>(k_rate_seconds); ++s) {
      if (m_second_of[s] > now - k_rate_seconds) recent += m_admitted_in[s];
    }
    const double allowed = m_limits.max_rate * k_rate_seconds + static_cast<double>(m_limits.window);
    if (static_cast<double>(recent + keys.size()) > allowed) {
      return trip(k_limit_rate, 0,
                  fmt::format("{} messages in {} s would pass [guard] max_rate ({:.0f}/s)", recent + keys.size(),
                              k_rate_seconds, m_limits.max_rate));
    }
  }
  std::vector<Record> records;
  records.reserve(keys.size());
  for (const auto k : keys) records.push_back({k == 0 ? 1 : k, static_cast<std::uint32_t>(now), k_pass, 0, 0});
  if (!append(records, error)) return std::nullopt;
  m_seconds = seconds;
  return std::nullopt;
}

void SendLedger::release(std::span<const std::uint64_t> keys, std::int64_t now, std::string& error) {
  error.clear();
  if (keys.empty()) return;
  const Locked lock(m_fd);
  if (!lock.ok || !catch_up(error)) {
    if (error.empty()) error = fmt::format("cannot lock the guard's ledger: {}", std::strerror(errno));
    return;
  }
  std::vector<Record> records;
  records.reserve(keys.size());
  for (const auto k : keys) records.push_back({k == 0 ? 1 : k, static_cast<std::uint32_t>(now), k_release, 0, 0});
  (void)append(records, error);
}

void SendLedger::clear_halt(std::int64_t now, std::string& error) {
  error.clear();
  const Locked lock(m_fd);
  if (!lock.ok || !catch_up(error)) return;
  if (m_halt_code == 0) return;
  const Record clear{0, static_cast<std::uint32_t>(now), k_clear, 0, 0};
  (void)append(std::span(&clear, 1), error);
}

std::string SendLedger::halted() {
  std::string error;
  const Locked lock(m_fd);
  if (lock.ok) (void)catch_up(error);
  return m_halt_code == 0 ? std::string() : limit_name(m_halt_code);
}

}  // namespace blindcast::guard
