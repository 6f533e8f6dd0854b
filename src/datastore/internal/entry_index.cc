// EntryIndex: registration entries in memory and the secondary indexes that answer every
// List/Count filter, the similar-entry rule and ListAuthorizedEntries without scanning.
//
// Layout, chosen for DESIGN.md's budgets at 1,000,000 entries (ListAuthorizedEntries ≤ 20 µs,
// a selector page ≤ 200 µs, compact memory). On a machine where a cache miss costs hundreds
// of nanoseconds, what matters is how many cold cache lines an operation touches:
//   - `by_id`, an ordered map keyed by a view of the entry's own entry_id, owns one Record per
//     entry; every other index points at map nodes (which never move), so an entry's ID is
//     read from the node without touching the entry.
//   - Secondary indexes are open-addressing hash tables keyed by a 64-bit hash of the indexed
//     value (parent ID, SPIFFE ID, selector, hint, federated trust domain): no key strings are
//     copied, none can dangle, and a lookup touches one slot. A hash collision puts entries of
//     two values into one list; the list is then marked "mixed" (detected on insert by
//     comparing with an existing member once, then by a second, independent fingerprint), and
//     readers re-check the real field of each entry in a mixed list.
//   - Each list ("postings") is ordered by entry ID, so filtered pages start with a binary
//     search for the page token and stop after page_size matches. A list is one tagged word:
//     one entry, a small sorted array (one allocation), or sorted chunks for large lists.
//     Inserting in ID order (hydration) appends without searching.
//   - Node aliases (parent spiffe://<td>/spire/server) are also listed by selector with what
//     the walk needs to count an agent's selectors against them, so ListAuthorizedEntries
//     finds the aliases an agent qualifies for from its few selectors.
//   - Each Record keeps the hash of its SPIFFE ID and a count of entries listing it as their
//     parent, so the walk learns whether an entry has children without reading the entry or
//     probing another table.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <set>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "common/check.h"
#include "datastore/internal/state.h"

namespace plinth::datastore::internal {

using StoredEntry = Stored<v1::RegistrationEntry>;

namespace {

// One entry in `by_id`.
struct Record {
  StoredEntry stored;
  uint64_t spiffe_hash = 0;  // HashString(spiffe_id)
  // How many entries list a parent whose hash is spiffe_hash: 0 means this entry has no
  // children, so the authorization walk need not look (a collision can only over-count).
  mutable uint32_t children = 0;
};
// by_id's node value; every index points at these.
using Node = std::pair<const std::string_view, Record>;

std::string_view IdOf(const Node* n) { return n->first; }
const v1::RegistrationEntry& EntryOf(const Node* n) { return *n->second.stored.value; }

constexpr std::string_view kSpiffeScheme = "spiffe://";
constexpr std::string_view kServerPath = "/spire/server";

uint64_t Mix(uint64_t x) {
  // splitmix64's finalizer: spreads std::hash's output over all 64 bits.
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

uint64_t HashString(std::string_view s) { return Mix(std::hash<std::string_view>{}(s)); }

uint64_t HashSelector(std::string_view type, std::string_view value) {
  return Mix(std::hash<std::string_view>{}(type)*0x9e3779b97f4a7c15ULL +
             Mix(std::hash<std::string_view>{}(value)));
}

uint64_t HashSelector(const v1::Selector& s) { return HashSelector(s.type(), s.value()); }

// FNV-1a: independent of std::hash, so that two values whose HashString collides are still
// told apart by their fingerprints.
uint64_t Fnv(std::string_view s, uint64_t h = 0xcbf29ce484222325ULL) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

uint64_t FingerprintString(std::string_view s) { return Fnv(s); }

uint64_t FingerprintSelector(std::string_view type, std::string_view value) {
  const uint64_t n = type.size();
  return Fnv(value, Fnv(std::string_view(reinterpret_cast<const char*>(&n), sizeof(n)), Fnv(type)));
}

bool SameSelector(const v1::Selector& a, const v1::Selector& b) {
  return a.type() == b.type() && a.value() == b.value();
}

// The trust domain name of a SPIFFE ID ("" if it is not one).
std::string_view TrustDomainOf(std::string_view spiffe_id) {
  if (!spiffe_id.starts_with(kSpiffeScheme)) return {};
  std::string_view rest = spiffe_id.substr(kSpiffeScheme.size());
  return rest.substr(0, rest.find('/'));
}

// True if `id` is the SPIRE server ID of trust domain `td`: spiffe://<td>/spire/server.
bool IsServerIdOf(std::string_view id, std::string_view td) {
  return id.size() == kSpiffeScheme.size() + td.size() + kServerPath.size() &&
         id.starts_with(kSpiffeScheme) && id.substr(kSpiffeScheme.size(), td.size()) == td &&
         id.ends_with(kServerPath);
}

// True if `id` is some trust domain's SPIRE server ID: entries with that parent are node
// aliases (spec §D).
bool IsServerId(std::string_view id) {
  std::string_view td = TrustDomainOf(id);
  return !td.empty() && IsServerIdOf(id, td);
}

bool HasSelector(const v1::RegistrationEntry& e, const v1::Selector& s) {
  for (const v1::Selector& own : e.selectors()) {
    if (SameSelector(own, s)) return true;
  }
  return false;
}

// True if selectors[i] equals an earlier one (entries are validated against duplicates, but
// stored data is never trusted to be).
template <typename Selectors>
bool RepeatsEarlier(const Selectors& selectors, int i) {
  for (int j = 0; j < i; ++j) {
    if (SameSelector(selectors[j], selectors[i])) return true;
  }
  return false;
}

int DistinctSelectorCount(const v1::RegistrationEntry& e) {
  int n = 0;
  for (int i = 0; i < e.selectors_size(); ++i) n += RepeatsEarlier(e.selectors(), i) ? 0 : 1;
  return n;
}

using SelectorView = std::pair<std::string_view, std::string_view>;

std::vector<SelectorView> SortedSelectorSet(const v1::RegistrationEntry& e) {
  std::vector<SelectorView> out;
  out.reserve(e.selectors_size());
  for (const v1::Selector& s : e.selectors()) out.emplace_back(s.type(), s.value());
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

// Entries ordered by entry ID, in one tagged word. The low two bits tell the representation:
// kSingle (the entry's node pointer; 0 = empty), kSmall (a Small*: one allocation holding up
// to kMaxSmall sorted pointers) or kBig (sorted chunks of at most kMaxChunk). kMixedBit marks
// a list that ever received entries of two different values (see the file comment); Small and
// Big also keep the fingerprint of the value their entries were added for. Insert and Erase
// are idempotent, which also absorbs two values of one entry that hash alike.
class Postings {
 private:
  static constexpr uintptr_t kSingle = 0, kSmall = 1, kBig = 2, kKindBits = 3;
  static constexpr uintptr_t kMixedBit = 4;
  static constexpr uintptr_t kTagBits = kKindBits | kMixedBit;
  static constexpr uint32_t kMaxSmall = 256;
  static constexpr size_t kMaxChunk = 256;

  struct Small {
    uint32_t size;
    uint32_t capacity;
    uint64_t fingerprint;
    const Node** items() { return reinterpret_cast<const Node**>(this + 1); }
    const Node* const* items() const { return reinterpret_cast<const Node* const*>(this + 1); }
  };
  struct Big {
    size_t size = 0;
    uint64_t fingerprint = 0;
    std::vector<std::vector<const Node*>> chunks;  // non-empty, in ID order
  };

  static bool IdLess(const Node* a, std::string_view b) { return IdOf(a) < b; }
  static bool IdGreater(std::string_view a, const Node* b) { return a < IdOf(b); }

 public:
  Postings() = default;
  Postings(Postings&& other) noexcept : bits_(std::exchange(other.bits_, 0)) {}
  Postings& operator=(Postings&& other) noexcept {
    if (this != &other) {
      Clear();
      bits_ = std::exchange(other.bits_, 0);
    }
    return *this;
  }
  Postings(const Postings&) = delete;
  Postings& operator=(const Postings&) = delete;
  ~Postings() { Clear(); }

  bool empty() const { return (bits_ & ~kTagBits) == 0; }
  size_t size() const {
    if (empty()) return 0;
    switch (kind()) {
      case kSmall:
        return small()->size;
      case kBig:
        return big()->size;
      default:
        return 1;
    }
  }
  bool mixed() const { return (bits_ & kMixedBit) != 0; }
  void set_mixed() { bits_ |= kMixedBit; }
  // For a list of one entry: that entry; else nullptr.
  const Node* single() const {
    return kind() == kSingle ? reinterpret_cast<const Node*>(bits_ & ~kTagBits) : nullptr;
  }
  // True if every entry of the list is known, without reading them, to hold the value with
  // `fingerprint`: the list was never mixed and has two or more entries (a single entry keeps
  // no fingerprint; readers check it on the entry).
  bool PureFor(uint64_t fingerprint) const {
    return !mixed() && kind() != kSingle && this->fingerprint() == fingerprint;
  }
  // The fingerprint of the value of a list of two or more entries (0 otherwise).
  uint64_t fingerprint() const {
    switch (kind()) {
      case kSmall:
        return small()->fingerprint;
      case kBig:
        return big()->fingerprint;
      default:
        return 0;
    }
  }

  // Adds `e`; `fingerprint` is that of the value `e` is listed for (kept when the list grows
  // past one entry).
  void Insert(const Node* e, uint64_t fingerprint) {
    const uintptr_t mixed = bits_ & kMixedBit;
    if (empty()) {
      bits_ = reinterpret_cast<uintptr_t>(e) | mixed;
      return;
    }
    const std::string_view id = IdOf(e);
    if (kind() == kSingle) {
      const Node* one = single();
      if (one == e) return;
      Small* s = NewSmall(2);
      s->size = 2;
      s->fingerprint = fingerprint;
      s->items()[0] = IdOf(one) < id ? one : e;
      s->items()[1] = IdOf(one) < id ? e : one;
      bits_ = reinterpret_cast<uintptr_t>(s) | kSmall | mixed;
      return;
    }
    if (kind() == kSmall) {
      Small* s = small();
      const Node** items = s->items();
      // Appending in ID order (hydration) needs one comparison.
      const Node** pos = IdOf(items[s->size - 1]) < id
                             ? items + s->size
                             : std::lower_bound(items, items + s->size, id, IdLess);
      if (pos != items + s->size && *pos == e) return;
      const size_t at = static_cast<size_t>(pos - items);
      if (s->size < s->capacity) {
        std::memmove(items + at + 1, items + at, (s->size - at) * sizeof(const Node*));
        items[at] = e;
        ++s->size;
        return;
      }
      if (s->capacity < kMaxSmall) {
        Small* grown = NewSmall(s->capacity * 2);
        grown->size = s->size + 1;
        grown->fingerprint = s->fingerprint;
        std::memcpy(grown->items(), items, at * sizeof(const Node*));
        grown->items()[at] = e;
        std::memcpy(grown->items() + at + 1, items + at, (s->size - at) * sizeof(const Node*));
        ::operator delete(s);
        bits_ = reinterpret_cast<uintptr_t>(grown) | kSmall | mixed;
        return;
      }
      // Full: becomes chunked.
      auto* b = new Big();
      b->size = s->size;
      b->fingerprint = s->fingerprint;
      b->chunks.emplace_back(items, items + s->size);
      ::operator delete(s);
      bits_ = reinterpret_cast<uintptr_t>(b) | kBig | mixed;
    }
    InsertBig(e, id);
  }

  void Erase(const Node* e) {
    if (empty()) return;
    const uintptr_t mixed = bits_ & kMixedBit;
    const std::string_view id = IdOf(e);
    switch (kind()) {
      case kSingle:
        if (single() == e) bits_ = mixed;
        return;
      case kSmall: {
        Small* s = small();
        const Node** items = s->items();
        const Node** pos = std::lower_bound(items, items + s->size, id, IdLess);
        if (pos == items + s->size || *pos != e) return;
        std::memmove(pos, pos + 1, (items + s->size - pos - 1) * sizeof(const Node*));
        if (--s->size == 1) {
          const Node* last = items[0];
          ::operator delete(s);
          bits_ = reinterpret_cast<uintptr_t>(last) | mixed;
        }
        return;
      }
      default: {
        Big* b = big();
        const size_t ci = ChunkFor(*b, id);
        std::vector<const Node*>& chunk = b->chunks[ci];
        auto pos = std::lower_bound(chunk.begin(), chunk.end(), id, IdLess);
        if (pos == chunk.end() || *pos != e) return;
        chunk.erase(pos);
        --b->size;
        if (chunk.empty()) b->chunks.erase(b->chunks.begin() + ci);
        if (b->size == 1) {
          const Node* last = b->chunks.front().front();
          delete b;
          bits_ = reinterpret_cast<uintptr_t>(last) | mixed;
        }
        return;
      }
    }
  }

  // A forward cursor in entry-ID order.
  class Cursor {
   public:
    bool done() const { return current_ == nullptr; }
    const Node* get() const { return current_; }
    void Next() {
      if (++pos_ < n_) {
        current_ = items_[pos_];
      } else if (big_ != nullptr && ++chunk_ < big_->chunks.size()) {
        items_ = big_->chunks[chunk_].data();
        n_ = big_->chunks[chunk_].size();
        pos_ = 0;
        current_ = items_[0];
      } else {
        current_ = nullptr;
      }
    }

   private:
    friend class Postings;
    void Point(const Node* const* items, size_t n, size_t pos) {
      items_ = items;
      n_ = n;
      pos_ = pos;
      current_ = pos < n ? items[pos] : nullptr;
    }
    const Node* const* items_ = nullptr;
    size_t n_ = 0;
    size_t pos_ = 0;
    const Big* big_ = nullptr;
    size_t chunk_ = 0;
    const Node* current_ = nullptr;
  };

  // The first entry whose ID sorts after `after` ("" = the first entry).
  Cursor After(std::string_view after) const {
    Cursor cur;
    if (empty()) return cur;
    switch (kind()) {
      case kSingle:
        if (after.empty() || IdOf(single()) > after) cur.current_ = single();
        return cur;
      case kSmall: {
        const Small* s = small();
        const Node* const* items = s->items();
        const size_t pos =
            after.empty() ? 0
                          : static_cast<size_t>(
                                std::upper_bound(items, items + s->size, after, IdGreater) - items);
        cur.Point(items, s->size, pos);
        return cur;
      }
      default: {
        const Big* b = big();
        cur.big_ = b;
        cur.chunk_ =
            after.empty()
                ? 0
                : static_cast<size_t>(std::partition_point(b->chunks.begin(), b->chunks.end(),
                                                           [&](const auto& chunk) {
                                                             return IdOf(chunk.back()) <= after;
                                                           }) -
                                      b->chunks.begin());
        if (cur.chunk_ < b->chunks.size()) {
          const auto& chunk = b->chunks[cur.chunk_];
          const size_t pos = after.empty()
                                 ? 0
                                 : static_cast<size_t>(std::upper_bound(chunk.begin(), chunk.end(),
                                                                        after, IdGreater) -
                                                       chunk.begin());
          cur.Point(chunk.data(), chunk.size(), pos);
        }
        return cur;
      }
    }
  }

 private:
  uintptr_t kind() const { return bits_ & kKindBits; }
  Small* small() const { return reinterpret_cast<Small*>(bits_ & ~kTagBits); }
  Big* big() const { return reinterpret_cast<Big*>(bits_ & ~kTagBits); }

  static Small* NewSmall(uint32_t capacity) {
    auto* s = static_cast<Small*>(::operator new(sizeof(Small) + capacity * sizeof(const Node*)));
    s->size = 0;
    s->capacity = capacity;
    s->fingerprint = 0;
    return s;
  }

  // The chunk that holds or should receive `id`: the first whose last ID is >= id, or the
  // last chunk.
  static size_t ChunkFor(const Big& b, std::string_view id) {
    const size_t i = static_cast<size_t>(
        std::partition_point(b.chunks.begin(), b.chunks.end(),
                             [&](const auto& chunk) { return IdOf(chunk.back()) < id; }) -
        b.chunks.begin());
    return std::min(i, b.chunks.size() - 1);
  }

  void InsertBig(const Node* e, std::string_view id) {
    Big* b = big();
    std::vector<const Node*>& last = b->chunks.back();
    if (IdOf(last.back()) < id) {  // appending in ID order
      if (last.size() >= kMaxChunk) {
        b->chunks.emplace_back(1, e);
      } else {
        last.push_back(e);
      }
      ++b->size;
      return;
    }
    const size_t ci = ChunkFor(*b, id);
    std::vector<const Node*>& chunk = b->chunks[ci];
    auto pos = std::lower_bound(chunk.begin(), chunk.end(), id, IdLess);
    if (pos != chunk.end() && *pos == e) return;
    chunk.insert(pos, e);
    ++b->size;
    if (chunk.size() > kMaxChunk) {
      std::vector<const Node*> upper(chunk.begin() + chunk.size() / 2, chunk.end());
      chunk.resize(chunk.size() / 2);
      chunk.shrink_to_fit();
      b->chunks.insert(b->chunks.begin() + ci + 1, std::move(upper));
    }
  }

  void Clear() {
    if (!empty()) {
      if (kind() == kSmall) ::operator delete(small());
      if (kind() == kBig) delete big();
    }
    bits_ = 0;
  }

  uintptr_t bits_ = 0;
};

// An open-addressing (linear probing) hash table from a 64-bit hash to a V (a list): one slot
// per lookup, no node allocations, and rehashing streams through memory. Key 0 marks an empty
// slot, so hash 0 is stored as 1 (a collision like any other). References into the table are
// invalidated by GetOrInsert and EraseIfEmpty.
template <typename V>
class FlatHashMap {
 public:
  const V* Find(uint64_t hash) const { return const_cast<FlatHashMap*>(this)->FindMutable(hash); }
  V* FindMutable(uint64_t hash) {
    if (slots_.empty()) return nullptr;
    const uint64_t key = Key(hash);
    for (size_t i = key & mask_;; i = (i + 1) & mask_) {
      if (slots_[i].key == key) return &slots_[i].value;
      if (slots_[i].key == 0) return nullptr;
    }
  }

  V& GetOrInsert(uint64_t hash) {
    if ((size_ + 1) * 4 > slots_.size() * 3) Grow();
    const uint64_t key = Key(hash);
    size_t i = key & mask_;
    for (; slots_[i].key != 0; i = (i + 1) & mask_) {
      if (slots_[i].key == key) return slots_[i].value;
    }
    slots_[i].key = key;
    ++size_;
    return slots_[i].value;
  }

  // Removes the slot of `hash` if its value is empty().
  void EraseIfEmpty(uint64_t hash) {
    if (slots_.empty()) return;
    const uint64_t key = Key(hash);
    size_t i = key & mask_;
    for (; slots_[i].key != key; i = (i + 1) & mask_) {
      if (slots_[i].key == 0) return;
    }
    if (!slots_[i].value.empty()) return;
    // Backward-shift deletion: move later members of the probe run into the hole, so that
    // lookups never need tombstones.
    slots_[i].key = 0;
    for (size_t j = (i + 1) & mask_; slots_[j].key != 0; j = (j + 1) & mask_) {
      const size_t home = slots_[j].key & mask_;
      const bool between = i <= j ? (i < home && home <= j) : (i < home || home <= j);
      if (between) continue;
      slots_[i].key = slots_[j].key;
      slots_[i].value = std::move(slots_[j].value);
      slots_[j].key = 0;
      i = j;
    }
    --size_;
  }

  bool empty() const { return size_ == 0; }

 private:
  struct Slot {
    uint64_t key = 0;
    V value;
  };

  static uint64_t Key(uint64_t hash) { return hash == 0 ? 1 : hash; }

  void Grow() {
    std::vector<Slot> old = std::move(slots_);
    const size_t capacity = old.empty() ? 16 : old.size() * 2;
    slots_ = std::vector<Slot>(capacity);
    mask_ = capacity - 1;
    for (Slot& s : old) {
      if (s.key == 0) continue;
      size_t i = s.key & mask_;
      while (slots_[i].key != 0) i = (i + 1) & mask_;
      slots_[i].key = s.key;
      slots_[i].value = std::move(s.value);
    }
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

using PostingsMap = FlatHashMap<Postings>;

// Adds `e` to the list of `hash`. `fingerprint` identifies the value `e` is listed for;
// `holds(other)` tells whether another entry has that value. A list that receives a second
// value is marked mixed: checked on the entry the first time (a list of one), by fingerprint
// after that.
template <typename Holds>
void AddPosting(PostingsMap& map, uint64_t hash, const Node* e, uint64_t fingerprint,
                const Holds& holds) {
  Postings& list = map.GetOrInsert(hash);
  if (!list.mixed() && !list.empty()) {
    if (const Node* one = list.single()) {
      if (one != e && !holds(EntryOf(one))) list.set_mixed();
    } else if (list.fingerprint() != fingerprint) {
      list.set_mixed();
    }
  }
  list.Insert(e, fingerprint);
}

void ErasePosting(PostingsMap& map, uint64_t hash, const Node* e) {
  Postings* found = map.FindMutable(hash);
  if (found == nullptr) return;
  found->Erase(e);
  map.EraseIfEmpty(hash);
}

// A set compared with a requested set R under a MatchBehavior. `in_request` is how many
// distinct members of the object's set S are in R, `distinct` is |S|.
bool MatchSets(v1::MatchBehavior match, size_t in_request, size_t distinct, size_t request) {
  switch (match) {
    case v1::MATCH_EXACT:
      return in_request == request && in_request == distinct;
    case v1::MATCH_SUBSET:
      return in_request > 0 && in_request == distinct;
    case v1::MATCH_SUPERSET:
      return in_request == request;
    case v1::MATCH_ANY:
      return in_request > 0;
    default:
      return false;
  }
}

// Filters of a request that the scan's source already guarantees, so Matches skips them
// (and, when it can skip all, never reads the entry).
constexpr unsigned kImpliesNothing = 0;
constexpr unsigned kImpliesSpiffeId = 1;
constexpr unsigned kImpliesParentId = 2;
constexpr unsigned kImpliesHint = 4;
constexpr unsigned kImpliesDownstream = 8;
constexpr unsigned kImpliesSelectors = 16;
constexpr unsigned kImpliesFederation = 32;

// The filters of a List or Count request, with its sets sorted and deduplicated.
struct Filter {
  std::optional<std::string_view> parent_id;
  std::optional<std::string_view> spiffe_id;
  std::optional<std::string_view> hint;
  bool downstream_only = false;
  std::optional<v1::MatchBehavior> selector_match;
  std::vector<SelectorView> selectors;
  std::optional<v1::MatchBehavior> federation_match;
  std::vector<std::string_view> trust_domains;

  template <typename Request>
  static Filter From(const Request& r) {
    Filter f;
    if (r.has_by_parent_id()) f.parent_id = r.by_parent_id();
    if (r.has_by_spiffe_id()) f.spiffe_id = r.by_spiffe_id();
    if (r.has_by_hint()) f.hint = r.by_hint();
    f.downstream_only = r.has_by_downstream() && r.by_downstream();
    if (r.has_by_selectors()) {
      f.selector_match = r.by_selectors().match();
      for (const v1::Selector& s : r.by_selectors().selectors()) {
        f.selectors.emplace_back(s.type(), s.value());
      }
      std::sort(f.selectors.begin(), f.selectors.end());
      f.selectors.erase(std::unique(f.selectors.begin(), f.selectors.end()), f.selectors.end());
    }
    if (r.has_by_federates_with()) {
      f.federation_match = r.by_federates_with().match();
      for (const std::string& td : r.by_federates_with().trust_domains()) {
        f.trust_domains.emplace_back(td);
      }
      std::sort(f.trust_domains.begin(), f.trust_domains.end());
      f.trust_domains.erase(std::unique(f.trust_domains.begin(), f.trust_domains.end()),
                            f.trust_domains.end());
    }
    return f;
  }

  // The filters this request has, as Implied bits.
  unsigned present() const {
    return (spiffe_id ? kImpliesSpiffeId : 0) | (parent_id ? kImpliesParentId : 0) |
           (hint ? kImpliesHint : 0) | (downstream_only ? kImpliesDownstream : 0) |
           (selector_match ? kImpliesSelectors : 0) | (federation_match ? kImpliesFederation : 0);
  }

  bool Matches(const v1::RegistrationEntry& e, unsigned implied) const {
    auto check = [&](unsigned bit) { return (implied & bit) == 0; };
    if (parent_id && check(kImpliesParentId) && e.parent_id() != *parent_id) return false;
    if (spiffe_id && check(kImpliesSpiffeId) && e.spiffe_id() != *spiffe_id) return false;
    if (hint && check(kImpliesHint) && e.hint() != *hint) return false;
    if (downstream_only && check(kImpliesDownstream) && !e.downstream()) return false;
    if (selector_match && check(kImpliesSelectors)) {
      size_t in_request = 0, distinct = 0;
      for (int i = 0; i < e.selectors_size(); ++i) {
        if (RepeatsEarlier(e.selectors(), i)) continue;
        ++distinct;
        const SelectorView s(e.selectors(i).type(), e.selectors(i).value());
        in_request += std::binary_search(selectors.begin(), selectors.end(), s) ? 1 : 0;
      }
      if (!MatchSets(*selector_match, in_request, distinct, selectors.size())) return false;
    }
    if (federation_match && check(kImpliesFederation)) {
      size_t in_request = 0, distinct = 0;
      for (int i = 0; i < e.federates_with_size(); ++i) {
        const std::string& td = e.federates_with(i);
        bool repeated = false;
        for (int j = 0; j < i && !repeated; ++j) repeated = e.federates_with(j) == td;
        if (repeated) continue;
        ++distinct;
        in_request +=
            std::binary_search(trust_domains.begin(), trust_domains.end(), std::string_view(td))
                ? 1
                : 0;
      }
      if (!MatchSets(*federation_match, in_request, distinct, trust_domains.size())) return false;
    }
    return true;
  }
};

// A set of visited parent IDs for the authorization walk: a linear scan while small (the
// common case: an agent and a few entries with children), a hash set beyond that.
class VisitedSet {
 public:
  // True if `id` was not in the set (and adds it).
  bool Insert(std::string_view id) {
    if (large_.empty()) {
      for (std::string_view v : small_) {
        if (v == id) return false;
      }
      small_.push_back(id);
      if (small_.size() > kSmall) large_.insert(small_.begin(), small_.end());
      return true;
    }
    return large_.insert(id).second;
  }

 private:
  static constexpr size_t kSmall = 32;
  std::vector<std::string_view> small_;
  std::unordered_set<std::string_view> large_;
};

// A node alias as listed under one of its selectors: what the authorization walk needs to
// count an agent's selectors against it without reading the entry.
struct AliasRef {
  const Node* alias;
  uint64_t trust_domain_hash;  // HashString of the trust domain of its parent (server) ID
  uint32_t distinct_selectors;
};
using AliasMap = FlatHashMap<std::vector<AliasRef>>;

}  // namespace

struct EntryIndex::Indexes {
  // Owns the records; keys view the record's own entry_id.
  std::map<std::string_view, Record, std::less<>> by_id;
  PostingsMap by_parent;      // HashString(parent_id)
  PostingsMap by_spiffe_id;   // HashString(spiffe_id)
  PostingsMap by_selector;    // HashSelector(type, value)
  PostingsMap by_hint;        // HashString(hint), non-empty hints only
  PostingsMap by_federation;  // HashString(trust domain)
  Postings downstream;        // never mixed: membership is the field itself
  std::set<std::pair<int64_t, const Node*>> by_expiry;  // entry_expiry > 0 only
  // Node aliases by HashSelector of each of their distinct selectors.
  AliasMap aliases_by_selector;

  void Unindex(const Node* n);

  // Calls fn(node, implied) for each candidate in entry-ID order after `after`, until fn
  // returns false. Candidates are a superset of the filter's matches, from the smallest index
  // the filter allows; `implied` tells which filters the source already guarantees.
  template <typename Fn>
  void ScanCandidates(const Filter& f, std::string_view after, Fn&& fn) const;
};

template <typename Fn>
void EntryIndex::Indexes::ScanCandidates(const Filter& f, std::string_view after, Fn&& fn) const {
  static const Postings kNone;
  // Each usable source: one list that holds every match, or lists whose union does. The
  // source with the fewest candidates drives the scan. A source implies its filter only if
  // each list is pure for the value looked up (a hash collision must not pass foreign
  // entries, nor a list of another value whose hash equals the requested one).
  struct Source {
    const Postings* list;
    uint64_t fingerprint;
  };
  std::vector<const Postings*> best;
  size_t best_size = SIZE_MAX;
  unsigned best_implies = kImpliesNothing;
  auto consider = [&](const std::vector<Source>& sources, unsigned implies) {
    size_t n = 0;
    for (const Source& src : sources) {
      n += src.list->size();
      if (!src.list->PureFor(src.fingerprint)) implies = kImpliesNothing;
    }
    if (n < best_size) {
      best_size = n;
      best.clear();
      for (const Source& src : sources) best.push_back(src.list);
      best_implies = implies;
    }
  };
  auto consider_one = [&](const Postings* p, uint64_t fingerprint, unsigned implies) {
    consider({Source{p == nullptr ? &kNone : p, fingerprint}}, implies);
  };
  if (f.spiffe_id) {
    consider_one(by_spiffe_id.Find(HashString(*f.spiffe_id)), FingerprintString(*f.spiffe_id),
                 kImpliesSpiffeId);
  }
  if (f.parent_id) {
    consider_one(by_parent.Find(HashString(*f.parent_id)), FingerprintString(*f.parent_id),
                 kImpliesParentId);
  }
  // Entries without a hint are not indexed; a filter for "" scans everything else.
  if (f.hint && !f.hint->empty()) {
    consider_one(by_hint.Find(HashString(*f.hint)), FingerprintString(*f.hint), kImpliesHint);
  }
  if (f.downstream_only && downstream.size() < best_size) {
    // Membership is the field itself: the list is exact.
    best = {&downstream};
    best_size = downstream.size();
    best_implies = kImpliesDownstream;
  }
  if (f.selector_match) {
    const v1::MatchBehavior m = *f.selector_match;
    if (m == v1::MATCH_EXACT || m == v1::MATCH_SUPERSET) {
      // Every match holds every requested selector: any one list will do. One list implies
      // the filter only for Superset of one selector.
      const unsigned implies =
          m == v1::MATCH_SUPERSET && f.selectors.size() == 1 ? kImpliesSelectors : 0;
      for (const auto& [type, value] : f.selectors) {
        consider_one(by_selector.Find(HashSelector(type, value)), FingerprintSelector(type, value),
                     implies);
      }
    } else {
      std::vector<Source> lists;
      for (const auto& [type, value] : f.selectors) {
        if (const Postings* p = by_selector.Find(HashSelector(type, value))) {
          lists.push_back({p, FingerprintSelector(type, value)});
        }
      }
      consider(lists, m == v1::MATCH_ANY ? kImpliesSelectors : 0);
    }
  }
  if (f.federation_match) {
    const v1::MatchBehavior m = *f.federation_match;
    if (m == v1::MATCH_EXACT || m == v1::MATCH_SUPERSET) {
      const unsigned implies =
          m == v1::MATCH_SUPERSET && f.trust_domains.size() == 1 ? kImpliesFederation : 0;
      for (std::string_view td : f.trust_domains) {
        consider_one(by_federation.Find(HashString(td)), FingerprintString(td), implies);
      }
    } else {
      std::vector<Source> lists;
      for (std::string_view td : f.trust_domains) {
        if (const Postings* p = by_federation.Find(HashString(td))) {
          lists.push_back({p, FingerprintString(td)});
        }
      }
      consider(lists, m == v1::MATCH_ANY ? kImpliesFederation : 0);
    }
  }

  if (best_size == SIZE_MAX) {  // no indexed filter: every entry
    auto it = after.empty() ? by_id.begin() : by_id.upper_bound(after);
    for (; it != by_id.end(); ++it) {
      if (!fn(&*it, kImpliesNothing)) return;
    }
    return;
  }
  if (best.size() == 1) {
    for (Postings::Cursor c = best[0]->After(after); !c.done(); c.Next()) {
      if (!fn(c.get(), best_implies)) return;
    }
    return;
  }
  // A k-way merge of the lists in ID order, each entry once.
  std::vector<Postings::Cursor> cursors;
  cursors.reserve(best.size());
  for (const Postings* p : best) {
    Postings::Cursor c = p->After(after);
    if (!c.done()) cursors.push_back(c);
  }
  while (!cursors.empty()) {
    const Node* next = nullptr;
    for (const Postings::Cursor& c : cursors) {
      if (next == nullptr || IdOf(c.get()) < IdOf(next)) next = c.get();
    }
    for (size_t i = 0; i < cursors.size();) {
      if (cursors[i].get() == next) cursors[i].Next();
      if (cursors[i].done()) {
        cursors[i] = cursors.back();
        cursors.pop_back();
      } else {
        ++i;
      }
    }
    if (!fn(next, best_implies)) return;
  }
}

// Adds `delta` to the children count of every entry whose SPIFFE ID hashes to `parent_hash`.
void AdjustChildren(const PostingsMap& by_spiffe_id, uint64_t parent_hash, int delta) {
  const Postings* parents = by_spiffe_id.Find(parent_hash);
  if (parents == nullptr) return;
  for (Postings::Cursor c = parents->After(""); !c.done(); c.Next()) {
    c.get()->second.children += delta;
  }
}

void EntryIndex::Indexes::Unindex(const Node* n) {
  const v1::RegistrationEntry& v = EntryOf(n);
  const uint64_t parent_hash = HashString(v.parent_id());
  ErasePosting(by_parent, parent_hash, n);
  AdjustChildren(by_spiffe_id, parent_hash, -1);
  ErasePosting(by_spiffe_id, n->second.spiffe_hash, n);
  for (const v1::Selector& s : v.selectors()) ErasePosting(by_selector, HashSelector(s), n);
  if (!v.hint().empty()) ErasePosting(by_hint, HashString(v.hint()), n);
  for (const std::string& td : v.federates_with()) {
    ErasePosting(by_federation, HashString(td), n);
  }
  downstream.Erase(n);
  if (v.entry_expiry() > 0) by_expiry.erase({v.entry_expiry(), n});
  if (IsServerId(v.parent_id())) {
    for (const v1::Selector& s : v.selectors()) {
      const uint64_t hash = HashSelector(s);
      std::vector<AliasRef>* list = aliases_by_selector.FindMutable(hash);
      if (list == nullptr) continue;
      std::erase_if(*list, [&](const AliasRef& r) { return r.alias == n; });
      aliases_by_selector.EraseIfEmpty(hash);
    }
  }
}

EntryIndex::EntryIndex() : ix_(std::make_unique<Indexes>()) {}
EntryIndex::~EntryIndex() = default;

void EntryIndex::Put(std::shared_ptr<const v1::RegistrationEntry> entry, Revision mod_revision) {
  PLINTH_CHECK(entry != nullptr);
  Indexes& x = *ix_;
  const v1::RegistrationEntry& v = *entry;
  // One search serves both the replacement and, as the hint, the insertion (hydration
  // inserts in ID order, so the hint is the end).
  auto at = !x.by_id.empty() && x.by_id.rbegin()->first < v.entry_id()
                ? x.by_id.end()
                : x.by_id.lower_bound(v.entry_id());
  if (at != x.by_id.end() && at->first == v.entry_id()) {
    x.Unindex(&*at);
    at = x.by_id.erase(at);
  }
  const uint64_t spiffe_hash = HashString(v.spiffe_id());
  auto it = x.by_id.emplace_hint(at, std::string_view(v.entry_id()),
                                 Record{StoredEntry{std::move(entry), mod_revision}, spiffe_hash});
  const Node* n = &*it;

  const uint64_t parent_hash = HashString(v.parent_id());
  AddPosting(x.by_parent, parent_hash, n, FingerprintString(v.parent_id()),
             [&](const v1::RegistrationEntry& o) { return o.parent_id() == v.parent_id(); });
  AddPosting(x.by_spiffe_id, spiffe_hash, n, FingerprintString(v.spiffe_id()),
             [&](const v1::RegistrationEntry& o) { return o.spiffe_id() == v.spiffe_id(); });
  // Children counts: this entry's own (its children may have arrived first), and one more
  // for each entry it is a child of (itself included, for an entry that is its own parent).
  if (const Postings* children = x.by_parent.Find(spiffe_hash)) {
    it->second.children = static_cast<uint32_t>(children->size());
    if (spiffe_hash == parent_hash) --it->second.children;  // re-added just below
  }
  AdjustChildren(x.by_spiffe_id, parent_hash, +1);
  for (const v1::Selector& s : v.selectors()) {
    AddPosting(x.by_selector, HashSelector(s), n, FingerprintSelector(s.type(), s.value()),
               [&](const v1::RegistrationEntry& o) { return HasSelector(o, s); });
  }
  if (!v.hint().empty()) {
    AddPosting(x.by_hint, HashString(v.hint()), n, FingerprintString(v.hint()),
               [&](const v1::RegistrationEntry& o) { return o.hint() == v.hint(); });
  }
  for (const std::string& td : v.federates_with()) {
    AddPosting(x.by_federation, HashString(td), n, FingerprintString(td),
               [&](const v1::RegistrationEntry& o) {
                 return std::find(o.federates_with().begin(), o.federates_with().end(), td) !=
                        o.federates_with().end();
               });
  }
  if (v.downstream()) x.downstream.Insert(n, 0);
  if (v.entry_expiry() > 0) x.by_expiry.emplace(v.entry_expiry(), n);
  if (IsServerId(v.parent_id())) {
    const AliasRef ref{n, HashString(TrustDomainOf(v.parent_id())),
                       static_cast<uint32_t>(DistinctSelectorCount(v))};
    for (int i = 0; i < v.selectors_size(); ++i) {
      if (RepeatsEarlier(v.selectors(), i)) continue;
      std::vector<AliasRef>& list = x.aliases_by_selector.GetOrInsert(HashSelector(v.selectors(i)));
      if (std::none_of(list.begin(), list.end(), [&](const AliasRef& r) { return r.alias == n; })) {
        list.push_back(ref);
      }
    }
  }
}

void EntryIndex::Remove(std::string_view entry_id) {
  Indexes& x = *ix_;
  auto it = x.by_id.find(entry_id);
  if (it == x.by_id.end()) return;
  x.Unindex(&*it);
  x.by_id.erase(it);
}

const StoredEntry* EntryIndex::Find(std::string_view entry_id) const {
  // Hydration looks up each new ID before inserting it, in ID order: past the last ID, one
  // comparison settles it.
  if (ix_->by_id.empty() || ix_->by_id.rbegin()->first < entry_id) return nullptr;
  auto it = ix_->by_id.find(entry_id);
  return it == ix_->by_id.end() ? nullptr : &it->second.stored;
}

size_t EntryIndex::size() const { return ix_->by_id.size(); }

std::vector<const StoredEntry*> EntryIndex::FederatingWith(std::string_view trust_domain_id) const {
  std::vector<const StoredEntry*> out;
  const Postings* p = ix_->by_federation.Find(HashString(trust_domain_id));
  if (p == nullptr) return out;
  for (Postings::Cursor c = p->After(""); !c.done(); c.Next()) {
    const auto& feds = EntryOf(c.get()).federates_with();
    if (std::find(feds.begin(), feds.end(), trust_domain_id) != feds.end()) {
      out.push_back(&c.get()->second.stored);
    }
  }
  return out;
}

std::vector<const StoredEntry*> EntryIndex::ChildrenOf(std::string_view parent_id) const {
  std::vector<const StoredEntry*> out;
  const Postings* p = ix_->by_parent.Find(HashString(parent_id));
  if (p == nullptr) return out;
  for (Postings::Cursor c = p->After(""); !c.done(); c.Next()) {
    if (EntryOf(c.get()).parent_id() == parent_id) out.push_back(&c.get()->second.stored);
  }
  return out;
}

const StoredEntry* EntryIndex::FindSimilar(const v1::RegistrationEntry& entry) const {
  const Postings* p = ix_->by_spiffe_id.Find(HashString(entry.spiffe_id()));
  if (p == nullptr) return nullptr;
  std::optional<std::vector<SelectorView>> wanted;
  for (Postings::Cursor c = p->After(""); !c.done(); c.Next()) {
    const v1::RegistrationEntry& other = EntryOf(c.get());
    if (other.spiffe_id() != entry.spiffe_id()) continue;
    // SPIRE skips empty filter strings: an empty parent matches any parent.
    if (!entry.parent_id().empty() && other.parent_id() != entry.parent_id()) continue;
    if (!wanted) wanted = SortedSelectorSet(entry);
    if (SortedSelectorSet(other) == *wanted) return &c.get()->second.stored;
  }
  return nullptr;
}

std::vector<const StoredEntry*> EntryIndex::ExpiredBefore(int64_t t, size_t limit) const {
  std::vector<const StoredEntry*> out;
  for (const auto& [expiry, n] : ix_->by_expiry) {
    if (expiry >= t || out.size() >= limit) break;
    out.push_back(&n->second.stored);
  }
  return out;
}

std::vector<EntryPtr> EntryIndex::Query(const v1::ListRegistrationEntriesRequest& request,
                                        std::string_view after, size_t limit, bool* more) const {
  const Filter f = Filter::From(request);
  const unsigned present = f.present();
  std::vector<EntryPtr> out;
  if (limit != 0) out.reserve(std::min<size_t>(limit, 1024));
  bool found_more = false;
  ix_->ScanCandidates(f, after, [&](const Node* n, unsigned implied) {
    // When the source guarantees every filter, the entry itself is never read.
    if ((present & ~implied) != 0 && !f.Matches(EntryOf(n), implied)) return true;
    if (limit != 0 && out.size() >= limit) {
      found_more = true;
      return false;
    }
    out.push_back(n->second.stored.value);
    return true;
  });
  if (more != nullptr) *more = found_more;
  return out;
}

int64_t EntryIndex::Count(const v1::CountRegistrationEntriesRequest& request) const {
  const Filter f = Filter::From(request);
  const unsigned present = f.present();
  if (present == 0) return static_cast<int64_t>(ix_->by_id.size());
  int64_t n = 0;
  ix_->ScanCandidates(f, "", [&](const Node* node, unsigned implied) {
    n += (present & ~implied) == 0 || f.Matches(EntryOf(node), implied) ? 1 : 0;
    return true;
  });
  return n;
}

namespace {

// True if every selector of `alias` is among `agent_selectors`.
template <typename Selectors>
bool AgentHoldsAll(const v1::RegistrationEntry& alias, const Selectors& agent_selectors) {
  for (const v1::Selector& s : alias.selectors()) {
    if (std::none_of(agent_selectors.begin(), agent_selectors.end(),
                     [&](const v1::Selector& own) { return SameSelector(own, s); })) {
      return false;
    }
  }
  return true;
}

// The walk of spec §D over any container of v1::Selector.
template <typename Selectors>
std::vector<EntryPtr> Walk(const PostingsMap& by_parent, const AliasMap& aliases_by_selector,
                           std::string_view agent_spiffe_id, const Selectors& agent_selectors) {
  std::vector<EntryPtr> out;
  out.reserve(32);  // a typical agent's share, in one allocation
  VisitedSet visited;
  // Parents still to expand, with their children's list. A server ID is never expanded: its
  // children are node aliases, reached only through the selector match and never returned.
  struct Frame {
    std::string_view parent;
    const Postings* children;
  };
  std::vector<Frame> stack;
  auto expand_later = [&](std::string_view parent, uint64_t parent_hash) {
    const Postings* children = by_parent.Find(parent_hash);
    if (children != nullptr && visited.Insert(parent) && !IsServerId(parent)) {
      stack.push_back({parent, children});
    }
  };
  expand_later(agent_spiffe_id, HashString(agent_spiffe_id));

  // Node aliases of the agent's trust domain whose every selector the agent has. An alias is
  // listed under each of its distinct selectors, so it qualifies when it is listed under as
  // many of the agent's selectors as it has. Repeated agent selectors or hash collisions can
  // only over-count, so each candidate is confirmed on the entry itself.
  const std::string_view td = TrustDomainOf(agent_spiffe_id);
  if (!td.empty() && !aliases_by_selector.empty()) {
    const uint64_t td_hash = HashString(td);
    std::vector<const AliasRef*> hits;
    for (const v1::Selector& s : agent_selectors) {
      const std::vector<AliasRef>* listed = aliases_by_selector.Find(HashSelector(s));
      if (listed == nullptr) continue;
      for (const AliasRef& ref : *listed) {
        if (ref.trust_domain_hash == td_hash) hits.push_back(&ref);
      }
    }
    std::sort(hits.begin(), hits.end(),
              [](const AliasRef* a, const AliasRef* b) { return a->alias < b->alias; });
    for (size_t i = 0; i < hits.size();) {
      size_t j = i + 1;
      while (j < hits.size() && hits[j]->alias == hits[i]->alias) ++j;
      const Node* node = hits[i]->alias;
      const v1::RegistrationEntry& alias = EntryOf(node);
      if (j - i >= hits[i]->distinct_selectors && IsServerIdOf(alias.parent_id(), td) &&
          AgentHoldsAll(alias, agent_selectors)) {
        expand_later(alias.spiffe_id(), node->second.spiffe_hash);
      }
      i = j;
    }
  }

  while (!stack.empty()) {
    const Frame frame = stack.back();
    stack.pop_back();
    // The list was found by hash: unless it is known to hold only this parent's children,
    // each child's parent is checked. Otherwise a child is read only if it has children of
    // its own.
    const bool verify = !frame.children->PureFor(FingerprintString(frame.parent));
    for (Postings::Cursor c = frame.children->After(""); !c.done(); c.Next()) {
      const Node* child = c.get();
      if (verify && EntryOf(child).parent_id() != frame.parent) continue;
      out.push_back(child->second.stored.value);
      if (child->second.children > 0) {
        expand_later(EntryOf(child).spiffe_id(), child->second.spiffe_hash);
      }
    }
  }
  return out;
}

}  // namespace

std::vector<EntryPtr> EntryIndex::Authorized(
    std::string_view agent_spiffe_id, const std::vector<v1::Selector>& agent_selectors) const {
  return Walk(ix_->by_parent, ix_->aliases_by_selector, agent_spiffe_id, agent_selectors);
}

std::vector<EntryPtr> EntryIndex::Authorized(
    std::string_view agent_spiffe_id,
    const google::protobuf::RepeatedPtrField<v1::Selector>& agent_selectors) const {
  return Walk(ix_->by_parent, ix_->aliases_by_selector, agent_spiffe_id, agent_selectors);
}

}  // namespace plinth::datastore::internal
