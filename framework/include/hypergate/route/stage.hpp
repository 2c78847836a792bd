#pragma once
// The policy interfaces of a pipeline, stated as C++20 concepts so that a stage with the wrong shape
// fails to compile with the name of the missing piece, not a page of template backtrace.
//
//   Decoder    frame -> 0..n messages      Verdict decode(const Message& frame, Out& out) noexcept
//                                          per decoded message, either out(m) (copies m), or
//                                          Message& m = out.next(); ...fill m...; out.push();
//                                          (builds it in place in the output buffer: no copy)
//   Validator  message -> Pass | Reject    Verdict check(const Message& m) noexcept
//   Transform  rewrites a message          Verdict apply(Message& m, ScratchArena& arena) noexcept
//   Router     message -> destinations     Route route(const Message& m) noexcept
//
// Decoders, validators and transforms name every reason they can reject for, up front:
//   static constexpr std::array<std::string_view, N> kReasons{"too_short", "too_long"};
// and reject with Verdict::reject(i) for kReasons[i]. The pipeline turns these into one relaxed
// counter per reason, so a reject is never silent and costs one store.
//
// Optional hooks, detected at compile time and called once per burst (never per message):
//   void begin_burst() noexcept;                 e.g. read a clock or a health flag once per burst
//   void report(PipelineCounters& out) const;    add stage-specific figures to a counters snapshot
//                                                (called from the stats thread: read atomics only)
#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <tuple>
#include <type_traits>

#include "hypergate/core/message.hpp"
#include "hypergate/route/route.hpp"
#include "hypergate/route/scratch_arena.hpp"

namespace hypergate::route {

/// The outcome of a decoder, validator or transform: pass, or reject for reason kReasons[reason()].
struct Verdict {
  std::uint8_t code = 0;  ///< 0 = pass; k > 0 = reject for reason k - 1

  [[nodiscard]] static constexpr Verdict pass() noexcept { return {}; }
  [[nodiscard]] static constexpr Verdict reject(std::size_t reason) noexcept {
    return {static_cast<std::uint8_t>(reason + 1)};
  }
  [[nodiscard]] constexpr bool passed() const noexcept { return code == 0; }
  [[nodiscard]] constexpr std::size_t reason() const noexcept { return static_cast<std::size_t>(code) - 1; }
};

namespace detail {
/// Stands for the callable a pipeline hands to Decoder::decode (only its signature matters here).
struct DecodeOutArchetype {
  void operator()(Message& m) noexcept;
  Message& next() noexcept;
  void push() noexcept;
};
}  // namespace detail

/// A stage that lists its reject reasons as `static constexpr std::array<std::string_view, N> kReasons`.
template <class S>
concept StageWithReasons = requires {
  typename std::tuple_size<std::remove_cvref_t<decltype(S::kReasons)>>::type;
  { std::span<const std::string_view>(S::kReasons) };
} && (std::tuple_size_v<std::remove_cvref_t<decltype(S::kReasons)>> < 255);

/// Number of reject reasons a stage declares.
template <StageWithReasons S>
inline constexpr std::size_t kReasonCount = std::tuple_size_v<std::remove_cvref_t<decltype(S::kReasons)>>;

template <class D>
concept Decoder = StageWithReasons<D> && requires(D& d, const Message& frame, detail::DecodeOutArchetype& out) {
  { d.decode(frame, out) } noexcept -> std::same_as<Verdict>;
};

template <class V>
concept Validator = StageWithReasons<V> && requires(V& v, const Message& m) {
  { v.check(m) } noexcept -> std::same_as<Verdict>;
};

template <class T>
concept Transform = StageWithReasons<T> && requires(T& t, Message& m, ScratchArena& arena) {
  { t.apply(m, arena) } noexcept -> std::same_as<Verdict>;
};

template <class R>
concept Router = requires(R& r, const Message& m) {
  { r.route(m) } noexcept -> std::same_as<Route>;
};

template <class S>
concept HasBeginBurst = requires(S& s) {
  { s.begin_burst() } noexcept;
};
template <class S>
concept HasReport = requires(const S& s, PipelineCounters& out) { s.report(out); };

}  // namespace hypergate::route
