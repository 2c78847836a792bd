// HdrHistogram: HdrHistogram-identical layout, precision of percentiles/mean/stddev against exact
// sorted samples (1M samples of several distributions, every digit count), clamping, validation,
// coordinated-omission correction, merge, iteration and .hgrm text; IntervalRecorder on one thread.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <map>
#include <new>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "hypergate/metrics/hdr_histogram.hpp"
#include "hypergate/metrics/interval_recorder.hpp"

// Counts every global operator new in this test executable: recording must not allocate. The
// replacements are noinline so GCC does not pair an inlined malloc with an inlined free and
// report -Wmismatched-new-delete on what is a matched replacement pair.
namespace {
std::atomic<std::uint64_t> g_allocations{0};
}  // namespace

[[gnu::noinline]] void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);  // relaxed: a counter read on this thread
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace hypergate::metrics {
namespace {

constexpr std::uint64_t kHour = HdrHistogram::kDefaultHighest;

double relative_precision(int digits) { return std::pow(10.0, -digits); }

// ------------------------------------------------------------------------------------------------
// Layout: identical to HdrHistogram's
// ------------------------------------------------------------------------------------------------
TEST(HdrHistogramLayout, MatchesHdrHistogramForOneHourInMicrosAndNanos) {
  // HdrHistogram (Java/C): 1 .. 3.6e9 at 3 digits has 22 buckets, 2048 sub-buckets, 23552 counts.
  const HdrHistogram us(1, 3'600'000'000ULL, 3);
  EXPECT_EQ(us.sub_bucket_count(), 2048);
  EXPECT_EQ(us.sub_bucket_half_count(), 1024);
  EXPECT_EQ(us.unit_magnitude(), 0);
  EXPECT_EQ(us.bucket_count(), 22);
  EXPECT_EQ(us.counts_len(), 23552u);
  EXPECT_EQ(us.normalizing_index_offset(), 0);

  const HdrHistogram ns;  // 1 ns .. 1 h, 3 digits
  EXPECT_EQ(ns.lowest_discernible_value(), 1u);
  EXPECT_EQ(ns.highest_trackable_value(), kHour);
  EXPECT_EQ(ns.significant_digits(), 3);
  EXPECT_EQ(ns.bucket_count(), 32);  // 2048 << 31 = 2^42 > 3.6e12 >= 2^41
  EXPECT_EQ(ns.counts_len(), 33u * 1024u);
}

TEST(HdrHistogramLayout, SubBucketCountPerDigits) {
  const std::int32_t expected[] = {32, 256, 2048, 32768, 262144};
  for (int d = 1; d <= 5; ++d) {
    const HdrHistogram h(1, kHour, d);
    EXPECT_EQ(h.sub_bucket_count(), expected[d - 1]) << "digits " << d;
    EXPECT_GE(h.sub_bucket_half_count(), std::pow(10.0, d)) << "digits " << d;
  }
}

TEST(HdrHistogramLayout, EquivalentValueRangesMatchHdrHistogram) {
  // Figures from HdrHistogram's own tests (highest 3.6e9, 3 digits).
  const HdrHistogram h(1, 3'600'000'000ULL, 3);
  EXPECT_EQ(h.size_of_equivalent_value_range(1), 1u);
  EXPECT_EQ(h.size_of_equivalent_value_range(2500), 2u);
  EXPECT_EQ(h.size_of_equivalent_value_range(8191), 4u);
  EXPECT_EQ(h.size_of_equivalent_value_range(8192), 8u);
  EXPECT_EQ(h.size_of_equivalent_value_range(10000), 8u);
  EXPECT_EQ(h.lowest_equivalent_value(10007), 10000u);
  EXPECT_EQ(h.lowest_equivalent_value(10009), 10008u);
  EXPECT_EQ(h.highest_equivalent_value(8180 * 1024), 8183u * 1024 + 1023);
  EXPECT_EQ(h.highest_equivalent_value(8191 * 1024), 8191u * 1024 + 1023);
  EXPECT_EQ(h.highest_equivalent_value(8193 * 1024), 8199u * 1024 + 1023);
  EXPECT_EQ(h.highest_equivalent_value(9995 * 1024), 9999u * 1024 + 1023);
  EXPECT_EQ(h.highest_equivalent_value(10007 * 1024), 10007u * 1024 + 1023);
  EXPECT_EQ(h.highest_equivalent_value(10008 * 1024), 10015u * 1024 + 1023);
  EXPECT_EQ(h.median_equivalent_value(10007), 10004u);
  EXPECT_TRUE(h.values_are_equivalent(10000, 10007));
  EXPECT_FALSE(h.values_are_equivalent(10007, 10008));
}

TEST(HdrHistogramLayout, UnitMagnitudeFromLowestDiscernibleValue) {
  const HdrHistogram h(1000, kHour, 2);  // floor(log2(1000)) = 9
  EXPECT_EQ(h.unit_magnitude(), 9);
  EXPECT_EQ(h.lowest_discernible_value(), 1000u);
  EXPECT_EQ(h.size_of_equivalent_value_range(0), 512u);
  EXPECT_EQ(h.counts_index(0), h.counts_index(511));
  EXPECT_NE(h.counts_index(511), h.counts_index(512));
}

TEST(HdrHistogramLayout, IndexAndValueFromIndexAreInverse) {
  for (int d = 1; d <= 5; ++d) {
    const HdrHistogram h(1, kHour, d);
    std::size_t previous = 0;
    // Every index maps back to the lowest value of its bucket, and indices ascend with value.
    for (std::size_t i = 0; i < h.counts_len(); i += (d >= 4 ? 97 : 1)) {
      const std::uint64_t v = h.value_from_index(i);
      if (v > h.highest_trackable_value()) break;
      ASSERT_EQ(h.counts_index(v), i) << "digits " << d;
      ASSERT_EQ(h.lowest_equivalent_value(v), v);
      ASSERT_EQ(h.counts_index(h.highest_equivalent_value(v)), i);
      if (i > 0) {
        ASSERT_GT(i, previous);
      }
      previous = i;
    }
    EXPECT_LT(h.counts_index(h.highest_trackable_value()), h.counts_len());
  }
}

// A typed sweep over digit counts: every bucket is no wider than v * 10^-digits (and exact below
// the first bucket's end).
class HdrDigits : public ::testing::TestWithParam<int> {};

TEST_P(HdrDigits, BucketWidthWithinPrecision) {
  const int d = GetParam();
  const HdrHistogram h(1, kHour, d);
  std::mt19937_64 rng(1234 + static_cast<unsigned>(d));
  for (int k = 0; k < 200'000; ++k) {
    // Log-uniform over the whole range.
    const int bits = static_cast<int>(rng() % 42);
    const std::uint64_t v = (std::uint64_t{1} << bits) + rng() % (std::uint64_t{1} << bits);
    if (v > kHour) continue;
    const std::uint64_t lo = h.lowest_equivalent_value(v);
    const std::uint64_t hi = h.highest_equivalent_value(v);
    ASSERT_LE(lo, v);
    ASSERT_GE(hi, v);
    ASSERT_LE(static_cast<double>(hi - lo), std::max(0.0, static_cast<double>(v) * relative_precision(d)))
        << "v=" << v << " digits " << d;
    if (v < static_cast<std::uint64_t>(h.sub_bucket_count())) {
      ASSERT_EQ(lo, v);
      ASSERT_EQ(hi, v);
    }
  }
}

TEST_P(HdrDigits, RecordsEveryValueOfASmallRangeExactly) {
  const int d = GetParam();
  HdrHistogram h(1, kHour, d);
  const std::uint64_t n = static_cast<std::uint64_t>(h.sub_bucket_count());
  for (std::uint64_t v = 0; v < n; ++v) h.record(v);
  EXPECT_EQ(h.total_count(), n);
  for (std::uint64_t v = 0; v < n; ++v) ASSERT_EQ(h.count_at_value(v), 1u);
  EXPECT_EQ(h.value_at_percentile(50.0), n / 2 - 1);
  EXPECT_EQ(h.value_at_percentile(100.0), n - 1);
}

INSTANTIATE_TEST_SUITE_P(AllDigits, HdrDigits, ::testing::Values(1, 2, 3, 4, 5),
                         [](const ::testing::TestParamInfo<int>& i) { return "d" + std::to_string(i.param); });

// ------------------------------------------------------------------------------------------------
// Precision against exact sorted values: 1M samples per distribution, every digit count
// ------------------------------------------------------------------------------------------------
enum class Dist { Uniform, Exponential, LogNormal, Bimodal };

const char* name_of(Dist d) {
  switch (d) {
    case Dist::Uniform: return "uniform";
    case Dist::Exponential: return "exponential";
    case Dist::LogNormal: return "lognormal";
    case Dist::Bimodal: return "bimodal";
  }
  return "?";
}

constexpr std::size_t kSamples = 1'000'000;

std::uint64_t to_ns(double x) { return x <= 0.0 ? 0 : static_cast<std::uint64_t>(std::llround(x)); }

// Sorted samples, generated once per distribution with a fixed seed.
const std::vector<std::uint64_t>& samples(Dist d) {
  static std::map<Dist, std::vector<std::uint64_t>> cache;
  auto it = cache.find(d);
  if (it != cache.end()) return it->second;
  std::mt19937_64 rng(42 + static_cast<unsigned>(d));
  std::vector<std::uint64_t> v;
  v.reserve(kSamples);
  switch (d) {
    case Dist::Uniform: {
      std::uniform_int_distribution<std::uint64_t> u(0, 1'000'000'000);
      for (std::size_t i = 0; i < kSamples; ++i) v.push_back(u(rng));
      break;
    }
    case Dist::Exponential: {
      std::exponential_distribution<double> e(1.0 / 50'000.0);  // mean 50 us
      for (std::size_t i = 0; i < kSamples; ++i) v.push_back(to_ns(e(rng)));
      break;
    }
    case Dist::LogNormal: {
      std::lognormal_distribution<double> ln(std::log(20'000.0), 1.5);  // median 20 us, long tail
      for (std::size_t i = 0; i < kSamples; ++i) v.push_back(std::min(to_ns(ln(rng)), kHour));
      break;
    }
    case Dist::Bimodal: {
      // 90% fast path around 2 us, 10% slow path around 1.5 ms.
      std::normal_distribution<double> fast(2'000.0, 150.0);
      std::normal_distribution<double> slow(1'500'000.0, 200'000.0);
      std::bernoulli_distribution is_slow(0.1);
      for (std::size_t i = 0; i < kSamples; ++i) v.push_back(to_ns(is_slow(rng) ? slow(rng) : fast(rng)));
      break;
    }
  }
  std::vector<std::uint64_t> sorted = v;
  std::sort(sorted.begin(), sorted.end());
  return cache.emplace(d, std::move(sorted)).first->second;
}

// HdrHistogram's rank definition: the max(1, ceil(p/100 * N))-th smallest sample.
std::uint64_t exact_percentile(const std::vector<std::uint64_t>& sorted, double p) {
  // The rank as HdrHistogram 2.1.11 computes it: p / 100 * n would make 99.9% of 10^6 rank
  // 999001 (0.999 * 1e6 = 999000.0000000001), p one ulp down times n / 100 gives 999000.
  const double rank = std::ceil(std::nextafter(p, 0.0) * static_cast<double>(sorted.size()) / 100.0);
  const std::size_t r = std::max<std::size_t>(1, static_cast<std::size_t>(rank));
  return sorted[std::min(r, sorted.size()) - 1];
}

struct DistCase {
  Dist dist;
  int digits;
};

class HdrPrecision : public ::testing::TestWithParam<DistCase> {};

TEST_P(HdrPrecision, PercentilesMeanStddevMinMaxWithinConfiguredPrecision) {
  const DistCase c = GetParam();
  const std::vector<std::uint64_t>& sorted = samples(c.dist);
  const double eps = relative_precision(c.digits);

  auto made = HdrHistogram::create(1, kHour, c.digits);
  ASSERT_TRUE(made.ok()) << made.error().message;
  HdrHistogram& h = *made;
  // Record in a shuffled-enough order (sorted order would hide nothing, but be thorough: stride).
  const std::size_t n = sorted.size();
  for (std::size_t i = 0; i < n; ++i) h.record(sorted[(i * 7919) % n]);  // 7919 is prime, n = 10^6

  ASSERT_EQ(h.total_count(), n);
  EXPECT_EQ(h.overflow_count(), 0u);
  EXPECT_EQ(h.min(), sorted.front());
  EXPECT_EQ(h.max(), sorted.back());

  for (const double p : {0.0, 1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 99.0, 99.9, 99.99, 100.0}) {
    const std::uint64_t exact = exact_percentile(sorted, p);
    const std::uint64_t got = h.value_at_percentile(p);
    EXPECT_GE(got, exact) << name_of(c.dist) << " d" << c.digits << " p" << p;
    EXPECT_LE(static_cast<double>(got - exact), static_cast<double>(exact) * eps)
        << name_of(c.dist) << " d" << c.digits << " p" << p << " exact " << exact << " got " << got;
    EXPECT_TRUE(h.values_are_equivalent(got, exact)) << "p" << p;
  }

  long double sum = 0;
  long double sum_sq = 0;
  for (const std::uint64_t v : sorted) {
    sum += static_cast<long double>(v);
    sum_sq += static_cast<long double>(v) * static_cast<long double>(v);
  }
  const double mean = static_cast<double>(sum / n);
  const double mean_sq = static_cast<double>(sum_sq / n);
  const double sd = std::sqrt(std::max(0.0, mean_sq - mean * mean));
  EXPECT_NEAR(h.mean(), mean, mean * eps + 1e-9) << name_of(c.dist) << " d" << c.digits;
  // Each value moves by at most v * eps, so the RMS deviation moves by at most eps * RMS(v).
  EXPECT_NEAR(h.stddev(), sd, std::sqrt(mean_sq) * eps + 1e-6) << name_of(c.dist) << " d" << c.digits;
}

std::vector<DistCase> all_cases() {
  std::vector<DistCase> v;
  for (const Dist d : {Dist::Uniform, Dist::Exponential, Dist::LogNormal, Dist::Bimodal}) {
    for (int digits = 1; digits <= 5; ++digits) v.push_back({d, digits});
  }
  return v;
}

INSTANTIATE_TEST_SUITE_P(Distributions, HdrPrecision, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<DistCase>& i) {
                           return std::string(name_of(i.param.dist)) + "_d" + std::to_string(i.param.digits);
                         });

// ------------------------------------------------------------------------------------------------
// Statistics on small known inputs
// ------------------------------------------------------------------------------------------------
TEST(HdrHistogram, EmptyHistogramReportsZeros) {
  const HdrHistogram h;
  EXPECT_EQ(h.total_count(), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.mean(), 0.0);
  EXPECT_EQ(h.stddev(), 0.0);
  EXPECT_EQ(h.value_at_percentile(50), 0u);
  int steps = 0;
  for ([[maybe_unused]] const PercentileStep& s : h.percentiles()) ++steps;
  EXPECT_EQ(steps, 0);
  for ([[maybe_unused]] const RecordedBucket& b : h.recorded()) ++steps;
  EXPECT_EQ(steps, 0);
}

TEST(HdrHistogram, SmallValuesAreExact) {
  HdrHistogram h;
  for (std::uint64_t v : {1, 2, 3, 4}) h.record(v);
  EXPECT_EQ(h.min(), 1u);
  EXPECT_EQ(h.max(), 4u);
  EXPECT_DOUBLE_EQ(h.mean(), 2.5);
  EXPECT_DOUBLE_EQ(h.stddev(), std::sqrt(1.25));
  EXPECT_EQ(h.value_at_percentile(0), 1u);
  EXPECT_EQ(h.value_at_percentile(25), 1u);
  EXPECT_EQ(h.value_at_percentile(25.0001), 2u);
  EXPECT_EQ(h.value_at_percentile(50), 2u);
  EXPECT_EQ(h.value_at_percentile(75), 3u);
  EXPECT_EQ(h.value_at_percentile(100), 4u);
  EXPECT_EQ(h.value_at_percentile(250), 4u);  // clamped to 100
  EXPECT_EQ(h.value_at_percentile(-3), 1u);   // clamped to 0
  EXPECT_EQ(h.value_at_percentile(std::numeric_limits<double>::quiet_NaN()), 1u);
}

TEST(HdrHistogram, RecordZeroIsAllowed) {
  HdrHistogram h;
  h.record(0);
  h.record(0);
  h.record(5);
  EXPECT_EQ(h.count_at_value(0), 2u);
  EXPECT_EQ(h.counts_index(0), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.value_at_percentile(50), 0u);
  EXPECT_EQ(h.value_at_percentile(100), 5u);
}

TEST(HdrHistogram, RecordNCountsTimesAndZeroCountRecordsNothing) {
  HdrHistogram h;
  h.record_n(1000, 7);
  h.record_n(5, 0);
  EXPECT_EQ(h.total_count(), 7u);
  EXPECT_EQ(h.count_at_value(1000), 7u);
  EXPECT_EQ(h.count_at_value(5), 0u);
  EXPECT_EQ(h.min(), 1000u);
  EXPECT_EQ(h.max(), 1000u);
}

TEST(HdrHistogram, ValuesAboveRangeAreClampedAndCountedAsOverflow) {
  HdrHistogram h(1, 1'000'000, 3);
  const std::uint64_t highest = h.highest_trackable_value();
  h.record(10);
  h.record(highest);
  h.record(highest + 1);
  h.record(std::numeric_limits<std::uint64_t>::max());
  h.record_n(5'000'000, 3);
  EXPECT_EQ(h.total_count(), 7u);
  EXPECT_EQ(h.overflow_count(), 5u);
  EXPECT_EQ(h.max(), highest);
  EXPECT_EQ(h.count_at_value(highest), 6u);
  EXPECT_EQ(h.count_at_value(std::numeric_limits<std::uint64_t>::max()), 6u);  // clamped lookup
  EXPECT_EQ(h.value_at_percentile(100), h.highest_equivalent_value(highest));
  EXPECT_EQ(h.value_at_percentile(10), h.highest_equivalent_value(10));

  // The largest representable range: INT64_MAX at 5 digits still indexes inside the array.
  HdrHistogram wide(1, HdrHistogram::kMaxHighest, 5);
  wide.record(std::numeric_limits<std::uint64_t>::max());
  wide.record(HdrHistogram::kMaxHighest);
  EXPECT_EQ(wide.overflow_count(), 1u);
  EXPECT_EQ(wide.count_at_value(HdrHistogram::kMaxHighest), 2u);
  EXPECT_LT(wide.counts_index(HdrHistogram::kMaxHighest), wide.counts_len());
  EXPECT_GE(wide.value_at_percentile(100), HdrHistogram::kMaxHighest);
}

TEST(HdrHistogram, ResetClearsEverythingButLayout) {
  HdrHistogram h(1, 1'000'000, 2);
  const HdrHistogram fresh = h;
  h.record(7);
  h.record(5'000'000);
  ASSERT_NE(h, fresh);
  h.reset();
  EXPECT_EQ(h, fresh);
  EXPECT_EQ(h.total_count(), 0u);
  EXPECT_EQ(h.overflow_count(), 0u);
  EXPECT_EQ(h.counts_len(), fresh.counts_len());
}

TEST(HdrHistogram, CopiesAreIndependent) {
  HdrHistogram a;
  a.record(42);
  HdrHistogram b = a;
  EXPECT_EQ(a, b);
  b.record(43);
  EXPECT_EQ(a.total_count(), 1u);
  EXPECT_EQ(b.total_count(), 2u);
  a = b;
  EXPECT_EQ(a, b);
}

// ------------------------------------------------------------------------------------------------
// Parameter validation
// ------------------------------------------------------------------------------------------------
TEST(HdrHistogramCreate, RejectsInvalidParameters) {
  struct Bad {
    std::uint64_t lowest, highest;
    int digits;
  };
  for (const Bad b : {Bad{0, 1000, 3}, Bad{1, 1, 3}, Bad{10, 19, 3}, Bad{1, 1000, 0}, Bad{1, 1000, 6},
                      Bad{1, 1000, -1}, Bad{1, HdrHistogram::kMaxHighest + 1, 3},
                      Bad{std::uint64_t{1} << 45, HdrHistogram::kMaxHighest, 5},  // 45 + 17 > 61
                      Bad{std::uint64_t{1} << 62, HdrHistogram::kMaxHighest, 1}}) {
    const auto r = HdrHistogram::create(b.lowest, b.highest, b.digits);
    ASSERT_FALSE(r.ok()) << b.lowest << " " << b.highest << " " << b.digits;
    EXPECT_EQ(r.error().code, Status::InvalidArgument);
    EXPECT_FALSE(r.error().message.empty());
  }
}

TEST(HdrHistogramCreate, AcceptsBoundaryParametersWithSameLayoutAsConstructor) {
  struct Good {
    std::uint64_t lowest, highest;
    int digits;
  };
  for (const Good g : {Good{1, 2, 1}, Good{10, 20, 3}, Good{1, HdrHistogram::kMaxHighest, 5},
                       Good{(std::uint64_t{1} << 45) - 1, HdrHistogram::kMaxHighest, 5}, Good{1000, kHour, 2}}) {
    const auto r = HdrHistogram::create(g.lowest, g.highest, g.digits);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r.value(), HdrHistogram(g.lowest, g.highest, g.digits));
    EXPECT_EQ(r->lowest_discernible_value(), g.lowest);
    EXPECT_EQ(r->highest_trackable_value(), g.highest);
    EXPECT_EQ(r->significant_digits(), g.digits);
  }
}

TEST(HdrHistogramCreate, ConstructorClampsInvalidParametersToAUsableHistogram) {
  HdrHistogram h(0, 1, 9);
  EXPECT_EQ(h.lowest_discernible_value(), 1u);
  EXPECT_EQ(h.highest_trackable_value(), 2u);
  EXPECT_EQ(h.significant_digits(), 5);
  h.record(100);
  EXPECT_EQ(h.overflow_count(), 1u);
  EXPECT_EQ(h.max(), 2u);

  HdrHistogram huge(std::numeric_limits<std::uint64_t>::max(), std::numeric_limits<std::uint64_t>::max(), 0);
  EXPECT_EQ(huge.significant_digits(), 1);
  EXPECT_LE(huge.highest_trackable_value(), HdrHistogram::kMaxHighest);
  EXPECT_TRUE(HdrHistogram::create(huge.lowest_discernible_value(), huge.highest_trackable_value(), 1).ok());
  huge.record(12345);
  EXPECT_EQ(huge.total_count(), 1u);
}

// ------------------------------------------------------------------------------------------------
// Coordinated omission
// ------------------------------------------------------------------------------------------------
TEST(HdrHistogram, RecordCorrectedFillsInTheMissedSamples) {
  HdrHistogram h;
  h.record_corrected(1000, 100);  // 1000 plus the missed 900, 800, ..., 100
  EXPECT_EQ(h.total_count(), 10u);
  for (std::uint64_t v = 100; v <= 1000; v += 100) EXPECT_EQ(h.count_at_value(v), 1u) << v;
  EXPECT_EQ(h.min(), 100u);

  HdrHistogram below;
  below.record_corrected(50, 100);  // shorter than the interval: nothing missed
  below.record_corrected(100, 100);
  below.record_corrected(7, 0);  // interval 0: no correction
  EXPECT_EQ(below.total_count(), 3u);

  // HdrHistogram's classic example: 10000 samples of 1 ms and one 100 s stall at a 10 ms
  // interval gives 10000 + 10000 samples; the corrected p50 is 1 ms, the p75 is 50 s.
  HdrHistogram stall(1, kHour, 3);
  for (int i = 0; i < 10'000; ++i) stall.record_corrected(1'000'000, 10'000'000);
  stall.record_corrected(100'000'000'000ULL, 10'000'000);
  EXPECT_EQ(stall.total_count(), 20'000u);
  EXPECT_TRUE(stall.values_are_equivalent(stall.value_at_percentile(50), 1'000'000));
  EXPECT_NEAR(static_cast<double>(stall.value_at_percentile(75)), 50e9, 50e9 * 1e-3 + 10e6);
  EXPECT_TRUE(stall.values_are_equivalent(stall.value_at_percentile(100), 100'000'000'000ULL));
}

// copy_corrected_for_coordinated_omission() applies the correction after the fact to each bucket's
// highest equivalent value (as HdrHistogram's copyCorrectedForCoordinatedOmission does); for samples
// that are their bucket's highest equivalent value it must equal record_corrected() of the samples.
TEST(HdrHistogram, CorrectedCopyEqualsRecordCorrectedOfTheSameSamples) {
  std::mt19937_64 rng(20261202);
  // Exact range (below sub_bucket_count() every value is its own bucket): the raw samples as they are.
  std::uniform_int_distribution<std::uint64_t> small(1, 2047);
  HdrHistogram raw;
  HdrHistogram expected;
  for (int i = 0; i < 5'000; ++i) {
    const std::uint64_t v = small(rng);
    raw.record(v);
    expected.record_corrected(v, 100);
  }
  const HdrHistogram copy = copy_corrected_for_coordinated_omission(raw, 100);
  EXPECT_GT(copy.total_count(), raw.total_count());
  EXPECT_EQ(copy, expected);

  // Wide range (1 us .. 50 ms, 2 digits): samples taken as their bucket's highest equivalent value.
  std::lognormal_distribution<double> wide(11.0, 1.5);
  HdrHistogram raw_wide(1, kHour, 2);
  HdrHistogram expected_wide(1, kHour, 2);
  for (int i = 0; i < 5'000; ++i) {
    const auto v = raw_wide.highest_equivalent_value(
        static_cast<std::uint64_t>(std::clamp(wide(rng), 1'000.0, 50'000'000.0)));
    raw_wide.record(v);
    expected_wide.record_corrected(v, 250'000);
  }
  const HdrHistogram copy_wide = copy_corrected_for_coordinated_omission(raw_wide, 250'000);
  EXPECT_GT(copy_wide.total_count(), raw_wide.total_count());
  EXPECT_EQ(copy_wide, expected_wide);
  EXPECT_EQ(copy_wide.value_at_percentile(99), expected_wide.value_at_percentile(99));

  // The count it adds is the sum over buckets of count * floor((v - D) / D) for v > D ...
  HdrHistogram known;
  known.record_n(1000, 3);  // 3 x (1000 + 900 .. 100): 30
  known.record_n(150, 2);   // 2 x (150 + nothing: 50 < 100): 2
  known.record_n(40, 5);    // below the interval: 5
  EXPECT_EQ(copy_corrected_for_coordinated_omission(known, 100).total_count(), 37u);
  // ... and interval 0 is a plain copy of the counts.
  EXPECT_EQ(copy_corrected_for_coordinated_omission(known, 0), known);
  EXPECT_EQ(copy_corrected_for_coordinated_omission(HdrHistogram{}, 100).total_count(), 0u);
}

// ------------------------------------------------------------------------------------------------
// Merge
// ------------------------------------------------------------------------------------------------
TEST(HdrHistogramMerge, TwoHalvesEqualTheWhole) {
  const std::vector<std::uint64_t>& s = samples(Dist::LogNormal);
  HdrHistogram whole;
  HdrHistogram first;
  HdrHistogram second;
  for (std::size_t i = 0; i < s.size(); ++i) {
    whole.record(s[i]);
    (i % 3 == 0 ? first : second).record(s[i]);
  }
  second.record(kHour + 5);  // an overflow travels with its histogram
  whole.record(kHour + 5);
  ASSERT_EQ(first.merge(second), Status::Ok);
  EXPECT_EQ(first, whole);
  EXPECT_EQ(first.overflow_count(), 1u);
  EXPECT_EQ(first.min(), whole.min());
  EXPECT_EQ(first.max(), whole.max());
}

TEST(HdrHistogramMerge, EmptyIntoEmptyAndIntoNonEmpty) {
  HdrHistogram a;
  const HdrHistogram empty;
  ASSERT_EQ(a.merge(empty), Status::Ok);
  EXPECT_EQ(a, empty);
  a.record(3);
  const HdrHistogram before = a;
  ASSERT_EQ(a.merge(empty), Status::Ok);
  EXPECT_EQ(a, before);
  HdrHistogram b;
  ASSERT_EQ(b.merge(a), Status::Ok);
  EXPECT_EQ(b, a);
}

TEST(HdrHistogramMerge, DifferentLayoutsMergeWithinPrecision) {
  HdrHistogram coarse(1, kHour, 2);
  HdrHistogram fine(1, 1'000'000'000, 4);
  for (std::uint64_t v = 1; v <= 100'000; v += 7) fine.record(v * 13);
  coarse.record(5);
  ASSERT_EQ(coarse.merge(fine), Status::Ok);
  EXPECT_EQ(coarse.total_count(), fine.total_count() + 1);
  EXPECT_EQ(coarse.min(), 5u);
  EXPECT_EQ(coarse.max(), fine.max());
  for (const double p : {10.0, 50.0, 99.0}) {
    const auto a = static_cast<double>(coarse.value_at_percentile(p));
    const auto b = static_cast<double>(fine.value_at_percentile(p));
    EXPECT_NEAR(a, b, b * 2e-2) << p;
  }
  // Same sub-bucket layout but a shorter range merges index-wise.
  HdrHistogram narrow(1, 1'000'000, 3);
  HdrHistogram wide(1, kHour, 3);
  narrow.record(999'999);
  ASSERT_EQ(wide.merge(narrow), Status::Ok);
  EXPECT_EQ(wide.count_at_value(999'999), 1u);
}

TEST(HdrHistogramMerge, RefusesValuesBeyondRangeAndChangesNothing) {
  HdrHistogram small(1, 1'000'000, 3);
  small.record(10);
  const HdrHistogram before = small;
  HdrHistogram big(1, kHour, 3);
  big.record(2'000'000);
  EXPECT_EQ(small.merge(big), Status::InvalidArgument);
  EXPECT_EQ(small, before);
  // A wider histogram whose values fit is fine.
  HdrHistogram big_but_low(1, kHour, 3);
  big_but_low.record(999);
  EXPECT_EQ(small.merge(big_but_low), Status::Ok);
  EXPECT_EQ(small.total_count(), 2u);
}

// ------------------------------------------------------------------------------------------------
// Iteration and .hgrm text
// ------------------------------------------------------------------------------------------------
TEST(HdrHistogramIteration, PercentilesEndAtHundredWithTheTotalCount) {
  const std::vector<std::uint64_t>& s = samples(Dist::Exponential);
  HdrHistogram h;
  for (const std::uint64_t v : s) h.record(v);
  double last_percentile = -1;
  std::uint64_t last_cumulative = 0;
  std::uint64_t last_value = 0;
  int steps = 0;
  for (const PercentileStep& step : h.percentiles(5)) {
    EXPECT_GE(step.percentile, last_percentile);
    EXPECT_GE(step.cumulative_count, last_cumulative);
    EXPECT_GE(step.value, last_value);
    // The value reached at least the level iterated to.
    EXPECT_GE(100.0 * static_cast<double>(step.cumulative_count) / static_cast<double>(h.total_count()),
              step.percentile - 1e-9);
    EXPECT_EQ(step.count_at_value, h.count_at_value(step.value));
    last_percentile = step.percentile;
    last_cumulative = step.cumulative_count;
    last_value = step.value;
    ++steps;
  }
  EXPECT_EQ(last_percentile, 100.0);
  EXPECT_EQ(last_cumulative, h.total_count());
  EXPECT_EQ(last_value, h.highest_equivalent_value(h.max()));
  EXPECT_GT(steps, 50);  // 5 ticks per half distance down to ~1e-6 of the tail
  EXPECT_LT(steps, 200);
}

TEST(HdrHistogramIteration, SingleValueGivesTheFirstLevelAndTheFinalStep) {
  HdrHistogram h;
  h.record(1234);
  std::vector<PercentileStep> steps;
  for (const PercentileStep& s : h.percentiles(5)) steps.push_back(s);
  ASSERT_EQ(steps.size(), 2u);
  EXPECT_EQ(steps[0].percentile, 0.0);
  EXPECT_EQ(steps[1].percentile, 100.0);
  for (const PercentileStep& s : steps) {
    EXPECT_EQ(s.value, h.highest_equivalent_value(1234));
    EXPECT_EQ(s.cumulative_count, 1u);
  }
}

TEST(HdrHistogramIteration, TicksPerHalfDistanceSetTheLevels) {
  HdrHistogram h;
  for (std::uint64_t v = 1; v <= 1000; ++v) h.record(v);
  std::vector<double> levels;
  for (const PercentileStep& s : h.percentiles(2)) levels.push_back(s.percentile);
  // 2 ticks per half distance: 0, 25, 50, 62.5, 75, 81.25, 87.5, 90.625, ...
  ASSERT_GE(levels.size(), 8u);
  EXPECT_DOUBLE_EQ(levels[0], 0.0);
  EXPECT_DOUBLE_EQ(levels[1], 25.0);
  EXPECT_DOUBLE_EQ(levels[2], 50.0);
  EXPECT_DOUBLE_EQ(levels[3], 62.5);
  EXPECT_DOUBLE_EQ(levels[4], 75.0);
  EXPECT_DOUBLE_EQ(levels[5], 81.25);
  EXPECT_DOUBLE_EQ(levels[6], 87.5);
  EXPECT_DOUBLE_EQ(levels[7], 90.625);
  EXPECT_EQ(levels.back(), 100.0);
  EXPECT_EQ(h.value_at_percentile(62.5), 625u);
}

TEST(HdrHistogramIteration, RecordedBucketsCoverEveryCount) {
  HdrHistogram h(1, kHour, 2);
  std::mt19937_64 rng(7);
  std::exponential_distribution<double> e(1e-5);
  for (int i = 0; i < 100'000; ++i) h.record(to_ns(e(rng)));
  std::uint64_t sum = 0;
  std::size_t last_index = 0;
  bool first = true;
  for (const RecordedBucket& b : h.recorded()) {
    EXPECT_GT(b.count, 0u);
    EXPECT_EQ(b.count, h.count_at_index(b.index));
    EXPECT_EQ(b.lowest_value, h.value_from_index(b.index));
    EXPECT_EQ(b.highest_value, h.highest_equivalent_value(b.lowest_value));
    if (!first) {
      EXPECT_GT(b.index, last_index);
    }
    first = false;
    last_index = b.index;
    sum += b.count;
    EXPECT_EQ(b.cumulative_count, sum);
  }
  EXPECT_EQ(sum, h.total_count());
  EXPECT_EQ(last_index, h.counts_index(h.max()));
}

TEST(HdrHistogramIteration, FormatsAnHgrmTable) {
  HdrHistogram h;
  for (std::uint64_t v = 1; v <= 10'000; ++v) h.record(v * 1000);  // 1 us .. 10 ms in ns
  const std::string text = format_percentile_distribution(h, 5, 1000.0);  // in us
  std::istringstream in(text);
  std::string line;
  std::getline(in, line);
  EXPECT_NE(line.find("Value"), std::string::npos);
  EXPECT_NE(line.find("Percentile"), std::string::npos);
  EXPECT_NE(line.find("TotalCount"), std::string::npos);
  EXPECT_NE(line.find("1/(1-Percentile)"), std::string::npos);
  std::getline(in, line);
  EXPECT_TRUE(line.empty());
  std::vector<std::string> rows;
  while (std::getline(in, line) && line.rfind("#[", 0) != 0) rows.push_back(line);
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows.front(), "       1.000 0.000000000000          1           1.00");
  EXPECT_EQ(rows.back(), "   10002.431 1.000000000000      10000");  // highest equivalent of 10 ms, in us
  EXPECT_EQ(line, "#[Mean    =     5000.505, StdDeviation   =     2886.752]");
  std::getline(in, line);
  EXPECT_EQ(line, "#[Max     =    10002.431, Total count    =        10000]");
  std::getline(in, line);
  EXPECT_EQ(line, "#[Buckets =           32, SubBuckets     =         2048]");
}

// Java's Formatter (so HistogramLogProcessor) rounds the shortest decimal form of a double HALF_UP;
// percentile levels are often ties of that form, where fmt/printf round the binary value to nearest.
TEST(HdrHistogramIteration, HgrmRoundsAsJavasFormatterDoes) {
  HdrHistogram h;
  for (std::uint64_t v = 1; v <= 100'000; ++v) h.record(v);
  h.record(10'000'000);  // one outlier alone in the last bucket: the levels go on past 99.999%
  const std::string text = format_percentile_distribution(h, 2);
  EXPECT_NE(text.find(" 0.999633789063 "), std::string::npos) << text;  // 0.9996337890625 exactly
  EXPECT_EQ(text.find(" 0.999633789062 "), std::string::npos) << text;
  const std::string five = format_percentile_distribution(h, 5);
  EXPECT_NE(five.find(" 0.999780273438 "), std::string::npos) << five;  // nearest to 0.9997802734375
  EXPECT_NE(five.find(" 0.999926757813 "), std::string::npos) << five;
  EXPECT_NE(text.find(" 0.625000000000 "), std::string::npos) << "no tie: unchanged";
  // Values: 2.5 us in us at 3 digits is no tie; 0.0005 ms at 3 digits is ("0.001" in Java).
  HdrHistogram one;
  one.record(500);
  EXPECT_NE(format_percentile_distribution(one, 5, 1e6).find("       0.001 0.000000000000          1"),
            std::string::npos) << format_percentile_distribution(one, 5, 1e6);
}

// ------------------------------------------------------------------------------------------------
// No allocation in steady state
// ------------------------------------------------------------------------------------------------
TEST(HdrHistogramAllocation, RecordingQueryingAndSwappingDoNotAllocate) {
  HdrHistogram h;
  HdrHistogram other;
  IntervalRecorder rec;
  HdrHistogram interval;
  const std::uint64_t burst[] = {10, 20, 30, 40};
  other.record(5);
  const std::uint64_t before = g_allocations.load(std::memory_order_relaxed);
  std::uint64_t sink = 0;
  for (std::uint64_t i = 0; i < 100'000; ++i) {
    h.record(i * 977);
    h.record_n(i, 2);
    h.record_corrected(i % 5000, 1000);
    h.record(~i);  // overflow
    rec.record(i);
    rec.record_n(i, 3);
    rec.record_batch(burst);
    if (i % 1000 == 0) {
      rec.swap(interval);  // same layout: storage is exchanged, not copied
      sink += interval.total_count() + h.value_at_percentile(99.9);
      ASSERT_EQ(h.merge(other), Status::Ok);
      for (const PercentileStep& s : h.percentiles(5)) sink += s.cumulative_count;
      for (const RecordedBucket& b : h.recorded()) sink += b.count;
      h.reset();
    }
  }
  const std::uint64_t after = g_allocations.load(std::memory_order_relaxed);
  EXPECT_EQ(after, before);
  EXPECT_GT(sink, 0u);
  // The counter is live: a copy allocates its counts array.
  const HdrHistogram copy = h;
  EXPECT_GT(g_allocations.load(std::memory_order_relaxed), after);
  EXPECT_EQ(copy, h);
}

// ------------------------------------------------------------------------------------------------
// IntervalRecorder on one thread (the concurrent tests are in tests/stress)
// ------------------------------------------------------------------------------------------------
TEST(IntervalRecorder, EachIntervalHoldsWhatWasRecordedSinceThePreviousSwap) {
  IntervalRecorder rec(1, kHour, 3);
  HdrHistogram out(1, kHour, 3);
  rec.record(10);
  rec.record_n(20, 4);
  rec.swap(out);
  EXPECT_EQ(out.total_count(), 5u);
  EXPECT_EQ(out.count_at_value(20), 4u);

  rec.record_corrected(300, 100);  // 300, 200, 100
  rec.swap(out);
  EXPECT_EQ(out.total_count(), 3u);
  EXPECT_EQ(out.count_at_value(10), 0u);
  EXPECT_EQ(out.min(), 100u);

  rec.swap(out);  // nothing recorded
  EXPECT_EQ(out.total_count(), 0u);

  const std::uint64_t burst[] = {1, 2, 3, 3'000'000'000'000'000ULL};
  rec.record_batch(burst);
  rec.record_batch({});
  rec.swap(out);
  EXPECT_EQ(out.total_count(), 4u);
  EXPECT_EQ(out.overflow_count(), 1u);
  EXPECT_EQ(out.count_at_value(3), 1u);

  for (int i = 0; i < 5; ++i) {  // both slots come round again, clean
    rec.record(static_cast<std::uint64_t>(1000 + i));
    HdrHistogram taken = rec.take_interval();
    EXPECT_EQ(taken.total_count(), 1u);
    EXPECT_EQ(taken.min(), static_cast<std::uint64_t>(1000 + i));
  }
}

TEST(IntervalRecorder, SwapIntoADifferentLayoutCopies) {
  IntervalRecorder rec(HdrHistogram(1, 1'000'000, 2));
  HdrHistogram out(1, kHour, 5);
  rec.record(5'000'000);  // clamped by the recorder's layout
  rec.swap(out);
  EXPECT_EQ(out.highest_trackable_value(), 1'000'000u);
  EXPECT_EQ(out.significant_digits(), 2);
  EXPECT_EQ(out.overflow_count(), 1u);
  rec.record(7);
  rec.swap(out);  // now same layout: storage swapped
  EXPECT_EQ(out.total_count(), 1u);
  EXPECT_EQ(out.max(), 7u);

  // A moved-from histogram has no storage: it is copied into, never handed to the writer.
  HdrHistogram taken = std::move(out);
  EXPECT_EQ(taken.max(), 7u);
  rec.record(8);
  rec.swap(out);  // NOLINT(bugprone-use-after-move): assigning to a moved-from object is allowed
  EXPECT_EQ(out.total_count(), 1u);
  rec.record(9);
  rec.swap(out);
  rec.record(10);
  rec.swap(out);  // both recorder slots have been through a swap with `out`
  EXPECT_EQ(out.total_count(), 1u);
  EXPECT_EQ(out.max(), 10u);
}

}  // namespace
}  // namespace hypergate::metrics
