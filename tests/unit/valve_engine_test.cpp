// Functional tests of the valve engine on one thread: slots, lanes, every collision policy, sink fan-out
// with partial accepts, counters (in == out + dropped + conflated + in_flight after every step).
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <new>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "hypergate/valve/conflation_table.hpp"
#include "hypergate/valve/valve_engine.hpp"

namespace hg = hypergate;
namespace valve = hypergate::valve;
using Engine = valve::ValveEngine<256>;

// Counts every (non-aligned) operator new of this test binary: the steady-state test below asserts that
// pushing and draining allocate nothing.
namespace {
std::atomic<std::size_t> g_news{0};
}
// GCC pairs the builtin new with free() after inlining and warns; these replacements are a matched pair.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t n) {
  g_news.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace {

// A message whose payload is "<key>:<seq>" and whose key is `key`; storage lives in the test.
struct TestMsg {
  std::string key;
  std::string payload;
  hg::Message m;
  TestMsg(std::string k, std::uint64_t seq, std::size_t pad = 0) : key(std::move(k)) {
    payload = key + ":" + std::to_string(seq) + std::string(pad, '.');
    m.set_payload(payload.data(), payload.size());
    m.set_key(key);
    m.sequence = seq;
    m.type = 'A';
    m.user = 7;
  }
  // Copies re-point the message at their own strings (short strings live inside the object).
  TestMsg(const TestMsg& o) : key(o.key), payload(o.payload), m(o.m) { repoint(); }
  TestMsg& operator=(const TestMsg&) = delete;
  void repoint() {
    m.set_payload(payload.data(), payload.size());
    m.key_data = key.data();
  }
};

struct Received {
  unsigned sink;
  std::string key;
  std::string payload;
  std::uint64_t sequence;
};

// A consumer that records what each sink accepted; sink s accepts at most limit[s] messages per call.
struct Collector {
  std::vector<Received> got;
  std::map<unsigned, std::size_t> limit;
  std::size_t drained_batches = 0;
  std::size_t drained_messages = 0;
  std::size_t send(unsigned sink, const hg::Burst<>& b) noexcept {
    std::size_t n = b.size();
    if (auto it = limit.find(sink); it != limit.end()) n = std::min(n, it->second);
    for (std::size_t i = 0; i < n; ++i)
      got.push_back({sink, std::string(b[i].key()), std::string(b[i].text()), b[i].sequence});
    return n;
  }
  template <class SlotT>
  void drained(const SlotT* slots, std::size_t n) noexcept {
    EXPECT_NE(slots, nullptr);
    ++drained_batches;
    drained_messages += n;
  }
  [[nodiscard]] std::vector<std::uint64_t> sequences(const std::string& key, unsigned sink = 0) const {
    std::vector<std::uint64_t> s;
    for (const auto& r : got)
      if (r.key == key && r.sink == sink) s.push_back(r.sequence);
    return s;
  }
};

valve::Options small(valve::CollisionPolicy p, std::uint32_t lanes = 1, std::uint32_t capacity = 4) {
  valve::Options o;
  o.lanes = lanes;
  o.ring_capacity = capacity;
  o.conflation_capacity = 8;
  o.policy = p;
  o.spin_ns = 1000;
  return o;
}

std::unique_ptr<Engine> make(const valve::Options& o) {
  auto r = Engine::create(o);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return std::move(r.value());
}

void expect_balanced(const Engine& e) {
  for (std::uint32_t l = 0; l < e.lanes(); ++l) {
    const valve::LaneCounters c = e.counters(l);
    EXPECT_EQ(c.in, c.out + c.dropped + c.conflated + c.in_flight) << "lane " << l;
  }
}

}  // namespace

TEST(Slot, CopiesPayloadAndKeyAndRebuildsTheMessage) {
  TestMsg t("MSFT", 42);
  t.m.rx_tsc = 123;
  t.m.source_id = 3;
  t.m.flags = hg::kMsgStale;
  valve::Slot<128> s(valve::SlotInit{&t.m, 0b101, 999});
  t.payload.assign(t.payload.size(), 'x');  // the source reuses its buffer: the slot must not care
  const hg::Message v = s.view();
  EXPECT_EQ(v.text(), "MSFT:42");
  EXPECT_EQ(v.key(), "MSFT");
  EXPECT_EQ(v.key_hash, hg::hash_bytes("MSFT"));
  EXPECT_EQ(v.sequence, 42u);
  EXPECT_EQ(v.rx_tsc, 123u);
  EXPECT_EQ(v.source_id, 3u);
  EXPECT_EQ(v.flags, hg::kMsgStale);
  EXPECT_EQ(v.type, 'A');
  EXPECT_EQ(v.user, 7u);
  EXPECT_EQ(s.h.sinks, 0b101u);
  EXPECT_EQ(s.h.push_tsc, 999u);
  valve::Slot<128> copy(s);
  valve::Slot<128> assigned;
  assigned = copy;
  EXPECT_EQ(assigned.view().text(), "MSFT:42");
  EXPECT_EQ(assigned.view().key(), "MSFT");
}

TEST(Slot, EmptyPayloadAndKeyAreFine) {
  hg::Message m;  // null data, no key
  valve::Slot<128> s(valve::SlotInit{&m, 1, 0});
  EXPECT_EQ(s.view().size, 0u);
  EXPECT_EQ(s.view().key_size, 0u);
  EXPECT_TRUE(valve::Slot<128>::fits(m));
}

TEST(Slot, FitsIsExactAtTheBoundary) {
  using S = valve::Slot<128>;
  std::string key = "K";
  std::string payload(S::kInlineBytes - key.size(), 'p');
  hg::Message m;
  m.set_payload(payload.data(), payload.size());
  m.set_key(key);
  EXPECT_TRUE(S::fits(m));
  payload.push_back('p');
  m.set_payload(payload.data(), payload.size());
  EXPECT_FALSE(S::fits(m));
}

TEST(ValveOptions, Validation) {
  valve::Options o;
  EXPECT_TRUE(valve::validate(o).ok());
  o.lanes = 24;
  EXPECT_FALSE(valve::validate(o).ok());
  o = {};
  o.ring_capacity = 1000;
  EXPECT_FALSE(valve::validate(o).ok());
  o = {};
  o.burst = 0;
  EXPECT_FALSE(valve::validate(o).ok());
  o = {};
  o.groups = {{"a", 0, 16, valve::CollisionPolicy::Conflate, 0}, {"b", 8, 16, valve::CollisionPolicy::Drop, 0}};
  auto r = valve::validate(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("lane 8"), std::string::npos) << r.error().message;
  o.groups = {{"a", 30, 4, valve::CollisionPolicy::Drop, 0}};
  EXPECT_FALSE(valve::validate(o).ok());
  EXPECT_FALSE(Engine::create(o).ok());
  EXPECT_EQ(valve::parse_collision_policy("conflate"), valve::CollisionPolicy::Conflate);
  EXPECT_FALSE(valve::parse_collision_policy("CONFLATE").has_value());
  EXPECT_EQ(valve::to_string(valve::CollisionPolicy::Disconnect), "disconnect");
}

TEST(ValveEngine, LaneIsKeyHashMaskedAndConsumerIsLaneModulo) {
  valve::Options o;
  o.lanes = 32;
  o.consumers = 3;
  auto e = make(o);
  for (const char* k : {"AAPL", "MSFT", "IBM", "GOOG", "TSLA"}) {
    TestMsg t(k, 1);
    EXPECT_EQ(e->lane_of(t.m.key_hash), static_cast<std::uint32_t>(hg::hash_bytes(k) & 31));
    EXPECT_EQ(e->push(0, t.m), valve::Verdict::Processed);
    EXPECT_EQ(e->counters(e->lane_of(t.m.key_hash)).in_flight, 1u);
  }
  EXPECT_EQ(e->consumer_of(7), 1u);
  EXPECT_EQ(e->consumer_of(8), 2u);
  // Consumer c drains only lanes l % 3 == c.
  Collector c;
  std::size_t total = 0;
  for (std::uint32_t k = 0; k < 3; ++k) {
    const std::size_t before = c.got.size();
    total += e->drain(k, c);
    for (std::size_t i = before; i < c.got.size(); ++i)
      EXPECT_EQ(e->consumer_of(e->lane_of(hg::hash_bytes(c.got[i].key))), k);
  }
  EXPECT_EQ(total, 5u);
  expect_balanced(*e);
  EXPECT_EQ(e->totals().out, 5u);
}

TEST(ValveEngine, DropPolicyCountsEveryCollision) {
  auto e = make(small(valve::CollisionPolicy::Drop));
  std::vector<TestMsg> msgs;
  for (int i = 0; i < 10; ++i) msgs.emplace_back("K", i);
  int processed = 0, collisions = 0;
  for (auto& t : msgs) {
    const auto v = e->push(0, t.m);
    (v == valve::Verdict::Processed ? processed : collisions)++;
    expect_balanced(*e);
  }
  EXPECT_EQ(processed, 4);
  EXPECT_EQ(collisions, 6);
  valve::LaneCounters c = e->counters(0);
  EXPECT_EQ(c.in, 10u);
  EXPECT_EQ(c.dropped, 6u);
  EXPECT_EQ(c.collisions, 6u);
  EXPECT_EQ(c.in_flight, 4u);
  EXPECT_EQ(c.max_depth, 4u);
  Collector col;
  EXPECT_EQ(e->drain(0, col), 4u);
  EXPECT_EQ(col.sequences("K"), (std::vector<std::uint64_t>{0, 1, 2, 3}));
  c = e->counters(0);
  EXPECT_EQ(c.out, 4u);
  EXPECT_EQ(c.in_flight, 0u);
  expect_balanced(*e);
  EXPECT_TRUE(e->consumer_idle(0));
}

TEST(ValveEngine, OversizeIsRejectedNeverTruncated) {
  auto e = make(small(valve::CollisionPolicy::Drop));
  TestMsg big("K", 1, Engine::SlotType::kInlineBytes);  // payload + key exceed the slot
  TestMsg ok("K", 2);
  EXPECT_EQ(e->push(0, big.m, std::uint64_t{1}), valve::Verdict::Rejected);
  EXPECT_EQ(e->push(0, ok.m, std::uint64_t{1}), valve::Verdict::Processed);
  const valve::LaneCounters c = e->counters(0);
  EXPECT_EQ(c.oversize, 1u);
  EXPECT_EQ(c.dropped, 1u);
  EXPECT_EQ(c.in, 2u);
  expect_balanced(*e);
  Collector col;
  e->drain(0, col);
  ASSERT_EQ(col.got.size(), 1u);
  EXPECT_EQ(col.got[0].payload, "K:2");
}

TEST(ValveEngine, SpinPolicyWaitsItsBudgetThenDrops) {
  auto e = make(small(valve::CollisionPolicy::Spin));
  std::vector<TestMsg> msgs;
  for (int i = 0; i < 6; ++i) msgs.emplace_back("K", i);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(e->push(0, msgs[i].m), valve::Verdict::Processed);
  // Nobody drains on this thread: the spin budget (1 us) runs out and the message is dropped, counted.
  EXPECT_EQ(e->push(0, msgs[4].m), valve::Verdict::Collision);
  valve::LaneCounters c = e->counters(0);
  EXPECT_EQ(c.collisions, 1u);
  EXPECT_EQ(c.dropped, 1u);
  expect_balanced(*e);
  Collector col;
  e->drain(0, col);
  EXPECT_EQ(e->push(0, msgs[5].m), valve::Verdict::Processed);
  e->drain(0, col);
  EXPECT_EQ(col.sequences("K"), (std::vector<std::uint64_t>{0, 1, 2, 3, 5}));
  expect_balanced(*e);
}

TEST(ValveEngine, SpinWorkRunsWhileSpinningAndCanFreeTheRing) {
  valve::Options o = small(valve::CollisionPolicy::Spin);
  o.spin_ns = 600'000'000'000;  // would never end if the spin work did not drain the ring
  auto e = make(o);
  std::vector<TestMsg> msgs;
  std::vector<hg::Message> flat;
  std::vector<hg::route::Route> routes(10);
  for (int i = 0; i < 10; ++i) msgs.emplace_back("K", i);
  for (auto& t : msgs) flat.push_back(t.m);
  for (auto& r : routes) {
    r.sinks = 1;
    r.action = hg::route::Action::Deliver;
  }
  Collector col;
  int calls = 0;
  const valve::BurstOutcome out = e->push_burst(0, flat, routes, [&]() noexcept {
    ++calls;
    e->drain(0, col);
  });
  EXPECT_GT(calls, 0);
  EXPECT_EQ(out.processed, 4u);   // fitted at once
  EXPECT_EQ(out.collisions, 6u);  // met a full ring, then got in while spinning
  e->drain(0, col);
  EXPECT_EQ(col.sequences("K"), (std::vector<std::uint64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(e->counters(0).dropped, 0u);
  expect_balanced(*e);
}

// The per-message push a verdict-wanting source uses (runtime: deliver_observed): the caller's tick
// becomes the slot's push time, and each call answers for its one message.
TEST(ValveEngine, PushWithAGivenTimeStampsTheSlotAndAnswersPerMessage) {
  auto e = make(small(valve::CollisionPolicy::Drop));   // 1 lane, 4 slots
  hg::route::Route r;
  r.sinks = 1;
  r.action = hg::route::Action::Deliver;
  std::vector<TestMsg> msgs;
  for (int i = 0; i < 5; ++i) msgs.emplace_back("K", i);
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(e->push(0, msgs[i].m, r, 1000 + i, valve::NoSpinWork{}), valve::Verdict::Processed) << i;
  EXPECT_EQ(e->push(0, msgs[4].m, r, 1004, valve::NoSpinWork{}), valve::Verdict::Collision);
  const TestMsg big("K", 9, Engine::SlotType::kInlineBytes);   // payload + key larger than a slot
  EXPECT_EQ(e->push(0, big.m, r, 1005, valve::NoSpinWork{}), valve::Verdict::Rejected);

  struct Stamps : Collector {
    std::vector<std::uint64_t> push_tsc;
    void drained(const Engine::SlotType* slots, std::size_t n) noexcept {
      for (std::size_t i = 0; i < n; ++i) push_tsc.push_back(slots[i].h.push_tsc);
    }
  } col;
  e->drain(0, col);
  EXPECT_EQ(col.push_tsc, (std::vector<std::uint64_t>{1000, 1001, 1002, 1003}));
  EXPECT_EQ(col.sequences("K"), (std::vector<std::uint64_t>{0, 1, 2, 3}));
  const valve::LaneCounters c = e->counters(0);
  EXPECT_EQ(c.in, 6u);
  EXPECT_EQ(c.dropped, 2u);   // the collision and the oversize one
  EXPECT_EQ(c.oversize, 1u);
  expect_balanced(*e);
}

TEST(ValveEngine, ConflateKeepsNewestPerKeyAndNeverReordersAKey) {
  auto e = make(small(valve::CollisionPolicy::Conflate));
  std::vector<TestMsg> msgs;
  // Ring holds 4: A0 B0 A1 B1. Then the table: A2 (then A3 replaces it), C0, B2.
  const char* plan[][2] = {{"A", "0"}, {"B", "0"}, {"A", "1"}, {"B", "1"}, {"A", "2"},
                           {"C", "0"}, {"A", "3"}, {"B", "2"}, {"A", "4"}};
  for (auto& p : plan) msgs.emplace_back(p[0], std::stoull(p[1]));
  std::vector<valve::Verdict> v;
  for (auto& t : msgs) {
    v.push_back(e->push(0, t.m));
    expect_balanced(*e);
  }
  for (int i = 0; i < 4; ++i) EXPECT_EQ(v[i], valve::Verdict::Processed);
  for (std::size_t i = 4; i < v.size(); ++i) EXPECT_EQ(v[i], valve::Verdict::Collision);
  valve::LaneCounters c = e->counters(0);
  EXPECT_EQ(c.conflated, 2u);  // A2 and A3 were replaced
  EXPECT_EQ(c.dropped, 0u);
  EXPECT_EQ(c.in_flight, 7u);  // 4 in the ring + A4, C0, B2 in the table
  EXPECT_FALSE(e->producer_idle(0));

  Collector col;
  // Drain, then pump the table into the ring (the runtime does both every loop), until empty.
  for (int round = 0; round < 4; ++round) {
    e->drain(0, col);
    e->pump(0);
    expect_balanced(*e);
  }
  EXPECT_TRUE(e->producer_idle(0));
  EXPECT_EQ(col.sequences("A"), (std::vector<std::uint64_t>{0, 1, 4}));
  EXPECT_EQ(col.sequences("B"), (std::vector<std::uint64_t>{0, 1, 2}));
  EXPECT_EQ(col.sequences("C"), (std::vector<std::uint64_t>{0}));
  c = e->counters(0);
  EXPECT_EQ(c.in_flight, 0u);
  EXPECT_EQ(c.out, 7u);
}

TEST(ValveEngine, ConflateWhileTableHoldsAKeyDoesNotLetNewerOvertake) {
  auto e = make(small(valve::CollisionPolicy::Conflate));
  std::vector<TestMsg> msgs;
  for (int i = 0; i < 5; ++i) msgs.emplace_back("A", i);  // A0..A3 ring, A4 table
  for (auto& t : msgs) (void)e->push(0, t.m);
  Collector col;
  col.limit[0] = 1;  // the sink takes one message per call
  e->drain(0, col);  // pops A0..A3 into scratch, sink took A0: ring now has room, table still has A4
  TestMsg a5("A", 5);
  // The ring has room, but A4 waits in the table: A5 must not go around it. pump() moves A4 first.
  EXPECT_EQ(e->push(0, a5.m), valve::Verdict::Processed);
  col.limit.clear();
  for (int round = 0; round < 4; ++round) {
    e->drain(0, col);
    e->pump(0);
  }
  EXPECT_EQ(col.sequences("A"), (std::vector<std::uint64_t>{0, 1, 2, 3, 4, 5}));
  expect_balanced(*e);
}

TEST(ValveEngine, ConflationTableFullDropsNewKeys) {
  valve::Options o = small(valve::CollisionPolicy::Conflate);
  o.conflation_capacity = 2;
  auto e = make(o);
  std::vector<TestMsg> msgs;
  for (int i = 0; i < 4; ++i) msgs.emplace_back("R" + std::to_string(i), 0);  // fill the ring
  for (const char* k : {"X", "Y", "Z", "X"}) msgs.emplace_back(k, 1);
  for (auto& t : msgs) (void)e->push(0, t.m);
  const valve::LaneCounters c = e->counters(0);
  EXPECT_EQ(c.dropped, 1u);    // Z: no free entry
  EXPECT_EQ(c.conflated, 1u);  // the first X
  expect_balanced(*e);
}

TEST(ValveEngine, DisconnectMarksTheGroupAndDropsUntilReconnect) {
  valve::Options o = small(valve::CollisionPolicy::Drop, 4);
  o.groups = {{"subscribers", 2, 2, valve::CollisionPolicy::Disconnect, 0}};
  auto e = make(o);
  std::vector<TestMsg> msgs;
  // Keys that land on lane 2 (group) and lane 0 (outside).
  std::vector<std::string> lane2, lane0;
  for (int i = 0; lane2.size() < 1 || lane0.size() < 1; ++i) {
    const std::string k = "k" + std::to_string(i);
    const auto l = hg::hash_bytes(k) & 3;
    if (l == 2 && lane2.empty()) lane2.push_back(k);
    if (l == 0 && lane0.empty()) lane0.push_back(k);
  }
  for (int i = 0; i < 6; ++i) msgs.emplace_back(lane2[0], i);
  std::vector<valve::Verdict> v;
  for (auto& t : msgs) v.push_back(e->push(0, t.m));
  EXPECT_EQ(v[4], valve::Verdict::Collision);
  EXPECT_TRUE(e->disconnected(2));
  EXPECT_TRUE(e->disconnected(3));   // the whole group
  EXPECT_FALSE(e->disconnected(0));
  EXPECT_EQ(e->disconnects(2), 1u);
  Collector col;
  e->drain(0, col);  // queued messages are still delivered
  EXPECT_EQ(col.sequences(lane2[0]), (std::vector<std::uint64_t>{0, 1, 2, 3}));
  TestMsg after(lane2[0], 10);
  EXPECT_EQ(e->push(0, after.m), valve::Verdict::Collision);  // ring empty, but disconnected
  valve::LaneCounters c = e->counters(2);
  EXPECT_EQ(c.disconnected_drops, 3u);
  EXPECT_EQ(c.dropped, 3u);
  EXPECT_TRUE(c.disconnected);
  EXPECT_EQ(c.policy, valve::CollisionPolicy::Disconnect);
  TestMsg other(lane0[0], 1);
  EXPECT_EQ(e->push(0, other.m), valve::Verdict::Processed);  // other groups unaffected
  e->reconnect(3);
  EXPECT_FALSE(e->disconnected(2));
  TestMsg again(lane2[0], 11);
  EXPECT_EQ(e->push(0, again.m), valve::Verdict::Processed);
  expect_balanced(*e);
}

TEST(ValveEngine, PushBurstGroupsByLaneKeepsOrderAndSkipsDrops) {
  valve::Options o;
  o.lanes = 8;
  o.ring_capacity = 64;
  auto e = make(o);
  std::vector<TestMsg> msgs;
  std::vector<hg::route::Route> routes;
  for (int i = 0; i < 40; ++i) {  // more than one burst of 32: chunks
    msgs.emplace_back("key" + std::to_string(i % 5), i);
    hg::route::Route r;
    r.lane = static_cast<std::uint16_t>(msgs.back().m.key_hash & 7);
    r.sinks = 1;
    r.action = (i % 10 == 9) ? hg::route::Action::Drop : hg::route::Action::Deliver;
    routes.push_back(r);
  }
  std::vector<hg::Message> flat;
  for (auto& t : msgs) flat.push_back(t.m);
  const valve::BurstOutcome out = e->push_burst(0, flat, routes);
  EXPECT_EQ(out.processed, 36u);
  EXPECT_EQ(out.skipped, 4u);
  EXPECT_EQ(out.collisions, 0u);
  Collector col;
  EXPECT_EQ(e->drain(0, col), 36u);
  for (int k = 0; k < 5; ++k) {
    std::vector<std::uint64_t> want;
    for (int i = k; i < 40; i += 5)
      if (i % 10 != 9) want.push_back(i);
    EXPECT_EQ(col.sequences("key" + std::to_string(k)), want) << k;
  }
  expect_balanced(*e);
}

TEST(ValveEngine, FanOutWithPartialAcceptsHoldsTheLaneUntilEverySinkTookIt) {
  valve::Options o = small(valve::CollisionPolicy::Drop, 1, 8);
  auto e = make(o);
  std::vector<TestMsg> msgs;
  for (int i = 0; i < 6; ++i) msgs.emplace_back("K", i);
  for (int i = 0; i < 6; ++i) {
    hg::route::Route r;
    r.action = hg::route::Action::Deliver;
    r.sinks = (i % 2 == 0) ? 0b11 : 0b10;  // even: sinks 0 and 1; odd: sink 1 only
    EXPECT_EQ(e->push(0, msgs[i].m, r), valve::Verdict::Processed);
  }
  Collector col;
  col.limit[1] = 2;  // sink 1 is slow: two per call
  EXPECT_EQ(e->drain(0, col), 0u);  // batch not complete: nothing left the lane yet
  EXPECT_EQ(e->counters(0).out, 0u);
  EXPECT_EQ(e->counters(0).in_flight, 6u);
  EXPECT_FALSE(e->consumer_idle(0));
  EXPECT_EQ(e->drain(0, col), 0u);
  EXPECT_EQ(e->drain(0, col), 6u);
  EXPECT_EQ(col.drained_batches, 1u);
  EXPECT_EQ(col.drained_messages, 6u);
  EXPECT_EQ(col.sequences("K", 0), (std::vector<std::uint64_t>{0, 2, 4}));  // sink 0 got its share once
  EXPECT_EQ(col.sequences("K", 1), (std::vector<std::uint64_t>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(e->counters(0).out, 6u);
  expect_balanced(*e);
}

// Every message to both sinks (the batch shares one burst of views); sink 1 takes 3 per call, so it
// resumes from a cursor into the shared batch while sink 0 is done after its first call.
TEST(ValveEngine, UniformFanOutSharesOneBurstAndResumesAPartialSink) {
  auto e = make(small(valve::CollisionPolicy::Drop, 1, 16));
  std::vector<TestMsg> msgs;
  for (int i = 0; i < 8; ++i) msgs.emplace_back("K", i);
  for (auto& t : msgs) EXPECT_EQ(e->push(0, t.m, std::uint64_t{0b11}), valve::Verdict::Processed);
  Collector col;
  col.limit[1] = 3;
  EXPECT_EQ(e->drain(0, col), 0u);
  EXPECT_EQ(e->drain(0, col), 0u);
  EXPECT_EQ(e->drain(0, col), 8u);
  const std::vector<std::uint64_t> all{0, 1, 2, 3, 4, 5, 6, 7};
  EXPECT_EQ(col.sequences("K", 0), all);  // exactly once, although sink 1 needed three calls
  EXPECT_EQ(col.sequences("K", 1), all);
  for (const Received& r : col.got) EXPECT_EQ(r.payload, "K:" + std::to_string(r.sequence));
  EXPECT_EQ(col.drained_batches, 1u);
  expect_balanced(*e);
}

// An oversize message inside a burst is refused on its own, whether the burst takes one lane (one group)
// or several (grouped by lane); its neighbours keep their order.
TEST(ValveEngine, PushBurstRefusesOnlyTheOversizeMessage) {
  for (const std::uint32_t lanes : {1u, 4u}) {
    valve::Options o = small(valve::CollisionPolicy::Drop, lanes, 64);
    auto e = make(o);
    std::vector<TestMsg> msgs;
    for (int i = 0; i < 10; ++i)
      msgs.emplace_back("key" + std::to_string(i % 3), i, i == 4 ? Engine::SlotType::kInlineBytes : 0);
    std::vector<hg::Message> flat;
    std::vector<hg::route::Route> routes;
    for (auto& t : msgs) {
      flat.push_back(t.m);
      hg::route::Route r;
      r.lane = static_cast<std::uint16_t>(t.m.key_hash & (lanes - 1));
      r.sinks = 1;
      r.action = hg::route::Action::Deliver;
      routes.push_back(r);
    }
    const valve::BurstOutcome out = e->push_burst(0, flat, routes);
    EXPECT_EQ(out.processed, 9u) << lanes;
    EXPECT_EQ(out.rejected, 1u) << lanes;
    EXPECT_EQ(e->totals().oversize, 1u) << lanes;
    Collector col;
    EXPECT_EQ(e->drain(0, col), 9u) << lanes;
    EXPECT_EQ(col.sequences("key0"), (std::vector<std::uint64_t>{0, 3, 6, 9})) << lanes;
    EXPECT_EQ(col.sequences("key1"), (std::vector<std::uint64_t>{1, 7})) << lanes;  // 4 was refused
    EXPECT_EQ(col.sequences("key2"), (std::vector<std::uint64_t>{2, 5, 8})) << lanes;
    expect_balanced(*e);
  }
}

// Slots up to kBulkCopyMaxBytes are staged and copied whole, larger ones copy their used bytes in place:
// both paths must deliver the same. Bursts over 4 lanes into rings of 8 with every policy, a fan-out to
// two sinks of which one takes 3 per call, payloads of many lengths up to the slot's inline bytes.
template <std::size_t Bytes>
void same_delivery_at_slot_size(valve::CollisionPolicy policy) {
  using E = valve::ValveEngine<Bytes>;
  SCOPED_TRACE(testing::Message() << "slot " << Bytes << " policy " << static_cast<int>(policy));
  valve::Options o = small(policy, 4, 8);
  o.spin_ns = 0;  // spin once, then drop: deterministic in a single thread
  auto made = E::create(o);
  ASSERT_TRUE(made.ok());
  E& e = *made.value();
  std::vector<TestMsg> msgs;
  msgs.reserve(60);
  for (std::uint64_t i = 0; i < 60; ++i)
    msgs.emplace_back("k" + std::to_string(i % 6), i, (i * 37) % (E::SlotType::kInlineBytes - 8));
  std::vector<hg::Message> flat;
  std::vector<hg::route::Route> routes;
  for (const TestMsg& t : msgs) {
    flat.push_back(t.m);
    hg::route::Route r;
    r.lane = static_cast<std::uint16_t>(t.m.key_hash);
    r.sinks = (t.m.sequence % 3 == 0) ? 0b01 : 0b11;  // mixed masks in some batches
    r.action = hg::route::Action::Deliver;
    routes.push_back(r);
  }
  Collector col;
  col.limit[1] = 3;
  const std::span<const hg::Message> all(flat);
  const std::span<const hg::route::Route> all_routes(routes);
  const valve::BurstOutcome out = e.push_burst(0, all.first(30), all_routes.first(30));
  for (int i = 0; i < 8; ++i) e.drain(0, col);
  const valve::BurstOutcome out2 = e.push_burst(0, all.subspan(30), all_routes.subspan(30));
  for (int i = 0; i < 40; ++i) {
    e.pump(0);
    e.drain(0, col);
  }
  EXPECT_EQ(out.processed + out.collisions + out2.processed + out2.collisions, 60u);
  const valve::LaneCounters t = e.totals();
  EXPECT_EQ(t.in, 60u);
  EXPECT_EQ(t.in_flight, 0u);
  EXPECT_EQ(t.in, t.out + t.dropped + t.conflated);
  EXPECT_GT(t.collisions, 0u);  // rings of 8 over 4 lanes: 30 at once must collide somewhere
  // Whatever was delivered arrived intact, in order per key, once per sink it was routed to.
  std::map<std::pair<unsigned, std::string>, std::uint64_t> last;
  std::size_t to_sink0 = 0;
  for (const Received& r : col.got) {
    ASSERT_LT(r.sequence, msgs.size());
    const TestMsg& src = msgs[r.sequence];
    EXPECT_EQ(r.payload, src.payload);
    EXPECT_EQ(r.key, src.key);
    if (r.sink == 1) {
      EXPECT_NE(r.sequence % 3, 0u);
    }
    const auto k = std::make_pair(r.sink, r.key);
    if (auto it = last.find(k); it != last.end()) {
      EXPECT_LT(it->second, r.sequence);
    }
    last[k] = r.sequence;
    to_sink0 += r.sink == 0 ? 1 : 0;
  }
  EXPECT_EQ(to_sink0, t.out);  // every message that left the lane went to sink 0
}

TEST(ValveEngine, EverySlotSizeDeliversTheSameUnderEveryPolicy) {
  for (const auto p : {valve::CollisionPolicy::Drop, valve::CollisionPolicy::Spin, valve::CollisionPolicy::Conflate,
                       valve::CollisionPolicy::Disconnect}) {
    same_delivery_at_slot_size<128>(p);
    same_delivery_at_slot_size<valve::kBulkCopyMaxBytes>(p);
    same_delivery_at_slot_size<2 * valve::kBulkCopyMaxBytes>(p);
    same_delivery_at_slot_size<2048>(p);
  }
  static_assert(valve::Slot<valve::kBulkCopyMaxBytes>::kTrivialCopy &&
                !valve::Slot<2 * valve::kBulkCopyMaxBytes>::kTrivialCopy);
}

TEST(ValveEngine, MessagesWithoutSinksLeaveTheLane) {
  auto e = make(small(valve::CollisionPolicy::Drop));
  TestMsg t("K", 1);
  EXPECT_EQ(e->push(0, t.m, std::uint64_t{0}), valve::Verdict::Processed);
  Collector col;
  EXPECT_EQ(e->drain(0, col), 1u);
  EXPECT_TRUE(col.got.empty());
  expect_balanced(*e);
}

TEST(ValveEngine, TwoProducersShareALaneInRoundRobin) {
  valve::Options o = small(valve::CollisionPolicy::Drop, 1, 64);
  o.producers = 2;
  o.burst = 4;
  auto e = make(o);
  std::vector<TestMsg> a, b;
  for (int i = 0; i < 8; ++i) {
    a.emplace_back("A", i);
    b.emplace_back("B", i);
  }
  for (int i = 0; i < 8; ++i) {
    (void)e->push(0, a[i].m, std::uint64_t{1});
    (void)e->push(1, b[i].m, std::uint64_t{1});
  }
  Collector col;
  while (e->drain(0, col) != 0) {
  }
  EXPECT_EQ(col.sequences("A"), (std::vector<std::uint64_t>{0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(col.sequences("B"), (std::vector<std::uint64_t>{0, 1, 2, 3, 4, 5, 6, 7}));
  // Fairness: batches of 4 alternate between the two rings.
  ASSERT_EQ(col.got.size(), 16u);
  EXPECT_NE(col.got[0].key, col.got[4].key);
  expect_balanced(*e);
}

// ConflationTable against a model: random inserts/replacements/pops with many hash collisions.
TEST(ConflationTable, MatchesAModelUnderRandomOperations) {
  using Table = valve::ConflationTable<valve::Slot<128>>;
  Table t(16);
  std::mt19937_64 rng(7);
  std::vector<std::string> order;            // model FIFO of keys
  std::map<std::string, std::uint64_t> latest;  // model newest value per key
  std::vector<TestMsg> keep;
  keep.reserve(20000);
  for (int step = 0; step < 20000; ++step) {
    if (rng() % 3 != 0) {
      const std::string key = "k" + std::to_string(rng() % 40);
      keep.emplace_back(key, step);
      hg::Message m = keep.back().m;
      m.key_hash &= 0x3;  // force heavy collisions in the index: exercises probing and backward shift
      const auto out = t.insert_or_replace(valve::SlotInit{&m, 1, 0});
      if (latest.count(key)) {
        ASSERT_EQ(out, Table::Outcome::Replaced);
        latest[key] = step;
      } else if (order.size() == 16) {
        ASSERT_EQ(out, Table::Outcome::Full);
      } else {
        ASSERT_EQ(out, Table::Outcome::Inserted);
        order.push_back(key);
        latest[key] = step;
      }
    } else if (!order.empty()) {
      ASSERT_FALSE(t.empty());
      const auto& f = t.front();
      ASSERT_EQ(std::string(f.key()), order.front());
      ASSERT_EQ(f.h.sequence, latest[order.front()]);
      latest.erase(order.front());
      order.erase(order.begin());
      t.pop_front();
    }
    ASSERT_EQ(t.size(), order.size());
  }
}

TEST(ValveEngine, SteadyStatePushAndDrainAllocateNothing) {
  valve::Options o;
  o.lanes = 8;
  o.ring_capacity = 8;
  o.policy = valve::CollisionPolicy::Conflate;
  o.conflation_capacity = 16;
  auto e = make(o);
  std::vector<TestMsg> msgs;
  for (int i = 0; i < 32; ++i) msgs.emplace_back("key" + std::to_string(i % 12), i);
  std::vector<hg::Message> flat;
  std::vector<hg::route::Route> routes(32);
  for (std::size_t i = 0; i < msgs.size(); ++i) {
    flat.push_back(msgs[i].m);
    routes[i].lane = static_cast<std::uint16_t>(flat[i].key_hash & 7);
    routes[i].sinks = 0b11;
    routes[i].action = hg::route::Action::Deliver;
  }
  Collector col;
  col.got.reserve(1 << 20);
  const std::size_t before = g_news.load();
  for (int round = 0; round < 5000; ++round) {
    (void)e->push_burst(0, flat, routes);
    if (round % 3 == 0) {  // let the rings fill now and then: collisions and conflation are steady state too
      e->pump(0);
      e->drain(0, col);
    }
    if (col.got.size() > (1 << 19)) col.got.clear();
  }
  const std::size_t after = g_news.load();
  EXPECT_EQ(after, before);
  EXPECT_GT(e->totals().conflated, 0u);
  expect_balanced(*e);
}

// One drain call takes up to drain_rounds bursts from a ring (in order), not one burst per call: a
// producer that pushed a large burst (one datagram fanning out into many messages) is not throttled.
TEST(ValveEngine, ADrainTakesUpToDrainRoundsBursts) {
  for (const std::uint32_t rounds : {1u, 3u, 128u}) {
    valve::Options o = small(valve::CollisionPolicy::Drop, 1, 1024);
    o.burst = 32;
    o.drain_rounds = rounds;
    auto e = make(o);
    std::vector<TestMsg> msgs;
    for (int i = 0; i < 200; ++i) msgs.emplace_back("K", i);
    for (auto& t : msgs) ASSERT_EQ(e->push(0, t.m), valve::Verdict::Processed);
    Collector col;
    const std::size_t first = e->drain(0, col);
    EXPECT_EQ(first, std::min<std::size_t>(200, std::size_t{32} * rounds)) << "rounds " << rounds;
    while (e->drain(0, col) != 0) {
    }
    std::vector<std::uint64_t> want(200);
    for (std::uint64_t i = 0; i < 200; ++i) want[i] = i;
    EXPECT_EQ(col.sequences("K"), want);
    expect_balanced(*e);
  }
  valve::Options bad = small(valve::CollisionPolicy::Drop);
  bad.drain_rounds = 0;
  EXPECT_FALSE(valve::validate(bad).ok());
}

namespace {
std::uint64_t minor_faults() {
  rusage u{};
  getrusage(RUSAGE_THREAD, &u);
  return static_cast<std::uint64_t>(u.ru_minflt);
}
}  // namespace

// create() faults every ring page in: filling a fresh lane (4096 slots of 256 bytes = 1 MiB, 256 pages
// of 4 KiB) causes no page fault on the producer (a few for the test's own memory at most).
TEST(ValveEngine, AFreshRingIsFaultedInByCreate) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ThreadSanitizer maps its shadow memory on first access: its page faults are counted too";
#endif
  valve::Options o;
  o.lanes = 1;
  o.ring_capacity = 4096;
  o.policy = valve::CollisionPolicy::Drop;
  auto e = make(o);
  TestMsg m("k", 1);
  hg::Message flat[1] = {m.m};
  hg::route::Route routes[1];
  routes[0].lane = 0;
  routes[0].sinks = 1;
  routes[0].action = hg::route::Action::Deliver;
  const std::uint64_t before = minor_faults();
  for (std::uint32_t i = 0; i < o.ring_capacity; ++i) (void)e->push_burst(0, flat, routes);
  const std::uint64_t faults = minor_faults() - before;
  EXPECT_LE(faults, 4u);
  EXPECT_EQ(e->counters(0).in, o.ring_capacity);
}
