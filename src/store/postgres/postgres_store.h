// The postgres backend (not built yet; see issue 3).
#ifndef PLINTH_STORE_POSTGRES_POSTGRES_STORE_H_
#define PLINTH_STORE_POSTGRES_POSTGRES_STORE_H_

#include <memory>

#include "store/registry.h"
#include "store/store.h"

namespace plinth::store::postgres {

StatusOr<std::unique_ptr<Store>> OpenPostgresStore(const StoreUrl& url, const OpenOptions& options);

}  // namespace plinth::store::postgres

#endif  // PLINTH_STORE_POSTGRES_POSTGRES_STORE_H_
