// Federation relationships (spec §C7) on the mirror. The relationship is stored without its
// bundle; reads attach the trust domain's current bundle from the bundle table, and writes
// that carry a bundle set it in the same transaction (SetBundle's effect).
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "datastore/datastore.h"
#include "datastore/internal/impl.h"
#include "datastore/internal/state.h"
#include "store/store.h"

namespace plinth::datastore {

namespace {

using internal::DatastoreState;
using store::Condition;
using store::Op;
using store::Revision;
using store::TxnRequest;

constexpr std::string_view kProfileWeb = "https_web";
constexpr std::string_view kProfileSpiffe = "https_spiffe";
constexpr std::string_view kSpiffeScheme = "spiffe://";

// The bundle key of a relationship's trust domain: bundles are keyed by trust domain ID
// ("spiffe://example.org"), relationships by trust domain name ("example.org").
std::string TrustDomainId(std::string_view trust_domain) {
  if (trust_domain.substr(0, kSpiffeScheme.size()) == kSpiffeScheme) {
    return std::string(trust_domain);
  }
  return std::string(kSpiffeScheme) + std::string(trust_domain);
}

Status RelationshipNotFound(std::string_view trust_domain) {
  return internal::NotFoundError("federation relationship \"" + std::string(trust_domain) + "\"");
}

// SPIRE's validateFederationRelationship: only the fields the mask names are checked.
Status Validate(const v1::FederationRelationship& fr, const v1::FederationRelationshipMask& mask) {
  if (fr.trust_domain().empty()) {
    return InvalidArgumentError("datastore: trust domain is required (trust_domain)");
  }
  if (mask.bundle_endpoint_url() && fr.bundle_endpoint_url().empty()) {
    return InvalidArgumentError("datastore: bundle endpoint URL is required (bundle_endpoint_url)");
  }
  if (mask.bundle_endpoint_profile()) {
    if (fr.bundle_endpoint_profile() == kProfileSpiffe) {
      if (fr.endpoint_spiffe_id().empty()) {
        return InvalidArgumentError(
            "datastore: bundle endpoint SPIFFE ID is required (endpoint_spiffe_id)");
      }
    } else if (fr.bundle_endpoint_profile() != kProfileWeb) {
      return InvalidArgumentError("datastore: unknown bundle endpoint profile type: \"" +
                                  fr.bundle_endpoint_profile() + "\" (bundle_endpoint_profile)");
    }
  }
  if (mask.trust_domain_bundle() && fr.has_trust_domain_bundle() &&
      fr.trust_domain_bundle().trust_domain_id().empty()) {
    return InvalidArgumentError(
        "datastore: trust_domain_bundle.trust_domain_id is required with a bundle");
  }
  return Status::Ok();
}

// The stored form: no bundle, and an endpoint SPIFFE ID only for https_spiffe.
v1::FederationRelationship ForStorage(const v1::FederationRelationship& fr) {
  v1::FederationRelationship out = fr;
  out.clear_trust_domain_bundle();
  if (out.bundle_endpoint_profile() != kProfileSpiffe) out.clear_endpoint_spiffe_id();
  return out;
}

// The read form: the stored relationship with the trust domain's current bundle, if any.
v1::FederationRelationship WithBundle(const DatastoreState& state,
                                      const v1::FederationRelationship& stored) {
  v1::FederationRelationship out = stored;
  auto it = state.bundles.find(TrustDomainId(stored.trust_domain()));
  if (it != state.bundles.end()) {
    *out.mutable_trust_domain_bundle() = *it->second.value;
  } else {
    out.clear_trust_domain_bundle();
  }
  return out;
}

}  // namespace

StatusOr<v1::FederationRelationship> DataStore::CreateFederationRelationship(
    const v1::FederationRelationship& relationship) {
  v1::FederationRelationshipMask all;
  all.set_bundle_endpoint_url(true);
  all.set_bundle_endpoint_profile(true);
  all.set_trust_domain_bundle(true);
  PLINTH_RETURN_IF_ERROR(Validate(relationship, all));
  PLINTH_ASSIGN_OR_RETURN(std::string value, internal::Encode(ForStorage(relationship)));
  std::string bundle_value;
  if (relationship.has_trust_domain_bundle()) {
    PLINTH_ASSIGN_OR_RETURN(bundle_value, internal::Encode(relationship.trust_domain_bundle()));
  }
  const std::string key = impl_->keys.Federation(relationship.trust_domain());
  PLINTH_RETURN_IF_ERROR(impl_->Write([&](const DatastoreState& state,
                                          Revision) -> StatusOr<TxnRequest> {
    if (state.federations.count(relationship.trust_domain()) != 0) {
      return AlreadyExistsError("datastore: federation relationship \"" +
                                relationship.trust_domain() + "\" already exists");
    }
    TxnRequest txn;
    txn.conditions.push_back(Condition::Absent(key));
    // Like SPIRE, the bundle's trust domain is not checked against the relationship's.
    if (relationship.has_trust_domain_bundle()) {
      txn.ops.push_back(Op::Put(
          impl_->keys.Bundle(relationship.trust_domain_bundle().trust_domain_id()), bundle_value));
    }
    txn.ops.push_back(Op::Put(key, value));
    return txn;
  }));
  return relationship;
}

StatusOr<v1::FederationRelationship> DataStore::FetchFederationRelationship(
    const std::string& trust_domain) {
  if (trust_domain.empty()) {
    return InvalidArgumentError("datastore: trust domain is required (trust_domain)");
  }
  return impl_->Read(
      [&](const DatastoreState& state, Revision) -> StatusOr<v1::FederationRelationship> {
        auto it = state.federations.find(trust_domain);
        if (it == state.federations.end()) return RelationshipNotFound(trust_domain);
        return WithBundle(state, *it->second.value);
      });
}

StatusOr<v1::ListFederationRelationshipsResponse> DataStore::ListFederationRelationships(
    const v1::ListFederationRelationshipsRequest& request) {
  PLINTH_ASSIGN_OR_RETURN(
      const internal::PageRequest page,
      internal::ParsePageRequest(request.has_pagination() ? &request.pagination() : nullptr));
  v1::ListFederationRelationshipsResponse response;
  const bool more = impl_->Read([&](const DatastoreState& state, Revision) {
    return internal::PageOver(state.federations, page, [&](const auto& stored) {
      *response.add_relationships() = WithBundle(state, *stored.value);
    });
  });
  internal::SetNextPage(page, more, more ? response.relationships().rbegin()->trust_domain() : "",
                        &response);
  return response;
}

Status DataStore::DeleteFederationRelationship(const std::string& trust_domain) {
  if (trust_domain.empty()) {
    return InvalidArgumentError("datastore: trust domain is required (trust_domain)");
  }
  const std::string key = impl_->keys.Federation(trust_domain);
  // The trust domain's bundle is kept (spec §C7).
  return impl_
      ->Write([&](const DatastoreState& state, Revision) -> StatusOr<TxnRequest> {
        auto it = state.federations.find(trust_domain);
        if (it == state.federations.end()) return RelationshipNotFound(trust_domain);
        TxnRequest txn;
        txn.conditions.push_back(Condition::ModRevisionIs(key, it->second.mod_revision));
        txn.ops.push_back(Op::Delete(key));
        return txn;
      })
      .status();
}

StatusOr<v1::FederationRelationship> DataStore::UpdateFederationRelationship(
    const v1::FederationRelationship& relationship, const v1::FederationRelationshipMask& mask) {
  PLINTH_RETURN_IF_ERROR(Validate(relationship, mask));
  const bool set_bundle = mask.trust_domain_bundle() && relationship.has_trust_domain_bundle();
  std::string bundle_value;
  if (set_bundle) {
    PLINTH_ASSIGN_OR_RETURN(bundle_value, internal::Encode(relationship.trust_domain_bundle()));
  }
  const std::string key = impl_->keys.Federation(relationship.trust_domain());
  v1::FederationRelationship result;
  PLINTH_RETURN_IF_ERROR(impl_->Write([&](const DatastoreState& state,
                                          Revision) -> StatusOr<TxnRequest> {
    auto it = state.federations.find(relationship.trust_domain());
    if (it == state.federations.end()) return RelationshipNotFound(relationship.trust_domain());
    v1::FederationRelationship updated = *it->second.value;
    if (mask.bundle_endpoint_url()) {
      updated.set_bundle_endpoint_url(relationship.bundle_endpoint_url());
    }
    if (mask.bundle_endpoint_profile()) {
      updated.set_bundle_endpoint_profile(relationship.bundle_endpoint_profile());
      updated.set_endpoint_spiffe_id(relationship.endpoint_spiffe_id());
    }
    updated = ForStorage(updated);
    PLINTH_ASSIGN_OR_RETURN(std::string value, internal::Encode(updated));
    TxnRequest txn;
    txn.conditions.push_back(Condition::ModRevisionIs(key, it->second.mod_revision));
    txn.ops.push_back(Op::Put(key, std::move(value)));
    result = WithBundle(state, updated);
    if (set_bundle) {
      txn.ops.push_back(Op::Put(
          impl_->keys.Bundle(relationship.trust_domain_bundle().trust_domain_id()), bundle_value));
      // The bundle this write sets is what a read after it attaches, when it is the
      // relationship's own trust domain.
      if (relationship.trust_domain_bundle().trust_domain_id() ==
          TrustDomainId(updated.trust_domain())) {
        *result.mutable_trust_domain_bundle() = relationship.trust_domain_bundle();
      }
    }
    return txn;
  }));
  return result;
}

}  // namespace plinth::datastore
