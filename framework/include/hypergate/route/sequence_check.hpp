#pragma once
// SequenceCheck: per-source sequence monotonicity with gap reporting.
//
// For each source (Message::source_id) it keeps the next expected sequence number:
//   sequence == expected   pass
//   sequence >  expected   pass, and record the gap [expected, sequence - 1] (count + recent ring)
//   sequence <  expected   reject "sequence_old" (duplicates and replays of old numbers)
//   sequence == 0          pass unchecked: 0 means "this message has no sequence number"
//   source_id >= MaxSources  reject "sequence_source_range" (the table is fixed-size; never silent)
// The first message of a source sets the expectation, unless `first_expected` is non-zero (e.g. 1
// for a MoldUDP64 session), in which case a first message above it is a gap like any other.
//
// Gaps are readable from any thread through report() (PipelineCounters::gaps, missing and
// recent_gaps, the last kRecentGaps gaps, oldest first) while the owning worker keeps checking.
//
// IMPLEMENTATION DETAILS
// Per-source state is a plain array (owning worker only). The gap ring is kRecentGaps slots, each a
// small seqlock: the worker makes the slot's version odd, writes the fields, makes it even again;
// a reader keeps a slot only if it saw the same even version before and after reading the fields.
// The fields are atomics written with release and read with acquire (no standalone fences, which
// ThreadSanitizer does not model), so the C++ memory model and TSan agree there is no data race.
// Gaps are rare, so the ordering costs nothing measurable (plain moves on x86).
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "hypergate/core/message.hpp"
#include "hypergate/route/route.hpp"
#include "hypergate/route/stage.hpp"

namespace hypergate::route {

template <std::size_t MaxSources = 64, std::size_t RecentGaps = 8>
class SequenceCheck {
  static_assert(MaxSources > 0 && MaxSources <= 65536, "source ids are 16-bit");
  static_assert(RecentGaps > 0, "keep at least the latest gap");

 public:
  static constexpr std::array<std::string_view, 2> kReasons{"sequence_old", "sequence_source_range"};
  enum Reason : std::size_t { kOld = 0, kSourceRange = 1 };
  static constexpr std::size_t kMaxSources = MaxSources;
  static constexpr std::size_t kRecentGaps = RecentGaps;

  /// `enabled = false` makes the check pass everything (for pipelines where it is a config option).
  explicit SequenceCheck(std::uint64_t first_expected = 0, bool enabled = true)
      : state_(std::make_unique<State>()), enabled_(enabled) {
    for (auto& s : state_->sources) s = Expect{first_expected, first_expected != 0};
  }

  [[nodiscard]] Verdict check(const Message& m) noexcept {
    if (m.sequence == 0 || !enabled_) return Verdict::pass();
    if (m.source_id >= MaxSources) [[unlikely]] return Verdict::reject(kSourceRange);
    Expect& e = state_->sources[m.source_id];
    if (m.sequence == e.next && e.started) [[likely]] {
      ++e.next;
      return Verdict::pass();
    }
    if (!e.started) {
      e = Expect{m.sequence + 1, true};
      return Verdict::pass();
    }
    if (m.sequence < e.next) return Verdict::reject(kOld);
    record_gap(m.source_id, e.next, m.sequence - 1);
    e.next = m.sequence + 1;
    return Verdict::pass();
  }

  /// The next sequence number expected from `source` (0 before its first message). Owning worker only.
  [[nodiscard]] std::uint64_t expected(std::uint16_t source) const noexcept {
    return source < MaxSources && state_->sources[source].started ? state_->sources[source].next : 0;
  }

  /// Adds gaps, missing and recent_gaps to a snapshot. Any thread.
  void report(PipelineCounters& out) const {
    const State& s = *state_;
    // acquire: pairs with the release-store of `gaps` in record_gap(): slots up to n are written.
    const std::uint64_t n = s.gaps.load(std::memory_order_acquire);
    out.gaps += n;
    out.missing += s.missing.load(std::memory_order_relaxed);  // relaxed: monotonic statistic
    for (std::uint64_t ordinal = n > RecentGaps ? n - RecentGaps : 0; ordinal < n; ++ordinal) {
      const Slot& slot = s.ring[ordinal % RecentGaps];
      // acquire: pairs with the release-store of the even version in record_gap().
      const std::uint64_t v1 = slot.version.load(std::memory_order_acquire);
      // acquire: pairs with the release-stores of the fields in record_gap(). Reading any field value
      // of a newer write makes that write's odd version visible to the re-check below, and keeps the
      // re-check from being reordered before these loads.
      const std::uint64_t ord = slot.ordinal.load(std::memory_order_acquire);
      SequenceGap g{static_cast<std::uint16_t>(slot.source.load(std::memory_order_acquire)),
                    slot.first.load(std::memory_order_acquire), slot.last.load(std::memory_order_acquire)};
      const std::uint64_t v2 = slot.version.load(std::memory_order_relaxed);  // ordered by the acquires above
      if (v1 == v2 && (v1 & 1) == 0 && ord == ordinal) out.recent_gaps.push_back(g);
      // else: the worker is overwriting this slot with a newer gap right now; the newer one wins.
    }
  }

 private:
  struct Expect {
    std::uint64_t next = 0;
    bool started = false;
  };
  struct Slot {
    std::atomic<std::uint64_t> version{0};  ///< odd while the worker writes the slot
    std::atomic<std::uint64_t> ordinal{0};  ///< which gap (0, 1, 2...) the slot holds
    std::atomic<std::uint64_t> source{0};
    std::atomic<std::uint64_t> first{0};
    std::atomic<std::uint64_t> last{0};
  };
  struct State {
    std::array<Expect, MaxSources> sources{};
    std::array<Slot, RecentGaps> ring{};
    std::atomic<std::uint64_t> gaps{0};
    std::atomic<std::uint64_t> missing{0};
  };

  // Out of line and cold: keeps check() small enough to inline into the pipeline loop.
  [[gnu::noinline, gnu::cold]] void record_gap(std::uint16_t source, std::uint64_t first, std::uint64_t last) noexcept {
    State& s = *state_;
    const std::uint64_t ordinal = s.gaps.load(std::memory_order_relaxed);  // relaxed: only this thread writes it
    Slot& slot = s.ring[ordinal % RecentGaps];
    const std::uint64_t v = slot.version.load(std::memory_order_relaxed);  // relaxed: only this thread writes it
    slot.version.store(v + 1, std::memory_order_relaxed);  // ordered before the field stores by their release
    // release: pairs with the acquire-loads of the fields in report(); a reader that sees any of these
    // values also sees the odd version stored above.
    slot.ordinal.store(ordinal, std::memory_order_release);
    slot.source.store(source, std::memory_order_release);
    slot.first.store(first, std::memory_order_release);
    slot.last.store(last, std::memory_order_release);
    // release: pairs with the acquire-load of `version` in report().
    slot.version.store(v + 2, std::memory_order_release);
    // relaxed: a monotonic statistic, published together with `gaps` below.
    s.missing.store(s.missing.load(std::memory_order_relaxed) + (last - first + 1), std::memory_order_relaxed);
    // release: pairs with the acquire-load of `gaps` in report().
    s.gaps.store(ordinal + 1, std::memory_order_release);
  }

  std::unique_ptr<State> state_;  // on the heap so that the validator stays movable into a Pipeline
  bool enabled_ = true;
};
static_assert(Validator<SequenceCheck<>>);

}  // namespace hypergate::route
