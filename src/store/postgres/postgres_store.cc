#include "store/postgres/postgres_store.h"

namespace plinth::store::postgres {

StatusOr<std::unique_ptr<Store>> OpenPostgresStore(const StoreUrl&, const OpenOptions&) {
  return UnimplementedError("the postgres backend is not built yet");
}

}  // namespace plinth::store::postgres
