// libFuzzer target for the HTTP/1.1 request parser. The first two input bytes choose the limits and
// the seed of the split points; the rest is a byte stream of (possibly pipelined) requests. The stream
// is parsed once in one buffer, then again fed in random-sized pieces (the buffer relocated after
// each complete request); every outcome (status, consumed length, request fields) must be identical,
// and nothing may crash or read out of bounds (ASan/UBSan in the fuzz preset).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

#include "http/http_parser.hpp"

namespace {

using hypergate::http::Limits;
using hypergate::http::ParseResult;
using hypergate::http::ParseStatus;
using hypergate::http::Request;
using hypergate::http::RequestParser;

std::string describe(const ParseResult& r, const Request* q) {
  std::string s = std::to_string(static_cast<int>(r.status)) + "/" + std::to_string(r.http_status) + "/" +
                  std::to_string(r.consumed);
  if (q != nullptr) {
    s += "|" + std::string(q->method_text) + "|" + std::string(q->target) + "|" + std::to_string(q->version_minor) +
         "|" + std::string(q->body) + "|" + std::to_string(q->keep_alive) + std::to_string(q->chunked) +
         std::to_string(q->expect_continue);
    for (std::size_t i = 0; i < q->header_count() + q->trailer_count(); ++i) {
      const auto h = i < q->header_count() ? q->header(i) : q->trailer(i - q->header_count());
      s += "|" + std::string(h.name) + ":" + std::string(h.value);
    }
  }
  return s;
}

/// Feeds `input` in pieces of sizes drawn from `seed` (0 = whole); returns the outcome log.
std::vector<std::string> run(const std::string& input, const Limits& limits, std::uint32_t seed) {
  RequestParser parser(limits);
  std::vector<std::string> log;
  std::string buf;
  std::size_t fed = 0;
  std::uint32_t state = seed;
  while (fed < input.size()) {
    std::size_t take = input.size() - fed;
    if (seed != 0) {
      state = state * 1664525u + 1013904223u;
      take = std::min<std::size_t>(take, 1 + (state >> 24) % 17);
    }
    buf.append(input, fed, take);
    fed += take;
    for (;;) {
      const ParseResult r = parser.parse(std::span<char>(buf.data(), buf.size()));
      if (r.status == ParseStatus::NeedMore) break;
      if (r.status == ParseStatus::Error) {
        log.push_back(describe(r, nullptr));
        return log;
      }
      if (r.consumed == 0 || r.consumed > buf.size()) std::abort();  // a request is never empty
      log.push_back(describe(r, &parser.request()));
      buf.erase(0, r.consumed);
    }
  }
  log.push_back(parser.headers_complete() ? "incomplete-body" : "incomplete");
  return log;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  Limits limits;
  if ((data[0] & 1) != 0) {  // small limits exercise every 413/414/431 path
    limits.max_target_bytes = 16;
    limits.max_header_bytes = 64;
    limits.max_headers = 3;
    limits.max_body_bytes = 32;
    limits.max_chunk_line_bytes = 16;
  }
  const std::uint32_t seed = (static_cast<std::uint32_t>(data[0]) << 8 | data[1]) | 1u;
  const std::string input(reinterpret_cast<const char*>(data) + 2, size - 2);
  const auto whole = run(input, limits, 0);
  const auto split = run(input, limits, seed);
  if (whole != split) std::abort();
  return 0;
}
