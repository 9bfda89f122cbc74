// parse() on hand-written samples of the formats blindcast meets most
// (tests/data/bounces/samples/), classify() as a table, and hostile input.
#include <gtest/gtest.h>
#include <pthread.h>

#include <fstream>
#include <sstream>

#include "bounce/report.hpp"
#include "bounce_mime_reading.hpp"
#include "mail/encoding.hpp"
#include "util/utf8.hpp"

namespace blindcast::bounce {
namespace {

const std::string k_samples = std::string(BLINDCAST_TEST_DATA) + "/bounces/samples/";
constexpr std::string_view k_token = "cb3lq5xk2m7a4d6fhz2p4yq3nevw6tu5ja";

Report sample(const std::string& name) {
  std::ifstream in(k_samples + name, std::ios::binary);
  EXPECT_TRUE(in) << name;
  std::ostringstream s;
  s << in.rdbuf();
  return parse(s.str());
}

struct Expect {
  const char* file;
  Type type;
  const char* address;  // "" when no recipient is expected
  bool hard;
  Reason reason;
  const char* status;
  const char* reply_code;
  std::string_view token;
};

TEST(BounceParse, Samples) {
  const Expect rows[] = {
      {"postfix_dsn_verp.eml", Type::k_bounce, "marie.dupont@example.fr", true, Reason::k_user_unknown, "5.1.1", "550",
       k_token},
      {"global_dsn_utf8.eml", Type::k_bounce, "jos\u00e9@exemplo.com.br", true, Reason::k_user_unknown, "5.1.1", "550",
       k_token},
      {"o365_ndr.eml", Type::k_bounce, "anna.kowalska@contoso.pl", true, Reason::k_user_unknown, "5.1.1", "550",
       "ke5tq2d7xbnm4hy6a3rfw2zpu4"},
      {"gmail_mailbox_full.eml", Type::k_bounce, "ravi.sharma@gmail.com", false, Reason::k_mailbox_full, "5.2.2", "552",
       k_token},
      {"dmarc_5726.eml", Type::k_bounce, "lena.schmidt@gmail.com", false, Reason::k_auth_failure, "5.7.26", "550",
       k_token},
      {"expired_447.eml", Type::k_bounce, "kenji.tanaka@example.jp", false, Reason::k_expired, "4.4.7", "", k_token},
      {"arf_complaint.eml", Type::k_complaint, "chloe.martin@yahoo.com", true, Reason::k_spam_detected, "", "",
       k_token},
      {"out_of_office.eml", Type::k_auto_reply, "", false, Reason::k_other, "", "", k_token},
      {"delivered_dsn.eml", Type::k_delivered, "oliver.smith@example.co.uk", false, Reason::k_other, "2.0.0", "250",
       k_token},
      {"ses_bounce.eml", Type::k_bounce, "priya.nair@example.in", true, Reason::k_user_unknown, "5.1.1", "550",
       k_token},
      {"exim_plain.eml", Type::k_bounce, "sam.taylor@example.org", false, Reason::k_blocked, "5.7.1", "550", k_token},
  };
  for (const auto& e : rows) {
    SCOPED_TRACE(e.file);
    const Report r = sample(e.file);
    EXPECT_EQ(to_string(r.type), to_string(e.type));
    EXPECT_EQ(r.token, e.token);
    if (std::string_view(e.address).empty()) {
      EXPECT_TRUE(r.recipients.empty());
      continue;
    }
    ASSERT_EQ(r.recipients.size(), 1U);
    const auto& x = r.recipients[0];
    EXPECT_EQ(x.address, e.address);
    EXPECT_EQ(x.hard, e.hard);
    EXPECT_EQ(to_string(x.reason), to_string(e.reason));
    EXPECT_EQ(x.status, e.status);
    EXPECT_EQ(x.reply_code, e.reply_code);
  }
}

TEST(BounceParse, ComplaintCarriesFeedbackType) {
  EXPECT_EQ(sample("arf_complaint.eml").feedback_type, "abuse");
}

TEST(BounceParse, AFeedbackReportBesideDeliveryStatusIsADsnAndNotSpamIsNoComplaint) {
  const std::string both =
      "From: MAILER-DAEMON@mx.example.net\r\nTo: bounce+abc@bounces.example.com\r\nMIME-Version: 1.0\r\n"
      "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\n"
      "Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n"
      "Final-Recipient: rfc822; alice@example.org\r\nAction: delayed\r\nStatus: 4.4.1\r\n\r\n--b\r\n"
      "Content-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nVersion: 1\r\n\r\n--b--\r\n";
  const Report r = parse(both);
  EXPECT_EQ(to_string(r.type), "bounce");
  ASSERT_EQ(r.recipients.size(), 1U);
  EXPECT_FALSE(r.recipients[0].hard);
  const std::string not_spam =
      "From: fbl@example.net\r\nTo: fbl@bounces.example.com\r\nMIME-Version: 1.0\r\n"
      "Content-Type: multipart/report; report-type=feedback-report; boundary=\"f\"\r\n\r\n--f\r\n"
      "Content-Type: message/feedback-report\r\n\r\nFeedback-Type: not-spam\r\nVersion: 1\r\n"
      "Original-Rcpt-To: alice@example.org\r\n\r\n--f--\r\n";
  EXPECT_EQ(to_string(parse(not_spam).type), "unknown");
}

TEST(BounceParse, DiagnosticIsUnfoldedAndTrimmed) {
  const Report r = sample("postfix_dsn_verp.eml");
  ASSERT_EQ(r.recipients.size(), 1U);
  EXPECT_EQ(r.recipients[0].diagnostic,
            "550 5.1.1 <marie.dupont@example.fr>: Recipient address rejected: User unknown in virtual mailbox table");
}

std::string dsn(std::string_view status, std::string_view diagnostic, std::string_view action = "failed",
                std::string_view to = "bounce+abc234@bounces.example.com") {
  std::string m = "From: MAILER-DAEMON@mx.example.net\r\nTo: ";
  m.append(to);
  m += "\r\nSubject: Undelivered Mail\r\nMIME-Version: 1.0\r\n"
       "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n"
       "--B\r\nContent-Type: text/plain\r\n\r\nFailed.\r\n\r\n"
       "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n"
       "Final-Recipient: rfc822; user@example.com\r\nAction: ";
  m.append(action);
  m += "\r\nStatus: ";
  m.append(status);
  m += "\r\nDiagnostic-Code: smtp; ";
  m.append(diagnostic);
  m += "\r\n\r\n--B--\r\n";
  return m;
}

TEST(BounceParse, RemoteCodeInDiagnosticBeatsGenericStatus) {
  // A 4.x.x DSN whose diagnostic carries the remote server's 550 5.1.1.
  Report r = parse(dsn("4.0.0", "550 5.1.1 <user@example.com>: user unknown"));
  ASSERT_EQ(r.recipients.size(), 1U);
  EXPECT_TRUE(r.recipients[0].hard);
  EXPECT_EQ(r.recipients[0].status, "5.1.1");
  r = parse(dsn("5.0.0", "550 No such user here"));
  ASSERT_EQ(r.recipients.size(), 1U);
  EXPECT_TRUE(r.recipients[0].hard);
  EXPECT_EQ(to_string(r.recipients[0].reason), "user-unknown");
  EXPECT_EQ(r.recipients[0].status, "5.0.0");
}

// read_mime reads the fields it needs of the top header section itself and
// hands GMime only the MIME fields (a report's Received/DKIM/ARC trail is
// most of its fields): a report reads the same with and without a long
// trail, folded fields around the ones it needs, or a line that is no field
// (then GMime reads the section as it is).
TEST(BounceParse, AReportReadsTheSameWhateverTrailItsHeadersCarry) {
  const std::string plain = dsn("5.1.1", "550 5.1.1 user unknown", "failed",
                                "bounce+" + std::string(k_token) + "@bounces.example.com");
  std::string trail;
  for (int i = 0; i < 300; ++i) {
    trail += "Received: from mx" + std::to_string(i) + ".example.net (mx.example.net [192.0.2.1])\r\n\tby relay.example.org with ESMTPS id " +
             std::to_string(i) + ";\r\n\tMon, 30 Nov 2026 02:00:00 +0000\r\n";
  }
  trail += "DKIM-Signature: v=1; a=rsa-sha256; d=example.net;\r\n b=AAAA\r\n  BBBB\r\n";
  const std::string variants[] = {
      trail + plain,
      // The token's To folded, between dropped folded fields.
      trail + "To:\r\n bounce+" + std::string(k_token) + "@bounces.example.com\r\nX-Other: a\r\n b\r\n" +
          plain.substr(plain.find("\r\nSubject:") + 2),
      // A line that is no field: GMime reads the section as it is.
      "Received: by a\r\nnot a field\r\n" + plain,
      // LF only.
      [&] {
        std::string lf;
        for (const char c : trail + plain) {
          if (c != '\r') lf += c;
        }
        return lf;
      }(),
  };
  const Report want = parse(plain);
  ASSERT_EQ(want.type, Type::k_bounce);
  ASSERT_EQ(want.recipients.size(), 1U);
  EXPECT_EQ(want.token, k_token);
  for (const auto& v : variants) {
    const Report r = parse(v);
    EXPECT_EQ(r.type, want.type) << v.substr(0, 80);
    ASSERT_EQ(r.recipients.size(), 1U) << v.substr(0, 80);
    EXPECT_EQ(r.recipients[0].address, "user@example.com");
    EXPECT_EQ(r.recipients[0].status, "5.1.1");
    EXPECT_EQ(r.recipients[0].reason, Reason::k_user_unknown);
    EXPECT_EQ(r.token, want.token) << v.substr(0, 80);
  }
  // An auto-reply's marker after a long trail is still read.
  const Report reply = parse(trail + "From: ana@example.com\r\nAuto-Submitted: auto-replied\r\nSubject: Re: hi\r\n\r\nAway.\r\n");
  EXPECT_EQ(reply.type, Type::k_auto_reply);
}

// read_mime reads a message's header section itself and hands GMime only
// the MIME fields (and nothing at all when there is none: a plain RFC 822
// message); read_mime(raw, true) lets GMime read everything. Both must give
// the same fields and the same parts: encoded words in several charsets,
// raw UTF-8 and Latin-1 bytes, folds, a blank-only fold line, repeated
// fields, CRLF and LF, returned messages read whole and for their header
// section only.
TEST(BounceParse, TheTopSectionReadsAsGMimeReadsIt) {
  const std::string fields[] = {
      "From: =?utf-8?q?Zo=C3=AB_M=C3=BCller?= <mailer-daemon@mx.example.de>\r\n",
      "From: \"=?iso-8859-1?b?Suxy9G1l?=\" <postmaster@example.com.br>\r\n",
      "Subject: Unzustellbar: =?windows-1252?q?Nachricht_f=FCr_Fran=E7ois?=\r\n",
      "Subject: =?utf-8?b?5pyq6YCB6L6+?= =?utf-8?b?6YCa55+l?=\r\n",
      "Subject: Entrega fallida para Mar\xc3\xad" "a Jos\xc3\xa9\r\n",
      "Subject: Non remis pour Ren\xe9" "e\r\n",
      "Subject:\r\n\tDelivery Status\r\n  Notification (Failure)\r\n",
      "Subject: Returned mail\r\n \r\n\t(see below)\r\n",
      "To: =?utf-8?q?M=C3=A1ire_O=27Connor?= <m.oconnor@example.ie>,\r\n  \"Nguy\xe1\xbb\x85n\" <nguyen@example.vn>\r\n",
      "Auto-Submitted: auto-replied\r\nAuto-Submitted: auto-generated\r\n",
      "X-Failed-Recipients: o.brien@example.ie,\r\n j.smith@example.co.uk\r\n",
      // Bytes GMime's unfolding treats its own way: a NUL ends the value, a
      // stray CR goes, a vertical tab stays.
      std::string("Subject: Un\0\0deliverable\r\n", 26),
      "To: <m.oconnor@example.ie>\rq\r\n",
      "To: \v<m.oconnor@example.ie>\r\n",
  };
  const std::string bodies[] = {
      // No MIME field: one text/plain part.
      "\r\nThis is the mail system at host mx.example.de.\r\n\r\n<m.oconnor@example.ie>: user unknown\r\n",
      "\r\nRetour: 550 5.1.1 <ren\xe9\x65@example.fr> inconnu\r\n\r\n",
      "\r\n",
      // MIME.
      "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\nBo\xee" "te pleine\r\n",
      "Content-Type: multipart/report; report-type=delivery-status;\r\n boundary=\"r1\"\r\n\r\n--r1\r\n"
      "Content-Type: text/plain\r\n\r\nFailed.\r\n--r1\r\nContent-Type: message/delivery-status\r\n\r\n"
      "Final-Recipient: rfc822; a@example.com\r\nStatus: 5.1.1\r\n\r\n--r1--\r\n",
      // A returned message read whole (its body names a report): its To and
      // token folded, encoded, among fields blindcast does not read.
      "Content-Type: multipart/mixed; boundary=\"m1\"\r\n\r\n--m1\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"
      "--m1\r\nContent-Type: message/rfc822\r\n\r\nReceived: by mx.example.net;\r\n\tMon, 30 Nov 2026\r\n"
      "To: =?utf-8?q?J=C3=B8rgen_Hansen?=\r\n <j.hansen@example.dk>\r\nX-Blindcast-Token:\r\n " +
          std::string(k_token) +
          "\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"r2\"\r\n\r\n--r2\r\n"
          "Content-Type: message/delivery-status\r\n\r\nFinal-Recipient: rfc822; j.hansen@example.dk\r\n"
          "Status: 5.2.2\r\n\r\n--r2--\r\n\r\n--m1--\r\n",
      // Returned messages read for their header section only: a To folded
      // over a line of blanks, and a copy whose first line is no field (an
      // MTA's "Message removed": GMime decides where its section ends).
      "Content-Type: multipart/mixed; boundary=\"m2\"\r\n\r\n--m2\r\nContent-Type: message/rfc822\r\n\r\n"
      "To: <chloe.martin@example.fr>,\r\n \r\n <Zo\xc3\xab.Weber@example.ch>\r\nSubject: Angebote\r\n\r\nGuten Tag\r\n"
      "--m2\r\nContent-Type: message/rfc822\r\n\r\nMessage removed\r\nTo: kenji.sato@example.jp\r\n\r\nbody\r\n--m2--\r\n",
  };
  for (const auto& f : fields) {
    for (const auto& b : bodies) {
      for (const bool crlf : {true, false}) {
        std::string raw = "Received: from mx.example.net by relay.example.org;\r\n\tMon, 30 Nov 2026 02:00:00 +0000\r\n" +
                          f + "DKIM-Signature: v=1; d=example.net;\r\n b=AAAA\r\n" + b;
        if (!crlf) std::erase(raw, '\r');
        const auto [got_parts, want_parts] = reading_check::both_readings(raw);
        EXPECT_EQ(got_parts, want_parts) << raw;
        EXPECT_FALSE(got_parts.empty()) << raw;
      }
    }
  }
}

// The report's fields are read among the first 400 of its section, counted
// over every field, cut or not (the cut does not move that bound).
TEST(BounceParse, TheFirst400FieldsOfASectionAreReadWhateverTheCut) {
  const auto reply_after = [](int fields_before) {
    std::string m = "From: ana@example.com.ar\r\n";
    for (int i = 1; i < fields_before; ++i) m += "Received: by mx" + std::to_string(i) + ".example.net\r\n";
    return parse(m + "Auto-Submitted: auto-replied\r\nSubject: Re: hola\r\n\r\nFuera de la oficina.\r\n").type;
  };
  EXPECT_EQ(reply_after(399), Type::k_auto_reply);  // the 400th field
  EXPECT_EQ(reply_after(400), Type::k_unknown);     // the 401st
}

// A DSN whose third part is `returned` (a message/rfc822 part, with `cte`
// as its transfer encoding when not empty).
std::string report_returning(std::string_view returned, std::string_view cte = "") {
  std::string m =
      "From: MAILER-DAEMON@mx.example.net\r\nTo: noreply@news.example.com\r\nSubject: Undelivered Mail\r\n"
      "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"r1\"\r\n\r\n"
      "--r1\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
      "--r1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n"
      "Final-Recipient: rfc822; m.oconnor@example.ie\r\nAction: failed\r\nStatus: 5.1.1\r\n"
      "Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n\r\n"
      "--r1\r\nContent-Type: message/rfc822\r\n";
  if (!cte.empty()) m += "Content-Transfer-Encoding: " + std::string(cte) + "\r\n";
  m += "\r\n";
  m += returned;
  m += "\r\n--r1--\r\n";
  return m;
}

// The original as blindcast sent it: headers, a multipart body with an
// attachment (a returned copy is read for its header section only).
std::string original(std::string_view extra_header = "", std::string_view text = "Grüße aus Köln") {
  std::string m = "Received: from relay.example.com by mx.example.net; Mon, 30 Nov 2026 04:00:00 +0000\r\n"
                  "From: =?utf-8?q?Zo=C3=AB_News?= <news@example.com>\r\n"
                  "To: =?utf-8?q?M=C3=A1ire_O=27Connor?= <m.oconnor@example.ie>\r\n"
                  "Subject: =?utf-8?q?Neuigkeiten?=\r\nMIME-Version: 1.0\r\n";
  m += extra_header;
  m += "Content-Type: multipart/mixed; boundary=\"o1\"\r\n\r\n"
       "--o1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n";
  m += text;
  m += "\r\n--o1\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n";
  for (int i = 0; i < 200; ++i) m += "JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFIvRmlsdGVyIC9GbGF0ZURlY29kZT4+\r\n";
  m += "--o1--\r\n";
  return m;
}

// `in` in base64 lines, as a MIME body carries it.
std::string base64(std::string_view in) {
  std::string out;
  mail::append_base64_lines(out, in);
  return out;
}

TEST(BounceParse, AReturnedMessageGivesItsTokenHoweverItIsCarried) {
  const std::string token_field = "X-Blindcast-Token: " + std::string(k_token) + "\r\n";
  const auto check = [&](const std::string& message, std::string_view what) {
    const Report r = parse(message);
    EXPECT_EQ(r.type, Type::k_bounce) << what;
    ASSERT_EQ(r.recipients.size(), 1U) << what;
    EXPECT_EQ(r.recipients[0].address, "m.oconnor@example.ie") << what;
    EXPECT_EQ(r.recipients[0].reason, Reason::k_user_unknown) << what;
    EXPECT_EQ(r.token, k_token) << what;
  };
  check(report_returning(original(token_field)), "in the returned header section");
  check(report_returning(original(token_field), "8bit"), "declared 8bit");
  check(report_returning(original("X-Blindcast-Token:\r\n " + std::string(k_token) + "\r\n")), "folded");
  check(report_returning(base64(original(token_field)), "base64"), "the returned message base64-encoded");
  // Not in its header section but quoted in its text (a report forwarded
  // inside the returned message, or a copy that quotes the headers).
  check(report_returning(original("", "X-Blindcast-Token: " + std::string(k_token))), "quoted in its text");
  // Quoted only in a base64 text part of the copy (a forwarded plain-text
  // bounce, say): the copy is read whole when its header gives no token.
  const std::string quoted_b64 = "From: news@example.com\r\nTo: m.oconnor@example.ie\r\nSubject: Fwd\r\n"
                                 "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                                 "Content-Transfer-Encoding: base64\r\n\r\n" +
                                 base64("Original headers:\r\nX-Blindcast-Token: " + std::string(k_token) + "\r\n");
  check(report_returning(quoted_b64), "quoted in a base64 text");
  // A line of blanks in the copy's header section is a fold (as GMime reads
  // it), not the section's end.
  check(report_returning("To: m.oconnor@example.ie\r\n \r\n" + token_field + "Subject: x\r\n\r\nHi\r\n"),
        "after a line of blanks");
  // An original without any token: none is made up from its body.
  const Report none = parse(report_returning(original("", "bounce+abc234@bounces.example.com")));
  ASSERT_EQ(none.recipients.size(), 1U);
  EXPECT_EQ(none.token, "");
}

TEST(BounceParse, AForwardedReportIsReadWholeWhateverItsSize) {
  // A user forwards a DSN whose human-readable part is long: its status part
  // comes after more than 1 MB (the cap of one part's body, not of a copy).
  std::string human(1100 * 1024, 'x');
  for (std::size_t i = 76; i < human.size(); i += 78) human.replace(i, 2, "\r\n");
  const std::string dsn_inside =
      "From: MAILER-DAEMON@mx.example.net\r\nSubject: Undelivered Mail\r\nMIME-Version: 1.0\r\n"
      "Content-Type: multipart/report; report-type=delivery-status; boundary=\"in\"\r\n\r\n"
      "--in\r\nContent-Type: text/plain\r\n\r\n" + human + "\r\n"
      "--in\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n"
      "Final-Recipient: rfc822; m.oconnor@example.ie\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--in--\r\n";
  const std::string forwarded =
      "From: Support <support@example.com>\r\nTo: bounces@example.com\r\nSubject: Fwd: Undelivered Mail\r\n"
      "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"out\"\r\n\r\n"
      "--out\r\nContent-Type: text/plain\r\n\r\nSee below.\r\n"
      "--out\r\nContent-Type: message/rfc822\r\n\r\n" + dsn_inside + "\r\n--out--\r\n";
  const Report r = parse(forwarded);
  EXPECT_EQ(r.type, Type::k_bounce);
  ASSERT_EQ(r.recipients.size(), 1U);
  EXPECT_EQ(r.recipients[0].address, "m.oconnor@example.ie");
  EXPECT_EQ(r.recipients[0].status, "5.1.1");
}

TEST(BounceParse, AComplaintWithoutOriginalRcptToNamesTheReturnedTo) {
  const std::string arf =
      "From: feedback@fbl.example.net\r\nTo: abuse@news.example.com\r\nSubject: complaint\r\nMIME-Version: 1.0\r\n"
      "Content-Type: multipart/report; report-type=feedback-report; boundary=\"f\"\r\n\r\n"
      "--f\r\nContent-Type: text/plain\r\n\r\nThis is an abuse report.\r\n"
      "--f\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: fbl/1.0\r\nVersion: 1\r\n\r\n"
      "--f\r\nContent-Type: message/rfc822\r\n\r\n" +
      original() + "\r\n--f--\r\n";
  const Report r = parse(arf);
  EXPECT_EQ(r.type, Type::k_complaint);
  ASSERT_EQ(r.recipients.size(), 1U);
  EXPECT_EQ(r.recipients[0].address, "m.oconnor@example.ie");
}

TEST(BounceParse, DelayedIsNeverHard) {
  const Report r = parse(dsn("5.1.1", "550 5.1.1 user unknown", "delayed"));
  ASSERT_EQ(r.recipients.size(), 1U);
  EXPECT_EQ(r.type, Type::k_bounce);
  EXPECT_FALSE(r.recipients[0].hard);
}

TEST(BounceParse, DiagnosticIsCappedAndValidUtf8) {
  std::string long_text(3000, 'x');
  long_text += "\xC3\xA9";
  std::string bad = "550 5.1.1 bad \xFF\xFE bytes \xE2\x82 ";
  bad += std::string(995, 'y') + "\xE2\x82\xAC\xE2\x82\xAC";
  for (const auto& d : {long_text, bad}) {
    const Report r = parse(dsn("5.1.1", d));
    ASSERT_EQ(r.recipients.size(), 1U);
    EXPECT_LE(r.recipients[0].diagnostic.size(), 1000U);
    EXPECT_TRUE(util::is_valid_utf8(r.recipients[0].diagnostic));
  }
}

TEST(BounceParse, TokenIsValidated) {
  EXPECT_EQ(parse(dsn("5.1.1", "550", "failed", "Bounce+ABC234@bounces.example.com")).token, "abc234");
  EXPECT_EQ(parse(dsn("5.1.1", "550", "failed", "bounce+abc189@bounces.example.com")).token, "");
  EXPECT_EQ(parse(dsn("5.1.1", "550", "failed", "bounce+" + std::string(65, 'a') + "@b.example.com")).token, "");
  EXPECT_EQ(parse(dsn("5.1.1", "550", "failed", "user@example.com")).token, "");
}

TEST(BounceParse, AutoRepliesAreNeverBounces) {
  const std::string headers[] = {
      "Auto-Submitted: auto-replied\r\nSubject: Re: hello\r\n",
      "X-Autoreply: yes\r\nSubject: Re: hello\r\n",
      "Precedence: auto_reply\r\nSubject: Re: hello\r\n",
      "X-Autorespond: Thanks\r\nSubject: Re: hello\r\n",
      "Subject: Automatic reply: Your order\r\n",
      "Subject: Out of Office: Your order\r\n",
  };
  for (const auto& h : headers) {
    const std::string m = "From: Ana <ana@example.com>\r\nTo: news@shop.example.com\r\n" + h +
                          "\r\nI am away. My mailbox is full; the address user unknown@x will not be read.\r\n";
    const Report r = parse(m);
    EXPECT_EQ(r.type, Type::k_auto_reply) << h;
    EXPECT_TRUE(r.recipients.empty()) << h;
  }
}

TEST(BounceParse, AnOutOfOfficeFromASystemAdministratorIsNoBounce) {
  // "System Administrator" also signs old Exchange NDRs; its out-of-office
  // reply names addresses and says "unable to deliver", and is still a reply.
  const std::string m =
      "From: \"System Administrator\" <it-help@corp.example>\r\nTo: bounce+abc@bounces.example.com\r\n"
      "Subject: Automatic reply: Important notice\r\nAuto-Submitted: auto-replied\r\n\r\n"
      "I am out of the office until 2 December. For urgent requests contact helpdesk@corp.example.\r\n"
      "Your message to it-help@corp.example has been received; we are unable to deliver a response sooner.\r\n";
  EXPECT_EQ(to_string(parse(m).type), "auto-reply");
  // The NDR it signs is a bounce.
  const std::string ndr =
      "From: \"System Administrator\" <postmaster@corp.example>\r\nTo: bounce+abc@bounces.example.com\r\n"
      "Subject: Undeliverable: Important notice\r\n\r\nYour message did not reach some or all of the intended "
      "recipients.\r\n\r\n      To: nobody@corp.example\r\n      Subject: Important notice\r\n\r\n"
      "The following recipient(s) cannot be reached:\r\n\r\n      nobody@corp.example on 29/11/2026\r\n"
      "            The e-mail account does not exist at the organization this message was sent to.\r\n"
      "            <mx.corp.example #5.1.1>\r\n";
  const Report r = parse(ndr);
  EXPECT_EQ(to_string(r.type), "bounce");
  ASSERT_FALSE(r.recipients.empty());
  EXPECT_EQ(r.recipients[0].address, "nobody@corp.example");
  EXPECT_TRUE(r.recipients[0].hard);
}

TEST(BounceParse, OrdinaryMailIsUnknown) {
  const Report r = parse("From: Ana <ana@example.com>\r\nTo: news@shop.example.com\r\nSubject: Re: deals\r\n\r\n"
                         "Please remove bob@example.com from your list, the user unknown to me.\r\n");
  EXPECT_EQ(r.type, Type::k_unknown);
  EXPECT_TRUE(r.recipients.empty());
}

TEST(BounceParse, HostileInputNeverCrashes) {
  std::string nested = "Content-Type: multipart/mixed; boundary=a0\r\n\r\n";
  for (int i = 1; i < 5000; ++i) {
    nested += "--a" + std::to_string(i - 1) + "\r\nContent-Type: multipart/mixed; boundary=a" + std::to_string(i) +
              "\r\n\r\n";
  }
  std::string rfc822 = "Subject: x\r\nContent-Type: message/rfc822\r\n\r\n";
  for (int i = 0; i < 5000; ++i) rfc822 += "Content-Type: message/rfc822\r\n\r\n";
  const std::string inputs[] = {
      "", "\r\n", "From \r\n", std::string(1, '\0'), std::string(8 * 1024 * 1024, 'A'), nested, rfc822,
      "Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x\r\n"
      "Content-Type: message/delivery-status\r\n\r\nFinal-Recipient: rfc822;\r\nOriginal-Recipient: utf-8; \\x{D800}@a\r\n",
  };
  for (const auto& in : inputs) {
    const Report r = parse(in);
    for (const auto& x : r.recipients) EXPECT_TRUE(util::is_valid_utf8(x.address));
  }
}

// The capped read needs less than 48 KB of stack here; without the cap on
// a copy read whole, this one overflowed 128 KB.
constexpr std::size_t k_small_stack = 128 * 1024;

TEST(BounceParse, ReturnedCopiesReadWholeCountAgainstTheReportsEntityLimit) {
  // A base64-encoded copy hides its parts from the cut of the raw input:
  // thousands of nested multiparts inside it, twice over.
  std::string nested = "From: x@example.com\r\nContent-Type: multipart/mixed; boundary=a0\r\n\r\n";
  for (int i = 1; i < 20000; ++i) {
    nested += "--a" + std::to_string(i - 1) + "\r\nContent-Type: multipart/mixed; boundary=a" + std::to_string(i) +
              "\r\n\r\n";
  }
  nested += "Content-Type: message/delivery-status\r\n\r\n";  // a mark: the copy is read whole
  const std::string inner = report_returning(base64(nested), "base64");
  const std::string twice = report_returning(base64(inner), "base64");
  for (const auto& in : {report_returning(base64(nested), "base64"), twice}) {
    // GMime's parser recurses once per nested entity: on a thread with a
    // small stack, reading more than the report's limit would overflow it.
    Report r;
    pthread_attr_t attr;
    ASSERT_EQ(pthread_attr_init(&attr), 0);
    ASSERT_EQ(pthread_attr_setstacksize(&attr, k_small_stack), 0);
    struct Job {
      const std::string* in;
      Report* out;
    } job{&in, &r};
    pthread_t thread;
    ASSERT_EQ(pthread_create(
                  &thread, &attr,
                  [](void* p) -> void* {
                    auto* j = static_cast<Job*>(p);
                    *j->out = parse(*j->in);
                    return nullptr;
                  },
                  &job),
              0);
    ASSERT_EQ(pthread_join(thread, nullptr), 0);
    pthread_attr_destroy(&attr);
    ASSERT_EQ(r.recipients.size(), 1U);
    EXPECT_EQ(r.recipients[0].address, "m.oconnor@example.ie");
  }
}

struct ClassifyRow {
  const char* status;
  const char* reply;
  const char* diagnostic;
  bool hard;
  Reason reason;
};

TEST(BounceClassify, RuleTable) {
  const ClassifyRow rows[] = {
      // Hard: the address itself is bad.
      {"5.1.1", "550", "", true, Reason::k_user_unknown},
      {"5.1.0", "550", "Address rejected: user unknown", true, Reason::k_user_unknown},
      {"5.1.0", "550", "no such user here", true, Reason::k_user_unknown},
      {"", "550", "mailbox unavailable", true, Reason::k_user_unknown},
      {"", "550", "The email account that you tried to reach does not exist", true, Reason::k_user_unknown},
      {"5.2.1", "550", "", true, Reason::k_user_unknown},
      {"5.2.1", "550", "This account has been disabled or discontinued", true, Reason::k_user_unknown},
      {"5.1.2", "550", "", true, Reason::k_host_unknown},
      {"5.1.10", "556", "Recipient address has null MX", true, Reason::k_host_unknown},
      {"5.4.4", "550", "Unrouteable address", true, Reason::k_host_unknown},
      {"", "", "Name service error for domain example.invalid: Domain not found", true, Reason::k_host_unknown},
      {"", "", "Host not found", true, Reason::k_host_unknown},
      // A 4.x.x status is not automatically soft: the remote 5.x.x wins.
      {"4.0.0", "", "550 5.1.1 <user@example.com>: User unknown", true, Reason::k_user_unknown},
      // ... but a temporary answer about a user stays soft.
      {"4.1.1", "450", "450 4.1.1 user unknown, try again", false, Reason::k_user_unknown},
      // A 5.x.x is not automatically hard.
      {"5.7.1", "550", "", false, Reason::k_policy},
      {"5.7.1", "550", "Access denied", false, Reason::k_blocked},
      {"5.7.1", "554", "Message rejected as spam", false, Reason::k_spam_detected},
      {"5.7.1", "550", "Service unavailable; client [192.0.2.1] blocked using zen.spamhaus.org", false,
       Reason::k_blocked},
      {"5.2.2", "552", "Mailbox full", false, Reason::k_mailbox_full},
      {"5.2.2", "552", "The email account that you tried to reach does not exist", false, Reason::k_mailbox_full},
      {"5.3.4", "552", "Message size exceeds fixed limit", false, Reason::k_too_large},
      {"5.2.3", "552", "", false, Reason::k_too_large},
      {"5.4.7", "", "delivery time expired", false, Reason::k_expired},
      {"4.4.7", "", "retry timeout exceeded", false, Reason::k_expired},
      {"5.7.26", "550", "Unauthenticated email is not accepted due to domain's DMARC policy", false,
       Reason::k_auth_failure},
      {"5.7.23", "550", "SPF validation failed", false, Reason::k_auth_failure},
      {"", "550", "DKIM signature did not verify", false, Reason::k_auth_failure},
      {"4.7.0", "421", "", false, Reason::k_rate_limited},
      {"", "421", "", false, Reason::k_rate_limited},
      {"4.7.0", "450", "Too many connections, try again later", false, Reason::k_rate_limited},
      {"", "554", "Too many hops", false, Reason::k_other},
      {"5.0.0", "554", "No Resent-From field given", false, Reason::k_other},
      {"", "", "", false, Reason::k_other},
      {"5.7.1", "550", "Relay access denied", false, Reason::k_policy},
      // Our envelope sender refused (a DNS mistake on the bounce domain): never the recipient's fault.
      {"5.1.8", "550", "<bounce+x@bounces.example.com>: Sender address rejected: Domain not found", false,
       Reason::k_policy},
      {"5.1.0", "550", "<noreply@example.com>: Sender address rejected: User unknown", false, Reason::k_policy},
      {"", "550", "Verification failed for <bounce+x@bounces.example.com> Unrouteable address; Sender verify failed",
       false, Reason::k_policy},
      {"4.1.8", "450", "Sender address rejected: Domain not found", false, Reason::k_policy},
      // Exchange Online's directory-based edge blocking, Yahoo's disabled mailbox: hard.
      {"5.4.1", "550", "Recipient address rejected: Access denied. AS(201806281)", true, Reason::k_user_unknown},
      {"", "554", "30 Sorry, your message to nouser@yahoo.com cannot be delivered. This mailbox is disabled (554.30)",
       true, Reason::k_user_unknown},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(std::string(row.status) + " " + row.reply + " " + row.diagnostic);
    const Classification c = classify(row.status, row.reply, row.diagnostic);
    EXPECT_EQ(c.hard, row.hard);
    EXPECT_EQ(to_string(c.reason), to_string(row.reason));
  }
}

TEST(BounceClassify, Vocabulary) {
  EXPECT_EQ(to_string(Type::k_auto_reply), "auto-reply");
  EXPECT_EQ(to_string(Reason::k_spam_detected), "spam-detected");
  EXPECT_EQ(to_string(Reason::k_rate_limited), "rate-limited");
  EXPECT_EQ(to_string(Reason::k_auth_failure), "auth-failure");
}

}  // namespace
}  // namespace blindcast::bounce
