#pragma once
// Valve engine options and the names of its collision policies (cold path: built from config once).
//
// A lane group is a contiguous range of lanes that shares one COLLISION policy (e.g. lanes 0..15 carry
// market data and conflate, lanes 16..31 feed subscribers and disconnect). Lanes that no group covers
// use Options::policy / Options::spin_ns.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hypergate/core/status.hpp"

namespace hypergate::valve {

/// What happens to a message whose ring is full (a COLLISION).
enum class CollisionPolicy : std::uint8_t {
  Drop,        ///< drop it, counted
  Spin,        ///< retry for up to spin_ns (one budget per pushed burst), then drop what is left, counted
  Conflate,    ///< keep only the newest message per key in a bounded side table; older ones counted conflated
  Disconnect,  ///< mark the lane group disconnected (counted); it drops every push until reconnect()
};

[[nodiscard]] std::string_view to_string(CollisionPolicy p) noexcept;
/// "drop" | "spin" | "conflate" | "disconnect"
[[nodiscard]] std::optional<CollisionPolicy> parse_collision_policy(std::string_view name) noexcept;

struct LaneGroup {
  std::string name;                 ///< for reports ("md", "subscribers")
  std::uint32_t first_lane = 0;
  std::uint32_t lane_count = 0;
  CollisionPolicy policy = CollisionPolicy::Drop;
  std::uint64_t spin_ns = 10'000;   ///< Spin only: budget per pushed burst
};

struct Options {
  std::uint32_t lanes = 32;                ///< power of two, 1..1024; lane = key_hash & (lanes - 1)
  std::uint32_t producers = 1;             ///< threads that push (one ring per producer and lane), 1..64
  std::uint32_t consumers = 1;             ///< threads that drain; lane l belongs to consumer l % consumers
  std::uint32_t ring_capacity = 4096;      ///< messages per (producer, lane) ring; power of two, 2..2^20
  std::uint32_t conflation_capacity = 1024;///< keys per (producer, lane) conflation table; power of two
  std::uint32_t sinks = 64;                ///< sinks that exist (0..64): Route::sinks bits at or above are
                                           ///< ignored, so route::kAllSinks means "every configured sink"
  std::uint32_t burst = 32;                ///< messages a consumer takes from a ring at once, 1..32
  /// Rounds over a lane's producers per drain call, 1..1024: a drain takes up to rounds x burst messages
  /// from each ring, so a producer that pushes a large burst at once (one datagram can carry dozens of
  /// messages) is not throttled to one burst per consumer loop; it stops early when a round finds nothing.
  std::uint32_t drain_rounds = 128;
  CollisionPolicy policy = CollisionPolicy::Drop;  ///< for lanes outside every group
  std::uint64_t spin_ns = 10'000;
  std::vector<LaneGroup> groups;           ///< must not overlap and must lie inside [0, lanes)
};

/// Checks ranges, powers of two and group overlaps; the Error names the offending field.
[[nodiscard]] Result<void> validate(const Options& options);

}  // namespace hypergate::valve
