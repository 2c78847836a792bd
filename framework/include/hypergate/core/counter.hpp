#pragma once
// Counter: a statistic with exactly one writer thread (the adapter's or pipeline's worker) and any
// number of readers (the stats thread, /stats, the final report).
//
// add() is a relaxed load and a relaxed store, not a read-modify-write: with one writer no increment
// can be lost, and a plain store costs what a non-atomic increment costs (a lock-prefixed fetch_add
// is a full barrier on x86). Readers get a value some add() stored, never a torn one; nothing else is
// ordered by a counter (no partner: a reader that needs data published with a count must use its own
// release/acquire pair).
#include <atomic>
#include <cstdint>

namespace hypergate {

class Counter {
 public:
  /// Writer only.
  void add(std::uint64_t n = 1) noexcept {
    // relaxed (both): single writer, see the top of this file
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  /// Writer only: replaces the value (a gauge, or a figure copied from elsewhere).
  void set(std::uint64_t n) noexcept { v_.store(n, std::memory_order_relaxed); }   // relaxed: as add()
  /// Any thread.
  [[nodiscard]] std::uint64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

}  // namespace hypergate
