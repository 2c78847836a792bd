#pragma once
// HdrHistogram interval logs: the text format that HdrHistogram's HistogramLogWriter writes and its
// HistogramLogReader / HistogramLogProcessor read, and the V2 histogram encodings those lines carry.
//
// FORMAT (PROTOCOLS.md §5)
//   #[<comment>]                                         any number of comment lines
//   #[StartTime: <sec.ms> (seconds since epoch), <date>]
//   #[BaseTime: <sec.ms> (seconds since epoch)]
//   "StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"
//   [Tag=<tag>,]<start>,<length>,<max>,<base64 of the compressed V2 histogram>
// <start> is seconds relative to BaseTime (absolute when the log has no BaseTime and the value is
// large enough to be an epoch time, as HistogramLogReader decides); <max> is the interval's max value
// divided by the log's max-value unit ratio (informational only: readers take the histogram).
//
// ENCODINGS
// - V2 (cookie 0x1c849303): cookie, payload length, normalizing index offset, significant digits,
//   lowest discernible value, highest trackable value (int64), int-to-double ratio (double), then the
//   counts as ZigZag LEB128 varints, a negative varint being a run of that many empty buckets.
// - Compressed V2 (cookie 0x1c849304): cookie, length of the deflated bytes, zlib(V2).
// All integers big-endian. The cookies are written as HdrHistogram writes them, with 0x10 in the
// word-size nibble (0x1c849313, 0x1c849314); readers mask that nibble (0xf0) off. A varint is at most
// 9 bytes by construction: the 9th byte carries 8 bits and no continuation flag.
// decode_histogram() accepts both forms and rejects anything malformed with an Error (never reads
// out of bounds, never allocates more than the declared layout needs): Malformed for a bad cookie,
// truncation, a length that disagrees with the bytes, corrupt or overlong zlib data, parameters
// HdrHistogram::create() refuses, counts past counts_index(highest_trackable_value()), a total
// count beyond 64 bits; Unsupported for pre-V2 cookies, a non-zero normalizing index offset or an
// int-to-double ratio other than 1 (DoubleHistogram).
// The encoding carries counts only: a decoded histogram has the same counts and total, min() at the
// lowest equivalent value of its lowest bucket, max() at the highest equivalent value of its highest
// (clamped to highest_trackable_value(); what HdrHistogram reports) and overflow_count() 0. Counts
// above INT64_MAX (the Java format's limit) are encoded as INT64_MAX.
//
// Threading: everything here is cold path. A writer is used by one thread at a time.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hypergate/core/status.hpp"
#include "hypergate/metrics/hdr_histogram.hpp"

namespace hypergate::metrics {

inline constexpr std::uint32_t kV2EncodingCookie = 0x1c849303;
inline constexpr std::uint32_t kV2CompressedEncodingCookie = 0x1c849304;

/// Uncompressed V2 encoding of `h` (what HdrHistogram's encodeIntoByteBuffer writes).
[[nodiscard]] std::vector<std::byte> encode_v2(const HdrHistogram& h);
/// Compressed V2 encoding (what an interval log line carries, before base64).
[[nodiscard]] std::vector<std::byte> encode_compressed_v2(const HdrHistogram& h);
/// Decodes a V2 or compressed V2 encoding (chosen by cookie).
[[nodiscard]] Result<HdrHistogram> decode_histogram(std::span<const std::byte> bytes);

/// RFC 4648 base64 with padding (what HdrHistogram's logs use).
[[nodiscard]] std::string base64_encode(std::span<const std::byte> bytes);
[[nodiscard]] Result<std::vector<std::byte>> base64_decode(std::string_view text);

/// One interval line of a log.
struct LogInterval {
  std::string tag;          ///< empty: untagged
  double start_s = 0.0;     ///< absolute start, seconds since the epoch (BaseTime applied)
  double length_s = 0.0;    ///< interval length in seconds
  HdrHistogram histogram;   ///< the interval's counts
};

/// A parsed log.
struct HistogramLog {
  std::optional<double> start_time_s;  ///< #[StartTime: ...], seconds since the epoch
  std::optional<double> base_time_s;   ///< #[BaseTime: ...]
  std::vector<LogInterval> intervals;  ///< in file order
};

/// Parses a whole log. An Error names the 1-based line: "line 7: bad base64 histogram".
[[nodiscard]] Result<HistogramLog> parse_histogram_log(std::string_view text);
/// Reads and parses a file; an Error names the file (and the line).
[[nodiscard]] Result<HistogramLog> read_histogram_log(const std::string& path);

/// Writes an interval log. Values are nanoseconds; Interval_Max is written in milliseconds (ratio
/// 1e6, HdrHistogram's default), so HistogramLogProcessor shows the same figures with
/// `-outputValueUnitRatio 1` as `hypergate hist`.
class HistogramLogWriter {
 public:
  /// Creates or truncates `path` and writes the header as HdrHistogram's HistogramLogWriter does:
  /// "#[<comment>]" (if any; one line), "#[Histogram log format version 1.3]", StartTime with a
  /// java.util.Date-style date, BaseTime = start (both rounded to the millisecond), the legend.
  [[nodiscard]] static Result<HistogramLogWriter> open(const std::string& path, double start_time_epoch_s,
                                                       std::string_view comment = {});
  HistogramLogWriter(HistogramLogWriter&& other) noexcept;
  HistogramLogWriter& operator=(HistogramLogWriter&& other) noexcept;
  HistogramLogWriter(const HistogramLogWriter&) = delete;
  HistogramLogWriter& operator=(const HistogramLogWriter&) = delete;
  ~HistogramLogWriter();

  /// Appends one interval line and flushes it (a log is complete up to its last line even if the
  /// process is killed). `tag` must not contain ',', whitespace or '=' (InvalidArgument).
  /// start/end are absolute epoch seconds.
  [[nodiscard]] Result<void> write(std::string_view tag, double start_epoch_s, double end_epoch_s,
                                   const HdrHistogram& h);
  /// Closes the file (also done by the destructor); an error flushing is reported here.
  [[nodiscard]] Result<void> close();
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  HistogramLogWriter(std::FILE* file, std::string path, double base_time_s) noexcept
      : file_(file), path_(std::move(path)), base_time_s_(base_time_s) {}
  std::FILE* file_ = nullptr;
  std::string path_;
  double base_time_s_ = 0.0;
};

}  // namespace hypergate::metrics
