// kv: Hyperion against std::unordered_map, absl::flat_hash_map and boost::unordered_flat_map.
//
// Workload (issue 3): 1M keys of 16 bytes (symbol-like, "S0000042.XNAS.EQ"), 64-byte values; the
// maps store std::string keys and std::array<char, 64> values. In one run:
//   kv/<impl>/insert       1M inserts into an empty container (containers pre-sized: reserve() for
//                          the maps, arena + index for Hyperion; creation is not timed)
//   kv/<impl>/lookup_hit   a present key, value copied out (64 bytes), keys in random order
//   kv/<impl>/lookup_miss  an absent key
//   kv/<impl>/update       overwrite a present key's value (top-of-book style)
//   kv/hyperion_reader/lookup_hit        the same through a Reader (epoch pin per burst of 32)
//   kv/hyperion/lookup_hit_concurrent    a reader thread (this one) while a writer thread pinned to
//                                        core 0 overwrites random keys without pause
// Lookups go by std::string_view for every container (each keeps its default string hash; std and
// boost get a transparent wrapper of it), so no benchmark pays for building a std::string per lookup.
// Lookup keys are stored pre-shuffled and contiguous, so the key stream itself does not miss cache.
#include <benchmark/benchmark.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/container_hash/hash.hpp>
#include <boost/unordered/unordered_flat_map.hpp>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#if defined(HG_HAVE_ABSL)
#include <absl/container/flat_hash_map.h>
#endif

#include "hypergate/kv/hyperion.hpp"

namespace {

using hypergate::Status;
using hypergate::kv::Hyperion;

constexpr std::size_t kKeys = 1'000'000;
constexpr std::size_t kKeyBytes = 16;
constexpr std::size_t kLookupBurst = 32;
using Key = std::array<char, kKeyBytes>;
using Value = std::array<char, 64>;

Key make_key(char prefix, std::size_t i) {
  Key k{};
  char buf[kKeyBytes + 1];
  std::snprintf(buf, sizeof buf, "%c%07zu.XNAS.EQ", prefix, i);
  std::memcpy(k.data(), buf, kKeyBytes);
  return k;
}
std::string_view view(const Key& k) { return {k.data(), k.size()}; }

Value make_value(std::size_t i) {
  Value v{};
  for (std::size_t j = 0; j < v.size(); ++j) v[j] = static_cast<char>('a' + (i + j) % 26);
  return v;
}

struct Workload {
  std::vector<Key> keys;          // insertion order
  std::vector<Key> hit_order;     // the same keys, shuffled
  std::vector<Key> miss_order;    // absent keys, shuffled
  Workload() {
    keys.reserve(kKeys);
    for (std::size_t i = 0; i < kKeys; ++i) keys.push_back(make_key('S', i * 7 + 3));
    hit_order = keys;
    std::mt19937_64 rng(42);
    std::shuffle(hit_order.begin(), hit_order.end(), rng);
    miss_order.reserve(kKeys);
    for (std::size_t i = 0; i < kKeys; ++i) miss_order.push_back(make_key('M', i * 7 + 3));
    std::shuffle(miss_order.begin(), miss_order.end(), rng);
  }
};
const Workload& workload() {
  static const Workload w;
  return w;
}

// ---- containers behind one small policy each -------------------------------------------------------

template <class H>
struct Transparent {   // the library's own string hash, callable with std::string_view
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return H{}(s); }
};

// KeyView: what find() takes (Debian's Abseil has its own absl::string_view, not std::string_view).
template <class MapT, class KeyView = std::string_view>
struct MapPolicy {
  using Container = MapT;
  static std::unique_ptr<Container> make() {
    auto m = std::make_unique<Container>();
    m->reserve(kKeys);
    return m;
  }
  static bool insert(Container& m, std::string_view k, const Value& v) {
    return m.try_emplace(std::string(k), v).second;
  }
  static bool find_copy(const Container& m, std::string_view k, Value& out) {
    const auto it = m.find(KeyView(k.data(), k.size()));
    if (it == m.end()) return false;
    out = it->second;
    return true;
  }
  static bool update(Container& m, std::string_view k, const Value& v) {
    const auto it = m.find(KeyView(k.data(), k.size()));
    if (it == m.end()) return false;
    it->second = v;
    return true;
  }
};

using StdMap = MapPolicy<std::unordered_map<std::string, Value, Transparent<std::hash<std::string_view>>,
                                            std::equal_to<>>>;
using BoostMap = MapPolicy<boost::unordered_flat_map<std::string, Value,
                                                     Transparent<boost::hash<std::string_view>>, std::equal_to<>>>;
#if defined(HG_HAVE_ABSL)
using AbslMap = MapPolicy<absl::flat_hash_map<std::string, Value>, absl::string_view>;
#endif

Hyperion::Options hyperion_options() {
  Hyperion::Options o;
  o.arena_bytes = kKeys * hypergate::kv::format::record_size(kKeyBytes, sizeof(Value)) + (std::size_t{8} << 20);
  o.slots = std::size_t{1} << 21;   // 1M keys at load 0.48: max_load 0.75 leaves room
  o.huge_pages = true;
  return o;
}

struct HyperionPolicy {
  using Container = Hyperion;
  static std::unique_ptr<Container> make() {
    auto h = Hyperion::create(hyperion_options());
    if (!h) {
      std::fprintf(stderr, "Hyperion::create: %s\n", h.error().message.c_str());
      std::abort();
    }
    return std::make_unique<Hyperion>(std::move(h).value());
  }
  static bool insert(Container& h, std::string_view k, const Value& v) { return h.put(k, v) == Status::Ok; }
  static bool find_copy(const Container& h, std::string_view k, Value& out) {
    return h.get(k, out) == Status::Ok;
  }
  static bool update(Container& h, std::string_view k, const Value& v) { return h.put(k, v) == Status::Ok; }
};

template <class P>
typename P::Container& filled() {
  static const std::unique_ptr<typename P::Container> c = [] {
    auto m = P::make();
    const Workload& w = workload();
    for (std::size_t i = 0; i < kKeys; ++i) P::insert(*m, view(w.keys[i]), make_value(i));
    return m;
  }();
  return *c;
}

// ---- benchmarks, one template each -----------------------------------------------------------------

template <class P>
void BM_insert(benchmark::State& state) {
  const Workload& w = workload();
  const Value v = make_value(1);
  for (auto _ : state) {
    state.PauseTiming();
    auto c = P::make();
    state.ResumeTiming();
    for (std::size_t i = 0; i < kKeys; ++i) {
      if (!P::insert(*c, view(w.keys[i]), v)) state.SkipWithError("insert failed");
    }
    benchmark::ClobberMemory();
    state.PauseTiming();
    c.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kKeys));
}

template <class P, bool kHit>
void BM_lookup(benchmark::State& state) {
  auto& c = filled<P>();
  const std::vector<Key>& order = kHit ? workload().hit_order : workload().miss_order;
  Value out{};
  std::size_t i = 0;
  std::size_t found = 0;
  for (auto _ : state) {
    found += P::find_copy(c, view(order[i]), out) ? 1 : 0;
    benchmark::DoNotOptimize(out);
    if (++i == order.size()) i = 0;
  }
  if (kHit ? found != static_cast<std::size_t>(state.iterations()) : found != 0) state.SkipWithError("wrong answer");
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

template <class P>
void BM_update(benchmark::State& state) {
  auto& c = filled<P>();
  const std::vector<Key>& order = workload().hit_order;
  Value v = make_value(7);
  std::size_t i = 0;
  for (auto _ : state) {
    v[0] = static_cast<char>(i);
    if (!P::update(c, view(order[i]), v)) state.SkipWithError("update failed");
    if (++i == order.size()) i = 0;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

// Lookups through a Reader handle: one epoch pin per burst of kLookupBurst lookups.
void BM_reader_lookup_hit(benchmark::State& state) {
  Hyperion& h = filled<HyperionPolicy>();
  auto reader = h.reader();
  if (!reader) {
    state.SkipWithError("no reader slot");
    return;
  }
  const std::vector<Key>& order = workload().hit_order;
  Value out{};
  std::size_t i = 0;
  std::size_t found = 0;
  for (auto _ : state) {
    const Hyperion::ReadGuard guard = reader->pin();
    for (std::size_t b = 0; b < kLookupBurst; ++b) {
      found += guard.get(view(order[i]), out) == Status::Ok ? 1 : 0;
      benchmark::DoNotOptimize(out);
      if (++i == order.size()) i = 0;
    }
  }
  if (found != static_cast<std::size_t>(state.iterations()) * kLookupBurst) state.SkipWithError("wrong answer");
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kLookupBurst));
}

void pin_this_thread(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  (void)pthread_setaffinity_np(pthread_self(), sizeof set, &set);   // best effort
}

// This thread reads (bursts of kLookupBurst under one pin) while a writer thread on core 0 keeps
// overwriting random keys in place: the reader's cost of sharing with a live writer.
void BM_lookup_hit_concurrent(benchmark::State& state) {
  Hyperion& h = filled<HyperionPolicy>();
  auto reader = h.reader();
  if (!reader) {
    state.SkipWithError("no reader slot");
    return;
  }
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> writes{0};
  std::thread writer([&] {
    pin_this_thread(0);
    const std::vector<Key>& keys = workload().keys;
    std::mt19937_64 rng(9);
    Value v = make_value(3);
    std::uint64_t n = 0;
    while (!stop.load(std::memory_order_relaxed)) {   // relaxed: a flag; no data rides on it
      for (int j = 0; j < 64; ++j) {
        v[0] = static_cast<char>(n++);
        (void)h.put(view(keys[rng() % kKeys]), v);
      }
    }
    writes.store(n, std::memory_order_relaxed);   // relaxed: read after join()
  });
  const std::vector<Key>& order = workload().hit_order;
  Value out{};
  std::size_t i = 0;
  std::uint64_t retries = 0;
  for (auto _ : state) {
    const Hyperion::ReadGuard guard = reader->pin();
    for (std::size_t b = 0; b < kLookupBurst; ++b) {
      retries += guard.get(view(order[i]), out) == Status::Retry ? 1 : 0;
      benchmark::DoNotOptimize(out);
      if (++i == order.size()) i = 0;
    }
  }
  stop.store(true);
  writer.join();
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kLookupBurst));
  state.counters["retries"] = static_cast<double>(retries);
  state.counters["writer_puts"] = static_cast<double>(writes.load(std::memory_order_relaxed));
}

#define HG_KV_BENCHMARKS(name, policy)                                                                 \
  BENCHMARK_TEMPLATE(BM_insert, policy)->Name("kv/" name "/insert")->Unit(benchmark::kMillisecond);   \
  BENCHMARK_TEMPLATE(BM_lookup, policy, true)->Name("kv/" name "/lookup_hit");                         \
  BENCHMARK_TEMPLATE(BM_lookup, policy, false)->Name("kv/" name "/lookup_miss");                       \
  BENCHMARK_TEMPLATE(BM_update, policy)->Name("kv/" name "/update")

HG_KV_BENCHMARKS("hyperion", HyperionPolicy);
HG_KV_BENCHMARKS("std_unordered_map", StdMap);
HG_KV_BENCHMARKS("boost_unordered_flat_map", BoostMap);
#if defined(HG_HAVE_ABSL)
HG_KV_BENCHMARKS("absl_flat_hash_map", AbslMap);
#endif
BENCHMARK(BM_reader_lookup_hit)->Name("kv/hyperion_reader/lookup_hit");
BENCHMARK(BM_lookup_hit_concurrent)->Name("kv/hyperion/lookup_hit_concurrent");   // reader CPU time

}  // namespace

BENCHMARK_MAIN();
