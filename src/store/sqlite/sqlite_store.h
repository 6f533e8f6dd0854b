// The sqlite backend: plinth's embedded default, one database file on one host.
// (Implementation in progress; see sqlite_store.cc for the contract it meets.)
#ifndef PLINTH_STORE_SQLITE_SQLITE_STORE_H_
#define PLINTH_STORE_SQLITE_SQLITE_STORE_H_

#include <memory>

#include "store/registry.h"
#include "store/store.h"

namespace plinth::store::sqlite {

StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const StoreUrl& url, const OpenOptions& options);

}  // namespace plinth::store::sqlite

#endif  // PLINTH_STORE_SQLITE_SQLITE_STORE_H_
