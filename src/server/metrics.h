// Metrics of `plinth serve`: a small thread-safe registry of counters, gauges and histograms
// with labels, written in Prometheus's text exposition format 0.0.4, and the HTTP endpoint
// that serves it along with liveness (/healthz) and readiness (/readyz).
//
//   MetricsRegistry registry;
//   auto& rpcs = registry.AddCounter("plinth_rpc_requests_total", "RPCs handled.",
//                                    {"method", "code"});
//   rpcs.WithLabels({"/plinth.v1.DataStore/GetNode", "OK"}).Increment();
#ifndef PLINTH_SERVER_METRICS_H_
#define PLINTH_SERVER_METRICS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/status.h"
#include "common/thread_annotations.h"

namespace httplib {
class Server;
}

namespace plinth::server {

// A value that only goes up. Thread-safe, lock-free.
class Counter {
 public:
  // `amount` must be >= 0 (a broken invariant otherwise).
  void Increment(double amount = 1.0);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// A value that goes up and down. Thread-safe, lock-free.
class Gauge {
 public:
  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Add(double delta) { value_.fetch_add(delta, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Observations counted into fixed buckets. Thread-safe.
class Histogram {
 public:
  // `upper_bounds`: strictly increasing finite bucket bounds; the +Inf bucket is implicit.
  explicit Histogram(std::vector<double> upper_bounds);
  void Observe(double value);

  struct Snapshot {
    std::vector<uint64_t> cumulative_counts;  // one per upper bound, then +Inf
    double sum = 0;
    uint64_t count = 0;
  };
  // A consistent view: count equals the +Inf bucket.
  Snapshot snapshot() const;
  const std::vector<double>& upper_bounds() const { return upper_bounds_; }

 private:
  const std::vector<double> upper_bounds_;
  mutable Mutex mu_;
  std::vector<uint64_t> counts_ PLINTH_GUARDED_BY(mu_);  // per bucket, not cumulative
  double sum_ PLINTH_GUARDED_BY(mu_) = 0;
};

// Latency buckets in seconds, 0.5ms to 10s.
std::vector<double> DefaultLatencyBuckets();

enum class MetricType { kCounter, kGauge, kHistogram };

// All metrics of one name: one child per distinct set of label values. Thread-safe.
template <typename T>
class MetricFamily {
 public:
  // The child for `label_values` (one per label name, in order), created at first use.
  // The reference stays valid as long as the registry. Passing the wrong number of values
  // is a broken invariant. Cache the reference on hot paths: the look-up takes a lock.
  T& WithLabels(const std::vector<std::string>& label_values);

  const std::string& name() const { return name_; }
  const std::vector<std::string>& label_names() const { return label_names_; }

 private:
  friend class MetricsRegistry;
  MetricFamily(std::string name, std::vector<std::string> label_names,
               std::function<std::unique_ptr<T>()> make)
      : name_(std::move(name)), label_names_(std::move(label_names)), make_(std::move(make)) {}

  const std::string name_;
  const std::vector<std::string> label_names_;
  const std::function<std::unique_ptr<T>()> make_;
  mutable Mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<T>> children_ PLINTH_GUARDED_BY(mu_);

  template <typename F>
  void ForEach(F f) const {
    MutexLock lock(&mu_);
    for (const auto& [labels, child] : children_) f(labels, *child);
  }
};

using CounterFamily = MetricFamily<Counter>;
using GaugeFamily = MetricFamily<Gauge>;
using HistogramFamily = MetricFamily<Histogram>;

class MetricsRegistry;

// Keeps a callback gauge registered; destroying or resetting it unregisters the gauge, and
// once that returns the callback is never called again. Movable, not copyable.
class [[nodiscard]] CallbackGaugeHandle {
 public:
  CallbackGaugeHandle() = default;
  CallbackGaugeHandle(CallbackGaugeHandle&& other) noexcept;
  CallbackGaugeHandle& operator=(CallbackGaugeHandle&& other) noexcept;
  ~CallbackGaugeHandle() { Reset(); }
  void Reset();

 private:
  friend class MetricsRegistry;
  CallbackGaugeHandle(MetricsRegistry* registry, std::string name)
      : registry_(registry), name_(std::move(name)) {}
  MetricsRegistry* registry_ = nullptr;
  std::string name_;
};

// Metric families by name. Thread-safe. Names must match [a-zA-Z_:][a-zA-Z0-9_:]* and label
// names [a-zA-Z_][a-zA-Z0-9_]* (not starting "__", and not "le" for histograms); registering a
// bad or already registered name is a broken invariant (names are constants in our code).
// Families live as long as the registry.
class MetricsRegistry {
 public:
  MetricsRegistry() = default;
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // An unlabelled family starts with its one child at 0, so it is exported from the start.
  CounterFamily& AddCounter(std::string name, std::string help,
                            std::vector<std::string> label_names = {});
  GaugeFamily& AddGauge(std::string name, std::string help,
                        std::vector<std::string> label_names = {});
  HistogramFamily& AddHistogram(std::string name, std::string help,
                                std::vector<std::string> label_names,
                                std::vector<double> upper_bounds = DefaultLatencyBuckets());

  // A gauge whose value is `value()` at each scrape, e.g. the applied revision. `value` runs
  // on the scraping thread with the registry locked: it must be thread-safe and quick, and
  // must not use this registry. It stays registered until the handle is reset or destroyed;
  // afterwards the name may be registered again.
  CallbackGaugeHandle AddCallbackGauge(std::string name, std::string help,
                                       std::function<double()> value);

  // Every family in name order, in the text exposition format 0.0.4: "# HELP" and "# TYPE"
  // lines, then one line per sample, children in label-value order.
  std::string Exposition() const;

 private:
  friend class CallbackGaugeHandle;
  struct Entry {
    std::string help;
    MetricType type;
    std::unique_ptr<CounterFamily> counter;
    std::unique_ptr<GaugeFamily> gauge;
    std::unique_ptr<HistogramFamily> histogram;
    std::function<double()> callback;
  };
  Entry& Register(std::string name, std::string help, MetricType type,
                  const std::vector<std::string>& label_names) PLINTH_REQUIRES(mu_);
  void RemoveCallback(const std::string& name);

  mutable Mutex mu_;
  std::map<std::string, Entry, std::less<>> entries_ PLINTH_GUARDED_BY(mu_);
};

// Whether the server is ready to serve (false until the mirror is hydrated). Thread-safe.
class ReadinessFlag {
 public:
  void Set(bool ready) { ready_.store(ready, std::memory_order_release); }
  bool ready() const { return ready_.load(std::memory_order_acquire); }

 private:
  std::atomic<bool> ready_{false};
};

// An HTTP server (cpp-httplib, in its own threads) serving
//   GET /metrics  200, the registry's exposition (text/plain; version=0.0.4)
//   GET /healthz  200 "ok" while the process runs (liveness)
//   GET /readyz   200 "ready" once `readiness` is set, 503 "not ready" until then
// Anything else is 404.
class MetricsHttpServer {
 public:
  // Starts listening on `address` ("host:port"; port 0 picks a free port). `registry` and
  // `readiness` must outlive the server. InvalidArgument for a bad address; Unavailable when
  // the address cannot be bound (in use, not local).
  static StatusOr<std::unique_ptr<MetricsHttpServer>> Start(const std::string& address,
                                                            const MetricsRegistry* registry,
                                                            const ReadinessFlag* readiness);
  ~MetricsHttpServer();
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  // The bound port (the chosen one when the address had port 0).
  uint16_t port() const { return port_; }
  // Stops serving and joins the threads; idempotent. The destructor calls it.
  void Stop();

 private:
  MetricsHttpServer() = default;
  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  uint16_t port_ = 0;
};

// ---- Implementation details of the template below. ----

namespace internal {
[[noreturn]] void LabelCountMismatch(const std::string& name, size_t expected, size_t got);
}

template <typename T>
T& MetricFamily<T>::WithLabels(const std::vector<std::string>& label_values) {
  if (label_values.size() != label_names_.size()) {
    internal::LabelCountMismatch(name_, label_names_.size(), label_values.size());
  }
  MutexLock lock(&mu_);
  std::unique_ptr<T>& child = children_[label_values];
  if (child == nullptr) child = make_();
  return *child;
}

}  // namespace plinth::server

#endif  // PLINTH_SERVER_METRICS_H_
