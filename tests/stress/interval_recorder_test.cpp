// IntervalRecorder with real threads: one writer records known values while readers swap intervals
// out in a loop; nothing is lost or counted twice, and the merged intervals equal a histogram
// recorded directly. Run under TSan (memory orders of the writer/reader phaser).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <random>
#include <span>
#include <type_traits>
#include <thread>
#include <vector>

#include "hypergate/core/cache.hpp"
#include "hypergate/metrics/hdr_histogram.hpp"
#include "hypergate/metrics/interval_recorder.hpp"

namespace hypergate::metrics {
namespace {

constexpr std::uint64_t kHighest = 10'000'000'000ULL;  // 10 s in ns
constexpr std::size_t kBurst = 5;                      // values per record_batch() call

std::vector<std::uint64_t> known_values(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::lognormal_distribution<double> latency(9.0, 1.5);  // ~8 us median, long tail
  std::vector<std::uint64_t> v(n);
  for (auto& x : v) x = static_cast<std::uint64_t>(latency(rng));
  v[n / 3] = kHighest * 4;  // one overflow travels through an interval too
  return v;
}

// Called by the writer: returns once some reader has flipped the phase *after* this call began.
// With `readers` reader threads, up to `readers` swaps may be in flight when we read the count, so
// we wait for readers + 1 more completions: the last of them started after our read. Records made
// before the call and after it therefore always land in different intervals.
void wait_for_fresh_swap(const std::atomic<std::uint64_t>& swaps, std::uint64_t readers) {
  // acquire: pairs with the release increment of the swap count in the reader loops.
  const std::uint64_t seen = swaps.load(std::memory_order_acquire);
  while (swaps.load(std::memory_order_acquire) <= seen + readers) std::this_thread::yield();
}

struct ReaderTotals {
  HdrHistogram merged{1, kHighest, 3};
  std::uint64_t counted = 0;
  std::uint64_t non_empty_intervals = 0;
};

TEST(IntervalRecorderStress, OneWriterOneReaderLoseNothingAndCountNothingTwice) {
  constexpr std::size_t kN = 600'000;
  const std::vector<std::uint64_t> values = known_values(kN, 1);
  HdrHistogram direct(1, kHighest, 3);
  for (const std::uint64_t v : values) direct.record(v);

  IntervalRecorder rec(1, kHighest, 3);
  std::atomic<bool> writer_done{false};
  std::atomic<std::uint64_t> swaps{0};
  ReaderTotals totals;

  std::thread reader([&] {
    HdrHistogram interval(1, kHighest, 3);
    bool last = false;
    while (!last) {
      // acquire: pairs with the writer's release store of writer_done; the swap after it sees
      // every record.
      last = writer_done.load(std::memory_order_acquire);
      rec.swap(interval);
      if (interval.total_count() > 0) ++totals.non_empty_intervals;
      totals.counted += interval.total_count();
      EXPECT_EQ(totals.merged.merge(interval), Status::Ok);
      // release: pairs with the acquire-loads in wait_for_fresh_swap() on the writer.
      swaps.fetch_add(1, std::memory_order_release);
    }
  });

  std::thread writer([&] {
    for (std::size_t i = 0; i < kN; ++i) {
      rec.record(values[i]);
      // Force interleaving at a few points: the reader must swap while recording is under way.
      if (i % (kN / 8) == kN / 16) wait_for_fresh_swap(swaps, 1);
    }
    // release: pairs with the acquire-load in the reader loop.
    writer_done.store(true, std::memory_order_release);
  });

  writer.join();
  reader.join();
  EXPECT_EQ(totals.counted, kN);
  EXPECT_EQ(totals.merged.total_count(), kN);
  EXPECT_EQ(totals.merged.overflow_count(), 1u);
  EXPECT_GE(totals.non_empty_intervals, 9u);  // 8 forced swaps split the records into 9 groups
  EXPECT_EQ(totals.merged, direct);
}

TEST(IntervalRecorderStress, MixedRecordKindsWithTwoCompetingReaders) {
  constexpr std::size_t kN = 300'000;
  const std::vector<std::uint64_t> values = known_values(kN, 2);
  // The writer uses all four record kinds; the expected histogram gets the same records directly.
  HdrHistogram direct(1, kHighest, 3);
  auto apply = [&values](auto& target, std::size_t i) {
    const std::uint64_t v = values[i];
    switch (i % 4) {
      case 0: target.record(v); break;
      case 1: target.record_n(v, 3); break;
      case 2: target.record_corrected(v, 1'000'000); break;  // corrects values above 2 ms
      default: {
        const std::size_t n = std::min(kBurst, values.size() - i);
        if constexpr (std::is_same_v<std::remove_cvref_t<decltype(target)>, IntervalRecorder>) {
          target.record_batch(std::span<const std::uint64_t>(values.data() + i, n));
        } else {
          for (std::size_t k = 0; k < n; ++k) target.record(values[i + k]);
        }
      }
    }
  };
  for (std::size_t i = 0; i < kN; ++i) apply(direct, i);

  IntervalRecorder rec(HdrHistogram(1, kHighest, 3));
  std::atomic<bool> writer_done{false};
  std::atomic<std::uint64_t> swaps{0};
  ReaderTotals totals[2];

  auto read_loop = [&](ReaderTotals& mine, bool use_take) {
    HdrHistogram interval(1, kHighest, 3);
    bool last = false;
    while (!last) {
      last = writer_done.load(std::memory_order_acquire);  // acquire: pairs with the writer's release store
      if (use_take) {
        interval = rec.take_interval();
      } else {
        rec.swap(interval);
      }
      if (interval.total_count() > 0) ++mine.non_empty_intervals;
      mine.counted += interval.total_count();
      EXPECT_EQ(mine.merged.merge(interval), Status::Ok);
      swaps.fetch_add(1, std::memory_order_release);  // release: pairs with wait_for_fresh_swap() in the writer
    }
  };
  std::thread reader_a(read_loop, std::ref(totals[0]), false);
  std::thread reader_b(read_loop, std::ref(totals[1]), true);
  std::thread writer([&] {
    for (std::size_t i = 0; i < kN; ++i) {
      apply(rec, i);
      if (i % (kN / 6) == kN / 12) wait_for_fresh_swap(swaps, 2);
    }
    writer_done.store(true, std::memory_order_release);  // release: pairs with the readers' acquire-loads
  });
  writer.join();
  reader_a.join();
  reader_b.join();

  ASSERT_EQ(totals[0].merged.merge(totals[1].merged), Status::Ok);
  EXPECT_EQ(totals[0].counted + totals[1].counted, direct.total_count());
  EXPECT_EQ(totals[0].merged, direct);
  EXPECT_GE(totals[0].non_empty_intervals + totals[1].non_empty_intervals, 7u);  // 6 forced swaps, 7 groups
}

TEST(IntervalRecorderStress, ReaderSwappingFlatOutAccountsForEverySample) {
  // The writer records while a reader swaps as fast as it can (many flips land mid-record); the
  // writer never waits on the reader and every sample is accounted for exactly once.
  constexpr std::size_t kN = 400'000;
  IntervalRecorder rec(1, 1'000'000, 2);  // small layout: swaps are cheap and frequent
  std::atomic<bool> writer_done{false};
  HdrHistogram merged(1, 1'000'000, 2);
  std::uint64_t counted = 0;
  std::thread reader([&] {
    HdrHistogram interval(1, 1'000'000, 2);
    bool last = false;
    while (!last) {
      last = writer_done.load(std::memory_order_acquire);  // acquire: pairs with the writer's release store
      rec.swap(interval);
      counted += interval.total_count();
      EXPECT_EQ(merged.merge(interval), Status::Ok);
    }
  });
  std::thread writer([&] {
    for (std::size_t i = 0; i < kN; ++i) rec.record(i % 1000);
    writer_done.store(true, std::memory_order_release);  // release: pairs with the reader's acquire-load
  });
  writer.join();
  reader.join();
  HdrHistogram direct(1, 1'000'000, 2);
  for (std::size_t i = 0; i < kN; ++i) direct.record(i % 1000);
  EXPECT_EQ(counted, kN);
  EXPECT_EQ(merged, direct);
}

}  // namespace
}  // namespace hypergate::metrics
