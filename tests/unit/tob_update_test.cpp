// TobUpdate: the 52-byte big-endian record byte by byte, round trips, strict decoding, JSON.
#include <gtest/gtest.h>

#include <array>
#include <cstddef>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "market/order_book.hpp"
#include "market/tob_update.hpp"

namespace hypergate::market {
namespace {

using Record = std::array<std::byte, kTobUpdateSize>;

TobUpdate sample() {
  TobUpdate u;
  u.locate = 0x0102;
  std::memcpy(u.symbol.data(), "AAPL    ", 8);
  u.bid_price = 1'500'000;
  u.bid_qty = 300;
  u.ask_price = 1'501'000;
  u.ask_qty = 200;
  u.timestamp_ns = 34'200'000'000'123ull;
  u.sequence = 42;
  u.flags = kTobNone;
  return u;
}

std::vector<unsigned> bytes_of(const Record& r, std::size_t from, std::size_t n) {
  std::vector<unsigned> out;
  for (std::size_t i = from; i < from + n; ++i) out.push_back(static_cast<unsigned>(r[i]));
  return out;
}

TEST(TobUpdate, LayoutIsTheDocumentedBigEndianTable) {
  TobUpdate u = sample();
  u.bid_qty = 0x0102030405060708ull;
  u.flags = kTobStale;
  Record r{};
  encode_tob_update(u, r);
  EXPECT_EQ(static_cast<char>(r[0]), 'T');
  EXPECT_EQ(bytes_of(r, 1, 1), (std::vector<unsigned>{0x01}));
  EXPECT_EQ(bytes_of(r, 2, 2), (std::vector<unsigned>{0x01, 0x02}));
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(r.data()) + 4, 8), "AAPL    ");
  // 1,500,000 = 0x0016E360
  EXPECT_EQ(bytes_of(r, 12, 4), (std::vector<unsigned>{0x00, 0x16, 0xE3, 0x60}));
  EXPECT_EQ(bytes_of(r, 16, 8), (std::vector<unsigned>{1, 2, 3, 4, 5, 6, 7, 8}));
  // 1,501,000 = 0x0016E748
  EXPECT_EQ(bytes_of(r, 24, 4), (std::vector<unsigned>{0x00, 0x16, 0xE7, 0x48}));
  EXPECT_EQ(bytes_of(r, 28, 8), (std::vector<unsigned>{0, 0, 0, 0, 0, 0, 0, 200}));
  // 34,200,000,000,123 = 0x00001F1A_CED9F07B
  EXPECT_EQ(bytes_of(r, 36, 8), (std::vector<unsigned>{0x00, 0x00, 0x1F, 0x1A, 0xCE, 0xD9, 0xF0, 0x7B}));
  EXPECT_EQ(bytes_of(r, 44, 8), (std::vector<unsigned>{0, 0, 0, 0, 0, 0, 0, 42}));
}

TEST(TobUpdate, RoundTrips) {
  std::mt19937_64 rng(5);
  for (int i = 0; i < 10'000; ++i) {
    TobUpdate u;
    u.locate = static_cast<std::uint16_t>(rng());
    for (char& c : u.symbol) c = static_cast<char>(rng());
    u.bid_price = static_cast<std::uint32_t>(rng());
    u.bid_qty = rng();
    u.ask_price = static_cast<std::uint32_t>(rng());
    u.ask_qty = rng();
    u.timestamp_ns = rng();
    u.sequence = rng();
    u.flags = static_cast<std::uint8_t>(rng());   // reserved bits survive too
    Record r{};
    encode_tob_update(u, r);
    TobUpdate back;
    ASSERT_EQ(decode_tob_update(r, back), Status::Ok);
    ASSERT_EQ(back, u);
  }
  TobUpdate extremes = sample();
  extremes.bid_price = extremes.ask_price = std::numeric_limits<std::uint32_t>::max();
  extremes.bid_qty = extremes.ask_qty = extremes.sequence = std::numeric_limits<std::uint64_t>::max();
  Record r{};
  encode_tob_update(extremes, r);
  TobUpdate back;
  ASSERT_EQ(decode_tob_update(r, back), Status::Ok);
  EXPECT_EQ(back, extremes);
}

TEST(TobUpdate, DecodeIsStrict) {
  Record r{};
  encode_tob_update(sample(), r);
  TobUpdate out;
  const std::span<const std::byte> all(r);
  EXPECT_EQ(decode_tob_update(all.first(kTobUpdateSize - 1), out), Status::Malformed);
  EXPECT_EQ(decode_tob_update(all.first(0), out), Status::Malformed);
  std::array<std::byte, kTobUpdateSize + 1> longer{};
  std::memcpy(longer.data(), r.data(), r.size());
  EXPECT_EQ(decode_tob_update(longer, out), Status::Malformed);
  Record wrong_type = r;
  wrong_type[0] = std::byte{'A'};
  EXPECT_EQ(decode_tob_update(wrong_type, out), Status::Malformed);
  EXPECT_EQ(decode_tob_update(r, out), Status::Ok);
  EXPECT_EQ(out, sample());
}

TEST(TobUpdate, JsonHasEveryField) {
  TobUpdate u = sample();
  u.locate = 7;
  EXPECT_EQ(to_json(u),
            R"({"type":"T","locate":7,"symbol":"AAPL","bid_price":1500000,"bid_qty":300,"ask_price":1501000,)"
            R"("ask_qty":200,"timestamp_ns":34200000000123,"sequence":42,"stale":false})");
  u.flags = kTobStale;
  u.bid_price = 0;
  u.bid_qty = 0;
  const std::string j = to_json(u);
  EXPECT_NE(j.find(R"("bid_price":0,"bid_qty":0,)"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("stale":true})"), std::string::npos) << j;
}

TEST(TobUpdate, JsonEscapesOddSymbolsAndFitsTheBound) {
  TobUpdate u;
  const char odd[8] = {'"', '\\', '\n', '\x7f', 'A', '\x01', ' ', 'B'};
  std::memcpy(u.symbol.data(), odd, 8);
  EXPECT_NE(to_json(u).find(R"("symbol":"\"\\\u000a\u007fA\u0001 B")"), std::string::npos) << to_json(u);
  // Worst case: every number at its maximum, every symbol byte escaped.
  u.symbol.fill('\x01');
  u.locate = 65535;
  u.bid_price = u.ask_price = std::numeric_limits<std::uint32_t>::max();
  u.bid_qty = u.ask_qty = u.timestamp_ns = u.sequence = std::numeric_limits<std::uint64_t>::max();
  u.flags = kTobStale;
  std::array<char, kTobJsonMax> buf{};
  const std::size_t n = to_json(u, buf);
  ASSERT_GT(n, 0u);
  EXPECT_LE(n, kTobJsonMax);
  // Too small a buffer: 0, and nothing written past its end.
  std::array<char, 64> small{};
  EXPECT_EQ(to_json(u, std::span<char>(small.data(), 48)), 0u);
  EXPECT_EQ(small[48], '\0');
  EXPECT_EQ(to_json(u, std::span<char>(buf.data(), n - 1)), 0u);
  EXPECT_EQ(to_json(u, std::span<char>(buf.data(), n)), n);
}

TEST(TobUpdate, MadeFromTheBook) {
  OrderBook::Options o;
  o.max_orders = 16;
  o.level_capacity = 64;
  OrderBook book(o);
  book.set_symbol(12, "MSFT");
  ASSERT_TRUE(book.add(12, 1, Side::kBuy, 100, 3'000'000).ok());
  ASSERT_TRUE(book.add(12, 2, Side::kSell, 50, 3'000'500).ok());
  const TobUpdate u = make_tob_update(book, 12, 999, 5, kTobStale);
  EXPECT_EQ(u.locate, 12);
  EXPECT_EQ(u.symbol_trimmed(), "MSFT");
  EXPECT_EQ(u.bid_price, 3'000'000u);
  EXPECT_EQ(u.bid_qty, 100u);
  EXPECT_EQ(u.ask_price, 3'000'500u);
  EXPECT_EQ(u.ask_qty, 50u);
  EXPECT_EQ(u.timestamp_ns, 999u);
  EXPECT_EQ(u.sequence, 5u);
  EXPECT_TRUE(u.stale());
  const TobUpdate empty = make_tob_update(book, 13, 0, 6);
  EXPECT_EQ(empty.bid_qty + empty.ask_qty + empty.bid_price + empty.ask_price, 0u);
  EXPECT_EQ(empty.symbol_trimmed(), "");
  EXPECT_FALSE(empty.stale());
}

}  // namespace
}  // namespace hypergate::market
