#pragma once
// RoundRobinRouter: spreads messages evenly, ignoring their keys, over either
//   Over::Lanes  lane 0, 1, 2, ... lanes-1, 0, ... (every message to the configured sinks), or
//   Over::Sinks  one sink each, sink 0, 1, ... sink_count-1, 0, ... (lane from the key hash).
// Even spreading gives up per-key order across lanes (Over::Lanes): use it for independent messages
// (requests, logs), not for order-sensitive market data.
#include <cstddef>
#include <cstdint>

#include "hypergate/route/route.hpp"
#include "routing/routing.hpp"

namespace hypergate::strategies {

class RoundRobinRouter {
 public:
  enum class Over : std::uint8_t { Lanes, Sinks };

  RoundRobinRouter(unsigned lanes, std::size_t sink_count, Over over = Over::Lanes) noexcept
      : lane_mask_(lane_mask(lanes)),
        sink_count_(sink_count == 0 || sink_count > 64 ? 64 : static_cast<std::uint32_t>(sink_count)),
        all_sinks_(sink_mask(sink_count)),
        over_(over) {}

  [[nodiscard]] route::Route route(const Message& m) noexcept {
    if (over_ == Over::Lanes) {
      const auto lane = static_cast<std::uint16_t>(next_++ & lane_mask_);
      return {all_sinks_, lane, route::Action::Deliver};
    }
    const std::uint32_t sink = next_;
    next_ = next_ + 1 == sink_count_ ? 0 : next_ + 1;
    return {std::uint64_t{1} << sink, static_cast<std::uint16_t>(m.key_hash & lane_mask_), route::Action::Deliver};
  }

 private:
  std::uint16_t lane_mask_;
  std::uint32_t sink_count_;
  std::uint64_t all_sinks_;
  Over over_;
  std::uint32_t next_ = 0;
};

}  // namespace hypergate::strategies
