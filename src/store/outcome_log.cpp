#include "store/outcome_log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>

#include <fmt/format.h>

namespace blindcast::store {

namespace {

// A record: payload length (4 bytes), checksum of the payload (8), payload;
// integers little-endian. The checksum only has to catch a torn or garbled
// tail, not an adversary: FNV-1a over the payload.
constexpr std::size_t k_header = 12;
constexpr std::uint32_t k_max_payload = 1 << 20;
constexpr std::string_view k_magic = "blindcast outcome log 1 ";
constexpr std::size_t k_fixed = 35;     // an outcome's payload before the reply
constexpr std::size_t k_data_end = 25;  // a data-end record's payload
enum : std::uint8_t { k_maybe_delivered = 1, k_attempted = 2, k_suppress = 4 };

std::uint64_t checksum(std::string_view bytes) {
  std::uint64_t h = 14695981039346656037ULL;
  for (const char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

void put(std::string& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i, v >>= 8) out.push_back(static_cast<char>(v & 0xFF));
}

std::uint64_t get(std::string_view in, std::size_t at, int bytes) {
  std::uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(in[at + static_cast<std::size_t>(i)]);
  return v;
}

std::string turn_path(const std::string& base, int turn) { return base + (turn == 0 ? "-outcomes-a" : "-outcomes-b"); }

std::unexpected<Error> io_error(const std::string& path, std::string_view what) {
  return fail(fmt::format("{}: cannot {} the outcome log: {} — sending stopped; fix the cause (disk space, "
                          "permissions) and run the command again",
                          path, what, std::strerror(errno)),
              ExitCode::k_runtime);
}

std::unexpected<Error> io_warning(const std::string& path, std::string_view what) {
  return fail(fmt::format("{}: cannot {} the outcome log: {} (it grows until the next run; nothing is lost)",
                          path, what, std::strerror(errno)),
              ExitCode::k_runtime);
}

}  // namespace

void encode_log_record(const LogRecord& entry, std::string& out) {
  const std::size_t start = out.size();
  out.append(k_header, '\0');
  const Outcome& o = entry.outcome;
  put(out, static_cast<std::uint8_t>(entry.kind), 1);
  put(out, static_cast<std::uint64_t>(entry.at), 8);
  put(out, static_cast<std::uint64_t>(o.id), 8);
  if (entry.kind == LogRecord::Kind::k_data_end) {
    put(out, static_cast<std::uint64_t>(o.flight), 8);
  } else {
    put(out, static_cast<std::uint8_t>(o.state), 1);
    put(out, static_cast<std::uint64_t>(o.next_attempt_at), 8);
    put(out,
        (o.maybe_delivered ? k_maybe_delivered : 0) | (o.attempted ? k_attempted : 0) | (o.suppress ? k_suppress : 0),
        1);
    put(out, static_cast<std::uint64_t>(o.flight), 8);
    // A record the reader would refuse (over k_max_payload) would hide
    // every record after it: the reply is cut to fit.
    out.append(std::string_view(o.reply).substr(0, k_max_payload - k_fixed));
  }
  const std::string_view payload(out.data() + start + k_header, out.size() - start - k_header);
  std::string header;
  put(header, payload.size(), 4);
  put(header, checksum(payload), 8);
  std::memcpy(out.data() + start, header.data(), k_header);
}

std::vector<LogRecord> decode_log_records(std::string_view bytes, std::size_t& consumed) {
  std::vector<LogRecord> out;
  std::size_t at = 0;
  while (bytes.size() - at >= k_header) {
    const auto size = get(bytes, at, 4);
    if (size > k_max_payload || size > bytes.size() - at - k_header) break;
    const std::string_view p = bytes.substr(at + k_header, size);
    if (p.size() < k_data_end || checksum(p) != get(bytes, at + 4, 8)) break;
    LogRecord e;
    e.at = static_cast<std::int64_t>(get(p, 1, 8));
    Outcome& o = e.outcome;
    o.id = static_cast<std::int64_t>(get(p, 9, 8));
    const auto kind = static_cast<std::uint8_t>(p[0]);
    if (kind == static_cast<std::uint8_t>(LogRecord::Kind::k_data_end) && p.size() == k_data_end) {
      e.kind = LogRecord::Kind::k_data_end;
      o.flight = static_cast<std::int64_t>(get(p, 17, 8));
    } else if (kind == static_cast<std::uint8_t>(LogRecord::Kind::k_outcome) && p.size() >= k_fixed &&
               static_cast<std::uint8_t>(p[17]) < k_state_count) {
      o.state = static_cast<RecipientState>(static_cast<std::uint8_t>(p[17]));
      o.next_attempt_at = static_cast<std::int64_t>(get(p, 18, 8));
      const auto flags = static_cast<std::uint8_t>(p[26]);
      o.maybe_delivered = (flags & k_maybe_delivered) != 0;
      o.attempted = (flags & k_attempted) != 0;
      o.suppress = (flags & k_suppress) != 0;
      o.flight = static_cast<std::int64_t>(get(p, 27, 8));
      o.reply.assign(p.substr(k_fixed));
    } else {
      break;
    }
    out.push_back(std::move(e));
    at += k_header + size;
  }
  consumed = at;
  return out;
}

const std::string& boot_id() {
  static const std::string id = [] {
    std::string out;
    if (FILE* f = std::fopen("/proc/sys/kernel/random/boot_id", "re")) {
      char buf[64] = {0};
      if (std::fgets(buf, sizeof buf, f) != nullptr) out = buf;
      std::fclose(f);
    }
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    return out;
  }();
  return id;
}

OutcomeLog::OutcomeLog(std::string store_path) : m_base(std::move(store_path)) {}

OutcomeLog::~OutcomeLog() {
  for (const int fd : m_fd) {
    if (fd >= 0) ::close(fd);
  }
}

Result<LogContents> OutcomeLog::read(const std::string& store_path) {
  LogContents out;
  if (store_path.empty()) return out;
  std::string ids[2];
  for (int turn = 0; turn < 2; ++turn) {
    const std::string path = turn_path(store_path, turn);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) continue;
      return io_error(path, "open");
    }
    std::string bytes;
    char buf[65536];
    while (true) {
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        const int err = errno;
        ::close(fd);
        errno = err;
        return io_error(path, "read");
      }
      if (n == 0) break;
      bytes.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    std::string_view rest(bytes);
    if (rest.starts_with(k_magic)) {
      const auto end = rest.find('\n');
      if (end == std::string_view::npos) continue;  // a torn header: nothing after it was written
      ids[turn] = std::string(rest.substr(k_magic.size(), end - k_magic.size()));
      rest.remove_prefix(end + 1);
    }
    std::size_t consumed = 0;
    for (auto& e : decode_log_records(rest, consumed)) out.records.push_back(std::move(e));
  }
  if (!ids[0].empty() && ids[0] == ids[1]) out.id = ids[0];
  return out;
}

Result<void> OutcomeLog::remove(const std::string& store_path) {
  if (store_path.empty()) return {};
  for (int turn = 0; turn < 2; ++turn) {
    const std::string path = turn_path(store_path, turn);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return io_error(path, "remove");
  }
  return {};
}

Result<void> OutcomeLog::open() {
  if (m_base.empty()) return {};
  std::random_device random;
  m_id = fmt::format("{:08x}{:08x}{:08x}{:08x}", random(), random(), random(), random());
  const std::string header = std::string(k_magic) + m_id + "\n";
  for (int turn = 0; turn < 2; ++turn) {
    const std::string path = turn_path(m_base, turn);
    if (m_fd[turn] >= 0) ::close(m_fd[turn]);
    m_fd[turn] = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (m_fd[turn] < 0) {
      m_id.clear();
      return io_error(path, "create");
    }
    const ssize_t n = ::write(m_fd[turn], header.data(), header.size());
    if (n != static_cast<ssize_t>(header.size())) {
      if (n >= 0) errno = ENOSPC;
      m_id.clear();
      return io_error(path, "create");
    }
    m_size[turn] = header.size();
  }
  m_header = header.size();
  return {};
}

Result<void> OutcomeLog::append(std::span<const LogRecord> entries) {
  if (m_base.empty() || entries.empty()) return {};
  const int turn = m_active;
  if (m_fd[turn] < 0) return fail(turn_path(m_base, turn) + ": the outcome log is not open", ExitCode::k_runtime);
  if (m_broken) {
    return fail(turn_path(m_base, turn) + ": an earlier write to the outcome log failed — sending stopped",
                ExitCode::k_runtime);
  }
  m_buffer.clear();
  for (const auto& e : entries) encode_log_record(e, m_buffer);
  std::size_t done = 0;
  while (done < m_buffer.size()) {
    const ssize_t n = ::write(m_fd[turn], m_buffer.data() + done, m_buffer.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      // Part of a record may be in the file: cut it back to whole records,
      // or the reader stops there (and at everything appended after it).
      const int err = n < 0 ? errno : ENOSPC;
      (void)::ftruncate(m_fd[turn], static_cast<off_t>(m_size[turn]));
      m_broken = true;  // whatever the cut did, nothing more goes behind it
      errno = err;
      return io_error(turn_path(m_base, turn), "write");
    }
    done += static_cast<std::size_t>(n);
  }
  m_size[turn] += m_buffer.size();
  return {};
}

int OutcomeLog::seal() {
  const int sealed = m_active;
  m_active = 1 - m_active;
  return sealed;
}

Result<void> OutcomeLog::release(int turn) {
  if (m_base.empty() || m_fd[turn] < 0 || m_size[turn] == m_header) return {};
  if (::ftruncate(m_fd[turn], static_cast<off_t>(m_header)) != 0) return io_warning(turn_path(m_base, turn), "empty");
  m_size[turn] = m_header;
  return {};
}

}  // namespace blindcast::store
