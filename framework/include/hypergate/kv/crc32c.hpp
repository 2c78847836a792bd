#pragma once
// CRC-32C (Castagnoli): the checksum of every Hyperion record.
//
// Why CRC-32C and not zlib's crc32: x86-64 (SSE4.2 `crc32`) and ARMv8 (CRC extension) compute it in
// hardware, one 64-bit word per instruction, inline and with no library call, so checksumming a
// 100-byte record costs a few nanoseconds on the writer's hot path. Like any 32-bit CRC it detects
// every burst error up to 32 bits and every odd number of flipped bits, which is what a torn record
// (a write cut short by a crash) looks like. The portable table-driven fallback gives bit-identical
// results, so a file written on one machine verifies on another.
//
// Convention: crc32c_extend(0, data) is the standard CRC-32C of data (init and final xor ~0), and
// crc32c_extend(crc32c_extend(0, a), b) == crc32c_extend(0, a ++ b).
#include <cstddef>
#include <cstdint>

namespace hypergate::kv {

/// Extends a finished CRC-32C with `len` more bytes (hardware when the CPU has it).
[[nodiscard]] std::uint32_t crc32c_extend(std::uint32_t crc, const void* data, std::size_t len) noexcept;

/// The same function computed with a lookup table only (used as the fallback, and by tests).
[[nodiscard]] std::uint32_t crc32c_extend_portable(std::uint32_t crc, const void* data,
                                                   std::size_t len) noexcept;

/// True when crc32c_extend uses the CPU's CRC-32C instruction.
[[nodiscard]] bool crc32c_hardware() noexcept;

[[nodiscard]] inline std::uint32_t crc32c(const void* data, std::size_t len) noexcept {
  return crc32c_extend(0, data, len);
}

}  // namespace hypergate::kv
