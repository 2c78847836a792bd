// Order book throughput: one pre-generated stream of order-book operations (adds, executes, cancels,
// deletes, replaces over N symbols with clustered prices; OrderFlowGenerator) applied to
//   book/hypergate/apply            hypergate::market::OrderBook
//   book/std_map_reference/apply    a straightforward book: std::unordered_map ref -> order and a
//                                   std::map price -> level per side per symbol
//   book/hypergate/apply_prefetch   the same, calling OrderBook::prefetch() 4 operations ahead
// in the same run. Each iteration applies the whole stream to a fresh book (construction is not
// timed); items_per_second = operations per CPU second (CPU time: the machines are shared). After each operation the touched symbol's top of book is
// read, as a pipeline publishing top-of-book updates would.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <map>
#include <memory>
#include <unordered_map>
#include <vector>

#include "market/order_book.hpp"
#include "market/order_flow_generator.hpp"

namespace {

using hypergate::market::BookOp;
using hypergate::market::BookOutcome;
using hypergate::market::BookReject;
using hypergate::market::OrderBook;
using hypergate::market::OrderFlowGenerator;
using hypergate::market::Side;
using hypergate::market::TopOfBook;

// The baseline, written the way most order books start out.
class StdMapBook {
 public:
  StdMapBook() : books_(OrderBook::kLocates) { orders_.reserve(1 << 18); }

  BookOutcome add(std::uint16_t locate, std::uint64_t ref, Side side, std::uint32_t shares, std::uint32_t price) {
    if (shares == 0) return {locate, false, false, BookReject::kZeroShares};
    auto [it, inserted] = orders_.try_emplace(ref, Order{price, shares, locate, side});
    if (!inserted) return {locate, false, false, BookReject::kDuplicateRef};
    return {locate, true, level_add(locate, side, price, shares), BookReject::kNone};
  }
  BookOutcome execute(std::uint64_t ref, std::uint32_t shares) { return reduce(ref, shares); }
  BookOutcome cancel(std::uint64_t ref, std::uint32_t shares) { return reduce(ref, shares); }
  BookOutcome remove(std::uint64_t ref) {
    auto it = orders_.find(ref);
    if (it == orders_.end()) return {0, false, false, BookReject::kUnknownRef};
    const Order o = it->second;
    orders_.erase(it);
    return {o.locate, true, level_sub(o, o.shares), BookReject::kNone};
  }
  BookOutcome replace(std::uint64_t old_ref, std::uint64_t new_ref, std::uint32_t shares, std::uint32_t price) {
    auto it = orders_.find(old_ref);
    if (it == orders_.end()) return {0, false, false, BookReject::kUnknownRef};
    const Order o = it->second;
    if (shares == 0) return {o.locate, false, false, BookReject::kZeroShares};
    if (new_ref != old_ref && orders_.count(new_ref) != 0) return {o.locate, false, false, BookReject::kDuplicateRef};
    orders_.erase(it);
    bool top = level_sub(o, o.shares);
    orders_.emplace(new_ref, Order{price, shares, o.locate, o.side});
    top |= level_add(o.locate, o.side, price, shares);
    return {o.locate, true, top, BookReject::kNone};
  }
  TopOfBook top(std::uint16_t locate) const {
    const Symbol& s = books_[locate];
    TopOfBook t;
    if (!s.bids.empty()) {
      t.bid_price = s.bids.rbegin()->first;
      t.bid_qty = s.bids.rbegin()->second;
    }
    if (!s.asks.empty()) {
      t.ask_price = s.asks.begin()->first;
      t.ask_qty = s.asks.begin()->second;
    }
    return t;
  }

 private:
  struct Order {
    std::uint32_t price;
    std::uint32_t shares;
    std::uint16_t locate;
    Side side;
  };
  struct Symbol {
    std::map<std::uint32_t, std::uint64_t> bids;   // price -> shares, best = last
    std::map<std::uint32_t, std::uint64_t> asks;   // price -> shares, best = first
  };

  bool is_best(const Symbol& s, Side side, std::uint32_t price) const {
    return side == Side::kBuy ? s.bids.rbegin()->first == price : s.asks.begin()->first == price;
  }
  bool level_add(std::uint16_t locate, Side side, std::uint32_t price, std::uint32_t shares) {
    Symbol& s = books_[locate];
    (side == Side::kBuy ? s.bids : s.asks)[price] += shares;
    return is_best(s, side, price);
  }
  bool level_sub(const Order& o, std::uint32_t shares) {
    Symbol& s = books_[o.locate];
    auto& levels = o.side == Side::kBuy ? s.bids : s.asks;
    const bool best = is_best(s, o.side, o.price);
    auto it = levels.find(o.price);
    if ((it->second -= shares) == 0) levels.erase(it);
    return best;
  }
  BookOutcome reduce(std::uint64_t ref, std::uint32_t shares) {
    auto it = orders_.find(ref);
    if (it == orders_.end()) return {0, false, false, BookReject::kUnknownRef};
    Order& o = it->second;
    const std::uint16_t locate = o.locate;
    if (shares < o.shares) {
      o.shares -= shares;
      return {locate, true, level_sub(o, shares), BookReject::kNone};
    }
    const Order gone = o;
    orders_.erase(it);
    return {locate, true, level_sub(gone, gone.shares),
            shares > gone.shares ? BookReject::kSharesExceedRemaining : BookReject::kNone};
  }

  std::vector<Symbol> books_;
  std::unordered_map<std::uint64_t, Order> orders_;
};

constexpr std::size_t kPrefetchDistance = 4;

// One stream per (symbols, target live orders) configuration, generated once per process.
const std::vector<BookOp>& stream(std::uint16_t symbols, std::uint32_t live) {
  static std::map<std::pair<std::uint16_t, std::uint32_t>, std::vector<BookOp>> cache;
  auto& ops = cache[{symbols, live}];
  if (ops.empty()) {
    OrderFlowGenerator::Options o;
    o.seed = 42;
    o.symbols = symbols;
    o.target_live = live;
    OrderFlowGenerator gen(o);
    ops.resize(1'000'000);
    for (BookOp& op : ops) op = gen.next();
  }
  return ops;
}

template <class Book, bool kPrefetch = false, class Make>
void run(benchmark::State& state, Make make) {
  const auto& ops = stream(static_cast<std::uint16_t>(state.range(0)), static_cast<std::uint32_t>(state.range(1)));
  for (auto _ : state) {
    state.PauseTiming();
    std::unique_ptr<Book> book = make();
    state.ResumeTiming();
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < ops.size(); ++i) {
      const BookOp& op = ops[i];
      if constexpr (kPrefetch) {
        // What a pipeline walking a burst does: touch the index slot of a message a few ahead.
        if (i + kPrefetchDistance < ops.size()) book->prefetch(ops[i + kPrefetchDistance].ref);
      }
      const BookOutcome r = hypergate::market::apply_op(*book, op);
      if (r.top_changed) {
        const TopOfBook t = book->top(r.locate);
        sum += t.bid_qty + t.ask_qty;
      }
    }
    benchmark::DoNotOptimize(sum);
    state.PauseTiming();
    book.reset();   // destruction (the std::map baseline frees every node) is not timed either
    state.ResumeTiming();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * ops.size()));
}

// The pool is sized as a deployment would size it: 4x the feed's typical live orders.
auto book_maker(const benchmark::State& state) {
  return [live = static_cast<std::uint32_t>(state.range(1))] {
    OrderBook::Options o;
    o.max_orders = 4 * live;
    o.level_capacity = 1u << 21;
    return std::make_unique<OrderBook>(o);
  };
}
void hypergate_apply(benchmark::State& state) { run<OrderBook>(state, book_maker(state)); }
void hypergate_apply_prefetch(benchmark::State& state) { run<OrderBook, true>(state, book_maker(state)); }
void std_map_apply(benchmark::State& state) {
  run<StdMapBook>(state, [] { return std::make_unique<StdMapBook>(); });
}

// {symbols, target live orders}: a small universe that stays in L2, and a wider one that does not.
void book_args(benchmark::internal::Benchmark* b) {
  b->Args({100, 20'000})->Args({2'000, 200'000})->Unit(benchmark::kMillisecond);
}
BENCHMARK(hypergate_apply)->Name("book/hypergate/apply")->Apply(book_args);
BENCHMARK(hypergate_apply_prefetch)->Name("book/hypergate/apply_prefetch")->Apply(book_args);
BENCHMARK(std_map_apply)->Name("book/std_map_reference/apply")->Apply(book_args);

}  // namespace

BENCHMARK_MAIN();
