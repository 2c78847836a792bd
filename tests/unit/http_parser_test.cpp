// HTTP/1.1 request parser: every rule of http_parser.hpp as a table row, then incremental feeding
// (byte at a time, odd steps, buffer relocation) compared with one-shot parsing, and pipelining.
#include "http/http_parser.hpp"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace hypergate::http {
namespace {

/// A request copied out of the buffer (the views die when the test buffer moves).
struct Parsed {
  int status = 0;  // 200 complete, an HTTP error status, or 0 = still incomplete at end of input
  std::string method, target, body;
  int minor = -1;
  std::vector<std::pair<std::string, std::string>> headers, trailers;
  bool keep_alive = false, expect = false, chunked = false;
  std::size_t consumed = 0;
  Method kind = Method::Other;
  bool operator==(const Parsed&) const = default;
};

/// Feeds `input` `step` bytes at a time (0 = all at once), erasing consumed requests from the front of
/// the buffer (so the parser sees its partial request relocated), and returns every outcome.
std::vector<Parsed> run(const std::string& input, const Limits& limits = {}, std::size_t step = 0) {
  RequestParser parser(limits);
  std::vector<Parsed> out;
  std::string buf;
  std::size_t fed = 0;
  while (fed < input.size()) {
    const std::size_t take = step == 0 ? input.size() : std::min(step, input.size() - fed);
    buf.append(input, fed, take);
    fed += take;
    for (;;) {
      const ParseResult r = parser.parse(std::span<char>(buf.data(), buf.size()));
      if (r.status == ParseStatus::NeedMore) break;
      Parsed p;
      if (r.status == ParseStatus::Error) {
        p.status = r.http_status;
        out.push_back(p);
        return out;
      }
      const Request& q = parser.request();
      p.status = 200;
      p.method = q.method_text;
      p.target = q.target;
      p.body = q.body;
      p.minor = q.version_minor;
      p.kind = q.method;
      for (std::size_t i = 0; i < q.header_count(); ++i) p.headers.emplace_back(q.header(i).name, q.header(i).value);
      for (std::size_t i = 0; i < q.trailer_count(); ++i) {
        p.trailers.emplace_back(q.trailer(i).name, q.trailer(i).value);
      }
      p.keep_alive = q.keep_alive;
      p.expect = q.expect_continue;
      p.chunked = q.chunked;
      p.consumed = r.consumed;
      out.push_back(p);
      buf.erase(0, r.consumed);
    }
  }
  if (!buf.empty()) out.push_back(Parsed{});  // incomplete tail
  return out;
}

/// One-shot outcome of a single request: 200, an error status, or 0 (incomplete).
int status_of(const std::string& input, const Limits& limits = {}) {
  const auto r = run(input, limits);
  return r.empty() ? 0 : r.front().status;
}

struct Row {
  const char* name;
  std::string input;
  int status;
};

Limits small_limits() {
  Limits l;
  l.max_target_bytes = 32;
  l.max_header_bytes = 128;
  l.max_headers = 4;
  l.max_body_bytes = 16;
  return l;
}

std::vector<Row> rows() {
  const std::string big_target(40, 'a');
  return {
      // accepted
      {"get", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 200},
      {"no_headers", "GET / HTTP/1.1\r\n\r\n", 200},
      {"http10", "GET / HTTP/1.0\r\n\r\n", 200},
      {"http19_as_11", "GET / HTTP/1.9\r\n\r\n", 200},
      {"custom_method", "PURGE /x HTTP/1.1\r\n\r\n", 200},
      {"leading_blank_lines", "\r\n\r\nGET / HTTP/1.1\r\n\r\n", 200},
      {"content_length", "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 200},
      {"equal_duplicate_cl", "POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi", 200},
      {"chunked", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 200},
      {"chunk_ext", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;a=b;c\r\nabc\r\n0\r\n\r\n", 200},
      {"empty_value", "GET / HTTP/1.1\r\nX-Empty:\r\n\r\n", 200},
      {"obs_text_value", "GET / HTTP/1.1\r\nX: caf\xc3\xa9\r\n\r\n", 200},
      {"at_limits", "GET /" + std::string(31, 'a') + " HTTP/1.1\r\n\r\n", 200},
      // 400 malformed
      {"bad_method_char", "GE(T / HTTP/1.1\r\n\r\n", 400},
      {"empty_method", " / HTTP/1.1\r\n\r\n", 400},
      {"double_space", "GET  / HTTP/1.1\r\n\r\n", 400},
      {"no_target", "GET HTTP/1.1\r\n\r\n", 400},
      {"bad_version", "GET / HTTP/1.x\r\n\r\n", 400},
      {"version_2", "GET / HTTP/2.0\r\n\r\n", 400},
      {"lower_version", "GET / http/1.1\r\n\r\n", 400},
      {"version_trailing", "GET / HTTP/1.1 \r\n\r\n", 400},
      {"bare_lf_request_line", "GET / HTTP/1.1\n\r\n", 400},
      {"bare_lf_header", "GET / HTTP/1.1\r\nA: b\n\r\n", 400},
      {"bare_lf_end", "GET / HTTP/1.1\r\nA: b\r\n\n", 400},
      {"bare_cr_in_value", "GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", 400},
      {"bare_cr_leading", "\rGET / HTTP/1.1\r\n\r\n", 400},
      {"leading_bare_lf", "\nGET / HTTP/1.1\r\n\r\n", 400},
      {"obs_fold", "GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", 400},
      {"space_before_colon", "GET / HTTP/1.1\r\nA : b\r\n\r\n", 400},
      {"no_colon", "GET / HTTP/1.1\r\nAb\r\n\r\n", 400},
      {"empty_name", "GET / HTTP/1.1\r\n: b\r\n\r\n", 400},
      {"nul_in_value", std::string("GET / HTTP/1.1\r\nA: b\0c\r\n\r\n", 25), 400},
      {"ctl_in_target", "GET /a\x01 HTTP/1.1\r\n\r\n", 400},
      {"cl_and_te", "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
      {"bad_cl", "POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 400},
      {"negative_cl", "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
      {"empty_cl", "POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", 400},
      {"list_cl", "POST / HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\nx", 400},
      {"overflow_cl", "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400},
      {"differing_cl", "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400},
      {"te_empty_second_field", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: \r\n\r\n0\r\n\r\n",
       200},
      {"chunked_twice", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400},
      {"bad_chunk_size", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
      {"chunk_size_too_long", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000001\r\n", 400},
      {"chunk_no_crlf", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n", 400},
      {"chunk_ctl_ext", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;\x01\r\na\r\n0\r\n\r\n", 400},
      {"chunk_trailing_ws", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1 \r\na\r\n0\r\n\r\n", 400},
      {"chunk_bare_lf", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\na\r\n0\r\n\r\n", 400},
      // 501 unknown transfer coding
      {"te_gzip", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
      {"te_gzip_chunked", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501},
      {"te_chunked_gzip", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 501},
      // incomplete
      {"incomplete_line", "GET / HTTP/1.1\r", 0},
      {"incomplete_headers", "GET / HTTP/1.1\r\nHost: a\r\n", 0},
      {"incomplete_body", "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhel", 0},
      {"incomplete_chunks", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", 0},
  };
}

TEST(HttpParser, TableDefaultLimits) {
  for (const Row& row : rows()) {
    EXPECT_EQ(status_of(row.input), row.status) << row.name;
  }
}

TEST(HttpParser, TableByteAtATimeEqualsOneShot) {
  for (const Row& row : rows()) {
    const auto whole = run(row.input);
    for (std::size_t step : {1u, 2u, 3u, 7u}) {
      EXPECT_EQ(run(row.input, {}, step), whole) << row.name << " step " << step;
    }
  }
}

TEST(HttpParser, Limits) {
  const Limits l = small_limits();
  struct {
    const char* name;
    std::string input;
    int status;
  } cases[] = {
      {"414_complete_line", "GET /" + std::string(40, 'a') + " HTTP/1.1\r\n\r\n", 414},
      {"414_before_line_ends", "GET /" + std::string(200, 'a'), 414},
      {"400_garbage_long_line", std::string(200, 'x'), 400},
      {"431_too_many", "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n", 431},
      {"431_too_big", "GET / HTTP/1.1\r\nA: " + std::string(200, 'v') + "\r\n\r\n", 431},
      {"431_before_section_ends", "GET / HTTP/1.1\r\nA: " + std::string(200, 'v'), 431},
      {"413_content_length", "POST / HTTP/1.1\r\nContent-Length: 17\r\n\r\n", 413},
      {"413_huge_content_length", "POST / HTTP/1.1\r\nContent-Length: 999999999999\r\n\r\n", 413},
      {"413_chunked_sum", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n9\r\n123456789\r\n9\r\n", 413},
      {"413_big_chunk", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n", 413},
      {"200_at_limits", "POST /" + std::string(31, 'a') + " HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nContent-Length: 16\r\n\r\n" +
                            std::string(16, 'b'),
       200},
      {"431_trailers", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: " + std::string(200, 't') + "\r\n\r\n",
       431},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(status_of(c.input, l), c.status) << c.name;
    EXPECT_EQ(run(c.input, l, 1).front().status, c.status) << c.name << " byte at a time";
  }
}

TEST(HttpParser, RequestFields) {
  const auto r = run("POST /path?q=1 HTTP/1.1\r\nHost: example\r\nX-Pad:   spaced value \t\r\n"
                     "Content-Length: 5\r\n\r\nhello");
  ASSERT_EQ(r.size(), 1u);
  const Parsed& p = r[0];
  EXPECT_EQ(p.status, 200);
  EXPECT_EQ(p.method, "POST");
  EXPECT_EQ(p.kind, Method::Post);
  EXPECT_EQ(p.target, "/path?q=1");
  EXPECT_EQ(p.minor, 1);
  ASSERT_EQ(p.headers.size(), 3u);
  EXPECT_EQ(p.headers[0], (std::pair<std::string, std::string>{"Host", "example"}));
  EXPECT_EQ(p.headers[1].second, "spaced value");  // OWS trimmed on both sides, inner space kept
  EXPECT_EQ(p.body, "hello");
  EXPECT_TRUE(p.keep_alive);
  EXPECT_FALSE(p.chunked);
}

TEST(HttpParser, FindIsCaseInsensitive) {
  std::string s = "GET / HTTP/1.1\r\nX-Hyper-Key: k1\r\n\r\n";
  RequestParser parser;
  ASSERT_EQ(parser.parse(std::span<char>(s.data(), s.size())).status, ParseStatus::Complete);
  EXPECT_EQ(parser.request().find("x-hyper-key"), std::optional<std::string_view>("k1"));
  EXPECT_EQ(parser.request().find("x-hyper"), std::nullopt);
}

TEST(HttpParser, ChunkedBodyIsDechunkedWithExtensionsAndTrailers) {
  const std::string in = "POST /c HTTP/1.1\r\nTransfer-Encoding: gzip-not, chunked\r\n\r\n";  // 501 first
  EXPECT_EQ(status_of(in + "0\r\n\r\n"), 501);
  const std::string req = "POST /c HTTP/1.1\r\ntransfer-encoding: Chunked\r\n\r\n"
                          "5;name=value\r\nhello\r\n1\r\n \r\nA; x=\"q\"\r\n0123456789\r\n0\r\n"
                          "Trailer-One: 1\r\nTrailer-Two: two\r\n\r\n";
  for (std::size_t step : {0u, 1u, 5u}) {
    const auto r = run(req, {}, step);
    ASSERT_EQ(r.size(), 1u) << step;
    EXPECT_EQ(r[0].status, 200);
    EXPECT_TRUE(r[0].chunked);
    EXPECT_EQ(r[0].body, "hello 0123456789");
    EXPECT_EQ(r[0].consumed, req.size());
    ASSERT_EQ(r[0].trailers.size(), 2u);
    EXPECT_EQ(r[0].trailers[1], (std::pair<std::string, std::string>{"Trailer-Two", "two"}));
    EXPECT_EQ(r[0].headers.size(), 1u);
  }
}

TEST(HttpParser, KeepAliveRules) {
  struct {
    std::string input;
    bool keep_alive;
  } cases[] = {
      {"GET / HTTP/1.1\r\n\r\n", true},
      {"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nConnection: Upgrade, CLOSE\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n", true},
      {"GET / HTTP/1.0\r\n\r\n", false},
      {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
      {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true},
      {"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false},
  };
  for (const auto& c : cases) {
    const auto r = run(c.input);
    ASSERT_EQ(r.size(), 1u) << c.input;
    EXPECT_EQ(r[0].keep_alive, c.keep_alive) << c.input;
  }
}

TEST(HttpParser, HeadAndMethods) {
  EXPECT_EQ(run("HEAD / HTTP/1.1\r\n\r\n")[0].kind, Method::Head);
  EXPECT_EQ(run("DELETE / HTTP/1.1\r\n\r\n")[0].kind, Method::Delete);
  EXPECT_EQ(run("OPTIONS * HTTP/1.1\r\n\r\n")[0].kind, Method::Options);
  EXPECT_EQ(run("get / HTTP/1.1\r\n\r\n")[0].kind, Method::Other);  // methods are case-sensitive
}

TEST(HttpParser, ExpectContinueIsReportedWhenHeadersAreDone) {
  std::string s = "POST /up HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n";
  RequestParser parser;
  ParseResult r = parser.parse(std::span<char>(s.data(), s.size()));
  EXPECT_EQ(r.status, ParseStatus::NeedMore);
  EXPECT_TRUE(parser.headers_complete());
  EXPECT_TRUE(parser.expect_continue());
  s += "data";
  r = parser.parse(std::span<char>(s.data(), s.size()));
  ASSERT_EQ(r.status, ParseStatus::Complete);
  EXPECT_TRUE(parser.request().expect_continue);
  EXPECT_EQ(parser.request().body, "data");
}

TEST(HttpParser, HeadersNotCompleteBeforeBlankLine) {
  std::string s = "POST /up HTTP/1.1\r\nExpect: 100-continue\r\n";
  RequestParser parser;
  EXPECT_EQ(parser.parse(std::span<char>(s.data(), s.size())).status, ParseStatus::NeedMore);
  EXPECT_FALSE(parser.headers_complete());
}

TEST(HttpParser, PipelinedRequestsInOneBuffer) {
  const std::string a = "GET /1 HTTP/1.1\r\n\r\n";
  const std::string b = "POST /2 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
  const std::string c = "POST /3 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n";
  const std::string d = "HEAD /4 HTTP/1.0\r\n\r\n";
  const std::string all = a + b + c + d + "GET /5 HTT";  // and an incomplete fifth
  const auto whole = run(all);
  ASSERT_EQ(whole.size(), 5u);
  EXPECT_EQ(whole[0].target, "/1");
  EXPECT_EQ(whole[0].consumed, a.size());
  EXPECT_EQ(whole[1].body, "abc");
  EXPECT_EQ(whole[1].consumed, b.size());
  EXPECT_EQ(whole[2].body, "xy");
  EXPECT_EQ(whole[2].consumed, c.size());
  EXPECT_EQ(whole[3].kind, Method::Head);
  EXPECT_FALSE(whole[3].keep_alive);
  EXPECT_EQ(whole[4].status, 0);  // incomplete
  for (std::size_t step = 1; step < 12; ++step) EXPECT_EQ(run(all, {}, step), whole) << step;
}

TEST(HttpParser, ErrorIsSticky) {
  std::string s = "BAD\x01 / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n";
  RequestParser parser;
  ParseResult r = parser.parse(std::span<char>(s.data(), s.size()));
  ASSERT_EQ(r.status, ParseStatus::Error);
  EXPECT_EQ(r.http_status, 400);
  r = parser.parse(std::span<char>(s.data(), s.size()));
  EXPECT_EQ(r.status, ParseStatus::Error);
  parser.reset();
  std::string ok = "GET / HTTP/1.1\r\n\r\n";
  EXPECT_EQ(parser.parse(std::span<char>(ok.data(), ok.size())).status, ParseStatus::Complete);
}

TEST(HttpParser, ViewsPointIntoTheCallersBuffer) {
  std::string s = "PUT /x HTTP/1.1\r\nA: b\r\nContent-Length: 2\r\n\r\nok";
  RequestParser parser;
  ASSERT_EQ(parser.parse(std::span<char>(s.data(), s.size())).status, ParseStatus::Complete);
  const Request& q = parser.request();
  EXPECT_EQ(q.target.data(), s.data() + 4);
  EXPECT_EQ(q.header(0).value.data(), s.data() + 20);
  EXPECT_EQ(q.body.data(), s.data() + s.size() - 2);
}

TEST(HttpParser, LeadingBlankLinesAreBounded) {
  std::string many;
  for (int i = 0; i < 40; ++i) many += "\r\n";
  EXPECT_EQ(status_of(many + "GET / HTTP/1.1\r\n\r\n"), 400);
}

TEST(HttpParser, ReasonPhrases) {
  EXPECT_EQ(reason_phrase(431), "Request Header Fields Too Large");
  EXPECT_EQ(reason_phrase(413), "Content Too Large");
  EXPECT_EQ(reason_phrase(299), "");
}

}  // namespace
}  // namespace hypergate::http
