#include "hypergate/valve/options.hpp"

#include <string>
#include <vector>

namespace hypergate::valve {

std::string_view to_string(CollisionPolicy p) noexcept {
  switch (p) {
    case CollisionPolicy::Drop: return "drop";
    case CollisionPolicy::Spin: return "spin";
    case CollisionPolicy::Conflate: return "conflate";
    case CollisionPolicy::Disconnect: return "disconnect";
  }
  return "unknown";
}

std::optional<CollisionPolicy> parse_collision_policy(std::string_view name) noexcept {
  if (name == "drop") return CollisionPolicy::Drop;
  if (name == "spin") return CollisionPolicy::Spin;
  if (name == "conflate") return CollisionPolicy::Conflate;
  if (name == "disconnect") return CollisionPolicy::Disconnect;
  return std::nullopt;
}

namespace {
bool power_of_two(std::uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }
Error invalid(std::string text) { return Error{Status::InvalidArgument, std::move(text)}; }
}  // namespace

Result<void> validate(const Options& o) {
  if (!power_of_two(o.lanes) || o.lanes > 1024)
    return invalid("valves.lanes must be a power of two in 1..1024, got " + std::to_string(o.lanes));
  if (o.producers < 1 || o.producers > 64)
    return invalid("valves.producers must be in 1..64, got " + std::to_string(o.producers));
  if (o.consumers < 1 || o.consumers > 64)
    return invalid("valves.consumers must be in 1..64, got " + std::to_string(o.consumers));
  if (o.sinks > 64) return invalid("at most 64 sinks (Route::sinks is a 64-bit mask), got " + std::to_string(o.sinks));
  if (!power_of_two(o.ring_capacity) || o.ring_capacity < 2 || o.ring_capacity > (1u << 20))
    return invalid("valves.capacity must be a power of two in 2..1048576, got " + std::to_string(o.ring_capacity));
  if (!power_of_two(o.conflation_capacity) || o.conflation_capacity > (1u << 20))
    return invalid("valves.conflation_capacity must be a power of two in 1..1048576, got " +
                   std::to_string(o.conflation_capacity));
  if (o.burst < 1 || o.burst > 32)
    return invalid("valves.burst must be in 1..32, got " + std::to_string(o.burst));
  if (o.drain_rounds < 1 || o.drain_rounds > 1024)
    return invalid("valves.drain_rounds must be in 1..1024, got " + std::to_string(o.drain_rounds));
  std::vector<bool> covered(o.lanes, false);
  for (const LaneGroup& g : o.groups) {
    const std::string label = "valves.group '" + g.name + "'";
    if (g.lane_count == 0) return invalid(label + ": lane_count must be at least 1");
    if (g.first_lane >= o.lanes || g.lane_count > o.lanes - g.first_lane)
      return invalid(label + ": lanes " + std::to_string(g.first_lane) + ".." +
                     std::to_string(g.first_lane + g.lane_count - 1) + " lie outside 0.." +
                     std::to_string(o.lanes - 1));
    for (std::uint32_t l = g.first_lane; l < g.first_lane + g.lane_count; ++l) {
      if (covered[l]) return invalid(label + ": lane " + std::to_string(l) + " already belongs to another group");
      covered[l] = true;
    }
  }
  return {};
}

}  // namespace hypergate::valve
