#pragma once
// run_gateway: runs a built GatewayPlan on the multi-core runtime until SIGINT/SIGTERM or until every
// source is finished, then drains the valves, flushes the sinks and prints the final report.
//
// The plan's adapters and pipelines move into a runtime::Runtime: each source (with its pipeline)
// on its worker, each sink as one instance per worker. The calling thread only waits and prints a
// stats line per interval; the workers do the work.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "plan.hpp"

namespace hypergate::runtime {
class Runtime;
}

namespace hypergate::gateway {

/// Latency histogram outputs of `run` and `replay` (per-stage recording: metrics/stage_probe.hpp).
struct HistogramOutputs {
  std::string hlog;                                 ///< --hlog FILE: HdrHistogram interval log, a tag per stage
  std::uint64_t hlog_interval_ns = 1'000'000'000;   ///< --hlog-interval
  std::uint32_t trace_every = 64;                   ///< --trace-every: sampled stages on 1 burst in N
};

struct RunOptions {
  std::vector<std::string> plugins;                 ///< --plugin LIB.so (loaded before the plan is built)
  std::uint64_t stats_interval_ns = 1'000'000'000;  ///< one stats line per interval
  bool quiet = false;                               ///< no periodic stats line (totals are still printed)
  const char* command = "run";                      ///< the CLI command, for messages
  HistogramOutputs histograms;
  /// Called after the workers have ended and the report was printed, while the runtime (and so every
  /// pipeline and its store) still exists: `replay` reads the books here. Its return value, when
  /// non-zero, becomes the exit code.
  std::function<int(const runtime::Runtime&)> after_run;
};

/// Returns the process exit code: 0 after a clean stop, 1 if the runtime could not start or an
/// adapter failed (the others keep running until the end; the report says which failed and why).
[[nodiscard]] int run_gateway(GatewayPlan& plan, const RunOptions& options);

}  // namespace hypergate::gateway
