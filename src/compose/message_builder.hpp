// Turns one audience row into the exact bytes to send: render (templates and
// catalogs), then compose (headers, MIME). The privacy guard is applied by the
// caller on the result, never here.
#pragma once

#include <ctime>
#include <expected>
#include <optional>
#include <string>
#include <vector>

#include "campaign/campaign.hpp"
#include "campaign/secrets.hpp"
#include "render/renderer.hpp"

namespace blindcast::compose {

struct BuildOptions {
  std::string subject_prefix;              // "[TEST en] " for the test stage
  std::optional<std::time_t> date;         // fixed Date (golden files); default now
  std::string message_id;                  // fixed Message-ID; default a new one
  std::string boundary;                    // fixed multipart boundary; default random
  bool keep_html = false;                  // also return the HTML part as rendered (preview)
  // The VERP token of this message (campaign_token() or a stream's message
  // token); with [bounces] it makes the envelope sender and the
  // X-Blindcast-Token header. Empty: the envelope sender is the From address.
  std::string bounce_token;
};

struct BuiltMessage {
  std::string data;         // CRLF bytes
  std::string envelope_from;  // MAIL FROM: bounce+TOKEN@domain with [bounces] and a token, else the From address
  std::string subject;      // rendered subject (for previews and tests)
  std::string html;         // the HTML part as rendered, with BuildOptions::keep_html
  std::vector<const render::CatalogMessage*> blank_messages;  // see render::RenderedMessage
};

class MessageBuilder {
 public:
  // Binds `campaign`'s templates to the audience `columns`; findings go to `diags`.
  MessageBuilder(const campaign::LoadedCampaign& campaign, std::vector<std::string> columns,
                 util::Diagnostics& diags);

  // Builds the message for the row (`fields` in column order) addressed to `email`.
  std::expected<BuiltMessage, std::string> build(const std::vector<std::string>& fields,
                                                 const std::string& email, const std::string& name,
                                                 const std::string& locale,
                                                 const BuildOptions& options = {});

  // Signs every message with `secrets.dkim` and fills {{unsubscribe_token}}.
  void use_secrets(const campaign::CampaignSecrets& secrets);
  [[nodiscard]] const campaign::CampaignSecrets& secrets() const { return m_secrets; }

  [[nodiscard]] render::Renderer& renderer() { return m_renderer; }
  [[nodiscard]] const std::string& envelope_from() const { return m_envelope_from; }
  // The VERP token of the campaign's recipient `recipient_id`; "" without [bounces].
  [[nodiscard]] std::string campaign_bounce_token(std::int64_t recipient_id) const;
  // The VERP token of a stream's message `message_id`; "" without [bounces].
  [[nodiscard]] std::string message_bounce_token(std::string_view message_id) const;

 private:
  const campaign::LoadedCampaign& m_campaign;
  render::Renderer m_renderer;
  std::string m_from;
  std::string m_reply_to;
  std::string m_envelope_from;
  std::string m_from_domain;
  campaign::CampaignSecrets m_secrets;
};

}  // namespace blindcast::compose
