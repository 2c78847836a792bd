// pipeline suite: decode + 3 validators + 1 transform + hash route over bursts of 32 messages.
//
//   pipeline/hypergate     Pipeline<PassthroughDecoder, Validators<SequenceCheck, LengthBounds,
//                          KeyFilter>, Transforms<FieldNormaliser<...>>, HashRouter>: one virtual call
//                          per burst, the stages inlined into one loop
//   pipeline/std_function  the same stage objects and the same logic, chained as std::function
//                          stages called per message (how a runtime-assembled chain is usually built)
// Both emit through the same Emitter into the same counting Downstream. items = messages, so
// ns per message = 1e9 / items_per_second.
// Run: scripts/bench.sh pipeline [--json FILE]
#include <benchmark/benchmark.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "hypergate/route/field_normaliser.hpp"
#include "hypergate/route/key_filter.hpp"
#include "hypergate/route/length_bounds.hpp"
#include "hypergate/route/passthrough_decoder.hpp"
#include "hypergate/route/pipeline.hpp"
#include "hypergate/route/sequence_check.hpp"
#include "routing/hash_router.hpp"

namespace {

using namespace hypergate;
using namespace hypergate::route;

/// The transform: message type from the side letter at the end ("... B" / "... S"), CR trimmed.
struct SideAsType {
  bool operator()(Message& m) noexcept {
    if (m.size > 0 && reinterpret_cast<const char*>(m.data)[m.size - 1] == '\r') --m.size;
    if (m.size == 0) return false;
    m.type = static_cast<unsigned char>(reinterpret_cast<const char*>(m.data)[m.size - 1]);
    return true;
  }
};

class CountingDownstream final : public Downstream {
 public:
  void deliver(std::span<const Message> messages, std::span<const Route> routes) noexcept override {
    count += messages.size();
    for (const Route& r : routes) lanes += r.lane;
  }
  std::uint64_t count = 0;
  std::uint64_t lanes = 0;
};

/// 1024 ticker-like keys with order-entry-like payloads: "SYM 101.25 300 B".
std::vector<std::string> make_payloads() {
  std::vector<std::string> out;
  std::uint64_t s = 88172645463325252ull;
  for (int i = 0; i < 1024; ++i) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    std::string key;
    for (std::uint64_t len = 2 + s % 4, x = s >> 8; len > 0; --len, x /= 26) key += static_cast<char>('A' + x % 26);
    out.push_back(key + " " + std::to_string(100 + s % 900) + "." + std::to_string(s % 100) + " " +
                  std::to_string(1 + (s >> 20) % 1000) + ((s >> 30) % 2 ? " B" : " S"));
  }
  return out;
}

auto make_stages() {
  return std::make_tuple(PassthroughDecoder(PassthroughDecoder::KeyMode::FirstWord), SequenceCheck<>(),
                         LengthBounds(8, 256), KeyFilter({}, {"ZZZZ", "TEST"}), FieldNormaliser<SideAsType>{},
                         strategies::HashRouter(32));
}

/// Bursts of 32 frames over the payloads; the caller renumbers sequences each round.
struct Feed {
  std::vector<std::string> payloads = make_payloads();
  std::vector<Burst<>> bursts;
  std::uint64_t seq = 1;
  Feed() {
    bursts.resize(payloads.size() / Burst<>::kCapacity);
    for (std::size_t b = 0; b < bursts.size(); ++b) {
      for (std::size_t i = 0; i < Burst<>::kCapacity; ++i) {
        const std::string& p = payloads[b * Burst<>::kCapacity + i];
        bursts[b].emplace_back().set_payload(p.data(), p.size());
      }
    }
  }
  Burst<>& next(std::size_t& b) noexcept {
    Burst<>& burst = bursts[b];
    b = b + 1 == bursts.size() ? 0 : b + 1;
    for (Message& m : burst) m.sequence = seq++;  // what a source does: number its messages
    return burst;
  }
};

void report(benchmark::State& state, const CountingDownstream& down) {
  const auto messages = static_cast<std::int64_t>(state.iterations() * Burst<>::kCapacity);
  state.SetItemsProcessed(messages);
  if (down.count != static_cast<std::uint64_t>(messages)) state.SkipWithError("messages lost");
}

void BM_hypergate(benchmark::State& state) {
  auto [decoder, sequence, length, keys, normalise, router] = make_stages();
  std::unique_ptr<PipelineBase> pipeline =
      make_pipeline("bench", decoder, Validators{std::move(sequence), length, std::move(keys)},
                    Transforms{normalise}, router);
  Feed feed;
  CountingDownstream down;
  Emitter out(down);
  std::size_t b = 0;
  for (auto _ : state) {
    pipeline->process(feed.next(b), out);
  }
  benchmark::DoNotOptimize(down.lanes);
  report(state, down);
}

/// Lets the baseline's decode stage write the decoded message into its caller's variable.
struct DecodeInto {
  Message* m;
  Message& next() noexcept { return *m; }
  void push() noexcept {}
  void operator()(const Message& decoded) noexcept { *m = decoded; }
};

/// The same logic as a chain of std::function stages, called per message.
class StdFunctionPipeline {
 public:
  using DecodeFn = std::function<bool(const Message&, Message&)>;
  using CheckFn = std::function<Verdict(const Message&)>;
  using TransformFn = std::function<Verdict(Message&, ScratchArena&)>;
  using RouteFn = std::function<Route(const Message&)>;

  StdFunctionPipeline(DecodeFn decode, std::vector<CheckFn> checks, std::vector<TransformFn> transforms, RouteFn route)
      : decode_(std::move(decode)),
        checks_(std::move(checks)),
        transforms_(std::move(transforms)),
        route_(std::move(route)),
        rejects_(checks_.size() + transforms_.size() + 1, std::vector<std::uint64_t>(4, 0)) {}

  void process(Burst<>& in, Emitter& out) {
    for (const Message& frame : in) {
      Message m;
      if (!decode_(frame, m)) {
        ++rejects_[0][0];
        continue;
      }
      bool ok = true;
      for (std::size_t i = 0; ok && i < checks_.size(); ++i) {
        const Verdict v = checks_[i](m);
        if (!v.passed()) ++rejects_[1 + i][v.reason()], ok = false;
      }
      for (std::size_t i = 0; ok && i < transforms_.size(); ++i) {
        const Verdict v = transforms_[i](m, arena_);
        if (!v.passed()) ++rejects_[1 + checks_.size() + i][v.reason()], ok = false;
      }
      if (!ok) continue;
      const Route r = route_(m);
      if (r.action != Action::Drop) out.emit(m, r);
    }
    out.flush();
    arena_.reset();
  }

 private:
  DecodeFn decode_;
  std::vector<CheckFn> checks_;
  std::vector<TransformFn> transforms_;
  RouteFn route_;
  ScratchArena arena_;
  std::vector<std::vector<std::uint64_t>> rejects_;
};

void BM_std_function(benchmark::State& state) {
  auto [decoder, sequence, length, keys, normalise, router] = make_stages();
  StdFunctionPipeline pipeline(
      [d = decoder](const Message& frame, Message& m) mutable {
        DecodeInto into{&m};
        return d.decode(frame, into).passed();
      },
      {[s = std::make_shared<SequenceCheck<>>(std::move(sequence))](const Message& m) { return s->check(m); },
       [length](const Message& m) { return length.check(m); },
       [k = std::make_shared<KeyFilter>(std::move(keys))](const Message& m) { return k->check(m); }},
      {[normalise](Message& m, ScratchArena& a) mutable { return normalise.apply(m, a); }},
      [router](const Message& m) { return router.route(m); });
  Feed feed;
  CountingDownstream down;
  Emitter out(down);
  std::size_t b = 0;
  for (auto _ : state) {
    pipeline.process(feed.next(b), out);
  }
  benchmark::DoNotOptimize(down.lanes);
  report(state, down);
}

BENCHMARK(BM_hypergate)->Name("pipeline/hypergate");
BENCHMARK(BM_std_function)->Name("pipeline/std_function");

}  // namespace

BENCHMARK_MAIN();
