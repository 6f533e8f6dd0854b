#include "store/sqlite/sqlite_store.h"

namespace plinth::store::sqlite {

StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const StoreUrl&, const OpenOptions&) {
  return UnimplementedError("sqlite backend not built yet");
}

}  // namespace plinth::store::sqlite
