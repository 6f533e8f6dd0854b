// DataStore's lifetime (Open, destructor), the typed change feed, and the Impl helpers every
// operation shares. The operations themselves live in entries.cc, nodes.cc, bundles.cc, ...
#include "datastore/datastore.h"

#include <openssl/rand.h>

#include <charconv>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/check.h"
#include "common/thread_annotations.h"
#include "datastore/internal/impl.h"
#include "datastore/internal/state.h"

namespace plinth::datastore {
namespace {

using Change = v1::DataStoreChange;

// Decodes one store event into a typed change; false for keys that are not objects
// (journal-next, unknown kinds) and for values that do not decode (the state counts those).
bool DecodeChange(std::string_view prefix, const store::Event& event, store::Revision revision,
                  Change* change) {
  std::string_view key = event.kv.key;
  if (!key.starts_with(prefix)) return false;
  key.remove_prefix(prefix.size());
  const bool deleted = event.type == store::Event::Type::kDelete;
  const std::string& value = event.kv.value;

  struct Kind {
    std::string_view prefix;
    Change::Kind kind;
  };
  static constexpr Kind kKinds[] = {
      {"entry/", Change::KIND_ENTRY},
      {"node/", Change::KIND_NODE},
      {"nodesel/", Change::KIND_NODE_SELECTORS},
      {"bundle/", Change::KIND_BUNDLE},
      {"token/", Change::KIND_JOIN_TOKEN},
      {"fed/", Change::KIND_FEDERATION_RELATIONSHIP},
      {"journal/", Change::KIND_CA_JOURNAL},
  };
  const Kind* kind = nullptr;
  for (const Kind& k : kKinds) {
    if (key.starts_with(k.prefix)) {
      kind = &k;
      break;
    }
  }
  if (kind == nullptr) return false;
  std::string_view id = key.substr(kind->prefix.size());
  int64_t journal_id = 0;
  if (kind->kind == Change::KIND_CA_JOURNAL) {
    // Journal keys are zero-padded; the change names the journal by its plain number.
    const auto [end, ec] = std::from_chars(id.data(), id.data() + id.size(), journal_id);
    if (id.empty() || ec != std::errc() || end != id.data() + id.size()) return false;
  }

  change->Clear();
  change->set_kind(kind->kind);
  change->set_revision(revision);
  change->set_deleted(deleted);
  change->set_id(kind->kind == Change::KIND_CA_JOURNAL ? std::to_string(journal_id)
                                                       : std::string(id));
  if (deleted) return true;
  switch (kind->kind) {
    case Change::KIND_ENTRY:
      return change->mutable_entry()->ParseFromString(value);
    case Change::KIND_NODE:
      return change->mutable_node()->ParseFromString(value);
    case Change::KIND_NODE_SELECTORS:
      return change->mutable_node_selectors()->ParseFromString(value);
    case Change::KIND_BUNDLE:
      return change->mutable_bundle()->ParseFromString(value);
    case Change::KIND_JOIN_TOKEN:
      return change->mutable_join_token()->ParseFromString(value);
    case Change::KIND_FEDERATION_RELATIONSHIP:
      return change->mutable_federation_relationship()->ParseFromString(value);
    case Change::KIND_CA_JOURNAL:
      if (!change->mutable_ca_journal()->ParseFromString(value)) return false;
      change->mutable_ca_journal()->set_id(journal_id);
      return true;
    default:
      return false;
  }
}

std::string NewUuidV4() {
  unsigned char b[16];
  // RAND_bytes fails only when the OS cannot seed OpenSSL's generator at all.
  PLINTH_CHECK(RAND_bytes(b, sizeof(b)) == 1) << "RAND_bytes failed: no entropy for entry IDs";
  b[6] = static_cast<unsigned char>((b[6] & 0x0F) | 0x40);  // version 4
  b[8] = static_cast<unsigned char>((b[8] & 0x3F) | 0x80);  // RFC 4122 variant
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[b[i] >> 4]);
    out.push_back(kHex[b[i] & 0x0F]);
  }
  return out;
}

}  // namespace

// Subscribers of the typed change feed. The mirror's listeners cannot be removed, so the
// DataStore registers one listener (Deliver) and keeps its own list of subscribers.
class DataStore::Impl::ChangeFeed {
 public:
  // One subscriber. `mu` is held while its listener runs, so that dropping the subscription
  // waits for a running call to finish; it is recursive so that a listener may drop its own
  // subscription.
  struct Slot {
    std::recursive_mutex mu;
    bool active = true;
    ChangeListener listener;
  };

  explicit ChangeFeed(std::string prefix) : prefix_(std::move(prefix)) {}

  std::shared_ptr<Slot> Add(ChangeListener listener) {
    auto slot = std::make_shared<Slot>();
    slot->listener = std::move(listener);
    MutexLock lock(&mu_);
    slots_.push_back(slot);
    return slot;
  }

  void Remove(const std::shared_ptr<Slot>& slot) {
    {
      std::lock_guard<std::recursive_mutex> running(slot->mu);
      slot->active = false;
    }
    MutexLock lock(&mu_);
    std::erase(slots_, slot);
  }

  // Runs on the mirror's follower thread, in revision order.
  void Deliver(const store::WatchBatch& batch, bool reset) {
    std::vector<std::shared_ptr<Slot>> slots;
    {
      MutexLock lock(&mu_);
      slots = slots_;
    }
    if (slots.empty()) return;  // nobody listens: skip decoding
    std::vector<Change> changes;
    if (!reset) {
      changes.reserve(batch.events.size());
      for (const store::Event& event : batch.events) {
        Change change;
        if (DecodeChange(prefix_, event, batch.revision, &change)) {
          changes.push_back(std::move(change));
        }
      }
    }
    static const Change kEmpty;
    for (const std::shared_ptr<Slot>& slot : slots) {
      std::lock_guard<std::recursive_mutex> running(slot->mu);
      if (reset && slot->active) slot->listener(kEmpty, true);
      for (const Change& change : changes) {
        if (!slot->active) break;
        slot->listener(change, false);
      }
    }
  }

 private:
  const std::string prefix_;
  Mutex mu_;
  std::vector<std::shared_ptr<Slot>> slots_ PLINTH_GUARDED_BY(mu_);
};

namespace {

// Runs `unsubscribe` when dropped.
class FeedSubscription final : public Subscription {
 public:
  explicit FeedSubscription(std::function<void()> unsubscribe)
      : unsubscribe_(std::move(unsubscribe)) {}
  ~FeedSubscription() override { unsubscribe_(); }

 private:
  std::function<void()> unsubscribe_;
};

}  // namespace

DataStore::Impl::Impl(store::Store* store, DataStoreOptions options)
    : store(store),
      options(std::move(options)),
      keys(this->options.prefix, this->options.index_prefix),
      limits(store->limits()) {}

StatusOr<store::Revision> DataStore::Impl::Write(const Plan& plan) {
  return mirror->Write([&plan](const mirror::MirrorState& state, store::Revision applied) {
    return plan(static_cast<const internal::DatastoreState&>(state), applied);
  });
}

Status DataStore::Impl::Sync(v1::ReadConsistency consistency) {
  if (consistency != v1::READ_CONSISTENT) return Status::Ok();
  return mirror->Sync(options.consistent_read_timeout);
}

int64_t DataStore::Impl::NowUnixNanos() const {
  const Clock* clock = options.clock != nullptr ? options.clock : RealClock();
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock->WallNow().time_since_epoch())
      .count();
}

std::string DataStore::Impl::NewEntryId() const {
  if (options.new_entry_id) return options.new_entry_id();
  return NewUuidV4();
}

StatusOr<std::unique_ptr<DataStore>> DataStore::Open(store::Store* store,
                                                     DataStoreOptions options) {
  if (store == nullptr) return InvalidArgumentError("DataStore::Open: store is null");
  if (options.prefix.empty() || options.index_prefix.empty()) {
    return InvalidArgumentError("DataStore::Open: prefix and index_prefix must not be empty");
  }
  // Index keys must stay outside the mirrored prefix (and the other way round): the state
  // would otherwise count them as undecodable objects.
  if (options.index_prefix.starts_with(options.prefix) ||
      options.prefix.starts_with(options.index_prefix)) {
    return InvalidArgumentError("DataStore::Open: prefix \"" + options.prefix +
                                "\" and index_prefix \"" + options.index_prefix +
                                "\" must not contain one another");
  }
  auto impl = std::make_unique<Impl>(store, std::move(options));

  mirror::MirrorOptions mirror_options;
  mirror_options.prefix = impl->options.prefix;
  mirror_options.wait_timeout = impl->options.consistent_read_timeout;
  mirror_options.verify_interval = impl->options.verify_interval;
  // options.clock stamps records only: the mirror's timeouts must pass in real time even when
  // a test freezes the wall clock.
  mirror_options.clock = nullptr;
  const internal::Keys* keys = &impl->keys;  // outlives the mirror (Impl member order)
  PLINTH_ASSIGN_OR_RETURN(impl->mirror,
                          mirror::Mirror::Open(store, std::move(mirror_options), [keys] {
                            return std::make_unique<internal::DatastoreState>(keys);
                          }));

  impl->change_feed = std::make_shared<Impl::ChangeFeed>(impl->options.prefix);
  impl->mirror->AddListener([feed = impl->change_feed](const store::WatchBatch& batch, bool reset) {
    feed->Deliver(batch, reset);
  });
  return std::unique_ptr<DataStore>(new DataStore(std::move(impl)));
}

DataStore::DataStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

DataStore::~DataStore() {
  // Stop the follower first: it applies into state that refers to impl_->keys.
  impl_->mirror.reset();
}

mirror::Mirror& DataStore::mirror() { return *impl_->mirror; }

std::unique_ptr<Subscription> DataStore::Subscribe(ChangeListener listener) {
  auto slot = impl_->change_feed->Add(std::move(listener));
  // The subscription may outlive the DataStore; then there is no feed left to leave.
  return std::make_unique<FeedSubscription>(
      [feed = std::weak_ptr<Impl::ChangeFeed>(impl_->change_feed), slot = std::move(slot)] {
        if (auto live = feed.lock()) {
          live->Remove(slot);
        } else {
          std::lock_guard<std::recursive_mutex> running(slot->mu);
          slot->active = false;
        }
      });
}

}  // namespace plinth::datastore
