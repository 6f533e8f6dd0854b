#include "store/etcd/etcd_store.h"

namespace plinth::store::etcd {

StatusOr<std::unique_ptr<Store>> OpenEtcdStore(const StoreUrl&, const OpenOptions&) {
  return UnimplementedError("the etcd backend is not built yet");
}

}  // namespace plinth::store::etcd
