// A store::Store decorator for `plinth serve`: forwards every call to the store it wraps and
// records how long the call took in plinth_store_operation_duration_seconds{operation}, so
// that backend latency is visible next to RPC latency. It changes no result and no error.
#ifndef PLINTH_SERVER_METERED_STORE_H_
#define PLINTH_SERVER_METERED_STORE_H_

#include <memory>
#include <string_view>

#include "server/metrics.h"
#include "store/store.h"

namespace plinth::server {

// The `operation` label values, one per Store entry point (and per Snapshot read).
inline constexpr std::string_view kStoreOpGet = "get";
inline constexpr std::string_view kStoreOpRange = "range";
inline constexpr std::string_view kStoreOpCount = "count";
inline constexpr std::string_view kStoreOpSnapshotOpen = "snapshot_open";
inline constexpr std::string_view kStoreOpSnapshotGet = "snapshot_get";
inline constexpr std::string_view kStoreOpSnapshotRange = "snapshot_range";
inline constexpr std::string_view kStoreOpSnapshotCount = "snapshot_count";
inline constexpr std::string_view kStoreOpTxn = "txn";
inline constexpr std::string_view kStoreOpWatchOpen = "watch_open";
inline constexpr std::string_view kStoreOpCurrentRevision = "current_revision";
inline constexpr std::string_view kStoreOpCompact = "compact";
inline constexpr std::string_view kStoreOpCompactedRevision = "compacted_revision";

// Owns the wrapped store. Every call is forwarded unchanged, successful or not, and its
// latency observed in `durations` (a family with the single label "operation", e.g.
// ServerMetrics::store_operation_duration), which must outlive this store. Snapshots opened
// through it are metered too; watch streams are not (Next blocks by design, so its latency
// says nothing about the backend). Thread-safe, like every Store.
class MeteredStore final : public store::Store {
 public:
  MeteredStore(std::unique_ptr<store::Store> inner, HistogramFamily* durations);
  ~MeteredStore() override;

  store::Store* inner() const { return inner_.get(); }

  std::string_view backend() const override { return inner_->backend(); }
  store::Limits limits() const override { return inner_->limits(); }
  StatusOr<store::KeyValue> Get(std::string_view key) override;
  StatusOr<store::RangeResult> Range(const store::KeySpan& span,
                                     const store::RangeOptions& options) override;
  StatusOr<store::CountResult> Count(const store::KeySpan& span) override;
  StatusOr<std::unique_ptr<store::Snapshot>> OpenSnapshot() override;
  StatusOr<store::Revision> Commit(const store::TxnRequest& txn) override;
  StatusOr<std::unique_ptr<store::WatchStream>> Watch(const store::KeySpan& span,
                                                      store::Revision from_revision,
                                                      const store::WatchOptions& options) override;
  StatusOr<store::Revision> CurrentRevision() override;
  Status Compact(store::Revision revision) override;
  StatusOr<store::Revision> CompactedRevision() override;

 private:
  // The histograms of each operation, looked up once (the family's look-up takes a lock).
  struct Histograms {
    Histogram* get;
    Histogram* range;
    Histogram* count;
    Histogram* snapshot_open;
    Histogram* snapshot_get;
    Histogram* snapshot_range;
    Histogram* snapshot_count;
    Histogram* txn;
    Histogram* watch_open;
    Histogram* current_revision;
    Histogram* compact;
    Histogram* compacted_revision;
  };

  const std::unique_ptr<store::Store> inner_;
  const Histograms histograms_;
};

}  // namespace plinth::server

#endif  // PLINTH_SERVER_METERED_STORE_H_
