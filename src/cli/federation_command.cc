#include "cli/federation_command.h"

#include <map>
#include <memory>
#include <string>
#include <utility>

#include "cli/client.h"
#include "cli/internal/bundle_format.h"
#include "cli/output.h"

namespace plinth::cli {
namespace {

using internal::BundleFormat;

constexpr std::string_view kProfileSpiffe = "https_spiffe";
// Labels are padded to this width (the longest is "Bundle endpoint profile").
constexpr size_t kLabelWidth = 26;

struct RelationshipFlags {
  ServerFlags server;
  std::string trust_domain;
  std::string bundle_endpoint_url;
  std::string bundle_endpoint_profile;
  std::string endpoint_spiffe_id;
  std::string bundle_path;
  BundleFormat bundle_format = BundleFormat::kPem;

  CLI::Option* url_opt = nullptr;
  CLI::Option* profile_opt = nullptr;
  CLI::Option* endpoint_id_opt = nullptr;
  CLI::Option* bundle_path_opt = nullptr;
};

struct TrustDomainFlags {
  ServerFlags server;
  std::string trust_domain;
};

bool Given(const CLI::Option* option) { return option != nullptr && option->count() > 0; }

void AddTrustDomainFlag(CLI::App& verb, std::string* trust_domain) {
  verb.add_option("--trustDomain", *trust_domain,
                  "The federated trust domain: example.org (or spiffe://example.org)")
      ->option_text("TRUST_DOMAIN");
}

void AddRelationshipFlags(CLI::App& verb, RelationshipFlags* f) {
  AddTrustDomainFlag(verb, &f->trust_domain);
  f->url_opt = verb.add_option("--bundleEndpointURL", f->bundle_endpoint_url,
                               "Where the trust domain serves its bundle (https://...)")
                   ->option_text("URL");
  f->profile_opt = verb.add_option("--bundleEndpointProfile", f->bundle_endpoint_profile,
                                   "How to authenticate the endpoint: https_web (Web PKI) or "
                                   "https_spiffe (its SVID, -endpointSpiffeID)")
                       ->check(CLI::IsMember({"https_web", "https_spiffe"}))
                       ->option_text("https_web|https_spiffe");
  f->endpoint_id_opt = verb.add_option("--endpointSpiffeID", f->endpoint_spiffe_id,
                                       "The SPIFFE ID of the bundle endpoint server (https_spiffe)")
                           ->option_text("ID");
  f->bundle_path_opt = verb.add_option("--trustDomainBundlePath", f->bundle_path,
                                       "A file with the trust domain's bundle, to store as well")
                           ->option_text("FILE");
  static const std::map<std::string, BundleFormat> kFormats = {{"pem", BundleFormat::kPem},
                                                               {"spiffe", BundleFormat::kSpiffe}};
  verb.add_option("--trustDomainBundleFormat", f->bundle_format,
                  "Format of -trustDomainBundlePath: pem (default) or spiffe")
      ->transform(CLI::CheckedTransformer(kFormats, CLI::ignore_case))
      ->option_text("pem|spiffe");
}

// The relationship described by the flags and the mask of the ones given. Reads the bundle
// file. InvalidArgument (a usage error) for a bad combination or an unreadable bundle.
StatusOr<v1::FederationRelationship> RelationshipFromFlags(const RelationshipFlags& f,
                                                           v1::FederationRelationshipMask* mask) {
  v1::FederationRelationship fr;
  fr.set_trust_domain(TrustDomainName(f.trust_domain));
  if (Given(f.endpoint_id_opt) && f.bundle_endpoint_profile != kProfileSpiffe) {
    return InvalidArgumentError("-endpointSpiffeID needs -bundleEndpointProfile https_spiffe");
  }
  if (f.bundle_endpoint_profile == kProfileSpiffe && f.endpoint_spiffe_id.empty()) {
    return InvalidArgumentError("-bundleEndpointProfile https_spiffe needs -endpointSpiffeID");
  }
  fr.set_bundle_endpoint_url(f.bundle_endpoint_url);
  mask->set_bundle_endpoint_url(Given(f.url_opt));
  fr.set_bundle_endpoint_profile(f.bundle_endpoint_profile);
  fr.set_endpoint_spiffe_id(f.endpoint_spiffe_id);
  mask->set_bundle_endpoint_profile(Given(f.profile_opt));
  if (Given(f.bundle_path_opt)) {
    auto input = ReadInput(f.bundle_path);
    if (!input.ok()) {
      return InvalidArgumentError("-trustDomainBundlePath: " +
                                  std::string(input.status().message()));
    }
    auto bundle = internal::ParseBundle(*input, f.bundle_format, TrustDomainId(fr.trust_domain()));
    if (!bundle.ok()) {
      return InvalidArgumentError("reading the bundle from " + f.bundle_path + ": " +
                                  std::string(bundle.status().message()));
    }
    *fr.mutable_trust_domain_bundle() = std::move(bundle).value();
    mask->set_trust_domain_bundle(true);
  }
  return fr;
}

void PrintRelationship(std::ostream& out, const v1::FederationRelationship& fr) {
  PrintLabeled(out, "Trust domain", fr.trust_domain(), kLabelWidth);
  PrintLabeled(out, "Bundle endpoint URL", fr.bundle_endpoint_url(), kLabelWidth);
  PrintLabeled(out, "Bundle endpoint profile", fr.bundle_endpoint_profile(), kLabelWidth);
  if (fr.bundle_endpoint_profile() == kProfileSpiffe) {
    PrintLabeled(out, "Endpoint SPIFFE ID", fr.endpoint_spiffe_id(), kLabelWidth);
  }
  if (fr.has_trust_domain_bundle()) {
    const v1::Bundle& b = fr.trust_domain_bundle();
    PrintLabeled(out, "Trust domain bundle",
                 b.trust_domain_id() + " (" + std::to_string(b.root_cas_size()) +
                     (b.root_cas_size() == 1 ? " root CA, " : " root CAs, ") +
                     std::to_string(b.jwt_signing_keys_size()) +
                     (b.jwt_signing_keys_size() == 1 ? " JWT key)" : " JWT keys)"),
                 kLabelWidth);
  }
}

void PrintResult(const v1::FederationRelationship& fr, OutputFormat output, Console& console) {
  if (output == OutputFormat::kJson) {
    PrintProtoJson(console.out, fr);
  } else {
    PrintRelationship(console.out, fr);
  }
}

std::string What(std::string_view verb, std::string_view trust_domain) {
  return std::string(verb) + " federation relationship \"" + DisplayBytes(trust_domain) + "\"";
}

int RunCreate(const RelationshipFlags& flags, Console& console) {
  if (flags.trust_domain.empty())
    return ReportUsageError(console, "federation create needs -trustDomain");
  if (flags.bundle_endpoint_url.empty()) {
    return ReportUsageError(console, "federation create needs -bundleEndpointURL");
  }
  if (flags.bundle_endpoint_profile.empty()) {
    return ReportUsageError(
        console, "federation create needs -bundleEndpointProfile https_web|https_spiffe");
  }
  v1::FederationRelationshipMask mask;
  auto fr = RelationshipFromFlags(flags, &mask);
  if (!fr.ok()) return ReportUsageError(console, fr.status().message());
  auto client = ConnectOrReport(flags.server.connection, console);
  if (!client) return console.exit_code;
  v1::FederationRelationship created;
  Status s = client->Call(&v1::DataStore::Stub::CreateFederationRelationship, *fr, &created);
  if (!s.ok()) return client->Report(console, What("create", fr->trust_domain()), s);
  PrintResult(created, flags.server.output, console);
  return kExitOk;
}

int RunUpdate(const RelationshipFlags& flags, Console& console) {
  if (flags.trust_domain.empty())
    return ReportUsageError(console, "federation update needs -trustDomain");
  v1::UpdateFederationRelationshipRequest request;
  auto fr = RelationshipFromFlags(flags, request.mutable_mask());
  if (!fr.ok()) return ReportUsageError(console, fr.status().message());
  if (request.mask().ByteSizeLong() == 0) {
    return ReportUsageError(console, "federation update: give at least one field to change");
  }
  *request.mutable_relationship() = std::move(fr).value();
  auto client = ConnectOrReport(flags.server.connection, console);
  if (!client) return console.exit_code;
  v1::FederationRelationship updated;
  Status s = client->Call(&v1::DataStore::Stub::UpdateFederationRelationship, request, &updated);
  if (!s.ok()) {
    return client->Report(console, What("update", request.relationship().trust_domain()), s);
  }
  PrintResult(updated, flags.server.output, console);
  return kExitOk;
}

int RunShow(const TrustDomainFlags& flags, Console& console) {
  if (flags.trust_domain.empty())
    return ReportUsageError(console, "federation show needs -trustDomain");
  auto client = ConnectOrReport(flags.server.connection, console);
  if (!client) return console.exit_code;
  v1::TrustDomainRequest request;
  request.set_trust_domain(TrustDomainName(flags.trust_domain));
  v1::FederationRelationship fr;
  Status s = client->Call(&v1::DataStore::Stub::FetchFederationRelationship, request, &fr);
  if (!s.ok()) return client->Report(console, What("show", request.trust_domain()), s);
  PrintResult(fr, flags.server.output, console);
  return kExitOk;
}

int RunList(const ServerFlags& flags, Console& console) {
  auto client = ConnectOrReport(flags.connection, console);
  if (!client) return console.exit_code;
  v1::ListFederationRelationshipsResponse response;
  Status s = client->Call(&v1::DataStore::Stub::ListFederationRelationships,
                          v1::ListFederationRelationshipsRequest(), &response);
  if (!s.ok()) return client->Report(console, "list federation relationships", s);
  if (flags.output == OutputFormat::kJson) {
    PrintProtoJson(console.out, response);
    return kExitOk;
  }
  const int n = response.relationships_size();
  console.out << "Found " << n
              << (n == 1 ? " federation relationship" : " federation relationships") << "\n";
  for (const v1::FederationRelationship& fr : response.relationships()) {
    console.out << "\n";
    PrintRelationship(console.out, fr);
  }
  return kExitOk;
}

int RunDelete(const TrustDomainFlags& flags, Console& console) {
  if (flags.trust_domain.empty())
    return ReportUsageError(console, "federation delete needs -trustDomain");
  auto client = ConnectOrReport(flags.server.connection, console);
  if (!client) return console.exit_code;
  v1::TrustDomainRequest request;
  request.set_trust_domain(TrustDomainName(flags.trust_domain));
  google::protobuf::Empty empty;
  Status s = client->Call(&v1::DataStore::Stub::DeleteFederationRelationship, request, &empty);
  if (!s.ok()) return client->Report(console, What("delete", request.trust_domain()), s);
  if (flags.server.output == OutputFormat::kJson) {
    PrintJson(console.out, {{"trust_domain", request.trust_domain()}, {"deleted", true}});
  } else {
    console.out << "federation relationship deleted: " << request.trust_domain() << "\n";
  }
  return kExitOk;
}

}  // namespace

void RegisterFederationCommands(CLI::App& root, Console& console) {
  CLI::App* group = root.add_subcommand(
      "federation",
      "Create, list, show, update and delete federation relationships on plinth "
      "serve");
  RequireCommand(*group, console);
  group->footer(
      "Flags may be written with one dash, as spire-server does (-trustDomain) or two "
      "(--trustDomain).\n" +
      std::string(kExitCodesHelp));
  {
    auto flags = std::make_shared<RelationshipFlags>();
    CLI::App* verb = AddServerVerb(*group, "create",
                                   "Create a federation relationship with -trustDomain; prints it",
                                   &flags->server);
    AddRelationshipFlags(*verb, flags.get());
    BindVerb(verb, flags, console, RunCreate);
  }
  {
    auto flags = std::make_shared<ServerFlags>();
    CLI::App* verb =
        AddServerVerb(*group, "list", "List every federation relationship", flags.get());
    BindVerb(verb, flags, console, RunList);
  }
  {
    auto flags = std::make_shared<TrustDomainFlags>();
    CLI::App* verb =
        AddServerVerb(*group, "show", "Show the relationship with -trustDomain (exit 3 if absent)",
                      &flags->server);
    AddTrustDomainFlag(*verb, &flags->trust_domain);
    BindVerb(verb, flags, console, RunShow);
  }
  {
    auto flags = std::make_shared<RelationshipFlags>();
    CLI::App* verb = AddServerVerb(
        *group, "update",
        "Change the relationship with -trustDomain: only the fields given are written",
        &flags->server);
    AddRelationshipFlags(*verb, flags.get());
    BindVerb(verb, flags, console, RunUpdate);
  }
  {
    auto flags = std::make_shared<TrustDomainFlags>();
    CLI::App* verb = AddServerVerb(
        *group, "delete",
        "Delete the relationship with -trustDomain; its bundle stays (exit 3 if absent)",
        &flags->server);
    AddTrustDomainFlag(*verb, &flags->trust_domain);
    BindVerb(verb, flags, console, RunDelete);
  }
}

}  // namespace plinth::cli
