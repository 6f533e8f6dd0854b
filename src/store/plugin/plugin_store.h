// The plugin backend: stores implemented outside plinth's tree as shared objects behind the
// pure-C ABI of include/plinth/store_plugin.h, wrapped into the C++ Store contract.
//
// URL: plugin:///path/to/libNAME.so?option=value&...
//   The shared object is loaded once per process with dlopen(RTLD_NOW | RTLD_LOCAL) and
//   never unloaded; its entry symbol is derived from its file name (PluginEntrySymbol). Every
//   option is passed to the plugin, which rejects those it does not know.
#ifndef PLINTH_STORE_PLUGIN_PLUGIN_STORE_H_
#define PLINTH_STORE_PLUGIN_PLUGIN_STORE_H_

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "plinth/store_plugin.h"
#include "store/registry.h"
#include "store/store.h"

namespace plinth::store::plugin {

// Errors: InvalidArgument (no path), NotFound (no such file), FailedPrecondition (not a
// loadable shared object, no entry symbol, or an incompatible ABI version), or whatever the
// plugin's open returns.
StatusOr<std::unique_ptr<Store>> OpenPluginStore(const StoreUrl& url, const OpenOptions& options);

// Opens a store through an already-resolved function table: a plugin linked statically into
// the host (as the tests do), or one the caller loaded itself. `api` must outlive the store.
StatusOr<std::unique_ptr<Store>> OpenStoreFromPluginApi(
    const plinth_store_plugin_api* api, std::string_view location,
    const std::map<std::string, std::string>& options);

// "plinth_store_plugin_" + the file's base name without "lib" and ".so...", every character
// other than a letter or digit turned into '_': /x/libplinth_memory_store.so ->
// plinth_store_plugin_plinth_memory_store.
std::string PluginEntrySymbol(std::string_view path);

}  // namespace plinth::store::plugin

#endif  // PLINTH_STORE_PLUGIN_PLUGIN_STORE_H_
