#include "campaign/example.hpp"

#include <sys/stat.h>

#include <ctime>
#include <fstream>
#include <random>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include "mail/address.hpp"
#include "mail/alignment.hpp"
#include "mail/dkim_signer.hpp"
#include "util/base64.hpp"
#include "util/file.hpp"
#include "util/sha256.hpp"

namespace blindcast::campaign {

namespace {

constexpr const char* k_small_canary_comment =
    "# The canary is a reproducible sample sent before everyone else. This\n"
    "# example's 12 rows take a small one and no wait; for a real audience use\n"
    "# min = 100 and wait = \"30m\" (bounces arrive minutes late).\n";

constexpr const char* k_campaign_toml = R"(# blindcast campaign settings. See README.md, "campaign.toml" and "Stages and gates".
id = "index-change-2026-11"
from = "Example Exchange <noreply@example.com>"
reply_to = "support@example.com"
default_locale = "en"
list_unsubscribe = "mailto:unsubscribe@example.com?subject=unsubscribe-{{campaign_id}}"

[transport]
# maildir:PATH writes one file per message (relative to this directory).
url = "maildir:out/maildir"

[stages]
test = ["ops@example.com"]
# The canary is a reproducible sample sent before everyone else. This
# example's 12 rows take a small one and no wait; for a real audience use
# min = 100 and wait = "30m" (bounces arrive minutes late).
canary = { size = "1%", min = 3, wait = "0s", max_bounce_rate = 0.02, max_deferral_rate = 0.20 }
approvals_required = 1
)";

constexpr const char* k_subject = "{{t.subject}}\n";

constexpr const char* k_body_txt = R"({{t.greeting}}

{{t.intro}}

{{t.assets}}

{{#ticket}}
{{t.ticket}}

{{/ticket}}
{{t.sent_to}}

-- 
{{t.signature}}
)";

constexpr const char* k_body_html = R"(<!DOCTYPE html>
<html><body>
<p>{{t.greeting}}</p>
<p>{{t.intro}}</p>
<p><strong>{{t.assets}}</strong></p>
{{#ticket}}
<p>{{t.ticket}}</p>
{{/ticket}}
<p style="color:#666">{{t.sent_to}}</p>
<p>{{t.signature}}</p>
</body></html>
)";

constexpr const char* k_en = R"(subject = "Index change on {effective_date, date, long}"
greeting = "Hello {name},"
intro = "On {effective_date, date, long} we change how our price indexes are computed. Nothing changes in your account and you do not need to do anything."
assets = "{assets, plural, =0 {You hold no affected assets.} one {You hold # affected asset.} other {You hold # affected assets.}}"
ticket = "Your open support ticket {ticket} stays open."
sent_to = "This message was sent to {email}."
signature = "The Example Exchange team"
)";

constexpr const char* k_de = R"(subject = "Indexänderung am {effective_date, date, long}"
greeting = "Hallo {name},"
intro = "Am {effective_date, date, long} ändern wir die Berechnung unserer Preisindizes. In Ihrem Konto ändert sich nichts, und Sie müssen nichts tun."
assets = "{assets, plural, =0 {Sie halten keine betroffenen Werte.} one {Sie halten # betroffenen Wert.} other {Sie halten # betroffene Werte.}}"
ticket = "Ihr offenes Support-Ticket {ticket} bleibt offen."
sent_to = "Diese Nachricht wurde an {email} gesendet."
signature = "Ihr Example-Exchange-Team"
)";

constexpr const char* k_ja = R"(subject = "{effective_date, date, long}の指数変更のお知らせ"
greeting = "{name} 様"
intro = "{effective_date, date, long}より、価格指数の算出方法を変更いたします。お客様のアカウントに変更はなく、お手続きは不要です。"
assets = "{assets, plural, other {対象となる資産を#件保有されています。}}"
ticket = "サポートチケット {ticket} は引き続き対応いたします。"
sent_to = "このメッセージは {email} 宛に送信されました。"
signature = "Example Exchange チーム"
)";

constexpr const char* k_ar = R"(subject = "تغيير المؤشر في {effective_date, date, long}"
greeting = "مرحبًا {name}،"
intro = "اعتبارًا من {effective_date, date, long} سنغيّر طريقة حساب مؤشرات الأسعار. لن يتغير شيء في حسابك ولا يلزمك أي إجراء."
assets = "{assets, plural, zero {لا تملك أي أصول متأثرة.} one {تملك أصلًا واحدًا متأثرًا.} two {تملك أصلين متأثرين.} few {تملك # أصول متأثرة.} many {تملك # أصلًا متأثرًا.} other {تملك # أصل متأثر.}}"
ticket = "ستبقى تذكرة الدعم {ticket} مفتوحة."
sent_to = "أُرسلت هذه الرسالة إلى {email}."
# A Latin name in Arabic text sits in bidi isolates (FSI ... PDI) so that it
# keeps its place; blindcast isolates every plain {value} in a right-to-left
# catalog by itself.
signature = "فريق \u2068Example Exchange\u2069"
)";

constexpr const char* k_pt = R"(subject = "Mudança de índice em {effective_date, date, long}"
greeting = "Olá, {name}!"
intro = "Em {effective_date, date, long} mudaremos o cálculo dos nossos índices de preço. Nada muda na sua conta e você não precisa fazer nada."
assets = "{assets, plural, =0 {Você não tem ativos afetados.} one {Você tem # ativo afetado.} other {Você tem # ativos afetados.}}"
ticket = "O seu chamado de suporte {ticket} continua aberto."
sent_to = "Esta mensagem foi enviada para {email}."
signature = "Equipe Example Exchange"
)";

constexpr const char* k_audience = R"(email,name,locale,assets,effective_date,ticket
alice@example.org,Alice Smith,en,3,2026-12-01,T-1001
bob@example.org,Bob Jones,en-GB,1,2026-12-01,
carla@example.net,Carla Müller,de,0,2026-12-01,
dieter@example.net,"Dieter ""DJ"" Jäger",de-AT,5,2026-12-01,T-1002
hanako@example.jp,山田 花子,ja,2,2026-12-01,
taro@example.jp,佐藤 太郎,ja-JP,12,2026-12-01,T-1003
layla@example.ae,ليلى أحمد,ar,1,2026-12-01,
omar@example.ae,عمر خالد,ar-EG,4,2026-12-01,
joao@example.com.br,João Silva,pt-BR,7,2026-12-01,
maria@example.pt,Maria Santos,pt,1,2026-12-01,
kai@bücher.example,Kai Becker,de,2,2026-12-01,
sam@example.org,Sam Lee,,9,2026-12-01,
)";

// Synthetic rows for the test stage: one per catalog, so the internal seed
// list never receives a real customer's name or holdings.
constexpr const char* k_samples = R"(email,name,locale,assets,effective_date,ticket
sample.en@example.com,Sample Customer,en,3,2026-12-01,T-0001
sample.de@example.com,Beispiel Kundin,de,1,2026-12-01,
sample.ja@example.com,見本 太郎,ja,2,2026-12-01,T-0002
sample.ar@example.com,عميل تجريبي,ar,5,2026-12-01,
sample.pt@example.com,Cliente Exemplo,pt-BR,0,2026-12-01,T-0003
)";

constexpr const char* k_gitignore = R"(# Credentials never go into version control (see README.md, "DKIM, one-click unsubscribe and secrets").
secrets/
# Local state: delivery journal, quarantine, previews.
.blindcast/
out/
)";

Result<void> write(const std::filesystem::path& path, std::string_view content) {
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  return util::write_file_atomic(path, content, 0644);
}

}  // namespace

Result<void> write_example_campaign(const std::filesystem::path& dir) {
  std::error_code ec;
  if (std::filesystem::exists(dir / "campaign.toml", ec)) {
    return fail(fmt::format("{}: a campaign already exists here (campaign.toml); choose an empty directory",
                            dir.string()));
  }
  std::filesystem::create_directories(dir, ec);
  if (ec) return fail(fmt::format("{}: cannot create: {}", dir.string(), ec.message()));
  const std::pair<const char*, const char*> files[] = {
      {"campaign.toml", k_campaign_toml},     {"templates/subject.txt", k_subject},
      {"templates/body.txt", k_body_txt},     {"templates/body.html", k_body_html},
      {"locales/en.toml", k_en},              {"locales/de.toml", k_de},
      {"locales/ja.toml", k_ja},              {"locales/ar.toml", k_ar},
      {"locales/pt.toml", k_pt},              {"audience.csv", k_audience},
      {"samples.csv", k_samples},
      {".gitignore", k_gitignore},
  };
  for (const auto& [rel, content] : files) {
    if (auto w = write(dir / rel, content); !w) return w;
  }
  std::filesystem::create_directories(dir / "secrets", ec);
  ::chmod((dir / "secrets").c_str(), 0700);
  return {};
}

Result<void> write_example_campaign(const std::filesystem::path& dir, const std::string& domain) {
  // The domain as a sender's: an address at it must be valid (IDNA, one dot at least).
  auto at = mail::parse_address("noreply@" + domain);
  if (domain.empty() || !at) {
    return fail(fmt::format("--dkim '{}': not a domain to send from{}", domain,
                            at ? std::string() : ": " + at.error()));
  }
  const std::string d = at->domain;
  if (!mail::has_registrable_domain(d)) {
    return fail(fmt::format("--dkim {}: a public suffix, not a domain of yours (give the one you send from, e.g. "
                            "news.example.{})",
                            d, d));
  }
  if (auto w = write_example_campaign(dir); !w) return w;
  const std::time_t now = std::time(nullptr);
  const std::string stamp = fmt::format("{:%Y%m}", fmt::gmtime(now));
  const std::string rsa_selector = "bc" + stamp + "r", ed_selector = "bc" + stamp + "e";
  auto rsa = mail::generate_dkim_key(mail::DkimKeyType::k_rsa2048);
  if (!rsa) return std::unexpected(rsa.error());
  auto ed = mail::generate_dkim_key(mail::DkimKeyType::k_ed25519);
  if (!ed) return std::unexpected(ed.error());
  const std::string unsubscribe_key = util::base64(util::random_bytes(32));
  if (unsubscribe_key.size() < 40) return fail("cannot generate the unsubscribe key (OpenSSL)", ExitCode::k_runtime);
  const std::pair<const char*, const std::string*> secrets[] = {
      {"secrets/dkim-rsa.pem", &*rsa}, {"secrets/dkim-ed25519.pem", &*ed}};
  for (const auto& [rel, pem] : secrets) {
    if (auto w = util::write_file_atomic(dir / rel, *pem, 0600); !w) return w;
  }
  if (auto w = util::write_file_atomic(dir / "secrets/unsubscribe.key", unsubscribe_key + "\n", 0600); !w) return w;
  auto toml = util::read_file(dir / "campaign.toml");
  if (!toml) return std::unexpected(toml.error());
  std::string t = *toml;
  const auto replace_line = [&t](std::string_view starts, const std::string& line) {
    const auto pos = t.find(std::string("\n") + std::string(starts));
    if (pos == std::string::npos) return;
    const auto end = t.find('\n', pos + 1);
    t.replace(pos + 1, end - pos - 1, line);
  };
  replace_line("from = ", fmt::format("from = \"Example Exchange <noreply@{}>\"", d));
  replace_line("reply_to = ", fmt::format("reply_to = \"support@{}\"", d));
  replace_line("list_unsubscribe = ",
               fmt::format("list_unsubscribe = \"https://{}/unsubscribe/{{{{unsubscribe_token}}}}\"   # serve it: a POST "
                           "there must unsubscribe (RFC 8058)",
                           d));
  // A campaign that sends for a real domain gets the canary a real audience needs.
  if (const auto c = t.find(k_small_canary_comment); c != std::string::npos) {
    t.replace(c, std::string_view(k_small_canary_comment).size(),
              "# The canary: a reproducible sample sent before everyone else; the full stage\n"
              "# waits 30 minutes after it for late bounces.\n");
  }
  replace_line("canary = ", "canary = { size = \"1%\", min = 100, wait = \"30m\", max_bounce_rate = 0.02, "
                            "max_deferral_rate = 0.20 }");
  t += fmt::format(
      "\n# Written by 'blindcast init --dkim': publish the TXT records it printed\n"
      "# ('blindcast lint --json' shows them again) before the first send.\n"
      "[dkim]\ndomain = \"{}\"\nselector = [\"{}\", \"{}\"]\n"
      "key_file = [\"secrets/dkim-rsa.pem\", \"secrets/dkim-ed25519.pem\"]\n\n"
      "[unsubscribe]\nsecret_file = \"secrets/unsubscribe.key\"\n",
      d, rsa_selector, ed_selector);
  return util::write_file_atomic(dir / "campaign.toml", t, 0644);
}

Result<void> write_synthetic_audience(const std::filesystem::path& dir, std::int64_t rows, bool bad_rows) {
  struct LocaleNames {
    const char* locale;
    std::vector<const char*> first;
    std::vector<const char*> last;
  };
  const std::vector<LocaleNames> locales = {
      {"en", {"Alice", "Bob", "Chloe", "David", "Emma", "Frank"}, {"Smith", "Jones", "Brown", "Taylor"}},
      {"de", {"Jürgen", "Anna", "Lukas", "Sophie", "Jörg"}, {"Müller", "Schmidt", "Weiß", "Groß"}},
      {"ja", {"花子", "太郎", "陽菜", "蓮", "結衣"}, {"山田", "佐藤", "鈴木", "高橋"}},
      {"ar", {"ليلى", "عمر", "فاطمة", "يوسف"}, {"أحمد", "خالد", "حسن", "علي"}},
      {"pt-BR", {"João", "Ana", "Luís", "Beatriz"}, {"Silva", "Santos", "Conceição", "Araújo"}},
  };
  const char* domains[] = {"gmail.com", "yahoo.com", "outlook.com", "icloud.com", "qq.com",
                           "163.com",   "example.org", "bücher.example", "aol.com", "hotmail.de"};
  std::mt19937_64 rng(20261122);
  std::string out = "email,name,locale,assets,effective_date,ticket\n";
  out.reserve(static_cast<std::size_t>(rows) * 70);
  std::string first_email;
  for (std::int64_t i = 0; i < rows; ++i) {
    const std::string email = fmt::format("user{:06}@{}", i + 1, domains[rng() % std::size(domains)]);
    if (i == 0) first_email = email;
    const auto& loc = locales[static_cast<std::size_t>(i) % locales.size()];
    const std::string name = fmt::format("{} {}", loc.first[rng() % loc.first.size()],
                                         loc.last[rng() % loc.last.size()]);
    const bool east_asian = std::string_view(loc.locale) == "ja";
    out += fmt::format("{},{},{},{},2026-12-01,{}\n", email,
                       east_asian ? name.substr(name.find(' ') + 1) + " " + name.substr(0, name.find(' ')) : name,
                       loc.locale, rng() % 20, (i % 7 == 0) ? fmt::format("T-{}", 10000 + i) : "");
  }
  if (bad_rows) {
    out += "not-an-address,Broken Row,en,1,2026-12-01,\n";
    out += "\"victim@example.org\",\"Eve\r\nBcc: everyone@example.org\",en,1,2026-12-01,\n";
    if (!first_email.empty()) {
      std::string upper = first_email;
      for (char& c : upper) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
      out += upper + ",Duplicate Row,en,1,2026-12-01,\n";
    }
  }
  return util::write_file_atomic(dir / "audience.csv", out, 0644);
}

}  // namespace blindcast::campaign
