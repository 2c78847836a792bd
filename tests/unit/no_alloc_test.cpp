// "No heap allocation in steady state": global operator new/delete are replaced with counting
// versions; after a warm-up, 1M messages go through the "validated" pipeline (sequence check,
// length bounds, key deny list, per-key rate limit, hash routing) into a counting Downstream, and
// the number of allocations in that window must be exactly 0.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "hypergate/config/config.hpp"
#include "hypergate/route/registry.hpp"

#include "counting_new.hpp"

namespace hypergate::route {
namespace {

class CountingDownstream final : public Downstream {
 public:
  void deliver(std::span<const Message> messages, std::span<const Route> routes) noexcept override {
    count += messages.size();
    for (const Route& r : routes) lane_sum += r.lane;
  }
  std::uint64_t count = 0;
  std::uint64_t lane_sum = 0;
};

TEST(NoAllocation, CountingNewSeesAllocationsAtAll) {
  // The counter must work, or the real test below could not fail.
  g_allocations.store(0);
  g_counting.store(true);
  auto* v = new std::vector<int>(100);
  g_counting.store(false);
  delete v;
  EXPECT_GE(g_allocations.load(), 2u);
}

TEST(NoAllocation, ValidatedPipelineSteadyStateAllocatesNothing) {
  auto doc = config::Document::parse(
      "[opts]\nkey = \"first_word\"\nmin_length = 4\nmax_length = 200\ndeny_keys = [\"K13\", \"K77\"]\n"
      "rate_limit = 1000000.0\nrate_burst = 1000\nrate_table = 4096\nrouter = \"hash\"\n",
      "no_alloc.toml");
  ASSERT_TRUE(doc.ok()) << doc.error().message;
  auto opts = (*doc)->section("opts");
  PipelineContext ctx;
  ctx.sink_count = 2;
  ctx.sink_names = {"a", "b"};
  auto made = PipelineRegistry::global().create("validated", opts, ctx);
  ASSERT_TRUE(made.ok()) << made.error().message;
  ASSERT_TRUE((*doc)->diagnostics().empty()) << (*doc)->diagnostics().format();
  PipelineBase& pipeline = **made;

  // 1000 distinct keys, real-looking payloads, prepared before counting starts.
  std::vector<std::string> payloads;
  for (int i = 0; i < 1000; ++i) payloads.push_back("K" + std::to_string(i) + " 101.25 300 B");
  CountingDownstream down;
  Emitter out(down);
  Burst<> burst;
  std::uint64_t seq = 1;
  std::size_t next = 0;
  auto run = [&](std::uint64_t messages) {
    for (std::uint64_t done = 0; done < messages; done += Burst<>::kCapacity) {
      burst.clear();
      for (std::size_t i = 0; i < Burst<>::kCapacity; ++i) {
        const std::string& p = payloads[next];
        next = next + 1 == payloads.size() ? 0 : next + 1;
        Message& m = burst.emplace_back();
        m.set_payload(p.data(), p.size());
        m.sequence = seq++;
        m.rx_tsc = seq * 1000;  // 1 us apart in TSC ticks: well inside the rate limit
      }
      pipeline.process(burst, out);
    }
  };
  run(100'000);  // warm-up: every key gets its rate bucket
  const std::uint64_t before = down.count;

  constexpr std::uint64_t kMessages = 1'000'000;
  g_allocations.store(0);
  g_counting.store(true);
  run(kMessages);
  g_counting.store(false);
  const std::uint64_t allocations = g_allocations.load();

  EXPECT_EQ(allocations, 0u) << "heap allocations while processing " << kMessages << " messages";
  // And the work was real: every message except the two denied keys came through.
  EXPECT_EQ(down.count - before, kMessages - 2 * kMessages / 1000);
  const auto c = pipeline.counters();
  EXPECT_EQ(c.in, 100'000u + kMessages);
  EXPECT_EQ(c.rejected, 2 * (100'000u + kMessages) / 1000);
  EXPECT_GT(down.lane_sum, 0u);
}

}  // namespace
}  // namespace hypergate::route
