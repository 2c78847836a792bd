// Core types: Message layout, Burst, hash_bytes stability and spread, TscClock conversions.
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <set>
#include <string>
#include <thread>

#include "hypergate/core/burst.hpp"
#include "hypergate/core/clock.hpp"
#include "hypergate/core/hash.hpp"
#include "hypergate/core/message.hpp"
#include "hypergate/core/status.hpp"

namespace hypergate {
namespace {

TEST(Message, KeyAndPayloadAreViews) {
  const std::string buf = "AAPL    some payload";
  Message m;
  m.set_payload(buf.data(), buf.size());
  m.set_key(std::string_view(buf).substr(0, 8));
  EXPECT_EQ(m.text(), buf);
  EXPECT_EQ(m.key(), "AAPL    ");
  EXPECT_EQ(m.key_hash, hash_bytes("AAPL    "));
  EXPECT_EQ(static_cast<const void*>(m.key_data), static_cast<const void*>(buf.data()));
}

TEST(Burst, FillsToCapacityAndRefusesMore) {
  Burst<4> b;
  EXPECT_TRUE(b.empty());
  for (int i = 0; i < 4; ++i) {
    Message m;
    m.sequence = static_cast<std::uint64_t>(i);
    EXPECT_TRUE(b.push_back(m));
  }
  EXPECT_TRUE(b.full());
  EXPECT_FALSE(b.push_back(Message{}));
  std::uint64_t expect = 0;
  for (const Message& m : b) EXPECT_EQ(m.sequence, expect++);
  b.resize_down(2);
  EXPECT_EQ(b.size(), 2u);
  b.clear();
  EXPECT_TRUE(b.empty());
  Message& e = b.emplace_back();
  EXPECT_EQ(e.size, 0u);
  EXPECT_EQ(b.size(), 1u);
}

TEST(Hash, IsStableAcrossRunsAndVersions) {
  // Routing depends on these exact values (gateways agree on lanes); a change here is a wire change.
  EXPECT_EQ(hash_bytes(""), hash_bytes("", 0));
  const std::uint64_t a = hash_bytes("AAPL");
  EXPECT_EQ(a, hash_bytes(std::string("AAPL")));
  EXPECT_NE(a, hash_bytes("AAPM"));
  EXPECT_NE(hash_bytes("a"), hash_bytes(std::string_view("a\0", 2)));
}

TEST(Hash, EveryLengthAndBytePositionMatters) {
  std::set<std::uint64_t> seen;
  std::array<char, 64> buf{};
  for (std::size_t len = 0; len <= 40; ++len) {
    ASSERT_TRUE(seen.insert(hash_bytes(buf.data(), len)).second) << "length " << len;
  }
  for (std::size_t pos = 0; pos < 40; ++pos) {
    buf.fill(0);
    buf[pos] = 1;
    ASSERT_TRUE(seen.insert(hash_bytes(buf.data(), 40)).second) << "position " << pos;
  }
}

TEST(Hash, LowBitsSpreadSequentialSymbolsOverLanes) {
  // 32 lanes picked by hash & 31: 3200 sequential keys must not leave any lane far from 100.
  std::array<int, 32> lanes{};
  for (int i = 0; i < 3200; ++i) {
    const std::string key = "SYM" + std::to_string(i);
    ++lanes[hash_bytes(key) & 31];
  }
  for (int c : lanes) {
    EXPECT_GT(c, 60);
    EXPECT_LT(c, 140);
  }
}

TEST(TscClock, ConvertsBackAndForth) {
  const TscClock& clock = TscClock::instance();
  EXPECT_GT(clock.ticks_per_ns(), 0.0);
  const std::uint64_t ns = 123'456'789;
  const std::uint64_t back = clock.to_ns(clock.from_ns(ns));
  EXPECT_NEAR(static_cast<double>(back), static_cast<double>(ns), ns * 1e-6 + 2);
  EXPECT_EQ(clock.elapsed_ns(10, 5), 0u);
}

TEST(TscClock, AgreesWithMonotonicClockOverASleep) {
  const TscClock& clock = TscClock::instance();
  const std::uint64_t t0 = TscClock::ticks();
  const std::uint64_t m0 = TscClock::monotonic_ns();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const std::uint64_t t1 = TscClock::ticks();
  const std::uint64_t m1 = TscClock::monotonic_ns();
  const double tsc_ns = static_cast<double>(clock.elapsed_ns(t0, t1));
  const double mono_ns = static_cast<double>(m1 - m0);
  // A calibration error of 1% would already break latency reporting; allow 0.5% plus 20 us jitter.
  EXPECT_NEAR(tsc_ns, mono_ns, mono_ns * 0.005 + 20'000);
}

TEST(Result, CarriesValueOrError) {
  Result<int> ok = 5;
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok.value(), 5);
  Result<int> bad = Error{Status::ArenaFull, "arena full"};
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, Status::ArenaFull);
  EXPECT_EQ(to_string(bad.error().code), "ArenaFull");
  Result<void> v;
  EXPECT_TRUE(v.ok());
  Result<void> e = Error{Status::IoError, "x"};
  EXPECT_FALSE(e.ok());
}

}  // namespace
}  // namespace hypergate
