// SoupBinTCP 3.0 codec; see soupbintcp.hpp for the contract.
#include "protocols/soupbintcp.hpp"

#include <cstring>

#include "protocols/wire.hpp"

namespace hypergate::protocols {
namespace {

constexpr bool is_space(char c) noexcept { return c == ' '; }
constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

/// Padding stripped on both sides (clients pad Alpha fields either way).
std::string_view trim_spaces(std::string_view s) noexcept {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  return wire::trim_right(s);
}

std::byte* as_bytes(char* p) noexcept { return reinterpret_cast<std::byte*>(p); }

/// `value` left-justified in `width` bytes, space padded (the caller checked that it fits).
void put_left(char* out, std::size_t width, std::string_view value) noexcept {
  wire::store_alpha(as_bytes(out), width, value);
}

/// `value` right-justified in `width` bytes, space padded; false when it is too long.
bool put_right(char* out, std::size_t width, std::string_view value) noexcept {
  if (value.size() > width) return false;
  std::memset(out, ' ', width - value.size());
  std::memcpy(out + (width - value.size()), value.data(), value.size());
  return true;
}

/// Decimal digits of `v` right-justified in the 20-byte sequence field (2^64-1 has 20 digits).
void put_sequence(char* out, std::uint64_t v) noexcept {
  char digits[kSoupSequenceBytes];
  std::size_t n = 0;
  do {
    digits[kSoupSequenceBytes - 1 - n] = static_cast<char>('0' + v % 10);
    v /= 10;
    ++n;
  } while (v != 0);
  (void)put_right(out, kSoupSequenceBytes, std::string_view(digits + (kSoupSequenceBytes - n), n));
}

}  // namespace

std::string_view to_string(SoupError e) noexcept {
  switch (e) {
    case SoupError::None: return "none";
    case SoupError::ZeroLength: return "zero_length";
    case SoupError::TooLong: return "too_long";
    case SoupError::UnknownType: return "unknown_type";
    case SoupError::BadPayloadSize: return "bad_payload_size";
    case SoupError::BadSequence: return "bad_sequence";
    case SoupError::BadReason: return "bad_reason";
  }
  return "unknown";
}

SoupSplit split_soup_frame(std::string_view bytes, std::size_t max_length) noexcept {
  SoupSplit r;
  if (bytes.size() < 2) return r;  // NeedMore
  const std::size_t length = wire::load_be16(reinterpret_cast<const std::byte*>(bytes.data()));
  if (length == 0) {
    r.status = SoupSplitStatus::Error;
    r.error = SoupError::ZeroLength;
    return r;
  }
  if (length > max_length) {
    r.status = SoupSplitStatus::Error;
    r.error = SoupError::TooLong;
    return r;
  }
  if (bytes.size() < 2 + length) return r;  // NeedMore
  r.status = SoupSplitStatus::Frame;
  r.frame.type = bytes[2];
  r.frame.payload = bytes.substr(kSoupHeaderBytes, length - 1);
  r.frame.size = 2 + length;
  return r;
}

bool parse_soup_sequence(std::string_view field, std::uint64_t& out) noexcept {
  const std::string_view digits = trim_spaces(field);
  if (digits.empty()) return false;
  std::uint64_t v = 0;
  for (const char c : digits) {
    if (!is_digit(c)) return false;  // includes a space inside the number
    const auto d = static_cast<std::uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;  // overflow
    v = v * 10 + d;
  }
  out = v;
  return true;
}

SoupError parse_soup_client_packet(const SoupFrame& frame, SoupClientPacket& out) noexcept {
  const std::string_view p = frame.payload;
  switch (static_cast<SoupType>(frame.type)) {
    case SoupType::LoginRequest: {
      if (p.size() != kSoupLoginRequestPayload) return SoupError::BadPayloadSize;
      SoupLoginRequest login;
      std::size_t at = 0;
      login.username = trim_spaces(p.substr(at, kSoupUsernameBytes));
      at += kSoupUsernameBytes;
      login.password = trim_spaces(p.substr(at, kSoupPasswordBytes));
      at += kSoupPasswordBytes;
      login.session = trim_spaces(p.substr(at, kSoupSessionBytes));
      at += kSoupSessionBytes;
      if (!parse_soup_sequence(p.substr(at, kSoupSequenceBytes), login.sequence)) return SoupError::BadSequence;
      out.type = SoupType::LoginRequest;
      out.login = login;
      out.payload = {};
      return SoupError::None;
    }
    case SoupType::UnsequencedData:
      out.type = SoupType::UnsequencedData;
      out.payload = p;
      return SoupError::None;
    case SoupType::ClientHeartbeat:
    case SoupType::LogoutRequest:
      if (!p.empty()) return SoupError::BadPayloadSize;
      out.type = static_cast<SoupType>(frame.type);
      out.payload = {};
      return SoupError::None;
    default:
      return SoupError::UnknownType;
  }
}

SoupError parse_soup_server_packet(const SoupFrame& frame, SoupServerPacket& out) noexcept {
  const std::string_view p = frame.payload;
  switch (static_cast<SoupType>(frame.type)) {
    case SoupType::LoginAccepted: {
      if (p.size() != kSoupLoginAcceptedPayload) return SoupError::BadPayloadSize;
      SoupLoginAccepted a;
      a.session = trim_spaces(p.substr(0, kSoupSessionBytes));
      if (!parse_soup_sequence(p.substr(kSoupSessionBytes, kSoupSequenceBytes), a.sequence))
        return SoupError::BadSequence;
      out.type = SoupType::LoginAccepted;
      out.accepted = a;
      out.payload = {};
      return SoupError::None;
    }
    case SoupType::LoginRejected:
      if (p.size() != 1) return SoupError::BadPayloadSize;
      if (p[0] != static_cast<char>(SoupRejectReason::NotAuthorized) &&
          p[0] != static_cast<char>(SoupRejectReason::SessionUnavailable))
        return SoupError::BadReason;
      out.type = SoupType::LoginRejected;
      out.reason = static_cast<SoupRejectReason>(p[0]);
      out.payload = {};
      return SoupError::None;
    case SoupType::SequencedData:
    case SoupType::Debug:
      out.type = static_cast<SoupType>(frame.type);
      out.payload = p;
      return SoupError::None;
    case SoupType::ServerHeartbeat:
    case SoupType::EndOfSession:
      if (!p.empty()) return SoupError::BadPayloadSize;
      out.type = static_cast<SoupType>(frame.type);
      out.payload = {};
      return SoupError::None;
    default:
      return SoupError::UnknownType;
  }
}

bool write_soup_header(std::span<char> out, SoupType type, std::size_t payload_size) noexcept {
  if (payload_size > kSoupMaxPayload || out.size() < kSoupHeaderBytes) return false;
  wire::store_be16(as_bytes(out.data()), static_cast<std::uint16_t>(payload_size + 1));
  out[2] = static_cast<char>(type);
  return true;
}

std::size_t build_soup_packet(std::span<char> out, SoupType type, std::string_view payload) noexcept {
  const std::size_t size = kSoupHeaderBytes + payload.size();
  if (out.size() < size || !write_soup_header(out, type, payload.size())) return 0;
  if (!payload.empty()) std::memcpy(out.data() + kSoupHeaderBytes, payload.data(), payload.size());
  return size;
}

std::size_t build_soup_login_request(std::span<char> out, std::string_view username, std::string_view password,
                                     std::string_view session, std::uint64_t sequence) noexcept {
  constexpr std::size_t kSize = kSoupHeaderBytes + kSoupLoginRequestPayload;
  if (out.size() < kSize || username.size() > kSoupUsernameBytes || password.size() > kSoupPasswordBytes ||
      session.size() > kSoupSessionBytes)
    return 0;
  (void)write_soup_header(out, SoupType::LoginRequest, kSoupLoginRequestPayload);
  char* p = out.data() + kSoupHeaderBytes;
  put_left(p, kSoupUsernameBytes, username);
  p += kSoupUsernameBytes;
  put_left(p, kSoupPasswordBytes, password);
  p += kSoupPasswordBytes;
  put_left(p, kSoupSessionBytes, session);
  p += kSoupSessionBytes;
  put_sequence(p, sequence);
  return kSize;
}

std::size_t build_soup_login_accepted(std::span<char> out, std::string_view session, std::uint64_t sequence) noexcept {
  constexpr std::size_t kSize = kSoupHeaderBytes + kSoupLoginAcceptedPayload;
  if (out.size() < kSize || session.size() > kSoupSessionBytes) return 0;
  (void)write_soup_header(out, SoupType::LoginAccepted, kSoupLoginAcceptedPayload);
  char* p = out.data() + kSoupHeaderBytes;
  (void)put_right(p, kSoupSessionBytes, session);
  put_sequence(p + kSoupSessionBytes, sequence);
  return kSize;
}

std::size_t build_soup_login_rejected(std::span<char> out, SoupRejectReason reason) noexcept {
  const char r = static_cast<char>(reason);
  return build_soup_packet(out, SoupType::LoginRejected, std::string_view(&r, 1));
}

}  // namespace hypergate::protocols
