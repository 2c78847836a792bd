// `scripts/bench.sh replay`: market data at replay speed on one core. A generated ITCH 5.0 feed (MoldUDP64
// datagrams, 1M messages over 100 symbols, in memory) is run, whole, per iteration through:
//   replay/hypergate/decode_book_store   the "itch" pipeline: MoldUDP64 session + ITCH decode + order book +
//                                        top of book into Hyperion + normalized updates emitted (counted)
//   replay/hypergate/decode              MoldUDP64 + ITCH decode only (the floor under the pipeline)
//   replay/std_map_reference/decode_book the same decode feeding the simple std::map reference book
//   replay/hypergate/decode_book_store_stages/N   the pipeline with per-stage recording as the runtime
//                                        does it, sampled stages on 1 burst in N (cost of observability)
// items_per_second = ITCH messages. The anchor: itch-order-book ~16 M msgs/s (~61 ns/msg, book only).
#include <benchmark/benchmark.h>

#include "../unit/itch_reference_book.hpp"
#include <array>
#include <memory>

#include "hypergate/config/config.hpp"
#include "hypergate/core/clock.hpp"
#include "hypergate/metrics/interval_recorder.hpp"
#include "hypergate/metrics/stage_probe.hpp"
#include "itch_bench_support.hpp"
#include "market/itch_pipeline.hpp"
#include "protocols/itch_generator.hpp"

namespace {

namespace hg = hypergate;
namespace itch = hypergate::protocols::itch;
namespace mold = hypergate::protocols::mold;

struct Feed {
  itch::GeneratedFeed feed;
  std::vector<hg::Message> datagrams;
  std::uint64_t messages = 0;
};

const Feed& feed() {
  static const Feed f = [] {
    Feed out;
    itch::GeneratorOptions g;
    g.symbol_count = 100;
    g.message_count = 1'000'000;
    g.seed = 11;
    out.feed = std::move(itch::generate_feed(g).value());
    for (const auto& p : out.feed.packets) {
      hg::Message m;
      const auto b = out.feed.bytes(p);
      m.set_payload(b.data(), b.size());
      out.datagrams.push_back(m);
      out.messages += p.end_of_session ? 0 : p.count;
    }
    return out;
  }();
  return f;
}

using hypergate::bench::CountingDownstream;

// trace_every < 0: no probe attached (the plain pipeline). Otherwise a StageProbe driven as the runtime
// drives it: StageProbe::record_burst() around process(), flush() once per loop.
void run_pipeline(benchmark::State& state, int trace_every) {
  const Feed& f = feed();
  const auto opt = hypergate::bench::default_itch_options();
  CountingDownstream down;
  hg::route::Emitter out(down);
  std::array<std::unique_ptr<hg::metrics::IntervalRecorder>, hg::metrics::kStageCount> recorders;
  std::array<hg::metrics::IntervalRecorder*, hg::metrics::kStageCount> raw{};
  for (std::size_t s = 0; s < raw.size(); ++s) {
    recorders[s] = std::make_unique<hg::metrics::IntervalRecorder>(1, hg::metrics::kStageHighestNs, 3);
    raw[s] = recorders[s].get();
  }
  hg::metrics::StageProbe probe(raw, trace_every < 0 ? 0 : static_cast<std::uint32_t>(trace_every));
  for (auto _ : state) {
    state.PauseTiming();
    auto p = hypergate::market::ItchPipeline::create(opt).value();  // a fresh book and store per pass
    if (trace_every >= 0) p->attach_probe(&probe);
    state.ResumeTiming();
    hg::Burst<> in;
    for (std::size_t i = 0; i < f.datagrams.size();) {
      in.clear();
      while (!in.full() && i < f.datagrams.size()) (void)in.push_back(f.datagrams[i++]);
      if (trace_every >= 0) {
        probe.record_burst(in, hg::TscClock::ticks(), [&]() noexcept { p->process(in, out); });
        probe.flush();
      } else {
        p->process(in, out);
      }
    }
    benchmark::DoNotOptimize(p->stats().messages);
    state.PauseTiming();
    p.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * f.messages));
  state.counters["updates_per_msg"] = static_cast<double>(down.n) / static_cast<double>(state.iterations() * f.messages);
}
void BM_Pipeline(benchmark::State& state) { run_pipeline(state, -1); }
BENCHMARK(BM_Pipeline)->Name("replay/hypergate/decode_book_store")->Unit(benchmark::kMillisecond)->UseRealTime();
// The cost of per-stage recording: sampled stages on 1 burst in 64 (the default) and on every burst.
void BM_PipelineTraced(benchmark::State& state) { run_pipeline(state, static_cast<int>(state.range(0))); }
BENCHMARK(BM_PipelineTraced)->Name("replay/hypergate/decode_book_store_stages")->Arg(64)->Arg(1)
    ->Unit(benchmark::kMillisecond)->UseRealTime();

template <class Apply>
void walk(const Feed& f, Apply&& apply) {
  for (const hg::Message& d : f.datagrams) {
    mold::PacketView v;
    if (mold::PacketView::parse(d.payload(), v) != mold::PacketError::Ok) continue;
    for (const mold::MessageBlock b : v.messages()) apply(b.data);
  }
}

void BM_DecodeOnly(benchmark::State& state) {
  const Feed& f = feed();
  for (auto _ : state) {
    std::uint64_t sum = 0;
    walk(f, [&](hg::protocols::Bytes msg) {
      (void)itch::visit(msg, [&](const auto& v) { sum += v.timestamp(); });
    });
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * f.messages));
}
BENCHMARK(BM_DecodeOnly)->Name("replay/hypergate/decode")->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Reference(benchmark::State& state) {
  const Feed& f = feed();
  for (auto _ : state) {
    auto ref = std::make_unique<hg::test::ReferenceBook>();
    walk(f, [&](hg::protocols::Bytes msg) {
      if (itch::validate(msg) == itch::DecodeError::Ok) ref->apply(msg);
    });
    benchmark::DoNotOptimize(ref->orders());
    state.PauseTiming();  // destruction is not part of the work (as for the pipeline)
    ref.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * f.messages));
}
BENCHMARK(BM_Reference)->Name("replay/std_map_reference/decode_book")->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
