#pragma once
// FieldNormaliser<F>: the field-normalisation hook. F is a user functor fixed at compile time (so the
// call inlines into the pipeline loop) with one of the signatures
//     bool operator()(Message& m, ScratchArena& arena) noexcept
//     bool operator()(Message& m) noexcept
// It rewrites the message in place (key, type, flags, user, a shorter payload view...) or builds
// new bytes in the per-worker arena and points the message at them. The arena's memory stays valid
// until the end of the current burst; arena.allocate() returns nullptr when it is exhausted, and the
// functor then returns false. false rejects the message with reason "normalise_failed".
// Remember that m.data points into the source's buffer: rewrite bytes in the arena, not in place.
#include <array>
#include <concepts>
#include <string_view>
#include <type_traits>
#include <utility>

#include "hypergate/core/message.hpp"
#include "hypergate/route/scratch_arena.hpp"
#include "hypergate/route/stage.hpp"

namespace hypergate::route {

template <class F>
concept NormaliseFunctor = std::is_nothrow_invocable_r_v<bool, F&, Message&, ScratchArena&> ||
                           std::is_nothrow_invocable_r_v<bool, F&, Message&>;

template <class F>
class FieldNormaliser {
  static_assert(NormaliseFunctor<F>,
                "FieldNormaliser<F>: F must be callable as bool(Message&, ScratchArena&) noexcept "
                "or bool(Message&) noexcept");

 public:
  static constexpr std::array<std::string_view, 1> kReasons{"normalise_failed"};

  FieldNormaliser() = default;
  explicit FieldNormaliser(F f) : f_(std::move(f)) {}

  [[nodiscard]] Verdict apply(Message& m, ScratchArena& arena) noexcept {
    bool ok;
    if constexpr (std::is_nothrow_invocable_r_v<bool, F&, Message&, ScratchArena&>) {
      ok = f_(m, arena);
    } else {
      ok = f_(m);
    }
    return ok ? Verdict::pass() : Verdict::reject(0);
  }

  [[nodiscard]] F& functor() noexcept { return f_; }

 private:
  F f_{};
};

}  // namespace hypergate::route
