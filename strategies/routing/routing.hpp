#pragma once
// Shared pieces of the routing strategies (strategies/routing/*_router.hpp).
//
// A routing strategy is a policy type modelling route::Router: `Route route(const Message&) noexcept`,
// optionally `void begin_burst() noexcept`. Every strategy keeps per-key order where it can by
// choosing the valve lane from the key hash (lane = key_hash & (lanes - 1)): messages of one key
// stay on one lane, and a lane is drained by one consumer in order.
#include <bit>
#include <cassert>
#include <cstddef>
#include <cstdint>

#include "hypergate/core/message.hpp"
#include "hypergate/route/route.hpp"

namespace hypergate::strategies {

/// Bit mask of sinks [0, count); all sinks when count is 0 or 64.
[[nodiscard]] constexpr std::uint64_t sink_mask(std::size_t count) noexcept {
  return count == 0 || count >= 64 ? route::kAllSinks : (std::uint64_t{1} << count) - 1;
}

/// lanes - 1 for a power-of-two lane count (1 lane when given 0).
[[nodiscard]] constexpr std::uint16_t lane_mask(unsigned lanes) noexcept {
  assert(lanes == 0 || std::has_single_bit(lanes));
  return static_cast<std::uint16_t>(lanes == 0 ? 0 : lanes - 1);
}

}  // namespace hypergate::strategies
