#pragma once
// Message: what flows through the pipeline. A message does not own its bytes: `data` points into
// the source's receive buffer (zero-copy) or into a per-worker scratch arena, and stays valid until
// the burst that carries it is released back to its source.
//
// Layout: exactly one cache line, so a Burst<32> is 32 consecutive lines and a worker touching a
// message touches one line of metadata.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "hypergate/core/cache.hpp"
#include "hypergate/core/hash.hpp"

namespace hypergate {

struct alignas(kCacheLine) Message {
  const std::byte* data = nullptr;  ///< payload view (not owned)
  std::uint32_t size = 0;           ///< payload bytes
  std::uint16_t key_size = 0;       ///< routing key bytes
  std::uint16_t source_id = 0;      ///< index of the source instance that received it
  const char* key_data = nullptr;   ///< routing key view (often inside `data`)
  std::uint64_t key_hash = 0;       ///< hash_bytes(key); decides the valve lane
  std::uint64_t rx_tsc = 0;         ///< receive time in TscClock ticks (kernel/NIC stamp if known)
  std::uint64_t sequence = 0;       ///< source sequence number (MoldUDP64, SoupBinTCP...) or 0
  std::uint16_t type = 0;           ///< protocol message type (e.g. ITCH 'A'), 0 if none
  std::uint16_t flags = 0;          ///< see MessageFlags
  std::uint32_t user = 0;           ///< free for the pipeline (e.g. stock locate)

  [[nodiscard]] std::span<const std::byte> payload() const noexcept { return {data, size}; }
  [[nodiscard]] std::string_view text() const noexcept {
    return {reinterpret_cast<const char*>(data), size};
  }
  [[nodiscard]] std::string_view key() const noexcept { return {key_data, key_size}; }

  /// Sets the routing key and its hash. Keys longer than 65535 bytes are truncated to that size.
  void set_key(std::string_view k) noexcept {
    key_data = k.data();
    key_size = static_cast<std::uint16_t>(k.size() > 0xFFFF ? 0xFFFF : k.size());
    key_hash = hash_bytes(key_data, key_size);
  }
  void set_payload(const void* p, std::size_t n) noexcept {
    data = static_cast<const std::byte*>(p);
    size = static_cast<std::uint32_t>(n);
  }
};
static_assert(sizeof(Message) == kCacheLine, "Message is one cache line: keep Burst<N> dense");
static_assert(alignof(Message) == kCacheLine);

enum MessageFlags : std::uint16_t {
  kMsgNone = 0,
  kMsgHeartbeat = 1u << 0,     ///< carries no data; keeps a session alive
  kMsgEndOfSession = 1u << 1,  ///< the source announced the end of its session
  kMsgStale = 1u << 2,         ///< data after an unrecovered gap
};

}  // namespace hypergate
