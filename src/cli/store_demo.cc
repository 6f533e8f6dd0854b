#include "cli/store_demo.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "cli/output.h"

namespace plinth::cli {
namespace {

using store::KeySpan;
using store::Revision;

constexpr std::string_view kPrefix = "demo/";
// How long the demo waits for its watch to deliver what it wrote before calling it a failure.
constexpr std::chrono::seconds kWatchDeadline(10);

// Follows one watch stream on a background thread until it has delivered `target` (set once
// the writes are done) or the deadline passes.
class WatchCollector {
 public:
  explicit WatchCollector(std::unique_ptr<store::WatchStream> stream)
      : stream_(std::move(stream)), thread_([this] { Collect(); }) {}
  ~WatchCollector() {
    stream_->Cancel();
    Finish();
  }
  WatchCollector(const WatchCollector&) = delete;
  WatchCollector& operator=(const WatchCollector&) = delete;

  void SetTarget(Revision target) { target_.store(target); }

  // Waits for the thread to stop (its deadline bounds the wait); then batches() and status()
  // are stable.
  void Finish() {
    if (thread_.joinable()) thread_.join();
  }
  const std::vector<store::WatchBatch>& batches() const { return batches_; }
  const Status& status() const { return status_; }

 private:
  void Collect() {
    const auto deadline = std::chrono::steady_clock::now() + kWatchDeadline;
    while (std::chrono::steady_clock::now() < deadline) {
      if (!batches_.empty() && batches_.back().revision >= target_.load()) return;
      auto batch = stream_->Next(std::chrono::milliseconds(50));
      if (!batch.ok() && batch.status().code() == StatusCode::kDeadlineExceeded) continue;
      if (!batch.ok()) {
        status_ = batch.status();
        return;
      }
      batches_.push_back(std::move(batch).value());
    }
    status_ = DeadlineExceededError("the watch did not deliver every demo revision within " +
                                    std::to_string(kWatchDeadline.count()) + "s");
  }

  std::unique_ptr<store::WatchStream> stream_;
  std::atomic<Revision> target_{std::numeric_limits<Revision>::max()};
  std::vector<store::WatchBatch> batches_;  // written by the thread until Finish()
  Status status_;
  std::thread thread_;  // last: starts after every other member is built
};

std::string Quoted(std::string_view bytes) { return "\"" + DisplayBytes(bytes) + "\""; }

void PrintRangeTable(const std::vector<store::KeyValue>& kvs, std::ostream& out,
                     std::string_view indent) {
  TextTable t({"KEY", "VALUE", "CREATED", "MODIFIED"});
  for (const auto& kv : kvs) {
    t.AddRow({DisplayBytes(kv.key), DisplayBytes(kv.value), std::to_string(kv.create_revision),
              std::to_string(kv.mod_revision)});
  }
  t.Print(out, indent);
}

}  // namespace

int RunStoreDemo(store::Store& store, std::string_view url, OutputFormat format, Console& console) {
  const bool text = format == OutputFormat::kText;
  std::ostream& out = console.out;
  auto fail = [&](std::string_view step, const Status& s) {
    out.flush();
    return ReportFailure(console, "demo: " + std::string(step), s);
  };

  auto start = store.CurrentRevision();
  if (!start.ok()) return fail("reading the current revision", start.status());
  if (text) {
    out << "plinth store demo: what the store does, step by step\n\n";
    TextTable t({"store", DisplayBytes(url)});
    t.AddRow({"backend", std::string(store.backend())});
    t.AddRow({"revision",
              std::to_string(*start) + " (the latest committed revision; an empty store is at 0)"});
    t.Print(out, "  ");
    out << "\n";
  }

  // 1. The watch starts before any write, from the next revision, so it must see them all.
  const Revision watch_from = *start + 1;
  auto stream = store.Watch(KeySpan::Prefix(kPrefix), watch_from);
  if (!stream.ok()) return fail("starting the watch", stream.status());
  WatchCollector watch(std::move(stream).value());
  if (text) {
    out << "1. Watch: a background thread watches prefix " << Quoted(kPrefix) << " from revision "
        << watch_from << ".\n";
  }

  // 2. One transaction, three keys, one revision.
  const std::vector<std::pair<std::string, std::string>> initial = {
      {"demo/alpha", "first"}, {"demo/beta", "second"}, {"demo/gamma", "third"}};
  auto tx = store.Begin();
  for (const auto& [key, value] : initial) {
    if (Status s = tx->Put(key, value); !s.ok()) return fail("buffering a put", s);
  }
  auto tx_rev = tx->Commit();
  if (!tx_rev.ok()) return fail("committing the transaction", tx_rev.status());
  if (text) {
    out << "2. Transaction: Begin, Put demo/alpha, demo/beta, demo/gamma, Commit -> revision "
        << *tx_rev << "\n   (all three keys carry that one revision)\n";
  }

  // 3. and 4. Single-operation transactions, each the next revision.
  const std::string put_key = "demo/alpha", put_value = "updated", delete_key = "demo/beta";
  auto put_rev = store.Put(put_key, put_value);
  if (!put_rev.ok()) return fail("put " + put_key, put_rev.status());
  if (text) {
    out << "3. Put " << put_key << " = " << Quoted(put_value) << " -> revision " << *put_rev
        << "\n";
  }
  auto delete_rev = store.Delete(delete_key);
  if (!delete_rev.ok()) return fail("delete " + delete_key, delete_rev.status());
  if (text) out << "4. Delete " << delete_key << " -> revision " << *delete_rev << "\n";
  watch.SetTarget(*delete_rev);

  // 5. Reads: each returns the revision of the snapshot it read.
  auto got = store.Get(put_key);
  if (!got.ok()) return fail("get " + put_key, got.status());
  auto range = store.Range(KeySpan::Prefix(kPrefix), {});
  if (!range.ok()) return fail("range demo/", range.status());
  auto count = store.Count(KeySpan::Prefix(kPrefix));
  if (!count.ok()) return fail("count demo/", count.status());
  if (text) {
    out << "5. Read back:\n"
        << "   Get " << put_key << " -> " << Quoted(got->value) << " (created at revision "
        << got->create_revision << ", modified at revision " << got->mod_revision << ")\n"
        << "   Range " << Quoted(kPrefix) << " at revision " << range->revision << ":\n";
    PrintRangeTable(range->kvs, out, "     ");
    out << "   Count " << Quoted(kPrefix) << " -> " << count->count << " keys at revision "
        << count->revision << "\n";
  }

  // 6. What the watch saw.
  watch.Finish();
  std::vector<Revision> delivered;
  for (const auto& b : watch.batches()) delivered.push_back(b.revision);
  const std::vector<Revision> written = {*tx_rev, *put_rev, *delete_rev};
  // Other writers may share the prefix; the demo's own revisions must all be there, in order.
  bool complete = true;
  for (Revision r : written) {
    complete = complete && std::find(delivered.begin(), delivered.end(), r) != delivered.end();
  }
  const bool consecutive = *put_rev == *tx_rev + 1 && *delete_rev == *put_rev + 1;

  if (!text) {
    nlohmann::ordered_json tx_keys = nlohmann::ordered_json::array();
    for (const auto& [key, value] : initial) tx_keys.push_back(key);
    nlohmann::ordered_json range_kvs = nlohmann::ordered_json::array();
    for (const auto& kv : range->kvs) range_kvs.push_back(KeyValueToJson(kv));
    nlohmann::ordered_json batches = nlohmann::ordered_json::array();
    for (const auto& b : watch.batches()) batches.push_back(WatchBatchToJson(b));
    nlohmann::ordered_json j = {{"store", std::string(url)},
                                {"backend", std::string(store.backend())},
                                {"start_revision", *start}};
    j["transaction"] = {{"keys", std::move(tx_keys)}, {"revision", *tx_rev}};
    j["put"] = {{"key", put_key}, {"value", put_value}, {"revision", *put_rev}};
    j["delete"] = {{"key", delete_key}, {"revision", *delete_rev}};
    j["get"] = KeyValueToJson(*got);
    j["range"] = {{"prefix", std::string(kPrefix)},
                  {"revision", range->revision},
                  {"kvs", std::move(range_kvs)}};
    j["count"] = {
        {"prefix", std::string(kPrefix)}, {"count", count->count}, {"revision", count->revision}};
    j["watch"] = {{"prefix", std::string(kPrefix)},
                  {"from_revision", watch_from},
                  {"batches", std::move(batches)},
                  {"complete", complete}};
    PrintJson(out, j);
  } else {
    out << "6. The watch delivered " << watch.batches().size()
        << (watch.batches().size() == 1 ? " batch" : " batches")
        << ", one per transaction, in revision order:\n";
    for (const auto& b : watch.batches()) {
      out << "   revision " << b.revision << "\n";
      TextTable t({"TYPE", "KEY", "VALUE", "CREATED", "MODIFIED"});
      for (const auto& e : b.events) {
        const bool put = e.type == store::Event::Type::kPut;
        t.AddRow({std::string(EventTypeName(e.type)), DisplayBytes(e.kv.key),
                  put ? DisplayBytes(e.kv.value) : "",
                  put ? std::to_string(e.kv.create_revision) : "",
                  std::to_string(e.kv.mod_revision)});
      }
      t.Print(out, "     ");
    }
    out << "\n";
    if (consecutive) {
      out << "Revisions " << *tx_rev << ", " << *put_rev << ", " << *delete_rev
          << " are consecutive: each write transaction took exactly the previous revision + 1.\n";
    } else {
      out << "Revisions " << *tx_rev << ", " << *put_rev << ", " << *delete_rev
          << ": other writers committed in between; each transaction still took previous + 1.\n";
    }
  }
  if (!watch.status().ok()) return fail("watching " + std::string(kPrefix), watch.status());
  if (!complete) {
    return fail("watching " + std::string(kPrefix),
                InternalError("the watch did not deliver every revision the demo wrote"));
  }
  if (text) {
    out << "Every change reached the watcher, whole and in order.";
    if (store.backend() != "memory") out << " Run it again: the store keeps its state.";
    out << "\n";
  }
  return kExitOk;
}

}  // namespace plinth::cli
