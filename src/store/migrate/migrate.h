// Migrate: copies every key of one store into another, whatever their backends, from one
// consistent snapshot of the source, in transactions that fit the destination's limits, and
// then verifies the destination by key count and content hash. `plinth migrate` is the
// command-line face of this call.
//
// What is copied, and what is not:
//   * Keys and values only. Revisions are not preserved: the destination assigns its own, so
//     a key's create_revision and mod_revision differ after the copy, and watchers of the
//     destination see the copy as new transactions. History (the change log) is not copied.
//   * The source snapshot is the point in time. Writes made to the source after Migrate opens
//     its snapshot are not copied: stop writers first, or accept that later writes are lost.
//   * Nothing in the destination is ever overwritten: every destination transaction asserts
//     Condition::Absent for each key it writes.
#ifndef PLINTH_STORE_MIGRATE_MIGRATE_H_
#define PLINTH_STORE_MIGRATE_MIGRATE_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/status.h"
#include "store/store.h"

namespace plinth::store {

// Where a migration is, as reported to MigrateOptions::progress.
struct MigrateProgress {
  enum class Phase {
    kValidating,  // scanning the source snapshot: limits, collisions, content hash
    kCopying,     // writing into the destination
    kVerifying,   // reading the destination back
  };
  Phase phase = Phase::kValidating;
  // Keys (and their key + value bytes) the current phase has dealt with so far: scanned while
  // validating or verifying, committed to the destination while copying. Never decreases
  // within a phase; starts again from 0 when the phase changes.
  int64_t keys = 0;
  int64_t bytes = 0;
  // Keys in the source snapshot (Count at the snapshot's revision), known from the start.
  int64_t total_keys = 0;
  // Key + value bytes in the source snapshot; 0 until validation has finished.
  int64_t total_bytes = 0;
  // Destination transactions committed so far.
  int64_t transactions = 0;
};

struct MigrateOptions {
  // Keys per source Range page. Must be at least 1. A page holding more than about 32 MiB of
  // values makes the next pages smaller, so memory stays bounded when values are large.
  size_t page_size = 1000;
  // Upper bounds on each destination transaction, on top of the destination's own Limits
  // (max_ops_per_txn, max_txn_bytes), which always apply. 0 = the destination's limit only.
  // Smaller transactions keep each one cheap for the destination; a key/value pair larger
  // than max_txn_bytes still goes, alone, if it fits the destination's limits.
  size_t max_keys_per_txn = 1000;
  size_t max_txn_bytes = 8 << 20;
  // By default a destination holding any key is refused (FailedPrecondition naming the
  // count). When true, keys may be copied next to existing ones as long as no key exists on
  // both sides; a key that does fails the migration (FailedPrecondition, see Migrate).
  bool allow_non_empty_destination = false;
  // Called on the calling thread at the start of each phase, after every page scanned while
  // validating or verifying, and after every destination transaction committed. May be empty.
  // Must not call into the Store objects being migrated.
  std::function<void(const MigrateProgress&)> progress;
  // Measures MigrateReport::elapsed. Not owned; must outlive the call.
  Clock* clock = RealClock();
};

// The outcome of a migration that completed and verified.
struct MigrateReport {
  int64_t keys = 0;          // keys copied
  int64_t bytes = 0;         // key + value bytes copied
  int64_t transactions = 0;  // destination transactions committed
  // The revision of the source snapshot everything was read from.
  Revision source_revision = 0;
  // The destination revision at which the copy was verified (the destination's own numbering).
  Revision destination_revision = 0;
  std::chrono::nanoseconds elapsed{0};
  // Lower-case hex SHA-256 of the copied content (see ContentHasher); the same for source
  // and destination once verified.
  std::string content_sha256;
};

// Copies every key of `from` into `to` and verifies the copy. `from` and `to` must be
// different stores; neither is owned. Thread-compatible: do not call concurrently with another
// Migrate into the same destination.
//
// Steps:
//   1. Opens one Snapshot of `from`; every source read comes from it. Counts its keys.
//   2. Counts `to`'s keys. If there are any and !allow_non_empty_destination:
//      FailedPrecondition naming the count; nothing is written.
//   3. Validates: scans the whole snapshot, checking every key and value against `to`'s
//      limits (max_key_bytes, max_value_bytes, and key + value <= max_txn_bytes) and, when the
//      destination is not empty, that no source key already exists there; computes the
//      content hash. Any problem fails here, before anything is written:
//        ResourceExhausted  - a key or value does not fit; the message names the first such
//                             key (PrintableKey), its size, and the destination's limit.
//        FailedPrecondition - a source key already exists in the destination; names it.
//                             (Not Aborted: retrying cannot help until someone changes the
//                             destination. Not AlreadyExists, which this contract keeps for a
//                             single object the caller tried to create.)
//   4. Copies: re-reads the snapshot page by page (Range with after = last key) and commits
//      the pairs into `to` in transactions within the destination's limits and the options'
//      bounds, each asserting Condition::Absent for every key it writes.
//   5. Verifies: reads `to` back at one revision and compares the number of keys and the
//      content hash with the source snapshot's (for a non-empty destination, only the keys
//      the source holds take part). DataLoss naming both counts and both hashes on mismatch.
//
// Errors (other than those above) keep the code of the store call that failed, with context
// saying which store and step:
//   InvalidArgument    - page_size 0, no clock, or `from` and `to` the same object.
//   FailedPrecondition - also when a destination transaction is refused because one of its
//                        keys appeared after validation (a concurrent writer): nothing is
//                        overwritten.
//   Unavailable        - a store could not be reached.
//   OutOfRange         - the source snapshot was compacted away while being read (memory,
//                        etcd); stop writers or raise retention and run again.
//   Aborted            - a destination transaction kept losing to concurrent writers.
// A failure during step 4 or 5 leaves the transactions already committed in the destination;
// the message says how many keys that is. Such a destination must be emptied before running
// again: a re-run refuses it, as non-empty or, with allow_non_empty_destination, because its
// keys collide with the source's.
StatusOr<MigrateReport> Migrate(Store& from, Store& to, const MigrateOptions& options = {});

// The content hash Migrate computes: SHA-256 over every pair in ascending key order, each fed
// as an 8-byte big-endian key length, the key bytes, an 8-byte big-endian value length and the
// value bytes. Revisions are not part of it, so a store and its copy hash the same.
// Not thread-safe.
class ContentHasher {
 public:
  ContentHasher();
  ~ContentHasher();
  ContentHasher(const ContentHasher&) = delete;
  ContentHasher& operator=(const ContentHasher&) = delete;

  // Pairs must be added in ascending key order for the result to be comparable.
  void Add(std::string_view key, std::string_view value);
  // Lower-case hex digest of everything added. Call once; Add after it is not allowed.
  std::string HexDigest();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace plinth::store

#endif  // PLINTH_STORE_MIGRATE_MIGRATE_H_
