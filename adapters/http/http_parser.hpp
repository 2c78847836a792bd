#pragma once
// HTTP/1.1 request parser: a pure, incremental, zero-copy function over the bytes of one connection.
//
// Contract
//  - parse(data) is given every not-yet-consumed byte of the connection, starting at the first byte of
//    the current request. It returns NeedMore (call again with the same bytes plus whatever arrived),
//    Complete (request() is ready; `consumed` bytes belong to this request, pipelined ones follow) or
//    Error (`http_status` says which answer to give; framing is lost, the connection must close).
//  - Incremental: the parser remembers offsets, not pointers, and how far it already searched for the
//    end of a line, so each byte is scanned once however the stream is split. The caller may move the
//    unconsumed bytes (compact its buffer) between calls as long as their contents are preserved.
//  - Zero-copy: method, target, header names/values and the body are string_views into `data`, valid
//    until the caller changes or moves those bytes. Chunked bodies are de-chunked IN PLACE: chunk data
//    is moved down over the chunk-size lines so that the body is one contiguous view. The bytes of
//    `data` that precede the parse position are therefore rewritten; pass them back as they are.
//  - After Complete the next parse() call starts a new request (pass the bytes after `consumed`).
//  - No allocation, no exception, no syscall; all memory is inside the parser (fixed header table).
//
// Rules (RFC 9112), with the choices this parser makes where the RFC leaves room:
//  - Lines end in CRLF. A bare LF, or a CR not followed by LF, is 400 (stricter than the RFC's MAY,
//    which closes request-smuggling gaps between us and proxies in front of us).
//  - Empty lines (CRLF) before the request line are skipped (RFC 9112 §2.2), up to kMaxLeadingBlank bytes.
//  - The request line is judged strictly left to right: the first offending byte decides the status,
//    so a line rejected before its end arrived gets the answer the whole line would get.
//  - Method: 1..kMaxMethodBytes tchar. Target: one or more visible ASCII (0x21..0x7E). Version: exactly
//    "HTTP/1.<digit>"; minor >= 1 behaves as 1.1. Anything else is 400 (we speak HTTP/1.x only).
//  - Target longer than Limits::max_target_bytes: 414, decided as soon as that many bytes arrive.
//  - Header section (after the request line, up to and including the blank line) larger than
//    max_header_bytes, or more than max_headers fields: 431 (also decided before the section ends).
//  - Field: token ":" OWS value OWS. Whitespace before the colon, obs-fold (a line starting with SP or
//    HTAB), control characters other than HTAB in a value: 400.
//  - Content-Length: digits only; several equal values are accepted (RFC 9112 §6.3), differing values,
//    lists or signs are 400. Content-Length with Transfer-Encoding: 400. Larger than max_body_bytes: 413.
//  - Transfer-Encoding: a list of codings over one or more fields. A coding other than `chunked`: 501.
//    `chunked` missing from the end or repeated: 400.
//  - Chunked: hex size (1..16 digits), optional chunk extensions (`;` ...) without control characters,
//    CRLF, data, CRLF; the zero chunk is followed by trailer fields (same rules and budget as headers)
//    and a blank line. Accumulated body over max_body_bytes: 413.
//  - Keep-alive: HTTP/1.1 unless a `close` token is in Connection; HTTP/1.0 only with a `keep-alive`
//    token (and no `close`).
//  - `Expect: 100-continue` sets expect_continue; headers_complete() tells the caller when the interim
//    100 response may be sent (headers parsed, body still to come).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace hypergate::http {

/// Limits, each with the status that exceeding it produces.
struct Limits {
  std::uint32_t max_target_bytes = 8 * 1024;   ///< 414
  std::uint32_t max_header_bytes = 16 * 1024;  ///< 431 (header section, and separately the trailers)
  std::uint32_t max_headers = 64;              ///< 431 (fields, and separately trailer fields)
  std::uint64_t max_body_bytes = 1u << 20;     ///< 413
  std::uint32_t max_chunk_line_bytes = 1024;   ///< 400 (chunk size + extensions)
};

enum class Method : std::uint8_t { Get, Head, Post, Put, Delete, Options, Patch, Trace, Connect, Other };

struct Header {
  std::string_view name;
  std::string_view value;
};

enum class ParseStatus : std::uint8_t { NeedMore, Complete, Error };

struct ParseResult {
  ParseStatus status = ParseStatus::NeedMore;
  std::uint16_t http_status = 0;  ///< Error only: 400, 413, 414, 431 or 501
  std::size_t consumed = 0;       ///< Complete only: bytes of this request, leading blank lines included
};

namespace detail {
/// Offsets of one field relative to the start of the data given to parse().
struct FieldSpan {
  std::uint32_t name_off;
  std::uint32_t value_off;
  std::uint32_t value_len;
  std::uint16_t name_len;
};
static_assert(sizeof(FieldSpan) == 16, "the field table is kMaxFields * 16 bytes per connection");
}  // namespace detail

/// A parsed request: views into the bytes given to parse(). Valid until those bytes change.
class Request {
 public:
  std::string_view method_text;
  std::string_view target;
  std::string_view body;             ///< the payload (de-chunked when chunked)
  std::uint64_t content_length = 0;  ///< Content-Length, or the de-chunked size
  Method method = Method::Other;
  std::uint8_t version_minor = 1;  ///< HTTP/1.<minor>
  bool keep_alive = true;
  bool expect_continue = false;
  bool chunked = false;

  [[nodiscard]] std::size_t header_count() const noexcept { return headers_; }
  [[nodiscard]] std::size_t trailer_count() const noexcept { return trailers_; }
  [[nodiscard]] Header header(std::size_t i) const noexcept { return field(i); }
  [[nodiscard]] Header trailer(std::size_t i) const noexcept { return field(headers_ + i); }
  /// The first header named `name` (ASCII case-insensitive).
  [[nodiscard]] std::optional<std::string_view> find(std::string_view name) const noexcept;

 private:
  friend class RequestParser;
  [[nodiscard]] Header field(std::size_t i) const noexcept;
  const char* base_ = nullptr;
  const detail::FieldSpan* fields_ = nullptr;
  std::uint16_t headers_ = 0;
  std::uint16_t trailers_ = 0;
};

class RequestParser {
 public:
  /// Capacity of the field table (headers + trailers); Limits::max_headers is clamped to it.
  static constexpr std::uint32_t kMaxFields = 128;
  static constexpr std::uint32_t kMaxLeadingBlank = 64;
  static constexpr std::uint32_t kMaxMethodBytes = 32;  ///< longer method tokens are 400
  /// Bytes beyond this many are never looked at in one call (offsets are 32-bit).
  static constexpr std::size_t kMaxSpan = 0x7FFF'FFFF;

  explicit RequestParser(const Limits& limits = {}) noexcept;

  [[nodiscard]] ParseResult parse(std::span<char> data) noexcept;

  /// The request of the last Complete result.
  [[nodiscard]] const Request& request() const noexcept { return req_; }
  /// True once the header section of the current request is parsed (body may still be pending).
  [[nodiscard]] bool headers_complete() const noexcept { return headers_done_; }
  [[nodiscard]] bool expect_continue() const noexcept { return expect_continue_; }
  /// Forgets the current request (a new connection, or after an Error).
  void reset() noexcept;
  [[nodiscard]] const Limits& limits() const noexcept { return limits_; }

 private:
  enum class State : std::uint8_t { RequestLine, Headers, Body, ChunkSize, ChunkData, ChunkDataEnd, Trailers,
                                    Complete, Failed };

  ParseResult fail(std::uint16_t status) noexcept;
  ParseResult complete(const char* base) noexcept;
  // Each returns 0 when the line was accepted, otherwise the HTTP status to fail with.
  std::uint16_t request_line(const char* p, std::uint32_t end, bool* done) noexcept;
  std::uint16_t field_line(const char* p, std::uint32_t end, bool trailer) noexcept;
  std::uint16_t end_of_headers() noexcept;
  std::uint16_t chunk_size_line(const char* p, std::uint32_t end) noexcept;

  Limits limits_;
  State state_ = State::RequestLine;
  bool headers_done_ = false;
  bool expect_continue_ = false;
  bool has_length_ = false;
  bool te_seen_ = false;
  bool te_chunked_ = false;       // `chunked` seen in Transfer-Encoding
  bool te_chunked_last_ = false;  // ... and it was the last coding so far
  bool te_unknown_ = false;
  bool te_bad_ = false;
  bool conn_close_ = false;
  bool conn_keep_alive_ = false;
  std::uint8_t version_minor_ = 1;
  Method method_ = Method::Other;
  std::uint16_t fields_ = 0;
  std::uint16_t trailers_ = 0;
  std::uint16_t error_ = 0;
  std::uint32_t line_ = 0;       // start of the line (or data) being parsed
  std::uint32_t scan_ = 0;       // [line_, scan_) holds no LF
  std::uint32_t method_len_ = 0;
  std::uint32_t method_off_ = 0;
  std::uint32_t target_off_ = 0;
  std::uint32_t target_len_ = 0;
  std::uint32_t section_start_ = 0;  // first byte of the header (or trailer) section
  std::uint32_t body_start_ = 0;
  std::uint64_t body_len_ = 0;       // body bytes in place at body_start_
  std::uint64_t content_length_ = 0;
  std::uint64_t chunk_left_ = 0;
  Request req_;
  detail::FieldSpan field_[kMaxFields];
};

/// Status line reason phrase for the statuses this module produces ("Bad Request"...); "" if unknown.
[[nodiscard]] std::string_view reason_phrase(std::uint16_t status) noexcept;

}  // namespace hypergate::http
