#pragma once
// The seam between a pipeline and the runtime that feeds it and carries its output.
//
//   runtime:  source.poll(in) ── pipeline.process(in, emitter) ──> Emitter ──> Downstream::deliver()
//                                                                  (per 32)      (valve engine push)
//
// A pipeline may emit more messages than it received (one MoldUDP64 frame carries many ITCH
// messages), so output goes through an Emitter that hands a full burst downstream in one call.
// Lifetime: an emitted message may point into the source's buffers or into the pipeline's scratch
// arena; both stay valid until process() returns, and deliver() copies what it keeps (the valve
// engine copies payload and key into its ring slots). So the runtime releases `in` right after.
#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hypergate/core/burst.hpp"

namespace hypergate::kv {
class Hyperion;
}
namespace hypergate::metrics {
class StageProbe;  // metrics/stage_probe.hpp: included by the pipelines that record into it
}

namespace hypergate::route {

enum class Action : std::uint8_t {
  Drop = 0,  ///< routed nowhere (counted by the router as a drop, not a reject)
  Deliver,   ///< push onto valve lane `lane` for the sinks in `sinks`
};

/// Where one message goes.
struct Route {
  std::uint64_t sinks = ~0ull;  ///< bitmask of sink ids (sink i = bit i); all sinks by default
  std::uint16_t lane = 0;       ///< valve lane; hash routing uses key_hash & (lanes - 1)
  Action action = Action::Drop;
};

inline constexpr std::uint64_t kAllSinks = ~0ull;

/// Implemented by the runtime: receives routed messages, one call per burst.
class Downstream {
 public:
  virtual ~Downstream() = default;
  virtual void deliver(std::span<const Message> messages, std::span<const Route> routes) noexcept = 0;
};

/// Collects routed messages and hands them downstream a burst at a time. Not thread-safe: one per worker.
class Emitter {
 public:
  explicit Emitter(Downstream& downstream) noexcept : downstream_(&downstream) {}

  void emit(const Message& m, const Route& r) noexcept {
    msgs_[n_] = m;
    commit(r);
  }
  /// In-place emission, for pipelines: build the next message directly in the emitter's buffer
  /// (no copy), then commit() it with its route; a slot that is not committed is simply reused.
  [[nodiscard]] Message& slot() noexcept { return msgs_[n_]; }
  void commit(const Route& r) noexcept {
    // Field by field: a whole-struct copy of a Route just built in registers makes GCC spill it and
    // reload it with overlapping loads, which stalls on store forwarding (measured: ~18% of the loop).
    Route& out = routes_[n_];
    out.sinks = r.sinks;
    out.lane = r.lane;
    out.action = r.action;
    if (++n_ == kDefaultBurst) flush();
  }
  /// Hands over what is pending. The pipeline calls it before process() returns.
  void flush() noexcept {
    if (n_ == 0) return;
    downstream_->deliver(std::span<const Message>(msgs_.data(), n_), std::span<const Route>(routes_.data(), n_));
    n_ = 0;
  }
  [[nodiscard]] std::size_t pending() const noexcept { return n_; }

 private:
  Downstream* downstream_;
  std::array<Message, kDefaultBurst> msgs_{};
  std::array<Route, kDefaultBurst> routes_{};
  std::size_t n_ = 0;
};

/// A hole in a source's sequence numbers: every number in [first_missing, last_missing] was skipped.
struct SequenceGap {
  std::uint16_t source_id = 0;
  std::uint64_t first_missing = 0;
  std::uint64_t last_missing = 0;
};

/// Counters of one pipeline instance (one per worker; merged by the stats thread).
struct PipelineCounters {
  std::uint64_t in = 0;        ///< frames/messages received from the source
  std::uint64_t emitted = 0;   ///< messages handed downstream
  std::uint64_t rejected = 0;  ///< sum over reasons
  std::uint64_t dropped = 0;   ///< routed nowhere
  /// Rejects by reason name ("too_long", "sequence_old", "key_denied", "rate_limited", "malformed"...).
  std::vector<std::pair<std::string, std::uint64_t>> rejects_by_reason;
  std::uint64_t gaps = 0;             ///< sequence gaps seen (each one a range of missing numbers)
  std::uint64_t missing = 0;          ///< sequence numbers skipped, summed over all gaps
  std::vector<SequenceGap> recent_gaps;  ///< the most recent gaps, oldest first (a small ring)
};

/// The runtime's view of a pipeline: one virtual call per burst. Pipelines are compile-time
/// compositions (Pipeline<Decoder, Validators<...>, Transforms<...>, Router>) wrapped in this
/// interface and registered by name so that a config selects one.
class PipelineBase {
 public:
  virtual ~PipelineBase() = default;
  [[nodiscard]] virtual std::string_view name() const noexcept = 0;
  /// Runs decode -> validate -> transform -> route over `in`, emitting into `out`, and flushes `out`.
  virtual void process(Burst<>& in, Emitter& out) noexcept = 0;
  /// Snapshot of the counters. Safe from any thread (relaxed atomic reads inside).
  [[nodiscard]] virtual PipelineCounters counters() const = 0;
  /// Timer work (recovery retries, staleness), called by the owning worker on its housekeeping tick
  /// (about every millisecond) while the source runs, also when the source has nothing to poll. May
  /// emit into `out` and must flush it before returning. `now_tsc` is TscClock::ticks(). Default: nothing.
  virtual void tick(Emitter& out, std::uint64_t now_tsc) noexcept {
    (void)out;
    (void)now_tsc;
  }
  /// The last-value store this pipeline writes (single writer: the owning worker), if it keeps one.
  /// Readers on other threads use the store's lock-free reader API. Default: none.
  [[nodiscard]] virtual const kv::Hyperion* store() const noexcept { return nullptr; }

  /// The owning worker's stage recorder (metrics/stage_probe.hpp), set by the runtime before it
  /// starts; null when nobody records. A pipeline times its sampled stages (decode, pipeline, store)
  /// while `probe()->tracing()` is true, and only then: the check is one load and a branch per burst.
  void attach_probe(metrics::StageProbe* probe) noexcept { probe_ = probe; }
  [[nodiscard]] metrics::StageProbe* probe() const noexcept { return probe_; }

 protected:
  metrics::StageProbe* probe_ = nullptr;  // owning worker only
};

}  // namespace hypergate::route
