#include "store/open.h"

#include "store/etcd/etcd_store.h"
#include "store/memory/memory_store.h"
#include "store/mysql/mysql_store.h"
#include "store/plugin/plugin_store.h"
#include "store/postgres/postgres_store.h"
#include "store/sqlite/sqlite_store.h"

namespace plinth::store {

BackendRegistry* DefaultRegistry() {
  static BackendRegistry* const registry = [] {
    auto* r = new BackendRegistry();
    PLINTH_CHECK(r->Register("memory", memory::OpenMemoryStore).ok());
    PLINTH_CHECK(r->Register("sqlite", sqlite::OpenSqliteStore).ok());
    PLINTH_CHECK(r->Register("postgres", postgres::OpenPostgresStore).ok());
    PLINTH_CHECK(r->Register("postgresql", postgres::OpenPostgresStore).ok());
    PLINTH_CHECK(r->Register("mysql", mysql::OpenMysqlStore).ok());
    PLINTH_CHECK(r->Register("mariadb", mysql::OpenMysqlStore).ok());
    PLINTH_CHECK(r->Register("etcd", etcd::OpenEtcdStore).ok());
    PLINTH_CHECK(r->Register("plugin", plugin::OpenPluginStore).ok());
    return r;
  }();
  return registry;
}

StatusOr<std::unique_ptr<Store>> OpenStore(std::string_view url, const OpenOptions& options) {
  return DefaultRegistry()->Open(url, options);
}

}  // namespace plinth::store
