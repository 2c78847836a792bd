#pragma once
// MoldUDP64 (NASDAQ) framing: a zero-copy view over a downstream datagram, a builder that writes one
// into a caller's buffer, and the re-request packet. Wire format: /work/shared/PROTOCOLS.md §2.
//
//   +------------+----------------+-------+-------------+----------+-------------+----------+---
//   | Session 10 | Sequence 8 (BE)| Count | MsgLen 2(BE)| data ... | MsgLen 2(BE)| data ... | ...
//   +------------+----------------+-------+-------------+----------+-------------+----------+---
//   Count 0 = heartbeat, 0xFFFF = end of session (both carry no blocks; Sequence = next expected).
//
// Contract
//  - PacketView::parse() validates the WHOLE datagram once: the header is complete, exactly Count
//    message blocks fit, no block runs past the end, no byte is left over. Every disagreement is a
//    typed PacketError and the view is not usable. So is a Sequence + Count that would wrap 2^64
//    (every consumer does sequence arithmetic on it). After a successful parse, iteration cannot fail
//    and reads only inside the datagram (it re-reads the 2-byte lengths it already checked).
//    Why validate up front: a market-data consumer must not act on the first messages of a packet
//    whose tail is corrupt (the sequence arithmetic of the whole packet would be wrong).
//  - Zero-copy: views and MessageBlock::data point into the datagram; they live as long as it does.
//  - No allocation, no exception, no syscall anywhere in this header or its .cpp.
//  - PacketBuilder writes into caller memory and never exceeds the byte budget it was given.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "protocols/wire.hpp"

namespace hypergate::protocols::mold {

inline constexpr std::size_t kSessionSize = 10;
inline constexpr std::size_t kHeaderSize = 20;       ///< Session 10 + Sequence 8 + Count 2
inline constexpr std::size_t kBlockHeaderSize = 2;   ///< Message Length before each message
inline constexpr std::size_t kRequestSize = 20;      ///< Session 10 + Sequence 8 + Requested Count 2
inline constexpr std::uint16_t kHeartbeatCount = 0;
inline constexpr std::uint16_t kEndOfSessionCount = 0xFFFF;
/// Largest Count a data packet may carry (0xFFFF is reserved for end of session).
inline constexpr std::uint16_t kMaxDataCount = 0xFFFE;
/// UDP payload that fits one 1500-byte Ethernet frame without fragmentation (1500 - 20 IP - 8 UDP).
inline constexpr std::size_t kEthernetMtuPayload = 1472;

/// A 10-character session name, left-justified and space padded, compared byte for byte.
struct SessionName {
  std::array<char, kSessionSize> chars{' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};

  /// `text` padded with spaces (or truncated) to 10 characters.
  [[nodiscard]] static SessionName from(std::string_view text) noexcept {
    SessionName s;
    for (std::size_t i = 0; i < kSessionSize && i < text.size(); ++i) s.chars[i] = text[i];
    return s;
  }
  [[nodiscard]] static SessionName from_wire(const std::byte* p) noexcept {
    SessionName s;
    for (std::size_t i = 0; i < kSessionSize; ++i) s.chars[i] = static_cast<char>(p[i]);
    return s;
  }
  /// All 10 characters, padding included.
  [[nodiscard]] std::string_view view() const noexcept { return {chars.data(), chars.size()}; }
  /// Without the trailing spaces.
  [[nodiscard]] std::string_view trimmed() const noexcept { return wire::trim_right(view()); }
  friend bool operator==(const SessionName&, const SessionName&) = default;
};

/// Why a datagram is not a valid MoldUDP64 packet (each one a counted reject reason).
enum class PacketError : std::uint8_t {
  Ok = 0,
  TruncatedHeader,       ///< fewer than 20 bytes
  TruncatedBlockLength,  ///< a block's 2-byte length field is cut by the end of the datagram
  BlockOverrun,          ///< a block's length runs past the end of the datagram
  TrailingBytes,         ///< bytes left after Count blocks (or after a heartbeat / end of session)
  SequenceOverflow,      ///< Sequence + Count does not fit 64 bits (sequence arithmetic would wrap)
};
inline constexpr std::size_t kPacketErrorCount = 6;

[[nodiscard]] constexpr std::string_view to_string(PacketError e) noexcept {
  switch (e) {
    case PacketError::Ok: return "ok";
    case PacketError::TruncatedHeader: return "truncated_header";
    case PacketError::TruncatedBlockLength: return "truncated_block_length";
    case PacketError::BlockOverrun: return "block_overrun";
    case PacketError::TrailingBytes: return "trailing_bytes";
    case PacketError::SequenceOverflow: return "sequence_overflow";
  }
  return "unknown";
}

/// One message of a packet with its sequence number.
struct MessageBlock {
  std::uint64_t sequence = 0;
  Bytes data;
};

/// Sentinel ending a MessageRange: the sequence one past the last message.
struct MessageRangeEnd {
  std::uint64_t sequence = 0;
};

/// Forward iterator over the message blocks of a validated packet. Compared with MessageRangeEnd
/// by sequence, so a range may stop before the end of its packet.
class MessageIterator {
 public:
  using value_type = MessageBlock;
  using difference_type = std::ptrdiff_t;

  MessageIterator() = default;
  MessageIterator(const std::byte* pos, std::uint64_t sequence) noexcept : pos_(pos), sequence_(sequence) {}

  [[nodiscard]] MessageBlock operator*() const noexcept {
    return {sequence_, Bytes{pos_ + kBlockHeaderSize, wire::load_be16(pos_)}};
  }
  MessageIterator& operator++() noexcept {
    pos_ += kBlockHeaderSize + wire::load_be16(pos_);
    ++sequence_;
    return *this;
  }
  MessageIterator operator++(int) noexcept {
    MessageIterator old = *this;
    ++*this;
    return old;
  }
  [[nodiscard]] std::uint64_t sequence() const noexcept { return sequence_; }
  friend bool operator==(const MessageIterator& a, const MessageIterator& b) noexcept {
    return a.sequence_ == b.sequence_;
  }
  friend bool operator==(const MessageIterator& a, MessageRangeEnd b) noexcept {
    return a.sequence_ == b.sequence;
  }

 private:
  const std::byte* pos_ = nullptr;  // at the Message Length field of the current block
  std::uint64_t sequence_ = 0;
};

/// Contiguous messages [begin().sequence(), end().sequence) of one validated packet.
class MessageRange {
 public:
  MessageRange() = default;
  MessageRange(MessageIterator first, std::uint64_t end_sequence) noexcept : first_(first), end_{end_sequence} {}
  [[nodiscard]] MessageIterator begin() const noexcept { return first_; }
  [[nodiscard]] MessageRangeEnd end() const noexcept { return end_; }
  [[nodiscard]] std::uint64_t first_sequence() const noexcept { return first_.sequence(); }
  [[nodiscard]] std::uint64_t end_sequence() const noexcept { return end_.sequence; }
  [[nodiscard]] std::uint64_t size() const noexcept { return end_.sequence - first_.sequence(); }
  [[nodiscard]] bool empty() const noexcept { return size() == 0; }

 private:
  MessageIterator first_;
  MessageRangeEnd end_;
};

/// A validated downstream packet. Obtain one with parse(); a default-constructed view is empty.
class PacketView {
 public:
  PacketView() = default;

  /// Validates `datagram` (see the contract above). On Ok, `out` views it; otherwise `out` is untouched.
  [[nodiscard]] static PacketError parse(Bytes datagram, PacketView& out) noexcept;

  /// For bytes that were already validated by parse() (e.g. a copy kept in a buffer).
  [[nodiscard]] static PacketView from_validated(Bytes datagram) noexcept { return PacketView(datagram); }

  [[nodiscard]] std::string_view session() const noexcept { return wire::chars(bytes_.data(), kSessionSize); }
  [[nodiscard]] SessionName session_name() const noexcept { return SessionName::from_wire(bytes_.data()); }
  /// Sequence number of the first message (for heartbeat / end of session: the next expected one).
  [[nodiscard]] std::uint64_t sequence() const noexcept { return wire::load_be64(bytes_.data() + kSessionSize); }
  /// The raw Count field (0 heartbeat, 0xFFFF end of session).
  [[nodiscard]] std::uint16_t count() const noexcept { return wire::load_be16(bytes_.data() + 18); }
  /// Messages carried: Count, or 0 for heartbeat / end of session.
  [[nodiscard]] std::uint16_t message_count() const noexcept {
    const std::uint16_t c = count();
    return c == kEndOfSessionCount ? std::uint16_t{0} : c;
  }
  [[nodiscard]] bool is_heartbeat() const noexcept { return count() == kHeartbeatCount; }
  [[nodiscard]] bool is_end_of_session() const noexcept { return count() == kEndOfSessionCount; }
  /// Sequence the receiver expects after this packet: Sequence + messages carried.
  [[nodiscard]] std::uint64_t next_sequence() const noexcept { return sequence() + message_count(); }
  [[nodiscard]] Bytes bytes() const noexcept { return bytes_; }

  /// Every message of the packet.
  [[nodiscard]] MessageRange messages() const noexcept {
    return {MessageIterator(bytes_.data() + kHeaderSize, sequence()), next_sequence()};
  }
  /// Messages with sequence in [from, to), clamped to the packet (walks the skipped blocks).
  [[nodiscard]] MessageRange messages(std::uint64_t from, std::uint64_t to) const noexcept;

  [[nodiscard]] MessageIterator begin() const noexcept { return messages().begin(); }
  [[nodiscard]] MessageRangeEnd end() const noexcept { return messages().end(); }

 private:
  explicit PacketView(Bytes datagram) noexcept : bytes_(datagram) {}
  Bytes bytes_;
};

/// Writes one downstream packet into caller memory: start(), append()/reserve() messages while they
/// fit in the budget, finish(). Reusable: start() again for the next packet.
class PacketBuilder {
 public:
  /// `budget` = the largest datagram to produce (e.g. kEthernetMtuPayload); clamped to out.size().
  explicit PacketBuilder(MutableBytes out, std::size_t budget = static_cast<std::size_t>(-1)) noexcept;

  /// Begins a packet whose first message will carry `first_sequence`.
  void start(const SessionName& session, std::uint64_t first_sequence) noexcept;
  /// Appends one message; false (nothing written) if it does not fit the budget, the count limit
  /// (kMaxDataCount) or the 2-byte length field.
  [[nodiscard]] bool append(Bytes message) noexcept;
  /// Reserves `size` bytes for a message the caller writes in place; empty span if it does not fit.
  [[nodiscard]] MutableBytes reserve(std::size_t size) noexcept;
  /// Would a message of `size` bytes still fit?
  [[nodiscard]] bool fits(std::size_t size) const noexcept;
  /// Writes the Count and returns the finished datagram (valid until the next start()).
  [[nodiscard]] Bytes finish() noexcept;

  [[nodiscard]] std::uint16_t count() const noexcept { return count_; }
  [[nodiscard]] bool empty() const noexcept { return count_ == 0; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] std::uint64_t first_sequence() const noexcept { return first_sequence_; }
  [[nodiscard]] std::uint64_t next_sequence() const noexcept { return first_sequence_ + count_; }

 private:
  MutableBytes out_;
  std::size_t budget_ = 0;
  std::size_t size_ = 0;
  std::uint64_t first_sequence_ = 0;
  std::uint16_t count_ = 0;
};

/// Heartbeat: Count 0, Sequence = the next sequence the sender will use. Returns bytes written
/// (kHeaderSize) or 0 if `out` is too small.
[[nodiscard]] std::size_t write_heartbeat(MutableBytes out, const SessionName& session,
                                          std::uint64_t next_sequence) noexcept;
/// End of session: Count 0xFFFF, Sequence = the next sequence. Returns kHeaderSize or 0.
[[nodiscard]] std::size_t write_end_of_session(MutableBytes out, const SessionName& session,
                                               std::uint64_t next_sequence) noexcept;

/// An inclusive range of sequence numbers (a gap, a loss range).
struct Gap {
  std::uint64_t first = 0;
  std::uint64_t last = 0;
  [[nodiscard]] std::uint64_t size() const noexcept { return last - first + 1; }
  friend bool operator==(const Gap&, const Gap&) = default;
};

/// Re-request (client -> re-request server): resend `count` messages from `sequence`.
struct Request {
  SessionName session;
  std::uint64_t sequence = 0;
  std::uint16_t count = 0;
  friend bool operator==(const Request&, const Request&) = default;
};

/// Parses a re-request datagram: exactly kRequestSize bytes (TruncatedHeader if fewer,
/// TrailingBytes if more).
[[nodiscard]] PacketError parse_request(Bytes datagram, Request& out) noexcept;
/// Writes a re-request; returns kRequestSize or 0 if `out` is too small.
[[nodiscard]] std::size_t write_request(MutableBytes out, const Request& request) noexcept;

}  // namespace hypergate::protocols::mold
