// Functional tests of the runtime: end-to-end delivery with per-key order, natural end when sources finish,
// request_stop() and SIGTERM drain everything in flight, failing adapters are isolated, option checks.
// Real worker threads run here, but every assertion is on counts and order, never on time.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <csignal>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "hypergate/core/clock.hpp"
#include "hypergate/metrics/stage_probe.hpp"
#include "hypergate/route/passthrough_decoder.hpp"
#include "hypergate/route/pipeline.hpp"
#include "hypergate/runtime/runtime.hpp"
#include "routing/hash_router.hpp"

namespace hg = hypergate;
namespace rt = hypergate::runtime;
using hg::adapter::Sink;
using hg::adapter::SinkStats;
using hg::adapter::Source;
using hg::adapter::SourceStats;

namespace {

void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) {
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

// Emits `total` messages (0 = endless) keyed "s<tag>k<i % keys>", payload "<key>:<seq>", sequence = seq per key.
class CountingSource final : public Source {
 public:
  CountingSource(int tag, std::uint64_t total, unsigned keys, bool fail_start = false)
      : tag_(tag), total_(total), keys_(keys), fail_start_(fail_start), next_seq_(keys, 0) {
    for (unsigned k = 0; k < keys; ++k) key_names_.push_back("s" + std::to_string(tag) + "k" + std::to_string(k));
  }
  std::string_view type() const noexcept override { return "counting"; }
  hg::Result<void> start() override {
    if (fail_start_) return hg::Error{hg::Status::IoError, "cannot open the test feed"};
    return {};
  }
  void stop() noexcept override { stopped_.store(true); }
  std::size_t poll(hg::Burst<>& out) noexcept override {
    std::size_t n = 0;
    while (!out.full() && (total_ == 0 || produced_ < total_)) {
      const unsigned k = static_cast<unsigned>(produced_ % keys_);
      std::string& buf = buffers_[out.size()];
      buf = key_names_[k] + ":" + std::to_string(next_seq_[k]);
      hg::Message& m = out.emplace_back();
      m.set_payload(buf.data(), buf.size());
      m.set_key(key_names_[k]);
      m.sequence = next_seq_[k]++;
      ++produced_;
      ++n;
    }
    if (n != 0) {
      bump(messages_, n);
      bump(polls_);
    }
    return n;
  }
  void release(hg::Burst<>& done) noexcept override {
    for (auto& b : buffers_) b.assign(b.size(), '#');  // reuse the buffers: the valve must have copied
    (void)done;
  }
  bool finished() const noexcept override { return total_ != 0 && produced_ >= total_; }
  SourceStats stats() const noexcept override {
    SourceStats s;
    s.messages = messages_.load(std::memory_order_relaxed);
    s.polls = polls_.load(std::memory_order_relaxed);
    return s;
  }
  bool stopped() const { return stopped_.load(); }

 private:
  int tag_;
  std::uint64_t total_;
  unsigned keys_;
  bool fail_start_;
  std::vector<std::uint64_t> next_seq_;
  std::vector<std::string> key_names_;
  std::string buffers_[hg::kDefaultBurst];
  std::uint64_t produced_ = 0;
  std::atomic<std::uint64_t> messages_{0}, polls_{0};
  std::atomic<bool> stopped_{false};
};

struct Got {
  std::string key;
  std::string payload;
  std::uint64_t sequence;
};

// Records what it receives; read by the test after wait() (joined threads) or through atomics.
class CollectingSink final : public Sink {
 public:
  explicit CollectingSink(bool fail_start = false, std::uint64_t errors_per_send = 0)
      : fail_start_(fail_start), errors_per_send_(errors_per_send) {}
  std::string_view type() const noexcept override { return "collect"; }
  hg::Result<void> start() override {
    if (fail_start_) return hg::Error{hg::Status::IoError, "subscriber port in use"};
    started_.store(true);
    return {};
  }
  void stop() noexcept override { stopped_.store(true); }
  std::size_t send(const hg::Burst<>& b) noexcept override {
    for (const auto& m : b) got.push_back({std::string(m.key()), std::string(m.text()), m.sequence});
    bump(messages_, b.size());
    if (errors_per_send_ != 0) bump(errors_, errors_per_send_);
    return b.size();
  }
  void flush() noexcept override { bump(flushes_); }
  SinkStats stats() const noexcept override {
    SinkStats s;
    s.messages = messages_.load(std::memory_order_relaxed);
    s.errors = errors_.load(std::memory_order_relaxed);
    return s;
  }
  std::uint64_t received() const { return messages_.load(std::memory_order_relaxed); }
  bool stopped() const { return stopped_.load(); }
  std::vector<Got> got;

 private:
  bool fail_start_;
  std::uint64_t errors_per_send_;
  std::atomic<std::uint64_t> messages_{0}, errors_{0}, flushes_{0};
  std::atomic<bool> started_{false}, stopped_{false};
};

// Hash routing: lane = key_hash & (lanes - 1), to the sinks in `mask`.
class HashPipeline final : public hg::route::PipelineBase {
 public:
  HashPipeline(unsigned lanes, std::uint64_t mask) : lanes_(lanes), mask_(mask) {}
  std::string_view name() const noexcept override { return "hash"; }
  void process(hg::Burst<>& in, hg::route::Emitter& out) noexcept override {
    for (const auto& m : in) {
      hg::route::Route r;
      r.lane = static_cast<std::uint16_t>(m.key_hash & (lanes_ - 1));
      r.sinks = mask_;
      r.action = hg::route::Action::Deliver;
      out.emit(m, r);
    }
    out.flush();
    bump(in_, in.size());
    bump(emitted_, in.size());
  }
  hg::route::PipelineCounters counters() const override {
    hg::route::PipelineCounters c;
    c.in = in_.load(std::memory_order_relaxed);
    c.emitted = emitted_.load(std::memory_order_relaxed);
    return c;
  }

 private:
  unsigned lanes_;
  std::uint64_t mask_;
  std::atomic<std::uint64_t> in_{0}, emitted_{0};
};

rt::Options test_options(unsigned workers, rt::IdlePolicy idle = rt::IdlePolicy::Backoff) {
  rt::Options o;
  o.workers = workers;
  o.idle = idle;
  o.valves.lanes = 8;
  o.valves.ring_capacity = 256;
  o.valves.policy = hg::valve::CollisionPolicy::Spin;
  // These tests want no drops: a spinning worker drains its own lanes meanwhile, so a budget this long
  // never runs out unless a sink stops accepting (none does here).
  o.valves.spin_ns = 600'000'000'000;
  o.sleep_ns = 50'000;
  o.stats_interval_ns = 10'000'000;
  o.drain_deadline_ns = 10'000'000'000;
  o.thread_name = "hgtest";
  return o;
}

// Adds a sink with one CollectingSink per worker and returns raw pointers to the instances.
std::vector<CollectingSink*> add_collecting_sink(rt::Runtime& r, const std::string& name, unsigned workers,
                                                 int failing_worker = -1, std::uint64_t errors_per_send = 0) {
  std::vector<std::unique_ptr<Sink>> v;
  std::vector<CollectingSink*> raw;
  for (unsigned w = 0; w < workers; ++w) {
    auto s = std::make_unique<CollectingSink>(static_cast<int>(w) == failing_worker, errors_per_send);
    raw.push_back(s.get());
    v.push_back(std::move(s));
  }
  auto id = r.add_sink(name, std::move(v));
  EXPECT_TRUE(id.ok());
  return raw;
}

// Per key: sequences strictly increasing and without gaps from 0 (no drop, no duplicate).
void expect_complete_in_order(const std::vector<CollectingSink*>& sinks, std::uint64_t per_key_expected,
                              std::size_t keys_expected) {
  std::map<std::string, std::vector<std::uint64_t>> per_key;
  std::map<std::string, std::size_t> instance_of_key;
  for (std::size_t i = 0; i < sinks.size(); ++i) {
    for (const Got& g : sinks[i]->got) {
      per_key[g.key].push_back(g.sequence);
      EXPECT_EQ(g.payload, g.key + ":" + std::to_string(g.sequence));  // bytes intact after the source reused them
      auto [it, fresh] = instance_of_key.emplace(g.key, i);
      EXPECT_EQ(it->second, i) << "a key is drained by one worker only";
    }
  }
  EXPECT_EQ(per_key.size(), keys_expected);
  for (const auto& [key, seqs] : per_key) {
    ASSERT_EQ(seqs.size(), per_key_expected) << key;
    for (std::size_t i = 0; i < seqs.size(); ++i) ASSERT_EQ(seqs[i], i) << key;
  }
}

}  // namespace

class RuntimeIdle : public ::testing::TestWithParam<rt::IdlePolicy> {};

TEST_P(RuntimeIdle, FiniteSourcesAreDeliveredInOrderAndTheRuntimeEnds) {
  constexpr unsigned kWorkers = 2;
  rt::Runtime r(test_options(kWorkers, GetParam()));
  auto* s0 = new CountingSource(0, 20'000, 16);
  auto* s1 = new CountingSource(1, 20'000, 16);
  ASSERT_TRUE(r.add_source("feed0", 0, std::unique_ptr<Source>(s0), std::make_unique<HashPipeline>(8, 1)).ok());
  ASSERT_TRUE(r.add_source("feed1", 1, std::unique_ptr<Source>(s1), std::make_unique<HashPipeline>(8, 1)).ok());
  auto sinks = add_collecting_sink(r, "subscribers", kWorkers);
  ASSERT_TRUE(r.start().ok());
  r.wait();  // both sources finish: the runtime ends by itself once everything is drained
  const rt::Report rep = r.report();
  EXPECT_TRUE(rep.finished);
  EXPECT_FALSE(rep.stop_requested);
  EXPECT_TRUE(rep.drained());
  EXPECT_EQ(rep.valve_totals.in, 40'000u);
  EXPECT_EQ(rep.valve_totals.out, 40'000u);
  EXPECT_EQ(rep.valve_totals.dropped, 0u);
  EXPECT_EQ(sinks[0]->received() + sinks[1]->received(), 40'000u);
  expect_complete_in_order(sinks, 20'000 / 16, 32);
  EXPECT_TRUE(s0->stopped());
  EXPECT_TRUE(sinks[0]->stopped() && sinks[1]->stopped());
  ASSERT_EQ(rep.sources.size(), 2u);
  EXPECT_EQ(rep.sources[0].state, rt::AdapterState::Finished);
  EXPECT_EQ(rep.sources[0].stats.messages, 20'000u);
  EXPECT_EQ(rep.sources[0].pipeline_counters.emitted, 20'000u);
  std::uint64_t polled = 0, drained = 0;
  for (const auto& w : rep.workers) {
    polled += w.polled;
    drained += w.drained;
  }
  EXPECT_EQ(polled, 40'000u);
  EXPECT_EQ(drained, 40'000u);
  std::uint64_t lane_in = 0;
  for (const auto& l : rep.lanes) {
    EXPECT_EQ(l.counters.in, l.counters.out + l.counters.dropped + l.counters.conflated + l.counters.in_flight);
    EXPECT_EQ(l.consumer, l.lane % kWorkers);
    lane_in += l.counters.in;
  }
  EXPECT_EQ(lane_in, 40'000u);
  EXPECT_GT(rep.workers[0].push_to_drain.count, 0u);  // stage latencies were recorded
  const std::string text = rep.to_text();
  EXPECT_NE(text.find("source feed0"), std::string::npos) << text;
  EXPECT_NE(text.find("sink subscribers"), std::string::npos) << text;
}

INSTANTIATE_TEST_SUITE_P(Policies, RuntimeIdle, ::testing::Values(rt::IdlePolicy::Busy, rt::IdlePolicy::Backoff));

// Two workers, rings of 2 slots, Spin with a budget that never runs out: each worker keeps filling lanes
// that the other drains. Without draining its own lanes while it spins, both would spin forever.
TEST(Runtime, WorkersSpinningOnEachOthersLanesStillMakeProgress) {
  rt::Options o = test_options(2, rt::IdlePolicy::Busy);
  o.valves.ring_capacity = 2;
  o.valves.burst = 1;
  rt::Runtime r(o);
  ASSERT_TRUE(
      r.add_source("a", 0, std::make_unique<CountingSource>(0, 4800, 16), std::make_unique<HashPipeline>(8, 1)).ok());
  ASSERT_TRUE(
      r.add_source("b", 1, std::make_unique<CountingSource>(1, 4800, 16), std::make_unique<HashPipeline>(8, 1)).ok());
  auto sinks = add_collecting_sink(r, "out", 2);
  ASSERT_TRUE(r.start().ok());
  r.wait();
  const rt::Report rep = r.report();
  EXPECT_EQ(rep.valve_totals.dropped, 0u);
  EXPECT_GT(rep.valve_totals.collisions, 0u);
  EXPECT_TRUE(rep.drained());
  expect_complete_in_order(sinks, 4800 / 16, 32);
}

TEST(Runtime, RequestStopDrainsEverythingInFlight) {
  rt::Runtime r(test_options(2));
  auto* s0 = new CountingSource(0, 0, 8);  // endless
  auto* s1 = new CountingSource(1, 0, 8);
  ASSERT_TRUE(r.add_source("a", 0, std::unique_ptr<Source>(s0), std::make_unique<HashPipeline>(8, 1)).ok());
  ASSERT_TRUE(r.add_source("b", 1, std::unique_ptr<Source>(s1), std::make_unique<HashPipeline>(8, 1)).ok());
  auto sinks = add_collecting_sink(r, "out", 2);
  ASSERT_TRUE(r.start().ok());
  while (sinks[0]->received() + sinks[1]->received() < 20'000) std::this_thread::yield();
  r.request_stop();
  r.wait();
  const rt::Report rep = r.report();
  EXPECT_TRUE(rep.stop_requested);
  EXPECT_FALSE(rep.deadline_hit);
  EXPECT_TRUE(rep.drained()) << rep.to_text();
  EXPECT_EQ(rep.valve_totals.in, rep.valve_totals.out + rep.valve_totals.dropped);
  EXPECT_EQ(sinks[0]->got.size() + sinks[1]->got.size(), rep.valve_totals.out);
  EXPECT_EQ(rep.valve_totals.in, rep.sources[0].stats.messages + rep.sources[1].stats.messages);
  EXPECT_EQ(rep.sources[0].state, rt::AdapterState::Stopped);
  EXPECT_TRUE(s0->stopped() && s1->stopped());
}

TEST(Runtime, SigtermStopsGracefully) {
  rt::Runtime r(test_options(1));
  auto* s0 = new CountingSource(0, 0, 4);
  ASSERT_TRUE(r.add_source("a", 0, std::unique_ptr<Source>(s0), std::make_unique<HashPipeline>(8, 1)).ok());
  auto sinks = add_collecting_sink(r, "out", 1);
  rt::StopSignals guard(r);
  ASSERT_TRUE(r.start().ok());
  while (sinks[0]->received() < 1000) std::this_thread::yield();
  ASSERT_EQ(std::raise(SIGTERM), 0);
  r.wait();
  const rt::Report rep = r.report();
  EXPECT_TRUE(rep.stop_requested);
  EXPECT_TRUE(rep.drained());
  EXPECT_EQ(sinks[0]->got.size(), rep.valve_totals.in);
}

TEST(Runtime, FailingSourceIsReportedAndTheOthersRun) {
  rt::Runtime r(test_options(2));
  ASSERT_TRUE(r.add_source("broken", 0, std::make_unique<CountingSource>(0, 100, 4, /*fail_start=*/true),
                           std::make_unique<HashPipeline>(8, 1))
                  .ok());
  ASSERT_TRUE(
      r.add_source("good", 1, std::make_unique<CountingSource>(1, 5000, 4), std::make_unique<HashPipeline>(8, 1)).ok());
  auto sinks = add_collecting_sink(r, "out", 2);
  ASSERT_TRUE(r.start().ok());
  r.wait();
  const rt::Report rep = r.report();
  EXPECT_EQ(rep.sources[0].state, rt::AdapterState::Failed);
  EXPECT_NE(rep.sources[0].error.find("cannot open the test feed"), std::string::npos);
  EXPECT_EQ(rep.sources[1].state, rt::AdapterState::Finished);
  EXPECT_EQ(sinks[0]->received() + sinks[1]->received(), 5000u);
  EXPECT_NE(rep.to_text().find("failed"), std::string::npos);
}

TEST(Runtime, FailingSinkInstanceIsIsolated) {
  rt::Runtime r(test_options(2));
  ASSERT_TRUE(
      r.add_source("a", 0, std::make_unique<CountingSource>(0, 4000, 16), std::make_unique<HashPipeline>(8, 0b11)).ok());
  auto broken = add_collecting_sink(r, "flaky", 2, /*failing_worker=*/0);
  auto good = add_collecting_sink(r, "solid", 2);
  ASSERT_TRUE(r.start().ok());
  r.wait();
  const rt::Report rep = r.report();
  EXPECT_TRUE(rep.drained());
  EXPECT_EQ(good[0]->received() + good[1]->received(), 4000u);  // the healthy sink got everything
  ASSERT_EQ(rep.sinks.size(), 2u);
  EXPECT_EQ(rep.sinks[0].instances[0].state, rt::AdapterState::Failed);
  EXPECT_NE(rep.sinks[0].instances[0].error.find("subscriber port in use"), std::string::npos);
  EXPECT_EQ(rep.sinks[0].instances[1].state, rt::AdapterState::Stopped);
  // What worker 0's instance could not take is counted, the rest went through worker 1's instance.
  EXPECT_EQ(rep.sinks[0].undeliverable + broken[1]->received(), 4000u);
  EXPECT_EQ(broken[0]->received(), 0u);
  EXPECT_GT(rep.sinks[0].undeliverable, 0u);
}

TEST(Runtime, AllSinksRouteReachesExactlyTheAddedSinks) {
  // route::kAllSinks sets all 64 bits; with one sink, the other 63 bits are not sinks and must not be
  // counted as messages routed to unknown sinks (they are not a routing error).
  rt::Runtime r(test_options(1));
  ASSERT_TRUE(r.add_source("a", 0, std::make_unique<CountingSource>(0, 1000, 4),
                           std::make_unique<HashPipeline>(8, hg::route::kAllSinks))
                  .ok());
  auto only = add_collecting_sink(r, "only", 1);
  ASSERT_TRUE(r.start().ok());
  r.wait();
  const rt::Report rep = r.report();
  EXPECT_EQ(only[0]->received(), 1000u);
  EXPECT_EQ(rep.unknown_sink_messages, 0u);
  EXPECT_EQ(rep.to_text().find("unknown sinks"), std::string::npos);
}

TEST(Runtime, FailedSinkIsMarkedUnhealthyForFailoverRouting) {
  hg::route::SinkHealth health;
  rt::Options o = test_options(2);
  o.health = &health;
  rt::Runtime r(o);
  ASSERT_TRUE(
      r.add_source("a", 0, std::make_unique<CountingSource>(0, 400, 4), std::make_unique<HashPipeline>(8, 0b11)).ok());
  add_collecting_sink(r, "flaky", 2, /*failing_worker=*/1);
  add_collecting_sink(r, "solid", 2);
  ASSERT_TRUE(health.healthy(0));
  ASSERT_TRUE(r.start().ok());
  r.wait();
  EXPECT_FALSE(health.healthy(0));  // one failed instance marks the sink unhealthy
  EXPECT_TRUE(health.healthy(1));
}

TEST(Runtime, SinkReportingErrorsRepeatedlyIsStopped) {
  rt::Options o = test_options(1);
  o.error_limit = 10;
  o.housekeeping_ns = 0;  // check on every iteration
  rt::Runtime r(o);
  ASSERT_TRUE(
      r.add_source("a", 0, std::make_unique<CountingSource>(0, 0, 4), std::make_unique<HashPipeline>(8, 0b11)).ok());
  auto noisy = add_collecting_sink(r, "noisy", 1, -1, /*errors_per_send=*/100);
  auto quiet = add_collecting_sink(r, "quiet", 1);
  ASSERT_TRUE(r.start().ok());
  for (;;) {
    const rt::Report rep = r.report();
    if (rep.sinks[0].instances[0].state == rt::AdapterState::Failed) break;
    std::this_thread::yield();
  }
  const std::uint64_t at_failure = quiet[0]->received();
  while (quiet[0]->received() < at_failure + 5000) std::this_thread::yield();  // the other sink keeps going
  r.request_stop();
  r.wait();
  const rt::Report rep = r.report();
  EXPECT_EQ(rep.sinks[0].instances[0].state, rt::AdapterState::Failed);
  EXPECT_NE(rep.sinks[0].instances[0].error.find("errors"), std::string::npos);
  EXPECT_TRUE(noisy[0]->stopped());
  EXPECT_GT(rep.sinks[0].undeliverable, 0u);
  EXPECT_TRUE(rep.drained());
}

TEST(Runtime, RejectsBadWiringAndOptions) {
  rt::Options o;
  o.workers = 0;
  EXPECT_FALSE(rt::validate(o).ok());
  o = {};
  o.slot_bytes = 300;
  EXPECT_FALSE(rt::validate(o).ok());
  o = {};
  o.valves.lanes = 3;
  EXPECT_FALSE(rt::validate(o).ok());

  rt::Runtime r(test_options(2));
  EXPECT_FALSE(
      r.add_source("x", 2, std::make_unique<CountingSource>(0, 1, 1), std::make_unique<HashPipeline>(8, 1)).ok());
  std::vector<std::unique_ptr<Sink>> one;
  one.push_back(std::make_unique<CollectingSink>());
  EXPECT_FALSE(r.add_sink("too-few", std::move(one)).ok());

  rt::Options bad = test_options(1);
  bad.slot_bytes = 100;
  rt::Runtime r2(bad);
  EXPECT_FALSE(r2.start().ok());
}

TEST(Runtime, NoSourcesEndsAtOnce) {
  rt::Runtime r(test_options(2));
  add_collecting_sink(r, "out", 2);
  ASSERT_TRUE(r.start().ok());
  r.wait();
  EXPECT_TRUE(r.finished());
  EXPECT_TRUE(r.report().drained());
}

namespace {

// A pipeline that emits one message per housekeeping tick (a recovery timer's shape), none per burst.
class TickingPipeline final : public hg::route::PipelineBase {
 public:
  std::string_view name() const noexcept override { return "ticking"; }
  void process(hg::Burst<>& in, hg::route::Emitter& out) noexcept override {
    (void)in;
    out.flush();
  }
  void tick(hg::route::Emitter& out, std::uint64_t now_tsc) noexcept override {
    if (now_tsc <= last_tsc_) bump(non_monotonic_);
    last_tsc_ = now_tsc;
    hg::Message& m = out.slot();
    m = hg::Message{};
    m.set_payload(kPayload.data(), kPayload.size());
    m.set_key("tick");
    m.sequence = ticks_.load(std::memory_order_relaxed);
    hg::route::Route r;
    r.action = hg::route::Action::Deliver;
    out.commit(r);
    out.flush();
    bump(ticks_);
  }
  hg::route::PipelineCounters counters() const override {
    hg::route::PipelineCounters c;
    c.emitted = ticks_.load(std::memory_order_relaxed);
    return c;
  }
  std::uint64_t non_monotonic() const { return non_monotonic_.load(); }

 private:
  static constexpr std::string_view kPayload = "timer";
  std::uint64_t last_tsc_ = 0;
  std::atomic<std::uint64_t> ticks_{0}, non_monotonic_{0};
};

// A sink with its own upkeep: counts service() calls (from its owning worker only).
class ServicedSink final : public Sink {
 public:
  std::string_view type() const noexcept override { return "serviced"; }
  hg::Result<void> start() override { return {}; }
  void stop() noexcept override {}
  std::size_t send(const hg::Burst<>& b) noexcept override {
    bump(messages_, b.size());
    return b.size();
  }
  std::size_t service() noexcept override {
    bump(services_);
    return 0;
  }
  SinkStats stats() const noexcept override {
    SinkStats s;
    s.messages = messages_.load(std::memory_order_relaxed);
    return s;
  }
  std::uint64_t services() const { return services_.load(std::memory_order_relaxed); }
  std::uint64_t received() const { return messages_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> messages_{0}, services_{0};
};

}  // namespace

TEST(Runtime, PipelineTickRunsWithoutInputAndSinksAreServicedEveryLoop) {
  rt::Runtime r(test_options(1));
  auto* pipe = new TickingPipeline;
  auto id = r.add_source("quiet", 0, std::make_unique<CountingSource>(0, 0, 1, false),
                         std::unique_ptr<hg::route::PipelineBase>(pipe));
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(r.pipeline(id.value()), pipe);
  EXPECT_EQ(r.pipeline(static_cast<std::uint16_t>(id.value() + 1)), nullptr);
  std::vector<std::unique_ptr<Sink>> inst;
  auto* sink = new ServicedSink;
  inst.emplace_back(sink);
  ASSERT_TRUE(r.add_sink("out", std::move(inst)).ok());
  ASSERT_TRUE(r.start().ok());
  // The source is endless but its pipeline emits only from tick(): messages arrive only through it.
  while (sink->received() < 5 || sink->services() < 5) std::this_thread::yield();
  r.request_stop();
  r.wait();
  const rt::Report rep = r.report();
  EXPECT_GE(pipe->counters().emitted, 5u);
  EXPECT_EQ(sink->received(), rep.valve_totals.out);
  EXPECT_EQ(pipe->non_monotonic(), 0u);
  EXPECT_TRUE(rep.drained()) << rep.to_text();
}

namespace {

// Verdict path (Source::wants_outcomes): `total` inputs, sequence = input index, one burst at a time.
// Records every outcome by input and checks, as it goes, that outcomes arrive for the burst that is
// being processed (never after its release()).
class VerdictSource final : public Source {
 public:
  VerdictSource(std::uint64_t total, bool wants) : total_(total), wants_(wants), outcomes_(total) {}
  std::string_view type() const noexcept override { return "verdict"; }
  hg::Result<void> start() override { return {}; }
  void stop() noexcept override {}
  bool wants_outcomes() const noexcept override { return wants_; }
  std::size_t poll(hg::Burst<>& out) noexcept override {
    if (in_burst_) bump(misuse_);  // poll() before release() of the previous burst
    lo_ = next_;
    while (!out.full() && next_ < total_) {
      std::string& buf = buffers_[out.size()];
      // Input 3 is larger than a 256-byte valve slot: the engine rejects it (oversize).
      buf = next_ == 3 ? std::string(400, 'x') : "in:" + std::to_string(next_);
      hg::Message& m = out.emplace_back();
      m.set_payload(buf.data(), buf.size());
      m.set_key("k");  // one key: one lane
      m.sequence = next_++;
      m.rx_tsc = hg::TscClock::ticks();
      rx_tsc_[out.size() - 1] = m.rx_tsc;
    }
    in_burst_ = next_ != lo_;
    return next_ - lo_;
  }
  void on_outcomes(std::span<const hg::Message> msgs, std::span<const hg::adapter::PushOutcome> outs) noexcept override {
    if (msgs.size() != outs.size() || !in_burst_) bump(misuse_);
    for (std::size_t i = 0; i < msgs.size() && i < outs.size(); ++i) {
      const std::uint64_t s = msgs[i].sequence;
      if (s < lo_ || s >= next_) {
        bump(misuse_);  // an outcome for a message of another burst
        continue;
      }
      if (outs[i].tsc < rx_tsc_[s - lo_]) bump(misuse_);  // accepted before it was received
      outcomes_[s].push_back(outs[i].outcome);
    }
  }
  void release(hg::Burst<>& done) noexcept override {
    (void)done;
    for (std::uint64_t s = lo_; s < next_; ++s)
      if (outcomes_[s].empty()) ++unanswered_at_release_;
    in_burst_ = false;
    for (auto& b : buffers_) b.assign(b.size(), '#');
  }
  bool finished() const noexcept override { return next_ >= total_ && !in_burst_; }
  SourceStats stats() const noexcept override { return {}; }

  std::uint64_t misuse() const { return misuse_.load(); }
  std::uint64_t unanswered_at_release() const { return unanswered_at_release_; }
  const std::vector<std::vector<hg::adapter::Outcome>>& outcomes() const { return outcomes_; }

 private:
  std::uint64_t total_;
  bool wants_;
  std::vector<std::vector<hg::adapter::Outcome>> outcomes_;  // by input (written by the worker only)
  std::string buffers_[hg::kDefaultBurst];
  std::uint64_t rx_tsc_[hg::kDefaultBurst] = {};
  std::uint64_t next_ = 0, lo_ = 0, unanswered_at_release_ = 0;
  bool in_burst_ = false;
  std::atomic<std::uint64_t> misuse_{0};
};

// Per input i: i % 5 == 0 is swallowed (no output), 1 is routed nowhere (Action::Drop), 2 is emitted
// twice, others once; everything goes to lane 0.
class FanPipeline final : public hg::route::PipelineBase {
 public:
  std::string_view name() const noexcept override { return "fan"; }
  void process(hg::Burst<>& in, hg::route::Emitter& out) noexcept override {
    for (const auto& m : in) {
      hg::route::Route r;
      r.lane = 0;
      r.action = hg::route::Action::Deliver;
      switch (m.sequence % 5) {
        case 0: continue;
        case 1: r.action = hg::route::Action::Drop; break;
        case 2: out.emit(m, r); break;
        default: break;
      }
      out.emit(m, r);
    }
    out.flush();
  }
  hg::route::PipelineCounters counters() const override { return {}; }
};

// Never accepts anything: the lane behind it fills and the Drop policy answers COLLISION.
class StuckSink final : public Sink {
 public:
  std::string_view type() const noexcept override { return "stuck"; }
  hg::Result<void> start() override { return {}; }
  void stop() noexcept override {}
  std::size_t send(const hg::Burst<>& b) noexcept override {
    (void)b;
    return 0;
  }
  SinkStats stats() const noexcept override { return {}; }
};

// Runs `src` (owned by the runtime) to its end, then calls check(report) while the runtime still lives.
template <class Check>
void run_verdicts(VerdictSource* src, Check check) {
  rt::Options o = test_options(1);
  o.valves.lanes = 1;
  o.valves.ring_capacity = 4;
  o.valves.policy = hg::valve::CollisionPolicy::Drop;
  o.drain_deadline_ns = 20'000'000;  // the stuck sink never drains: give up quickly at the end
  rt::Runtime r(o);
  EXPECT_TRUE(r.add_source("v", 0, std::unique_ptr<Source>(src), std::make_unique<FanPipeline>()).ok());
  std::vector<std::unique_ptr<Sink>> inst;
  inst.push_back(std::make_unique<StuckSink>());
  EXPECT_TRUE(r.add_sink("stuck", std::move(inst)).ok());
  EXPECT_TRUE(r.start().ok());
  // One report per check: with two, the first could say Created and the second Running, and the
  // loop would stop the source before it ran.
  for (;;) {
    const rt::AdapterState s = r.report().sources[0].state;
    if (s != rt::AdapterState::Running && s != rt::AdapterState::Created) break;
    std::this_thread::yield();
  }
  r.request_stop();
  r.wait();
  check(r.report());
}

}  // namespace

TEST(Runtime, VerdictsReachTheSourceForEveryEmittedMessageBeforeRelease) {
  constexpr std::uint64_t kTotal = 200;
  auto* src = new VerdictSource(kTotal, true);
  run_verdicts(src, [&](const rt::Report& rep) {
  using hg::adapter::Outcome;
  EXPECT_EQ(src->misuse(), 0u);
  std::uint64_t processed = 0, collisions = 0, rejected = 0, dropped = 0;
  for (std::uint64_t i = 0; i < kTotal; ++i) {
    const auto& v = src->outcomes()[i];
    const std::size_t expected = i % 5 == 0 ? 0 : i % 5 == 2 ? 2 : 1;
    ASSERT_EQ(v.size(), expected) << "input " << i;
    for (Outcome x : v) {
      processed += x == Outcome::Processed;
      collisions += x == Outcome::Collision;
      rejected += x == Outcome::Rejected;
      dropped += x == Outcome::Dropped;
    }
    if (i % 5 == 1) {
      EXPECT_EQ(v[0], Outcome::Dropped) << i;
    }
    if (i == 3) {
      EXPECT_EQ(v[0], Outcome::Rejected);
    }
  }
  // The swallowed inputs (i % 5 == 0) are exactly those still unanswered at release().
  EXPECT_EQ(src->unanswered_at_release(), kTotal / 5);
  EXPECT_EQ(dropped, kTotal / 5);
  EXPECT_EQ(rejected, 1u);
  // A ring of 4 behind a sink that takes nothing: a few get in, the rest collide (Drop policy).
  EXPECT_GE(processed, 1u);
  EXPECT_GE(collisions, 100u);
  // The runtime's own counters tell the same story.
  ASSERT_EQ(rep.workers.size(), 1u);
  EXPECT_EQ(rep.workers[0].collisions, collisions);
  EXPECT_EQ(rep.workers[0].rejected, rejected);
  EXPECT_EQ(rep.workers[0].route_drops, dropped);
  EXPECT_EQ(rep.workers[0].pushed, processed + collisions + rejected);
  EXPECT_EQ(rep.valve_totals.in, processed + collisions + rejected);
  });
}

namespace {

// An eventfd as a wake descriptor: the test writes N to it (fire), the adapter reads it (take) and
// does N units of work.
struct WakeEvent {
  WakeEvent() : fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}
  ~WakeEvent() { ::close(fd); }
  WakeEvent(const WakeEvent&) = delete;
  WakeEvent& operator=(const WakeEvent&) = delete;
  void fire(std::uint64_t n) const { ASSERT_EQ(::write(fd, &n, sizeof n), static_cast<ssize_t>(sizeof n)); }
  std::uint64_t take() const {
    std::uint64_t n = 0;
    return ::read(fd, &n, sizeof n) == static_cast<ssize_t>(sizeof n) ? n : 0;
  }
  int fd;
};

// A source that emits N messages when its wake descriptor was fired N; counts its polls so that the
// test can see the worker go to sleep.
class EventSource final : public Source {
 public:
  std::string_view type() const noexcept override { return "event"; }
  hg::Result<void> start() override { return {}; }
  void stop() noexcept override {}
  int wake_fd() noexcept override { return event.fd; }
  std::size_t poll(hg::Burst<>& out) noexcept override {
    bump(polls_);
    const std::uint64_t n = event.take();
    std::size_t added = 0;
    for (; added < n && out.size() < out.capacity(); ++added) {
      hg::Message& m = out.emplace_back();
      m.set_payload("woken", 5);
      m.set_key("k");
      m.sequence = added;
    }
    return added;
  }
  SourceStats stats() const noexcept override { return {}; }
  std::uint64_t polls() const { return polls_.load(std::memory_order_relaxed); }
  WakeEvent event;

 private:
  std::atomic<std::uint64_t> polls_{0};
};

// A sink whose service() does N units of work when its wake descriptor was fired N.
class EventSink final : public Sink {
 public:
  std::string_view type() const noexcept override { return "event"; }
  hg::Result<void> start() override { return {}; }
  void stop() noexcept override {}
  std::size_t send(const hg::Burst<>& b) noexcept override { return b.size(); }
  int wake_fd() noexcept override { return event.fd; }
  std::size_t service() noexcept override {
    const std::uint64_t n = event.take();
    bump(served_, n);
    return static_cast<std::size_t>(n);
  }
  SinkStats stats() const noexcept override { return {}; }
  std::uint64_t served() const { return served_.load(std::memory_order_relaxed); }
  WakeEvent event;

 private:
  std::atomic<std::uint64_t> served_{0};
};

// Options whose idle sleep is one minute: work that is done within seconds was woken by its descriptor.
rt::Options sleepy_options() {
  rt::Options o = test_options(1, rt::IdlePolicy::Backoff);
  o.spin_loops = 1;
  o.pause_loops = 1;
  o.sleep_ns = 60'000'000'000;
  return o;
}

// Waits until `counter` stops moving for 50 ms: the worker is in its sleep (or about to be; either way
// the work that follows must be done long before the sleep's minute is up).
template <class F>
void wait_until_still(F counter) {
  std::uint64_t last = counter();
  for (int quiet = 0; quiet < 5;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    const std::uint64_t now = counter();
    quiet = now == last ? quiet + 1 : 0;
    last = now;
  }
}

// Polls `done` for up to 20 s; the sleep it would otherwise wait out is 60 s.
template <class F>
bool within_seconds(F done) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!done()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace

TEST(Runtime, AnIdleWorkerWakesWhenASourcesWakeDescriptorBecomesReadable) {
  rt::Runtime r(sleepy_options());
  auto* src = new EventSource;
  ASSERT_TRUE(r.add_source("event", 0, std::unique_ptr<Source>(src), std::make_unique<HashPipeline>(8, 1)).ok());
  auto sinks = add_collecting_sink(r, "out", 1);
  ASSERT_TRUE(r.start().ok());
  for (std::uint64_t round = 1; round <= 3; ++round) {
    wait_until_still([&] { return src->polls(); });
    src->event.fire(2);
    EXPECT_TRUE(within_seconds([&] { return sinks[0]->received() == 2 * round; })) << "round " << round;
  }
  r.request_stop();
  r.wait();
  const rt::Report rep = r.report();
  ASSERT_EQ(rep.workers.size(), 1u);
  EXPECT_GE(rep.workers[0].wakeups, 1u) << rep.to_text();
  EXPECT_GE(rep.workers[0].sleeps, rep.workers[0].wakeups);
  EXPECT_EQ(sinks[0]->received(), 6u);
}

TEST(Runtime, AnIdleWorkerWakesWhenASinksWakeDescriptorBecomesReadable) {
  rt::Runtime r(sleepy_options());
  auto* src = new EventSource;  // never fired: the worker has nothing to poll
  ASSERT_TRUE(r.add_source("event", 0, std::unique_ptr<Source>(src), std::make_unique<HashPipeline>(8, 1)).ok());
  std::vector<std::unique_ptr<Sink>> inst;
  auto* sink = new EventSink;
  inst.emplace_back(sink);
  ASSERT_TRUE(r.add_sink("event", std::move(inst)).ok());
  ASSERT_TRUE(r.start().ok());
  wait_until_still([&] { return src->polls(); });
  sink->event.fire(3);
  EXPECT_TRUE(within_seconds([&] { return sink->served() == 3; }));
  r.request_stop();
  r.wait();
  EXPECT_GE(r.report().workers[0].wakeups, 1u);
}

// A source whose wake descriptor is hung up for good (the peer end of its socket pair is closed:
// POLLIN | POLLHUP on every poll) and which never has work: without the error-state rule, every sleep
// of the worker would end at once and it would spin.
class HungUpSource final : public Source {
 public:
  HungUpSource() {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0) {
      fd_ = sv[0];
      ::close(sv[1]);
    }
  }
  ~HungUpSource() override {
    if (fd_ >= 0) ::close(fd_);
  }
  HungUpSource(const HungUpSource&) = delete;
  HungUpSource& operator=(const HungUpSource&) = delete;
  std::string_view type() const noexcept override { return "hung_up"; }
  hg::Result<void> start() override { return {}; }
  void stop() noexcept override {}
  int wake_fd() noexcept override { return fd_; }
  std::size_t poll(hg::Burst<>&) noexcept override {
    bump(polls_);
    return 0;
  }
  SourceStats stats() const noexcept override { return {}; }
  std::uint64_t polls() const { return polls_.load(std::memory_order_relaxed); }
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  std::atomic<std::uint64_t> polls_{0};
};

TEST(Runtime, AWakeDescriptorInAnErrorStateDoesNotKeepTheWorkerAwake) {
  rt::Runtime r(sleepy_options());   // sleeps of a minute
  auto* src = new HungUpSource;
  ASSERT_GE(src->fd(), 0);
  pollfd p{src->fd(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 0), 1);
  ASSERT_NE(p.revents & POLLHUP, 0) << "the test needs a descriptor that reports POLLHUP";
  ASSERT_TRUE(r.add_source("hung", 0, std::unique_ptr<Source>(src), std::make_unique<HashPipeline>(8, 1)).ok());
  auto sinks = add_collecting_sink(r, "out", 1);
  ASSERT_TRUE(r.start().ok());
  // The worker reaches its minute-long sleep within a few loops; a spinning one polls the source
  // hundreds of thousands of times a second.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const std::uint64_t before = src->polls();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const std::uint64_t after = src->polls();
  r.request_stop();
  r.wait();
  EXPECT_EQ(after, before) << "the worker kept polling while its only descriptor was hung up";
  const rt::Report rep = r.report();
  ASSERT_EQ(rep.workers.size(), 1u);
  EXPECT_GE(rep.workers[0].wake_errors, 1u) << rep.to_text();
  EXPECT_LE(rep.workers[0].sleeps, 10u) << rep.to_text();
}

TEST(Runtime, SourcesThatDoNotAskGetNoVerdicts) {
  auto* src = new VerdictSource(100, false);
  run_verdicts(src, [&](const rt::Report& rep) {
    EXPECT_EQ(src->misuse(), 0u);
    for (const auto& v : src->outcomes()) EXPECT_TRUE(v.empty());
    EXPECT_GT(rep.workers[0].collisions, 0u);  // the same traffic, only nobody was told
  });
}

// Per-stage recording: with every burst traced, a composed Pipeline records decode and pipeline per
// message; the always-on stages count what went through them; and the intervals handed to on_interval
// add up to exactly the totals (no sample lost or counted twice between intervals).
TEST(Runtime, StagesAreRecordedAndIntervalsAddUpToTheTotals) {
  constexpr std::uint64_t kMessages = 6'000;
  rt::Options o = test_options(1);
  o.trace_every = 1;
  std::array<std::uint64_t, hg::metrics::kStageCount> interval_sum{};
  std::uint64_t intervals = 0;
  std::uint64_t last_end = 0;
  bool ordered = true;
  o.interval_ns = 2'000'000;
  o.on_interval = [&](const rt::StageInterval& iv) {
    ++intervals;
    ordered = ordered && iv.end_epoch_ns >= iv.start_epoch_ns && iv.start_epoch_ns >= last_end;
    last_end = iv.end_epoch_ns;
    ASSERT_EQ(iv.stages.size(), hg::metrics::kStageCount);
    for (std::size_t s = 0; s < iv.stages.size(); ++s) interval_sum[s] += iv.stages[s].total_count();
  };
  rt::Runtime r(o);
  auto pipeline = hg::route::make_pipeline("traced", hg::route::PassthroughDecoder{}, hg::route::Validators<>{},
                                           hg::route::Transforms<>{}, hg::strategies::HashRouter(8, 1));
  ASSERT_TRUE(r.add_source("feed", 0, std::make_unique<CountingSource>(0, kMessages, 16), std::move(pipeline)).ok());
  add_collecting_sink(r, "out", 1);
  ASSERT_TRUE(r.start().ok());
  r.wait();
  const rt::Report rep = r.report();
  ASSERT_EQ(rep.stages.size(), hg::metrics::kStageCount);
  auto stage = [&](hg::metrics::Stage s) -> const rt::StageReport& { return rep.stages[static_cast<std::size_t>(s)]; };
  using hg::metrics::Stage;
  EXPECT_EQ(stage(Stage::Rx).count, kMessages);        // every polled message
  EXPECT_EQ(stage(Stage::Decode).count, kMessages);    // traced: every message
  EXPECT_EQ(stage(Stage::Pipeline).count, kMessages);
  EXPECT_EQ(stage(Stage::Store).count, 0u);            // this pipeline keeps no store
  EXPECT_EQ(stage(Stage::Push).count, kMessages);
  EXPECT_EQ(stage(Stage::Valve).count, kMessages);
  EXPECT_EQ(stage(Stage::Send).count, kMessages);
  EXPECT_EQ(stage(Stage::Wire).count, kMessages);
  EXPECT_GT(stage(Stage::Process).count, 0u);          // one per burst
  EXPECT_LE(stage(Stage::Process).count, kMessages);
  for (const rt::StageReport& s : rep.stages) {
    EXPECT_LE(s.min_ns, s.p50_ns) << s.name;
    EXPECT_LE(s.p50_ns, s.p99_ns) << s.name;
    EXPECT_LE(s.p99_ns, s.p9999_ns) << s.name;
    for (std::size_t b = 1; b < s.le_counts.size(); ++b) EXPECT_LE(s.le_counts[b - 1], s.le_counts[b]) << s.name;
    EXPECT_LE(s.le_counts.back(), s.count) << s.name;
  }
  EXPECT_GE(intervals, 1u);
  EXPECT_TRUE(ordered);
  for (std::size_t s = 0; s < hg::metrics::kStageCount; ++s)
    EXPECT_EQ(interval_sum[s], rep.stages[s].count) << hg::metrics::kStageNames[s];
  EXPECT_NE(rep.to_text().find("wire"), std::string::npos);
}

TEST(Runtime, SampledStagesAreOffWithTraceEveryZero) {
  rt::Options o = test_options(1);
  o.trace_every = 0;
  rt::Runtime r(o);
  auto pipeline = hg::route::make_pipeline("untraced", hg::route::PassthroughDecoder{}, hg::route::Validators<>{},
                                           hg::route::Transforms<>{}, hg::strategies::HashRouter(8, 1));
  ASSERT_TRUE(r.add_source("feed", 0, std::make_unique<CountingSource>(0, 1'000, 16), std::move(pipeline)).ok());
  add_collecting_sink(r, "out", 1);
  ASSERT_TRUE(r.start().ok());
  r.wait();
  const rt::Report rep = r.report();
  EXPECT_EQ(rep.stages[static_cast<std::size_t>(hg::metrics::Stage::Decode)].count, 0u);
  EXPECT_EQ(rep.stages[static_cast<std::size_t>(hg::metrics::Stage::Pipeline)].count, 0u);
  EXPECT_EQ(rep.stages[static_cast<std::size_t>(hg::metrics::Stage::Rx)].count, 1'000u);
}
