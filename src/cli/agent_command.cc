#include "cli/agent_command.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cli/client.h"
#include "cli/output.h"

namespace plinth::cli {
namespace {

// The filters of list and count.
struct AgentFilterFlags {
  std::string attestation_type;
  std::string banned;        // "true", "false" or "" (no filter)
  std::string can_reattest;  // likewise
  std::vector<std::string> selectors;
  v1::MatchBehavior match_selectors = v1::MATCH_SUPERSET;
  std::string expires_before;
};

struct AgentListFlags {
  ServerFlags server;
  AgentFilterFlags filter;
};

struct AgentIdFlags {
  ServerFlags server;
  std::string spiffe_id;
};

void AddFilterFlags(CLI::App& verb, AgentFilterFlags* f) {
  verb.add_option("--attestationType", f->attestation_type,
                  "Only agents attested by this node attestor (e.g. join_token)")
      ->option_text("TYPE");
  verb.add_option("--banned", f->banned, "true: only banned agents; false: only the others")
      ->check(CLI::IsMember({"true", "false"}))
      ->option_text("true|false");
  verb.add_option("--canReattest", f->can_reattest,
                  "true: only agents that can re-attest; false: only the others")
      ->check(CLI::IsMember({"true", "false"}))
      ->option_text("true|false");
  verb.add_option("--selector", f->selectors, "Only agents whose selectors match these")
      ->allow_extra_args(false)
      ->option_text("TYPE:VALUE (repeatable)");
  verb.add_option("--matchSelectorsOn", f->match_selectors,
                  "How -selector matches: exact, subset, superset (default) or any")
      ->transform(CLI::CheckedTransformer(MatchBehaviorNames(), CLI::ignore_case))
      ->option_text("MODE");
  verb.add_option("--expiresBefore", f->expires_before,
                  "Only agents whose SVID expires before this time: unix seconds or RFC 3339")
      ->option_text("TIME");
}

// Fills the filter fields shared by the list and count requests.
template <typename Request>
Status ApplyFilters(const AgentFilterFlags& f, Request* request) {
  if (!f.attestation_type.empty()) request->set_by_attestation_type(f.attestation_type);
  if (!f.banned.empty()) request->set_by_banned(f.banned == "true");
  if (!f.can_reattest.empty()) request->set_by_can_reattest(f.can_reattest == "true");
  if (!f.selectors.empty()) {
    auto* by = request->mutable_by_selector_match();
    for (const std::string& text : f.selectors) {
      PLINTH_ASSIGN_OR_RETURN(*by->add_selectors(), ParseSelector(text));
    }
    by->set_match(f.match_selectors);
  }
  if (!f.expires_before.empty()) {
    auto before = ParseUnixTime(f.expires_before);
    if (!before.ok()) {
      return InvalidArgumentError("-expiresBefore: " + std::string(before.status().message()));
    }
    request->set_by_expires_before(*before);
  }
  return Status::Ok();
}

void PrintAgent(std::ostream& out, const v1::AttestedNode& node) {
  PrintLabeled(out, "SPIFFE ID", node.spiffe_id());
  PrintLabeled(out, "Attestation type", node.attestation_data_type());
  PrintLabeled(out, "Expiration time",
               node.cert_not_after() == 0 ? "-" : FormatUnixTime(node.cert_not_after()));
  PrintLabeled(out, "Serial number", node.cert_serial_number());
  if (!node.new_cert_serial_number().empty()) {
    PrintLabeled(out, "New serial number", node.new_cert_serial_number());
    PrintLabeled(out, "New expiration",
                 node.new_cert_not_after() == 0 ? "-" : FormatUnixTime(node.new_cert_not_after()));
  }
  PrintLabeled(out, "Can re-attest", node.can_reattest() ? "true" : "false");
  if (node.cert_serial_number().empty()) PrintLabeled(out, "Banned", "true");
  if (!node.agent_version().empty()) PrintLabeled(out, "Agent version", node.agent_version());
  for (const v1::Selector& s : node.selectors()) PrintLabeled(out, "Selector", FormatSelector(s));
}

std::string AgentWhat(std::string_view verb, std::string_view id) {
  return std::string(verb) + " agent \"" + DisplayBytes(id) + "\"";
}

int RunList(const AgentListFlags& flags, Console& console) {
  v1::ListAttestedNodesRequest request;
  request.set_fetch_selectors(true);
  if (Status s = ApplyFilters(flags.filter, &request); !s.ok()) {
    return ReportUsageError(console, s.message());
  }
  auto client = ConnectOrReport(flags.server.connection, console);
  if (!client) return console.exit_code;
  v1::ListAttestedNodesResponse all;
  Status s = client->ReadAll<v1::ListAttestedNodesRequest, v1::ListAttestedNodesResponse>(
      &v1::DataStore::Stub::ListAttestedNodes, request,
      [&all](v1::ListAttestedNodesResponse& page) {
        for (auto& node : *page.mutable_nodes()) *all.add_nodes() = std::move(node);
      });
  if (!s.ok()) return client->Report(console, "list agents", s);
  if (flags.server.output == OutputFormat::kJson) {
    PrintProtoJson(console.out, all);
    return kExitOk;
  }
  const int n = all.nodes_size();
  console.out << "Found " << n << (n == 1 ? " attested agent" : " attested agents") << "\n";
  for (const v1::AttestedNode& node : all.nodes()) {
    console.out << "\n";
    PrintAgent(console.out, node);
  }
  return kExitOk;
}

int RunCount(const AgentListFlags& flags, Console& console) {
  v1::CountAttestedNodesRequest request;
  if (Status s = ApplyFilters(flags.filter, &request); !s.ok()) {
    return ReportUsageError(console, s.message());
  }
  auto client = ConnectOrReport(flags.server.connection, console);
  if (!client) return console.exit_code;
  v1::CountResponse response;
  Status s = client->Call(&v1::DataStore::Stub::CountAttestedNodes, request, &response);
  if (!s.ok()) return client->Report(console, "count agents", s);
  if (flags.server.output == OutputFormat::kJson) {
    PrintJson(console.out, {{"count", response.count()}});
  } else {
    console.out << response.count()
                << (response.count() == 1 ? " attested agent" : " attested agents") << "\n";
  }
  return kExitOk;
}

int RunShow(const AgentIdFlags& flags, Console& console) {
  if (flags.spiffe_id.empty()) return ReportUsageError(console, "agent show needs -spiffeID");
  auto client = ConnectOrReport(flags.server.connection, console);
  if (!client) return console.exit_code;
  v1::FetchAttestedNodesRequest request;
  request.add_spiffe_ids(flags.spiffe_id);
  v1::FetchAttestedNodesResponse response;
  const std::string what = AgentWhat("show", flags.spiffe_id);
  Status s = client->Call(&v1::DataStore::Stub::FetchAttestedNodes, request, &response);
  if (!s.ok()) return client->Report(console, what, s);
  auto it = response.nodes().find(flags.spiffe_id);
  if (it == response.nodes().end()) {
    return ReportFailure(console, what, NotFoundError("no attested agent with this SPIFFE ID"),
                         kExitNotFound);
  }
  if (flags.server.output == OutputFormat::kJson) {
    PrintProtoJson(console.out, it->second);
  } else {
    PrintAgent(console.out, it->second);
  }
  return kExitOk;
}

int RunBan(const AgentIdFlags& flags, Console& console) {
  if (flags.spiffe_id.empty()) return ReportUsageError(console, "agent ban needs -spiffeID");
  auto client = ConnectOrReport(flags.server.connection, console);
  if (!client) return console.exit_code;
  v1::UpdateAttestedNodeRequest request;
  request.mutable_node()->set_spiffe_id(flags.spiffe_id);
  request.mutable_mask()->set_cert_serial_number(true);
  request.mutable_mask()->set_new_cert_serial_number(true);
  v1::AttestedNode banned;
  Status s = client->Call(&v1::DataStore::Stub::UpdateAttestedNode, request, &banned);
  if (!s.ok()) return client->Report(console, AgentWhat("ban", flags.spiffe_id), s);
  if (flags.server.output == OutputFormat::kJson) {
    PrintProtoJson(console.out, banned);
  } else {
    console.out << "Agent banned successfully\n";
  }
  return kExitOk;
}

int RunEvict(const AgentIdFlags& flags, Console& console) {
  if (flags.spiffe_id.empty()) return ReportUsageError(console, "agent evict needs -spiffeID");
  auto client = ConnectOrReport(flags.server.connection, console);
  if (!client) return console.exit_code;
  v1::SpiffeIdRequest request;
  request.set_spiffe_id(flags.spiffe_id);
  v1::AttestedNode evicted;
  Status s = client->Call(&v1::DataStore::Stub::DeleteAttestedNode, request, &evicted);
  if (!s.ok()) return client->Report(console, AgentWhat("evict", flags.spiffe_id), s);
  if (flags.server.output == OutputFormat::kJson) {
    PrintProtoJson(console.out, evicted);
  } else {
    console.out << "Agent evicted successfully\n";
  }
  return kExitOk;
}

}  // namespace

void RegisterAgentCommands(CLI::App& root, Console& console) {
  CLI::App* group = root.add_subcommand(
      "agent", "List, show, ban, evict and count attested agents on plinth serve");
  RequireCommand(*group, console);
  group->footer(
      "Flags may be written with one dash, as spire-server does (-spiffeID) or two "
      "(--spiffeID).\n" +
      std::string(kExitCodesHelp));
  {
    auto flags = std::make_shared<AgentListFlags>();
    CLI::App* verb = AddServerVerb(*group, "list",
                                   "List the agents matching the filters (all without filters), "
                                   "with their selectors",
                                   &flags->server);
    AddFilterFlags(*verb, &flags->filter);
    BindVerb(verb, flags, console, RunList);
  }
  {
    auto flags = std::make_shared<AgentIdFlags>();
    CLI::App* verb = AddServerVerb(*group, "show",
                                   "Show the agent -spiffeID with its selectors (exit 3 if absent)",
                                   &flags->server);
    verb->add_option("--spiffeID", flags->spiffe_id, "The agent's SPIFFE ID")->option_text("ID");
    BindVerb(verb, flags, console, RunShow);
  }
  {
    auto flags = std::make_shared<AgentIdFlags>();
    CLI::App* verb = AddServerVerb(
        *group, "ban",
        "Ban the agent -spiffeID: clear its certificate serial numbers so that it cannot renew "
        "its SVID until it attests again (exit 3 if absent)",
        &flags->server);
    verb->add_option("--spiffeID", flags->spiffe_id, "The agent's SPIFFE ID")->option_text("ID");
    BindVerb(verb, flags, console, RunBan);
  }
  {
    auto flags = std::make_shared<AgentIdFlags>();
    CLI::App* verb =
        AddServerVerb(*group, "evict",
                      "Delete the agent -spiffeID's record; it may attest again (exit 3 if absent)",
                      &flags->server);
    verb->add_option("--spiffeID", flags->spiffe_id, "The agent's SPIFFE ID")->option_text("ID");
    BindVerb(verb, flags, console, RunEvict);
  }
  {
    auto flags = std::make_shared<AgentListFlags>();
    CLI::App* verb = AddServerVerb(*group, "count",
                                   "Count the agents matching the filters (all without filters)",
                                   &flags->server);
    AddFilterFlags(*verb, &flags->filter);
    BindVerb(verb, flags, console, RunCount);
  }
}

}  // namespace plinth::cli
