#include "store/open.h"

#include "store/memory/memory_store.h"
#include "store/sqlite/sqlite_store.h"

namespace plinth::store {

BackendRegistry* DefaultRegistry() {
  static BackendRegistry* const registry = [] {
    auto* r = new BackendRegistry();
    PLINTH_CHECK(r->Register("memory", memory::OpenMemoryStore).ok());
    PLINTH_CHECK(r->Register("sqlite", sqlite::OpenSqliteStore).ok());
    return r;
  }();
  return registry;
}

StatusOr<std::unique_ptr<Store>> OpenStore(std::string_view url, const OpenOptions& options) {
  return DefaultRegistry()->Open(url, options);
}

}  // namespace plinth::store
