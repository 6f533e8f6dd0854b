// The plugin backend: stores from out-of-tree shared objects (not built yet).
#ifndef PLINTH_STORE_PLUGIN_PLUGIN_STORE_H_
#define PLINTH_STORE_PLUGIN_PLUGIN_STORE_H_

#include <memory>

#include "store/registry.h"
#include "store/store.h"

namespace plinth::store::plugin {

StatusOr<std::unique_ptr<Store>> OpenPluginStore(const StoreUrl& url, const OpenOptions& options);

}  // namespace plinth::store::plugin

#endif  // PLINTH_STORE_PLUGIN_PLUGIN_STORE_H_
