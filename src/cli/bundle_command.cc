#include "cli/bundle_command.h"

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

constexpr char kOutputFormatHelp[] =
    "Bundle format: pem (default) or spiffe; --output json prints the Bundle proto instead";

const std::map<std::string, BundleFormat>& FormatNames() {
  static const auto* const kNames = new std::map<std::string, BundleFormat>{
      {"pem", BundleFormat::kPem}, {"spiffe", BundleFormat::kSpiffe}};
  return *kNames;
}

CLI::Option* AddFormatFlag(CLI::App& verb, BundleFormat* format, const std::string& description) {
  *format = BundleFormat::kPem;
  return verb.add_option("--format", *format, description)
      ->transform(CLI::CheckedTransformer(FormatNames(), CLI::ignore_case))
      ->option_text("pem|spiffe");
}

CLI::Option* AddIdFlag(CLI::App& verb, std::string* id) {
  return verb.add_option("--id", *id, "The trust domain: spiffe://example.org (or example.org)")
      ->option_text("TRUST_DOMAIN_ID");
}

struct BundleShowFlags {
  ServerFlags server;
  std::string id;
  BundleFormat format = BundleFormat::kPem;
};

struct BundleWriteFlags {
  ServerFlags server;
  std::string id;
  std::string path;
  BundleFormat format = BundleFormat::kPem;
};

struct BundleDeleteFlags {
  ServerFlags server;
  std::string id;
  v1::DeleteBundleMode mode = v1::DELETE_BUNDLE_RESTRICT;
};

struct BundlePruneFlags {
  ServerFlags server;
  std::string id;
  std::string expires_before;
};

std::string BundleWhat(std::string_view verb, std::string_view id) {
  return std::string(verb) + " bundle \"" + DisplayBytes(id) + "\"";
}

// Writes `bundle` in `format`, or reports why it cannot be expressed in it.
int PrintBundle(const v1::Bundle& bundle, BundleFormat format, Console& console) {
  if (format == BundleFormat::kPem) {
    console.out << internal::FormatPem(bundle);
    return kExitOk;
  }
  auto jwks = internal::FormatSpiffe(bundle);
  if (!jwks.ok()) {
    return ReportFailure(console, "print bundle \"" + bundle.trust_domain_id() + "\"",
                         jwks.status());
  }
  console.out << *jwks;
  return kExitOk;
}

int RunShow(const BundleShowFlags& flags, Console& console) {
  if (flags.id.empty()) return ReportUsageError(console, "bundle show needs -id");
  auto client = ConnectOrReport(flags.server.connection, console);
  if (!client) return console.exit_code;
  v1::TrustDomainRequest request;
  request.set_trust_domain(TrustDomainId(flags.id));
  v1::Bundle bundle;
  Status s = client->Call(&v1::DataStore::Stub::FetchBundle, request, &bundle);
  if (!s.ok()) return client->Report(console, BundleWhat("show", request.trust_domain()), s);
  if (flags.server.output == OutputFormat::kJson) {
    PrintProtoJson(console.out, bundle);
    return kExitOk;
  }
  return PrintBundle(bundle, flags.format, console);
}

int RunList(const BundleShowFlags& flags, Console& console) {
  if (!flags.id.empty()) return RunShow(flags, console);
  auto client = ConnectOrReport(flags.server.connection, console);
  if (!client) return console.exit_code;
  v1::ListBundlesResponse response;
  Status s = client->Call(&v1::DataStore::Stub::ListBundles, v1::ListBundlesRequest(), &response);
  if (!s.ok()) return client->Report(console, "list bundles", s);
  if (flags.server.output == OutputFormat::kJson) {
    PrintProtoJson(console.out, response);
    return kExitOk;
  }
  const std::string banner(40, '*');
  for (int i = 0; i < response.bundles_size(); ++i) {
    const v1::Bundle& bundle = response.bundles(i);
    if (i > 0) console.out << "\n";
    console.out << banner << "\n* " << bundle.trust_domain_id() << "\n" << banner << "\n";
    if (int code = PrintBundle(bundle, flags.format, console); code != kExitOk) return code;
  }
  return kExitOk;
}

int RunCount(const ServerFlags& flags, Console& console) {
  auto client = ConnectOrReport(flags.connection, console);
  if (!client) return console.exit_code;
  v1::CountResponse response;
  Status s = client->Call(&v1::DataStore::Stub::CountBundles, google::protobuf::Empty(), &response);
  if (!s.ok()) return client->Report(console, "count bundles", s);
  if (flags.output == OutputFormat::kJson) {
    PrintJson(console.out, {{"count", response.count()}});
  } else {
    console.out << response.count() << (response.count() == 1 ? " bundle" : " bundles") << "\n";
  }
  return kExitOk;
}

// set and append: reads the bundle, then calls `method`.
int RunWrite(const BundleWriteFlags& flags, Console& console, bool append) {
  const char* verb = append ? "append" : "set";
  if (flags.id.empty())
    return ReportUsageError(console, std::string("bundle ") + verb + " needs -id");
  auto input = ReadInput(flags.path);
  if (!input.ok())
    return ReportUsageError(console, "-path: " + std::string(input.status().message()));
  const std::string id = TrustDomainId(flags.id);
  auto bundle = internal::ParseBundle(*input, flags.format, id);
  if (!bundle.ok()) {
    return ReportUsageError(
        console, "reading the bundle from " +
                     (flags.path.empty() ? std::string("standard input") : flags.path) + ": " +
                     std::string(bundle.status().message()));
  }
  auto client = ConnectOrReport(flags.server.connection, console);
  if (!client) return console.exit_code;
  v1::Bundle result;
  Status s =
      client->Call(append ? &v1::DataStore::Stub::AppendBundle : &v1::DataStore::Stub::SetBundle,
                   *bundle, &result);
  if (!s.ok()) return client->Report(console, BundleWhat(verb, id), s);
  if (flags.server.output == OutputFormat::kJson) {
    PrintProtoJson(console.out, result);
  } else {
    console.out << (append ? "bundle appended: " : "bundle set: ") << id << " now holds "
                << result.root_cas_size()
                << (result.root_cas_size() == 1 ? " root CA" : " root CAs") << " and "
                << result.jwt_signing_keys_size()
                << (result.jwt_signing_keys_size() == 1 ? " JWT key" : " JWT keys") << "\n";
  }
  return kExitOk;
}

int RunDelete(const BundleDeleteFlags& flags, Console& console) {
  if (flags.id.empty()) return ReportUsageError(console, "bundle delete needs -id");
  auto client = ConnectOrReport(flags.server.connection, console);
  if (!client) return console.exit_code;
  v1::DeleteBundleRequest request;
  request.set_trust_domain_id(TrustDomainId(flags.id));
  request.set_mode(flags.mode);
  google::protobuf::Empty empty;
  Status s = client->Call(&v1::DataStore::Stub::DeleteBundle, request, &empty);
  if (!s.ok()) return client->Report(console, BundleWhat("delete", request.trust_domain_id()), s);
  if (flags.server.output == OutputFormat::kJson) {
    PrintJson(console.out, {{"trust_domain_id", request.trust_domain_id()}, {"deleted", true}});
  } else {
    console.out << "bundle deleted: " << request.trust_domain_id() << "\n";
  }
  return kExitOk;
}

int RunPrune(const BundlePruneFlags& flags, Console& console) {
  if (flags.id.empty()) return ReportUsageError(console, "bundle prune needs -id");
  if (flags.expires_before.empty()) {
    return ReportUsageError(console, "bundle prune needs -expiresBefore");
  }
  auto before = ParseUnixTime(flags.expires_before);
  if (!before.ok()) {
    return ReportUsageError(console, "-expiresBefore: " + std::string(before.status().message()));
  }
  auto client = ConnectOrReport(flags.server.connection, console);
  if (!client) return console.exit_code;
  v1::PruneBundleRequest request;
  request.set_trust_domain_id(TrustDomainId(flags.id));
  request.set_expires_before_unix(*before);
  v1::PruneBundleResponse response;
  Status s = client->Call(&v1::DataStore::Stub::PruneBundle, request, &response);
  if (!s.ok()) return client->Report(console, BundleWhat("prune", request.trust_domain_id()), s);
  if (flags.server.output == OutputFormat::kJson) {
    PrintJson(console.out,
              {{"trust_domain_id", request.trust_domain_id()}, {"changed", response.changed()}});
  } else if (response.changed()) {
    console.out << "bundle pruned: " << request.trust_domain_id() << "\n";
  } else {
    console.out << "nothing expires before " << FormatUnixTime(*before) << " in "
                << request.trust_domain_id() << "\n";
  }
  return kExitOk;
}

}  // namespace

void RegisterBundleCommands(CLI::App& root, Console& console) {
  CLI::App* group =
      root.add_subcommand("bundle",
                          "Show, list, set, append, delete and prune trust bundles on "
                          "plinth serve");
  RequireCommand(*group, console);
  group->footer(
      "Formats: pem = concatenated CERTIFICATE blocks (X.509 roots only); spiffe = the SPIFFE\n"
      "bundle format (a JWKS with x509-svid and jwt-svid keys). Flags may be written with one\n"
      "dash, as spire-server does (-id) or two (--id).\n" +
      std::string(kExitCodesHelp));
  {
    auto flags = std::make_shared<BundleShowFlags>();
    CLI::App* verb =
        AddServerVerb(*group, "show", "Print the bundle of -id (exit 3 if absent)", &flags->server);
    AddIdFlag(*verb, &flags->id);
    AddFormatFlag(*verb, &flags->format, kOutputFormatHelp);
    BindVerb(verb, flags, console, RunShow);
  }
  {
    auto flags = std::make_shared<BundleShowFlags>();
    CLI::App* verb =
        AddServerVerb(*group, "list", "Print every bundle (or only -id)", &flags->server);
    AddIdFlag(*verb, &flags->id);
    AddFormatFlag(*verb, &flags->format, kOutputFormatHelp);
    BindVerb(verb, flags, console, RunList);
  }
  {
    auto flags = std::make_shared<ServerFlags>();
    CLI::App* verb = AddServerVerb(*group, "count", "Count the bundles", flags.get());
    BindVerb(verb, flags, console, RunCount);
  }
  for (bool append : {false, true}) {
    auto flags = std::make_shared<BundleWriteFlags>();
    CLI::App* verb =
        append ? AddServerVerb(*group, "append",
                               "Add the roots and keys read from -path (stdin if none) to the "
                               "bundle of -id, creating it if needed",
                               &flags->server)
               : AddServerVerb(*group, "set",
                               "Replace (or create) the bundle of -id with the one read from "
                               "-path (stdin if none)",
                               &flags->server);
    AddIdFlag(*verb, &flags->id);
    verb->add_option("--path", flags->path, "The bundle file (default: standard input)")
        ->option_text("FILE");
    AddFormatFlag(*verb, &flags->format, "Input format: pem (default) or spiffe");
    BindVerb(verb, flags, console,
             [append](const BundleWriteFlags& f, Console& c) { return RunWrite(f, c, append); });
  }
  {
    auto flags = std::make_shared<BundleDeleteFlags>();
    CLI::App* verb = AddServerVerb(*group, "delete", "Delete the bundle of -id (exit 3 if absent)",
                                   &flags->server);
    AddIdFlag(*verb, &flags->id);
    static const std::map<std::string, v1::DeleteBundleMode> kModes = {
        {"restrict", v1::DELETE_BUNDLE_RESTRICT},
        {"delete", v1::DELETE_BUNDLE_DELETE},
        {"dissociate", v1::DELETE_BUNDLE_DISSOCIATE}};
    verb->add_option("--mode", flags->mode,
                     "Entries that federate with it: restrict (default: refuse), delete (delete "
                     "them too) or dissociate (remove the trust domain from them)")
        ->transform(CLI::CheckedTransformer(kModes, CLI::ignore_case))
        ->option_text("restrict|delete|dissociate");
    BindVerb(verb, flags, console, RunDelete);
  }
  {
    auto flags = std::make_shared<BundlePruneFlags>();
    CLI::App* verb = AddServerVerb(
        *group, "prune",
        "Remove the roots and keys of -id that expire before -expiresBefore (exit 3 if absent)",
        &flags->server);
    AddIdFlag(*verb, &flags->id);
    verb->add_option("--expiresBefore", flags->expires_before,
                     "Unix seconds or RFC 3339, e.g. 2025-01-01T00:00:00Z")
        ->option_text("TIME");
    BindVerb(verb, flags, console, RunPrune);
  }
}

}  // namespace plinth::cli
