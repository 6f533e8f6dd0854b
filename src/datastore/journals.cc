// CA journals (spec §C7) on the mirror. New journals take their id from the mirrored counter
// key journal-next, read and bumped in the creating transaction (conditioned on its
// mod_revision, or on its absence before the first journal), so ids are unique across
// replicas and never reused.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "datastore/datastore.h"
#include "datastore/internal/impl.h"
#include "datastore/internal/state.h"
#include "store/store.h"

namespace plinth::datastore {

namespace {

using internal::DatastoreState;
using internal::TxnBudget;
using store::Condition;
using store::Op;
using store::Revision;
using store::TxnRequest;

// Whether every X.509 CA and JWT key of the journal has expired by `t` (not_after <= t). WIT
// keys are ignored and a journal without authorities counts as expired, as in SPIRE.
StatusOr<bool> JournalExpired(const v1::CAJournal& journal, int64_t t) {
  v1::CAJournalData data;
  if (!data.ParseFromString(journal.data())) {
    return InternalError("datastore: failed to parse CA journal " + std::to_string(journal.id()) +
                         ": data is not a CAJournalData");
  }
  for (const auto& ca : data.x509_cas()) {
    if (ca.not_after() > t) return false;
  }
  for (const auto& key : data.jwt_keys()) {
    if (key.not_after() > t) return false;
  }
  return true;
}

}  // namespace

StatusOr<v1::CAJournal> DataStore::SetCAJournal(const v1::CAJournal& journal) {
  if (journal.id() < 0) {
    return internal::ValidationError("invalid ca journal: id " + std::to_string(journal.id()) +
                                     " is negative");
  }
  v1::CAJournal result;
  PLINTH_RETURN_IF_ERROR(
      impl_->Write([&](const DatastoreState& state, Revision) -> StatusOr<TxnRequest> {
        result = journal;
        TxnRequest txn;
        if (journal.id() == 0) {
          result.set_id(state.journal_next);
          const std::string next_key = impl_->keys.JournalNext();
          txn.conditions.push_back(
              state.journal_next_mod_revision == 0
                  ? Condition::Absent(next_key)
                  : Condition::ModRevisionIs(next_key, state.journal_next_mod_revision));
          const std::string key = impl_->keys.Journal(result.id());
          txn.conditions.push_back(Condition::Absent(key));
          PLINTH_ASSIGN_OR_RETURN(std::string value, internal::Encode(result));
          txn.ops.push_back(Op::Put(key, std::move(value)));
          txn.ops.push_back(Op::Put(next_key, std::to_string(result.id() + 1)));
          return txn;
        }
        auto it = state.journals.find(journal.id());
        if (it == state.journals.end()) {
          return internal::NotFoundError("ca journal " + std::to_string(journal.id()));
        }
        const std::string key = impl_->keys.Journal(journal.id());
        PLINTH_ASSIGN_OR_RETURN(std::string value, internal::Encode(result));
        txn.conditions.push_back(Condition::ModRevisionIs(key, it->second.mod_revision));
        txn.ops.push_back(Op::Put(key, std::move(value)));
        return txn;
      }));
  return result;
}

StatusOr<v1::CAJournal> DataStore::FetchCAJournal(const std::string& active_x509_authority_id) {
  if (active_x509_authority_id.empty()) {
    return InvalidArgumentError(
        "datastore: active X509 authority ID is required (active_x509_authority_id)");
  }
  return impl_->Read([&](const DatastoreState& state, Revision) -> StatusOr<v1::CAJournal> {
    // The newest journal for the authority: the one with the highest id.
    for (auto it = state.journals.rbegin(); it != state.journals.rend(); ++it) {
      if (it->second.value->active_x509_authority_id() == active_x509_authority_id) {
        return *it->second.value;
      }
    }
    return internal::NotFoundError("ca journal for active X509 authority \"" +
                                   active_x509_authority_id + "\"");
  });
}

StatusOr<int64_t> DataStore::PruneCAJournals(int64_t expires_before_unix) {
  int64_t pruned = 0;
  while (true) {
    int64_t batch = 0;
    PLINTH_RETURN_IF_ERROR(
        impl_->Write([&](const DatastoreState& state, Revision) -> StatusOr<TxnRequest> {
          batch = 0;
          TxnRequest txn;
          TxnBudget budget(impl_->limits);
          for (const auto& [id, stored] : state.journals) {
            PLINTH_ASSIGN_OR_RETURN(const bool expired,
                                    JournalExpired(*stored.value, expires_before_unix));
            if (!expired) continue;
            const TxnBudget::Mark mark = TxnBudget::MarkOf(txn);
            const std::string key = impl_->keys.Journal(id);
            txn.conditions.push_back(Condition::ModRevisionIs(key, stored.mod_revision));
            txn.ops.push_back(Op::Delete(key));
            if (!budget.Accept(&txn, mark)) break;
            ++batch;
          }
          return txn;
        }));
    if (batch == 0) return pruned;
    pruned += batch;
  }
}

std::vector<v1::CAJournal> DataStore::ListCAJournalsForTesting() {
  return impl_->Read([](const DatastoreState& state, Revision) {
    std::vector<v1::CAJournal> out;
    for (const auto& [id, stored] : state.journals) out.push_back(*stored.value);
    return out;
  });
}

}  // namespace plinth::datastore
