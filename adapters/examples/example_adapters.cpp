// An example plugin with two custom adapters: the tutorial for "Writing a custom adapter".
//
//   example.lines    a source that reads a text file and emits one message per line,
//                    with the first word of the line as the routing key
//   example.collect  a sink that appends every message it receives to a file, one per line
//
// Built as a shared library (see CMakeLists.txt next to this file) and loaded with
//   hypergate run --config my.toml --plugin ./libhypergate_example_plugin.so
// where my.toml says
//   [source.replay]
//   type = "example.lines"
//   path = "orders.txt"
//   [sink.audit]
//   type = "example.collect"
//   path = "audit.log"
//
// Read it top to bottom: the source, the sink, then the one function the gateway calls.
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>

#include "hypergate/adapter/plugin.hpp"
#include "hypergate/adapter/registry.hpp"
#include "hypergate/adapter/sink.hpp"
#include "hypergate/adapter/source.hpp"
#include "hypergate/config/config.hpp"
#include "hypergate/core/clock.hpp"

namespace example {

using hypergate::Burst;
using hypergate::Error;
using hypergate::Message;
using hypergate::Result;
using hypergate::Status;
namespace adapter = hypergate::adapter;

// Counters are written by the worker that owns the adapter and read by the stats thread:
// adapter::SourceCounters / SinkCounters hold the figures of SourceStats / SinkStats as
// hypergate::Counter (hypergate/core/counter.hpp: single writer, relaxed, no locked add), and
// snapshot() is what stats() returns. An adapter's own figures can be plain Counters beside them.

// ------------------------------------------------------------------------------------------------
// Source: example.lines
// ------------------------------------------------------------------------------------------------
// A source hands out messages in bursts. The rules (hypergate/adapter/source.hpp):
//  - the constructor only stores configuration; files and sockets are opened in start(), so
//    `hypergate config check` can build the adapter without side effects;
//  - poll() is the hot path: no allocation, no blocking; it appends what it has and returns;
//  - the message bytes belong to the source until release() is called with the burst.
// Here start() reads the whole file into memory once, and poll() hands out views of its lines:
// zero-copy, no allocation per message. Because the file content lives until stop(), release() has
// nothing to recycle; a network source would return its receive buffers to its pool there.
class LinesSource final : public adapter::Source {
 public:
  LinesSource(std::string path, std::uint16_t source_id) : path_(std::move(path)), source_id_(source_id) {}

  std::string_view type() const noexcept override { return "example.lines"; }

  Result<void> start() override {
    std::ifstream in(path_, std::ios::binary);
    if (!in) return Error{Status::IoError, "example.lines: cannot open '" + path_ + "'"};
    text_.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    pos_ = 0;
    return {};
  }
  void stop() noexcept override { text_.clear(); }

  std::size_t poll(Burst<>& out) noexcept override {
    std::size_t added = 0;
    std::uint64_t bytes = 0;
    const std::uint64_t now = hypergate::TscClock::ticks();  // one clock read per burst, not per message
    while (!out.full() && pos_ < text_.size()) {
      std::size_t end = text_.find('\n', pos_);
      if (end == std::string::npos) end = text_.size();
      std::string_view line(text_.data() + pos_, end - pos_);
      pos_ = end + 1;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.empty()) continue;  // blank lines carry nothing

      Message& m = out.emplace_back();
      m.set_payload(line.data(), line.size());
      m.set_key(line.substr(0, line.find(' ')));  // the first word routes the message
      m.source_id = source_id_;
      m.sequence = ++sequence_;  // line order: lets the pipeline's sequence check see gaps
      m.rx_tsc = now;
      ++added;
      bytes += line.size();
    }
    if (added > 0) counters_.polled(added, bytes);
    return added;
  }

  bool finished() const noexcept override { return pos_ >= text_.size(); }

  adapter::SourceStats stats() const noexcept override { return counters_.snapshot(); }

 private:
  std::string path_;
  std::uint16_t source_id_;
  std::string text_;        // the file, read once by start()
  std::size_t pos_ = 0;     // next unread byte
  std::uint64_t sequence_ = 0;
  adapter::SourceCounters counters_;
};

// ------------------------------------------------------------------------------------------------
// Sink: example.collect
// ------------------------------------------------------------------------------------------------
// A sink receives bursts (hypergate/adapter/sink.hpp): send() returns how many messages of the
// burst it accepted and must not keep pointers into the burst; flush() pushes out what it buffered.
// stdio's buffer makes this one write() per few KiB, not one syscall per message.
class CollectSink final : public adapter::Sink {
 public:
  explicit CollectSink(std::string path) : path_(std::move(path)) {}
  ~CollectSink() override { stop(); }

  std::string_view type() const noexcept override { return "example.collect"; }

  Result<void> start() override {
    file_ = std::fopen(path_.c_str(), "ab");
    if (file_ == nullptr) return Error{Status::IoError, "example.collect: cannot open '" + path_ + "' for appending"};
    return {};
  }
  void stop() noexcept override {
    if (file_ != nullptr) std::fclose(file_);
    file_ = nullptr;
  }

  std::size_t send(const Burst<>& burst) noexcept override {
    if (file_ == nullptr) return 0;  // not started: accept nothing, the caller's backpressure applies
    std::uint64_t bytes = 0;
    for (const Message& m : burst) {
      if (std::fwrite(m.data, 1, m.size, file_) != m.size || std::fputc('\n', file_) == EOF) {
        counters_.errors.add();
        break;
      }
      bytes += m.size;
    }
    counters_.messages.add(burst.size());
    counters_.bytes.add(bytes);
    return burst.size();
  }
  void flush() noexcept override {
    if (file_ != nullptr) std::fflush(file_);
  }

  adapter::SinkStats stats() const noexcept override { return counters_.snapshot(); }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  adapter::SinkCounters counters_;
};

// ------------------------------------------------------------------------------------------------
// Registration
// ------------------------------------------------------------------------------------------------
// Factories read the adapter's [source.<name>] / [sink.<name>] section through config::Section:
// each read is type-checked and marks the key as known; finish() then reports any key the adapter
// did not read (a typo in the config file) with its file:line:column. `type` is read by the gateway.
Result<void> register_adapters(adapter::Registry& registry) {
  auto lines = registry.add_source(
      "example.lines", "replays a text file, one message per line, key = first word",
      [](hypergate::config::Section& section,
         const adapter::Context& ctx) -> Result<std::unique_ptr<adapter::Source>> {
        auto path = section.required_string("path");
        section.finish();
        if (!path) return Error{Status::InvalidArgument, section.path() + ".path: required"};
        return std::unique_ptr<adapter::Source>(std::make_unique<LinesSource>(*path, ctx.id));
      });
  if (!lines) return lines;
  return registry.add_sink(
      "example.collect", "appends every message to a file, one per line",
      [](hypergate::config::Section& section, const adapter::Context&) -> Result<std::unique_ptr<adapter::Sink>> {
        auto path = section.required_string("path");
        section.finish();
        if (!path) return Error{Status::InvalidArgument, section.path() + ".path: required"};
        return std::unique_ptr<adapter::Sink>(std::make_unique<CollectSink>(*path));
      });
}

}  // namespace example

// Exports hypergate_plugin_abi_version() and hypergate_plugin_register(), which `--plugin` calls.
HYPERGATE_PLUGIN(example::register_adapters);
