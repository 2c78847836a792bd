#pragma once
// FailoverRouter: everything to the primary sink while it is healthy, to the backup while the
// primary is marked down, and back to the primary as soon as it is healthy again.
//
// Health comes from route::SinkHealth, the flags the runtime maintains (a failed send or a lost
// connection marks a sink down). The flag is read once per burst in begin_burst(), so a burst never
// splits across sinks and the per-message cost is a register read. When both sinks are down,
// messages keep going to the primary: the valve's backpressure policy then decides (drop, spin...),
// rather than the router silently discarding them. Without a health table it never fails over.
#include <cstddef>
#include <cstdint>

#include "hypergate/route/route.hpp"
#include "hypergate/route/sink_health.hpp"
#include "routing/routing.hpp"

namespace hypergate::strategies {

class FailoverRouter {
 public:
  FailoverRouter(unsigned lanes, std::size_t primary, std::size_t backup, const route::SinkHealth* health) noexcept
      : mask_(lane_mask(lanes)), primary_(primary), backup_(backup), active_(primary), health_(health) {
    assert(primary < 64 && backup < 64 && "sink ids index a 64-bit mask");
  }

  void begin_burst() noexcept {
    if (health_ == nullptr) return;
    std::size_t next = primary_;
    if (!health_->healthy(primary_) && health_->healthy(backup_)) next = backup_;
    if (next != active_) {
      active_ = next;
      ++switches_;
    }
  }

  [[nodiscard]] route::Route route(const Message& m) const noexcept {
    return {std::uint64_t{1} << active_, static_cast<std::uint16_t>(m.key_hash & mask_), route::Action::Deliver};
  }

  /// The sink currently receiving messages. Owning worker only.
  [[nodiscard]] std::size_t active() const noexcept { return active_; }
  /// Times the active sink changed (primary -> backup and back). Owning worker only.
  [[nodiscard]] std::uint64_t switches() const noexcept { return switches_; }

 private:
  std::uint16_t mask_;
  std::size_t primary_;
  std::size_t backup_;
  std::size_t active_;
  const route::SinkHealth* health_;
  std::uint64_t switches_ = 0;
};

}  // namespace hypergate::strategies
