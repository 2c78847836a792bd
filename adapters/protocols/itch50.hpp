#pragma once
// NASDAQ TotalView-ITCH 5.0: every message type of PROTOCOLS.md §3 as
//   - a zero-copy view (`AddOrderView`, ...) with one big-endian accessor per field, over bytes whose
//     length was checked ONCE against the type (validate()/visit()); accessors then read fixed offsets
//     with no further checks, which is safe because every offset + width is inside the checked size
//     (the static_asserts below prove the layout tables are contiguous and end exactly at the size);
//   - a plain struct (`AddOrder`, ...) and encode(struct, out) for producers (generator, tests).
//
// Why X-macro tables: 23 message types x (struct, view, encoder, layout check) would otherwise be
// ~70 hand-written copies of the same field list, each a chance to get an offset wrong. One table per
// type is the single source of truth; it doubles as the wire map (field, type, offset).
//
// Contract
//  - validate(msg): Ok, or a reject reason: Empty (no type byte), UnknownType, LengthMismatch (the
//    length differs from the type's size; a message is exactly one MoldUDP64/SoupBinTCP block).
//    A rejected message is never read beyond its type byte.
//  - visit(msg, handler): validate, then call handler(XxxView) for the type; branch-light (one table
//    lookup + one switch), header-inline, no allocation, no exception of its own.
//  - Alpha fields: views return the raw std::string_view (padding kept); wire::trim_right() or
//    Alpha<N>::trimmed() drop the padding. Price(4) is std::uint32_t, Price(8) std::uint64_t (4 and 8
//    implied decimals). Timestamp: nanoseconds since midnight (48 bits), as std::uint64_t.
//  - Views point into the caller's bytes and live as long as they do.
#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string_view>
#include <type_traits>

#include "protocols/wire.hpp"

namespace hypergate::protocols::itch {

inline constexpr std::size_t kHeaderSize = 11;  ///< Type 1 + Stock Locate 2 + Tracking Number 2 + Timestamp 6
inline constexpr std::size_t kMaxMessageSize = 50;  ///< NOII ('I')

/// An n-character Alpha field held by value: left-justified, space padded.
template <std::size_t N>
struct Alpha {
  static_assert(N > 1, "1-character Alpha fields are plain char");
  std::array<char, N> chars = [] {
    std::array<char, N> a{};
    a.fill(' ');
    return a;
  }();

  /// `text` padded with spaces (or truncated) to N characters.
  [[nodiscard]] static constexpr Alpha from(std::string_view text) noexcept {
    Alpha a;
    for (std::size_t i = 0; i < N && i < text.size(); ++i) a.chars[i] = text[i];
    return a;
  }
  [[nodiscard]] constexpr std::string_view view() const noexcept { return {chars.data(), N}; }
  [[nodiscard]] constexpr std::string_view trimmed() const noexcept { return wire::trim_right(view()); }
  friend constexpr bool operator==(const Alpha&, const Alpha&) = default;
};

/// How one field type is read from and written to the wire.
template <class T>
struct Field;
template <>
struct Field<char> {
  static constexpr std::size_t kSize = 1;
  using View = char;
  static char load(const std::byte* p) noexcept { return static_cast<char>(*p); }
  static void store(std::byte* p, char v) noexcept { *p = static_cast<std::byte>(v); }
};
template <>
struct Field<std::uint32_t> {
  static constexpr std::size_t kSize = 4;
  using View = std::uint32_t;
  static std::uint32_t load(const std::byte* p) noexcept { return wire::load_be32(p); }
  static void store(std::byte* p, std::uint32_t v) noexcept { wire::store_be32(p, v); }
};
template <>
struct Field<std::uint64_t> {
  static constexpr std::size_t kSize = 8;
  using View = std::uint64_t;
  static std::uint64_t load(const std::byte* p) noexcept { return wire::load_be64(p); }
  static void store(std::byte* p, std::uint64_t v) noexcept { wire::store_be64(p, v); }
};
template <std::size_t N>
struct Field<Alpha<N>> {
  static constexpr std::size_t kSize = N;
  using View = std::string_view;
  static std::string_view load(const std::byte* p) noexcept { return wire::chars(p, N); }
  static void store(std::byte* p, const Alpha<N>& v) noexcept { wire::store_alpha(p, N, v.view()); }
};

// ---- The tables: F(field type, field name, byte offset) after the 11-byte header --------------------
#define HG_ITCH_FIELDS_S(F) F(char, event_code, 11)
#define HG_ITCH_FIELDS_R(F)                                                                              \
  F(Alpha<8>, stock, 11) F(char, market_category, 19) F(char, financial_status, 20)                      \
  F(std::uint32_t, round_lot_size, 21) F(char, round_lots_only, 25) F(char, issue_classification, 26)    \
  F(Alpha<2>, issue_sub_type, 27) F(char, authenticity, 29) F(char, short_sale_threshold, 30)            \
  F(char, ipo_flag, 31) F(char, luld_ref_price_tier, 32) F(char, etp_flag, 33)                           \
  F(std::uint32_t, etp_leverage_factor, 34) F(char, inverse_indicator, 38)
#define HG_ITCH_FIELDS_H(F) \
  F(Alpha<8>, stock, 11) F(char, trading_state, 19) F(char, reserved, 20) F(Alpha<4>, reason, 21)
#define HG_ITCH_FIELDS_Y(F) F(Alpha<8>, stock, 11) F(char, reg_sho_action, 19)
#define HG_ITCH_FIELDS_L(F)                                                                    \
  F(Alpha<4>, mpid, 11) F(Alpha<8>, stock, 15) F(char, primary_market_maker, 23)                \
  F(char, market_maker_mode, 24) F(char, market_participant_state, 25)
#define HG_ITCH_FIELDS_V(F) F(std::uint64_t, level1, 11) F(std::uint64_t, level2, 19) F(std::uint64_t, level3, 27)
#define HG_ITCH_FIELDS_W(F) F(char, breached_level, 11)
#define HG_ITCH_FIELDS_K(F)                                                                     \
  F(Alpha<8>, stock, 11) F(std::uint32_t, release_time, 19) F(char, release_qualifier, 23)       \
  F(std::uint32_t, ipo_price, 24)
#define HG_ITCH_FIELDS_J(F)                                                                     \
  F(Alpha<8>, stock, 11) F(std::uint32_t, ref_price, 19) F(std::uint32_t, upper_collar, 23)      \
  F(std::uint32_t, lower_collar, 27) F(std::uint32_t, extension, 31)
#define HG_ITCH_FIELDS_h(F) F(Alpha<8>, stock, 11) F(char, market_code, 19) F(char, halt_action, 20)
#define HG_ITCH_FIELDS_A(F)                                                                     \
  F(std::uint64_t, order_ref, 11) F(char, side, 19) F(std::uint32_t, shares, 20)                 \
  F(Alpha<8>, stock, 24) F(std::uint32_t, price, 32)
#define HG_ITCH_FIELDS_F(F) HG_ITCH_FIELDS_A(F) F(Alpha<4>, attribution, 36)
#define HG_ITCH_FIELDS_E(F) \
  F(std::uint64_t, order_ref, 11) F(std::uint32_t, executed_shares, 19) F(std::uint64_t, match_number, 23)
#define HG_ITCH_FIELDS_C(F) HG_ITCH_FIELDS_E(F) F(char, printable, 31) F(std::uint32_t, execution_price, 32)
#define HG_ITCH_FIELDS_X(F) F(std::uint64_t, order_ref, 11) F(std::uint32_t, canceled_shares, 19)
#define HG_ITCH_FIELDS_D(F) F(std::uint64_t, order_ref, 11)
#define HG_ITCH_FIELDS_U(F)                                                                     \
  F(std::uint64_t, original_ref, 11) F(std::uint64_t, new_ref, 19) F(std::uint32_t, shares, 27)  \
  F(std::uint32_t, price, 31)
#define HG_ITCH_FIELDS_P(F) HG_ITCH_FIELDS_A(F) F(std::uint64_t, match_number, 36)
#define HG_ITCH_FIELDS_Q(F)                                                                     \
  F(std::uint64_t, shares, 11) F(Alpha<8>, stock, 19) F(std::uint32_t, cross_price, 27)          \
  F(std::uint64_t, match_number, 31) F(char, cross_type, 39)
#define HG_ITCH_FIELDS_B(F) F(std::uint64_t, match_number, 11)
#define HG_ITCH_FIELDS_I(F)                                                                     \
  F(std::uint64_t, paired_shares, 11) F(std::uint64_t, imbalance_shares, 19)                     \
  F(char, imbalance_direction, 27) F(Alpha<8>, stock, 28) F(std::uint32_t, far_price, 36)        \
  F(std::uint32_t, near_price, 40) F(std::uint32_t, current_ref_price, 44) F(char, cross_type, 48) \
  F(char, price_variation, 49)
#define HG_ITCH_FIELDS_N(F) F(Alpha<8>, stock, 11) F(char, interest_flag, 19)
#define HG_ITCH_FIELDS_O(F)                                                                         \
  F(Alpha<8>, stock, 11) F(char, open_eligibility, 19) F(std::uint32_t, min_allowable_price, 20)     \
  F(std::uint32_t, max_allowable_price, 24) F(std::uint32_t, near_exec_price, 28)                    \
  F(std::uint64_t, near_exec_time, 32) F(std::uint32_t, lower_price_collar, 40)                      \
  F(std::uint32_t, upper_price_collar, 44)

/// X(Name, type char, size, field table): every ITCH 5.0 message of PROTOCOLS.md §3. Public on
/// purpose: tests, fuzzers and tools expand it to cover every type without listing them again.
#define HG_ITCH_MESSAGES(X)                                  \
  X(SystemEvent, 'S', 12, HG_ITCH_FIELDS_S)                  \
  X(StockDirectory, 'R', 39, HG_ITCH_FIELDS_R)               \
  X(StockTradingAction, 'H', 25, HG_ITCH_FIELDS_H)           \
  X(RegShoRestriction, 'Y', 20, HG_ITCH_FIELDS_Y)            \
  X(MarketParticipantPosition, 'L', 26, HG_ITCH_FIELDS_L)    \
  X(MwcbDeclineLevel, 'V', 35, HG_ITCH_FIELDS_V)             \
  X(MwcbStatus, 'W', 12, HG_ITCH_FIELDS_W)                   \
  X(IpoQuotingPeriodUpdate, 'K', 28, HG_ITCH_FIELDS_K)       \
  X(LuldAuctionCollar, 'J', 35, HG_ITCH_FIELDS_J)            \
  X(OperationalHalt, 'h', 21, HG_ITCH_FIELDS_h)              \
  X(AddOrder, 'A', 36, HG_ITCH_FIELDS_A)                     \
  X(AddOrderMpid, 'F', 40, HG_ITCH_FIELDS_F)                 \
  X(OrderExecuted, 'E', 31, HG_ITCH_FIELDS_E)                \
  X(OrderExecutedWithPrice, 'C', 36, HG_ITCH_FIELDS_C)       \
  X(OrderCancel, 'X', 23, HG_ITCH_FIELDS_X)                  \
  X(OrderDelete, 'D', 19, HG_ITCH_FIELDS_D)                  \
  X(OrderReplace, 'U', 35, HG_ITCH_FIELDS_U)                 \
  X(Trade, 'P', 44, HG_ITCH_FIELDS_P)                        \
  X(CrossTrade, 'Q', 40, HG_ITCH_FIELDS_Q)                   \
  X(BrokenTrade, 'B', 19, HG_ITCH_FIELDS_B)                  \
  X(Noii, 'I', 50, HG_ITCH_FIELDS_I)                         \
  X(Rpii, 'N', 20, HG_ITCH_FIELDS_N)                         \
  X(DlcrPriceDiscovery, 'O', 48, HG_ITCH_FIELDS_O)

// ---- Type -> size table ---------------------------------------------------------------------------
#define HG_ITCH_COUNT_ONE(Name, code, SIZE, FIELDS) +1
inline constexpr std::size_t kMessageTypeCount = 0 HG_ITCH_MESSAGES(HG_ITCH_COUNT_ONE);
#undef HG_ITCH_COUNT_ONE

#define HG_ITCH_TYPE_CHAR(Name, code, SIZE, FIELDS) code,
/// Every type byte, in the order of PROTOCOLS.md §3.
inline constexpr std::array<char, kMessageTypeCount> kMessageTypes{HG_ITCH_MESSAGES(HG_ITCH_TYPE_CHAR)};
#undef HG_ITCH_TYPE_CHAR

/// kMessageSize[type byte] = exact message size, 0 for an unknown type.
inline constexpr std::array<std::uint8_t, 256> kMessageSize = [] {
  std::array<std::uint8_t, 256> t{};
#define HG_ITCH_SIZE_ENTRY(Name, code, SIZE, FIELDS) t[static_cast<unsigned char>(code)] = SIZE;
  HG_ITCH_MESSAGES(HG_ITCH_SIZE_ENTRY)
#undef HG_ITCH_SIZE_ENTRY
  return t;
}();

/// Exact size of a message of `type`, 0 if the type is unknown.
[[nodiscard]] constexpr std::size_t message_size(char type) noexcept {
  return kMessageSize[static_cast<unsigned char>(type)];
}

/// The struct name of a type ("AddOrder"), "Unknown" for an unknown type.
[[nodiscard]] constexpr std::string_view type_name(char type) noexcept {
  switch (type) {
#define HG_ITCH_NAME_CASE(Name, code, SIZE, FIELDS) \
  case code: return #Name;
    HG_ITCH_MESSAGES(HG_ITCH_NAME_CASE)
#undef HG_ITCH_NAME_CASE
    default: return "Unknown";
  }
}

// ---- Layout proof: each table is contiguous from byte 11 and ends exactly at the type's size ---------
namespace detail {
struct FieldSpan {
  std::size_t offset;
  std::size_t size;
};
[[nodiscard]] constexpr bool layout_is_exact(std::initializer_list<FieldSpan> fields, std::size_t size) noexcept {
  std::size_t at = kHeaderSize;
  for (const FieldSpan& f : fields) {
    if (f.offset != at) return false;
    at += f.size;
  }
  return at == size;
}
}  // namespace detail

#define HG_ITCH_LAYOUT_ENTRY(T, name, off) detail::FieldSpan{off, Field<T>::kSize},
#define HG_ITCH_LAYOUT_CHECK(Name, code, SIZE, FIELDS)                                    \
  static_assert(detail::layout_is_exact({FIELDS(HG_ITCH_LAYOUT_ENTRY)}, SIZE),            \
                "ITCH " #Name ": field offsets must be contiguous and end at the size");  \
  static_assert(SIZE <= kMaxMessageSize);
HG_ITCH_MESSAGES(HG_ITCH_LAYOUT_CHECK)
#undef HG_ITCH_LAYOUT_CHECK
#undef HG_ITCH_LAYOUT_ENTRY

// ---- Plain structs ---------------------------------------------------------------------------------
#define HG_ITCH_STRUCT_FIELD(T, name, off) T name{};
#define HG_ITCH_DEFINE_STRUCT(Name, code, SIZE, FIELDS)               \
  struct Name {                                                       \
    static constexpr char kType = code;                               \
    static constexpr std::size_t kSize = SIZE;                        \
    std::uint16_t stock_locate = 0;                                   \
    std::uint16_t tracking_number = 0;                                \
    std::uint64_t timestamp = 0; /* ns since midnight, 48 bits */     \
    FIELDS(HG_ITCH_STRUCT_FIELD)                                      \
    friend bool operator==(const Name&, const Name&) = default;       \
  };
HG_ITCH_MESSAGES(HG_ITCH_DEFINE_STRUCT)
#undef HG_ITCH_DEFINE_STRUCT
#undef HG_ITCH_STRUCT_FIELD

// ---- Views -----------------------------------------------------------------------------------------
/// The common header of every message. Only constructed over bytes that passed validate().
class MessageView {
 public:
  explicit MessageView(const std::byte* p) noexcept : p_(p) {}
  [[nodiscard]] char type() const noexcept { return static_cast<char>(p_[0]); }
  [[nodiscard]] std::uint16_t stock_locate() const noexcept { return wire::load_be16(p_ + 1); }
  [[nodiscard]] std::uint16_t tracking_number() const noexcept { return wire::load_be16(p_ + 3); }
  [[nodiscard]] std::uint64_t timestamp() const noexcept { return wire::load_be48(p_ + 5); }
  [[nodiscard]] const std::byte* data() const noexcept { return p_; }

 protected:
  const std::byte* p_;
};

#define HG_ITCH_VIEW_ACCESSOR(T, name, off) \
  [[nodiscard]] Field<T>::View name() const noexcept { return Field<T>::load(p_ + off); }
#define HG_ITCH_TO_STRUCT_FIELD(T, name, off) m.name = to_value<T>(name());
#define HG_ITCH_DEFINE_VIEW(Name, code, SIZE, FIELDS)                                      \
  class Name##View : public MessageView {                                                  \
   public:                                                                                 \
    using Message = Name;                                                                  \
    static constexpr char kType = code;                                                    \
    static constexpr std::size_t kSize = SIZE;                                             \
    explicit Name##View(const std::byte* p) noexcept : MessageView(p) {}                   \
    [[nodiscard]] Bytes bytes() const noexcept { return {p_, kSize}; }                     \
    FIELDS(HG_ITCH_VIEW_ACCESSOR)                                                          \
    /** Copies every field into the plain struct. */                                       \
    [[nodiscard]] Name to_struct() const noexcept {                                        \
      Name m;                                                                              \
      m.stock_locate = stock_locate();                                                     \
      m.tracking_number = tracking_number();                                               \
      m.timestamp = timestamp();                                                           \
      FIELDS(HG_ITCH_TO_STRUCT_FIELD)                                                      \
      return m;                                                                            \
    }                                                                                      \
                                                                                           \
   private:                                                                                \
    template <class T, class V>                                                            \
    static T to_value(V v) noexcept {                                                      \
      if constexpr (std::is_same_v<V, std::string_view>) {                                 \
        return T::from(v);                                                                 \
      } else {                                                                             \
        return v;                                                                          \
      }                                                                                    \
    }                                                                                      \
  };
HG_ITCH_MESSAGES(HG_ITCH_DEFINE_VIEW)
#undef HG_ITCH_DEFINE_VIEW
#undef HG_ITCH_TO_STRUCT_FIELD
#undef HG_ITCH_VIEW_ACCESSOR

// ---- Encoders --------------------------------------------------------------------------------------
#define HG_ITCH_ENCODE_FIELD(T, name, off) Field<T>::store(p + off, m.name);
#define HG_ITCH_DEFINE_ENCODE(Name, code, SIZE, FIELDS)                                   \
  /** Writes `m` (exactly Name::kSize bytes); returns that size, or 0 if `out` is too small. */ \
  [[nodiscard]] inline std::size_t encode(const Name& m, MutableBytes out) noexcept {     \
    if (out.size() < SIZE) return 0;                                                      \
    std::byte* p = out.data();                                                            \
    p[0] = static_cast<std::byte>(code);                                                  \
    wire::store_be16(p + 1, m.stock_locate);                                              \
    wire::store_be16(p + 3, m.tracking_number);                                           \
    wire::store_be48(p + 5, m.timestamp);                                                 \
    FIELDS(HG_ITCH_ENCODE_FIELD)                                                          \
    return SIZE;                                                                          \
  }
HG_ITCH_MESSAGES(HG_ITCH_DEFINE_ENCODE)
#undef HG_ITCH_DEFINE_ENCODE
#undef HG_ITCH_ENCODE_FIELD

// ---- Decoding --------------------------------------------------------------------------------------
/// Why a message is rejected (each one a counted reject reason).
enum class DecodeError : std::uint8_t {
  Ok = 0,
  Empty,           ///< zero bytes: no type
  UnknownType,     ///< type byte not in PROTOCOLS.md §3
  LengthMismatch,  ///< length differs from the type's exact size (too short or too long)
};
inline constexpr std::size_t kDecodeErrorCount = 4;

[[nodiscard]] constexpr std::string_view to_string(DecodeError e) noexcept {
  switch (e) {
    case DecodeError::Ok: return "ok";
    case DecodeError::Empty: return "empty";
    case DecodeError::UnknownType: return "unknown_type";
    case DecodeError::LengthMismatch: return "length_mismatch";
  }
  return "unknown";
}

/// Checks the type and the exact length. Reads at most the first byte of `msg`.
[[nodiscard]] inline DecodeError validate(Bytes msg) noexcept {
  if (msg.empty()) [[unlikely]] return DecodeError::Empty;
  const std::size_t expected = kMessageSize[static_cast<unsigned char>(msg[0])];
  // An unknown type has size 0, which no non-empty message matches: one check on the hot path.
  if (msg.size() != expected) [[unlikely]] {
    return expected == 0 ? DecodeError::UnknownType : DecodeError::LengthMismatch;
  }
  return DecodeError::Ok;
}

/// Validates `msg`; if Ok, calls handler(XxxView) with the view of its type. The handler must accept
/// every view type (a generic lambda with `if constexpr`, or an overload set).
template <class Handler>
[[nodiscard]] inline DecodeError visit(Bytes msg, Handler&& handler) {
  const DecodeError e = validate(msg);
  if (e != DecodeError::Ok) [[unlikely]] return e;
  switch (static_cast<char>(msg[0])) {
#define HG_ITCH_VISIT_CASE(Name, code, SIZE, FIELDS) \
  case code:                                         \
    handler(Name##View(msg.data()));                 \
    break;
    HG_ITCH_MESSAGES(HG_ITCH_VISIT_CASE)
#undef HG_ITCH_VISIT_CASE
    default: break;  // unreachable: validate() accepted only known types
  }
  return DecodeError::Ok;
}

/// The view of type V over `msg` if `msg` is a valid message of exactly that type.
template <class V>
[[nodiscard]] inline std::optional<V> view_as(Bytes msg) noexcept {
  if (msg.size() != V::kSize || static_cast<char>(msg[0]) != V::kType) return std::nullopt;
  return V(msg.data());
}

/// Accepted messages by type and rejects by reason, for reports ("messages by type, rejects by reason").
struct DecodeCounters {
  std::array<std::uint64_t, 256> by_type{};                    ///< accepted, indexed by type byte
  std::array<std::uint64_t, kDecodeErrorCount> by_error{};     ///< index 0 (Ok) = accepted total

  void record(DecodeError e, Bytes msg) noexcept {
    ++by_error[static_cast<std::size_t>(e)];
    if (e == DecodeError::Ok) ++by_type[static_cast<unsigned char>(msg[0])];
  }
  [[nodiscard]] std::uint64_t accepted() const noexcept { return by_error[0]; }
  [[nodiscard]] std::uint64_t rejected() const noexcept {
    std::uint64_t n = 0;
    for (std::size_t i = 1; i < kDecodeErrorCount; ++i) n += by_error[i];
    return n;
  }
  [[nodiscard]] std::uint64_t rejects(DecodeError e) const noexcept { return by_error[static_cast<std::size_t>(e)]; }
  [[nodiscard]] std::uint64_t count(char type) const noexcept { return by_type[static_cast<unsigned char>(type)]; }
};

/// Validates and counts in one step; returns the reason.
[[nodiscard]] inline DecodeError check(Bytes msg, DecodeCounters& counters) noexcept {
  const DecodeError e = validate(msg);
  counters.record(e, msg);
  return e;
}

}  // namespace hypergate::protocols::itch
