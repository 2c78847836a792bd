#pragma once
// OrderBook: per-order, price-level and top-of-book state of a full-depth order feed (ITCH 5.0
// semantics, PROTOCOLS.md §3), in plain terms: locates, order references, sides, shares, Price(4).
//
// CONTRACT
// - One writer thread (the pipeline's worker); no internal synchronisation. Readers on other threads
//   read what the pipeline publishes (Hyperion, top-of-book updates), never the book itself.
// - All memory is allocated by the constructor. add/execute/cancel/remove/replace/top/depth never
//   allocate, lock or make a syscall. Running out of a preallocated resource (max_orders live orders, level
//   arena) is a counted reject, the book stays consistent.
// - Every operation returns a BookOutcome: the affected locate, whether that locate's top of book
//   (best price or the quantity at it, on either side) changed, and a reject reason or kNone.
//   Rejects are counted per reason (rejects()).
// - Defined behaviour on inconsistent input (a feed we joined late, or a lost packet):
//     add with a live ref             -> kDuplicateRef, nothing changes
//     add/replace with 0 shares       -> kZeroShares, nothing changes
//     execute/cancel/remove/replace of an unknown ref -> kUnknownRef, nothing changes
//     replace to a new ref that is live (and differs from the old one) -> kDuplicateRef, nothing changes
//     execute/cancel of MORE shares than the order has -> the order is removed (it cannot have fewer
//       than zero shares, and the exchange says it is gone), the level loses only what the order had,
//       and the outcome is `applied` WITH reason kSharesExceedRemaining (counted).
//     replace whose new price needs a level when the arena is full -> the old order is removed, the
//       new one is not added, reason kLevelsExhausted (applied: the book did change).
//
// WHY IT IS SHAPED SO (the hot path is one hash probe and a few cache lines per message)
// - Symbols: a flat array of 65,536 SymbolBook entries indexed directly by the 16-bit stock locate.
//   No symbol lookup, no bounds check that can fail; an entry is 32 bytes (half a cache line).
// - Orders: an open-addressing map (linear probing, load <= 1/2) from the 64-bit order ref to the
//   order itself: a 24-byte slot holds the ref, price, shares, locate and side, so an execute, cancel
//   or delete finds everything it needs in the cache line the probe already loaded (a separate order
//   pool behind the index costs a second dependent load per message). The slot also remembers how
//   far from the best its level was (a byte that was padding): on a side deeper than the 32 counted
//   levels, an execute, cancel or delete checks that level first and searches the side only when a
//   better level came or went since. Shallower sides are always counted (see level_of(): the hint's
//   checks are branches a live feed mispredicts).
//   The home slot keeps sequentially assigned refs in adjacent slots (see home()). A slot is empty
//   when its shares are 0 (a live order always has at least one share). Deletion shifts the following
//   entries back (no tombstones): ITCH deletes almost every order it adds, and tombstones would fill
//   the table within minutes. max_orders bounds the live orders, so the load stays <= 1/2. The book
//   counts the entries that sit away from their home (after a collision); while there are none, which
//   is the normal state for sequential refs, a delete only clears its slot and scans nothing.
// - Levels: per side per symbol, a SORTED ARRAY with the BEST AT THE BACK (bids ascending by price,
//   asks stored as ~price so that both sides are ascending by key and one code path serves both; the
//   key's sign bit is flipped so that it compares as a signed integer, which is what SSE2 compares),
//   kept as two parallel arrays: the 32-bit keys alone (16 per cache line) and the quantities
//   {shares, orders}. Finding a level counts the keys below the wanted one with SIMD compares, four
//   keys per instruction, sixteen results per mask, all 32 counted levels at once (no loop exit to
//   mispredict) and no branch on the data (a binary search mispredicts about every other step: on a
//   20-level side that costs more than comparing all 20). Beyond the 32 best levels a branch-free
//   binary search over the keys takes over. Inserting or removing a level near the touch
//   moves a few bytes; top of book is the last element: O(1). Arrays live in preallocated arenas
//   carved into power-of-two blocks (8, 16, 32... levels) with one free list per size; a side grows
//   by moving to the next size and returns its block when it empties. A linked list of levels or a
//   tree would chase a pointer per level; a price ladder would waste memory on the 8,000-symbol
//   universe and break on wide-priced symbols.
// - MEMORY: the index (48 MiB at the default 1M orders) and the level arenas are MappedArrays on
//   2 MiB pages when the system has them (transparent huge pages need no setup), for books whose live
//   orders spread over more of the index than 4 KiB pages' TLB reach. (The replay benchmark's feed,
//   ~7,400 live orders, keeps its working set in L2 and shows no difference either way.) All of it is
//   zero-filled and pre-faulted by the constructor, which throws std::bad_alloc when the memory
//   cannot be mapped (ItchPipeline::create turns that into an error naming max_orders/max_levels).
//
// IMPLEMENTATION DETAILS
//   symbols_[locate] : { name[8], side[2]: { block offset, size, size class } }
//   keys_, qty_      : [ block | block | ... ]   each block = 8 << class levels; keys_[i] and qty_[i]
//                      describe the same level (key; {shares, orders})
//   index_           : [ Slot{ref, price, shares, locate, side, depth} ... ]  power of two, empty = 0 shares
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "hypergate/kv/mapped_array.hpp"

namespace hypergate::market {

enum class Side : std::uint8_t { kBuy = 0, kSell = 1 };

/// 'B' -> kBuy, 'S' -> kSell; false for anything else (the caller counts that as malformed input).
/// Without a branch on the side: a feed's sides are a coin toss, and a branch on one mispredicts about
/// every other add (callgrind --branch-sim, replay feed: 0.15 mispredicts per message).
[[nodiscard]] constexpr bool side_from_itch(char c, Side& out) noexcept {
  out = static_cast<Side>(c == 'S');
  return (c == 'B') | (c == 'S');
}

enum class BookReject : std::uint8_t {
  kNone = 0,
  kUnknownRef,               ///< execute/cancel/remove/replace of a ref that is not live
  kDuplicateRef,             ///< add (or replace's new ref) of a ref that is already live
  kSharesExceedRemaining,    ///< execute/cancel of more than the order had: order removed anyway
  kZeroShares,               ///< add/replace with 0 shares
  kPoolExhausted,            ///< Options::max_orders orders are live already
  kLevelsExhausted,          ///< no room for a new price level in the level arena
};
inline constexpr std::size_t kBookRejectCount = 7;

[[nodiscard]] constexpr std::string_view to_string(BookReject r) noexcept {
  switch (r) {
    case BookReject::kNone: return "none";
    case BookReject::kUnknownRef: return "unknown_ref";
    case BookReject::kDuplicateRef: return "duplicate_ref";
    case BookReject::kSharesExceedRemaining: return "shares_exceed_remaining";
    case BookReject::kZeroShares: return "zero_shares";
    case BookReject::kPoolExhausted: return "pool_exhausted";
    case BookReject::kLevelsExhausted: return "levels_exhausted";
  }
  return "unknown";
}

/// What one operation did. `applied` says the book changed; `reject` says why the input was not
/// what the book expected (both can be set: see the contract at the top of this file).
struct BookOutcome {
  std::uint16_t locate = 0;      ///< the symbol the operation touched (0 when the ref was unknown)
  bool applied = false;
  bool top_changed = false;      ///< best bid/ask price or quantity of `locate` changed
  BookReject reject = BookReject::kNone;

  [[nodiscard]] bool ok() const noexcept { return reject == BookReject::kNone; }
};

/// Top of book of one symbol. Prices are Price(4) integers; an empty side is 0/0.
struct TopOfBook {
  std::uint32_t bid_price = 0;
  std::uint64_t bid_qty = 0;
  std::uint32_t ask_price = 0;
  std::uint64_t ask_qty = 0;

  friend bool operator==(const TopOfBook&, const TopOfBook&) = default;
};

/// One price level as depth() reports it.
struct DepthLevel {
  std::uint32_t price = 0;
  std::uint32_t orders = 0;
  std::uint64_t shares = 0;

  friend bool operator==(const DepthLevel&, const DepthLevel&) = default;
};

class OrderBook {
 public:
  struct Options {
    std::uint32_t max_orders = 1u << 20;         ///< live orders at once (the index holds twice as many slots)
    std::uint32_t level_capacity = 1u << 20;     ///< price-level slots shared by all symbols and sides
  };
  static constexpr std::size_t kLocates = 65536;   ///< every 16-bit stock locate has its entry
  static constexpr std::size_t kSymbolSize = 8;    ///< ITCH Stock: Alpha(8), space padded

  OrderBook() : OrderBook(Options{}) {}
  explicit OrderBook(const Options& options);

  OrderBook(const OrderBook&) = delete;
  OrderBook& operator=(const OrderBook&) = delete;
  OrderBook(OrderBook&&) noexcept = default;
  OrderBook& operator=(OrderBook&&) noexcept = default;
  ~OrderBook() = default;

  /// Forgets every order, level and counter (keeps symbol names and all memory): a new session.
  /// O(capacity), no allocation; cold path.
  void reset() noexcept;

  // --- symbols (cold path: stock directory messages) ---
  /// Names a locate; `stock` is truncated to 8 characters and space padded.
  void set_symbol(std::uint16_t locate, std::string_view stock) noexcept;
  /// The 8-character space-padded name given by set_symbol, or 8 spaces.
  [[nodiscard]] std::string_view symbol(std::uint16_t locate) const noexcept {
    return {symbols_[locate].name.data(), kSymbolSize};
  }

  // --- order flow (hot path) ---
  BookOutcome add(std::uint16_t locate, std::uint64_t ref, Side side, std::uint32_t shares,
                  std::uint32_t price) noexcept;
  /// E and C: the order trades `shares`; removed when none are left.
  BookOutcome execute(std::uint64_t ref, std::uint32_t shares) noexcept { return reduce(ref, shares); }
  /// X: `shares` are cancelled; removed when none are left.
  BookOutcome cancel(std::uint64_t ref, std::uint32_t shares) noexcept { return reduce(ref, shares); }
  /// D: the order is deleted.
  BookOutcome remove(std::uint64_t ref) noexcept;
  /// U: `old_ref` is removed and `new_ref` added with the same side and stock and the new shares/price.
  BookOutcome replace(std::uint64_t old_ref, std::uint64_t new_ref, std::uint32_t shares,
                      std::uint32_t price) noexcept;

  /// Starts loading the index slot of `ref` into the cache. A pipeline walking a burst calls it a few
  /// messages ahead of the one it applies, so the slot's cache miss overlaps with useful work.
  void prefetch(std::uint64_t ref) const noexcept { __builtin_prefetch(&index_[home(ref)]); }

  // --- queries ---
  [[nodiscard]] TopOfBook top(std::uint16_t locate) const noexcept;
  /// Writes up to out.size() levels of one side, best first; returns how many were written.
  [[nodiscard]] std::size_t depth(std::uint16_t locate, Side side, std::span<DepthLevel> out) const noexcept;
  /// Number of price levels on one side.
  [[nodiscard]] std::size_t level_count(std::uint16_t locate, Side side) const noexcept {
    return symbols_[locate].sides[static_cast<std::size_t>(side)].size;
  }

  /// Whether `ref` is live, and its state.
  struct OrderView {
    std::uint16_t locate = 0;
    Side side = Side::kBuy;
    std::uint32_t shares = 0;
    std::uint32_t price = 0;
  };
  [[nodiscard]] bool find(std::uint64_t ref, OrderView& out) const noexcept;

  // --- counters ---
  [[nodiscard]] std::uint64_t orders_live() const noexcept { return orders_live_; }
  [[nodiscard]] std::uint64_t rejects(BookReject r) const noexcept {
    return rejects_[static_cast<std::size_t>(r)];
  }
  [[nodiscard]] std::uint64_t rejects_total() const noexcept;
  [[nodiscard]] std::uint32_t max_orders() const noexcept { return max_orders_; }
  /// Level slots currently handed out to sides (blocks, not levels: a block of 8 counts 8).
  [[nodiscard]] std::uint64_t level_slots_in_use() const noexcept { return level_slots_in_use_; }
  /// Index entries not in their home slot (they sit after a collision). Usually 0.
  [[nodiscard]] std::uint64_t index_displaced() const noexcept { return displaced_; }
  /// Test check, O(index capacity): every live order is reachable from its home slot, and the live
  /// and displaced counts match the index.
  [[nodiscard]] bool index_consistent() const noexcept;

 private:
  // Level key: bids store the price, asks ~price, so "better" is "greater key" on both sides and the
  // best level is the last element of the side's array.
  struct LevelQty {
    std::uint64_t shares;
    std::uint32_t orders;
  };
  static_assert(sizeof(LevelQty) == 16, "four quantities per cache line");

  struct SideLevels {
    std::uint32_t offset = 0;   ///< first slot of the block in keys_ / qty_
    std::uint32_t size = 0;     ///< levels in use
    std::uint8_t size_class = kNoBlock;   ///< block holds kMinBlock << size_class levels
  };

  struct SymbolBook {
    std::array<char, kSymbolSize> name{' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
    std::array<SideLevels, 2> sides{};
  };
  static_assert(sizeof(SymbolBook) <= 64, "one symbol's header fits a cache line");

  /// One live order (or an empty slot: shares == 0).
  struct Slot {
    std::uint64_t ref = 0;
    std::uint32_t price = 0;
    std::uint32_t shares = 0;
    std::uint16_t locate = 0;
    Side side = Side::kBuy;
    std::uint8_t depth = 0;   ///< its level's distance from the best when last seen: a hint, checked
  };
  static_assert(sizeof(Slot) == 24, "eight slots per three cache lines");

  static constexpr std::uint32_t kNoBlockOffset = 0xFFFFFFFFu;   ///< no block / empty free list
  static constexpr std::uint8_t kNoBlock = 0xFF;
  static constexpr std::uint32_t kMinBlock = 8;
  static constexpr std::size_t kSizeClasses = 28;   // 8 << 27 = 2^30 levels: past any level_capacity
  static constexpr std::size_t kKeyPadding = 32;    ///< keys after the arena that the level search may read

  // Keys are signed: the unsigned order key (price, or ~price for asks) with its sign bit flipped, which
  // keeps the order and lets SSE2's signed compares count them as they are (no bias applied to every
  // loaded key in count_below: eight fewer instructions per search).
  using Key = std::int32_t;   // count_below() in order_book.cpp compares them as SSE2 int32 lanes
  static constexpr Key key_of(Side side, std::uint32_t price) noexcept {
    return static_cast<Key>((side == Side::kBuy ? price : ~price) ^ 0x80000000u);
  }
  static constexpr std::uint32_t price_of(Side side, Key key) noexcept {
    const std::uint32_t k = static_cast<std::uint32_t>(key) ^ 0x80000000u;
    return side == Side::kBuy ? k : ~k;
  }

  /// A side's best level as replace() compares it: key and shares, {0, 0} when the side is empty.
  struct LevelTop {
    Key key = 0;
    std::uint64_t shares = 0;
    friend bool operator==(const LevelTop&, const LevelTop&) = default;
  };
  [[nodiscard]] LevelTop side_top(const SymbolBook& book, Side side) const noexcept;

  BookOutcome reduce(std::uint64_t ref, std::uint32_t shares) noexcept;
  BookOutcome reject(BookReject r, std::uint16_t locate = 0, bool applied = false,
                     bool top_changed = false) noexcept {
    ++rejects_[static_cast<std::size_t>(r)];
    return {locate, applied, top_changed, r};
  }

  // The helpers declared `inline` from here on are defined, forced inline, in order_book.cpp (their
  // only user): as calls they cost a fifth of the pipeline's instructions.
  //
  // Index (ref -> order). The home slot is the ref's low bits rotated by a hash of its high bits
  // (its "epoch" of capacity-many refs): the feed assigns refs in sequence, so orders added close in
  // time sit in adjacent slots (young orders, which take most of the traffic, share cache lines and
  // pages instead of spreading over the whole table), while refs a multiple of the capacity apart
  // land at unrelated places instead of colliding systematically.
  [[nodiscard]] std::size_t home(std::uint64_t ref) const noexcept {
    const std::uint64_t rotation = ((ref >> index_bits_) * 0x9E3779B97F4A7C15ull) >> index_shift_;
    return static_cast<std::size_t>((ref + rotation) & index_mask_);
  }
  /// Where a ref is (or would go) and its home: the callers that store or erase it need both, and
  /// the home is a multiply and three shifts that they would otherwise compute again.
  struct Where {
    std::size_t slot;   ///< slot holding the ref, or the empty slot where it would go
    std::size_t home;
  };
  [[nodiscard]] inline Where probe(std::uint64_t ref) const noexcept;
  /// Empties `at.slot` (the live entry probe() found there) and shifts its followers back.
  inline void erase_slot(Where at) noexcept;
  /// Writes a new entry into the empty slot probe() returned, counting it if displaced.
  inline void store_new(Where at, const Slot& order) noexcept;

  // Levels. add_to_level returns false when a new level was needed and the arena is full.
  // `depth` is the level's distance from the side's best: add_to_level sets it, remove_from_level
  // tries it before searching and refreshes it when it was stale (an order keeps it in its slot).
  [[nodiscard]] inline bool add_to_level(SymbolBook& book, Side side, std::uint32_t price, std::uint32_t shares,
                                         bool& top_changed, std::uint8_t& depth) noexcept;
  inline void remove_from_level(SymbolBook& book, Side side, std::uint32_t price, std::uint32_t shares,
                                bool order_gone, bool& top_changed, std::uint8_t& depth) noexcept;
  /// Position of the level holding `key` for an order whose level was `depth` from the best when last
  /// seen (refreshed when it moved), or kNoLevel. Shared by everything that takes shares off or puts
  /// shares on a live order's level.
  static constexpr std::uint32_t kNoLevel = 0xFFFFFFFFu;
  [[nodiscard]] static inline std::uint32_t level_of(const Key* keys, std::uint32_t size, Key key,
                                                     std::uint8_t& depth) noexcept;
  /// An order of `price` changes from old_shares to new_shares and stays on its level (a replace at
  /// the same price): the level's shares change, its order count does not.
  void change_level_shares(SymbolBook& book, Side side, std::uint32_t price, std::uint32_t old_shares,
                           std::uint32_t new_shares, bool& top_changed, std::uint8_t& depth) noexcept;
  /// Position of `key` in the side's keys (ascending), or the position where it would be inserted:
  /// the number of keys below `key`. `keys` is the start of a block in keys_: the 32 keys from it are
  /// read whatever `size` (past a small block: other blocks or the arena's padding); lanes at or past
  /// `size` are masked off.
  [[nodiscard]] static inline std::uint32_t find_level(const Key* keys, std::uint32_t size, Key key) noexcept;
  [[nodiscard]] std::uint32_t alloc_block(std::uint8_t size_class) noexcept;   // kNoBlockOffset when full
  void free_block(std::uint32_t offset, std::uint8_t size_class) noexcept;

  /// Removes the order in `slot` from its level and the index.
  inline void drop_order(Where at, bool& top_changed) noexcept;
  void reset_counters() noexcept;    ///< free lists, bump pointer, live and displaced counts, rejects

  std::vector<SymbolBook> symbols_;              // 2 MiB, few lines hot: normal pages
  kv::MappedArray<Slot> index_;                   // huge pages when available (see "MEMORY" above)
  kv::MappedArray<Key> keys_;
  kv::MappedArray<LevelQty> qty_;
  std::array<std::uint32_t, kSizeClasses> free_blocks_{};   ///< per size class, kNoBlockOffset = none
  std::array<std::uint64_t, kBookRejectCount> rejects_{};
  std::uint64_t orders_live_ = 0;
  std::uint64_t level_slots_in_use_ = 0;
  std::uint64_t displaced_ = 0;         ///< index entries away from their home slot
  std::uint32_t max_orders_ = 0;
  std::uint32_t level_bump_ = 0;        ///< first never-used slot of keys_ / qty_
  std::uint32_t index_mask_ = 0;
  int index_shift_ = 0;                 ///< 64 - index_bits_
  int index_bits_ = 0;                  ///< log2 of the index capacity
};

}  // namespace hypergate::market
