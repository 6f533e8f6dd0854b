// Bundles (spec §C2) on the mirror: create, fetch, list, update, set, append, delete (with
// the three modes for entries that federate with the bundle), prune, and taint/revoke of
// X.509 roots and JWT keys.
//
// Cross-replica rules:
//   - An entry that federates with a trust domain is written with ModRevisionIs(bundle key) and
//     a fedlink index key (AppendEntryWrite), so it cannot commit after the bundle is deleted.
//   - DeleteBundle commits with UnchangedSince(fedlink prefix, applied), so it cannot commit
//     after an entry started federating with the bundle on another replica: it re-plans and
//     then sees that entry (Restrict fails, Delete/Dissociate handle it).
// Deviations from SPIRE (DESIGN.md): DeleteBundle's effect on entries goes through the
// revision stream like any other write; PruneBundle keeps refresh_hint and never expires a
// JWT/WIT key with not_after = 0.
#include <google/protobuf/util/message_differencer.h>
#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstdint>
#include <ctime>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "datastore/datastore.h"
#include "datastore/internal/impl.h"
#include "datastore/internal/state.h"
#include "store/key_span.h"
#include "store/store.h"

namespace plinth::datastore {

namespace {

using google::protobuf::util::MessageDifferencer;
using internal::DatastoreState;
using internal::Stored;
using internal::TxnBudget;
using store::Condition;
using store::KeySpan;
using store::Op;
using store::Revision;
using store::TxnRequest;

using internal::Quoted;

Status ValidateBundle(const v1::Bundle& bundle) {
  if (bundle.trust_domain_id().empty()) {
    return internal::ValidationError("invalid bundle: trust_domain_id is required");
  }
  return Status::Ok();
}

Status BundleNotFound(std::string_view trust_domain_id) {
  return internal::NotFoundError("bundle " + Quoted(trust_domain_id));
}

// The text of OpenSSL's most recent error (and clears the queue), for messages.
std::string OpenSslError() {
  const unsigned long code = ERR_get_error();  // NOLINT(google-runtime-int): OpenSSL's type
  ERR_clear_error();
  if (code == 0) return "malformed DER";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof(buf));
  return buf;
}

using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;

// Parses every certificate of a DER chain (one or more concatenated certificates).
StatusOr<std::vector<X509Ptr>> ParseDerChain(const std::string& der) {
  std::vector<X509Ptr> certs;
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  const unsigned char* const end = p + der.size();
  if (p == end) return InvalidArgumentError("empty DER");
  while (p < end) {
    X509* cert = d2i_X509(nullptr, &p, end - p);
    if (cert == nullptr) return InvalidArgumentError(OpenSslError());
    certs.emplace_back(cert, &X509_free);
  }
  return certs;
}

// Lowercase hex of the Subject Key Identifier of the first certificate in `der` ("" if it has
// none), as SPIRE's x509util.SubjectKeyIDToString.
StatusOr<std::string> SubjectKeyIdOf(const std::string& der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())), &X509_free);  // NOLINT
  if (cert == nullptr) return InvalidArgumentError(OpenSslError());
  const ASN1_OCTET_STRING* skid = X509_get0_subject_key_id(cert.get());
  std::string hex;
  if (skid == nullptr) return hex;
  static constexpr char kDigits[] = "0123456789abcdef";
  const unsigned char* bytes = ASN1_STRING_get0_data(skid);
  for (int i = 0; i < ASN1_STRING_length(skid); ++i) {
    hex.push_back(kDigits[bytes[i] >> 4]);
    hex.push_back(kDigits[bytes[i] & 0xf]);
  }
  return hex;
}

// Whether any certificate of the chain has NotAfter <= t (spec §C2: the whole chain goes).
StatusOr<bool> ChainExpiresBy(const std::string& der, int64_t t) {
  PLINTH_ASSIGN_OR_RETURN(std::vector<X509Ptr> certs, ParseDerChain(der));
  for (const X509Ptr& cert : certs) {
    const int cmp = ASN1_TIME_cmp_time_t(X509_get0_notAfter(cert.get()), static_cast<time_t>(t));
    if (cmp == -2) return InvalidArgumentError("unreadable notAfter");
    if (cmp <= 0) return true;
  }
  return false;
}

template <typename T>
bool ContainsEqual(const google::protobuf::RepeatedPtrField<T>& list, const T& item) {
  return std::any_of(list.begin(), list.end(),
                     [&](const T& x) { return MessageDifferencer::Equals(x, item); });
}

// Appends to `*out` each item of `in` not already present (exact equality, tainted_key
// included). Returns how many were appended.
template <typename T>
int AppendMissing(const google::protobuf::RepeatedPtrField<T>& in,
                  google::protobuf::RepeatedPtrField<T>* out) {
  int added = 0;
  for (const T& item : in) {
    if (ContainsEqual(*out, item)) continue;
    *out->Add() = item;
    ++added;
  }
  return added;
}

// Keeps the keys that have not expired by `t`. A key with not_after = 0 never expires (plinth
// deviation: SPIRE prunes it).
google::protobuf::RepeatedPtrField<v1::PublicKey> UnexpiredKeys(
    const google::protobuf::RepeatedPtrField<v1::PublicKey>& keys, int64_t t) {
  google::protobuf::RepeatedPtrField<v1::PublicKey> out;
  for (const v1::PublicKey& key : keys) {
    if (key.not_after() == 0 || key.not_after() > t) *out.Add() = key;
  }
  return out;
}

// A plan that rewrites one existing bundle: `modify` gets the stored bundle and edits a copy;
// returning false means "nothing to change". Captures the result in `*result`.
template <typename Modify>
StatusOr<TxnRequest> PlanBundleRewrite(const internal::Keys& keys, const DatastoreState& state,
                                       const std::string& trust_domain_id, Modify&& modify,
                                       v1::Bundle* result) {
  auto it = state.bundles.find(trust_domain_id);
  if (it == state.bundles.end()) return BundleNotFound(trust_domain_id);
  *result = *it->second.value;
  PLINTH_ASSIGN_OR_RETURN(const bool changed, modify(result));
  TxnRequest txn;
  if (!changed) return txn;
  PLINTH_ASSIGN_OR_RETURN(std::string value, internal::Encode(*result));
  const std::string key = keys.Bundle(trust_domain_id);
  txn.conditions.push_back(Condition::ModRevisionIs(key, it->second.mod_revision));
  txn.ops.push_back(Op::Put(key, std::move(value)));
  return txn;
}

// The plan of taint and revoke: `edit` changes the key lists of the bundle of
// `trust_domain_id` (or fails, naming why); the bundle's sequence number then goes up by one,
// as in SPIRE.
template <typename Edit>
auto PlanKeyRewrite(const internal::Keys& keys, const std::string& trust_domain_id, Edit&& edit) {
  return [&keys, &trust_domain_id, &edit](const DatastoreState& state,
                                          Revision) -> StatusOr<TxnRequest> {
    v1::Bundle result;
    return PlanBundleRewrite(
        keys, state, trust_domain_id,
        [&](v1::Bundle* b) -> StatusOr<bool> {
          PLINTH_RETURN_IF_ERROR(edit(b));
          b->set_sequence_number(b->sequence_number() + 1);
          return true;
        },
        &result);
  };
}

}  // namespace

// ---- Reads

StatusOr<v1::Bundle> DataStore::FetchBundle(const std::string& trust_domain_id) {
  return impl_->Read([&](const DatastoreState& state, Revision) -> StatusOr<v1::Bundle> {
    auto it = state.bundles.find(trust_domain_id);
    if (it == state.bundles.end()) return BundleNotFound(trust_domain_id);
    return *it->second.value;
  });
}

StatusOr<int64_t> DataStore::CountBundles() {
  return impl_->Read([](const DatastoreState& state, Revision) {
    return static_cast<int64_t>(state.bundles.size());
  });
}

StatusOr<v1::ListBundlesResponse> DataStore::ListBundles(const v1::ListBundlesRequest& request) {
  PLINTH_ASSIGN_OR_RETURN(
      const internal::PageRequest page,
      internal::ParsePageRequest(request.has_pagination() ? &request.pagination() : nullptr));
  v1::ListBundlesResponse response;
  const bool more = impl_->Read([&](const DatastoreState& state, Revision) {
    return internal::PageOver(state.bundles, page,
                              [&](const auto& stored) { *response.add_bundles() = *stored.value; });
  });
  internal::SetNextPage(page, more, more ? response.bundles().rbegin()->trust_domain_id() : "",
                        &response);
  return response;
}

// ---- Writes

StatusOr<v1::Bundle> DataStore::CreateBundle(const v1::Bundle& bundle) {
  PLINTH_RETURN_IF_ERROR(ValidateBundle(bundle));
  PLINTH_ASSIGN_OR_RETURN(std::string value, internal::Encode(bundle));
  const std::string key = impl_->keys.Bundle(bundle.trust_domain_id());
  PLINTH_RETURN_IF_ERROR(
      impl_->Write([&](const DatastoreState& state, Revision) -> StatusOr<TxnRequest> {
        if (state.bundles.count(bundle.trust_domain_id()) != 0) {
          return AlreadyExistsError("datastore: bundle " + Quoted(bundle.trust_domain_id()) +
                                    " already exists");
        }
        TxnRequest txn;
        txn.conditions.push_back(Condition::Absent(key));
        txn.ops.push_back(Op::Put(key, value));
        return txn;
      }));
  return bundle;
}

StatusOr<v1::Bundle> DataStore::UpdateBundle(const v1::Bundle& bundle, const v1::BundleMask* mask) {
  PLINTH_RETURN_IF_ERROR(ValidateBundle(bundle));
  v1::Bundle result;
  PLINTH_RETURN_IF_ERROR(impl_->Write([&](const DatastoreState& state, Revision) {
    return PlanBundleRewrite(
        impl_->keys, state, bundle.trust_domain_id(),
        [&](v1::Bundle* b) -> StatusOr<bool> {
          // No mask: every field, so the caller's sequence number wins (spec §C2).
          if (mask == nullptr || mask->refresh_hint()) b->set_refresh_hint(bundle.refresh_hint());
          if (mask == nullptr || mask->root_cas()) *b->mutable_root_cas() = bundle.root_cas();
          if (mask == nullptr || mask->jwt_signing_keys()) {
            *b->mutable_jwt_signing_keys() = bundle.jwt_signing_keys();
          }
          if (mask == nullptr || mask->wit_signing_keys()) {
            *b->mutable_wit_signing_keys() = bundle.wit_signing_keys();
          }
          if (mask == nullptr || mask->sequence_number()) {
            b->set_sequence_number(bundle.sequence_number());
          }
          return true;
        },
        &result);
  }));
  return result;
}

StatusOr<v1::Bundle> DataStore::SetBundle(const v1::Bundle& bundle) {
  PLINTH_RETURN_IF_ERROR(ValidateBundle(bundle));
  PLINTH_ASSIGN_OR_RETURN(std::string value, internal::Encode(bundle));
  const std::string key = impl_->keys.Bundle(bundle.trust_domain_id());
  // A blind overwrite: it depends on nothing it could read.
  PLINTH_RETURN_IF_ERROR(impl_->Write([&](const DatastoreState&, Revision) {
    TxnRequest txn;
    txn.ops.push_back(Op::Put(key, value));
    return StatusOr<TxnRequest>(std::move(txn));
  }));
  return bundle;
}

StatusOr<v1::Bundle> DataStore::AppendBundle(const v1::Bundle& bundle) {
  PLINTH_RETURN_IF_ERROR(ValidateBundle(bundle));
  const std::string key = impl_->keys.Bundle(bundle.trust_domain_id());
  v1::Bundle result;
  PLINTH_RETURN_IF_ERROR(
      impl_->Write([&](const DatastoreState& state, Revision) -> StatusOr<TxnRequest> {
        if (state.bundles.count(bundle.trust_domain_id()) == 0) {
          result = bundle;  // absent: created as given
          PLINTH_ASSIGN_OR_RETURN(std::string value, internal::Encode(result));
          TxnRequest txn;
          txn.conditions.push_back(Condition::Absent(key));
          txn.ops.push_back(Op::Put(key, std::move(value)));
          return txn;
        }
        return PlanBundleRewrite(
            impl_->keys, state, bundle.trust_domain_id(),
            [&](v1::Bundle* b) -> StatusOr<bool> {
              // refresh_hint is never merged.
              int added = AppendMissing(bundle.root_cas(), b->mutable_root_cas());
              added += AppendMissing(bundle.jwt_signing_keys(), b->mutable_jwt_signing_keys());
              added += AppendMissing(bundle.wit_signing_keys(), b->mutable_wit_signing_keys());
              if (added == 0) return false;
              b->set_sequence_number(b->sequence_number() + 1);
              return true;
            },
            &result);
      }));
  return result;
}

Status DataStore::DeleteBundle(const std::string& trust_domain_id, v1::DeleteBundleMode mode) {
  if (mode != v1::DELETE_BUNDLE_RESTRICT && mode != v1::DELETE_BUNDLE_DELETE &&
      mode != v1::DELETE_BUNDLE_DISSOCIATE) {
    return internal::ValidationError("invalid delete bundle mode " + std::to_string(mode));
  }
  const std::string bundle_key = impl_->keys.Bundle(trust_domain_id);
  const KeySpan fedlinks = KeySpan::Prefix(impl_->keys.FedLinkPrefix(trust_domain_id));
  // Each transaction handles as many federating entries as fit; the last one also deletes the
  // bundle. Earlier ones are idempotent entry writes, each conditioned on the entry it read.
  bool deleted = false;
  while (!deleted) {
    bool wrote = false;
    PLINTH_RETURN_IF_ERROR(impl_->Write([&](const DatastoreState& state,
                                            Revision applied) -> StatusOr<TxnRequest> {
      deleted = wrote = false;
      auto bundle = state.bundles.find(trust_domain_id);
      if (bundle == state.bundles.end()) return BundleNotFound(trust_domain_id);
      const auto federating = state.entries.FederatingWith(trust_domain_id);
      if (mode == v1::DELETE_BUNDLE_RESTRICT && !federating.empty()) {
        return FailedPreconditionError("datastore: cannot delete bundle; federated with " +
                                       std::to_string(federating.size()) + " registration entries");
      }
      TxnRequest txn;
      TxnBudget budget(impl_->limits);
      for (const Stored<v1::RegistrationEntry>* entry : federating) {
        const TxnBudget::Mark mark = TxnBudget::MarkOf(txn);
        if (mode == v1::DELETE_BUNDLE_DELETE) {
          internal::AppendEntryWrite(impl_->keys, state, entry, nullptr, &txn);
        } else {
          v1::RegistrationEntry updated = *entry->value;
          auto* tds = updated.mutable_federates_with();
          tds->erase(std::remove(tds->begin(), tds->end(), trust_domain_id), tds->end());
          updated.set_revision_number(updated.revision_number() + 1);
          internal::AppendEntryWrite(impl_->keys, state, entry, &updated, &txn);
        }
        if (!budget.Accept(&txn, mark)) {
          if (txn.ops.empty()) {
            return ResourceExhaustedError("datastore: an entry write for deleting bundle " +
                                          Quoted(trust_domain_id) +
                                          " exceeds the store's transaction limits");
          }
          wrote = true;
          return txn;  // the rest, and the bundle, in the next transaction
        }
      }
      const TxnBudget::Mark mark = TxnBudget::MarkOf(txn);
      txn.conditions.push_back(Condition::ModRevisionIs(bundle_key, bundle->second.mod_revision));
      txn.conditions.push_back(Condition::UnchangedSince(fedlinks, applied));
      txn.ops.push_back(Op::Delete(bundle_key));
      if (!budget.Accept(&txn, mark)) {
        wrote = true;
        return txn;
      }
      wrote = deleted = true;
      return txn;
    }));
    if (!wrote) return InternalError("datastore: deleting bundle made no progress");
  }
  return Status::Ok();
}

StatusOr<bool> DataStore::PruneBundle(const std::string& trust_domain_id,
                                      int64_t expires_before_unix) {
  bool changed = false;
  PLINTH_RETURN_IF_ERROR(
      impl_->Write([&](const DatastoreState& state, Revision) -> StatusOr<TxnRequest> {
        changed = false;
        if (state.bundles.count(trust_domain_id) == 0) return TxnRequest{};  // nothing to prune
        if (expires_before_unix == 0) {
          return internal::ValidationError("prune failed: expires_before must not be zero");
        }
        v1::Bundle result;
        return PlanBundleRewrite(
            impl_->keys, state, trust_domain_id,
            [&](v1::Bundle* b) -> StatusOr<bool> {
              google::protobuf::RepeatedPtrField<v1::X509Certificate> roots;
              for (int i = 0; i < b->root_cas_size(); ++i) {
                StatusOr<bool> expired =
                    ChainExpiresBy(b->root_cas(i).der_bytes(), expires_before_unix);
                if (!expired.ok()) {
                  return UnknownError(
                      "datastore: prune failed: cannot parse certificates of "
                      "root_cas[" +
                      std::to_string(i) + "]: " + std::string(expired.status().message()));
                }
                if (!*expired) *roots.Add() = b->root_cas(i);
              }
              if (roots.empty()) {
                return UnknownError("datastore: prune failed: would prune all certificates");
              }
              auto jwt = UnexpiredKeys(b->jwt_signing_keys(), expires_before_unix);
              if (b->jwt_signing_keys_size() > 0 && jwt.empty()) {
                return UnknownError("datastore: prune failed: would prune all JWT signing keys");
              }
              auto wit = UnexpiredKeys(b->wit_signing_keys(), expires_before_unix);
              if (b->wit_signing_keys_size() > 0 && wit.empty()) {
                return UnknownError("datastore: prune failed: would prune all WIT signing keys");
              }
              changed = roots.size() != b->root_cas_size() ||
                        jwt.size() != b->jwt_signing_keys_size() ||
                        wit.size() != b->wit_signing_keys_size();
              if (!changed) return false;
              // refresh_hint is kept (plinth deviation: SPIRE resets it to 0).
              *b->mutable_root_cas() = std::move(roots);
              *b->mutable_jwt_signing_keys() = std::move(jwt);
              *b->mutable_wit_signing_keys() = std::move(wit);
              b->set_sequence_number(b->sequence_number() + 1);
              return true;
            },
            &result);
      }));
  return changed;
}

Status DataStore::TaintX509CA(const std::string& trust_domain_id,
                              const std::string& subject_key_id) {
  if (subject_key_id.empty()) {
    return internal::ValidationError("subject_key_id is required");
  }
  return impl_
      ->Write(PlanKeyRewrite(
          impl_->keys, trust_domain_id,
          [&](v1::Bundle* b) -> Status {
            bool found = false;
            for (int i = 0; i < b->root_cas_size(); ++i) {
              v1::X509Certificate* ca = b->mutable_root_cas(i);
              StatusOr<std::string> skid = SubjectKeyIdOf(ca->der_bytes());
              if (!skid.ok()) {
                return InternalError("datastore: failed to parse rootCA: root_cas[" +
                                     std::to_string(i) +
                                     "]: " + std::string(skid.status().message()));
              }
              if (*skid != subject_key_id) continue;
              if (ca->tainted_key()) {
                return InvalidArgumentError(
                    "datastore: root CA is already tainted (subject key ID " +
                    Quoted(subject_key_id) + ")");
              }
              found = true;
              ca->set_tainted_key(true);
            }
            if (!found) {
              return NotFoundError("datastore: no ca found with provided subject key ID " +
                                   Quoted(subject_key_id));
            }
            return Status::Ok();
          }))
      .status();
}

Status DataStore::RevokeX509CA(const std::string& trust_domain_id,
                               const std::string& subject_key_id) {
  if (subject_key_id.empty()) {
    return internal::ValidationError("subject_key_id is required");
  }
  return impl_
      ->Write(PlanKeyRewrite(
          impl_->keys, trust_domain_id,
          [&](v1::Bundle* b) -> Status {
            bool found = false;
            google::protobuf::RepeatedPtrField<v1::X509Certificate> kept;
            for (int i = 0; i < b->root_cas_size(); ++i) {
              const v1::X509Certificate& ca = b->root_cas(i);
              StatusOr<std::string> skid = SubjectKeyIdOf(ca.der_bytes());
              if (!skid.ok()) {
                return InternalError("datastore: failed to parse root CA: root_cas[" +
                                     std::to_string(i) +
                                     "]: " + std::string(skid.status().message()));
              }
              if (*skid != subject_key_id) {
                *kept.Add() = ca;
                continue;
              }
              if (!ca.tainted_key()) {
                return InvalidArgumentError(
                    "datastore: it is not possible to revoke an untainted root CA (subject key "
                    "ID " +
                    Quoted(subject_key_id) + ")");
              }
              found = true;
            }
            if (!found) {
              return NotFoundError("datastore: no root CA found with provided subject key ID " +
                                   Quoted(subject_key_id));
            }
            *b->mutable_root_cas() = std::move(kept);
            return Status::Ok();
          }))
      .status();
}

StatusOr<v1::PublicKey> DataStore::TaintJWTKey(const std::string& trust_domain_id,
                                               const std::string& kid) {
  v1::PublicKey tainted;
  PLINTH_RETURN_IF_ERROR(
      impl_->Write(PlanKeyRewrite(impl_->keys, trust_domain_id, [&](v1::Bundle* b) -> Status {
        bool found = false;
        for (v1::PublicKey& key : *b->mutable_jwt_signing_keys()) {
          if (key.kid() != kid) continue;
          if (key.tainted_key()) {
            return InvalidArgumentError("datastore: key is already tainted (kid " + Quoted(kid) +
                                        ")");
          }
          if (found) {
            return InternalError("datastore: another JWT Key found with the same KeyID " +
                                 Quoted(kid));
          }
          found = true;
          key.set_tainted_key(true);
          tainted = key;
        }
        if (!found) {
          return NotFoundError("datastore: no JWT Key found with provided key ID " + Quoted(kid));
        }
        return Status::Ok();
      })));
  return tainted;
}

StatusOr<v1::PublicKey> DataStore::RevokeJWTKey(const std::string& trust_domain_id,
                                                const std::string& kid) {
  v1::PublicKey revoked;
  PLINTH_RETURN_IF_ERROR(
      impl_->Write(PlanKeyRewrite(impl_->keys, trust_domain_id, [&](v1::Bundle* b) -> Status {
        bool found = false;
        google::protobuf::RepeatedPtrField<v1::PublicKey> kept;
        for (const v1::PublicKey& key : b->jwt_signing_keys()) {
          if (key.kid() != kid) {
            *kept.Add() = key;
            continue;
          }
          if (found) {
            return InternalError("datastore: another key found with the same KeyID " + Quoted(kid));
          }
          if (!key.tainted_key()) {
            return InvalidArgumentError(
                "datastore: it is not possible to revoke an untainted key (kid " + Quoted(kid) +
                ")");
          }
          found = true;
          revoked = key;
        }
        if (!found) {
          return NotFoundError("datastore: no JWT Key found with provided key ID " + Quoted(kid));
        }
        *b->mutable_jwt_signing_keys() = std::move(kept);
        return Status::Ok();
      })));
  return revoked;
}

}  // namespace plinth::datastore
