#pragma once
// GatewayPlan: a configuration document turned into everything the gateway will run, built without
// side effects. build_plan() reads every section ([gateway], [admin], [valves], [store]) and every
// [source.<name>] / [sink.<name>] instance, looks each instance's `type` up in the adapter Registry
// and calls its factory (factories read their own keys and open nothing; sockets and files are
// opened by start()). Sinks are built first (one instance per worker), then each source with its
// pipeline from the route::PipelineRegistry, which is given the sink names for rules that name
// sinks. Each instance section is then finish()ed, so a key no one read is reported as
// unknown at its position. `hypergate config check` is exactly build_plan() without running.
//
// Errors: every problem becomes a Diagnostic in the document; if there are any, build_plan returns
// an Error whose message is the formatted list (one "file:line:col: key: message" per line).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hypergate/adapter/sink.hpp"
#include "hypergate/adapter/source.hpp"
#include "hypergate/config/config.hpp"
#include "hypergate/core/status.hpp"
#include "hypergate/route/route.hpp"
#include "hypergate/route/sink_health.hpp"

namespace hypergate::gateway {

/// [gateway]
struct GatewaySettings {
  enum class Idle : std::uint8_t { Busy, Backoff };
  unsigned workers = 1;             ///< 1..64 pinned workers
  std::vector<unsigned> cores;      ///< CPU per worker (empty = not pinned); size == workers if given
  Idle idle = Idle::Backoff;        ///< "busy" spins on an empty poll, "backoff" pauses then sleeps
  std::uint64_t idle_sleep_ns = 200'000;  ///< backoff: longest sleep (input that is ready wakes it)
  unsigned burst = 32;              ///< messages per poll, 1..256
};

/// [admin]
struct AdminSettings {
  bool enabled = true;
  config::Endpoint listen{"127.0.0.1", 9901};
};

/// [valves]
struct ValveSettings {
  enum class Policy : std::uint8_t { Drop, Spin, Conflate, Disconnect };
  unsigned lanes = 32;              ///< power of two, 1..1024
  std::uint32_t capacity = 4096;    ///< messages per lane ring, power of two
  Policy policy = Policy::Drop;     ///< what a full lane does (a COLLISION)
  std::uint64_t spin_ns = 10'000;   ///< bound on spinning for policy "spin"
  /// Bytes per ring slot (header + payload + key): 128, 256, 512, 1024 or 2048. A message that does not
  /// fit is dropped and counted as oversize, so size it for the largest payload the sources deliver.
  std::uint32_t slot_bytes = 256;
};

/// [store]
struct StoreSettings {
  std::uint64_t arena_bytes = 64ull << 20;
  std::uint64_t slots = 1ull << 16;  ///< power of two
  std::optional<std::string> path;   ///< snapshot file; none = memory only
};

struct SourcePlan {
  std::string name;                              ///< "feed" for [source.feed]
  std::string type;                              ///< registry type, e.g. "synthetic"
  unsigned worker = 0;                           ///< owning worker (`worker` key; default round-robin)
  std::string pipeline = "passthrough";          ///< pipeline registry name
  std::unique_ptr<adapter::Source> source;
  std::unique_ptr<route::PipelineBase> pipeline_instance;  ///< built from [source.<name>.pipeline_options]
};

/// A sink has one instance per worker, so that each instance is only ever called from one thread
/// (the worker draining its lanes); the factory is called once per worker with Context::worker set.
struct SinkPlan {
  std::string name;
  std::string type;
  std::vector<std::unique_ptr<adapter::Sink>> instances;  ///< instances[w] belongs to worker w
};

struct GatewayPlan {
  GatewaySettings gateway;
  AdminSettings admin;
  ValveSettings valves;
  StoreSettings store;
  std::vector<SourcePlan> sources;
  std::vector<SinkPlan> sinks;
  /// Sink health flags: pipelines (failover routing) read them, the runtime writes them. Heap-held so
  /// its address stays put when the plan moves.
  std::unique_ptr<route::SinkHealth> health = std::make_unique<route::SinkHealth>();
};

[[nodiscard]] std::string_view to_string(GatewaySettings::Idle idle) noexcept;
[[nodiscard]] std::string_view to_string(ValveSettings::Policy policy) noexcept;

/// Builds the plan from `doc` (which records every diagnostic). Calls Document::finish().
[[nodiscard]] Result<GatewayPlan> build_plan(config::Document& doc);

}  // namespace hypergate::gateway
