// The "itch" pipeline against a deliberately simple reference: a generated MoldUDP64/ITCH 5.0 feed is
// decoded by the test with the codec, applied to a std::map book written straight from PROTOCOLS.md §3,
// and the pipeline's final top of book (read back from its Hyperion store, and from its book) must equal
// the reference for every symbol. Also: gaps reported with their exact ranges, a bad datagram and a bad
// ITCH length are counted rejects, the emitted updates decode, and a looped session starts over.
#include <gtest/gtest.h>

#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <map>

#include "hypergate/config/config.hpp"
#include "hypergate/core/clock.hpp"
#include "market/itch_pipeline.hpp"
#include "protocols/itch50.hpp"
#include "protocols/itch_generator.hpp"
#include "itch_reference_book.hpp"

namespace hg = hypergate;
namespace itch = hypergate::protocols::itch;
namespace mold = hypergate::protocols::mold;
using hypergate::market::ItchPipeline;
using hypergate::market::ItchPipelineOptions;
using hypergate::market::TobUpdate;
using hypergate::test::ReferenceBook;

namespace {

// Collects what the pipeline emits (copies: the payload views die with the burst).
class Collect final : public hg::route::Downstream {
 public:
  void deliver(std::span<const hg::Message> messages, std::span<const hg::route::Route> routes) noexcept override {
    for (std::size_t i = 0; i < messages.size(); ++i) {
      payloads.emplace_back(messages[i].text());
      lanes.push_back(routes[i].lane);
      types.push_back(messages[i].type);
    }
  }
  std::vector<std::string> payloads;
  std::vector<std::uint16_t> lanes;
  std::vector<std::uint16_t> types;
};

std::unique_ptr<ItchPipeline> make_pipeline(const std::string& toml = "") {
  auto doc = hg::config::Document::parse("[p]\n" + toml, "test.toml");
  EXPECT_TRUE(doc.ok());
  auto section = doc.value()->section("p");
  hg::route::PipelineContext ctx;
  ctx.sink_names = {"subscribers", "wire"};
  ctx.sink_count = 2;
  auto opt = hypergate::market::read_itch_options(section, ctx);
  EXPECT_TRUE(opt.ok()) << doc.value()->diagnostics().format();
  auto p = ItchPipeline::create(opt.value());
  EXPECT_TRUE(p.ok());
  return std::move(p.value());
}

// Feeds datagrams as the runtime would: bursts of up to 32 messages.
void feed(ItchPipeline& p, hg::route::Emitter& out, const std::vector<hg::protocols::Bytes>& datagrams) {
  hg::Burst<> in;
  for (std::size_t i = 0; i < datagrams.size();) {
    in.clear();
    while (!in.full() && i < datagrams.size()) {
      hg::Message& m = in.emplace_back();
      m.set_payload(datagrams[i].data(), datagrams[i].size());
      m.rx_tsc = hg::TscClock::ticks();
      ++i;
    }
    p.process(in, out);
  }
}

std::vector<hg::protocols::Bytes> live_datagrams(const itch::GeneratedFeed& f) {
  std::vector<hg::protocols::Bytes> out;
  for (const auto& pk : f.packets)
    if (!pk.dropped) out.push_back(f.bytes(pk));
  return out;
}

TobUpdate stored(const ItchPipeline& p, const std::string& symbol) {
  auto reader = p.store()->reader();
  EXPECT_TRUE(reader.ok());
  std::array<std::byte, hypergate::market::kTobUpdateSize> rec{};
  std::size_t len = 0;
  TobUpdate u;
  EXPECT_EQ(reader->get(symbol, rec, len), hg::Status::Ok) << symbol;
  EXPECT_EQ(hypergate::market::decode_tob_update(std::span<const std::byte>(rec.data(), len), u), hg::Status::Ok);
  return u;
}

}  // namespace

TEST(ItchPipeline, TopOfBookEqualsTheReferenceOnAMillionMessageFeed) {
  itch::GeneratorOptions g;
  g.symbol_count = 50;
  g.message_count = 1'000'000;
  g.seed = 7;
  auto f = itch::generate_feed(g);
  ASSERT_TRUE(f.ok());

  ReferenceBook ref;
  std::uint64_t messages = 0;
  for (const auto& pk : f->packets) {
    mold::PacketView v;
    ASSERT_EQ(mold::PacketView::parse(f->bytes(pk), v), mold::PacketError::Ok);
    for (const mold::MessageBlock b : v.messages()) {
      ASSERT_EQ(itch::validate(b.data), itch::DecodeError::Ok);
      ref.apply(b.data);
      ++messages;
    }
  }
  ASSERT_GT(ref.orders(), 100u) << "the feed should end with resting orders, or the comparison proves little";

  auto p = make_pipeline("output = \"updates\"\nsinks = [\"subscribers\"]\nlane = 3\n");
  Collect down;
  hg::route::Emitter out(down);
  feed(*p, out, live_datagrams(f.value()));

  const auto s = p->stats();
  EXPECT_EQ(s.messages, messages);
  EXPECT_EQ(s.gaps, 0u);
  EXPECT_EQ(s.updates, down.payloads.size());
  std::size_t non_empty = 0;
  ASSERT_EQ(ref.names().size(), 50u);
  for (const auto& [locate, padded] : ref.names()) {
    std::string name = padded.substr(0, padded.find_last_not_of(' ') + 1);
    const auto want = ref.top(locate);
    const TobUpdate got = stored(*p, name);
    EXPECT_EQ(got.bid_price, want.bid_price) << name;
    EXPECT_EQ(got.bid_qty, want.bid_qty) << name;
    EXPECT_EQ(got.ask_price, want.ask_price) << name;
    EXPECT_EQ(got.ask_qty, want.ask_qty) << name;
    const auto book = p->book().top(locate);
    EXPECT_EQ(book.bid_price, want.bid_price) << name;
    EXPECT_EQ(book.ask_qty, want.ask_qty) << name;
    non_empty += (want.bid_qty != 0) + (want.ask_qty != 0);
  }
  EXPECT_GT(non_empty, 50u);
  // Every update is a valid record on the configured lane, in gateway sequence order.
  std::uint64_t seq = 0;
  for (std::size_t i = 0; i < down.payloads.size(); ++i) {
    TobUpdate u;
    ASSERT_EQ(hypergate::market::decode_tob_update(
                  std::as_bytes(std::span<const char>(down.payloads[i].data(), down.payloads[i].size())), u),
              hg::Status::Ok);
    ASSERT_EQ(u.sequence, ++seq);
    ASSERT_EQ(down.lanes[i], 3u);
  }
}

TEST(ItchPipeline, GapsAreReportedWithTheirExactRangesWithoutRecovery) {
  itch::GeneratorOptions g;
  g.symbol_count = 5;
  g.message_count = 20'000;
  g.drop_ranges = {{1000, 1000}, {5000, 5100}};
  auto f = itch::generate_feed(g);
  ASSERT_TRUE(f.ok());
  // The exact missing ranges are the sequences of the dropped packets.
  std::vector<mold::Gap> expected;
  for (const auto& pk : f->packets) {
    if (!pk.dropped) continue;
    const mold::Gap gap{pk.first_sequence, pk.first_sequence + pk.count - 1};
    if (!expected.empty() && expected.back().last + 1 == gap.first) expected.back().last = gap.last;
    else expected.push_back(gap);
  }
  ASSERT_EQ(expected.size(), 2u);

  auto p = make_pipeline();
  Collect down;
  hg::route::Emitter out(down);
  feed(*p, out, live_datagrams(f.value()));
  const auto s = p->stats();
  EXPECT_EQ(s.gap_ranges, expected);
  EXPECT_EQ(s.gaps, 2u);
  EXPECT_EQ(s.lost, expected[0].size() + expected[1].size());
  // Given up at once (no re-request server): every symbol is flagged stale in the store.
  std::string name(p->book().symbol(p->locates().front()));
  name.erase(name.find_last_not_of(' ') + 1);
  const TobUpdate u = stored(*p, name);
  EXPECT_TRUE(u.stale());
  const auto c = p->counters();
  EXPECT_EQ(c.gaps, 2u);
  ASSERT_EQ(c.recent_gaps.size(), 2u);
  EXPECT_EQ(c.recent_gaps[1].first_missing, expected[1].first);
  EXPECT_EQ(c.recent_gaps[1].last_missing, expected[1].last);
}

TEST(ItchPipeline, MalformedDatagramsAndMessagesAreCountedRejects) {
  auto p = make_pipeline("output = \"both\"\n");
  Collect down;
  hg::route::Emitter out(down);
  // A datagram shorter than a MoldUDP64 header, and one whose only message is an Add Order one byte short.
  std::vector<std::byte> short_dgram(7, std::byte{0});
  std::array<std::byte, 64> buf{};
  mold::PacketBuilder b(buf);
  b.start(mold::SessionName::from("S1"), 1);
  std::array<std::byte, itch::AddOrder::kSize - 1> bad{};
  bad[0] = std::byte{'A'};
  ASSERT_TRUE(b.append(bad));
  const auto dgram = b.finish();
  feed(*p, out, {short_dgram, dgram});
  const auto c = p->counters();
  EXPECT_EQ(c.rejected, 2u);
  std::map<std::string, std::uint64_t> by;
  for (const auto& [k, v] : c.rejects_by_reason) by[k] = v;
  EXPECT_EQ(by["truncated_header"], 1u);
  EXPECT_EQ(by["length_mismatch"], 1u);
  EXPECT_EQ(p->stats().messages, 0u);
  EXPECT_TRUE(down.payloads.empty());
}

TEST(ItchPipeline, RawItchOutputCarriesEveryMessageInOrder) {
  itch::GeneratorOptions g;
  g.symbol_count = 3;
  g.message_count = 3000;
  auto f = itch::generate_feed(g);
  ASSERT_TRUE(f.ok());
  auto p = make_pipeline("output = \"itch\"\nitch_sinks = [\"wire\"]\n");
  Collect down;
  hg::route::Emitter out(down);
  feed(*p, out, live_datagrams(f.value()));
  ASSERT_EQ(down.payloads.size(), 3000u);
  std::size_t i = 0;
  for (const auto& pk : f->packets) {
    mold::PacketView v;
    ASSERT_EQ(mold::PacketView::parse(f->bytes(pk), v), mold::PacketError::Ok);
    for (const mold::MessageBlock blk : v.messages()) {
      ASSERT_EQ(down.payloads[i], std::string(reinterpret_cast<const char*>(blk.data.data()), blk.data.size()));
      ++i;
    }
  }
}

TEST(ItchPipeline, TheSameSessionReplayedAfterItsEndStartsOver) {
  itch::GeneratorOptions g;
  g.symbol_count = 4;
  g.message_count = 5000;
  auto f = itch::generate_feed(g);
  ASSERT_TRUE(f.ok());
  auto p = make_pipeline();
  Collect down;
  hg::route::Emitter out(down);
  const auto dgrams = live_datagrams(f.value());
  feed(*p, out, dgrams);
  const auto first = p->book().top(1);
  feed(*p, out, dgrams);  // a looped capture: same session from sequence 1 after its end of session
  const auto s = p->stats();
  EXPECT_EQ(s.restarts, 1u);
  EXPECT_EQ(s.messages, 10'000u);
  EXPECT_EQ(s.gaps, 0u);
  EXPECT_EQ(p->book().top(1), first);  // rebuilt from scratch: the same final state
}

// One MoldUDP64 datagram of `session` holding `messages`, the first at `sequence`.
std::vector<std::byte> datagram(const std::string& session, std::uint64_t sequence,
                                const std::vector<std::vector<std::byte>>& messages) {
  std::vector<std::byte> buf(1500);
  mold::PacketBuilder b(buf);
  b.start(mold::SessionName::from(session), sequence);
  for (const auto& m : messages) EXPECT_TRUE(b.append(m));
  const auto d = b.finish();
  return {d.begin(), d.end()};
}

template <class T>
std::vector<std::byte> encoded(const T& m) {
  std::vector<std::byte> out(itch::kMaxMessageSize);
  out.resize(itch::encode(m, out));
  return out;
}

std::vector<std::byte> directory(std::uint16_t locate, std::string_view stock) {
  itch::StockDirectory d{};
  d.stock_locate = locate;
  d.stock = itch::Alpha<8>::from(stock);
  return encoded(d);
}

std::vector<std::byte> add_order(std::uint16_t locate, std::uint64_t ref, char side, std::uint32_t shares,
                                 std::uint32_t price) {
  itch::AddOrder a{};
  a.stock_locate = locate;
  a.order_ref = ref;
  a.side = side;
  a.shares = shares;
  a.stock = itch::Alpha<8>::from("IGNORED");
  a.price = price;
  return encoded(a);
}

bool in_store(const ItchPipeline& p, const std::string& symbol) {
  auto reader = p.store()->reader();
  EXPECT_TRUE(reader.ok());
  return reader->contains(symbol);
}

// Found by tests/fuzz/itch_pipeline_fuzz.cpp: a new session forgets the previous session's symbol names
// with its books. Locates are assigned per session (per day), so until the new session's directory
// names a locate, its updates have no key; before the fix they went out under the old session's name,
// and a record published that way outlived the next session change (the store said "bid 11500", the
// book was empty).
TEST(ItchPipeline, ANewSessionForgetsTheLastSessionsSymbolNames) {
  auto p = make_pipeline();
  Collect down;
  hg::route::Emitter out(down);
  const auto day1 = datagram("DAY1", 1, {directory(6, "AAPL"), add_order(6, 1, 'B', 100, 1'500'000)});
  feed(*p, out, {day1});
  EXPECT_EQ(stored(*p, "AAPL").bid_price, 1'500'000u);
  const std::size_t updates_day1 = down.payloads.size();

  // Day 2: locate 6 trades before its directory message came. The book keeps it, nobody hears of it
  // under day 1's name, and day 1's record is gone.
  const auto day2 = datagram("DAY2", 1, {add_order(6, 7, 'S', 200, 1'501'000)});
  feed(*p, out, {day2});
  EXPECT_EQ(p->stats().session_changes, 1u);
  EXPECT_EQ(p->book().top(6), (hypergate::market::TopOfBook{0, 0, 1'501'000, 200}));
  EXPECT_FALSE(in_store(*p, "AAPL"));
  EXPECT_EQ(down.payloads.size(), updates_day1);
  EXPECT_EQ(p->book().symbol(6), "        ");

  // Named in day 2 (as another stock): published under the new name, the order placed before counts.
  const auto day2b = datagram("DAY2", 2, {directory(6, "MSFT")});
  feed(*p, out, {day2b});
  EXPECT_EQ(stored(*p, "MSFT").ask_price, 1'501'000u);
  EXPECT_FALSE(in_store(*p, "AAPL"));

  // Day 3: nothing of day 2 stays in the store.
  const auto day3 = datagram("DAY3", 1, {add_order(6, 9, 'B', 10, 1'400'000)});
  feed(*p, out, {day3});
  EXPECT_FALSE(in_store(*p, "MSFT"));
  EXPECT_FALSE(in_store(*p, "AAPL"));
}

TEST(ItchPipeline, BadOptionsAreConfigErrors) {
  auto doc = hg::config::Document::parse("[p]\noutput = \"xml\"\nsinks = [\"nope\"]\nrerequest = \"not an endpoint\"\n",
                                         "bad.toml");
  ASSERT_TRUE(doc.ok());
  auto section = doc.value()->section("p");
  hg::route::PipelineContext ctx;
  ctx.sink_names = {"subscribers"};
  ctx.sink_count = 1;
  EXPECT_FALSE(hypergate::market::read_itch_options(section, ctx).ok());
  const std::string d = doc.value()->diagnostics().format();
  EXPECT_NE(d.find("bad.toml:2"), std::string::npos) << d;
  EXPECT_NE(d.find("unknown sink 'nope'"), std::string::npos) << d;
  EXPECT_NE(d.find("rerequest"), std::string::npos) << d;
}

#ifndef HG_SANITIZED  // the sanitizers reserve terabytes of shadow address space: RLIMIT_AS cannot apply
TEST(ItchPipeline, AnOrderBookTooLargeToMapIsAnErrorNotACrash) {
  // In a child limited to 1 GiB of address space, a book for 2^24 orders (a 768 MiB index plus
  // level arenas) cannot be mapped: create() reports it, naming the option to lower.
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_EXIT(
      {
        rlimit lim{};
        lim.rlim_cur = lim.rlim_max = std::size_t{1} << 30;
        if (::setrlimit(RLIMIT_AS, &lim) != 0) std::_Exit(3);
        ItchPipelineOptions o;
        o.book.max_orders = 1u << 24;
        o.book.level_capacity = 1u << 24;
        auto p = ItchPipeline::create(o);
        if (p.ok()) std::_Exit(1);
        std::fprintf(stderr, "%s\n", p.error().message.c_str());
        std::_Exit(p.error().message.find("max_orders = 16777216") != std::string::npos ? 0 : 2);
      },
      ::testing::ExitedWithCode(0), "cannot allocate the order book");
}
#endif
