// Fuzzes the HdrHistogram interval-log reader and the histogram decoder with the same bytes: as log
// text (parse_histogram_log), as a V2 / compressed V2 encoding (decode_histogram) and as base64.
// Whatever the input, this must never crash, hang, over-read or trip a sanitizer, and what is
// accepted must be self-consistent:
// - a decoded histogram re-encodes (both forms) to something that decodes to an equal histogram;
// - accepted base64 is canonical: encoding what it decoded gives the input back;
// - every interval of an accepted log round-trips the same way.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string_view>

#include "hypergate/metrics/histogram_log.hpp"

namespace {

namespace hm = hypergate::metrics;

void check_round_trip(const hm::HdrHistogram& h) {
  for (const bool compressed : {false, true}) {
    const auto bytes = compressed ? hm::encode_compressed_v2(h) : hm::encode_v2(h);
    auto again = hm::decode_histogram(bytes);
    if (!again.ok() || !(*again == h)) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  if (auto h = hm::decode_histogram(bytes); h.ok()) check_round_trip(*h);

  if (auto decoded = hm::base64_decode(text); decoded.ok()) {
    if (hm::base64_encode(*decoded) != text) std::abort();
    if (auto h = hm::decode_histogram(*decoded); h.ok()) check_round_trip(*h);
  }

  if (auto log = hm::parse_histogram_log(text); log.ok()) {
    for (const hm::LogInterval& interval : log->intervals) {
      if (interval.tag.find_first_of(",= \t\r\n") != std::string::npos) std::abort();
      check_round_trip(interval.histogram);
    }
  }
  return 0;
}
