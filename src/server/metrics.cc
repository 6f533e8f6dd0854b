#include "server/metrics.h"

#include <httplib.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>

#include "common/check.h"
#include "server/config.h"

namespace plinth::server {
namespace internal {
void LabelCountMismatch(const std::string& name, size_t expected, size_t got) {
  PLINTH_CHECK(false) << "metric " << name << " has " << expected << " labels, got " << got
                      << " values";
  __builtin_unreachable();
}
}  // namespace internal

namespace {

bool IsNameChar(char c, bool first, bool allow_colon) {
  bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  if (allow_colon && c == ':') return true;
  return letter || (!first && c >= '0' && c <= '9');
}

bool IsValidName(std::string_view name, bool allow_colon) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    if (!IsNameChar(name[i], i == 0, allow_colon)) return false;
  }
  return true;
}

// Prometheus writes floats as Go does: shortest round-trip form, "+Inf", "-Inf", "NaN".
void AppendDouble(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
    out.append(buf, ec == std::errc() ? end : buf);
  }
}

// HELP text escapes backslash and newline; label values also escape double quotes.
void AppendEscaped(std::string& out, std::string_view text, bool escape_quotes) {
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && escape_quotes) {
      out += "\\\"";
    } else {
      out.push_back(c);
    }
  }
}

// `{a="x",b="y"}` (with an optional extra label, for "le"), or nothing without labels.
void AppendLabels(std::string& out, const std::vector<std::string>& names,
                  const std::vector<std::string>& values, std::string_view extra_name = {},
                  std::string_view extra_value = {}) {
  if (names.empty() && extra_name.empty()) return;
  out.push_back('{');
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out.push_back(',');
    out += names[i];
    out += "=\"";
    AppendEscaped(out, values[i], /*escape_quotes=*/true);
    out.push_back('"');
  }
  if (!extra_name.empty()) {
    if (!names.empty()) out.push_back(',');
    out += extra_name;
    out += "=\"";
    out += extra_value;
    out.push_back('"');
  }
  out.push_back('}');
}

void AppendSample(std::string& out, std::string_view name, std::string_view suffix,
                  const std::vector<std::string>& label_names,
                  const std::vector<std::string>& label_values, double value,
                  std::string_view extra_name = {}, std::string_view extra_value = {}) {
  out += name;
  out += suffix;
  AppendLabels(out, label_names, label_values, extra_name, extra_value);
  out.push_back(' ');
  AppendDouble(out, value);
  out.push_back('\n');
}

std::string_view TypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

}  // namespace

void Counter::Increment(double amount) {
  PLINTH_CHECK(amount >= 0) << "a counter cannot go down (" << amount << ")";
  value_.fetch_add(amount, std::memory_order_relaxed);
}

Histogram::Histogram(std::vector<double> upper_bounds)
    : upper_bounds_(std::move(upper_bounds)), counts_(upper_bounds_.size() + 1, 0) {
  for (size_t i = 0; i < upper_bounds_.size(); ++i) {
    PLINTH_CHECK(std::isfinite(upper_bounds_[i])) << "histogram bucket bounds must be finite";
    PLINTH_CHECK(i == 0 || upper_bounds_[i - 1] < upper_bounds_[i])
        << "histogram bucket bounds must increase strictly";
  }
}

void Histogram::Observe(double value) {
  // The first bucket whose bound is >= value; NaN lands in +Inf, as in Prometheus's clients.
  size_t bucket = std::isnan(value)
                      ? upper_bounds_.size()
                      : static_cast<size_t>(
                            std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), value) -
                            upper_bounds_.begin());
  MutexLock lock(&mu_);
  ++counts_[bucket];
  sum_ += value;
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  MutexLock lock(&mu_);
  s.cumulative_counts.reserve(counts_.size());
  uint64_t running = 0;
  for (uint64_t c : counts_) {
    running += c;
    s.cumulative_counts.push_back(running);
  }
  s.count = running;
  s.sum = sum_;
  return s;
}

std::vector<double> DefaultLatencyBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

CallbackGaugeHandle::CallbackGaugeHandle(CallbackGaugeHandle&& other) noexcept
    : registry_(std::exchange(other.registry_, nullptr)), name_(std::move(other.name_)) {}

CallbackGaugeHandle& CallbackGaugeHandle::operator=(CallbackGaugeHandle&& other) noexcept {
  if (this != &other) {
    Reset();
    registry_ = std::exchange(other.registry_, nullptr);
    name_ = std::move(other.name_);
  }
  return *this;
}

void CallbackGaugeHandle::Reset() {
  if (registry_ != nullptr) registry_->RemoveCallback(name_);
  registry_ = nullptr;
}

MetricsRegistry::Entry& MetricsRegistry::Register(std::string name, std::string help,
                                                  MetricType type,
                                                  const std::vector<std::string>& label_names) {
  PLINTH_CHECK(IsValidName(name, /*allow_colon=*/true)) << "bad metric name " << name;
  for (const std::string& label : label_names) {
    PLINTH_CHECK(IsValidName(label, /*allow_colon=*/false) && !label.starts_with("__") &&
                 !(type == MetricType::kHistogram && label == "le"))
        << "bad label name " << label << " for metric " << name;
  }
  auto [it, inserted] = entries_.try_emplace(std::move(name));
  PLINTH_CHECK(inserted) << "metric " << it->first << " registered twice";
  it->second.help = std::move(help);
  it->second.type = type;
  return it->second;
}

CounterFamily& MetricsRegistry::AddCounter(std::string name, std::string help,
                                           std::vector<std::string> label_names) {
  MutexLock lock(&mu_);
  Entry& entry = Register(name, std::move(help), MetricType::kCounter, label_names);
  entry.counter.reset(new CounterFamily(std::move(name), std::move(label_names),
                                        [] { return std::make_unique<Counter>(); }));
  if (entry.counter->label_names().empty()) entry.counter->WithLabels({});
  return *entry.counter;
}

GaugeFamily& MetricsRegistry::AddGauge(std::string name, std::string help,
                                       std::vector<std::string> label_names) {
  MutexLock lock(&mu_);
  Entry& entry = Register(name, std::move(help), MetricType::kGauge, label_names);
  entry.gauge.reset(new GaugeFamily(std::move(name), std::move(label_names),
                                    [] { return std::make_unique<Gauge>(); }));
  if (entry.gauge->label_names().empty()) entry.gauge->WithLabels({});
  return *entry.gauge;
}

HistogramFamily& MetricsRegistry::AddHistogram(std::string name, std::string help,
                                               std::vector<std::string> label_names,
                                               std::vector<double> upper_bounds) {
  MutexLock lock(&mu_);
  Entry& entry = Register(name, std::move(help), MetricType::kHistogram, label_names);
  // Checks the bounds now rather than at the first observation.
  Histogram check(upper_bounds);
  entry.histogram.reset(new HistogramFamily(
      std::move(name), std::move(label_names),
      [bounds = std::move(upper_bounds)] { return std::make_unique<Histogram>(bounds); }));
  if (entry.histogram->label_names().empty()) entry.histogram->WithLabels({});
  return *entry.histogram;
}

CallbackGaugeHandle MetricsRegistry::AddCallbackGauge(std::string name, std::string help,
                                                      std::function<double()> value) {
  MutexLock lock(&mu_);
  Entry& entry = Register(name, std::move(help), MetricType::kGauge, {});
  entry.callback = std::move(value);
  return CallbackGaugeHandle(this, std::move(name));
}

void MetricsRegistry::RemoveCallback(const std::string& name) {
  MutexLock lock(&mu_);
  entries_.erase(name);
}

std::string MetricsRegistry::Exposition() const {
  std::string out;
  MutexLock lock(&mu_);
  for (const auto& item : entries_) {
    // Named variables, not a structured binding: the lambdas below capture them.
    const std::string& name = item.first;
    const Entry& entry = item.second;
    out += "# HELP ";
    out += name;
    out.push_back(' ');
    AppendEscaped(out, entry.help, /*escape_quotes=*/false);
    out += "\n# TYPE ";
    out += name;
    out.push_back(' ');
    out += TypeName(entry.type);
    out.push_back('\n');
    if (entry.callback) {
      AppendSample(out, name, "", {}, {}, entry.callback());
    } else if (entry.counter) {
      entry.counter->ForEach([&](const std::vector<std::string>& labels, const Counter& c) {
        AppendSample(out, name, "", entry.counter->label_names(), labels, c.value());
      });
    } else if (entry.gauge) {
      entry.gauge->ForEach([&](const std::vector<std::string>& labels, const Gauge& g) {
        AppendSample(out, name, "", entry.gauge->label_names(), labels, g.value());
      });
    } else if (entry.histogram) {
      const std::vector<std::string>& label_names = entry.histogram->label_names();
      entry.histogram->ForEach([&](const std::vector<std::string>& labels, const Histogram& h) {
        Histogram::Snapshot s = h.snapshot();
        const std::vector<double>& bounds = h.upper_bounds();
        for (size_t i = 0; i <= bounds.size(); ++i) {
          std::string le;
          AppendDouble(le, i < bounds.size() ? bounds[i] : INFINITY);
          AppendSample(out, name, "_bucket", label_names, labels,
                       static_cast<double>(s.cumulative_counts[i]), "le", le);
        }
        AppendSample(out, name, "_sum", label_names, labels, s.sum);
        AppendSample(out, name, "_count", label_names, labels, static_cast<double>(s.count));
      });
    }
  }
  return out;
}

StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& address, const MetricsRegistry* registry, const ReadinessFlag* readiness) {
  PLINTH_ASSIGN_OR_RETURN(HostPort host_port, ParseListenAddress(address));
  std::unique_ptr<MetricsHttpServer> server(new MetricsHttpServer());
  server->http_ = std::make_unique<httplib::Server>();
  httplib::Server& http = *server->http_;
  // Scrapes are rare and quick: two workers are plenty.
  http.new_task_queue = [] { return new httplib::ThreadPool(2); };
  // Bounds how long Stop() waits for an idle keep-alive connection.
  http.set_keep_alive_timeout(1);
  // httplib's default also sets SO_REUSEPORT, which would let a second server share the port
  // silently and split the scrapes; SO_REUSEADDR alone allows a quick restart.
  http.set_socket_options([](int sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  http.Get("/metrics", [registry](const httplib::Request&, httplib::Response& response) {
    response.set_content(registry->Exposition(), "text/plain; version=0.0.4; charset=utf-8");
  });
  http.Get("/healthz", [](const httplib::Request&, httplib::Response& response) {
    response.set_content("ok\n", "text/plain; charset=utf-8");
  });
  http.Get("/readyz", [readiness](const httplib::Request&, httplib::Response& response) {
    if (readiness->ready()) {
      response.set_content("ready\n", "text/plain; charset=utf-8");
    } else {
      response.status = 503;
      response.set_content("not ready\n", "text/plain; charset=utf-8");
    }
  });
  int port = host_port.port;
  if (port == 0) {
    port = http.bind_to_any_port(host_port.host);
  } else if (!http.bind_to_port(host_port.host, port)) {
    port = -1;
  }
  if (port <= 0) {
    return UnavailableError("metrics: cannot listen on " + address +
                            " (is the port in use, or the host not a local address?)");
  }
  server->port_ = static_cast<uint16_t>(port);
  auto loop_ended = std::make_shared<std::atomic<bool>>(false);
  server->thread_ = std::thread([&http, loop_ended] {
    http.listen_after_bind();
    loop_ended->store(true);
  });
  // httplib's stop() does nothing until the accept loop runs, so wait for it before
  // returning a server that may be stopped at once.
  while (!http.is_running() && !loop_ended->load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return server;
}

void MetricsHttpServer::Stop() {
  if (!thread_.joinable()) return;
  http_->stop();
  thread_.join();
}

MetricsHttpServer::~MetricsHttpServer() { Stop(); }

}  // namespace plinth::server
