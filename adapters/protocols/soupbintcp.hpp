#pragma once
// SoupBinTCP 3.0 codec (PROTOCOLS.md §4): pure functions over bytes, no I/O, no allocation, fuzzable.
//
// Wire shape: every packet is Packet Length (2 bytes, big-endian, counts the type byte and the payload
// but not itself) · Packet Type (1 byte) · payload. A stream of packets is split with
// split_soup_frame(); a partial packet answers NeedMore (the caller keeps the bytes and offers them
// again with more), a zero length (no type byte) or a length above the caller's maximum is an Error:
// framing is lost and the connection must be closed.
//
// Contract
//  - Parsers never read outside the span they are given and never allocate; every field they return
//    is a view into the caller's bytes (valid as long as those bytes are).
//  - Parsing is strict: a packet type not valid in that direction, a payload of the wrong size for a
//    fixed-size packet (L, A, J, H, Z, R, O), a non-numeric or overflowing sequence number, a reject
//    reason other than 'A'/'S' are errors with a SoupError reason; variable packets (+, S, U) accept
//    any payload.
//  - Alphanumeric fields are returned with their padding spaces stripped on both sides (Username and
//    Password are left-justified, Session right-justified on the wire; clients differ, so both
//    paddings are accepted). A sequence number is 1..20 ASCII digits with spaces on either side and
//    none inside; an all-blank sequence is an error (PROTOCOLS.md: 0, not blank, means "next live").
//  - Builders write one complete packet into a caller buffer and return its size, or 0 (nothing
//    written) when it does not fit or a field is too long for its wire width. Alphanumeric fields are
//    padded the way the specification shows them: Username/Password/RequestedSession on the right
//    (left-justified), Session in Login Accepted on the left; sequence numbers right-justified.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace hypergate::protocols {

inline constexpr std::size_t kSoupHeaderBytes = 3;  ///< Packet Length(2) + Packet Type(1)
inline constexpr std::size_t kSoupUsernameBytes = 6;
inline constexpr std::size_t kSoupPasswordBytes = 10;
inline constexpr std::size_t kSoupSessionBytes = 10;
inline constexpr std::size_t kSoupSequenceBytes = 20;
inline constexpr std::size_t kSoupLoginRequestPayload =
    kSoupUsernameBytes + kSoupPasswordBytes + kSoupSessionBytes + kSoupSequenceBytes;
inline constexpr std::size_t kSoupLoginAcceptedPayload = kSoupSessionBytes + kSoupSequenceBytes;
/// The largest payload a packet can carry: Packet Length is 16 bits and includes the type byte.
inline constexpr std::size_t kSoupMaxPayload = 0xFFFF - 1;
static_assert(kSoupLoginRequestPayload == 46 && kSoupLoginAcceptedPayload == 30, "SoupBinTCP 3.0 field widths");

enum class SoupType : char {
  // server -> client
  Debug = '+',
  LoginAccepted = 'A',
  LoginRejected = 'J',
  SequencedData = 'S',
  ServerHeartbeat = 'H',
  EndOfSession = 'Z',
  // client -> server
  LoginRequest = 'L',
  UnsequencedData = 'U',
  ClientHeartbeat = 'R',
  LogoutRequest = 'O',
};

enum class SoupRejectReason : char { NotAuthorized = 'A', SessionUnavailable = 'S' };

enum class SoupError : std::uint8_t {
  None = 0,
  ZeroLength,      ///< Packet Length 0: no type byte
  TooLong,         ///< Packet Length above the configured maximum
  UnknownType,     ///< not a packet type of this direction
  BadPayloadSize,  ///< a fixed-size packet with the wrong payload size
  BadSequence,     ///< sequence number not 1..20 digits (space padded) or above 2^64-1
  BadReason,       ///< Login Rejected reason other than 'A' or 'S'
};
[[nodiscard]] std::string_view to_string(SoupError e) noexcept;

enum class SoupSplitStatus : std::uint8_t { Frame, NeedMore, Error };

/// One packet located in a byte stream.
struct SoupFrame {
  char type = 0;
  std::string_view payload;  ///< after the type byte
  std::size_t size = 0;      ///< whole packet: kSoupHeaderBytes + payload.size()
};

struct SoupSplit {
  SoupSplitStatus status = SoupSplitStatus::NeedMore;
  SoupError error = SoupError::None;
  SoupFrame frame;  ///< valid when status == Frame
};

/// Locates the packet at the start of `bytes`. `max_length` bounds Packet Length (type + payload;
/// at most 0xFFFF). NeedMore until the whole packet is present; the caller consumes frame.size bytes.
[[nodiscard]] SoupSplit split_soup_frame(std::string_view bytes, std::size_t max_length = 0xFFFF) noexcept;

struct SoupLoginRequest {
  std::string_view username;  ///< padding stripped
  std::string_view password;
  std::string_view session;   ///< empty: the current session
  std::uint64_t sequence = 0; ///< 0: next live message
};

/// A packet a client sends (L, U, R, O).
struct SoupClientPacket {
  SoupType type = SoupType::ClientHeartbeat;
  SoupLoginRequest login;     ///< type LoginRequest
  std::string_view payload;   ///< type UnsequencedData: the message
};

struct SoupLoginAccepted {
  std::string_view session;   ///< padding stripped
  std::uint64_t sequence = 0; ///< the next sequence number the server will send
};

/// A packet a server sends (+, A, J, S, H, Z).
struct SoupServerPacket {
  SoupType type = SoupType::ServerHeartbeat;
  SoupLoginAccepted accepted;          ///< type LoginAccepted
  SoupRejectReason reason = SoupRejectReason::NotAuthorized;  ///< type LoginRejected
  std::string_view payload;            ///< types SequencedData and Debug
};

[[nodiscard]] SoupError parse_soup_client_packet(const SoupFrame& frame, SoupClientPacket& out) noexcept;
[[nodiscard]] SoupError parse_soup_server_packet(const SoupFrame& frame, SoupServerPacket& out) noexcept;

/// Parses a sequence number field (see the header comment for the accepted shapes).
[[nodiscard]] bool parse_soup_sequence(std::string_view field, std::uint64_t& out) noexcept;

// Builders: one packet into `out`; the packet size, or 0 when it does not fit or a field is too long.
/// Any packet made of a type and a payload (+, S, U, and the empty H, Z, R, O).
std::size_t build_soup_packet(std::span<char> out, SoupType type, std::string_view payload) noexcept;
/// Writes just the 3-byte header of a packet with `payload_size` payload bytes (for payloads copied
/// in place afterwards). False when `payload_size` exceeds kSoupMaxPayload or `out` is too small.
bool write_soup_header(std::span<char> out, SoupType type, std::size_t payload_size) noexcept;
std::size_t build_soup_login_request(std::span<char> out, std::string_view username, std::string_view password,
                                     std::string_view session, std::uint64_t sequence) noexcept;
std::size_t build_soup_login_accepted(std::span<char> out, std::string_view session, std::uint64_t sequence) noexcept;
std::size_t build_soup_login_rejected(std::span<char> out, SoupRejectReason reason) noexcept;

}  // namespace hypergate::protocols
