// Store URLs: "<scheme>://<location>?<option>=<value>&...", e.g.
// "sqlite:///var/lib/plinth/plinth.db?synchronous=normal" or "memory://".
// Backends read their options through UrlOptions, which rejects any option nobody consumed,
// so that a typo is an error that names the option rather than a silently ignored setting.
#ifndef PLINTH_STORE_URL_H_
#define PLINTH_STORE_URL_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace plinth::store {

struct StoreUrl {
  std::string scheme;                          // lower case, e.g. "sqlite"
  std::string location;                        // everything between "://" and "?", percent-decoded
  std::map<std::string, std::string> options;  // percent-decoded; a repeated option is an error
  std::string text;      // the URL as given (may hold a password: never put it in a message)
  std::string redacted;  // the URL with any password replaced by "***", for messages
};

// `url` with the password of its user-info part (scheme://user:PASSWORD@host...) replaced by
// "***".
std::string RedactUrl(std::string_view url);

// InvalidArgument naming the problem when `url` is not "<scheme>://...".
StatusOr<StoreUrl> ParseStoreUrl(std::string_view url);

// Typed, checked access to a URL's options. Not thread-safe.
class UrlOptions {
 public:
  explicit UrlOptions(const StoreUrl& url);

  std::optional<std::string> TakeString(std::string_view name);
  // One of `allowed` (compared case-insensitively; returned in lower case).
  StatusOr<std::optional<std::string>> TakeEnum(std::string_view name,
                                                const std::vector<std::string>& allowed);
  StatusOr<std::optional<int64_t>> TakeInt(std::string_view name, int64_t min, int64_t max);
  StatusOr<std::optional<bool>> TakeBool(std::string_view name);
  // "250ms", "5s", "2m", "1h"; a bare number is milliseconds.
  StatusOr<std::optional<std::chrono::milliseconds>> TakeDuration(std::string_view name);

  // InvalidArgument naming the first option that was not taken.
  Status CheckAllTaken() const;

 private:
  std::string Context(std::string_view name) const;
  const StoreUrl& url_;
  std::map<std::string, std::string> remaining_;
};

}  // namespace plinth::store

#endif  // PLINTH_STORE_URL_H_
