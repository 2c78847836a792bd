// ProgressMeter (see progress_meter.hpp).
#include "pcap/progress_meter.hpp"

#include <unistd.h>

#include <algorithm>

namespace hypergate::pcap {
namespace {

/// "2.31M", "950.0k", "12.0": three significant-ish digits with an SI suffix.
std::string si(double v) {
  char buf[32];
  if (v >= 1e9) {
    std::snprintf(buf, sizeof buf, "%.2fG", v / 1e9);
  } else if (v >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.2fM", v / 1e6);
  } else if (v >= 1e3) {
    std::snprintf(buf, sizeof buf, "%.1fk", v / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f", v);
  }
  return buf;
}

}  // namespace

ProgressMeter::ProgressMeter(std::FILE* out, bool enabled) noexcept
    : out_(out), active_(enabled && out != nullptr && ::isatty(::fileno(out)) == 1) {}

std::string ProgressMeter::format_line(double fraction, std::uint64_t packets, double msgs_per_s,
                                       double bytes_per_s) {
  fraction = std::clamp(fraction, 0.0, 1.0);
  const int filled = static_cast<int>(fraction * kBarWidth + 0.5);
  std::string line = "[";
  line.append(static_cast<std::size_t>(filled), '#');
  line.append(static_cast<std::size_t>(kBarWidth - filled), '-');
  char buf[160];
  std::snprintf(buf, sizeof buf, "] %5.1f%%  %llu pkts  %s msgs/s  %.1f MB/s", fraction * 100.0,
                static_cast<unsigned long long>(packets), si(msgs_per_s).c_str(), bytes_per_s / 1e6);
  line += buf;
  return line;
}

void ProgressMeter::draw(std::uint64_t now_ns, double fraction, std::uint64_t packets, std::uint64_t bytes) noexcept {
  if (started_ && now_ns > last_ns_) {
    const double dt = static_cast<double>(now_ns - last_ns_) / 1e9;
    msgs_per_s_ = static_cast<double>(packets - last_packets_) / dt;
    bytes_per_s_ = static_cast<double>(bytes - last_bytes_) / dt;
  }
  started_ = true;
  last_ns_ = now_ns;
  last_packets_ = packets;
  last_bytes_ = bytes;
  ++redraws_;
  try {
    const std::string line = format_line(fraction, packets, msgs_per_s_, bytes_per_s_);
    // "\r" back to the start, "\033[K" clears what a longer previous line left.
    std::fprintf(out_, "\r%s\033[K", line.c_str());
    std::fflush(out_);
  } catch (...) {  // allocation failure: skip this redraw, the replay matters more than the bar
  }
}

void ProgressMeter::update(std::uint64_t now_ns, double fraction, std::uint64_t packets,
                           std::uint64_t bytes) noexcept {
  if (!due(now_ns)) return;
  draw(now_ns, fraction, packets, bytes);
}

void ProgressMeter::finish(std::uint64_t now_ns, double fraction, std::uint64_t packets, std::uint64_t bytes) noexcept {
  if (!active_) return;
  draw(now_ns, fraction, packets, bytes);
  std::fputc('\n', out_);
  std::fflush(out_);
}

}  // namespace hypergate::pcap
