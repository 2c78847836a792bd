#include "hypergate/adapter/registry.hpp"

namespace hypergate::adapter {

Registry& Registry::global() {
  static Registry registry;
  return registry;
}

namespace {
template <class Map, class F>
Result<void> insert(std::mutex& mutex, Map& map, std::string type, std::string summary, F factory,
                    std::string_view kind) {
  if (type.empty() || !factory) return Error{Status::InvalidArgument, "empty adapter type or factory"};
  std::lock_guard lock(mutex);
  if (map.contains(type)) {
    return Error{Status::InvalidArgument, std::string(kind) + " type '" + type + "' is already registered"};
  }
  map.emplace(std::move(type), typename Map::mapped_type{std::move(summary), std::move(factory)});
  return {};
}
template <class Map>
auto find(std::mutex& mutex, const Map& map, std::string_view type) -> decltype(&map.begin()->second.factory) {
  std::lock_guard lock(mutex);
  auto it = map.find(type);
  return it == map.end() ? nullptr : &it->second.factory;
}
template <class Map>
std::vector<Registry::Entry> list(std::mutex& mutex, const Map& map) {
  std::lock_guard lock(mutex);
  std::vector<Registry::Entry> out;
  for (const auto& [type, item] : map) out.push_back({type, item.summary});
  return out;
}
}  // namespace

Result<void> Registry::add_source(std::string type, std::string summary, SourceFactory factory) {
  return insert(mutex_, sources_, std::move(type), std::move(summary), std::move(factory), "source");
}
Result<void> Registry::add_sink(std::string type, std::string summary, SinkFactory factory) {
  return insert(mutex_, sinks_, std::move(type), std::move(summary), std::move(factory), "sink");
}
Result<void> Registry::add_section(std::string name, std::string summary, SectionReader reader) {
  return insert(mutex_, sections_, std::move(name), std::move(summary), std::move(reader), "section");
}
std::vector<Registry::SectionEntry> Registry::sections() const {
  std::lock_guard lock(mutex_);
  std::vector<SectionEntry> out;
  for (const auto& [name, item] : sections_) out.push_back({name, item.factory});
  return out;
}
const SourceFactory* Registry::source(std::string_view type) const { return find(mutex_, sources_, type); }
const SinkFactory* Registry::sink(std::string_view type) const { return find(mutex_, sinks_, type); }
std::vector<Registry::Entry> Registry::sources() const { return list(mutex_, sources_); }
std::vector<Registry::Entry> Registry::sinks() const { return list(mutex_, sinks_); }

}  // namespace hypergate::adapter
