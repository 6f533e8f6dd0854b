// The etcd v3 backend: a store kept under one key prefix of an etcd cluster, spoken to over
// etcd's native gRPC API (stubs generated at build time from the protos Debian ships).
//
// URL: etcd://host:port[,host:port...]/<key prefix>?<options>
//   The path is the store's key prefix (required, e.g. "/plinth/prod"); a trailing "/" is
//   added if missing. Several stores may share one cluster under different prefixes, as long
//   as no store's prefix + "/" begins another's.
//   Options:
//     username=, password=   etcd authentication (Auth.Authenticate; the token is sent as
//                            "token" metadata and renewed when etcd reports it invalid)
//     tls=true|false         TLS to the endpoints (default false)
//     tls_ca=, tls_cert=, tls_key=   PEM files: the CA to trust (default: system roots), and a
//                            client certificate and key (both or neither); any of them turns
//                            TLS on
//     timeout=5s             deadline of each call, across all endpoint attempts
//     retention=100000       revisions of history kept: once history exceeds twice this, a
//                            commit compacts to current - retention (0 = never automatically)
//     max_key_bytes=, max_value_bytes=, max_ops=, max_txn_bytes=   lower the limits below
//   Unknown options are rejected.
//
// Key layout under the prefix P (P ends with "/"):
//   P "d/" <key>          a live user key; its value is a 16-byte header, our create_revision
//                         and mod_revision as big-endian int64, followed by the user's value
//   P "m/rev"             the store's revision counter (decimal); absent = revision 0
//   P "w/" <%016x R>      one entry per committed revision R: a 16-byte transaction id, then
//                         each changed key of the transaction ('P' or 'D', 4-byte big-endian
//                         length, key). Its etcd create_revision is the etcd revision of our R.
//   P "m/compact"         the store's compaction point (decimal); absent = 0
//
// Revisions. etcd's revision is cluster-wide (other prefixes bump it too), so the store keeps
// its own gap-free counter. Every write is one etcd Txn that compares P"m/rev" (and
// P"m/compact") by mod_revision against what the commit read, and puts counter+1, the log
// entry and the data: commits serialize on the counter key, so etcd's own linearizability
// makes our revisions gap-free and commit-ordered. Because every write of the store touches the
// counter, "the counter is unchanged" proves that nothing the commit read has changed: Commit
// reads everything it needs (counter, compaction point, the keys its conditions and operations
// name, the live keys of its DeleteRanges, and the log after each kUnchangedSince revision) at
// one etcd revision, evaluates the conditions and resolves the operations locally, and sends
// the Txn guarded only by those two compares. If they fail (another writer won), it re-reads
// and re-evaluates, so a condition that no longer holds ends as Aborted and one that still
// holds commits. kUnchangedSince is checked against the log, which names deleted keys too
// (etcd's range compares only see keys that still exist). A write whose outcome is unknown
// (a timeout, a member lost) is retried with the same compares; the log entry's transaction id
// tells a retry whether the earlier attempt committed, so it is never applied twice.
//
// Limits. etcd accepts at most 128 operations (--max-txn-ops) and 1.5 MiB (--max-request-bytes)
// per request by default; a commit needs 2 operations of its own plus one per key it puts or
// deletes, and its request carries each changed key twice (data and log). The declared limits leave
// room for that: 126 operations, keys of 4096 bytes, and about 1 MiB of keys and values per
// transaction (less 128 bytes per prefix byte). A DeleteRange counts one operation against max_ops;
// it becomes one etcd DeleteRange per run of the live keys it deletes that no other change of the
// transaction interrupts (usually one), and its deleted keys are listed in the log entry. A
// transaction that ends up over etcd's limits fails with ResourceExhausted and writes nothing:
// it is never split.
//
// Watch. One etcd Watch over [P "d/", P "m0") (the data, counter and compaction point; not the
// log) from the etcd revision of the first wanted revision (the log entry's create_revision).
// Events are grouped by etcd revision; a group holding a put of the counter is one of our
// transactions, whose revision is the counter's value; its data events are filtered to the watched
// span and sorted by key. Progress notices come from our own counter (transactions that touched
// nothing in the span), never from etcd's progress notifications (etcd #15220 affects 3.4.23). A
// broken stream is reopened, on the next endpoint, from the etcd revision after the last one
// processed; it gives up with Unavailable after 30 s without a connection. A compacted start
// revision is OutOfRange.
//
// Compaction. Compact(R) is a Txn guarded by a compare on P"m/compact": it records R and deletes
// the log entries through R; then it asks etcd to compact at the etcd revision of our R. etcd's
// compaction is cluster-wide: it also ends older history of other stores on the cluster
// (their watches from before it fail with OutOfRange and their snapshots from before it read
// OutOfRange), which the contract allows but which operators sharing a cluster should know.
//
// Costs. A commit reads the current value of every key it puts (for its create_revision) and a
// kUnchangedSince condition reads the log entries after its revision; a keys_only Range still
// transfers the values, because our revisions live in the value header.
//
// Every read is linearizable (etcd's default); a Range or Count reads the counter in the same
// read-only Txn, so the revision it reports is the one it read at.
//
// Snapshots read with Range at the etcd revision pinned when they were opened; once etcd has
// compacted past it they fail with OutOfRange.
#ifndef PLINTH_STORE_ETCD_ETCD_STORE_H_
#define PLINTH_STORE_ETCD_ETCD_STORE_H_

#include <memory>

#include "store/registry.h"
#include "store/store.h"

namespace plinth::store::etcd {

StatusOr<std::unique_ptr<Store>> OpenEtcdStore(const StoreUrl& url, const OpenOptions& options);

}  // namespace plinth::store::etcd

#endif  // PLINTH_STORE_ETCD_ETCD_STORE_H_
