#include "serve/metrics.hpp"

#include <fmt/format.h>

namespace blindcast::serve {

std::string prometheus_label(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

void Metrics::message(const std::string& stream, const std::string& lane, const std::string& outcome) {
  std::lock_guard lock(m_mutex);
  ++m_messages[{stream, lane, outcome}];
}

void Metrics::intake_rejected(const std::string& reason) {
  std::lock_guard lock(m_mutex);
  ++m_rejected[reason];
}

void Metrics::intake_accepted(const std::string& stream) {
  std::lock_guard lock(m_mutex);
  ++m_accepted[stream];
}

void Metrics::guard_refused(const std::string& stream) {
  std::lock_guard lock(m_mutex);
  ++m_guard[stream];
}

void Metrics::bounce_report(const std::string& outcome) {
  std::lock_guard lock(m_mutex);
  ++m_bounce_reports[outcome];
}

void Metrics::Histogram::add(double seconds) {
  std::size_t i = 0;
  while (i < k_buckets.size() && seconds > k_buckets[i]) ++i;
  ++counts[i];
  sum += seconds;
  ++count;
}

double Metrics::Histogram::quantile(double q) const {
  if (count == 0) return 0;
  const auto want = static_cast<std::int64_t>(q * static_cast<double>(count) + 0.5);
  std::int64_t seen = 0;
  for (std::size_t i = 0; i < k_buckets.size(); ++i) {
    seen += counts[i];
    if (seen >= want) return k_buckets[i];
  }
  return k_buckets.back();
}

void Metrics::latency(const std::string& stream, double seconds) {
  std::lock_guard lock(m_mutex);
  m_latency.add(seconds);
  m_stream_latency[stream].add(seconds);
}

double Metrics::latency_quantile(double q, const std::string& stream) const {
  std::lock_guard lock(m_mutex);
  if (stream.empty()) return m_latency.quantile(q);
  const auto it = m_stream_latency.find(stream);
  return it == m_stream_latency.end() ? 0 : it->second.quantile(q);
}

std::map<std::string, std::map<std::string, std::int64_t>> Metrics::outcomes_by_stream() const {
  std::lock_guard lock(m_mutex);
  std::map<std::string, std::map<std::string, std::int64_t>> out;
  for (const auto& [k, n] : m_messages) out[std::get<0>(k)][std::get<2>(k)] += n;
  for (const auto& [stream, n] : m_accepted) out[stream]["accepted"] += n;
  return out;
}

std::string Metrics::render() const {
  std::lock_guard lock(m_mutex);
  std::string out;
  out += "# HELP blindcast_messages_total Transactional messages by stream, lane and outcome.\n";
  out += "# TYPE blindcast_messages_total counter\n";
  for (const auto& [k, n] : m_messages) {
    const auto& [stream, lane, outcome] = k;
    out += fmt::format("blindcast_messages_total{{kind=\"transactional\",stream=\"{}\",lane=\"{}\",outcome=\"{}\"}} {}\n",
                       prometheus_label(stream), prometheus_label(lane), prometheus_label(outcome), n);
  }
  out += "# HELP blindcast_intake_accepted_total Messages accepted (202) by stream.\n";
  out += "# TYPE blindcast_intake_accepted_total counter\n";
  for (const auto& [stream, n] : m_accepted) {
    out += fmt::format("blindcast_intake_accepted_total{{stream=\"{}\"}} {}\n", prometheus_label(stream), n);
  }
  out += "# HELP blindcast_intake_rejections_total Requests to POST /v1/messages refused, by reason.\n";
  out += "# TYPE blindcast_intake_rejections_total counter\n";
  for (const auto& [reason, n] : m_rejected) {
    out += fmt::format("blindcast_intake_rejections_total{{reason=\"{}\"}} {}\n", prometheus_label(reason), n);
  }
  out += "# HELP blindcast_guard_violations_total Messages the privacy guard refused, by stream or campaign.\n";
  out += "# TYPE blindcast_guard_violations_total counter\n";
  for (const auto& [stream, n] : m_guard) {
    out += fmt::format("blindcast_guard_violations_total{{stream=\"{}\"}} {}\n", prometheus_label(stream), n);
  }
  out += "# HELP blindcast_bounce_reports_total Reports the bounce receiver handled, by outcome.\n";
  out += "# TYPE blindcast_bounce_reports_total counter\n";
  for (const auto& [outcome, n] : m_bounce_reports) {
    out += fmt::format("blindcast_bounce_reports_total{{outcome=\"{}\"}} {}\n", prometheus_label(outcome), n);
  }
  out += "# HELP blindcast_transactional_latency_seconds From acceptance (202) to the relay's 2xx.\n";
  out += "# TYPE blindcast_transactional_latency_seconds histogram\n";
  std::int64_t cumulative = 0;
  for (std::size_t i = 0; i < k_buckets.size(); ++i) {
    cumulative += m_latency.counts[i];
    out += fmt::format("blindcast_transactional_latency_seconds_bucket{{le=\"{}\"}} {}\n", k_buckets[i], cumulative);
  }
  cumulative += m_latency.counts[k_buckets.size()];
  out += fmt::format("blindcast_transactional_latency_seconds_bucket{{le=\"+Inf\"}} {}\n", cumulative);
  out += fmt::format("blindcast_transactional_latency_seconds_sum {}\n", m_latency.sum);
  out += fmt::format("blindcast_transactional_latency_seconds_count {}\n", m_latency.count);
  return out;
}

}  // namespace blindcast::serve
