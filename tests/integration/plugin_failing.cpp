// Test-only plugin whose registration function reports an error.
#include "hypergate/adapter/plugin.hpp"

namespace {
hypergate::Result<void> refuse(hypergate::adapter::Registry&) {
  return hypergate::Error{hypergate::Status::Unsupported, "test plugin refuses to register"};
}
}  // namespace

HYPERGATE_PLUGIN(refuse);
