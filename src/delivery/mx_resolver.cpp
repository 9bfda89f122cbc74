#include "delivery/mx_resolver.hpp"

#include <arpa/inet.h>
#include <ares.h>
#include <sys/select.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <optional>
#include <random>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include "util/strings.hpp"

namespace blindcast::delivery {

namespace {

using Clock = std::chrono::steady_clock;

constexpr int k_class_in = 1;
constexpr int k_type_a = 1;
constexpr int k_type_soa = 6;
constexpr int k_type_mx = 15;
constexpr int k_type_txt = 16;
constexpr int k_type_aaaa = 28;

// A DNS name as the caches key it: lower case, without the root's dot.
std::string lower(std::string_view s) {
  std::string out = util::to_lower_ascii(s);
  while (!out.empty() && out.back() == '.') out.pop_back();
  return out;
}

std::chrono::seconds clamp_ttl(std::int64_t seconds) {
  return std::chrono::seconds(std::clamp<std::int64_t>(seconds, MxResolver::k_min_ttl.count(),
                                                       MxResolver::k_max_ttl.count()));
}

// One resource record of an answer, copied out of the message: an MX's
// preference and exchange ("" for the root: a null MX), or an address.
struct Record {
  int type = 0;
  std::int64_t ttl = 0;
  int preference = 0;
  std::string text;
};

// What a DNS message holds: the answer section's records and, from the
// authority section, a negative answer's TTL (RFC 2308: the smaller of the
// SOA's TTL and its MINIMUM field).
struct Parsed {
  std::vector<Record> answers;
  std::optional<std::int64_t> negative_ttl;
};

std::optional<std::string> expand(const unsigned char* at, const unsigned char* abuf, int alen, long& used) {
  char* name = nullptr;
  if (ares_expand_name(at, abuf, alen, &name, &used) != ARES_SUCCESS) return std::nullopt;
  std::string out = name;
  ares_free_string(name);
  return out;
}

std::uint32_t be(const unsigned char* p, int bytes) {
  std::uint32_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | p[i];
  return v;
}

// Walks the message (names may point anywhere in it, so this runs while it
// exists); nullopt when it is malformed.
std::optional<Parsed> parse(const unsigned char* abuf, int alen) {
  if (abuf == nullptr || alen < 12) return std::nullopt;
  const int questions = static_cast<int>(be(abuf + 4, 2));
  const int answers = static_cast<int>(be(abuf + 6, 2));
  const int authority = static_cast<int>(be(abuf + 8, 2));
  const unsigned char* p = abuf + 12;
  const unsigned char* end = abuf + alen;
  for (int i = 0; i < questions; ++i) {
    long used = 0;
    if (!expand(p, abuf, alen, used) || end - p < used + 4) return std::nullopt;
    p += used + 4;
  }
  Parsed out;
  for (int i = 0; i < answers + authority; ++i) {
    long used = 0;
    if (!expand(p, abuf, alen, used) || end - p < used + 10) return std::nullopt;
    p += used;
    Record r;
    r.type = static_cast<int>(be(p, 2));
    const int cls = static_cast<int>(be(p + 2, 2));
    r.ttl = be(p + 4, 4) & 0x7fffffffU;
    const int rdlen = static_cast<int>(be(p + 8, 2));
    p += 10;
    if (end - p < rdlen) return std::nullopt;
    const unsigned char* rdata = p;
    p += rdlen;
    if (cls != k_class_in) continue;
    if (i >= answers) {
      if (r.type != k_type_soa) continue;
      long a = 0;
      long b = 0;
      if (!expand(rdata, abuf, alen, a) || !expand(rdata + a, abuf, alen, b) || rdlen < a + b + 20) {
        return std::nullopt;
      }
      out.negative_ttl = std::min<std::int64_t>(r.ttl, be(rdata + a + b + 16, 4));
      continue;
    }
    char text[INET6_ADDRSTRLEN] = {0};
    if (r.type == k_type_mx) {
      long n = 0;
      if (rdlen < 3) return std::nullopt;
      r.preference = static_cast<int>(be(rdata, 2));
      auto name = expand(rdata + 2, abuf, alen, n);
      if (!name) return std::nullopt;
      r.text = lower(*name);
    } else if (r.type == k_type_txt) {
      // One or more <length><bytes> strings, joined (RFC 7208 §3.3 style).
      for (int at = 0; at < rdlen;) {
        const int len = rdata[at];
        if (at + 1 + len > rdlen) return std::nullopt;
        r.text.append(reinterpret_cast<const char*>(rdata + at + 1), static_cast<std::size_t>(len));
        at += 1 + len;
      }
    } else if (r.type == k_type_a && rdlen == 4) {
      ::inet_ntop(AF_INET, rdata, text, sizeof text);
      r.text = text;
    } else if (r.type == k_type_aaaa && rdlen == 16) {
      ::inet_ntop(AF_INET6, rdata, text, sizeof text);
      r.text = text;
    } else {
      continue;  // a CNAME on the way, or anything else
    }
    out.answers.push_back(std::move(r));
  }
  return out;
}

// The outcome of one query.
struct Answer {
  enum class Kind { k_records, k_no_data, k_no_domain, k_temporary } kind = Kind::k_temporary;
  std::string detail;
  std::optional<Parsed> parsed;
};

Answer classify(int status, const unsigned char* abuf, int alen) {
  Answer a;
  a.parsed = parse(abuf, alen);
  switch (status) {
    case ARES_SUCCESS:
      a.kind = a.parsed ? Answer::Kind::k_records : Answer::Kind::k_temporary;
      if (!a.parsed) a.detail = "a malformed DNS answer";
      break;
    case ARES_ENODATA: a.kind = Answer::Kind::k_no_data; break;
    case ARES_ENOTFOUND: a.kind = Answer::Kind::k_no_domain; break;
    default:
      a.kind = Answer::Kind::k_temporary;
      a.detail = ares_strerror(status);
      break;
  }
  return a;
}

}  // namespace

struct MxResolver::Impl {
  ares_channel channel = nullptr;
  std::mt19937_64 rng{std::random_device{}()};
  std::uint64_t sent = 0;

  struct CachedRoute {
    MxRoute route;
    Clock::time_point expires;
  };
  std::unordered_map<std::string, CachedRoute> routes;
  // Address records of a host (MX hosts are shared by many domains).
  struct HostAddresses {
    std::vector<std::string> addresses;
    std::int64_t ttl = 0;
    bool temporary = false;     // a lookup failed for now
    std::string detail;
    Clock::time_point expires;
  };
  std::unordered_map<std::string, HostAddresses> hosts;

  // ---- queries of one resolve() call
  struct MxQuery {
    Impl* owner = nullptr;
    std::string domain;
    Answer answer;
  };
  struct AddrQuery {
    Impl* owner = nullptr;
    std::string host;
    int type = 0;
    Answer answer;
  };

  std::size_t outstanding = 0;             // queries sent, not answered
  std::atomic<bool> interrupted{false};    // interrupt(): give up what is under way

  static void on_mx(void* arg, int status, int /*timeouts*/, unsigned char* abuf, int alen) {
    auto* q = static_cast<MxQuery*>(arg);
    q->answer = classify(status, abuf, alen);
    --q->owner->outstanding;
  }
  static void on_addr(void* arg, int status, int /*timeouts*/, unsigned char* abuf, int alen) {
    auto* q = static_cast<AddrQuery*>(arg);
    q->answer = classify(status, abuf, alen);
    --q->owner->outstanding;
  }

  // Sends `n` queries (`send(i)` sends the i-th), at most k_in_flight at a
  // time (a burst of thousands of UDP queries overflows a server's socket
  // buffer, and each query lost costs a timeout), a new one as each is
  // answered, and runs until every one has its answer or interrupt().
  static constexpr std::size_t k_in_flight = 64;
  template <typename Send>
  void send_windowed(std::size_t n, Send&& send) {
    std::size_t next = 0;
    while (next < n || outstanding > 0) {
      while (next < n && outstanding < k_in_flight) {
        ++outstanding;  // before sending: an immediate failure answers at once
        ++sent;
        send(next++);
      }
      if (interrupted.load()) {
        ares_cancel(channel);  // every query under way is answered ARES_ECANCELLED
        return;
      }
      step();
    }
  }

  // One round of c-ares: waits for an answer or a timeout (at most 100 ms,
  // so that interrupt() is seen), and handles what came.
  void step() {
    fd_set readers;
    fd_set writers;
    FD_ZERO(&readers);
    FD_ZERO(&writers);
    const int n = ares_fds(channel, &readers, &writers);
    if (n == 0) return;
    timeval most{0, 100000};
    timeval tv{};
    timeval* wait = ares_timeout(channel, &most, &tv);
    ::select(n, &readers, &writers, nullptr, wait);
    ares_process(channel, &readers, &writers);
  }

  // Looks up the addresses of `names` not fresh in `hosts` (each once).
  void lookup_hosts(std::vector<std::string> names, Clock::time_point now) {
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    std::vector<std::unique_ptr<AddrQuery>> queries;
    for (const auto& name : names) {
      if (auto it = hosts.find(name); it != hosts.end() && it->second.expires > now) continue;
      for (const int type : {k_type_a, k_type_aaaa}) {
        queries.push_back(std::make_unique<AddrQuery>(AddrQuery{this, name, type, {}}));
      }
    }
    if (queries.empty()) return;
    send_windowed(queries.size(), [&](std::size_t i) {
      ares_query(channel, queries[i]->host.c_str(), k_class_in, queries[i]->type, &Impl::on_addr, queries[i].get());
    });
    std::unordered_map<std::string, HostAddresses> fresh;
    for (const auto& q : queries) {
      auto& h = fresh.try_emplace(q->host, HostAddresses{{}, k_max_ttl.count(), false, {}, {}}).first->second;
      const auto& a = q->answer;
      if (a.kind == Answer::Kind::k_temporary) {
        h.temporary = true;
        h.detail = a.detail;
        continue;
      }
      if (a.kind != Answer::Kind::k_records) {
        h.ttl = std::min(h.ttl, a.parsed && a.parsed->negative_ttl ? *a.parsed->negative_ttl : k_negative_ttl.count());
        continue;
      }
      for (const auto& r : a.parsed->answers) {
        if (r.type != k_type_a && r.type != k_type_aaaa) continue;
        h.addresses.push_back(r.text);
        h.ttl = std::min(h.ttl, r.ttl);
      }
    }
    for (auto& [name, h] : fresh) {
      // IPv4 first (most receiving MTAs reach their fullest over it), each family in answer order.
      std::stable_partition(h.addresses.begin(), h.addresses.end(),
                            [](const std::string& a) { return a.find(':') == std::string::npos; });
      // A lookup that failed for now (A or AAAA) is asked again soon, even
      // beside addresses of the other family.
      const auto ttl = h.temporary ? std::min(k_temporary_ttl, clamp_ttl(h.ttl)) : clamp_ttl(h.ttl);
      h.expires = now + ttl;
      h.ttl = ttl.count();
      hosts[name] = std::move(h);
    }
  }

  // The hosts an MX answer names (the domain itself when it has no MX), or
  // the route that ends there (temporary failure, no domain, null MX).
  // `ttl` takes the MX answer's.
  static std::optional<MxRoute> hosts_of(const std::string& domain, const Answer& mx, std::vector<MxHost>& wanted,
                                         std::int64_t& ttl, bool& implicit) {
    MxRoute route;
    switch (mx.kind) {
      case Answer::Kind::k_temporary:
        route.kind = MxRoute::Kind::k_temporary;
        route.detail = fmt::format("the MX lookup of {} failed: {}", domain, mx.detail);
        route.ttl = k_temporary_ttl;
        return route;
      case Answer::Kind::k_no_domain:
        route.kind = MxRoute::Kind::k_no_domain;
        route.detail = fmt::format("the domain {} does not exist (NXDOMAIN)", domain);
        route.ttl = clamp_ttl(mx.parsed && mx.parsed->negative_ttl ? *mx.parsed->negative_ttl
                                                                    : k_negative_ttl.count());
        return route;
      case Answer::Kind::k_no_data:
        // RFC 5321 §5.1: no MX records, the domain itself is the host.
        implicit = true;
        wanted.push_back({domain, 0, {}});
        ttl = std::min(ttl, mx.parsed && mx.parsed->negative_ttl ? *mx.parsed->negative_ttl : k_negative_ttl.count());
        return std::nullopt;
      case Answer::Kind::k_records: break;
    }
    bool null_mx = false;
    for (const auto& r : mx.parsed->answers) {
      if (r.type != k_type_mx) continue;
      ttl = std::min(ttl, r.ttl);
      if (r.text.empty()) {
        null_mx = true;  // RFC 7505: "0 ."
        continue;
      }
      if (std::none_of(wanted.begin(), wanted.end(), [&](const MxHost& h) { return h.name == r.text; })) {
        wanted.push_back({r.text, r.preference, {}});
      }
    }
    if (null_mx && wanted.empty()) {
      route.kind = MxRoute::Kind::k_null_mx;
      route.detail = fmt::format("{} accepts no mail (null MX, RFC 7505)", domain);
      route.ttl = clamp_ttl(ttl);
      return route;
    }
    if (wanted.empty()) {  // an answer with only CNAMEs or other types
      implicit = true;
      wanted.push_back({domain, 0, {}});
    }
    std::stable_sort(wanted.begin(), wanted.end(),
                     [](const MxHost& a, const MxHost& b) { return a.preference < b.preference; });
    return std::nullopt;
  }

  // The route of `domain`: `wanted` with the addresses the host cache holds.
  MxRoute assemble(const std::string& domain, std::vector<MxHost> wanted, std::int64_t ttl, bool implicit) {
    MxRoute route;
    route.implicit = implicit;
    bool temporary = false;
    std::string why;
    for (auto& h : wanted) {
      const auto it = hosts.find(h.name);
      if (it == hosts.end()) continue;
      ttl = std::min(ttl, it->second.ttl);
      if (it->second.addresses.empty()) {
        temporary = temporary || it->second.temporary;
        if (why.empty()) why = it->second.temporary ? it->second.detail : "no address records";
        continue;
      }
      h.addresses = it->second.addresses;
      route.hosts.push_back(std::move(h));
    }
    if (!route.hosts.empty()) {
      route.kind = MxRoute::Kind::k_hosts;
      route.ttl = clamp_ttl(ttl);
      return route;
    }
    route.kind = temporary ? MxRoute::Kind::k_temporary : MxRoute::Kind::k_no_hosts;
    route.detail = implicit ? fmt::format("{} has neither MX nor address records", domain)
                            : fmt::format("no MX host of {} has an address ({})", domain, why);
    if (temporary) route.detail = fmt::format("the address lookup for {} failed: {}", domain, why);
    route.ttl = temporary ? k_temporary_ttl : clamp_ttl(ttl);
    return route;
  }

  // Shuffles hosts of equal preference (RFC 5321 §5.1), on every answer.
  MxRoute spread(MxRoute route) {
    auto begin = route.hosts.begin();
    while (begin != route.hosts.end()) {
      auto end = std::find_if(begin, route.hosts.end(), [&](const MxHost& h) { return h.preference != begin->preference; });
      std::shuffle(begin, end, rng);
      begin = end;
    }
    return route;
  }

  std::vector<MxRoute> resolve(std::span<const std::string> domains) {
    const auto now = Clock::now();
    std::vector<std::string> names(domains.size());
    std::vector<std::unique_ptr<MxQuery>> queries;
    std::unordered_set<std::string> asked;
    for (std::size_t i = 0; i < domains.size(); ++i) {
      names[i] = lower(domains[i]);
      if (auto it = routes.find(names[i]); it != routes.end() && it->second.expires > now) continue;
      if (!asked.insert(names[i]).second) continue;
      queries.push_back(std::make_unique<MxQuery>(MxQuery{this, names[i], {}}));
    }
    send_windowed(queries.size(), [&](std::size_t i) {
      ares_query(channel, queries[i]->domain.c_str(), k_class_in, k_type_mx, &Impl::on_mx, queries[i].get());
    });
    // Then the addresses of every host named, at once.
    struct Pending {
      std::string domain;
      std::vector<MxHost> wanted;
      std::int64_t ttl = k_max_ttl.count();
      bool implicit = false;
    };
    std::vector<Pending> pending;
    std::vector<std::string> host_names;
    for (const auto& q : queries) {
      Pending p{q->domain, {}, k_max_ttl.count(), false};
      if (auto ended = hosts_of(q->domain, q->answer, p.wanted, p.ttl, p.implicit)) {
        routes[q->domain] = {*ended, now + ended->ttl};
        continue;
      }
      for (const auto& h : p.wanted) host_names.push_back(h.name);
      pending.push_back(std::move(p));
    }
    lookup_hosts(std::move(host_names), now);
    for (auto& p : pending) {
      auto route = assemble(p.domain, std::move(p.wanted), p.ttl, p.implicit);
      routes[p.domain] = {route, now + route.ttl};
    }
    std::vector<MxRoute> out;
    out.reserve(names.size());
    for (const auto& name : names) out.push_back(spread(routes[name].route));
    return out;
  }
};

Result<std::unique_ptr<MxResolver>> MxResolver::create(const ResolverSettings& settings) {
  static std::once_flag initialised;
  static int init_status = ARES_SUCCESS;
  std::call_once(initialised, [] { init_status = ares_library_init(ARES_LIB_INIT_ALL); });
  if (init_status != ARES_SUCCESS) {
    return fail(fmt::format("resolver: cannot start c-ares: {}", ares_strerror(init_status)), ExitCode::k_runtime);
  }
  auto impl = std::make_unique<Impl>();
  ares_options options{};
  options.timeout = static_cast<int>(settings.timeout.count());
  options.tries = std::max(settings.tries, 1);
  // No search domains and no hosts file: an MX lookup asks the DNS about
  // exactly the domain given.
  options.ndots = 0;
  const int mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_NDOTS;
  if (const int rc = ares_init_options(&impl->channel, &options, mask); rc != ARES_SUCCESS) {
    return fail(fmt::format("resolver: cannot start c-ares: {}", ares_strerror(rc)), ExitCode::k_runtime);
  }
  if (!settings.server.empty()) {
    if (const int rc = ares_set_servers_ports_csv(impl->channel, settings.server.c_str()); rc != ARES_SUCCESS) {
      return fail(fmt::format("[transport] resolver = \"{}\": not a DNS server address ({}); write HOST or "
                              "HOST:PORT, e.g. \"127.0.0.1:53\"",
                              settings.server, ares_strerror(rc)),
                  ExitCode::k_usage);
    }
  }
  return std::unique_ptr<MxResolver>(new MxResolver(std::move(impl)));
}

MxResolver::MxResolver(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}

MxResolver::~MxResolver() {
  if (m_impl->channel != nullptr) ares_destroy(m_impl->channel);
}

std::vector<MxRoute> MxResolver::resolve(std::span<const std::string> domains) { return m_impl->resolve(domains); }

MxRoute MxResolver::resolve(const std::string& domain) { return m_impl->resolve(std::span(&domain, 1)).front(); }

std::uint64_t MxResolver::queries() const { return m_impl->sent; }

std::optional<std::vector<std::string>> MxResolver::txt(const std::string& name) {
  Impl& p = *m_impl;
  Impl::MxQuery q{&p, lower(name), {}};
  p.send_windowed(1, [&](std::size_t) {
    ares_query(p.channel, q.domain.c_str(), k_class_in, k_type_txt, &Impl::on_mx, &q);
  });
  std::vector<std::string> out;
  if (q.answer.kind == Answer::Kind::k_temporary) return std::nullopt;
  if (q.answer.kind == Answer::Kind::k_records) {
    for (const auto& r : q.answer.parsed->answers) {
      if (r.type == k_type_txt) out.push_back(r.text);
    }
  }
  return out;
}

std::vector<std::string> MxResolver::addresses(const std::string& host) {
  const std::string name = lower(host);
  m_impl->lookup_hosts({name}, Clock::now());
  const auto it = m_impl->hosts.find(name);
  return it == m_impl->hosts.end() ? std::vector<std::string>() : it->second.addresses;
}

void MxResolver::interrupt() { m_impl->interrupted.store(true); }

}  // namespace blindcast::delivery
