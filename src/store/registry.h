// Opening stores by URL: a registry of backend factories keyed by URL scheme (rocksdb's
// ObjectRegistry, envoy's KeyValueStoreFactory). OpenStore() knows every built-in backend.
#ifndef PLINTH_STORE_REGISTRY_H_
#define PLINTH_STORE_REGISTRY_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "common/thread_annotations.h"
#include "store/store.h"
#include "store/url.h"

namespace plinth::store {

struct OpenOptions {
  Clock* clock = RealClock();  // not owned; must outlive the store
};

// Builds a store from a parsed URL. Must reject unknown options (UrlOptions::CheckAllTaken).
using BackendFactory =
    std::function<StatusOr<std::unique_ptr<Store>>(const StoreUrl& url, const OpenOptions&)>;

// Thread-safe.
class BackendRegistry {
 public:
  // AlreadyExists if `scheme` is taken.
  Status Register(std::string scheme, BackendFactory factory) PLINTH_EXCLUDES(mu_);
  // InvalidArgument for a malformed URL or an unknown scheme (listing the known ones);
  // otherwise whatever the backend's factory returns.
  StatusOr<std::unique_ptr<Store>> Open(std::string_view url, const OpenOptions& options = {})
      PLINTH_EXCLUDES(mu_);
  std::vector<std::string> Schemes() const PLINTH_EXCLUDES(mu_);

 private:
  mutable Mutex mu_;
  std::map<std::string, BackendFactory> factories_ PLINTH_GUARDED_BY(mu_);
};

// Reads the limit overrides every backend accepts (max_key_bytes, max_value_bytes, max_ops,
// max_txn_bytes), each at most the backend's own ceiling given in `ceiling`.
StatusOr<Limits> TakeLimitOptions(UrlOptions& options, const Limits& defaults,
                                  const Limits& ceiling);

}  // namespace plinth::store

#endif  // PLINTH_STORE_REGISTRY_H_
