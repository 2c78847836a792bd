#pragma once
// What the market-data benchmarks (replay_bench, dpdk_bench) share: the `itch` pipeline's default
// options and a Downstream that only counts what the pipeline emits.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <span>

#include "hypergate/config/config.hpp"
#include "hypergate/route/route.hpp"
#include "market/itch_pipeline.hpp"

namespace hypergate::bench {

/// The options a `[source.x]` with an empty pipeline_options table gets.
inline market::ItchPipelineOptions default_itch_options() {
  route::PipelineContext ctx;
  auto doc = config::Document::parse("[p]\n", "bench");
  auto section = doc.value()->section("p");
  return market::read_itch_options(section, ctx).value();
}

/// Counts emitted messages (the valve engine's place in these benchmarks).
class CountingDownstream final : public route::Downstream {
 public:
  void deliver(std::span<const Message> m, std::span<const route::Route>) noexcept override {
    n += m.size();
    benchmark::DoNotOptimize(m.data());
  }
  std::uint64_t n = 0;
};

}  // namespace hypergate::bench
