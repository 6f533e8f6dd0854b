#include "cli/migrate_command.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "cli/output.h"
#include "cli/store_command.h"
#include "store/migrate/migrate.h"
#include "store/url.h"

namespace plinth::cli {
namespace {

using store::MigrateProgress;

// How often a progress line is printed while a phase runs (each phase also announces itself).
constexpr std::chrono::seconds kProgressInterval(1);

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Best-effort percent-decoding (a bad escape is kept as is): only used to find secrets.
std::string PercentDecoded(std::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size() && HexValue(in[i + 1]) >= 0 && HexValue(in[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(in[i + 1]) * 16 + HexValue(in[i + 2])));
      i += 2;
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A secret-bearing part of a URL: where its value starts and ends in the text.
struct SecretSpan {
  size_t begin = 0;
  size_t end = 0;
};

// The user-info password and the values of query options named like "password" in `url`.
std::vector<SecretSpan> FindSecrets(std::string_view url) {
  std::vector<SecretSpan> spans;
  const size_t sep = url.find("://");
  if (sep == std::string_view::npos) return spans;
  const size_t authority = sep + 3;
  const size_t authority_end = std::min(url.find_first_of("/?", authority), url.size());
  const std::string_view auth = url.substr(authority, authority_end - authority);
  const size_t at = auth.rfind('@');
  if (at != std::string_view::npos) {
    const size_t colon = auth.substr(0, at).find(':');
    if (colon != std::string_view::npos) {
      spans.push_back({authority + colon + 1, authority + at});
    }
  }
  const size_t query = url.find('?');
  if (query == std::string_view::npos) return spans;
  size_t pos = query + 1;
  while (pos <= url.size()) {
    const size_t amp = std::min(url.find('&', pos), url.size());
    const std::string_view option = url.substr(pos, amp - pos);
    const size_t eq = option.find('=');
    if (eq != std::string_view::npos &&
        Lower(PercentDecoded(option.substr(0, eq))).find("password") != std::string::npos) {
      spans.push_back({pos + eq + 1, amp});
    }
    pos = amp + 1;
  }
  return spans;
}

// Replaces every occurrence of `what` in `text` with `with`.
void ReplaceAll(std::string& text, std::string_view what, std::string_view with) {
  if (what.empty()) return;
  for (size_t pos = text.find(what); pos != std::string::npos;
       pos = text.find(what, pos + with.size())) {
    text.replace(pos, what.size(), with);
  }
}

// Scrubs the passwords of the given store URLs out of anything about to be printed: the URLs
// themselves become their redacted forms, and any password that a backend may have quoted on
// its own (raw or percent-decoded) becomes "***".
class SecretScrubber {
 public:
  void AddUrl(std::string_view url) {
    urls_.emplace_back(url, RedactStoreUrl(url));
    for (const SecretSpan& span : FindSecrets(url)) {
      const std::string_view raw = url.substr(span.begin, span.end - span.begin);
      if (raw.empty() || raw == "***") continue;
      secrets_.emplace_back(raw);
      secrets_.push_back(PercentDecoded(raw));
    }
    // Longest first, so that a secret containing another is replaced whole.
    std::sort(secrets_.begin(), secrets_.end(),
              [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  }

  std::string Scrub(std::string text) const {
    for (const auto& [url, redacted] : urls_) ReplaceAll(text, url, redacted);
    for (const std::string& secret : secrets_) ReplaceAll(text, secret, "***");
    return text;
  }

  Status Scrub(const Status& status) const {
    if (status.ok()) return status;
    return Status(status.code(), Scrub(std::string(status.message())));
  }

 private:
  std::vector<std::pair<std::string, std::string>> urls_;
  std::vector<std::string> secrets_;
};

struct MigrateFlags {
  std::string from;
  std::string to;
  int64_t page_size = 1000;
  bool allow_non_empty = false;
  OutputFormat output = OutputFormat::kText;
};

std::string HumanBytes(int64_t bytes) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  size_t unit = 0;
  while (v >= 1024 && unit + 1 < std::size(kUnits)) {
    v /= 1024;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof(text), unit == 0 ? "%.0f %s" : "%.1f %s", v, kUnits[unit]);
  return text;
}

std::string Seconds(std::chrono::nanoseconds d) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.3fs", std::chrono::duration<double>(d).count());
  return text;
}

std::string Keys(int64_t n) { return std::to_string(n) + (n == 1 ? " key" : " keys"); }

// Prints progress lines to stderr: one when a phase starts, then at most one per
// kProgressInterval.
class ProgressPrinter {
 public:
  explicit ProgressPrinter(std::ostream& err) : err_(err) {}

  void operator()(const MigrateProgress& p) {
    const auto now = std::chrono::steady_clock::now();
    const bool new_phase = !started_ || p.phase != phase_;
    if (new_phase) {
      started_ = true;
      phase_ = p.phase;
      phase_start_ = now;
      err_ << "plinth migrate: " << PhaseStart(p) << "\n";
      last_line_ = now;
      return;
    }
    if (now - last_line_ < kProgressInterval) return;
    last_line_ = now;
    err_ << "plinth migrate: " << PhaseName(p.phase) << " " << p.keys << "/" << p.total_keys
         << " keys";
    if (p.total_keys > 0) err_ << " (" << p.keys * 100 / p.total_keys << "%)";
    err_ << ", " << HumanBytes(p.bytes);
    if (p.phase == MigrateProgress::Phase::kCopying) {
      err_ << " in " << p.transactions << (p.transactions == 1 ? " transaction" : " transactions");
    }
    const double seconds = std::chrono::duration<double>(now - phase_start_).count();
    if (seconds > 0) {
      err_ << ", " << static_cast<int64_t>(static_cast<double>(p.keys) / seconds) << " keys/s";
    }
    err_ << std::endl;
  }

 private:
  static const char* PhaseName(MigrateProgress::Phase phase) {
    switch (phase) {
      case MigrateProgress::Phase::kValidating:
        return "validating";
      case MigrateProgress::Phase::kCopying:
        return "copying";
      case MigrateProgress::Phase::kVerifying:
        return "verifying";
    }
    return "?";
  }

  static std::string PhaseStart(const MigrateProgress& p) {
    switch (p.phase) {
      case MigrateProgress::Phase::kValidating:
        return "validating " + Keys(p.total_keys) +
               " against the destination's limits and contents";
      case MigrateProgress::Phase::kCopying:
        return "copying " + Keys(p.total_keys) + " (" + HumanBytes(p.total_bytes) + ")";
      case MigrateProgress::Phase::kVerifying:
        return "verifying the destination";
    }
    return "";
  }

  std::ostream& err_;
  bool started_ = false;
  MigrateProgress::Phase phase_ = MigrateProgress::Phase::kValidating;
  std::chrono::steady_clock::time_point phase_start_;
  std::chrono::steady_clock::time_point last_line_;
};

// Exit code for a failed store call: a malformed URL or option is a configuration error.
int ExitCodeFor(const Status& status) {
  return status.code() == StatusCode::kInvalidArgument ? kExitUsage : kExitFailed;
}

void PrintReport(const MigrateFlags& flags, std::string_view from_backend,
                 std::string_view to_backend, const store::MigrateReport& report,
                 Console& console) {
  const std::string from = RedactStoreUrl(flags.from);
  const std::string to = RedactStoreUrl(flags.to);
  if (flags.output == OutputFormat::kJson) {
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    SetBytesField(j, "from", from);
    j["from_backend"] = std::string(from_backend);
    SetBytesField(j, "to", to);
    j["to_backend"] = std::string(to_backend);
    j["keys"] = report.keys;
    j["bytes"] = report.bytes;
    j["transactions"] = report.transactions;
    j["source_revision"] = report.source_revision;
    j["destination_revision"] = report.destination_revision;
    j["elapsed_seconds"] = std::chrono::duration<double>(report.elapsed).count();
    j["content_sha256"] = report.content_sha256;
    j["verified"] = true;
    PrintJson(console.out, j);
    return;
  }
  TextTable t({"from", DisplayBytes(from) + " (" + std::string(from_backend) + ")"});
  t.AddRow({"to", DisplayBytes(to) + " (" + std::string(to_backend) + ")"});
  t.AddRow({"keys", std::to_string(report.keys)});
  t.AddRow({"bytes", std::to_string(report.bytes) + " (" + HumanBytes(report.bytes) + ")"});
  t.AddRow({"transactions", std::to_string(report.transactions)});
  t.AddRow({"source revision", std::to_string(report.source_revision)});
  t.AddRow({"destination revision", std::to_string(report.destination_revision)});
  t.AddRow({"elapsed", Seconds(report.elapsed)});
  t.AddRow({"content sha256", report.content_sha256});
  t.AddRow({"verified", "yes: key count and content hash match"});
  t.Print(console.out);
}

int RunMigrate(const MigrateFlags& flags, Console& console) {
  SecretScrubber scrubber;
  scrubber.AddUrl(flags.from);
  scrubber.AddUrl(flags.to);
  auto fail = [&](std::string_view what, const Status& status, int code) {
    return ReportFailure(console, scrubber.Scrub(std::string(what)), scrubber.Scrub(status), code);
  };

  // Configuration first, so that nothing is opened (or created) for a command that cannot run.
  StatusOr<store::StoreUrl> from_url = store::ParseStoreUrl(flags.from);
  if (!from_url.ok()) return fail("--from", from_url.status(), kExitUsage);
  StatusOr<store::StoreUrl> to_url = store::ParseStoreUrl(flags.to);
  if (!to_url.ok()) return fail("--to", to_url.status(), kExitUsage);
  if (flags.from == flags.to) {
    return ReportUsageError(
        console, "--from and --to name the same store \"" + RedactStoreUrl(flags.from) + "\"");
  }
  if (from_url->scheme == "sqlite") {
    // Opening a sqlite URL creates the file: a mistyped source path would "migrate" an empty
    // store. A source must exist.
    std::error_code error;
    if (!std::filesystem::exists(from_url->location, error)) {
      return ReportUsageError(
          console, "--from: the SQLite file \"" + from_url->location + "\" does not exist");
    }
  }

  const std::string from_shown = "\"" + RedactStoreUrl(flags.from) + "\"";
  const std::string to_shown = "\"" + RedactStoreUrl(flags.to) + "\"";
  auto from = OpenStoreForCommand(flags.from);
  if (!from.ok()) {
    return fail("opening the source " + from_shown, from.status(), ExitCodeFor(from.status()));
  }
  auto to = OpenStoreForCommand(flags.to);
  if (!to.ok()) {
    return fail("opening the destination " + to_shown, to.status(), ExitCodeFor(to.status()));
  }

  console.err << "plinth migrate: from " << from_shown << " (" << (*from)->backend() << ") to "
              << to_shown << " (" << (*to)->backend() << ")" << std::endl;
  ProgressPrinter printer(console.err);
  store::MigrateOptions options;
  options.page_size = static_cast<size_t>(flags.page_size);
  options.allow_non_empty_destination = flags.allow_non_empty;
  options.progress = [&printer](const MigrateProgress& p) { printer(p); };
  StatusOr<store::MigrateReport> report = store::Migrate(**from, **to, options);
  if (!report.ok()) {
    return fail("migrating " + from_shown + " to " + to_shown, report.status(),
                ExitCodeFor(report.status()));
  }
  if (report->keys == 0) {
    console.err << "plinth migrate: warning: the source held no keys; nothing was copied\n";
  }
  console.err << "plinth migrate: migrated " << Keys(report->keys) << " ("
              << HumanBytes(report->bytes) << ") in " << report->transactions
              << (report->transactions == 1 ? " transaction" : " transactions") << " in "
              << Seconds(report->elapsed) << "; verified: key count and content SHA-256 match"
              << std::endl;
  PrintReport(flags, (*from)->backend(), (*to)->backend(), *report, console);
  return kExitOk;
}

}  // namespace

std::string RedactStoreUrl(std::string_view url) {
  std::string out(url);
  // Right to left, so that earlier offsets stay valid.
  std::vector<SecretSpan> spans = FindSecrets(url);
  std::sort(spans.begin(), spans.end(),
            [](const SecretSpan& a, const SecretSpan& b) { return a.begin > b.begin; });
  for (const SecretSpan& span : spans) out.replace(span.begin, span.end - span.begin, "***");
  return out;
}

void RegisterMigrateCommand(CLI::App& root, Console& console) {
  auto flags = std::make_shared<MigrateFlags>();
  CLI::App* command = root.add_subcommand(
      "migrate",
      "Copy every key of one store into another (any backend to any backend) from one "
      "snapshot of the source, then verify the copy by key count and content SHA-256");
  command->footer(
      "The source is read at one point in time: writes made to it during the migration are "
      "not\ncopied, so stop writers first. Revisions are not preserved (the destination numbers "
      "its own)\nand history is not copied. Nothing in the destination is ever overwritten; by "
      "default it\nmust be empty. Progress goes to stderr, the report to stdout.\n"
      "Store URLs: memory://, sqlite:///path/file.db, postgres://user:pass@host/db,\n"
      "mysql://user:pass@host/db, etcd://host:port/prefix, plugin:///path/lib.so\n" +
      std::string(kExitCodesHelp) +
      "\nFor migrate, 1 also covers an unreachable store, a non-empty destination and a failed "
      "verification.");
  command->add_option("--from", flags->from, "Store URL to copy from")
      ->required()
      ->option_text("URL");
  command->add_option("--to", flags->to, "Store URL to copy into (empty unless --allow-non-empty)")
      ->required()
      ->option_text("URL");
  command->add_option("--page-size", flags->page_size, "Keys read from the source per page")
      ->check(CLI::Range(int64_t{1}, int64_t{1'000'000}))
      ->capture_default_str()
      ->option_text("N [1000]");
  command->add_flag("--allow-non-empty", flags->allow_non_empty,
                    "Copy into a destination that already holds keys, provided none of them "
                    "is also in the source");
  AddOutputFlag(*command, &flags->output);
  command->callback([flags, &console] { console.exit_code = RunMigrate(*flags, console); });
}

}  // namespace plinth::cli
