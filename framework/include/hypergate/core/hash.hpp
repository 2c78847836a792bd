#pragma once
// hash_bytes: the one key hash of HyperGate. Valve lanes (hash & 31), Hyperion's index and the
// hash routing strategy all use it, so a key lands on the same lane in every process and run.
//
// Why hand-written: it sits on the hot path of every message, must be stable across versions and
// builds (routing is part of the wire contract between gateways), and needs no dependency. It reads
// eight bytes at a time with memcpy (no alignment assumptions), folds each word with a 64x64->128
// multiply, and ends with a 64-bit finalizer so that every input bit affects the low bits that
// pick a lane.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "hypergate/core/uint128.hpp"

namespace hypergate {

namespace detail {
inline constexpr std::uint64_t kHashSeed = 0x9E3779B97F4A7C15ull;   // 2^64 / golden ratio
inline constexpr std::uint64_t kHashMulA = 0xA0761D6478BD642Full;
inline constexpr std::uint64_t kHashMulB = 0xE7037ED1A0B428DBull;

[[nodiscard]] inline std::uint64_t fold_mul(std::uint64_t a, std::uint64_t b) noexcept {
  const uint128 p = static_cast<uint128>(a) * b;
  return static_cast<std::uint64_t>(p) ^ static_cast<std::uint64_t>(p >> 64);
}
[[nodiscard]] inline std::uint64_t load64(const unsigned char* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
[[nodiscard]] inline std::uint64_t load_tail(const unsigned char* p, std::size_t n) noexcept {
  std::uint64_t v = 0;   // 1..7 bytes, little-endian order
  std::memcpy(&v, p, n);
  return v;
}
}  // namespace detail

/// 64-bit hash of a byte string; deterministic across runs, builds and machines of one endianness.
[[nodiscard]] inline std::uint64_t hash_bytes(const void* data, std::size_t len) noexcept {
  using namespace detail;
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint64_t h = kHashSeed ^ (len * kHashMulB);
  while (len >= 16) {
    h = fold_mul(load64(p) ^ kHashMulA, load64(p + 8) ^ h);
    p += 16;
    len -= 16;
  }
  if (len >= 8) {
    h = fold_mul(load64(p) ^ kHashMulA, h ^ kHashMulB);
    p += 8;
    len -= 8;
  }
  if (len > 0) h = fold_mul(load_tail(p, len) ^ kHashMulB, h ^ kHashMulA);
  // Finalizer: avalanche so that the low bits (lane selection) depend on every input bit.
  h ^= h >> 33;
  h *= 0xFF51AFD7ED558CCDull;
  h ^= h >> 33;
  h *= 0xC4CEB9FE1A85EC53ull;
  h ^= h >> 33;
  return h;
}

[[nodiscard]] inline std::uint64_t hash_bytes(std::string_view s) noexcept {
  return hash_bytes(s.data(), s.size());
}

}  // namespace hypergate
