#include "hypergate/core/clock.hpp"

#include <cstdlib>
#include <cstring>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace hypergate {

bool TscClock::cpu_has_invariant_tsc() noexcept {
#if defined(__x86_64__)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(0x80000000u, &eax, &ebx, &ecx, &edx) == 0 || eax < 0x80000007u) return false;
  if (__get_cpuid(0x80000007u, &eax, &ebx, &ecx, &edx) == 0) return false;
  return (edx & (1u << 8)) != 0;
#else
  return false;
#endif
}

namespace {
// One (monotonic ns, tsc) pair taken as close together as we can: the TSC read is bracketed by two
// clock reads and the tightest of a few attempts wins, which bounds the pairing error.
struct Pair {
  std::uint64_t ns;
  std::uint64_t tsc;
};
[[maybe_unused]] Pair sample_pair() {
  Pair best{};
  std::uint64_t best_width = ~0ull;
  for (int i = 0; i < 16; ++i) {
    const std::uint64_t a = TscClock::monotonic_ns();
#if defined(__x86_64__)
    const std::uint64_t t = __builtin_ia32_rdtsc();
#else
    const std::uint64_t t = a;
#endif
    const std::uint64_t b = TscClock::monotonic_ns();
    if (b - a < best_width) {
      best_width = b - a;
      best = {a + (b - a) / 2, t};
    }
  }
  return best;
}
}  // namespace

TscClock::TscClock() {
  // HG_CLOCK=monotonic forces the fallback (for comparing, or for machines whose TSC misbehaves).
  const char* force = std::getenv("HG_CLOCK");
  const bool want_tsc = !(force != nullptr && std::strcmp(force, "monotonic") == 0);
#if defined(__x86_64__)
  if (want_tsc && cpu_has_invariant_tsc()) {
    const Pair begin = sample_pair();
    // 20 ms of calibration gives a ratio good to ~1e-5 with a ~100 ns pairing error.
    timespec nap{0, 20'000'000};
    while (nanosleep(&nap, &nap) != 0) {
    }
    const Pair end = sample_pair();
    const std::uint64_t dns = end.ns - begin.ns;
    const std::uint64_t dtsc = end.tsc - begin.tsc;
    if (dns > 0 && dtsc > 0) {
      ticks_per_ns_q32_ = static_cast<std::uint64_t>((static_cast<uint128>(dtsc) << 32) / dns);
      ns_per_tick_q32_ = static_cast<std::uint64_t>((static_cast<uint128>(dns) << 32) / dtsc);
      tsc_usable_ = true;
    }
  }
#else
  (void)want_tsc;
#endif
}

bool TscClock::tsc_usable_ = false;

const TscClock& TscClock::instance() {
  static const TscClock clock;
  return clock;
}

namespace {
// Calibrate at start-up so that ticks() has one unit for the whole life of the process.
[[maybe_unused]] const TscClock& g_calibrated_at_startup = TscClock::instance();
}  // namespace

}  // namespace hypergate
