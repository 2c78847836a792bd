#pragma once
// PipelineRegistry: pipeline types by name. A pipeline is a compile-time composition
// (Pipeline<Decoder, Validators<...>, Transforms<...>, Router>); the registry lets a configuration
// pick one at run time:
//
//   [source.feed]
//   pipeline = "validated"
//   [source.feed.pipeline_options]     <- the Section handed to the factory
//   max_length = 512
//
// Built-in pipelines ("passthrough", "validated") are registered from strategies/routing (they use
// the routing strategies, which the framework must not depend on); plugins may add more.
// A factory reads its options through the Section (so unknown keys are reported), calls finish()
// on it when it exists, and returns an Error for a semantic problem (e.g. a rule naming an unknown
// sink). Factories run on the cold path; each call builds one instance for one worker and source.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hypergate/config/config.hpp"
#include "hypergate/core/status.hpp"
#include "hypergate/route/route.hpp"
#include "hypergate/route/sink_health.hpp"

namespace hypergate::route {

/// What a pipeline factory knows besides its options.
struct PipelineContext {
  unsigned lanes = 32;                  ///< valve lanes, a power of two; hash routing uses hash & (lanes - 1)
  std::uint16_t source_id = 0;          ///< the source instance this pipeline serves
  unsigned worker = 0;                  ///< the worker that owns it
  std::size_t sink_count = 0;           ///< sinks in the gateway (<= 64: Route::sinks is a bitmask)
  std::vector<std::string> sink_names;  ///< sink i is sink_names[i] (for rules that name sinks)
  const SinkHealth* health = nullptr;   ///< health flags the runtime maintains; null if there are none
};

/// Index of the sink called `name` in ctx.sink_names, or nullopt.
[[nodiscard]] std::optional<std::size_t> sink_index(const PipelineContext& ctx, std::string_view name);
/// "a, b, c" (for error messages), "none" when there are no sinks.
[[nodiscard]] std::string known_sinks(const PipelineContext& ctx);
/// Route::sinks mask of the named sinks; an unknown name is an error naming the known ones.
[[nodiscard]] Result<std::uint64_t> sinks_from_names(const PipelineContext& ctx,
                                                     const std::vector<std::string_view>& names);

using PipelineFactory =
    std::function<Result<std::unique_ptr<PipelineBase>>(config::Section& options, const PipelineContext& ctx)>;

class PipelineRegistry {
 public:
  /// The process-wide registry.
  static PipelineRegistry& global();

  /// Fails if the name is already taken.
  Result<void> add(std::string name, std::string summary, PipelineFactory factory);
  [[nodiscard]] const PipelineFactory* find(std::string_view name) const;

  /// Validates the context (lanes a power of two, sink_count <= 64 and matching sink_names when given)
  /// and runs the named factory. An unknown name is an error listing the registered ones.
  [[nodiscard]] Result<std::unique_ptr<PipelineBase>> create(std::string_view name, config::Section& options,
                                                             const PipelineContext& ctx) const;

  struct Entry {
    std::string name;
    std::string summary;
  };
  [[nodiscard]] std::vector<Entry> list() const;

 private:
  struct Item {
    std::string summary;
    PipelineFactory factory;
  };
  mutable std::mutex mutex_;  // cold path only: registration and wiring
  std::map<std::string, Item, std::less<>> items_;
};

}  // namespace hypergate::route
