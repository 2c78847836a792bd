// CRC-32C: SSE4.2 instruction when the CPU has it (checked once at start-up), table otherwise.
#include "hypergate/kv/crc32c.hpp"

#include <array>
#include <cstring>

namespace hypergate::kv {
namespace {

constexpr std::uint32_t kPolyReflected = 0x82F63B78u;   // Castagnoli polynomial, bit-reflected

constexpr std::array<std::uint32_t, 256> make_table() noexcept {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ kPolyReflected : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr std::array<std::uint32_t, 256> kTable = make_table();

std::uint32_t table_update(std::uint32_t c, const unsigned char* p, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) c = kTable[(c ^ p[i]) & 0xFFu] ^ (c >> 8);
  return c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) std::uint32_t hw_update(std::uint32_t c, const unsigned char* p,
                                                          std::size_t n) noexcept {
  std::uint64_t c64 = c;
  while (n >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, sizeof w);
    c64 = __builtin_ia32_crc32di(c64, w);
    p += 8;
    n -= 8;
  }
  c = static_cast<std::uint32_t>(c64);
  while (n > 0) {
    c = __builtin_ia32_crc32qi(c, *p++);
    --n;
  }
  return c;
}

bool detect_hardware() noexcept {
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2");
}
// Written once during static initialisation (before main and any thread), read-only afterwards.
const bool kHardware = detect_hardware();
#else
constexpr bool kHardware = false;
#endif

}  // namespace

std::uint32_t crc32c_extend_portable(std::uint32_t crc, const void* data, std::size_t len) noexcept {
  return ~table_update(~crc, static_cast<const unsigned char*>(data), len);
}

std::uint32_t crc32c_extend(std::uint32_t crc, const void* data, std::size_t len) noexcept {
#if defined(__x86_64__)
  if (kHardware) [[likely]] return ~hw_update(~crc, static_cast<const unsigned char*>(data), len);
#endif
  return crc32c_extend_portable(crc, data, len);
}

bool crc32c_hardware() noexcept { return kHardware; }

}  // namespace hypergate::kv
