#pragma once
// -----------------------------------------------------------------------------
// File: hyperion.hpp
// -----------------------------------------------------------------------------
//
// Hyperion is the gateway's state store: last values by key (top of book, book levels, session
// state), written by exactly one thread (the worker that owns the shard) and readable from any
// number of other threads, with reads that never block the writer and latency that does not jitter.
//
// Guarantees
//   * Fixed memory. All memory (arena and index) is reserved and pre-faulted by create(); put(), get()
//     and erase() never allocate, lock, make a system call or take a page fault on anonymous memory.
//   * Bounded time. A writer operation probes at most the index cluster of its key; a reader retries
//     at most kMaxReadRetries times (with a pause instruction) while the writer is changing the very
//     key it reads, then answers Status::Retry. No operation spins without bound.
//   * No torn reads. A reader gets a value exactly as one put() wrote it, never a mix of two values;
//     the copy is made of atomic word loads checked by the slot's SeqLock, so the C++ memory model
//     (and ThreadSanitizer) agree there is no data race.
//   * Errors are Status values: ArenaFull, IndexFull, KeyTooLarge, ValueTooLarge, NotFound, Retry.
//     A failed put() leaves the previous value of the key intact.
//   * Durability (file-backed mode, Options::path): the arena is a MAP_SHARED file. After a process
//     crash, create() with the same path reopens the last state: the index is rebuilt by scanning the
//     records and checking each CRC-32C; a record the crash tore is skipped and counted
//     (stats().torn_records), never served. A key whose newest record is torn falls back to its
//     previous intact record, if one exists. In this mode erase() appends a small Erased record so a
//     restart does not resurrect the key. (Power loss needs sync(); the hot path never syncs.)
//
// Why it is shaped this way
//   An append-only arena makes a write one bump of a pointer plus a sequential store (no allocator,
//   nothing freed under a reader), gives a file format for free (the arena *is* the file), and makes
//   crash recovery a linear scan. Open addressing with linear probing over 16-byte slots keeps a
//   lookup to one index cache line plus the record's lines, and needs no pointer chasing. The price
//   is garbage, paid off the hot path by compact().
//
// Threading contract
//   * Exactly one writer thread at a time calls put(), erase(), compact(), reclaim() and sync(); the
//     store may be handed to another thread between calls. Debug builds (HG_DEBUG_CONTRACTS) assert
//     that no two mutating calls ever overlap.
//   * get(), contains(), for_each(), size() and stats() on Hyperion itself are *writer-side* reads:
//     call them from the writer thread (or while no writer runs).
//   * Any other thread reads through a Hyperion::Reader (reader(): one of kMaxReaders registrations,
//     one Reader per thread). A Reader pins the current table for each call, or for a whole burst of
//     lookups with pin() -> ReadGuard. Readers must be destroyed before their Hyperion.
//
// What happens when full
//   * The arena is a bump allocator: new keys, and overwrites whose value does not fit the key's
//     record, append a record. When the arena cannot hold it, put() returns ArenaFull.
//   * The index keeps live + tombstone slots at or below max_load * slots; a put() of a new key that
//     would cross it returns IndexFull. An insert reuses the first tombstone on its probe path, so
//     churn over a stable key set never fills the index; churn through ever-new keys leaves
//     tombstones that only compact() clears (needs_compaction() says when).
//   * Garbage (superseded records, tombstones) is reclaimed only by compact(), which the writer calls
//     off the hot path (housekeeping): it copies the live records into a fresh arena and index and
//     publishes them with one atomic pointer swap. The old table is freed once no reader is inside it
//     (epoch-based reclamation), so a long-running gateway never restarts because tombstones piled up.
//
// Overwrites
//   A put() of an existing key whose new value fits the capacity of the key's record (the value's
//   size rounded up to the record's 64-byte footprint) rewrites the value in place under the slot's
//   SeqLock: top-of-book updates of a fixed size consume no arena. Otherwise a new record is appended
//   and the slot repointed to it; the old record becomes garbage for compact().
//
// How it differs from std::unordered_map
//   * Keys and values are byte strings copied into the arena (typed put/get for trivially copyable
//     values); there are no node pointers, references or iterators to invalidate. Reads copy the
//     value into a caller buffer (one copy, no allocation), because a reference could be overwritten
//     by the writer under the reader's feet.
//   * Capacity is fixed at creation; there is no rehash, ever (that would be a latency spike). Full is
//     an error status, not a reallocation.
//   * Concurrent readers are part of the contract; std::unordered_map, absl::flat_hash_map and
//     boost::unordered_flat_map all need external locking for that.
//   * Erase leaves a tombstone (reused by a later insert on the same probe path; a tombstone followed
//     by an empty slot is turned back into an empty slot at once).
//
// IMPLEMENTATION DETAILS
//
//   Hyperion (writer handle) ---> Shared ---------------------------------------------------------+
//     table_ (writer's copy)      | current  : atomic<Table*>   (swapped by compact)             |
//                                 | epoch    : atomic<u64>      (bumped by compact)              |
//                                 | readers  : ReaderSlot[64]   (epoch a reader is pinned in)    |
//                                 | retired  : tables waiting for readers to leave               |
//                                 +-----------------------------------------------------------------+
//   Table
//     index : IndexSlot[slots]  (power of two, linear probing, 16 B each, 4 per cache line)
//             | version u64 (SeqLock) | ref u64 = tag:24 | arena offset/64 : 40 |
//             ref 0 = empty, ref 1 = tombstone
//     arena : | FileHeader 128 B | record | record | ... | used -> zero ... |   (hyperion_format.hpp)
//             record = | meta 16 B | value_len:32 crc:32 | key (pad 8) | value (capacity, pad 64) |
//
//   Why two 64-bit words per slot and not one 128-bit atomic: `ref` alone is the slot's state, a
//   single 64-bit atomic, so a reader always sees a whole (tag, offset) pair, never half of one.
//   `version` is the SeqLock that makes (ref, value bytes) one snapshot: a repoint and an in-place
//   value update both move it, so one check covers both. Keeping the SeqLock in the slot (not the
//   record) means the reader checks it on the cache line it already loaded to probe, the file format
//   carries no lock word, and no 16-byte CAS (cmpxchg16b, a locked instruction) is ever needed.
//
//   Writer, changing a slot or its value (in place or by repointing):
//     version = v+1 (odd); store value words / len_crc / ref (each a release store); version = v+2 (release)
//   Reader: v1 = version (acquire); ref (acquire); compare tag and key (immutable once published);
//     copy value words (acquire loads); v2 = version; v1 == v2 and even -> done.
//   Per-word release/acquire instead of fences: on x86-64 both are plain MOVs (free), the C++ model
//   needs nothing else, and ThreadSanitizer (which does not model atomic_thread_fence) agrees.
//   Probing readers that pass a slot the writer is changing see either its old or its new ref; keys
//   never move between slots except through erase + re-insert, so every answer is linearizable.
//
//   Epochs (Reader::pin / compact): a reader publishes the global epoch into its ReaderSlot
//   (seq_cst), then loads `current`. compact() swaps `current`, bumps the epoch to E and retires the
//   old table at E; the table is unmapped once every ReaderSlot holds an epoch >= E (idle = max).
#include <algorithm>
#include <array>
#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "hypergate/core/cache.hpp"
#include "hypergate/core/hash.hpp"
#include "hypergate/core/status.hpp"
#include "hypergate/kv/hyperion_format.hpp"
#include "hypergate/kv/mapped_region.hpp"

namespace hypergate::kv {

namespace detail {
template <class T>
inline constexpr bool kIsSpan = false;
template <class U, std::size_t E>
inline constexpr bool kIsSpan<std::span<U, E>> = true;
}  // namespace detail

/// A value Hyperion can store and load by its object representation: trivially copyable, and not a
/// pointer, span or string-like type (those have their own overloads or would store an address).
template <class T>
concept PlainValue = std::is_trivially_copyable_v<T> && !std::is_pointer_v<T> &&
                     !detail::kIsSpan<std::remove_cv_t<T>> &&
                     !std::is_convertible_v<const T&, std::string_view>;

/// Counters and shape of a store, computed on demand by Hyperion::stats() (cold path).
struct HyperionStats {
  static constexpr std::size_t kProbeBuckets = 16;
  std::uint64_t live = 0;              ///< keys present
  std::uint64_t tombstones = 0;        ///< index slots holding a tombstone
  std::uint64_t slots = 0;             ///< index capacity (power of two)
  std::uint64_t max_occupied = 0;      ///< load-factor limit on live + tombstones
  std::uint64_t bytes_used = 0;        ///< arena bytes consumed by records (live and garbage)
  std::uint64_t bytes_capacity = 0;    ///< arena bytes available for records
  std::uint64_t garbage_bytes = 0;     ///< arena bytes held by superseded or erased records
  std::uint64_t torn_records = 0;      ///< records skipped on open because their checksum failed
  std::uint64_t compactions = 0;       ///< successful compact() calls
  std::uint64_t retired_tables = 0;    ///< old tables still waiting for readers to leave
  std::uint64_t readers = 0;           ///< registered Readers
  bool huge_pages = false;             ///< arena backed by huge pages
  bool file_backed = false;
  /// probe_histogram[d]: live keys found d slots after their home slot (last bucket: d >= 15).
  std::array<std::uint64_t, kProbeBuckets> probe_histogram{};
};

namespace detail {

/// One arena + index generation. Fields above `writer` are immutable once the table is published
/// (readers use only those); the writer-private counters live on their own cache lines.
struct HyperionTable {
  std::byte* base = nullptr;                 // arena start (FileHeader)
  format::IndexSlot* slots = nullptr;
  std::uint64_t mask = 0;                    // slots - 1
  std::uint64_t arena_bytes = 0;
  MappedRegion arena;
  MappedRegion index;
  // Records carry a CRC-32C only when the arena is a file: it is read back solely when a file-backed
  // store reopens (torn-record detection). A memory-only store never reads it, so it stores 0 and the
  // writer skips the checksum on every put.
  bool checksums = false;

  struct alignas(kNoFalseSharing) WriterState {
    std::uint64_t used = 0;                  // bump pointer (mirrored into FileHeader::used)
    std::uint64_t live = 0;
    std::uint64_t tombstones = 0;
    std::uint64_t max_occupied = 0;
    std::uint64_t garbage_bytes = 0;
    std::uint64_t torn_records = 0;
  } writer;
};
// Readers load base/slots/mask while the writer bumps counters: keep them on separate lines.
static_assert(offsetof(HyperionTable, writer) % kNoFalseSharing == 0, "writer counters start a new line pair");

/// Registration of one Reader. One line pair each: readers publish their epoch without sharing a
/// line with each other or with the writer's `current`/`epoch`.
struct alignas(kNoFalseSharing) ReaderSlot {
  static constexpr std::uint64_t kIdle = ~std::uint64_t{0};
  std::atomic<std::uint64_t> epoch{kIdle};
  std::atomic<bool> claimed{false};
};
static_assert(sizeof(ReaderSlot) == kNoFalseSharing, "one reader registration per line pair");

struct HyperionShared;

}  // namespace detail

class Hyperion {
 public:
  static constexpr std::size_t kMaxKeyBytes = 1024;
  static constexpr std::size_t kMaxValueBytes = std::size_t{1} << 20;
  static constexpr unsigned kMaxReaders = 64;
  static constexpr unsigned kMaxReadRetries = 256;
  static constexpr unsigned kMaxRetiredTables = 4;

  struct Options {
    std::size_t arena_bytes = std::size_t{64} << 20;   ///< arena size, FileHeader included
    std::size_t slots = std::size_t{1} << 16;          ///< index slots, rounded up to a power of two
    double max_load = 0.75;                            ///< limit on (live + tombstones) / slots, (0, 0.95]
    std::string path;                                  ///< empty: anonymous memory; else a store file
    bool huge_pages = true;                            ///< try MAP_HUGETLB, then transparent huge pages
  };

  class Reader;
  class ReadGuard;

  /// An anonymous store of `arena_bytes` with `slots` index slots (defaults otherwise).
  [[nodiscard]] static Result<Hyperion> create(std::size_t arena_bytes, std::size_t slots);
  /// A store as described by `options`; with a path, opens (and recovers) or creates the file.
  [[nodiscard]] static Result<Hyperion> create(const Options& options);

  Hyperion(Hyperion&& other) noexcept;
  Hyperion& operator=(Hyperion&& other) noexcept;
  Hyperion(const Hyperion&) = delete;
  Hyperion& operator=(const Hyperion&) = delete;
  ~Hyperion();

  // ---- writer ------------------------------------------------------------------------------------

  /// Inserts or overwrites. Ok, or ArenaFull / IndexFull / KeyTooLarge / ValueTooLarge (unchanged).
  Status put(std::string_view key, std::span<const std::byte> value) noexcept {
    return put_bytes(key, value.data(), value.size());
  }
  Status put(std::string_view key, std::string_view value) noexcept {
    return put_bytes(key, reinterpret_cast<const std::byte*>(value.data()), value.size());
  }
  template <PlainValue T>
  Status put(std::string_view key, const T& value) noexcept {
    return put_bytes(key, reinterpret_cast<const std::byte*>(&value), sizeof(T));
  }

  /// Removes a key: Ok or NotFound (file-backed: ArenaFull when the erase record does not fit).
  Status erase(std::string_view key) noexcept;

  /// Rebuilds arena and index from the live records and publishes them atomically (writer thread,
  /// off the hot path: it maps a fresh table of the same size). Retry when kMaxRetiredTables old
  /// tables are still in use by readers; IoError and similar when the new table cannot be made.
  [[nodiscard]] Result<void> compact();

  /// Frees retired tables that no reader uses any more; returns how many are still waiting.
  std::size_t reclaim() noexcept;

  /// File-backed: msync the arena (cold path; for durability across power loss).
  [[nodiscard]] Result<void> sync() const;

  // ---- writer-side reads -------------------------------------------------------------------------

  /// Copies the value into `out`. Ok (len = value size), NotFound, KeyTooLarge, or ValueTooLarge
  /// when `out` is too small (len = the size needed, `out` unspecified).
  [[nodiscard]] Status get(std::string_view key, std::span<std::byte> out, std::size_t& len) const noexcept {
    return read_value(*table_, key, out, len);
  }
  /// Typed read: Ok only when the stored value is exactly sizeof(T) bytes (InvalidArgument if it is
  /// shorter, ValueTooLarge if longer).
  template <PlainValue T>
  [[nodiscard]] Status get(std::string_view key, T& out) const noexcept {
    return read_typed(*table_, key, out);
  }
  [[nodiscard]] bool contains(std::string_view key) const noexcept { return find_live(*table_, key); }

  /// Calls fn(std::string_view key, std::span<const std::byte> value) for every live key, in index
  /// order. The views point into the arena and are valid until the next writer call.
  template <class Fn>
  void for_each(Fn&& fn) const {
    const detail::HyperionTable& t = *table_;
    for (std::uint64_t i = 0; i <= t.mask; ++i) {
      // relaxed: a writer-side read; only this thread stores slots.
      const std::uint64_t ref = std::atomic_ref<std::uint64_t>(t.slots[i].ref).load(std::memory_order_relaxed);
      if (!format::ref_is_live(ref)) continue;
      const std::byte* rec = t.base + format::ref_offset(ref);
      const format::RecordMeta meta = load_meta(rec);
      const std::uint64_t len_crc =   // relaxed: only this thread stores it
          std::atomic_ref<std::uint64_t>(*word_at(rec, format::kLenCrcOffset)).load(std::memory_order_relaxed);
      fn(std::string_view(reinterpret_cast<const char*>(rec + format::kRecordHeaderBytes), meta.key_len),
         std::span<const std::byte>(rec + format::value_offset(meta.key_len), format::len_of(len_crc)));
    }
  }

  [[nodiscard]] std::size_t size() const noexcept { return table_->writer.live; }

  /// The suggested housekeeping trigger for compact(): tombstones hold over a quarter of the index's
  /// load budget, or over a quarter of the arena is garbage. (Tombstones are reused by inserts whose
  /// probe path crosses them, so a stable key set never needs this; churn through ever-new keys does.)
  [[nodiscard]] bool needs_compaction() const noexcept {
    const auto& w = table_->writer;
    return w.tombstones * 4 > w.max_occupied ||
           w.garbage_bytes * 4 > table_->arena_bytes - format::kArenaHeaderBytes;
  }
  [[nodiscard]] HyperionStats stats() const;
  [[nodiscard]] const Options& options() const noexcept { return options_; }

  // ---- readers -----------------------------------------------------------------------------------

  /// Registers a reader (any thread, cold path). Unsupported when kMaxReaders are registered.
  [[nodiscard]] Result<Reader> reader() const;

 private:
  friend class Reader;
  friend class ReadGuard;
  friend struct detail::HyperionShared;

  explicit Hyperion(std::unique_ptr<detail::HyperionShared> shared, Options options) noexcept;

  Status put_bytes(std::string_view key, const std::byte* value, std::size_t len) noexcept;

  // Engine: shared by writer-side reads and Readers. `t` is immutable except through its slots.
  [[nodiscard]] static Status read_value(const detail::HyperionTable& t, std::string_view key,
                                         std::span<std::byte> out, std::size_t& len) noexcept;
  template <PlainValue T>
  [[nodiscard]] static Status read_typed(const detail::HyperionTable& t, std::string_view key, T& out) noexcept {
    std::size_t len = 0;
    const Status st = read_value(t, key, std::span<std::byte>(reinterpret_cast<std::byte*>(&out), sizeof(T)), len);
    if (st == Status::Ok && len != sizeof(T)) return Status::InvalidArgument;
    return st;
  }
  [[nodiscard]] static bool find_live(const detail::HyperionTable& t, std::string_view key) noexcept;

  [[nodiscard]] static std::uint64_t* word_at(const std::byte* rec, std::size_t offset) noexcept {
    // The arena is mmap'd memory; words at 8-aligned offsets of 64-aligned records are suitably
    // aligned uint64_t objects for std::atomic_ref.
    return reinterpret_cast<std::uint64_t*>(const_cast<std::byte*>(rec) + offset);
  }
  [[nodiscard]] static format::RecordMeta load_meta(const std::byte* rec) noexcept {
    format::RecordMeta m;
    std::memcpy(&m, rec, sizeof m);   // immutable once published: a plain read is race-free
    return m;
  }
  [[nodiscard]] static bool key_equals(const std::byte* rec, std::string_view key) noexcept {
    std::uint16_t key_len;
    std::memcpy(&key_len, rec + offsetof(format::RecordMeta, key_len), sizeof key_len);
    if (key_len != key.size()) return false;
    // Inline word compare rather than a memcmp call: keys are short (symbols), and fewer instructions
    // per lookup let the CPU overlap more lookups' cache misses.
    const std::byte* stored = rec + format::kRecordHeaderBytes;
    std::size_t i = 0;
    for (; i + 8 <= key.size(); i += 8) {
      std::uint64_t a;
      std::uint64_t b;
      std::memcpy(&a, stored + i, 8);
      std::memcpy(&b, key.data() + i, 8);
      if (a != b) return false;
    }
    for (; i < key.size(); ++i) {
      if (stored[i] != static_cast<std::byte>(key[i])) return false;
    }
    return true;
  }

  // Writer internals (hyperion.cpp holds the cold ones).
  struct Probe {
    format::IndexSlot* found = nullptr;     // slot holding the key
    format::IndexSlot* free = nullptr;      // first tombstone on the path, else the empty slot ending it
    bool free_is_tombstone = false;
  };
  [[nodiscard]] static Probe probe_for_write(const detail::HyperionTable& t, std::string_view key,
                                             std::uint64_t hash) noexcept;
  static void begin_slot_write(format::IndexSlot& s) noexcept;
  static void end_slot_write(format::IndexSlot& s) noexcept;
  /// Appends a record; returns its arena offset, or 0 when the arena cannot hold it.
  /// The record's value capacity is at least max(len, min_capacity), rounded up to its footprint.
  [[nodiscard]] static std::uint64_t append_record(detail::HyperionTable& t, std::string_view key,
                                                   const std::byte* value, std::size_t len,
                                                   std::size_t min_capacity, format::RecordKind kind) noexcept;
  [[nodiscard]] static Result<std::unique_ptr<detail::HyperionTable>> make_table(const Options& options,
                                                                                 const std::string& path,
                                                                                 bool fresh);
  [[nodiscard]] static Result<void> recover(detail::HyperionTable& t);
  static void write_value_in_place(std::byte* rec, std::size_t key_len, const std::byte* value,
                                   std::size_t len, std::uint64_t len_crc) noexcept;
  static void set_slot(format::IndexSlot& s, std::uint64_t ref) noexcept;
  static void release_tombstones_before_empty(detail::HyperionTable& t, std::uint64_t index) noexcept;
  std::size_t reclaim_retired() noexcept;

  std::unique_ptr<detail::HyperionShared> shared_;
  detail::HyperionTable* table_ = nullptr;   // the writer's view of shared_->current
  Options options_;
};

/// Read-side handle of one thread. Not thread-safe itself: one Reader per reading thread.
class Hyperion::Reader {
 public:
  Reader(Reader&& other) noexcept
      : shared_(std::exchange(other.shared_, nullptr)),
        slot_(std::exchange(other.slot_, nullptr)),
        depth_(std::exchange(other.depth_, 0)) {}
  Reader& operator=(Reader&&) = delete;
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;
  ~Reader();

  /// Pins the current table for a burst of lookups; pins nest. Keep a guard short: while it lives
  /// the table it pinned (and any table published after) cannot be reclaimed.
  [[nodiscard]] ReadGuard pin() noexcept;

  [[nodiscard]] Status get(std::string_view key, std::span<std::byte> out, std::size_t& len) noexcept;
  template <PlainValue T>
  [[nodiscard]] Status get(std::string_view key, T& out) noexcept;
  [[nodiscard]] bool contains(std::string_view key) noexcept;

 private:
  friend class Hyperion;
  friend class ReadGuard;
  Reader(detail::HyperionShared* shared, detail::ReaderSlot* slot) noexcept : shared_(shared), slot_(slot) {}
  void unpin() noexcept;

  detail::HyperionShared* shared_;
  detail::ReaderSlot* slot_;
  unsigned depth_ = 0;   // nesting of pin(); only this reader's thread touches it
};

/// An epoch pin held by a Reader: lookups through it see one table and do not re-pin.
class Hyperion::ReadGuard {
 public:
  ReadGuard(const ReadGuard&) = delete;
  ReadGuard& operator=(const ReadGuard&) = delete;
  ~ReadGuard() { reader_->unpin(); }

  [[nodiscard]] Status get(std::string_view key, std::span<std::byte> out, std::size_t& len) const noexcept {
    return Hyperion::read_value(*table_, key, out, len);
  }
  template <PlainValue T>
  [[nodiscard]] Status get(std::string_view key, T& out) const noexcept {
    return Hyperion::read_typed(*table_, key, out);
  }
  [[nodiscard]] bool contains(std::string_view key) const noexcept { return Hyperion::find_live(*table_, key); }

 private:
  friend class Reader;
  ReadGuard(Reader* reader, const detail::HyperionTable* table) noexcept : reader_(reader), table_(table) {}
  Reader* reader_;
  const detail::HyperionTable* table_;
};

namespace detail {

/// State shared by the writer handle and its Readers (stable address while Hyperion moves).
struct HyperionShared {
  struct Retired {
    HyperionTable* table = nullptr;
    std::uint64_t epoch = 0;   // freed once every reader is idle or pinned at >= epoch
  };

  // Read by every pin(), written by compact(): its own line pair, away from the reader slots.
  alignas(kNoFalseSharing) std::atomic<HyperionTable*> current{nullptr};
  std::atomic<std::uint64_t> epoch{1};
  ReaderSlot readers[Hyperion::kMaxReaders];

  // Writer-private below.
  alignas(kNoFalseSharing) std::array<Retired, Hyperion::kMaxRetiredTables> retired{};
  std::size_t retired_count = 0;
  std::uint64_t compactions = 0;
#if HG_DEBUG_CONTRACTS
  std::atomic<bool> writing{false};   // single-writer contract check
#endif

  ~HyperionShared();
};

/// Debug builds: asserts that writer operations never overlap (the single-writer contract).
/// Release builds: nothing.
class WriterScope {
 public:
#if HG_DEBUG_CONTRACTS
  explicit WriterScope(HyperionShared& shared) noexcept : flag_(shared.writing) {
    // acquire/release on the flag: pair with each other across consecutive writer calls, so a
    // hand-over of the writer role between threads is ordered (and two overlapping calls assert).
    const bool overlapping = flag_.exchange(true, std::memory_order_acquire);
    assert(!overlapping && "Hyperion: two threads ran writer operations at once (single-writer contract)");
    (void)overlapping;
  }
  ~WriterScope() { flag_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool>& flag_;
#else
  explicit WriterScope(HyperionShared& /*shared*/) noexcept {}
#endif
  WriterScope(const WriterScope&) = delete;
  WriterScope& operator=(const WriterScope&) = delete;
};

}  // namespace detail

// ---- hot path (inline) ---------------------------------------------------------------------------

inline Status Hyperion::read_value(const detail::HyperionTable& t, std::string_view key,
                                   std::span<std::byte> out, std::size_t& len) noexcept {
  using namespace format;
  if (key.size() > kMaxKeyBytes) return Status::KeyTooLarge;
  const std::uint64_t hash = hash_bytes(key);
  const std::uint64_t tag = tag_of(hash);
  std::uint64_t i = hash & t.mask;
  for (std::uint64_t probes = 0; probes <= t.mask; ++probes, i = (i + 1) & t.mask) {
    IndexSlot& s = t.slots[i];
    std::atomic_ref<std::uint64_t> version(s.version);
    std::atomic_ref<std::uint64_t> slot_ref(s.ref);
    for (unsigned attempt = 0;; ++attempt) {
      // acquire: pairs with the release store of version in end_slot_write().
      const std::uint64_t v1 = version.load(std::memory_order_acquire);
      // acquire: pairs with the release store of ref in set_slot(), which publishes the record.
      const std::uint64_t ref = slot_ref.load(std::memory_order_acquire);
      if (ref == kEmptyRef) return Status::NotFound;
      if (ref == kTombstoneRef || ref_tag(ref) != tag) break;
      const std::byte* rec = t.base + ref_offset(ref);
      if (!key_equals(rec, key)) break;
      if ((v1 & 1) == 0) {
        // acquire loads (len_crc and every value word): pair with the release stores of the same words
        // in write_value_in_place(); a load that sees a word of a newer value therefore also sees
        // that update's odd version, so the re-read of version below rejects any mix of two values.
        const std::uint64_t len_crc =
            std::atomic_ref<std::uint64_t>(*word_at(rec, kLenCrcOffset)).load(std::memory_order_acquire);
        const std::size_t n = len_of(len_crc);
        Status st = Status::ValueTooLarge;
        if (n <= out.size()) {
          const std::byte* src = rec + value_offset(key.size());
          std::byte* dst = out.data();
          std::size_t done = 0;
          for (; done + 8 <= n; done += 8) {
            const std::uint64_t w =
                std::atomic_ref<std::uint64_t>(*word_at(src, done)).load(std::memory_order_acquire);
            std::memcpy(dst + done, &w, 8);
          }
          if (done < n) {   // the value area is padded to whole words, so the last word is in bounds
            const std::uint64_t w =
                std::atomic_ref<std::uint64_t>(*word_at(src, done)).load(std::memory_order_acquire);
            std::memcpy(dst + done, &w, n - done);
          }
          st = Status::Ok;
        }
        // relaxed: ordered after the acquire loads above (later loads cannot move before them).
        if (version.load(std::memory_order_relaxed) == v1) {
          len = n;
          return st;
        }
      }
      if (attempt >= kMaxReadRetries) return Status::Retry;
      cpu_relax();
    }
  }
  return Status::NotFound;
}

inline bool Hyperion::find_live(const detail::HyperionTable& t, std::string_view key) noexcept {
  using namespace format;
  if (key.size() > kMaxKeyBytes) return false;
  const std::uint64_t hash = hash_bytes(key);
  const std::uint64_t tag = tag_of(hash);
  std::uint64_t i = hash & t.mask;
  for (std::uint64_t probes = 0; probes <= t.mask; ++probes, i = (i + 1) & t.mask) {
    // acquire: pairs with the release store of ref in set_slot(), which publishes the record's key.
    const std::uint64_t ref = std::atomic_ref<std::uint64_t>(t.slots[i].ref).load(std::memory_order_acquire);
    if (ref == kEmptyRef) return false;
    if (ref != kTombstoneRef && ref_tag(ref) == tag && key_equals(t.base + ref_offset(ref), key)) return true;
  }
  return false;
}

inline Hyperion::Probe Hyperion::probe_for_write(const detail::HyperionTable& t, std::string_view key,
                                                 std::uint64_t hash) noexcept {
  using namespace format;
  Probe p;
  const std::uint64_t tag = tag_of(hash);
  std::uint64_t i = hash & t.mask;
  for (std::uint64_t probes = 0; probes <= t.mask; ++probes, i = (i + 1) & t.mask) {
    IndexSlot& s = t.slots[i];
    // relaxed: only the writer (this thread) stores ref.
    const std::uint64_t ref = std::atomic_ref<std::uint64_t>(s.ref).load(std::memory_order_relaxed);
    if (ref == kEmptyRef) {
      if (p.free == nullptr) p.free = &s;
      return p;
    }
    if (ref == kTombstoneRef) {
      if (p.free == nullptr) {
        p.free = &s;
        p.free_is_tombstone = true;
      }
    } else if (ref_tag(ref) == tag && key_equals(t.base + ref_offset(ref), key)) {
      p.found = &s;
      return p;
    }
  }
  return p;   // only reachable with a full index, which max_load prevents
}

inline void Hyperion::begin_slot_write(format::IndexSlot& s) noexcept {
  std::atomic_ref<std::uint64_t> version(s.version);
  // relaxed load: only the writer stores version.
  const std::uint64_t v = version.load(std::memory_order_relaxed);
  // relaxed: every store that follows (value words, len_crc, ref) is a release store, which orders
  // this odd version before it for any reader that acquires one of those words.
  version.store(v + 1, std::memory_order_relaxed);
}

inline void Hyperion::end_slot_write(format::IndexSlot& s) noexcept {
  std::atomic_ref<std::uint64_t> version(s.version);
  // release: pairs with the acquire load of version in read_value(); the new words and ref are
  // visible to a reader that sees the even version.
  version.store(version.load(std::memory_order_relaxed) + 1, std::memory_order_release);
}

inline void Hyperion::set_slot(format::IndexSlot& s, std::uint64_t ref) noexcept {
  begin_slot_write(s);
  // release: pairs with the acquire loads of ref in read_value()/find_live(); the record's key,
  // meta and value written by append_record() happen-before a reader that follows this ref.
  std::atomic_ref<std::uint64_t>(s.ref).store(ref, std::memory_order_release);
  end_slot_write(s);
}

inline void Hyperion::write_value_in_place(std::byte* rec, std::size_t key_len, const std::byte* value,
                                           std::size_t len, std::uint64_t len_crc) noexcept {
  using namespace format;
  std::byte* dst = rec + value_offset(key_len);
  std::size_t done = 0;
  // release stores (value words, len_crc): pair with the acquire loads of the same words in
  // read_value(); each orders the odd version of begin_slot_write() before itself.
  for (; done + 8 <= len; done += 8) {
    std::uint64_t w;
    std::memcpy(&w, value + done, 8);
    std::atomic_ref<std::uint64_t>(*word_at(dst, done)).store(w, std::memory_order_release);
  }
  if (done < len) {
    std::uint64_t w = 0;   // zero the padding, so a shorter value leaves no stale bytes in its word
    std::memcpy(&w, value + done, len - done);
    std::atomic_ref<std::uint64_t>(*word_at(dst, done)).store(w, std::memory_order_release);
  }
  std::atomic_ref<std::uint64_t>(*word_at(rec, kLenCrcOffset)).store(len_crc, std::memory_order_release);
}

inline std::uint64_t Hyperion::append_record(detail::HyperionTable& t, std::string_view key,
                                             const std::byte* value, std::size_t len,
                                             std::size_t min_capacity, format::RecordKind kind) noexcept {
  using namespace format;
  const std::size_t size = record_size(key.size(), len > min_capacity ? len : min_capacity);
  auto& w = t.writer;
  if (size > t.arena_bytes - w.used) return 0;
  const std::uint64_t off = w.used;
  w.used += size;
  // Raise the file's high-water mark before writing, so a crash leaves every written byte below it.
  reinterpret_cast<FileHeader*>(t.base)->used = w.used;
  std::byte* rec = t.base + off;
  RecordMeta meta{};
  meta.magic = kRecordMagic;
  meta.key_len = static_cast<std::uint16_t>(key.size());
  meta.kind = static_cast<std::uint8_t>(kind);
  meta.value_capacity = static_cast<std::uint32_t>(size - value_offset(key.size()));
  // Plain stores: the record is not reachable by any reader until set_slot() publishes it (release).
  std::memcpy(rec, &meta, sizeof meta);
  if (!key.empty()) std::memcpy(rec + kRecordHeaderBytes, key.data(), key.size());
  if (len > 0) std::memcpy(rec + value_offset(key.size()), value, len);
  const auto n = static_cast<std::uint32_t>(len);
  const std::uint64_t len_crc = pack_len_crc(n, t.checksums ? record_checksum(meta, n, key.data(), value) : 0);
  std::memcpy(rec + kLenCrcOffset, &len_crc, sizeof len_crc);
  return off;
}

inline Status Hyperion::put_bytes(std::string_view key, const std::byte* value, std::size_t len) noexcept {
  using namespace format;
  const detail::WriterScope writer_scope(*shared_);
  if (key.size() > kMaxKeyBytes) return Status::KeyTooLarge;
  if (len > kMaxValueBytes) return Status::ValueTooLarge;
  if (len > 0 && value == nullptr) return Status::InvalidArgument;
  detail::HyperionTable& t = *table_;
  const std::uint64_t hash = hash_bytes(key);
  const Probe p = probe_for_write(t, key, hash);
  if (p.found != nullptr) {
    // relaxed: only the writer stores ref.
    const std::uint64_t old_ref = std::atomic_ref<std::uint64_t>(p.found->ref).load(std::memory_order_relaxed);
    std::byte* rec = t.base + ref_offset(old_ref);
    const RecordMeta meta = load_meta(rec);
    if (len <= meta.value_capacity) [[likely]] {
      // Checksum first: the slot stays odd (readers retrying) only for the word stores.
      const auto n = static_cast<std::uint32_t>(len);
      const std::uint64_t len_crc =
          pack_len_crc(n, t.checksums ? record_checksum(meta, n, key.data(), value) : 0);
      begin_slot_write(*p.found);
      write_value_in_place(rec, key.size(), value, len, len_crc);
      end_slot_write(*p.found);
      return Status::Ok;
    }
    const std::uint64_t off = append_record(t, key, value, len, 0, RecordKind::Value);
    if (off == 0) return Status::ArenaFull;
    t.writer.garbage_bytes += value_offset(meta.key_len) + meta.value_capacity;
    set_slot(*p.found, make_ref(hash, off));
    return Status::Ok;
  }
  if (p.free == nullptr) return Status::IndexFull;
  if (!p.free_is_tombstone && t.writer.live + t.writer.tombstones + 1 > t.writer.max_occupied) {
    return Status::IndexFull;
  }
  const std::uint64_t off = append_record(t, key, value, len, 0, RecordKind::Value);
  if (off == 0) return Status::ArenaFull;
  set_slot(*p.free, make_ref(hash, off));
  ++t.writer.live;
  if (p.free_is_tombstone) --t.writer.tombstones;
  return Status::Ok;
}

// ---- Reader --------------------------------------------------------------------------------------

inline Hyperion::ReadGuard Hyperion::Reader::pin() noexcept {
  if (depth_++ == 0) {
    // seq_cst (both): the epoch this reader publishes must be visible to reclaim() before this
    // reader loads `current` (store->load order). Pairs with the seq_cst fetch_add of epoch and the
    // seq_cst loads of reader epochs in compact()/reclaim(); the argument is in hyperion.cpp.
    const std::uint64_t e = shared_->epoch.load(std::memory_order_seq_cst);
    slot_->epoch.store(e, std::memory_order_seq_cst);
  }
  // seq_cst: pairs with the seq_cst exchange of current in compact().
  return ReadGuard(this, shared_->current.load(std::memory_order_seq_cst));
}

inline void Hyperion::Reader::unpin() noexcept {
  if (--depth_ == 0) {
    // release: this reader's loads from the pinned table happen-before the writer's seq_cst load in
    // reclaim() that sees kIdle and then unmaps the table.
    slot_->epoch.store(detail::ReaderSlot::kIdle, std::memory_order_release);
  }
}

inline Status Hyperion::Reader::get(std::string_view key, std::span<std::byte> out, std::size_t& len) noexcept {
  const ReadGuard g = pin();
  return g.get(key, out, len);
}

template <PlainValue T>
inline Status Hyperion::Reader::get(std::string_view key, T& out) noexcept {
  const ReadGuard g = pin();
  return g.get(key, out);
}

inline bool Hyperion::Reader::contains(std::string_view key) noexcept {
  const ReadGuard g = pin();
  return g.contains(key);
}

}  // namespace hypergate::kv
