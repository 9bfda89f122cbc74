#include "compose/message_preparer.hpp"

#include <thread>

#include "audience/audience_loader.hpp"
#include "campaign/secrets.hpp"
#include "delivery/providers.hpp"
#include "guard/send_ledger.hpp"
#include "util/strings.hpp"
#include "util/threads.hpp"

namespace blindcast::compose {

struct MessagePreparer::Worker {
  campaign::LoadedCampaign campaign;
  std::unique_ptr<MessageBuilder> builder;
};

MessagePreparer::MessagePreparer() = default;

MessagePreparer::~MessagePreparer() {
  {
    std::lock_guard lock(m_mutex);
    m_stopping = true;
  }
  m_work_ready.notify_all();
  for (auto& t : m_threads) t.join();
}

Result<std::unique_ptr<MessagePreparer>> MessagePreparer::create(
    const campaign::LoadedCampaign& campaign, std::shared_ptr<const CampaignGuard> guard, int workers) {
  std::unique_ptr<MessagePreparer> p(new MessagePreparer());
  p->m_guard = std::move(guard);
  p->m_lanes = std::make_unique<delivery::LaneTable>(campaign.config.shaping);
  auto header = audience::AudienceLoader::open(campaign.audience_path(), {});
  if (!header) return std::unexpected(header.error());
  const auto columns = header->columns();
  p->m_name_column = header->column_index("name");
  auto secrets = campaign::load_campaign_secrets(campaign);
  if (!secrets) return std::unexpected(secrets.error());
  for (int i = 0; i < std::max(workers, 1); ++i) {
    util::Diagnostics diags;
    auto own = campaign::load_campaign(campaign.dir, diags);
    if (!own) return fail("the campaign changed while sending; run lint and send again");
    auto w = std::make_unique<Worker>();
    w->campaign = std::move(*own);
    w->campaign.config.bounces = campaign.config.bounces;  // the service's, when it runs the campaign
    w->builder = std::make_unique<MessageBuilder>(w->campaign, columns, diags);
    w->builder->use_secrets(*secrets);
    if (util::error_count(diags) > 0) return fail("the campaign has errors: " + diags.front().str());
    p->m_envelope_from = w->builder->envelope_from();
    p->m_workers.push_back(std::move(w));
  }
  for (auto& w : p->m_workers) p->m_threads.emplace_back([pp = p.get(), wp = w.get()] { pp->run(*wp); });
  return p;
}

void MessagePreparer::run(Worker& w) {
  util::set_thread_name("bc-prepare");
  // Builders run batches ahead; the delivery thread must never wait for them.
  util::lower_thread_priority();
  while (true) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock lock(m_mutex);
      m_work_ready.wait(lock, [&] { return m_stopping || !m_todo.empty(); });
      if (m_stopping) return;
      job = std::move(m_todo.front());
      m_todo.pop_front();
    }
    build(w, job->rows, job->out);
    {
      std::lock_guard lock(m_mutex);
      job->done = true;
    }
    m_job_done.notify_all();
  }
}

void MessagePreparer::submit(std::vector<store::StoredRecipient> rows) {
  auto job = std::make_shared<Job>();
  job->rows = std::move(rows);
  {
    std::lock_guard lock(m_mutex);
    ++m_submitted;
    m_todo.push_back(job);
    m_jobs.push_back(std::move(job));
  }
  m_work_ready.notify_one();
}

std::optional<std::vector<PreparedMessage>> MessagePreparer::try_take() {
  std::lock_guard lock(m_mutex);
  if (m_jobs.empty() || !m_jobs.front()->done) return std::nullopt;
  auto job = std::move(m_jobs.front());
  m_jobs.pop_front();
  ++m_taken;
  return std::move(job->out);
}

bool MessagePreparer::wait_ready(std::chrono::milliseconds timeout) {
  std::unique_lock lock(m_mutex);
  return m_job_done.wait_for(lock, timeout, [&] { return !m_jobs.empty() && m_jobs.front()->done; });
}

std::vector<PreparedMessage> MessagePreparer::take() {
  std::unique_lock lock(m_mutex);
  if (m_jobs.empty()) return {};
  auto job = m_jobs.front();
  m_job_done.wait(lock, [&] { return job->done; });
  m_jobs.pop_front();
  ++m_taken;
  return std::move(job->out);
}

void MessagePreparer::build(Worker& w, const std::vector<store::StoredRecipient>& rows,
                            std::vector<PreparedMessage>& out) {
  out.resize(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    auto& p = out[i];
    p.id = r.id;
    p.line = r.line;
    p.email = r.email;
    p.attempts = r.attempts;
    p.first_attempt_at = r.first_attempt_at;
    p.lane = !r.lane.empty() ? r.lane : m_lanes->lane_for(r.email.substr(r.email.rfind('@') + 1)).name;
    const std::string name = m_name_column >= 0 && static_cast<std::size_t>(m_name_column) < r.fields.size()
                                 ? std::string(util::trim(r.fields[static_cast<std::size_t>(m_name_column)]))
                                 : std::string();
    BuildOptions options;
    options.bounce_token = w.builder->campaign_bounce_token(r.id);
    auto built = w.builder->build(r.fields, r.email, name, r.locale, options);
    if (!built) {
      p.render_error = built.error();
      continue;
    }
    p.violation = m_guard->check(built->data, r.email, r.fields);
    p.data = std::move(built->data);
    p.envelope_from = std::move(built->envelope_from);
    p.traits = smtp::scan_data(p.data);
    p.ledger_key = guard::SendLedger::key(p.email);
  }
}

}  // namespace blindcast::compose
