#include "store/mysql/mysql_store.h"

namespace plinth::store::mysql {

StatusOr<std::unique_ptr<Store>> OpenMysqlStore(const StoreUrl&, const OpenOptions&) {
  return UnimplementedError("the mysql backend is not built yet");
}

}  // namespace plinth::store::mysql
