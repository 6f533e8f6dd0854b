// Migrate between real backends (memory, sqlite, and postgres, mariadb and etcd on throwaway
// test servers: a server that cannot start fails the test), and its refusals, limits,
// verification and progress, with wrapper stores that record, drop or alter writes.
#include "store/migrate/migrate.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "common/status_matchers.h"
#include "store/conformance/test_servers.h"
#include "store/fault/fault_injection_store.h"
#include "store/open.h"

namespace plinth::store {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::SizeIs;

using Content = std::map<std::string, std::string>;  // key -> value, in key order

// `size` bytes that cover every byte value once size >= 256, varied by `seed`.
std::string AllBytes(size_t size, int seed) {
  std::string out(size, '\0');
  for (size_t i = 0; i < size; ++i) out[i] = static_cast<char>((i * 7 + i / 256 + seed) & 0xFF);
  return out;
}

// `n` keys whose first byte runs through every byte value (0x00 and 0xFF included), with
// values of varied sizes (empty, short, and ones holding every byte value).
Content BinaryContent(int n) {
  Content content;
  for (int i = 0; i < n; ++i) {
    std::string key(1, static_cast<char>(i & 0xFF));
    key += "/key/" + std::to_string(i);
    key.push_back(static_cast<char>(0xFF - (i & 0xFF)));
    content[key] = AllBytes(static_cast<size_t>((i * 37) % 600), i);
  }
  return content;
}

std::string ExpectedSha256(const Content& content) {
  ContentHasher hasher;
  for (const auto& [key, value] : content) hasher.Add(key, value);
  return hasher.HexDigest();
}

int64_t ContentBytes(const Content& content) {
  int64_t bytes = 0;
  for (const auto& [key, value] : content) bytes += static_cast<int64_t>(key.size() + value.size());
  return bytes;
}

// Writes `content` in transactions of at most `per_txn` keys.
Status Fill(Store& store, const Content& content, size_t per_txn = 100) {
  TxnRequest txn;
  for (const auto& [key, value] : content) {
    txn.ops.push_back(Op::Put(key, value));
    if (txn.ops.size() == per_txn) {
      PLINTH_RETURN_IF_ERROR(store.Commit(txn));
      txn.ops.clear();
    }
  }
  if (!txn.ops.empty()) PLINTH_RETURN_IF_ERROR(store.Commit(txn));
  return Status::Ok();
}

// Every key and value of `store`, read page by page from one snapshot.
StatusOr<Content> ReadContent(Store& store) {
  PLINTH_ASSIGN_OR_RETURN(std::unique_ptr<Snapshot> snapshot, store.OpenSnapshot());
  Content content;
  RangeOptions options;
  options.limit = 50;
  while (true) {
    PLINTH_ASSIGN_OR_RETURN(RangeResult page, snapshot->Range(KeySpan::All(), options));
    for (KeyValue& kv : page.kvs) content[kv.key] = std::move(kv.value);
    if (!page.more || page.kvs.empty()) return content;
    options.after = page.kvs.back().key;
  }
}

std::string WithUrlOptions(std::string url, std::string_view options) {
  if (options.empty()) return url;
  url += url.find('?') == std::string::npos ? '?' : '&';
  url += options;
  return url;
}

// The URL of a fresh, empty store of `kind` keeping its files under `dir`.
StatusOr<std::string> FreshStoreUrl(const std::string& kind, const std::string& dir) {
  if (kind == "memory") return "memory://" + dir;
  if (kind == "sqlite") return "sqlite://" + dir + "/store.db";
  std::string server_kind, separator;
  if (kind == "postgres") {
    server_kind = "postgres";
    separator = "?schema=";
  } else if (kind == "mysql") {
    server_kind = "mariadb";
    separator = "?table_prefix=";
  } else if (kind == "etcd") {
    server_kind = "etcd";
    separator = "/plinth-migrate-test/";
  } else {
    return InvalidArgumentError("unknown backend kind " + kind);
  }
  PLINTH_ASSIGN_OR_RETURN(conformance::TestServer server,
                          conformance::SharedTestServer(server_kind));
  return server.url + separator + conformance::UniqueStoreName();
}

// Forwards every call to a wrapped store; tests override Commit to watch or tamper with the
// destination's transactions.
class ForwardingStore : public Store {
 public:
  explicit ForwardingStore(Store* base) : base_(base) {}
  std::string_view backend() const override { return base_->backend(); }
  Limits limits() const override { return base_->limits(); }
  StatusOr<KeyValue> Get(std::string_view key) override { return base_->Get(key); }
  StatusOr<RangeResult> Range(const KeySpan& span, const RangeOptions& options) override {
    return base_->Range(span, options);
  }
  StatusOr<CountResult> Count(const KeySpan& span) override { return base_->Count(span); }
  StatusOr<std::unique_ptr<Snapshot>> OpenSnapshot() override { return base_->OpenSnapshot(); }
  StatusOr<Revision> Commit(const TxnRequest& txn) override { return base_->Commit(txn); }
  StatusOr<std::unique_ptr<WatchStream>> Watch(const KeySpan& span, Revision from_revision,
                                               const WatchOptions& options) override {
    return base_->Watch(span, from_revision, options);
  }
  StatusOr<Revision> CurrentRevision() override { return base_->CurrentRevision(); }
  Status Compact(Revision revision) override { return base_->Compact(revision); }
  StatusOr<Revision> CompactedRevision() override { return base_->CompactedRevision(); }

 protected:
  Store* const base_;
};

// Records the shape of every committed transaction.
class RecordingStore : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  StatusOr<Revision> Commit(const TxnRequest& txn) override {
    StatusOr<Revision> r = base_->Commit(txn);
    if (r.ok()) {
      size_t bytes = 0;
      bool all_absent = txn.conditions.size() == txn.ops.size();
      for (const Op& op : txn.ops) bytes += op.key.size() + op.value.size();
      for (size_t i = 0; all_absent && i < txn.ops.size(); ++i) {
        all_absent = txn.conditions[i].kind == Condition::Kind::kAbsent &&
                     txn.conditions[i].key == txn.ops[i].key;
      }
      ops.push_back(txn.ops.size());
      txn_bytes.push_back(bytes);
      every_key_conditioned_absent = every_key_conditioned_absent && all_absent;
    }
    return r;
  }
  std::vector<size_t> ops;
  std::vector<size_t> txn_bytes;
  bool every_key_conditioned_absent = true;
};

// Changes the first committed transaction with `tamper` before passing it on.
class TamperingStore : public ForwardingStore {
 public:
  TamperingStore(Store* base, std::function<void(TxnRequest&)> tamper)
      : ForwardingStore(base), tamper_(std::move(tamper)) {}
  StatusOr<Revision> Commit(const TxnRequest& txn) override {
    if (done_) return base_->Commit(txn);
    done_ = true;
    TxnRequest changed = txn;
    tamper_(changed);
    return base_->Commit(changed);
  }

 private:
  std::function<void(TxnRequest&)> tamper_;
  bool done_ = false;
};

class MigrateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "plinth-migrate-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    stores_.clear();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  // A fresh, empty store of `kind` with extra URL `options`; the fixture keeps it open.
  StatusOr<Store*> NewStore(const std::string& kind, std::string_view options = "") {
    const std::string dir = dir_ + "/s" + std::to_string(stores_.size());
    std::error_code error;
    std::filesystem::create_directory(dir, error);
    if (error) return InternalError("creating " + dir + ": " + error.message());
    PLINTH_ASSIGN_OR_RETURN(std::string url, FreshStoreUrl(kind, dir));
    url = WithUrlOptions(url, options);
    PLINTH_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, OpenStore(url));
    urls_.push_back(url);
    stores_.push_back(std::move(store));
    return stores_.back().get();
  }

  std::string dir_;
  std::vector<std::string> urls_;
  std::vector<std::unique_ptr<Store>> stores_;
};

// ---- every pair of backend types --------------------------------------------------------------

struct BackendPair {
  std::string from;
  std::string to;
};

class MigrateBetweenBackendsTest : public MigrateTest,
                                   public ::testing::WithParamInterface<BackendPair> {};

TEST_P(MigrateBetweenBackendsTest, CopiesBinaryContentOverManyPagesAndVerifies) {
  const BackendPair& pair = GetParam();
  ASSERT_OK_AND_ASSIGN(Store * from, NewStore(pair.from));
  ASSERT_OK_AND_ASSIGN(Store * to, NewStore(pair.to));
  const Content content = BinaryContent(300);
  ASSERT_OK(Fill(*from, content));
  ASSERT_OK_AND_ASSIGN(Revision source_revision, from->CurrentRevision());

  RecordingStore recording(to);
  MigrateOptions options;
  options.page_size = 64;  // five pages
  ASSERT_OK_AND_ASSIGN(MigrateReport report, Migrate(*from, recording, options));

  EXPECT_EQ(report.keys, 300);
  EXPECT_EQ(report.bytes, ContentBytes(content));
  EXPECT_EQ(report.source_revision, source_revision);
  EXPECT_EQ(report.content_sha256, ExpectedSha256(content));
  ASSERT_OK_AND_ASSIGN(Revision destination_revision, to->CurrentRevision());
  EXPECT_EQ(report.destination_revision, destination_revision);
  EXPECT_EQ(report.transactions, static_cast<int64_t>(recording.ops.size()));
  EXPECT_TRUE(recording.every_key_conditioned_absent);
  const Limits limits = to->limits();
  for (size_t i = 0; i < recording.ops.size(); ++i) {
    EXPECT_LE(recording.ops[i], limits.max_ops_per_txn) << "transaction " << i;
    EXPECT_LE(recording.txn_bytes[i], limits.max_txn_bytes) << "transaction " << i;
  }
  if (pair.to == "etcd") {
    // etcd takes at most 126 keys per transaction: 300 keys need three.
    EXPECT_EQ(limits.max_ops_per_txn, 126u);
    EXPECT_EQ(report.transactions, 3);
  }
  ASSERT_OK_AND_ASSIGN(Content copied, ReadContent(*to));
  EXPECT_TRUE(copied == content) << "copied " << copied.size() << " keys";
  // The source is untouched.
  ASSERT_OK_AND_ASSIGN(Revision source_after, from->CurrentRevision());
  EXPECT_EQ(source_after, source_revision);
}

INSTANTIATE_TEST_SUITE_P(
    Pairs, MigrateBetweenBackendsTest,
    ::testing::Values(BackendPair{"memory", "sqlite"}, BackendPair{"sqlite", "memory"},
                      BackendPair{"sqlite", "postgres"}, BackendPair{"postgres", "mysql"},
                      BackendPair{"mysql", "etcd"}, BackendPair{"etcd", "sqlite"}),
    [](const ::testing::TestParamInfo<BackendPair>& info) {
      return info.param.from + "_to_" + info.param.to;
    });

// ---- batching ---------------------------------------------------------------------------------

TEST_F(MigrateTest, BatchesByTheDestinationsOperationLimit) {
  ASSERT_OK_AND_ASSIGN(Store * from, NewStore("memory"));
  ASSERT_OK_AND_ASSIGN(Store * to, NewStore("sqlite", "max_ops=7"));
  const Content content = BinaryContent(100);
  ASSERT_OK(Fill(*from, content));
  RecordingStore recording(to);
  MigrateOptions options;
  options.page_size = 10;
  ASSERT_OK_AND_ASSIGN(MigrateReport report, Migrate(*from, recording, options));
  EXPECT_EQ(report.transactions, 15);  // ceil(100 / 7)
  ASSERT_THAT(recording.ops, SizeIs(15));
  for (size_t i = 0; i + 1 < recording.ops.size(); ++i) EXPECT_EQ(recording.ops[i], 7u);
  EXPECT_EQ(recording.ops.back(), 2u);
  ASSERT_OK_AND_ASSIGN(Content copied, ReadContent(*to));
  EXPECT_TRUE(copied == content);
}

TEST_F(MigrateTest, BatchesByTheDestinationsByteLimitAndTheOptions) {
  ASSERT_OK_AND_ASSIGN(Store * from, NewStore("memory"));
  ASSERT_OK_AND_ASSIGN(Store * to, NewStore("sqlite", "max_txn_bytes=1000"));
  Content content;
  for (int i = 0; i < 20; ++i) content["k" + std::to_string(100 + i)] = AllBytes(296, i);
  ASSERT_OK(Fill(*from, content));
  RecordingStore recording(to);
  ASSERT_OK_AND_ASSIGN(MigrateReport report, Migrate(*from, recording));
  // 300 bytes per pair: three fit in 1000.
  EXPECT_EQ(report.transactions, 7);
  for (size_t bytes : recording.txn_bytes) EXPECT_LE(bytes, 1000u);

  // The options bound transactions further.
  ASSERT_OK_AND_ASSIGN(Store * to2, NewStore("sqlite"));
  MigrateOptions options;
  options.max_keys_per_txn = 4;
  ASSERT_OK_AND_ASSIGN(report, Migrate(*from, *to2, options));
  EXPECT_EQ(report.transactions, 5);
  ASSERT_OK_AND_ASSIGN(Store * to3, NewStore("sqlite"));
  options.max_keys_per_txn = 0;
  options.max_txn_bytes = 650;
  ASSERT_OK_AND_ASSIGN(report, Migrate(*from, *to3, options));
  EXPECT_EQ(report.transactions, 10);
}

TEST_F(MigrateTest, APairLargerThanTheTransactionOptionStillGoesAlone) {
  ASSERT_OK_AND_ASSIGN(Store * from, NewStore("memory"));
  ASSERT_OK_AND_ASSIGN(Store * to, NewStore("sqlite"));
  ASSERT_OK(Fill(*from, {{"a", "1"}, {"b", AllBytes(5000, 1)}, {"c", "3"}}));
  MigrateOptions options;
  options.max_txn_bytes = 100;
  ASSERT_OK_AND_ASSIGN(MigrateReport report, Migrate(*from, *to, options));
  EXPECT_EQ(report.keys, 3);
  EXPECT_EQ(report.transactions, 3);
}

// ---- refusals ---------------------------------------------------------------------------------

TEST_F(MigrateTest, RefusesANonEmptyDestinationNamingTheCount) {
  ASSERT_OK_AND_ASSIGN(Store * from, NewStore("memory"));
  ASSERT_OK_AND_ASSIGN(Store * to, NewStore("sqlite"));
  ASSERT_OK(Fill(*from, BinaryContent(10)));
  ASSERT_OK(Fill(*to, {{"other/1", "x"}, {"other/2", "y"}}));
  ASSERT_OK_AND_ASSIGN(Revision before, to->CurrentRevision());
  EXPECT_THAT(Migrate(*from, *to),
              StatusIs(StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("already holds 2 keys"), HasSubstr("empty"))));
  EXPECT_THAT(to->CurrentRevision(), IsOk());
  EXPECT_EQ(*to->CurrentRevision(), before);
}

TEST_F(MigrateTest, AllowNonEmptyCopiesNextToKeysThatDoNotCollide) {
  ASSERT_OK_AND_ASSIGN(Store * from, NewStore("memory"));
  ASSERT_OK_AND_ASSIGN(Store * to, NewStore("sqlite"));
  const Content content = BinaryContent(50);
  ASSERT_OK(Fill(*from, content));
  // Keys before, between and after the source's.
  const Content existing = {{std::string("\x00", 1), "first"}, {"m", "middle"}, {"\xff\xff", "z"}};
  ASSERT_OK(Fill(*to, existing));
  MigrateOptions options;
  options.allow_non_empty_destination = true;
  options.page_size = 7;
  ASSERT_OK_AND_ASSIGN(MigrateReport report, Migrate(*from, *to, options));
  EXPECT_EQ(report.keys, 50);
  EXPECT_EQ(report.content_sha256, ExpectedSha256(content));
  Content expected = content;
  expected.insert(existing.begin(), existing.end());
  ASSERT_OK_AND_ASSIGN(Content copied, ReadContent(*to));
  EXPECT_TRUE(copied == expected);
}

TEST_F(MigrateTest, AllowNonEmptyFailsWithFailedPreconditionOnACollisionAndWritesNothing) {
  ASSERT_OK_AND_ASSIGN(Store * from, NewStore("memory"));
  ASSERT_OK_AND_ASSIGN(Store * to, NewStore("sqlite"));
  ASSERT_OK(Fill(*from, {{"a", "1"}, {"b", "2"}, {"c", "3"}}));
  ASSERT_OK(Fill(*to, {{"b", "theirs"}, {"d", "4"}}));
  ASSERT_OK_AND_ASSIGN(Revision before, to->CurrentRevision());
  MigrateOptions options;
  options.allow_non_empty_destination = true;
  EXPECT_THAT(Migrate(*from, *to, options),
              StatusIs(StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("\"b\""), HasSubstr("nothing was written"))));
  EXPECT_EQ(*to->CurrentRevision(), before);
  EXPECT_EQ(to->Get("b")->value, "theirs");
}

TEST_F(MigrateTest, AKeyWrittenToTheDestinationDuringTheCopyIsNeverOverwritten) {
  ASSERT_OK_AND_ASSIGN(Store * from, NewStore("memory"));
  ASSERT_OK_AND_ASSIGN(Store * to, NewStore("sqlite"));
  ASSERT_OK(Fill(*from, {{"a", "1"}, {"b", "2"}, {"c", "3"}}));
  // Another writer creates "b" just before the first copy transaction commits.
  TamperingStore racing(to, [to](TxnRequest&) { ASSERT_OK(to->Put("b", "theirs")); });
  StatusOr<MigrateReport> report = Migrate(*from, racing);
  EXPECT_THAT(report, StatusIs(StatusCode::kFailedPrecondition,
                               AllOf(HasSubstr("\"b\" appeared"), HasSubstr("never overwrites"))));
  EXPECT_EQ(to->Get("b")->value, "theirs");
  EXPECT_THAT(to->Get("a"), StatusIs(StatusCode::kNotFound));
}

TEST_F(MigrateTest, RefusesAValueTooLargeForTheDestinationBeforeWritingAnything) {
  ASSERT_OK_AND_ASSIGN(Store * from, NewStore("memory"));
  ASSERT_OK_AND_ASSIGN(Store * to, NewStore("sqlite", "max_value_bytes=1000"));
  Content content = BinaryContent(40);
  content["\x01huge"] = AllBytes(1500, 3);  // in the middle, after keys that would fit
  ASSERT_OK(Fill(*from, content));
  MigrateOptions options;
  options.page_size = 8;
  options.max_keys_per_txn = 5;
  EXPECT_THAT(
      Migrate(*from, *to, options),
      StatusIs(StatusCode::kResourceExhausted,
               AllOf(HasSubstr("\"\\x01huge\""), HasSubstr("1500-byte value"),
                     HasSubstr("max_value_bytes is 1000"), HasSubstr("nothing was written"))));
  EXPECT_EQ(*to->CurrentRevision(), 0);
  EXPECT_EQ(to->Count(KeySpan::All())->count, 0);
}

TEST_F(MigrateTest, RefusesKeysTooLongForTheDestinationCountingThem) {
  ASSERT_OK_AND_ASSIGN(Store * from, NewStore("memory"));
  ASSERT_OK_AND_ASSIGN(Store * to, NewStore("sqlite", "max_key_bytes=8"));
  ASSERT_OK(Fill(*from, {{"short", "1"}, {"long-key-1", "2"}, {"long-key-2", "3"}}));
  EXPECT_THAT(Migrate(*from, *to),
              StatusIs(StatusCode::kResourceExhausted,
                       AllOf(HasSubstr("2 source keys do not fit"), HasSubstr("\"long-key-1\""),
                             HasSubstr("max_key_bytes is 8"))));
  EXPECT_EQ(*to->CurrentRevision(), 0);
}

TEST_F(MigrateTest, RejectsBadOptionsAndTheSameStoreTwice) {
  ASSERT_OK_AND_ASSIGN(Store * store, NewStore("memory"));
  ASSERT_OK_AND_ASSIGN(Store * other, NewStore("memory"));
  EXPECT_THAT(Migrate(*store, *store), StatusIs(StatusCode::kInvalidArgument, HasSubstr("same")));
  MigrateOptions options;
  options.page_size = 0;
  EXPECT_THAT(Migrate(*store, *other, options),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("page_size")));
}

// ---- verification -----------------------------------------------------------------------------

TEST_F(MigrateTest, VerificationDetectsADroppedWrite) {
  ASSERT_OK_AND_ASSIGN(Store * from, NewStore("memory"));
  ASSERT_OK_AND_ASSIGN(Store * to, NewStore("sqlite"));
  ASSERT_OK(Fill(*from, BinaryContent(20)));
  TamperingStore dropping(to, [](TxnRequest& txn) {
    txn.ops.pop_back();
    txn.conditions.pop_back();
  });
  EXPECT_THAT(
      Migrate(*from, dropping),
      StatusIs(StatusCode::kDataLoss, AllOf(HasSubstr("source snapshot (revision 1) holds 20 keys"),
                                            HasSubstr("holds 19 keys"), HasSubstr("SHA-256"))));
}

TEST_F(MigrateTest, VerificationDetectsAnAlteredValue) {
  ASSERT_OK_AND_ASSIGN(Store * from, NewStore("memory"));
  ASSERT_OK_AND_ASSIGN(Store * to, NewStore("sqlite"));
  const Content content = BinaryContent(20);
  ASSERT_OK(Fill(*from, content));
  TamperingStore altering(to, [](TxnRequest& txn) { txn.ops[3].value += "!"; });
  StatusOr<MigrateReport> report = Migrate(*from, altering);
  EXPECT_THAT(
      report,
      StatusIs(StatusCode::kDataLoss,
               AllOf(HasSubstr("holds 20 keys with content SHA-256 " + ExpectedSha256(content)),
                     HasSubstr("destination (revision 1) holds 20 keys"))));
}

TEST_F(MigrateTest, VerificationOfANonEmptyDestinationDetectsADroppedWrite) {
  ASSERT_OK_AND_ASSIGN(Store * from, NewStore("memory"));
  ASSERT_OK_AND_ASSIGN(Store * to, NewStore("sqlite"));
  ASSERT_OK(Fill(*from, BinaryContent(20)));
  ASSERT_OK(Fill(*to, {{"zzz", "theirs"}}));
  TamperingStore dropping(to, [](TxnRequest& txn) {
    txn.ops.erase(txn.ops.begin());
    txn.conditions.erase(txn.conditions.begin());
  });
  MigrateOptions options;
  options.allow_non_empty_destination = true;
  EXPECT_THAT(Migrate(*from, dropping, options),
              StatusIs(StatusCode::kDataLoss, HasSubstr("holds 19 keys of the source's")));
}

// ---- the snapshot, progress, errors -----------------------------------------------------------

TEST_F(MigrateTest, CopiesTheSnapshotNotLaterWrites) {
  ASSERT_OK_AND_ASSIGN(Store * from, NewStore("sqlite"));
  ASSERT_OK_AND_ASSIGN(Store * to, NewStore("memory"));
  ASSERT_OK(Fill(*from, BinaryContent(30)));
  // A second handle on the source writes once the snapshot is open.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> writer, OpenStore(urls_[0]));
  MigrateOptions options;
  options.page_size = 4;
  bool wrote = false;
  options.progress = [&](const MigrateProgress& p) {
    if (wrote || p.phase != MigrateProgress::Phase::kCopying) return;
    wrote = true;
    EXPECT_THAT(writer->Put("late", "write"), IsOk());
    EXPECT_THAT(writer->Delete(BinaryContent(30).begin()->first), IsOk());
  };
  ASSERT_OK_AND_ASSIGN(MigrateReport report, Migrate(*from, *to, options));
  EXPECT_TRUE(wrote);
  EXPECT_EQ(report.source_revision, 1);
  EXPECT_EQ(report.keys, 30);
  ASSERT_OK_AND_ASSIGN(Content copied, ReadContent(*to));
  EXPECT_TRUE(copied == BinaryContent(30));
}

TEST_F(MigrateTest, ReportsProgressWithMonotonicCountsPhaseByPhase) {
  ASSERT_OK_AND_ASSIGN(Store * from, NewStore("memory"));
  ASSERT_OK_AND_ASSIGN(Store * to, NewStore("sqlite", "max_ops=9"));
  const Content content = BinaryContent(100);
  ASSERT_OK(Fill(*from, content));
  std::vector<MigrateProgress> calls;
  MigrateOptions options;
  options.page_size = 16;
  options.progress = [&](const MigrateProgress& p) { calls.push_back(p); };
  ASSERT_OK_AND_ASSIGN(MigrateReport report, Migrate(*from, *to, options));

  ASSERT_FALSE(calls.empty());
  using Phase = MigrateProgress::Phase;
  std::map<Phase, int> per_phase;
  for (size_t i = 0; i < calls.size(); ++i) {
    const MigrateProgress& p = calls[i];
    ++per_phase[p.phase];
    EXPECT_EQ(p.total_keys, 100);
    EXPECT_LE(p.keys, 100);
    if (i == 0) continue;
    const MigrateProgress& q = calls[i - 1];
    ASSERT_GE(static_cast<int>(p.phase), static_cast<int>(q.phase)) << "call " << i;
    EXPECT_GE(p.transactions, q.transactions);
    if (p.phase == q.phase) {
      EXPECT_GE(p.keys, q.keys) << "call " << i;
      EXPECT_GE(p.bytes, q.bytes) << "call " << i;
    }
  }
  EXPECT_EQ(calls.front().phase, Phase::kValidating);
  EXPECT_EQ(calls.front().keys, 0);
  EXPECT_GE(per_phase[Phase::kValidating], 8);    // the start and each of seven pages
  EXPECT_EQ(per_phase[Phase::kCopying], 1 + 12);  // the start and ceil(100 / 9) commits
  EXPECT_GE(per_phase[Phase::kVerifying], 8);
  for (const MigrateProgress& p : calls) {
    if (p.phase != Phase::kValidating) {
      EXPECT_EQ(p.total_bytes, ContentBytes(content));
    }
  }
  const MigrateProgress* last_copy = nullptr;
  for (const MigrateProgress& p : calls) {
    if (p.phase == Phase::kCopying) last_copy = &p;
  }
  ASSERT_NE(last_copy, nullptr);
  EXPECT_EQ(last_copy->keys, 100);
  EXPECT_EQ(last_copy->bytes, ContentBytes(content));
  EXPECT_EQ(last_copy->transactions, report.transactions);
  EXPECT_EQ(calls.back().phase, Phase::kVerifying);
  EXPECT_EQ(calls.back().keys, 100);
}

TEST_F(MigrateTest, AnEmptySourceCopiesNothingAndHashesEmpty) {
  ASSERT_OK_AND_ASSIGN(Store * from, NewStore("memory"));
  ASSERT_OK_AND_ASSIGN(Store * to, NewStore("sqlite"));
  ASSERT_OK_AND_ASSIGN(MigrateReport report, Migrate(*from, *to));
  EXPECT_EQ(report.keys, 0);
  EXPECT_EQ(report.transactions, 0);
  EXPECT_EQ(report.content_sha256,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_F(MigrateTest, KeepsTheCodeOfAnUnreachableStoreWithContext) {
  ASSERT_OK_AND_ASSIGN(Store * from, NewStore("memory"));
  ASSERT_OK_AND_ASSIGN(Store * to, NewStore("sqlite"));
  ASSERT_OK(Fill(*from, BinaryContent(10)));
  FaultInjectionStore faulty_from(from);
  faulty_from.FailNext(FaultInjectionStore::Operation::kOpenSnapshot,
                       UnavailableError("connection refused"));
  EXPECT_THAT(Migrate(faulty_from, *to),
              StatusIs(StatusCode::kUnavailable,
                       AllOf(HasSubstr("snapshot of the source"), HasSubstr("refused"))));

  FaultInjectionStore faulty_to(to);
  faulty_to.FailNext(FaultInjectionStore::Operation::kCommit, UnavailableError("gone"));
  EXPECT_THAT(Migrate(*from, faulty_to),
              StatusIs(StatusCode::kUnavailable,
                       AllOf(HasSubstr("writing 10 keys"), HasSubstr("0 keys in 0 transactions"),
                             HasSubstr("gone"))));
}

TEST(ContentHasherTest, HashesLengthPrefixedPairs) {
  ContentHasher hasher;
  hasher.Add("a", "b");
  hasher.Add(std::string("\x00\xff", 2), "");
  // sha256(u64be(1) "a" u64be(1) "b" u64be(2) "\x00\xff" u64be(0)).
  EXPECT_EQ(hasher.HexDigest(), "1950525dd68fe32f3290d1651552d6f6062b15d5ad267a0e5eb3a6b280dd15c4");
}

}  // namespace
}  // namespace plinth::store
