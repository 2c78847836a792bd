// Built-in validators: LengthBounds, SequenceCheck, KeyFilter, RateLimiter.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "hypergate/route/key_filter.hpp"
#include "hypergate/route/length_bounds.hpp"
#include "hypergate/route/rate_limiter.hpp"
#include "hypergate/route/sequence_check.hpp"

namespace hypergate::route {
namespace {

Message msg(std::string_view payload, std::uint64_t sequence = 0, std::uint16_t source = 0) {
  Message m;
  m.set_payload(payload.data(), payload.size());
  m.set_key(payload);
  m.sequence = sequence;
  m.source_id = source;
  return m;
}
Message keyed(std::string_view key, std::uint64_t t) {
  Message m = msg(key);
  m.rx_tsc = t;
  return m;
}

TEST(LengthBounds, InclusiveBoundsWithOneReasonEach) {
  LengthBounds v(3, 5);
  EXPECT_EQ(v.check(msg("ab")).reason(), LengthBounds::kTooShort);
  EXPECT_FALSE(v.check(msg("ab")).passed());
  EXPECT_TRUE(v.check(msg("abc")).passed());
  EXPECT_TRUE(v.check(msg("abcde")).passed());
  EXPECT_EQ(v.check(msg("abcdef")).reason(), LengthBounds::kTooLong);
  EXPECT_EQ(LengthBounds::kReasons[LengthBounds::kTooLong], "too_long");
  EXPECT_TRUE(LengthBounds().check(msg("")).passed()) << "defaults accept everything";
}

TEST(SequenceCheck, PassesInOrderRejectsOldAndReportsGapRanges) {
  SequenceCheck<> v;
  EXPECT_TRUE(v.check(msg("a", 100)).passed());  // learns 100
  EXPECT_TRUE(v.check(msg("a", 101)).passed());
  EXPECT_EQ(v.expected(0), 102u);
  EXPECT_EQ(v.check(msg("a", 101)).reason(), 0u) << "duplicate is sequence_old";
  EXPECT_FALSE(v.check(msg("a", 50)).passed());
  EXPECT_TRUE(v.check(msg("a", 105)).passed());  // gap 102..104
  EXPECT_TRUE(v.check(msg("a", 106)).passed());
  EXPECT_TRUE(v.check(msg("a", 110)).passed());  // gap 107..109
  PipelineCounters c;
  v.report(c);
  EXPECT_EQ(c.gaps, 2u);
  EXPECT_EQ(c.missing, 6u);
  ASSERT_EQ(c.recent_gaps.size(), 2u);
  EXPECT_EQ(c.recent_gaps[0].first_missing, 102u);
  EXPECT_EQ(c.recent_gaps[0].last_missing, 104u);
  EXPECT_EQ(c.recent_gaps[1].first_missing, 107u);
  EXPECT_EQ(c.recent_gaps[1].last_missing, 109u);
  EXPECT_EQ(SequenceCheck<>::kReasons[0], "sequence_old");
}

TEST(SequenceCheck, SourcesAreIndependentAndOutOfRangeSourcesAreRejected) {
  SequenceCheck<4> v(1);  // first_expected = 1: a first message at 3 is a gap 1..2
  EXPECT_TRUE(v.check(msg("a", 3, 1)).passed());
  EXPECT_TRUE(v.check(msg("a", 1, 2)).passed());
  EXPECT_TRUE(v.check(msg("a", 2, 2)).passed());
  EXPECT_FALSE(v.check(msg("a", 2, 1)).passed());
  EXPECT_EQ(v.check(msg("a", 1, 4)).reason(), 1u) << "source id 4 is outside a 4-source table";
  EXPECT_TRUE(v.check(msg("a", 0, 4)).passed()) << "sequence 0 means none: unchecked";
  PipelineCounters c;
  v.report(c);
  ASSERT_EQ(c.recent_gaps.size(), 1u);
  EXPECT_EQ(c.recent_gaps[0].source_id, 1u);
  EXPECT_EQ(c.recent_gaps[0].first_missing, 1u);
  EXPECT_EQ(c.recent_gaps[0].last_missing, 2u);
}

TEST(SequenceCheck, RingKeepsTheMostRecentGapsOldestFirst) {
  SequenceCheck<1, 4> v;
  std::uint64_t s = 1;
  EXPECT_TRUE(v.check(msg("a", s)).passed());
  for (int i = 0; i < 10; ++i) {
    s += 3;  // skip two each time
    EXPECT_TRUE(v.check(msg("a", s)).passed());
  }
  PipelineCounters c;
  v.report(c);
  EXPECT_EQ(c.gaps, 10u);
  EXPECT_EQ(c.missing, 20u);
  ASSERT_EQ(c.recent_gaps.size(), 4u);
  // gap k (0-based) covers [3k + 2, 3k + 3]; the last four are k = 6..9
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(c.recent_gaps[i].first_missing, 3 * (6 + i) + 2);
    EXPECT_EQ(c.recent_gaps[i].last_missing, 3 * (6 + i) + 3);
  }
}

TEST(SequenceCheck, DisabledPassesEverything) {
  SequenceCheck<> v(0, false);
  EXPECT_TRUE(v.check(msg("a", 5)).passed());
  EXPECT_TRUE(v.check(msg("a", 1)).passed());
}

TEST(KeyFilter, DenyAllowAndBoth) {
  KeyFilter deny({}, {"EVIL", "BAD"});
  EXPECT_EQ(deny.check(msg("EVIL")).reason(), KeyFilter::kDenied);
  EXPECT_TRUE(deny.check(msg("GOOD")).passed());
  EXPECT_TRUE(deny.check(msg("EVI")).passed()) << "exact keys, not prefixes";

  KeyFilter allow({"AAPL", "MSFT"}, {});
  EXPECT_TRUE(allow.check(msg("AAPL")).passed());
  EXPECT_EQ(allow.check(msg("IBM")).reason(), KeyFilter::kNotAllowed);

  KeyFilter both({"AAPL", "MSFT"}, {"MSFT"});
  EXPECT_TRUE(both.check(msg("AAPL")).passed());
  EXPECT_EQ(both.check(msg("MSFT")).reason(), KeyFilter::kDenied) << "deny wins";

  EXPECT_TRUE(KeyFilter().check(msg("anything")).passed());
}

TEST(KeyFilter, AHashMatchAloneIsNotEnough) {
  KeyFilter allow({"AAPL"}, {"EVIL"});
  Message forged = msg("IBM");
  forged.key_hash = hash_bytes("AAPL");  // same hash, other bytes: must still not be allowed
  EXPECT_EQ(allow.check(forged).reason(), KeyFilter::kNotAllowed);
  Message evil_alias = msg("NICE");
  evil_alias.key_hash = hash_bytes("EVIL");
  EXPECT_EQ(allow.check(evil_alias).reason(), KeyFilter::kNotAllowed);
}

TEST(KeyFilter, ManyKeys) {
  std::vector<std::string> allow;
  for (int i = 0; i < 5000; ++i) allow.push_back("SYM" + std::to_string(i));
  KeyFilter f(allow, {});
  EXPECT_EQ(f.size(), 5000u);
  for (int i = 0; i < 5000; i += 7) {
    const std::string k = "SYM" + std::to_string(i);
    EXPECT_TRUE(f.check(msg(k)).passed()) << k;
  }
  EXPECT_FALSE(f.check(msg("SYM5000")).passed());
}

RateLimiter::Config limit(double rate, std::uint32_t burst, std::size_t table = 64) {
  RateLimiter::Config c;
  c.rate_per_second = rate;
  c.burst = burst;
  c.table_size = table;
  c.ticks_per_ns = 1.0;  // rx_tsc in nanoseconds for these tests
  return c;
}

TEST(RateLimiter, AdmitsABurstThenRefillsAtTheRate) {
  RateLimiter r(limit(1000, 3));  // 1 per ms, burst 3
  const std::uint64_t t0 = 1'000'000'000;
  EXPECT_TRUE(r.check(keyed("A", t0)).passed());
  EXPECT_TRUE(r.check(keyed("A", t0)).passed());
  EXPECT_TRUE(r.check(keyed("A", t0)).passed());
  EXPECT_FALSE(r.check(keyed("A", t0)).passed());
  EXPECT_FALSE(r.check(keyed("A", t0 + 999'999)).passed()) << "not yet one token back";
  EXPECT_TRUE(r.check(keyed("A", t0 + 1'000'000)).passed()) << "one token after 1 ms";
  EXPECT_FALSE(r.check(keyed("A", t0 + 1'000'000)).passed());
  EXPECT_TRUE(r.check(keyed("B", t0)).passed()) << "keys have their own buckets";
  // After a long pause the bucket is full again but never above `burst`.
  const std::uint64_t t1 = t0 + 10'000'000'000;
  int admitted = 0;
  for (int i = 0; i < 10; ++i) admitted += r.check(keyed("A", t1)).passed();
  EXPECT_EQ(admitted, 3);
}

TEST(RateLimiter, SteadyRateIsAdmittedExactly) {
  RateLimiter r(limit(100, 1));  // one per 10 ms
  int admitted = 0;
  for (std::uint64_t t = 0; t < 1'000'000'000; t += 1'000'000) admitted += r.check(keyed("K", t + 1)).passed();
  EXPECT_EQ(admitted, 100);
}

TEST(RateLimiter, FullTableSharesTheOverflowBucketAndRecyclesQuietKeys) {
  RateLimiter r(limit(1, 1, 16));  // 16 buckets, 1 message per second per key
  const std::uint64_t t0 = 5'000'000'000;
  for (int i = 0; i < 16; ++i) EXPECT_TRUE(r.check(keyed("K" + std::to_string(i), t0)).passed());
  EXPECT_EQ(r.untracked(), 0u);
  // Every bucket is busy until t0 + 1 s: new keys share the overflow bucket (one message, then limited).
  EXPECT_TRUE(r.check(keyed("X1", t0)).passed());
  EXPECT_FALSE(r.check(keyed("X2", t0)).passed());
  EXPECT_EQ(r.untracked(), 2u);
  // One second later every bucket is full again, hence recyclable: a new key gets its own.
  EXPECT_TRUE(r.check(keyed("Y", t0 + 2'000'000'000)).passed());
  EXPECT_EQ(r.untracked(), 2u);
  EXPECT_FALSE(r.check(keyed("Y", t0 + 2'000'000'000)).passed());
}

TEST(RateLimiter, DisabledPassesAndMessagesWithoutTimestampUseTheBurstClock) {
  RateLimiter off;
  EXPECT_FALSE(off.enabled());
  EXPECT_TRUE(off.check(keyed("A", 1)).passed());
  RateLimiter::Config c;
  c.rate_per_second = 0.001;  // one per ~17 minutes: the second message is always over the limit
  c.burst = 1;
  RateLimiter r(c);
  r.begin_burst();
  EXPECT_TRUE(r.check(keyed("A", 0)).passed());
  EXPECT_FALSE(r.check(keyed("A", 0)).passed());
}

}  // namespace
}  // namespace hypergate::route

namespace hypergate::route {
namespace {

// The gap ring is read by the stats thread while the worker records gaps: every snapshot must hold
// only complete, correctly ordered gaps (no torn entries).
TEST(SequenceCheck, GapsReadFromAnotherThreadAreNeverTorn) {
  SequenceCheck<1, 4> v;
  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> bad{0};
  std::atomic<std::uint64_t> snapshots{0};
  std::thread reader([&] {
    while (!done.load(std::memory_order_acquire)) {
      PipelineCounters c;
      v.report(c);
      std::uint64_t prev_first = 0;
      for (const SequenceGap& g : c.recent_gaps) {
        // Every gap the writer records is [4k + 2, 4k + 4] for some k: three missing numbers.
        if (g.last_missing != g.first_missing + 2 || (g.first_missing - 2) % 4 != 0 || g.first_missing <= prev_first) {
          bad.fetch_add(1, std::memory_order_relaxed);
        }
        prev_first = g.first_missing;
      }
      snapshots.fetch_add(1, std::memory_order_relaxed);
    }
  });
  std::uint64_t s = 1;
  Message m;
  m.sequence = s;
  ASSERT_TRUE(v.check(m).passed());
  for (int i = 0; i < 200'000; ++i) {
    s += 4;  // skips three numbers each time
    m.sequence = s;
    if (!v.check(m).passed()) bad.fetch_add(1);
  }
  // Let the reader take at least one snapshot after the last write.
  const std::uint64_t seen = snapshots.load();
  while (snapshots.load() < seen + 2) std::this_thread::yield();
  done.store(true, std::memory_order_release);
  reader.join();
  EXPECT_EQ(bad.load(), 0u);
  PipelineCounters c;
  v.report(c);
  EXPECT_EQ(c.gaps, 200'000u);
  EXPECT_EQ(c.missing, 600'000u);
  ASSERT_EQ(c.recent_gaps.size(), 4u);
  EXPECT_EQ(c.recent_gaps.back().last_missing, s - 1);
}

}  // namespace
}  // namespace hypergate::route
