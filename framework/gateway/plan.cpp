// build_plan: configuration -> GatewayPlan (see plan.hpp).
#include "plan.hpp"

#include "hypergate/route/registry.hpp"

#include <algorithm>
#include <set>

#include "hypergate/adapter/registry.hpp"
#include "hypergate/route/registry.hpp"

namespace hypergate::gateway {

namespace {

bool is_power_of_two(std::uint64_t v) noexcept { return v != 0 && (v & (v - 1)) == 0; }

std::string registered_list(const std::vector<adapter::Registry::Entry>& entries) {
  std::string s;
  for (const auto& e : entries) s += (s.empty() ? "" : ", ") + e.type;
  return s.empty() ? "none" : s;
}

GatewaySettings read_gateway(config::Section s) {
  GatewaySettings g;
  g.workers = static_cast<unsigned>(s.integer("workers", 1, 1, 64));
  const bool has_cores = s.has("cores");
  const auto cores = s.integer_list("cores", 0, 4095);
  if (has_cores) {
    std::set<std::int64_t> seen;
    for (auto c : cores) {
      if (!seen.insert(c).second) s.error("cores", "CPU " + std::to_string(c) + " is listed twice");
      g.cores.push_back(static_cast<unsigned>(c));
    }
    if (g.cores.size() != g.workers) {
      s.error("cores", "lists " + std::to_string(g.cores.size()) + " CPUs for " + std::to_string(g.workers) +
                           " worker(s): give one CPU per worker");
    }
  }
  g.idle = s.choice("idle", "backoff", {"busy", "backoff"}) == "busy" ? GatewaySettings::Idle::Busy
                                                                      : GatewaySettings::Idle::Backoff;
  g.idle_sleep_ns = s.duration_ns("idle_sleep", 200'000);
  if (g.idle_sleep_ns < 1'000 || g.idle_sleep_ns > 60'000'000'000)
    s.error("idle_sleep", "must be between 1us and 60s");
  g.burst = static_cast<unsigned>(s.integer("burst", 32, 1, 256));
  s.finish();
  return g;
}

AdminSettings read_admin(config::Section s) {
  AdminSettings a;
  a.enabled = s.boolean("enabled", true);
  if (auto ep = s.endpoint("listen", "127.0.0.1:9901")) a.listen = *ep;
  s.finish();
  return a;
}

ValveSettings read_valves(config::Section s) {
  ValveSettings v;
  const auto lanes = s.integer("lanes", 32, 1, 1024);
  if (!is_power_of_two(static_cast<std::uint64_t>(lanes))) {
    s.error("lanes", std::to_string(lanes) + " is not a power of two");
  } else {
    v.lanes = static_cast<unsigned>(lanes);
  }
  const auto capacity = s.integer("capacity", 4096, 2, 1 << 24);
  if (!is_power_of_two(static_cast<std::uint64_t>(capacity))) {
    s.error("capacity", std::to_string(capacity) + " is not a power of two");
  } else {
    v.capacity = static_cast<std::uint32_t>(capacity);
  }
  const std::string policy = s.choice("policy", "drop", {"drop", "spin", "conflate", "disconnect"});
  v.policy = policy == "spin"       ? ValveSettings::Policy::Spin
             : policy == "conflate" ? ValveSettings::Policy::Conflate
             : policy == "disconnect" ? ValveSettings::Policy::Disconnect
                                      : ValveSettings::Policy::Drop;
  v.spin_ns = s.duration_ns("spin_ns", v.spin_ns);
  const auto slot = s.integer("slot_bytes", static_cast<std::int64_t>(v.slot_bytes), 128, 2048);
  if (slot != 128 && slot != 256 && slot != 512 && slot != 1024 && slot != 2048) {
    s.error("slot_bytes", std::to_string(slot) + " is not one of 128, 256, 512, 1024, 2048");
  } else {
    v.slot_bytes = static_cast<std::uint32_t>(slot);
  }
  s.finish();
  return v;
}

StoreSettings read_store(config::Section s) {
  StoreSettings st;
  st.arena_bytes = static_cast<std::uint64_t>(s.integer("arena_bytes", 64ll << 20, 4096, 1ll << 40));
  const auto slots = s.integer("slots", 1 << 16, 1, 1ll << 32);
  if (!is_power_of_two(static_cast<std::uint64_t>(slots))) {
    s.error("slots", std::to_string(slots) + " is not a power of two");
  } else {
    st.slots = static_cast<std::uint64_t>(slots);
  }
  if (s.has("path")) {
    std::string path = s.string("path", "");
    if (path.empty()) s.error("path", "must not be empty (leave the key out for a memory-only store)");
    else st.path = std::move(path);
  }
  s.finish();
  return st;
}

// Factories come from adapters and plugins: one that throws becomes an error, not a crash.
template <class Factory>
auto call_factory(const Factory& factory, config::Section& s, const adapter::Context& ctx) -> decltype(factory(s, ctx)) {
  try {
    return factory(s, ctx);
  } catch (const std::exception& e) {
    return Error{Status::InvalidArgument, std::string("factory threw: ") + e.what()};
  } catch (...) {
    return Error{Status::InvalidArgument, "factory threw an unknown exception"};
  }
}

}  // namespace

std::string_view to_string(GatewaySettings::Idle idle) noexcept {
  return idle == GatewaySettings::Idle::Busy ? "busy" : "backoff";
}

std::string_view to_string(ValveSettings::Policy policy) noexcept {
  switch (policy) {
    case ValveSettings::Policy::Drop: return "drop";
    case ValveSettings::Policy::Spin: return "spin";
    case ValveSettings::Policy::Conflate: return "conflate";
    case ValveSettings::Policy::Disconnect: return "disconnect";
  }
  return "drop";
}

Result<GatewayPlan> build_plan(config::Document& doc) {
  GatewayPlan plan;
  plan.gateway = read_gateway(doc.section("gateway"));
  plan.admin = read_admin(doc.section("admin"));
  plan.valves = read_valves(doc.section("valves"));
  plan.store = read_store(doc.section("store"));

  auto& registry = adapter::Registry::global();
  const unsigned workers = plan.gateway.workers;

  // Adapter-owned top-level tables ([dpdk], ...): before the factories, which may depend on them.
  for (const auto& entry : registry.sections()) {
    config::Section s = doc.section(entry.name);
    try {
      entry.reader(s);
    } catch (const std::exception& e) {
      s.error("", std::string("section reader threw: ") + e.what());
    }
    s.finish();
  }

  // Sinks first: pipelines need their names (content and failover rules name sinks).
  std::uint16_t sink_id = 0;
  for (config::Section s : doc.instances("sink")) {
    SinkPlan kp;
    kp.name = std::string(s.name());
    const auto type = s.required_string("type");
    if (sink_id >= route::SinkHealth::kMaxSinks) {
      s.error("type", "at most 64 sinks (Route::sinks is a 64-bit mask)");
    } else if (type) {
      kp.type = *type;
      if (const auto* factory = registry.sink(*type)) {
        // One instance per worker; the section is read again for each, so stop at the first error
        // (its diagnostics are already recorded) rather than repeating it `workers` times.
        for (unsigned w = 0; w < workers; ++w) {
          adapter::Context ctx{kp.name, sink_id, workers, w};
          auto made = call_factory(*factory, s, ctx);
          if (!made) {
            s.error("type", "cannot build " + *type + " sink: " + made.error().message);
            kp.instances.clear();
            break;
          }
          kp.instances.push_back(std::move(made).value());
        }
      } else {
        s.error("type", "unknown sink type '" + *type + "' (registered: " + registered_list(registry.sinks()) + ")");
      }
    }
    s.finish();
    plan.sinks.push_back(std::move(kp));
    ++sink_id;
  }
  std::vector<std::string> sink_names;
  for (const auto& k : plan.sinks) sink_names.push_back(k.name);

  auto& pipelines = route::PipelineRegistry::global();
  std::uint16_t source_id = 0;
  for (config::Section s : doc.instances("source")) {
    SourcePlan sp;
    sp.name = std::string(s.name());
    const auto type = s.required_string("type");
    sp.worker = static_cast<unsigned>(s.integer("worker", source_id % workers, 0, workers - 1));
    sp.pipeline = s.string("pipeline", "passthrough");
    config::Section options = s.table("pipeline_options");  // exists() is false when absent: defaults
    if (type) {
      sp.type = *type;
      if (const auto* factory = registry.source(*type)) {
        adapter::Context ctx{sp.name, source_id, workers, sp.worker};
        auto made = call_factory(*factory, s, ctx);
        if (made) {
          sp.source = std::move(made).value();
        } else {
          s.error("type", "cannot build " + *type + " source: " + made.error().message);
        }
      } else {
        s.error("type", "unknown source type '" + *type + "' (registered: " + registered_list(registry.sources()) +
                            ")");
      }
    }
    if (pipelines.find(sp.pipeline) == nullptr) {
      std::string known;
      for (const auto& e : pipelines.list()) known += (known.empty() ? "" : ", ") + e.name;
      s.error("pipeline", "unknown pipeline '" + sp.pipeline + "' (registered: " + known + ")");
    } else {
      route::PipelineContext pctx;
      pctx.lanes = plan.valves.lanes;
      pctx.source_id = source_id;
      pctx.worker = sp.worker;
      pctx.sink_count = plan.sinks.size();
      pctx.sink_names = sink_names;
      pctx.health = plan.health.get();
      auto made = pipelines.create(sp.pipeline, options, pctx);  // reads and finish()es the options
      if (made) {
        sp.pipeline_instance = std::move(made).value();
      } else {
        s.error("pipeline", "cannot build pipeline '" + sp.pipeline + "': " + made.error().message);
      }
    }
    s.finish();  // after the factory: whatever nobody read is unknown
    plan.sources.push_back(std::move(sp));
    ++source_id;
  }

  doc.finish();
  if (!doc.diagnostics().empty()) {
    return Error{Status::InvalidArgument, doc.diagnostics().format()};
  }
  return plan;
}

}  // namespace hypergate::gateway
