// blindcast_bench: measures the engine's hot paths on one thread.
//   render DIR N        render + compose N messages from the campaign in DIR
//   import DIR          import DIR/audience.csv into a fresh state store
//   guard N_AUDIENCE M  guard M ~4 KB messages against an index of N_AUDIENCE
//   guard-campaign DIR N  the guard as a send runs it, on DIR's messages
//   gen DIR N           write the example campaign with N synthetic recipients
//   wire URL N SIZE     the SMTP transport alone: N ready SIZE-byte messages
//                       to URL in batches of 500 (no render, guard or store)
//   sign PEM N          DKIM-sign N ~4 KB messages with the key in PEM, next to
//                       OpenSSL signing a bare digest with the same key: the
//                       difference is what canonicalization and hashing add
//   mx-resolve HOST:PORT N_DOMAINS N_LOOKUPS  MX answers of d000.test.. from
//                       the DNS server, cold in one batch, then from the cache
//   bounces SECONDS FILE...  parse + classify the returned messages in FILEs
//                       over and over for at least SECONDS
//   bounces-gmime SECONDS FILE...  the same files through GMime's parser
//                       alone (construct the message, free it): the bound
//                       of any parser built on GMime
// Each prints one line of JSON; bench/run.sh runs them beside the peers.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <string>
#include <utility>

#include <fmt/format.h>
#include <gmime/gmime.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "bounce/report.hpp"
#include "compose/audience_session.hpp"
#include "compose/guard_setup.hpp"
#include "campaign/example.hpp"
#include "send/sender.hpp"
#include "delivery/mx_resolver.hpp"
#include "delivery/transport.hpp"
#include "send/audience_import.hpp"
#include "guard/privacy_guard.hpp"
#include "mail/composer.hpp"
#include "mail/dkim_signer.hpp"
#include "store/pg_store.hpp"
#include "store/state_store.hpp"

using namespace blindcast;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

long peak_rss_kb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

int bench_render(const char* dir, long n) {
  util::Diagnostics diags;
  auto campaign = campaign::load_campaign(dir, diags);
  if (!campaign) return 2;
  auto session = compose::open_audience(*campaign, diags, {});
  if (!session || util::error_count(diags) > 0) return 2;
  std::vector<audience::AudienceRow> rows;
  audience::AudienceRow row;
  while (session->loader->next(row)) rows.push_back(row);
  if (rows.empty()) return 2;
  std::size_t bytes = 0;
  const auto t0 = std::chrono::steady_clock::now();
  const double c0 = cpu_seconds();
  for (long i = 0; i < n; ++i) {
    const auto& r = rows[static_cast<std::size_t>(i) % rows.size()];
    auto built = session->builder->build(r.fields, r.email, r.name, r.locale);
    if (!built) return 1;
    bytes += built->data.size();
  }
  const double wall = seconds_since(t0);
  std::printf("{\"bench\":\"render_compose\",\"messages\":%ld,\"seconds\":%.3f,\"per_second\":%.0f,"
              "\"cpu_us_per_message\":%.2f,\"avg_bytes\":%zu}\n",
              n, wall, static_cast<double>(n) / wall, (cpu_seconds() - c0) * 1e6 / static_cast<double>(n),
              bytes / static_cast<std::size_t>(n));
  return 0;
}

// The guard as a send runs it: the campaign's messages (every locale, text
// and HTML), its whole set-up (index of the audience, strict mode).
int bench_guard_campaign(const char* dir, long n) {
  util::Diagnostics diags;
  auto campaign = campaign::load_campaign(dir, diags);
  if (!campaign) return 2;
  auto session = compose::open_audience(*campaign, diags, {});
  if (!session || util::error_count(diags) > 0) return 2;
  auto index = std::make_shared<guard::AddressIndex>();
  std::vector<audience::AudienceRow> rows;
  audience::AudienceRow row;
  while (session->loader->next(row)) {
    index->add(row.email);
    rows.push_back(row);
  }
  if (rows.empty()) return 2;
  auto g = compose::CampaignGuard::create(*campaign, index, session->columns);
  if (!g) return 2;
  std::vector<std::string> messages;
  const std::size_t distinct = std::min<std::size_t>(rows.size(), 1000);
  for (std::size_t i = 0; i < distinct; ++i) {
    auto built = session->builder->build(rows[i].fields, rows[i].email, rows[i].name, rows[i].locale);
    if (!built) return 1;
    messages.push_back(std::move(built->data));
  }
  long violations = 0;
  const auto t0 = std::chrono::steady_clock::now();
  const double c0 = cpu_seconds();
  for (long i = 0; i < n; ++i) {
    const std::size_t k = static_cast<std::size_t>(i) % distinct;
    if (g->check(messages[k], rows[k].email, rows[k].fields)) ++violations;
  }
  const double wall = seconds_since(t0);
  std::printf("{\"bench\":\"guard_campaign\",\"messages\":%ld,\"seconds\":%.3f,\"per_second\":%.0f,"
              "\"cpu_us_per_message\":%.2f,\"violations\":%ld}\n",
              n, wall, static_cast<double>(n) / wall, (cpu_seconds() - c0) * 1e6 / static_cast<double>(n), violations);
  return violations == 0 ? 0 : 1;
}

// Imports DIR's audience into a new SQLite file, or with `state` (a
// PostgreSQL URI) into that database under the campaign's id.
int bench_import(const char* dir, const char* state) {
  util::Diagnostics diags;
  auto campaign = campaign::load_campaign(dir, diags);
  if (!campaign) return 2;
  const auto db = std::filesystem::path(dir) / ".bench-state.db";
  std::filesystem::remove(db);
  std::filesystem::remove(db.string() + "-wal");
  std::filesystem::remove(db.string() + "-shm");
  auto store = state != nullptr ? store::open_postgres_store(store::postgres_locator(state, campaign->config.id))
                                : store::open_sqlite_store(db.string());
  if (!store) {
    std::fprintf(stderr, "%s\n", store.error().message.c_str());
    return 2;
  }
  send::ImportSummary summary;
  const auto t0 = std::chrono::steady_clock::now();
  auto r = send::sync_audience(*campaign, **store, summary);
  const double wall = seconds_since(t0);
  if (!r) {
    std::fprintf(stderr, "%s\n", r.error().message.c_str());
    return 1;
  }
  std::printf("{\"bench\":\"import\",\"rows\":%lld,\"seconds\":%.2f,\"peak_rss_mb\":%.1f}\n",
              static_cast<long long>(summary.imported), wall, static_cast<double>(peak_rss_kb()) / 1024.0);
  return 0;
}

// 64 messages of ~4 KB: multipart, a QP text part and a base64 HTML part.
void sample_messages(std::vector<std::string>& messages, std::vector<std::string>& rcpts) {
  for (int k = 0; k < 64; ++k) {
    const std::string rcpt = fmt::format("member{}@example{}.com", k * 7919, (k * 7919) % 97);
    mail::MessageSpec spec;
    spec.from = "Example Exchange <noreply@example.com>";
    spec.reply_to = "support@example.com";
    spec.to_address = rcpt;
    spec.to_name = "Member";
    spec.subject = "Änderung des Preisindex am 1. Dezember";
    // A realistic notice: ~1.6 KB of prose, then the support address and the
    // recipient's own address once each (as most transactional mail does).
    std::string text;
    while (text.size() < 1500) {
      text += "Sehr geehrte Kundin, sehr geehrter Kunde, am 1. Dezember ändern wir die Berechnung ";
      text += "unserer Preisindizes. Für Ihr Konto ändert sich nichts; Sie müssen nichts tun.\n";
    }
    text += "Fragen? support@example.com. Diese Nachricht ging an " + rcpt + ".\n";
    spec.text = text;
    spec.html = "<p>" + text + "</p><p><a href=\"https://example.com/u?x=1&amp;y=2\">Abmelden</a></p>";
    spec.message_id = mail::make_message_id("example.com");
    spec.date = 1795392000;
    messages.push_back(mail::compose(spec));
    rcpts.push_back(rcpt);
  }
}

int bench_guard(long audience, long m) {
  auto index = std::make_shared<guard::AddressIndex>();
  index->reserve(static_cast<std::size_t>(audience));
  const long rss0 = peak_rss_kb();
  for (long i = 0; i < audience; ++i) index->add(fmt::format("member{}@example{}.com", i, i % 97));
  const double index_mb = static_cast<double>(index->memory_bytes()) / (1024.0 * 1024.0);
  guard::GuardPolicy policy;
  policy.from_address = "noreply@example.com";
  policy.reply_to_address = "support@example.com";
  guard::PrivacyGuard g(index, policy);
  std::vector<std::string> messages;
  std::vector<std::string> rcpts;
  sample_messages(messages, rcpts);
  std::size_t bytes = 0;
  std::size_t ats = 0;
  for (const auto& msg : messages) {
    bytes += msg.size();
    ats += static_cast<std::size_t>(std::count(msg.begin(), msg.end(), '@'));
  }
  const auto t0 = std::chrono::steady_clock::now();
  const double c0 = cpu_seconds();
  long violations = 0;
  for (long i = 0; i < m; ++i) {
    const auto k = static_cast<std::size_t>(i) % messages.size();
    const std::string r[] = {rcpts[k]};
    if (g.check(messages[k], {"noreply@example.com", r})) ++violations;
  }
  const double wall = seconds_since(t0);
  std::printf("{\"bench\":\"guard\",\"audience\":%ld,\"index_mb\":%.1f,\"index_rss_growth_mb\":%.1f,"
              "\"messages\":%ld,\"avg_bytes\":%zu,\"at_signs_per_message\":%zu,\"seconds\":%.3f,\"per_second\":%.0f,\"cpu_us_per_message\":%.2f,"
              "\"violations\":%ld}\n",
              audience, index_mb, static_cast<double>(peak_rss_kb() - rss0) / 1024.0, m, bytes / messages.size(),
              ats / messages.size(), wall, static_cast<double>(m) / wall, (cpu_seconds() - c0) * 1e6 / static_cast<double>(m), violations);
  return violations == 0 ? 0 : 1;
}

// How fast the transport alone moves ready messages: the ceiling the full
// pipeline can reach against the same peer.
int bench_wire(const char* url, long n, long size) {
  delivery::TransportConfig config;
  config.url = url;
  auto transport = delivery::make_transport(config);
  if (!transport) {
    std::fprintf(stderr, "%s\n", transport.error().message.c_str());
    return 2;
  }
  std::string body;
  while (static_cast<long>(body.size()) < size) body += std::string(76, 'x') + "\r\n";
  // As the send engine does: at most a window of messages under way (2 x connections).
  const long window = 2L * config.connections;
  const auto t0 = std::chrono::steady_clock::now();
  const double c0 = cpu_seconds();
  long sent = 0;
  long submitted = 0;
  long finished = 0;
  std::vector<delivery::DeliveryResult> results;
  while (finished < n) {
    std::vector<delivery::OutgoingMessage> more;
    for (; submitted < n && submitted - finished < window; ++submitted) {
      delivery::OutgoingMessage m;
      m.recipient_id = submitted + 1;
      m.envelope_from = "noreply@example.com";
      m.recipient = fmt::format("user{}@example.com", submitted);
      m.data = fmt::format("From: noreply@example.com\r\nTo: {}\r\nSubject: wire {}\r\n\r\n{}", m.recipient,
                           submitted, body);
      more.push_back(std::move(m));
    }
    if (!more.empty()) (*transport)->submit(std::move(more));
    results.clear();
    if (auto r = (*transport)->poll(std::chrono::milliseconds(10), results); !r) {
      std::fprintf(stderr, "%s\n", r.error().message.c_str());
      return 1;
    }
    for (const auto& r : results) sent += r.sent() ? 1 : 0;
    finished += static_cast<long>(results.size());
  }
  const double wall = seconds_since(t0);
  std::printf("{\"bench\":\"wire\",\"messages\":%ld,\"sent\":%ld,\"seconds\":%.3f,\"per_second\":%.0f,"
              "\"cpu_us_per_message\":%.2f}\n",
              n, sent, wall, static_cast<double>(n) / wall, (cpu_seconds() - c0) * 1e6 / static_cast<double>(n));
  return sent == n ? 0 : 1;
}

// Signs a bare 32-byte digest with the key, from a context set up once: the
// key's own cost, the floor for DkimSigner::sign.
class BareSigner {
 public:
  explicit BareSigner(const std::string& pem) {
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    m_pkey = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    if (m_pkey == nullptr) return;
    if (EVP_PKEY_get_base_id(m_pkey) == EVP_PKEY_ED25519) {
      m_md = EVP_MD_CTX_new();
      if (EVP_DigestSignInit(m_md, nullptr, nullptr, nullptr, m_pkey) != 1) EVP_MD_CTX_free(std::exchange(m_md, nullptr));
    } else {
      m_ctx = EVP_PKEY_CTX_new(m_pkey, nullptr);
      if (EVP_PKEY_sign_init(m_ctx) != 1 || EVP_PKEY_CTX_set_rsa_padding(m_ctx, RSA_PKCS1_PADDING) != 1 ||
          EVP_PKEY_CTX_set_signature_md(m_ctx, EVP_sha256()) != 1) {
        EVP_PKEY_CTX_free(std::exchange(m_ctx, nullptr));
      }
    }
  }
  ~BareSigner() {
    EVP_MD_CTX_free(m_md);
    EVP_PKEY_CTX_free(m_ctx);
    EVP_PKEY_free(m_pkey);
  }
  BareSigner(const BareSigner&) = delete;
  BareSigner& operator=(const BareSigner&) = delete;
  bool sign(long i) {
    unsigned char digest[32] = {static_cast<unsigned char>(i), 2, 3};
    unsigned char sig[1024];
    std::size_t len = sizeof sig;
    bool ok = false;
    if (m_md != nullptr) {
      EVP_MD_CTX* md = EVP_MD_CTX_new();
      ok = EVP_MD_CTX_copy_ex(md, m_md) == 1 && EVP_DigestSign(md, sig, &len, digest, sizeof digest) == 1;
      EVP_MD_CTX_free(md);
    } else if (m_ctx != nullptr) {
      EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_dup(m_ctx);
      ok = ctx != nullptr && EVP_PKEY_sign(ctx, sig, &len, digest, sizeof digest) == 1;
      EVP_PKEY_CTX_free(ctx);
    }
    return ok;
  }

 private:
  EVP_PKEY* m_pkey = nullptr;
  EVP_MD_CTX* m_md = nullptr;     // Ed25519
  EVP_PKEY_CTX* m_ctx = nullptr;  // RSA
};

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

int bench_sign(const char* pem_path, long n) {
  std::string pem;
  if (std::FILE* f = std::fopen(pem_path, "rb")) {
    char buf[4096];
    for (std::size_t got; (got = std::fread(buf, 1, sizeof buf, f)) > 0;) pem.append(buf, got);
    std::fclose(f);
  }
  auto signer = mail::DkimSigner::create("example.com", {"bench"}, {pem}, {pem_path});
  if (!signer) {
    std::fprintf(stderr, "%s\n", signer.error().message.c_str());
    return 2;
  }
  std::vector<std::string> messages;
  std::vector<std::string> rcpts;
  sample_messages(messages, rcpts);
  BareSigner bare(pem);
  // In turns, 100 of each, so the machine's drift falls on both alike.
  constexpr long k_round = 100;
  double bare_s = 0;
  double ours_s = 0;
  std::size_t bytes = 0;
  for (long done = 0; done < n; done += k_round) {
    const long m = std::min(k_round, n - done);
    double t0 = thread_cpu_seconds();
    for (long i = done; i < done + m; ++i) {
      if (!bare.sign(i)) return 1;
    }
    bare_s += thread_cpu_seconds() - t0;
    t0 = thread_cpu_seconds();
    for (long i = done; i < done + m; ++i) {
      auto signed_msg = signer->sign(messages[static_cast<std::size_t>(i) % messages.size()], 1795392000 + i);
      if (!signed_msg) return 1;
      bytes += signed_msg->size();
    }
    ours_s += thread_cpu_seconds() - t0;
  }
  const double us = 1e6 / static_cast<double>(n);
  std::printf("{\"bench\":\"sign\",\"algorithm\":\"%s\",\"messages\":%ld,\"avg_bytes\":%zu,"
              "\"us_per_message\":%.2f,\"bare_sign_us\":%.2f,\"overhead_us\":%.2f}\n",
              signer->algorithms().front().c_str(), n, bytes / static_cast<std::size_t>(n), ours_s * us, bare_s * us,
              (ours_s - bare_s) * us);
  return 0;
}

// MX resolution against a DNS server (the mx section of bench/run.sh):
// `domains` domains d000.test.. resolved cold in one batch, then `lookups`
// answers from the cache, a batch of 100 at a time.
int bench_mx_resolve(const char* server, long domains, long lookups) {
  delivery::ResolverSettings settings;
  settings.server = server;
  auto resolver = delivery::MxResolver::create(settings);
  if (!resolver) {
    std::fprintf(stderr, "%s\n", resolver.error().message.c_str());
    return 2;
  }
  std::vector<std::string> names;
  for (long i = 0; i < domains; ++i) names.push_back(fmt::format("d{:03d}.test", i));
  auto t0 = std::chrono::steady_clock::now();
  const auto cold = (*resolver)->resolve(names);
  const double cold_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const long routed = std::count_if(cold.begin(), cold.end(), [](const auto& r) { return r.kind == delivery::MxRoute::Kind::k_hosts; });
  const auto queries = (*resolver)->queries();
  std::vector<std::string> batch(100);
  t0 = std::chrono::steady_clock::now();
  for (long done = 0; done < lookups; done += 100) {
    for (long j = 0; j < 100; ++j) batch[static_cast<std::size_t>(j)] = names[static_cast<std::size_t>((done + j) % domains)];
    if ((*resolver)->resolve(batch).front().kind != delivery::MxRoute::Kind::k_hosts) return 1;
  }
  const double warm_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("{\"bench\":\"mx_resolve\",\"domains\":%ld,\"routed\":%ld,\"cold_seconds\":%.3f,\"cold_queries\":%llu,"
              "\"warm_lookups\":%ld,\"warm_us_per_lookup\":%.3f,\"warm_queries\":%llu}\n",
              domains, routed, cold_s, static_cast<unsigned long long>(queries), lookups, warm_s * 1e6 / static_cast<double>(lookups),
              static_cast<unsigned long long>((*resolver)->queries() - queries));
  return 0;
}

// Bounce parsing (the bounces section of bench/run.sh): every message of
// `files` parsed and classified, round after round, for at least `seconds`.
std::vector<std::string> read_files(const std::vector<std::string>& files) {
  std::vector<std::string> messages;
  for (const auto& f : files) {
    std::FILE* in = std::fopen(f.c_str(), "rb");
    if (in == nullptr) continue;
    std::string bytes;
    char buf[65536];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, in)) > 0) bytes.append(buf, n);
    std::fclose(in);
    messages.push_back(std::move(bytes));
  }
  return messages;
}

int bench_bounces(double seconds, const std::vector<std::string>& files) {
  const std::vector<std::string> messages = read_files(files);
  if (messages.empty()) return 2;
  long parsed = 0;
  std::size_t recipients = 0;
  const auto t0 = std::chrono::steady_clock::now();
  double elapsed = 0;
  do {
    for (const auto& m : messages) {
      recipients += bounce::parse(m).recipients.size();
      ++parsed;
    }
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  } while (elapsed < seconds);
  std::printf("{\"bench\":\"bounces\",\"files\":%zu,\"messages\":%ld,\"recipients\":%zu,\"seconds\":%.2f,"
              "\"per_second\":%.0f}\n",
              messages.size(), parsed, recipients, elapsed, static_cast<double>(parsed) / elapsed);
  return 0;
}

int bench_bounces_gmime(double seconds, const std::vector<std::string>& files) {
  const std::vector<std::string> messages = read_files(files);
  if (messages.empty()) return 2;
  g_mime_init();
  long parsed = 0;
  const auto t0 = std::chrono::steady_clock::now();
  double elapsed = 0;
  do {
    for (const auto& m : messages) {
      GMimeStream* stream = g_mime_stream_mem_new_with_buffer(m.data(), m.size());
      GMimeParser* parser = g_mime_parser_new_with_stream(stream);
      g_object_unref(stream);
      if (GMimeMessage* message = g_mime_parser_construct_message(parser, nullptr)) g_object_unref(message);
      g_object_unref(parser);
      ++parsed;
    }
    elapsed = seconds_since(t0);
  } while (elapsed < seconds);
  std::printf("{\"bench\":\"bounces_gmime_only\",\"files\":%zu,\"messages\":%ld,\"seconds\":%.2f,\"per_second\":%.0f}\n",
              messages.size(), parsed, elapsed, static_cast<double>(parsed) / elapsed);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 4 && std::strcmp(argv[1], "bounces-gmime") == 0) {
    return bench_bounces_gmime(std::atof(argv[2]), std::vector<std::string>(argv + 3, argv + argc));
  }
  if (argc >= 4 && std::strcmp(argv[1], "bounces") == 0) {
    return bench_bounces(std::atof(argv[2]), std::vector<std::string>(argv + 3, argv + argc));
  }
  if (argc >= 4 && std::strcmp(argv[1], "render") == 0) return bench_render(argv[2], std::atol(argv[3]));
  if (argc >= 3 && std::strcmp(argv[1], "import") == 0) return bench_import(argv[2], argc >= 4 ? argv[3] : nullptr);
  if (argc >= 4 && std::strcmp(argv[1], "guard-campaign") == 0) return bench_guard_campaign(argv[2], std::atol(argv[3]));
  if (argc >= 4 && std::strcmp(argv[1], "gen") == 0) {
    if (!campaign::write_example_campaign(argv[2]) && !std::filesystem::exists(std::filesystem::path(argv[2]) / "campaign.toml")) return 2;
    return campaign::write_synthetic_audience(argv[2], std::atol(argv[3]), false) ? 0 : 1;
  }
  if (argc >= 4 && std::strcmp(argv[1], "guard") == 0) return bench_guard(std::atol(argv[2]), std::atol(argv[3]));
  if (argc >= 5 && std::strcmp(argv[1], "wire") == 0) return bench_wire(argv[2], std::atol(argv[3]), std::atol(argv[4]));
  if (argc >= 4 && std::strcmp(argv[1], "sign") == 0) return bench_sign(argv[2], std::atol(argv[3]));
  if (argc >= 5 && std::strcmp(argv[1], "mx-resolve") == 0) {
    return bench_mx_resolve(argv[2], std::atol(argv[3]), std::atol(argv[4]));
  }
  std::fprintf(stderr, "usage: blindcast_bench render DIR N | import DIR [POSTGRESQL_URI] | guard N_AUDIENCE M | guard-campaign DIR N | gen DIR N | wire URL N SIZE | sign PEM N | mx-resolve HOST:PORT N_DOMAINS N_LOOKUPS | bounces[-gmime] SECONDS FILE...\n");
  return 2;
}
