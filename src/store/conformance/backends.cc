#include "store/conformance/backends.h"

#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <utility>

#include "common/status_matchers.h"
#include "store/conformance/test_servers.h"
#include "store/open.h"

namespace plinth::store {

namespace {
const char* EventTypeName(Event::Type type) { return type == Event::Type::kPut ? "PUT" : "DELETE"; }
}  // namespace

void PrintTo(const KeyValue& kv, std::ostream* os) {
  *os << "{" << PrintableKey(kv.key) << " = " << PrintableKey(kv.value) << " (" << kv.value.size()
      << " bytes), create " << kv.create_revision << ", mod " << kv.mod_revision << "}";
}

void PrintTo(const Event& event, std::ostream* os) {
  *os << EventTypeName(event.type) << " ";
  PrintTo(event.kv, os);
}

void PrintTo(const WatchBatch& batch, std::ostream* os) {
  *os << "batch@" << batch.revision << "[";
  for (size_t i = 0; i < batch.events.size(); ++i) {
    if (i > 0) *os << ", ";
    PrintTo(batch.events[i], os);
  }
  *os << "]";
}

}  // namespace plinth::store

namespace plinth::store::conformance {

namespace {

// make_url for a server backend: the shared server's base URL + `separator` + a unique name.
std::function<StatusOr<std::string>(const std::string&)> ServerUrl(std::string kind,
                                                                   std::string separator) {
  return [kind, separator](const std::string&) -> StatusOr<std::string> {
    PLINTH_ASSIGN_OR_RETURN(TestServer server, SharedTestServer(kind));
    return server.url + separator + UniqueStoreName();
  };
}

}  // namespace

const std::vector<BackendUnderTest>& AllBackends() {
  static const auto* const backends = new std::vector<BackendUnderTest>{
      // A named in-process store, unique to the test: every handle opened on the URL while
      // another is open shares it; nothing survives the last handle.
      {"memory", [](const std::string& dir) -> StatusOr<std::string> { return "memory://" + dir; },
       false, false},
      {"sqlite",
       [](const std::string& dir) -> StatusOr<std::string> {
         return "sqlite://" + dir + "/store.db";
       },
       true, true},
      {"sqlite_normal",
       [](const std::string& dir) -> StatusOr<std::string> {
         return "sqlite://" + dir + "/store.db?synchronous=normal";
       },
       true, true},
      // Server backends: one throwaway server per test process (test_servers.h), one fresh
      // schema, table prefix or key prefix per store.
      {"postgres", ServerUrl("postgres", "?schema="), true, true, "postgres"},
      {"mysql", ServerUrl("mariadb", "?table_prefix="), true, true, "mariadb"},
      {"etcd", ServerUrl("etcd", "/plinth-test/"), true, true, "etcd"},
      // The memory backend built as a shared object and loaded through the C ABI.
      {"plugin",
       [](const std::string& dir) -> StatusOr<std::string> {
         return std::string("plugin://") + PLINTH_MEMORY_PLUGIN_PATH + "?name=" + dir;
       },
       false, false},
  };
  return *backends;
}

std::vector<BackendUnderTest> PersistentBackends() {
  std::vector<BackendUnderTest> out;
  for (const BackendUnderTest& b : AllBackends()) {
    if (b.persistent) out.push_back(b);
  }
  return out;
}

std::vector<BackendUnderTest> MultiProcessBackends() {
  std::vector<BackendUnderTest> out;
  for (const BackendUnderTest& b : AllBackends()) {
    if (b.multi_process) out.push_back(b);
  }
  return out;
}

std::vector<BackendUnderTest> ServerBackends() {
  std::vector<BackendUnderTest> out;
  for (const BackendUnderTest& b : AllBackends()) {
    if (!b.server_kind.empty()) out.push_back(b);
  }
  return out;
}

std::string BackendName(const ::testing::TestParamInfo<BackendUnderTest>& info) {
  return info.param.name;
}

std::string WithUrlOptions(std::string_view url, std::string_view options) {
  std::string out(url);
  if (options.empty()) return out;
  out += out.find('?') == std::string::npos ? '?' : '&';
  out += options;
  return out;
}

void StoreTestBase::SetUp() {
  std::string pattern = (std::filesystem::temp_directory_path() / "plinth-conformance-XXXXXX");
  ASSERT_NE(mkdtemp(pattern.data()), nullptr) << "mkdtemp(" << pattern << ") failed";
  temp_dir_ = pattern;
  StatusOr<std::string> url = GetParam().make_url(temp_dir_);
  ASSERT_TRUE(url.ok()) << "making a " << GetParam().name << " store URL: " << url.status();
  url_ = *url;
  auto opened = OpenStore(url_);
  ASSERT_TRUE(opened.ok()) << "opening " << url_ << ": " << opened.status();
  store_ = std::move(opened).value();
}

void StoreTestBase::TearDown() {
  store_.reset();
  if (!temp_dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(temp_dir_, ignored);
  }
}

StatusOr<std::unique_ptr<Store>> StoreTestBase::OpenAgain() const { return OpenStore(url_); }

StatusOr<std::unique_ptr<Store>> StoreTestBase::OpenFreshStore(std::string_view options) {
  std::filesystem::path dir =
      std::filesystem::path(temp_dir_) / ("fresh-" + std::to_string(++fresh_stores_));
  std::error_code error;
  std::filesystem::create_directory(dir, error);
  if (error) return InternalError("creating " + dir.string() + ": " + error.message());
  PLINTH_ASSIGN_OR_RETURN(std::string url, GetParam().make_url(dir.string()));
  return OpenStore(WithUrlOptions(url, options));
}

StatusOr<Revision> CommitOps(Store& store, std::vector<Op> ops, std::vector<Condition> conditions) {
  TxnRequest txn;
  txn.ops = std::move(ops);
  txn.conditions = std::move(conditions);
  return store.Commit(txn);
}

StatusOr<RangeResult> ReadAll(Store& store) { return store.Range(KeySpan::All(), {}); }

std::vector<std::string> KeysOf(const std::vector<KeyValue>& kvs) {
  std::vector<std::string> keys;
  keys.reserve(kvs.size());
  for (const KeyValue& kv : kvs) keys.push_back(kv.key);
  return keys;
}

Event PutEvent(std::string key, std::string value, Revision create_revision,
               Revision mod_revision) {
  return Event{Event::Type::kPut,
               KeyValue{std::move(key), std::move(value), create_revision, mod_revision}};
}

Event DeleteEvent(std::string key, Revision revision) {
  return Event{Event::Type::kDelete, KeyValue{std::move(key), "", 0, revision}};
}

StatusOr<std::vector<WatchBatch>> ReadBatchesThrough(WatchStream& watch, Revision through,
                                                     std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  std::vector<WatchBatch> batches;
  while (batches.empty() || batches.back().revision < through) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return DeadlineExceededError("watch did not reach revision " + std::to_string(through) +
                                   " within " + std::to_string(limit.count()) + " ms; got " +
                                   std::to_string(batches.size()) + " batches");
    }
    StatusOr<WatchBatch> batch = watch.Next(left);
    if (!batch.ok()) {
      return Status(batch.status().code(),
                    "after " + std::to_string(batches.size()) +
                        " batches: " + std::string(batch.status().message()));
    }
    batches.push_back(std::move(batch).value());
  }
  return batches;
}

bool CheckBatchShape(const std::vector<WatchBatch>& batches) {
  bool ok = true;
  for (size_t i = 0; i < batches.size(); ++i) {
    const WatchBatch& b = batches[i];
    if (b.events.empty()) {
      ADD_FAILURE() << "batch " << i << " at revision " << b.revision << " has no events";
      ok = false;
    }
    if (i > 0 && b.revision <= batches[i - 1].revision) {
      ADD_FAILURE() << "batch " << i << " has revision " << b.revision << " after "
                    << batches[i - 1].revision;
      ok = false;
    }
    for (size_t j = 0; j < b.events.size(); ++j) {
      const Event& e = b.events[j];
      if (e.kv.mod_revision != b.revision) {
        ADD_FAILURE() << "event " << ::testing::PrintToString(e) << " in batch at revision "
                      << b.revision;
        ok = false;
      }
      if (j > 0 && CompareKeys(b.events[j - 1].kv.key, e.kv.key) >= 0) {
        ADD_FAILURE() << "events out of key order in " << ::testing::PrintToString(b);
        ok = false;
      }
    }
  }
  return ok;
}

void CommitLog::Record(Revision revision, std::vector<std::string> keys) {
  std::sort(keys.begin(), keys.end());
  std::lock_guard<std::mutex> lock(mu_);
  duplicates_ += !by_revision_.emplace(revision, std::move(keys)).second;
}

std::map<Revision, std::vector<std::string>> CommitLog::by_revision() const {
  std::lock_guard<std::mutex> lock(mu_);
  return by_revision_;
}

int CommitLog::duplicates() const {
  std::lock_guard<std::mutex> lock(mu_);
  return duplicates_;
}

void ExpectBatchesMatchLog(const std::vector<WatchBatch>& batches,
                           const std::map<Revision, std::vector<std::string>>& log) {
  ASSERT_TRUE(CheckBatchShape(batches));
  ASSERT_EQ(batches.size(), log.size());
  auto it = log.begin();
  for (const WatchBatch& batch : batches) {
    EXPECT_EQ(batch.revision, it->first);
    std::vector<std::string> keys;
    for (const Event& e : batch.events) {
      EXPECT_EQ(e.type, Event::Type::kPut) << ::testing::PrintToString(e);
      keys.push_back(e.kv.key);
    }
    EXPECT_EQ(keys, it->second) << "batch at revision " << batch.revision << " is not whole";
    ++it;
  }
}

WatchReader::WatchReader(std::unique_ptr<WatchStream> watch)
    : watch_(std::move(watch)), thread_([this] { Run(); }) {}

WatchReader::~WatchReader() { Finish(0); }

std::vector<WatchBatch> WatchReader::Finish(Revision through) {
  target_.store(through == 0 ? -1 : through);
  if (thread_.joinable()) thread_.join();
  return batches_;
}

void WatchReader::Run() {
  const auto deadline = std::chrono::steady_clock::now() + kEventually * 3;
  while (std::chrono::steady_clock::now() < deadline) {
    const Revision target = target_.load();
    if (target < 0 || (target > 0 && !batches_.empty() && batches_.back().revision >= target)) {
      return;
    }
    StatusOr<WatchBatch> batch = watch_->Next(std::chrono::milliseconds(50));
    if (batch.ok()) {
      batches_.push_back(std::move(batch).value());
    } else if (batch.status().code() != StatusCode::kDeadlineExceeded) {
      status_ = batch.status();
      return;
    }
  }
  status_ = DeadlineExceededError("watch reader gave up after " + std::to_string(batches_.size()) +
                                  " batches");
}

std::string PatternBytes(size_t size, int seed) {
  std::string out(size, '\0');
  // The i / 251 term keeps the pattern from repeating every 256 bytes, so a value shifted
  // by a whole number of blocks still compares unequal.
  for (size_t i = 0; i < size; ++i) out[i] = static_cast<char>((i + i / 251 + seed) & 0xFF);
  return out;
}

// Every suite is instantiated here, next to the list of backends. A capability suite may be
// empty when no backend has the capability; that is not an error.
INSTANTIATE_TEST_SUITE_P(Backends, StoreConformanceTest, ::testing::ValuesIn(AllBackends()),
                         BackendName);
INSTANTIATE_TEST_SUITE_P(Backends, StorePersistenceTest, ::testing::ValuesIn(PersistentBackends()),
                         BackendName);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(StorePersistenceTest);
INSTANTIATE_TEST_SUITE_P(Backends, StoreProcessTest, ::testing::ValuesIn(MultiProcessBackends()),
                         BackendName);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(StoreProcessTest);
INSTANTIATE_TEST_SUITE_P(Backends, StoreServerTest, ::testing::ValuesIn(ServerBackends()),
                         BackendName);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(StoreServerTest);

}  // namespace plinth::store::conformance
