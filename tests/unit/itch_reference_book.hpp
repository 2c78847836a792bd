#pragma once
// ReferenceBook: a deliberately simple order book for ITCH 5.0, written straight from PROTOCOLS.md §3
// (std::unordered_map of orders, std::map of price levels). The judge of the "itch" pipeline's book in
// tests/unit/itch_pipeline_test.cpp and the named baseline of `scripts/bench.sh replay`.
#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>

#include "protocols/itch50.hpp"

namespace hypergate::test {

namespace itch = hypergate::protocols::itch;

// Obviously correct, slow. Orders by ref; per symbol and side, price -> total shares.
class ReferenceBook {
 public:
  void apply(hypergate::protocols::Bytes msg) {
    const char type = static_cast<char>(msg[0]);
    const itch::MessageView h(msg.data());
    switch (type) {
      case 'R': names_[h.stock_locate()] = std::string(itch::StockDirectoryView(msg.data()).stock()); break;
      case 'A': {
        const itch::AddOrderView v(msg.data());
        add(v.order_ref(), v.stock_locate(), v.side(), v.shares(), v.price());
        break;
      }
      case 'F': {
        const itch::AddOrderMpidView v(msg.data());
        add(v.order_ref(), v.stock_locate(), v.side(), v.shares(), v.price());
        break;
      }
      case 'E': reduce(itch::OrderExecutedView(msg.data()).order_ref(), itch::OrderExecutedView(msg.data()).executed_shares()); break;
      case 'C': {
        const itch::OrderExecutedWithPriceView v(msg.data());
        reduce(v.order_ref(), v.executed_shares());
        break;
      }
      case 'X': reduce(itch::OrderCancelView(msg.data()).order_ref(), itch::OrderCancelView(msg.data()).canceled_shares()); break;
      case 'D': reduce(itch::OrderDeleteView(msg.data()).order_ref(), UINT32_MAX); break;
      case 'U': {
        const itch::OrderReplaceView v(msg.data());
        auto it = orders_.find(v.original_ref());
        if (it == orders_.end()) break;
        const Order o = it->second;
        reduce(v.original_ref(), UINT32_MAX);
        add(v.new_ref(), o.locate, o.side, v.shares(), v.price());
        break;
      }
      default: break;  // P, Q, B and the rest do not touch the book
    }
  }
  struct Top {
    std::uint32_t bid_price = 0;
    std::uint64_t bid_qty = 0;
    std::uint32_t ask_price = 0;
    std::uint64_t ask_qty = 0;
  };
  Top top(std::uint16_t locate) const {
    Top t;
    if (auto it = bids_.find(locate); it != bids_.end() && !it->second.empty()) {
      t.bid_price = it->second.rbegin()->first;
      t.bid_qty = it->second.rbegin()->second;
    }
    if (auto it = asks_.find(locate); it != asks_.end() && !it->second.empty()) {
      t.ask_price = it->second.begin()->first;
      t.ask_qty = it->second.begin()->second;
    }
    return t;
  }
  const std::map<std::uint16_t, std::string>& names() const { return names_; }
  std::size_t orders() const { return orders_.size(); }

 private:
  struct Order {
    std::uint16_t locate;
    char side;
    std::uint32_t shares;
    std::uint32_t price;
  };
  using Levels = std::map<std::uint32_t, std::uint64_t>;
  Levels& side_of(std::uint16_t locate, char side) { return side == 'B' ? bids_[locate] : asks_[locate]; }
  void add(std::uint64_t ref, std::uint16_t locate, char side, std::uint32_t shares, std::uint32_t price) {
    if (orders_.count(ref) != 0 || shares == 0) return;
    orders_[ref] = {locate, side, shares, price};
    side_of(locate, side)[price] += shares;
  }
  void reduce(std::uint64_t ref, std::uint32_t shares) {
    auto it = orders_.find(ref);
    if (it == orders_.end()) return;
    Order& o = it->second;
    const std::uint32_t n = std::min(shares, o.shares);
    Levels& lv = side_of(o.locate, o.side);
    lv[o.price] -= n;
    if (lv[o.price] == 0) lv.erase(o.price);
    o.shares -= n;
    if (o.shares == 0) orders_.erase(it);
  }
  std::unordered_map<std::uint64_t, Order> orders_;
  std::map<std::uint16_t, Levels> bids_, asks_;
  std::map<std::uint16_t, std::string> names_;
};

}  // namespace hypergate::test
