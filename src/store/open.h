// OpenStore(url): the one call that turns a store URL into a Store, over every built-in
// backend: memory://[name], sqlite:///path/file.db?..., postgres://..., mysql://...,
// etcd://host:port[,host:port...]/prefix, plugin:///path/libfoo.so?...
#ifndef PLINTH_STORE_OPEN_H_
#define PLINTH_STORE_OPEN_H_

#include <memory>
#include <string_view>

#include "store/registry.h"
#include "store/store.h"

namespace plinth::store {

// The process-wide registry, with every built-in backend registered.
BackendRegistry* DefaultRegistry();

// DefaultRegistry()->Open(url, options).
StatusOr<std::unique_ptr<Store>> OpenStore(std::string_view url, const OpenOptions& options = {});

}  // namespace plinth::store

#endif  // PLINTH_STORE_OPEN_H_
