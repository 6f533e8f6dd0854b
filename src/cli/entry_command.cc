#include "cli/entry_command.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cli/client.h"
#include "cli/output.h"

namespace plinth::cli {
namespace {

// The fields of an entry that create and update take. The options are kept to tell which
// flags were given (update writes only those).
struct EntryFieldFlags {
  std::string entry_id;
  std::string spiffe_id;
  std::string parent_id;
  bool node = false;
  std::vector<std::string> selectors;
  std::vector<std::string> federates_with;
  std::vector<std::string> dns_names;
  int32_t x509_svid_ttl = 0;
  int32_t jwt_svid_ttl = 0;
  std::string hint;
  bool admin = false;
  bool downstream = false;
  bool store_svid = false;
  std::string entry_expiry;

  CLI::Option* spiffe_id_opt = nullptr;
  CLI::Option* parent_id_opt = nullptr;
  CLI::Option* selectors_opt = nullptr;
  CLI::Option* federates_with_opt = nullptr;
  CLI::Option* dns_names_opt = nullptr;
  CLI::Option* x509_svid_ttl_opt = nullptr;
  CLI::Option* jwt_svid_ttl_opt = nullptr;
  CLI::Option* hint_opt = nullptr;
  CLI::Option* admin_opt = nullptr;
  CLI::Option* downstream_opt = nullptr;
  CLI::Option* store_svid_opt = nullptr;
  CLI::Option* entry_expiry_opt = nullptr;
};

struct EntryWriteFlags {
  ServerFlags server;
  EntryFieldFlags fields;
};

// The filters of show and count.
struct EntryFilterFlags {
  std::string spiffe_id;
  std::string parent_id;
  std::vector<std::string> selectors;
  v1::MatchBehavior match_selectors = v1::MATCH_SUPERSET;
  std::vector<std::string> federates_with;
  v1::MatchBehavior match_federates_with = v1::MATCH_SUPERSET;
  std::string hint;
  bool downstream = false;
};

struct EntryShowFlags {
  ServerFlags server;
  std::string entry_id;
  EntryFilterFlags filter;
};

struct EntryCountFlags {
  ServerFlags server;
  EntryFilterFlags filter;
};

struct EntryIdFlags {
  ServerFlags server;
  std::string entry_id;
};

bool Given(const CLI::Option* option) { return option != nullptr && option->count() > 0; }

// A repeated option that takes one value per occurrence (-selector a -selector b).
CLI::Option* AddRepeated(CLI::App& verb, const std::string& name, std::vector<std::string>* values,
                         const std::string& description, const std::string& value_name) {
  return verb.add_option(name, *values, description)
      ->allow_extra_args(false)
      ->option_text(value_name + " (repeatable)");
}

void AddFieldFlags(CLI::App& verb, EntryFieldFlags* f, bool for_update) {
  f->spiffe_id_opt = verb.add_option("--spiffeID", f->spiffe_id,
                                     "The SPIFFE ID of the workload (or node) the entry is for")
                         ->option_text("ID");
  f->parent_id_opt =
      verb.add_option("--parentID", f->parent_id, "The SPIFFE ID of the entry's parent")
          ->option_text("ID");
  if (!for_update) {
    verb.add_flag("--node", f->node,
                  "A node entry: the parent is the server (spiffe://<trust domain>/spire/server)");
  }
  f->selectors_opt =
      AddRepeated(verb, "--selector", &f->selectors,
                  for_update ? "A selector type:value; replaces the entry's selectors"
                             : "A selector type:value",
                  "TYPE:VALUE");
  f->federates_with_opt =
      AddRepeated(verb, "--federatesWith", &f->federates_with,
                  std::string("A trust domain to federate with (spiffe://example.org or "
                              "example.org)") +
                      (for_update ? "; replaces the list; give \"\" to clear it" : ""),
                  "TRUST_DOMAIN");
  f->dns_names_opt = AddRepeated(verb, "--dns", &f->dns_names,
                                 std::string("A DNS name for the SVID") +
                                     (for_update ? "; replaces the list; \"\" clears" : ""),
                                 "NAME");
  f->x509_svid_ttl_opt =
      verb.add_option("--x509SVIDTTL", f->x509_svid_ttl, "X509-SVID TTL in seconds (0 = default)")
          ->check(CLI::NonNegativeNumber)
          ->option_text("SECONDS");
  f->jwt_svid_ttl_opt =
      verb.add_option("--jwtSVIDTTL", f->jwt_svid_ttl, "JWT-SVID TTL in seconds (0 = default)")
          ->check(CLI::NonNegativeNumber)
          ->option_text("SECONDS");
  f->hint_opt = verb.add_option("--hint", f->hint, "A hint for workloads to tell SVIDs apart")
                    ->option_text("TEXT");
  f->admin_opt =
      verb.add_flag("--admin", f->admin, "SVIDs of this entry are admins (=false unsets)");
  f->downstream_opt = verb.add_flag("--downstream", f->downstream,
                                    "The workload is a downstream SPIRE server (=false unsets)");
  f->store_svid_opt = verb.add_flag("--storeSVID", f->store_svid,
                                    "The SVID is stored by an SVIDStore plugin (=false unsets)");
  f->entry_expiry_opt =
      verb.add_option("--entryExpiry", f->entry_expiry,
                      "When the entry expires and may be pruned: unix seconds or RFC 3339 "
                      "(0 = never)")
          ->option_text("TIME");
}

// Appends the selectors "type:value" in `values` to `out`; InvalidArgument for a bad one.
Status AddSelectors(const std::vector<std::string>& values,
                    google::protobuf::RepeatedPtrField<v1::Selector>* out) {
  for (const std::string& text : values) {
    PLINTH_ASSIGN_OR_RETURN(v1::Selector selector, ParseSelector(text));
    *out->Add() = std::move(selector);
  }
  return Status::Ok();
}

// Appends the non-empty trust domains in `values` to `out` as trust domain IDs.
void AddTrustDomains(const std::vector<std::string>& values,
                     google::protobuf::RepeatedPtrField<std::string>* out) {
  for (const std::string& td : values) {
    if (!td.empty()) out->Add(TrustDomainId(td));
  }
}

// The entry described by the flags, and the mask of the flags that were given. A bad value is
// InvalidArgument (a usage error).
StatusOr<v1::RegistrationEntry> EntryFromFlags(const EntryFieldFlags& f,
                                               v1::RegistrationEntryMask* mask) {
  v1::RegistrationEntry e;
  e.set_entry_id(f.entry_id);
  if (Given(f.spiffe_id_opt)) {
    PLINTH_ASSIGN_OR_RETURN(std::string td, TrustDomainOf(f.spiffe_id));
    e.set_spiffe_id(f.spiffe_id);
    mask->set_spiffe_id(true);
    if (f.node) e.set_parent_id("spiffe://" + td + "/spire/server");
  }
  if (Given(f.parent_id_opt)) {
    PLINTH_RETURN_IF_ERROR(TrustDomainOf(f.parent_id).status());
    e.set_parent_id(f.parent_id);
  }
  mask->set_parent_id(Given(f.parent_id_opt) || f.node);
  if (Given(f.selectors_opt)) {
    PLINTH_RETURN_IF_ERROR(AddSelectors(f.selectors, e.mutable_selectors()));
    mask->set_selectors(true);
  }
  if (Given(f.federates_with_opt)) {
    AddTrustDomains(f.federates_with, e.mutable_federates_with());
    mask->set_federates_with(true);
  }
  if (Given(f.dns_names_opt)) {
    for (const std::string& name : f.dns_names) {
      if (!name.empty()) e.add_dns_names(name);
    }
    mask->set_dns_names(true);
  }
  e.set_x509_svid_ttl(f.x509_svid_ttl);
  mask->set_x509_svid_ttl(Given(f.x509_svid_ttl_opt));
  e.set_jwt_svid_ttl(f.jwt_svid_ttl);
  mask->set_jwt_svid_ttl(Given(f.jwt_svid_ttl_opt));
  e.set_hint(f.hint);
  mask->set_hint(Given(f.hint_opt));
  e.set_admin(f.admin);
  mask->set_admin(Given(f.admin_opt));
  e.set_downstream(f.downstream);
  mask->set_downstream(Given(f.downstream_opt));
  e.set_store_svid(f.store_svid);
  mask->set_store_svid(Given(f.store_svid_opt));
  if (Given(f.entry_expiry_opt)) {
    auto expiry = ParseUnixTime(f.entry_expiry);
    if (!expiry.ok()) {
      return InvalidArgumentError("-entryExpiry: " + std::string(expiry.status().message()));
    }
    e.set_entry_expiry(*expiry);
    mask->set_entry_expiry(true);
  }
  return e;
}

std::string Ttl(int32_t seconds) { return seconds == 0 ? "default" : std::to_string(seconds); }

std::string EntryWhat(std::string_view verb, std::string_view id) {
  return std::string(verb) + " entry \"" + DisplayBytes(id) + "\"";
}

// ---- create

int RunCreate(const EntryWriteFlags& flags, Console& console) {
  const EntryFieldFlags& f = flags.fields;
  if (f.spiffe_id.empty()) return ReportUsageError(console, "entry create needs -spiffeID");
  if (f.node && Given(f.parent_id_opt)) {
    return ReportUsageError(console, "give -parentID or -node, not both");
  }
  if (!f.node && f.parent_id.empty()) {
    return ReportUsageError(console, "entry create needs -parentID (or -node)");
  }
  if (f.selectors.empty()) {
    return ReportUsageError(console, "entry create needs at least one -selector type:value");
  }
  v1::RegistrationEntryMask mask;
  auto entry = EntryFromFlags(f, &mask);
  if (!entry.ok()) return ReportUsageError(console, entry.status().message());
  auto client = ConnectOrReport(flags.server.connection, console);
  if (!client) return console.exit_code;
  v1::CreateOrReturnRegistrationEntryResponse response;
  Status s = client->Call(&v1::DataStore::Stub::CreateOrReturnRegistrationEntry, *entry, &response);
  if (!s.ok()) return client->Report(console, "create entry for " + f.spiffe_id, s);
  if (response.existing()) {
    return ReportFailure(console, "create entry for " + f.spiffe_id,
                         AlreadyExistsError("a similar entry already exists: \"" +
                                            response.entry().entry_id() + "\""));
  }
  if (flags.server.output == OutputFormat::kJson) {
    PrintProtoJson(console.out, response.entry());
  } else {
    PrintEntry(console.out, response.entry());
  }
  return kExitOk;
}

// ---- update

int RunUpdate(const EntryWriteFlags& flags, Console& console) {
  if (flags.fields.entry_id.empty())
    return ReportUsageError(console, "entry update needs -entryID");
  v1::UpdateRegistrationEntryRequest request;
  auto entry = EntryFromFlags(flags.fields, request.mutable_mask());
  if (!entry.ok()) return ReportUsageError(console, entry.status().message());
  if (request.mask().ByteSizeLong() == 0) {
    return ReportUsageError(console, "entry update: give at least one field to change");
  }
  *request.mutable_entry() = std::move(entry).value();
  auto client = ConnectOrReport(flags.server.connection, console);
  if (!client) return console.exit_code;
  v1::RegistrationEntry updated;
  Status s = client->Call(&v1::DataStore::Stub::UpdateRegistrationEntry, request, &updated);
  if (!s.ok()) return client->Report(console, EntryWhat("update", flags.fields.entry_id), s);
  if (flags.server.output == OutputFormat::kJson) {
    PrintProtoJson(console.out, updated);
  } else {
    PrintEntry(console.out, updated);
  }
  return kExitOk;
}

// ---- delete

int RunDelete(const EntryIdFlags& flags, Console& console) {
  if (flags.entry_id.empty()) return ReportUsageError(console, "entry delete needs -entryID");
  auto client = ConnectOrReport(flags.server.connection, console);
  if (!client) return console.exit_code;
  v1::EntryIdRequest request;
  request.set_entry_id(flags.entry_id);
  v1::RegistrationEntry deleted;
  Status s = client->Call(&v1::DataStore::Stub::DeleteRegistrationEntry, request, &deleted);
  if (!s.ok()) return client->Report(console, EntryWhat("delete", flags.entry_id), s);
  if (flags.server.output == OutputFormat::kJson) {
    PrintProtoJson(console.out, deleted);
  } else {
    console.out << "Deleted entry with ID: " << deleted.entry_id() << "\n";
  }
  return kExitOk;
}

// ---- show and count

void AddFilterFlags(CLI::App& verb, EntryFilterFlags* f) {
  verb.add_option("--spiffeID", f->spiffe_id, "Only entries with this SPIFFE ID")
      ->option_text("ID");
  verb.add_option("--parentID", f->parent_id, "Only entries with this parent ID")
      ->option_text("ID");
  AddRepeated(verb, "--selector", &f->selectors, "Only entries whose selectors match these",
              "TYPE:VALUE");
  verb.add_option("--matchSelectorsOn", f->match_selectors,
                  "How -selector matches: exact, subset, superset (default) or any")
      ->transform(CLI::CheckedTransformer(MatchBehaviorNames(), CLI::ignore_case))
      ->option_text("MODE");
  AddRepeated(verb, "--federatesWith", &f->federates_with,
              "Only entries federating with these trust domains", "TRUST_DOMAIN");
  verb.add_option("--matchFederatesWithOn", f->match_federates_with,
                  "How -federatesWith matches: exact, subset, superset (default) or any")
      ->transform(CLI::CheckedTransformer(MatchBehaviorNames(), CLI::ignore_case))
      ->option_text("MODE");
  verb.add_option("--hint", f->hint, "Only entries with this hint")->option_text("TEXT");
  verb.add_flag("--downstream", f->downstream, "Only downstream entries");
}

// Fills the filter fields shared by the list and count requests.
template <typename Request>
Status ApplyFilters(const EntryFilterFlags& f, Request* request) {
  if (!f.spiffe_id.empty()) request->set_by_spiffe_id(f.spiffe_id);
  if (!f.parent_id.empty()) request->set_by_parent_id(f.parent_id);
  if (!f.selectors.empty()) {
    PLINTH_RETURN_IF_ERROR(
        AddSelectors(f.selectors, request->mutable_by_selectors()->mutable_selectors()));
    request->mutable_by_selectors()->set_match(f.match_selectors);
  }
  v1::ByFederatesWith by_federates_with;
  AddTrustDomains(f.federates_with, by_federates_with.mutable_trust_domains());
  if (by_federates_with.trust_domains_size() > 0) {
    by_federates_with.set_match(f.match_federates_with);
    *request->mutable_by_federates_with() = std::move(by_federates_with);
  }
  if (!f.hint.empty()) request->set_by_hint(f.hint);
  if (f.downstream) request->set_by_downstream(true);
  return Status::Ok();
}

void PrintEntries(const v1::ListRegistrationEntriesResponse& entries, Console& console) {
  const int n = entries.entries_size();
  console.out << "Found " << n << (n == 1 ? " entry" : " entries") << "\n";
  for (const v1::RegistrationEntry& e : entries.entries()) {
    console.out << "\n";
    PrintEntry(console.out, e);
  }
}

int RunShow(const EntryShowFlags& flags, Console& console) {
  v1::ListRegistrationEntriesRequest request;
  if (Status s = ApplyFilters(flags.filter, &request); !s.ok()) {
    return ReportUsageError(console, s.message());
  }
  auto client = ConnectOrReport(flags.server.connection, console);
  if (!client) return console.exit_code;
  v1::ListRegistrationEntriesResponse all;
  if (!flags.entry_id.empty()) {
    v1::EntryIdRequest by_id;
    by_id.set_entry_id(flags.entry_id);
    Status s = client->Call(&v1::DataStore::Stub::FetchRegistrationEntry, by_id, all.add_entries());
    if (!s.ok()) return client->Report(console, EntryWhat("show", flags.entry_id), s);
  } else {
    Status s =
        client->ReadAll<v1::ListRegistrationEntriesRequest, v1::ListRegistrationEntriesResponse>(
            &v1::DataStore::Stub::ListRegistrationEntries, request,
            [&all](v1::ListRegistrationEntriesResponse& page) {
              for (auto& e : *page.mutable_entries()) *all.add_entries() = std::move(e);
            });
    if (!s.ok()) return client->Report(console, "list entries", s);
  }
  if (flags.server.output == OutputFormat::kJson) {
    PrintProtoJson(console.out, all);
  } else {
    PrintEntries(all, console);
  }
  return kExitOk;
}

int RunCount(const EntryCountFlags& flags, Console& console) {
  v1::CountRegistrationEntriesRequest request;
  if (Status s = ApplyFilters(flags.filter, &request); !s.ok()) {
    return ReportUsageError(console, s.message());
  }
  auto client = ConnectOrReport(flags.server.connection, console);
  if (!client) return console.exit_code;
  v1::CountResponse response;
  Status s = client->Call(&v1::DataStore::Stub::CountRegistrationEntries, request, &response);
  if (!s.ok()) return client->Report(console, "count entries", s);
  if (flags.server.output == OutputFormat::kJson) {
    PrintJson(console.out, {{"count", response.count()}});
  } else {
    console.out << response.count()
                << (response.count() == 1 ? " registration entry" : " registration entries")
                << "\n";
  }
  return kExitOk;
}

}  // namespace

void PrintEntry(std::ostream& out, const v1::RegistrationEntry& e) {
  PrintLabeled(out, "Entry ID", e.entry_id());
  PrintLabeled(out, "SPIFFE ID", e.spiffe_id());
  PrintLabeled(out, "Parent ID", e.parent_id());
  PrintLabeled(out, "Revision", std::to_string(e.revision_number()));
  if (e.downstream()) PrintLabeled(out, "Downstream", "true");
  PrintLabeled(out, "X509-SVID TTL", Ttl(e.x509_svid_ttl()));
  PrintLabeled(out, "JWT-SVID TTL", Ttl(e.jwt_svid_ttl()));
  PrintLabeled(out, "Expiration time",
               e.entry_expiry() == 0 ? "never" : FormatUnixTime(e.entry_expiry()));
  for (const v1::Selector& s : e.selectors()) PrintLabeled(out, "Selector", FormatSelector(s));
  for (const std::string& td : e.federates_with()) PrintLabeled(out, "FederatesWith", td);
  for (const std::string& name : e.dns_names()) PrintLabeled(out, "DNS name", name);
  if (e.admin()) PrintLabeled(out, "Admin", "true");
  if (e.store_svid()) PrintLabeled(out, "StoreSvid", "true");
  if (!e.hint().empty()) PrintLabeled(out, "Hint", e.hint());
  if (e.created_at_unix_nanos() != 0) {
    PrintLabeled(out, "Created at", FormatUnixTime(e.created_at_unix_nanos() / 1'000'000'000));
  }
}

void RegisterEntryCommands(CLI::App& root, Console& console) {
  CLI::App* group = root.add_subcommand(
      "entry", "Create, show, update, delete and count registration entries on plinth serve");
  RequireCommand(*group, console);
  group->footer(
      "Flags may be written with one dash, as spire-server does (-spiffeID) or two "
      "(--spiffeID).\n" +
      std::string(kExitCodesHelp));
  {
    auto flags = std::make_shared<EntryWriteFlags>();
    CLI::App* verb = AddServerVerb(*group, "create",
                                   "Create a registration entry; prints it (exit 1 if a similar "
                                   "entry exists)",
                                   &flags->server);
    verb->add_option("--entryID", flags->fields.entry_id, "The new entry's ID (default: generated)")
        ->option_text("ID");
    AddFieldFlags(*verb, &flags->fields, /*for_update=*/false);
    BindVerb(verb, flags, console, RunCreate);
  }
  {
    auto flags = std::make_shared<EntryShowFlags>();
    CLI::App* verb =
        AddServerVerb(*group, "show",
                      "Show the entry -entryID (exit 3 if absent), or the entries matching the "
                      "filters (all without filters)",
                      &flags->server);
    verb->add_option("--entryID", flags->entry_id, "The entry's ID")->option_text("ID");
    AddFilterFlags(*verb, &flags->filter);
    BindVerb(verb, flags, console, RunShow);
  }
  {
    auto flags = std::make_shared<EntryWriteFlags>();
    CLI::App* verb = AddServerVerb(
        *group, "update",
        "Change the entry -entryID: only the fields given are written; prints the result",
        &flags->server);
    verb->add_option("--entryID", flags->fields.entry_id, "The entry's ID")->option_text("ID");
    AddFieldFlags(*verb, &flags->fields, /*for_update=*/true);
    BindVerb(verb, flags, console, RunUpdate);
  }
  {
    auto flags = std::make_shared<EntryIdFlags>();
    CLI::App* verb = AddServerVerb(*group, "delete", "Delete the entry -entryID (exit 3 if absent)",
                                   &flags->server);
    verb->add_option("--entryID", flags->entry_id, "The entry's ID")->option_text("ID");
    BindVerb(verb, flags, console, RunDelete);
  }
  {
    auto flags = std::make_shared<EntryCountFlags>();
    CLI::App* verb = AddServerVerb(*group, "count",
                                   "Count the entries matching the filters (all without filters)",
                                   &flags->server);
    AddFilterFlags(*verb, &flags->filter);
    BindVerb(verb, flags, console, RunCount);
  }
}

}  // namespace plinth::cli
