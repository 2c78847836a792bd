// HdrHistogram: construction, validation and the cold-path queries (merge, statistics, iteration,
// .hgrm text). The hot path (record) is inline in the header.
#include "hypergate/metrics/hdr_histogram.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <iterator>
#include <string>
#include <string_view>
#include <utility>

namespace hypergate::metrics {

// The derived layout of a histogram, computed once from validated parameters.
struct HdrHistogram::Layout {
  std::uint64_t lowest = 1;
  std::uint64_t highest = 2;
  std::int32_t digits = 3;
  std::int32_t unit_magnitude = 0;
  std::int32_t half_count_magnitude = 0;
  std::int32_t bucket_count = 0;
};

namespace {

// sub_bucket_count_magnitude = ceil(log2(2 * 10^digits)); exact in integers.
std::int32_t sub_bucket_count_magnitude(std::int32_t digits) noexcept {
  std::uint64_t largest_single_unit = 2;
  for (std::int32_t d = 0; d < digits; ++d) largest_single_unit *= 10;
  return static_cast<std::int32_t>(std::bit_width(largest_single_unit - 1));
}

std::int32_t floor_log2(std::uint64_t v) noexcept { return static_cast<std::int32_t>(std::bit_width(v)) - 1; }

// HdrHistogram's getBucketsNeededToCoverValue.
std::int32_t buckets_needed(std::uint64_t value, std::int32_t sub_bucket_count, std::int32_t unit_magnitude) noexcept {
  std::uint64_t smallest_untrackable = static_cast<std::uint64_t>(sub_bucket_count) << unit_magnitude;
  std::int32_t needed = 1;
  while (smallest_untrackable <= value) {
    if (smallest_untrackable > HdrHistogram::kMaxHighest / 2) return needed + 1;
    smallest_untrackable <<= 1;
    ++needed;
  }
  return needed;
}

// HdrHistogram's limit: unit_magnitude + sub_bucket_half_count_magnitude <= 61, so that the
// sub-bucket values of the first buckets, shifted by the unit, still fit in a signed 64-bit value.
constexpr std::int32_t kMaxMagnitudeSum = 61;

}  // namespace

Result<HdrHistogram> HdrHistogram::create(std::uint64_t lowest, std::uint64_t highest, int digits) {
  if (digits < kMinDigits || digits > kMaxDigits) {
    return Error{Status::InvalidArgument,
                 fmt::format("hdr histogram: significant digits must be in [1, 5], got {}", digits)};
  }
  if (lowest < 1) {
    return Error{Status::InvalidArgument, "hdr histogram: lowest discernible value must be >= 1"};
  }
  if (highest > kMaxHighest) {
    return Error{Status::InvalidArgument,
                 fmt::format("hdr histogram: highest trackable value {} exceeds INT64_MAX", highest)};
  }
  if (lowest > highest / 2) {
    return Error{Status::InvalidArgument,
                 fmt::format("hdr histogram: highest trackable value {} must be >= 2 * lowest discernible value {}",
                             highest, lowest)};
  }
  const std::int32_t half_mag = sub_bucket_count_magnitude(digits) - 1;
  const std::int32_t unit = floor_log2(lowest);
  if (unit + half_mag > kMaxMagnitudeSum) {
    return Error{Status::InvalidArgument,
                 fmt::format("hdr histogram: {} significant digits do not fit above lowest discernible value {}",
                             digits, lowest)};
  }
  const std::int32_t sub_count = std::int32_t{1} << (half_mag + 1);
  return HdrHistogram(Layout{lowest, highest, digits, unit, half_mag, buckets_needed(highest, sub_count, unit)});
}

HdrHistogram::HdrHistogram(std::uint64_t lowest, std::uint64_t highest, int digits)
    : HdrHistogram([&] {
        // Clamp to the nearest valid parameters, in the order create() checks them.
        Layout l;
        l.digits = std::clamp(digits, kMinDigits, kMaxDigits);
        l.half_count_magnitude = sub_bucket_count_magnitude(l.digits) - 1;
        const std::uint64_t max_lowest = (std::uint64_t{1} << (kMaxMagnitudeSum + 1 - l.half_count_magnitude)) - 1;
        l.lowest = std::clamp<std::uint64_t>(lowest, 1, std::min(max_lowest, kMaxHighest / 2));
        l.highest = std::clamp<std::uint64_t>(highest, 2 * l.lowest, kMaxHighest);
        l.unit_magnitude = floor_log2(l.lowest);
        l.bucket_count =
            buckets_needed(l.highest, std::int32_t{1} << (l.half_count_magnitude + 1), l.unit_magnitude);
        return l;
      }()) {}

HdrHistogram::HdrHistogram(const Layout& l)
    : lowest_discernible_(l.lowest),
      highest_trackable_(l.highest),
      digits_(l.digits),
      unit_magnitude_(l.unit_magnitude),
      sub_bucket_half_count_magnitude_(l.half_count_magnitude),
      sub_bucket_count_(std::int32_t{1} << (l.half_count_magnitude + 1)),
      sub_bucket_half_count_(std::int32_t{1} << l.half_count_magnitude),
      bucket_count_(l.bucket_count),
      leading_zero_count_base_(64 - l.unit_magnitude - (l.half_count_magnitude + 1)),
      sub_bucket_mask_((static_cast<std::uint64_t>(sub_bucket_count_) - 1) << l.unit_magnitude),
      counts_(static_cast<std::size_t>(l.bucket_count + 1) * static_cast<std::size_t>(sub_bucket_half_count_), 0) {}

void HdrHistogram::reset() noexcept {
  std::fill(counts_.begin(), counts_.end(), 0);
  total_ = 0;
  overflow_ = 0;
  min_ = std::numeric_limits<std::uint64_t>::max();
  max_ = 0;
}

Status HdrHistogram::merge(const HdrHistogram& other) noexcept {
  if (other.total_ == 0) {
    overflow_ += other.overflow_;
    return Status::Ok;
  }
  // other.max_ <= other.highest_trackable_, so this only refuses a histogram with a wider range
  // that actually recorded values beyond ours.
  if (other.max_ > highest_trackable_) return Status::InvalidArgument;
  const bool index_compatible = unit_magnitude_ == other.unit_magnitude_ &&
                                sub_bucket_half_count_magnitude_ == other.sub_bucket_half_count_magnitude_;
  if (index_compatible) {
    // Same index -> same bucket. other's non-empty indices are <= counts_index(other.max_), which is
    // inside our array because other.max_ <= highest_trackable_.
    const std::size_t n = std::min(counts_.size(), other.counts_.size());
    for (std::size_t i = 0; i < n; ++i) counts_[i] += other.counts_[i];
    total_ += other.total_;
  } else {
    const std::uint64_t keep_min = min_;
    const std::uint64_t keep_max = max_;
    for (std::size_t i = 0; i < other.counts_.size(); ++i) {
      if (other.counts_[i] != 0) record_n(other.value_from_index(i), other.counts_[i]);
    }
    // Lowest-equivalent values understate other's min; restore the exact extremes.
    min_ = keep_min;
    max_ = keep_max;
  }
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  overflow_ += other.overflow_;
  return Status::Ok;
}

double HdrHistogram::mean() const noexcept {
  if (total_ == 0) return 0.0;
  double sum = 0.0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    if (counts_[i] != 0) {
      sum += static_cast<double>(median_equivalent_value(value_from_index(i))) * static_cast<double>(counts_[i]);
    }
  }
  return sum / static_cast<double>(total_);
}

double HdrHistogram::stddev() const noexcept {
  if (total_ == 0) return 0.0;
  const double m = mean();
  double sum_sq = 0.0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    if (counts_[i] != 0) {
      const double dev = static_cast<double>(median_equivalent_value(value_from_index(i))) - m;
      sum_sq += dev * dev * static_cast<double>(counts_[i]);
    }
  }
  return std::sqrt(sum_sq / static_cast<double>(total_));
}

std::uint64_t HdrHistogram::value_at_percentile(double percentile) const noexcept {
  if (total_ == 0) return 0;
  // As HdrHistogram 2.1.11: one ulp towards 0 first and p * total / 100 (not p / 100 * total), so a
  // level that is exact in decimal is not pushed one count up by rounding (55% of 24000 must ask
  // for 13200 counts; p / 100 * total gives 13200.000000000002 and ceil() 13201).
  const double p = percentile > 0.0 ? std::min(std::nextafter(percentile, 0.0), 100.0) : 0.0;  // NaN -> 0
  const double fp_count = std::ceil(p * static_cast<double>(total_) / 100.0);
  // fp_count <= total_ (as a double); saturate before converting so the cast is always defined.
  const std::uint64_t wanted =
      std::max<std::uint64_t>(1, fp_count >= static_cast<double>(total_) ? total_ : static_cast<std::uint64_t>(fp_count));
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    cumulative += counts_[i];
    if (cumulative >= wanted) return highest_equivalent_value(value_from_index(i));
  }
  return highest_equivalent_value(max_);  // unreachable unless counts wrapped around
}

// ------------------------------------------------------------------------------------------------
// Iteration
// ------------------------------------------------------------------------------------------------
PercentileCursor::PercentileCursor(const HdrHistogram& h, int ticks_per_half_distance) noexcept
    : h_(&h), ticks_per_half_distance_(std::max(ticks_per_half_distance, 1)) {}

bool PercentileCursor::next() noexcept {
  const std::uint64_t total = h_->total_count();
  if (total == 0) return false;
  if (cumulative_ >= total) {
    // Every count has been walked: one last step at 100% on the last bucket (as HdrHistogram does).
    if (reached_last_) return false;
    reached_last_ = true;
    level_ = 100.0;
    step_.percentile = 100.0;
    return true;  // value/cumulative/count_at_value stay those of the last non-empty bucket
  }
  for (; index_ < h_->counts_len(); ++index_, fresh_ = true) {
    const std::uint64_t count = h_->count_at_index(index_);
    if (fresh_) {
      cumulative_ += count;
      fresh_ = false;
    }
    if (count == 0) continue;
    const double current = 100.0 * static_cast<double>(cumulative_) / static_cast<double>(total);
    if (current >= level_) {
      step_.value = h_->highest_equivalent_value(h_->value_from_index(index_));
      step_.percentile = level_;
      step_.cumulative_count = cumulative_;
      step_.count_at_value = count;
      // Next level: ticks_per_half_distance steps per halving of the distance to 100%.
      if (level_ < 100.0) {
        // log(x)/log(2), not log2(x): the same arithmetic as HdrHistogram, so .hgrm rows line up.
        const double halvings = std::floor(std::log(100.0 / (100.0 - level_)) / std::log(2.0));
        const int exponent = static_cast<int>(std::min(halvings, 60.0)) + 1;
        const double ticks = static_cast<double>(ticks_per_half_distance_) * std::ldexp(1.0, exponent);
        level_ = std::min(100.0, level_ + 100.0 / ticks);
      }
      return true;
    }
  }
  // Only reachable if counts wrapped around; end the iteration cleanly.
  return false;
}

bool RecordedCursor::next() noexcept {
  for (; next_index_ < h_->counts_len(); ++next_index_) {
    const std::uint64_t count = h_->count_at_index(next_index_);
    if (count == 0) continue;
    cumulative_ += count;
    step_.index = next_index_;
    step_.lowest_value = h_->value_from_index(next_index_);
    step_.highest_value = h_->highest_equivalent_value(step_.lowest_value);
    step_.count = count;
    step_.cumulative_count = cumulative_;
    ++next_index_;
    return true;
  }
  return false;
}

HdrHistogram copy_corrected_for_coordinated_omission(const HdrHistogram& h, std::uint64_t expected_interval) {
  HdrHistogram copy(h.lowest_discernible_value(), h.highest_trackable_value(), h.significant_digits());
  for (const RecordedBucket& b : h.recorded()) {
    // The top bucket's highest equivalent value can lie above the trackable range; record() would
    // clamp it and count an overflow that the source never had.
    const std::uint64_t value = std::min(b.highest_value, h.highest_trackable_value());
    copy.record_n(value, b.count);
    if (expected_interval == 0 || value <= expected_interval) continue;
    for (std::uint64_t missing = value - expected_interval; missing >= expected_interval;
         missing -= expected_interval) {
      copy.record_n(missing, b.count);
    }
  }
  return copy;
}

namespace {

// "%.<decimals>f" as Java's Formatter prints it (outputPercentileDistribution uses it, so this keeps
// the table identical to HistogramLogProcessor's): Java rounds the shortest decimal that identifies
// the double (Double.toString's digits) HALF_UP, where printf and fmt round the exact binary value
// to nearest. They differ on ties of the shortest form, which percentile levels hit often: the level
// 99.97802734375 / 100 is the double nearest 0.9997802734375, "...438" in Java, "...437" from fmt.
std::string java_fixed(double v, int decimals) {
  char buf[512];  // the shortest fixed form of any double fits (at most ~330 characters)
  const auto converted = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
  std::string_view text(buf, static_cast<std::size_t>(converted.ptr - buf));
  if (converted.ec != std::errc{} || !std::isfinite(v)) return fmt::format("{:.{}f}", v, decimals);
  const bool negative = !text.empty() && text.front() == '-';
  if (negative) text.remove_prefix(1);
  const std::size_t dot = text.find('.');
  std::string digits(text.substr(0, dot));  // integer digits, then exactly `decimals` fraction digits
  const std::string_view fraction = dot == std::string_view::npos ? std::string_view{} : text.substr(dot + 1);
  const auto keep = static_cast<std::size_t>(std::max(decimals, 0));
  digits += fraction.substr(0, keep);
  digits.append(keep - std::min(keep, fraction.size()), '0');
  if (fraction.size() > keep && fraction[keep] >= '5') {  // HALF_UP: the first dropped digit decides
    std::size_t i = digits.size();
    while (i > 0 && digits[i - 1] == '9') digits[--i] = '0';
    if (i == 0) {
      digits.insert(digits.begin(), '1');
    } else {
      ++digits[i - 1];
    }
  }
  std::string out = negative && digits.find_first_not_of('0') != std::string::npos ? "-" : "";
  out.append(digits, 0, digits.size() - keep);
  if (keep > 0) out.append(".").append(digits, digits.size() - keep, keep);
  return out;
}

}  // namespace

std::string format_percentile_distribution(const HdrHistogram& h, int ticks_per_half_distance, double value_scale) {
  if (!(value_scale > 0.0)) value_scale = 1.0;
  const int digits = h.significant_digits();
  std::string out;
  fmt::format_to(std::back_inserter(out), "{:>12} {:>14} {:>10} {:>14}\n\n", "Value", "Percentile", "TotalCount",
                 "1/(1-Percentile)");
  for (const PercentileStep& s : h.percentiles(ticks_per_half_distance)) {
    const double fraction = s.percentile / 100.0;
    const std::string value = java_fixed(static_cast<double>(s.value) / value_scale, digits);
    if (s.percentile < 100.0) {
      fmt::format_to(std::back_inserter(out), "{:>12} {:>2} {:10d} {:>14}\n", value, java_fixed(fraction, 12),
                     s.cumulative_count, java_fixed(1.0 / (1.0 - fraction), 2));
    } else {
      fmt::format_to(std::back_inserter(out), "{:>12} {:>2} {:10d}\n", value, java_fixed(fraction, 12),
                     s.cumulative_count);
    }
  }
  const double max_value = h.total_count() == 0 ? 0.0 : static_cast<double>(h.highest_equivalent_value(h.max()));
  fmt::format_to(std::back_inserter(out), "#[Mean    = {:>12}, StdDeviation   = {:>12}]\n",
                 java_fixed(h.mean() / value_scale, digits), java_fixed(h.stddev() / value_scale, digits));
  fmt::format_to(std::back_inserter(out), "#[Max     = {:>12}, Total count    = {:12d}]\n",
                 java_fixed(max_value / value_scale, digits), h.total_count());
  fmt::format_to(std::back_inserter(out), "#[Buckets = {:12d}, SubBuckets     = {:12d}]\n", h.bucket_count(),
                 h.sub_bucket_count());
  return out;
}

}  // namespace hypergate::metrics
