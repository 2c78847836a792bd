#pragma once
// HdrHistogram: a High Dynamic Range latency histogram with the bucket layout of Gil Tene's
// HdrHistogram (Java/C), so that a HyperGate histogram can be encoded in the V2 form
// (cookie 0x1c849303) that HdrHistogram's own tools read.
//
// GUARANTEES
// - Precision: values are exact to within 10^-digits relative. Precisely: a value
//   v >= sub_bucket_half_count() << unit_magnitude() lands in a bucket of width at most
//   v / sub_bucket_half_count() <= v * 10^-digits; smaller values land in buckets of width
//   2^unit_magnitude() <= lowest_discernible_value() (width 1, i.e. exact, for the default lowest 1).
//   Every value the histogram reports for v (lowest/highest/median equivalent, percentiles) lies in
//   v's bucket.
// - record(), record_n() are O(1), noexcept, allocation-free and branch-light: an OR, a
//   leading-zero count, two shifts, an increment and the min/max update. The whole counts array is
//   allocated once, at construction.
// - Values above highest_trackable_value() are clamped to it and counted in overflow_count(); they
//   still count in total_count(). record(0) is allowed (value 0 has its own exact bucket).
//   No input value is undefined behaviour.
// - min() and max() are the exact extreme values recorded (after clamping); HdrHistogram reports
//   them rounded to their bucket, so value_at_percentile(100) may exceed max() by < one bucket width.
// - Threading: a histogram is a plain value with no synchronisation; exactly one thread records
//   into it at a time. For one writer and a concurrent reader use IntervalRecorder.
// - Copyable and movable. A moved-from histogram may only be assigned to or destroyed.
//
// HOW IT DIFFERS FROM HdrHistogram
// - Counts are uint64 (HdrHistogram's `Histogram`), never auto-resized; the range is fixed.
// - Parameter errors: create() returns an Error; the constructor clamps to the nearest valid
//   parameters (it cannot fail), which suits compile-time constants.
//
// IMPLEMENTATION DETAILS (identical to HdrHistogram, normalizing index offset 0)
//   sub_bucket_count      = 2^ceil(log2(2 * 10^digits))        32, 256, 2048, 32768, 262144
//   sub_bucket_half_count = sub_bucket_count / 2               >= 10^digits
//   unit_magnitude        = floor(log2(lowest_discernible_value))
//   bucket_count          = buckets needed so that (sub_bucket_count << unit) << (bucket_count-1)
//                           exceeds highest_trackable_value
//   counts_len            = (bucket_count + 1) * sub_bucket_half_count
//
//   counts: | bucket 0: sub-buckets 0..count-1 (width 2^unit) | bucket 1: upper half, width 2^(unit+1) | ...
//           '------------ 2 * half_count slots --------------'  '---------- half_count slots ----------'
//   Bucket b > 0 only stores its upper half: its lower half is covered by bucket b-1 at double
//   resolution. For a value v:
//     bucket    = (64 - unit - (half_mag + 1)) - clz(v | sub_bucket_mask)
//     sub       = v >> (bucket + unit)                        in [half_count, count) for bucket > 0
//     index     = ((bucket + 1) << half_mag) + (sub - half_count)
#include <algorithm>
#include <cassert>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "hypergate/core/status.hpp"

namespace hypergate::metrics {

class HdrHistogram;

/// One row of a percentile iteration (HdrHistogram's PercentileIterator): the level iterated to,
/// the value (highest equivalent value of the bucket where the level was reached) and the
/// cumulative count up to and including that bucket.
struct PercentileStep {
  std::uint64_t value = 0;
  double percentile = 0.0;            // 0..100, the level iterated to
  std::uint64_t cumulative_count = 0;
  std::uint64_t count_at_value = 0;   // count of the bucket holding `value`
};

/// One non-empty bucket of a recorded-values iteration.
struct RecordedBucket {
  std::size_t index = 0;                  // index into the counts array
  std::uint64_t lowest_value = 0;         // lowest value equivalent to the bucket
  std::uint64_t highest_value = 0;        // highest value equivalent to the bucket
  std::uint64_t count = 0;
  std::uint64_t cumulative_count = 0;     // including this bucket
};

/// Steps through percentile levels with `ticks_per_half_distance` reports per halving of the
/// distance to 100% (HdrHistogram's percentiles(5) for .hgrm output), then a final step at 100%.
/// Cold path; the histogram must outlive the iterator and not change while it is used.
class PercentileCursor {
 public:
  PercentileCursor(const HdrHistogram& h, int ticks_per_half_distance) noexcept;
  /// Advances to the next step; false when the iteration is over (immediately if empty).
  [[nodiscard]] bool next() noexcept;
  [[nodiscard]] const PercentileStep& step() const noexcept { return step_; }

 private:
  const HdrHistogram* h_;
  std::int64_t ticks_per_half_distance_;
  std::size_t index_ = 0;
  bool fresh_ = true;                 // index_'s count not yet added to cumulative_
  bool reached_last_ = false;
  std::uint64_t cumulative_ = 0;
  double level_ = 0.0;
  PercentileStep step_{};
};

/// Steps through the non-empty buckets in ascending value order. Same lifetime rule as above.
class RecordedCursor {
 public:
  explicit RecordedCursor(const HdrHistogram& h) noexcept : h_(&h) {}
  [[nodiscard]] bool next() noexcept;
  [[nodiscard]] const RecordedBucket& step() const noexcept { return step_; }

 private:
  const HdrHistogram* h_;
  std::size_t next_index_ = 0;
  std::uint64_t cumulative_ = 0;
  RecordedBucket step_{};
};

/// Adapts a cursor (next()/step()) to a range usable in range-for.
template <class Cursor>
class CursorRange {
  static_assert(requires(Cursor& c) {
    { c.next() } -> std::same_as<bool>;
    c.step();
  }, "a cursor advances with bool next() and exposes the current element as step()");
  static_assert(std::is_nothrow_copy_constructible_v<Cursor>, "ranges are built on the stack, noexcept");

 public:
  explicit CursorRange(Cursor cursor) noexcept : cursor_(cursor) {}

  class iterator {
   public:
    using value_type = std::remove_cvref_t<decltype(std::declval<Cursor&>().step())>;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(Cursor* c) noexcept : c_(c), done_(!c->next()) {}
    const value_type& operator*() const noexcept { return c_->step(); }
    const value_type* operator->() const noexcept { return &c_->step(); }
    iterator& operator++() noexcept {
      done_ = !c_->next();
      return *this;
    }
    void operator++(int) noexcept { ++*this; }
    bool operator==(std::default_sentinel_t) const noexcept { return done_; }

   private:
    Cursor* c_ = nullptr;
    bool done_ = true;
  };

  /// Single pass: begin() may be called once.
  [[nodiscard]] iterator begin() noexcept { return iterator(&cursor_); }
  [[nodiscard]] std::default_sentinel_t end() const noexcept { return {}; }

 private:
  Cursor cursor_;
};

class HdrHistogram {
 public:
  /// One hour in nanoseconds: the default highest trackable value.
  static constexpr std::uint64_t kDefaultHighest = 3'600'000'000'000ULL;
  static constexpr int kMinDigits = 1;
  static constexpr int kMaxDigits = 5;
  /// HdrHistogram stores values as signed 64-bit; keep that range so encodings round-trip.
  static constexpr std::uint64_t kMaxHighest =
      static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

  /// Validates the parameters (the rules of HdrHistogram): lowest >= 1, highest >= 2 * lowest,
  /// highest <= INT64_MAX, 1 <= digits <= 5, and lowest small enough that digits of precision fit
  /// in 64 bits above it.
  [[nodiscard]] static Result<HdrHistogram> create(std::uint64_t lowest_discernible_value = 1,
                                                   std::uint64_t highest_trackable_value = kDefaultHighest,
                                                   int significant_digits = 3);

  /// Same layout as create(); invalid parameters are clamped to the nearest valid ones (never
  /// fails). Allocates the counts array (counts_len() * 8 bytes; 264 KiB for the defaults).
  explicit HdrHistogram(std::uint64_t lowest_discernible_value = 1,
                        std::uint64_t highest_trackable_value = kDefaultHighest, int significant_digits = 3);

  // ------------------------------------------------------------------------------ recording (hot)
  /// Records one value. Values above highest_trackable_value() are clamped and counted as overflow.
  void record(std::uint64_t value) noexcept { record_n(value, 1); }

  /// Records `count` occurrences of `value` (count 0 records nothing).
  void record_n(std::uint64_t value, std::uint64_t count) noexcept {
    if (value > highest_trackable_) [[unlikely]] {
      value = highest_trackable_;
      overflow_ += count;
    }
    const std::size_t i = counts_index(value);
    assert(i < counts_.size());
    counts_[i] += count;
    total_ += count;
    // Branch-free min/max (cmov): the common case changes neither.
    min_ = count != 0 ? std::min(min_, value) : min_;
    max_ = count != 0 ? std::max(max_, value) : max_;
  }

  /// Records `value` and, as HdrHistogram's recordValueWithExpectedInterval does for coordinated
  /// omission, the samples that a stalled measurement loop missed: value - k * interval for every
  /// k >= 1 while that is >= interval. interval 0 disables correction. Costs O(value / interval)
  /// records (value after clamping), so pick the interval accordingly.
  void record_corrected(std::uint64_t value, std::uint64_t expected_interval) noexcept {
    record(value);
    value = std::min(value, highest_trackable_);
    if (expected_interval == 0 || value <= expected_interval) return;
    for (std::uint64_t missing = value - expected_interval; missing >= expected_interval;
         missing -= expected_interval) {
      record(missing);
    }
  }

  /// Adds every count of `other`. If other's max exceeds this highest_trackable_value(), nothing is
  /// changed and InvalidArgument is returned. Same unit magnitude and sub-bucket count: an exact,
  /// index-wise add. Otherwise each of other's buckets is re-recorded at its lowest equivalent
  /// value (as HdrHistogram's add() does). min/max/overflow combine exactly either way.
  [[nodiscard]] Status merge(const HdrHistogram& other) noexcept;

  /// Clears all counts, min/max and overflow; keeps the layout and the allocation.
  void reset() noexcept;

  // ------------------------------------------------------------------------------ statistics (cold)
  [[nodiscard]] std::uint64_t total_count() const noexcept { return total_; }
  /// How many recorded values were above highest_trackable_value() (and clamped to it).
  [[nodiscard]] std::uint64_t overflow_count() const noexcept { return overflow_; }
  /// Exact smallest / largest recorded value; 0 when empty.
  [[nodiscard]] std::uint64_t min() const noexcept { return total_ == 0 ? 0 : min_; }
  [[nodiscard]] std::uint64_t max() const noexcept { return total_ == 0 ? 0 : max_; }
  /// Mean and standard deviation over the buckets' median equivalent values, as HdrHistogram
  /// computes them: mean within 10^-digits relative of the exact mean; |stddev - exact| within
  /// 10^-digits * sqrt(mean of squares). 0 when empty.
  [[nodiscard]] double mean() const noexcept;
  [[nodiscard]] double stddev() const noexcept;
  /// HdrHistogram's (2.1.11) getValueAtPercentile: the highest equivalent value of the first bucket
  /// at which the cumulative count reaches max(1, ceil(p' * total / 100)), p' being p one ulp
  /// towards 0. p is clamped to [0, 100] (NaN counts as 0). 0 when empty. (For p == 0 exactly,
  /// HdrHistogram returns the bucket's lowest equivalent value instead; same bucket.)
  [[nodiscard]] std::uint64_t value_at_percentile(double percentile) const noexcept;
  /// Count in the bucket equivalent to `value` (clamped like record()).
  [[nodiscard]] std::uint64_t count_at_value(std::uint64_t value) const noexcept {
    return counts_[counts_index(std::min(value, highest_trackable_))];
  }

  /// Percentile iteration for printing (.hgrm): `for (const PercentileStep& s : h.percentiles(5))`.
  [[nodiscard]] CursorRange<PercentileCursor> percentiles(int ticks_per_half_distance = 5) const noexcept {
    return CursorRange<PercentileCursor>(PercentileCursor(*this, ticks_per_half_distance));
  }
  /// Iteration over non-empty buckets: `for (const RecordedBucket& b : h.recorded())`.
  [[nodiscard]] CursorRange<RecordedCursor> recorded() const noexcept {
    return CursorRange<RecordedCursor>(RecordedCursor(*this));
  }

  // ------------------------------------------------------------------------------ layout (for encoders)
  [[nodiscard]] std::uint64_t lowest_discernible_value() const noexcept { return lowest_discernible_; }
  [[nodiscard]] std::uint64_t highest_trackable_value() const noexcept { return highest_trackable_; }
  [[nodiscard]] int significant_digits() const noexcept { return digits_; }
  [[nodiscard]] std::int32_t normalizing_index_offset() const noexcept { return 0; }
  [[nodiscard]] std::int32_t unit_magnitude() const noexcept { return unit_magnitude_; }
  [[nodiscard]] std::int32_t sub_bucket_count() const noexcept { return sub_bucket_count_; }
  [[nodiscard]] std::int32_t sub_bucket_half_count() const noexcept { return sub_bucket_half_count_; }
  [[nodiscard]] std::int32_t bucket_count() const noexcept { return bucket_count_; }
  [[nodiscard]] std::size_t counts_len() const noexcept { return counts_.size(); }
  /// Precondition: i < counts_len(); out-of-range i returns 0.
  [[nodiscard]] std::uint64_t count_at_index(std::size_t i) const noexcept {
    return i < counts_.size() ? counts_[i] : 0;
  }
  /// Lowest value of bucket i (HdrHistogram's valueFromIndex).
  [[nodiscard]] std::uint64_t value_from_index(std::size_t i) const noexcept {
    std::int32_t bucket = static_cast<std::int32_t>(i >> sub_bucket_half_count_magnitude_) - 1;
    std::uint64_t sub = (i & static_cast<std::size_t>(sub_bucket_half_count_ - 1)) +
                        static_cast<std::uint64_t>(sub_bucket_half_count_);
    if (bucket < 0) {
      sub -= static_cast<std::uint64_t>(sub_bucket_half_count_);
      bucket = 0;
    }
    return sub << (bucket + unit_magnitude_);
  }
  /// Index of the bucket holding `value`. Precondition: value <= highest_trackable_value().
  [[nodiscard]] std::size_t counts_index(std::uint64_t value) const noexcept {
    const std::int32_t bucket = bucket_index(value);
    const std::uint64_t sub = value >> (bucket + unit_magnitude_);
    return (static_cast<std::size_t>(bucket + 1) << sub_bucket_half_count_magnitude_) +
           static_cast<std::size_t>(sub) - static_cast<std::size_t>(sub_bucket_half_count_);
  }

  // ------------------------------------------------------------------------------ equivalence
  /// Width of the bucket holding `value` (HdrHistogram's sizeOfEquivalentValueRange).
  [[nodiscard]] std::uint64_t size_of_equivalent_value_range(std::uint64_t value) const noexcept {
    const std::int32_t bucket = bucket_index(value);
    const std::uint64_t sub = value >> (bucket + unit_magnitude_);
    const std::int32_t adjusted = sub >= static_cast<std::uint64_t>(sub_bucket_count_) ? bucket + 1 : bucket;
    return std::uint64_t{1} << (unit_magnitude_ + adjusted);
  }
  [[nodiscard]] std::uint64_t lowest_equivalent_value(std::uint64_t value) const noexcept {
    const std::int32_t bucket = bucket_index(value);
    const std::uint64_t sub = value >> (bucket + unit_magnitude_);
    return sub << (bucket + unit_magnitude_);
  }
  [[nodiscard]] std::uint64_t highest_equivalent_value(std::uint64_t value) const noexcept {
    return lowest_equivalent_value(value) + size_of_equivalent_value_range(value) - 1;
  }
  [[nodiscard]] std::uint64_t median_equivalent_value(std::uint64_t value) const noexcept {
    return lowest_equivalent_value(value) + (size_of_equivalent_value_range(value) >> 1);
  }
  [[nodiscard]] bool values_are_equivalent(std::uint64_t a, std::uint64_t b) const noexcept {
    return lowest_equivalent_value(a) == lowest_equivalent_value(b);
  }
  /// Same parameters and hence the same counts layout.
  [[nodiscard]] bool same_layout(const HdrHistogram& o) const noexcept {
    return lowest_discernible_ == o.lowest_discernible_ && highest_trackable_ == o.highest_trackable_ &&
           digits_ == o.digits_;
  }

  /// Equal parameters, counts, totals, min/max and overflow.
  friend bool operator==(const HdrHistogram&, const HdrHistogram&) = default;

 private:
  struct Layout;
  explicit HdrHistogram(const Layout& layout);

  [[nodiscard]] std::int32_t bucket_index(std::uint64_t value) const noexcept {
    // value | mask keeps small values in bucket 0, and is never 0 (the mask has >= 5 bits), so the
    // builtin (a bare BSR/LZCNT) needs no zero check, unlike std::countl_zero.
    static_assert(sizeof(unsigned long long) == sizeof(std::uint64_t), "__builtin_clzll takes 64 bits");
    return leading_zero_count_base_ - __builtin_clzll(value | sub_bucket_mask_);
  }

  std::uint64_t lowest_discernible_;
  std::uint64_t highest_trackable_;
  std::int32_t digits_;
  std::int32_t unit_magnitude_;
  std::int32_t sub_bucket_half_count_magnitude_;
  std::int32_t sub_bucket_count_;
  std::int32_t sub_bucket_half_count_;
  std::int32_t bucket_count_;
  std::int32_t leading_zero_count_base_;  // 64 - unit_magnitude - sub_bucket_count_magnitude
  std::uint64_t sub_bucket_mask_;         // (sub_bucket_count - 1) << unit_magnitude
  std::uint64_t total_ = 0;
  std::uint64_t overflow_ = 0;
  std::uint64_t min_ = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t max_ = 0;
  std::vector<std::uint64_t> counts_;
};

/// HdrHistogram's copyCorrectedForCoordinatedOmission: a histogram of the same layout holding, for
/// every non-empty bucket of `h` (value v = the bucket's highest equivalent value, count c), c at v
/// and c at each v - k * expected_interval for k >= 1 while that is >= expected_interval. That is what
/// record_corrected(v, expected_interval) gives for each of the c samples, so for samples that are
/// their bucket's highest equivalent value (every sample below sub_bucket_count() with the default
/// lowest value of 1) the result equals recording them with record_corrected().
/// expected_interval 0: a plain copy of the counts. min()/max() are bucket values (as after a decode),
/// overflow_count() is 0 (clamped values sit in the top bucket like any other). Cold path: one
/// record_n() per bucket and missing value, O(buckets * max / expected_interval); allocates the copy.
[[nodiscard]] HdrHistogram copy_corrected_for_coordinated_omission(const HdrHistogram& h,
                                                                   std::uint64_t expected_interval);

/// Java HdrHistogram's outputPercentileDistribution text (.hgrm): header, one row per percentile
/// step (value / value_scale, percentile as a fraction, cumulative count, 1/(1-percentile)), and
/// the Mean/StdDeviation/Max/Total count/Buckets/SubBuckets footer. Cold path; allocates.
[[nodiscard]] std::string format_percentile_distribution(const HdrHistogram& h, int ticks_per_half_distance = 5,
                                                         double value_scale = 1.0);

}  // namespace hypergate::metrics
