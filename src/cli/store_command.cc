#include "cli/store_command.h"

#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <system_error>

#include "cli/client.h"
#include "cli/output.h"
#include "cli/store_demo.h"
#include "store/open.h"
#include "store/url.h"

namespace plinth::cli {
namespace {

using store::KeySpan;
using store::Revision;
using store::Store;

// Values longer than this are cut in text tables (get and --output json show them whole).
constexpr size_t kTableValueBytes = 60;
// How often a watch looks at its deadline and at Ctrl-C while no batch arrives.
constexpr std::chrono::milliseconds kWatchPollInterval(100);

// Flags every store verb takes.
struct StoreFlags {
  std::string url;
  OutputFormat output = OutputFormat::kText;
};

void AddStoreFlags(CLI::App& verb, StoreFlags* flags) {
  verb.add_option("-s,--store,--url", flags->url,
                  "Store URL; default $PLINTH_STORE, else " + std::string(kDefaultStoreUrl) +
                      ". E.g. memory://, sqlite:///var/lib/plinth/plinth.db?synchronous=normal")
      ->envname("PLINTH_STORE")
      ->default_val(std::string(kDefaultStoreUrl))
      ->option_text("URL");
  AddOutputFlag(verb, &flags->output);
}

CLI::App* AddVerb(CLI::App& group, const std::string& name, const std::string& description,
                  StoreFlags* flags) {
  CLI::App* verb = group.add_subcommand(name, description);
  verb->footer(std::string(kExitCodesHelp));
  AddStoreFlags(*verb, flags);
  return verb;
}

// Opens the store named by `flags`, or reports why not: a bad URL or option is a
// configuration error (exit 2), anything else a failure (exit 1).
std::unique_ptr<Store> OpenOrReport(const StoreFlags& flags, Console& console) {
  auto store = OpenStoreForCommand(flags.url);
  if (!store.ok()) {
    console.exit_code = ReportFailure(
        console, "opening store \"" + store::RedactUrl(flags.url) + "\"", store.status(),
        store.status().code() == StatusCode::kInvalidArgument ? kExitUsage : kExitFailed);
    return nullptr;
  }
  return std::move(store).value();
}

std::string Quoted(std::string_view bytes) { return "\"" + DisplayBytes(bytes) + "\""; }

// ---- put ----

struct PutFlags {
  StoreFlags store;
  std::string key;
  std::string value;
};

// Reports a single-key write: `{"key": ..., "revision": R}` or "<verb> "key" at revision R".
void PrintWrite(OutputFormat output, std::string_view verb, std::string_view key, Revision revision,
                Console& console) {
  if (output == OutputFormat::kJson) {
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    SetBytesField(j, "key", key);
    j["revision"] = revision;
    PrintJson(console.out, j);
  } else {
    console.out << verb << " " << Quoted(key) << " at revision " << revision << "\n";
  }
}

int RunPut(const PutFlags& flags, Console& console) {
  if (flags.key.empty()) return ReportUsageError(console, "KEY must not be empty");
  auto store = OpenOrReport(flags.store, console);
  if (!store) return console.exit_code;
  auto rev = store->Put(flags.key, flags.value);
  if (!rev.ok()) return ReportFailure(console, "put " + Quoted(flags.key), rev.status());
  PrintWrite(flags.store.output, "put", flags.key, *rev, console);
  return kExitOk;
}

// ---- get ----

struct GetFlags {
  StoreFlags store;
  std::string key;
};

int RunGet(const GetFlags& flags, Console& console) {
  if (flags.key.empty()) return ReportUsageError(console, "KEY must not be empty");
  auto store = OpenOrReport(flags.store, console);
  if (!store) return console.exit_code;
  auto kv = store->Get(flags.key);
  if (!kv.ok()) {
    return ReportFailure(console, "get " + Quoted(flags.key), kv.status(),
                         kv.status().code() == StatusCode::kNotFound ? kExitNotFound : kExitFailed);
  }
  if (flags.store.output == OutputFormat::kJson) {
    PrintJson(console.out, KeyValueToJson(*kv));
  } else {
    TextTable t({"key", DisplayBytes(kv->key)});
    t.AddRow({"value", DisplayBytes(kv->value)});
    t.AddRow({"create_revision", std::to_string(kv->create_revision)});
    t.AddRow({"mod_revision", std::to_string(kv->mod_revision)});
    t.Print(console.out);
  }
  return kExitOk;
}

// ---- delete ----

int RunDelete(const GetFlags& flags, Console& console) {
  if (flags.key.empty()) return ReportUsageError(console, "KEY must not be empty");
  auto store = OpenOrReport(flags.store, console);
  if (!store) return console.exit_code;
  const std::string what = "delete " + Quoted(flags.key);
  // Read, then delete on condition that the key is unchanged, so that "not found" is exact
  // even with concurrent writers; retry a few times if another writer gets in between.
  constexpr int kAttempts = 5;
  for (int attempt = 1;; ++attempt) {
    auto tx = store->Begin();
    auto kv = tx->Get(flags.key);
    if (!kv.ok()) {
      return ReportFailure(
          console, what, kv.status(),
          kv.status().code() == StatusCode::kNotFound ? kExitNotFound : kExitFailed);
    }
    if (Status s = tx->Delete(flags.key); !s.ok()) return ReportFailure(console, what, s);
    auto rev = tx->Commit();
    if (!rev.ok() && rev.status().code() == StatusCode::kAborted && attempt < kAttempts) continue;
    if (!rev.ok()) return ReportFailure(console, what, rev.status());
    PrintWrite(flags.store.output, "deleted", flags.key, *rev, console);
    return kExitOk;
  }
}

// ---- range ----

struct RangeFlags {
  StoreFlags store;
  std::string prefix;
  int64_t limit = 0;
  std::string after;
};

int RunRange(const RangeFlags& flags, Console& console) {
  auto store = OpenOrReport(flags.store, console);
  if (!store) return console.exit_code;
  store::RangeOptions options;
  options.limit = static_cast<size_t>(flags.limit);
  options.after = flags.after;
  auto result = store->Range(KeySpan::Prefix(flags.prefix), options);
  if (!result.ok()) return ReportFailure(console, "range " + Quoted(flags.prefix), result.status());
  if (flags.store.output == OutputFormat::kJson) {
    nlohmann::ordered_json kvs = nlohmann::ordered_json::array();
    for (const auto& kv : result->kvs) kvs.push_back(KeyValueToJson(kv));
    nlohmann::ordered_json j = {{"revision", result->revision}, {"more", result->more}};
    j["kvs"] = std::move(kvs);
    if (result->more && !result->kvs.empty())
      SetBytesField(j, "next_after", result->kvs.back().key);
    PrintJson(console.out, j);
    return kExitOk;
  }
  if (!result->kvs.empty()) {
    TextTable t({"KEY", "VALUE", "CREATED", "MODIFIED"});
    for (const auto& kv : result->kvs) {
      t.AddRow({DisplayBytes(kv.key), DisplayBytes(kv.value, kTableValueBytes),
                std::to_string(kv.create_revision), std::to_string(kv.mod_revision)});
    }
    t.Print(console.out);
  }
  console.out << result->kvs.size() << (result->kvs.size() == 1 ? " key" : " keys") << " under "
              << Quoted(flags.prefix) << " at revision " << result->revision << "\n";
  if (result->more && !result->kvs.empty()) {
    console.out << "more keys follow; continue with --after " << Quoted(result->kvs.back().key)
                << "\n";
  }
  return kExitOk;
}

// ---- count ----

struct CountFlags {
  StoreFlags store;
  std::string prefix;
};

int RunCount(const CountFlags& flags, Console& console) {
  auto store = OpenOrReport(flags.store, console);
  if (!store) return console.exit_code;
  auto result = store->Count(KeySpan::Prefix(flags.prefix));
  if (!result.ok()) return ReportFailure(console, "count " + Quoted(flags.prefix), result.status());
  if (flags.store.output == OutputFormat::kJson) {
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    SetBytesField(j, "prefix", flags.prefix);
    j["count"] = result->count;
    j["revision"] = result->revision;
    PrintJson(console.out, j);
  } else {
    console.out << result->count << (result->count == 1 ? " key" : " keys") << " under "
                << Quoted(flags.prefix) << " at revision " << result->revision << "\n";
  }
  return kExitOk;
}

// ---- watch ----

std::atomic<bool> g_interrupted{false};
static_assert(std::atomic<bool>::is_always_lock_free, "used from a signal handler");

extern "C" void OnInterrupt(int) { g_interrupted.store(true); }

// Turns SIGINT into a flag for the lifetime of the object, so a watch ends cleanly on Ctrl-C.
class ScopedInterruptFlag {
 public:
  ScopedInterruptFlag() {
    g_interrupted.store(false);
    struct sigaction action = {};
    action.sa_handler = OnInterrupt;
    sigemptyset(&action.sa_mask);
    installed_ = sigaction(SIGINT, &action, &previous_) == 0;
  }
  ~ScopedInterruptFlag() {
    if (installed_) sigaction(SIGINT, &previous_, nullptr);
  }
  ScopedInterruptFlag(const ScopedInterruptFlag&) = delete;
  ScopedInterruptFlag& operator=(const ScopedInterruptFlag&) = delete;
  bool interrupted() const { return g_interrupted.load(); }

 private:
  struct sigaction previous_ = {};
  bool installed_ = false;
};

struct WatchFlags {
  StoreFlags store;
  std::string prefix;
  int64_t from = 0;
  int64_t count = 0;
  std::string timeout = "10s";
};

void PrintBatchText(const store::WatchBatch& batch, std::ostream& out) {
  out << "revision " << batch.revision << "  (" << batch.events.size()
      << (batch.events.size() == 1 ? " event)" : " events)") << "\n";
  if (batch.events.empty()) return;
  TextTable t({"TYPE", "KEY", "VALUE", "CREATED"});
  for (const store::Event& e : batch.events) {
    const bool put = e.type == store::Event::Type::kPut;
    t.AddRow({std::string(EventTypeName(e.type)), DisplayBytes(e.kv.key),
              put ? DisplayBytes(e.kv.value, kTableValueBytes) : "",
              put ? std::to_string(e.kv.create_revision) : ""});
  }
  t.Print(out, "  ");
}

int RunWatch(const WatchFlags& flags, Console& console) {
  auto timeout = ParseDuration(flags.timeout);
  if (!timeout.ok())
    return ReportUsageError(console, "--timeout: " + std::string(timeout.status().message()));
  auto store = OpenOrReport(flags.store, console);
  if (!store) return console.exit_code;
  const std::string what = "watch " + Quoted(flags.prefix);
  Revision from = flags.from;
  if (from == 0) {
    auto current = store->CurrentRevision();
    if (!current.ok()) return ReportFailure(console, what, current.status());
    from = *current + 1;
  }
  auto stream = store->Watch(KeySpan::Prefix(flags.prefix), from);
  if (!stream.ok()) return ReportFailure(console, what, stream.status());
  const bool text = flags.store.output == OutputFormat::kText;
  if (text) {
    std::string stops;
    if (flags.count > 0) {
      stops +=
          "after " + std::to_string(flags.count) + (flags.count == 1 ? " batch, " : " batches, ");
    }
    if (timeout->count() > 0) stops += "after " + flags.timeout + ", ";
    console.out << "watching " << Quoted(flags.prefix) << " from revision " << from << "; stops "
                << stops << (stops.empty() ? "" : "or ") << "on Ctrl-C" << std::endl;
  }

  ScopedInterruptFlag interrupt;
  using Clock = std::chrono::steady_clock;
  const auto deadline = timeout->count() > 0 ? Clock::now() + *timeout : Clock::time_point::max();
  int64_t batches = 0;
  std::string reason;
  while (true) {
    if (interrupt.interrupted()) {
      reason = "interrupted";
      break;
    }
    const auto now = Clock::now();
    if (now >= deadline) {
      reason = "timeout";
      break;
    }
    auto wait = std::min<Clock::duration>(kWatchPollInterval, deadline - now);
    auto batch = (*stream)->Next(std::max(
        std::chrono::milliseconds(1), std::chrono::duration_cast<std::chrono::milliseconds>(wait)));
    if (!batch.ok() && batch.status().code() == StatusCode::kDeadlineExceeded) continue;
    if (!batch.ok()) return ReportFailure(console, what, batch.status());
    ++batches;
    if (text) {
      PrintBatchText(*batch, console.out);
    } else {
      PrintJson(console.out, WatchBatchToJson(*batch), /*one_line=*/true);
    }
    console.out.flush();
    if (flags.count > 0 && batches >= flags.count) {
      reason = "count reached";
      break;
    }
  }
  if (text) {
    console.out << "watch ended after " << batches << (batches == 1 ? " batch" : " batches") << " ("
                << reason << ")\n";
  }
  return kExitOk;
}

// ---- compact ----

struct CompactFlags {
  StoreFlags store;
  ConnectionFlags connection;
  int64_t positional_revision = 0;
  int64_t revision = 0;
  CLI::Option* store_option = nullptr;
  CLI::Option* positional_option = nullptr;
  CLI::Option* revision_option = nullptr;
};

void PrintCompacted(OutputFormat output, Revision compacted, Console& console) {
  if (output == OutputFormat::kJson) {
    PrintJson(console.out, {{"compacted_revision", compacted}});
  } else {
    console.out << "history compacted through revision " << compacted << "\n";
  }
}

// With --store (or $PLINTH_STORE): compacts that store directly. Otherwise asks plinth serve
// (Operator.CompactStore), where revision 0 means "keep the server's configured retention".
int RunCompact(const CompactFlags& flags, Console& console) {
  const bool positional = flags.positional_option->count() > 0;
  const bool named = flags.revision_option->count() > 0;
  if (positional && named) return ReportUsageError(console, "give REV or --revision, not both");
  const int64_t revision = positional ? flags.positional_revision : flags.revision;
  const std::string what = "compact " + std::to_string(revision);
  if (flags.store_option->count() == 0) {
    auto client = ConnectOrReport(flags.connection, console);
    if (!client) return console.exit_code;
    v1::CompactRequest request;
    request.set_revision(revision);
    v1::CompactResponse response;
    Status s = client->Call(&v1::Operator::Stub::CompactStore, request, &response);
    if (!s.ok()) return client->Report(console, what, s);
    PrintCompacted(flags.store.output, response.compacted_revision(), console);
    return kExitOk;
  }
  if (!positional && !named) {
    return ReportUsageError(console, "store compact --store needs the revision REV");
  }
  auto store = OpenOrReport(flags.store, console);
  if (!store) return console.exit_code;
  if (Status s = store->Compact(revision); !s.ok()) return ReportFailure(console, what, s);
  auto compacted = store->CompactedRevision();
  if (!compacted.ok()) return ReportFailure(console, what, compacted.status());
  PrintCompacted(flags.store.output, *compacted, console);
  return kExitOk;
}

// ---- stats and verify (plinth serve's Operator service) ----

int RunStats(const ServerFlags& flags, Console& console) {
  auto client = ConnectOrReport(flags.connection, console);
  if (!client) return console.exit_code;
  v1::StoreStatus status;
  Status s = client->Call(&v1::Operator::Stub::GetStoreStatus, google::protobuf::Empty(), &status);
  if (!s.ok()) return client->Report(console, "store stats", s);
  if (flags.output == OutputFormat::kJson) {
    PrintProtoJson(console.out, status);
    return kExitOk;
  }
  TextTable t({"server", client->target()});
  t.AddRow({"store", DisplayBytes(status.url())});
  t.AddRow({"backend", status.backend()});
  t.AddRow({"ready", status.ready() ? "yes" : "no"});
  t.AddRow({"applied revision", std::to_string(status.applied_revision())});
  t.AddRow({"backend revision", std::to_string(status.backend_revision())});
  t.AddRow({"compacted revision", std::to_string(status.compacted_revision())});
  t.AddRow({"watching", status.watching() ? "yes" : "no"});
  t.AddRow({"mirror rebuilds", std::to_string(status.mirror_rebuilds())});
  t.AddRow({"verify mismatches", std::to_string(status.verify_mismatches())});
  // Sorted by name: the proto map has no order of its own.
  std::map<std::string, int64_t> counts(status.object_counts().begin(),
                                        status.object_counts().end());
  for (const auto& [name, count] : counts) t.AddRow({name, std::to_string(count)});
  t.Print(console.out);
  return kExitOk;
}

int RunVerify(const ServerFlags& flags, Console& console) {
  auto client = ConnectOrReport(flags.connection, console);
  if (!client) return console.exit_code;
  v1::VerifyResponse response;
  Status s = client->Call(&v1::Operator::Stub::VerifyStore, google::protobuf::Empty(), &response);
  if (!s.ok()) return client->Report(console, "store verify", s);
  if (flags.output == OutputFormat::kJson) {
    PrintProtoJson(console.out, response);
  } else if (response.ok()) {
    console.out << "verified: "
                << (response.message().empty() ? "the server's memory matches the store"
                                               : response.message())
                << "\n";
  } else {
    console.out << "MISMATCH: " << response.message()
                << "\nthe server is rebuilding its memory from the store\n";
  }
  // A mismatch is a finding, not a failed command, but scripts need to see it.
  return response.ok() ? kExitOk : kExitFailed;
}

// ---- status ----

int RunStatus(const StoreFlags& flags, Console& console) {
  auto store = OpenOrReport(flags, console);
  if (!store) return console.exit_code;
  auto current = store->CurrentRevision();
  if (!current.ok()) return ReportFailure(console, "status", current.status());
  auto compacted = store->CompactedRevision();
  if (!compacted.ok()) return ReportFailure(console, "status", compacted.status());
  const store::Limits limits = store->limits();
  if (flags.output == OutputFormat::kJson) {
    nlohmann::ordered_json j = {{"store", flags.url},
                                {"backend", std::string(store->backend())},
                                {"revision", *current},
                                {"compacted_revision", *compacted}};
    j["limits"] = {{"max_key_bytes", limits.max_key_bytes},
                   {"max_value_bytes", limits.max_value_bytes},
                   {"max_ops_per_txn", limits.max_ops_per_txn},
                   {"max_txn_bytes", limits.max_txn_bytes}};
    PrintJson(console.out, j);
    return kExitOk;
  }
  TextTable t({"store", DisplayBytes(flags.url)});
  t.AddRow({"backend", std::string(store->backend())});
  t.AddRow({"revision", std::to_string(*current)});
  t.AddRow({"compacted revision", std::to_string(*compacted)});
  t.AddRow({"max key bytes", std::to_string(limits.max_key_bytes)});
  t.AddRow({"max value bytes", std::to_string(limits.max_value_bytes)});
  t.AddRow({"max ops per txn", std::to_string(limits.max_ops_per_txn)});
  t.AddRow({"max txn bytes", std::to_string(limits.max_txn_bytes)});
  t.Print(console.out);
  return kExitOk;
}

// ---- demo ----

int RunDemo(const StoreFlags& flags, Console& console) {
  auto store = OpenOrReport(flags, console);
  if (!store) return console.exit_code;
  return RunStoreDemo(*store, flags.url, flags.output, console);
}

// Binds a verb's callback to its flags, which the callback keeps alive.
template <typename Flags, typename Run>
void OnRun(CLI::App* verb, std::shared_ptr<Flags> flags, Console& console, Run run) {
  verb->callback([flags, &console, run] { console.exit_code = run(*flags, console); });
}

}  // namespace

StatusOr<std::unique_ptr<Store>> OpenStoreForCommand(std::string_view url) {
  PLINTH_ASSIGN_OR_RETURN(store::StoreUrl parsed, store::ParseStoreUrl(url));
  if (parsed.scheme == "sqlite") {
    const std::filesystem::path dir =
        std::filesystem::path(parsed.location).parent_path().lexically_normal();
    if (dir == "plinth-data" || dir == "plinth-data/") {
      std::error_code ec;
      std::filesystem::create_directories(dir, ec);
      if (ec) {
        return FailedPreconditionError("cannot create data directory ./plinth-data: " +
                                       ec.message());
      }
    }
  }
  return store::OpenStore(url);
}

void RegisterStoreCommands(CLI::App& root, Console& console) {
  CLI::App* group =
      root.add_subcommand("store", "Read, write and watch a store directly by URL (default " +
                                       std::string(kDefaultStoreUrl) +
                                       ", or $PLINTH_STORE); or ask plinth serve about its "
                                       "store (stats, verify, compact)");
  RequireCommand(*group, console);
  group->footer(
      "Store URLs: memory://[name], sqlite:///path/file.db?synchronous=full|normal&...\n" +
      std::string(kExitCodesHelp));

  {
    auto flags = std::make_shared<PutFlags>();
    CLI::App* verb = AddVerb(*group, "put",
                             "Write KEY = VALUE in its own transaction; prints the "
                             "revision",
                             &flags->store);
    verb->add_option("KEY", flags->key, "Key (UTF-8 text)")->required();
    verb->add_option("VALUE", flags->value, "Value (UTF-8 text)")->required();
    OnRun(verb, flags, console, RunPut);
  }
  {
    auto flags = std::make_shared<GetFlags>();
    CLI::App* verb =
        AddVerb(*group, "get", "Read KEY with its revisions; exit code 3 if it does not exist",
                &flags->store);
    verb->add_option("KEY", flags->key, "Key (UTF-8 text)")->required();
    OnRun(verb, flags, console, RunGet);
  }
  {
    auto flags = std::make_shared<GetFlags>();
    CLI::App* verb =
        AddVerb(*group, "delete",
                "Delete KEY; prints the revision; exit code 3 if it does not exist", &flags->store);
    verb->add_option("KEY", flags->key, "Key (UTF-8 text)")->required();
    OnRun(verb, flags, console, RunDelete);
  }
  {
    auto flags = std::make_shared<RangeFlags>();
    CLI::App* verb = AddVerb(*group, "range",
                             "List keys beginning with PREFIX (all keys if omitted), in byte order",
                             &flags->store);
    verb->add_option("PREFIX", flags->prefix, "Key prefix");
    verb->add_option("-l,--limit", flags->limit, "At most N keys (0 = no limit)")
        ->check(CLI::NonNegativeNumber)
        ->option_text("N");
    verb->add_option("-a,--after", flags->after,
                     "Continue after this key (the last key of the previous page)")
        ->option_text("KEY");
    OnRun(verb, flags, console, RunRange);
  }
  {
    auto flags = std::make_shared<CountFlags>();
    CLI::App* verb = AddVerb(
        *group, "count", "Count keys beginning with PREFIX (all keys if omitted)", &flags->store);
    verb->add_option("PREFIX", flags->prefix, "Key prefix");
    OnRun(verb, flags, console, RunCount);
  }
  {
    auto flags = std::make_shared<WatchFlags>();
    CLI::App* verb =
        AddVerb(*group, "watch",
                "Print every committed change under PREFIX, one batch per transaction, in revision "
                "order. Stops after --count batches, after --timeout, or on Ctrl-C",
                &flags->store);
    verb->add_option("PREFIX", flags->prefix, "Key prefix (all keys if omitted)");
    verb->add_option("-f,--from", flags->from,
                     "First revision to deliver (0 = changes after the current revision)")
        ->check(CLI::NonNegativeNumber)
        ->option_text("REV");
    verb->add_option("-n,--count", flags->count, "Stop after N batches (0 = no limit)")
        ->check(CLI::NonNegativeNumber)
        ->option_text("N");
    verb->add_option("-t,--timeout", flags->timeout,
                     "Stop after this long, e.g. 500ms, 30s, 5m; 0 = no timeout")
        ->capture_default_str()
        ->option_text("DURATION [10s]");
    OnRun(verb, flags, console, RunWatch);
  }
  {
    auto flags = std::make_shared<CompactFlags>();
    CLI::App* verb =
        AddVerb(*group, "compact",
                "Discard change history through revision REV (watching from REV or earlier then "
                "fails). With --store, on that store directly; otherwise through plinth serve, "
                "where REV 0 or none means the server's configured retention",
                &flags->store);
    flags->store_option = verb->get_option("--store");
    flags->positional_option = verb->add_option("REV", flags->positional_revision, "Revision")
                                   ->check(CLI::NonNegativeNumber);
    flags->revision_option = verb->add_option("-r,--revision", flags->revision, "Revision (as REV)")
                                 ->check(CLI::NonNegativeNumber)
                                 ->option_text("REV");
    AddConnectionFlags(*verb, &flags->connection);
    OnRun(verb, flags, console, RunCompact);
  }
  {
    auto flags = std::make_shared<ServerFlags>();
    CLI::App* verb = AddServerVerb(*group, "stats",
                                   "Ask plinth serve about its store: backend, revisions, the "
                                   "mirror's health and object counts",
                                   flags.get());
    OnRun(verb, flags, console, RunStats);
  }
  {
    auto flags = std::make_shared<ServerFlags>();
    CLI::App* verb = AddServerVerb(
        *group, "verify",
        "Ask plinth serve to compare its memory with the store at one revision (exit 1 on a "
        "mismatch, which makes it rebuild)",
        flags.get());
    OnRun(verb, flags, console, RunVerify);
  }
  {
    auto flags = std::make_shared<StoreFlags>();
    CLI::App* verb = AddVerb(
        *group, "status",
        "Show the backend, current and compacted revisions, and the backend's limits", flags.get());
    OnRun(verb, flags, console, RunStatus);
  }
  {
    auto flags = std::make_shared<StoreFlags>();
    CLI::App* verb = AddVerb(*group, "demo",
                             "Walk through what the store does: watch, a transaction, a put, "
                             "a delete, reads, and the watch's batches (keys under demo/)",
                             flags.get());
    OnRun(verb, flags, console, RunDemo);
  }
}

}  // namespace plinth::cli
