// Test-only plugin for fire_test: a sink type `test.stuck` that never accepts a message. The valve lane
// in front of it fills after a few messages and every later push meets a full ring, so `POST /fire`
// answers COLLISION deterministically (lane policy "drop").
#include <memory>

#include "hypergate/adapter/plugin.hpp"

namespace {

using namespace hypergate;

class StuckSink final : public adapter::Sink {
 public:
  [[nodiscard]] std::string_view type() const noexcept override { return "test.stuck"; }
  [[nodiscard]] Result<void> start() override { return {}; }
  void stop() noexcept override {}
  std::size_t send(const Burst<>& burst) noexcept override {
    (void)burst;
    return 0;  // takes nothing, ever
  }
  [[nodiscard]] adapter::SinkStats stats() const noexcept override { return {}; }
};

Result<void> register_stuck(adapter::Registry& registry) {
  return registry.add_sink("test.stuck", "accepts nothing (test plugin)",
                           [](config::Section& section, const adapter::Context&) -> Result<std::unique_ptr<adapter::Sink>> {
                             section.finish();
                             return std::unique_ptr<adapter::Sink>(std::make_unique<StuckSink>());
                           });
}

}  // namespace

HYPERGATE_PLUGIN(register_stuck);
