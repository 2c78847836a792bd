// ReplaySchedule and speed parsing (see replay_schedule.hpp).
#include "pcap/replay_schedule.hpp"

#include <charconv>
#include <limits>

#include "hypergate/core/uint128.hpp"

namespace hypergate::pcap {
namespace {

constexpr std::uint64_t kNsPerSecond = 1'000'000'000;
constexpr std::size_t kMaxDecimals = 9;  // "0.000000001x" is the finest factor we keep exactly

Error speed_error(std::string_view text, std::string_view why) {
  return Error{Status::InvalidArgument, "invalid speed \"" + std::string(text) + "\": " + std::string(why) +
                                            " (expected max, realtime, <N>x such as 10x or 0.5x, or <N>pps)"};
}

[[nodiscard]] std::uint64_t saturate(uint128 v) noexcept {
  return v > std::numeric_limits<std::uint64_t>::max() ? std::numeric_limits<std::uint64_t>::max()
                                                       : static_cast<std::uint64_t>(v);
}

}  // namespace

std::string Speed::to_string() const {
  switch (mode) {
    case Mode::Max: return "max";
    case Mode::Rate: return std::to_string(pps) + "pps";
    case Mode::Scaled: {
      std::string s = std::to_string(num / den);
      std::uint64_t frac = num % den;
      if (frac != 0) {
        std::string digits;
        for (std::uint64_t d = den; d > 1; d /= 10) {
          digits.insert(digits.begin(), static_cast<char>('0' + frac % 10));
          frac /= 10;
        }
        while (!digits.empty() && digits.back() == '0') digits.pop_back();
        s += "." + digits;
      }
      return s + "x";
    }
  }
  return "max";
}

Result<Speed> parse_speed(std::string_view text) {
  if (text == "max") return Speed::max();
  if (text == "realtime") return Speed::realtime();
  if (text.empty()) return speed_error(text, "empty");
  if (text.size() > 3 && text.substr(text.size() - 3) == "pps") {
    const std::string_view digits = text.substr(0, text.size() - 3);
    std::uint64_t pps = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), pps);
    if (ec != std::errc{} || end != digits.data() + digits.size()) {
      return speed_error(text, "the rate must be a positive integer number of packets per second");
    }
    if (pps == 0) return speed_error(text, "the rate must be positive");
    return Speed::rate(pps);
  }
  if (text.back() != 'x') return speed_error(text, "unknown unit");
  const std::string_view number = text.substr(0, text.size() - 1);
  const std::size_t dot = number.find('.');
  const std::string_view whole = number.substr(0, dot);
  const std::string_view frac = dot == std::string_view::npos ? std::string_view{} : number.substr(dot + 1);
  if (whole.empty() && frac.empty()) return speed_error(text, "missing factor");
  if (dot != std::string_view::npos && frac.empty()) return speed_error(text, "missing digits after '.'");
  if (frac.size() > kMaxDecimals) return speed_error(text, "at most 9 decimals");
  std::uint64_t num = 0;
  std::uint64_t den = 1;
  for (const char c : whole) {
    if (c < '0' || c > '9') return speed_error(text, "the factor must be a positive decimal number");
    if (num > (std::numeric_limits<std::uint32_t>::max() - 9) / 10) return speed_error(text, "factor too large");
    num = num * 10 + static_cast<std::uint64_t>(c - '0');
  }
  for (const char c : frac) {
    if (c < '0' || c > '9') return speed_error(text, "the factor must be a positive decimal number");
    num = num * 10 + static_cast<std::uint64_t>(c - '0');  // < 2^32 * 10^9: fits 64 bits
    den *= 10;
  }
  if (num == 0) return speed_error(text, "the factor must be positive");
  while (num % 10 == 0 && den % 10 == 0) {  // canonical fraction: "2.50x" == "2.5x"
    num /= 10;
    den /= 10;
  }
  return Speed{Speed::Mode::Scaled, num, den, 0};
}

std::uint64_t ReplaySchedule::next(std::uint64_t capture_ns) noexcept {
  const std::uint64_t index = index_++;
  if (!pass_started_) {
    pass_started_ = true;
    pass_first_ns_ = capture_ns;
    pass_last_ns_ = capture_ns;
  } else if (capture_ns > pass_last_ns_) {
    pass_last_ns_ = capture_ns;
  }
  ++pass_packets_;
  switch (speed_.mode) {
    case Speed::Mode::Max:
      return 0;
    case Speed::Mode::Rate:
      return saturate(static_cast<uint128>(start_ns_) + static_cast<uint128>(index) * kNsPerSecond / speed_.pps);
    case Speed::Mode::Scaled: {
      const uint128 rel = static_cast<uint128>(pass_base_ns_) + (pass_last_ns_ - pass_first_ns_);
      return saturate(static_cast<uint128>(start_ns_) + rel * speed_.den / speed_.num);
    }
  }
  return 0;
}

void ReplaySchedule::end_pass() noexcept {
  ++passes_;
  if (pass_started_) {
    const std::uint64_t span = pass_last_ns_ - pass_first_ns_;
    const std::uint64_t gap = pass_packets_ > 1 ? span / (pass_packets_ - 1) : 0;
    pass_base_ns_ += span + gap;
  }
  pass_started_ = false;
  pass_packets_ = 0;
}

}  // namespace hypergate::pcap
