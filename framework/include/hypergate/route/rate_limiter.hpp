#pragma once
// RateLimiter: a token bucket per routing key, `rate` messages per second with bursts of up to
// `burst` messages; a message over its key's budget is rejected ("rate_limited").
//
// Guarantees:
//  - No allocation per message: buckets live in a fixed table allocated by the constructor.
//  - When the table is full: a key that finds no bucket within its probe window (16 slots) shares a
//    single overflow bucket with every other such key. Those keys are still limited (jointly, at
//    `rate`), never let through unlimited and never rejected wholesale; untracked() counts them.
//    A bucket whose key has been quiet long enough to be full again is indistinguishable from an
//    empty one, so it is recycled for a new key: the table only fills when more than
//    `table_size` keys are active at the same time.
//  - Keys are identified by Message::key_hash (64 bits): two keys with equal hashes share a bucket
//    (probability ~ n^2 / 2^65 for n active keys; accepted for a rate limiter).
//  - Time is the message's rx_tsc (the receive timestamp every message carries); a message without
//    one uses the clock read once per burst in begin_burst().
//  - Single thread (the owning worker); untracked() may be read from any thread.
//
// IMPLEMENTATION DETAILS
// Each bucket is a GCRA cell (the "virtual scheduling" form of a token bucket): one 64-bit
// theoretical arrival time `tat`. With emission interval T = 1/rate and tolerance tau = (burst-1)*T,
// a message at time t conforms iff max(tat, t) - t <= tau, and then tat = max(tat, t) + T.
// It admits exactly the sequences a bucket of `burst` tokens refilled at `rate` admits, with one
// word of state and no division on the hot path.
//
//   table: [ {hash, tat} {hash, tat} ... ]  power-of-two size, linear probing, hash 0 = empty
#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "hypergate/core/clock.hpp"
#include "hypergate/core/message.hpp"
#include "hypergate/route/stage.hpp"

namespace hypergate::route {

class RateLimiter {
 public:
  static constexpr std::array<std::string_view, 1> kReasons{"rate_limited"};
  static constexpr std::size_t kProbeWindow = 16;

  struct Config {
    double rate_per_second = 0;     ///< 0 disables the limiter (every message passes)
    std::uint32_t burst = 1;        ///< messages admitted back to back when a bucket is full
    std::size_t table_size = 4096;  ///< buckets; rounded up to a power of two, at least kProbeWindow
    double ticks_per_ns = 0;        ///< clock rate of rx_tsc; 0 = TscClock's calibrated rate
  };

  RateLimiter() = default;
  explicit RateLimiter(const Config& cfg) {
    if (cfg.rate_per_second <= 0) return;
    std::size_t size = kProbeWindow;
    while (size < cfg.table_size) size *= 2;
    table_ = std::make_unique<Bucket[]>(size);
    mask_ = size - 1;
    const double tpn = cfg.ticks_per_ns > 0 ? cfg.ticks_per_ns : TscClock::instance().ticks_per_ns();
    const double interval = std::max(1.0, std::round(tpn * 1e9 / cfg.rate_per_second));
    interval_ = static_cast<std::uint64_t>(interval);
    tolerance_ = interval_ * (cfg.burst > 0 ? cfg.burst - 1 : 0);
  }

  void begin_burst() noexcept {
    if (table_) now_ = TscClock::ticks();
  }

  [[nodiscard]] Verdict check(const Message& m) noexcept {
    if (!table_) return Verdict::pass();
    const std::uint64_t t = m.rx_tsc != 0 ? m.rx_tsc : now_;
    std::uint64_t& tat = bucket_for(m.key_hash == 0 ? 1 : m.key_hash, t);
    const std::uint64_t start = tat > t ? tat : t;
    if (start - t > tolerance_) return Verdict::reject(0);
    tat = start + interval_;
    return Verdict::pass();
  }

  [[nodiscard]] bool enabled() const noexcept { return table_ != nullptr; }
  [[nodiscard]] std::size_t table_size() const noexcept { return table_ ? mask_ + 1 : 0; }
  /// Messages whose key found no bucket of its own and used the shared overflow bucket. Any thread.
  [[nodiscard]] std::uint64_t untracked() const noexcept {
    // relaxed: a monotonic statistic with no data behind it; pairs with the relaxed store in bucket_for().
    return std::atomic_ref<std::uint64_t>(const_cast<std::uint64_t&>(untracked_)).load(std::memory_order_relaxed);
  }

 private:
  struct Bucket {
    std::uint64_t hash = 0;  ///< key hash; 0 = never used
    std::uint64_t tat = 0;   ///< theoretical arrival time, in ticks
  };

  std::uint64_t& bucket_for(std::uint64_t h, std::uint64_t t) noexcept {
    Bucket* reusable = nullptr;
    std::size_t i = h & mask_;
    for (std::size_t probe = 0; probe < kProbeWindow; ++probe, i = (i + 1) & mask_) {
      Bucket& b = table_[i];
      if (b.hash == h) return b.tat;
      if (b.hash == 0) {  // the key cannot be further along: slots are never emptied
        if (reusable == nullptr) reusable = &b;
        break;
      }
      if (reusable == nullptr && b.tat <= t) reusable = &b;  // full bucket: as good as empty
    }
    if (reusable != nullptr) [[likely]] {
      *reusable = Bucket{h, 0};
      return reusable->tat;
    }
    // relaxed: single writer; readers want a monotonic statistic only.
    std::atomic_ref<std::uint64_t>(untracked_).store(untracked_ + 1, std::memory_order_relaxed);
    return overflow_.tat;
  }

  std::unique_ptr<Bucket[]> table_;
  std::size_t mask_ = 0;
  std::uint64_t interval_ = 1;   ///< T, ticks per message
  std::uint64_t tolerance_ = 0;  ///< tau = (burst - 1) * T
  std::uint64_t now_ = 0;        ///< clock read once per burst, for messages without rx_tsc
  Bucket overflow_{};
  // A plain word read through std::atomic_ref, so the limiter stays movable into a Pipeline; the
  // owning worker is its only writer (a plain read of it on that thread is race-free).
  alignas(std::atomic_ref<std::uint64_t>::required_alignment) std::uint64_t untracked_ = 0;
};
static_assert(Validator<RateLimiter>);

}  // namespace hypergate::route
