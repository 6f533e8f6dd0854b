// The memory backend: the reference implementation of the store contract, kept simple
// enough to read as a specification. Multi-version per key (like etcd's MVCC), so snapshots
// and Watch work exactly as on durable backends; nothing survives the process.
//
// URL: memory://            a fresh, private store
//      memory://<name>      the in-process store called <name>, shared by everyone who opens
//                           it while any opener keeps it alive (for in-process replica tests)
// Options: retention=<revisions> of change history kept (default 100000; 0 = keep until
//          Compact), and the limit options of TakeLimitOptions.
#ifndef PLINTH_STORE_MEMORY_MEMORY_STORE_H_
#define PLINTH_STORE_MEMORY_MEMORY_STORE_H_

#include <memory>

#include "store/registry.h"
#include "store/store.h"

namespace plinth::store::memory {

inline constexpr int64_t kDefaultRetention = 100'000;

// Limits of the memory backend (the defaults; URL options may lower them).
Limits DefaultLimits();

StatusOr<std::unique_ptr<Store>> OpenMemoryStore(const StoreUrl& url, const OpenOptions& options);

}  // namespace plinth::store::memory

#endif  // PLINTH_STORE_MEMORY_MEMORY_STORE_H_
