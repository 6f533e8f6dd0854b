// Pieces the benchmark binaries share: latency summaries, the raw-SQLite baseline every
// durable-write budget is measured against, a plain-text table, and facts about the machine
// that belong beside any figure.
#ifndef PLINTH_STORE_BENCH_BENCH_UTIL_H_
#define PLINTH_STORE_BENCH_BENCH_UTIL_H_

#include <sqlite3.h>

#include <filesystem>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace plinth::bench {

// Nearest-rank percentile of sorted samples (0 for none).
double Percentile(const std::vector<double>& sorted, double q);

struct Latency {
  double p50_us = 0;
  double p99_us = 0;
  size_t samples = 0;
};
Latency Summarize(std::vector<double> us);

// A bare SQLite table written the way the sqlite backend writes (WAL, the given
// synchronous mode, BEGIN IMMEDIATE for batches): the baseline of the durable-write budgets.
class RawSqlite {
 public:
  // Opens (creating) `path` with journal_mode=WAL and synchronous=`synchronous`.
  static StatusOr<std::unique_ptr<RawSqlite>> Open(const std::string& path,
                                                   const std::string& synchronous);
  ~RawSqlite();
  RawSqlite(const RawSqlite&) = delete;
  RawSqlite& operator=(const RawSqlite&) = delete;

  // One row in its own (autocommit) transaction.
  Status InsertOne(const std::string& key, const std::string& value);
  // Rows in one BEGIN IMMEDIATE ... COMMIT.
  Status InsertBatch(const std::vector<std::pair<std::string, std::string>>& rows);

 private:
  RawSqlite() = default;
  Status Insert(const std::string& key, const std::string& value);
  Status Exec(const std::string& sql);
  Status Error(const std::string& what) const;

  sqlite3* db_ = nullptr;
  sqlite3_stmt* insert_ = nullptr;
};

std::string FormatLatency(double us);  // "12.3 us" or "1.23 ms"
std::string FormatRate(double per_s, const std::string& unit = "ops/s");
std::string FormatRatio(double r);      // "1.04x"
std::string FormatBytes(double bytes);  // "512 B", "1.5 KiB", "2.3 GiB"

// Rows of cells printed with aligned columns.
class Table {
 public:
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void Print(std::ostream& out) const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

// The filesystem under `dir` ("ext4", "tmpfs (...)", ...): fsync cost depends on it.
std::string FilesystemType(const std::filesystem::path& dir);
std::string CpuModel();
// This process's peak and current resident set size, in bytes (0 if unknown).
size_t PeakRssBytes();
size_t CurrentRssBytes();

}  // namespace plinth::bench

#endif  // PLINTH_STORE_BENCH_BENCH_UTIL_H_
