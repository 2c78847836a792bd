#pragma once
// TscClock: cheap timestamps for every message and stage.
//
// ticks() is one RDTSC (about 7-20 ns, no syscall) when the CPU has an invariant TSC (constant rate,
// runs through C-states, synchronised across cores: cpuid 0x80000007 EDX bit 8). Otherwise it falls
// back to CLOCK_MONOTONIC in nanoseconds, and the conversion factor is exactly 1. The conversion to
// nanoseconds is calibrated once against CLOCK_MONOTONIC and done with a fixed-point multiply.
#include <cstdint>
#include <ctime>

#include "hypergate/core/uint128.hpp"

namespace hypergate {

class TscClock {
 public:
  /// The process-wide clock, calibrated on first use (thread-safe: a function-local static).
  [[nodiscard]] static const TscClock& instance();

  /// Raw ticks: TSC cycles, or monotonic nanoseconds when the TSC is not usable.
  [[nodiscard]] static std::uint64_t ticks() noexcept {
#if defined(__x86_64__)
    if (tsc_usable_) [[likely]] return __builtin_ia32_rdtsc();
#endif
    return monotonic_ns();
  }

  [[nodiscard]] static std::uint64_t monotonic_ns() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<std::uint64_t>(ts.tv_nsec);
  }

  /// Converts a tick interval to nanoseconds.
  [[nodiscard]] std::uint64_t to_ns(std::uint64_t ticks) const noexcept {
    return static_cast<std::uint64_t>((static_cast<uint128>(ticks) * ns_per_tick_q32_) >> 32);
  }
  /// Converts nanoseconds to a tick interval.
  [[nodiscard]] std::uint64_t from_ns(std::uint64_t ns) const noexcept {
    return static_cast<std::uint64_t>((static_cast<uint128>(ns) * ticks_per_ns_q32_) >> 32);
  }
  /// Nanoseconds between two tick readings (0 if `end` is before `begin`).
  [[nodiscard]] std::uint64_t elapsed_ns(std::uint64_t begin, std::uint64_t end) const noexcept {
    return end > begin ? to_ns(end - begin) : 0;
  }

  [[nodiscard]] bool uses_tsc() const noexcept { return tsc_usable_; }
  [[nodiscard]] double ticks_per_ns() const noexcept {
    return static_cast<double>(ticks_per_ns_q32_) / 4294967296.0;
  }

  /// True when cpuid reports an invariant TSC.
  [[nodiscard]] static bool cpu_has_invariant_tsc() noexcept;

 private:
  TscClock();
  // Written once by the constructor, which runs during static initialisation of clock.cpp (linked in
  // by any use of ticks(), since this member is defined there) — before main() and any thread.
  static bool tsc_usable_;
  std::uint64_t ns_per_tick_q32_ = 1ull << 32;
  std::uint64_t ticks_per_ns_q32_ = 1ull << 32;
};

}  // namespace hypergate
