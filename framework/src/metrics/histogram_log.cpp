// HdrHistogram interval logs and the V2 encodings (see histogram_log.hpp for the format).
//
// Why it is shaped this way: everything here runs on the cold path (a log line per interval, a file
// read by a tool), so clarity and strict validation win over speed. Decoding is written for hostile
// input: every read is bounds-checked against the span it came from, the histogram is allocated
// only after its parameters passed HdrHistogram::create(), and a compressed payload is inflated in
// two bounded steps (the 40-byte header, then exactly the payload length the header declares, which
// itself is bounded by the layout), so a small input cannot make us inflate or allocate without limit.
#include "hypergate/metrics/histogram_log.hpp"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <ctime>
#include <limits>
#include <new>
#include <utility>

#include <fmt/format.h>

namespace hypergate::metrics {
namespace {

// What HdrHistogram writes: the cookie base with 0x10 in the word-size nibble ("LEB128-64b9B
// ZigZag words"). Readers mask that nibble off (HdrHistogram's getCookieBase()).
constexpr std::uint32_t kCookieWordSizeNibble = 0xf0;
constexpr std::uint32_t kV2CookieWritten = kV2EncodingCookie | 0x10;
constexpr std::uint32_t kV2CompressedCookieWritten = kV2CompressedEncodingCookie | 0x10;
constexpr std::uint32_t kV0CookieBase = 0x1c849308;  // older forms: recognised only to name them
constexpr std::uint32_t kV0CompressedCookieBase = 0x1c849309;
constexpr std::uint32_t kV1CookieBase = 0x1c849301;
constexpr std::uint32_t kV1CompressedCookieBase = 0x1c849302;
constexpr std::size_t kV2HeaderSize = 40;     // cookie, length, offset, digits, lowest, highest, ratio
constexpr std::size_t kCompressedHeaderSize = 8;  // cookie, deflated length
constexpr std::size_t kMaxVarintBytes = 9;    // LEB128-64b9B: the 9th byte carries 8 bits, no flag
constexpr double kOneYearS = 365.0 * 24 * 3600;  // HistogramLogReader's absolute-timestamp criterion

[[nodiscard]] std::uint32_t cookie_base(std::uint32_t cookie) noexcept { return cookie & ~kCookieWordSizeNibble; }

// ---------------------------------------------------------------------------------- big endian
void put_u32(std::vector<std::byte>& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::byte>(v >> shift));
}
void put_u64(std::vector<std::byte>& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<std::byte>(v >> shift));
}
void patch_u32(std::vector<std::byte>& out, std::size_t at, std::uint32_t v) noexcept {
  for (std::size_t i = 0; i < 4; ++i) out[at + i] = static_cast<std::byte>(v >> (24 - 8 * i));
}
// Precondition (callers check): p points at >= 4 / 8 readable bytes.
[[nodiscard]] std::uint32_t get_u32(const std::byte* p) noexcept {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) v = (v << 8) | std::to_integer<std::uint32_t>(p[i]);
  return v;
}
[[nodiscard]] std::uint64_t get_u64(const std::byte* p) noexcept {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i) v = (v << 8) | std::to_integer<std::uint64_t>(p[i]);
  return v;
}

// ---------------------------------------------------------------------------------- ZigZag LEB128
// HdrHistogram's "LEB128-64b9B": 7 bits per byte, low groups first, high bit = more follows, except
// that the 9th byte holds the top 8 bits whole. So a varint is at most 9 bytes by construction: a
// decoder never looks at a 10th byte.
void put_zigzag(std::vector<std::byte>& out, std::int64_t value) {
  // Arithmetic right shift of a signed value is defined since C++20.
  std::uint64_t zz = (static_cast<std::uint64_t>(value) << 1) ^ static_cast<std::uint64_t>(value >> 63);
  for (std::size_t i = 0; i + 1 < kMaxVarintBytes; ++i) {
    if ((zz >> 7) == 0) {
      out.push_back(static_cast<std::byte>(zz));
      return;
    }
    out.push_back(static_cast<std::byte>((zz & 0x7f) | 0x80));
    zz >>= 7;
  }
  out.push_back(static_cast<std::byte>(zz));  // 9th byte: the remaining 8 bits
}

/// Reads one varint at `pos`, advancing it. False (pos unchanged) if it runs past the end.
[[nodiscard]] bool get_zigzag(std::span<const std::byte> in, std::size_t& pos, std::int64_t& value) noexcept {
  std::uint64_t raw = 0;
  std::size_t p = pos;
  for (std::size_t i = 0; i < kMaxVarintBytes; ++i) {
    if (p >= in.size()) return false;
    const auto b = std::to_integer<std::uint64_t>(in[p++]);
    if (i + 1 == kMaxVarintBytes) {
      raw |= b << 56;
      break;
    }
    raw |= (b & 0x7f) << (7 * i);
    if ((b & 0x80) == 0) break;
  }
  pos = p;
  value = static_cast<std::int64_t>((raw >> 1) ^ (0 - (raw & 1)));  // modular conversion (C++20)
  return true;
}

// ---------------------------------------------------------------------------------- V2 decoding
struct V2Header {
  std::uint32_t cookie = 0;
  std::uint32_t payload_length = 0;
  std::int32_t normalizing_offset = 0;
  std::int32_t digits = 0;
  std::uint64_t lowest = 0;
  std::uint64_t highest = 0;
  std::uint64_t ratio_bits = 0;
};

[[nodiscard]] V2Header read_v2_header(std::span<const std::byte, kV2HeaderSize> h) noexcept {
  V2Header v;
  v.cookie = get_u32(h.data());
  v.payload_length = get_u32(h.data() + 4);
  v.normalizing_offset = static_cast<std::int32_t>(get_u32(h.data() + 8));
  v.digits = static_cast<std::int32_t>(get_u32(h.data() + 12));
  v.lowest = get_u64(h.data() + 16);
  v.highest = get_u64(h.data() + 24);
  v.ratio_bits = get_u64(h.data() + 32);
  return v;
}

[[nodiscard]] Error malformed(std::string message) { return Error{Status::Malformed, std::move(message)}; }

/// Checks a V2 header and allocates the histogram it describes.
[[nodiscard]] Result<HdrHistogram> histogram_for(const V2Header& h) {
  if (cookie_base(h.cookie) != kV2EncodingCookie) {
    return malformed(fmt::format("hdr encoding: bad V2 cookie {:#010x}", h.cookie));
  }
  if (h.normalizing_offset != 0) {
    return Error{Status::Unsupported,
                 fmt::format("hdr encoding: normalizing index offset {} (only 0 is supported)", h.normalizing_offset)};
  }
  if (h.ratio_bits != std::bit_cast<std::uint64_t>(1.0)) {
    return Error{Status::Unsupported,
                 fmt::format("hdr encoding: integer-to-double ratio {} (a DoubleHistogram; only 1.0 is supported)",
                             std::bit_cast<double>(h.ratio_bits))};
  }
  // Negative int64 fields read as huge uint64s, which create() refuses (> INT64_MAX or > highest/2).
  auto created = HdrHistogram::create(h.lowest, h.highest, h.digits);
  if (!created) return malformed("hdr encoding: bad parameters: " + created.error().message);
  return created;
}

/// Decodes the counts of a V2 payload into `h` (fresh, empty). Every count must land inside the
/// layout, i.e. at an index <= counts_index(highest_trackable_value()): HdrHistogram never encodes
/// past its max value's index.
[[nodiscard]] Result<void> fill_counts(HdrHistogram& h, std::span<const std::byte> payload) {
  const std::uint64_t limit = h.counts_index(h.highest_trackable_value()) + 1;
  std::uint64_t index = 0;
  std::uint64_t total = 0;
  // The last non-zero bucket is recorded at its highest equivalent value (so max() is what
  // HdrHistogram reports), the others at their lowest (so min() is too): hold one back.
  bool pending = false;
  std::size_t pending_index = 0;
  std::uint64_t pending_count = 0;
  std::size_t pos = 0;
  while (pos < payload.size()) {
    const std::size_t at = pos;
    std::int64_t v = 0;
    if (!get_zigzag(payload, pos, v)) {
      return malformed(fmt::format("hdr encoding: truncated count varint at payload byte {}", at));
    }
    if (v < 0) {
      const std::uint64_t run = 0 - static_cast<std::uint64_t>(v);  // no overflow, even for INT64_MIN
      if (run > limit - index) {
        return malformed(fmt::format("hdr encoding: a run of {} empty buckets at index {} runs past the layout ({} buckets)",
                                     run, index, limit));
      }
      index += run;
      continue;
    }
    if (index >= limit) {
      return malformed(fmt::format("hdr encoding: counts run past the layout ({} buckets) at payload byte {}", limit, at));
    }
    const auto count = static_cast<std::uint64_t>(v);
    if (count != 0) {
      if (count > std::numeric_limits<std::uint64_t>::max() - total) {
        return malformed("hdr encoding: total count overflows 64 bits");
      }
      total += count;
      if (pending) h.record_n(h.value_from_index(pending_index), pending_count);
      pending = true;
      pending_index = static_cast<std::size_t>(index);
      pending_count = count;
    }
    ++index;
  }
  if (pending) {
    const std::uint64_t top = h.highest_equivalent_value(h.value_from_index(pending_index));
    h.record_n(std::min(top, h.highest_trackable_value()), pending_count);
  }
  return {};
}

[[nodiscard]] Result<HdrHistogram> decode_v2(std::span<const std::byte> bytes) {
  if (bytes.size() < kV2HeaderSize) {
    return malformed(fmt::format("hdr encoding: truncated V2 header ({} of {} bytes)", bytes.size(), kV2HeaderSize));
  }
  const V2Header header = read_v2_header(bytes.first<kV2HeaderSize>());
  if (header.payload_length != bytes.size() - kV2HeaderSize) {
    return malformed(fmt::format("hdr encoding: V2 payload length {} but {} bytes follow the header",
                                 header.payload_length, bytes.size() - kV2HeaderSize));
  }
  auto h = histogram_for(header);
  if (!h) return h;
  if (auto filled = fill_counts(*h, bytes.subspan(kV2HeaderSize)); !filled) return filled.error();
  return h;
}

/// An inflate stream that always ends (RAII over zlib's z_stream).
class Inflater {
 public:
  explicit Inflater(std::span<const std::byte> in) noexcept {
    zs_.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in.data()));  // zlib never writes input
    zs_.avail_in = static_cast<uInt>(in.size());
    ok_ = inflateInit(&zs_) == Z_OK;
  }
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;
  ~Inflater() {
    if (ok_) inflateEnd(&zs_);
  }
  [[nodiscard]] bool initialised() const noexcept { return ok_; }

  /// Inflates into `out` until it is full or the stream ends. Returns the zlib code of the last
  /// call (Z_OK: out full, more may follow; Z_STREAM_END; or an error) and sets `produced`.
  [[nodiscard]] int inflate_into(std::span<std::byte> out, std::size_t& produced) noexcept {
    zs_.next_out = reinterpret_cast<Bytef*>(out.data());
    zs_.avail_out = static_cast<uInt>(out.size());
    int rc = Z_OK;
    while (zs_.avail_out != 0) {
      rc = inflate(&zs_, Z_NO_FLUSH);
      if (rc != Z_OK) break;  // Z_STREAM_END, or Z_BUF_ERROR (input exhausted) / a data error
    }
    produced = out.size() - zs_.avail_out;
    return rc;
  }
  [[nodiscard]] std::size_t input_left() const noexcept { return zs_.avail_in; }
  [[nodiscard]] const char* message() const noexcept { return zs_.msg != nullptr ? zs_.msg : "no detail"; }

 private:
  z_stream zs_{};
  bool ok_ = false;
};

[[nodiscard]] Result<HdrHistogram> decode_compressed_v2(std::span<const std::byte> bytes) {
  if (bytes.size() < kCompressedHeaderSize) {
    return malformed(fmt::format("hdr encoding: truncated compressed header ({} of {} bytes)", bytes.size(),
                                 kCompressedHeaderSize));
  }
  const std::uint32_t deflated_length = get_u32(bytes.data() + 4);
  if (deflated_length != bytes.size() - kCompressedHeaderSize) {
    return malformed(fmt::format("hdr encoding: compressed length {} but {} bytes follow the header", deflated_length,
                                 bytes.size() - kCompressedHeaderSize));
  }
  Inflater inflater(bytes.subspan(kCompressedHeaderSize));
  if (!inflater.initialised()) return Error{Status::IoError, "hdr encoding: zlib inflateInit failed"};

  std::array<std::byte, kV2HeaderSize> head{};
  std::size_t produced = 0;
  int rc = inflater.inflate_into(head, produced);
  if (produced != head.size()) {
    if (rc == Z_STREAM_END) {
      return malformed(fmt::format("hdr encoding: compressed data inflates to {} bytes, less than a V2 header", produced));
    }
    if (rc == Z_BUF_ERROR) return malformed("hdr encoding: zlib data ends inside the V2 header");
    return malformed(fmt::format("hdr encoding: corrupt zlib data ({})", inflater.message()));
  }
  const V2Header header = read_v2_header(head);
  auto h = histogram_for(header);
  if (!h) return h;
  // One varint covers at least one bucket and takes at most 9 bytes: a longer payload cannot be
  // valid, so it is refused before anything of that size is allocated or inflated.
  const std::uint64_t limit = h->counts_index(h->highest_trackable_value()) + 1;
  if (header.payload_length > limit * kMaxVarintBytes) {
    return malformed(fmt::format("hdr encoding: V2 payload length {} exceeds what {} buckets can need",
                                 header.payload_length, limit));
  }
  // One spare byte: inflating past the declared length fills it (rc stays Z_OK).
  std::vector<std::byte> payload(std::size_t{header.payload_length} + 1);
  produced = 0;
  if (rc != Z_STREAM_END) rc = inflater.inflate_into(payload, produced);
  if (rc == Z_OK || (rc == Z_STREAM_END && produced > header.payload_length)) {
    return malformed(fmt::format("hdr encoding: compressed data inflates to more than the V2 payload length {}",
                                 header.payload_length));
  }
  if (rc == Z_BUF_ERROR) return malformed("hdr encoding: zlib data ends inside the V2 payload");
  if (rc != Z_STREAM_END) return malformed(fmt::format("hdr encoding: corrupt zlib data ({})", inflater.message()));
  if (produced != header.payload_length) {
    return malformed(fmt::format("hdr encoding: V2 payload length {} but the compressed data inflates to {} bytes",
                                 header.payload_length, produced));
  }
  if (inflater.input_left() != 0) {
    return malformed(fmt::format("hdr encoding: {} stray bytes after the zlib stream", inflater.input_left()));
  }
  payload.pop_back();
  if (auto filled = fill_counts(*h, payload); !filled) return filled.error();
  return h;
}

// ---------------------------------------------------------------------------------- base64
constexpr std::string_view kBase64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

[[nodiscard]] int base64_value(char c) noexcept {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// ---------------------------------------------------------------------------------- log text
[[nodiscard]] bool parse_double(std::string_view text, double& out) noexcept {
  if (text.empty()) return false;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc{} && ptr == end && std::isfinite(out);
}

[[nodiscard]] bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }

[[nodiscard]] std::string_view trim_right(std::string_view s) noexcept {
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

/// The number after "#[StartTime:" / "#[BaseTime:": up to the next space, ',' or ']'.
[[nodiscard]] bool parse_header_time(std::string_view rest, double& out) noexcept {
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  const std::size_t end = rest.find_first_of(" ,]");
  return parse_double(rest.substr(0, end), out);
}

[[nodiscard]] bool tag_is_valid(std::string_view tag) noexcept {
  return std::none_of(tag.begin(), tag.end(), [](char c) { return c == ',' || c == '=' || is_space(c); });
}

[[nodiscard]] Error line_error(std::size_t line, std::string_view what) {
  return malformed(fmt::format("line {}: {}", line, what));
}

}  // namespace

// ==================================================================================== encodings
std::vector<std::byte> encode_v2(const HdrHistogram& h) {
  std::vector<std::byte> out;
  out.reserve(kV2HeaderSize + 64);
  put_u32(out, kV2CookieWritten);
  put_u32(out, 0);  // payload length, patched below
  put_u32(out, static_cast<std::uint32_t>(h.normalizing_index_offset()));
  put_u32(out, static_cast<std::uint32_t>(h.significant_digits()));
  put_u64(out, h.lowest_discernible_value());
  put_u64(out, h.highest_trackable_value());
  put_u64(out, std::bit_cast<std::uint64_t>(1.0));  // integer-to-double ratio of an integer histogram
  // As HdrHistogram: buckets up to max's, a single empty bucket as 0, longer empty runs as -run.
  // Counts above INT64_MAX (the Java format's limit) are saturated to it.
  const std::size_t limit = h.counts_index(h.max()) + 1;
  std::size_t i = 0;
  while (i < limit) {
    const std::uint64_t count = h.count_at_index(i++);
    if (count != 0) {
      put_zigzag(out, static_cast<std::int64_t>(std::min<std::uint64_t>(count, HdrHistogram::kMaxHighest)));
      continue;
    }
    std::int64_t zeros = 1;
    while (i < limit && h.count_at_index(i) == 0) {
      ++zeros;
      ++i;
    }
    put_zigzag(out, zeros > 1 ? -zeros : 0);
  }
  patch_u32(out, 4, static_cast<std::uint32_t>(out.size() - kV2HeaderSize));
  return out;
}

std::vector<std::byte> encode_compressed_v2(const HdrHistogram& h) {
  const std::vector<std::byte> plain = encode_v2(h);
  uLongf deflated = compressBound(static_cast<uLong>(plain.size()));
  std::vector<std::byte> out(kCompressedHeaderSize + deflated);
  // compress2 with a compressBound()-sized buffer cannot fail short of memory exhaustion (which a
  // vector would have thrown for already); the result is checked anyway.
  const int rc = compress2(reinterpret_cast<Bytef*>(out.data() + kCompressedHeaderSize), &deflated,
                           reinterpret_cast<const Bytef*>(plain.data()), static_cast<uLong>(plain.size()),
                           Z_BEST_COMPRESSION);  // what HistogramLogWriter uses
  if (rc != Z_OK) throw std::bad_alloc();
  out.resize(kCompressedHeaderSize + deflated);
  patch_u32(out, 0, kV2CompressedCookieWritten);
  patch_u32(out, 4, static_cast<std::uint32_t>(deflated));
  return out;
}

Result<HdrHistogram> decode_histogram(std::span<const std::byte> bytes) {
  if (bytes.size() < 4) return malformed(fmt::format("hdr encoding: truncated cookie ({} of 4 bytes)", bytes.size()));
  const std::uint32_t cookie = get_u32(bytes.data());
  const std::uint32_t base = cookie_base(cookie);
  if (base == kV2EncodingCookie) return decode_v2(bytes);
  if (base == kV2CompressedEncodingCookie) return decode_compressed_v2(bytes);
  if (base == kV1CookieBase || base == kV1CompressedCookieBase || base == kV0CookieBase ||
      base == kV0CompressedCookieBase) {
    return Error{Status::Unsupported, fmt::format("hdr encoding: pre-V2 cookie {:#010x} is not supported", cookie)};
  }
  return malformed(fmt::format("hdr encoding: bad cookie {:#010x}", cookie));
}

// ==================================================================================== base64
std::string base64_encode(std::span<const std::byte> bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = (std::to_integer<std::uint32_t>(bytes[i]) << 16) |
                            (std::to_integer<std::uint32_t>(bytes[i + 1]) << 8) | std::to_integer<std::uint32_t>(bytes[i + 2]);
    for (int shift = 18; shift >= 0; shift -= 6) out.push_back(kBase64Alphabet[(v >> shift) & 63]);
  }
  const std::size_t rest = bytes.size() - i;
  if (rest != 0) {
    std::uint32_t v = std::to_integer<std::uint32_t>(bytes[i]) << 16;
    if (rest == 2) v |= std::to_integer<std::uint32_t>(bytes[i + 1]) << 8;
    out.push_back(kBase64Alphabet[(v >> 18) & 63]);
    out.push_back(kBase64Alphabet[(v >> 12) & 63]);
    out.push_back(rest == 2 ? kBase64Alphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

Result<std::vector<std::byte>> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) {
    return malformed(fmt::format("base64: length {} is not a multiple of 4", text.size()));
  }
  std::vector<std::byte> out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t q = 0; q < text.size(); q += 4) {
    const bool last = q + 4 == text.size();
    // '=' may only end the last quantum: "xx==" or "xxx=".
    std::size_t pad = 0;
    if (last && text[q + 3] == '=') pad = text[q + 2] == '=' ? 2 : 1;
    std::uint32_t v = 0;
    for (std::size_t k = 0; k < 4; ++k) {
      const char c = text[q + k];
      if (k >= 4 - pad) {
        v <<= 6;
        continue;
      }
      const int d = base64_value(c);
      if (d < 0) {
        return malformed(c == '=' ? fmt::format("base64: misplaced '=' at offset {}", q + k)
                                  : fmt::format("base64: bad character {:#04x} at offset {}",
                                                static_cast<unsigned char>(c), q + k));
      }
      v = (v << 6) | static_cast<std::uint32_t>(d);
    }
    // Bits under the padding must be zero (RFC 4648 §3.5 canonical encoding).
    if ((pad == 1 && (v & 0xff) != 0) || (pad == 2 && (v & 0xffff) != 0)) {
      return malformed(fmt::format("base64: non-zero bits under the padding at offset {}", q));
    }
    out.push_back(static_cast<std::byte>(v >> 16));
    if (pad < 2) out.push_back(static_cast<std::byte>(v >> 8));
    if (pad < 1) out.push_back(static_cast<std::byte>(v));
  }
  return out;
}

// ==================================================================================== log reader
Result<HistogramLog> parse_histogram_log(std::string_view text) {
  HistogramLog log;
  // HistogramLogReader's state: the StartTime and BaseTime in effect. Without a BaseTime line, the
  // first interval decides: a timestamp more than a year before StartTime is relative to StartTime,
  // anything else is absolute (base 0). Without a StartTime line, StartTime is the first timestamp
  // (so timestamps are then absolute).
  std::optional<double> start_time;
  std::optional<double> base_time;
  std::size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    line = trim_right(line);
    if (line.empty()) continue;

    if (line.front() == '#') {
      constexpr std::string_view kStart = "#[StartTime:";
      constexpr std::string_view kBase = "#[BaseTime:";
      double t = 0.0;
      if (line.starts_with(kStart)) {
        if (!parse_header_time(line.substr(kStart.size()), t)) return line_error(line_no, "bad StartTime");
        start_time = t;
        log.start_time_s = t;
      } else if (line.starts_with(kBase)) {
        if (!parse_header_time(line.substr(kBase.size()), t)) return line_error(line_no, "bad BaseTime");
        base_time = t;
        log.base_time_s = t;
      }
      continue;  // any other comment
    }
    if (line.starts_with("\"StartTimestamp\"")) continue;  // the CSV legend

    LogInterval interval;
    if (line.starts_with("Tag=")) {
      const std::size_t comma = line.find(',');
      if (comma == std::string_view::npos) return line_error(line_no, "a Tag= prefix without the interval fields");
      const std::string_view tag = line.substr(4, comma - 4);
      if (tag.empty() || !tag_is_valid(tag)) return line_error(line_no, fmt::format("bad tag '{}'", tag));
      interval.tag = std::string(tag);
      line.remove_prefix(comma + 1);
    }
    std::array<std::string_view, 4> fields;
    std::size_t n = 0;
    for (;;) {
      const std::size_t comma = line.find(',');
      if (n == fields.size()) return line_error(line_no, "more than 4 fields in an interval line");
      fields[n++] = line.substr(0, comma);
      if (comma == std::string_view::npos) break;
      line.remove_prefix(comma + 1);
    }
    if (n != fields.size()) {
      return line_error(line_no, fmt::format("an interval line needs 4 fields (start,length,max,histogram), got {}", n));
    }
    double timestamp = 0.0;
    double max_value = 0.0;
    if (!parse_double(fields[0], timestamp)) return line_error(line_no, fmt::format("bad StartTimestamp '{}'", fields[0]));
    if (!parse_double(fields[1], interval.length_s) || interval.length_s < 0.0) {
      return line_error(line_no, fmt::format("bad Interval_Length '{}'", fields[1]));
    }
    if (!parse_double(fields[2], max_value)) return line_error(line_no, fmt::format("bad Interval_Max '{}'", fields[2]));
    auto bytes = base64_decode(fields[3]);
    if (!bytes) return line_error(line_no, "bad base64 histogram: " + bytes.error().message);
    auto histogram = decode_histogram(*bytes);
    if (!histogram) return line_error(line_no, "bad histogram: " + histogram.error().message);
    interval.histogram = std::move(histogram).value();

    if (!start_time) start_time = timestamp;
    if (!base_time) base_time = timestamp < *start_time - kOneYearS ? *start_time : 0.0;
    interval.start_s = timestamp + *base_time;
    log.intervals.push_back(std::move(interval));
  }
  return log;
}

Result<HistogramLog> read_histogram_log(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return Error{Status::IoError, fmt::format("{}: {}", path, std::strerror(errno))};
  std::string text;
  std::array<char, 65536> chunk;
  std::size_t got = 0;
  while ((got = std::fread(chunk.data(), 1, chunk.size(), f)) != 0) text.append(chunk.data(), got);
  const bool failed = std::ferror(f) != 0;
  const int saved_errno = errno;
  std::fclose(f);
  if (failed) return Error{Status::IoError, fmt::format("{}: read error: {}", path, std::strerror(saved_errno))};
  auto log = parse_histogram_log(text);
  if (!log) return Error{log.error().code, fmt::format("{}: {}", path, log.error().message)};
  return log;
}

// ==================================================================================== log writer
namespace {
[[nodiscard]] Result<void> write_line(std::FILE* f, const std::string& path, std::string_view line) {
  if (std::fwrite(line.data(), 1, line.size(), f) != line.size() || std::fflush(f) != 0) {
    return Error{Status::IoError, fmt::format("{}: write failed: {}", path, std::strerror(errno))};
  }
  return {};
}

/// What java.util.Date.toString() prints: "Wed Dec 02 04:29:41 UTC 2026" (local time zone).
[[nodiscard]] std::string java_date_string(double epoch_s) {
  const auto t = static_cast<std::time_t>(std::floor(epoch_s));
  std::tm tm{};
  if (localtime_r(&t, &tm) == nullptr) return "unknown date";
  std::array<char, 64> buf{};
  const std::size_t n = std::strftime(buf.data(), buf.size(), "%a %b %d %H:%M:%S %Z %Y", &tm);
  return std::string(buf.data(), n);
}
}  // namespace

Result<HistogramLogWriter> HistogramLogWriter::open(const std::string& path, double start_time_epoch_s,
                                                    std::string_view comment) {
  if (!std::isfinite(start_time_epoch_s) || start_time_epoch_s < 0.0) {
    return Error{Status::InvalidArgument, fmt::format("{}: bad log start time {}", path, start_time_epoch_s)};
  }
  if (comment.find_first_of("\r\n") != std::string_view::npos) {
    return Error{Status::InvalidArgument, fmt::format("{}: a log comment must be one line", path)};
  }
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return Error{Status::IoError, fmt::format("{}: {}", path, std::strerror(errno))};
  // The log's times have millisecond resolution (HistogramLogWriter's %.3f of msec/1000): round the
  // base so that "relative + BaseTime" gives back what was written.
  const double base = std::round(start_time_epoch_s * 1000.0) / 1000.0;
  HistogramLogWriter w(f, path, base);
  std::string header;
  if (!comment.empty()) header += fmt::format("#[{}]\n", comment);
  header += "#[Histogram log format version 1.3]\n";
  header += fmt::format("#[StartTime: {:.3f} (seconds since epoch), {}]\n", base, java_date_string(base));
  header += fmt::format("#[BaseTime: {:.3f} (seconds since epoch)]\n", base);
  header += "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n";
  // Line by line, each flushed, as the contract says.
  std::string_view rest = header;
  while (!rest.empty()) {
    const std::size_t nl = rest.find('\n');
    if (auto r = write_line(f, w.path_, rest.substr(0, nl + 1)); !r) return r.error();
    rest.remove_prefix(nl + 1);
  }
  return w;
}

HistogramLogWriter::HistogramLogWriter(HistogramLogWriter&& other) noexcept
    : file_(std::exchange(other.file_, nullptr)), path_(std::move(other.path_)), base_time_s_(other.base_time_s_) {}

HistogramLogWriter& HistogramLogWriter::operator=(HistogramLogWriter&& other) noexcept {
  if (this != &other) {
    if (file_ != nullptr) std::fclose(file_);  // as the destructor: an error here has no one to go to
    file_ = std::exchange(other.file_, nullptr);
    path_ = std::move(other.path_);
    base_time_s_ = other.base_time_s_;
  }
  return *this;
}

HistogramLogWriter::~HistogramLogWriter() {
  if (file_ != nullptr) std::fclose(file_);
}

Result<void> HistogramLogWriter::write(std::string_view tag, double start_epoch_s, double end_epoch_s,
                                       const HdrHistogram& h) {
  if (file_ == nullptr) return Error{Status::Closed, fmt::format("{}: log writer is closed", path_)};
  if (!tag_is_valid(tag)) {
    return Error{Status::InvalidArgument,
                 fmt::format("{}: bad tag '{}' (no ',', '=' or whitespace allowed)", path_, tag)};
  }
  if (!std::isfinite(start_epoch_s) || !std::isfinite(end_epoch_s) || end_epoch_s < start_epoch_s) {
    return Error{Status::InvalidArgument,
                 fmt::format("{}: bad interval [{}, {}]", path_, start_epoch_s, end_epoch_s)};
  }
  // Interval_Max as HistogramLogWriter writes it: the max's highest equivalent value, in ms.
  const double max_ms =
      h.total_count() == 0 ? 0.0 : static_cast<double>(h.highest_equivalent_value(h.max())) / 1e6;
  std::string line;
  if (!tag.empty()) line = fmt::format("Tag={},", tag);
  line += fmt::format("{:.3f},{:.3f},{:.3f},{}\n", start_epoch_s - base_time_s_, end_epoch_s - start_epoch_s, max_ms,
                      base64_encode(encode_compressed_v2(h)));
  return write_line(file_, path_, line);
}

Result<void> HistogramLogWriter::close() {
  if (file_ == nullptr) return {};
  std::FILE* f = std::exchange(file_, nullptr);
  const bool flushed = std::fflush(f) == 0;
  const int saved_errno = errno;
  const bool closed = std::fclose(f) == 0;
  if (!flushed || !closed) {
    return Error{Status::IoError,
                 fmt::format("{}: closing the log failed: {}", path_, std::strerror(flushed ? errno : saved_errno))};
  }
  return {};
}

}  // namespace hypergate::metrics
