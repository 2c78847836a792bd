#pragma once
// ValveEngine<SlotBytes>: carries routed messages across cores, lane by lane, with explicit backpressure.
//
// Shape (and why):
//  - `lanes` lanes (32 by default). A message's lane is route.lane & (lanes - 1), which hash routing sets
//    to key_hash & (lanes - 1): every message of a key takes the same lane, so per-key order holds.
//  - One boost::lockfree::spsc_queue per (producer, lane): a producer never contends with another
//    producer, a lane's consumer never contends with another consumer, and no ring needs a CAS.
//  - Lane l is drained by consumer l % consumers, and by nothing else.
//  - Messages are copied into fixed-size slots (see slot.hpp) because the pipeline's buffers die when
//    process() returns. The producer constructs slots in place in ring memory through one batch push
//    per (burst, lane), so the ring index is published once per batch, not once per message.
//  - The consumer pops up to `burst` slots per ring with one batch pop (one index publication) into a
//    per-lane scratch array, and hands Message views into that scratch to its sinks. Copying out (only
//    the used bytes) frees ring room at once and lets a sink accept part of a burst: the rest stays in
//    the scratch, and the lane is not drained further until every sink took its share. That is the
//    backpressure path: a slow sink fills the lane, and the lane's COLLISION policy decides.
//    (boost's spsc_queue exposes only front() for in-place reads, which means one index publication per
//    message: valves_bench's raw_spsc/throughput_per_item runs about 3x slower than the batch pop.)
//
// Guarantees:
//  - push() answers Processed (queued in the ring), Collision (the ring was full and the lane group's
//    policy applied — the message may still be delivered: spin succeeded or it waits in the conflation
//    table) or Rejected (payload + key larger than the slot: counted `oversize`, never truncated).
//  - Per (producer, key): messages are delivered in push order, without duplicates; the delivered
//    sequence is the pushed one minus dropped and conflated messages. Conflation never delivers an older
//    message of a key after a newer one (see ConflationTable and push_group()). There is no order between
//    different producers, even for one key.
//  - Conflate: while a ring is full, its producer keeps the newest message per key in a side table of
//    conflation_capacity keys; while the table holds anything, every push of that ring goes through it,
//    and pump() (or the next push) moves entries into the ring, oldest key first, as room appears. So the
//    newest message of every key is delivered unless the table was full of other keys (then the new key
//    is dropped, counted). The producer must call pump() regularly (the runtime does every loop).
//  - Counters per lane: in == out + dropped + conflated + in_flight at every instant. `in` counts every
//    message offered to the lane; `dropped` everything that will never be delivered except conflated
//    messages (collision drops, oversize, drops while disconnected); `out` what every sink of the
//    message has accepted; in_flight what sits in rings, conflation tables and consumer scratch.
//    counters() computes in_flight from one snapshot that is never negative (read order below).
//  - Disconnect: the first collision of a disconnect group marks the whole group disconnected (counted in
//    `disconnects`); every later push to it is dropped (counted) until reconnect(). What was already
//    queued is still delivered. The runtime reports the flag; a sink or the operator may read
//    disconnected(lane) and call reconnect(lane) once the subscriber is healthy again.
//  - No allocation, lock or syscall after create(); Spin waits with cpu_relax() and a TSC deadline.
//
// Threading contract: producer p's calls (push*, pump) come from exactly one thread; consumer c's calls
// (drain*, consumer_idle) from exactly one thread; counters(), disconnected(), reconnect() from any.
// Every counter has exactly one writer (relaxed load + store, no RMW on the hot path).
#include <algorithm>
#include <atomic>
#include <bit>
#include <boost/lockfree/spsc_queue.hpp>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include "hypergate/core/burst.hpp"
#include "hypergate/core/cache.hpp"
#include "hypergate/core/clock.hpp"
#include "hypergate/core/message.hpp"
#include "hypergate/core/status.hpp"
#include "hypergate/route/route.hpp"
#include "hypergate/valve/conflation_table.hpp"
#include "hypergate/valve/options.hpp"
#include "hypergate/valve/slot.hpp"

namespace hypergate::valve {

/// The answer to one push (PROTOCOLS.md: X-Hyper-Status PROCESSED / COLLISION).
enum class Verdict : std::uint8_t { Processed, Collision, Rejected };

[[nodiscard]] constexpr std::string_view to_string(Verdict v) noexcept {
  return v == Verdict::Processed ? "PROCESSED" : v == Verdict::Collision ? "COLLISION" : "REJECTED";
}

/// Verdict counts of one push_burst() call (Route::Action::Drop messages are counted in `skipped`).
struct BurstOutcome {
  std::uint32_t processed = 0;
  std::uint32_t collisions = 0;
  std::uint32_t rejected = 0;
  std::uint32_t skipped = 0;
};

/// A snapshot of one lane (summed over its producers' rings).
struct LaneCounters {
  std::uint64_t in = 0;
  std::uint64_t out = 0;
  std::uint64_t dropped = 0;       ///< includes oversize and disconnected_drops
  std::uint64_t conflated = 0;
  std::uint64_t in_flight = 0;     ///< in - out - dropped - conflated
  std::uint64_t collisions = 0;    ///< messages that met a full ring (whatever happened next)
  std::uint64_t oversize = 0;
  std::uint64_t disconnected_drops = 0;
  std::uint64_t max_depth = 0;     ///< deepest ring occupancy seen by a producer after a push
  bool disconnected = false;
  CollisionPolicy policy = CollisionPolicy::Drop;
};

/// What a consumer provides to drain(): its sinks and a hook for the drained slots (latency, stats).
/// send() returns how many messages of the burst the sink accepted (a prefix); drained() is called once
/// per batch after every sink took the batch, before the slots are reused.
template <class C, class SlotT>
concept ValveConsumer = requires(C& c, unsigned sink, const Burst<>& burst, const SlotT* slots, std::size_t n) {
  { c.send(sink, burst) } noexcept -> std::convertible_to<std::size_t>;
  { c.drained(slots, n) } noexcept;
};

/// Work a producer may do while it spins on a full ring (Spin policy). The runtime passes one that drains
/// the spinning worker's own lanes: when every worker both produces and consumes, two workers spinning on
/// each other's full lanes would otherwise both wait out their whole budget.
struct NoSpinWork {
  void operator()() const noexcept {}
};

template <std::size_t SlotBytes = kDefaultSlotBytes>
class ValveEngine {
  static_assert(SlotBytes % kCacheLine == 0 && SlotBytes >= 2 * kCacheLine, "see Slot<Bytes>");
  static_assert(kDefaultBurst <= 32, "burst index lists are 8-bit and the sink cursor table is sized for 32");

 public:
  using SlotType = Slot<SlotBytes>;
  using Ring = boost::lockfree::spsc_queue<SlotType>;  // capacity given at run time (allocated once)
  static constexpr std::size_t kMaxBurst = kDefaultBurst;
  static constexpr unsigned kMaxSinks = 64;  // Route::sinks is a 64-bit mask

  [[nodiscard]] static Result<std::unique_ptr<ValveEngine>> create(const Options& options) {
    if (auto ok = validate(options); !ok) return ok.error();
    return std::unique_ptr<ValveEngine>(new ValveEngine(options));
  }

  ValveEngine(const ValveEngine&) = delete;
  ValveEngine& operator=(const ValveEngine&) = delete;

  [[nodiscard]] std::uint32_t lanes() const noexcept { return lane_mask_ + 1; }
  [[nodiscard]] std::uint32_t producers() const noexcept { return producers_; }
  [[nodiscard]] std::uint32_t consumers() const noexcept { return consumers_; }
  [[nodiscard]] std::uint32_t lane_of(std::uint64_t key_hash) const noexcept {
    return static_cast<std::uint32_t>(key_hash) & lane_mask_;
  }
  [[nodiscard]] std::uint32_t consumer_of(std::uint32_t lane) const noexcept { return lane % consumers_; }
  [[nodiscard]] const Options& options() const noexcept { return options_; }

  // ---------------------------------------------------------------------------------------------
  // Producer side (one thread per producer index)
  // ---------------------------------------------------------------------------------------------

  /// Pushes one message onto lane key_hash & (lanes - 1) for the sinks in `sinks`.
  Verdict push(std::uint32_t producer, const Message& m, std::uint64_t sinks = route::kAllSinks) noexcept {
    route::Route r;
    r.sinks = sinks;
    r.lane = static_cast<std::uint16_t>(lane_of(m.key_hash));
    r.action = route::Action::Deliver;
    return push(producer, m, r);
  }

  /// Pushes one message onto route.lane & (lanes - 1) (whatever route.action says: the caller chose to
  /// deliver it).
  Verdict push(std::uint32_t producer, const Message& m, const route::Route& r) noexcept {
    return push(producer, m, r, TscClock::ticks(), NoSpinWork{});
  }
  /// The same with the push time given (`now_tsc`, a TscClock tick the caller read anyway: it becomes the
  /// slot's push time) and the Spin policy's `while_spinning`. For a caller that needs each message's
  /// verdict: no burst grouping, no clock read.
  template <class SpinWork>
  Verdict push(std::uint32_t producer, const Message& m, const route::Route& r, std::uint64_t now_tsc,
               SpinWork&& while_spinning) noexcept {
    std::uint8_t idx = 0;
    Tally t;
    push_group(producer, r.lane & lane_mask_, &m, &r, &idx, 1, now_tsc, t, while_spinning, !SlotType::fits(m));
    return t.rejected ? Verdict::Rejected : t.collisions ? Verdict::Collision : Verdict::Processed;
  }

  /// Pushes a routed burst: messages are grouped by lane (order within a lane kept) and each group goes
  /// into its ring with one batch push. Messages with Action::Drop are skipped.
  /// `while_spinning` is called between retries of the Spin policy (see NoSpinWork).
  template <class SpinWork = NoSpinWork>
  BurstOutcome push_burst(std::uint32_t producer, std::span<const Message> msgs, std::span<const route::Route> routes,
                          SpinWork&& while_spinning = SpinWork{}) noexcept {
    BurstOutcome out;
    const std::size_t total = std::min(msgs.size(), routes.size());
    const std::uint64_t now = TscClock::ticks();
    for (std::size_t base = 0; base < total; base += kMaxBurst) {
      const std::size_t n = std::min(kMaxBurst, total - base);
      const Message* m = msgs.data() + base;
      const route::Route* r = routes.data() + base;
      // One pass notes each delivered message's lane and whether any is too large for a slot.
      std::uint32_t lane[kMaxBurst];
      std::uint32_t todo = 0;  // bit i: message i still to place
      bool oversize = false;
      for (std::size_t i = 0; i < n; ++i) {
        if (r[i].action == route::Action::Deliver) {
          lane[i] = r[i].lane & lane_mask_;
          oversize |= !SlotType::fits(m[i]);
          todo |= 1u << i;
        } else {
          ++out.skipped;
        }
      }
      std::uint8_t idx[kMaxBurst];
      Tally t;
      // Group by lane with a stable selection pass: O(n * distinct lanes), n <= 32, no lane-sized table.
      while (todo != 0) {
        const std::uint32_t first = static_cast<std::uint32_t>(std::countr_zero(todo));
        const std::uint32_t l = lane[first];
        std::uint32_t k = 0;
        for (std::uint32_t bits = todo; bits != 0; bits &= bits - 1) {
          const std::uint32_t i = static_cast<std::uint32_t>(std::countr_zero(bits));
          if (lane[i] == l) {
            idx[k++] = static_cast<std::uint8_t>(i);
            todo &= ~(1u << i);
          }
        }
        push_group(producer, l, m, r, idx, k, now, t, while_spinning, oversize);
      }
      out.processed += t.processed;
      out.collisions += t.collisions;
      out.rejected += t.rejected;
    }
    return out;
  }

  /// Moves the producer's conflation-table entries into their rings where there is room. The runtime
  /// calls it once per loop so that conflated messages flow even when no new message arrives.
  /// Returns true when none of this producer's tables holds anything.
  bool pump(std::uint32_t producer) noexcept {
    if (pending_tables_[producer].value == 0) return true;
    std::uint32_t left = 0;
    for (std::uint32_t l = 0; l <= lane_mask_; ++l) {
      RingState& rs = ring(producer, l);
      if (rs.table && !rs.table->empty()) {
        pump_table(rs);
        left += rs.table->empty() ? 0 : 1;
      }
    }
    pending_tables_[producer].value = left;
    return left == 0;
  }

  // ---------------------------------------------------------------------------------------------
  // Consumer side (one thread per consumer index)
  // ---------------------------------------------------------------------------------------------

  /// Drains every lane of `consumer` once (up to `burst` messages per ring). Returns the messages that
  /// left the lanes (accepted by all their sinks).
  template <class C>
    requires ValveConsumer<C, SlotType>
  std::size_t drain(std::uint32_t consumer, C& c) noexcept {
    std::size_t done = 0;
    for (std::uint32_t l = consumer; l <= lane_mask_; l += consumers_) done += drain_lane(l, c);
    return done;
  }

  /// Drains one lane once; precondition: called by consumer_of(lane).
  template <class C>
    requires ValveConsumer<C, SlotType>
  std::size_t drain_lane(std::uint32_t lane, C& c) noexcept {
    LaneState& ls = *lane_state_[lane];
    std::size_t done = 0;
    if (ls.pending != 0) {
      const std::uint32_t n = ls.pending;
      if (!send_pending(ls, c)) return 0;  // a sink still has not taken its share: keep the lane blocked
      done += n;
    }
    // Up to drain_rounds_ rounds; each takes one burst from every producer's ring, starting after the
    // producer served first last time (fairness), and the drain ends early once a round finds nothing.
    for (std::uint32_t round = 0; round < drain_rounds_; ++round) {
      std::size_t round_done = 0;
      for (std::uint32_t k = 0; k < producers_; ++k) {
        std::uint32_t p = ls.next_producer + k;
        if (p >= producers_) p -= producers_;
        // Copies the used bytes of up to `burst` slots out and publishes the read index once.
        const std::size_t n = ring(p, lane).ring.pop(ls.scratch.get(), burst_);
        if (n == 0) continue;
        ls.pending = static_cast<std::uint32_t>(n);
        std::uint64_t sinks = 0;
        std::uint64_t common = ~0ull;
        for (std::size_t i = 0; i < n; ++i) {
          sinks |= ls.scratch[i].h.sinks;
          common &= ls.scratch[i].h.sinks;
        }
        ls.todo_sinks = sinks & sink_mask_;  // bits of sinks that do not exist (kAllSinks) are not sends
        ls.uniform = sinks == common;        // every slot goes to every sink of the batch
        ls.burst_full = false;
        for (std::uint64_t b = sinks; b != 0; b &= b - 1) ls.cursor[std::countr_zero(b)] = 0;
        if (!send_pending(ls, c)) {
          ls.next_producer = p;  // resume fairness from here once the batch is through
          return done;
        }
        done += n;
        round_done += n;
      }
      ls.next_producer = ls.next_producer + 1 >= producers_ ? 0 : ls.next_producer + 1;
      if (round_done == 0) break;
    }
    return done;
  }

  /// True when no lane of `consumer` holds anything in a ring or in its scratch (consumer thread only;
  /// messages still in producers' conflation tables are not visible here — see producer_idle()).
  [[nodiscard]] bool consumer_idle(std::uint32_t consumer) const noexcept {
    for (std::uint32_t l = consumer; l <= lane_mask_; l += consumers_) {
      if (lane_state_[l]->pending != 0) return false;
      for (std::uint32_t p = 0; p < producers_; ++p)
        if (ring(p, l).ring.read_available() != 0) return false;
    }
    return true;
  }

  /// True when none of the producer's conflation tables holds a message (producer thread only).
  [[nodiscard]] bool producer_idle(std::uint32_t producer) const noexcept {
    return pending_tables_[producer].value == 0;
  }

  // ---------------------------------------------------------------------------------------------
  // Any thread
  // ---------------------------------------------------------------------------------------------

  /// Snapshot of one lane. Read order makes in_flight >= 0: `out` first (acquire: pairs with the release
  /// store in send_pending(), which follows the pop that acquired the producer's push), then the
  /// producer's drop/conflate counters (acquire: pairs with their release stores, which the producer makes
  /// after storing `in`), then `in`. So every counted outcome is already included in the `in` we read.
  [[nodiscard]] LaneCounters counters(std::uint32_t lane) const noexcept {
    LaneCounters c;
    lane &= lane_mask_;
    c.out = lane_state_[lane]->out.load(std::memory_order_acquire);
    for (std::uint32_t p = 0; p < producers_; ++p) {
      const ProducerCounters& pc = ring(p, lane).c;
      c.dropped += pc.dropped.load(std::memory_order_acquire);
      c.conflated += pc.conflated.load(std::memory_order_acquire);
      c.oversize += pc.oversize.load(std::memory_order_relaxed);  // relaxed: statistics, part of `dropped`
      c.disconnected_drops += pc.disconnected_drops.load(std::memory_order_relaxed);  // relaxed: same
      c.collisions += pc.collisions.load(std::memory_order_relaxed);                  // relaxed: same
      c.max_depth = std::max(c.max_depth, pc.max_depth.load(std::memory_order_relaxed));
    }
    for (std::uint32_t p = 0; p < producers_; ++p) c.in += ring(p, lane).c.in.load(std::memory_order_acquire);
    c.in_flight = c.in - c.out - c.dropped - c.conflated;
    const Group& g = groups_[lane_group_[lane]];
    c.disconnected = g.disconnected.load(std::memory_order_relaxed);  // relaxed: a status flag, no data
    c.policy = g.policy;
    return c;
  }

  /// Sum over all lanes (each lane read as in counters(); lanes are not read at one instant).
  [[nodiscard]] LaneCounters totals() const noexcept {
    LaneCounters t;
    for (std::uint32_t l = 0; l <= lane_mask_; ++l) {
      const LaneCounters c = counters(l);
      t.in += c.in;
      t.out += c.out;
      t.dropped += c.dropped;
      t.conflated += c.conflated;
      t.in_flight += c.in_flight;
      t.collisions += c.collisions;
      t.oversize += c.oversize;
      t.disconnected_drops += c.disconnected_drops;
      t.max_depth = std::max(t.max_depth, c.max_depth);
      t.disconnected = t.disconnected || c.disconnected;
    }
    return t;
  }

  [[nodiscard]] bool disconnected(std::uint32_t lane) const noexcept {
    // relaxed: the flag gates drops only; no data is published through it.
    return groups_[lane_group_[lane & lane_mask_]].disconnected.load(std::memory_order_relaxed);
  }
  /// Times the lane's group went from connected to disconnected.
  [[nodiscard]] std::uint64_t disconnects(std::uint32_t lane) const noexcept {
    return groups_[lane_group_[lane & lane_mask_]].disconnects.load(std::memory_order_relaxed);
  }
  /// Lets a disconnected lane group accept messages again.
  void reconnect(std::uint32_t lane) noexcept {
    groups_[lane_group_[lane & lane_mask_]].disconnected.store(false, std::memory_order_relaxed);
  }
  [[nodiscard]] CollisionPolicy policy(std::uint32_t lane) const noexcept {
    return groups_[lane_group_[lane & lane_mask_]].policy;
  }

 private:
  struct Tally {
    std::uint32_t processed = 0;
    std::uint32_t collisions = 0;
    std::uint32_t rejected = 0;
  };

  // Written only by the ring's producer (relaxed load + store: a single writer needs no RMW); read by
  // counters() on any thread with the orders documented there.
  struct ProducerCounters {
    std::atomic<std::uint64_t> in{0};
    std::atomic<std::uint64_t> dropped{0};
    std::atomic<std::uint64_t> conflated{0};
    std::atomic<std::uint64_t> oversize{0};
    std::atomic<std::uint64_t> disconnected_drops{0};
    std::atomic<std::uint64_t> collisions{0};
    std::atomic<std::uint64_t> max_depth{0};
  };

  // One (producer, lane) ring. The producer's counters and table come first; the queue starts on its own
  // line pair so that its consumer-written read index (which boost pads away from the write index)
  // never shares a line with the producer's counters.
  struct alignas(kNoFalseSharing) RingState {
    explicit RingState(std::uint32_t capacity) : ring(capacity) {}
    ProducerCounters c;
    std::unique_ptr<ConflationTable<SlotType>> table;  // Conflate lanes only; producer-owned
    alignas(kNoFalseSharing) Ring ring;
  };
  static_assert(alignof(RingState) == kNoFalseSharing);

  // One lane's consumer-side state, on its own lines: written only by the lane's consumer.
  struct alignas(kNoFalseSharing) LaneState {
    std::atomic<std::uint64_t> out{0};  // written by the consumer only (release store, see counters())
    std::uint32_t pending = 0;          // slots of scratch not yet taken by every sink
    std::uint32_t next_producer = 0;    // round-robin start among this lane's rings
    std::uint64_t todo_sinks = 0;       // sinks that still have to take the pending batch
    bool uniform = false;               // every pending slot has the same sink mask
    bool burst_full = false;            // `burst` holds the views of all pending slots, in order
    std::uint8_t cursor[kMaxSinks] = {};  // per sink: first scratch index it has not accepted yet
    std::unique_ptr<SlotType[]> scratch;  // up to kMaxBurst slots popped from one ring
    Burst<> burst;                        // the Message views handed to one sink (reused, never zeroed)
  };
  static_assert(alignof(LaneState) == kNoFalseSharing);

  struct Group {
    CollisionPolicy policy = CollisionPolicy::Drop;
    std::uint64_t spin_ticks = 0;
    std::atomic<bool> disconnected{false};      // any producer sets it, reconnect() clears it
    std::atomic<std::uint64_t> disconnects{0};  // RMW: several producers may disconnect the group
  };

  // Per producer: how many of its tables are non-empty (producer-only, plain integer), padded apart.
  struct alignas(kCacheLine) PendingTables {
    std::uint32_t value = 0;
  };
  static_assert(sizeof(PendingTables) == kCacheLine, "one line per producer: no false sharing");

  explicit ValveEngine(const Options& o)
      : options_(o),
        lane_mask_(o.lanes - 1),
        producers_(o.producers),
        consumers_(o.consumers),
        burst_(o.burst),
        drain_rounds_(o.drain_rounds),
        sink_mask_(o.sinks >= 64 ? ~0ull : (1ull << o.sinks) - 1),
        ring_capacity_(o.ring_capacity),
        lane_group_(o.lanes, 0),
        groups_(o.groups.size() + 1),
        pending_tables_(o.producers) {
    const TscClock& clock = TscClock::instance();
    groups_[0].policy = o.policy;  // group 0: every lane outside the configured groups
    groups_[0].spin_ticks = clock.from_ns(o.spin_ns);
    for (std::size_t g = 0; g < o.groups.size(); ++g) {
      groups_[g + 1].policy = o.groups[g].policy;
      groups_[g + 1].spin_ticks = clock.from_ns(o.groups[g].spin_ns);
      for (std::uint32_t l = o.groups[g].first_lane; l < o.groups[g].first_lane + o.groups[g].lane_count; ++l)
        lane_group_[l] = static_cast<std::uint32_t>(g + 1);
    }
    rings_.reserve(static_cast<std::size_t>(producers_) * o.lanes);
    for (std::uint32_t p = 0; p < producers_; ++p) {
      for (std::uint32_t l = 0; l < o.lanes; ++l) {
        auto rs = std::make_unique<RingState>(o.ring_capacity);
        prefault(rs->ring);
        if (groups_[lane_group_[l]].policy == CollisionPolicy::Conflate)
          rs->table = std::make_unique<ConflationTable<SlotType>>(o.conflation_capacity);
        rings_.push_back(std::move(rs));
      }
    }
    if constexpr (SlotType::kTrivialCopy) {
      staging_.reserve(producers_);
      for (std::uint32_t p = 0; p < producers_; ++p) staging_.emplace_back(new SlotType[kMaxBurst]);
    }
    lane_state_.reserve(o.lanes);
    for (std::uint32_t l = 0; l < o.lanes; ++l) {
      auto ls = std::make_unique<LaneState>();
      ls->scratch.reset(new SlotType[kMaxBurst]);
      lane_state_.push_back(std::move(ls));
    }
  }

  // Writes every slot of a new ring once (a default slot: its header), then empties it: the pages are
  // faulted in here, at create(), instead of one page fault (a kernel entry, microseconds) every few
  // messages during the first pass through each ring. Measured with http.fire on 32 lanes: 36 of the
  // first 3000 requests took 2-7.5 us in-engine before, against a median of 180 ns.
  static void prefault(Ring& r) noexcept {
    const SlotType blank{};  // zeroed: whole-slot copies (small slots) read every byte of it
    while (r.push(blank)) {
    }
    r.consume_all([](const SlotType&) noexcept {});
  }

  RingState& ring(std::uint32_t producer, std::uint32_t lane) noexcept {
    return *rings_[static_cast<std::size_t>(producer) * (lane_mask_ + 1) + lane];
  }
  const RingState& ring(std::uint32_t producer, std::uint32_t lane) const noexcept {
    return *rings_[static_cast<std::size_t>(producer) * (lane_mask_ + 1) + lane];
  }

  // Single-writer counter bump. release: pairs with the acquire loads in counters(), so a reader that
  // sees this value also sees every earlier store of this producer (in particular `in`).
  static void bump(std::atomic<std::uint64_t>& c, std::uint64_t n) noexcept {
    if (n != 0) c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_release);
  }

  void note_depth(RingState& rs) noexcept {
    // write_available() acquire-loads the consumer's read index; depth is an upper-bound-ish sample.
    const std::uint64_t depth = ring_capacity_ - rs.ring.write_available();
    if (depth > rs.c.max_depth.load(std::memory_order_relaxed))
      rs.c.max_depth.store(depth, std::memory_order_relaxed);  // relaxed: statistic, single writer
  }

  // Moves table entries (oldest first) into the ring while it has room. Per entry push: this is the
  // recovery path after a collision, not the steady state.
  void pump_table(RingState& rs) noexcept {
    while (!rs.table->empty()) {
      if (!rs.ring.push(rs.table->front())) break;  // copy-constructs the used bytes into the ring
      rs.table->pop_front();
    }
  }

  // Pushes messages idx[0..n) of `msgs` (all for `lane`) into ring (producer, lane) and applies the
  // lane group's policy to what does not fit.
  template <class SpinWork>
  void push_group(std::uint32_t producer, std::uint32_t lane, const Message* msgs, const route::Route* routes,
                  std::uint8_t* idx_in, std::uint32_t n, std::uint64_t now, Tally& t,
                  SpinWork& while_spinning, bool may_be_oversize) noexcept {
    RingState& rs = ring(producer, lane);
    Group& g = groups_[lane_group_[lane]];
    // `in` first (release): every later outcome counter is published after it, see counters().
    bump(rs.c.in, n);

    // Oversize messages are refused up front (compacting the index list in place, order kept). The
    // caller checked the sizes while it looked at the routes; the pass runs only when one did not fit.
    std::uint32_t k = n;
    if (may_be_oversize) [[unlikely]] {
      k = 0;
      for (std::uint32_t i = 0; i < n; ++i) {
        if (SlotType::fits(msgs[idx_in[i]])) idx_in[k++] = idx_in[i];
      }
    }
    if (k != n) {
      t.rejected += n - k;
      bump(rs.c.oversize, n - k);
      bump(rs.c.dropped, n - k);
      n = k;
      if (n == 0) return;
    }

    if (g.disconnected.load(std::memory_order_relaxed)) [[unlikely]] {  // relaxed: see disconnected()
      t.collisions += n;
      bump(rs.c.disconnected_drops, n);
      bump(rs.c.dropped, n);
      return;
    }

    const bool conflating = rs.table != nullptr;
    if (conflating && !rs.table->empty()) [[unlikely]] {
      pump_table(rs);
      if (!rs.table->empty()) {
        // Ring still full: everything goes through the table so that a key never overtakes its entry.
        t.collisions += n;
        bump(rs.c.collisions, n);
        conflate(rs, msgs, routes, idx_in, n, now, producer);
        return;
      }
    }

    // Small (trivially copyable) slots of a batch are built in this producer's staging slots, which stay
    // in L1, and enter the ring with one memmove (two at the wrap): see kBulkCopyMaxBytes for why. Larger
    // slots, and single messages, are constructed in place in the ring, used bytes only.
    SlotType* staged = nullptr;
    if constexpr (SlotType::kTrivialCopy) {
      if (n > 1) {
        staged = staging_[producer].get();
        for (std::uint32_t i = 0; i < n; ++i)
          staged[i].assign(SlotInit{&msgs[idx_in[i]], routes[idx_in[i]].sinks, now});
      }
    }
    // Pushes messages [from, n) of the group; one release store of the write index; returns how many fit.
    const auto push_from = [&](std::uint32_t from) noexcept -> std::uint32_t {
      if (staged != nullptr) return static_cast<std::uint32_t>(rs.ring.push(staged + from, n - from));
      const SlotInitIterator b(msgs, routes, idx_in + from, now);
      const SlotInitIterator e(msgs, routes, idx_in + n, now);
      return static_cast<std::uint32_t>(rs.ring.push(b, e) - b);
    };
    std::uint32_t pushed = push_from(0);
    if (pushed == n) [[likely]] {
      t.processed += n;
      note_depth(rs);
      return;
    }

    // COLLISION: the ring was full for the remaining n - pushed messages.
    t.processed += pushed;
    std::uint32_t rest = n - pushed;
    t.collisions += rest;
    bump(rs.c.collisions, rest);
    switch (g.policy) {
      case CollisionPolicy::Drop:
        bump(rs.c.dropped, rest);
        break;
      case CollisionPolicy::Spin: {
        const std::uint64_t deadline = TscClock::ticks() + g.spin_ticks;
        std::uint32_t done = pushed;
        while (rest != 0) {
          done += push_from(done);
          rest = n - done;
          if (rest == 0 || TscClock::ticks() >= deadline) break;
          while_spinning();
          cpu_relax();
        }
        bump(rs.c.dropped, rest);
        break;
      }
      case CollisionPolicy::Conflate:
        conflate(rs, msgs, routes, idx_in + pushed, rest, now, producer);
        break;
      case CollisionPolicy::Disconnect: {
        bool expected = false;
        // relaxed: a status flag; the counter is an RMW because every producer of the group may get here.
        if (g.disconnected.compare_exchange_strong(expected, true, std::memory_order_relaxed))
          g.disconnects.fetch_add(1, std::memory_order_relaxed);
        bump(rs.c.disconnected_drops, rest);
        bump(rs.c.dropped, rest);
        break;
      }
    }
    note_depth(rs);
  }

  // Puts messages into the conflation table (the ring is full). A key already in the table is replaced in
  // place (the older message is `conflated`); a new key takes an entry, or is dropped when none is free.
  void conflate(RingState& rs, const Message* msgs, const route::Route* routes, const std::uint8_t* idx,
                std::uint32_t n, std::uint64_t now, std::uint32_t producer) noexcept {
    const bool was_empty = rs.table->empty();
    std::uint64_t conflated = 0;
    std::uint64_t dropped = 0;
    for (std::uint32_t i = 0; i < n; ++i) {
      const SlotInit init{&msgs[idx[i]], routes[idx[i]].sinks, now};
      switch (rs.table->insert_or_replace(init)) {
        case ConflationTable<SlotType>::Outcome::Inserted: break;
        case ConflationTable<SlotType>::Outcome::Replaced: ++conflated; break;
        case ConflationTable<SlotType>::Outcome::Full: ++dropped; break;
      }
    }
    bump(rs.c.conflated, conflated);
    bump(rs.c.dropped, dropped);
    if (was_empty && !rs.table->empty()) ++pending_tables_[producer].value;
  }

  // Offers the pending scratch batch to each sink that has not taken all of its share yet. Returns true
  // when the batch is complete (then it is released and counted `out`).
  template <class C>
  bool send_pending(LaneState& ls, C& c) noexcept {
    const std::uint32_t n = ls.pending;
    std::uint64_t todo = ls.todo_sinks;
    for (std::uint64_t bits = todo; bits != 0; bits &= bits - 1) {
      const unsigned s = static_cast<unsigned>(std::countr_zero(bits));
      const std::uint64_t bit = 1ull << s;
      Burst<>& burst = ls.burst;
      // A sink that takes every slot and has taken none yet gets the burst of views of all of them, built
      // once for every such sink (a sink gets it const; burst index == scratch index). Any other share is
      // built for its sink, remembering which scratch slot each burst entry came from.
      const bool whole = ls.uniform && ls.cursor[s] == 0;
      std::uint8_t pos[kMaxBurst];
      if (whole) {
        if (!ls.burst_full) {
          burst.clear();
          for (std::uint32_t i = 0; i < n; ++i) ls.scratch[i].view_into(burst.emplace_back_for_overwrite());
          ls.burst_full = true;
        }
      } else {
        ls.burst_full = false;
        burst.clear();
        for (std::uint32_t i = ls.cursor[s]; i < n; ++i) {
          if (ls.scratch[i].h.sinks & bit) {
            pos[burst.size()] = static_cast<std::uint8_t>(i);
            ls.scratch[i].view_into(burst.emplace_back_for_overwrite());
          }
        }
      }
      const std::size_t accepted = burst.empty() ? 0 : c.send(s, burst);
      if (accepted >= burst.size()) {
        todo &= ~bit;
      } else {
        ls.cursor[s] = whole ? static_cast<std::uint8_t>(accepted) : pos[accepted];
      }
    }
    ls.todo_sinks = todo;
    if (todo != 0) return false;
    c.drained(static_cast<const SlotType*>(ls.scratch.get()), n);
    ls.pending = 0;
    // release: pairs with the acquire load of `out` in counters().
    ls.out.store(ls.out.load(std::memory_order_relaxed) + n, std::memory_order_release);
    return true;
  }

  Options options_;
  std::uint32_t lane_mask_;
  std::uint32_t producers_;
  std::uint32_t consumers_;
  std::uint32_t burst_;
  std::uint32_t drain_rounds_;
  std::uint64_t sink_mask_;  // bit i set when sink i exists (Options::sinks)
  std::uint64_t ring_capacity_;
  std::vector<std::uint32_t> lane_group_;
  std::vector<Group> groups_;
  std::vector<PendingTables> pending_tables_;
  std::vector<std::unique_ptr<SlotType[]>> staging_;  // per producer, kMaxBurst slots (small slots only)
  std::vector<std::unique_ptr<RingState>> rings_;
  std::vector<std::unique_ptr<LaneState>> lane_state_;
};

}  // namespace hypergate::valve
