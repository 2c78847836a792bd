#pragma once
// SinkHealth: one health flag per sink, set by the runtime (a sink whose send fails or whose
// connection drops is marked down, and up again when it recovers) and read by routers such as the
// failover strategy, once per burst.
//
// The flags carry no data: a router that sees a stale value for a few bursts routes a few more
// messages to the old destination, which is the same outcome as the flag flipping a moment later.
// So every access is relaxed; nothing else is published through them.
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "hypergate/core/cache.hpp"

namespace hypergate::route {

class SinkHealth {
 public:
  static constexpr std::size_t kMaxSinks = 64;  ///< Route::sinks is a 64-bit mask

  SinkHealth() noexcept {
    for (auto& f : healthy_) f.store(true, std::memory_order_relaxed);  // relaxed: before sharing
  }
  SinkHealth(const SinkHealth&) = delete;
  SinkHealth& operator=(const SinkHealth&) = delete;

  /// Marks a sink up or down (any thread). Out-of-range ids are ignored.
  void set_healthy(std::size_t sink, bool healthy) noexcept {
    // relaxed: the flag is the whole message (see header); no partner ordering needed.
    if (sink < kMaxSinks) healthy_[sink].store(healthy, std::memory_order_relaxed);
  }
  /// Whether a sink is up (any thread). Out-of-range ids read as down.
  [[nodiscard]] bool healthy(std::size_t sink) const noexcept {
    // relaxed: pairs with the relaxed store in set_healthy(); only the flag itself is read.
    return sink < kMaxSinks && healthy_[sink].load(std::memory_order_relaxed);
  }

 private:
  // Written rarely, read once per burst per router: packed together on one cache line; false
  // sharing is not a concern at that rate.
  alignas(kCacheLine) std::array<std::atomic<bool>, kMaxSinks> healthy_;
};
static_assert(sizeof(SinkHealth) == kCacheLine, "64 one-byte flags: one cache line");

}  // namespace hypergate::route
