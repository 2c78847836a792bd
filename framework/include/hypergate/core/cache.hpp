#pragma once
// Cache-line constants used for alignment and padding across HyperGate.
#include <cstddef>

namespace hypergate {

/// Size of one cache line on every x86-64 and most AArch64 parts HyperGate targets.
inline constexpr std::size_t kCacheLine = 64;

/// Distance that keeps two independently written objects from false sharing. Two lines, because
/// the x86 adjacent-line prefetcher pulls cache lines in 128-byte pairs.
inline constexpr std::size_t kNoFalseSharing = 2 * kCacheLine;

/// Hints the CPU that we are in a spin-wait loop (PAUSE on x86, YIELD on AArch64).
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

}  // namespace hypergate
