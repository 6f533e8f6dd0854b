// store_conformance_writer: commits numbered transactions to a store and acknowledges each
// one on stdout, for the conformance suite's multi-process tests.
//
//   store_conformance_writer --url URL --prefix PREFIX --count N
//                            [--ops-per-txn K] [--value-size BYTES]
//
// Commit i puts K keys WriterKey(PREFIX, i, 0..K-1) with values WriterValue(key, BYTES)
// (writer_protocol.h). After each Commit returns OK it prints "rev <revision> <first key>"
// and flushes, so every printed line is an acknowledged, durable commit. Exits 0 after N
// commits; on any error prints a message to stderr and exits 1.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "store/conformance/writer_protocol.h"
#include "store/open.h"

namespace plinth::store::conformance {
namespace {

constexpr char kUsage[] =
    "usage: store_conformance_writer --url URL --prefix PREFIX --count N "
    "[--ops-per-txn K] [--value-size BYTES]";

struct Flags {
  std::string url;
  std::string prefix;
  int64_t count = -1;
  int64_t ops_per_txn = 1;
  int64_t value_size = 0;
};

int Fail(const std::string& message) {
  std::fprintf(stderr, "store_conformance_writer: %s\n", message.c_str());
  return 1;
}

bool ParseCount(std::string_view text, int64_t min, int64_t* out) {
  if (text.empty() || text.size() > 12) return false;
  int64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  if (v < min) return false;
  *out = v;
  return true;
}

// Returns an empty string on success, otherwise what is wrong.
std::string ParseFlags(int argc, char** argv, Flags* flags) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view name = argv[i];
    if (i + 1 >= argc) return "flag " + std::string(name) + " needs a value";
    const std::string_view value = argv[++i];
    if (name == "--url") {
      flags->url = value;
    } else if (name == "--prefix") {
      flags->prefix = value;
    } else if (name == "--count") {
      if (!ParseCount(value, 0, &flags->count)) return "--count must be a number >= 0";
    } else if (name == "--ops-per-txn") {
      if (!ParseCount(value, 1, &flags->ops_per_txn)) return "--ops-per-txn must be >= 1";
    } else if (name == "--value-size") {
      if (!ParseCount(value, 0, &flags->value_size)) return "--value-size must be >= 0";
    } else {
      return "unknown flag " + std::string(name);
    }
  }
  if (flags->url.empty()) return "--url is required";
  if (flags->prefix.empty()) return "--prefix is required";
  if (flags->prefix.find_first_of(" \t\r\n") != std::string::npos) {
    return "--prefix must not contain white space";
  }
  if (flags->count < 0) return "--count is required";
  return "";
}

int Run(int argc, char** argv) {
  Flags flags;
  if (std::string error = ParseFlags(argc, argv, &flags); !error.empty()) {
    return Fail(error + "\n" + kUsage);
  }
  StatusOr<std::unique_ptr<Store>> store = OpenStore(flags.url);
  if (!store.ok()) return Fail("opening " + flags.url + ": " + store.status().ToString());
  for (int64_t i = 0; i < flags.count; ++i) {
    TxnRequest txn;
    for (int op = 0; op < flags.ops_per_txn; ++op) {
      std::string key = WriterKey(flags.prefix, i, op);
      std::string value = WriterValue(key, static_cast<size_t>(flags.value_size));
      txn.ops.push_back(Op::Put(std::move(key), std::move(value)));
    }
    StatusOr<Revision> rev = (*store)->Commit(txn);
    if (!rev.ok()) {
      return Fail("commit " + std::to_string(i) + " failed: " + rev.status().ToString());
    }
    const std::string ack = FormatWriterAck(*rev, txn.ops.front().key);
    if (std::fputs(ack.c_str(), stdout) == EOF || std::fflush(stdout) != 0) {
      return Fail("writing to stdout: " + std::string(std::strerror(errno)));
    }
  }
  return 0;
}

}  // namespace
}  // namespace plinth::store::conformance

int main(int argc, char** argv) { return plinth::store::conformance::Run(argc, argv); }
