// Exposing a C++ Store through the plugin C ABI (include/plinth/store_plugin.h): what a C++
// author of an out-of-tree backend links into the shared object, so that only the entry
// function is left to write:
//
//   StatusOr<std::unique_ptr<Store>> OpenMine(const std::map<std::string, std::string>& opts);
//   extern "C" PLINTH_PLUGIN_EXPORT const plinth_store_plugin_api*
//   plinth_store_plugin_mine(uint32_t host_abi_version) {
//     return plinth::store::plugin::ExportStorePlugin<&OpenMine>("mine", host_abi_version);
//   }
//
// No exception crosses the ABI: anything thrown becomes PLINTH_INTERNAL.
#ifndef PLINTH_STORE_PLUGIN_PLUGIN_EXPORT_H_
#define PLINTH_STORE_PLUGIN_PLUGIN_EXPORT_H_

#include <map>
#include <memory>
#include <string>

#include "plinth/store_plugin.h"
#include "store/store.h"

#define PLINTH_PLUGIN_EXPORT __attribute__((visibility("default")))

namespace plinth::store::plugin {

// Opens the plugin's store from the URL's decoded options.
using ExportedOpen =
    StatusOr<std::unique_ptr<Store>> (*)(const std::map<std::string, std::string>& options);

namespace internal {
// The table with every function but open filled in.
plinth_store_plugin_api ExportTable(const char* name);
// Calls `open_store` and wraps its result into a plinth_store handle.
int OpenExported(ExportedOpen open_store, const plinth_option* options, size_t num_options,
                 plinth_store** out, plinth_error* err);
}  // namespace internal

// The function table for a store opened by `Open`, or nullptr if `host_abi_version` is not
// ours. The table is built once and lives for the process.
template <ExportedOpen Open>
const plinth_store_plugin_api* ExportStorePlugin(const char* name, uint32_t host_abi_version) {
  if (host_abi_version != PLINTH_STORE_PLUGIN_ABI_VERSION) return nullptr;
  static const plinth_store_plugin_api table = [name] {
    plinth_store_plugin_api t = internal::ExportTable(name);
    t.open = [](plinth_bytes, const plinth_option* options, size_t num_options, plinth_store** out,
                plinth_error* err) {
      return internal::OpenExported(Open, options, num_options, out, err);
    };
    return t;
  }();
  return &table;
}

}  // namespace plinth::store::plugin

#endif  // PLINTH_STORE_PLUGIN_PLUGIN_EXPORT_H_
