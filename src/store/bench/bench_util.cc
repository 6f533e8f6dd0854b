// See bench_util.h.
#include "store/bench/bench_util.h"

#include <sys/resource.h>
#include <sys/statfs.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>

namespace plinth::bench {

// Nearest-rank percentile of sorted samples.
double Percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)];
}

Latency Summarize(std::vector<double> us) {
  std::sort(us.begin(), us.end());
  return {Percentile(us, 0.50), Percentile(us, 0.99), us.size()};
}

StatusOr<std::unique_ptr<RawSqlite>> RawSqlite::Open(const std::string& path,
                                                     const std::string& synchronous) {
  auto raw = std::unique_ptr<RawSqlite>(new RawSqlite());
  if (sqlite3_open(path.c_str(), &raw->db_) != SQLITE_OK) return raw->Error("open " + path);
  PLINTH_RETURN_IF_ERROR(raw->Exec("PRAGMA journal_mode=WAL"));
  PLINTH_RETURN_IF_ERROR(raw->Exec("PRAGMA synchronous=" + synchronous));
  PLINTH_RETURN_IF_ERROR(raw->Exec("PRAGMA busy_timeout=5000"));
  PLINTH_RETURN_IF_ERROR(
      raw->Exec("CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY, value BLOB) WITHOUT ROWID"));
  if (sqlite3_prepare_v2(raw->db_, "INSERT INTO kv (key, value) VALUES (?, ?)", -1, &raw->insert_,
                         nullptr) != SQLITE_OK) {
    return raw->Error("prepare insert");
  }
  return raw;
}

RawSqlite::~RawSqlite() {
  sqlite3_finalize(insert_);
  sqlite3_close(db_);
}

Status RawSqlite::InsertOne(const std::string& key, const std::string& value) {
  return Insert(key, value);
}

Status RawSqlite::InsertBatch(const std::vector<std::pair<std::string, std::string>>& rows) {
  PLINTH_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  for (const auto& [key, value] : rows) {
    if (Status s = Insert(key, value); !s.ok()) {
      Exec("ROLLBACK").IgnoreError();
      return s;
    }
  }
  return Exec("COMMIT");
}

Status RawSqlite::Insert(const std::string& key, const std::string& value) {
  sqlite3_bind_blob(insert_, 1, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
  sqlite3_bind_blob(insert_, 2, value.data(), static_cast<int>(value.size()), SQLITE_STATIC);
  const int rc = sqlite3_step(insert_);
  sqlite3_reset(insert_);
  if (rc != SQLITE_DONE) return Error("insert");
  return Status::Ok();
}

Status RawSqlite::Exec(const std::string& sql) {
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) return Error(sql);
  return Status::Ok();
}

Status RawSqlite::Error(const std::string& what) const {
  return InternalError("raw sqlite: " + what + ": " + (db_ ? sqlite3_errmsg(db_) : "no db"));
}

std::string FormatLatency(double us) {
  char buf[32];
  if (us < 1000) {
    std::snprintf(buf, sizeof buf, "%.1f us", us);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f ms", us / 1000);
  }
  return buf;
}

std::string FormatRate(double per_s, const std::string& unit) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f ", per_s);
  return buf + unit;
}

std::string FormatBytes(double bytes) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  while (bytes >= 1024 && unit < 4) {
    bytes /= 1024;
    ++unit;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, unit == 0 ? "%.0f %s" : "%.1f %s", bytes, kUnits[unit]);
  return buf;
}

std::string FormatRatio(double r) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2fx", r);
  return buf;
}

void Table::Print(std::ostream& out) const {
  std::vector<size_t> widths;
  for (const auto& row : rows_) {
    widths.resize(std::max(widths.size(), row.size()), 0);
    for (size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], row[c].size());
  }
  for (const auto& row : rows_) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line.append(widths[c] - row[c].size() + 2, ' ');
    }
    out << line << "\n";
  }
}

std::string FilesystemType(const std::filesystem::path& dir) {
  struct statfs fs;
  if (statfs(dir.c_str(), &fs) != 0) return "unknown";
  switch (static_cast<uint64_t>(fs.f_type)) {
    case 0xEF53:
      return "ext4";
    case 0x01021994:
      return "tmpfs (fsync is free: durable numbers are optimistic)";
    case 0x794C7630:
      return "overlayfs";
    case 0x58465342:
      return "xfs";
    case 0x9123683E:
      return "btrfs";
    default: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "0x%" PRIx64, static_cast<uint64_t>(fs.f_type));
      return buf;
    }
  }
}

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(colon + 2);
    }
  }
  return "unknown";
}

size_t PeakRssBytes() {
  struct rusage usage;
  if (getrusage(RUSAGE_SELF, &usage) != 0) return 0;
  return static_cast<size_t>(usage.ru_maxrss) * 1024;  // Linux reports KiB
}

size_t CurrentRssBytes() {
  std::ifstream in("/proc/self/statm");
  size_t pages = 0, resident = 0;
  if (!(in >> pages >> resident)) return 0;
  return resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

}  // namespace plinth::bench
