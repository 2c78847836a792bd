// hist suite: cost of recording a latency sample.
//   hist/hypergate/record                   HdrHistogram::record (single writer, plain counts)
//   hist/hypergate_interval_recorder/record IntervalRecorder::record (writer side: + phaser RMW)
//   hist/hypergate_interval_recorder/record_batch32  record_batch of 32 values per phaser entry
//   hist/std_vector_push/record             baseline: store raw samples, push_back into a reserved
//                                           vector (the "sort later" approach; cleared when full)
//   hist/hypergate/value_at_percentile      one percentile query on 1M recorded samples
// Items are records (or queries); values come from a pregenerated log-normal latency array so the
// generator is not measured. Run with: scripts/bench.sh hist
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "hypergate/metrics/hdr_histogram.hpp"
#include "hypergate/metrics/interval_recorder.hpp"

namespace {

using hypergate::metrics::HdrHistogram;
using hypergate::metrics::IntervalRecorder;

constexpr std::size_t kValues = std::size_t{1} << 16;  // 512 KiB of samples: L2-resident, like a hot loop
constexpr std::size_t kMask = kValues - 1;
constexpr std::size_t kBatch = 256;  // records per benchmark iteration: amortises the loop's own cost

// Latencies in ns: log-normal around 20 us with a long tail (up to seconds), fixed seed.
const std::vector<std::uint64_t>& latency_values() {
  static const std::vector<std::uint64_t> values = [] {
    std::mt19937_64 rng(2026);
    std::lognormal_distribution<double> dist(std::log(20'000.0), 1.5);
    std::vector<std::uint64_t> v(kValues);
    for (auto& x : v) x = static_cast<std::uint64_t>(dist(rng));
    return v;
  }();
  return values;
}

void hypergate_record(benchmark::State& state) {
  const std::uint64_t* values = latency_values().data();
  HdrHistogram h;  // 1 ns .. 1 h, 3 digits
  std::size_t i = 0;
  for (auto _ : state) {
    for (std::size_t k = 0; k < kBatch; ++k) h.record(values[(i + k) & kMask]);
    i += kBatch;
  }
  benchmark::DoNotOptimize(h.total_count());
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kBatch));
}

void interval_recorder_record(benchmark::State& state) {
  const std::uint64_t* values = latency_values().data();
  IntervalRecorder rec;  // same layout as above; no reader running: the writer's own cost
  std::size_t i = 0;
  for (auto _ : state) {
    for (std::size_t k = 0; k < kBatch; ++k) rec.record(values[(i + k) & kMask]);
    i += kBatch;
  }
  HdrHistogram out = rec.take_interval();
  benchmark::DoNotOptimize(out.total_count());
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kBatch));
}

void interval_recorder_record_batch(benchmark::State& state) {
  const std::uint64_t* values = latency_values().data();
  IntervalRecorder rec;
  constexpr std::size_t kBurst = 32;  // one burst of messages, one phaser entry
  std::size_t i = 0;
  for (auto _ : state) {
    for (std::size_t k = 0; k < kBatch; k += kBurst) rec.record_batch({values + ((i + k) & kMask), kBurst});
    i += kBatch;
  }
  HdrHistogram out = rec.take_interval();
  benchmark::DoNotOptimize(out.total_count());
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kBatch));
}

void std_vector_push_record(benchmark::State& state) {
  const std::uint64_t* values = latency_values().data();
  std::vector<std::uint64_t> samples;
  samples.reserve(std::size_t{1} << 20);  // 8 MiB, reserved up front: no reallocation in the loop
  std::size_t i = 0;
  for (auto _ : state) {
    if (samples.size() + kBatch > samples.capacity()) samples.clear();
    for (std::size_t k = 0; k < kBatch; ++k) samples.push_back(values[(i + k) & kMask]);
    i += kBatch;
    benchmark::DoNotOptimize(samples.data());
  }
  benchmark::ClobberMemory();
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kBatch));
}

void hypergate_value_at_percentile(benchmark::State& state) {
  const std::vector<std::uint64_t>& values = latency_values();
  HdrHistogram h;
  for (std::size_t n = 0; n < 1'000'000; ++n) h.record(values[n & kMask]);
  constexpr double kPercentiles[] = {50.0, 90.0, 99.0, 99.9, 99.99};
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(h.value_at_percentile(kPercentiles[i++ % 5]));
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

BENCHMARK(hypergate_record)->Name("hist/hypergate/record");
BENCHMARK(interval_recorder_record)->Name("hist/hypergate_interval_recorder/record");
BENCHMARK(interval_recorder_record_batch)->Name("hist/hypergate_interval_recorder/record_batch32");
BENCHMARK(std_vector_push_record)->Name("hist/std_vector_push/record");
BENCHMARK(hypergate_value_at_percentile)->Name("hist/hypergate/value_at_percentile");

}  // namespace

BENCHMARK_MAIN();
