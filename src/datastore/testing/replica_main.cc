// datastore_replica: a second plinth replica in its own process, for
// datastore_process_test. It opens a DataStore over the store URL it is given and runs one
// scenario, printing one line per result on stdout (the parent reads them) and errors on
// stderr. It exits 0 when the scenario ran, 1 on an unexpected error, 2 on bad usage.
//
//   datastore_replica URL changes
//       Creates bundles spiffe://a.test, spiffe://b.test and spiffe://c.test; entries "keep"
//       (federates with a.test), "doomed" (federates with b.test) and "plain"; then
//       DeleteBundle(b.test, DELETE) and DeleteBundle(a.test, DISSOCIATE). Prints
//       "done <revision>" with the revision its mirror had applied at the end.
//   datastore_replica URL similar-race ROUNDS TAG
//       For round i, CreateOrReturnRegistrationEntry of a fixed entry (SPIFFE ID
//       spiffe://example.org/race/<i>, parent spiffe://example.org/agent, selector race:<i>)
//       with entry ID "<TAG>-<i>". Prints "similar <i> <entry id> <existing 0|1>".
//   datastore_replica URL restrict-race ROUNDS
//       Waits (bounded) until bundle spiffe://r<ROUNDS-1>.test exists and prints "seen"; then
//       for round i creates entry "fed-<i>" federating with spiffe://r<i>.test, printing
//       "restrict <i> ok <entry id>" or "restrict <i> failed <code>".
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include "common/status.h"
#include "datastore/datastore.h"
#include "store/open.h"

namespace plinth::datastore {
namespace {

v1::RegistrationEntry Entry(const std::string& id, const std::string& spiffe_id,
                            const std::string& parent_id, const std::string& selector_type,
                            const std::string& selector_value) {
  v1::RegistrationEntry e;
  e.set_entry_id(id);
  e.set_spiffe_id(spiffe_id);
  e.set_parent_id(parent_id);
  auto* s = e.add_selectors();
  s->set_type(selector_type);
  s->set_value(selector_value);
  return e;
}

v1::Bundle Bundle(const std::string& trust_domain_id) {
  v1::Bundle b;
  b.set_trust_domain_id(trust_domain_id);
  b.add_root_cas()->set_der_bytes("not parsed by these scenarios");
  return b;
}

Status Changes(DataStore& ds) {
  for (const char* td : {"spiffe://a.test", "spiffe://b.test", "spiffe://c.test"}) {
    PLINTH_RETURN_IF_ERROR(ds.CreateBundle(Bundle(td)).status());
  }
  v1::RegistrationEntry keep =
      Entry("keep", "spiffe://example.org/keep", "spiffe://example.org/agent", "unix", "uid:1");
  keep.add_federates_with("spiffe://a.test");
  keep.add_federates_with("spiffe://c.test");
  v1::RegistrationEntry doomed =
      Entry("doomed", "spiffe://example.org/doomed", "spiffe://example.org/agent", "unix", "uid:2");
  doomed.add_federates_with("spiffe://b.test");
  const v1::RegistrationEntry plain =
      Entry("plain", "spiffe://example.org/plain", "spiffe://example.org/agent", "unix", "uid:3");
  for (const auto& e : {keep, doomed, plain}) {
    PLINTH_RETURN_IF_ERROR(ds.CreateRegistrationEntry(e).status());
  }
  PLINTH_RETURN_IF_ERROR(ds.DeleteBundle("spiffe://b.test", v1::DELETE_BUNDLE_DELETE));
  PLINTH_RETURN_IF_ERROR(ds.DeleteBundle("spiffe://a.test", v1::DELETE_BUNDLE_DISSOCIATE));
  std::cout << "done " << ds.mirror().applied_revision() << std::endl;
  return Status::Ok();
}

Status SimilarRace(DataStore& ds, int rounds, const std::string& tag) {
  for (int i = 0; i < rounds; ++i) {
    const std::string n = std::to_string(i);
    auto result = ds.CreateOrReturnRegistrationEntry(Entry(
        tag + "-" + n, "spiffe://example.org/race/" + n, "spiffe://example.org/agent", "race", n));
    PLINTH_RETURN_IF_ERROR(result.status().WithContext("round " + n));
    std::cout << "similar " << i << " " << result->entry.entry_id() << " "
              << (result->existing ? 1 : 0) << std::endl;
  }
  return Status::Ok();
}

Status RestrictRace(DataStore& ds, int rounds) {
  const std::string last = "spiffe://r" + std::to_string(rounds - 1) + ".test";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!ds.FetchBundle(last).ok()) {
    if (std::chrono::steady_clock::now() > deadline) {
      return DeadlineExceededError("bundle " + last + " never appeared");
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  std::cout << "seen" << std::endl;
  for (int i = 0; i < rounds; ++i) {
    const std::string n = std::to_string(i);
    v1::RegistrationEntry e =
        Entry("fed-" + n, "spiffe://example.org/fed/" + n, "spiffe://example.org/agent", "fed", n);
    e.add_federates_with("spiffe://r" + n + ".test");
    auto created = ds.CreateRegistrationEntry(e);
    if (created.ok()) {
      std::cout << "restrict " << i << " ok " << created->entry_id() << std::endl;
    } else {
      std::cout << "restrict " << i << " failed " << static_cast<int>(created.status().code())
                << std::endl;
    }
  }
  return Status::Ok();
}

int Main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: datastore_replica URL changes|similar-race ROUNDS TAG|restrict-race "
                 "ROUNDS\n";
    return 2;
  }
  const std::string url = argv[1], scenario = argv[2];
  auto store = store::OpenStore(url);
  if (!store.ok()) {
    std::cerr << "datastore_replica: " << store.status() << "\n";
    return 1;
  }
  auto ds = DataStore::Open(store->get(), DataStoreOptions{});
  if (!ds.ok()) {
    std::cerr << "datastore_replica: " << ds.status() << "\n";
    return 1;
  }
  std::cout << "ready" << std::endl;
  Status status;
  if (scenario == "changes") {
    status = Changes(**ds);
  } else if (scenario == "similar-race" && argc == 5) {
    status = SimilarRace(**ds, std::atoi(argv[3]), argv[4]);
  } else if (scenario == "restrict-race" && argc == 4) {
    status = RestrictRace(**ds, std::atoi(argv[3]));
  } else {
    std::cerr << "datastore_replica: unknown scenario or wrong arguments\n";
    return 2;
  }
  if (!status.ok()) {
    std::cerr << "datastore_replica: " << scenario << ": " << status << "\n";
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace plinth::datastore

int main(int argc, char** argv) { return plinth::datastore::Main(argc, argv); }
