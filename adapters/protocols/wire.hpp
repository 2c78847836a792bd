#pragma once
// Big-endian field access for the binary market-data codecs (MoldUDP64, ITCH 5.0, SoupBinTCP).
//
// Contract: every load/store touches exactly N bytes at the pointer it is given; the caller has
// already proved those bytes are inside the buffer (the codecs check lengths once per frame, then
// read fields without further checks). memcpy + byte swap compiles to one MOVBE/BSWAP on x86-64;
// no alignment is assumed, no aliasing rule is bent.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

namespace hypergate::protocols {

/// Read-only bytes of one frame (a datagram, a message): what every decoder takes.
using Bytes = std::span<const std::byte>;
/// Writable bytes an encoder fills.
using MutableBytes = std::span<std::byte>;

namespace wire {

[[nodiscard]] inline std::uint16_t load_be16(const std::byte* p) noexcept {
  std::uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return __builtin_bswap16(v);
}
[[nodiscard]] inline std::uint32_t load_be32(const std::byte* p) noexcept {
  std::uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return __builtin_bswap32(v);
}
[[nodiscard]] inline std::uint64_t load_be64(const std::byte* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return __builtin_bswap64(v);
}
/// 6-byte big-endian integer (ITCH timestamps: nanoseconds since midnight).
[[nodiscard]] inline std::uint64_t load_be48(const std::byte* p) noexcept {
  return (std::uint64_t{load_be16(p)} << 32) | load_be32(p + 2);
}

inline void store_be16(std::byte* p, std::uint16_t v) noexcept {
  v = __builtin_bswap16(v);
  std::memcpy(p, &v, sizeof v);
}
inline void store_be32(std::byte* p, std::uint32_t v) noexcept {
  v = __builtin_bswap32(v);
  std::memcpy(p, &v, sizeof v);
}
inline void store_be64(std::byte* p, std::uint64_t v) noexcept {
  v = __builtin_bswap64(v);
  std::memcpy(p, &v, sizeof v);
}
/// Stores the low 48 bits of v (higher bits are dropped: a timestamp never exceeds one day in ns).
inline void store_be48(std::byte* p, std::uint64_t v) noexcept {
  store_be16(p, static_cast<std::uint16_t>(v >> 32));
  store_be32(p + 2, static_cast<std::uint32_t>(v));
}

/// The characters at p..p+n as text (Alpha fields are raw ASCII bytes).
[[nodiscard]] inline std::string_view chars(const std::byte* p, std::size_t n) noexcept {
  return {reinterpret_cast<const char*>(p), n};
}

/// Copies `text` into an n-byte Alpha field: left-justified, space padded, truncated at n.
inline void store_alpha(std::byte* p, std::size_t n, std::string_view text) noexcept {
  const std::size_t k = text.size() < n ? text.size() : n;
  std::memcpy(p, text.data(), k);
  std::memset(p + k, ' ', n - k);
}

/// `s` without its trailing spaces (the padding of an Alpha field).
[[nodiscard]] constexpr std::string_view trim_right(std::string_view s) noexcept {
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

}  // namespace wire
}  // namespace hypergate::protocols
