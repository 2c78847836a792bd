// valves: cross-core messages per second and one-way latency through one valve lane, against a raw
// boost::lockfree::spsc_queue carrying the same 32-byte payload, in the same run.
//
//   valve/throughput            ValveEngine<128>, 1 lane: push_burst of 32 routed messages (payload + key
//                               copied into slots) -> drain into a sink that reads every payload
//   raw_spsc/throughput         spsc_queue<RawMsg>: push 32 structs at once -> pop 32 at once
//   raw_spsc/throughput_slot128 spsc_queue of 128-byte trivially copyable elements holding the same header,
//                               payload and key as a valve slot: the same bytes cross the cores
//   raw_spsc/throughput_line64  spsc_queue of 64-byte elements (32-byte payload, 8-byte key, 24 bytes of
//                               header): one cache line per message, the least any copy of a 32-byte
//                               message with its key and a header can take (a floor for the valve)
//   valve/throughput_slot256, valve/throughput_slot512  the same valve run with 256- and 512-byte slots (the
//                               largest sizes that are staged and copied whole, see valve::kBulkCopyMaxBytes)
//   raw_spsc/throughput_per_item same 32-byte queue, consumer uses front()/pop() per message (the zero-copy read
//                               boost offers; one index publication per message)
//   (throughput runs also report p50_ns / p99_ns: one-way latency under full load, i.e. mostly queueing)
//   valve/latency, raw_spsc/latency  one message in flight at a time: one-way latency (TSC in the payload,
//                               read by the consumer), reported as counters p50_ns / p99_ns
//
// Threads: producer pinned to core 0, consumer to core 1 (created here; scripts/bench.sh pins the main
// thread to the last core, where it only waits in join()).
#include <benchmark/benchmark.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <boost/lockfree/spsc_queue.hpp>
#include <cstring>
#include <thread>
#include <vector>

#include "hypergate/core/clock.hpp"
#include "hypergate/valve/valve_engine.hpp"

namespace hg = hypergate;
namespace valve = hypergate::valve;

namespace {

constexpr std::size_t kPayload = 32;        // bytes: tsc (8) + sequence (8) + 16 bytes of filler
constexpr std::uint64_t kMessages = 1u << 20;  // per benchmark iteration
constexpr std::uint32_t kCapacity = 4096;  // the [valves] capacity default
constexpr std::size_t kBatch = 32;

void pin(int core) {
  const int n = static_cast<int>(std::thread::hardware_concurrency());
  if (n <= 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core % n, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

struct RawMsg {
  std::byte payload[kPayload];
};

// The same message as the valve carries (header + 32-byte payload + 8-byte key) in a trivially copyable
// 128-byte element: the raw queue moving the same bytes, without lanes, policies, counters or fan-out.
struct alignas(64) RawSlot {
  valve::SlotHeader h;
  std::byte bytes[128 - sizeof(valve::SlotHeader)];
};
static_assert(sizeof(RawSlot) == 128);

// One cache line per message: the 32-byte payload, an 8-byte key and 24 bytes of header.
struct alignas(64) RawLine {
  std::byte payload[kPayload];
  std::byte header[24];  // the sequence in its first 8 bytes, the rest left as filled once
  std::byte key[8];
};
static_assert(sizeof(RawLine) == 64);

// Latency samples (ns) -> percentile counters.
void report_latency(benchmark::State& state, std::vector<std::uint64_t>& ns) {
  if (ns.empty()) return;
  std::sort(ns.begin(), ns.end());
  state.counters["p50_ns"] = static_cast<double>(ns[ns.size() / 2]);
  state.counters["p99_ns"] = static_cast<double>(ns[ns.size() * 99 / 100]);
}

// ------------------------------------------------------------------------------------------ valve
template <std::size_t SlotBytes>
struct BenchConsumer {
  using Engine = valve::ValveEngine<SlotBytes>;
  std::uint64_t received = 0;
  std::uint64_t checksum = 0;
  std::uint64_t last_tsc = 0;
  std::vector<std::uint64_t>* samples = nullptr;  // under load: one-way latency of every 16th message
  std::size_t send(unsigned, const hg::Burst<>& b) noexcept {
    const std::uint64_t now = samples != nullptr ? hg::TscClock::ticks() : 0;
    for (const hg::Message& m : b) {
      std::uint64_t tsc;
      std::memcpy(&tsc, m.data, sizeof tsc);
      checksum += tsc ^ m.size;
      last_tsc = tsc;
      if (samples != nullptr && (received++ & 15) == 0 && now > tsc) samples->push_back(now - tsc);
    }
    if (samples == nullptr) received += b.size();
    return b.size();
  }
  void drained(const typename Engine::SlotType*, std::size_t) noexcept {}
};

template <std::size_t SlotBytes>
void BM_valve_throughput(benchmark::State& state) {
  using Engine = valve::ValveEngine<SlotBytes>;
  valve::Options o;
  o.lanes = 1;
  o.ring_capacity = kCapacity;
  o.policy = valve::CollisionPolicy::Spin;
  o.spin_ns = 1'000'000'000;  // lossless: a full ring waits for the consumer
  auto engine = Engine::create(o);
  if (!engine) {
    state.SkipWithError(engine.error().message.c_str());
    return;
  }
  Engine& e = *engine.value();
  const std::string key = "AAPL    ";
  std::uint64_t checksum = 0;
  std::vector<std::uint64_t> ticks;
  ticks.reserve(kMessages / 16 + 1);
  std::vector<std::uint64_t> samples;
  for (auto _ : state) {
    ticks.clear();
    std::thread producer([&] {
      pin(0);
      std::byte payload[kBatch][kPayload] = {};
      hg::Message msgs[kBatch];
      hg::route::Route routes[kBatch];
      for (std::size_t i = 0; i < kBatch; ++i) {
        msgs[i].set_key(key);
        routes[i].lane = 0;
        routes[i].sinks = 1;
        routes[i].action = hg::route::Action::Deliver;
      }
      for (std::uint64_t sent = 0; sent < kMessages; sent += kBatch) {
        const std::uint64_t now = hg::TscClock::ticks();
        for (std::size_t i = 0; i < kBatch; ++i) {
          std::memcpy(payload[i], &now, sizeof now);
          const std::uint64_t seq = sent + i;
          std::memcpy(payload[i] + 8, &seq, sizeof seq);
          msgs[i].set_payload(payload[i], kPayload);
          msgs[i].sequence = seq;
        }
        (void)e.push_burst(0, std::span<const hg::Message>(msgs, kBatch),
                           std::span<const hg::route::Route>(routes, kBatch));
      }
    });
    std::thread consumer([&] {
      pin(1);
      BenchConsumer<SlotBytes> c;
      c.samples = &ticks;
      while (c.received < kMessages) {
        if (e.drain(0, c) == 0) hg::cpu_relax();
      }
      checksum += c.checksum;
    });
    producer.join();
    consumer.join();
    for (std::uint64_t t : ticks) samples.push_back(hg::TscClock::instance().to_ns(t));
  }
  report_latency(state, samples);
  benchmark::DoNotOptimize(checksum);
  const valve::LaneCounters c = e.counters(0);
  state.counters["dropped"] = static_cast<double>(c.dropped);
  state.counters["collisions"] = static_cast<double>(c.collisions);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kMessages));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kMessages * kPayload));
}

template <std::size_t SlotBytes>
void BM_valve_latency(benchmark::State& state) {
  using Engine = valve::ValveEngine<SlotBytes>;
  valve::Options o;
  o.lanes = 1;
  o.ring_capacity = kCapacity;
  auto engine = Engine::create(o);
  if (!engine) {
    state.SkipWithError(engine.error().message.c_str());
    return;
  }
  Engine& e = *engine.value();
  const hg::TscClock& clock = hg::TscClock::instance();
  constexpr std::uint64_t kPings = 100'000;
  std::vector<std::uint64_t> samples;
  samples.reserve(kPings * 4);
  const std::string key = "AAPL    ";
  for (auto _ : state) {
    std::atomic<std::uint64_t> acked{0};
    std::thread producer([&] {
      pin(0);
      std::byte payload[kPayload] = {};
      hg::Message m;
      m.set_key(key);
      for (std::uint64_t i = 0; i < kPings; ++i) {
        const std::uint64_t now = hg::TscClock::ticks();
        std::memcpy(payload, &now, sizeof now);
        m.set_payload(payload, kPayload);
        (void)e.push(0, m, std::uint64_t{1});
        // acquire: pairs with the consumer's release store; one message in flight at a time.
        while (acked.load(std::memory_order_acquire) <= i) hg::cpu_relax();
      }
    });
    std::thread consumer([&] {
      pin(1);
      BenchConsumer<SlotBytes> c;
      while (c.received < kPings) {
        if (e.drain(0, c) != 0) {
          samples.push_back(clock.elapsed_ns(c.last_tsc, hg::TscClock::ticks()));
          acked.store(c.received, std::memory_order_release);  // release: pairs with the producer's acquire
        } else {
          hg::cpu_relax();
        }
      }
    });
    producer.join();
    consumer.join();
  }
  report_latency(state, samples);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kPings));
}

// ------------------------------------------------------------------------------------------ raw spsc
enum class RawRead { Batch, PerItem };

std::byte* payload_of(RawMsg& m) { return m.payload; }
[[maybe_unused]] const std::byte* payload_of(const RawMsg& m) { return m.payload; }
std::byte* payload_of(RawSlot& m) { return m.bytes; }
[[maybe_unused]] const std::byte* payload_of(const RawSlot& m) { return m.bytes; }
std::byte* payload_of(RawLine& m) { return m.payload; }
[[maybe_unused]] const std::byte* payload_of(const RawLine& m) { return m.payload; }
void fill_header(RawMsg&, std::uint64_t) {}
void fill_header(RawLine& m, std::uint64_t seq) {
  std::memcpy(m.header, &seq, sizeof seq);
  std::memcpy(m.key, "AAPL    ", sizeof m.key);
}
void fill_header(RawSlot& m, std::uint64_t seq) {
  m.h.size = kPayload;
  m.h.key_size = 8;
  m.h.sequence = seq;
  m.h.sinks = 1;
  m.h.key_hash = 0x1234;
  std::memcpy(m.bytes + kPayload, "AAPL    ", 8);
}

template <class Elem, RawRead Mode>
void BM_raw_throughput(benchmark::State& state) {
  boost::lockfree::spsc_queue<Elem> q(kCapacity);
  std::uint64_t checksum = 0;
  std::vector<std::uint64_t> ticks;
  ticks.reserve(kMessages / 16 + 1);
  std::vector<std::uint64_t> samples;
  for (auto _ : state) {
    ticks.clear();
    std::thread producer([&] {
      pin(0);
      Elem batch[kBatch] = {};
      for (std::uint64_t sent = 0; sent < kMessages;) {
        const std::uint64_t now = hg::TscClock::ticks();
        for (std::size_t i = 0; i < kBatch; ++i) {
          std::memcpy(payload_of(batch[i]), &now, sizeof now);
          const std::uint64_t seq = sent + i;
          std::memcpy(payload_of(batch[i]) + 8, &seq, sizeof seq);
          fill_header(batch[i], seq);
        }
        std::size_t done = 0;
        while (done < kBatch) {
          const std::size_t n = q.push(batch + done, kBatch - done);
          if (n == 0) hg::cpu_relax();
          done += n;
        }
        sent += kBatch;
      }
    });
    std::thread consumer([&] {
      pin(1);
      Elem out[kBatch];
      std::uint64_t received = 0;
      std::uint64_t sum = 0;
      while (received < kMessages) {
        if constexpr (Mode == RawRead::Batch) {
          const std::size_t n = q.pop(out, kBatch);
          if (n == 0) {
            hg::cpu_relax();
            continue;
          }
          const std::uint64_t now = hg::TscClock::ticks();
          for (std::size_t i = 0; i < n; ++i) {
            std::uint64_t tsc;
            std::memcpy(&tsc, payload_of(out[i]), sizeof tsc);
            sum += tsc ^ kPayload;
            if ((received++ & 15) == 0 && now > tsc) ticks.push_back(now - tsc);
          }
        } else {
          if (q.read_available() == 0) {
            hg::cpu_relax();
            continue;
          }
          const Elem& m = q.front();
          std::uint64_t tsc;
          std::memcpy(&tsc, payload_of(m), sizeof tsc);
          sum += tsc ^ kPayload;
          if ((received++ & 15) == 0) {
            const std::uint64_t now = hg::TscClock::ticks();
            if (now > tsc) ticks.push_back(now - tsc);
          }
          q.pop();
        }
      }
      checksum += sum;
    });
    producer.join();
    consumer.join();
    for (std::uint64_t t : ticks) samples.push_back(hg::TscClock::instance().to_ns(t));
  }
  report_latency(state, samples);
  benchmark::DoNotOptimize(checksum);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kMessages));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kMessages * kPayload));
}

void BM_raw_latency(benchmark::State& state) {
  boost::lockfree::spsc_queue<RawMsg> q(kCapacity);
  const hg::TscClock& clock = hg::TscClock::instance();
  constexpr std::uint64_t kPings = 100'000;
  std::vector<std::uint64_t> samples;
  samples.reserve(kPings * 4);
  for (auto _ : state) {
    std::atomic<std::uint64_t> acked{0};
    std::thread producer([&] {
      pin(0);
      RawMsg m = {};
      for (std::uint64_t i = 0; i < kPings; ++i) {
        const std::uint64_t now = hg::TscClock::ticks();
        std::memcpy(m.payload, &now, sizeof now);
        while (!q.push(m)) hg::cpu_relax();
        // acquire: pairs with the consumer's release store; one message in flight at a time.
        while (acked.load(std::memory_order_acquire) <= i) hg::cpu_relax();
      }
    });
    std::thread consumer([&] {
      pin(1);
      RawMsg out[kBatch];
      std::uint64_t received = 0;
      while (received < kPings) {
        const std::size_t n = q.pop(out, kBatch);
        if (n == 0) {
          hg::cpu_relax();
          continue;
        }
        std::uint64_t tsc;
        std::memcpy(&tsc, out[n - 1].payload, sizeof tsc);
        samples.push_back(clock.elapsed_ns(tsc, hg::TscClock::ticks()));
        received += n;
        acked.store(received, std::memory_order_release);  // release: pairs with the producer's acquire
      }
    });
    producer.join();
    consumer.join();
  }
  report_latency(state, samples);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kPings));
}

}  // namespace

BENCHMARK(BM_valve_throughput<128>)->Name("valve/throughput")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_raw_throughput<RawMsg, RawRead::Batch>)
    ->Name("raw_spsc/throughput")
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_raw_throughput<RawSlot, RawRead::Batch>)
    ->Name("raw_spsc/throughput_slot128")
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_raw_throughput<RawLine, RawRead::Batch>)
    ->Name("raw_spsc/throughput_line64")
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_raw_throughput<RawMsg, RawRead::PerItem>)
    ->Name("raw_spsc/throughput_per_item")
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_valve_throughput<512>)->Name("valve/throughput_slot512")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_valve_throughput<256>)->Name("valve/throughput_slot256")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_valve_latency<128>)->Name("valve/latency")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_raw_latency)->Name("raw_spsc/latency")->UseRealTime()->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
