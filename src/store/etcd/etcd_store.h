// The etcd backend (not built yet; see issue 3).
#ifndef PLINTH_STORE_ETCD_ETCD_STORE_H_
#define PLINTH_STORE_ETCD_ETCD_STORE_H_

#include <memory>

#include "store/registry.h"
#include "store/store.h"

namespace plinth::store::etcd {

StatusOr<std::unique_ptr<Store>> OpenEtcdStore(const StoreUrl& url, const OpenOptions& options);

}  // namespace plinth::store::etcd

#endif  // PLINTH_STORE_ETCD_ETCD_STORE_H_
