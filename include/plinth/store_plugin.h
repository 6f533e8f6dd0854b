/* The plinth store plugin ABI: the whole contract between plinth and a store backend built
 * outside its tree as a shared object. Pure C, so a plugin can be written in any language
 * and built with any compiler. Semantics are exactly those of plinth's store contract
 * (src/store/store.h): revisions, conditions, watch and compaction mean the same here.
 *
 * Loading. plinth opens "plugin:///path/to/libNAME.so?opt=value&..." with
 * dlopen(RTLD_NOW | RTLD_LOCAL) and calls the one entry symbol derived from the file name:
 * NAME is the base name without a leading "lib" and without ".so" and anything after it,
 * with every character that is not a letter or digit replaced by '_'; the symbol is
 * "plinth_store_plugin_" NAME. For libplinth_memory_store.so that is
 * plinth_store_plugin_plinth_memory_store. The URL's options are handed to open() as
 * decoded name/value pairs; the plugin must reject options it does not know.
 *
 * Compatibility. The entry returns a table whose first fields are the ABI version and the
 * table's size as the plugin was built. Fields are only ever appended: a host reads only the
 * fields that fit in struct_size, and a plugin built against an older header simply lacks the
 * newer ones. A new major ABI version is a new, incompatible contract.
 *
 * Memory. Nothing allocated on one side is freed on the other. Data the plugin hands to the
 * host (keys, values, events, error messages) is passed to host callbacks and is only valid
 * during the call; the host copies what it keeps. Data the host hands to the plugin is valid
 * only during the call that receives it.
 *
 * Errors. Every fallible function returns a status code: 0 (PLINTH_OK) or one of the
 * canonical gRPC codes below, and on failure may describe the problem by calling
 * err->set(err->ctx, message, length) once.
 *
 * Threads. Store-level functions may be called from any thread concurrently. A snapshot or
 * a watch is used by one thread at a time, except watch_cancel, which may be called from
 * any thread while watch_next blocks.
 */
#ifndef PLINTH_STORE_PLUGIN_H_
#define PLINTH_STORE_PLUGIN_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PLINTH_STORE_PLUGIN_ABI_VERSION 1

/* Status codes: the canonical gRPC codes. */
enum {
  PLINTH_OK = 0,
  PLINTH_CANCELLED = 1,
  PLINTH_UNKNOWN = 2,
  PLINTH_INVALID_ARGUMENT = 3,
  PLINTH_DEADLINE_EXCEEDED = 4,
  PLINTH_NOT_FOUND = 5,
  PLINTH_ALREADY_EXISTS = 6,
  PLINTH_PERMISSION_DENIED = 7,
  PLINTH_RESOURCE_EXHAUSTED = 8,
  PLINTH_FAILED_PRECONDITION = 9,
  PLINTH_ABORTED = 10,
  PLINTH_OUT_OF_RANGE = 11,
  PLINTH_UNIMPLEMENTED = 12,
  PLINTH_INTERNAL = 13,
  PLINTH_UNAVAILABLE = 14,
  PLINTH_DATA_LOSS = 15,
  PLINTH_UNAUTHENTICATED = 16
};

/* Opaque handles, defined by the plugin. */
typedef struct plinth_store plinth_store;
typedef struct plinth_snapshot plinth_snapshot;
typedef struct plinth_watch plinth_watch;

/* A byte string: `len` bytes at `data` (which may be NULL when len is 0). */
typedef struct plinth_bytes {
  const uint8_t* data;
  size_t len;
} plinth_bytes;

/* Where a failing call may describe its error. */
typedef struct plinth_error {
  void* ctx;
  void (*set)(void* ctx, const char* message, size_t len);
} plinth_error;

/* A half-open key range [start, end); an empty end means "no upper bound". */
typedef struct plinth_span {
  plinth_bytes start;
  plinth_bytes end;
} plinth_span;

typedef struct plinth_kv {
  plinth_bytes key;
  plinth_bytes value;
  int64_t create_revision;
  int64_t mod_revision;
} plinth_kv;

/* Receives one result; returns 0 to continue, non-zero to stop early. */
typedef int (*plinth_kv_visitor)(void* ctx, const plinth_kv* kv);

typedef struct plinth_limits {
  uint64_t max_key_bytes;
  uint64_t max_value_bytes;
  uint64_t max_ops_per_txn;
  uint64_t max_txn_bytes;
} plinth_limits;

enum {
  PLINTH_CONDITION_ABSENT = 0,          /* key does not exist */
  PLINTH_CONDITION_MOD_REVISION_IS = 1, /* key exists at mod_revision == revision */
  PLINTH_CONDITION_UNCHANGED_SINCE = 2  /* nothing in span changed after revision */
};

typedef struct plinth_condition {
  int kind;
  plinth_bytes key;
  plinth_span span;
  int64_t revision;
} plinth_condition;

enum { PLINTH_OP_PUT = 0, PLINTH_OP_DELETE = 1, PLINTH_OP_DELETE_RANGE = 2 };

typedef struct plinth_op {
  int kind;
  plinth_bytes key;   /* PUT, DELETE */
  plinth_bytes value; /* PUT */
  plinth_span span;   /* DELETE_RANGE */
} plinth_op;

typedef struct plinth_txn {
  const plinth_condition* conditions;
  size_t num_conditions;
  const plinth_op* ops;
  size_t num_ops;
} plinth_txn;

enum { PLINTH_EVENT_PUT = 0, PLINTH_EVENT_DELETE = 1 };

typedef struct plinth_event {
  int type;
  plinth_kv kv;
} plinth_event;

/* One committed transaction's events under a watched span (none: a progress notice). */
typedef struct plinth_watch_batch {
  int64_t revision;
  const plinth_event* events;
  size_t num_events;
} plinth_watch_batch;

typedef void (*plinth_batch_visitor)(void* ctx, const plinth_watch_batch* batch);

typedef struct plinth_option {
  plinth_bytes name;
  plinth_bytes value;
} plinth_option;

/* The plugin's function table. Every function is required. */
typedef struct plinth_store_plugin_api {
  uint32_t abi_version; /* PLINTH_STORE_PLUGIN_ABI_VERSION the plugin was built with */
  uint32_t struct_size; /* sizeof(plinth_store_plugin_api) the plugin was built with */
  const char* name;     /* backend name, e.g. "memory" */

  /* Opens a store; `location` is the part of the URL after "plugin://" and before "?". */
  int (*open)(plinth_bytes location, const plinth_option* options, size_t num_options,
              plinth_store** out, plinth_error* err);
  void (*close)(plinth_store* store);
  void (*limits)(plinth_store* store, plinth_limits* out);

  /* Reads: every read goes through a snapshot pinned at one revision. */
  int (*snapshot_open)(plinth_store* store, plinth_snapshot** out, int64_t* revision,
                       plinth_error* err);
  void (*snapshot_close)(plinth_snapshot* snapshot);
  /* PLINTH_NOT_FOUND if absent; otherwise calls visit once. */
  int (*snapshot_get)(plinth_snapshot* snapshot, plinth_bytes key, plinth_kv_visitor visit,
                      void* ctx, plinth_error* err);
  /* Keys in span, after `after` if non-empty, at most `limit` if non-zero, in byte order;
   * sets *more if the span holds further keys. */
  int (*snapshot_range)(plinth_snapshot* snapshot, const plinth_span* span, plinth_bytes after,
                        uint64_t limit, int keys_only, plinth_kv_visitor visit, void* ctx,
                        int* more, plinth_error* err);
  int (*snapshot_count)(plinth_snapshot* snapshot, const plinth_span* span, int64_t* count,
                        plinth_error* err);

  /* Applies txn atomically; *revision receives the new (or unchanged) revision. */
  int (*commit)(plinth_store* store, const plinth_txn* txn, int64_t* revision, plinth_error* err);

  int (*watch_open)(plinth_store* store, const plinth_span* span, int64_t from_revision,
                    int progress_notify, plinth_watch** out, plinth_error* err);
  /* Calls visit once with the next batch, or fails (DEADLINE_EXCEEDED after timeout_ms,
   * CANCELLED after watch_cancel, OUT_OF_RANGE, UNAVAILABLE). */
  int (*watch_next)(plinth_watch* watch, int64_t timeout_ms, plinth_batch_visitor visit, void* ctx,
                    plinth_error* err);
  void (*watch_cancel)(plinth_watch* watch);
  void (*watch_close)(plinth_watch* watch);

  int (*current_revision)(plinth_store* store, int64_t* revision, plinth_error* err);
  int (*compact)(plinth_store* store, int64_t revision, plinth_error* err);
  int (*compacted_revision)(plinth_store* store, int64_t* revision, plinth_error* err);
} plinth_store_plugin_api;

/* The entry point every plugin exports (under its derived name, see above). Returns the
 * plugin's table, or NULL if the plugin cannot serve a host of `host_abi_version`. */
typedef const plinth_store_plugin_api* (*plinth_store_plugin_entry)(uint32_t host_abi_version);

#ifdef __cplusplus
}
#endif

#endif /* PLINTH_STORE_PLUGIN_H_ */
