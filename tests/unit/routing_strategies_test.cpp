// Routing strategies: hash (stable, even over 32 lanes), round-robin, content, failover, broadcast.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "hypergate/route/sink_health.hpp"
#include "routing/broadcast_router.hpp"
#include "routing/content_router.hpp"
#include "routing/failover_router.hpp"
#include "routing/hash_router.hpp"
#include "routing/round_robin_router.hpp"

namespace hypergate::strategies {
namespace {

using route::Action;
using route::Route;

Message keyed(std::string_view key, std::uint16_t type = 0) {
  Message m;
  m.set_payload(key.data(), key.size());
  m.set_key(key);
  m.type = type;
  return m;
}

/// Real-looking keys: 1-5 letter tickers (a US equity universe's shape), with share-class suffixes.
std::vector<std::string> ticker_universe() {
  std::vector<std::string> keys;
  std::uint64_t state = 0x2545F4914F6CDD1Dull;
  auto next = [&] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  std::set<std::string> seen;
  while (keys.size() < 8000) {
    const std::size_t len = 1 + next() % 5;
    std::string k;
    for (std::size_t i = 0; i < len; ++i) k += static_cast<char>('A' + next() % 26);
    if (next() % 20 == 0) k += (next() % 2) ? ".A" : ".B";
    if (seen.insert(k).second) keys.push_back(k);
  }
  return keys;
}

TEST(HashRouter, StableLaneFromTheKeyHash) {
  HashRouter r(32);
  HashRouter other(32);
  for (std::string_view k : {"AAPL", "MSFT", "GOOG", "BRK.B", ""}) {
    const Route a = r.route(keyed(k));
    EXPECT_EQ(a.lane, hash_bytes(k) & 31) << k;
    EXPECT_EQ(a.lane, other.route(keyed(k)).lane) << "same key, same lane in every instance";
    EXPECT_EQ(a.action, Action::Deliver);
    EXPECT_EQ(a.sinks, route::kAllSinks);
  }
  // The routing is part of the wire contract between gateways: pin a few lanes across releases.
  // (Values computed with hash_bytes as of v0.1; a change here breaks routing compatibility.)
  EXPECT_EQ(r.route(keyed("AAPL")).lane, 11u);
  EXPECT_EQ(r.route(keyed("MSFT")).lane, 10u);
  EXPECT_EQ(r.route(keyed("GOOG")).lane, 24u);
  EXPECT_EQ(r.route(keyed("BRK.B")).lane, 18u);
  EXPECT_EQ(HashRouter(32, 0b100).route(keyed("X")).sinks, 0b100u);
  EXPECT_EQ(HashRouter(1).route(keyed("X")).lane, 0u);
}

TEST(HashRouter, SpreadsRealLookingKeysEvenlyOver32Lanes) {
  const auto keys = ticker_universe();
  HashRouter r(32);
  std::array<int, 32> per_lane{};
  for (const auto& k : keys) ++per_lane[r.route(keyed(k)).lane];
  const double expected = static_cast<double>(keys.size()) / 32;  // 250
  double chi2 = 0;
  for (int n : per_lane) chi2 += (n - expected) * (n - expected) / expected;
  // 31 degrees of freedom: P(chi2 > 61.1) = 0.001. A biased hash (e.g. low bits of the first byte)
  // lands in the thousands here.
  EXPECT_LT(chi2, 61.1);
  const auto [lo, hi] = std::minmax_element(per_lane.begin(), per_lane.end());
  EXPECT_GT(*lo, expected * 0.75);
  EXPECT_LT(*hi, expected * 1.25);
}

TEST(HashRouter, SequentialKeysAlsoSpread) {
  // Order ids "ORD000000".."ORD031999": keys that differ only in their last digits.
  HashRouter r(32);
  std::array<int, 32> per_lane{};
  char buf[16];
  for (int i = 0; i < 32000; ++i) {
    std::snprintf(buf, sizeof buf, "ORD%06d", i);
    ++per_lane[r.route(keyed(buf)).lane];
  }
  for (int n : per_lane) {
    EXPECT_GT(n, 850);
    EXPECT_LT(n, 1150);
  }
}

TEST(RoundRobinRouter, CyclesLanesOrSinks) {
  RoundRobinRouter lanes(8, 3, RoundRobinRouter::Over::Lanes);
  for (int round = 0; round < 3; ++round) {
    for (std::uint16_t i = 0; i < 8; ++i) {
      const Route r = lanes.route(keyed("same"));
      EXPECT_EQ(r.lane, i);
      EXPECT_EQ(r.sinks, 0b111u);
    }
  }
  RoundRobinRouter sinks(8, 3, RoundRobinRouter::Over::Sinks);
  std::array<int, 3> per_sink{};
  for (int i = 0; i < 300; ++i) {
    const Route r = sinks.route(keyed("K"));
    ASSERT_EQ(std::popcount(r.sinks), 1);
    const int s = std::countr_zero(r.sinks);
    EXPECT_EQ(s, i % 3);
    ++per_sink[s];
    EXPECT_EQ(r.lane, hash_bytes("K") & 7);
  }
  EXPECT_EQ(per_sink, (std::array<int, 3>{100, 100, 100}));
}

TEST(ContentRouter, FirstMatchingRuleWinsElseDefault) {
  using Rule = ContentRouter::Rule;
  ContentRouter r(32,
                  {Rule::key_prefix("AA", 0b001), Rule::message_type('X', 0b010), Rule::key_prefix("A", 0b100),
                   Rule::key_prefix("TEST", 0, true)},
                  0b1000);
  EXPECT_EQ(r.route(keyed("AAPL", 'X')).sinks, 0b001u) << "prefix rule listed first wins over the type rule";
  EXPECT_EQ(r.route(keyed("MSFT", 'X')).sinks, 0b010u);
  EXPECT_EQ(r.route(keyed("ABC")).sinks, 0b100u);
  EXPECT_EQ(r.route(keyed("TEST1")).action, Action::Drop);
  const Route d = r.route(keyed("ZZZ"));
  EXPECT_EQ(d.sinks, 0b1000u);
  EXPECT_EQ(d.action, Action::Deliver);
  EXPECT_EQ(d.lane, hash_bytes("ZZZ") & 31);
  ContentRouter drop_rest(32, {Rule::key_prefix("A", 1)}, route::kAllSinks, true);
  EXPECT_EQ(drop_rest.route(keyed("B")).action, Action::Drop);
  EXPECT_EQ(drop_rest.route(keyed("A")).action, Action::Deliver);
}

TEST(FailoverRouter, PrimaryToBackupOnHealthFlagAndBack) {
  route::SinkHealth health;
  FailoverRouter r(32, 2, 5, &health);
  r.begin_burst();
  EXPECT_EQ(r.route(keyed("K")).sinks, 1u << 2);
  health.set_healthy(2, false);
  EXPECT_EQ(r.route(keyed("K")).sinks, 1u << 2) << "the flag is read once per burst";
  r.begin_burst();
  EXPECT_EQ(r.route(keyed("K")).sinks, 1u << 5);
  EXPECT_EQ(r.active(), 5u);
  health.set_healthy(2, true);
  r.begin_burst();
  EXPECT_EQ(r.route(keyed("K")).sinks, 1u << 2);
  EXPECT_EQ(r.switches(), 2u);
  // Both down: stay on the primary and let backpressure decide, never drop silently.
  health.set_healthy(2, false);
  health.set_healthy(5, false);
  r.begin_burst();
  EXPECT_EQ(r.route(keyed("K")).sinks, 1u << 2);
  EXPECT_EQ(r.route(keyed("K")).action, Action::Deliver);
  // Without a health table it never fails over.
  FailoverRouter no_health(32, 1, 0, nullptr);
  no_health.begin_burst();
  EXPECT_EQ(no_health.route(keyed("K")).sinks, 0b10u);
}

TEST(BroadcastRouter, EverySinkKeyedLane) {
  BroadcastRouter r(16, 5);
  const Route x = r.route(keyed("K"));
  EXPECT_EQ(x.sinks, 0b11111u);
  EXPECT_EQ(x.lane, hash_bytes("K") & 15);
  EXPECT_EQ(BroadcastRouter(16, 64).route(keyed("K")).sinks, route::kAllSinks);
  EXPECT_EQ(BroadcastRouter(16).route(keyed("K")).sinks, route::kAllSinks);
}

TEST(SinkHealth, FlagsDefaultUpAndOutOfRangeIsDown) {
  route::SinkHealth h;
  EXPECT_TRUE(h.healthy(0));
  EXPECT_TRUE(h.healthy(63));
  EXPECT_FALSE(h.healthy(64));
  h.set_healthy(64, true);  // ignored
  h.set_healthy(3, false);
  EXPECT_FALSE(h.healthy(3));
}

}  // namespace
}  // namespace hypergate::strategies
