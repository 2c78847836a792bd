// ITCH 5.0 codec: for EVERY message type of PROTOCOLS.md §3, struct -> encode -> validate/visit ->
// view, with every field compared; hand-built wire bytes pin the offsets independently of the tables;
// every wrong length of every type, every unknown type byte and truncated headers are rejected with
// their own reason. Inputs are exact-size heap copies, so an over-read would trip ASan.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "protocols/itch50.hpp"

namespace {

using namespace hypergate::protocols;
using namespace hypergate::protocols::itch;

std::vector<std::byte> to_bytes(std::initializer_list<int> v) {
  std::vector<std::byte> out;
  for (int b : v) out.push_back(static_cast<std::byte>(b));
  return out;
}

// Distinct, non-trivial values per field so a swapped or shifted field cannot compare equal.
struct Filler {
  unsigned k = 0;
  void operator()(char& c) { c = static_cast<char>('a' + (k++ % 26)); }
  void operator()(std::uint32_t& v) { v = 0x81020304u + 0x01010101u * (k++); }
  void operator()(std::uint64_t& v) { v = 0x8102030405060708ull + 0x0101010101010101ull * (k++); }
  template <std::size_t N>
  void operator()(Alpha<N>& a) {
    for (std::size_t i = 0; i < N; ++i) a.chars[i] = static_cast<char>('A' + ((k + i) % 26));
    if (N > 2) a.chars[N - 1] = ' ';  // keep some padding in play
    ++k;
  }
};

template <class V>
auto expected_view(const V& v) {
  if constexpr (std::is_same_v<V, char> || std::is_integral_v<V>) {
    return v;
  } else {
    return v.view();
  }
}

#define HG_TEST_FILL(T, name, off) fill(m.name);
#define HG_TEST_CHECK(T, name, off) EXPECT_EQ(view.name(), expected_view(m.name)) << #name;
#define HG_TEST_ROUND_TRIP(Name, code, SIZE, FIELDS)                                          \
  TEST(Itch50RoundTrip, Name) {                                                               \
    Name m;                                                                                   \
    m.stock_locate = 0xBEEF;                                                                  \
    m.tracking_number = 0x1234;                                                               \
    m.timestamp = 0x8765'4321'0FEDull;                                                        \
    Filler fill;                                                                              \
    FIELDS(HG_TEST_FILL)                                                                      \
    std::vector<std::byte> wire_bytes(kMaxMessageSize + 8, std::byte{0xEE});                   \
    ASSERT_EQ(encode(m, MutableBytes{wire_bytes}), std::size_t{SIZE});                        \
    EXPECT_EQ(wire_bytes[SIZE], std::byte{0xEE}) << "encode wrote past the message";           \
    wire_bytes.resize(SIZE);                                                                  \
    EXPECT_EQ(static_cast<char>(wire_bytes[0]), code);                                        \
    EXPECT_EQ(message_size(code), std::size_t{SIZE});                                         \
    EXPECT_EQ(validate(Bytes{wire_bytes}), DecodeError::Ok);                                  \
    int calls = 0;                                                                            \
    const DecodeError e = visit(Bytes{wire_bytes}, [&](auto view) {                           \
      ++calls;                                                                                \
      if constexpr (std::is_same_v<decltype(view), Name##View>) {                             \
        EXPECT_EQ(view.type(), code);                                                         \
        EXPECT_EQ(view.stock_locate(), 0xBEEF);                                               \
        EXPECT_EQ(view.tracking_number(), 0x1234);                                            \
        EXPECT_EQ(view.timestamp(), 0x8765'4321'0FEDull);                                     \
        EXPECT_EQ(view.bytes().size(), std::size_t{SIZE});                                    \
        FIELDS(HG_TEST_CHECK)                                                                 \
        EXPECT_TRUE(view.to_struct() == m);                                                   \
      } else {                                                                                \
        ADD_FAILURE() << "visit chose the wrong view for " #Name;                             \
      }                                                                                       \
    });                                                                                       \
    EXPECT_EQ(e, DecodeError::Ok);                                                            \
    EXPECT_EQ(calls, 1);                                                                      \
    auto typed = view_as<Name##View>(Bytes{wire_bytes});                                      \
    ASSERT_TRUE(typed.has_value());                                                           \
    EXPECT_TRUE(typed->to_struct() == m);                                                     \
    std::vector<std::byte> small(SIZE - 1);                                                   \
    EXPECT_EQ(encode(m, MutableBytes{small}), 0u) << "encode into a too-small buffer";        \
  }
HG_ITCH_MESSAGES(HG_TEST_ROUND_TRIP)
#undef HG_TEST_ROUND_TRIP
#undef HG_TEST_CHECK
#undef HG_TEST_FILL

TEST(Itch50, EveryTypeOfTheSpecIsInTheTable) {
  const std::string expected = "SRHYLVWKJhAFECXDUPQBINO";
  ASSERT_EQ(kMessageTypes.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(kMessageTypes[i], expected[i]);
  EXPECT_EQ(type_name('A'), "AddOrder");
  EXPECT_EQ(type_name('h'), "OperationalHalt");
  EXPECT_EQ(type_name('z'), "Unknown");
}

// Offsets pinned by hand from PROTOCOLS.md §3, independent of the X-macro tables.
TEST(Itch50, AddOrderBytesByHand) {
  const auto wire_bytes = to_bytes({'A', 0x00, 0x07, 0x00, 0x02, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,  // header
                                    0, 0, 0, 0, 0, 0, 0x30, 0x39,                                      // ref 12345
                                    'B', 0x00, 0x00, 0x01, 0x2C,                                       // side, 300
                                    'A', 'A', 'P', 'L', ' ', ' ', ' ', ' ',                            // stock
                                    0x00, 0x16, 0xE3, 0x60});                                          // 1500000
  ASSERT_EQ(wire_bytes.size(), 36u);
  const auto v = view_as<AddOrderView>(Bytes{wire_bytes});
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->stock_locate(), 7);
  EXPECT_EQ(v->tracking_number(), 2);
  EXPECT_EQ(v->timestamp(), 0x010203040506ull);
  EXPECT_EQ(v->order_ref(), 12345u);
  EXPECT_EQ(v->side(), 'B');
  EXPECT_EQ(v->shares(), 300u);
  EXPECT_EQ(v->stock(), "AAPL    ");
  EXPECT_EQ(wire::trim_right(v->stock()), "AAPL");
  EXPECT_EQ(v->price(), 1500000u);

  AddOrder m;
  m.stock_locate = 7;
  m.tracking_number = 2;
  m.timestamp = 0x010203040506ull;
  m.order_ref = 12345;
  m.side = 'B';
  m.shares = 300;
  m.stock = Alpha<8>::from("AAPL");
  m.price = 1500000;
  std::vector<std::byte> out(36);
  ASSERT_EQ(encode(m, MutableBytes{out}), 36u);
  EXPECT_EQ(out, wire_bytes);
}

TEST(Itch50, NoiiAndDlcrBytesByHand) {
  // I: Paired(8)@11 Imbalance(8)@19 Direction@27 Stock@28 Far@36 Near@40 Ref@44 CrossType@48 Var@49
  std::vector<std::byte> noii(50, std::byte{0});
  noii[0] = std::byte{'I'};
  noii[18] = std::byte{9};    // paired = 9
  noii[26] = std::byte{3};    // imbalance = 3
  noii[27] = std::byte{'S'};
  for (int i = 0; i < 8; ++i) noii[28 + i] = std::byte{'Z'};
  noii[39] = std::byte{1};    // far = 1
  noii[43] = std::byte{2};    // near = 2
  noii[47] = std::byte{4};    // ref = 4
  noii[48] = std::byte{'O'};
  noii[49] = std::byte{'L'};
  const auto v = view_as<NoiiView>(Bytes{noii});
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->paired_shares(), 9u);
  EXPECT_EQ(v->imbalance_shares(), 3u);
  EXPECT_EQ(v->imbalance_direction(), 'S');
  EXPECT_EQ(v->stock(), "ZZZZZZZZ");
  EXPECT_EQ(v->far_price(), 1u);
  EXPECT_EQ(v->near_price(), 2u);
  EXPECT_EQ(v->current_ref_price(), 4u);
  EXPECT_EQ(v->cross_type(), 'O');
  EXPECT_EQ(v->price_variation(), 'L');

  // O: NearExecTime(8)@32, UpperCollar(4)@44.
  std::vector<std::byte> dlcr(48, std::byte{0});
  dlcr[0] = std::byte{'O'};
  dlcr[39] = std::byte{0x2A};
  dlcr[47] = std::byte{0x07};
  const auto d = view_as<DlcrPriceDiscoveryView>(Bytes{dlcr});
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->near_exec_time(), 0x2Au);
  EXPECT_EQ(d->upper_price_collar(), 7u);
  EXPECT_EQ(d->lower_price_collar(), 0u);
}

TEST(Itch50, EveryWrongLengthOfEveryTypeIsALengthMismatch) {
  for (const char type : kMessageTypes) {
    const std::size_t size = message_size(type);
    for (std::size_t len = 1; len <= kMaxMessageSize + 4; ++len) {
      std::vector<std::byte> msg(len, std::byte{0x41});
      msg[0] = static_cast<std::byte>(type);
      const DecodeError want = len == size ? DecodeError::Ok : DecodeError::LengthMismatch;
      EXPECT_EQ(validate(Bytes{msg}), want) << type << " len " << len;
      int calls = 0;
      EXPECT_EQ(visit(Bytes{msg}, [&](auto) { ++calls; }), want);
      EXPECT_EQ(calls, len == size ? 1 : 0);
    }
  }
}

TEST(Itch50, TruncatedHeadersAreRejected) {
  for (const char type : kMessageTypes) {
    for (std::size_t len = 1; len < kHeaderSize; ++len) {
      std::vector<std::byte> msg(len, std::byte{0});
      msg[0] = static_cast<std::byte>(type);
      EXPECT_EQ(validate(Bytes{msg}), DecodeError::LengthMismatch);
    }
  }
  EXPECT_EQ(validate(Bytes{}), DecodeError::Empty);
}

TEST(Itch50, UnknownTypesAreTheirOwnReason) {
  const std::string known(kMessageTypes.begin(), kMessageTypes.end());
  int unknown = 0;
  for (int b = 0; b < 256; ++b) {
    std::vector<std::byte> msg(36, std::byte{0});
    msg[0] = static_cast<std::byte>(b);
    const bool is_known = known.find(static_cast<char>(b)) != std::string::npos;
    if (is_known) continue;
    ++unknown;
    EXPECT_EQ(validate(Bytes{msg}), DecodeError::UnknownType) << b;
    EXPECT_EQ(message_size(static_cast<char>(b)), 0u);
  }
  EXPECT_EQ(unknown, 256 - 23);
}

TEST(Itch50, CountersSplitAcceptsByTypeAndRejectsByReason) {
  DecodeCounters c;
  std::vector<std::byte> add(36, std::byte{0});
  add[0] = std::byte{'A'};
  std::vector<std::byte> del(19, std::byte{0});
  del[0] = std::byte{'D'};
  std::vector<std::byte> bad_len(20, std::byte{0});
  bad_len[0] = std::byte{'D'};
  std::vector<std::byte> bad_type(19, std::byte{0});
  bad_type[0] = std::byte{'z'};
  EXPECT_EQ(check(Bytes{add}, c), DecodeError::Ok);
  EXPECT_EQ(check(Bytes{add}, c), DecodeError::Ok);
  EXPECT_EQ(check(Bytes{del}, c), DecodeError::Ok);
  EXPECT_EQ(check(Bytes{bad_len}, c), DecodeError::LengthMismatch);
  EXPECT_EQ(check(Bytes{bad_type}, c), DecodeError::UnknownType);
  EXPECT_EQ(check(Bytes{}, c), DecodeError::Empty);
  EXPECT_EQ(c.accepted(), 3u);
  EXPECT_EQ(c.count('A'), 2u);
  EXPECT_EQ(c.count('D'), 1u);
  EXPECT_EQ(c.rejected(), 3u);
  EXPECT_EQ(c.rejects(DecodeError::LengthMismatch), 1u);
  EXPECT_EQ(c.rejects(DecodeError::UnknownType), 1u);
  EXPECT_EQ(c.rejects(DecodeError::Empty), 1u);
  EXPECT_EQ(to_string(DecodeError::LengthMismatch), "length_mismatch");
}

TEST(Itch50, ViewAsRefusesOtherTypesAndLengths) {
  std::vector<std::byte> del(19, std::byte{0});
  del[0] = std::byte{'D'};
  EXPECT_TRUE(view_as<OrderDeleteView>(Bytes{del}).has_value());
  EXPECT_FALSE(view_as<BrokenTradeView>(Bytes{del}).has_value());  // same size, other type
  del.push_back(std::byte{0});
  EXPECT_FALSE(view_as<OrderDeleteView>(Bytes{del}).has_value());
}

TEST(Itch50, AlphaPadsTruncatesAndTrims) {
  const auto a = Alpha<8>::from("MSFT");
  EXPECT_EQ(a.view(), "MSFT    ");
  EXPECT_EQ(a.trimmed(), "MSFT");
  EXPECT_EQ(Alpha<4>::from("TOOLONG").view(), "TOOL");
  EXPECT_EQ(Alpha<4>{}.view(), "    ");
  EXPECT_EQ(Alpha<4>{}.trimmed(), "");
}

TEST(Itch50, TimestampUsesAll48Bits) {
  OrderDelete m;
  m.timestamp = 0xFFFF'FFFF'FFFFull;
  m.order_ref = 1;
  std::vector<std::byte> out(19);
  ASSERT_EQ(encode(m, MutableBytes{out}), 19u);
  for (int i = 5; i < 11; ++i) EXPECT_EQ(out[static_cast<std::size_t>(i)], std::byte{0xFF});
  EXPECT_EQ(OrderDeleteView(out.data()).timestamp(), 0xFFFF'FFFF'FFFFull);
}

}  // namespace
