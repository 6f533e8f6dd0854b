#include "server/metered_store.h"

#include <chrono>
#include <string>
#include <utility>

namespace plinth::server {
namespace {

// Observes the time from construction to destruction in `histogram`, in seconds.
class ScopedTimer {
 public:
  explicit ScopedTimer(Histogram* histogram)
      : histogram_(histogram), start_(std::chrono::steady_clock::now()) {}
  ~ScopedTimer() {
    histogram_->Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
  }
  ScopedTimer(const ScopedTimer&) = delete;
  ScopedTimer& operator=(const ScopedTimer&) = delete;

 private:
  Histogram* const histogram_;
  const std::chrono::steady_clock::time_point start_;
};

class MeteredSnapshot final : public store::Snapshot {
 public:
  MeteredSnapshot(std::unique_ptr<store::Snapshot> inner, Histogram* get, Histogram* range,
                  Histogram* count)
      : inner_(std::move(inner)), get_(get), range_(range), count_(count) {}

  store::Revision revision() const override { return inner_->revision(); }
  StatusOr<store::KeyValue> Get(std::string_view key) override {
    ScopedTimer timer(get_);
    return inner_->Get(key);
  }
  StatusOr<store::RangeResult> Range(const store::KeySpan& span,
                                     const store::RangeOptions& options) override {
    ScopedTimer timer(range_);
    return inner_->Range(span, options);
  }
  StatusOr<store::CountResult> Count(const store::KeySpan& span) override {
    ScopedTimer timer(count_);
    return inner_->Count(span);
  }

 private:
  const std::unique_ptr<store::Snapshot> inner_;
  Histogram* const get_;
  Histogram* const range_;
  Histogram* const count_;
};

}  // namespace

MeteredStore::MeteredStore(std::unique_ptr<store::Store> inner, HistogramFamily* durations)
    : inner_(std::move(inner)),
      histograms_{
          .get = &durations->WithLabels({std::string(kStoreOpGet)}),
          .range = &durations->WithLabels({std::string(kStoreOpRange)}),
          .count = &durations->WithLabels({std::string(kStoreOpCount)}),
          .snapshot_open = &durations->WithLabels({std::string(kStoreOpSnapshotOpen)}),
          .snapshot_get = &durations->WithLabels({std::string(kStoreOpSnapshotGet)}),
          .snapshot_range = &durations->WithLabels({std::string(kStoreOpSnapshotRange)}),
          .snapshot_count = &durations->WithLabels({std::string(kStoreOpSnapshotCount)}),
          .txn = &durations->WithLabels({std::string(kStoreOpTxn)}),
          .watch_open = &durations->WithLabels({std::string(kStoreOpWatchOpen)}),
          .current_revision = &durations->WithLabels({std::string(kStoreOpCurrentRevision)}),
          .compact = &durations->WithLabels({std::string(kStoreOpCompact)}),
          .compacted_revision = &durations->WithLabels({std::string(kStoreOpCompactedRevision)}),
      } {}

MeteredStore::~MeteredStore() = default;

StatusOr<store::KeyValue> MeteredStore::Get(std::string_view key) {
  ScopedTimer timer(histograms_.get);
  return inner_->Get(key);
}

StatusOr<store::RangeResult> MeteredStore::Range(const store::KeySpan& span,
                                                 const store::RangeOptions& options) {
  ScopedTimer timer(histograms_.range);
  return inner_->Range(span, options);
}

StatusOr<store::CountResult> MeteredStore::Count(const store::KeySpan& span) {
  ScopedTimer timer(histograms_.count);
  return inner_->Count(span);
}

StatusOr<std::unique_ptr<store::Snapshot>> MeteredStore::OpenSnapshot() {
  StatusOr<std::unique_ptr<store::Snapshot>> snapshot = [&] {
    ScopedTimer timer(histograms_.snapshot_open);
    return inner_->OpenSnapshot();
  }();
  if (!snapshot.ok()) return snapshot.status();
  return std::unique_ptr<store::Snapshot>(
      std::make_unique<MeteredSnapshot>(std::move(snapshot).value(), histograms_.snapshot_get,
                                        histograms_.snapshot_range, histograms_.snapshot_count));
}

StatusOr<store::Revision> MeteredStore::Commit(const store::TxnRequest& txn) {
  ScopedTimer timer(histograms_.txn);
  return inner_->Commit(txn);
}

StatusOr<std::unique_ptr<store::WatchStream>> MeteredStore::Watch(
    const store::KeySpan& span, store::Revision from_revision, const store::WatchOptions& options) {
  ScopedTimer timer(histograms_.watch_open);
  return inner_->Watch(span, from_revision, options);
}

StatusOr<store::Revision> MeteredStore::CurrentRevision() {
  ScopedTimer timer(histograms_.current_revision);
  return inner_->CurrentRevision();
}

Status MeteredStore::Compact(store::Revision revision) {
  ScopedTimer timer(histograms_.compact);
  return inner_->Compact(revision);
}

StatusOr<store::Revision> MeteredStore::CompactedRevision() {
  ScopedTimer timer(histograms_.compacted_revision);
  return inner_->CompactedRevision();
}

}  // namespace plinth::server
