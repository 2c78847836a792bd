// Test-only plugin that claims a future plugin ABI: load_plugin() must refuse it before registering.
#include <cstddef>

#include "hypergate/adapter/registry.hpp"

extern "C" __attribute__((visibility("default"))) int hypergate_plugin_abi_version() { return 999; }
extern "C" __attribute__((visibility("default"))) int hypergate_plugin_register(hypergate::adapter::Registry*, char*,
                                                                               std::size_t) {
  return 0;  // never called: the version check comes first
}
