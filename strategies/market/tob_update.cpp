// TobUpdate: see tob_update.hpp for the byte layout.
#include "market/tob_update.hpp"

#include <charconv>
#include <cstring>

#include "market/order_book.hpp"
#include "protocols/wire.hpp"

namespace hypergate::market {

namespace wire = protocols::wire;

namespace {

// Field offsets of the wire format (the table in tob_update.hpp).
constexpr std::size_t kOffFlags = 1;
constexpr std::size_t kOffLocate = 2;
constexpr std::size_t kOffSymbol = 4;
constexpr std::size_t kOffBidPrice = 12;
constexpr std::size_t kOffBidQty = 16;
constexpr std::size_t kOffAskPrice = 24;
constexpr std::size_t kOffAskQty = 28;
constexpr std::size_t kOffTimestamp = 36;
constexpr std::size_t kOffSequence = 44;
static_assert(kOffSequence + 8 == kTobUpdateSize, "the table and the size agree");

// Appends to a bounded buffer; remembers overflow instead of writing past the end.
class JsonWriter {
 public:
  explicit JsonWriter(std::span<char> out) noexcept : out_(out) {}
  void raw(std::string_view s) noexcept {
    if (overflow_ || out_.size() - pos_ < s.size()) {
      overflow_ = true;
      return;
    }
    std::memcpy(out_.data() + pos_, s.data(), s.size());
    pos_ += s.size();
  }
  void number(std::uint64_t v) noexcept {
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    raw({buf, static_cast<std::size_t>(r.ptr - buf)});
  }
  void string_body(std::string_view s) noexcept {
    static constexpr char kHex[] = "0123456789abcdef";
    for (const char c : s) {
      const auto u = static_cast<unsigned char>(c);
      if (c == '"' || c == '\\') {
        const char esc[2] = {'\\', c};
        raw({esc, 2});
      } else if (u < 0x20 || u >= 0x7F) {
        // Not printable ASCII: \u00XX keeps the output valid JSON whatever the bytes were.
        const char esc[6] = {'\\', 'u', '0', '0', kHex[u >> 4], kHex[u & 0xF]};
        raw({esc, 6});
      } else {
        raw({&c, 1});
      }
    }
  }
  [[nodiscard]] std::size_t finish() const noexcept { return overflow_ ? 0 : pos_; }

 private:
  std::span<char> out_;
  std::size_t pos_ = 0;
  bool overflow_ = false;
};

}  // namespace

std::string_view TobUpdate::symbol_trimmed() const noexcept {
  std::size_t n = symbol.size();
  while (n > 0 && symbol[n - 1] == ' ') --n;
  return {symbol.data(), n};
}

void encode_tob_update(const TobUpdate& u, std::span<std::byte, kTobUpdateSize> out) noexcept {
  std::byte* p = out.data();
  p[0] = static_cast<std::byte>(kTobUpdateType);
  p[kOffFlags] = static_cast<std::byte>(u.flags);
  wire::store_be16(p + kOffLocate, u.locate);
  std::memcpy(p + kOffSymbol, u.symbol.data(), u.symbol.size());
  wire::store_be32(p + kOffBidPrice, u.bid_price);
  wire::store_be64(p + kOffBidQty, u.bid_qty);
  wire::store_be32(p + kOffAskPrice, u.ask_price);
  wire::store_be64(p + kOffAskQty, u.ask_qty);
  wire::store_be64(p + kOffTimestamp, u.timestamp_ns);
  wire::store_be64(p + kOffSequence, u.sequence);
}

Status decode_tob_update(std::span<const std::byte> in, TobUpdate& out) noexcept {
  if (in.size() != kTobUpdateSize || in[0] != static_cast<std::byte>(kTobUpdateType)) return Status::Malformed;
  const std::byte* p = in.data();
  out.flags = static_cast<std::uint8_t>(p[kOffFlags]);
  out.locate = wire::load_be16(p + kOffLocate);
  std::memcpy(out.symbol.data(), p + kOffSymbol, out.symbol.size());
  out.bid_price = wire::load_be32(p + kOffBidPrice);
  out.bid_qty = wire::load_be64(p + kOffBidQty);
  out.ask_price = wire::load_be32(p + kOffAskPrice);
  out.ask_qty = wire::load_be64(p + kOffAskQty);
  out.timestamp_ns = wire::load_be64(p + kOffTimestamp);
  out.sequence = wire::load_be64(p + kOffSequence);
  return Status::Ok;
}

std::size_t to_json(const TobUpdate& u, std::span<char> out) noexcept {
  JsonWriter w(out);
  w.raw(R"({"type":"T","locate":)");
  w.number(u.locate);
  w.raw(R"(,"symbol":")");
  w.string_body(u.symbol_trimmed());
  w.raw(R"(","bid_price":)");
  w.number(u.bid_price);
  w.raw(R"(,"bid_qty":)");
  w.number(u.bid_qty);
  w.raw(R"(,"ask_price":)");
  w.number(u.ask_price);
  w.raw(R"(,"ask_qty":)");
  w.number(u.ask_qty);
  w.raw(R"(,"timestamp_ns":)");
  w.number(u.timestamp_ns);
  w.raw(R"(,"sequence":)");
  w.number(u.sequence);
  w.raw(u.stale() ? R"(,"stale":true})" : R"(,"stale":false})");
  return w.finish();
}

std::string to_json(const TobUpdate& u) {
  std::array<char, kTobJsonMax> buf;
  return std::string(buf.data(), to_json(u, buf));
}

TobUpdate make_tob_update(const OrderBook& book, std::uint16_t locate, std::uint64_t timestamp_ns,
                          std::uint64_t sequence, std::uint8_t flags) noexcept {
  TobUpdate u;
  u.locate = locate;
  const std::string_view name = book.symbol(locate);
  std::memcpy(u.symbol.data(), name.data(), u.symbol.size());
  const TopOfBook t = book.top(locate);
  u.bid_price = t.bid_price;
  u.bid_qty = t.bid_qty;
  u.ask_price = t.ask_price;
  u.ask_qty = t.ask_qty;
  u.timestamp_ns = timestamp_ns;
  u.sequence = sequence;
  u.flags = flags;
  return u;
}

}  // namespace hypergate::market
