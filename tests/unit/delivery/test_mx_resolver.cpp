// MX resolution against a real DNS server: Debian's dnsmasq on 127.0.0.1 and
// a free port, serving test zones (RFC 5321 §5.1 order, RFC 7505 null MX,
// implicit MX, NXDOMAIN, hosts without addresses, TTLs).
#include <gtest/gtest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <thread>

#include "delivery/mx_resolver.hpp"
#include "test_support.hpp"

namespace blindcast::delivery {
namespace {

using Kind = MxRoute::Kind;

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// dnsmasq serving the zones below, authoritative for .test (anything else
// there is NXDOMAIN), every record with a TTL of `ttl` seconds.
class Dns {
 public:
  explicit Dns(int ttl) {
    // Another test may take the free port before dnsmasq binds it: then a
    // new port, up to three times.
    for (int attempt = 0; attempt < 3 && !start(ttl); ++attempt) stop();
  }
  ~Dns() { stop(); }
  Dns(const Dns&) = delete;
  Dns& operator=(const Dns&) = delete;

  [[nodiscard]] std::string server() const { return "127.0.0.1:" + std::to_string(port); }

  // Starts dnsmasq on a free port; true once it answers.
  bool start(int ttl) {
    port = free_port();
    const passwd* me = ::getpwuid(::getuid());
    const auto conf = dir.write("dnsmasq.conf",
                                "port=" + std::to_string(port) + "\nlisten-address=127.0.0.1\nbind-interfaces\n"
                                "no-resolv\nno-hosts\nlocal=/test/\npid-file=\nuser=" +
                                    std::string(me != nullptr ? me->pw_name : "nobody") +
                                    "\nlocal-ttl=" + std::to_string(ttl) + "\n" + k_zones);
    m_pid = ::fork();
    if (m_pid == 0) {
      const int null = ::open("/dev/null", O_WRONLY);
      ::dup2(null, 1);
      ::dup2(null, 2);
      ::execl("/usr/sbin/dnsmasq", "dnsmasq", "--keep-in-foreground", ("--conf-file=" + conf.string()).c_str(),
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ResolverSettings s;
    s.server = server();
    s.timeout = std::chrono::milliseconds(100);
    s.tries = 1;
    for (int i = 0; i < 100; ++i) {
      auto probe = MxResolver::create(s);
      if (probe && (*probe)->resolve("pref.test").kind == Kind::k_hosts) return true;
      int status = 0;
      if (::waitpid(m_pid, &status, WNOHANG) == m_pid) {  // it could not bind: gone
        m_pid = 0;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  void stop() {
    if (m_pid > 0) {
      ::kill(m_pid, SIGTERM);
      ::waitpid(m_pid, nullptr, 0);
      m_pid = 0;
    }
  }
  std::unique_ptr<MxResolver> resolver() const {
    ResolverSettings s;
    s.server = server();
    s.timeout = std::chrono::milliseconds(500);
    auto r = MxResolver::create(s);
    EXPECT_TRUE(r.has_value());
    return std::move(*r);
  }

  testing::TempDir dir;
  int port = 0;

 private:
  static constexpr const char* k_zones =
      // preferences: the lower first, whatever the order served
      "mx-host=pref.test,mx2.pref.test,20\n"
      "mx-host=pref.test,mx1.pref.test,10\n"
      "host-record=mx1.pref.test,127.0.0.2\n"
      "host-record=mx2.pref.test,127.0.0.3\n"
      // equal preferences, and a host shared with another domain
      "mx-host=equal.test,a.equal.test,10\n"
      "mx-host=equal.test,b.equal.test,10\n"
      "mx-host=equal.test,mx1.pref.test,30\n"
      "host-record=a.equal.test,127.0.0.4\n"
      "host-record=b.equal.test,127.0.0.5\n"
      // no MX: the domain's own addresses, IPv4 first
      "host-record=nomx.test,::6,127.0.0.6\n"
      // null MX (RFC 7505): MX 0 "." as raw RDATA
      "dns-rr=null.test,15,000000\n"
      // an MX host that does not exist, beside one that does
      "mx-host=half.test,ghost.half.test,5\n"
      "mx-host=half.test,mx1.pref.test,10\n"
      // only MX hosts that do not exist
      "mx-host=noaddr.test,ghost.noaddr.test,10\n";
  pid_t m_pid = -1;
};

std::vector<std::string> names(const MxRoute& r) {
  std::vector<std::string> out;
  for (const auto& h : r.hosts) out.push_back(h.name);
  return out;
}

TEST(MxResolver, HostsComeByPreferenceWithTheirAddresses) {
  Dns dns(60);
  auto r = dns.resolver()->resolve("PREF.test.");
  ASSERT_EQ(r.kind, Kind::k_hosts) << r.detail;
  EXPECT_FALSE(r.implicit);
  EXPECT_EQ(names(r), (std::vector<std::string>{"mx1.pref.test", "mx2.pref.test"}));
  EXPECT_EQ(r.hosts[0].preference, 10);
  EXPECT_EQ(r.hosts[0].addresses, std::vector<std::string>{"127.0.0.2"});
  EXPECT_EQ(r.hosts[1].addresses, std::vector<std::string>{"127.0.0.3"});
  EXPECT_EQ(r.ttl, std::chrono::seconds(60));
}

TEST(MxResolver, EqualPreferencesAreSpreadOnEveryAnswer) {
  Dns dns(60);
  auto resolver = dns.resolver();
  std::map<std::string, int> first;
  for (int i = 0; i < 200; ++i) {
    auto r = resolver->resolve("equal.test");
    ASSERT_EQ(r.kind, Kind::k_hosts) << r.detail;
    ASSERT_EQ(r.hosts.size(), 3U);
    EXPECT_EQ(r.hosts[2].name, "mx1.pref.test") << "a higher preference stays behind";
    ++first[r.hosts[0].name];
  }
  EXPECT_GE(first["a.equal.test"], 50);
  EXPECT_GE(first["b.equal.test"], 50);
  EXPECT_LE(resolver->queries(), 7U) << "one MX query and A+AAAA per host; the rest from the cache";
}

// Domains hosted by one provider name the same MX hosts: each host's
// addresses are asked once per batch, not once per domain.
TEST(MxResolver, HostsSharedByDomainsAreAskedOnce) {
  Dns dns(60);
  auto resolver = dns.resolver();
  const std::vector<std::string> domains{"pref.test", "equal.test", "half.test", "pref.test"};
  auto r = resolver->resolve(domains);
  ASSERT_EQ(r[0].kind, Kind::k_hosts);
  ASSERT_EQ(r[3].kind, Kind::k_hosts);
  // 3 MX queries; A and AAAA for mx1.pref, mx2.pref, a.equal, b.equal, ghost.half.
  EXPECT_EQ(resolver->queries(), 3U + 2U * 5U);
}

TEST(MxResolver, WithoutMxTheDomainItselfIsTheHost) {
  Dns dns(60);
  auto r = dns.resolver()->resolve("nomx.test");
  ASSERT_EQ(r.kind, Kind::k_hosts) << r.detail;
  EXPECT_TRUE(r.implicit);
  ASSERT_EQ(r.hosts.size(), 1U);
  EXPECT_EQ(r.hosts[0].name, "nomx.test");
  EXPECT_EQ(r.hosts[0].addresses, (std::vector<std::string>{"127.0.0.6", "::6"}));
}

TEST(MxResolver, NullMxAndMissingDomainsArePermanentWithoutAConnection) {
  Dns dns(60);
  auto resolver = dns.resolver();
  const std::vector<std::string> domains{"null.test", "missing.test", "noaddr.test", "half.test"};
  auto r = resolver->resolve(domains);
  EXPECT_EQ(r[0].kind, Kind::k_null_mx) << r[0].detail;
  EXPECT_TRUE(r[0].permanent());
  EXPECT_TRUE(r[0].hosts.empty());
  EXPECT_NE(r[0].detail.find("RFC 7505"), std::string::npos);
  EXPECT_EQ(r[1].kind, Kind::k_no_domain) << r[1].detail;
  EXPECT_TRUE(r[1].permanent());
  EXPECT_EQ(r[2].kind, Kind::k_no_hosts) << r[2].detail;
  EXPECT_TRUE(r[2].permanent());
  // A host without an address is skipped; the next one is used.
  ASSERT_EQ(r[3].kind, Kind::k_hosts) << r[3].detail;
  EXPECT_EQ(names(r[3]), std::vector<std::string>{"mx1.pref.test"});
}

TEST(MxResolver, AnswersAreKeptForTheirTtlAndAskedAgainAfter) {
  Dns dns(1);
  auto resolver = dns.resolver();
  ASSERT_EQ(resolver->resolve("pref.test").kind, Kind::k_hosts);
  const auto asked = resolver->queries();
  ASSERT_EQ(resolver->resolve("pref.test").kind, Kind::k_hosts);
  EXPECT_EQ(resolver->queries(), asked) << "within the TTL: from the cache";
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  ASSERT_EQ(resolver->resolve("pref.test").kind, Kind::k_hosts);
  EXPECT_GT(resolver->queries(), asked) << "past the TTL: asked again";
}

TEST(MxResolver, AServerThatDoesNotAnswerIsTemporary) {
  ResolverSettings s;
  s.server = "127.0.0.1:" + std::to_string(free_port());  // nothing listens there
  s.timeout = std::chrono::milliseconds(200);
  s.tries = 1;
  auto resolver = MxResolver::create(s);
  ASSERT_TRUE(resolver.has_value());
  auto r = (*resolver)->resolve("pref.test");
  EXPECT_EQ(r.kind, Kind::k_temporary);
  EXPECT_FALSE(r.permanent());
  EXPECT_NE(r.detail.find("pref.test"), std::string::npos);
}

TEST(MxResolver, ABadServerSettingIsRefusedWithTheFix) {
  ResolverSettings s;
  s.server = "dns.example.com:fifty-three";
  auto r = MxResolver::create(s);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("[transport] resolver"), std::string::npos);
  EXPECT_NE(r.error().message.find("HOST:PORT"), std::string::npos);
}

}  // namespace
}  // namespace blindcast::delivery
