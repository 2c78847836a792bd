// histogram_log: V2 / compressed V2 encodings, base64, the interval-log reader and writer.
// Interop with HdrHistogram's own Java tools is tested in tests/integration/hlog_java_test.cpp.
#include "hypergate/metrics/histogram_log.hpp"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace hm = hypergate::metrics;
using hm::HdrHistogram;
using hypergate::Status;

namespace {

using Bytes = std::vector<std::byte>;

Bytes bytes_of(std::initializer_list<unsigned> values) {
  Bytes out;
  for (unsigned v : values) out.push_back(static_cast<std::byte>(v));
  return out;
}
Bytes bytes_of(std::string_view s) {
  Bytes out;
  for (char c : s) out.push_back(static_cast<std::byte>(c));
  return out;
}
void put_u32(Bytes& b, std::size_t at, std::uint32_t v) {
  for (std::size_t i = 0; i < 4; ++i) b[at + i] = static_cast<std::byte>(v >> (24 - 8 * i));
}
void put_u64(Bytes& b, std::size_t at, std::uint64_t v) {
  for (std::size_t i = 0; i < 8; ++i) b[at + i] = static_cast<std::byte>(v >> (56 - 8 * i));
}
std::uint32_t get_u32(const Bytes& b, std::size_t at) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) v = (v << 8) | std::to_integer<std::uint32_t>(b[at + i]);
  return v;
}

/// A V2 header (40 bytes) followed by `payload`, with the payload length filled in.
Bytes v2(std::int32_t digits, std::uint64_t lowest, std::uint64_t highest, const Bytes& payload,
         std::int32_t offset = 0, double ratio = 1.0) {
  Bytes b(40);
  put_u32(b, 0, 0x1c849313);
  put_u32(b, 4, static_cast<std::uint32_t>(payload.size()));
  put_u32(b, 8, static_cast<std::uint32_t>(offset));
  put_u32(b, 12, static_cast<std::uint32_t>(digits));
  put_u64(b, 16, lowest);
  put_u64(b, 24, highest);
  put_u64(b, 32, std::bit_cast<std::uint64_t>(ratio));
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

/// zlib-wraps `plain` the way HdrHistogram does (cookie, deflated length, deflated bytes).
Bytes compress(const Bytes& plain) {
  uLongf n = compressBound(static_cast<uLong>(plain.size()));
  Bytes out(8 + n);
  EXPECT_EQ(compress2(reinterpret_cast<Bytef*>(out.data() + 8), &n, reinterpret_cast<const Bytef*>(plain.data()),
                      static_cast<uLong>(plain.size()), 9),
            Z_OK);
  out.resize(8 + n);
  put_u32(out, 0, 0x1c849314);
  put_u32(out, 4, static_cast<std::uint32_t>(n));
  return out;
}

/// What decoding gives for `h`: the same counts, min/max rounded to their buckets (the encoding
/// carries counts only): the lowest bucket at its lowest equivalent value, the highest at its
/// highest (clamped to the layout), as HdrHistogram's decoder reports them. No overflow count.
HdrHistogram bucket_rounded(const HdrHistogram& h) {
  HdrHistogram e = HdrHistogram::create(h.lowest_discernible_value(), h.highest_trackable_value(),
                                        h.significant_digits())
                       .value();
  std::size_t top = 0;
  for (const auto& b : h.recorded()) top = b.index;
  for (const auto& b : h.recorded()) {
    e.record_n(b.index == top ? std::min(b.highest_value, h.highest_trackable_value()) : b.lowest_value, b.count);
  }
  return e;
}

void expect_same_counts(const HdrHistogram& a, const HdrHistogram& b) {
  ASSERT_TRUE(a.same_layout(b));
  ASSERT_EQ(a.total_count(), b.total_count());
  for (std::size_t i = 0; i < a.counts_len(); ++i) {
    ASSERT_EQ(a.count_at_index(i), b.count_at_index(i)) << "index " << i;
  }
}

void expect_round_trip(const HdrHistogram& h) {
  for (const bool compressed : {false, true}) {
    SCOPED_TRACE(compressed ? "compressed V2" : "V2");
    const Bytes enc = compressed ? hm::encode_compressed_v2(h) : hm::encode_v2(h);
    ASSERT_GE(enc.size(), 8u);
    EXPECT_EQ(get_u32(enc, 0), compressed ? 0x1c849314u : 0x1c849313u);  // what HdrHistogram writes
    auto d = hm::decode_histogram(enc);
    ASSERT_TRUE(d.ok()) << d.error().message;
    expect_same_counts(h, *d);
    EXPECT_TRUE(*d == bucket_rounded(h));
    EXPECT_TRUE(h.values_are_equivalent(d->min(), h.min()));
    EXPECT_TRUE(h.values_are_equivalent(d->max(), h.max()));
    // Decoding what was decoded loses nothing more: exact equality from here on.
    auto again = hm::decode_histogram(compressed ? hm::encode_compressed_v2(*d) : hm::encode_v2(*d));
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_TRUE(*again == *d);
  }
}

/// Lognormal-ish latencies around `median`, seeded.
void fill_lognormal(HdrHistogram& h, std::size_t n, double median, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::lognormal_distribution<double> dist(std::log(median), 1.0);
  for (std::size_t i = 0; i < n; ++i) {
    const double v = dist(rng);
    h.record(v >= 9.2e18 ? HdrHistogram::kMaxHighest : static_cast<std::uint64_t>(v));
  }
}

}  // namespace

// ------------------------------------------------------------------------------------------- round trips
TEST(HistogramEncoding, RoundTripOverLayouts) {
  std::uint64_t seed = 1;
  for (int digits = 1; digits <= 5; ++digits) {
    for (std::uint64_t lowest : {std::uint64_t{1}, std::uint64_t{1000}}) {
      for (std::uint64_t highest : {std::uint64_t{1'000'000}, HdrHistogram::kDefaultHighest, HdrHistogram::kMaxHighest}) {
        SCOPED_TRACE(::testing::Message() << "digits " << digits << " lowest " << lowest << " highest " << highest);
        auto created = HdrHistogram::create(lowest, highest, digits);
        ASSERT_TRUE(created.ok()) << created.error().message;
        HdrHistogram h = std::move(created).value();
        expect_round_trip(h);  // empty
        fill_lognormal(h, 20'000, std::min(1e5, static_cast<double>(highest) / 100), seed++);
        h.record(0);
        h.record(highest);  // the top of the layout
        expect_round_trip(h);
      }
    }
  }
}

TEST(HistogramEncoding, EdgeValuedHistogramRoundTripsExactly) {
  // min at a bucket's lowest equivalent value, max at a bucket's highest: nothing to round.
  HdrHistogram h(1, 3'600'000'000'000ULL, 3);
  h.record(h.lowest_equivalent_value(12'345));
  h.record_n(777'777, 5);
  h.record(h.highest_equivalent_value(98'765'432));
  for (const bool compressed : {false, true}) {
    auto d = hm::decode_histogram(compressed ? hm::encode_compressed_v2(h) : hm::encode_v2(h));
    ASSERT_TRUE(d.ok()) << d.error().message;
    EXPECT_TRUE(*d == h);
  }
}

TEST(HistogramEncoding, OneHugeValue) {
  HdrHistogram h(1, HdrHistogram::kMaxHighest, 3);
  h.record(HdrHistogram::kMaxHighest);
  expect_round_trip(h);
  auto d = hm::decode_histogram(hm::encode_compressed_v2(h));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->max(), HdrHistogram::kMaxHighest);
  EXPECT_EQ(d->value_at_percentile(100), h.value_at_percentile(100));

  // A clamped value (overflow) keeps its clamped bucket; the overflow count is not in the format.
  HdrHistogram o(1, 1'000'000, 2);
  o.record(~std::uint64_t{0});
  ASSERT_EQ(o.overflow_count(), 1u);
  auto od = hm::decode_histogram(hm::encode_v2(o));
  ASSERT_TRUE(od.ok());
  expect_same_counts(o, *od);
  EXPECT_EQ(od->overflow_count(), 0u);
}

TEST(HistogramEncoding, KnownBytes) {
  // Empty: header + one varint 0 (HdrHistogram encodes buckets up to max's index, i.e. index 0).
  HdrHistogram empty(1, 1'000'000, 3);
  const Bytes e = hm::encode_v2(empty);
  const Bytes expected_header = bytes_of({0x1c, 0x84, 0x93, 0x13, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 3,  //
                                          0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0x0f, 0x42, 0x40,     //
                                          0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0});
  EXPECT_EQ(e, expected_header);

  // Counts [0, 1, 0, 2]: a single zero is 0, counts are ZigZag (n -> 2n).
  HdrHistogram a(1, 1'000'000, 3);
  a.record(1);
  a.record_n(3, 2);
  const Bytes ea = hm::encode_v2(a);
  EXPECT_EQ(Bytes(ea.begin() + 40, ea.end()), bytes_of({0x00, 0x02, 0x00, 0x04}));

  // Ten empty buckets then a count: -10 -> ZigZag 19.
  HdrHistogram b(1, 1'000'000, 3);
  b.record(10);
  const Bytes eb = hm::encode_v2(b);
  EXPECT_EQ(Bytes(eb.begin() + 40, eb.end()), bytes_of({0x13, 0x02}));

  // A count of INT64_MAX takes all 9 bytes, the 9th carrying 8 bits.
  HdrHistogram c(1, 1'000'000, 3);
  c.record_n(0, static_cast<std::uint64_t>(HdrHistogram::kMaxHighest));
  const Bytes ec = hm::encode_v2(c);
  EXPECT_EQ(Bytes(ec.begin() + 40, ec.end()), bytes_of({0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}));
  auto dc = hm::decode_histogram(ec);
  ASSERT_TRUE(dc.ok()) << dc.error().message;
  EXPECT_EQ(dc->count_at_index(0), static_cast<std::uint64_t>(HdrHistogram::kMaxHighest));
}

TEST(HistogramEncoding, NinthVarintByteEndsTheVarint) {
  // 8 continuation bytes then a 9th with its high bit set: that bit is data (bit 63), not "more".
  // 0x80 x8, 0x80 -> raw 2^63 -> count 2^62 at index 0; then 0x02 -> count 1 at index 1.
  auto d = hm::decode_histogram(
      v2(3, 1, 1'000'000, bytes_of({0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02})));
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->count_at_index(0), std::uint64_t{1} << 62);
  EXPECT_EQ(d->count_at_index(1), 1u);
  // A non-minimal 9-byte form of count 1 is still one varint.
  auto n = hm::decode_histogram(v2(3, 1, 1'000'000, bytes_of({0x82, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00})));
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(n->total_count(), 1u);
  EXPECT_EQ(n->count_at_index(0), 1u);
}

// ------------------------------------------------------------------------------------------- bad encodings
namespace {
void expect_error(const Bytes& b, Status code, std::string_view needle) {
  auto d = hm::decode_histogram(b);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().code, code) << d.error().message;
  EXPECT_NE(d.error().message.find(needle), std::string::npos) << d.error().message;
}
HdrHistogram sample_histogram() {
  HdrHistogram h(1, 3'600'000'000'000ULL, 3);
  fill_lognormal(h, 5'000, 50'000, 42);
  return h;
}
}  // namespace

TEST(HistogramEncoding, RejectsBadCookies) {
  expect_error(bytes_of({0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0}), Status::Malformed, "bad cookie");
  expect_error(bytes_of({0x1c, 0x84, 0x93, 0x01, 0, 0, 0, 0}), Status::Unsupported, "pre-V2");
  expect_error(bytes_of({0x1c, 0x84, 0x93}), Status::Malformed, "truncated cookie");
  expect_error(Bytes{}, Status::Malformed, "truncated cookie");
  // A compressed envelope around something that is not a V2 encoding.
  Bytes inner = hm::encode_v2(sample_histogram());
  put_u32(inner, 0, 0x1c849314);  // a compressed cookie inside
  expect_error(compress(inner), Status::Malformed, "bad V2 cookie");
  // The word-size nibble is masked, as HdrHistogram's getCookieBase() does.
  Bytes plain = hm::encode_v2(sample_histogram());
  put_u32(plain, 0, 0x1c849303);
  EXPECT_TRUE(hm::decode_histogram(plain).ok());
}

TEST(HistogramEncoding, TruncationAtEveryOffsetIsAnError) {
  const HdrHistogram h = sample_histogram();
  for (const Bytes& full : {hm::encode_v2(h), hm::encode_compressed_v2(h)}) {
    for (std::size_t n = 0; n < full.size(); ++n) {
      const Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
      auto d = hm::decode_histogram(cut);
      ASSERT_FALSE(d.ok()) << "prefix of " << n << " bytes decoded";
      EXPECT_EQ(d.error().code, Status::Malformed) << d.error().message;
    }
  }
}

TEST(HistogramEncoding, TruncatedZlibStreamWithPatchedLengthIsAnError) {
  // Past the length check: the deflate stream itself ends early, at every possible point.
  const Bytes full = hm::encode_compressed_v2(sample_histogram());
  for (std::size_t n = 8; n < full.size(); ++n) {
    Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    put_u32(cut, 4, static_cast<std::uint32_t>(n - 8));
    auto d = hm::decode_histogram(cut);
    ASSERT_FALSE(d.ok()) << "deflate stream cut at " << n - 8 << " decoded";
    EXPECT_EQ(d.error().code, Status::Malformed);
  }
}

TEST(HistogramEncoding, TruncatedVarintIsAnError) {
  expect_error(v2(3, 1, 1'000'000, bytes_of({0x02, 0x80})), Status::Malformed, "truncated count varint");
  expect_error(v2(3, 1, 1'000'000, bytes_of({0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})), Status::Malformed,
               "truncated count varint");
}

TEST(HistogramEncoding, RejectsLengthMismatch) {
  Bytes plain = hm::encode_v2(sample_histogram());
  const std::uint32_t len = get_u32(plain, 4);
  Bytes longer = plain;
  put_u32(longer, 4, len + 1);
  expect_error(longer, Status::Malformed, "payload length");
  Bytes shorter = plain;
  put_u32(shorter, 4, len - 1);
  expect_error(shorter, Status::Malformed, "payload length");
  Bytes extra = plain;
  extra.push_back(std::byte{0});
  expect_error(extra, Status::Malformed, "payload length");

  Bytes comp = hm::encode_compressed_v2(sample_histogram());
  Bytes c1 = comp;
  put_u32(c1, 4, get_u32(comp, 4) + 1);
  expect_error(c1, Status::Malformed, "compressed length");
  Bytes c2 = comp;
  c2.push_back(std::byte{0});
  expect_error(c2, Status::Malformed, "compressed length");

  // The inner V2 length disagrees with what the deflated data holds, both ways.
  Bytes inner_short = plain;
  put_u32(inner_short, 4, len - 1);
  expect_error(compress(inner_short), Status::Malformed, "inflates to more");
  Bytes inner_long = plain;
  put_u32(inner_long, 4, len + 1);
  expect_error(compress(inner_long), Status::Malformed, "inflates to");
  // Stray bytes after the zlib stream, inside the declared length.
  Bytes stray = compress(plain);
  stray.push_back(std::byte{0x42});
  put_u32(stray, 4, get_u32(stray, 4) + 1);
  expect_error(stray, Status::Malformed, "stray bytes");
  // Compressed data shorter than a V2 header.
  expect_error(compress(Bytes(plain.begin(), plain.begin() + 20)), Status::Malformed, "less than a V2 header");
  // A declared payload no layout can need (checked before inflating or allocating it).
  Bytes huge = plain;
  put_u32(huge, 4, 0xffffffffu);
  expect_error(compress(huge), Status::Malformed, "exceeds what");
}

TEST(HistogramEncoding, RejectsCorruptZlib) {
  Bytes comp = hm::encode_compressed_v2(sample_histogram());
  Bytes bad_header = comp;
  bad_header[8] = std::byte{0x00};  // zlib CMF: not deflate
  expect_error(bad_header, Status::Malformed, "corrupt zlib");
  Bytes bad_check = comp;
  bad_check[bad_check.size() - 1] ^= std::byte{0xff};  // the Adler-32 trailer
  expect_error(bad_check, Status::Malformed, "corrupt zlib");
  Bytes garbage = bytes_of({0x1c, 0x84, 0x93, 0x14, 0, 0, 0, 6, 0x78, 0x9c, 0xff, 0xff, 0xff, 0xff});
  expect_error(garbage, Status::Malformed, "");
  // Every single-byte corruption of the deflated bytes: an error or (rarely) a valid histogram, never a crash.
  for (std::size_t i = 8; i < comp.size(); ++i) {
    Bytes c = comp;
    c[i] ^= std::byte{0x5a};
    (void)hm::decode_histogram(c);
  }
}

TEST(HistogramEncoding, RejectsParametersCreateRefuses) {
  const Bytes one = bytes_of({0x02});
  expect_error(v2(0, 1, 1'000'000, one), Status::Malformed, "bad parameters");   // digits 0
  expect_error(v2(6, 1, 1'000'000, one), Status::Malformed, "bad parameters");   // digits 6
  expect_error(v2(-1, 1, 1'000'000, one), Status::Malformed, "bad parameters");
  expect_error(v2(3, 0, 1'000'000, one), Status::Malformed, "bad parameters");   // lowest 0
  expect_error(v2(3, 1000, 1999, one), Status::Malformed, "bad parameters");     // highest < 2 * lowest
  expect_error(v2(3, 1, ~std::uint64_t{0}, one), Status::Malformed, "bad parameters");  // highest -1 (int64)
  expect_error(v2(3, std::uint64_t{1} << 62, HdrHistogram::kMaxHighest, one), Status::Malformed, "bad parameters");
  // A DoubleHistogram's inner histogram or a shifted (normalized) one: not this class of histogram.
  expect_error(v2(3, 1, 1'000'000, one, 5), Status::Unsupported, "normalizing");
  expect_error(v2(3, 1, 1'000'000, one, 0, 2.0), Status::Unsupported, "ratio");
}

TEST(HistogramEncoding, RejectsCountsPastTheLayout) {
  HdrHistogram ref(1, 1'000'000, 1);
  const std::size_t limit = ref.counts_index(1'000'000) + 1;
  // A run that ends exactly at the layout's end is fine; one more bucket is not.
  Bytes runs;
  const auto zigzag = [](std::int64_t v) { return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63); };
  const auto leb = [](Bytes& out, std::uint64_t zz) {
    while (zz >= 0x80) {
      out.push_back(static_cast<std::byte>((zz & 0x7f) | 0x80));
      zz >>= 7;
    }
    out.push_back(static_cast<std::byte>(zz));
  };
  Bytes ok_run;
  leb(ok_run, zigzag(-static_cast<std::int64_t>(limit - 1)));
  leb(ok_run, zigzag(7));
  auto ok = hm::decode_histogram(v2(1, 1, 1'000'000, ok_run));
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->count_at_index(limit - 1), 7u);
  EXPECT_EQ(ok->max(), 1'000'000u);  // the top bucket's highest equivalent value, clamped to the layout

  Bytes past = ok_run;
  leb(past, zigzag(1));  // index == limit
  expect_error(v2(1, 1, 1'000'000, past), Status::Malformed, "past the layout");
  Bytes long_run;
  leb(long_run, zigzag(-static_cast<std::int64_t>(limit + 1)));
  expect_error(v2(1, 1, 1'000'000, long_run), Status::Malformed, "past the layout");
  // The most negative varint (ZigZag of INT64_MIN: nine 0xff): a run of 2^63 buckets.
  expect_error(v2(1, 1, 1'000'000, bytes_of({0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})),
               Status::Malformed, "past the layout");
  // Bytes after 9 of them start a new varint (there is no 10-byte varint to accept).
  expect_error(v2(1, 1, 1'000'000, bytes_of({0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02})),
               Status::Malformed, "past the layout");
  // Total count overflowing 64 bits.
  Bytes big;
  for (int i = 0; i < 3; ++i) leb(big, zigzag(HdrHistogram::kMaxHighest));
  expect_error(v2(1, 1, 1'000'000, big), Status::Malformed, "overflows");
}

// ------------------------------------------------------------------------------------------- base64
TEST(Base64, Rfc4648Vectors) {
  const std::pair<std::string_view, std::string_view> vectors[] = {
      {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},        {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(hm::base64_encode(bytes_of(plain)), encoded);
    auto d = hm::base64_decode(encoded);
    ASSERT_TRUE(d.ok()) << encoded << ": " << d.error().message;
    EXPECT_EQ(*d, bytes_of(plain));
  }
}

TEST(Base64, AllBytesRoundTrip) {
  Bytes all;
  for (unsigned i = 0; i < 256; ++i) all.push_back(static_cast<std::byte>(i));
  for (std::size_t n = 0; n <= all.size(); n += 37) {
    const Bytes part(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n));
    auto d = hm::base64_decode(hm::base64_encode(part));
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(*d, part);
  }
  EXPECT_EQ(hm::base64_encode(bytes_of({0xfb, 0xff})), "+/8=");
}

TEST(Base64, RejectsBadInput) {
  for (std::string_view bad : {"Z", "Zg", "Zg=", "Zm9vY", "Zg===", "Z===", "====", "=Zg=", "Zg=a", "Zm9v=Zm9",
                               "Zm9vYg==Zm9v", "Zm9vY!==", "Zm 9", "Zm9\n", "Zh==", "Zm9=", "Zm-_"}) {
    auto d = hm::base64_decode(bad);
    EXPECT_FALSE(d.ok()) << "accepted '" << bad << "'";
    if (!d.ok()) {
      EXPECT_EQ(d.error().code, Status::Malformed);
    }
  }
}

// ------------------------------------------------------------------------------------------- log reader
namespace {
std::string b64(const HdrHistogram& h) { return hm::base64_encode(hm::encode_compressed_v2(h)); }
HdrHistogram with_values(std::initializer_list<std::uint64_t> values) {
  HdrHistogram h(1, 3'600'000'000'000ULL, 3);
  for (auto v : values) h.record(v);
  return h;
}
std::string expect_log_error(const std::string& text, std::string_view prefix) {
  auto log = hm::parse_histogram_log(text);
  EXPECT_FALSE(log.ok()) << text;
  if (log.ok()) return {};
  EXPECT_EQ(log.error().code, Status::Malformed);
  EXPECT_TRUE(log.error().message.starts_with(prefix)) << log.error().message;
  return log.error().message;
}
}  // namespace

TEST(HistogramLog, ParsesJavaStyleLogWithTags) {
  const HdrHistogram a = with_values({1000, 2000, 3000});
  const HdrHistogram b = with_values({5, 5'000'000});
  const std::string text =
      "#[Logged with a test]\n"
      "#[Histogram log format version 1.3]\n"
      "#[StartTime: 1700000000.000 (seconds since epoch), Tue Nov 14 22:13:20 UTC 2023]\n"
      "#[BaseTime: 1700000000.000 (seconds since epoch)]\n"
      "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n"
      "Tag=rx,0.125,1.000,0.003,"
      + b64(a) + "\n" + "1.125,1.000,5.001," + b64(b) + "\r\n" + "Tag=tx.wire,2.125,0.500,0.003," + b64(a) + "\n";
  auto log = hm::parse_histogram_log(text);
  ASSERT_TRUE(log.ok()) << log.error().message;
  EXPECT_EQ(log->start_time_s, 1700000000.0);
  EXPECT_EQ(log->base_time_s, 1700000000.0);
  ASSERT_EQ(log->intervals.size(), 3u);
  EXPECT_EQ(log->intervals[0].tag, "rx");
  EXPECT_DOUBLE_EQ(log->intervals[0].start_s, 1700000000.125);
  EXPECT_DOUBLE_EQ(log->intervals[0].length_s, 1.0);
  EXPECT_TRUE(log->intervals[0].histogram == bucket_rounded(a));
  EXPECT_EQ(log->intervals[1].tag, "");
  EXPECT_DOUBLE_EQ(log->intervals[1].start_s, 1700000001.125);
  EXPECT_TRUE(log->intervals[1].histogram == bucket_rounded(b));
  EXPECT_EQ(log->intervals[2].tag, "tx.wire");
  EXPECT_DOUBLE_EQ(log->intervals[2].length_s, 0.5);
}

TEST(HistogramLog, BaseTimeArithmetic) {
  const std::string line = "," + b64(with_values({1})) + "\n";
  // An explicit BaseTime different from StartTime: timestamps are relative to BaseTime.
  {
    auto log = hm::parse_histogram_log("#[StartTime: 1700000100.000 (seconds since epoch), x]\n"
                                       "#[BaseTime: 1700000000.500 (seconds since epoch)]\n"
                                       "100.250,1.000,0.000" + line);
    ASSERT_TRUE(log.ok()) << log.error().message;
    EXPECT_DOUBLE_EQ(log->intervals.at(0).start_s, 1700000100.75);
  }
  // No BaseTime, small timestamps (more than a year before StartTime): relative to StartTime.
  {
    auto log = hm::parse_histogram_log("#[StartTime: 1700000000.000 (seconds since epoch), x]\n"
                                       "3.000,1.000,0.000" + line + "4.000,1.000,0.000" + line);
    ASSERT_TRUE(log.ok()) << log.error().message;
    EXPECT_FALSE(log->base_time_s.has_value());
    EXPECT_DOUBLE_EQ(log->intervals.at(0).start_s, 1700000003.0);
    EXPECT_DOUBLE_EQ(log->intervals.at(1).start_s, 1700000004.0);
  }
  // No BaseTime, epoch-sized timestamps (within a year of StartTime): absolute.
  {
    auto log = hm::parse_histogram_log("#[StartTime: 1700000000.000 (seconds since epoch), x]\n"
                                       "1699999990.000,1.000,0.000" + line);
    ASSERT_TRUE(log.ok()) << log.error().message;
    EXPECT_DOUBLE_EQ(log->intervals.at(0).start_s, 1699999990.0);
  }
  // Neither StartTime nor BaseTime: StartTime is the first timestamp, so timestamps are absolute.
  {
    auto log = hm::parse_histogram_log("3.000,1.000,0.000" + line);
    ASSERT_TRUE(log.ok()) << log.error().message;
    EXPECT_FALSE(log->start_time_s.has_value());
    EXPECT_DOUBLE_EQ(log->intervals.at(0).start_s, 3.0);
  }
}

TEST(HistogramLog, ErrorsNameTheLine) {
  const std::string h = b64(with_values({1}));
  const std::string head = "#[StartTime: 1700000000.000 (seconds since epoch), x]\n\"StartTimestamp\",\"x\"\n";
  EXPECT_NE(expect_log_error(head + "0.0,1.0,0.0," + h + "\n0.0,1.0,0.0,Zm9vYm!=\n", "line 4: bad base64 histogram")
                .find("bad character"),
            std::string::npos);
  EXPECT_NE(expect_log_error(head + "0.0,1.0,0.0,Zm9vYmFy\n", "line 3: bad histogram").find("bad cookie"),
            std::string::npos);
  expect_log_error(head + "0.0,1.0," + h + "\n", "line 3: an interval line needs 4 fields");
  expect_log_error(head + "0.0,1.0,0.0," + h + ",extra\n", "line 3: more than 4 fields");
  expect_log_error(head + "abc,1.0,0.0," + h + "\n", "line 3: bad StartTimestamp 'abc'");
  expect_log_error(head + "0.0,-1.0,0.0," + h + "\n", "line 3: bad Interval_Length");
  expect_log_error(head + "0.0,1.0,nan," + h + "\n", "line 3: bad Interval_Max");
  expect_log_error(head + "0.0 ,1.0,0.0," + h + "\n", "line 3: bad StartTimestamp");
  expect_log_error(head + "Tag=,0.0,1.0,0.0," + h + "\n", "line 3: bad tag");
  expect_log_error(head + "Tag=a b,0.0,1.0,0.0," + h + "\n", "line 3: bad tag");
  expect_log_error(head + "Tag=a=b,0.0,1.0,0.0," + h + "\n", "line 3: bad tag");
  expect_log_error(head + "Tag=abc\n", "line 3: a Tag= prefix");
  expect_log_error("#[StartTime: soon (seconds since epoch)]\n", "line 1: bad StartTime");
  expect_log_error("# c\n\n#[BaseTime: ]\n", "line 3: bad BaseTime");
  // Line numbers count blank lines and CRLF lines too.
  expect_log_error("\r\n\n# c\r\n0.0,1.0,0.0,@@@@\r\n", "line 4:");
}

TEST(HistogramLog, CommentsAndBlankLinesOnly) {
  auto log = hm::parse_histogram_log("#[Histogram log format version 1.3]\n\n# anything\n");
  ASSERT_TRUE(log.ok());
  EXPECT_TRUE(log->intervals.empty());
  EXPECT_FALSE(log->start_time_s.has_value());
  auto empty = hm::parse_histogram_log("");
  ASSERT_TRUE(empty.ok());
}

// ------------------------------------------------------------------------------------------- log writer
namespace {
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "hg_hlog_XXXXXX").string();
    path = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};
std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
}  // namespace

TEST(HistogramLogWriter, HeaderAsJavaWritesIt) {
  TempDir dir;
  const std::string path = (dir.path / "a.hlog").string();
  auto w = hm::HistogramLogWriter::open(path, 1700000000.1234, "Logged with hypergate test");
  ASSERT_TRUE(w.ok()) << w.error().message;
  const std::string text = slurp(path);  // already there: every line is flushed
  std::istringstream lines(text);
  std::string l;
  std::getline(lines, l);
  EXPECT_EQ(l, "#[Logged with hypergate test]");
  std::getline(lines, l);
  EXPECT_EQ(l, "#[Histogram log format version 1.3]");
  std::getline(lines, l);
  EXPECT_TRUE(l.starts_with("#[StartTime: 1700000000.123 (seconds since epoch), ")) << l;
  EXPECT_TRUE(l.ends_with(" 2023]")) << l;  // a java.util.Date string: "Tue Nov 14 22:13:20 UTC 2023"
  std::getline(lines, l);
  EXPECT_EQ(l, "#[BaseTime: 1700000000.123 (seconds since epoch)]");
  std::getline(lines, l);
  EXPECT_EQ(l, "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"");
  EXPECT_FALSE(std::getline(lines, l));
  EXPECT_EQ(w->path(), path);
  EXPECT_TRUE(w->close().ok());
}

TEST(HistogramLogWriter, WriterParserRoundTripOfTaggedIntervals) {
  TempDir dir;
  const std::string path = (dir.path / "b.hlog").string();
  auto opened = hm::HistogramLogWriter::open(path, 1700000000.0);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  hm::HistogramLogWriter w = std::move(opened).value();
  const char* tags[] = {"rx", "", "pipeline.store", "rx"};
  std::vector<HdrHistogram> written;
  for (int i = 0; i < 4; ++i) {
    HdrHistogram h(1, 3'600'000'000'000ULL, 3);
    fill_lognormal(h, 3'000 + 1'000 * static_cast<std::size_t>(i), 20'000.0 * (i + 1), 100 + i);
    const double start = 1700000000.0 + i;
    ASSERT_TRUE(w.write(tags[i], start, start + 1.0, h).ok());
    written.push_back(h);
    // Flushed per line: a reader sees the interval before close().
    auto partial = hm::read_histogram_log(path);
    ASSERT_TRUE(partial.ok()) << partial.error().message;
    ASSERT_EQ(partial->intervals.size(), static_cast<std::size_t>(i + 1));
  }
  HdrHistogram empty(1, 1'000'000, 2);
  ASSERT_TRUE(w.write("idle", 1700000004.5, 1700000005.0, empty).ok());
  ASSERT_TRUE(w.close().ok());
  ASSERT_TRUE(w.close().ok());  // idempotent

  auto log = hm::read_histogram_log(path);
  ASSERT_TRUE(log.ok()) << log.error().message;
  EXPECT_EQ(log->start_time_s, 1700000000.0);
  EXPECT_EQ(log->base_time_s, 1700000000.0);
  ASSERT_EQ(log->intervals.size(), 5u);
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(log->intervals[i].tag, tags[i]);
    EXPECT_NEAR(log->intervals[i].start_s, 1700000000.0 + static_cast<double>(i), 1e-6);
    EXPECT_NEAR(log->intervals[i].length_s, 1.0, 1e-9);
    EXPECT_TRUE(log->intervals[i].histogram == bucket_rounded(written[i]));
    EXPECT_EQ(log->intervals[i].histogram.value_at_percentile(99.9), written[i].value_at_percentile(99.9));
  }
  EXPECT_EQ(log->intervals[4].tag, "idle");
  EXPECT_NEAR(log->intervals[4].length_s, 0.5, 1e-9);
  EXPECT_TRUE(log->intervals[4].histogram == empty);
}

TEST(HistogramLogWriter, IntervalMaxIsInMilliseconds) {
  TempDir dir;
  const std::string path = (dir.path / "c.hlog").string();
  auto w = hm::HistogramLogWriter::open(path, 1700000000.0);
  ASSERT_TRUE(w.ok());
  HdrHistogram h(1, 3'600'000'000'000ULL, 3);
  h.record(1'234'567);  // bucket [1233920, 1234943]: HdrHistogram reports the highest, 1.234943 ms
  ASSERT_TRUE(w->write("t", 1700000002.25, 1700000003.0, h).ok());
  ASSERT_TRUE(w->close().ok());
  const std::string text = slurp(path);
  EXPECT_NE(text.find("\nTag=t,2.250,0.750,1.235,"), std::string::npos) << text;
}

TEST(HistogramLogWriter, RejectsBadArguments) {
  TempDir dir;
  const std::string path = (dir.path / "d.hlog").string();
  auto w = hm::HistogramLogWriter::open(path, 1700000000.0);
  ASSERT_TRUE(w.ok());
  HdrHistogram h;
  for (std::string_view tag : {"a,b", "a b", "a=b", "a\tb", "a\nb"}) {
    auto r = w->write(tag, 1700000000.0, 1700000001.0, h);
    ASSERT_FALSE(r.ok()) << tag;
    EXPECT_EQ(r.error().code, Status::InvalidArgument);
  }
  EXPECT_EQ(w->write("x", 1700000001.0, 1700000000.0, h).error().code, Status::InvalidArgument);
  EXPECT_EQ(w->write("x", NAN, 1700000000.0, h).error().code, Status::InvalidArgument);
  ASSERT_TRUE(w->close().ok());
  EXPECT_EQ(w->write("x", 1700000000.0, 1700000001.0, h).error().code, Status::Closed);
  auto log = hm::read_histogram_log(path);
  ASSERT_TRUE(log.ok());
  EXPECT_TRUE(log->intervals.empty());  // nothing half-written

  EXPECT_EQ(hm::HistogramLogWriter::open(path, 1.0, "two\nlines").error().code, Status::InvalidArgument);
  auto nodir = hm::HistogramLogWriter::open((dir.path / "no" / "such.hlog").string(), 1.0);
  ASSERT_FALSE(nodir.ok());
  EXPECT_EQ(nodir.error().code, Status::IoError);
  EXPECT_NE(nodir.error().message.find("such.hlog"), std::string::npos);
}

TEST(HistogramLogReader, ErrorsNameTheFile) {
  TempDir dir;
  const std::string missing = (dir.path / "missing.hlog").string();
  auto m = hm::read_histogram_log(missing);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, Status::IoError);
  EXPECT_TRUE(m.error().message.starts_with(missing + ": ")) << m.error().message;

  const std::string bad = (dir.path / "bad.hlog").string();
  std::ofstream(bad) << "#[StartTime: 1.0 (seconds since epoch), x]\n0.0,1.0,0.0,!!!!\n";
  auto b = hm::read_histogram_log(bad);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().code, Status::Malformed);
  EXPECT_TRUE(b.error().message.starts_with(bad + ": line 2: bad base64 histogram")) << b.error().message;
}

// ------------------------------------------------------------------------------------------- fuzz seeds
TEST(HistogramLogFuzzSeeds, AreWhatTheirNamesSay) {
  const std::filesystem::path dir = std::filesystem::path(HG_SOURCE_DIR) / "tests/fuzz/corpus/histogram_log";
  const auto file_bytes = [&](const char* name) { return bytes_of(slurp(dir / name)); };
  auto plain = hm::decode_histogram(file_bytes("v2_encoding"));
  ASSERT_TRUE(plain.ok()) << plain.error().message;
  EXPECT_EQ(plain->total_count(), 17u);
  auto compressed = hm::decode_histogram(file_bytes("compressed_v2_encoding"));
  ASSERT_TRUE(compressed.ok()) << compressed.error().message;
  EXPECT_TRUE(*compressed == *plain);
  EXPECT_FALSE(hm::decode_histogram(file_bytes("compressed_v2_truncated")).ok());
  EXPECT_FALSE(hm::decode_histogram(file_bytes("v2_truncated_varint")).ok());
  auto b = hm::base64_decode(slurp(dir / "base64_compressed"));
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(hm::decode_histogram(*b).ok());
  // HistogramLogProcessor reads this one too (-tag rx: total 17; untagged: total 12).
  auto log = hm::read_histogram_log((dir / "valid_log.hlog").string());
  ASSERT_TRUE(log.ok()) << log.error().message;
  ASSERT_EQ(log->intervals.size(), 3u);
  EXPECT_EQ(log->intervals[0].tag, "rx");
  EXPECT_EQ(log->intervals[1].histogram.total_count(), 12u);
  auto relative = hm::read_histogram_log((dir / "no_basetime_log.hlog").string());
  ASSERT_TRUE(relative.ok()) << relative.error().message;
  EXPECT_DOUBLE_EQ(relative->intervals.at(0).start_s, 1700000003.5);
}
