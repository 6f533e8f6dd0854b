// The datastore test fixture: every datastore test runs on each backend in
// DatastoreBackends() (memory, sqlite, and the server backends against their throwaway test
// servers), with a fresh store and DataStore per test.
#ifndef PLINTH_DATASTORE_TESTING_DATASTORE_FIXTURE_H_
#define PLINTH_DATASTORE_TESTING_DATASTORE_FIXTURE_H_

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "datastore/datastore.h"
#include "store/store.h"

namespace plinth::datastore::testing {

struct DatastoreBackend {
  std::string name;
  // Returns the URL of a fresh, empty store keeping its files under `dir`.
  std::function<StatusOr<std::string>(const std::string& dir)> make_url;
};
inline void PrintTo(const DatastoreBackend& b, std::ostream* os) { *os << b.name; }

// memory, sqlite, postgres, mysql, etcd.
const std::vector<DatastoreBackend>& DatastoreBackends();
std::string BackendName(const ::testing::TestParamInfo<DatastoreBackend>& info);

// Fixture: temp dir, store, and a DataStore opened on it with a FakeClock (wall time starts at
// 2026-01-01T00:00:00Z) and sequential entry IDs ("entry-000001", ...).
class DatastoreTest : public ::testing::TestWithParam<DatastoreBackend> {
 protected:
  void SetUp() override;
  void TearDown() override;

  DataStore& ds() { return *ds_; }
  store::Store& store() { return *store_; }
  FakeClock& clock() { return clock_; }
  const std::string& url() const { return url_; }
  const std::string& temp_dir() const { return temp_dir_; }

  // A second replica: another store handle on the same URL and a DataStore over it.
  struct Replica {
    std::unique_ptr<store::Store> store;
    std::unique_ptr<DataStore> ds;
  };
  StatusOr<Replica> OpenReplica();

  DataStoreOptions Options();

  FakeClock clock_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<DataStore> ds_;

 private:
  std::string temp_dir_;
  std::string url_;
  int next_id_ = 0;
};

// A store that forwards to `base` (not owned) but declares and enforces at most
// `max_ops_per_txn` operations per transaction, and counts commits, so that tests can make a
// DataStore split bulk work (prunes, cascades, DeleteBundle) into several transactions. (To
// hold a planned commit while another replica writes, use store::FaultInjectionStore.)
class OpLimitedStore final : public store::Store {
 public:
  OpLimitedStore(store::Store* base, size_t max_ops_per_txn)
      : base_(base), max_ops_(max_ops_per_txn) {}

  // Commits that reached the base store (successful or not).
  int commits() const { return commits_.load(); }

  std::string_view backend() const override { return base_->backend(); }
  store::Limits limits() const override {
    store::Limits l = base_->limits();
    l.max_ops_per_txn = max_ops_;
    return l;
  }
  StatusOr<store::KeyValue> Get(std::string_view key) override { return base_->Get(key); }
  StatusOr<store::RangeResult> Range(const store::KeySpan& span,
                                     const store::RangeOptions& options) override {
    return base_->Range(span, options);
  }
  StatusOr<store::CountResult> Count(const store::KeySpan& span) override {
    return base_->Count(span);
  }
  StatusOr<std::unique_ptr<store::Snapshot>> OpenSnapshot() override {
    return base_->OpenSnapshot();
  }
  StatusOr<store::Revision> Commit(const store::TxnRequest& txn) override {
    if (txn.ops.size() > max_ops_) {
      return ResourceExhaustedError("OpLimitedStore: transaction has " +
                                    std::to_string(txn.ops.size()) + " operations; the limit is " +
                                    std::to_string(max_ops_));
    }
    ++commits_;
    return base_->Commit(txn);
  }
  StatusOr<std::unique_ptr<store::WatchStream>> Watch(const store::KeySpan& span,
                                                      store::Revision from_revision,
                                                      const store::WatchOptions& options) override {
    return base_->Watch(span, from_revision, options);
  }
  StatusOr<store::Revision> CurrentRevision() override { return base_->CurrentRevision(); }
  Status Compact(store::Revision revision) override { return base_->Compact(revision); }
  StatusOr<store::Revision> CompactedRevision() override { return base_->CompactedRevision(); }

 private:
  store::Store* const base_;
  const size_t max_ops_;
  std::atomic<int> commits_{0};
};

#define PLINTH_INSTANTIATE_DATASTORE_TEST(Suite)                                                   \
  INSTANTIATE_TEST_SUITE_P(Backends, Suite,                                                        \
                           ::testing::ValuesIn(::plinth::datastore::testing::DatastoreBackends()), \
                           ::plinth::datastore::testing::BackendName)

// Builders for test objects.
v1::Selector Sel(const std::string& type, const std::string& value);
// An entry with the given IDs and selectors "type:value" strings.
v1::RegistrationEntry MakeEntry(const std::string& spiffe_id, const std::string& parent_id,
                                const std::vector<std::string>& selectors);
v1::AttestedNode MakeNode(const std::string& spiffe_id, int64_t cert_not_after,
                          const std::string& serial = "serial-1");
// A bundle for `trust_domain_id` with one self-signed root CA (generated with OpenSSL, valid
// until `not_after_unix`) and optionally one JWT key.
v1::Bundle MakeBundle(const std::string& trust_domain_id, int64_t not_after_unix = 4102444800,
                      const std::string& jwt_kid = "");

}  // namespace plinth::datastore::testing

#endif  // PLINTH_DATASTORE_TESTING_DATASTORE_FIXTURE_H_
