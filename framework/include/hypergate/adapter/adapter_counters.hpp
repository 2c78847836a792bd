#pragma once
// AdapterCounters: the transport's own figures carried next to the common SourceStats/SinkStats fields,
// e.g. a DPDK port's link state, rte_eth_stats and PMD xstats. /stats shows them as "details" and
// /metrics as hypergate_{source,sink}_detail{...,counter="<name>"} gauges.
//
// A fixed-size value type (no allocation, copied by value like the stats that hold it): at most
// kMaxAdapterCounters entries, names truncated to kMaxCounterName - 1 characters. add() beyond the
// capacity is ignored. Adapters fill it in stats(), which may run on any thread: the values they
// copy in must be safe to read there (relaxed atomics published by the owning worker, for instance).
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace hypergate::adapter {

class AdapterCounters {
 public:
  static constexpr std::size_t kMaxAdapterCounters = 16;
  static constexpr std::size_t kMaxCounterName = 40;

  struct Entry {
    std::array<char, kMaxCounterName> name{};  ///< NUL-terminated
    std::uint64_t value = 0;
    [[nodiscard]] std::string_view name_view() const noexcept { return {name.data()}; }
  };

  void add(std::string_view name, std::uint64_t value) noexcept {
    if (size_ == kMaxAdapterCounters) return;
    Entry& e = items_[size_++];
    const std::size_t n = std::min(name.size(), kMaxCounterName - 1);
    std::copy_n(name.data(), n, e.name.data());
    e.name[n] = '\0';
    e.value = value;
  }
  /// Adds `value` to the entry called `name`, appending it if there is none (summing the counters of
  /// several instances of one adapter).
  void accumulate(std::string_view name, std::uint64_t value) noexcept {
    for (std::size_t i = 0; i < size_; ++i) {
      if (items_[i].name_view() == name.substr(0, kMaxCounterName - 1)) {
        items_[i].value += value;
        return;
      }
    }
    add(name, value);
  }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] const Entry* begin() const noexcept { return items_.data(); }
  [[nodiscard]] const Entry* end() const noexcept { return items_.data() + size_; }

 private:
  std::array<Entry, kMaxAdapterCounters> items_{};
  std::size_t size_ = 0;
};

}  // namespace hypergate::adapter
