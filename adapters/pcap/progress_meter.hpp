#pragma once
// ProgressMeter: a one-line progress bar for capture replays, on a terminal only.
//
//   [#############-----------------]  43.2%  1234567 pkts  2.31M msgs/s  96.4 MB/s
//
// Contract
//  - Draws only when the stream is a terminal (isatty), decided once at construction; otherwise every
//    call is a no-op (logs and pipes never see carriage returns).
//  - update() redraws at most once per kMinRedrawNs (10 per second), however often it is called:
//    callers may call it every poll/burst. Rates are over the time since the previous redraw.
//  - finish() draws the final state and ends the line.
//  - format_line() is the pure text of one redraw (tested without a terminal).
#include <cstdint>
#include <cstdio>
#include <string>

namespace hypergate::pcap {

class ProgressMeter {
 public:
  static constexpr std::uint64_t kMinRedrawNs = 100'000'000;  // 10 redraws per second at most
  static constexpr int kBarWidth = 30;

  /// `out`: the stream (stderr in the tools). `enabled` false turns the meter off whatever `out` is.
  explicit ProgressMeter(std::FILE* out, bool enabled = true) noexcept;

  /// `fraction` in [0, 1]; `packets`/`bytes` cumulative; `now_ns` any monotonic clock.
  void update(std::uint64_t now_ns, double fraction, std::uint64_t packets, std::uint64_t bytes) noexcept;
  void finish(std::uint64_t now_ns, double fraction, std::uint64_t packets, std::uint64_t bytes) noexcept;

  [[nodiscard]] bool active() const noexcept { return active_; }
  /// True when update() at `now_ns` would redraw: lets callers skip computing costly arguments.
  [[nodiscard]] bool due(std::uint64_t now_ns) const noexcept {
    return active_ && (!started_ || now_ns - last_ns_ >= kMinRedrawNs);
  }
  [[nodiscard]] std::uint64_t redraws() const noexcept { return redraws_; }

  /// One line of text (no carriage return). Rates in messages and bytes per second.
  [[nodiscard]] static std::string format_line(double fraction, std::uint64_t packets, double msgs_per_s,
                                               double bytes_per_s);

 private:
  void draw(std::uint64_t now_ns, double fraction, std::uint64_t packets, std::uint64_t bytes) noexcept;

  std::FILE* out_ = nullptr;
  bool active_ = false;
  bool started_ = false;
  std::uint64_t last_ns_ = 0;
  std::uint64_t last_packets_ = 0;
  std::uint64_t last_bytes_ = 0;
  std::uint64_t redraws_ = 0;
  double msgs_per_s_ = 0;
  double bytes_per_s_ = 0;
};

}  // namespace hypergate::pcap
