#pragma once
// HashRouter: lane = key_hash & (lanes - 1), delivered to a fixed set of sinks (all by default).
// Stable: the lane depends only on the key bytes (hash_bytes is fixed across runs, builds and
// machines), so every gateway puts one key on the same lane, and per-key order is kept.
#include <cstdint>

#include "hypergate/route/route.hpp"
#include "routing/routing.hpp"

namespace hypergate::strategies {

class HashRouter {
 public:
  explicit HashRouter(unsigned lanes = 32, std::uint64_t sinks = route::kAllSinks) noexcept
      : mask_(lane_mask(lanes)), sinks_(sinks) {}

  [[nodiscard]] route::Route route(const Message& m) const noexcept {
    return {sinks_, static_cast<std::uint16_t>(m.key_hash & mask_), route::Action::Deliver};
  }

 private:
  std::uint16_t mask_;
  std::uint64_t sinks_;
};

}  // namespace hypergate::strategies
