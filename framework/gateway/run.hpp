#pragma once
// run_gateway: runs a built GatewayPlan until SIGINT/SIGTERM or until every source is finished.
//
// This is the simple single-threaded loop the gateway starts with: poll each source into a burst,
// hand the burst to every sink, release it. It will be replaced by the multi-core runtime (workers,
// pipelines, valves); until then it is honest about what it does: no pipeline, one thread.
#include <cstdint>
#include <string>
#include <vector>

#include "plan.hpp"

namespace hypergate::gateway {

struct RunOptions {
  std::vector<std::string> plugins;        ///< --plugin LIB.so (loaded by the caller before the plan is built)
  std::string hlog_path;                   ///< --hlog FILE: HdrHistogram interval log ("" = none)
  std::uint64_t hlog_interval_ns = 1'000'000'000;  ///< --hlog-interval
  std::uint64_t stats_interval_ns = 1'000'000'000; ///< one stats line per interval
  bool quiet = false;                      ///< no periodic stats line (totals are still printed)
};

/// Returns the process exit code: 0 after a clean stop, 1 if an adapter failed to start.
[[nodiscard]] int run_gateway(GatewayPlan& plan, const RunOptions& options);

}  // namespace hypergate::gateway
