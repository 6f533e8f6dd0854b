// The mysql backend (not built yet; see issue 3).
#ifndef PLINTH_STORE_MYSQL_MYSQL_STORE_H_
#define PLINTH_STORE_MYSQL_MYSQL_STORE_H_

#include <memory>

#include "store/registry.h"
#include "store/store.h"

namespace plinth::store::mysql {

StatusOr<std::unique_ptr<Store>> OpenMysqlStore(const StoreUrl& url, const OpenOptions& options);

}  // namespace plinth::store::mysql

#endif  // PLINTH_STORE_MYSQL_MYSQL_STORE_H_
