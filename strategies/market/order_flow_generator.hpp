#pragma once
// OrderFlowGenerator: a seeded, deterministic stream of order-book operations (add, execute, cancel,
// delete, replace) shaped like a full-depth feed, for tests, benchmarks and generators. NOT for the
// hot path: it allocates while it tracks its live orders.
//
// Shape: `symbols` locates (1..symbols, skewed: low locates are busier), each with a mid price that
// random-walks in one-cent ticks; adds sit a geometric number of ticks behind the mid (most within a
// few ticks, 2% deep in the book), so levels collide, fill and empty all the time; the live order
// count hovers around `target_live`. A fraction `invalid_rate` of operations is deliberately wrong
// (unknown refs, duplicate refs, over-executions, zero shares, replace onto a live ref) to exercise
// every reject. The generator mirrors the book's contract (order_book.hpp) to stay mostly valid, but
// it is not a reference: tests compare the book with their own reference implementation.
#include <cstdint>
#include <random>
#include <unordered_map>
#include <vector>

#include "market/order_book.hpp"

namespace hypergate::market {

struct BookOp {
  enum Kind : std::uint8_t { kAdd, kExecute, kCancel, kDelete, kReplace };
  Kind kind = kAdd;
  Side side = Side::kBuy;      ///< kAdd only
  std::uint16_t locate = 0;    ///< kAdd only
  std::uint32_t shares = 0;    ///< kAdd, kExecute, kCancel, kReplace
  std::uint32_t price = 0;     ///< kAdd, kReplace (Price(4))
  std::uint64_t ref = 0;       ///< the order (kReplace: the original)
  std::uint64_t new_ref = 0;   ///< kReplace only
};

/// Applies one operation to anything with OrderBook's operation signatures.
template <class Book>
auto apply_op(Book& book, const BookOp& op) noexcept {
  switch (op.kind) {
    case BookOp::kAdd: return book.add(op.locate, op.ref, op.side, op.shares, op.price);
    case BookOp::kExecute: return book.execute(op.ref, op.shares);
    case BookOp::kCancel: return book.cancel(op.ref, op.shares);
    case BookOp::kDelete: return book.remove(op.ref);
    case BookOp::kReplace: break;
  }
  return book.replace(op.ref, op.new_ref, op.shares, op.price);
}

class OrderFlowGenerator {
 public:
  struct Options {
    std::uint64_t seed = 1;
    std::uint16_t symbols = 100;
    std::uint32_t target_live = 20'000;
    double invalid_rate = 0.001;
  };
  static constexpr std::uint32_t kTick = 100;   // one cent in Price(4)

  explicit OrderFlowGenerator(const Options& options) : opt_(options), rng_(options.seed) {
    if (opt_.symbols == 0) opt_.symbols = 1;
    if (opt_.target_live == 0) opt_.target_live = 1;
    mid_.resize(opt_.symbols + 1u);
    for (auto& m : mid_) m = static_cast<std::uint32_t>(1'000 + uniform(49'000)) * kTick;   // $10..$500
  }

  [[nodiscard]] std::size_t live() const noexcept { return live_.size(); }

  BookOp next() {
    if (chance(opt_.invalid_rate)) return invalid();
    const double fill = static_cast<double>(live_.size()) / opt_.target_live;
    double p_add = 0.5 + 0.4 * (1.0 - fill);
    p_add = p_add < 0.2 ? 0.2 : (p_add > 0.95 ? 0.95 : p_add);
    if (live_.empty() || chance(p_add)) return add();
    const std::uint64_t r = uniform(100);
    if (r < 55) return remove_one();
    if (r < 72) return execute_or_cancel(BookOp::kExecute);
    if (r < 82) return execute_or_cancel(BookOp::kCancel);
    return replace();
  }

 private:
  struct Live {
    std::uint64_t ref;
    std::uint32_t shares;
    std::uint32_t price;
    std::uint16_t locate;
    Side side;
  };

  std::uint64_t uniform(std::uint64_t n) { return std::uniform_int_distribution<std::uint64_t>(0, n - 1)(rng_); }
  bool chance(double p) { return std::uniform_real_distribution<double>(0.0, 1.0)(rng_) < p; }

  std::uint32_t lot() { return chance(0.1) ? static_cast<std::uint32_t>(1 + uniform(99))
                                           : static_cast<std::uint32_t>(100 * (1 + uniform(10))); }
  std::uint16_t pick_locate() {
    const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
    return static_cast<std::uint16_t>(1 + static_cast<std::uint32_t>(u * u * opt_.symbols) % opt_.symbols);
  }
  std::uint32_t price_for(std::uint16_t locate, Side side) {
    std::uint32_t& mid = mid_[locate];
    if (chance(0.03)) {
      mid = chance(0.5) ? mid + kTick : mid - kTick;
      if (mid < 800 * kTick) mid = 800 * kTick;
    }
    std::uint32_t ticks = 0;
    if (chance(0.02)) {
      ticks = static_cast<std::uint32_t>(40 + uniform(400));
    } else {
      while (ticks < 40 && chance(0.6)) ++ticks;
    }
    const std::uint32_t off = (ticks + 1) * kTick;
    return side == Side::kBuy ? mid - off : mid + off;
  }
  Live& pick() { return live_[uniform(live_.size())]; }
  void forget(std::uint64_t ref) {
    const auto it = where_.find(ref);
    const std::size_t i = it->second;
    where_.erase(it);
    if (i + 1 != live_.size()) {
      live_[i] = live_.back();
      where_[live_[i].ref] = i;
    }
    live_.pop_back();
  }

  BookOp add() {
    BookOp op;
    op.kind = BookOp::kAdd;
    op.locate = pick_locate();
    op.side = chance(0.5) ? Side::kBuy : Side::kSell;
    op.ref = next_ref_++;
    op.shares = lot();
    op.price = price_for(op.locate, op.side);
    where_[op.ref] = live_.size();
    live_.push_back(Live{op.ref, op.shares, op.price, op.locate, op.side});
    return op;
  }
  BookOp remove_one() {
    BookOp op;
    op.kind = BookOp::kDelete;
    op.ref = pick().ref;
    forget(op.ref);
    return op;
  }
  BookOp execute_or_cancel(BookOp::Kind kind) {
    Live& o = pick();
    BookOp op;
    op.kind = kind;
    op.ref = o.ref;
    op.shares = (o.shares == 1 || chance(0.5)) ? o.shares : static_cast<std::uint32_t>(1 + uniform(o.shares - 1));
    o.shares -= op.shares;
    if (o.shares == 0) forget(op.ref);
    return op;
  }
  BookOp replace() {
    Live& o = pick();
    BookOp op;
    op.kind = BookOp::kReplace;
    op.ref = o.ref;
    op.new_ref = next_ref_++;
    op.shares = lot();
    const auto delta = static_cast<std::uint32_t>(uniform(5)) * kTick;
    op.price = o.side == Side::kSell ? o.price + delta : (o.price > delta + kTick ? o.price - delta : o.price);
    const Live moved{op.new_ref, op.shares, op.price, o.locate, o.side};
    forget(op.ref);
    where_[moved.ref] = live_.size();
    live_.push_back(moved);
    return op;
  }
  BookOp invalid() {
    BookOp op;
    const std::uint64_t unknown = next_ref_ + 1'000'000'000'000ull + uniform(1000);
    switch (live_.empty() ? 0 : uniform(6)) {
      case 0:   // execute of a ref that was never added
        op.kind = BookOp::kExecute;
        op.ref = unknown;
        op.shares = 100;
        break;
      case 1:   // delete of an unknown ref
        op.kind = BookOp::kDelete;
        op.ref = unknown;
        break;
      case 2: {   // add of a live ref: rejected, nothing changes
        const Live& o = pick();
        op = BookOp{BookOp::kAdd, o.side, o.locate, lot(), o.price, o.ref, 0};
        break;
      }
      case 3: {   // execute of more than the order has: the order goes
        Live& o = pick();
        op.kind = BookOp::kExecute;
        op.ref = o.ref;
        op.shares = o.shares + 1 + static_cast<std::uint32_t>(uniform(100));
        forget(op.ref);
        break;
      }
      case 4: {   // replace onto another live ref: rejected, nothing changes
        const Live a = pick();
        const Live b = pick();
        op = BookOp{BookOp::kReplace, a.side, 0, lot(), a.price, a.ref, b.ref};
        if (a.ref == b.ref) {   // then it is a valid replace onto a fresh ref
          op.new_ref = next_ref_++;
          forget(a.ref);
          where_[op.new_ref] = live_.size();
          live_.push_back(Live{op.new_ref, op.shares, op.price, a.locate, a.side});
        }
        break;
      }
      default:   // add with zero shares
        op.kind = BookOp::kAdd;
        op.locate = pick_locate();
        op.ref = next_ref_++;
        op.shares = 0;
        op.price = 100 * kTick;
        break;
    }
    return op;
  }

  Options opt_;
  std::mt19937_64 rng_;
  std::vector<std::uint32_t> mid_;
  std::vector<Live> live_;
  std::unordered_map<std::uint64_t, std::size_t> where_;
  std::uint64_t next_ref_ = 1;
};

}  // namespace hypergate::market
