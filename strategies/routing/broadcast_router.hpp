#pragma once
// BroadcastRouter: every message to every sink (or to a configured subset), lane from the key hash
// so per-key order holds for each sink.
#include <cstddef>
#include <cstdint>

#include "hypergate/route/route.hpp"
#include "routing/routing.hpp"

namespace hypergate::strategies {

class BroadcastRouter {
 public:
  explicit BroadcastRouter(unsigned lanes, std::size_t sink_count = 0) noexcept
      : mask_(lane_mask(lanes)), sinks_(sink_mask(sink_count)) {}

  [[nodiscard]] route::Route route(const Message& m) const noexcept {
    return {sinks_, static_cast<std::uint16_t>(m.key_hash & mask_), route::Action::Deliver};
  }

 private:
  std::uint16_t mask_;
  std::uint64_t sinks_;
};

}  // namespace hypergate::strategies
