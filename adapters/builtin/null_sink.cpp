// `null` sink: accepts every burst, counts messages and bytes, and discards them. The baseline sink
// for the default deployment and for measuring everything upstream of the sinks.
//
//   [sink.discard]
//   type      = "null"
//   log_every = 0     # print "sink 'discard': N messages" to stderr every N messages; 0 = never
//
// The only syscall it can make is that optional log line, once per `log_every` messages.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "hypergate/adapter/registry.hpp"

namespace hypergate::adapter {
namespace {

class NullSink final : public Sink {
 public:
  NullSink(std::string name, std::uint64_t log_every) : name_(std::move(name)), log_every_(log_every) {}

  [[nodiscard]] std::string_view type() const noexcept override { return "null"; }
  [[nodiscard]] Result<void> start() override { return {}; }
  void stop() noexcept override {}

  std::size_t send(const Burst<>& burst) noexcept override {
    std::uint64_t bytes = 0;
    for (const Message& m : burst) bytes += m.size;
    // relaxed: only the sending thread writes these; stats() readers want a monotonic snapshot.
    const std::uint64_t before = messages_.load(std::memory_order_relaxed);
    const std::uint64_t after = before + burst.size();
    messages_.store(after, std::memory_order_relaxed);
    bytes_.store(bytes_.load(std::memory_order_relaxed) + bytes, std::memory_order_relaxed);
    if (log_every_ != 0 && before / log_every_ != after / log_every_) [[unlikely]] {
      std::fprintf(stderr, "sink '%s': %llu messages\n", name_.c_str(),
                   static_cast<unsigned long long>(after / log_every_ * log_every_));
    }
    return burst.size();
  }

  [[nodiscard]] SinkStats stats() const noexcept override {
    SinkStats s;
    s.messages = messages_.load(std::memory_order_relaxed);  // relaxed: counters only, see send()
    s.bytes = bytes_.load(std::memory_order_relaxed);
    return s;
  }

 private:
  std::string name_;
  std::uint64_t log_every_;
  std::atomic<std::uint64_t> messages_{0};
  std::atomic<std::uint64_t> bytes_{0};
};

Result<std::unique_ptr<Sink>> make_null(config::Section& section, const Context& ctx) {
  const auto log_every = static_cast<std::uint64_t>(section.integer("log_every", 0, 0, INT64_MAX));
  return std::unique_ptr<Sink>(std::make_unique<NullSink>(ctx.name, log_every));
}

const bool registered = [] {
  return Registry::global().add_sink("null", "counts and discards every message (log_every)", make_null).ok();
}();

}  // namespace
}  // namespace hypergate::adapter
