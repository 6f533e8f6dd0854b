// Conformance: single-key reads and writes, byte-exact keys and values, revisions per key,
// Range, Count, snapshots and declared limits.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/status_matchers.h"
#include "store/conformance/backends.h"

namespace plinth::store::conformance {
namespace {

using namespace std::string_literals;  // NOLINT(build/namespaces): "\0"s keeps embedded NULs
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Values above this are not built in memory; limits above it are tested just below it.
constexpr size_t kAffordableBytes = size_t{64} << 20;

// Puts every key of `keys` (value = "v:" + key) in one transaction per key; returns them sorted
// in byte order.
std::vector<std::string> PutAll(Store& store, std::vector<std::string> keys) {
  for (const std::string& k : keys) EXPECT_OK(store.Put(k, "v:" + k));
  std::sort(keys.begin(), keys.end(),
            [](const std::string& a, const std::string& b) { return CompareKeys(a, b) < 0; });
  return keys;
}

// The keys of `all` that `span` contains, in order.
std::vector<std::string> Within(const std::vector<std::string>& all, const KeySpan& span) {
  std::vector<std::string> out;
  for (const std::string& k : all) {
    if (span.Contains(k)) out.push_back(k);
  }
  return out;
}

// Reads `span` page by page with `limit`, checking each page's shape; returns every key seen.
std::vector<std::string> WalkPages(Store& store, const KeySpan& span, size_t limit,
                                   size_t expected_total) {
  std::vector<std::string> seen;
  RangeOptions options;
  options.limit = limit;
  for (size_t page = 0; page <= expected_total + 1; ++page) {
    StatusOr<RangeResult> result = store.Range(span, options);
    EXPECT_OK(result);
    if (!result.ok()) break;
    const size_t remaining = expected_total - std::min(expected_total, seen.size());
    EXPECT_EQ(result->kvs.size(), std::min(limit, remaining))
        << "page " << page << " with limit " << limit;
    EXPECT_EQ(result->more, remaining > limit) << "page " << page << " with limit " << limit;
    for (const KeyValue& kv : result->kvs) {
      EXPECT_EQ(kv.value, "v:" + kv.key);
      seen.push_back(kv.key);
    }
    if (!result->more || result->kvs.empty()) break;
    options.after = result->kvs.back().key;
  }
  return seen;
}

TEST_P(StoreConformanceTest, NewStoreIsEmptyAtRevisionZero) {
  ASSERT_OK_AND_ASSIGN(Revision current, store().CurrentRevision());
  EXPECT_EQ(current, 0);
  ASSERT_OK_AND_ASSIGN(Revision compacted, store().CompactedRevision());
  EXPECT_EQ(compacted, 0);
  ASSERT_OK_AND_ASSIGN(RangeResult all, ReadAll(store()));
  EXPECT_THAT(all.kvs, IsEmpty());
  EXPECT_FALSE(all.more);
  EXPECT_EQ(all.revision, 0);
  ASSERT_OK_AND_ASSIGN(CountResult count, store().Count(KeySpan::All()));
  EXPECT_EQ(count.count, 0);
  EXPECT_EQ(count.revision, 0);
  ASSERT_OK_AND_ASSIGN(auto snapshot, store().OpenSnapshot());
  EXPECT_EQ(snapshot->revision(), 0);
}

TEST_P(StoreConformanceTest, BackendNameIsItsUrlScheme) {
  EXPECT_EQ(store().backend(), url().substr(0, url().find("://")));
}

TEST_P(StoreConformanceTest, GetOfMissingKeyIsNotFound) {
  EXPECT_THAT(store().Get("missing"), StatusIs(StatusCode::kNotFound));
  ASSERT_OK(store().Put("a", "1"));
  ASSERT_OK(store().Put("a\0b"s, "2"));
  EXPECT_THAT(store().Get("a\0"s), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(store().Get("b"), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(store().Get("A"), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(store().Get("a "), StatusIs(StatusCode::kNotFound));
}

TEST_P(StoreConformanceTest, FirstWriteGetsRevisionOne) {
  ASSERT_OK_AND_ASSIGN(Revision rev, store().Put("k", "v"));
  EXPECT_EQ(rev, 1);
  ASSERT_OK_AND_ASSIGN(KeyValue kv, store().Get("k"));
  EXPECT_EQ(kv, (KeyValue{"k", "v", 1, 1}));
  ASSERT_OK_AND_ASSIGN(Revision current, store().CurrentRevision());
  EXPECT_EQ(current, 1);
}

TEST_P(StoreConformanceTest, KeysAndValuesRoundTripByteExact) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"\0"s, "\0"s},
      {"\0\0"s, "\xff"s},
      {"\x01"s, "\x01\x02"s},
      {"a", "plain"},
      {"a ", "key with a trailing space "},
      {"A", "upper case"},
      {"a\0"s, "\0\0\0"s},
      {"a\0b"s, "\xff\0\xff"s},
      {"\x7f"s, "\x7f"s},
      {"\x80"s, "\x80"s},
      {"\xc3\x28"s, "invalid UTF-8 \xc3\x28 \xed\xa0\x80"s},
      {"k'\";--%_\\\r\n\t"s, "' OR 1=1; -- %s \\0 \r\n"s},
      {"\xff"s, PatternBytes(1000, 7)},
      {"\xff\0"s, "\xff\xff\xff"s},
      {"\xff\xff"s, PatternBytes(256)},
  };
  Revision rev = 0;
  std::map<std::string, std::string> expected;
  for (const auto& [key, value] : cases) {
    ASSERT_OK_AND_ASSIGN(rev, store().Put(key, value));
    expected[key] = value;
  }
  for (const auto& [key, value] : cases) {
    ASSERT_OK_AND_ASSIGN(KeyValue kv, store().Get(key));
    EXPECT_EQ(kv.key, key) << PrintableKey(key);
    EXPECT_EQ(kv.value, value) << PrintableKey(key);
    EXPECT_EQ(kv.value.size(), value.size()) << PrintableKey(key);
  }
  // std::map orders std::string as unsigned bytes, the store's order.
  std::vector<KeyValue> want;
  for (const auto& [key, value] : expected) {
    ASSERT_OK_AND_ASSIGN(KeyValue kv, store().Get(key));
    want.push_back(KeyValue{key, value, kv.create_revision, kv.mod_revision});
  }
  ASSERT_OK_AND_ASSIGN(RangeResult all, ReadAll(store()));
  EXPECT_THAT(all.kvs, ElementsAreArray(want));
  EXPECT_EQ(all.revision, rev);
  ASSERT_OK_AND_ASSIGN(CountResult count, store().Count(KeySpan::All()));
  EXPECT_EQ(count.count, static_cast<int64_t>(cases.size()));
}

TEST_P(StoreConformanceTest, EmptyValueIsStoredAndDistinctFromAbsence) {
  ASSERT_OK_AND_ASSIGN(Revision rev, store().Put("empty", ""));
  ASSERT_OK_AND_ASSIGN(KeyValue kv, store().Get("empty"));
  EXPECT_EQ(kv, (KeyValue{"empty", "", rev, rev}));
  ASSERT_OK_AND_ASSIGN(CountResult count, store().Count(KeySpan::Prefix("empty")));
  EXPECT_EQ(count.count, 1);
  ASSERT_OK_AND_ASSIGN(RangeResult all, ReadAll(store()));
  EXPECT_THAT(all.kvs, ElementsAre(KeyValue{"empty", "", rev, rev}));
  // Overwriting a value with the empty value is a change, too.
  ASSERT_OK(store().Put("full", "x"));
  ASSERT_OK_AND_ASSIGN(Revision emptied, store().Put("full", ""));
  ASSERT_OK_AND_ASSIGN(kv, store().Get("full"));
  EXPECT_EQ(kv.value, "");
  EXPECT_EQ(kv.mod_revision, emptied);
}

TEST_P(StoreConformanceTest, LargestKeyAndValueRoundTrip) {
  const Limits limits = store().limits();
  ASSERT_GT(limits.max_key_bytes, 0u);
  const std::string key = PatternBytes(limits.max_key_bytes, 1);
  size_t value_size = std::min(limits.max_value_bytes, kAffordableBytes);
  if (limits.max_txn_bytes != 0) {
    value_size = std::min(value_size, limits.max_txn_bytes - key.size());
  }
  const std::string value = PatternBytes(value_size, 3);
  ASSERT_OK_AND_ASSIGN(Revision rev, store().Put(key, value));
  ASSERT_OK_AND_ASSIGN(KeyValue kv, store().Get(key));
  EXPECT_EQ(kv.key, key);
  EXPECT_EQ(kv.value.size(), value.size());
  EXPECT_TRUE(kv.value == value) << "the " << value.size() << "-byte value came back different";
  EXPECT_EQ(kv.mod_revision, rev);
  RangeOptions keys_only;
  keys_only.keys_only = true;
  ASSERT_OK_AND_ASSIGN(RangeResult r, store().Range(KeySpan::All(), keys_only));
  ASSERT_EQ(r.kvs.size(), 1u);
  EXPECT_EQ(r.kvs[0].key, key);
  EXPECT_EQ(r.kvs[0].value, "");
}

TEST_P(StoreConformanceTest, OverwriteKeepsCreateRevisionAndBumpsModRevision) {
  ASSERT_OK_AND_ASSIGN(Revision created, store().Put("k", "v1"));
  ASSERT_OK_AND_ASSIGN(Revision other, store().Put("other", "x"));
  ASSERT_OK_AND_ASSIGN(Revision modified, store().Put("k", "v2"));
  EXPECT_EQ(other, created + 1);
  EXPECT_EQ(modified, other + 1);
  ASSERT_OK_AND_ASSIGN(KeyValue kv, store().Get("k"));
  EXPECT_EQ(kv, (KeyValue{"k", "v2", created, modified}));
  // Writing the same value again is still a write.
  ASSERT_OK_AND_ASSIGN(Revision same, store().Put("k", "v2"));
  EXPECT_EQ(same, modified + 1);
  ASSERT_OK_AND_ASSIGN(kv, store().Get("k"));
  EXPECT_EQ(kv, (KeyValue{"k", "v2", created, same}));
}

TEST_P(StoreConformanceTest, DeleteRemovesTheKeyAtANewRevision) {
  ASSERT_OK_AND_ASSIGN(Revision put, store().Put("k", "v"));
  ASSERT_OK_AND_ASSIGN(Revision deleted, store().Delete("k"));
  EXPECT_EQ(deleted, put + 1);
  EXPECT_THAT(store().Get("k"), StatusIs(StatusCode::kNotFound));
  ASSERT_OK_AND_ASSIGN(CountResult count, store().Count(KeySpan::All()));
  EXPECT_EQ(count.count, 0);
  EXPECT_EQ(count.revision, deleted);
}

TEST_P(StoreConformanceTest, DeleteThenPutStartsANewIncarnation) {
  ASSERT_OK_AND_ASSIGN(Revision first, store().Put("k", "old"));
  ASSERT_OK(store().Put("k", "older"));
  ASSERT_OK(store().Delete("k"));
  ASSERT_OK_AND_ASSIGN(Revision again, store().Put("k", "new"));
  ASSERT_OK_AND_ASSIGN(KeyValue kv, store().Get("k"));
  EXPECT_EQ(kv, (KeyValue{"k", "new", again, again}));
  EXPECT_GT(kv.create_revision, first);
}

TEST_P(StoreConformanceTest, DeleteOfMissingKeyCreatesNoRevision) {
  ASSERT_OK_AND_ASSIGN(Revision put, store().Put("a", "1"));
  ASSERT_OK_AND_ASSIGN(Revision noop, store().Delete("missing"));
  EXPECT_EQ(noop, put);
  ASSERT_OK(store().Delete("a"));
  ASSERT_OK_AND_ASSIGN(Revision deleted, store().CurrentRevision());
  ASSERT_OK_AND_ASSIGN(Revision again, store().Delete("a"));
  EXPECT_EQ(again, deleted);
  ASSERT_OK_AND_ASSIGN(Revision current, store().CurrentRevision());
  EXPECT_EQ(current, deleted);
  ASSERT_OK_AND_ASSIGN(auto watch, store().Watch(KeySpan::All(), deleted + 1));
  ASSERT_OK_AND_ASSIGN(Revision next, store().Put("b", "2"));
  EXPECT_EQ(next, deleted + 1);
  ASSERT_OK_AND_ASSIGN(WatchBatch batch, watch->Next(kEventually));
  EXPECT_EQ(batch.revision, next);
  EXPECT_THAT(batch.events, ElementsAre(PutEvent("b", "2", next, next)));
}

TEST_P(StoreConformanceTest, TransactionThatChangesNothingCreatesNoRevision) {
  ASSERT_OK_AND_ASSIGN(Revision put, store().Put("a", "1"));
  ASSERT_OK_AND_ASSIGN(Revision empty, CommitOps(store(), {}));
  EXPECT_EQ(empty, put);
  ASSERT_OK_AND_ASSIGN(Revision guarded,
                       CommitOps(store(), {}, {Condition::ModRevisionIs("a", put)}));
  EXPECT_EQ(guarded, put);
  ASSERT_OK_AND_ASSIGN(Revision deletes,
                       CommitOps(store(), {Op::Delete("x"), Op::Delete("y"),
                                           Op::DeleteRange(KeySpan::Prefix("nothing/"))}));
  EXPECT_EQ(deletes, put);
  ASSERT_OK_AND_ASSIGN(Revision current, store().CurrentRevision());
  EXPECT_EQ(current, put);
  ASSERT_OK_AND_ASSIGN(Revision next, store().Put("b", "2"));
  EXPECT_EQ(next, put + 1);
}

TEST_P(StoreConformanceTest, EmptyKeyIsInvalidArgument) {
  EXPECT_THAT(store().Put("", "v"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(store().Delete(""), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(store().Get(""), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(CommitOps(store(), {Op::Put("ok", "v"), Op::Put("", "v")}),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(CommitOps(store(), {Op::Put("ok", "v")}, {Condition::Absent("")}),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(CommitOps(store(), {Op::Put("ok", "v")}, {Condition::ModRevisionIs("", 1)}),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(store().Get("ok"), StatusIs(StatusCode::kNotFound));
  ASSERT_OK_AND_ASSIGN(Revision current, store().CurrentRevision());
  EXPECT_EQ(current, 0);
}

TEST_P(StoreConformanceTest, InvertedSpanInATransactionIsInvalidArgument) {
  ASSERT_OK(store().Put("b", "1"));
  const KeySpan inverted = KeySpan::Between("c", "a");
  EXPECT_THAT(CommitOps(store(), {Op::Put("x", "1"), Op::DeleteRange(inverted)}),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(CommitOps(store(), {Op::Put("x", "1")}, {Condition::UnchangedSince(inverted, 1)}),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(store().Get("x"), StatusIs(StatusCode::kNotFound));
  EXPECT_OK(store().Get("b"));
}

TEST_P(StoreConformanceTest, InvertedSpanInAReadIsInvalidArgument) {
  ASSERT_OK(store().Put("b", "1"));
  const KeySpan inverted = KeySpan::Between("c", "a");
  EXPECT_THAT(store().Range(inverted, {}), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(store().Count(inverted), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(store().Watch(inverted, 0), StatusIs(StatusCode::kInvalidArgument));
}

TEST_P(StoreConformanceTest, RangeOverPrefixReturnsExactlyThePrefixInByteOrder) {
  const std::vector<std::string> all =
      PutAll(store(), {"p", "p/", "p/a", "p/b", "p/\xff"s, "p/\0"s, "p/\x80\0"s, "p0", "o\xff"s,
                       "q", "P/a", "p.", "p/a/deeper"});
  for (std::string prefix : {"p/"s, "p"s, "p/a"s, "o"s, "zzz"s}) {
    ASSERT_OK_AND_ASSIGN(RangeResult r, store().Range(KeySpan::Prefix(prefix), {}));
    EXPECT_THAT(KeysOf(r.kvs), ElementsAreArray(Within(all, KeySpan::Prefix(prefix))))
        << "prefix " << PrintableKey(prefix);
    EXPECT_FALSE(r.more);
    for (const KeyValue& kv : r.kvs) EXPECT_EQ(kv.value, "v:" + kv.key);
  }
  ASSERT_OK_AND_ASSIGN(RangeResult slash, store().Range(KeySpan::Prefix("p/"), {}));
  EXPECT_THAT(KeysOf(slash.kvs),
              ElementsAre("p/", "p/\0"s, "p/a", "p/a/deeper", "p/b", "p/\x80\0"s, "p/\xff"s));
}

TEST_P(StoreConformanceTest, RangeBetweenIsHalfOpen) {
  const std::vector<std::string> all =
      PutAll(store(), {"a", "b", "b\0"s, "c", "c\xff"s, "d", "d\0"s, "e"});
  ASSERT_OK_AND_ASSIGN(RangeResult r, store().Range(KeySpan::Between("b", "d"), {}));
  EXPECT_THAT(KeysOf(r.kvs), ElementsAre("b", "b\0"s, "c", "c\xff"s));
  ASSERT_OK_AND_ASSIGN(r, store().Range(KeySpan::Between("b\0"s, "d\0"s), {}));
  EXPECT_THAT(KeysOf(r.kvs), ElementsAre("b\0"s, "c", "c\xff"s, "d"));
  ASSERT_OK_AND_ASSIGN(r, store().Range(KeySpan::Between("c", ""), {}));
  EXPECT_THAT(KeysOf(r.kvs), ElementsAre("c", "c\xff"s, "d", "d\0"s, "e"));
  ASSERT_OK_AND_ASSIGN(r, store().Range(KeySpan::Key("d"), {}));
  EXPECT_THAT(KeysOf(r.kvs), ElementsAre("d"));
  ASSERT_OK_AND_ASSIGN(r, store().Range(KeySpan::Between("", "b\0"s), {}));
  EXPECT_THAT(KeysOf(r.kvs), ElementsAre("a", "b"));
}

TEST_P(StoreConformanceTest, RangeOverAllFfPrefixIsUnboundedAbove) {
  const std::vector<std::string> all =
      PutAll(store(), {"\xfe"s, "\xfe\xff"s, "\xff"s, "\xff\0"s, "\xff\xfe\xff"s, "\xff\xff"s,
                       "\xff\xff\0"s, "\xff\xff\x01"s, "\xff\xff\xff"s, "\xff\xff\xff\xff"s});
  ASSERT_OK_AND_ASSIGN(RangeResult r, store().Range(KeySpan::Prefix("\xff\xff"s), {}));
  EXPECT_THAT(KeysOf(r.kvs), ElementsAre("\xff\xff"s, "\xff\xff\0"s, "\xff\xff\x01"s,
                                         "\xff\xff\xff"s, "\xff\xff\xff\xff"s));
  ASSERT_OK_AND_ASSIGN(r, store().Range(KeySpan::Prefix("\xff"s), {}));
  EXPECT_THAT(KeysOf(r.kvs), ElementsAreArray(Within(all, KeySpan::Prefix("\xff"s))));
  EXPECT_EQ(r.kvs.size(), 8u);
  ASSERT_OK_AND_ASSIGN(CountResult c, store().Count(KeySpan::Prefix("\xff\xff\xff"s)));
  EXPECT_EQ(c.count, 2);
  ASSERT_OK_AND_ASSIGN(r, store().Range(KeySpan::Prefix("\xfe"s), {}));
  EXPECT_THAT(KeysOf(r.kvs), ElementsAre("\xfe"s, "\xfe\xff"s));
}

TEST_P(StoreConformanceTest, EmptyPrefixCoversEveryKey) {
  const std::vector<std::string> all =
      PutAll(store(), {"\0"s, "\0\0"s, "a", "m/n", "\x7f"s, "\x80"s, "\xff"s, "\xff\xff\xff"s});
  ASSERT_OK_AND_ASSIGN(RangeResult by_prefix, store().Range(KeySpan::Prefix(""), {}));
  EXPECT_THAT(KeysOf(by_prefix.kvs), ElementsAreArray(all));
  ASSERT_OK_AND_ASSIGN(RangeResult by_all, store().Range(KeySpan::All(), {}));
  EXPECT_THAT(KeysOf(by_all.kvs), ElementsAreArray(all));
  ASSERT_OK_AND_ASSIGN(CountResult count, store().Count(KeySpan::Prefix("")));
  EXPECT_EQ(count.count, static_cast<int64_t>(all.size()));
}

TEST_P(StoreConformanceTest, RangeWithNoMatchesIsEmptyAtTheCurrentRevision) {
  PutAll(store(), {"a", "c"});
  ASSERT_OK_AND_ASSIGN(Revision current, store().CurrentRevision());
  for (const KeySpan& span :
       {KeySpan::Prefix("b"), KeySpan::Between("a\0"s, "c"), KeySpan::Between("b", "b"),
        KeySpan::Prefix("d"), KeySpan::Key("c\0"s)}) {
    ASSERT_OK_AND_ASSIGN(RangeResult r, store().Range(span, {}));
    EXPECT_THAT(r.kvs, IsEmpty()) << PrintableKey(span.start) << ".." << PrintableKey(span.end);
    EXPECT_FALSE(r.more);
    EXPECT_EQ(r.revision, current);
    ASSERT_OK_AND_ASSIGN(CountResult c, store().Count(span));
    EXPECT_EQ(c.count, 0);
    EXPECT_EQ(c.revision, current);
  }
}

TEST_P(StoreConformanceTest, RangeLimitReportsMoreAndContinuationVisitsEveryKeyOnce) {
  std::vector<std::string> keys;
  for (int i = 0; i < 37; ++i) {
    std::string k = "page/";
    k.push_back(static_cast<char>(i * 7));  // 0x00 .. 0xfc, not in insertion order
    if (i % 3 == 0) k.push_back('\0');
    if (i % 5 == 0) k += "\xff\xff"s;
    keys.push_back(k);
  }
  keys.push_back("page0");  // just outside the prefix
  keys.push_back("pagd");
  const std::vector<std::string> all = PutAll(store(), keys);
  const std::vector<std::string> in_prefix = Within(all, KeySpan::Prefix("page/"));
  ASSERT_EQ(in_prefix.size(), 37u);
  for (size_t limit : {1, 2, 3, 5, 36, 37, 38, 1000}) {
    EXPECT_THAT(WalkPages(store(), KeySpan::Prefix("page/"), limit, in_prefix.size()),
                ElementsAreArray(in_prefix))
        << "limit " << limit;
  }
  EXPECT_THAT(WalkPages(store(), KeySpan::All(), 4, all.size()), ElementsAreArray(all));
}

TEST_P(StoreConformanceTest, RangeAfterReturnsOnlyLaterKeys) {
  PutAll(store(), {"p/a", "p/b", "p/b\0"s, "p/c", "p/d"});
  RangeOptions options;
  options.after = "p/b";
  ASSERT_OK_AND_ASSIGN(RangeResult r, store().Range(KeySpan::Prefix("p/"), options));
  EXPECT_THAT(KeysOf(r.kvs), ElementsAre("p/b\0"s, "p/c", "p/d"));
  options.after = "p/bb";  // not a key
  ASSERT_OK_AND_ASSIGN(r, store().Range(KeySpan::Prefix("p/"), options));
  EXPECT_THAT(KeysOf(r.kvs), ElementsAre("p/c", "p/d"));
  options.after = "a";  // before the span
  ASSERT_OK_AND_ASSIGN(r, store().Range(KeySpan::Prefix("p/"), options));
  EXPECT_THAT(KeysOf(r.kvs), ElementsAre("p/a", "p/b", "p/b\0"s, "p/c", "p/d"));
  options.after = "p/d";
  ASSERT_OK_AND_ASSIGN(r, store().Range(KeySpan::Prefix("p/"), options));
  EXPECT_THAT(r.kvs, IsEmpty());
  EXPECT_FALSE(r.more);
  options.after = "q";  // beyond the span
  ASSERT_OK_AND_ASSIGN(r, store().Range(KeySpan::Prefix("p/"), options));
  EXPECT_THAT(r.kvs, IsEmpty());
  options.after = "p/a";
  options.limit = 2;
  ASSERT_OK_AND_ASSIGN(r, store().Range(KeySpan::Prefix("p/"), options));
  EXPECT_THAT(KeysOf(r.kvs), ElementsAre("p/b", "p/b\0"s));
  EXPECT_TRUE(r.more);
}

TEST_P(StoreConformanceTest, KeysOnlyRangeOmitsValuesButKeepsRevisions) {
  ASSERT_OK_AND_ASSIGN(Revision r1, store().Put("k/1", "one"));
  ASSERT_OK_AND_ASSIGN(Revision r2, store().Put("k/2", "two"));
  ASSERT_OK_AND_ASSIGN(Revision r3, store().Put("k/1", "uno"));
  RangeOptions options;
  options.keys_only = true;
  ASSERT_OK_AND_ASSIGN(RangeResult r, store().Range(KeySpan::Prefix("k/"), options));
  EXPECT_THAT(r.kvs, ElementsAre(KeyValue{"k/1", "", r1, r3}, KeyValue{"k/2", "", r2, r2}));
  EXPECT_EQ(r.revision, r3);
  options.limit = 1;
  ASSERT_OK_AND_ASSIGN(r, store().Range(KeySpan::Prefix("k/"), options));
  EXPECT_THAT(r.kvs, ElementsAre(KeyValue{"k/1", "", r1, r3}));
  EXPECT_TRUE(r.more);
}

TEST_P(StoreConformanceTest, ReadsReturnTheRevisionTheyWereReadAt) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_OK_AND_ASSIGN(Revision rev, store().Put("k" + std::to_string(i), "v"));
    ASSERT_OK_AND_ASSIGN(RangeResult r, store().Range(KeySpan::Prefix("k"), {}));
    EXPECT_EQ(r.revision, rev);
    EXPECT_EQ(r.kvs.size(), static_cast<size_t>(i + 1));
    ASSERT_OK_AND_ASSIGN(RangeResult other, store().Range(KeySpan::Prefix("unrelated"), {}));
    EXPECT_EQ(other.revision, rev);
    ASSERT_OK_AND_ASSIGN(CountResult c, store().Count(KeySpan::Prefix("k")));
    EXPECT_EQ(c.revision, rev);
    EXPECT_EQ(c.count, i + 1);
    ASSERT_OK_AND_ASSIGN(auto snapshot, store().OpenSnapshot());
    EXPECT_EQ(snapshot->revision(), rev);
  }
  ASSERT_OK_AND_ASSIGN(Revision deleted, store().Delete("k0"));
  ASSERT_OK_AND_ASSIGN(RangeResult r, store().Range(KeySpan::Prefix("k"), {}));
  EXPECT_EQ(r.revision, deleted);
  EXPECT_EQ(r.kvs.size(), 4u);
}

TEST_P(StoreConformanceTest, CountMatchesRangeOverEverySpan) {
  const std::vector<std::string> all =
      PutAll(store(), {"a", "a/1", "a/2", "a/2/x", "b", "b\0"s, "\xff"s, "\xff\xff"s});
  ASSERT_OK(store().Delete("a/1"));
  const std::vector<KeySpan> spans = {
      KeySpan::All(),           KeySpan::Prefix("a"),           KeySpan::Prefix("a/"),
      KeySpan::Prefix("a/1"),   KeySpan::Between("a/", "b\0"s), KeySpan::Key("b"),
      KeySpan::Prefix("\xff"s), KeySpan::Between("c", "d")};
  for (const KeySpan& span : spans) {
    ASSERT_OK_AND_ASSIGN(RangeResult r, store().Range(span, {}));
    ASSERT_OK_AND_ASSIGN(CountResult c, store().Count(span));
    EXPECT_EQ(c.count, static_cast<int64_t>(r.kvs.size()))
        << PrintableKey(span.start) << ".." << PrintableKey(span.end);
    EXPECT_EQ(c.revision, r.revision);
  }
  ASSERT_OK_AND_ASSIGN(CountResult c, store().Count(KeySpan::Prefix("a/")));
  EXPECT_EQ(c.count, 2);
  ASSERT_OK_AND_ASSIGN(c, store().Count(KeySpan::All()));
  EXPECT_EQ(c.count, static_cast<int64_t>(all.size()) - 1);
}

TEST_P(StoreConformanceTest, SnapshotKeepsSeeingItsRevisionAfterLaterWrites) {
  ASSERT_OK_AND_ASSIGN(Revision ra, store().Put("s/a", "a1"));
  ASSERT_OK_AND_ASSIGN(Revision rb, store().Put("s/b", "b1"));
  ASSERT_OK_AND_ASSIGN(Revision rc, store().Put("s/c", "c1"));
  ASSERT_OK(store().Put("t/1", "x"));
  ASSERT_OK_AND_ASSIGN(auto snapshot, store().OpenSnapshot());
  const Revision at = snapshot->revision();
  ASSERT_OK_AND_ASSIGN(Revision current, store().CurrentRevision());
  EXPECT_EQ(at, current);

  ASSERT_OK(store().Put("s/a", "a2"));
  ASSERT_OK(store().Delete("s/b"));
  ASSERT_OK(store().Put("s/d", "d1"));
  ASSERT_OK(store().Put("s/\0"s, "new first"));
  ASSERT_OK(CommitOps(store(), {Op::DeleteRange(KeySpan::Prefix("t/"))}));

  EXPECT_EQ(snapshot->revision(), at);
  ASSERT_OK_AND_ASSIGN(KeyValue a, snapshot->Get("s/a"));
  EXPECT_EQ(a, (KeyValue{"s/a", "a1", ra, ra}));
  ASSERT_OK_AND_ASSIGN(KeyValue b, snapshot->Get("s/b"));
  EXPECT_EQ(b, (KeyValue{"s/b", "b1", rb, rb}));
  EXPECT_THAT(snapshot->Get("s/d"), StatusIs(StatusCode::kNotFound));
  EXPECT_OK(snapshot->Get("t/1"));
  ASSERT_OK_AND_ASSIGN(RangeResult r, snapshot->Range(KeySpan::Prefix("s/"), {}));
  EXPECT_EQ(r.revision, at);
  EXPECT_THAT(r.kvs, ElementsAre(KeyValue{"s/a", "a1", ra, ra}, KeyValue{"s/b", "b1", rb, rb},
                                 KeyValue{"s/c", "c1", rc, rc}));
  RangeOptions page;
  page.limit = 2;
  page.after = "s/a";
  ASSERT_OK_AND_ASSIGN(r, snapshot->Range(KeySpan::Prefix("s/"), page));
  EXPECT_THAT(KeysOf(r.kvs), ElementsAre("s/b", "s/c"));
  EXPECT_FALSE(r.more);
  ASSERT_OK_AND_ASSIGN(CountResult c, snapshot->Count(KeySpan::All()));
  EXPECT_EQ(c.count, 4);
  EXPECT_EQ(c.revision, at);

  // The latest state moved on.
  ASSERT_OK_AND_ASSIGN(r, ReadAll(store()));
  EXPECT_THAT(KeysOf(r.kvs), ElementsAre("s/\0"s, "s/a", "s/c", "s/d"));
  EXPECT_GT(r.revision, at);
}

TEST_P(StoreConformanceTest, SnapshotsAtDifferentRevisionsCoexist) {
  ASSERT_OK(store().Put("k", "1"));
  ASSERT_OK_AND_ASSIGN(auto first, store().OpenSnapshot());
  ASSERT_OK(store().Put("k", "2"));
  ASSERT_OK_AND_ASSIGN(auto second, store().OpenSnapshot());
  ASSERT_OK(store().Delete("k"));
  ASSERT_OK_AND_ASSIGN(auto third, store().OpenSnapshot());
  EXPECT_LT(first->revision(), second->revision());
  EXPECT_LT(second->revision(), third->revision());
  ASSERT_OK_AND_ASSIGN(KeyValue kv, first->Get("k"));
  EXPECT_EQ(kv.value, "1");
  ASSERT_OK_AND_ASSIGN(kv, second->Get("k"));
  EXPECT_EQ(kv.value, "2");
  EXPECT_THAT(third->Get("k"), StatusIs(StatusCode::kNotFound));
  ASSERT_OK_AND_ASSIGN(kv, first->Get("k"));
  EXPECT_EQ(kv.value, "1");
}

TEST_P(StoreConformanceTest, LimitsAreDeclared) {
  const Limits limits = store().limits();
  EXPECT_GT(limits.max_key_bytes, 0u);
  EXPECT_GT(limits.max_value_bytes, 0u);
  EXPECT_GT(limits.max_ops_per_txn, 0u);
  EXPECT_GT(limits.max_txn_bytes, 0u);
}

// Expects `result` to be ResourceExhausted naming `limit`, and the store to be unchanged.
void ExpectRejectedByLimit(Store& store, const StatusOr<Revision>& result, size_t limit,
                           Revision revision_before) {
  EXPECT_THAT(result, StatusIs(StatusCode::kResourceExhausted, HasSubstr(std::to_string(limit))));
  StatusOr<Revision> current = store.CurrentRevision();
  ASSERT_OK(current);
  EXPECT_EQ(*current, revision_before) << "a rejected transaction created a revision";
  StatusOr<RangeResult> all = ReadAll(store);
  ASSERT_OK(all);
  for (const KeyValue& kv : all->kvs) {
    EXPECT_LE(kv.mod_revision, revision_before) << "written by a rejected transaction";
  }
}

TEST_P(StoreConformanceTest, OversizedKeyIsResourceExhaustedAndStoresNothing) {
  const Limits limits = store().limits();
  ASSERT_OK(store().Put("before", "x"));
  ASSERT_OK_AND_ASSIGN(Revision before, store().CurrentRevision());
  const std::string too_long(limits.max_key_bytes + 1, 'k');
  ExpectRejectedByLimit(store(), store().Put(too_long, "v"), limits.max_key_bytes, before);
  ExpectRejectedByLimit(store(), CommitOps(store(), {Op::Put("fine", "v"), Op::Put(too_long, "v")}),
                        limits.max_key_bytes, before);
  ExpectRejectedByLimit(store(), CommitOps(store(), {Op::Put("fine", "v"), Op::Delete(too_long)}),
                        limits.max_key_bytes, before);
  EXPECT_THAT(store().Get("fine"), StatusIs(StatusCode::kNotFound));
  EXPECT_OK(store().Put(std::string(limits.max_key_bytes, 'k'), "v"));
}

TEST_P(StoreConformanceTest, OversizedValueIsResourceExhaustedAndStoresNothing) {
  const Limits limits = store().limits();
  ASSERT_OK(store().Put("before", "x"));
  ASSERT_OK_AND_ASSIGN(Revision before, store().CurrentRevision());
  // A backend whose own limit is too large to build here is covered at a lowered limit by
  // LimitsLoweredByUrlOptionsAreEnforcedExactly.
  if (limits.max_value_bytes + 1 <= kAffordableBytes) {
    const std::string too_big(limits.max_value_bytes + 1, 'v');
    ExpectRejectedByLimit(store(), store().Put("big", too_big), limits.max_value_bytes, before);
    ExpectRejectedByLimit(store(),
                          CommitOps(store(), {Op::Put("fine", "v"), Op::Put("big", too_big)}),
                          limits.max_value_bytes, before);
  }
  ASSERT_OK_AND_ASSIGN(auto small, OpenFreshStore("max_value_bytes=10"));
  ExpectRejectedByLimit(*small, small->Put("big", std::string(11, '\0')), 10, 0);
  EXPECT_THAT(store().Get("big"), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(store().Get("fine"), StatusIs(StatusCode::kNotFound));
}

TEST_P(StoreConformanceTest, TooManyOperationsIsResourceExhaustedAndStoresNothing) {
  const Limits limits = store().limits();
  ASSERT_OK(store().Put("before", "x"));
  ASSERT_OK_AND_ASSIGN(Revision before, store().CurrentRevision());
  if (limits.max_ops_per_txn < (size_t{1} << 20)) {
    std::vector<Op> ops;
    ops.push_back(Op::Put("fine", "v"));
    for (size_t i = 0; ops.size() <= limits.max_ops_per_txn; ++i) {
      ops.push_back(Op::Delete("absent/" + std::to_string(i)));
    }
    ExpectRejectedByLimit(store(), CommitOps(store(), std::move(ops)), limits.max_ops_per_txn,
                          before);
  }
  ASSERT_OK_AND_ASSIGN(auto small, OpenFreshStore("max_ops=3"));
  ExpectRejectedByLimit(
      *small,
      CommitOps(*small, {Op::Put("a", "1"), Op::Put("b", "2"), Op::Delete("c"), Op::Put("d", "")}),
      3, 0);
  EXPECT_THAT(store().Get("fine"), StatusIs(StatusCode::kNotFound));
}

TEST_P(StoreConformanceTest, TooManyBytesIsResourceExhaustedAndStoresNothing) {
  const Limits limits = store().limits();
  ASSERT_OK(store().Put("before", "x"));
  ASSERT_OK_AND_ASSIGN(Revision before, store().CurrentRevision());
  // Values as large as allowed under 8-byte keys, as many as it takes to pass the byte limit,
  // when that fits in memory and in the operation limit.
  const size_t value_size = std::min(limits.max_value_bytes, limits.max_txn_bytes);
  const size_t ops_needed = limits.max_txn_bytes / (8 + value_size) + 1;
  if (ops_needed <= limits.max_ops_per_txn && limits.max_txn_bytes < kAffordableBytes) {
    std::vector<Op> ops;
    size_t bytes = 0;
    for (size_t i = 0; bytes <= limits.max_txn_bytes; ++i) {
      char key[16];
      std::snprintf(key, sizeof(key), "b%07zu", i);
      ops.push_back(Op::Put(key, std::string(value_size, 'x')));
      bytes += 8 + value_size;
    }
    ExpectRejectedByLimit(store(), CommitOps(store(), std::move(ops)), limits.max_txn_bytes,
                          before);
  }
  ASSERT_OK_AND_ASSIGN(auto small, OpenFreshStore("max_txn_bytes=100"));
  ASSERT_OK_AND_ASSIGN(Revision small_before, small->Put("before", "x"));
  ExpectRejectedByLimit(
      *small,
      CommitOps(*small, {Op::Put("k1", std::string(48, 'x')), Op::Put("k2", std::string(49, 'x'))}),
      100, small_before);
  EXPECT_THAT(small->Get("k1"), StatusIs(StatusCode::kNotFound));
}

TEST_P(StoreConformanceTest, LimitsLoweredByUrlOptionsAreEnforcedExactly) {
  ASSERT_OK_AND_ASSIGN(auto small, OpenFreshStore("max_key_bytes=16&max_value_bytes=64&max_ops=8"
                                                  "&max_txn_bytes=300"));
  const Limits limits = small->limits();
  EXPECT_EQ(limits.max_key_bytes, 16u);
  EXPECT_EQ(limits.max_value_bytes, 64u);
  EXPECT_EQ(limits.max_ops_per_txn, 8u);
  EXPECT_EQ(limits.max_txn_bytes, 300u);
  Revision rev = 0;

  ASSERT_OK_AND_ASSIGN(rev, small->Put(std::string(16, 'k'), "v"));
  ExpectRejectedByLimit(*small, small->Put(std::string(17, 'k'), "v"), 16, rev);

  ASSERT_OK_AND_ASSIGN(rev, small->Put("v", std::string(64, '\xff')));
  ExpectRejectedByLimit(*small, small->Put("v2", std::string(65, '\xff')), 64, rev);

  std::vector<Op> ops;
  for (int i = 0; i < 8; ++i) ops.push_back(Op::Put("op" + std::to_string(i), "v"));
  ASSERT_OK_AND_ASSIGN(rev, CommitOps(*small, ops));
  ops.push_back(Op::Delete("op0"));
  ExpectRejectedByLimit(*small, CommitOps(*small, ops), 8, rev);

  // Five puts of a 2-byte key and a 58-byte value: exactly 300 bytes.
  ops.clear();
  for (int i = 0; i < 5; ++i) ops.push_back(Op::Put("b" + std::to_string(i), std::string(58, 'x')));
  ASSERT_OK_AND_ASSIGN(rev, CommitOps(*small, ops));
  ops.back().value.push_back('x');
  ops.front().key = "c0";
  ExpectRejectedByLimit(*small, CommitOps(*small, ops), 300, rev);
  EXPECT_THAT(small->Get("c0"), StatusIs(StatusCode::kNotFound));
}

}  // namespace
}  // namespace plinth::store::conformance
