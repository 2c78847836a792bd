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
//    key_size, rounded up to 32), not the whole slot: a 32-byte message with an 8-byte key in a
//    256-byte slot costs a 96-byte copy. That is why slots above kBulkCopyMaxBytes have user-defined
//    copy operations and are not trivially copyable on purpose; smaller ones are, and move in bulk.
//  - view() rebuilds a Message whose data/key_data point into this slot; it is valid while the slot is.
//
// IMPLEMENTATION DETAILS
//   | SlotHeader (56 B) | payload bytes (size) | key bytes (key_size) | unused ... | = Bytes, cache-line multiple
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <type_traits>

#include "hypergate/core/cache.hpp"
#include "hypergate/core/message.hpp"
#include "hypergate/route/route.hpp"

namespace hypergate::valve {

/// Everything of a Message except its pointers, plus what the valve adds (sink mask, push time).
///
/// The fields sit where Message keeps the same fields (sinks and push_tsc take the places of Message's
/// two pointers), so filling a slot from a message and rebuilding the message from a slot are two
/// block copies of [8, 16) and [24, 56) instead of eleven field moves (checked by the asserts below).
/// No default member initialisers: a slot built from a SlotInit writes every field once, not twice;
/// `Slot s{}` zeroes a slot, `Slot s;` leaves it uninitialised.
struct SlotHeader {
  std::uint64_t sinks;     ///< bitmask of sink ids this message goes to           (Message::data)
  std::uint32_t size;      ///< payload bytes, stored first                         (Message::size)
  std::uint16_t key_size;  ///< key bytes, stored right after the payload
  std::uint16_t source_id;
  std::uint64_t push_tsc;  ///< TscClock ticks when the producer pushed it          (Message::key_data)
  std::uint64_t key_hash;
  std::uint64_t rx_tsc;
  std::uint64_t sequence;
  std::uint16_t type;
  std::uint16_t flags;
  std::uint32_t user;
};
static_assert(sizeof(SlotHeader) == 56, "header is 7 words: keep it compact, it is copied with every message");
static_assert(std::is_trivially_copyable_v<SlotHeader> && std::is_trivially_copyable_v<Message>);
// The two runs of fields copied as blocks: [8, 16) = size, key_size, source_id; [24, 56) = key_hash ..
// user. Both layouts must agree on every offset inside them.
inline constexpr std::size_t kHeaderRunA = 8, kHeaderRunALen = 8, kHeaderRunB = 24, kHeaderRunBLen = 32;
static_assert(offsetof(SlotHeader, size) == offsetof(Message, size) && offsetof(Message, size) == kHeaderRunA);
static_assert(offsetof(SlotHeader, key_size) == offsetof(Message, key_size));
static_assert(offsetof(SlotHeader, source_id) == offsetof(Message, source_id));
static_assert(offsetof(Message, key_data) == kHeaderRunA + kHeaderRunALen);
static_assert(offsetof(SlotHeader, key_hash) == offsetof(Message, key_hash) && offsetof(Message, key_hash) == kHeaderRunB);
static_assert(offsetof(SlotHeader, rx_tsc) == offsetof(Message, rx_tsc));
static_assert(offsetof(SlotHeader, sequence) == offsetof(Message, sequence));
static_assert(offsetof(SlotHeader, type) == offsetof(Message, type));
static_assert(offsetof(SlotHeader, flags) == offsetof(Message, flags));
static_assert(offsetof(SlotHeader, user) == offsetof(Message, user));
static_assert(offsetof(Message, user) + sizeof(Message::user) == kHeaderRunB + kHeaderRunBLen);
static_assert(offsetof(SlotHeader, sinks) == 0 && offsetof(SlotHeader, push_tsc) == 16);

/// What a producer hands to the ring: the message to copy, where it goes, when it was pushed.
struct SlotInit {
  const Message* msg = nullptr;
  std::uint64_t sinks = 0;
  std::uint64_t push_tsc = 0;
};

inline constexpr std::size_t kDefaultSlotBytes = 256;

/// Slots up to this size are trivially copyable: a copy moves the whole slot, and a ring of them is filled
/// and emptied with one memmove per batch (see ValveEngine::push_group). Larger slots copy only their used
/// bytes, element by element. Why: on this 2-core EPYC VM one 4 KiB memmove of 32 staged 128-byte slots
/// into a boost spsc_queue ran 1.25x (fast host phase) to 1.9x (slow phase) the messages per second of 32
/// per-slot copies of the same bytes with 16-byte moves (standalone harness), and valves_bench, old and
/// new binaries alternated (32-byte payloads, 3 x 3 runs): 128-byte slots 26.6-28.5 -> 37.8-38.1 M msg/s,
/// 256: 17.6-24.0 -> 25.4-26.1, 512: 17.1-23.3 -> 22.0-24.5, although the bulk copy moves whole slots.
/// 1024 and 2048 were not measured; they keep the used-bytes copy (a 2 KiB slot is mostly empty).
inline constexpr std::size_t kBulkCopyMaxBytes = 512;
/// Whether a slot of `Bytes` copies whole (trivially copyable) or copies its used bytes.
template <std::size_t Bytes>
inline constexpr bool kSlotCopiesWhole = Bytes <= kBulkCopyMaxBytes;

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

namespace detail {
/// A slot's storage: header, then payload and key bytes. Small slots (Trivial) copy as a whole and are
/// trivially copyable; large ones copy the header and their used bytes only. (A base class chosen by size
/// rather than constrained copy operations in Slot: clang 14 does not make a class with a constrained
/// defaulted copy trivially copyable.)
template <std::size_t Bytes, bool Trivial = kSlotCopiesWhole<Bytes>>
struct alignas(kCacheLine) SlotStorage {
  SlotHeader h;
  std::byte bytes[Bytes - sizeof(SlotHeader)];  // deliberately not value-initialised: only the used prefix is read
};

template <std::size_t Bytes>
struct alignas(kCacheLine) SlotStorage<Bytes, false> {
  SlotHeader h;
  std::byte bytes[Bytes - sizeof(SlotHeader)];

  SlotStorage() noexcept = default;
  SlotStorage(const SlotStorage& other) noexcept { copy_used(other); }
  SlotStorage& operator=(const SlotStorage& other) noexcept {
    if (this != &other) copy_used(other);
    return *this;
  }
  ~SlotStorage() = default;

 private:
  // Copies header + used bytes as whole 32-byte chunks from the start of the slot: a fixed-size loop the
  // compiler keeps inline (96 used bytes = 3 moves), no byte-exact tail. The chunks may take a few unused
  // bytes past the used ones; they stay inside both slots (Bytes is a multiple of 64) and nothing reads them.
  void copy_used(const SlotStorage& other) noexcept {
    static_assert(offsetof(SlotStorage, bytes) == sizeof(SlotHeader) && Bytes % 32 == 0);
    constexpr std::size_t kInline = Bytes - sizeof(SlotHeader);
    const std::size_t used = static_cast<std::size_t>(other.h.size) + other.h.key_size;
    assert(used <= kInline);
    const std::size_t n = sizeof(SlotHeader) + (used <= kInline ? used : kInline);
    auto* dst = reinterpret_cast<unsigned char*>(this);
    const auto* src = reinterpret_cast<const unsigned char*>(&other);
    for (std::size_t off = 0; off < n; off += 32) std::memcpy(dst + off, src + off, 32);
  }
};
}  // namespace detail

template <std::size_t Bytes>
struct alignas(kCacheLine) Slot : detail::SlotStorage<Bytes> {
  static_assert(Bytes % kCacheLine == 0, "a slot is a whole number of cache lines: rings stay line-aligned");
  static_assert(Bytes >= 2 * kCacheLine, "a slot must hold its 56-byte header and a useful payload");
  static_assert(Bytes - sizeof(SlotHeader) <= 0xFFFFFFFFu, "inline bytes are addressed with 32-bit sizes");

  static constexpr std::size_t kBytes = Bytes;
  static constexpr std::size_t kInlineBytes = Bytes - sizeof(SlotHeader);

  /// True when copies move the whole slot (trivially copyable, memmove-able in bulk); else the used bytes.
  static constexpr bool kTrivialCopy = kSlotCopiesWhole<Bytes>;

  using detail::SlotStorage<Bytes>::h;
  using detail::SlotStorage<Bytes>::bytes;

  Slot() noexcept = default;  // uninitialised; `Slot s{}` zeroes it
  /// Copies `init.msg` in; precondition: fits(*init.msg).
  explicit Slot(const SlotInit& init) noexcept { assign(init); }
  // Copies: those of SlotStorage (whole slot for small slots, header + used bytes for large ones).

  /// True when payload and key fit inline.
  [[nodiscard]] static constexpr bool fits(const Message& m) noexcept {
    return static_cast<std::size_t>(m.size) + m.key_size <= kInlineBytes;
  }

  void assign(const SlotInit& init) noexcept {
    const Message& m = *init.msg;
    assert(fits(m));
    auto* hb = reinterpret_cast<unsigned char*>(&h);
    const auto* mb = reinterpret_cast<const unsigned char*>(&m);
    h.sinks = init.sinks;
    std::memcpy(hb + kHeaderRunA, mb + kHeaderRunA, kHeaderRunALen);  // size, key_size, source_id
    h.push_tsc = init.push_tsc;
    std::memcpy(hb + kHeaderRunB, mb + kHeaderRunB, kHeaderRunBLen);  // key_hash, rx_tsc, sequence, type, flags, user
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
    view_into(m);
    return m;
  }
  /// The same, written over `m` (every field of it), e.g. straight into a burst's next message.
  void view_into(Message& m) const noexcept {
    auto* mb = reinterpret_cast<unsigned char*>(&m);
    const auto* hb = reinterpret_cast<const unsigned char*>(&h);
    m.data = bytes;
    std::memcpy(mb + kHeaderRunA, hb + kHeaderRunA, kHeaderRunALen);
    m.key_data = reinterpret_cast<const char*>(bytes) + h.size;
    std::memcpy(mb + kHeaderRunB, hb + kHeaderRunB, kHeaderRunBLen);
  }

  /// Same key: same hash and same key bytes (keyless messages compare by hash alone).
  [[nodiscard]] bool same_key(const Message& m) const noexcept {
    return h.key_hash == m.key_hash && h.key_size == m.key_size &&
           (m.key_size == 0 || std::memcmp(bytes + h.size, m.key_data, m.key_size) == 0);
  }

};
static_assert(sizeof(Slot<kDefaultSlotBytes>) == kDefaultSlotBytes, "no padding beyond the declared slot size");
static_assert(alignof(Slot<kDefaultSlotBytes>) == kCacheLine);
static_assert(std::is_trivial_v<Slot<kBulkCopyMaxBytes>>, "small slots: boost's batch push/pop become memmove");
static_assert(!std::is_trivially_copyable_v<Slot<2 * kBulkCopyMaxBytes>>, "large slots copy their used bytes only");

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
