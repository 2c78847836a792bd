// NATS publishing through a local nats-server that the benchmark starts itself (loopback, free port):
//   nats/hypergate_sink/publish   NatsSink::send() of bursts of 32 TobUpdate records (subject md.<SYMBOL>,
//                                 16 symbols), flush = "batched" (libnats' flusher thread writes)
//   nats/plain_libnats/publish    the baseline: the same records, the same subjects (pre-rendered), one
//                                 natsConnection_Publish call each, same connection options
// items_per_second = messages published. A subscriber on a second connection receives every message;
// each record carries its send time (steady clock, ns) in its timestamp field, and the subscriber
// callback records publish -> callback latency into an HdrHistogram: p50/p99/p999 are reported as
// counters (ns), with `received` (the subscriber's count; the run waits, bounded, until it has all).
// Two regimes, the same for both implementations:
//   .../publish          unpaced: publish as fast as the call returns (throughput; the latency then
//                        includes queueing behind the backlog in libnats, the server and the subscriber)
//   .../publish_paced    at most 8 bursts in flight to the subscriber (latency without a backlog; the
//                        rate is then bounded by the pacing rule and libnats' flusher cadence)
#include <nats/nats.h>

#include <benchmark/benchmark.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../nats_server.hpp"
#include "hypergate/metrics/hdr_histogram.hpp"
#include "market/tob_update.hpp"
#include "nats/nats_sink.hpp"

namespace {

using namespace hypergate;
constexpr std::size_t kBurst = Burst<>::kCapacity;
constexpr std::size_t kSymbols = 16;
constexpr std::uint64_t kMaxInFlight = 8 * kBurst;

std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

/// nats-server on a free loopback port for the whole process, its output discarded; killed at exit.
test::NatsServer& server() {
  static test::NatsServer s{test::NatsServerOptions{}};
  return s;
}

/// Whether server() runs and accepts connections: started (and awaited, bounded) on the first call.
bool server_ready() {
  static const bool ready = server().start();
  return ready;
}

/// Subscriber on md.*: counts messages and records publish -> callback latency (its own thread).
class LatencySubscriber {
 public:
  LatencySubscriber() : hist_(1, 10'000'000'000ull, 3) {
    if (natsConnection_ConnectTo(&nc_, server().url().c_str()) != NATS_OK) return;
    natsConnection_Subscribe(&sub_, nc_, "md.*", &LatencySubscriber::on_msg, this);
    natsSubscription_SetPendingLimits(sub_, -1, -1);
    natsConnection_Flush(nc_);  // the subscription is registered before anything is published
  }
  ~LatencySubscriber() {
    if (sub_ != nullptr) natsSubscription_Destroy(sub_);
    if (nc_ != nullptr) natsConnection_Destroy(nc_);
  }
  static void on_msg(natsConnection*, natsSubscription*, natsMsg* msg, void* self) {
    auto* s = static_cast<LatencySubscriber*>(self);
    market::TobUpdate u;
    const auto* p = reinterpret_cast<const std::byte*>(natsMsg_GetData(msg));
    if (market::decode_tob_update(std::span<const std::byte>(p, static_cast<std::size_t>(natsMsg_GetDataLength(msg))),
                                  u) == Status::Ok) {
      const std::uint64_t t = now_ns();
      std::lock_guard lock(s->mutex_);  // the benchmark thread reads the histogram only at the end
      s->hist_.record(t > u.timestamp_ns ? t - u.timestamp_ns : 0);
    }
    natsMsg_Destroy(msg);
    s->received_.fetch_add(1, std::memory_order_release);  // pairs with the acquire in received()
  }
  [[nodiscard]] std::uint64_t received() const { return received_.load(std::memory_order_acquire); }
  /// Waits (bounded: 10 s) until `n` messages arrived.
  bool wait_for(std::uint64_t n) const {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (received() < n) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::yield();
    }
    return true;
  }
  void report(benchmark::State& state) {
    std::lock_guard lock(mutex_);
    state.counters["p50_ns"] = static_cast<double>(hist_.value_at_percentile(50));
    state.counters["p99_ns"] = static_cast<double>(hist_.value_at_percentile(99));
    state.counters["p999_ns"] = static_cast<double>(hist_.value_at_percentile(99.9));
    state.counters["received"] = static_cast<double>(received());
  }

 private:
  natsConnection* nc_ = nullptr;
  natsSubscription* sub_ = nullptr;
  std::mutex mutex_;
  metrics::HdrHistogram hist_;
  std::atomic<std::uint64_t> received_{0};
};

/// One burst of TobUpdate records over kSymbols symbols; restamp() writes the send time into each.
struct UpdateBurst {
  UpdateBurst() {
    for (std::size_t i = 0; i < kBurst; ++i) {
      symbols[i] = "SYM" + std::to_string(i % kSymbols);
      subjects[i] = "md." + symbols[i];
    }
  }
  void restamp(std::uint64_t& sequence) {
    const std::uint64_t t = now_ns();
    burst.clear();
    for (std::size_t i = 0; i < kBurst; ++i) {
      market::TobUpdate u;
      std::memcpy(u.symbol.data(), symbols[i].data(), symbols[i].size());
      u.bid_price = 1'000'000;
      u.bid_qty = 100;
      u.ask_price = 1'000'100;
      u.ask_qty = 200;
      u.timestamp_ns = t;
      u.sequence = ++sequence;
      market::encode_tob_update(u, records[i]);
      Message& m = burst.emplace_back();
      m.set_payload(records[i].data(), records[i].size());
      m.set_key(symbols[i]);
      m.type = static_cast<std::uint16_t>(market::kTobUpdateType);
    }
  }
  std::array<std::string, kBurst> symbols;
  std::array<std::string, kBurst> subjects;
  std::array<std::array<std::byte, market::kTobUpdateSize>, kBurst> records{};
  Burst<> burst;
};

void pace(const LatencySubscriber& sub, std::uint64_t sent, bool paced) {
  if (!paced) return;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (sent > sub.received() + kMaxInFlight && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
}

void run_hypergate_sink(benchmark::State& state, bool paced) {
  if (!server_ready()) {
    state.SkipWithError("nats-server did not start");
    return;
  }
  LatencySubscriber sub;
  nats::NatsSinkOptions o;
  o.client.name = "bench";
  o.client.servers = {server().url()};
  std::string why;
  o.subject = *nats::SubjectTemplate::parse("md.<SYMBOL>", &why);
  nats::NatsSink sink(std::move(o));
  if (!sink.start()) {
    state.SkipWithError("sink start failed");
    return;
  }
  UpdateBurst b;
  std::uint64_t sequence = 0;
  std::uint64_t sent = 0;
  for (auto _ : state) {
    b.restamp(sequence);
    std::size_t done = 0;
    while (done < kBurst) {
      Burst<> rest;
      for (std::size_t i = done; i < kBurst; ++i) (void)rest.push_back(b.burst[i]);
      done += sink.send(done == 0 ? b.burst : rest);
    }
    sent += kBurst;
    pace(sub, sent, paced);
  }
  sink.stop();
  if (!sub.wait_for(sent)) state.SkipWithError("the subscriber did not receive everything");
  state.SetItemsProcessed(static_cast<std::int64_t>(sent));
  sub.report(state);
}

void run_plain_libnats(benchmark::State& state, bool paced) {
  if (!server_ready()) {
    state.SkipWithError("nats-server did not start");
    return;
  }
  LatencySubscriber sub;
  natsOptions* opts = nullptr;
  natsOptions_Create(&opts);
  const std::string u = server().url();
  const char* urls[1] = {u.c_str()};
  natsOptions_SetServers(opts, urls, 1);
  natsOptions_SetNoRandomize(opts, true);
  natsConnection* nc = nullptr;
  if (natsConnection_Connect(&nc, opts) != NATS_OK) {
    natsOptions_Destroy(opts);
    state.SkipWithError("connect failed");
    return;
  }
  UpdateBurst b;
  std::uint64_t sequence = 0;
  std::uint64_t sent = 0;
  for (auto _ : state) {
    b.restamp(sequence);
    for (std::size_t i = 0; i < kBurst; ++i) {
      natsConnection_Publish(nc, b.subjects[i].c_str(), b.records[i].data(), static_cast<int>(market::kTobUpdateSize));
    }
    sent += kBurst;
    pace(sub, sent, paced);
  }
  natsConnection_FlushTimeout(nc, 5000);
  natsConnection_Destroy(nc);
  natsOptions_Destroy(opts);
  if (!sub.wait_for(sent)) state.SkipWithError("the subscriber did not receive everything");
  state.SetItemsProcessed(static_cast<std::int64_t>(sent));
  sub.report(state);
}

void BM_HypergateSink(benchmark::State& state) { run_hypergate_sink(state, /*paced=*/false); }
void BM_PlainLibnats(benchmark::State& state) { run_plain_libnats(state, /*paced=*/false); }
void BM_HypergateSinkPaced(benchmark::State& state) { run_hypergate_sink(state, /*paced=*/true); }
void BM_PlainLibnatsPaced(benchmark::State& state) { run_plain_libnats(state, /*paced=*/true); }

BENCHMARK(BM_HypergateSink)->Name("nats/hypergate_sink/publish")->UseRealTime()->MinTime(1.0);
BENCHMARK(BM_PlainLibnats)->Name("nats/plain_libnats/publish")->UseRealTime()->MinTime(1.0);
BENCHMARK(BM_HypergateSinkPaced)->Name("nats/hypergate_sink/publish_paced")->UseRealTime()->MinTime(1.0);
BENCHMARK(BM_PlainLibnatsPaced)->Name("nats/plain_libnats/publish_paced")->UseRealTime()->MinTime(1.0);

}  // namespace

BENCHMARK_MAIN();
