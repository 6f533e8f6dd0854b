// Join tokens (spec §C7) on the mirror: one key per token, expiry in unix seconds.
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

Status TokenNotFound(std::string_view token) {
  return internal::NotFoundError("join token \"" + std::string(token) + "\"");
}

}  // namespace

Status DataStore::CreateJoinToken(const v1::JoinToken& token) {
  // SPIRE fails these with a plain error; plinth says which field is wrong.
  if (token.token().empty())
    return internal::ValidationError("invalid join token: token is required");
  if (token.expiry() == 0)
    return internal::ValidationError("invalid join token: expiry is required");
  PLINTH_ASSIGN_OR_RETURN(std::string value, internal::Encode(token));
  const std::string key = impl_->keys.Token(token.token());
  return impl_
      ->Write([&](const DatastoreState& state, Revision) -> StatusOr<TxnRequest> {
        if (state.tokens.count(token.token()) != 0) {
          return AlreadyExistsError("datastore: join token \"" + token.token() +
                                    "\" already exists");
        }
        TxnRequest txn;
        txn.conditions.push_back(Condition::Absent(key));
        txn.ops.push_back(Op::Put(key, value));
        return txn;
      })
      .status();
}

StatusOr<v1::JoinToken> DataStore::FetchJoinToken(const std::string& token) {
  return impl_->Read([&](const DatastoreState& state, Revision) -> StatusOr<v1::JoinToken> {
    auto it = state.tokens.find(token);
    if (it == state.tokens.end()) return TokenNotFound(token);
    return *it->second.value;
  });
}

Status DataStore::DeleteJoinToken(const std::string& token) {
  const std::string key = impl_->keys.Token(token);
  return impl_
      ->Write([&](const DatastoreState& state, Revision) -> StatusOr<TxnRequest> {
        auto it = state.tokens.find(token);
        if (it == state.tokens.end()) return TokenNotFound(token);
        TxnRequest txn;
        txn.conditions.push_back(Condition::ModRevisionIs(key, it->second.mod_revision));
        txn.ops.push_back(Op::Delete(key));
        return txn;
      })
      .status();
}

StatusOr<int64_t> DataStore::PruneJoinTokens(int64_t expires_before_unix) {
  // As many deletions per transaction as the store takes; each conditioned on the token it
  // read, so concurrent prunes on other replicas only cause a re-plan.
  int64_t pruned = 0;
  while (true) {
    int64_t batch = 0;
    PLINTH_RETURN_IF_ERROR(impl_->Write([&](const DatastoreState& state, Revision) {
      batch = 0;
      TxnRequest txn;
      TxnBudget budget(impl_->limits);
      for (const auto& [id, stored] : state.tokens) {
        if (stored.value->expiry() >= expires_before_unix) continue;
        const TxnBudget::Mark mark = TxnBudget::MarkOf(txn);
        const std::string key = impl_->keys.Token(id);
        txn.conditions.push_back(Condition::ModRevisionIs(key, stored.mod_revision));
        txn.ops.push_back(Op::Delete(key));
        if (!budget.Accept(&txn, mark)) break;
        ++batch;
      }
      return StatusOr<TxnRequest>(std::move(txn));
    }));
    if (batch == 0) return pruned;
    pruned += batch;
  }
}

}  // namespace plinth::datastore
