// Hyperion cold paths: creation and recovery, erase, compaction, epoch reclamation, stats.
//
// Why epoch reclamation is safe (compact() + reclaim() against Reader::pin()); every operation named
// here is seq_cst, so they all sit in one total order S:
//   reader:  e = epoch.load();  slot.store(e);  t = current.load();   ... uses t ...;  slot.store(idle)
//   writer:  current.exchange(fresh);  E = epoch.fetch_add(1) + 1;  retire(old, E)
//            reclaim: frees `old` once every slot.load() >= E
// Suppose a reader still uses `old`. Its current.load() returned `old`, so it precedes the exchange in
// S, hence so does its slot.store(e), and every later slot.load() by the writer sees e (or a newer
// pin, which means the old use ended with a release store of idle). And e < E: had the reader loaded
// the epoch after the fetch_add, its later current.load() would follow the exchange and return
// `fresh`. So the writer sees e < E and keeps `old`.
#include "hypergate/kv/hyperion.hpp"

#include <cstdio>
#include <utility>

namespace hypergate::kv {

using detail::HyperionShared;
using detail::HyperionTable;
using detail::ReaderSlot;
using detail::WriterScope;
using namespace format;

namespace {

std::size_t next_pow2(std::size_t n) noexcept {
  std::size_t p = 8;
  while (p < n) p <<= 1;
  return p;
}

std::uint64_t record_footprint(const RecordMeta& meta) noexcept {
  return value_offset(meta.key_len) + meta.value_capacity;
}

}  // namespace

// ---- HyperionShared ------------------------------------------------------------------------------

detail::HyperionShared::~HyperionShared() {
#if HG_DEBUG_CONTRACTS
  for (const ReaderSlot& r : readers) {
    assert(!r.claimed.load(std::memory_order_acquire) && "Hyperion destroyed while a Reader is registered");
  }
#endif
  delete current.load(std::memory_order_acquire);   // acquire: pairs with the exchange in compact()
  for (std::size_t i = 0; i < retired_count; ++i) delete retired[i].table;
}

// ---- creation and recovery -----------------------------------------------------------------------

Hyperion::Hyperion(std::unique_ptr<HyperionShared> shared, Options options) noexcept
    : shared_(std::move(shared)),
      // relaxed: no reader exists yet, and the writer is the only thread that stores current.
      table_(shared_->current.load(std::memory_order_relaxed)),
      options_(std::move(options)) {}

Hyperion::Hyperion(Hyperion&& other) noexcept
    : shared_(std::move(other.shared_)),
      table_(std::exchange(other.table_, nullptr)),
      options_(std::move(other.options_)) {}

Hyperion& Hyperion::operator=(Hyperion&& other) noexcept {
  if (this != &other) {
    shared_ = std::move(other.shared_);
    table_ = std::exchange(other.table_, nullptr);
    options_ = std::move(other.options_);
  }
  return *this;
}

Hyperion::~Hyperion() = default;

Result<Hyperion> Hyperion::create(std::size_t arena_bytes, std::size_t slots) {
  Options o;
  o.arena_bytes = arena_bytes;
  o.slots = slots;
  return create(o);
}

Result<Hyperion> Hyperion::create(const Options& options) {
  if (options.slots == 0 || options.slots > (std::size_t{1} << 40)) {
    return Error{Status::InvalidArgument, "Hyperion: slots must be in [1, 2^40]"};
  }
  if (!(options.max_load > 0.0 && options.max_load <= 0.95)) {
    return Error{Status::InvalidArgument, "Hyperion: max_load must be in (0, 0.95]"};
  }
  if (options.arena_bytes < kArenaHeaderBytes + kRecordAlign ||
      options.arena_bytes / kRecordAlign > kOffsetMask) {
    return Error{Status::InvalidArgument, "Hyperion: arena_bytes must be in [192 B, 64 TiB]"};
  }
  Options normalized = options;
  normalized.slots = next_pow2(options.slots);
  auto table = make_table(normalized, normalized.path, /*fresh=*/false);
  if (!table) return table.error();
  auto shared = std::make_unique<HyperionShared>();
  // relaxed: nothing else can see `shared` yet; the Hyperion returned below is handed over by the
  // caller's own synchronisation (thread start, queue) before any Reader exists.
  shared->current.store(table.value().release(), std::memory_order_relaxed);
  return Hyperion(std::move(shared), std::move(normalized));
}

Result<std::unique_ptr<HyperionTable>> Hyperion::make_table(const Options& options, const std::string& path,
                                                            bool fresh) {
  auto t = std::make_unique<HyperionTable>();
  auto index = MappedRegion::map_anonymous(options.slots * sizeof(IndexSlot), options.huge_pages);
  if (!index) return index.error();
  t->index = std::move(index.value());
  bool created = true;
  if (path.empty()) {
    auto arena = MappedRegion::map_anonymous(options.arena_bytes, options.huge_pages);
    if (!arena) return arena.error();
    t->arena = std::move(arena.value());
  } else {
    if (fresh) std::remove(path.c_str());   // a leftover of an interrupted compaction, if any
    auto arena = MappedRegion::map_file(path, options.arena_bytes, created);
    if (!arena) return arena.error();
    t->arena = std::move(arena.value());
  }
  t->base = t->arena.data();
  t->checksums = t->arena.page_kind() == MappedRegion::PageKind::File;
  t->arena_bytes = options.arena_bytes;
  t->slots = reinterpret_cast<IndexSlot*>(t->index.data());
  t->mask = options.slots - 1;
  auto max_occupied = static_cast<std::uint64_t>(options.max_load * static_cast<double>(options.slots));
  t->writer.max_occupied = std::min<std::uint64_t>(max_occupied, options.slots - 1);   // one empty slot ends every probe
  t->writer.used = kArenaHeaderBytes;
  if (created) {
    FileHeader h{};
    h.magic = kFileMagic;
    h.format_version = kFormatVersion;
    h.record_align = kRecordAlign;
    h.arena_bytes = options.arena_bytes;
    h.used = kArenaHeaderBytes;
    std::memcpy(t->base, &h, sizeof h);
    return t;
  }
  auto recovered = recover(*t);
  if (!recovered) return recovered.error();
  return t;
}

// Rebuilds the index of a reopened store file by scanning its records in arena order. Later records
// supersede earlier ones for the same key (an overwrite that did not fit appends; an erase appends an
// Erased record), and in-place updates only ever touch a key's newest record, so arena order is
// history order.
Result<void> Hyperion::recover(HyperionTable& t) {
  FileHeader h;
  std::memcpy(&h, t.base, sizeof h);
  if (h.magic != kFileMagic) return Error{Status::Malformed, "Hyperion: not a store file (bad magic)"};
  if (h.format_version != kFormatVersion || h.record_align != kRecordAlign) {
    return Error{Status::Unsupported, "Hyperion: store file format version " + std::to_string(h.format_version) +
                                          " (this build reads " + std::to_string(kFormatVersion) + ")"};
  }
  if (h.arena_bytes != t.arena_bytes) {
    return Error{Status::InvalidArgument, "Hyperion: store file was created with arena_bytes = " +
                                              std::to_string(h.arena_bytes)};
  }
  const std::uint64_t high_water = std::clamp<std::uint64_t>(h.used, kArenaHeaderBytes, t.arena_bytes);
  auto& w = t.writer;
  std::uint64_t off = kArenaHeaderBytes;
  std::uint64_t clean_end = off;          // end of the last intact record
  std::uint64_t trailing_torn_bytes = 0;  // torn records after clean_end (counted as garbage so far)
  while (off + kRecordHeaderBytes <= t.arena_bytes) {
    const std::byte* rec = t.base + off;
    const RecordMeta meta = load_meta(rec);
    if (meta.magic != kRecordMagic) {
      if (off < high_water) ++w.torn_records;   // space was reserved for a record whose header never landed
      break;
    }
    const std::uint64_t size = record_footprint(meta);
    const bool sane = meta.key_len <= kMaxKeyBytes &&
                      (meta.kind == static_cast<std::uint8_t>(RecordKind::Value) ||
                       meta.kind == static_cast<std::uint8_t>(RecordKind::Erased)) &&
                      size % kRecordAlign == 0 && size <= t.arena_bytes - off;
    if (!sane) {   // sizes cannot be trusted: nothing after this record can be found
      ++w.torn_records;
      break;
    }
    std::uint64_t len_crc;
    std::memcpy(&len_crc, rec + kLenCrcOffset, sizeof len_crc);
    const std::uint32_t len = len_of(len_crc);
    const std::string_view key(reinterpret_cast<const char*>(rec + kRecordHeaderBytes), meta.key_len);
    const bool intact = len <= meta.value_capacity &&
                        (meta.kind == static_cast<std::uint8_t>(RecordKind::Value) || len == 0) &&
                        crc_of(len_crc) == record_checksum(meta, len, key.data(), rec + value_offset(meta.key_len));
    if (!intact) {
      ++w.torn_records;
      w.garbage_bytes += size;
      trailing_torn_bytes += size;
      off += size;
      continue;
    }
    const std::uint64_t hash = hash_bytes(key);
    const Probe p = probe_for_write(t, key, hash);
    if (meta.kind == static_cast<std::uint8_t>(RecordKind::Value)) {
      if (p.found != nullptr) {
        // relaxed: single-threaded here; no reader exists yet.
        const std::uint64_t old = std::atomic_ref<std::uint64_t>(p.found->ref).load(std::memory_order_relaxed);
        w.garbage_bytes += record_footprint(load_meta(t.base + ref_offset(old)));
        set_slot(*p.found, make_ref(hash, off));
      } else {
        if (p.free == nullptr || (!p.free_is_tombstone && w.live + w.tombstones + 1 > w.max_occupied)) {
          return Error{Status::IndexFull, "Hyperion: the store file holds more keys than slots * max_load"};
        }
        set_slot(*p.free, make_ref(hash, off));
        ++w.live;
        if (p.free_is_tombstone) --w.tombstones;
      }
    } else {
      w.garbage_bytes += size;
      if (p.found != nullptr) {
        const std::uint64_t old = std::atomic_ref<std::uint64_t>(p.found->ref).load(std::memory_order_relaxed);
        w.garbage_bytes += record_footprint(load_meta(t.base + ref_offset(old)));
        set_slot(*p.found, kTombstoneRef);
        --w.live;
        ++w.tombstones;
        release_tombstones_before_empty(t, static_cast<std::uint64_t>(p.found - t.slots));
      }
    }
    off += size;
    clean_end = off;
    trailing_torn_bytes = 0;
  }
  // Everything after the last intact record is a torn append (or never-finished bytes of one): zero
  // it and append there again, so the space is reused and a later scan cannot misread it. Torn
  // records before the last intact one stay (as counted garbage) until compact().
  w.garbage_bytes -= trailing_torn_bytes;
  const std::uint64_t dirty_end = std::max(high_water, off);
  if (dirty_end > clean_end) std::memset(t.base + clean_end, 0, dirty_end - clean_end);
  w.used = clean_end;
  reinterpret_cast<FileHeader*>(t.base)->used = clean_end;
  return {};
}

// ---- writer --------------------------------------------------------------------------------------

void Hyperion::release_tombstones_before_empty(HyperionTable& t, std::uint64_t index) noexcept {
  // A run of tombstones that ends in an empty slot stops no probe that could find a key (no live key
  // lies after it in the run), so it can become empty again. Readers probing through it concurrently
  // see a tombstone or an empty slot; either way they answer NotFound for keys not in the run.
  const auto ref_at = [&](std::uint64_t i) {
    // relaxed: only the writer (this thread) stores ref.
    return std::atomic_ref<std::uint64_t>(t.slots[i].ref).load(std::memory_order_relaxed);
  };
  if (ref_at((index + 1) & t.mask) != kEmptyRef) return;
  std::uint64_t i = index;
  for (std::uint64_t n = 0; n <= t.mask && ref_at(i) == kTombstoneRef; ++n, i = (i - 1) & t.mask) {
    set_slot(t.slots[i], kEmptyRef);
    --t.writer.tombstones;
  }
}

Status Hyperion::erase(std::string_view key) noexcept {
  const WriterScope writer_scope(*shared_);
  if (key.size() > kMaxKeyBytes) return Status::KeyTooLarge;
  HyperionTable& t = *table_;
  const std::uint64_t hash = hash_bytes(key);
  const Probe p = probe_for_write(t, key, hash);
  if (p.found == nullptr) return Status::NotFound;
  if (t.arena.page_kind() == MappedRegion::PageKind::File) {
    // Durable erase: an Erased record, so a restart does not resurrect the key.
    const std::uint64_t off = append_record(t, key, nullptr, 0, 0, RecordKind::Erased);
    if (off == 0) return Status::ArenaFull;
    t.writer.garbage_bytes += record_footprint(load_meta(t.base + off));
  }
  // relaxed: only the writer stores ref.
  const std::uint64_t old = std::atomic_ref<std::uint64_t>(p.found->ref).load(std::memory_order_relaxed);
  t.writer.garbage_bytes += record_footprint(load_meta(t.base + ref_offset(old)));
  set_slot(*p.found, kTombstoneRef);
  --t.writer.live;
  ++t.writer.tombstones;
  release_tombstones_before_empty(t, static_cast<std::uint64_t>(p.found - t.slots));
  return Status::Ok;
}

Result<void> Hyperion::compact() {
  const WriterScope writer_scope(*shared_);
  reclaim_retired();
  HyperionShared& sh = *shared_;
  if (sh.retired_count == kMaxRetiredTables) {
    return Error{Status::Retry, "Hyperion: old tables are still pinned by readers; compact later"};
  }
  const std::string tmp_path = options_.path.empty() ? std::string() : options_.path + ".compact";
  auto made = make_table(options_, tmp_path, /*fresh=*/true);
  if (!made) return made.error();
  std::unique_ptr<HyperionTable> fresh = std::move(made.value());
  const HyperionTable& old = *table_;
  for (std::uint64_t i = 0; i <= old.mask; ++i) {
    // relaxed: only the writer (this thread) stores ref.
    const std::uint64_t ref = std::atomic_ref<std::uint64_t>(old.slots[i].ref).load(std::memory_order_relaxed);
    if (!ref_is_live(ref)) continue;
    const std::byte* rec = old.base + ref_offset(ref);
    const RecordMeta meta = load_meta(rec);
    std::uint64_t len_crc;   // plain read: only this thread writes records
    std::memcpy(&len_crc, rec + kLenCrcOffset, sizeof len_crc);
    const std::string_view key(reinterpret_cast<const char*>(rec + kRecordHeaderBytes), meta.key_len);
    const std::uint64_t hash = hash_bytes(key);
    // Keep the record's capacity, so keys updated in place keep being updated in place.
    const std::uint64_t off = append_record(*fresh, key, rec + value_offset(meta.key_len), len_of(len_crc),
                                            meta.value_capacity, RecordKind::Value);
    const Probe p = probe_for_write(*fresh, key, hash);
    if (off == 0 || p.free == nullptr) return Error{Status::ArenaFull, "Hyperion: compaction ran out of room"};
    set_slot(*p.free, make_ref(hash, off));
    ++fresh->writer.live;
  }
  fresh->writer.torn_records = old.writer.torn_records;
  if (!options_.path.empty() && std::rename(tmp_path.c_str(), options_.path.c_str()) != 0) {
    return Error{Status::IoError, "Hyperion: rename '" + tmp_path + "' -> '" + options_.path + "' failed"};
  }
  HyperionTable* retired = table_;
  table_ = fresh.release();
  // seq_cst: pairs with the seq_cst load of current in Reader::pin() (argument at the top of the file).
  sh.current.exchange(table_, std::memory_order_seq_cst);
  // seq_cst: pairs with the seq_cst epoch load in Reader::pin().
  const std::uint64_t retire_epoch = sh.epoch.fetch_add(1, std::memory_order_seq_cst) + 1;
  sh.retired[sh.retired_count++] = {retired, retire_epoch};
  ++sh.compactions;
  reclaim_retired();
  return {};
}

std::size_t Hyperion::reclaim() noexcept {
  const WriterScope writer_scope(*shared_);
  return reclaim_retired();
}

std::size_t Hyperion::reclaim_retired() noexcept {
  HyperionShared& sh = *shared_;
  std::size_t kept = 0;
  for (std::size_t i = 0; i < sh.retired_count; ++i) {
    const HyperionShared::Retired r = sh.retired[i];
    bool in_use = false;
    for (const ReaderSlot& reader : sh.readers) {
      // seq_cst: pairs with the seq_cst epoch store in Reader::pin() (and acquires the release store
      // of kIdle in Reader::unpin(), so a reader's last loads from the table precede the delete).
      if (reader.epoch.load(std::memory_order_seq_cst) < r.epoch) {
        in_use = true;
        break;
      }
    }
    if (in_use) {
      sh.retired[kept++] = r;
    } else {
      delete r.table;
    }
  }
  sh.retired_count = kept;
  return kept;
}

Result<void> Hyperion::sync() const { return table_->arena.sync(); }

// ---- stats and readers ---------------------------------------------------------------------------

HyperionStats Hyperion::stats() const {
  const HyperionTable& t = *table_;
  HyperionStats s;
  s.live = t.writer.live;
  s.tombstones = t.writer.tombstones;
  s.slots = t.mask + 1;
  s.max_occupied = t.writer.max_occupied;
  s.bytes_used = t.writer.used - kArenaHeaderBytes;
  s.bytes_capacity = t.arena_bytes - kArenaHeaderBytes;
  s.garbage_bytes = t.writer.garbage_bytes;
  s.torn_records = t.writer.torn_records;
  s.compactions = shared_->compactions;
  s.retired_tables = shared_->retired_count;
  for (const ReaderSlot& r : shared_->readers) {
    s.readers += r.claimed.load(std::memory_order_relaxed) ? 1 : 0;   // relaxed: a statistic
  }
  s.huge_pages = t.arena.huge_pages();
  s.file_backed = t.arena.page_kind() == MappedRegion::PageKind::File;
  for (std::uint64_t i = 0; i <= t.mask; ++i) {
    // relaxed: a writer-side read; only this thread stores ref.
    const std::uint64_t ref = std::atomic_ref<std::uint64_t>(t.slots[i].ref).load(std::memory_order_relaxed);
    if (!ref_is_live(ref)) continue;
    const std::byte* rec = t.base + ref_offset(ref);
    const RecordMeta meta = load_meta(rec);
    const std::uint64_t home = hash_bytes(rec + kRecordHeaderBytes, meta.key_len) & t.mask;
    const std::uint64_t distance = (i - home) & t.mask;
    ++s.probe_histogram[std::min<std::uint64_t>(distance, HyperionStats::kProbeBuckets - 1)];
  }
  return s;
}

Result<Hyperion::Reader> Hyperion::reader() const {
  for (ReaderSlot& slot : shared_->readers) {
    bool expected = false;
    // acq_rel: pairs with the release store of claimed in ~Reader(), so a reused registration starts
    // after its previous owner's last use.
    if (slot.claimed.compare_exchange_strong(expected, true, std::memory_order_acq_rel)) {
      return Reader(shared_.get(), &slot);
    }
  }
  return Error{Status::Unsupported,
               "Hyperion: all " + std::to_string(kMaxReaders) + " reader registrations are in use"};
}

Hyperion::Reader::~Reader() {
  if (slot_ == nullptr) return;
  assert(depth_ == 0 && "Reader destroyed while a ReadGuard is alive");
  // release: pairs with the seq_cst load in reclaim(); this reader is out of every table.
  slot_->epoch.store(ReaderSlot::kIdle, std::memory_order_release);
  // release: pairs with the acq_rel compare-exchange in Hyperion::reader().
  slot_->claimed.store(false, std::memory_order_release);
}

}  // namespace hypergate::kv
