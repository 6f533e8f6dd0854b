// datastore_bench: the datastore at SPIRE scale, against the budgets of DESIGN.md
// ("Performance budgets"). A report, not a test: it exits 0 whether or not a budget is met,
// and non-zero only when something fails to run.
//
// It generates --entries registration entries and --agents agents into a fresh SQLite store
// (written straight through the store contract in large transactions, with the datastore's
// key layout and index keys, because loading is not what is measured), then:
//   1. opens a DataStore on it: hydration time, resident memory added, memory per entry;
//   2. ListAuthorizedEntries for random agents: p50/p99;
//   3. a selector query page (page size 100): p50/p99, for a one-selector Superset query and
//      an Exact query on a whole selector set;
//   4. single durable creates, each beside a raw one-row SQLite commit in the same directory;
//   5. batched creates (CreateOrReturnRegistrationEntries) in batches of --batch.
//
// The shape (documented so the figures can be compared): entries have 3 selectors of 2 types
// (k8s:ns, k8s:sa, unix:uid), one DNS name, 10% federate with one of 10 trust domains; 90% are
// children of an agent, 10% children of a node alias. There is one node alias per 10 agents
// (parent spiffe://example.org/spire/server, 2 selectors: the agents' node pool and cluster),
// so each agent is authorized for ~9 direct entries plus ~10 through its alias. Agents have 5
// selectors each.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/status.h"
#include "datastore/datastore.h"
#include "datastore/internal/state.h"
#include "plinth/v1/types.pb.h"
#include "store/bench/bench_util.h"
#include "store/open.h"
#include "store/store.h"

namespace plinth::datastore::bench {
namespace {

using ::plinth::bench::FormatBytes;
using ::plinth::bench::FormatLatency;
using ::plinth::bench::FormatRate;
using ::plinth::bench::FormatRatio;
using ::plinth::bench::Latency;
using ::plinth::bench::Summarize;
using ::plinth::bench::Table;
using Clock = std::chrono::steady_clock;

// Budgets from DESIGN.md.
constexpr double kHydrateBudgetS = 5.0;
constexpr double kAuthorizedP99BudgetUs = 20;
constexpr double kSelectorPageP99BudgetUs = 200;
constexpr double kSingleWriteBudget = 1.3;
constexpr double kBatchedCreatesBudget = 50000;
constexpr double kBytesPerEntryBudget = 1024;

constexpr int kFederatedDomains = 10;
constexpr int kAgentsPerAlias = 10;
constexpr int kClusters = 100;
constexpr int kLoadOpsPerTxn = 2000;

struct Flags {
  int64_t entries = 1000000;
  int64_t agents = 100000;
  int samples = 20000;
  int creates = 2000;
  int batch = 1000;
  int batches = 20;
  std::string dir;
};

double MicrosSince(Clock::time_point start) {
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

std::string AgentId(int64_t j) {
  return "spiffe://example.org/spire/agent/k8s_psat/prod/node-" + std::to_string(j);
}
std::string AliasId(int64_t a) { return "spiffe://example.org/alias/pool-" + std::to_string(a); }
std::string FederatedDomain(int64_t k) { return "spiffe://fed" + std::to_string(k) + ".org"; }

v1::Selector MakeSelector(std::string type, std::string value) {
  v1::Selector s;
  s.set_type(std::move(type));
  s.set_value(std::move(value));
  return s;
}

// Workload entry number `i` (i counts from 0; `tag` keeps later phases' IDs apart).
v1::RegistrationEntry WorkloadEntry(int64_t i, const Flags& flags, const std::string& tag) {
  v1::RegistrationEntry e;
  e.set_entry_id(tag + "-" + std::to_string(i));
  e.set_spiffe_id("spiffe://example.org/" + tag + "/w-" + std::to_string(i));
  const int64_t aliases = std::max<int64_t>(1, flags.agents / kAgentsPerAlias);
  if (i % 10 == 0) {
    e.set_parent_id(AliasId((i / 10) % aliases));
  } else {
    e.set_parent_id(AgentId(i % std::max<int64_t>(1, flags.agents)));
  }
  *e.add_selectors() = MakeSelector("k8s", "ns:ns-" + std::to_string(i % 1000));
  *e.add_selectors() = MakeSelector("k8s", "sa:sa-" + std::to_string(i % 50000));
  *e.add_selectors() = MakeSelector("unix", "uid:" + std::to_string(1000 + i % 100));
  e.add_dns_names("w-" + std::to_string(i) + ".example.org");
  if (i % 10 == 5) e.add_federates_with(FederatedDomain(i % kFederatedDomains));
  e.set_x509_svid_ttl(3600);
  e.set_jwt_svid_ttl(300);
  e.set_created_at_unix_nanos(1767225600LL * 1000000000LL + i);
  return e;
}

v1::RegistrationEntry AliasEntry(int64_t a) {
  v1::RegistrationEntry e;
  e.set_entry_id("alias-" + std::to_string(a));
  e.set_spiffe_id(AliasId(a));
  e.set_parent_id("spiffe://example.org/spire/server");
  *e.add_selectors() = MakeSelector("k8s_psat", "agent_node_pool:pool-" + std::to_string(a));
  *e.add_selectors() = MakeSelector("k8s_psat", "cluster:c-" + std::to_string(a % kClusters));
  e.set_x509_svid_ttl(3600);
  return e;
}

// Buffers puts and commits them kLoadOpsPerTxn at a time.
class Loader {
 public:
  explicit Loader(store::Store* store) : store_(store) {}
  Status Put(std::string key, const google::protobuf::MessageLite& value) {
    return PutRaw(std::move(key), value.SerializeAsString());
  }
  Status PutRaw(std::string key, std::string value) {
    txn_.ops.push_back(store::Op::Put(std::move(key), std::move(value)));
    if (txn_.ops.size() >= kLoadOpsPerTxn) return Flush();
    return Status::Ok();
  }
  Status Flush() {
    if (txn_.ops.empty()) return Status::Ok();
    auto rev = store_->Commit(txn_);
    txn_.ops.clear();
    return rev.status();
  }

 private:
  store::Store* store_;
  store::TxnRequest txn_;
};

Status PutEntry(Loader& loader, const internal::Keys& keys, const v1::RegistrationEntry& e) {
  PLINTH_RETURN_IF_ERROR(loader.Put(keys.Entry(e.entry_id()), e));
  PLINTH_RETURN_IF_ERROR(loader.PutRaw(keys.Similar(e), e.entry_id()));
  for (const auto& td : e.federates_with()) {
    PLINTH_RETURN_IF_ERROR(loader.PutRaw(keys.FedLink(td, e.entry_id()), ""));
  }
  return Status::Ok();
}

Status Generate(store::Store* store, const Flags& flags) {
  const internal::Keys keys("ds/", "dsx/");
  Loader loader(store);
  for (int k = 0; k < kFederatedDomains; ++k) {
    v1::Bundle b;
    b.set_trust_domain_id(FederatedDomain(k));
    auto* ca = b.add_root_cas();
    ca->set_der_bytes(std::string(600, static_cast<char>('a' + k)));  // size of a real root
    PLINTH_RETURN_IF_ERROR(loader.Put(keys.Bundle(b.trust_domain_id()), b));
  }
  for (int64_t j = 0; j < flags.agents; ++j) {
    v1::AttestedNode node;
    node.set_spiffe_id(AgentId(j));
    node.set_attestation_data_type("k8s_psat");
    node.set_cert_serial_number(std::to_string(1000000 + j));
    node.set_cert_not_after(4102444800);
    node.set_can_reattest(true);
    node.set_agent_version("1.16.0");
    PLINTH_RETURN_IF_ERROR(loader.Put(keys.Node(node.spiffe_id()), node));
    v1::NodeSelectors sels;
    sels.set_spiffe_id(node.spiffe_id());
    const int64_t pool = j / kAgentsPerAlias;
    *sels.add_selectors() =
        MakeSelector("k8s_psat", "agent_node_pool:pool-" + std::to_string(pool));
    *sels.add_selectors() =
        MakeSelector("k8s_psat", "cluster:c-" + std::to_string(pool % kClusters));
    *sels.add_selectors() = MakeSelector("k8s_psat", "agent_ns:spire");
    *sels.add_selectors() = MakeSelector("k8s_psat", "agent_sa:spire-agent");
    *sels.add_selectors() = MakeSelector("k8s_psat", "agent_node_name:node-" + std::to_string(j));
    PLINTH_RETURN_IF_ERROR(loader.Put(keys.NodeSelectors(node.spiffe_id()), sels));
  }
  const int64_t aliases = std::max<int64_t>(1, flags.agents / kAgentsPerAlias);
  for (int64_t a = 0; a < aliases; ++a) {
    PLINTH_RETURN_IF_ERROR(PutEntry(loader, keys, AliasEntry(a)));
  }
  for (int64_t i = 0; i < flags.entries; ++i) {
    PLINTH_RETURN_IF_ERROR(PutEntry(loader, keys, WorkloadEntry(i, flags, "load")));
    if (i > 0 && i % 200000 == 0) std::cerr << "datastore_bench: generated " << i << " entries\n";
  }
  return loader.Flush();
}

void PrintUsage(std::ostream& out) {
  out << "usage: datastore_bench [--entries N] [--agents M] [--samples S] [--creates C]\n"
         "                       [--batch B] [--batches K] [--dir DIR]\n"
         "  --entries  registration entries to generate (default 1000000)\n"
         "  --agents   agents to generate, 5 selectors each (default 100000)\n"
         "  --samples  queries per read measurement (default 20000)\n"
         "  --creates  single durable creates measured (default 2000)\n"
         "  --batch    entries per batched create (default 1000)\n"
         "  --batches  batched creates measured (default 20)\n"
         "  --dir      where the temporary directory is made (default $TMPDIR or /tmp)\n";
}

StatusOr<Flags> ParseFlags(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      PrintUsage(std::cout);
      std::exit(0);
    }
    if (i + 1 >= argc) return InvalidArgumentError("flag " + arg + " needs a value");
    const std::string value = argv[++i];
    auto number = [&](int64_t min) -> StatusOr<int64_t> {
      char* end = nullptr;
      const long long v = std::strtoll(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || v < min) {
        return InvalidArgumentError(arg + ": \"" + value +
                                    "\" is not an integer >= " + std::to_string(min));
      }
      return static_cast<int64_t>(v);
    };
    if (arg == "--entries") {
      PLINTH_ASSIGN_OR_RETURN(flags.entries, number(1));
    } else if (arg == "--agents") {
      PLINTH_ASSIGN_OR_RETURN(flags.agents, number(1));
    } else if (arg == "--samples") {
      PLINTH_ASSIGN_OR_RETURN(int64_t v, number(1));
      flags.samples = static_cast<int>(v);
    } else if (arg == "--creates") {
      PLINTH_ASSIGN_OR_RETURN(int64_t v, number(1));
      flags.creates = static_cast<int>(v);
    } else if (arg == "--batch") {
      PLINTH_ASSIGN_OR_RETURN(int64_t v, number(1));
      flags.batch = static_cast<int>(v);
    } else if (arg == "--batches") {
      PLINTH_ASSIGN_OR_RETURN(int64_t v, number(1));
      flags.batches = static_cast<int>(v);
    } else if (arg == "--dir") {
      flags.dir = value;
    } else {
      return InvalidArgumentError("unknown flag " + arg + " (see --help)");
    }
  }
  return flags;
}

std::string YesNo(bool met) { return met ? "yes" : "NO"; }

int Main(int argc, char** argv) {
  auto flags = ParseFlags(argc, argv);
  if (!flags.ok()) {
    std::cerr << "datastore_bench: " << flags.status().message() << "\n";
    PrintUsage(std::cerr);
    return 2;
  }
  std::filesystem::path base = flags->dir;
  if (base.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    base = tmp != nullptr ? tmp : "/tmp";
  }
  const std::filesystem::path dir = base / ("datastore_bench." + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string url = "sqlite://" + (dir / "plinth.db").string();
  auto fail = [&](const std::string& what, const Status& status) {
    std::cerr << "datastore_bench: " << what << ": " << status << "\n";
    std::filesystem::remove_all(dir);
    return 1;
  };

  std::cout << "datastore_bench: " << flags->entries << " entries, " << flags->agents
            << " agents, SQLite in " << dir.string() << " (" << ::plinth::bench::FilesystemType(dir)
            << "), CPU " << ::plinth::bench::CpuModel() << "\n";
  {
    auto store = store::OpenStore(url + "?synchronous=normal");
    if (!store.ok()) return fail("open " + url, store.status());
    const auto start = Clock::now();
    if (Status s = Generate(store->get(), *flags); !s.ok()) return fail("generate", s);
    std::cout << "generated in " << MicrosSince(start) / 1e6 << " s\n";
  }

  Table table;
  table.Add({"metric", "measured", "budget", "met?"});

  // 1. Hydration.
  auto store = store::OpenStore(url);
  if (!store.ok()) return fail("open " + url, store.status());
  const size_t rss_before = ::plinth::bench::CurrentRssBytes();
  const auto hydrate_start = Clock::now();
  auto ds = DataStore::Open(store->get(), DataStoreOptions{});
  if (!ds.ok()) return fail("open datastore", ds.status());
  const double hydrate_s = MicrosSince(hydrate_start) / 1e6;
  const size_t rss_after = ::plinth::bench::CurrentRssBytes();
  const double added = static_cast<double>(rss_after - std::min(rss_after, rss_before));
  const int64_t aliases = std::max<int64_t>(1, flags->agents / kAgentsPerAlias);
  const double per_entry = added / static_cast<double>(flags->entries + aliases);
  table.Add({"hydrate", std::to_string(hydrate_s).substr(0, 5) + " s",
             "<= " + std::to_string(static_cast<int>(kHydrateBudgetS)) + " s",
             YesNo(hydrate_s <= kHydrateBudgetS)});
  table.Add({"peak RSS (whole process)", FormatBytes(::plinth::bench::PeakRssBytes()), "-", "-"});
  table.Add({"RSS added by hydration", FormatBytes(added), "-", "-"});
  table.Add({"memory per entry (agents' share included)", FormatBytes(per_entry), "<= 1 KiB",
             YesNo(per_entry <= kBytesPerEntryBudget)});

  std::mt19937_64 rng(42);

  // 2. ListAuthorizedEntries.
  {
    std::vector<double> us;
    us.reserve(static_cast<size_t>(flags->samples));
    size_t returned = 0;
    std::uniform_int_distribution<int64_t> agent(0, flags->agents - 1);
    for (int i = 0; i < flags->samples; ++i) {
      const std::string id = AgentId(agent(rng));
      const auto start = Clock::now();
      auto entries = (*ds)->ListAuthorizedEntries(id);
      us.push_back(MicrosSince(start));
      returned += entries.size();
    }
    const Latency l = Summarize(std::move(us));
    const std::string avg =
        " (" + std::to_string(returned / static_cast<size_t>(flags->samples)) + " entries)";
    table.Add({"ListAuthorizedEntries p50" + avg, FormatLatency(l.p50_us), "-", "-"});
    table.Add({"ListAuthorizedEntries p99", FormatLatency(l.p99_us),
               "<= " + FormatLatency(kAuthorizedP99BudgetUs),
               YesNo(l.p99_us <= kAuthorizedP99BudgetUs)});
  }

  // 3. Selector query pages.
  auto selector_pages = [&](const std::string& name, auto make_request) -> Status {
    std::vector<double> us;
    us.reserve(static_cast<size_t>(flags->samples));
    size_t returned = 0;
    for (int i = 0; i < flags->samples; ++i) {
      v1::ListRegistrationEntriesRequest request = make_request(i);
      request.mutable_pagination()->set_page_size(100);
      const auto start = Clock::now();
      auto page = (*ds)->ListRegistrationEntries(request);
      us.push_back(MicrosSince(start));
      if (!page.ok()) return page.status();
      returned += static_cast<size_t>(page->entries_size());
    }
    const Latency l = Summarize(std::move(us));
    const std::string avg =
        " (" + std::to_string(returned / static_cast<size_t>(flags->samples)) + " entries)";
    table.Add({name + " page p50" + avg, FormatLatency(l.p50_us), "-", "-"});
    table.Add({name + " page p99", FormatLatency(l.p99_us),
               "<= " + FormatLatency(kSelectorPageP99BudgetUs),
               YesNo(l.p99_us <= kSelectorPageP99BudgetUs)});
    return Status::Ok();
  };
  {
    std::uniform_int_distribution<int64_t> pick(0, flags->entries - 1);
    Status s = selector_pages("selector query (1 selector, superset)", [&](int) {
      v1::ListRegistrationEntriesRequest request;
      request.mutable_by_selectors()->set_match(v1::MATCH_SUPERSET);
      *request.mutable_by_selectors()->add_selectors() =
          MakeSelector("k8s", "ns:ns-" + std::to_string(pick(rng) % 1000));
      return request;
    });
    if (!s.ok()) return fail("selector query", s);
    s = selector_pages("selector query (3 selectors, exact)", [&](int) {
      const v1::RegistrationEntry e = WorkloadEntry(pick(rng), *flags, "load");
      v1::ListRegistrationEntriesRequest request;
      request.mutable_by_selectors()->set_match(v1::MATCH_EXACT);
      *request.mutable_by_selectors()->mutable_selectors() = e.selectors();
      return request;
    });
    if (!s.ok()) return fail("selector query", s);
  }

  // 4. Single durable creates beside raw SQLite one-row commits, alternating who goes first.
  {
    auto raw = ::plinth::bench::RawSqlite::Open((dir / "raw.db").string(), "full");
    if (!raw.ok()) return fail("raw sqlite", raw.status());
    std::vector<double> ds_us, raw_us;
    for (int i = 0; i < flags->creates; ++i) {
      const v1::RegistrationEntry e = WorkloadEntry(i, *flags, "single");
      for (int turn = 0; turn < 2; ++turn) {
        const bool ds_turn = (turn == 0) == (i % 2 == 0);
        const auto start = Clock::now();
        if (ds_turn) {
          auto created = (*ds)->CreateRegistrationEntry(e);
          if (!created.ok()) return fail("create", created.status());
          ds_us.push_back(MicrosSince(start));
        } else {
          Status s = (*raw)->InsertOne("k" + std::to_string(i), e.SerializeAsString());
          if (!s.ok()) return fail("raw insert", s);
          raw_us.push_back(MicrosSince(start));
        }
      }
    }
    const Latency d = Summarize(std::move(ds_us)), r = Summarize(std::move(raw_us));
    table.Add({"single durable create p50 (raw sqlite " + FormatLatency(r.p50_us) + ")",
               FormatLatency(d.p50_us) + " = " + FormatRatio(d.p50_us / r.p50_us),
               "<= " + FormatRatio(kSingleWriteBudget),
               YesNo(d.p50_us <= kSingleWriteBudget * r.p50_us)});
    table.Add({"single durable create p99 (raw sqlite " + FormatLatency(r.p99_us) + ")",
               FormatLatency(d.p99_us) + " = " + FormatRatio(d.p99_us / r.p99_us),
               "<= " + FormatRatio(kSingleWriteBudget),
               YesNo(d.p99_us <= kSingleWriteBudget * r.p99_us)});
  }

  // 5. Batched creates.
  {
    double seconds = 0;
    int64_t created = 0;
    for (int b = 0; b < flags->batches; ++b) {
      std::vector<v1::RegistrationEntry> batch;
      batch.reserve(static_cast<size_t>(flags->batch));
      for (int i = 0; i < flags->batch; ++i) {
        batch.push_back(WorkloadEntry(int64_t{b} * flags->batch + i, *flags, "batch"));
      }
      const auto start = Clock::now();
      auto results = (*ds)->CreateOrReturnRegistrationEntries(batch);
      seconds += MicrosSince(start) / 1e6;
      if (!results.ok()) return fail("batched create", results.status());
      created += static_cast<int64_t>(results->size());
    }
    const double rate = static_cast<double>(created) / seconds;
    table.Add({"batched creates (" + std::to_string(flags->batch) + "/call)",
               FormatRate(rate, "entries/s"), ">= " + FormatRate(kBatchedCreatesBudget, "/s"),
               YesNo(rate >= kBatchedCreatesBudget)});
  }

  std::cout << "\n";
  table.Print(std::cout);
  std::cout << "\nmemory per entry: resident memory added by DataStore::Open divided by the "
               "entries (aliases included); the agents' memory is counted in it too.\n"
               "single durable create: synchronous=full, against a raw one-row INSERT commit "
               "in the same directory, interleaved.\n";
  ds->reset();
  store->reset();
  std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace plinth::datastore::bench

int main(int argc, char** argv) { return plinth::datastore::bench::Main(argc, argv); }
