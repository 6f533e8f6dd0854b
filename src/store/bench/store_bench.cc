// store_bench: what plinth's store costs over raw SQLite doing the same work, measured in the
// same run with the same pragmas (WAL + the same synchronous), in a temporary directory.
//
// For each backend (memory, sqlite with synchronous=full, sqlite with synchronous=normal) it
// prints single durable Put latency p50/p99 against a raw one-row INSERT commit (budget
// <= 1.3x), batched Put throughput at --batch-ops per transaction against a raw batched INSERT
// (budget >= 0.5x), and Watch delivery latency in-process and across processes. A raw
// baseline runs interleaved with the store (one op or one batch each, in turn) so that a noisy
// machine affects both alike. This is a report, not a test: it exits 0 whether or not a
// budget is met, and non-zero only when something fails to run.
//
// Hidden mode: `store_bench --child-writer URL --watch-ops N` is the writer process of the
// cross-process watch measurement (the parent re-executes itself).
#include <grpcpp/grpcpp.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "common/status.h"
#include "etcd/etcdserver/etcdserverpb/rpc.grpc.pb.h"
#include "store/bench/bench_util.h"
#include "store/open.h"
#include "store/store.h"

namespace plinth::store::bench {
namespace {

using plinth::bench::CpuModel;
using plinth::bench::FilesystemType;
using plinth::bench::FormatLatency;
using plinth::bench::FormatRate;
using plinth::bench::FormatRatio;
using plinth::bench::Latency;
using plinth::bench::RawSqlite;
using plinth::bench::Summarize;
using plinth::bench::Table;

constexpr size_t kValueBytes = 100;
constexpr int kWarmupOps = 50;
// Budgets from DESIGN.md ("Performance budgets").
constexpr double kSinglePutBudget = 1.3;       // store latency / raw latency, at most
constexpr double kBatchedPutBudget = 0.5;      // store throughput / raw throughput, at least
constexpr double kCrossProcessBudgetMs = 100;  // SQLite multi-process visibility, p99
// Pause between the writes of a watch measurement, so each sample measures one delivery and
// not a queue behind earlier ones.
constexpr std::chrono::microseconds kWatchPacing(2000);

struct Flags {
  int ops = 2000;        // single puts
  int batch_ops = 1000;  // puts per transaction
  int batches = 200;     // transactions in the batched phase
  int watch_ops = 300;   // samples per watch measurement
  std::vector<std::string> backends = {"memory", "sqlite", "sqlite_normal"};
  std::vector<std::pair<std::string, std::string>> urls;  // --url NAME=URL, in order
  std::string dir;           // parent of the temporary directory; default $TMPDIR or /tmp
  std::string child_writer;  // hidden: run as the cross-process writer for this store URL
};

int64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Keys are 16-32 bytes, values exactly kValueBytes; the store and the raw baseline get the
// same ones.
std::string Key(std::string_view phase, int64_t i) {
  char buf[48];
  int n = std::snprintf(buf, sizeof buf, "bench/%.*s/%010" PRId64, static_cast<int>(phase.size()),
                        phase.data(), i);
  return std::string(buf, static_cast<size_t>(n));
}

std::string Value(int64_t i) {
  std::string v(kValueBytes, 'v');
  uint64_t x = static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull + 1;
  for (char& c : v) {
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    c = static_cast<char>('a' + (x >> 59) % 26);
  }
  return v;
}

// A value carrying a CLOCK_MONOTONIC timestamp (system-wide on Linux), padded to kValueBytes.
std::string StampedValue(int64_t stamp_ns) {
  std::string v = std::to_string(stamp_ns);
  v.resize(kValueBytes, '.');
  return v;
}

std::optional<int64_t> ReadStamp(std::string_view value) {
  int64_t stamp = 0;
  auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), stamp);
  if (ec != std::errc()) return std::nullopt;
  return stamp;
}

// ---- the measurements ----

using Clock = std::chrono::steady_clock;

double MicrosSince(Clock::time_point start) {
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

struct SinglePutResult {
  Latency store;
  Latency raw;
};

// One store Put and one raw INSERT per step, alternating which goes first.
StatusOr<SinglePutResult> MeasureSinglePut(Store& store, RawSqlite& raw, int ops) {
  std::vector<double> store_us, raw_us;
  store_us.reserve(static_cast<size_t>(ops));
  raw_us.reserve(static_cast<size_t>(ops));
  for (int i = -kWarmupOps; i < ops; ++i) {
    const std::string key = Key("single", i + kWarmupOps), value = Value(i);
    for (int turn = 0; turn < 2; ++turn) {
      const bool store_turn = (turn == 0) == (i % 2 == 0);
      const auto start = Clock::now();
      if (store_turn) {
        PLINTH_RETURN_IF_ERROR(store.Put(key, value).status().WithContext("store put"));
      } else {
        PLINTH_RETURN_IF_ERROR(raw.InsertOne(key, value));
      }
      const double us = MicrosSince(start);
      if (i >= 0) (store_turn ? store_us : raw_us).push_back(us);
    }
  }
  return SinglePutResult{Summarize(std::move(store_us)), Summarize(std::move(raw_us))};
}

// The floor under the etcd backend: a bare etcd Put loop (one unconditional Put per call, no
// transaction, no bookkeeping) on a gRPC channel to the store URL's first endpoint, with the
// same keys and values. Plaintext only, like the test cluster.
StatusOr<Latency> MeasureBareEtcdPut(const std::string& url, int ops) {
  std::string endpoint = url.substr(std::string_view("etcd://").size());
  endpoint = endpoint.substr(0, endpoint.find_first_of(",/?"));
  auto channel = grpc::CreateChannel(endpoint, grpc::InsecureChannelCredentials());
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(5))) {
    return UnavailableError("bare etcd put: cannot connect to " + endpoint);
  }
  auto kv = etcdserverpb::KV::NewStub(channel);
  std::vector<double> us;
  us.reserve(static_cast<size_t>(ops));
  for (int i = -kWarmupOps; i < ops; ++i) {
    etcdserverpb::PutRequest request;
    request.set_key("/store_bench_bare/" + Key("single", i + kWarmupOps));
    request.set_value(Value(i));
    etcdserverpb::PutResponse response;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    const auto start = Clock::now();
    grpc::Status status = kv->Put(&context, request, &response);
    if (!status.ok()) return UnavailableError("bare etcd put: " + status.error_message());
    if (i >= 0) us.push_back(MicrosSince(start));
  }
  return Summarize(std::move(us));
}

struct BatchedPutResult {
  double store_ops_per_s = 0;
  double raw_ops_per_s = 0;
};

// One store transaction (Begin, batch_ops x Tx::Put, Commit) and one raw batch, in turn.
StatusOr<BatchedPutResult> MeasureBatchedPut(Store& store, RawSqlite& raw, int batch_ops,
                                             int batches) {
  double store_us = 0, raw_us = 0;
  std::vector<std::pair<std::string, std::string>> rows(static_cast<size_t>(batch_ops));
  for (int b = 0; b < batches; ++b) {
    for (int j = 0; j < batch_ops; ++j) {
      const int64_t n = static_cast<int64_t>(b) * batch_ops + j;
      rows[static_cast<size_t>(j)] = {Key("batch", n), Value(n)};
    }
    for (int turn = 0; turn < 2; ++turn) {
      const bool store_turn = (turn == 0) == (b % 2 == 0);
      const auto start = Clock::now();
      if (store_turn) {
        auto tx = store.Begin();
        for (const auto& [key, value] : rows) {
          PLINTH_RETURN_IF_ERROR(tx->Put(key, value).WithContext("store tx put"));
        }
        PLINTH_RETURN_IF_ERROR(tx->Commit().status().WithContext("store commit"));
        store_us += MicrosSince(start);
      } else {
        PLINTH_RETURN_IF_ERROR(raw.InsertBatch(rows));
        raw_us += MicrosSince(start);
      }
    }
  }
  const double total = static_cast<double>(batch_ops) * batches;
  return BatchedPutResult{total / (store_us / 1e6), total / (raw_us / 1e6)};
}

// Collects (now - stamp) for every Put event a stream delivers.
class StampCollector {
 public:
  explicit StampCollector(size_t expected) : expected_(expected) {}

  // Reads batches until `expected` stamps arrived or `deadline` passed; the caller runs it on
  // a thread of its choice. Returns the first stream error.
  Status Run(WatchStream& stream, Clock::time_point deadline) {
    while (received() < expected_) {
      if (Clock::now() >= deadline) {
        return DeadlineExceededError("watch delivered " + std::to_string(received()) + " of " +
                                     std::to_string(expected_) + " writes in time");
      }
      auto batch = stream.Next(std::chrono::milliseconds(100));
      if (!batch.ok() && batch.status().code() == StatusCode::kDeadlineExceeded) continue;
      if (!batch.ok()) return batch.status();
      const int64_t now = MonotonicNs();
      std::lock_guard<std::mutex> lock(mu_);
      for (const Event& e : batch->events) {
        if (e.type != Event::Type::kPut) continue;
        auto stamp = ReadStamp(e.kv.value);
        if (!stamp) return InternalError("watch delivered a value without a timestamp");
        latencies_us_.push_back(static_cast<double>(now - *stamp) / 1e3);
      }
      arrived_.notify_all();
    }
    return Status::Ok();
  }

  // Blocks until at least `n` stamps arrived or `timeout` passed; false on timeout.
  bool WaitFor(size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return arrived_.wait_for(lock, timeout, [&] { return latencies_us_.size() >= n; });
  }

  size_t received() {
    std::lock_guard<std::mutex> lock(mu_);
    return latencies_us_.size();
  }
  std::vector<double> latencies_us() {
    std::lock_guard<std::mutex> lock(mu_);
    return latencies_us_;
  }

 private:
  const size_t expected_;
  std::mutex mu_;
  std::condition_variable arrived_;
  std::vector<double> latencies_us_;
};

// A watcher thread on the same Store; each Put carries the time taken just before its
// commit, and the next Put waits until the previous one was delivered.
StatusOr<Latency> MeasureWatchInProcess(Store& store, int samples) {
  PLINTH_ASSIGN_OR_RETURN(Revision current, store.CurrentRevision());
  PLINTH_ASSIGN_OR_RETURN(auto stream, store.Watch(KeySpan::Prefix("bench/watch/"), current + 1));
  StampCollector collector(static_cast<size_t>(samples));
  Status watch_status;
  std::thread watcher(
      [&] { watch_status = collector.Run(*stream, Clock::now() + std::chrono::seconds(60)); });
  Status write_status;
  for (int i = 0; i < samples && write_status.ok(); ++i) {
    auto rev = store.Put(Key("watch", i), StampedValue(MonotonicNs()));
    if (!rev.ok()) {
      write_status = rev.status();
      break;
    }
    if (!collector.WaitFor(static_cast<size_t>(i) + 1, std::chrono::seconds(10))) break;
    std::this_thread::sleep_for(kWatchPacing);
  }
  if (!write_status.ok()) stream->Cancel();
  watcher.join();
  PLINTH_RETURN_IF_ERROR(write_status);
  PLINTH_RETURN_IF_ERROR(watch_status);
  return Summarize(collector.latencies_us());
}

// The writer process of the cross-process measurement: `samples` Puts, each carrying the
// CLOCK_MONOTONIC time taken just before its commit.
int RunChildWriter(const std::string& url, int samples) {
  auto store = OpenStore(url);
  if (!store.ok()) {
    std::cerr << "store_bench child: " << store.status() << "\n";
    return 1;
  }
  for (int i = 0; i < samples; ++i) {
    auto rev = (*store)->Put(Key("xproc", i), StampedValue(MonotonicNs()));
    if (!rev.ok()) {
      std::cerr << "store_bench child: " << rev.status() << "\n";
      return 1;
    }
    // Slower than the watcher's poll interval, so every sample is one fresh delivery.
    std::this_thread::sleep_for(kWatchPacing * 10);
  }
  return 0;
}

// The parent watches, then re-executes this binary as the writer on the same store file.
StatusOr<Latency> MeasureWatchCrossProcess(Store& store, const std::string& url, int samples) {
  PLINTH_ASSIGN_OR_RETURN(Revision current, store.CurrentRevision());
  PLINTH_ASSIGN_OR_RETURN(auto stream, store.Watch(KeySpan::Prefix("bench/xproc/"), current + 1));

  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  const std::string count = std::to_string(samples);
  std::vector<std::string> args = {self, "--child-writer", url, "--watch-ops", count};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (int rc = posix_spawn(&pid, self.c_str(), nullptr, nullptr, argv.data(), environ); rc != 0) {
    return InternalError("posix_spawn " + self + ": " +
                         std::error_code(rc, std::generic_category()).message());
  }

  StampCollector collector(static_cast<size_t>(samples));
  Status watch_status = collector.Run(*stream, Clock::now() + std::chrono::seconds(90));
  int wstatus = 0;
  if (!watch_status.ok()) kill(pid, SIGKILL);
  waitpid(pid, &wstatus, 0);
  PLINTH_RETURN_IF_ERROR(watch_status);
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
    return InternalError("the child writer failed (see its message above)");
  }
  return Summarize(collector.latencies_us());
}

// ---- reporting ----

struct Backend {
  std::string name;         // as given in --backends or --url
  std::string url;          // store URL
  std::string synchronous;  // pragma of the raw baseline
  bool cross_process = false;
  bool durable = false;  // the single-put and batched budgets against raw SQLite apply
  double cross_process_budget_ms = kCrossProcessBudgetMs;
};

// A backend given by URL (a server or a plugin): compared with raw SQLite FULL for scale, its
// replica-visibility budget from DESIGN.md chosen by URL scheme.
Backend BackendForUrl(const std::string& name, const std::string& url) {
  Backend b{name, url, "full", true, false, kCrossProcessBudgetMs};
  if (url.rfind("etcd://", 0) == 0) b.cross_process_budget_ms = 20;
  if (url.rfind("mysql://", 0) == 0 || url.rfind("mariadb://", 0) == 0) {
    b.cross_process_budget_ms = 250;
  }
  if (url.rfind("plugin://", 0) == 0 || url.rfind("memory://", 0) == 0) b.cross_process = false;
  return b;
}

StatusOr<Backend> BackendFor(const std::string& name, const std::filesystem::path& dir) {
  if (name == "memory") return Backend{name, "memory://", "full", false, false};
  if (name == "sqlite") {
    return Backend{name, "sqlite://" + (dir / "plinth_full.db").string() + "?synchronous=full",
                   "full", true, true};
  }
  if (name == "sqlite_normal") {
    return Backend{name, "sqlite://" + (dir / "plinth_normal.db").string() + "?synchronous=normal",
                   "normal", true, true};
  }
  return InvalidArgumentError("unknown backend \"" + name +
                              "\"; known: memory, sqlite, sqlite_normal");
}

// ---- flags ----

void PrintUsage(std::ostream& out) {
  out << "usage: store_bench [--ops N] [--batch-ops N] [--batches N] [--watch-ops N]\n"
         "                   [--backends memory,sqlite,sqlite_normal] [--url NAME=URL]...\n"
         "                   [--dir DIR]\n"
         "  --ops        single durable Puts per backend (default 2000)\n"
         "  --batch-ops  Puts per transaction in the batched phase (default 1000)\n"
         "  --batches    transactions in the batched phase (default 200)\n"
         "  --watch-ops  samples per watch latency measurement (default 300)\n"
         "  --backends   comma-separated subset of memory,sqlite,sqlite_normal (may be empty)\n"
         "  --url        also bench the store at URL under NAME (repeatable), e.g.\n"
         "               --url postgres=postgres://postgres@127.0.0.1:5432/plinth?schema=bench;\n"
         "               scripts/bench.sh starts throwaway servers and passes them all\n"
         "  --dir        where the temporary directory is made (default $TMPDIR or /tmp);\n"
         "               use the filesystem you care about: fsync cost is the whole story\n";
}

StatusOr<Flags> ParseFlags(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i], value;
    if (arg == "-h" || arg == "--help") {
      PrintUsage(std::cout);
      std::exit(0);
    }
    if (size_t eq = arg.find('='); eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return InvalidArgumentError(arg + " needs a value");
    }
    auto positive = [&](int* out) -> Status {
      int v = 0;
      auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
      if (ec != std::errc() || ptr != value.data() + value.size() || v <= 0) {
        return InvalidArgumentError(arg + " must be a positive integer, not \"" + value + "\"");
      }
      *out = v;
      return Status::Ok();
    };
    if (arg == "--ops") {
      PLINTH_RETURN_IF_ERROR(positive(&flags.ops));
    } else if (arg == "--batch-ops") {
      PLINTH_RETURN_IF_ERROR(positive(&flags.batch_ops));
    } else if (arg == "--batches") {
      PLINTH_RETURN_IF_ERROR(positive(&flags.batches));
    } else if (arg == "--watch-ops") {
      PLINTH_RETURN_IF_ERROR(positive(&flags.watch_ops));
    } else if (arg == "--backends") {
      flags.backends.clear();
      std::stringstream list(value);
      for (std::string name; std::getline(list, name, ',');) {
        if (!name.empty()) flags.backends.push_back(name);
      }
    } else if (arg == "--url") {
      const size_t eq = value.find('=');
      if (eq == std::string::npos || eq == 0) {
        return InvalidArgumentError("--url wants NAME=URL, not \"" + value + "\"");
      }
      flags.urls.emplace_back(value.substr(0, eq), value.substr(eq + 1));
    } else if (arg == "--dir") {
      flags.dir = value;
    } else if (arg == "--child-writer") {
      flags.child_writer = value;
    } else {
      return InvalidArgumentError("unknown flag " + arg);
    }
  }
  return flags;
}

int Main(int argc, char** argv) {
  auto flags = ParseFlags(argc, argv);
  if (!flags.ok()) {
    std::cerr << "store_bench: " << flags.status().message() << "\n";
    PrintUsage(std::cerr);
    return 2;
  }
  if (!flags->child_writer.empty()) return RunChildWriter(flags->child_writer, flags->watch_ops);

  std::string parent = flags->dir;
  if (parent.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    parent = tmp && *tmp ? tmp : "/tmp";
  }
  std::string pattern = parent + "/store_bench.XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) {
    std::cerr << "store_bench: cannot make a directory under " << parent << ": "
              << std::error_code(errno, std::generic_category()).message() << "\n";
    return 2;
  }
  const std::filesystem::path dir = pattern;

  std::vector<Backend> backends;
  for (const std::string& name : flags->backends) {
    auto b = BackendFor(name, dir);
    if (!b.ok()) {
      std::cerr << "store_bench: " << b.status().message() << "\n";
      std::filesystem::remove_all(dir);
      return 2;
    }
    backends.push_back(*b);
  }
  for (const auto& [name, url] : flags->urls) backends.push_back(BackendForUrl(name, url));

  std::cout << "store_bench: plinth store vs raw SQLite, same run, same pragmas (WAL)\n"
            << "  machine   " << std::thread::hardware_concurrency() << " cores, " << CpuModel()
            << "\n"
            << "  sqlite    " << sqlite3_libversion() << "\n"
            << "  dir       " << dir.string() << " (" << FilesystemType(dir) << ")\n"
            << "  work      single put: " << flags->ops
            << " Puts, one commit each; batched put: " << flags->batches << " x "
            << flags->batch_ops << " Puts per transaction\n"
            << "            watch: " << flags->watch_ops << " paced writes; keys 21-26 bytes, "
            << kValueBytes << "-byte values; raw table (key BLOB PRIMARY KEY, value BLOB) "
            << "WITHOUT ROWID\n\n"
            << std::flush;

  Table table;
  table.Add({"backend", "metric", "plinth", "raw sqlite", "ratio", "budget", "met?"});
  int failures = 0;
  auto yes_no = [](bool b) { return std::string(b ? "yes" : "NO"); };
  for (const Backend& b : backends) {
    std::cerr << "running " << b.name << " ..." << std::endl;
    auto store = OpenStore(b.url);
    auto raw = RawSqlite::Open((dir / ("raw_" + b.name + ".db")).string(), b.synchronous);
    if (!store.ok() || !raw.ok()) {
      std::cerr << "store_bench: " << b.name << ": " << (store.ok() ? raw.status() : store.status())
                << "\n";
      ++failures;
      continue;
    }
    const std::string label =
        b.name + (b.durable || b.name != "memory" ? "" : " (vs raw " + b.synchronous + ")");
    const std::string raw_label = " (" + b.synchronous + ")";

    auto single = MeasureSinglePut(**store, **raw, flags->ops);
    if (single.ok()) {
      const double r50 = single->store.p50_us / single->raw.p50_us;
      const double r99 = single->store.p99_us / single->raw.p99_us;
      // The budget is about durable writes; memory's ratio is shown for scale only.
      const std::string budget = b.durable ? "<= 1.30x" : "-";
      table.Add({label, "single put p50", FormatLatency(single->store.p50_us),
                 FormatLatency(single->raw.p50_us) + raw_label, FormatRatio(r50), budget,
                 b.durable ? yes_no(r50 <= kSinglePutBudget) : "-"});
      table.Add({label, "single put p99", FormatLatency(single->store.p99_us),
                 FormatLatency(single->raw.p99_us) + raw_label, FormatRatio(r99), budget,
                 b.durable ? yes_no(r99 <= kSinglePutBudget) : "-"});
    } else {
      std::cerr << "store_bench: " << b.name << ": single put: " << single.status() << "\n";
      ++failures;
    }
    if (single.ok() && b.url.rfind("etcd://", 0) == 0) {
      auto bare = MeasureBareEtcdPut(b.url, flags->ops);
      if (bare.ok()) {
        table.Add({label, "single put p50 vs bare etcd put", FormatLatency(single->store.p50_us),
                   FormatLatency(bare->p50_us) + " (bare)",
                   FormatRatio(single->store.p50_us / bare->p50_us), "-", "-"});
        table.Add({label, "single put p99 vs bare etcd put", FormatLatency(single->store.p99_us),
                   FormatLatency(bare->p99_us) + " (bare)",
                   FormatRatio(single->store.p99_us / bare->p99_us), "-", "-"});
      } else {
        std::cerr << "store_bench: " << b.name << ": " << bare.status() << "\n";
        ++failures;
      }
    }

    // A backend that takes fewer operations per transaction (etcd: 126) is batched at its
    // limit, and so is its raw baseline.
    const int batch_ops = static_cast<int>(std::min<size_t>(static_cast<size_t>(flags->batch_ops),
                                                            (*store)->limits().max_ops_per_txn));
    auto batched = MeasureBatchedPut(**store, **raw, batch_ops, flags->batches);
    if (batched.ok()) {
      const double r = batched->store_ops_per_s / batched->raw_ops_per_s;
      const std::string budget = b.durable ? ">= 0.50x" : "-";
      table.Add({label, "batched put (" + std::to_string(batch_ops) + "/txn)",
                 FormatRate(batched->store_ops_per_s),
                 FormatRate(batched->raw_ops_per_s) + raw_label, FormatRatio(r), budget,
                 b.durable ? yes_no(r >= kBatchedPutBudget) : "-"});
    } else {
      std::cerr << "store_bench: " << b.name << ": batched put: " << batched.status() << "\n";
      ++failures;
    }

    auto in_process = MeasureWatchInProcess(**store, flags->watch_ops);
    if (in_process.ok()) {
      table.Add(
          {label, "watch in-process p50", FormatLatency(in_process->p50_us), "-", "-", "-", "-"});
      table.Add(
          {label, "watch in-process p99", FormatLatency(in_process->p99_us), "-", "-", "-", "-"});
    } else {
      std::cerr << "store_bench: " << b.name << ": watch: " << in_process.status() << "\n";
      ++failures;
    }

    if (!b.cross_process) {
      table.Add({label, "watch cross-process", "n/a", "-", "-", "-", "-"});
      continue;
    }
    auto cross = MeasureWatchCrossProcess(**store, b.url, flags->watch_ops);
    if (cross.ok()) {
      table.Add(
          {label, "watch cross-process p50", FormatLatency(cross->p50_us), "-", "-", "-", "-"});
      std::ostringstream budget;
      budget << "<= " << b.cross_process_budget_ms << " ms";
      table.Add({label, "watch cross-process p99", FormatLatency(cross->p99_us), "-", "-",
                 budget.str(), yes_no(cross->p99_us <= b.cross_process_budget_ms * 1000)});
    } else {
      std::cerr << "store_bench: " << b.name << ": cross-process watch: " << cross.status() << "\n";
      ++failures;
    }
  }
  std::cout << "\n";
  table.Print(std::cout);
  std::cout << "\nratio: plinth / raw for latency, plinth / raw for throughput. Budgets from "
               "DESIGN.md; memory is not durable, so its budgets do not apply.\n"
               "watch latency: from just before Commit to batch receipt (CLOCK_MONOTONIC); "
               "cross-process re-executes this binary as the writer.\n";
  std::filesystem::remove_all(dir);
  return failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace plinth::store::bench

int main(int argc, char** argv) { return plinth::store::bench::Main(argc, argv); }
