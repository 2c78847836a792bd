#pragma once
// PacketRing: the last N MoldUDP64 packets the republisher sent, kept so that re-requests can be
// answered with the original bytes. It is also the sink's transmit buffer: a packet is built in
// place in its slot, sent from there by sendmmsg, and stays there until N newer packets overwrite it.
//
// Guarantees:
//  - Fixed memory, reserved at construction: N slots of `slot_bytes` each. No allocation after.
//  - Packets are appended with consecutive message sequence numbers (packet k+1 starts where packet
//    k ended), which makes find() a binary search over the window of stored packets.
//  - Index space: packets are numbered 0, 1, 2... (monotonic, never reused); slot = index % N.
//    window() is [oldest(), next_index()). An index older than that has been overwritten.
//  - Single-threaded: the owning sink's worker does everything.
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace hypergate::udp {

class PacketRing {
 public:
  struct Entry {
    std::uint64_t first_sequence = 0;  ///< sequence number of the packet's first message
    std::uint32_t count = 0;           ///< messages in the packet
    std::uint32_t size = 0;            ///< packet bytes
  };

  PacketRing(std::size_t packets, std::size_t slot_bytes)
      : slot_bytes_(slot_bytes), bytes_(packets * slot_bytes), entries_(packets) {
    assert(packets > 0 && slot_bytes > 0);
  }

  [[nodiscard]] std::size_t capacity() const noexcept { return entries_.size(); }
  [[nodiscard]] std::size_t slot_bytes() const noexcept { return slot_bytes_; }
  [[nodiscard]] std::uint64_t next_index() const noexcept { return next_; }
  [[nodiscard]] std::uint64_t oldest() const noexcept {
    return next_ > entries_.size() ? next_ - entries_.size() : 0;
  }
  [[nodiscard]] bool empty() const noexcept { return next_ == 0; }

  /// The slot the next packet is built in (overwrites the oldest packet once the ring is full).
  [[nodiscard]] std::span<std::byte> next_slot() noexcept { return slot(next_); }
  /// Records the packet just built in next_slot() and advances.
  void commit(std::uint64_t first_sequence, std::uint32_t count, std::uint32_t size) noexcept {
    assert(size <= slot_bytes_);
    assert(empty() || first_sequence == end_sequence());
    entries_[next_ % entries_.size()] = Entry{first_sequence, count, size};
    ++next_;
  }

  /// Sequence number after the last stored message (0 when empty).
  [[nodiscard]] std::uint64_t end_sequence() const noexcept {
    if (empty()) return 0;
    const Entry& e = entry(next_ - 1);
    return e.first_sequence + e.count;
  }
  /// Sequence number of the oldest stored message (0 when empty).
  [[nodiscard]] std::uint64_t begin_sequence() const noexcept { return empty() ? 0 : entry(oldest()).first_sequence; }

  [[nodiscard]] const Entry& entry(std::uint64_t index) const noexcept { return entries_[index % entries_.size()]; }
  [[nodiscard]] std::span<std::byte> slot(std::uint64_t index) noexcept {
    return {bytes_.data() + (index % entries_.size()) * slot_bytes_, slot_bytes_};
  }
  [[nodiscard]] std::span<const std::byte> packet(std::uint64_t index) const noexcept {
    return {bytes_.data() + (index % entries_.size()) * slot_bytes_, entry(index).size};
  }

  /// Index of the stored packet holding message `sequence`, or nothing when it is outside the window.
  [[nodiscard]] std::optional<std::uint64_t> find(std::uint64_t sequence) const noexcept {
    if (empty() || sequence < begin_sequence() || sequence >= end_sequence()) return std::nullopt;
    std::uint64_t lo = oldest();
    std::uint64_t hi = next_;  // invariant: the answer is in [lo, hi)
    while (hi - lo > 1) {
      const std::uint64_t mid = lo + (hi - lo) / 2;
      if (entry(mid).first_sequence <= sequence) {
        lo = mid;
      } else {
        hi = mid;
      }
    }
    return lo;
  }

 private:
  std::size_t slot_bytes_;
  std::vector<std::byte> bytes_;
  std::vector<Entry> entries_;
  std::uint64_t next_ = 0;
};

}  // namespace hypergate::udp
