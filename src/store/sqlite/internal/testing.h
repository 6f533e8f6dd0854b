// Test-only hooks into a sqlite Store, for checking per-connection settings that cannot be
// observed through the Store interface. Not for production code.
#ifndef PLINTH_STORE_SQLITE_INTERNAL_TESTING_H_
#define PLINTH_STORE_SQLITE_INTERNAL_TESTING_H_

#include <cstdint>
#include <string>

#include "common/status.h"
#include "store/store.h"

namespace plinth::store::sqlite::internal {

// Runs "PRAGMA <name>" on the writer connection of `store` (which must come from
// OpenSqliteStore) and returns the first column of its first row as text.
// InvalidArgument if `store` is not a sqlite store.
StatusOr<std::string> WriterPragmaForTesting(Store& store, const std::string& name);

// The same on a connection taken from the store's read pool.
StatusOr<std::string> ReaderPragmaForTesting(Store& store, const std::string& name);

// How many WAL checkpoints the store's background checkpointer has run.
StatusOr<int64_t> CheckpointsForTesting(Store& store);

}  // namespace plinth::store::sqlite::internal

#endif  // PLINTH_STORE_SQLITE_INTERNAL_TESTING_H_
