// Synthetic ITCH 5.0 / MoldUDP64 feed (contract in itch_generator.hpp).
//
// Shape: one pass, one message at a time. A message type is drawn from a fixed mix (per cent:
// A 40, F 3, U 20, D 15, X 10, E 8, C 2, P 1, the 13 rare types 0.1 each); the book grows to
// live_target resting orders (1000 + 64 per symbol) and is held there by turning adds into deletes;
// order-referencing types pick a live order uniformly from a flat vector (swap-remove on delete), so
// executes, cancels, deletes and replaces are always consistent with the adds before them. Packets are
// cut when the next message might not fit (checked against the largest ITCH message) or the
// per-packet message limit is reached.
#include "protocols/itch_generator.hpp"

#include <algorithm>
#include <array>
#include <utility>

#include "protocols/itch50.hpp"

namespace hypergate::protocols::itch {

namespace {

// xoshiro256** seeded through splitmix64: fixed, portable output for a given seed.
class Prng {
 public:
  explicit Prng(std::uint64_t seed) noexcept {
    for (auto& w : s_) {
      seed += 0x9E3779B97F4A7C15ull;
      std::uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      w = z ^ (z >> 31);
    }
  }
  std::uint64_t next() noexcept {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  /// Uniform in [0, n) (modulo bias is irrelevant here: n is tiny next to 2^64).
  std::uint64_t below(std::uint64_t n) noexcept { return n == 0 ? 0 : next() % n; }
  /// Uniform in [lo, hi].
  std::uint64_t between(std::uint64_t lo, std::uint64_t hi) noexcept { return lo + below(hi - lo + 1); }
  /// Uniform double in [0, 1) from the top 53 bits.
  double unit() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  char pick(std::string_view chars) noexcept { return chars[below(chars.size())]; }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
  std::array<std::uint64_t, 4> s_{};
};

struct LiveOrder {
  std::uint64_t ref;
  std::uint16_t locate;
  char side;
  std::uint32_t shares;
  std::uint32_t price;
};

constexpr std::uint32_t kTick = 100;  // $0.01 in Price(4)
constexpr std::uint64_t kNsPerSecond = 1'000'000'000;

std::string ticker_for(std::size_t i) {
  std::string t(4, 'A');
  for (std::size_t k = 4; k-- > 0;) {
    t[k] = static_cast<char>('A' + i % 26);
    i /= 26;
  }
  return t;
}

}  // namespace

struct ItchGenerator::State {
  GeneratorOptions opt;
  std::vector<std::string> symbols;
  std::vector<Alpha<8>> stock;      // per locate - 1
  std::vector<std::uint32_t> mid;   // per locate - 1
  std::vector<LiveOrder> live;
  std::size_t live_target = 0;
  Prng rng;
  Prng loss_rng;
  mold::SessionName session;
  std::vector<std::byte> packet;
  std::uint64_t emitted = 0;  // ITCH messages generated
  std::uint64_t next_sequence = 0;
  std::uint64_t next_ref = 1;
  std::uint64_t next_match = 1;
  std::uint64_t last_timestamp = 0;
  bool finished = false;

  explicit State(GeneratorOptions o)
      : opt(std::move(o)), rng(opt.seed), loss_rng(opt.seed ^ 0x5DEECE66Dull), packet(opt.max_packet_bytes) {
    symbols = opt.symbols;
    if (symbols.empty()) {
      for (std::size_t i = 0; i < opt.symbol_count; ++i) symbols.push_back(ticker_for(i));
    }
    for (const std::string& s : symbols) {
      stock.push_back(Alpha<8>::from(s));
      mid.push_back(static_cast<std::uint32_t>(rng.between(20, 5000)) * kTick * 10);  // $2.00 .. $500.00
    }
    live_target = 1000 + 64 * symbols.size();
    live.reserve(live_target * 2);
    session = mold::SessionName::from(opt.session);
    next_sequence = opt.first_sequence;
  }

  std::uint64_t timestamp() noexcept {
    // Integer arithmetic: message i is stamped start + i * 1e9 / rate (non-decreasing).
    last_timestamp = opt.start_timestamp_ns + (emitted * kNsPerSecond) / opt.messages_per_second;
    return last_timestamp;
  }

  std::uint16_t random_locate() noexcept { return static_cast<std::uint16_t>(1 + rng.below(symbols.size())); }

  template <class M>
  M header(std::uint16_t locate) noexcept {
    M m{};
    m.stock_locate = locate;
    m.tracking_number = static_cast<std::uint16_t>(emitted & 0xFFFF);
    m.timestamp = timestamp();
    return m;
  }

  std::uint32_t price_near(std::uint16_t locate, char side) noexcept {
    const std::uint32_t m = mid[locate - 1u];
    const auto off = static_cast<std::uint32_t>(rng.between(1, 20)) * kTick;
    return side == 'B' ? m - off : m + off;
  }

  LiveOrder& pick_live(std::size_t& index) noexcept {
    index = rng.below(live.size());
    return live[index];
  }
  void remove_live(std::size_t index) noexcept {
    live[index] = live.back();
    live.pop_back();
  }

  // Writes the message for position `emitted` into `out`; returns its size.
  std::size_t make(MutableBytes out) noexcept {
    const std::uint64_t i = emitted;
    const std::size_t n = symbols.size();
    if (i == 0) {
      SystemEvent m = header<SystemEvent>(0);
      m.event_code = 'O';
      return encode(m, out);
    }
    if (i <= n) {
      const auto locate = static_cast<std::uint16_t>(i);
      StockDirectory m = header<StockDirectory>(locate);
      m.stock = stock[locate - 1u];
      m.market_category = rng.pick("QGSNAPZ");
      m.financial_status = 'N';
      m.round_lot_size = 100;
      m.round_lots_only = 'N';
      m.issue_classification = rng.pick("CEFO");
      m.issue_sub_type = Alpha<2>::from("Z");
      m.authenticity = 'P';
      m.short_sale_threshold = 'N';
      m.ipo_flag = 'N';
      m.luld_ref_price_tier = '1';
      m.etp_flag = 'N';
      m.etp_leverage_factor = 0;
      m.inverse_indicator = 'N';
      return encode(m, out);
    }
    if (i + 1 == opt.message_count) {
      SystemEvent m = header<SystemEvent>(0);
      m.event_code = 'C';
      return encode(m, out);
    }
    return make_mixed(out);
  }

  std::size_t make_mixed(MutableBytes out) noexcept {
    std::uint64_t r = rng.below(1000);
    if (live.empty() && r >= 23) r = 500;                 // nothing to reference (C E X U D): add
    if (live.size() > live_target && r >= 423) r = 900;   // book deep enough: delete instead of adding
    if (r < 13) return make_rare(r, out);
    if (r < 23) {  // P: trade against a non-displayed order
      const std::uint16_t loc = random_locate();
      Trade m = header<Trade>(loc);
      m.order_ref = 0;
      m.side = rng.pick("BS");
      m.shares = static_cast<std::uint32_t>(rng.between(1, 50)) * 100;
      m.stock = stock[loc - 1u];
      m.price = price_near(loc, m.side);
      m.match_number = next_match++;
      return encode(m, out);
    }
    if (r < 223) {  // C, E, X: take 1..all remaining shares of a live order (removed at 0)
      const std::size_t idx = rng.below(live.size());
      const LiveOrder o = live[idx];
      const auto taken = static_cast<std::uint32_t>(rng.between(1, o.shares));
      live[idx].shares -= taken;
      if (live[idx].shares == 0) remove_live(idx);
      if (r < 43) {
        OrderExecutedWithPrice m = header<OrderExecutedWithPrice>(o.locate);
        m.order_ref = o.ref;
        m.executed_shares = taken;
        m.match_number = next_match++;
        m.printable = rng.pick("YN");
        m.execution_price = o.price + (o.side == 'B' ? kTick : 0);
        return encode(m, out);
      }
      if (r < 123) {
        OrderExecuted m = header<OrderExecuted>(o.locate);
        m.order_ref = o.ref;
        m.executed_shares = taken;
        m.match_number = next_match++;
        return encode(m, out);
      }
      OrderCancel m = header<OrderCancel>(o.locate);
      m.order_ref = o.ref;
      m.canceled_shares = taken;
      return encode(m, out);
    }
    if (r < 423) {  // U
      std::size_t idx;
      LiveOrder& o = pick_live(idx);
      OrderReplace m = header<OrderReplace>(o.locate);
      m.original_ref = o.ref;
      m.new_ref = next_ref++;
      m.shares = static_cast<std::uint32_t>(rng.between(1, 10)) * 100;
      m.price = price_near(o.locate, o.side);
      o.ref = m.new_ref;
      o.shares = m.shares;
      o.price = m.price;
      return encode(m, out);
    }
    if (r >= 850) {  // D
      std::size_t idx;
      const LiveOrder& o = pick_live(idx);
      OrderDelete m = header<OrderDelete>(o.locate);
      m.order_ref = o.ref;
      remove_live(idx);
      return encode(m, out);
    }
    // A (and F for r < 453): adds outweigh deletes, so the book fills up to live_target and stays there
    // The mid stays where it started: buys rest below it and sells above it, so no book ever crosses
    // (there is no matching engine here to execute orders that a drifting mid would leave crossed).
    const std::uint16_t loc = random_locate();
    const char side = rng.pick("BS");
    const LiveOrder o{next_ref++, loc, side, static_cast<std::uint32_t>(rng.between(1, 20)) * 100,
                      price_near(loc, side)};
    live.push_back(o);
    if (r < 453) {
      AddOrderMpid m = header<AddOrderMpid>(loc);
      m.order_ref = o.ref;
      m.side = o.side;
      m.shares = o.shares;
      m.stock = stock[loc - 1u];
      m.price = o.price;
      m.attribution = Alpha<4>::from(rng.pick("GS") == 'G' ? "GSCO" : "MSCO");
      return encode(m, out);
    }
    AddOrder m = header<AddOrder>(loc);
    m.order_ref = o.ref;
    m.side = o.side;
    m.shares = o.shares;
    m.stock = stock[loc - 1u];
    m.price = o.price;
    return encode(m, out);
  }

  // The administrative and auction types, one per value of r in [0, 13).
  std::size_t make_rare(std::uint64_t r, MutableBytes out) noexcept {
    const std::uint16_t loc = random_locate();
    const Alpha<8>& stk = stock[loc - 1u];
    const std::uint32_t m_px = mid[loc - 1u];
    switch (r) {
      case 0: {
        StockTradingAction m = header<StockTradingAction>(loc);
        m.stock = stk;
        m.trading_state = rng.pick("HPQT");
        m.reserved = ' ';
        m.reason = Alpha<4>::from(rng.pick("TQ") == 'T' ? "T1" : "");
        return encode(m, out);
      }
      case 1: {
        RegShoRestriction m = header<RegShoRestriction>(loc);
        m.stock = stk;
        m.reg_sho_action = rng.pick("012");
        return encode(m, out);
      }
      case 2: {
        MarketParticipantPosition m = header<MarketParticipantPosition>(loc);
        m.mpid = Alpha<4>::from(rng.pick("AB") == 'A' ? "NITE" : "VIRT");
        m.stock = stk;
        m.primary_market_maker = rng.pick("YN");
        m.market_maker_mode = rng.pick("NPSRL");
        m.market_participant_state = rng.pick("AEWSD");
        return encode(m, out);
      }
      case 3: {
        MwcbDeclineLevel m = header<MwcbDeclineLevel>(0);
        m.level1 = 3'000'00000000ull + rng.below(100) * 1'000'000;
        m.level2 = m.level1 - 200'00000000ull;
        m.level3 = m.level2 - 400'00000000ull;
        return encode(m, out);
      }
      case 4: {
        MwcbStatus m = header<MwcbStatus>(0);
        m.breached_level = rng.pick("123");
        return encode(m, out);
      }
      case 5: {
        IpoQuotingPeriodUpdate m = header<IpoQuotingPeriodUpdate>(loc);
        m.stock = stk;
        m.release_time = static_cast<std::uint32_t>(rng.between(34200, 57600));
        m.release_qualifier = rng.pick("AC");
        m.ipo_price = m_px;
        return encode(m, out);
      }
      case 6: {
        LuldAuctionCollar m = header<LuldAuctionCollar>(loc);
        m.stock = stk;
        m.ref_price = m_px;
        m.upper_collar = m_px + m_px / 20;
        m.lower_collar = m_px - m_px / 20;
        m.extension = static_cast<std::uint32_t>(rng.below(4));
        return encode(m, out);
      }
      case 7: {
        OperationalHalt m = header<OperationalHalt>(loc);
        m.stock = stk;
        m.market_code = rng.pick("QBX");
        m.halt_action = rng.pick("HT");
        return encode(m, out);
      }
      case 8: {
        CrossTrade m = header<CrossTrade>(loc);
        m.shares = rng.between(100, 1'000'000);
        m.stock = stk;
        m.cross_price = m_px;
        m.match_number = next_match++;
        m.cross_type = rng.pick("OCHI");
        return encode(m, out);
      }
      case 9: {
        BrokenTrade m = header<BrokenTrade>(0);
        m.match_number = rng.between(1, next_match);
        return encode(m, out);
      }
      case 10: {
        Noii m = header<Noii>(loc);
        m.paired_shares = rng.below(1'000'000);
        m.imbalance_shares = rng.below(100'000);
        m.imbalance_direction = rng.pick("BSNO");
        m.stock = stk;
        m.far_price = m_px + kTick;
        m.near_price = m_px - kTick;
        m.current_ref_price = m_px;
        m.cross_type = rng.pick("OCHA");
        m.price_variation = rng.pick("L123456789ABC ");
        return encode(m, out);
      }
      case 11: {
        Rpii m = header<Rpii>(loc);
        m.stock = stk;
        m.interest_flag = rng.pick("BSAN");
        return encode(m, out);
      }
      default: {
        DlcrPriceDiscovery m = header<DlcrPriceDiscovery>(loc);
        m.stock = stk;
        m.open_eligibility = rng.pick("NY");
        m.min_allowable_price = m_px - m_px / 10;
        m.max_allowable_price = m_px + m_px / 10;
        m.near_exec_price = m_px;
        m.near_exec_time = m.timestamp;
        m.lower_price_collar = m_px - m_px / 20;
        m.upper_price_collar = m_px + m_px / 20;
        return encode(m, out);
      }
    }
  }

  bool dropped(std::uint64_t first, std::uint64_t next) noexcept {
    const bool random_loss = loss_rng.unit() < opt.loss_probability;  // drawn for every packet
    if (random_loss) return true;
    for (const mold::Gap& g : opt.drop_ranges) {
      if (g.first < next && g.last >= first) return true;
    }
    return false;
  }

  bool next_packet(GeneratedPacket& out) noexcept {
    if (finished) return false;
    if (emitted >= opt.message_count) {
      const std::size_t n = mold::write_end_of_session(MutableBytes{packet}, session, next_sequence);
      out = GeneratedPacket{Bytes{packet.data(), n}, next_sequence, mold::kEndOfSessionCount, false, true,
                            last_timestamp};
      finished = true;
      return true;
    }
    mold::PacketBuilder builder(MutableBytes{packet}, opt.max_packet_bytes);
    builder.start(session, next_sequence);
    std::array<std::byte, kMaxMessageSize> scratch{};
    while (emitted < opt.message_count && builder.fits(kMaxMessageSize) &&
           (opt.messages_per_packet == 0 || builder.count() < opt.messages_per_packet)) {
      const std::size_t size = make(MutableBytes{scratch});
      (void)builder.append(Bytes{scratch.data(), size});  // fits: checked against the largest message
      ++emitted;
    }
    const Bytes bytes = builder.finish();
    const std::uint64_t first = next_sequence;
    next_sequence = builder.next_sequence();
    out = GeneratedPacket{bytes, first, builder.count(), dropped(first, next_sequence), false, last_timestamp};
    return true;
  }
};

Result<ItchGenerator> ItchGenerator::create(GeneratorOptions options) {
  const std::size_t n = options.symbols.empty() ? options.symbol_count : options.symbols.size();
  if (n == 0 || n > 65535) return Error{Status::InvalidArgument, "itch generator: need 1..65535 symbols"};
  for (const std::string& s : options.symbols) {
    if (s.empty() || s.size() > 8) {
      return Error{Status::InvalidArgument, "itch generator: symbol '" + s + "' must be 1..8 characters"};
    }
  }
  if (options.message_count < n + 2) {
    return Error{Status::InvalidArgument,
                 "itch generator: message_count must be at least symbols + 2 (opening, directory, closing)"};
  }
  if (options.session.size() > mold::kSessionSize) {
    return Error{Status::InvalidArgument, "itch generator: session name longer than 10 characters"};
  }
  if (options.max_packet_bytes < mold::kHeaderSize + mold::kBlockHeaderSize + kMaxMessageSize ||
      options.max_packet_bytes > 65507) {
    return Error{Status::InvalidArgument, "itch generator: max_packet_bytes must be in 72..65507"};
  }
  if (options.messages_per_second == 0) {
    return Error{Status::InvalidArgument, "itch generator: messages_per_second must be positive"};
  }
  if (!(options.loss_probability >= 0.0 && options.loss_probability <= 1.0)) {
    return Error{Status::InvalidArgument, "itch generator: loss_probability must be in [0, 1]"};
  }
  for (const mold::Gap& g : options.drop_ranges) {
    if (g.first > g.last) return Error{Status::InvalidArgument, "itch generator: drop range with first > last"};
  }
  return ItchGenerator(std::make_unique<State>(std::move(options)));
}

ItchGenerator::ItchGenerator(std::unique_ptr<State> state) noexcept : state_(std::move(state)) {}
ItchGenerator::ItchGenerator(ItchGenerator&&) noexcept = default;
ItchGenerator& ItchGenerator::operator=(ItchGenerator&&) noexcept = default;
ItchGenerator::~ItchGenerator() = default;

bool ItchGenerator::next(GeneratedPacket& out) { return state_->next_packet(out); }
const GeneratorOptions& ItchGenerator::options() const noexcept { return state_->opt; }
const std::vector<std::string>& ItchGenerator::symbols() const noexcept { return state_->symbols; }
std::uint64_t ItchGenerator::messages_generated() const noexcept { return state_->emitted; }

std::pair<std::size_t, std::size_t> GeneratedFeed::packets_for(std::uint64_t sequence,
                                                                std::uint64_t count) const noexcept {
  // Data packets are sorted by first sequence and contiguous; the end-of-session packet has count 0.
  const std::uint64_t end = sequence + count;
  auto data_end = packets.end();
  if (!packets.empty() && packets.back().end_of_session) --data_end;
  const auto first = std::partition_point(packets.begin(), data_end, [&](const Packet& p) {
    return p.first_sequence + p.count <= sequence;
  });
  auto last = first;
  while (last != data_end && last->first_sequence < end) ++last;
  return {static_cast<std::size_t>(first - packets.begin()), static_cast<std::size_t>(last - packets.begin())};
}

Result<GeneratedFeed> generate_feed(GeneratorOptions options) {
  Result<ItchGenerator> gen = ItchGenerator::create(std::move(options));
  if (!gen) return gen.error();
  GeneratedFeed feed;
  feed.symbols = gen->symbols();
  GeneratedPacket p;
  while (gen->next(p)) {
    feed.packets.push_back(GeneratedFeed::Packet{feed.storage.size(), p.bytes.size(), p.first_sequence, p.count,
                                                 p.dropped, p.end_of_session});
    feed.storage.insert(feed.storage.end(), p.bytes.begin(), p.bytes.end());
  }
  return feed;
}

}  // namespace hypergate::protocols::itch
