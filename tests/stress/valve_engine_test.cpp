// Valve engine under real concurrency: 2 producer threads x 2 consumer threads over 8 lanes with small
// rings and a consumer that stalls now and then, for every collision policy. Checks:
//  - per-key order: at the sink, the sequence of every key is strictly increasing;
//  - no loss: every pushed message is delivered, dropped or conflated — counted exactly once;
//  - in == out + dropped + conflated + in_flight sampled concurrently by a monitor thread (in_flight never
//    negative and never above what rings, tables and scratch can hold), and in_flight == 0 at the end;
//  - conflate: the newest message of every key is delivered; spin with a large budget: nothing dropped.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "hypergate/valve/valve_engine.hpp"

namespace hg = hypergate;
namespace valve = hypergate::valve;
using Engine = valve::ValveEngine<128>;

namespace {

#ifdef HG_SANITIZED
constexpr std::uint64_t kPerProducer = 60'000;
#else
constexpr std::uint64_t kPerProducer = 400'000;
#endif
constexpr unsigned kProducers = 2;
constexpr unsigned kConsumers = 2;
constexpr unsigned kKeys = 24;  // per producer
constexpr std::uint32_t kLanes = 8;
constexpr std::uint32_t kRing = 64;
constexpr std::uint32_t kTable = 32;  // >= keys per (producer, lane): conflation never runs out of entries

struct Delivered {
  std::uint32_t key;  // producer * kKeys + key index
  std::uint64_t seq;
};

struct Consumer {
  std::vector<Delivered> got;
  std::uint64_t calls = 0;
  std::size_t send(unsigned sink, const hg::Burst<>& b) noexcept {
    EXPECT_EQ(sink, 0u);
    // Stall now and then (and sometimes accept only part) so that rings fill and collisions happen.
    if (++calls % 7 == 0) std::this_thread::yield();
    std::size_t n = b.size();
    if (calls % 5 == 0 && n > 1) n /= 2;
    for (std::size_t i = 0; i < n; ++i) {
      std::uint32_t key = 0;
      std::memcpy(&key, b[i].data, sizeof key);
      got.push_back({key, b[i].sequence});
    }
    return n;
  }
  void drained(const Engine::SlotType*, std::size_t) noexcept {}
};

void run(valve::CollisionPolicy policy, std::uint64_t spin_ns, std::uint32_t ring = kRing,
         std::uint64_t per_producer = kPerProducer) {
  valve::Options o;
  o.lanes = kLanes;
  o.producers = kProducers;
  o.consumers = kConsumers;
  o.ring_capacity = ring;
  o.conflation_capacity = kTable;
  o.policy = policy;
  o.spin_ns = spin_ns;
  auto created = Engine::create(o);
  ASSERT_TRUE(created.ok());
  Engine& e = *created.value();

  std::atomic<unsigned> producers_done{0};
  std::atomic<bool> monitor_stop{false};
  std::vector<std::uint64_t> pushed_verdicts[kProducers];
  std::vector<std::uint64_t> last_seq(kProducers * kKeys, 0);

  std::vector<std::thread> threads;
  for (unsigned p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      std::uint32_t key_bytes[kKeys];
      std::string key_names[kKeys];
      std::uint64_t seq[kKeys] = {};
      for (unsigned k = 0; k < kKeys; ++k) {
        key_bytes[k] = p * kKeys + k;
        key_names[k] = "p" + std::to_string(p) + "k" + std::to_string(k);
      }
      hg::Message msgs[32];
      hg::route::Route routes[32];
      std::uint64_t i = 0;
      while (i < per_producer) {
        std::size_t n = 0;
        for (; n < 32 && i < per_producer; ++n, ++i) {
          const unsigned k = static_cast<unsigned>((i * 7 + p) % kKeys);
          hg::Message& m = msgs[n];
          m = hg::Message{};
          m.set_payload(&key_bytes[k], sizeof key_bytes[k]);
          m.set_key(key_names[k]);
          m.sequence = seq[k]++;
          routes[n].lane = static_cast<std::uint16_t>(m.key_hash & (kLanes - 1));
          routes[n].sinks = 1;
          routes[n].action = hg::route::Action::Deliver;
        }
        (void)e.push_burst(p, std::span<const hg::Message>(msgs, n), std::span<const hg::route::Route>(routes, n));
        e.pump(p);
      }
      for (unsigned k = 0; k < kKeys; ++k) last_seq[p * kKeys + k] = seq[k] - 1;
      while (!e.pump(p)) std::this_thread::yield();  // flush the conflation tables
      producers_done.fetch_add(1, std::memory_order_acq_rel);  // publishes our pushes to the consumers
    });
  }
  Consumer consumers[kConsumers];
  for (unsigned c = 0; c < kConsumers; ++c) {
    threads.emplace_back([&, c] {
      for (;;) {
        const bool done = producers_done.load(std::memory_order_acquire) == kProducers;
        e.drain(c, consumers[c]);
        if (done && e.consumer_idle(c)) break;
      }
    });
  }
  std::uint64_t samples = 0;
  std::thread monitor([&] {
    // Everything that can be in flight at once: rings, tables, consumer scratch, one burst being pushed.
    const std::int64_t bound = kProducers * (ring + kTable) + 32 + kProducers * 32;
    while (!monitor_stop.load(std::memory_order_acquire)) {
      for (std::uint32_t l = 0; l < kLanes; ++l) {
        // `before.in` is read before c.out: in(before) - out - dropped - conflated can only under-estimate
        // in_flight at the moment `out` was read, so it must stay within what the lane can hold. The
        // snapshot's own in_flight is exact for balance (never negative) but may include later pushes.
        const std::uint64_t in_before = e.counters(l).in;
        const valve::LaneCounters c = e.counters(l);
        ASSERT_EQ(c.in, c.out + c.dropped + c.conflated + c.in_flight);
        ASSERT_LT(c.in_flight, std::uint64_t{1} << 62) << "in_flight went negative";
        ASSERT_LE(static_cast<std::int64_t>(in_before - (c.out + c.dropped + c.conflated)), bound)
            << "lane " << l << " in " << c.in << " out " << c.out;
      }
      ++samples;
    }
  });
  for (auto& t : threads) t.join();
  monitor_stop.store(true, std::memory_order_release);
  monitor.join();
  EXPECT_GT(samples, 0u);

  const valve::LaneCounters t = e.totals();
  EXPECT_EQ(t.in, kProducers * per_producer);
  EXPECT_EQ(t.in_flight, 0u);
  EXPECT_EQ(t.in, t.out + t.dropped + t.conflated);
  std::uint64_t received = 0;
  std::map<std::uint32_t, std::uint64_t> next_min;  // per key: the smallest sequence still allowed
  std::map<std::uint32_t, std::uint64_t> last_seen;
  for (auto& c : consumers) {
    received += c.got.size();
    for (const Delivered& d : c.got) {
      auto [it, fresh] = next_min.emplace(d.key, 0);
      ASSERT_GE(d.seq, it->second) << "key " << d.key << " went backwards or was duplicated";
      it->second = d.seq + 1;
      last_seen[d.key] = d.seq;
    }
  }
  EXPECT_EQ(received, t.out);
  switch (policy) {
    case valve::CollisionPolicy::Spin:
      if (spin_ns >= 1'000'000'000) {
        EXPECT_EQ(t.dropped, 0u);
        EXPECT_EQ(received, kProducers * per_producer);
      }
      break;
    case valve::CollisionPolicy::Conflate:
      EXPECT_EQ(t.dropped, 0u);  // the table holds every key of its ring
      EXPECT_GT(t.conflated, 0u) << "the test should have produced collisions";
      for (std::uint32_t k = 0; k < kProducers * kKeys; ++k) EXPECT_EQ(last_seen[k], last_seq[k]) << "key " << k;
      break;
    case valve::CollisionPolicy::Drop:
      EXPECT_EQ(t.conflated, 0u);
      EXPECT_GT(t.collisions, 0u);
      break;
    case valve::CollisionPolicy::Disconnect:
      EXPECT_TRUE(t.disconnected);
      EXPECT_EQ(t.dropped, t.disconnected_drops);
      break;
  }
}

}  // namespace

TEST(ValveEngineStress, DropTwoProducersTwoConsumers) { run(valve::CollisionPolicy::Drop, 0); }
TEST(ValveEngineStress, SpinBoundedTwoProducersTwoConsumers) { run(valve::CollisionPolicy::Spin, 2'000); }
// A spinning producer shares 2 cores with 3 other threads here, so this one uses a large ring (stalls are
// rare) and fewer messages; what it checks is that a spin budget longer than any stall loses nothing.
TEST(ValveEngineStress, SpinLongIsLossless) {
  run(valve::CollisionPolicy::Spin, 10'000'000'000, 4096, kPerProducer / 4);
}
TEST(ValveEngineStress, ConflateKeepsNewestPerKey) { run(valve::CollisionPolicy::Conflate, 0); }
TEST(ValveEngineStress, DisconnectAccountsForEverything) { run(valve::CollisionPolicy::Disconnect, 0); }
