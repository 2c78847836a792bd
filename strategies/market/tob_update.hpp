#pragma once
// TobUpdate: the normalized top-of-book update that subscribers receive (SoupBinTCP sequenced data,
// UDP/MoldUDP64 republishing, NATS). One fixed-size record per change of one symbol's best bid or
// ask: a subscriber never needs the ITCH order flow to know the touch.
//
// WIRE FORMAT (kTobUpdateSize = 52 bytes, every integer big-endian, no padding)
//   offset size field          notes
//   0      1    type           'T'
//   1      1    flags          bit 0 STALE: the symbol's data followed an unrecovered gap;
//                              bits 1-7 reserved, sent as 0, kept on decode (forward compatible)
//   2      2    stock locate   the feed's locate code of the symbol
//   4      8    symbol         ASCII, left-justified, space padded (ITCH Stock)
//   12     4    bid price      Price(4): integer, 4 implied decimals; 0 with bid qty 0 = no bid
//   16     8    bid qty        total shares at the best bid
//   24     4    ask price      Price(4); 0 with ask qty 0 = no ask
//   28     8    ask qty        total shares at the best ask
//   36     8    timestamp      ITCH timestamp of the message that changed the book, ns since midnight
//   44     8    sequence       gateway sequence of this update (per publisher, from 1, no gaps)
//
// decode_tob_update() accepts exactly kTobUpdateSize bytes starting with 'T' and rejects anything
// else with Status::Malformed; it never reads outside the span. encode/decode/to_json never allocate
// (the std::string overload of to_json is for the cold path and tests).
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "hypergate/core/status.hpp"

namespace hypergate::market {

class OrderBook;

inline constexpr std::size_t kTobUpdateSize = 52;
inline constexpr char kTobUpdateType = 'T';

enum TobFlags : std::uint8_t {
  kTobNone = 0,
  kTobStale = 1u << 0,   ///< after an unrecovered gap: the values may be wrong
};

struct TobUpdate {
  std::uint16_t locate = 0;
  std::array<char, 8> symbol{' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
  std::uint32_t bid_price = 0;
  std::uint64_t bid_qty = 0;
  std::uint32_t ask_price = 0;
  std::uint64_t ask_qty = 0;
  std::uint64_t timestamp_ns = 0;
  std::uint64_t sequence = 0;
  std::uint8_t flags = kTobNone;

  [[nodiscard]] bool stale() const noexcept { return (flags & kTobStale) != 0; }
  /// The symbol without its trailing spaces.
  [[nodiscard]] std::string_view symbol_trimmed() const noexcept;

  friend bool operator==(const TobUpdate&, const TobUpdate&) = default;
};

/// Writes the 52-byte record.
void encode_tob_update(const TobUpdate& u, std::span<std::byte, kTobUpdateSize> out) noexcept;
/// Parses a record; Status::Malformed unless `in` is exactly 52 bytes starting with 'T'.
[[nodiscard]] Status decode_tob_update(std::span<const std::byte> in, TobUpdate& out) noexcept;

/// Longest to_json() output (all numbers at their maximum, every symbol byte escaped as \u00XX).
inline constexpr std::size_t kTobJsonMax = 320;
/// JSON for NATS's JSON mode, one object, no whitespace:
/// {"type":"T","locate":7,"symbol":"AAPL","bid_price":1500000,"bid_qty":300,"ask_price":1501000,
///  "ask_qty":200,"timestamp_ns":34200000000000,"sequence":42,"stale":false}
/// The symbol is trimmed of trailing spaces and escaped. Returns the bytes written, or 0 (nothing
/// usable written) if `out` is smaller than needed; kTobJsonMax is always enough.
[[nodiscard]] std::size_t to_json(const TobUpdate& u, std::span<char> out) noexcept;
[[nodiscard]] std::string to_json(const TobUpdate& u);

/// The update describing `locate`'s current top of book in `book`.
[[nodiscard]] TobUpdate make_tob_update(const OrderBook& book, std::uint16_t locate, std::uint64_t timestamp_ns,
                                        std::uint64_t sequence, std::uint8_t flags = kTobNone) noexcept;

}  // namespace hypergate::market
