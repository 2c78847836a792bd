#pragma once
// Pipeline<Decoder, Validators<V...>, Transforms<T...>, Router>: the hot path of a source, composed at
// compile time (engine + policies, the shape of Abseil's raw_hash_set) and run over a whole burst.
//
//   for each frame of the burst:
//     decoder.decode(frame) ──> for each message: V0.check .. Vn.check ──> T0.apply .. Tn.apply
//                                                  ──> router.route ──> Emitter (a burst at a time)
//
// Why this shape: every stage is a concrete type, so the compiler inlines the whole chain into one
// loop per burst; the only indirect call is PipelineBase::process(), once per burst. A config selects
// among pre-composed pipeline types by name (see registry.hpp), not among stages at run time.
//
// Guarantees:
//  - No allocation, lock or syscall per message or per burst (the scratch arena is allocated once).
//  - Nothing vanishes: every frame is decoded or rejected; every message is emitted, rejected (one
//    counter per reason per pipeline) or dropped by its router (counted). in/emitted/rejected/dropped
//    are counters of frames and messages: emitted + rejected + dropped == messages decoded, and
//    decoder rejects are counted per frame.
//  - Threading: exactly one thread (the owning worker) calls process(). counters() may be called from
//    any thread: the counters are relaxed atomics written only by the owning worker (a plain load +
//    store, no read-modify-write needed) and read with relaxed loads; each value is monotonic and no
//    other memory is published through them, so no ordering is required.
//  - Scratch memory handed out by the arena during a burst is released after the Emitter is flushed,
//    i.e. after downstream has copied what it keeps (route.hpp lifetime rule).
#include <algorithm>
#include <array>
#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "hypergate/core/burst.hpp"
#include "hypergate/core/clock.hpp"
#include "hypergate/metrics/stage_probe.hpp"
#include "hypergate/route/route.hpp"
#include "hypergate/route/scratch_arena.hpp"
#include "hypergate/route/stage.hpp"

namespace hypergate::route {

/// The validators of a pipeline, run in order; the first reject stops the chain for that message.
template <class... Vs>
struct Validators {
  static_assert((Validator<Vs> && ...),
                "every Validators<...> argument must model route::Validator: a static constexpr "
                "std::array<std::string_view, N> kReasons and Verdict check(const Message&) noexcept");
  Validators() = default;
  explicit Validators(Vs... vs)
    requires(sizeof...(Vs) > 0)
      : stages(std::move(vs)...) {}
  std::tuple<Vs...> stages;
};

/// The transforms of a pipeline, run in order after the validators.
template <class... Ts>
struct Transforms {
  static_assert((Transform<Ts> && ...),
                "every Transforms<...> argument must model route::Transform: a static constexpr "
                "std::array<std::string_view, N> kReasons and Verdict apply(Message&, ScratchArena&) noexcept");
  Transforms() = default;
  explicit Transforms(Ts... ts)
    requires(sizeof...(Ts) > 0)
      : stages(std::move(ts)...) {}
  std::tuple<Ts...> stages;
};

namespace detail {
template <class T>
struct IsValidators : std::false_type {};
template <class... Vs>
struct IsValidators<Validators<Vs...>> : std::true_type {};
template <class T>
struct IsTransforms : std::false_type {};
template <class... Ts>
struct IsTransforms<Transforms<Ts...>> : std::true_type {};

/// Single-writer counter bump: only the owning worker stores, so load + store is exact.
inline void bump(std::atomic<std::uint64_t>& counter, std::uint64_t n = 1) noexcept {
  // relaxed: single writer (the owning worker); readers only need a monotonic value (see header).
  counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}
}  // namespace detail

/// Readable errors for a wrongly composed pipeline (the constrained specialisation below did not match).
template <class D, class Vs, class Ts, class R>
class Pipeline {
  static_assert(Decoder<D>,
                "Pipeline's 1st argument must model route::Decoder: static constexpr kReasons and "
                "template <class Out> Verdict decode(const Message& frame, Out& out) noexcept");
  static_assert(detail::IsValidators<Vs>::value, "Pipeline's 2nd argument must be route::Validators<...>");
  static_assert(detail::IsTransforms<Ts>::value, "Pipeline's 3rd argument must be route::Transforms<...>");
  static_assert(Router<R>, "Pipeline's 4th argument must model route::Router: Route route(const Message&) noexcept");
};

template <Decoder D, Validator... Vs, Transform... Ts, Router R>
class Pipeline<D, Validators<Vs...>, Transforms<Ts...>, R> final : public PipelineBase {
  // Reject reasons are numbered: decoder's first, then each validator's, then each transform's.
  static constexpr std::array<std::size_t, sizeof...(Vs) + 1> validator_offsets() {
    std::array<std::size_t, sizeof...(Vs) + 1> out{};
    std::size_t counts[] = {kReasonCount<Vs>..., 0};
    out[0] = kReasonCount<D>;
    for (std::size_t i = 0; i < sizeof...(Vs); ++i) out[i + 1] = out[i] + counts[i];
    return out;
  }
  static constexpr auto kValidatorOffset = validator_offsets();
  static constexpr std::array<std::size_t, sizeof...(Ts) + 1> transform_offsets() {
    std::array<std::size_t, sizeof...(Ts) + 1> out{};
    std::size_t counts[] = {kReasonCount<Ts>..., 0};
    out[0] = kValidatorOffset[sizeof...(Vs)];
    for (std::size_t i = 0; i < sizeof...(Ts); ++i) out[i + 1] = out[i] + counts[i];
    return out;
  }
  static constexpr auto kTransformOffset = transform_offsets();

 public:
  static constexpr std::size_t kReasonTotal = kTransformOffset[sizeof...(Ts)];

  Pipeline(std::string name, D decoder, Validators<Vs...> validators, Transforms<Ts...> transforms, R router,
           std::size_t scratch_bytes = ScratchArena::kDefaultBytes)
      : name_(std::move(name)),
        decoder_(std::move(decoder)),
        validators_(std::move(validators.stages)),
        transforms_(std::move(transforms.stages)),
        router_(std::move(router)),
        arena_(scratch_bytes) {
    fill_reason_names();
  }
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  [[nodiscard]] std::string_view name() const noexcept override { return name_; }

  void process(Burst<>& in, Emitter& out) noexcept override {
    begin_burst();
    if (probe_ != nullptr && probe_->tracing()) [[unlikely]] {
      run_burst<true>(in, out);
    } else {
      run_burst<false>(in, out);
    }
  }

  [[nodiscard]] PipelineCounters counters() const override {
    PipelineCounters c;
    // relaxed loads: each counter is monotonic and publishes no other memory (see header).
    c.in = in_.load(std::memory_order_relaxed);
    c.emitted = emitted_.load(std::memory_order_relaxed);
    c.dropped = dropped_.load(std::memory_order_relaxed);
    for (std::size_t i = 0; i < kReasonTotal; ++i) {
      const std::uint64_t n = rejects_[i].load(std::memory_order_relaxed);
      c.rejected += n;
      auto it = std::find_if(c.rejects_by_reason.begin(), c.rejects_by_reason.end(),
                             [&](const auto& e) { return e.first == reason_names_[i]; });
      if (it == c.rejects_by_reason.end()) {
        c.rejects_by_reason.emplace_back(std::string(reason_names_[i]), n);
      } else {
        it->second += n;  // two stages may share a reason name; report it once
      }
    }
    report_stage(decoder_, c);
    std::apply([&](const auto&... s) { (report_stage(s, c), ...); }, validators_);
    std::apply([&](const auto&... s) { (report_stage(s, c), ...); }, transforms_);
    report_stage(router_, c);
    return c;
  }

  /// Count of rejects for one reason name (summed over stages sharing it). Any thread.
  [[nodiscard]] std::uint64_t rejects(std::string_view reason) const noexcept {
    std::uint64_t n = 0;
    for (std::size_t i = 0; i < kReasonTotal; ++i) {
      if (reason_names_[i] == reason) n += rejects_[i].load(std::memory_order_relaxed);  // relaxed: see header
    }
    return n;
  }
  /// Every reason this pipeline can reject for, in counter order.
  [[nodiscard]] std::span<const std::string_view> reasons() const noexcept { return reason_names_; }

  // Access to the stages (configuration, tests). Owning worker only while processing.
  [[nodiscard]] D& decoder() noexcept { return decoder_; }
  template <std::size_t I>
  [[nodiscard]] auto& validator() noexcept { return std::get<I>(validators_); }
  template <std::size_t I>
  [[nodiscard]] auto& transform() noexcept { return std::get<I>(transforms_); }
  [[nodiscard]] R& router() noexcept { return router_; }
  [[nodiscard]] const ScratchArena& arena() const noexcept { return arena_; }

 private:
  /// What the decoder emits into. Messages are built in the Emitter's own buffer (next()/push()),
  /// run through the stages there, and committed with their route; rejected or dropped messages
  /// leave the slot uncommitted for the next one. No copy of the message on the way.
  /// Traced = a sampled burst (metrics/stage_probe.hpp): each message's decode time (frame start or
  /// the previous message's commit -> push()) and pipeline time (push() -> routed) go to the probe.
  template <bool Traced>
  struct MessageOut {
    Pipeline* self;
    Emitter* out;
    std::uint64_t emitted = 0;
    std::uint64_t dropped = 0;
    std::uint64_t mark = 0;  // Traced: TSC at the start of the current message's decode

    Message& next() noexcept { return out->slot(); }
    void push() noexcept {
      Message& m = out->slot();
      std::uint64_t decoded = 0;
      if constexpr (Traced) {
        decoded = TscClock::ticks();
        self->probe_->add_ticks(metrics::Stage::Decode, mark, decoded);
      }
      const bool passed = self->run_validators(m) && self->run_transforms(m);
      const Route r = passed ? self->router_.route(m) : Route{};
      if constexpr (Traced) self->probe_->add_ticks(metrics::Stage::Pipeline, decoded, TscClock::ticks());
      if (!passed) {
        if constexpr (Traced) mark = TscClock::ticks();
        return;
      }
      if (r.action == Action::Drop) [[unlikely]] {
        ++dropped;
      } else {
        ++emitted;
        out->commit(r);  // may push a full batch downstream: timed as the `push` stage, not here
      }
      if constexpr (Traced) mark = TscClock::ticks();
    }
    void operator()(const Message& m) noexcept {
      out->slot() = m;
      push();
    }
  };

  template <bool Traced>
  void run_burst(Burst<>& in, Emitter& out) noexcept {
    MessageOut<Traced> sink{this, &out};
    for (const Message& frame : in) {
      if constexpr (Traced) sink.mark = TscClock::ticks();
      const Verdict v = decoder_.decode(frame, sink);
      if (!v.passed()) [[unlikely]] count_reject(checked_reason<D>(0, v));
    }
    out.flush();
    arena_.reset();
    detail::bump(in_, in.size());
    if (sink.emitted != 0) detail::bump(emitted_, sink.emitted);
    if (sink.dropped != 0) [[unlikely]] detail::bump(dropped_, sink.dropped);
  }

  void begin_burst() noexcept {
    call_begin(decoder_);
    std::apply([](auto&... s) { (call_begin(s), ...); }, validators_);
    std::apply([](auto&... s) { (call_begin(s), ...); }, transforms_);
    call_begin(router_);
  }
  template <class S>
  static void call_begin(S& s) noexcept {
    if constexpr (HasBeginBurst<S>) s.begin_burst();
  }
  template <class S>
  static void report_stage(const S& s, PipelineCounters& c) {
    if constexpr (HasReport<S>) s.report(c);
  }

  /// Global counter index of a stage's reject; a reason index past kReasons (a stage bug) is clamped
  /// to the stage's last reason rather than writing out of bounds.
  template <class S>
  static std::size_t checked_reason(std::size_t offset, Verdict v) noexcept {
    constexpr std::size_t n = kReasonCount<S>;
    if constexpr (n == 0) {
      assert(false && "a stage without kReasons rejected a message");
      return offset;  // unreachable for correct stages; the caller guards kReasonTotal below
    } else {
      assert(v.reason() < n && "Verdict::reject(i) needs i < kReasons.size()");
      return offset + std::min(v.reason(), n - 1);
    }
  }
  void count_reject(std::size_t index) noexcept {
    if (index < kReasonTotal) detail::bump(rejects_[index]);
  }

  template <std::size_t I = 0>
  bool run_validators(const Message& m) noexcept {
    if constexpr (I == sizeof...(Vs)) {
      return true;
    } else {
      using V = std::tuple_element_t<I, std::tuple<Vs...>>;
      const Verdict v = std::get<I>(validators_).check(m);
      if (!v.passed()) [[unlikely]] {
        count_reject(checked_reason<V>(kValidatorOffset[I], v));
        return false;
      }
      return run_validators<I + 1>(m);
    }
  }
  template <std::size_t I = 0>
  bool run_transforms(Message& m) noexcept {
    if constexpr (I == sizeof...(Ts)) {
      return true;
    } else {
      using T = std::tuple_element_t<I, std::tuple<Ts...>>;
      const Verdict v = std::get<I>(transforms_).apply(m, arena_);
      if (!v.passed()) [[unlikely]] {
        count_reject(checked_reason<T>(kTransformOffset[I], v));
        return false;
      }
      return run_transforms<I + 1>(m);
    }
  }

  void fill_reason_names() noexcept {
    std::size_t i = 0;
    for (std::string_view r : D::kReasons) reason_names_[i++] = r;
    std::apply([&](const auto&... s) { ((add_names(s, i)), ...); }, validators_);
    std::apply([&](const auto&... s) { ((add_names(s, i)), ...); }, transforms_);
  }
  template <class S>
  void add_names(const S&, std::size_t& i) noexcept {
    for (std::string_view r : S::kReasons) reason_names_[i++] = r;
  }

  std::string name_;
  D decoder_;
  std::tuple<Vs...> validators_;
  std::tuple<Ts...> transforms_;
  R router_;
  ScratchArena arena_;
  std::array<std::string_view, kReasonTotal> reason_names_{};
  // Written only by the owning worker, read by the stats thread (relaxed: see header).
  std::array<std::atomic<std::uint64_t>, kReasonTotal> rejects_{};
  std::atomic<std::uint64_t> in_{0};
  std::atomic<std::uint64_t> emitted_{0};
  std::atomic<std::uint64_t> dropped_{0};
};

/// Builds a pipeline on the heap (it holds atomics and is neither copyable nor movable).
template <Decoder D, class... Vs, class... Ts, Router R>
[[nodiscard]] std::unique_ptr<Pipeline<D, Validators<Vs...>, Transforms<Ts...>, R>> make_pipeline(
    std::string name, D decoder, Validators<Vs...> validators, Transforms<Ts...> transforms, R router,
    std::size_t scratch_bytes = ScratchArena::kDefaultBytes) {
  return std::make_unique<Pipeline<D, Validators<Vs...>, Transforms<Ts...>, R>>(
      std::move(name), std::move(decoder), std::move(validators), std::move(transforms), std::move(router),
      scratch_bytes);
}

}  // namespace hypergate::route
