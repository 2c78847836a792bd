#pragma once
// ConflationTable<SlotT>: the bounded side buffer of a valve ring under the `conflate` policy
// (market-data conflation: when a subscriber lane is full, keep only the newest message per key).
//
// Guarantees (see ValveEngine for how the engine uses it):
//  - Holds at most capacity() distinct keys, each with its newest message. insert_or_replace() of a key
//    already present overwrites that entry in place (the older message is conflated: never delivered);
//    a new key takes a free entry, or is refused when the table is full (the caller counts a drop).
//  - Entries leave in FIFO order of their *first* insertion (front()/pop_front()), so a key that waited
//    longest is delivered first. Order between different keys is not otherwise meaningful.
//  - Fixed memory, allocated at construction; no allocation afterwards. Single-threaded: it belongs to
//    the producer that owns the ring (the consumer never sees it; the producer moves entries into the
//    ring when there is room), so it needs no synchronisation at all.
//
// IMPLEMENTATION DETAILS
//   slots_[capacity]     the newest message per key (SlotT, copied in place)
//   order_[capacity]     FIFO ring of entry numbers (head_, count_)
//   index_[2*capacity]   open addressing on key_hash, linear probing, entry number or kEmpty;
//                        deletion by backward shift (no tombstones), load factor <= 1/2
//   free_[capacity]      stack of free entry numbers
#include <cstddef>
#include <cstdint>
#include <memory>

#include "hypergate/core/message.hpp"
#include "hypergate/valve/slot.hpp"

namespace hypergate::valve {

template <class SlotT>
class ConflationTable {
  static_assert(SlotT::kInlineBytes > 0, "SlotT is a valve Slot<Bytes>");

 public:
  enum class Outcome : std::uint8_t { Inserted, Replaced, Full };

  /// capacity: number of distinct keys held, a power of two >= 1.
  explicit ConflationTable(std::uint32_t capacity)
      : capacity_(capacity),
        index_mask_(2 * capacity - 1),
        slots_(new SlotT[capacity]),
        order_(new std::uint32_t[capacity]),
        index_(new std::uint32_t[2 * static_cast<std::size_t>(capacity)]),
        free_(new std::uint32_t[capacity]) {
    for (std::uint32_t i = 0; i <= index_mask_; ++i) index_[i] = kEmpty;
    for (std::uint32_t i = 0; i < capacity_; ++i) free_[i] = capacity_ - 1 - i;
    free_count_ = capacity_;
  }

  [[nodiscard]] std::uint32_t capacity() const noexcept { return capacity_; }
  [[nodiscard]] std::uint32_t size() const noexcept { return count_; }
  [[nodiscard]] bool empty() const noexcept { return count_ == 0; }

  /// True when the message's key has an entry.
  [[nodiscard]] bool contains(const Message& m) const noexcept { return find(m) != kEmpty; }

  /// Stores `init` as the newest message of its key.
  Outcome insert_or_replace(const SlotInit& init) noexcept {
    const Message& m = *init.msg;
    std::uint32_t pos = static_cast<std::uint32_t>(m.key_hash) & index_mask_;
    while (index_[pos] != kEmpty) {
      const std::uint32_t e = index_[pos];
      if (slots_[e].same_key(m)) {
        slots_[e].assign(init);
        return Outcome::Replaced;
      }
      pos = (pos + 1) & index_mask_;
    }
    if (free_count_ == 0) return Outcome::Full;
    const std::uint32_t e = free_[--free_count_];
    slots_[e].assign(init);
    index_[pos] = e;
    order_[(head_ + count_) & (capacity_ - 1)] = e;
    ++count_;
    return Outcome::Inserted;
  }

  /// The entry that has waited longest; precondition: !empty().
  [[nodiscard]] const SlotT& front() const noexcept { return slots_[order_[head_]]; }

  /// Removes front(); precondition: !empty().
  void pop_front() noexcept {
    const std::uint32_t e = order_[head_];
    head_ = (head_ + 1) & (capacity_ - 1);
    --count_;
    erase_index(e);
    free_[free_count_++] = e;
  }

 private:
  static constexpr std::uint32_t kEmpty = 0xFFFFFFFFu;

  [[nodiscard]] std::uint32_t find(const Message& m) const noexcept {
    std::uint32_t pos = static_cast<std::uint32_t>(m.key_hash) & index_mask_;
    while (index_[pos] != kEmpty) {
      if (slots_[index_[pos]].same_key(m)) return index_[pos];
      pos = (pos + 1) & index_mask_;
    }
    return kEmpty;
  }

  [[nodiscard]] std::uint32_t home(std::uint32_t entry) const noexcept {
    return static_cast<std::uint32_t>(slots_[entry].h.key_hash) & index_mask_;
  }

  // Backward-shift deletion: after emptying position i, walk the probe run and move back every entry
  // whose home position does not lie cyclically in (i, j], so lookups never stop early at a hole.
  void erase_index(std::uint32_t entry) noexcept {
    std::uint32_t i = home(entry);
    while (index_[i] != entry) i = (i + 1) & index_mask_;
    std::uint32_t j = i;
    for (;;) {
      j = (j + 1) & index_mask_;
      if (index_[j] == kEmpty) break;
      const std::uint32_t k = home(index_[j]);
      const bool k_in_range = (i <= j) ? (i < k && k <= j) : (i < k || k <= j);
      if (!k_in_range) {
        index_[i] = index_[j];
        i = j;
      }
    }
    index_[i] = kEmpty;
  }

  std::uint32_t capacity_;
  std::uint32_t index_mask_;
  std::unique_ptr<SlotT[]> slots_;
  std::unique_ptr<std::uint32_t[]> order_;
  std::unique_ptr<std::uint32_t[]> index_;
  std::unique_ptr<std::uint32_t[]> free_;
  std::uint32_t head_ = 0;
  std::uint32_t count_ = 0;
  std::uint32_t free_count_ = 0;
};

}  // namespace hypergate::valve
