// NATS publishing through a local nats-server that the benchmark starts itself (loopback, free port):
//   nats/hypergate_sink/publish   NatsSink::send() of bursts of 32 TobUpdate records (subject md.<SYMBOL>,
//                                 16 symbols), flush = "batched" (libnats' flusher thread writes)
//   nats/plain_libnats/publish    the baseline: the same records, the same subjects (pre-rendered), one
//                                 natsConnection_Publish call each, same connection options
// items_per_second = messages published. A subscriber on a second connection receives every message;
// each record carries its send time (steady clock, ns) in its timestamp field, and the subscriber
// callback records publish -> callback latency into an HdrHistogram: p50/p99/p999 are reported as
// counters (ns), with `received` (the subscriber's count; the run waits, bounded, until it has all).
// Receiving, through the same server: a plain libnats publisher (a thread of this benchmark) sends
// kReceiveRun TobUpdate records on md.SYM0..15, at most kReceiveWindow ahead of what the receiver has
// taken (no slow-consumer drops); items_per_second = messages taken per wall second:
//   nats/hypergate_source/receive   NatsSource on md.*, polled by the benchmark thread as a worker
//                                   polls it (poll -> read every payload -> release)
//   nats/plain_libnats/receive      the baseline: an async subscription on md.* whose callback copies
//                                   the payload out (as the source's does) and counts
// Publishing, two regimes, the same for both implementations:
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
#include "nats/nats_source.hpp"

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

// ------------------------------------------------------------------------------------------ receive
constexpr std::uint64_t kReceiveRun = 200'000;   // messages per benchmark iteration
constexpr std::uint64_t kReceiveWindow = 4096;   // publisher's lead over the receiver (< every queue)

/// Publishes `n` records on its own thread and connection, never more than kReceiveWindow ahead of
/// `taken` (the receiver's count); ok() says whether all went out.
class WindowedPublisher {
 public:
  WindowedPublisher(std::uint64_t n, const std::atomic<std::uint64_t>& taken) {
    if (natsConnection_ConnectTo(&nc_, server().url().c_str()) != NATS_OK) return;
    thread_ = std::thread([this, n, &taken] {
      UpdateBurst b;
      std::uint64_t sequence = 0;
      std::uint64_t sent = 0;
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      while (sent < n) {
        // acquire: pairs with the receiver's release store of its count.
        while (sent >= taken.load(std::memory_order_acquire) + kReceiveWindow) {
          if (std::chrono::steady_clock::now() > deadline) return;
          std::this_thread::yield();
        }
        b.restamp(sequence);
        for (std::size_t i = 0; i < kBurst && sent < n; ++i, ++sent) {
          if (natsConnection_Publish(nc_, b.subjects[i].c_str(), b.records[i].data(),
                                     static_cast<int>(market::kTobUpdateSize)) != NATS_OK)
            return;
        }
      }
      ok_ = natsConnection_FlushTimeout(nc_, 5000) == NATS_OK;
    });
  }
  ~WindowedPublisher() {
    if (thread_.joinable()) thread_.join();
    if (nc_ != nullptr) natsConnection_Destroy(nc_);
  }
  WindowedPublisher(const WindowedPublisher&) = delete;
  WindowedPublisher& operator=(const WindowedPublisher&) = delete;
  [[nodiscard]] bool connected() const { return nc_ != nullptr; }
  /// Joins the thread; true when every message was published and flushed.
  bool finish() {
    if (thread_.joinable()) thread_.join();
    return ok_;
  }

 private:
  natsConnection* nc_ = nullptr;
  std::thread thread_;
  bool ok_ = false;
};

void BM_HypergateSourceReceive(benchmark::State& state) {
  if (!server_ready()) {
    state.SkipWithError("nats-server did not start");
    return;
  }
  nats::NatsSourceOptions o;
  o.client.name = "bench";
  o.client.role = "source";
  o.client.servers = {server().url()};
  o.subjects = {"md.*"};
  nats::NatsSource source(std::move(o));
  if (!source.start()) {
    state.SkipWithError("source start failed");
    return;
  }
  // The subscription is live at the server before the runs: probes are published (another connection)
  // until one comes back through the source.
  {
    natsConnection* probe = nullptr;
    bool live = natsConnection_ConnectTo(&probe, server().url().c_str()) == NATS_OK;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    Burst<> in;
    for (bool seen = false; live && !seen;) {
      if (std::chrono::steady_clock::now() > deadline) live = false;
      (void)natsConnection_PublishString(probe, "md.PROBE", "probe");
      (void)natsConnection_FlushTimeout(probe, 1000);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      in.clear();
      seen = source.poll(in) != 0;
      if (seen) source.release(in);
    }
    if (probe != nullptr) natsConnection_Destroy(probe);
    // Probes still on their way: drained before the first run.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    for (in.clear(); source.poll(in) != 0; in.clear()) source.release(in);
    if (!live) {
      source.stop();
      state.SkipWithError("the source's subscription did not become live");
      return;
    }
  }
  std::uint64_t total = 0;
  std::uint64_t checksum = 0;
  for (auto _ : state) {
    std::atomic<std::uint64_t> taken{0};
    WindowedPublisher pub(kReceiveRun, taken);
    if (!pub.connected()) {
      state.SkipWithError("publisher connect failed");
      break;
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    std::uint64_t got = 0;
    Burst<> in;
    while (got < kReceiveRun && std::chrono::steady_clock::now() < deadline) {
      in.clear();
      const std::size_t n = source.poll(in);
      if (n == 0) {
        cpu_relax();
        continue;
      }
      for (const Message& m : in) checksum += static_cast<std::uint64_t>(m.data[m.size - 1]) + m.key_size;
      source.release(in);
      got += n;
      taken.store(got, std::memory_order_release);   // pairs with the publisher's acquire
    }
    total += got;
    if (!pub.finish() || got != kReceiveRun) {
      state.SkipWithError("not every message arrived");
      break;
    }
  }
  benchmark::DoNotOptimize(checksum);
  const adapter::SourceStats st = source.stats();
  source.stop();
  state.counters["drops"] = static_cast<double>(st.drops);
  state.SetItemsProcessed(static_cast<std::int64_t>(total));
}

void BM_PlainLibnatsReceive(benchmark::State& state) {
  if (!server_ready()) {
    state.SkipWithError("nats-server did not start");
    return;
  }
  struct Counter {
    std::atomic<std::uint64_t> got{0};
    std::array<std::byte, 512> copy{};
    std::uint64_t checksum = 0;
  } c;
  natsConnection* nc = nullptr;
  natsSubscription* sub = nullptr;
  if (natsConnection_ConnectTo(&nc, server().url().c_str()) != NATS_OK ||
      natsConnection_Subscribe(
          &sub, nc, "md.*",
          [](natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
            auto* k = static_cast<Counter*>(closure);
            const auto n = static_cast<std::size_t>(natsMsg_GetDataLength(msg));
            std::memcpy(k->copy.data(), natsMsg_GetData(msg), std::min(n, k->copy.size()));
            k->checksum += static_cast<std::uint64_t>(k->copy[n - 1]);
            natsMsg_Destroy(msg);
            // release: pairs with the benchmark thread's acquire (and, through it, the publisher's).
            k->got.fetch_add(1, std::memory_order_release);
          },
          &c) != NATS_OK) {
    if (nc != nullptr) natsConnection_Destroy(nc);
    state.SkipWithError("subscribe failed");
    return;
  }
  (void)natsSubscription_SetPendingLimits(sub, 65536, -1);   // the source's default
  (void)natsConnection_FlushTimeout(nc, 5000);
  std::uint64_t total = 0;
  for (auto _ : state) {
    const std::uint64_t base = c.got.load(std::memory_order_acquire);
    // The publisher paces on this run's count; the callback's counter is mirrored into it.
    std::atomic<std::uint64_t> taken{0};
    WindowedPublisher pub(kReceiveRun, taken);
    if (!pub.connected()) {
      state.SkipWithError("publisher connect failed");
      break;
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    std::uint64_t got = 0;
    while (got < kReceiveRun && std::chrono::steady_clock::now() < deadline) {
      const std::uint64_t now = c.got.load(std::memory_order_acquire) - base;
      if (now == got) {
        cpu_relax();
        continue;
      }
      got = now;
      taken.store(got, std::memory_order_release);   // pairs with the publisher's acquire
    }
    total += got;
    if (!pub.finish() || got != kReceiveRun) {
      state.SkipWithError("not every message arrived");
      break;
    }
  }
  benchmark::DoNotOptimize(c.checksum);
  natsSubscription_Destroy(sub);
  natsConnection_Destroy(nc);
  state.SetItemsProcessed(static_cast<std::int64_t>(total));
}

void BM_HypergateSink(benchmark::State& state) { run_hypergate_sink(state, /*paced=*/false); }
void BM_PlainLibnats(benchmark::State& state) { run_plain_libnats(state, /*paced=*/false); }
void BM_HypergateSinkPaced(benchmark::State& state) { run_hypergate_sink(state, /*paced=*/true); }
void BM_PlainLibnatsPaced(benchmark::State& state) { run_plain_libnats(state, /*paced=*/true); }

BENCHMARK(BM_HypergateSink)->Name("nats/hypergate_sink/publish")->UseRealTime()->MinTime(1.0);
BENCHMARK(BM_PlainLibnats)->Name("nats/plain_libnats/publish")->UseRealTime()->MinTime(1.0);
BENCHMARK(BM_HypergateSinkPaced)->Name("nats/hypergate_sink/publish_paced")->UseRealTime()->MinTime(1.0);
BENCHMARK(BM_PlainLibnatsPaced)->Name("nats/plain_libnats/publish_paced")->UseRealTime()->MinTime(1.0);
BENCHMARK(BM_HypergateSourceReceive)->Name("nats/hypergate_source/receive")->UseRealTime()->MinTime(1.0);
BENCHMARK(BM_PlainLibnatsReceive)->Name("nats/plain_libnats/receive")->UseRealTime()->MinTime(1.0);

}  // namespace

BENCHMARK_MAIN();
