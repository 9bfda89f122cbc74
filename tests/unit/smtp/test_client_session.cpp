// Transcript tests: the server's lines in, the client's lines and events out.
#include <gtest/gtest.h>

#include <deque>
#include <random>

#include "smtp/client_session.hpp"

namespace blindcast::smtp {
namespace {

using K = SessionEvent::Kind;

const std::string k_data = "From: a@example.com\r\nTo: b@example.org\r\n\r\nHello\r\n.hidden dot\r\n";

class Transcript {
 public:
  explicit Transcript(SessionConfig c = {}) : s(std::move(c)) {}
  // Feeds `server` and returns what the client wrote.
  std::string step(const std::string& server) {
    s.receive(server);
    auto ev = s.take_events();
    events.insert(events.end(), ev.begin(), ev.end());
    return s.take_output();
  }
  std::vector<K> kinds() const {
    std::vector<K> k;
    for (const auto& e : events) k.push_back(e.kind);
    return k;
  }
  const SessionEvent* result(std::uint64_t tag) const {
    for (const auto& e : events) {
      if (e.kind == K::k_result && e.tag == tag) return &e;
    }
    return nullptr;
  }
  void submit(std::uint64_t tag, const std::string& rcpt = "b@example.org") {
    rcpts.push_back(rcpt);
    s.submit({tag, "a@example.com", rcpts.back(), k_data, std::nullopt});
    auto ev = s.take_events();
    events.insert(events.end(), ev.begin(), ev.end());
  }
  ClientSession s;
  std::vector<SessionEvent> events;
  std::deque<std::string> rcpts;
};

const std::string k_ehlo_pipelining = "250-mx.example\r\n250-PIPELINING\r\n250-SIZE 100000\r\n250 8BITMIME\r\n";
const std::string k_stuffed = "From: a@example.com\r\nTo: b@example.org\r\n\r\nHello\r\n..hidden dot\r\n.\r\n";

TEST(ClientSession, PipelinedHappyPathThenSecondMessage) {
  Transcript t;
  EXPECT_EQ(t.step("220 mx ESMTP\r\n"), "EHLO localhost\r\n");
  EXPECT_EQ(t.step(k_ehlo_pipelining), "");
  ASSERT_EQ(t.kinds(), std::vector<K>{K::k_ready});
  EXPECT_TRUE(t.s.capabilities().pipelining);
  t.submit(1);
  EXPECT_EQ(t.s.take_output(),
            "MAIL FROM:<a@example.com> SIZE=" + std::to_string(k_data.size()) +
                "\r\nRCPT TO:<b@example.org>\r\nDATA\r\n");
  EXPECT_EQ(t.s.state(), State::k_transaction);
  EXPECT_EQ(t.step("250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n"), k_stuffed);
  EXPECT_EQ(t.s.state(), State::k_data_body);
  EXPECT_EQ(t.step("250 2.0.0 queued as X\r\n"), "");
  ASSERT_NE(t.result(1), nullptr);
  EXPECT_EQ(t.result(1)->outcome, Outcome::k_sent);
  EXPECT_EQ(t.result(1)->reply.enhanced, "2.0.0");
  // Several messages per connection: no RSET needed after success.
  t.submit(2, "c@example.org");
  EXPECT_EQ(t.s.take_output().substr(0, 10), "MAIL FROM:");
  t.step("250 ok\r\n250 ok\r\n354 go\r\n");
  t.step("250 ok\r\n");
  EXPECT_EQ(t.result(2)->outcome, Outcome::k_sent);
  t.s.quit();
  EXPECT_EQ(t.s.take_output(), "QUIT\r\n");
  t.step("221 bye\r\n");
  EXPECT_EQ(t.s.state(), State::k_closed);
}

// With hold_body the message and its end of DATA wait, after the 354, for
// release_body(): until then nothing of it can have been delivered.
TEST(ClientSession, HeldBodyWaitsForReleaseAndIsNotMaybeDeliveredBeforeIt) {
  SessionConfig c;
  c.hold_body = true;
  Transcript t(c);
  t.step("220 mx\r\n");
  t.step(k_ehlo_pipelining);
  t.submit(1);
  t.s.take_output();
  EXPECT_EQ(t.step("250 ok\r\n250 ok\r\n354 go\r\n"), "");
  ASSERT_FALSE(t.events.empty());
  ASSERT_EQ(t.kinds().back(), K::k_body_wanted);
  EXPECT_EQ(t.events.back().tag, 1u);
  EXPECT_TRUE(t.s.body_held());
  t.s.release_body();
  EXPECT_FALSE(t.s.body_held());
  EXPECT_EQ(t.s.take_output(), k_stuffed);
  t.step("250 2.0.0 queued\r\n");
  ASSERT_NE(t.result(1), nullptr);
  EXPECT_EQ(t.result(1)->outcome, Outcome::k_sent);
  EXPECT_TRUE(t.result(1)->at_data_end);

  // Lost while held: the message never reached the end of DATA.
  t.submit(2);
  t.s.take_output();
  t.step("250 ok\r\n250 ok\r\n354 go\r\n");
  ASSERT_TRUE(t.s.body_held());
  t.s.connection_lost("reset by peer");
  for (auto& e : t.s.take_events()) t.events.push_back(e);
  ASSERT_NE(t.result(2), nullptr);
  EXPECT_TRUE(t.result(2)->connection_lost);
  EXPECT_FALSE(t.result(2)->maybe_delivered);
  EXPECT_FALSE(t.result(2)->at_data_end);
  EXPECT_FALSE(t.s.body_held());
  t.s.release_body();  // too late: nothing is written
  EXPECT_EQ(t.s.take_output(), "");
}

TEST(ClientSession, NextEnvelopeRidesBehindTheEndOfData) {
  Transcript t;
  t.step("220 mx\r\n");
  t.step(k_ehlo_pipelining);
  t.submit(1);
  t.s.take_output();
  EXPECT_EQ(t.step("250 ok\r\n250 ok\r\n354 go\r\n"), k_stuffed);
  ASSERT_FALSE(t.events.empty());
  ASSERT_EQ(t.kinds().back(), K::k_can_pipeline);
  t.submit(2, "c@example.org");  // RFC 2920 §3.1: no wait for the dot's reply
  EXPECT_EQ(t.s.take_output(), "MAIL FROM:<a@example.com> SIZE=" + std::to_string(k_data.size()) +
                                   "\r\nRCPT TO:<c@example.org>\r\nDATA\r\n");
  // One read carries the reply to message 1's dot and message 2's envelope.
  const std::string body2 = t.step("250 2.0.0 one\r\n250 ok\r\n250 ok\r\n354 go\r\n");
  EXPECT_EQ(body2, k_stuffed);
  ASSERT_NE(t.result(1), nullptr);
  EXPECT_EQ(t.result(1)->outcome, Outcome::k_sent);
  EXPECT_EQ(t.result(2), nullptr);
  t.step("550 5.7.1 two refused\r\n");
  EXPECT_EQ(t.result(2)->outcome, Outcome::k_bounced);
  EXPECT_EQ(t.kinds().back(), K::k_ready);
}

TEST(ClientSession, LossWithTwoInFlight) {
  Transcript t;
  t.step("220 mx\r\n");
  t.step(k_ehlo_pipelining);
  t.submit(1);
  t.step("250 ok\r\n250 ok\r\n354 go\r\n");
  t.submit(2, "c@example.org");
  t.s.connection_lost("reset");
  auto ev = t.s.take_events();
  t.events.insert(t.events.end(), ev.begin(), ev.end());
  ASSERT_NE(t.result(1), nullptr);
  ASSERT_NE(t.result(2), nullptr);
  EXPECT_TRUE(t.result(1)->maybe_delivered) << "its end of DATA was written";
  EXPECT_FALSE(t.result(2)->maybe_delivered) << "only its envelope was written";
  EXPECT_TRUE(t.result(2)->connection_lost);
}

TEST(ClientSession, Server421DefersBothPipelinedMessages) {
  Transcript t;
  t.step("220 mx\r\n");
  t.step(k_ehlo_pipelining);
  t.submit(1);
  t.step("250 ok\r\n250 ok\r\n354 go\r\n");
  t.submit(2, "c@example.org");
  t.step("421 4.7.0 slow down\r\n");
  EXPECT_EQ(t.result(1)->outcome, Outcome::k_deferred);
  EXPECT_EQ(t.result(2)->outcome, Outcome::k_deferred);
  EXPECT_EQ(t.s.state(), State::k_closed);
}

TEST(ClientSession, WithoutPipeliningOneCommandAtATime) {
  Transcript t;
  t.step("220 mx\r\n");
  t.step("250 mx.example\r\n");
  t.submit(7);
  EXPECT_EQ(t.s.take_output(), "MAIL FROM:<a@example.com>\r\n");
  EXPECT_EQ(t.step("250 ok\r\n"), "RCPT TO:<b@example.org>\r\n");
  EXPECT_EQ(t.step("250 ok\r\n"), "DATA\r\n");
  EXPECT_EQ(t.step("354 go\r\n"), k_stuffed);
  t.step("250 ok\r\n");
  EXPECT_EQ(t.result(7)->outcome, Outcome::k_sent);
}

TEST(ClientSession, HeloFallback) {
  Transcript t;
  t.step("220 old server\r\n");
  EXPECT_EQ(t.step("502 what\r\n"), "HELO localhost\r\n");
  t.step("250 hello\r\n");
  EXPECT_EQ(t.kinds(), std::vector<K>{K::k_ready});
  EXPECT_FALSE(t.s.capabilities().esmtp);
}

TEST(ClientSession, RecipientRefusedIsBouncedThenReset) {
  Transcript t;
  t.step("220 mx\r\n");
  t.step(k_ehlo_pipelining);
  t.submit(1);
  t.s.take_output();
  EXPECT_EQ(t.step("250 ok\r\n550 5.1.1 no such user\r\n554 5.5.1 no valid recipients\r\n"), "RSET\r\n");
  EXPECT_EQ(t.result(1)->outcome, Outcome::k_bounced);
  EXPECT_EQ(t.result(1)->reply.code, 550);
  t.step("250 reset\r\n");
  EXPECT_EQ(t.s.state(), State::k_ready);
}

TEST(ClientSession, RecipientDeferredWhenServerStillSays354) {
  Transcript t;
  t.step("220 mx\r\n");
  t.step(k_ehlo_pipelining);
  t.submit(1);
  t.s.take_output();
  // Misbehaving server: 354 although no recipient was accepted -> empty body.
  EXPECT_EQ(t.step("250 ok\r\n450 4.2.1 mailbox busy\r\n354 go\r\n"), ".\r\n");
  EXPECT_EQ(t.step("554 no recipients\r\n"), "RSET\r\n");
  EXPECT_EQ(t.result(1)->outcome, Outcome::k_deferred);
  EXPECT_EQ(t.result(1)->reply.code, 450);
}

TEST(ClientSession, FinalReplyClasses) {
  for (auto [line, outcome] : std::vector<std::pair<std::string, Outcome>>{
           {"250 ok\r\n", Outcome::k_sent}, {"451 4.3.0 later\r\n", Outcome::k_deferred},
           {"552 5.3.4 too big\r\n", Outcome::k_bounced}}) {
    Transcript t;
    t.step("220 mx\r\n");
    t.step(k_ehlo_pipelining);
    t.submit(1);
    t.step("250 ok\r\n250 ok\r\n354 go\r\n");
    t.step(line);
    EXPECT_EQ(t.result(1)->outcome, outcome) << line;
  }
}

TEST(ClientSession, Server421InTheMiddleClosesAndDefers) {
  Transcript t;
  t.step("220 mx\r\n");
  t.step(k_ehlo_pipelining);
  t.submit(1);
  t.s.take_output();
  t.step("421 4.7.0 too many messages, slow down\r\n");
  EXPECT_EQ(t.result(1)->outcome, Outcome::k_deferred);
  EXPECT_EQ(t.result(1)->reply.enhanced, "4.7.0");
  EXPECT_EQ(t.s.state(), State::k_closed);
  ASSERT_FALSE(t.events.empty());
  EXPECT_EQ(t.kinds().back(), K::k_closed);
}

// The end of DATA was written (the 354 released the body): the server may
// have accepted the message before the connection broke.
TEST(ClientSession, ConnectionLostAfterEndOfDataMayBeDelivered) {
  Transcript t;
  t.step("220 mx\r\n");
  t.step(k_ehlo_pipelining);
  t.submit(1);
  t.s.take_output();
  EXPECT_EQ(t.step("250 ok\r\n250 ok\r\n354 go\r\n"), k_stuffed);
  ASSERT_EQ(t.result(1), nullptr);
  t.s.connection_lost("connection reset by peer");
  auto ev = t.s.take_events();
  ASSERT_FALSE(ev.empty());
  EXPECT_EQ(ev[0].kind, K::k_result);
  EXPECT_EQ(ev[0].tag, 1u);
  EXPECT_EQ(ev[0].outcome, Outcome::k_deferred);
  EXPECT_TRUE(ev[0].connection_lost);
  EXPECT_TRUE(ev[0].maybe_delivered);
  EXPECT_TRUE(ev[0].at_data_end);
  EXPECT_NE(ev[0].detail.find("may be sent more than once"), std::string::npos) << ev[0].detail;
  EXPECT_NE(ev[0].detail.find("connection reset by peer"), std::string::npos) << ev[0].detail;
}

// Only the envelope (MAIL, RCPT, DATA) was written: nothing can have been
// delivered. The loss after the end of DATA is the test above.
TEST(ClientSession, ConnectionLostBeforeDataIsNotDelivered) {
  Transcript t;
  t.step("220 mx\r\n");
  t.step(k_ehlo_pipelining);
  t.submit(1);
  EXPECT_EQ(t.s.take_output().substr(0, 10), "MAIL FROM:");
  EXPECT_EQ(t.s.state(), State::k_transaction);
  t.s.connection_lost("EOF");
  auto ev = t.s.take_events();
  t.events.insert(t.events.end(), ev.begin(), ev.end());
  const SessionEvent* r = t.result(1);
  ASSERT_NE(r, nullptr) << "a lost connection must finish the message in flight";
  EXPECT_EQ(r->outcome, Outcome::k_deferred);
  EXPECT_TRUE(r->connection_lost);
  EXPECT_FALSE(r->maybe_delivered);
  EXPECT_FALSE(r->at_data_end);
  EXPECT_NE(r->detail.find(state_info(State::k_transaction).phrase), std::string::npos) << r->detail;
  EXPECT_NE(r->detail.find("nothing delivered yet"), std::string::npos) << r->detail;
  EXPECT_NE(r->detail.find("EOF"), std::string::npos) << r->detail;
  ASSERT_FALSE(ev.empty());
  EXPECT_EQ(ev.back().kind, K::k_closed);
  EXPECT_EQ(t.s.state(), State::k_closed);
}

TEST(ClientSession, TimeoutPerPhase) {
  SessionConfig c;
  Transcript t(c);
  EXPECT_EQ(t.s.timeout_seconds(), 300);
  t.step("220 mx\r\n");
  t.step(k_ehlo_pipelining);
  t.submit(1);
  t.step("250 ok\r\n250 ok\r\n354 go\r\n");
  EXPECT_EQ(t.s.timeout_seconds(), 600);  // final dot
  t.s.timed_out();
  auto ev = t.s.take_events();
  ASSERT_FALSE(ev.empty());
  EXPECT_TRUE(ev[0].maybe_delivered);
  SessionConfig fast;
  fast.timeout_override = 2;
  EXPECT_EQ(ClientSession(fast).timeout_seconds(), 2);
}

TEST(ClientSession, StartTlsThenEhloAgain) {
  SessionConfig c;
  c.tls = TlsPolicy::k_required;
  Transcript t(c);
  t.step("220 mx\r\n");
  EXPECT_EQ(t.step("250-mx\r\n250-STARTTLS\r\n250 PIPELINING\r\n"), "STARTTLS\r\n");
  t.step("220 go ahead\r\n");
  ASSERT_FALSE(t.events.empty());
  EXPECT_EQ(t.kinds().back(), K::k_start_tls);
  EXPECT_EQ(t.s.state(), State::k_tls_handshake);
  t.s.tls_established();
  EXPECT_EQ(t.s.take_output(), "EHLO localhost\r\n");
  EXPECT_FALSE(t.s.capabilities().pipelining);  // forgotten after TLS
  t.step("250-mx\r\n250 PIPELINING\r\n");
  EXPECT_EQ(t.kinds().back(), K::k_ready);
  EXPECT_TRUE(t.s.tls_active());
}

TEST(ClientSession, TlsRequiredButNotOffered) {
  SessionConfig c;
  c.tls = TlsPolicy::k_required;
  Transcript t(c);
  t.step("220 mx\r\n");
  EXPECT_EQ(t.step("250 mx\r\n"), "QUIT\r\n");
  ASSERT_FALSE(t.events.empty());
  ASSERT_EQ(t.kinds().front(), K::k_failed);
  EXPECT_TRUE(t.events.front().fatal);
}

// A session over TLS with credentials configured.
SessionConfig with_credentials() {
  SessionConfig c;
  c.tls_active = true;
  c.credentials = Credentials{"user", "s3cret"};
  return c;
}

TEST(ClientSession, AuthPlainOverTls) {
  Transcript t(with_credentials());
  t.step("220 mx\r\n");
  // base64("\0user\0s3cret")
  EXPECT_EQ(t.step("250-mx\r\n250 AUTH LOGIN PLAIN\r\n"), "AUTH PLAIN AHVzZXIAczNjcmV0\r\n");
  t.step("235 2.7.0 ok\r\n");
  ASSERT_FALSE(t.events.empty());
  EXPECT_EQ(t.kinds().back(), K::k_ready);
}

TEST(ClientSession, AuthLogin) {
  Transcript t(with_credentials());
  t.step("220 mx\r\n");
  EXPECT_EQ(t.step("250-mx\r\n250 AUTH LOGIN\r\n"), "AUTH LOGIN\r\n");
  EXPECT_EQ(t.step("334 VXNlcm5hbWU6\r\n"), "dXNlcg==\r\n");
  EXPECT_EQ(t.step("334 UGFzc3dvcmQ6\r\n"), "czNjcmV0\r\n");
  t.step("235 ok\r\n");
  ASSERT_FALSE(t.events.empty());
  EXPECT_EQ(t.kinds().back(), K::k_ready);
}

TEST(ClientSession, AuthRefusedIsFatalAndNeverEchoesThePassword) {
  Transcript t(with_credentials());
  t.step("220 mx\r\n");
  t.step("250-mx\r\n250 AUTH PLAIN\r\n");
  EXPECT_EQ(t.step("535 5.7.8 bad credentials\r\n"), "QUIT\r\n");
  ASSERT_FALSE(t.events.empty());
  ASSERT_EQ(t.events.back().kind, K::k_failed);
  EXPECT_TRUE(t.events.back().fatal);
  EXPECT_EQ(t.events.back().detail.find("s3cret"), std::string::npos);
}

TEST(ClientSession, NoCredentialsInClearToARemoteServer) {
  SessionConfig c;
  c.tls = TlsPolicy::k_never;
  c.credentials = Credentials{"user", "s3cret"};
  Transcript t(c);
  t.step("220 mx\r\n");
  const std::string out = t.step("250-mx\r\n250 AUTH PLAIN\r\n");
  EXPECT_EQ(out.find("AUTH"), std::string::npos);
  ASSERT_FALSE(t.events.empty());
  EXPECT_TRUE(t.events.back().fatal);
  // ... but to a loopback peer it is allowed (test servers, local relays).
  c.plaintext_auth_ok = true;
  Transcript local(c);
  local.step("220 mx\r\n");
  EXPECT_EQ(local.step("250-mx\r\n250 AUTH PLAIN\r\n").substr(0, 10), "AUTH PLAIN");
}

TEST(ClientSession, OversizeMessageBouncesLocally) {
  Transcript t;
  t.step("220 mx\r\n");
  t.step("250-mx\r\n250 SIZE 10\r\n");
  t.submit(1);
  EXPECT_EQ(t.s.take_output(), "");
  ASSERT_NE(t.result(1), nullptr);
  EXPECT_EQ(t.result(1)->outcome, Outcome::k_bounced);
  EXPECT_EQ(t.s.state(), State::k_ready);
}

TEST(ClientSession, GreetingRefused) {
  Transcript t;
  t.step("554 no service\r\n");
  ASSERT_FALSE(t.events.empty());
  EXPECT_EQ(t.kinds().front(), K::k_failed);
}

TEST(ClientSession, GarbageFromServerClosesTheSession) {
  Transcript t;
  t.step("HTTP/1.1 400 Bad Request\r\n");
  EXPECT_EQ(t.s.state(), State::k_closed);
}

TEST(DotStuffing, Table) {
  struct {
    const char* in;
    const char* out;
  } cases[] = {{"a\r\n", "a\r\n.\r\n"},
               {"a", "a\r\n.\r\n"},
               {".a\r\n", "..a\r\n.\r\n"},
               {"a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n"},
               {"a\r\n..b\r\n", "a\r\n...b\r\n.\r\n"},
               {"", "\r\n.\r\n"}};
  for (const auto& c : cases) {
    std::string out;
    append_data_with_terminator(out, c.in);
    EXPECT_EQ(out, c.out) << c.in;
    std::string scanned;  // traits from the one-pass scan must not skip a needed stuffing
    append_data_with_terminator(scanned, c.in, scan_data(c.in));
    EXPECT_EQ(scanned, c.out) << c.in;
  }
}

// The scan decides whether dot-stuffing may be skipped: it must never miss a
// line that starts with '.', at any position relative to its 16-byte steps.
TEST(DataTraits, AgreeWithAByteByByteScan) {
  std::mt19937 rng(20261122);
  const char alphabet[] = {'a', '.', '\r', '\n', '\n', '.', 'z', static_cast<char>(0xC3), ' '};
  int dotted = 0;
  int eight = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string data(rng() % 70, 'x');
    const int sparse = static_cast<int>(rng() % 4);  // mostly plain text, sometimes dense
    for (auto& ch : data) {
      if (sparse == 0 || rng() % 8 == 0) ch = alphabet[rng() % sizeof alphabet];
    }
    bool want_dot = !data.empty() && data[0] == '.';
    bool want_eight = false;
    for (std::size_t i = 0; i < data.size(); ++i) {
      if (static_cast<unsigned char>(data[i]) >= 0x80) want_eight = true;
      if (i > 0 && data[i] == '.' && data[i - 1] == '\n') want_dot = true;
    }
    const DataTraits t = scan_data(data);
    ASSERT_EQ(t.dot_lines(), want_dot) << testing::PrintToString(data);
    ASSERT_EQ(t.eight_bit(), want_eight) << testing::PrintToString(data);
    dotted += want_dot ? 1 : 0;
    eight += want_eight ? 1 : 0;
  }
  // Both answers were exercised many times.
  EXPECT_GT(dotted, 2000);
  EXPECT_GT(eight, 2000);
  EXPECT_LT(dotted, 18000);
}

TEST(DataTraits, UnknownMeansAssumeBoth) {
  const DataTraits unknown;
  EXPECT_TRUE(unknown.dot_lines());
  EXPECT_TRUE(unknown.eight_bit());
  EXPECT_FALSE(scan_data("plain\r\ntext\r\n").dot_lines());
  EXPECT_FALSE(scan_data("plain\r\ntext\r\n").eight_bit());
}

// BODY=8BITMIME follows the bytes, whether the caller scanned them (the
// builders do) or the session has to; stuffing is never skipped by traits.
TEST(ClientSession, EightBitBodyAndStuffingWithOrWithoutCallerTraits) {
  const std::string eight = "Subject: x\r\n\r\nGr\xC3\xBC\xC3\x9F\r\n.dot\r\n";
  const std::string ascii = "Subject: x\r\n\r\nplain\r\n";
  for (const bool caller_scans : {false, true}) {
    for (const std::string* data : {&eight, &ascii}) {
      ClientSession s{SessionConfig{}};
      s.receive("220 mx ESMTP\r\n");
      (void)s.take_output();
      s.receive(k_ehlo_pipelining);
      (void)s.take_events();
      Message m{1, "a@example.com", "b@example.org", *data, std::nullopt};
      if (caller_scans) m.traits = scan_data(*data);
      s.submit(m);
      const std::string mail = s.take_output();
      EXPECT_EQ(mail.find("BODY=8BITMIME") != std::string::npos, data == &eight) << mail;
      s.receive("250 ok\r\n250 ok\r\n354 go\r\n");
      const std::string body = s.take_output();
      if (data == &eight) {
        EXPECT_NE(body.find("\r\n..dot\r\n"), std::string::npos) << body;
      } else {
        EXPECT_EQ(body, ascii + ".\r\n");
      }
    }
  }
}

TEST(StateTable, EveryStateHasAPhrase) {
  for (int s = 0; s <= static_cast<int>(State::k_closed); ++s) {
    const auto& info = state_info(static_cast<State>(s));
    EXPECT_EQ(static_cast<int>(info.state), s);
    EXPECT_NE(std::string(info.phrase), "");
  }
}

}  // namespace
}  // namespace blindcast::smtp
