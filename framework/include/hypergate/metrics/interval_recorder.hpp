#pragma once
// IntervalRecorder: one writer thread records latencies into an HdrHistogram while a reader thread
// periodically takes everything recorded since its previous take, without stopping the writer.
//
// CONTRACT
// - Exactly one writer thread calls record()/record_n()/record_batch()/record_corrected() (asserted
//   in debug builds). The writer never locks, never allocates, never waits: per call it does one
//   atomic fetch_add, the histogram record(s) and one release store. Prefer record_batch() per
//   burst on the hot path: the fetch_add is most of the cost of a single record().
// - Any number of reader threads may call swap()/take_interval(); they serialise on a reader-only
//   mutex the writer never touches. A reader waits (bounded spin, then yield) only for a record
//   that was already in progress when it flipped the phase: at most one record's duration unless
//   the writer thread is descheduled mid-record.
// - Every recorded sample appears in exactly one interval: none is lost or counted twice.
//
// WHY THIS SHAPE (HdrHistogram's Recorder + WriterReaderPhaser, with the phase choosing the slot)
// Two histograms, one per phase. The phase is the sign of start_epoch_: >= 0 is phase 0 (counting
// up from 0), < 0 is phase 1 (counting up from INT64_MIN). The writer enters with a fetch_add on
// start_epoch_ — the value it gets says both which slot to write and that it is inside — records,
// then bumps its phase's end epoch. The reader flips by exchanging start_epoch_ to the other
// phase's initial value; the value it replaced is the number of writer entries into the old phase,
// so when the old phase's end epoch reaches it, no writer is (or will again be) in the old slot,
// and the reader owns it. Because the writer derives the slot from the very RMW that the flip
// orders against, there is no separate "active pointer" to race with.
//
// IMPLEMENTATION DETAILS
//   epochs_ (own 128-byte block, written by the writer on every record):
//     start  : phase-0 entries counted from 0, or phase-1 entries counted from INT64_MIN
//     end[0] : phase-0 exits, from 0            end[1] : phase-1 exits, from INT64_MIN
//   slots_[0], slots_[1] : the two histograms, each in its own 128-byte-aligned block
//   reader_  : mutex and the current phase, reader-only
#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <mutex>
#include <span>
#include <thread>

#include "hypergate/core/cache.hpp"
#include "hypergate/metrics/hdr_histogram.hpp"

namespace hypergate::metrics {

class IntervalRecorder {
 public:
  /// The recorder's histograms take the prototype's layout (its counts are not copied).
  explicit IntervalRecorder(const HdrHistogram& prototype) : slots_{{prototype}, {prototype}} {
    slots_[0].hist.reset();
    slots_[1].hist.reset();
  }
  explicit IntervalRecorder(std::uint64_t lowest_discernible_value = 1,
                            std::uint64_t highest_trackable_value = HdrHistogram::kDefaultHighest,
                            int significant_digits = 3)
      : IntervalRecorder(HdrHistogram(lowest_discernible_value, highest_trackable_value, significant_digits)) {}

  IntervalRecorder(const IntervalRecorder&) = delete;
  IntervalRecorder& operator=(const IntervalRecorder&) = delete;

  // ------------------------------------------------------------------------------ writer thread
  void record(std::uint64_t value) noexcept {
    write([value](HdrHistogram& h) noexcept { h.record(value); });
  }
  void record_n(std::uint64_t value, std::uint64_t count) noexcept {
    write([value, count](HdrHistogram& h) noexcept { h.record_n(value, count); });
  }
  /// Records a burst of values under one phase entry: the phaser's atomic RMW (the dominant cost of
  /// record(), ~20 cycles) is paid once per burst instead of once per value. The whole burst lands
  /// in one interval.
  void record_batch(std::span<const std::uint64_t> values) noexcept {
    write([values](HdrHistogram& h) noexcept {
      for (const std::uint64_t v : values) h.record(v);
    });
  }
  /// Coordinated-omission correction (see HdrHistogram::record_corrected); the whole group of
  /// corrected samples lands in one interval (a reader flipping meanwhile waits for all of it).
  void record_corrected(std::uint64_t value, std::uint64_t expected_interval) noexcept {
    write([value, expected_interval](HdrHistogram& h) noexcept { h.record_corrected(value, expected_interval); });
  }

  // ------------------------------------------------------------------------------ reader threads
  /// Replaces `out` with everything recorded since the previous swap()/take_interval(); out's
  /// previous contents are discarded. O(1) swap of storage plus a reset of the returned buffer;
  /// allocates only if `out` does not have the recorder's layout (it is then copied into).
  void swap(HdrHistogram& out) {
    const std::lock_guard<std::mutex> lock(reader_.mutex);
    HdrHistogram& interval = slots_[flip_phase()].hist;
    // counts_len() also rules out a moved-from `out`, whose storage must never reach the writer.
    if (out.same_layout(interval) && out.counts_len() == interval.counts_len()) {
      using std::swap;
      swap(out, interval);
    } else {
      out = interval;
    }
    // Ready for when this slot's phase comes round again; published to the writer by the release
    // exchange of the next flip.
    interval.reset();
  }

  /// Everything recorded since the previous take, as a new histogram (allocates; cold path).
  [[nodiscard]] HdrHistogram take_interval() {
    const std::lock_guard<std::mutex> lock(reader_.mutex);
    HdrHistogram& interval = slots_[flip_phase()].hist;
    HdrHistogram out = interval;
    interval.reset();
    return out;
  }

 private:
  static constexpr std::int64_t kPhaseStart[2] = {0, std::numeric_limits<std::int64_t>::min()};
  static constexpr int kSpinsBeforeYield = 256;

  template <class Record>
  void write(Record&& record_into) noexcept {
#if defined(HG_DEBUG_CONTRACTS)
    const int writers_before = debug_writers_.fetch_add(1, std::memory_order_relaxed);  // debug check only
    assert(writers_before == 0 && "IntervalRecorder: exactly one writer thread");
    (void)writers_before;
#endif
    // acquire: pairs with the release exchange of start in flip_phase(): the reader's reset of this
    // phase's slot and of its end epoch (and its reads of the slot when it took it) happen-before
    // our writes below. Later writer RMWs continue the exchange's release sequence.
    const std::int64_t entered = epochs_.start.fetch_add(1, std::memory_order_acquire);
    const std::size_t phase = entered < 0 ? 1 : 0;
    record_into(slots_[phase].hist);
    // This thread is the only writer of end[phase] while the phase is open (the reader re-inits it
    // only while the phase is closed and drained), so a load + store replaces an RMW.
    // relaxed load: our own last store, or the reader's init that happens-before us (see above).
    std::atomic<std::int64_t>& end = epochs_.end[phase];
    const std::int64_t exits = end.load(std::memory_order_relaxed);
    // release: pairs with the acquire-load of end[old] in flip_phase(): our histogram writes
    // happen-before the reader takes the slot.
    end.store(exits + 1, std::memory_order_release);
#if defined(HG_DEBUG_CONTRACTS)
    debug_writers_.fetch_sub(1, std::memory_order_relaxed);  // debug check only
#endif
  }

  // Closes the current phase, waits until its writers have left, and returns its slot index; the
  // caller then owns that slot until the next flip. Caller holds reader_.mutex.
  std::size_t flip_phase() noexcept {
    const std::size_t old_phase = reader_.phase;
    const std::size_t next_phase = old_phase ^ 1U;
    // relaxed: no writer is inside next_phase (the flip that closed it waited for all of them), and
    // the store is published to the writer by the release exchange just below.
    epochs_.end[next_phase].store(kPhaseStart[next_phase], std::memory_order_relaxed);
    // release: pairs with the acquire fetch_add of start in write(): publishes the end epoch init
    // above and the reset of slots_[next_phase] done by the previous swap.
    const std::int64_t entries_at_flip = epochs_.start.exchange(kPhaseStart[next_phase], std::memory_order_release);
    // acquire: pairs with the release store of end[old_phase] in write(): once every entry has
    // exited, all records into the old slot are visible here.
    for (int spins = 0; epochs_.end[old_phase].load(std::memory_order_acquire) != entries_at_flip; ++spins) {
      if (spins < kSpinsBeforeYield) {
        cpu_relax();
      } else {
        std::this_thread::yield();  // the writer was descheduled mid-record
      }
    }
    reader_.phase = next_phase;
    return old_phase;
  }

  // Written by the writer on every record: own block so the reader-side state and the slots'
  // headers do not share its lines.
  struct alignas(kNoFalseSharing) Epochs {
    std::atomic<std::int64_t> start{0};
    std::atomic<std::int64_t> end[2] = {0, std::numeric_limits<std::int64_t>::min()};
  };
  static_assert(sizeof(Epochs) == kNoFalseSharing, "epochs fill exactly one no-false-sharing block");
  static_assert(std::atomic<std::int64_t>::is_always_lock_free, "the writer must never take a lock");

  // One histogram per phase; each in its own block because the writer updates one slot's header
  // (total, min, max) while the reader resets or swaps the other.
  struct alignas(kNoFalseSharing) Slot {
    HdrHistogram hist;
  };
  static_assert(alignof(Slot) == kNoFalseSharing && sizeof(Slot) % kNoFalseSharing == 0,
                "a slot starts and ends on a no-false-sharing boundary");

  // Reader-only state.
  struct alignas(kNoFalseSharing) ReaderState {
    std::mutex mutex;
    std::size_t phase = 0;  // the open phase; only changed by flip_phase() under mutex
  };
  static_assert(alignof(ReaderState) == kNoFalseSharing, "reader state stays off the writer's lines");

  Epochs epochs_;
  Slot slots_[2];
  ReaderState reader_;
#if defined(HG_DEBUG_CONTRACTS)
  std::atomic<int> debug_writers_{0};  // writers currently inside write(); must never exceed 1
#endif
};

}  // namespace hypergate::metrics
