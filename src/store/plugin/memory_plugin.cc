// The memory backend built as an out-of-tree-style plugin: proof that a backend can live in
// a shared object behind the C ABI alone. Options: name=<store name> (stores of one name
// are shared in this process, as memory://<name>), plus every memory:// option.
#include "store/memory/memory_store.h"
#include "store/plugin/plugin_export.h"

namespace plinth::store::plugin {
namespace {

StatusOr<std::unique_ptr<Store>> OpenMemoryPlugin(
    const std::map<std::string, std::string>& options) {
  StoreUrl url;
  url.scheme = "memory";
  url.text = "plugin memory store";
  url.options = options;
  if (auto it = url.options.find("name"); it != url.options.end()) {
    url.location = it->second;
    url.options.erase(it);
  }
  return memory::OpenMemoryStore(url, OpenOptions{});
}

}  // namespace
}  // namespace plinth::store::plugin

extern "C" PLINTH_PLUGIN_EXPORT const plinth_store_plugin_api*
plinth_store_plugin_plinth_memory_store(uint32_t host_abi_version) {
  return plinth::store::plugin::ExportStorePlugin<&plinth::store::plugin::OpenMemoryPlugin>(
      "memory", host_abi_version);
}
