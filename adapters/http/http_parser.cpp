// HTTP/1.1 request parser; the rules and the contract are in http_parser.hpp.
//
// Why it is shaped this way: a state machine over offsets. Line-oriented states (request line, fields,
// chunk sizes, trailers) memchr for LF from `scan_`, the first byte not yet searched, so a request split
// into N reads costs one scan of its bytes, not N. Body states only compare lengths. Character classes
// are 256-entry tables built at compile time.
#include "http_parser.hpp"

#include <algorithm>
#include <array>
#include <cstring>

namespace hypergate::http {
namespace {

constexpr std::uint16_t kBadRequest = 400;
constexpr std::uint16_t kTooLarge = 413;
constexpr std::uint16_t kUriTooLong = 414;
constexpr std::uint16_t kHeadersTooLarge = 431;
constexpr std::uint16_t kNotImplemented = 501;

enum CharClass : std::uint8_t { kToken = 1, kVisible = 2, kFieldValue = 4, kHex = 8 };

constexpr std::array<std::uint8_t, 256> make_classes() {
  std::array<std::uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    std::uint8_t v = 0;
    const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (alnum || (c != 0 && std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos)) {
      v |= kToken;
    }
    if (c >= 0x21 && c <= 0x7E) v |= kVisible;
    if (c == '\t' || (c >= 0x20 && c != 0x7F)) v |= kFieldValue;  // VCHAR, SP, HTAB, obs-text
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) v |= kHex;
    t[static_cast<std::size_t>(c)] = v;
  }
  return t;
}
constexpr std::array<std::uint8_t, 256> kClass = make_classes();

inline bool is(char c, CharClass k) noexcept { return (kClass[static_cast<unsigned char>(c)] & k) != 0; }
inline bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }
inline char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

/// ASCII case-insensitive equality; `lower_b` is already lower case.
bool iequals(std::string_view a, std::string_view lower_b) noexcept {
  if (a.size() != lower_b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower_b[i]) return false;
  }
  return true;
}

std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

/// Calls fn(element) for each non-empty element of a comma-separated list, trimmed of OWS.
template <class F>
void for_each_element(std::string_view list, F&& fn) noexcept {
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    const std::string_view item = trim_ows(list.substr(0, comma));
    if (!item.empty()) fn(item);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
}

Method classify(std::string_view m) noexcept {
  switch (m.size()) {
    case 3:
      if (m == "GET") return Method::Get;
      if (m == "PUT") return Method::Put;
      break;
    case 4:
      if (m == "HEAD") return Method::Head;
      if (m == "POST") return Method::Post;
      break;
    case 5:
      if (m == "PATCH") return Method::Patch;
      if (m == "TRACE") return Method::Trace;
      break;
    case 6:
      if (m == "DELETE") return Method::Delete;
      break;
    case 7:
      if (m == "OPTIONS") return Method::Options;
      if (m == "CONNECT") return Method::Connect;
      break;
    default:
      break;
  }
  return Method::Other;
}

/// Position of the first LF in [from, n), or n.
inline std::uint32_t find_lf(const char* p, std::uint32_t from, std::uint32_t n) noexcept {
  const void* hit = std::memchr(p + from, '\n', n - from);
  return hit == nullptr ? n : static_cast<std::uint32_t>(static_cast<const char*>(hit) - p);
}

}  // namespace

std::optional<std::string_view> Request::find(std::string_view name) const noexcept {
  for (std::size_t i = 0; i < headers_; ++i) {
    const Header h = field(i);
    if (h.name.size() != name.size()) continue;
    bool same = true;
    for (std::size_t k = 0; k < name.size() && same; ++k) same = lower(h.name[k]) == lower(name[k]);
    if (same) return h.value;
  }
  return std::nullopt;
}

Header Request::field(std::size_t i) const noexcept {
  const detail::FieldSpan& f = fields_[i];
  return {std::string_view(base_ + f.name_off, f.name_len), std::string_view(base_ + f.value_off, f.value_len)};
}

RequestParser::RequestParser(const Limits& limits) noexcept : limits_(limits) {
  limits_.max_headers = std::min(limits_.max_headers, kMaxFields / 2);  // headers and trailers share the table
  limits_.max_body_bytes = std::min<std::uint64_t>(limits_.max_body_bytes, kMaxSpan / 2);
  limits_.max_target_bytes = std::min<std::uint32_t>(limits_.max_target_bytes, kMaxSpan / 4);
  limits_.max_header_bytes = std::min<std::uint32_t>(limits_.max_header_bytes, kMaxSpan / 4);
  req_.fields_ = field_;
}

void RequestParser::reset() noexcept {
  state_ = State::RequestLine;
  headers_done_ = expect_continue_ = has_length_ = false;
  te_seen_ = te_chunked_ = te_chunked_last_ = te_unknown_ = te_bad_ = false;
  conn_close_ = conn_keep_alive_ = false;
  version_minor_ = 1;
  method_ = Method::Other;
  fields_ = trailers_ = 0;
  error_ = 0;
  line_ = scan_ = 0;
  method_off_ = method_len_ = target_off_ = target_len_ = 0;
  section_start_ = body_start_ = 0;
  body_len_ = content_length_ = chunk_left_ = 0;
}

ParseResult RequestParser::fail(std::uint16_t status) noexcept {
  state_ = State::Failed;
  error_ = status;
  return {ParseStatus::Error, status, 0};
}

ParseResult RequestParser::complete(const char* base) noexcept {
  state_ = State::Complete;
  req_.base_ = base;
  req_.fields_ = field_;
  req_.headers_ = fields_;
  req_.trailers_ = trailers_;
  req_.method_text = std::string_view(base + method_off_, method_len_);
  req_.target = std::string_view(base + target_off_, target_len_);
  req_.body = std::string_view(base + body_start_, static_cast<std::size_t>(body_len_));
  req_.content_length = te_chunked_ ? body_len_ : content_length_;
  req_.method = method_;
  req_.version_minor = version_minor_;
  req_.keep_alive = version_minor_ >= 1 ? !conn_close_ : (conn_keep_alive_ && !conn_close_);
  req_.expect_continue = expect_continue_;
  req_.chunked = te_chunked_;
  return {ParseStatus::Complete, 0, line_};
}

std::uint16_t RequestParser::request_line(const char* p, std::uint32_t end, bool* done) noexcept {
  // Strictly left to right: the status depends only on the first offending byte, so a line judged
  // before its LF arrived (too long) gets the same answer as the whole line would.
  *done = false;
  std::uint32_t i = line_;
  while (i < end && is(p[i], kToken)) {
    if (++i - line_ > kMaxMethodBytes) return kBadRequest;
  }
  if (i == end) return 0;
  if (p[i] != ' ' || i == line_) return kBadRequest;
  method_off_ = line_;
  method_len_ = i - line_;
  const std::uint32_t t = ++i;
  while (i < end && is(p[i], kVisible)) {
    if (++i - t > limits_.max_target_bytes) return kUriTooLong;
  }
  if (i == end) return 0;
  if (p[i] != ' ' || i == t) return kBadRequest;
  target_off_ = t;
  target_len_ = i - t;
  ++i;
  constexpr std::string_view kVersion = "HTTP/1.?\r\n";
  for (std::uint32_t k = 0; k < kVersion.size(); ++k, ++i) {
    if (i == end) return 0;
    const bool match = kVersion[k] == '?' ? (p[i] >= '0' && p[i] <= '9') : p[i] == kVersion[k];
    if (!match) return kBadRequest;
  }
  version_minor_ = static_cast<std::uint8_t>(p[i - 3] - '0');
  method_ = classify(std::string_view(p + method_off_, method_len_));
  *done = true;
  return 0;
}

std::uint16_t RequestParser::field_line(const char* p, std::uint32_t end, bool trailer) noexcept {
  std::uint32_t i = line_;
  if (is_ows(p[i])) return kBadRequest;  // obs-fold, or whitespace before the field name
  while (i < end && is(p[i], kToken)) ++i;
  if (i == line_ || i >= end || p[i] != ':') return kBadRequest;
  const std::uint32_t name_len = i - line_;
  std::uint32_t v = i + 1;
  std::uint32_t e = end;
  while (v < e && is_ows(p[v])) ++v;
  while (e > v && is_ows(p[e - 1])) --e;
  for (std::uint32_t k = v; k < e; ++k) {
    if (!is(p[k], kFieldValue)) return kBadRequest;
  }
  const std::uint16_t count = trailer ? trailers_ : fields_;
  if (count >= limits_.max_headers) return kHeadersTooLarge;
  if (name_len > 0xFFFF) return kHeadersTooLarge;
  field_[fields_ + trailers_] = {line_, v, e - v, static_cast<std::uint16_t>(name_len)};
  if (trailer) {
    ++trailers_;
    return 0;
  }
  ++fields_;

  const std::string_view name(p + line_, name_len);
  const std::string_view value(p + v, e - v);
  if (iequals(name, "content-length")) {
    if (value.empty() || value.size() > 18) return kBadRequest;  // 18 digits cannot overflow 64 bits
    std::uint64_t n = 0;
    for (char c : value) {
      if (c < '0' || c > '9') return kBadRequest;
      n = n * 10 + static_cast<std::uint64_t>(c - '0');
    }
    if (has_length_ && n != content_length_) return kBadRequest;
    has_length_ = true;
    content_length_ = n;
  } else if (iequals(name, "transfer-encoding")) {
    te_seen_ = true;
    for_each_element(value, [&](std::string_view coding) {
      if (iequals(coding, "chunked")) {
        if (te_chunked_) te_bad_ = true;  // chunked twice
        te_chunked_ = true;
        te_chunked_last_ = true;
      } else {
        te_unknown_ = true;
        te_chunked_last_ = false;
      }
    });
  } else if (iequals(name, "connection")) {
    for_each_element(value, [&](std::string_view token) {
      if (iequals(token, "close")) conn_close_ = true;
      if (iequals(token, "keep-alive")) conn_keep_alive_ = true;
    });
  } else if (iequals(name, "expect")) {
    if (iequals(value, "100-continue")) expect_continue_ = true;
  }
  return 0;
}

std::uint16_t RequestParser::end_of_headers() noexcept {
  headers_done_ = true;
  body_start_ = line_;
  body_len_ = 0;
  if (te_seen_) {
    if (has_length_) return kBadRequest;
    if (te_unknown_) return kNotImplemented;
    if (!te_chunked_ || !te_chunked_last_ || te_bad_) return kBadRequest;
    state_ = State::ChunkSize;
    return 0;
  }
  if (has_length_) {
    if (content_length_ > limits_.max_body_bytes) return kTooLarge;
    state_ = State::Body;
    return 0;
  }
  state_ = State::Complete;  // no body
  return 0;
}

std::uint16_t RequestParser::chunk_size_line(const char* p, std::uint32_t end) noexcept {
  std::uint32_t i = line_;
  std::uint64_t size = 0;
  while (i < end && is(p[i], kHex)) {
    if (i - line_ >= 16) return kBadRequest;
    const char c = lower(p[i]);
    size = (size << 4) | static_cast<std::uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
    ++i;
  }
  if (i == line_) return kBadRequest;
  std::uint32_t k = i;
  while (k < end && is_ows(p[k])) ++k;  // BWS before a chunk extension
  if (k < end) {
    if (p[k] != ';' || k + 1 >= end) return kBadRequest;
    for (std::uint32_t x = k + 1; x < end; ++x) {
      if (!is(p[x], kFieldValue)) return kBadRequest;
    }
  } else if (k != i) {
    return kBadRequest;  // trailing whitespace without an extension
  }
  if (size > limits_.max_body_bytes || body_len_ + size > limits_.max_body_bytes) return kTooLarge;
  chunk_left_ = size;
  return 0;
}

ParseResult RequestParser::parse(std::span<char> data) noexcept {
  if (state_ == State::Complete) reset();
  if (state_ == State::Failed) return {ParseStatus::Error, error_, 0};
  char* const p = data.data();
  const auto n = static_cast<std::uint32_t>(std::min(data.size(), kMaxSpan));

  for (;;) {
    switch (state_) {
      case State::RequestLine: {
        while (line_ == scan_ && line_ < n && p[line_] == '\r') {  // blank lines before the request
          if (line_ + 1 >= n) return {};
          if (p[line_ + 1] != '\n') return fail(kBadRequest);
          line_ += 2;
          scan_ = line_;
          if (line_ > kMaxLeadingBlank) return fail(kBadRequest);
        }
        const std::uint32_t lf = find_lf(p, scan_, n);
        bool done = false;
        if (lf == n) {
          scan_ = n;
          // Longer than any valid line: judge the prefix (it holds the first offending byte).
          const std::uint64_t longest = std::uint64_t{limits_.max_target_bytes} + kMaxMethodBytes + 12;
          if (n - line_ <= longest) return {};
          const std::uint16_t s = request_line(p, n, &done);
          return fail(s != 0 ? s : kBadRequest);
        }
        if (const std::uint16_t s = request_line(p, lf + 1, &done); s != 0 || !done) {
          return fail(s != 0 ? s : kBadRequest);
        }
        line_ = scan_ = lf + 1;
        section_start_ = line_;
        state_ = State::Headers;
        break;
      }
      case State::Headers:
      case State::Trailers: {
        const bool trailer = state_ == State::Trailers;
        const std::uint32_t lf = find_lf(p, scan_, n);
        if (lf == n) {
          scan_ = n;
          if (n - section_start_ > limits_.max_header_bytes) return fail(kHeadersTooLarge);
          return {};
        }
        if (lf + 1 - section_start_ > limits_.max_header_bytes) return fail(kHeadersTooLarge);
        if (lf == line_ || p[lf - 1] != '\r') return fail(kBadRequest);
        if (lf - 1 == line_) {  // the blank line
          line_ = scan_ = lf + 1;
          if (trailer) return complete(p);
          if (const std::uint16_t s = end_of_headers(); s != 0) return fail(s);
          if (state_ == State::Complete) return complete(p);
          break;
        }
        if (const std::uint16_t s = field_line(p, lf - 1, trailer); s != 0) return fail(s);
        line_ = scan_ = lf + 1;
        break;
      }
      case State::Body: {
        if (n - body_start_ < content_length_) return {};
        body_len_ = content_length_;
        line_ = scan_ = static_cast<std::uint32_t>(body_start_ + content_length_);
        return complete(p);
      }
      case State::ChunkSize: {
        const std::uint32_t lf = find_lf(p, scan_, n);
        if (lf == n) {
          scan_ = n;
          if (n - line_ > limits_.max_chunk_line_bytes) return fail(kBadRequest);
          return {};
        }
        if (lf - line_ > limits_.max_chunk_line_bytes) return fail(kBadRequest);
        if (lf == line_ || p[lf - 1] != '\r') return fail(kBadRequest);
        if (const std::uint16_t s = chunk_size_line(p, lf - 1); s != 0) return fail(s);
        line_ = scan_ = lf + 1;
        if (chunk_left_ == 0) {
          section_start_ = line_;
          state_ = State::Trailers;
        } else {
          state_ = State::ChunkData;
        }
        break;
      }
      case State::ChunkData: {
        const auto take = static_cast<std::uint32_t>(std::min<std::uint64_t>(n - line_, chunk_left_));
        const std::uint64_t dst = body_start_ + body_len_;
        if (dst != line_ && take != 0) std::memmove(p + dst, p + line_, take);
        body_len_ += take;
        chunk_left_ -= take;
        line_ = scan_ = line_ + take;
        if (chunk_left_ != 0) return {};
        state_ = State::ChunkDataEnd;
        break;
      }
      case State::ChunkDataEnd: {
        if (line_ < n && p[line_] != '\r') return fail(kBadRequest);
        if (n - line_ < 2) return {};
        if (p[line_ + 1] != '\n') return fail(kBadRequest);
        line_ = scan_ = line_ + 2;
        state_ = State::ChunkSize;
        break;
      }
      case State::Complete:
      case State::Failed:
        return {ParseStatus::Error, error_ == 0 ? kBadRequest : error_, 0};
    }
  }
}

std::string_view reason_phrase(std::uint16_t status) noexcept {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "";
  }
}

}  // namespace hypergate::http
