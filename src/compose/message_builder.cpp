#include "compose/message_builder.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "bounce/report.hpp"
#include "bounce/verp.hpp"
#include "mail/composer.hpp"
#include "mail/mailbox.hpp"

namespace blindcast::compose {

MessageBuilder::MessageBuilder(const campaign::LoadedCampaign& campaign, std::vector<std::string> columns,
                               util::Diagnostics& diags)
    : m_campaign(campaign),
      m_renderer(campaign.templates, campaign.catalogs, std::move(columns), campaign.config.id, diags),
      m_from(mail::format_mailbox(campaign.config.from)),
      m_reply_to(campaign.config.reply_to ? mail::format_mailbox(*campaign.config.reply_to) : ""),
      m_envelope_from(campaign.config.from.address.str()),
      m_from_domain(campaign.config.from.address.domain) {}

void MessageBuilder::use_secrets(const campaign::CampaignSecrets& secrets) { m_secrets = secrets; }

std::string MessageBuilder::campaign_bounce_token(std::int64_t recipient_id) const {
  if (!m_secrets.verp_key || !m_campaign.config.bounces) return {};
  return m_secrets.verp_key->campaign_token(m_campaign.config.id, recipient_id);
}

std::string MessageBuilder::message_bounce_token(std::string_view message_id) const {
  if (!m_secrets.verp_key || !m_campaign.config.bounces) return {};
  return m_secrets.verp_key->message_token(message_id);
}

std::expected<BuiltMessage, std::string> MessageBuilder::build(const std::vector<std::string>& fields,
                                                               const std::string& email,
                                                               const std::string& name,
                                                               const std::string& locale,
                                                               const BuildOptions& options) {
  const std::string token = m_secrets.unsubscribe_key == nullptr || !m_renderer.uses_unsubscribe_token()
                                ? std::string()
                                : campaign::unsubscribe_token(*m_secrets.unsubscribe_key, m_campaign.config.id, email);
  auto rendered = m_renderer.render(fields, locale, token);
  if (!rendered) return std::unexpected(rendered.error());
  mail::MessageSpec spec;
  spec.from = m_from;
  spec.reply_to = m_reply_to;
  spec.to_address = email;
  spec.to_name = name;
  spec.subject = options.subject_prefix + rendered->subject;
  spec.text = std::move(rendered->text);
  std::string kept_html = options.keep_html ? rendered->html : std::string();
  spec.html = std::move(rendered->html);
  spec.date = options.date.value_or(std::time(nullptr));
  spec.message_id = options.message_id.empty() ? mail::make_message_id(m_from_domain) : options.message_id;
  spec.boundary = options.boundary;
  if (!rendered->list_unsubscribe.empty()) {
    // One URL, or an https and a mailto URL joined by a line feed (config.hpp);
    // a line feed from a rendered value shows as one URL too many.
    const std::string& urls = rendered->list_unsubscribe;
    const auto unusable = std::unexpected(
        "list_unsubscribe renders to a value with spaces, line breaks, non-ASCII or <>, which cannot go in a "
        "header; percent-encode the values it uses");
    std::string value;
    bool https = false;
    std::size_t count = 0;
    for (std::size_t start = 0; start <= urls.size(); ++count) {
      const std::size_t end = std::min(urls.find('\n', start), urls.size());
      const std::string_view url(urls.data() + start, end - start);
      if (!url.starts_with("https://") && !url.starts_with("mailto:")) return unusable;
      for (char c : url) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 33 || u > 126 || c == '<' || c == '>' || c == ',') return unusable;
      }
      https = https || url.starts_with("https://");
      value += (value.empty() ? "<" : ", <") + std::string(url) + ">";
      start = end + 1;
    }
    if (count != m_campaign.config.list_unsubscribe.size()) return unusable;
    spec.extra_headers.emplace_back("List-Unsubscribe", value);
    if (https) spec.extra_headers.emplace_back("List-Unsubscribe-Post", "List-Unsubscribe=One-Click");
  }
  BuiltMessage out;
  out.envelope_from = m_envelope_from;
  if (!options.bounce_token.empty() && m_campaign.config.bounces) {
    // The token also rides in a header: a complaint (ARF) or a forwarded
    // bounce returns the message's headers but not its envelope.
    spec.extra_headers.emplace_back(std::string(bounce::k_token_header), options.bounce_token);
    out.envelope_from = bounce::return_path(options.bounce_token, m_campaign.config.bounces->domain);
  }
  out.subject = spec.subject;
  out.html = std::move(kept_html);
  out.blank_messages = std::move(rendered->blank_messages);
  out.data = mail::compose(spec);
  if (m_secrets.dkim) {
    auto signed_message = m_secrets.dkim->sign(out.data, static_cast<long long>(spec.date));
    if (!signed_message) return std::unexpected(signed_message.error().message);
    out.data = std::move(*signed_message);
  }
  return out;
}

}  // namespace blindcast::compose
