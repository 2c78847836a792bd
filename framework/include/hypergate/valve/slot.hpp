#pragma once
// Slot<Bytes>: one message as it crosses cores inside a valve ring — a compact header plus the payload
// and key bytes inline.
//
// Why a copy: a pipeline emits messages that point into the source's rx buffers or its scratch arena,
// and both are released as soon as process() returns (see route/route.hpp). The valve engine therefore
// copies payload and key into its ring slot, once, on the producer core. A message whose payload + key
// does not fit in kInlineBytes is refused by the engine (counted as `oversize`), never truncated.
//
// Contract:
//  - A Slot is only ever built from a SlotInit (producer side, constructed in place inside the ring) or
//    copied from another Slot. Copies move the header and the *used* bytes only (header + size +
//    key_size), not the whole slot: a 32-byte message in a 256-byte slot costs a 96-byte copy.
//    That is why Slot has user-defined copy operations and is not trivially copyable on purpose.
//  - view() rebuilds a Message whose data/key_data point into this slot; it is valid while the slot is.
//
// IMPLEMENTATION DETAILS
//   | SlotHeader (56 B) | payload bytes (size) | key bytes (key_size) | unused ... | = Bytes, cache-line multiple
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>

#include "hypergate/core/cache.hpp"
#include "hypergate/core/message.hpp"
#include "hypergate/route/route.hpp"

namespace hypergate::valve {

/// Everything of a Message except its pointers, plus what the valve adds (sink mask, push time).
struct SlotHeader {
  std::uint64_t key_hash = 0;
  std::uint64_t rx_tsc = 0;
  std::uint64_t sequence = 0;
  std::uint64_t sinks = 0;     ///< bitmask of sink ids this message goes to
  std::uint64_t push_tsc = 0;  ///< TscClock ticks when the producer pushed it (push -> drained latency)
  std::uint32_t size = 0;      ///< payload bytes, stored first
  std::uint32_t user = 0;
  std::uint16_t key_size = 0;  ///< key bytes, stored right after the payload
  std::uint16_t source_id = 0;
  std::uint16_t type = 0;
  std::uint16_t flags = 0;
};
static_assert(sizeof(SlotHeader) == 56, "header is 7 words: keep it compact, it is copied with every message");

/// What a producer hands to the ring: the message to copy, where it goes, when it was pushed.
struct SlotInit {
  const Message* msg = nullptr;
  std::uint64_t sinks = 0;
  std::uint64_t push_tsc = 0;
};

inline constexpr std::size_t kDefaultSlotBytes = 256;

/// Copies n bytes with fixed-size (inlined) moves: overlapping 32/16/8/4/2-byte chunks instead of a call
/// into libc's memcpy for every message. Never reads or writes outside [src, src+n) / [dst, dst+n).
inline void copy_bytes(std::byte* dst, const std::byte* src, std::size_t n) noexcept {
  if (n >= 32) {
    std::size_t off = 0;
    for (; off + 32 < n; off += 32) std::memcpy(dst + off, src + off, 32);
    std::memcpy(dst + n - 32, src + n - 32, 32);
  } else if (n >= 16) {
    std::memcpy(dst, src, 16);
    std::memcpy(dst + n - 16, src + n - 16, 16);
  } else if (n >= 8) {
    std::memcpy(dst, src, 8);
    std::memcpy(dst + n - 8, src + n - 8, 8);
  } else if (n >= 4) {
    std::memcpy(dst, src, 4);
    std::memcpy(dst + n - 4, src + n - 4, 4);
  } else if (n >= 2) {
    std::memcpy(dst, src, 2);
    std::memcpy(dst + n - 2, src + n - 2, 2);
  } else if (n == 1) {
    dst[0] = src[0];
  }
}

template <std::size_t Bytes>
struct alignas(kCacheLine) Slot {
  static_assert(Bytes % kCacheLine == 0, "a slot is a whole number of cache lines: rings stay line-aligned");
  static_assert(Bytes >= 2 * kCacheLine, "a slot must hold its 56-byte header and a useful payload");
  static_assert(Bytes - sizeof(SlotHeader) <= 0xFFFFFFFFu, "inline bytes are addressed with 32-bit sizes");

  static constexpr std::size_t kBytes = Bytes;
  static constexpr std::size_t kInlineBytes = Bytes - sizeof(SlotHeader);

  SlotHeader h;
  std::byte bytes[kInlineBytes];  // deliberately not value-initialised: only the used prefix is ever read

  Slot() noexcept : h{} {}
  /// Copies `init.msg` in; precondition: fits(*init.msg).
  explicit Slot(const SlotInit& init) noexcept { assign(init); }
  Slot(const Slot& other) noexcept : h(other.h) { copy_used(other); }
  Slot& operator=(const Slot& other) noexcept {
    if (this != &other) {
      h = other.h;
      copy_used(other);
    }
    return *this;
  }
  ~Slot() = default;

  /// True when payload and key fit inline.
  [[nodiscard]] static constexpr bool fits(const Message& m) noexcept {
    return static_cast<std::size_t>(m.size) + m.key_size <= kInlineBytes;
  }

  void assign(const SlotInit& init) noexcept {
    const Message& m = *init.msg;
    assert(fits(m));
    h.key_hash = m.key_hash;
    h.rx_tsc = m.rx_tsc;
    h.sequence = m.sequence;
    h.sinks = init.sinks;
    h.push_tsc = init.push_tsc;
    h.size = m.size;
    h.user = m.user;
    h.key_size = m.key_size;
    h.source_id = m.source_id;
    h.type = m.type;
    h.flags = m.flags;
    // copy_bytes never touches its pointers for n == 0, so null views of empty payloads/keys are fine.
    copy_bytes(bytes, m.data, m.size);
    copy_bytes(bytes + m.size, reinterpret_cast<const std::byte*>(m.key_data), m.key_size);
  }

  [[nodiscard]] std::size_t used_bytes() const noexcept { return static_cast<std::size_t>(h.size) + h.key_size; }
  [[nodiscard]] std::string_view key() const noexcept {
    return {reinterpret_cast<const char*>(bytes) + h.size, h.key_size};
  }

  /// A Message viewing this slot's bytes (valid while the slot is neither overwritten nor freed).
  [[nodiscard]] Message view() const noexcept {
    Message m;
    m.data = bytes;
    m.size = h.size;
    m.key_size = h.key_size;
    m.source_id = h.source_id;
    m.key_data = reinterpret_cast<const char*>(bytes) + h.size;
    m.key_hash = h.key_hash;
    m.rx_tsc = h.rx_tsc;
    m.sequence = h.sequence;
    m.type = h.type;
    m.flags = h.flags;
    m.user = h.user;
    return m;
  }

  /// Same key: same hash and same key bytes (keyless messages compare by hash alone).
  [[nodiscard]] bool same_key(const Message& m) const noexcept {
    return h.key_hash == m.key_hash && h.key_size == m.key_size &&
           (m.key_size == 0 || std::memcmp(bytes + h.size, m.key_data, m.key_size) == 0);
  }

 private:
  void copy_used(const Slot& other) noexcept {
    const std::size_t n = other.used_bytes();
    assert(n <= kInlineBytes);
    copy_bytes(bytes, other.bytes, n <= kInlineBytes ? n : kInlineBytes);
  }
};
static_assert(sizeof(Slot<kDefaultSlotBytes>) == kDefaultSlotBytes, "no padding beyond the declared slot size");
static_assert(alignof(Slot<kDefaultSlotBytes>) == kCacheLine);

/// Random-access iterator that yields SlotInit for a subset (index list) of a burst of messages. The ring's
/// batch push runs std::uninitialized_copy over it, so each Slot is constructed in place in ring memory
/// from the message — the one and only copy — and the ring index is published once per batch.
class SlotInitIterator {
 public:
  using iterator_category = std::random_access_iterator_tag;
  using value_type = SlotInit;
  using difference_type = std::ptrdiff_t;
  using pointer = void;
  using reference = SlotInit;

  SlotInitIterator() noexcept = default;
  SlotInitIterator(const Message* msgs, const route::Route* routes, const std::uint8_t* index,
                   std::uint64_t push_tsc) noexcept
      : msgs_(msgs), routes_(routes), index_(index), push_tsc_(push_tsc) {}

  SlotInit operator*() const noexcept {
    const std::uint8_t i = *index_;
    return SlotInit{&msgs_[i], routes_[i].sinks, push_tsc_};
  }
  SlotInit operator[](difference_type n) const noexcept { return *(*this + n); }
  SlotInitIterator& operator++() noexcept {
    ++index_;
    return *this;
  }
  SlotInitIterator operator++(int) noexcept {
    SlotInitIterator t = *this;
    ++index_;
    return t;
  }
  SlotInitIterator& operator--() noexcept {
    --index_;
    return *this;
  }
  SlotInitIterator& operator+=(difference_type n) noexcept {
    index_ += n;
    return *this;
  }
  SlotInitIterator& operator-=(difference_type n) noexcept {
    index_ -= n;
    return *this;
  }
  friend SlotInitIterator operator+(SlotInitIterator it, difference_type n) noexcept { return it += n; }
  friend difference_type operator-(const SlotInitIterator& a, const SlotInitIterator& b) noexcept {
    return a.index_ - b.index_;
  }
  friend bool operator==(const SlotInitIterator& a, const SlotInitIterator& b) noexcept {
    return a.index_ == b.index_;
  }
  friend bool operator<(const SlotInitIterator& a, const SlotInitIterator& b) noexcept {
    return a.index_ < b.index_;
  }
  [[nodiscard]] const std::uint8_t* position() const noexcept { return index_; }

 private:
  const Message* msgs_ = nullptr;
  const route::Route* routes_ = nullptr;
  const std::uint8_t* index_ = nullptr;
  std::uint64_t push_tsc_ = 0;
};

}  // namespace hypergate::valve
