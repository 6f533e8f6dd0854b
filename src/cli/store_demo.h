// `plinth store demo`: a short, printed walkthrough of what a store does - a watch, a
// transaction, a single put and delete, reads at a revision, and the watch's batches - so a
// newcomer sees revisions, transactions and the change stream on a real backend.
#ifndef PLINTH_CLI_STORE_DEMO_H_
#define PLINTH_CLI_STORE_DEMO_H_

#include <string_view>

#include "cli/command.h"
#include "store/store.h"

namespace plinth::cli {

// Runs the demo on `store` (opened from `url`, which is only printed) under the prefix
// "demo/", writing to console.out. Returns kExitOk, or kExitFailed after printing the failed
// step to console.err (including a watch that did not deliver every demo revision).
int RunStoreDemo(store::Store& store, std::string_view url, OutputFormat format, Console& console);

}  // namespace plinth::cli

#endif  // PLINTH_CLI_STORE_DEMO_H_
