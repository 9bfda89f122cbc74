// The service's counters in the Prometheus text exposition format (0.0.4):
// messages by stream, lane and outcome; intake rejections by reason; guard
// refusals; transactional latency (accepted -> the relay's 2xx) as a
// histogram; queue depth per lane and campaign progress are added by the
// caller when it renders. Thread-safe; label values are escaped.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

namespace blindcast::serve {

class Metrics {
 public:
  // A message of `stream` in `lane` ended in `outcome` (sent, deferred, bounced, failed, suppressed).
  void message(const std::string& stream, const std::string& lane, const std::string& outcome);
  // A request to POST /v1/messages was refused (`reason`: bad_request, unauthorized, rate_limited, ...).
  void intake_rejected(const std::string& reason);
  // A message was accepted (202).
  void intake_accepted(const std::string& stream);
  void guard_refused(const std::string& stream);
  // The bounce receiver handled a report: `outcome` (suppressed, counted,
  // duplicate, ignored, refused, rate_limited).
  void bounce_report(const std::string& outcome);
  // Seconds from acceptance to the relay's 2xx of a message of `stream`.
  void latency(const std::string& stream, double seconds);
  // The text of every counter kept here.
  [[nodiscard]] std::string render() const;
  // Latency quantile `q` (0..1) from the histogram's buckets (upper bound),
  // of every stream or of `stream`; 0 before the first message.
  [[nodiscard]] double latency_quantile(double q, const std::string& stream = "") const;
  // Per stream since the service started: messages by outcome, accepted.
  [[nodiscard]] std::map<std::string, std::map<std::string, std::int64_t>> outcomes_by_stream() const;

  static constexpr std::array<double, 20> k_buckets = {0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01,
                                                       0.015, 0.02,  0.03,  0.05,  0.075, 0.1,    0.25,
                                                       0.5,   1,     2.5,   5,     10,    30};

 private:
  mutable std::mutex m_mutex;
  std::map<std::tuple<std::string, std::string, std::string>, std::int64_t> m_messages;
  std::map<std::string, std::int64_t> m_rejected;
  std::map<std::string, std::int64_t> m_accepted;
  std::map<std::string, std::int64_t> m_guard;
  std::map<std::string, std::int64_t> m_bounce_reports;
  struct Histogram {
    std::array<std::int64_t, k_buckets.size() + 1> counts{};
    double sum = 0;
    std::int64_t count = 0;
    void add(double seconds);
    [[nodiscard]] double quantile(double q) const;
  };
  Histogram m_latency;                           // every stream
  std::map<std::string, Histogram> m_stream_latency;
};

// `value` escaped for a label (backslash, quote, line feed).
std::string prometheus_label(const std::string& value);

}  // namespace blindcast::serve
