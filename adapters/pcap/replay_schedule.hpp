#pragma once
// ReplaySchedule: when packet i of a capture replay is due. Pure arithmetic, no clock: callers pass the
// time (so tests drive it with a fake clock and get exact numbers).
//
// Why absolute: the target time of every packet is computed from the start time and the packet's own
// stamp (or index), target = start + (stamp - first_stamp) * den / num, never as "previous target +
// gap". Sleeping to targets (clock_nanosleep TIMER_ABSTIME) therefore never drifts: a late wake-up
// makes the following packets due at once (they catch up) instead of shifting the rest of the file.
//
// Speeds (parse_speed):
//   "max"                 every packet is due immediately (target 0)
//   "realtime" | "1x"     capture time, 1:1
//   "<N>x"                N times faster, N a positive decimal ("10x", "0.5x", "2.25x"); kept as the exact
//                         fraction num/den so that targets are exact integers (den = 10^decimals)
//   "<N>pps"              fixed rate, N a positive integer: target = start + index * 1e9 / N (stamps ignored)
// Loops: the capture time of pass k continues after pass k-1. end_pass() records the pass span
// (last - first stamp) and adds it plus one mean inter-packet gap (span / (packets - 1); 0 for a
// one-packet pass) to the offset of the following pass, so the first packet of pass k comes one mean
// gap after the last packet of pass k-1 instead of on top of it. Stamps going backwards within a pass
// (reordered captures) are clamped to the pass's latest stamp so far: a packet is never due before
// the one read before it.
#include <cstdint>
#include <string>
#include <string_view>

#include "hypergate/core/status.hpp"

namespace hypergate::pcap {

struct Speed {
  enum class Mode : std::uint8_t { Max, Scaled, Rate };
  Mode mode = Mode::Max;
  std::uint64_t num = 1;  ///< Scaled: speed factor = num / den
  std::uint64_t den = 1;
  std::uint64_t pps = 0;  ///< Rate: packets per second

  [[nodiscard]] static Speed max() noexcept { return {}; }
  [[nodiscard]] static Speed realtime() noexcept { return {Mode::Scaled, 1, 1, 0}; }
  [[nodiscard]] static Speed rate(std::uint64_t packets_per_second) noexcept {
    return {Mode::Rate, 1, 1, packets_per_second};
  }
  /// "max", "1x", "0.5x", "100000pps": the canonical spelling.
  [[nodiscard]] std::string to_string() const;
};

/// Parses a speed string (see the header comment). Errors say what was expected.
[[nodiscard]] Result<Speed> parse_speed(std::string_view text);

class ReplaySchedule {
 public:
  /// `start_ns`: the time (any monotonic ns clock) at which the first packet is due.
  ReplaySchedule(Speed speed, std::uint64_t start_ns) noexcept : speed_(speed), start_ns_(start_ns) {}

  /// Target time of the next packet, whose capture stamp is `capture_ns`; advances the packet index.
  /// Call once per packet, in file order, across passes (call end_pass() between passes).
  [[nodiscard]] std::uint64_t next(std::uint64_t capture_ns) noexcept;

  /// The current pass ended (the file is read again from its first packet next).
  void end_pass() noexcept;

  [[nodiscard]] bool unpaced() const noexcept { return speed_.mode == Speed::Mode::Max; }
  [[nodiscard]] std::uint64_t packets() const noexcept { return index_; }
  [[nodiscard]] std::uint64_t passes_done() const noexcept { return passes_; }
  [[nodiscard]] std::uint64_t start_ns() const noexcept { return start_ns_; }
  [[nodiscard]] const Speed& speed() const noexcept { return speed_; }

 private:
  Speed speed_;
  std::uint64_t start_ns_ = 0;
  std::uint64_t index_ = 0;          // packets scheduled so far (all passes)
  std::uint64_t passes_ = 0;         // passes ended
  std::uint64_t pass_base_ns_ = 0;   // capture time (relative to pass 0's first packet) of this pass's first
  bool pass_started_ = false;        // first packet of the current pass seen
  std::uint64_t pass_first_ns_ = 0;  // first stamp of the current pass (raw)
  std::uint64_t pass_last_ns_ = 0;   // latest stamp of the current pass (raw, clamped monotonic)
  // Capture time of a packet = pass_base_ns_ + (max(stamp, pass_last_ns_) - pass_first_ns_).
  std::uint64_t pass_packets_ = 0;
};

}  // namespace hypergate::pcap
