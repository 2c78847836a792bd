#include "market/itch_pipeline.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <new>
#include <string>
#include <utility>

#include "hypergate/core/clock.hpp"
#include "hypergate/metrics/stage_probe.hpp"

namespace hypergate::market {

namespace mold = protocols::mold;
namespace itch = protocols::itch;

namespace {

constexpr std::size_t kReplyBytes = 64 * 1024;  // a MoldUDP64 datagram never exceeds a UDP payload

// The store key of a locate: its symbol without the padding (an 8-character Alpha).
std::string_view store_key(const OrderBook& book, std::uint16_t locate) noexcept {
  std::string_view s = book.symbol(locate);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

}  // namespace

Result<ItchPipelineOptions> read_itch_options(config::Section& options, const route::PipelineContext& ctx) {
  ItchPipelineOptions o;
  Result<ItchPipelineOptions> failed = Error{Status::InvalidArgument, options.path() + ": invalid options"};
  bool ok = true;
  const auto output = options.choice("output", "updates", {"updates", "itch", "both"});
  o.output = output == "itch"   ? ItchPipelineOptions::Output::Itch
             : output == "both" ? ItchPipelineOptions::Output::Both
                                : ItchPipelineOptions::Output::Updates;
  for (auto [key, mask] : {std::pair<std::string_view, std::uint64_t*>{"sinks", &o.update_sinks},
                           std::pair<std::string_view, std::uint64_t*>{"itch_sinks", &o.itch_sinks}}) {
    if (!options.has(key)) continue;
    const auto names = options.string_list(key);
    std::vector<std::string_view> views(names.begin(), names.end());
    auto m = route::sinks_from_names(ctx, views);
    if (!m) {
      options.error(key, m.error().message);
      ok = false;
    } else {
      *mask = m.value();
    }
  }
  o.lane = static_cast<std::uint16_t>(options.integer("lane", 0, 0, static_cast<std::int64_t>(ctx.lanes) - 1));
  if (options.has("rerequest")) {
    o.rerequest = options.endpoint("rerequest", "");
    if (!o.rerequest) ok = false;
  }
  o.session.recovery = o.rerequest.has_value();
  o.session.retry_initial_ns = options.duration_ns("retry_initial", 1'000'000);
  o.session.retry_max_ns = options.duration_ns("retry_max", 64'000'000);
  o.session.max_attempts = static_cast<std::uint32_t>(options.integer("retry_attempts", 5, 1, 1000));
  o.session.max_request_count =
      static_cast<std::uint16_t>(options.integer("request_max_count", 1024, 1, mold::kMaxDataCount));
  o.session.store_packets = static_cast<std::size_t>(options.integer("store_packets", 4096, 1, 1 << 24));
  o.session.store_bytes = static_cast<std::size_t>(options.integer("store_bytes", 8 << 20, 1500, 1ll << 34));
  o.session.first_sequence = static_cast<std::uint64_t>(options.integer("first_sequence", 1, 0, INT64_MAX));
  o.book.max_orders = static_cast<std::uint32_t>(options.integer("max_orders", 1 << 20, 1, 1ll << 31));
  o.book.level_capacity = static_cast<std::uint32_t>(options.integer("max_levels", 1 << 20, 64, 1ll << 31));
  o.store_slots = static_cast<std::size_t>(options.integer("store_slots", 1 << 16, 16, 1ll << 30));
  o.store_arena_bytes = static_cast<std::size_t>(options.integer("store_arena_bytes", 16 << 20, 1 << 16, 1ll << 40));
  if (options.exists()) options.finish();
  if (!ok) return failed;
  return o;
}

Result<std::unique_ptr<ItchPipeline>> ItchPipeline::create(const ItchPipelineOptions& options) {
  kv::Hyperion::Options so;
  so.arena_bytes = options.store_arena_bytes;
  so.slots = options.store_slots;
  so.huge_pages = false;  // small and written rarely per key: not worth a huge page reservation
  auto store = kv::Hyperion::create(so);
  if (!store) return Error{store.error().code, "itch pipeline store: " + store.error().message};
  try {
    return std::unique_ptr<ItchPipeline>(new ItchPipeline(options, std::move(store.value())));
  } catch (const std::bad_alloc&) {  // the order book's tables could not be mapped
    return Error{Status::InvalidArgument,
                 "itch pipeline: cannot allocate the order book for max_orders = " +
                     std::to_string(options.book.max_orders) + ", max_levels = " +
                     std::to_string(options.book.level_capacity) + " (lower them)"};
  }
}

ItchPipeline::ItchPipeline(const ItchPipelineOptions& options, kv::Hyperion store)
    : opt_(options),
      book_(std::make_unique<OrderBook>(options.book)),
      session_(options.session),
      store_(std::move(store)),
      stale_(OrderBook::kLocates, 0),
      named_(OrderBook::kLocates, 0) {
  locates_.reserve(OrderBook::kLocates);
  gap_ranges_.reserve(opt_.max_recorded_gaps);
  lost_ranges_.reserve(opt_.max_recorded_gaps);
}

ItchPipeline::~ItchPipeline() {
  if (rerequest_fd_ >= 0) ::close(rerequest_fd_);
}

void ItchPipeline::reject(std::size_t reason) noexcept { rejects_[reason].add(); }

void ItchPipeline::process(Burst<>& in, route::Emitter& out) noexcept {
  out_ = &out;
  const TscClock& clock = TscClock::instance();
  now_ns_ = clock.to_ns(TscClock::ticks());
  tracing_ = probe_ != nullptr && probe_->tracing();
  for (const Message& m : in) {
    datagrams_.add();
    rx_tsc_ = m.rx_tsc;
    if (end_of_session_) [[unlikely]]
      restart_if_replayed(m.payload());
    const mold::PacketError e = session_.on_datagram(m.payload(), now_ns_, *this);
    if (e != mold::PacketError::Ok) [[unlikely]]
      reject(kMoldBase + static_cast<std::size_t>(e));
  }
  out.flush();
  out_ = nullptr;
  tracing_ = false;
}

void ItchPipeline::tick(route::Emitter& out, std::uint64_t now_tsc) noexcept {
  // Nothing to do unless a gap is open (then: replies to read, retries due).
  if (session_.pending_gaps() == 0) return;
  out_ = &out;
  now_ns_ = TscClock::instance().to_ns(now_tsc);
  rx_tsc_ = now_tsc;
  poll_rerequest_replies(now_ns_);
  if (session_.pending_gaps() != 0 && now_ns_ >= session_.next_timer_ns()) session_.on_timer(now_ns_, *this);
  out.flush();
  out_ = nullptr;
}

void ItchPipeline::poll_rerequest_replies(std::uint64_t now_ns) noexcept {
  if (rerequest_fd_ < 0) return;
  for (int i = 0; i < 256; ++i) {  // bounded: a tick never spins on a flood
    const ssize_t n = ::recv(rerequest_fd_, reply_buf_.data(), reply_buf_.size(), MSG_DONTWAIT);
    if (n <= 0) break;
    datagrams_.add();
    const mold::PacketError e =
        session_.on_datagram(protocols::Bytes(reply_buf_.data(), static_cast<std::size_t>(n)), now_ns, *this);
    if (e != mold::PacketError::Ok) reject(kMoldBase + static_cast<std::size_t>(e));
  }
}

void ItchPipeline::on_messages(mold::MessageRange messages) {
  const mold::MessageRangeEnd end = messages.end();
  for (mold::MessageIterator it = messages.begin(); it != end;) {
    const mold::MessageBlock block = *it;
    ++it;
    // The next message's order slot starts loading while this one is applied: every order message
    // (A F E C X D U) carries its (original) order reference right after the 11-byte header; for the
    // other types the prefetch is of an unrelated slot, harmless.
    if (it != end) {
      const protocols::Bytes next = (*it).data;
      if (next.size() >= itch::kHeaderSize + 8) book_->prefetch(protocols::wire::load_be64(next.data() + itch::kHeaderSize));
    }
    apply(block.data);
  }
  // Raw ITCH output points into this packet, which the session may recycle once we return.
  if (opt_.output != ItchPipelineOptions::Output::Updates && out_ != nullptr) out_->flush();
}

void ItchPipeline::apply(protocols::Bytes msg) noexcept {
  std::uint16_t touched = 0;
  bool top_changed = false;
  // Sampled bursts: decode = message start -> view built (length checked); pipeline = the book.
  const std::uint64_t t_start = tracing_ ? TscClock::ticks() : 0;
  std::uint64_t t_decoded = 0;
  auto book_result = [&](const BookOutcome& r) {
    if (r.reject != BookReject::kNone) reject(kBookBase + static_cast<std::size_t>(r.reject));
    touched = r.locate;
    top_changed = r.top_changed;
  };
  const itch::DecodeError e = itch::visit(msg, [&](const auto& v) {
    using V = std::decay_t<decltype(v)>;
    if (tracing_) [[unlikely]] t_decoded = TscClock::ticks();
    if constexpr (std::is_same_v<V, itch::AddOrderView> || std::is_same_v<V, itch::AddOrderMpidView>) {
      Side side;
      if (!side_from_itch(v.side(), side)) {
        reject(kBadSide);
        return;
      }
      book_result(book_->add(v.stock_locate(), v.order_ref(), side, v.shares(), v.price()));
    } else if constexpr (std::is_same_v<V, itch::OrderExecutedView> ||
                         std::is_same_v<V, itch::OrderExecutedWithPriceView>) {
      book_result(book_->execute(v.order_ref(), v.executed_shares()));
    } else if constexpr (std::is_same_v<V, itch::OrderCancelView>) {
      book_result(book_->cancel(v.order_ref(), v.canceled_shares()));
    } else if constexpr (std::is_same_v<V, itch::OrderDeleteView>) {
      book_result(book_->remove(v.order_ref()));
    } else if constexpr (std::is_same_v<V, itch::OrderReplaceView>) {
      book_result(book_->replace(v.original_ref(), v.new_ref(), v.shares(), v.price()));
    } else if constexpr (std::is_same_v<V, itch::StockDirectoryView>) {
      const std::uint16_t locate = v.stock_locate();
      book_->set_symbol(locate, v.stock());
      if (!named_[locate]) {
        named_[locate] = 1;
        locates_.push_back(locate);
      }
      touched = locate;
      top_changed = true;  // publish the (empty) top so that the symbol exists in the store
    }
  });
  if (tracing_ && t_decoded != 0) [[unlikely]] {
    probe_->add_ticks(metrics::Stage::Decode, t_start, t_decoded);
    probe_->add_ticks(metrics::Stage::Pipeline, t_decoded, TscClock::ticks());
  }
  if (e != itch::DecodeError::Ok) [[unlikely]] {
    reject(kItchBase + static_cast<std::size_t>(e));
    return;
  }
  const auto type = static_cast<unsigned char>(msg[0]);
  by_type_[type].add();   // their sum is the message count (stats())

  if (opt_.output != ItchPipelineOptions::Output::Updates && out_ != nullptr) {
    Message& m = out_->slot();
    m = Message{};
    m.set_payload(msg.data(), msg.size());
    const std::string_view key = store_key(*book_, itch::MessageView(msg.data()).stock_locate());
    m.set_key(key);
    m.rx_tsc = rx_tsc_;
    m.type = type;
    m.user = itch::MessageView(msg.data()).stock_locate();
    route::Route r;
    r.sinks = opt_.itch_sinks;
    r.lane = opt_.lane;
    r.action = route::Action::Deliver;
    emitted_.add();
    out_->commit(r);
  }
  // The timestamp is read only when it is published (a few messages in a hundred change a top).
  if (top_changed) publish_top(touched, itch::MessageView(msg.data()).timestamp());
}

void ItchPipeline::publish_top(std::uint16_t locate, std::uint64_t timestamp_ns) noexcept {
  const std::uint8_t flags = stale_[locate] ? kTobStale : kTobNone;
  const TobUpdate u = make_tob_update(*book_, locate, timestamp_ns, update_sequence_ + 1, flags);
  const std::string_view key = store_key(*book_, locate);
  if (key.empty()) return;  // a locate no directory message named: nothing to key it by
  ++update_sequence_;
  updates_.add();
  if (opt_.output == ItchPipelineOptions::Output::Itch || out_ == nullptr) {
    std::array<std::byte, kTobUpdateSize> rec;
    encode_tob_update(u, rec);
    if (store_.put(key, std::span<const std::byte>(rec)) != Status::Ok) store_errors_.add();
    return;
  }
  auto& rec = update_buf_[out_->pending()];
  encode_tob_update(u, rec);
  const std::uint64_t t_put = tracing_ ? TscClock::ticks() : 0;
  if (store_.put(key, std::span<const std::byte>(rec)) != Status::Ok) store_errors_.add();
  if (tracing_) [[unlikely]] probe_->add_ticks(metrics::Stage::Store, t_put, TscClock::ticks());
  Message& m = out_->slot();
  m = Message{};
  m.set_payload(rec.data(), rec.size());
  m.set_key(key);
  m.rx_tsc = rx_tsc_;
  m.sequence = update_sequence_;
  m.type = static_cast<std::uint16_t>(kTobUpdateType);
  m.flags = flags != 0 ? kMsgStale : kMsgNone;
  m.user = locate;
  route::Route r;
  r.sinks = opt_.update_sinks;
  r.lane = opt_.lane;
  r.action = route::Action::Deliver;
  emitted_.add();
  out_->commit(r);
}

void ItchPipeline::on_gap(const mold::Gap& gap) {
  const std::uint64_t n = gaps_.get();
  recent_gaps_[(n % kRecentGaps) * 2].set(gap.first);
  recent_gaps_[(n % kRecentGaps) * 2 + 1].set(gap.last);
  gaps_.add();
  missing_.add(gap.size());
  if (gap_ranges_.size() < opt_.max_recorded_gaps) gap_ranges_.push_back(gap);  // reserved: no allocation
}

void ItchPipeline::on_request(const mold::Request& request) {
  if (!opt_.rerequest) return;
  if (rerequest_fd_ < 0) {
    // Cold path: the first gap opens the socket (config check and gap-free runs never do).
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    addrinfo* res = nullptr;
    const std::string port = std::to_string(opt_.rerequest->port);
    if (::getaddrinfo(opt_.rerequest->host.c_str(), port.c_str(), &hints, &res) != 0 || res == nullptr) {
      reject(kRerequestFailed);
      return;
    }
    const int fd = ::socket(res->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd >= 0 && ::connect(fd, res->ai_addr, res->ai_addrlen) == 0) {
      rerequest_fd_ = fd;
      reply_buf_.resize(kReplyBytes);
    } else if (fd >= 0) {
      ::close(fd);
    }
    ::freeaddrinfo(res);
    if (rerequest_fd_ < 0) {
      reject(kRerequestFailed);
      return;
    }
  }
  std::array<std::byte, mold::kRequestSize> buf;
  const std::size_t n = mold::write_request(buf, request);
  if (::send(rerequest_fd_, buf.data(), n, MSG_DONTWAIT) != static_cast<ssize_t>(n)) reject(kRerequestFailed);
}

void ItchPipeline::on_gap_lost(const mold::Gap& gap) {
  lost_.add(gap.size());
  if (lost_ranges_.size() < opt_.max_recorded_gaps) lost_ranges_.push_back(gap);
  // Which symbols the lost messages touched is unknowable: every known symbol becomes stale.
  for (const std::uint16_t locate : locates_) {
    if (stale_[locate]) continue;
    stale_[locate] = 1;
    publish_top(locate, 0);
  }
}

void ItchPipeline::start_over() noexcept {
  // The names go with the books: locates are assigned per session (per day), so a locate the new
  // session has not named yet may be another stock; until its directory message it has no key and
  // nothing is published for it. Only named locates have store records, so these are all of them.
  for (const std::uint16_t locate : locates_) {
    (void)store_.erase(store_key(*book_, locate));
    book_->set_symbol(locate, {});
    stale_[locate] = 0;
    named_[locate] = 0;
  }
  locates_.clear();
  book_->reset();
}

void ItchPipeline::restart_if_replayed(protocols::Bytes datagram) noexcept {
  // After an end of session, the same session starting again from its first sequence is a new run of
  // it (a looped capture, a test feed restarted): start over instead of discarding it as duplicates.
  mold::PacketView v;
  if (mold::PacketView::parse(datagram, v) != mold::PacketError::Ok || v.is_end_of_session()) return;
  const std::uint64_t first = opt_.session.first_sequence == 0 ? 1 : opt_.session.first_sequence;
  if (v.sequence() != first || !session_.has_session() || !(v.session_name() == session_.session())) return;
  session_ = mold::MoldSession(opt_.session);  // cold path: once per restart
  end_of_session_ = false;
  restarts_.add();
  start_over();
}

void ItchPipeline::on_session_change(const mold::SessionName& from, const mold::SessionName& to) {
  (void)from;
  (void)to;
  session_changes_.add();
  start_over();
}

void ItchPipeline::on_end_of_session(const mold::SessionName& session, std::uint64_t next_sequence) {
  (void)session;
  (void)next_sequence;
  end_of_session_ = true;
}

std::string_view ItchPipeline::reason_name(std::size_t r) noexcept {
  if (r < kItchBase) return mold::to_string(static_cast<mold::PacketError>(r - kMoldBase));
  if (r < kBookBase) return itch::to_string(static_cast<itch::DecodeError>(r - kItchBase));
  if (r < kBadSide) return to_string(static_cast<BookReject>(r - kBookBase));
  if (r == kBadSide) return "bad_side";
  return "rerequest_failed";  // kRerequestFailed
}

route::PipelineCounters ItchPipeline::counters() const {
  route::PipelineCounters c;
  c.in = datagrams_.get();
  c.emitted = emitted_.get();
  for (std::size_t r = 0; r < kReasonCount; ++r) {
    const std::uint64_t n = rejects_[r].get();
    if (n == 0 || r == kMoldBase || r == kItchBase || r == kBookBase) continue;  // the "ok"/"none" slots
    c.rejected += n;
    c.rejects_by_reason.emplace_back(std::string(reason_name(r)), n);
  }
  c.gaps = gaps_.get();
  c.missing = missing_.get();
  const std::uint64_t g = c.gaps;
  for (std::uint64_t i = g > kRecentGaps ? g - kRecentGaps : 0; i < g; ++i) {
    const std::size_t k = static_cast<std::size_t>(i % kRecentGaps) * 2;
    c.recent_gaps.push_back({0, recent_gaps_[k].get(), recent_gaps_[k + 1].get()});
  }
  return c;
}

ItchStats ItchPipeline::stats() const {
  ItchStats s;
  s.datagrams = datagrams_.get();
  for (std::size_t t = 0; t < 256; ++t) {
    s.by_type[t] = by_type_[t].get();
    s.messages += s.by_type[t];
  }
  s.updates = updates_.get();
  s.store_errors = store_errors_.get();
  const auto& ss = session_.stats();
  s.gaps = ss.gaps;
  s.missing = ss.gap_messages;
  s.recovered = ss.recovered_messages;
  s.lost = ss.lost_messages;
  s.gap_ranges = gap_ranges_;
  s.lost_ranges = lost_ranges_;
  s.session_changes = session_changes_.get();
  s.restarts = restarts_.get();
  s.end_of_session = end_of_session_;
  for (const auto& [name, n] : counters().rejects_by_reason) s.rejects.emplace_back(name, n);
  return s;
}

Result<void> register_itch_pipeline(route::PipelineRegistry& registry) {
  return registry.add(
      "itch", "MoldUDP64 + ITCH 5.0 -> order books -> top of book in Hyperion and normalized updates",
      [](config::Section& options, const route::PipelineContext& ctx) -> Result<std::unique_ptr<route::PipelineBase>> {
        auto o = read_itch_options(options, ctx);
        if (!o) return o.error();
        auto p = ItchPipeline::create(o.value());
        if (!p) return p.error();
        return std::unique_ptr<route::PipelineBase>(std::move(p.value()));
      });
}

namespace {
// Registered from a static initialiser: the library is linked whole (HG_ADAPTER_LIBS).
const bool kRegistered = [] {
  (void)register_itch_pipeline(route::PipelineRegistry::global());
  return true;
}();
}  // namespace

}  // namespace hypergate::market
