// OrderBook: see order_book.hpp for the contract and the reasons behind the layout.
#include "market/order_book.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

// The helpers of the five operations (probe, store, erase, level search, add to / take from a level)
// are forced inline into them: as calls they cost a fifth of the pipeline's instructions in saved
// registers, spilled flags and reloaded members (callgrind, replay feed: 392.6 -> 332.6 M Ir per pass).
// They are declared inline in the header and used only in this file.
#define HG_BOOK_INLINE [[gnu::always_inline]] inline

namespace hypergate::market {

namespace {
// Keeps 2 * max_orders (the index capacity) inside 32 bits.
constexpr std::uint32_t kMaxOrdersLimit = 1u << 30;
constexpr std::uint32_t kLevelCapacityLimit = 1u << 30;
}  // namespace

OrderBook::OrderBook(const Options& options)
    : max_orders_(std::clamp<std::uint32_t>(options.max_orders, 1, kMaxOrdersLimit)) {
  const std::uint32_t level_capacity =
      std::clamp<std::uint32_t>(options.level_capacity, kMinBlock, kLevelCapacityLimit);
  // Load factor <= 1/2: probes stay short and the probe loop always finds an empty slot.
  const std::uint32_t index_capacity = std::max<std::uint32_t>(16, std::bit_ceil(2 * max_orders_));
  index_mask_ = index_capacity - 1;
  index_bits_ = std::countr_zero(index_capacity);
  index_shift_ = 64 - index_bits_;
  symbols_.resize(kLocates);
  // Zero-filled: every slot is empty (0 shares), every level key and quantity 0.
  index_ = kv::MappedArray<Slot>::create_or_throw(index_capacity, true);
  // kKeyPadding keys of padding: the level search always reads 32 keys from a block's start, which runs
  // past a block of 8 or 16 levels, at the arena's end into the padding (read, never written or used).
  keys_ = kv::MappedArray<Key>::create_or_throw(std::size_t{level_capacity} + kKeyPadding, true);
  qty_ = kv::MappedArray<LevelQty>::create_or_throw(level_capacity, true);
  reset_counters();
}

void OrderBook::reset_counters() noexcept {
  displaced_ = 0;
  free_blocks_.fill(kNoBlockOffset);
  level_bump_ = 0;
  level_slots_in_use_ = 0;
  orders_live_ = 0;
  rejects_.fill(0);
}

void OrderBook::reset() noexcept {
  for (SymbolBook& b : symbols_) b.sides = {};
  for (Slot& s : index_) s = Slot{};
  reset_counters();
}

void OrderBook::set_symbol(std::uint16_t locate, std::string_view stock) noexcept {
  auto& name = symbols_[locate].name;
  name.fill(' ');
  // An empty view may have a null data(): memcpy's pointers must not be null even for 0 bytes.
  if (!stock.empty()) std::memcpy(name.data(), stock.data(), std::min(stock.size(), kSymbolSize));
}

// ---------------------------------------------------------------------------------------------
// Order flow
// ---------------------------------------------------------------------------------------------

BookOutcome OrderBook::add(std::uint16_t locate, std::uint64_t ref, Side side, std::uint32_t shares,
                           std::uint32_t price) noexcept {
  if (shares == 0) [[unlikely]] return reject(BookReject::kZeroShares, locate);
  const Where at = probe(ref);
  if (index_[at.slot].shares != 0) [[unlikely]] return reject(BookReject::kDuplicateRef, locate);
  if (orders_live_ >= max_orders_) [[unlikely]] return reject(BookReject::kPoolExhausted, locate);
  bool top_changed = false;
  std::uint8_t depth = 0;
  if (!add_to_level(symbols_[locate], side, price, shares, top_changed, depth)) [[unlikely]] {
    return reject(BookReject::kLevelsExhausted, locate);
  }
  store_new(at, Slot{ref, price, shares, locate, side, depth});
  ++orders_live_;
  return {locate, true, top_changed, BookReject::kNone};
}

BookOutcome OrderBook::reduce(std::uint64_t ref, std::uint32_t shares) noexcept {
  const Where at = probe(ref);
  Slot& o = index_[at.slot];
  if (o.shares == 0) [[unlikely]] return reject(BookReject::kUnknownRef);
  const std::uint16_t locate = o.locate;
  if (shares == 0) [[unlikely]] return {locate, false, false, BookReject::kNone};
  bool top_changed = false;
  if (shares < o.shares) {
    o.shares -= shares;
    remove_from_level(symbols_[locate], o.side, o.price, shares, false, top_changed, o.depth);
    return {locate, true, top_changed, BookReject::kNone};
  }
  const bool over = shares > o.shares;
  drop_order(at, top_changed);
  if (over) [[unlikely]] return reject(BookReject::kSharesExceedRemaining, locate, true, top_changed);
  return {locate, true, top_changed, BookReject::kNone};
}

BookOutcome OrderBook::remove(std::uint64_t ref) noexcept {
  const Where at = probe(ref);
  if (index_[at.slot].shares == 0) [[unlikely]] return reject(BookReject::kUnknownRef);
  const std::uint16_t locate = index_[at.slot].locate;
  bool top_changed = false;
  drop_order(at, top_changed);
  return {locate, true, top_changed, BookReject::kNone};
}

BookOutcome OrderBook::replace(std::uint64_t old_ref, std::uint64_t new_ref, std::uint32_t shares,
                               std::uint32_t price) noexcept {
  const Where old_at = probe(old_ref);
  Slot& o = index_[old_at.slot];
  if (o.shares == 0) [[unlikely]] return reject(BookReject::kUnknownRef);
  const std::uint16_t locate = o.locate;
  const Side side = o.side;
  if (shares == 0) [[unlikely]] return reject(BookReject::kZeroShares, locate);
  Where new_at = old_at;
  if (new_ref != old_ref) {
    new_at = probe(new_ref);
    if (index_[new_at.slot].shares != 0) [[unlikely]] return reject(BookReject::kDuplicateRef, locate);
  }
  SymbolBook& book = symbols_[locate];
  bool top_changed = false;
  std::uint8_t depth = o.depth;
  if (price == o.price) {
    // Same level: only its shares change (the order count stays), no level comes or goes.
    change_level_shares(book, side, price, o.shares, shares, top_changed, depth);
  } else {
    // Unlike the other operations, a replace can touch the best level and leave it as it was (the
    // order moves from one price to another and back, or leaves the best level for a level that
    // becomes the same): compare the side's best before and after instead of trusting the flags.
    const LevelTop before = side_top(book, side);
    bool touched = false;
    remove_from_level(book, side, o.price, o.shares, true, touched, depth);
    if (!add_to_level(book, side, price, shares, touched, depth)) [[unlikely]] {
      // The old order is already off its level: finish removing it (see the contract).
      --orders_live_;
      erase_slot(old_at);
      return reject(BookReject::kLevelsExhausted, locate, true, touched && before != side_top(book, side));
    }
    top_changed = touched && before != side_top(book, side);
  }
  if (new_ref == old_ref) {
    o.price = price;
    o.shares = shares;
    o.depth = depth;
  } else {
    erase_slot(old_at);
    // erase_slot may shift entries back into the slots before an empty one, so the probe's empty slot
    // is still right only when it is the new ref's home (nothing before it on its probe path).
    if (new_at.slot != new_at.home) new_at = probe(new_ref);
    store_new(new_at, Slot{new_ref, price, shares, locate, side, depth});
  }
  return {locate, true, top_changed, BookReject::kNone};
}

HG_BOOK_INLINE void OrderBook::drop_order(Where at, bool& top_changed) noexcept {
  Slot& o = index_[at.slot];
  remove_from_level(symbols_[o.locate], o.side, o.price, o.shares, true, top_changed, o.depth);
  erase_slot(at);
  --orders_live_;
}

// ---------------------------------------------------------------------------------------------
// Index: linear probing, backward-shift deletion
// ---------------------------------------------------------------------------------------------

HG_BOOK_INLINE OrderBook::Where OrderBook::probe(std::uint64_t ref) const noexcept {
  const std::size_t h = home(ref);
  std::size_t i = h;
  // Terminates: at most max_orders_ slots are used and the table has at least twice as many.
  while (index_[i].shares != 0 && index_[i].ref != ref) i = (i + 1) & index_mask_;
  return {i, h};
}

HG_BOOK_INLINE void OrderBook::store_new(Where at, const Slot& order) noexcept {
  index_[at.slot] = order;
  if (at.slot != at.home) ++displaced_;
}

HG_BOOK_INLINE void OrderBook::erase_slot(Where at) noexcept {
  if (at.home != at.slot) --displaced_;
  std::size_t hole = at.slot;
  index_[hole].shares = 0;
  // Only an entry away from its home can belong in the hole. With none left (the common case: refs
  // are assigned in sequence and each has its own home), the scan below would move nothing.
  if (displaced_ == 0) return;
  std::size_t j = hole;
  for (;;) {
    j = (j + 1) & index_mask_;
    if (index_[j].shares == 0) return;
    const std::size_t h = home(index_[j].ref);
    // The entry at j may fill the hole unless its home lies cyclically in (hole, j]: then the
    // hole is before its home and a lookup starting at the home would never see it there.
    const bool home_after_hole = hole <= j ? (h > hole && h <= j) : (h > hole || h <= j);
    if (!home_after_hole) {  // j is away from its home h (h == j would be in (hole, j])
      index_[hole] = index_[j];
      index_[j].shares = 0;
      if (h == hole) --displaced_;
      hole = j;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Levels
// ---------------------------------------------------------------------------------------------

namespace {

// Keys below `key` among keys[0, n), n <= 32. The keys are sorted, so the lanes that compare below
// form a prefix: the 32 keys from `keys` become 32 mask bits of "not below", and the count is the
// number of trailing zeros. Lanes at or past n are read and masked off: they lie in the block or, for a
// block smaller than 32 levels, in the arena after it (other blocks, or the arena's kKeyPadding keys at
// its end).
inline std::uint32_t count_below(const std::int32_t* keys, std::uint32_t n, std::int32_t key) noexcept {
#if defined(__SSE2__)
  // "Not below" is keys[i] > key - 1: SSE2's compare (pcmpgtd) overwrites its first operand, which
  // is then the freshly loaded keys, not the broadcast key that a keys[i] < key compare would have to
  // copy first. The smallest key has no key - 1: nothing is below it (the select at the end).
  // Two groups of four compare results (all ones / all zeros) pack to eight bytes whose sign bits
  // movemask collects; the prefix is counted by BSF/TZCNT (x86-64's baseline has no POPCNT).
  const bool smallest = key == std::numeric_limits<std::int32_t>::min();
  const __m128i k = _mm_set1_epi32(smallest ? key : key - 1);
  // Always all four groups of eight: a loop over ceil(n / 8) groups mispredicts its exit as the sides'
  // depths vary, and the fixed form is no more instructions (the packs are shared).
  auto group = [&](std::uint32_t i) noexcept {
    __m128i lo;
    __m128i hi;
    std::memcpy(&lo, keys + i, sizeof lo);  // unaligned 16-byte loads
    std::memcpy(&hi, keys + i + 4, sizeof hi);
    return _mm_packs_epi32(_mm_cmpgt_epi32(lo, k), _mm_cmpgt_epi32(hi, k));   // eight 16-bit results
  };
  const __m128i low16 = _mm_packs_epi16(group(0), group(8));     // sixteen 8-bit results
  const __m128i high16 = _mm_packs_epi16(group(16), group(24));
  std::uint64_t not_below = static_cast<std::uint64_t>(static_cast<unsigned>(_mm_movemask_epi8(low16))) |
                            static_cast<std::uint64_t>(static_cast<unsigned>(_mm_movemask_epi8(high16))) << 16;
  not_below |= ~std::uint64_t{0} << n;  // n <= 32: the shift is defined
  const auto below = static_cast<std::uint32_t>(std::countr_zero(not_below));
  return smallest ? 0 : below;
#else
  std::uint32_t below = 0;
  for (std::uint32_t i = 0; i < n; ++i) below += keys[i] < key ? 1u : 0u;
  return below;
#endif
}

constexpr std::uint32_t kCountedLevels = 32;   // the best levels searched by counting

}  // namespace

HG_BOOK_INLINE std::uint32_t OrderBook::find_level(const Key* keys, std::uint32_t size, Key key) noexcept {
  if (size <= kCountedLevels) return count_below(keys, size, key);
  const std::uint32_t base = size - kCountedLevels;
  // Every key before `base` is below keys[base]: when that one is below `key`, so are they all.
  if (keys[base] < key) return base + count_below(keys + base, kCountedLevels, key);
  // Deep in the book: a branch-free lower bound over keys[0, base].
  const Key* first = keys;
  std::uint32_t len = base + 1;
  while (len > 1) {
    const std::uint32_t half = len / 2;
    first = first[half - 1] < key ? first + half : first;
    len -= half;
  }
  return static_cast<std::uint32_t>(first - keys) + (*first < key ? 1u : 0u);
}

namespace {
// A level's distance from the best one, as an order remembers it (saturated: 255 = "search").
inline std::uint8_t depth_of(std::uint32_t size, std::uint32_t pos) noexcept {
  return static_cast<std::uint8_t>(std::min<std::uint32_t>(size - 1 - pos, 255));
}
}  // namespace

HG_BOOK_INLINE std::uint32_t OrderBook::level_of(const Key* keys, std::uint32_t size, Key key,
                                                std::uint8_t& depth) noexcept {
  // A side of up to 32 levels is counted, always: count_below() has no branch on the data, while the
  // depth hint's checks below are branches on whether a level came or went since the order last saw
  // its own, which a feed makes a coin toss (callgrind --branch-sim, replay feed: 0.68 fewer
  // mispredicts per message for 20 more instructions; replay_bench 15.3 -> 17.6 M msgs/s, same run).
  if (size <= kCountedLevels) {
    const std::uint32_t pos = count_below(keys, size, key);
    if (pos >= size || keys[pos] != key) [[unlikely]] return kNoLevel;
    return pos;
  }
  // Deeper sides: the level is where the order last saw it unless a better level came or went since,
  // most often by one: one better level came (the order's level is one further from the best) or went
  // (one closer). Both neighbours are checked before a search.
  std::uint32_t pos = size - 1 - depth;
  if (depth < size && keys[pos] == key) return pos;
  const std::uint32_t further = depth + 1;   // its depth if a better level came
  if (further < size && keys[size - 1 - further] == key) {
    pos = size - 1 - further;
  } else if (depth != 0 && depth <= size && keys[size - depth] == key) {   // one went
    pos = size - depth;
  } else {
    pos = find_level(keys, size, key);
    if (pos >= size || keys[pos] != key) [[unlikely]] return kNoLevel;
  }
  depth = depth_of(size, pos);
  return pos;
}

HG_BOOK_INLINE bool OrderBook::add_to_level(SymbolBook& book, Side side, std::uint32_t price,
                                            std::uint32_t shares, bool& top_changed,
                                            std::uint8_t& depth) noexcept {
  SideLevels& s = book.sides[static_cast<std::size_t>(side)];
  const Key key = key_of(side, price);
  if (s.size_class == kNoBlock) {
    const std::uint32_t offset = alloc_block(0);
    if (offset == kNoBlockOffset) return false;
    s.offset = offset;
    s.size_class = 0;
  }
  Key* keys = keys_.data() + s.offset;
  LevelQty* qty = qty_.data() + s.offset;
  const std::uint32_t pos = find_level(keys, s.size, key);
  if (pos < s.size && keys[pos] == key) {
    qty[pos].shares += shares;
    ++qty[pos].orders;
    top_changed |= pos + 1 == s.size;
    depth = depth_of(s.size, pos);
    return true;
  }
  if (s.size == (kMinBlock << s.size_class)) {
    const auto next_class = static_cast<std::uint8_t>(s.size_class + 1);
    if (next_class >= kSizeClasses) return false;
    const std::uint32_t offset = alloc_block(next_class);
    if (offset == kNoBlockOffset) return false;
    std::memcpy(keys_.data() + offset, keys, s.size * sizeof(Key));
    std::memcpy(qty_.data() + offset, qty, s.size * sizeof(LevelQty));
    free_block(s.offset, s.size_class);
    s.offset = offset;
    s.size_class = next_class;
    keys = keys_.data() + offset;
    qty = qty_.data() + offset;
  }
  const std::uint32_t tail = s.size - pos;
  std::memmove(keys + pos + 1, keys + pos, tail * sizeof(Key));
  std::memmove(qty + pos + 1, qty + pos, tail * sizeof(LevelQty));
  keys[pos] = key;
  qty[pos] = LevelQty{shares, 1};
  ++s.size;
  top_changed |= pos + 1 == s.size;
  depth = depth_of(s.size, pos);
  return true;
}

HG_BOOK_INLINE void OrderBook::remove_from_level(SymbolBook& book, Side side, std::uint32_t price,
                                                 std::uint32_t shares, bool order_gone, bool& top_changed,
                                                 std::uint8_t& depth) noexcept {
  SideLevels& s = book.sides[static_cast<std::size_t>(side)];
  Key* keys = keys_.data() + s.offset;
  LevelQty* qty = qty_.data() + s.offset;
  const std::uint32_t pos = level_of(keys, s.size, key_of(side, price), depth);
  if (pos == kNoLevel) [[unlikely]] return;   // every live order is counted in exactly one level
  top_changed |= pos + 1 == s.size;
  qty[pos].shares -= shares;
  if (!order_gone) return;
  if (--qty[pos].orders != 0) return;
  // Every order has at least one share, so no orders means no shares: the level goes.
  const std::uint32_t tail = s.size - pos - 1;
  std::memmove(keys + pos, keys + pos + 1, tail * sizeof(Key));
  std::memmove(qty + pos, qty + pos + 1, tail * sizeof(LevelQty));
  if (--s.size == 0) {
    free_block(s.offset, s.size_class);
    s.size_class = kNoBlock;
  }
}

void OrderBook::change_level_shares(SymbolBook& book, Side side, std::uint32_t price, std::uint32_t old_shares,
                                    std::uint32_t new_shares, bool& top_changed, std::uint8_t& depth) noexcept {
  SideLevels& s = book.sides[static_cast<std::size_t>(side)];
  const std::uint32_t pos = level_of(keys_.data() + s.offset, s.size, key_of(side, price), depth);
  if (pos == kNoLevel) [[unlikely]] return;   // cannot happen: the order is on it
  LevelQty& q = qty_[s.offset + pos];
  q.shares = q.shares - old_shares + new_shares;
  top_changed |= pos + 1 == s.size && old_shares != new_shares;
}

std::uint32_t OrderBook::alloc_block(std::uint8_t size_class) noexcept {
  const std::uint32_t block = kMinBlock << size_class;
  std::uint32_t offset = free_blocks_[size_class];
  if (offset != kNoBlockOffset) {
    free_blocks_[size_class] = static_cast<std::uint32_t>(keys_[offset]);   // free blocks chain through their first key
  } else {
    if (static_cast<std::uint64_t>(level_bump_) + block > qty_.size()) return kNoBlockOffset;
    offset = level_bump_;
    level_bump_ += block;
  }
  level_slots_in_use_ += block;
  return offset;
}

void OrderBook::free_block(std::uint32_t offset, std::uint8_t size_class) noexcept {
  keys_[offset] = static_cast<Key>(free_blocks_[size_class]);
  free_blocks_[size_class] = offset;
  level_slots_in_use_ -= kMinBlock << size_class;
}

// ---------------------------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------------------------

OrderBook::LevelTop OrderBook::side_top(const SymbolBook& book, Side side) const noexcept {
  const SideLevels& s = book.sides[static_cast<std::size_t>(side)];
  if (s.size == 0) return {};
  const std::uint32_t i = s.offset + s.size - 1;
  return {keys_[i], qty_[i].shares};
}

TopOfBook OrderBook::top(std::uint16_t locate) const noexcept {
  const SymbolBook& b = symbols_[locate];
  TopOfBook t;
  const SideLevels& bids = b.sides[0];
  if (bids.size != 0) {
    const std::uint32_t i = bids.offset + bids.size - 1;
    t.bid_price = price_of(Side::kBuy, keys_[i]);
    t.bid_qty = qty_[i].shares;
  }
  const SideLevels& asks = b.sides[1];
  if (asks.size != 0) {
    const std::uint32_t i = asks.offset + asks.size - 1;
    t.ask_price = price_of(Side::kSell, keys_[i]);
    t.ask_qty = qty_[i].shares;
  }
  return t;
}

std::size_t OrderBook::depth(std::uint16_t locate, Side side, std::span<DepthLevel> out) const noexcept {
  const SideLevels& s = symbols_[locate].sides[static_cast<std::size_t>(side)];
  const std::size_t n = std::min<std::size_t>(out.size(), s.size);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t at = s.offset + s.size - 1 - i;
    out[i] = DepthLevel{price_of(side, keys_[at]), qty_[at].orders, qty_[at].shares};
  }
  return n;
}

bool OrderBook::find(std::uint64_t ref, OrderView& out) const noexcept {
  const Slot& o = index_[probe(ref).slot];
  if (o.shares == 0) return false;
  out = OrderView{o.locate, o.side, o.shares, o.price};
  return true;
}

bool OrderBook::index_consistent() const noexcept {
  std::uint64_t live = 0;
  std::uint64_t displaced = 0;
  for (std::size_t i = 0; i < index_.size(); ++i) {
    if (index_[i].shares == 0) continue;
    ++live;
    // Reachable: no empty slot between the entry's home and where it sits.
    for (std::size_t k = home(index_[i].ref); k != i; k = (k + 1) & index_mask_) {
      if (index_[k].shares == 0) return false;
    }
    if (home(index_[i].ref) != i) ++displaced;
  }
  return live == orders_live_ && displaced == displaced_;
}

std::uint64_t OrderBook::rejects_total() const noexcept {
  std::uint64_t total = 0;
  for (std::size_t i = 1; i < kBookRejectCount; ++i) total += rejects_[i];
  return total;
}

}  // namespace hypergate::market

#undef HG_BOOK_INLINE
