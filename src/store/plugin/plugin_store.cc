#include "store/plugin/plugin_store.h"

namespace plinth::store::plugin {

StatusOr<std::unique_ptr<Store>> OpenPluginStore(const StoreUrl&, const OpenOptions&) {
  return UnimplementedError("the plugin backend is not built yet");
}

}  // namespace plinth::store::plugin
