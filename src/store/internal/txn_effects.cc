#include "store/internal/txn_effects.h"

namespace plinth::store::internal {

StatusOr<Overlay> ResolveOps(const std::vector<Op>& ops, const ListLiveKeys& list_live_keys) {
  Overlay overlay;
  std::vector<std::string> live;
  for (const Op& op : ops) {
    switch (op.kind) {
      case Op::Kind::kPut:
        overlay[op.key] = op.value;
        break;
      case Op::Kind::kDelete:
        overlay[op.key] = std::nullopt;
        break;
      case Op::Kind::kDeleteRange: {
        if (op.span.empty()) break;
        live.clear();
        PLINTH_RETURN_IF_ERROR(list_live_keys(op.span, &live));
        for (std::string& key : live) overlay[std::move(key)] = std::nullopt;
        // Keys put earlier in this transaction are deleted too.
        for (auto it = overlay.lower_bound(op.span.start);
             it != overlay.end() && op.span.Contains(it->first); ++it) {
          it->second = std::nullopt;
        }
        break;
      }
    }
  }
  return overlay;
}

}  // namespace plinth::store::internal
