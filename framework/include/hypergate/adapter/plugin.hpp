#pragma once
// Plugins: custom adapters built in another repository against the installed headers and loaded at
// start-up with `hypergate run --plugin path/libmy_adapter.so`.
//
// A plugin is a shared library (CMake MODULE) with one registration function, exported by the
// HYPERGATE_PLUGIN macro as two C symbols:
//
//   int hypergate_plugin_abi_version(void);              -> kPluginAbiVersion the plugin was built with
//   int hypergate_plugin_register(Registry*, char* err, size_t err_len);   0 = ok, else err filled in
//
//   static hypergate::Result<void> register_my_adapters(hypergate::adapter::Registry& registry) {
//     return registry.add_source("my.source", "what it does", make_my_source);
//   }
//   HYPERGATE_PLUGIN(register_my_adapters)
//
// load_plugin() dlopens the library (RTLD_NOW | RTLD_LOCAL: every symbol resolved up front, nothing
// leaked into the global namespace), checks the ABI version before calling anything else, then
// registers. Errors say which of these went wrong: missing file, dlopen failure (with dlerror's
// text), missing symbol, ABI mismatch, registration failure (e.g. a type name already taken).
// A library whose registration ran (even partly) stays loaded for the life of the process, because
// the registry may hold factories whose code lives in it.
//
// ABI: kPluginAbiVersion changes whenever a type that crosses the boundary (Registry, Source, Sink,
// Message, Burst, config::Section...) changes layout or virtual table; rebuild plugins against the
// headers of the gateway that loads them.
#include <cstddef>
#include <cstdio>
#include <exception>
#include <string>

#include "hypergate/adapter/registry.hpp"
#include "hypergate/core/status.hpp"

namespace hypergate::adapter {

inline constexpr int kPluginAbiVersion = 3;  // 3: Source/Sink::wake_fd; 2: PipelineBase's StageProbe, Registry::add_section, SourceStats/SinkStats::details

inline constexpr const char* kPluginAbiSymbol = "hypergate_plugin_abi_version";
inline constexpr const char* kPluginRegisterSymbol = "hypergate_plugin_register";

/// What a successful load_plugin() reports.
struct PluginInfo {
  std::string path;
  std::size_t sources_added = 0;
  std::size_t sinks_added = 0;
};

/// Loads a plugin into `registry` (by default the process-wide one). Cold path.
[[nodiscard]] Result<PluginInfo> load_plugin(const std::string& path, Registry& registry = Registry::global());

namespace detail {
/// Runs a plugin's registration function behind the C boundary: no exception crosses it.
template <class F>
int run_plugin_register(F&& fn, Registry* registry, char* err, std::size_t err_len) noexcept {
  auto fail = [&](const std::string& message) {
    if (err != nullptr && err_len > 0) std::snprintf(err, err_len, "%s", message.c_str());
    return 1;
  };
  if (registry == nullptr) return fail("no registry given");
  try {
    Result<void> r = fn(*registry);
    return r.ok() ? 0 : fail(r.error().message);
  } catch (const std::exception& e) {
    return fail(std::string("exception: ") + e.what());
  } catch (...) {
    return fail("unknown exception");
  }
}
}  // namespace detail

}  // namespace hypergate::adapter

/// Exports the plugin entry points; `register_fn` is callable as Result<void>(Registry&).
#define HYPERGATE_PLUGIN(register_fn)                                                                   \
  extern "C" __attribute__((visibility("default"))) int hypergate_plugin_abi_version() {               \
    return ::hypergate::adapter::kPluginAbiVersion;                                                     \
  }                                                                                                     \
  extern "C" __attribute__((visibility("default"))) int hypergate_plugin_register(                     \
      ::hypergate::adapter::Registry* registry, char* err, std::size_t err_len) {                       \
    return ::hypergate::adapter::detail::run_plugin_register(register_fn, registry, err, err_len);      \
  }                                                                                                     \
  static_assert(true, "HYPERGATE_PLUGIN(fn) is used at namespace scope followed by nothing")
