#include "store/registry.h"

namespace plinth::store {

Status BackendRegistry::Register(std::string scheme, BackendFactory factory) {
  MutexLock lock(&mu_);
  if (!factories_.emplace(scheme, std::move(factory)).second) {
    return AlreadyExistsError("store backend \"" + scheme + "\" is already registered");
  }
  return Status::Ok();
}

StatusOr<std::unique_ptr<Store>> BackendRegistry::Open(std::string_view text,
                                                       const OpenOptions& options) {
  PLINTH_ASSIGN_OR_RETURN(StoreUrl url, ParseStoreUrl(text));
  BackendFactory factory;
  {
    MutexLock lock(&mu_);
    auto it = factories_.find(url.scheme);
    if (it != factories_.end()) factory = it->second;
  }
  if (!factory) {
    std::string known;
    for (const std::string& s : Schemes()) known += (known.empty() ? "" : ", ") + s;
    return InvalidArgumentError("unknown store backend \"" + url.scheme + "\" in URL \"" +
                                url.redacted + "\"; known backends: " + known);
  }
  return factory(url, options);
}

std::vector<std::string> BackendRegistry::Schemes() const {
  MutexLock lock(&mu_);
  std::vector<std::string> out;
  for (const auto& [scheme, factory] : factories_) out.push_back(scheme);
  return out;
}

StatusOr<Limits> TakeLimitOptions(UrlOptions& options, const Limits& defaults,
                                  const Limits& ceiling) {
  Limits limits = defaults;
  auto take = [&](std::string_view name, size_t ceiling_value, size_t* out) -> Status {
    PLINTH_ASSIGN_OR_RETURN(auto v, options.TakeInt(name, 1, static_cast<int64_t>(ceiling_value)));
    if (v) *out = static_cast<size_t>(*v);
    return Status::Ok();
  };
  PLINTH_RETURN_IF_ERROR(take("max_key_bytes", ceiling.max_key_bytes, &limits.max_key_bytes));
  PLINTH_RETURN_IF_ERROR(take("max_value_bytes", ceiling.max_value_bytes, &limits.max_value_bytes));
  PLINTH_RETURN_IF_ERROR(take("max_ops", ceiling.max_ops_per_txn, &limits.max_ops_per_txn));
  PLINTH_RETURN_IF_ERROR(take("max_txn_bytes", ceiling.max_txn_bytes, &limits.max_txn_bytes));
  return limits;
}

}  // namespace plinth::store
