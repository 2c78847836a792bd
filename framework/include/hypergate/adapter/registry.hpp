#pragma once
// Registry: adapter types by name ("udp", "http.fire", "soupbintcp", ...). Built-in adapters register
// at start-up; plugins register from their registration function (see plugin.hpp). A factory reads
// its [source.<name>]/[sink.<name>] section (reporting errors through the Section) and builds an
// adapter without touching the outside world: sockets and files are opened in start(), so
// `hypergate config check` can build every adapter to validate a file without side effects.
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "hypergate/adapter/sink.hpp"
#include "hypergate/adapter/source.hpp"
#include "hypergate/config/config.hpp"

namespace hypergate::adapter {

/// What a factory knows besides its section.
struct Context {
  std::string name;             ///< instance name: "feed" for [source.feed]
  std::uint16_t id = 0;         ///< index of the instance among sources (or sinks)
  unsigned workers = 1;         ///< number of workers in this gateway
  unsigned worker = 0;          ///< the worker that will own this instance (sinks: one instance per worker)
};

using SourceFactory =
    std::function<Result<std::unique_ptr<Source>>(config::Section& section, const Context& ctx)>;
using SinkFactory = std::function<Result<std::unique_ptr<Sink>>(config::Section& section, const Context& ctx)>;
/// Reads an adapter's top-level table (e.g. [dpdk]: settings shared by every instance of a family of
/// adapters). Called by the gateway for every registered section, present or not (absent = defaults),
/// before any source or sink factory, on every configuration load (also `hypergate config check`): like
/// a factory it only reads and checks, it opens nothing. Errors go through the Section.
using SectionReader = std::function<void(config::Section& section)>;

class Registry {
 public:
  /// The process-wide registry.
  static Registry& global();

  /// Fails if the type name is already taken (a plugin cannot silently replace a built-in).
  Result<void> add_source(std::string type, std::string summary, SourceFactory factory);
  Result<void> add_sink(std::string type, std::string summary, SinkFactory factory);
  /// Claims the top-level table `name`; fails if another adapter claimed it already.
  Result<void> add_section(std::string name, std::string summary, SectionReader reader);

  [[nodiscard]] const SourceFactory* source(std::string_view type) const;
  [[nodiscard]] const SinkFactory* sink(std::string_view type) const;

  struct Entry {
    std::string type;
    std::string summary;
  };
  [[nodiscard]] std::vector<Entry> sources() const;
  [[nodiscard]] std::vector<Entry> sinks() const;
  /// Registered top-level sections with their readers, in name order (copied: cold path).
  struct SectionEntry {
    std::string name;
    SectionReader reader;
  };
  [[nodiscard]] std::vector<SectionEntry> sections() const;

 private:
  template <class F>
  struct Item {
    std::string summary;
    F factory;
  };
  mutable std::mutex mutex_;  // cold path only: registration at start-up and lookups while wiring
  std::map<std::string, Item<SourceFactory>, std::less<>> sources_;
  std::map<std::string, Item<SinkFactory>, std::less<>> sinks_;
  std::map<std::string, Item<SectionReader>, std::less<>> sections_;
};

}  // namespace hypergate::adapter
