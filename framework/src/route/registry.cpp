#include "hypergate/route/registry.hpp"

#include <algorithm>
#include <bit>

namespace hypergate::route {

std::optional<std::size_t> sink_index(const PipelineContext& ctx, std::string_view name) {
  auto it = std::find(ctx.sink_names.begin(), ctx.sink_names.end(), name);
  if (it == ctx.sink_names.end()) return std::nullopt;
  return static_cast<std::size_t>(it - ctx.sink_names.begin());
}

std::string known_sinks(const PipelineContext& ctx) {
  std::string out;
  for (const auto& n : ctx.sink_names) out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "none" : out;
}

Result<std::uint64_t> sinks_from_names(const PipelineContext& ctx, const std::vector<std::string_view>& names) {
  std::uint64_t mask = 0;
  for (std::string_view n : names) {
    auto i = sink_index(ctx, n);
    if (!i) return Error{Status::NotFound, "unknown sink '" + std::string(n) + "' (sinks: " + known_sinks(ctx) + ")"};
    mask |= std::uint64_t{1} << *i;
  }
  return mask;
}

PipelineRegistry& PipelineRegistry::global() {
  static PipelineRegistry registry;
  return registry;
}

Result<void> PipelineRegistry::add(std::string name, std::string summary, PipelineFactory factory) {
  if (name.empty() || !factory) return Error{Status::InvalidArgument, "empty pipeline name or factory"};
  std::lock_guard lock(mutex_);
  if (items_.contains(name)) {
    return Error{Status::InvalidArgument, "pipeline '" + name + "' is already registered"};
  }
  items_.emplace(std::move(name), Item{std::move(summary), std::move(factory)});
  return {};
}

const PipelineFactory* PipelineRegistry::find(std::string_view name) const {
  std::lock_guard lock(mutex_);
  auto it = items_.find(name);
  return it == items_.end() ? nullptr : &it->second.factory;
}

std::vector<PipelineRegistry::Entry> PipelineRegistry::list() const {
  std::lock_guard lock(mutex_);
  std::vector<Entry> out;
  for (const auto& [name, item] : items_) out.push_back({name, item.summary});
  return out;
}

Result<std::unique_ptr<PipelineBase>> PipelineRegistry::create(std::string_view name, config::Section& options,
                                                               const PipelineContext& ctx) const {
  if (ctx.lanes == 0 || !std::has_single_bit(ctx.lanes)) {
    return Error{Status::InvalidArgument, "pipeline context: lanes must be a power of two, got " +
                                              std::to_string(ctx.lanes)};
  }
  if (ctx.sink_count > SinkHealth::kMaxSinks) {
    return Error{Status::InvalidArgument, "pipeline context: at most 64 sinks (Route::sinks is a 64-bit mask)"};
  }
  if (!ctx.sink_names.empty() && ctx.sink_names.size() != ctx.sink_count) {
    return Error{Status::InvalidArgument, "pipeline context: sink_names does not match sink_count"};
  }
  const PipelineFactory* factory = find(name);
  if (factory == nullptr) {
    std::string known;
    for (const auto& e : list()) known += (known.empty() ? "" : ", ") + e.name;
    return Error{Status::NotFound,
                 "unknown pipeline '" + std::string(name) + "' (registered: " + (known.empty() ? "none" : known) + ")"};
  }
  return (*factory)(options, ctx);
}

}  // namespace hypergate::route
