// ItchGenerator: the feed decodes cleanly with our own MoldUDP64 and ITCH decoders, starts with
// System Event 'O' + one Stock Directory per symbol and ends with 'C' + end of session, has every type
// in a 200k-message run, contiguous sequences, non-decreasing timestamps, a consistent book (no
// reference to a dead order, never more shares taken than left, prices on the $0.01 grid), is
// byte-identical for the same seed, and the loss model drops exactly what it says. Finally a lossy
// feed is recovered end to end by MoldSession with a re-request server answering from the feed.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "protocols/itch50.hpp"
#include "protocols/itch_generator.hpp"
#include "protocols/mold_session.hpp"

namespace {

using namespace hypergate::protocols;
using namespace hypergate::protocols::itch;

GeneratedFeed make(GeneratorOptions o) {
  auto feed = generate_feed(std::move(o));
  EXPECT_TRUE(feed.ok()) << (feed.ok() ? "" : feed.error().message);
  return std::move(feed).value();
}

struct BookChecker {
  struct Order {
    std::uint16_t locate;
    std::uint32_t shares;
  };
  std::unordered_map<std::uint64_t, Order> orders;
  std::map<char, std::uint64_t> by_type;
  std::uint64_t last_ts = 0;
  std::uint16_t symbols = 0;
  int errors = 0;

  void fail(const std::string& what) {
    if (errors++ < 10) ADD_FAILURE() << what;
  }
  void on(Bytes msg) {
    const DecodeError e = visit(msg, [&](auto v) {
      using V = decltype(v);
      ++by_type[V::kType];
      if (v.timestamp() < last_ts) fail("timestamp went backwards");
      last_ts = v.timestamp();
      if constexpr (std::is_same_v<V, StockDirectoryView>) {
        symbols = std::max(symbols, v.stock_locate());
      } else if constexpr (std::is_same_v<V, AddOrderView> || std::is_same_v<V, AddOrderMpidView>) {
        if (v.price() % 100 != 0 || v.price() == 0) fail("price off the $0.01 grid");
        if (v.side() != 'B' && v.side() != 'S') fail("bad side");
        if (v.stock_locate() == 0 || v.stock_locate() > symbols) fail("bad locate");
        if (!orders.emplace(v.order_ref(), Order{v.stock_locate(), v.shares()}).second) fail("duplicate ref");
      } else if constexpr (std::is_same_v<V, OrderExecutedView> || std::is_same_v<V, OrderExecutedWithPriceView>) {
        take(v.order_ref(), v.executed_shares(), v.stock_locate());
      } else if constexpr (std::is_same_v<V, OrderCancelView>) {
        take(v.order_ref(), v.canceled_shares(), v.stock_locate());
      } else if constexpr (std::is_same_v<V, OrderDeleteView>) {
        if (orders.erase(v.order_ref()) != 1) fail("delete of a dead order");
      } else if constexpr (std::is_same_v<V, OrderReplaceView>) {
        auto it = orders.find(v.original_ref());
        if (it == orders.end()) {
          fail("replace of a dead order");
          return;
        }
        if (it->second.locate != v.stock_locate()) fail("replace changed the stock");
        const std::uint16_t loc = it->second.locate;
        orders.erase(it);
        if (v.price() % 100 != 0) fail("replace price off grid");
        if (!orders.emplace(v.new_ref(), Order{loc, v.shares()}).second) fail("replace reused a ref");
      }
    });
    if (e != DecodeError::Ok) fail(std::string("decode error ") + std::string(to_string(e)));
  }
  void take(std::uint64_t ref, std::uint32_t shares, std::uint16_t locate) {
    auto it = orders.find(ref);
    if (it == orders.end()) return fail("execute/cancel of a dead order");
    if (it->second.locate != locate) fail("locate differs from the order's");
    if (shares == 0 || shares > it->second.shares) return fail("took more shares than left");
    it->second.shares -= shares;
    if (it->second.shares == 0) orders.erase(it);
  }
};

TEST(ItchGenerator, A200kFeedIsCleanConsistentAndHasEveryType) {
  GeneratorOptions o;
  o.message_count = 200'000;
  o.symbol_count = 20;
  o.seed = 7;
  const GeneratedFeed feed = make(o);
  ASSERT_FALSE(feed.packets.empty());
  BookChecker book;
  std::uint64_t expect_seq = 1;
  std::uint64_t messages = 0;
  std::vector<std::string> first_msgs;
  for (std::size_t i = 0; i < feed.packets.size(); ++i) {
    const auto& p = feed.packets[i];
    mold::PacketView v;
    ASSERT_EQ(mold::PacketView::parse(feed.bytes(p), v), mold::PacketError::Ok) << "packet " << i;
    EXPECT_LE(p.size, mold::kEthernetMtuPayload);
    EXPECT_EQ(v.session(), "HGSESSION1");
    EXPECT_EQ(v.sequence(), expect_seq) << "sequences must be contiguous";
    EXPECT_EQ(v.sequence(), p.first_sequence);
    EXPECT_EQ(v.count(), p.count);
    EXPECT_FALSE(p.dropped);
    if (i + 1 == feed.packets.size()) {
      EXPECT_TRUE(p.end_of_session);
      EXPECT_TRUE(v.is_end_of_session());
      EXPECT_EQ(v.sequence(), 200'001u);
      break;
    }
    EXPECT_FALSE(v.is_end_of_session());
    EXPECT_GT(v.message_count(), 0u);
    for (const mold::MessageBlock m : v) {
      if (messages < 21 + 1) first_msgs.push_back(std::string(1, static_cast<char>(m.data[0])));
      if (messages == 0) {
        const auto s = view_as<SystemEventView>(m.data);
        ASSERT_TRUE(s.has_value());
        EXPECT_EQ(s->event_code(), 'O');
      } else if (messages <= 20) {
        const auto r = view_as<StockDirectoryView>(m.data);
        ASSERT_TRUE(r.has_value());
        EXPECT_EQ(r->stock_locate(), messages);
        EXPECT_EQ(r->stock(), Alpha<8>::from(feed.symbols[messages - 1]).view());
      } else if (messages + 1 == o.message_count) {
        const auto s = view_as<SystemEventView>(m.data);
        ASSERT_TRUE(s.has_value());
        EXPECT_EQ(s->event_code(), 'C');
      }
      book.on(m.data);
      ++messages;
    }
    expect_seq = v.next_sequence();
  }
  EXPECT_EQ(messages, 200'000u);
  EXPECT_EQ(book.errors, 0);
  // A realistic book: it fills up and stays deep (1000 + 64 per symbol resting orders), not empty.
  EXPECT_GT(book.orders.size(), 1000u);
  for (const char t : kMessageTypes) EXPECT_GT(book.by_type[t], 0u) << "type " << t << " never generated";
  EXPECT_GT(book.by_type['A'], 40'000u);  // the mix is dominated by book messages
  EXPECT_EQ(book.by_type['S'], 2u);
  EXPECT_EQ(book.by_type['R'], 20u);
  EXPECT_EQ(feed.symbols.size(), 20u);
  EXPECT_EQ(feed.symbols[0], "AAAA");
}

TEST(ItchGenerator, SameSeedSameBytesOtherSeedOtherBytes) {
  GeneratorOptions o;
  o.message_count = 20'000;
  o.symbols = {"AAPL", "MSFT", "GOOG"};
  o.seed = 42;
  o.loss_probability = 0.05;
  const GeneratedFeed a = make(o);
  const GeneratedFeed b = make(o);
  EXPECT_EQ(a.storage, b.storage);
  ASSERT_EQ(a.packets.size(), b.packets.size());
  for (std::size_t i = 0; i < a.packets.size(); ++i) EXPECT_EQ(a.packets[i].dropped, b.packets[i].dropped);
  o.seed = 43;
  const GeneratedFeed c = make(o);
  EXPECT_NE(a.storage, c.storage);
}

TEST(ItchGenerator, PacketLimitsAndTimestampRate) {
  GeneratorOptions o;
  o.message_count = 5'000;
  o.messages_per_packet = 3;
  o.max_packet_bytes = 200;
  o.messages_per_second = 1'000;  // 1 ms apart
  o.start_timestamp_ns = 1'000;
  auto gen = ItchGenerator::create(o);
  ASSERT_TRUE(gen.ok());
  GeneratedPacket p;
  std::uint64_t n = 0;
  std::uint64_t last_ts = 0;
  while (gen->next(p)) {
    if (p.end_of_session) break;
    EXPECT_LE(p.count, 3u);
    EXPECT_LE(p.bytes.size(), 200u);
    mold::PacketView v;
    ASSERT_EQ(mold::PacketView::parse(p.bytes, v), mold::PacketError::Ok);
    for (const mold::MessageBlock m : v) {
      const MessageView mv(m.data.data());
      EXPECT_EQ(mv.timestamp(), 1'000 + n * 1'000'000) << "message " << n;
      last_ts = mv.timestamp();
      ++n;
    }
    EXPECT_EQ(p.timestamp_ns, last_ts);
  }
  EXPECT_EQ(n, 5'000u);
  EXPECT_EQ(gen->messages_generated(), 5'000u);
  EXPECT_FALSE(gen->next(p));
}

TEST(ItchGenerator, DropRangesDropExactlyThePacketsTouchingThem) {
  GeneratorOptions o;
  o.message_count = 10'000;
  o.messages_per_packet = 10;
  o.drop_ranges = {{105, 105}, {500, 531}, {9'000, 20'000}};
  const GeneratedFeed feed = make(o);
  std::size_t dropped = 0;
  for (const auto& p : feed.packets) {
    if (p.end_of_session) {
      EXPECT_FALSE(p.dropped);
      continue;
    }
    const std::uint64_t first = p.first_sequence;
    const std::uint64_t last = first + p.count - 1;
    bool touches = false;
    for (const auto& g : o.drop_ranges) touches = touches || (g.first <= last && g.last >= first);
    EXPECT_EQ(p.dropped, touches) << "packet " << first << ".." << last;
    dropped += p.dropped ? 1 : 0;
  }
  // [105] -> 1 packet (101..110); [500,531] -> 5 (491..500, 501..510, 511..520, 521..530, 531..540);
  // [9000, 20000] -> 101 (8991..9000 up to 9991..10000).
  EXPECT_EQ(dropped, 1u + 5u + 101u);
}

TEST(ItchGenerator, LossProbabilityIsHonoured) {
  for (const double p : {0.0, 0.1, 1.0}) {
    GeneratorOptions o;
    o.message_count = 50'000;
    o.messages_per_packet = 10;
    o.loss_probability = p;
    const GeneratedFeed feed = make(o);
    std::size_t data = 0;
    std::size_t dropped = 0;
    for (const auto& pk : feed.packets) {
      if (pk.end_of_session) {
        EXPECT_FALSE(pk.dropped);
        continue;
      }
      ++data;
      dropped += pk.dropped ? 1 : 0;
    }
    ASSERT_EQ(data, 5'000u);
    const double rate = static_cast<double>(dropped) / static_cast<double>(data);
    EXPECT_NEAR(rate, p, 0.02) << "p " << p;
  }
}

TEST(ItchGenerator, PacketsForFindsTheReplyPackets) {
  GeneratorOptions o;
  o.message_count = 1'000;
  o.messages_per_packet = 10;
  const GeneratedFeed feed = make(o);
  auto [a, b] = feed.packets_for(15, 10);  // 15..24 -> packets 11..20 and 21..30
  EXPECT_EQ(a, 1u);
  EXPECT_EQ(b, 3u);
  std::tie(a, b) = feed.packets_for(1, 1);
  EXPECT_EQ(a, 0u);
  EXPECT_EQ(b, 1u);
  std::tie(a, b) = feed.packets_for(5'000, 3);
  EXPECT_EQ(a, b);
}

TEST(ItchGenerator, BadOptionsAreErrors) {
  const auto bad = [](auto tweak) {
    GeneratorOptions o;
    o.message_count = 100;
    tweak(o);
    return !ItchGenerator::create(o).ok();
  };
  EXPECT_TRUE(bad([](GeneratorOptions& o) { o.symbols = {"TOOLONGNAME"}; }));
  EXPECT_TRUE(bad([](GeneratorOptions& o) { o.symbols = {""}; }));
  EXPECT_TRUE(bad([](GeneratorOptions& o) { o.symbol_count = 0; }));
  EXPECT_TRUE(bad([](GeneratorOptions& o) { o.message_count = 9; }));  // 8 symbols + 2
  EXPECT_TRUE(bad([](GeneratorOptions& o) { o.session = "ELEVENCHARS"; }));
  EXPECT_TRUE(bad([](GeneratorOptions& o) { o.max_packet_bytes = 71; }));
  EXPECT_TRUE(bad([](GeneratorOptions& o) { o.messages_per_second = 0; }));
  EXPECT_TRUE(bad([](GeneratorOptions& o) { o.loss_probability = 1.5; }));
  EXPECT_TRUE(bad([](GeneratorOptions& o) { o.drop_ranges = {{5, 4}}; }));
  EXPECT_FALSE(bad([](GeneratorOptions& o) { o.message_count = 10; }));
}

// Generator -> lossy network -> MoldSession -> re-request server answering from the feed.
TEST(ItchGenerator, LossyFeedIsRecoveredByMoldSession) {
  GeneratorOptions o;
  o.message_count = 30'000;
  o.loss_probability = 0.05;
  o.drop_ranges = {{1, 1}};  // even the very first packet
  const GeneratedFeed feed = make(o);

  struct Events : mold::SessionEvents {
    std::vector<mold::Request> inbox;
    std::uint64_t delivered = 0;
    std::uint64_t expect = 1;
    bool ended = false;
    DecodeCounters counters;
    void on_messages(mold::MessageRange r) override {
      for (const mold::MessageBlock m : r) {
        EXPECT_EQ(m.sequence, expect);
        expect = m.sequence + 1;
        (void)check(m.data, counters);
        ++delivered;
      }
    }
    void on_request(const mold::Request& q) override { inbox.push_back(q); }
    void on_end_of_session(const mold::SessionName&, std::uint64_t) override { ended = true; }
  } ev;
  mold::MoldSession::Options so;
  so.store_packets = 4096;
  so.store_bytes = 8u << 20;
  mold::MoldSession session(so);
  std::uint64_t now = 0;
  for (const auto& p : feed.packets) {
    now += 1'000;
    if (!p.dropped) {
      ASSERT_EQ(session.on_datagram(feed.bytes(p), now, ev), mold::PacketError::Ok);
    }
    for (std::size_t k = 0; k < ev.inbox.size(); ++k) {
      const mold::Request q = ev.inbox[k];
      const auto [a, b] = feed.packets_for(q.sequence, q.count);
      for (std::size_t i = a; i < b; ++i) (void)session.on_datagram(feed.bytes(i), now, ev);
    }
    ev.inbox.clear();
    session.on_timer(now, ev);
  }
  EXPECT_EQ(ev.delivered, 30'000u);
  EXPECT_EQ(ev.counters.accepted(), 30'000u);
  EXPECT_EQ(ev.counters.rejected(), 0u);
  EXPECT_TRUE(ev.ended);
  EXPECT_GT(session.stats().gaps, 0u);
  EXPECT_EQ(session.stats().gaps_lost, 0u);
}

}  // namespace
