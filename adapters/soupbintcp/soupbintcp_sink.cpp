// `soupbintcp` sink: see soupbintcp_sink.hpp for the behaviour and its reasons.
//
//   [sink.subscribers]
//   type               = "soupbintcp"
//   listen             = "0.0.0.0:9000"
//   username           = "hguser"     # required: the accepted credentials (<= 6 and <= 10 chars)
//   password           = "secret"     # required
//   session            = "20261123"   # <= 10 characters; default: the UTC start date YYYYMMDD
//   worker             = 0            # the worker whose instance listens and sequences
//   retain             = 65536        # messages kept for replay
//   retain_bytes       = 16777216     # bytes kept for replay (S packets incl. 3-byte headers)
//   heartbeat_interval = "1s"         # H after this much silence towards a subscriber
//   client_timeout     = "15s"        # drop a client that sent nothing for this long
//   max_subscribers    = 64           # connections (the transport's table size)
//   slow_consumer      = "conflate"   # or "disconnect"
//   max_lag            = 32768        # messages behind the head that make a slow consumer (< retain)
//   max_keys           = 4096         # distinct keys tracked for conflation
//   output_bytes       = 262144       # per-subscriber send buffer
#include "soupbintcp/soupbintcp_sink.hpp"

#include <algorithm>
#include <bit>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "hypergate/adapter/registry.hpp"
#include "hypergate/core/clock.hpp"

namespace hypergate::soup {

using protocols::SoupType;

namespace {

constexpr std::size_t kReplyReserve = 256;      // room needed before answering a client packet
constexpr std::size_t kMaxClientPacket = 4096;  // Packet Length bound for client packets (U included)
constexpr std::uint64_t kMaxWalk = 65536;       // conflation: skipped entries per subscriber per call
constexpr std::uint64_t kTickNs = 10'000'000;   // heartbeat / lag check granularity
constexpr std::uint64_t kStopGraceNs = 1'000'000'000;
static_assert(kReplyReserve > protocols::kSoupHeaderBytes + protocols::kSoupLoginAcceptedPayload + 128,
              "an A reply and a debug line fit the reserve");

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

}  // namespace

// ------------------------------------------------------------------------------------------------
// SessionLog

Result<void> SessionLog::reserve(std::uint64_t retain, std::uint64_t bytes, std::uint32_t max_keys) {
  if (retain == 0 || bytes == 0) return Error{Status::InvalidArgument, "retain and retain_bytes must be > 0"};
  retain_ = retain;
  index_.assign(std::bit_ceil(retain), Entry{});
  index_mask_ = index_.size() - 1;
  bytes_.assign(bytes, '\0');
  max_keys_ = max_keys;
  keys_.assign(std::bit_ceil(std::max<std::uint64_t>(2ull * max_keys, 2)), KeySlot{});
  key_mask_ = keys_.size() - 1;
  keys_used_ = 0;
  write_pos_ = 0;
  head_ = oldest_ = 1;
  return {};
}

std::uint32_t SessionLog::key_slot(std::string_view key, std::uint64_t hash) noexcept {
  if (key.empty() || keys_.empty()) return kNoKey;
  const std::size_t cmp = std::min(key.size(), kKeyPrefix);
  for (std::uint64_t i = hash & key_mask_, probes = 0; probes <= key_mask_; i = (i + 1) & key_mask_, ++probes) {
    KeySlot& k = keys_[i];
    if (k.newest == 0) {  // free: claim it while the index has room (load factor <= 1/2)
      if (keys_used_ >= max_keys_) return kNoKey;
      ++keys_used_;
      k.hash = hash;
      k.length = static_cast<std::uint16_t>(key.size());
      std::memcpy(k.prefix, key.data(), cmp);
      return static_cast<std::uint32_t>(i);
    }
    if (k.hash == hash && k.length == key.size() && std::memcmp(k.prefix, key.data(), cmp) == 0)
      return static_cast<std::uint32_t>(i);
  }
  return kNoKey;
}

void SessionLog::evict_oldest() noexcept { ++oldest_; }

bool SessionLog::append(std::string_view key, std::uint64_t key_hash, std::string_view payload) noexcept {
  if (payload.size() > protocols::kSoupMaxPayload) return false;
  const std::uint64_t size = protocols::kSoupHeaderBytes + payload.size();
  const std::uint64_t cap = bytes_.size();
  if (size > cap) return false;
  std::uint64_t pos = write_pos_;
  if (pos % cap + size > cap) pos += cap - pos % cap;  // never split a packet across the end
  // Evict by count, then by bytes: the live bytes [offset of oldest, pos + size) must fit the ring.
  if (head_ - oldest_ >= retain_) evict_oldest();
  while (oldest_ != head_ && pos + size - index_[oldest_ & index_mask_].offset > cap) evict_oldest();
  char* out = bytes_.data() + pos % cap;
  (void)protocols::write_soup_header(std::span<char>(out, protocols::kSoupHeaderBytes), SoupType::SequencedData,
                                     payload.size());
  if (!payload.empty()) std::memcpy(out + protocols::kSoupHeaderBytes, payload.data(), payload.size());
  Entry& e = index_[head_ & index_mask_];
  e.offset = pos;
  e.size = static_cast<std::uint32_t>(size);
  e.key_slot = key_slot(key, key_hash);
  if (e.key_slot != kNoKey) keys_[e.key_slot].newest = head_;
  write_pos_ = pos + size;
  ++head_;
  return true;
}

std::string_view SessionLog::packet(std::uint64_t seq) const noexcept {
  const Entry& e = index_[seq & index_mask_];
  return {bytes_.data() + e.offset % bytes_.size(), e.size};
}

std::string_view SessionLog::run(std::uint64_t seq, std::size_t max_bytes, std::uint64_t& count) const noexcept {
  count = 0;
  if (seq < oldest_ || seq >= head_) return {};
  const Entry& first = index_[seq & index_mask_];
  std::uint64_t end = first.offset;
  while (seq + count < head_) {
    const Entry& e = index_[(seq + count) & index_mask_];
    if (e.offset != end || end + e.size - first.offset > max_bytes) break;  // wrapped, or full
    end += e.size;
    ++count;
  }
  return {bytes_.data() + first.offset % bytes_.size(), static_cast<std::size_t>(end - first.offset)};
}

bool SessionLog::is_newest(std::uint64_t seq) const noexcept {
  const Entry& e = index_[seq & index_mask_];
  return e.key_slot == kNoKey || keys_[e.key_slot].newest == seq;
}

// ------------------------------------------------------------------------------------------------
// SoupSink

SoupSink::SoupSink(SoupSinkOptions options) : opt_(std::move(options)) {
  session_field_ = opt_.session;
  while (!session_field_.empty() && session_field_.front() == ' ') session_field_.erase(0, 1);
  while (!session_field_.empty() && session_field_.back() == ' ') session_field_.pop_back();
}

SoupSink::~SoupSink() { stop(); }

Result<void> SoupSink::start() {
  if (!listening()) return {};
  if (auto r = log_.reserve(opt_.retain, opt_.retain_bytes, opt_.max_keys); !r) return r;
  subs_.assign(opt_.max_subscribers, Subscriber{});
  active_.clear();
  active_.reserve(opt_.max_subscribers);
  uring::ServerOptions so;
  so.host = opt_.host;
  so.port = opt_.port;
  so.max_connections = opt_.max_subscribers;
  so.idle_timeout_ns = opt_.client_timeout_ns;   // a client silent this long is dropped
  so.header_timeout_ns = opt_.client_timeout_ns;  // so is one stuck in the middle of a packet
  so.input_bytes = 16 * 1024;
  so.output_bytes = opt_.output_bytes;
  so.buffer_count = 256;
  so.ring_entries = 256;
  so.reuse_port = false;  // one listening instance: a port already taken must fail loudly
  server_ = std::make_unique<uring::UringServer>(so, static_cast<uring::ConnectionHandler&>(*this));
  if (auto r = server_->start(); !r) {
    server_.reset();
    return r;
  }
  const TscClock& clock = TscClock::instance();
  heartbeat_ticks_ = clock.from_ns(opt_.heartbeat_interval_ns);
  tick_ticks_ = clock.from_ns(std::min<std::uint64_t>(kTickNs, opt_.heartbeat_interval_ns / 4 + 1));
  now_tsc_ = TscClock::ticks();
  next_tick_ = now_tsc_ + tick_ticks_;
  started_ = true;
  return {};
}

void SoupSink::stop() noexcept {
  if (!started_) {
    if (server_) server_->stop();
    return;
  }
  started_ = false;
  // Give subscribers a bounded grace to catch up with the log, then Z to every logged-in one.
  const TscClock& clock = TscClock::instance();
  const std::uint64_t deadline = TscClock::ticks() + clock.from_ns(kStopGraceNs);
  for (;;) {
    now_tsc_ = TscClock::ticks();
    bool behind = false;
    for (std::size_t i = active_.size(); i-- > 0;) {
      Subscriber& s = subs_[active_[i]];
      if (!check_lag(s)) continue;
      if (stream(s) != 0) server_->flush_connection(*s.conn);
      behind = behind || s.cursor < log_.head();
    }
    if (!behind || now_tsc_ >= deadline) break;
    server_->run_once(1'000'000);
  }
  char z[protocols::kSoupHeaderBytes];
  const std::size_t zn = protocols::build_soup_packet(z, SoupType::EndOfSession, {});
  for (std::size_t i = active_.size(); i-- > 0;) {
    Subscriber& s = subs_[active_[i]];
    uring::Connection& c = *s.conn;
    deactivate(s);
    if (!c.write(std::string_view(z, zn))) c.abort();
    c.close_after_write();
    server_->flush_connection(c);
  }
  for (std::uint32_t i = 0; i < subs_.size(); ++i) {  // connections that never logged in
    if (subs_[i].conn != nullptr && !subs_[i].conn->closing()) {
      subs_[i].conn->close_after_write();
      server_->flush_connection(*subs_[i].conn);
    }
  }
  // Let the Z packets go out: the connections close themselves once their output drained.
  const std::uint64_t close_deadline = TscClock::ticks() + clock.from_ns(kStopGraceNs / 2);
  while (server_->stats().active != 0 && TscClock::ticks() < close_deadline) server_->run_once(1'000'000);
  counters_.timeouts.set(server_->stats().timeouts);
  server_->stop();
  const SoupCounters c = counters();
  std::fprintf(stderr,
               "soupbintcp '%s': logged=%llu sent=%llu logins_accepted=%llu logins_rejected=%llu heartbeats=%llu "
               "conflated=%llu disconnected=%llu timeouts=%llu unsequenced=%llu protocol_errors=%llu oversize=%llu\n",
               opt_.name.c_str(), static_cast<unsigned long long>(c.messages_logged),
               static_cast<unsigned long long>(c.messages_sent), static_cast<unsigned long long>(c.logins_accepted),
               static_cast<unsigned long long>(c.logins_rejected), static_cast<unsigned long long>(c.heartbeats),
               static_cast<unsigned long long>(c.conflated), static_cast<unsigned long long>(c.disconnected),
               static_cast<unsigned long long>(c.timeouts), static_cast<unsigned long long>(c.unsequenced),
               static_cast<unsigned long long>(c.protocol_errors), static_cast<unsigned long long>(c.oversize));
}

std::size_t SoupSink::send(const Burst<>& burst) noexcept {
  if (!listening()) [[unlikely]] {
    counters_.misrouted.add(burst.size());
    if (!misrouted_logged_) {
      misrouted_logged_ = true;
      std::fprintf(stderr,
                   "soupbintcp '%s': worker %u got messages, but only worker %u's instance sequences; they are "
                   "counted as errors (route subscriber traffic to a lane consumed by worker %u)\n",
                   opt_.name.c_str(), opt_.this_worker, opt_.worker, opt_.worker);
    }
    return burst.size();
  }
  std::uint64_t logged = 0;
  std::uint64_t bytes = 0;
  for (const Message& m : burst) {
    if (log_.append(m.key(), m.key_hash, m.text())) {
      ++logged;
      bytes += m.size;
    }
  }
  if (logged != burst.size()) counters_.oversize.add(burst.size() - logged);
  counters_.messages_logged.add(logged);
  counters_.bytes.add(bytes);
  return burst.size();
}

std::size_t SoupSink::service() noexcept {
  if (!started_) return 0;
  std::size_t work = server_->run_once(0);
  // A timeout closes a connection inside run_once(): copy the transport's counter at once (a few loads
  // from lines this thread owns), so counters() agrees with what a client just saw.
  counters_.timeouts.set(server_->stats().timeouts);
  now_tsc_ = TscClock::ticks();
  for (std::size_t i = active_.size(); i-- > 0;) {  // backwards: deactivate() swaps the last into i
    Subscriber& s = subs_[active_[i]];
    if (s.cursor >= log_.head() && s.conflate_until <= s.cursor) continue;
    if (!check_lag(s)) continue;
    const std::size_t n = stream(s);
    if (n != 0) {
      server_->flush_connection(*s.conn);
      work += 1;
    }
  }
  if (now_tsc_ >= next_tick_) [[unlikely]] {
    next_tick_ = now_tsc_ + tick_ticks_;
    heartbeats(now_tsc_);
  }
  return work;
}

bool SoupSink::check_lag(Subscriber& s) noexcept {
  const std::uint64_t head = log_.head();
  // A replay requested at login is not lag: until the cursor reaches the head of that moment, only
  // falling out of the retained window counts.
  if (s.cursor >= log_.oldest() && (head - s.cursor <= opt_.max_lag || s.cursor < s.replay_until)) return true;
  if (s.cursor < s.conflate_until && s.cursor >= log_.oldest()) return true;  // already skipping ahead
  uring::Connection& c = *s.conn;
  if (opt_.slow_consumer == SlowConsumerPolicy::Disconnect) {
    char line[128];
    const int n = std::snprintf(line, sizeof(line), "slow consumer: %llu messages behind (max_lag %llu), disconnected",
                                static_cast<unsigned long long>(head - s.cursor),
                                static_cast<unsigned long long>(opt_.max_lag));
    deactivate(s);
    if (n > 0 && write_debug(c, std::string_view(line, static_cast<std::size_t>(n)))) {
      c.close_after_write();
    } else {
      c.abort();
    }
    counters_.disconnected.add();
    std::fprintf(stderr, "soupbintcp '%s': %.*s (connection %u)\n", opt_.name.c_str(), n > 0 ? n : 0, line, c.index());
    server_->flush_connection(c);
    return false;
  }
  if (s.cursor < log_.oldest()) {  // fell out of the window: what is gone is gone
    counters_.conflated.add(log_.oldest() - s.cursor);
    s.cursor = log_.oldest();
  }
  s.conflate_until = head;
  return true;
}

std::size_t SoupSink::stream(Subscriber& s) noexcept {
  uring::Connection& c = *s.conn;
  std::size_t written = 0;
  std::uint64_t sent = 0;
  std::uint64_t skipped = 0;
  const std::uint64_t head = log_.head();
  while (s.cursor < head && !c.closing()) {
    const std::size_t room = c.write_room();
    if (s.cursor < s.conflate_until) {
      if (!log_.is_newest(s.cursor)) {
        ++s.cursor;
        if (++skipped >= kMaxWalk) break;  // bounded work per call; continues next time
        continue;
      }
      const std::string_view p = log_.packet(s.cursor);
      if (p.size() > room) break;
      (void)c.write(p);
      written += p.size();
      ++sent;
      ++s.cursor;
      continue;
    }
    std::uint64_t count = 0;
    const std::string_view p = log_.run(s.cursor, room, count);
    if (count == 0) break;
    (void)c.write(p);
    written += p.size();
    sent += count;
    s.cursor += count;
  }
  if (skipped != 0) counters_.conflated.add(skipped);
  if (sent != 0) counters_.messages_sent.add(sent);
  if (written != 0) s.last_tx_tsc = now_tsc_;
  return written;
}

void SoupSink::heartbeats(std::uint64_t now_tsc) noexcept {
  char h[protocols::kSoupHeaderBytes];
  const std::size_t hn = protocols::build_soup_packet(h, SoupType::ServerHeartbeat, {});
  std::uint64_t sent = 0;
  for (const std::uint32_t index : active_) {
    Subscriber& s = subs_[index];
    if (now_tsc - s.last_tx_tsc < heartbeat_ticks_) continue;
    if (s.conn->write(std::string_view(h, hn))) {
      s.last_tx_tsc = now_tsc;
      server_->flush_connection(*s.conn);
      ++sent;
    }
  }
  if (sent != 0) counters_.heartbeats.add(sent);
  // The transport drops silent clients (its idle timeout); its counter is copied here so that
  // counters() never touches server_ from another thread.
  counters_.timeouts.set(server_->stats().timeouts);
}

bool SoupSink::write_debug(uring::Connection& c, std::string_view text) noexcept {
  char buf[protocols::kSoupHeaderBytes + 256];
  const std::size_t n = protocols::build_soup_packet(buf, SoupType::Debug, text.substr(0, 256));
  return n != 0 && c.write(std::string_view(buf, n));
}

void SoupSink::activate(Subscriber& s, std::uint32_t index) noexcept {
  s.logged_in = true;
  s.active_pos = static_cast<std::uint32_t>(active_.size());
  active_.push_back(index);  // capacity reserved at start (max_subscribers): no allocation
  counters_.subscribers.set(active_.size());  // a gauge
}

void SoupSink::deactivate(Subscriber& s) noexcept {
  if (!s.logged_in) return;
  s.logged_in = false;
  const std::uint32_t pos = s.active_pos;
  const std::uint32_t last = active_.back();
  active_[pos] = last;
  subs_[last].active_pos = pos;
  active_.pop_back();
  counters_.subscribers.set(active_.size());  // a gauge
}

void SoupSink::on_open(uring::Connection& c) noexcept {
  Subscriber& s = subs_[c.index()];
  s = Subscriber{};
  s.conn = &c;
}

void SoupSink::on_close(uring::Connection& c) noexcept {
  if (c.index() >= subs_.size()) return;
  Subscriber& s = subs_[c.index()];
  deactivate(s);
  s.conn = nullptr;
}

std::size_t SoupSink::on_data(uring::Connection& c, std::span<char> data) noexcept {
  Subscriber& s = subs_[c.index()];
  const std::string_view bytes(data.data(), data.size());
  std::size_t used = 0;
  while (used < bytes.size() && !c.closing()) {
    if (c.write_room() < kReplyReserve) break;  // wait for the output to drain (before parsing)
    const protocols::SoupSplit split = protocols::split_soup_frame(bytes.substr(used), kMaxClientPacket);
    if (split.status == protocols::SoupSplitStatus::NeedMore) break;
    protocols::SoupClientPacket packet;
    if (split.status == protocols::SoupSplitStatus::Error ||
        protocols::parse_soup_client_packet(split.frame, packet) != protocols::SoupError::None) {
      counters_.protocol_errors.add();
      deactivate(s);
      c.abort();  // framing or protocol lost: nothing sensible to answer
      return bytes.size();
    }
    used += split.frame.size;
    switch (packet.type) {
      case SoupType::LoginRequest:
        if (s.logged_in) {  // a second login on one connection is a protocol error
          counters_.protocol_errors.add();
          deactivate(s);
          c.abort();
          return bytes.size();
        }
        handle_login(s, packet.login);
        break;
      case SoupType::LogoutRequest:
        deactivate(s);
        c.close_after_write();
        break;
      case SoupType::UnsequencedData:
        counters_.unsequenced.add();
        break;
      default:  // ClientHeartbeat: receiving it already reset the idle timer
        break;
    }
  }
  return c.closing() ? bytes.size() : used;
}

void SoupSink::handle_login(Subscriber& s, const protocols::SoupLoginRequest& login) noexcept {
  uring::Connection& c = *s.conn;
  char buf[kReplyReserve];
  const bool authorized = iequals(login.username, opt_.username) && login.password == opt_.password;
  const bool session_ok = login.session.empty() || login.session == session_field_;
  if (!authorized || !session_ok) {
    const auto reason =
        authorized ? protocols::SoupRejectReason::SessionUnavailable : protocols::SoupRejectReason::NotAuthorized;
    const std::size_t n = protocols::build_soup_login_rejected(buf, reason);
    (void)c.write(std::string_view(buf, n));  // room checked by on_data()
    c.close_after_write();
    counters_.logins_rejected.add();
    return;
  }
  std::uint64_t next = login.sequence == 0 ? log_.head() : std::min(login.sequence, log_.head());
  if (next < log_.oldest()) {
    char line[160];
    const int n = std::snprintf(line, sizeof(line),
                                "requested sequence %llu is older than the retained window; replay starts at %llu",
                                static_cast<unsigned long long>(login.sequence),
                                static_cast<unsigned long long>(log_.oldest()));
    next = log_.oldest();
    if (n > 0) (void)write_debug(c, std::string_view(line, static_cast<std::size_t>(n)));
  }
  const std::size_t n = protocols::build_soup_login_accepted(buf, opt_.session, next);
  (void)c.write(std::string_view(buf, n));
  s.cursor = next;
  s.replay_until = log_.head();
  s.conflate_until = 0;
  s.last_tx_tsc = now_tsc_ = TscClock::ticks();
  activate(s, c.index());
  counters_.logins_accepted.add();
}

adapter::SinkStats SoupSink::stats() const noexcept {
  adapter::SinkStats st;
  st.messages = counters_.messages_logged.get();
  st.bytes = counters_.bytes.get();
  st.drops = counters_.oversize.get();
  st.errors = counters_.misrouted.get();
  return st;
}

SoupCounters SoupSink::counters() const noexcept {
  SoupCounters c;
  c.subscribers = counters_.subscribers.get();
  c.logins_accepted = counters_.logins_accepted.get();
  c.logins_rejected = counters_.logins_rejected.get();
  c.messages_logged = counters_.messages_logged.get();
  c.messages_sent = counters_.messages_sent.get();
  c.heartbeats = counters_.heartbeats.get();
  c.conflated = counters_.conflated.get();
  c.disconnected = counters_.disconnected.get();
  c.timeouts = counters_.timeouts.get();
  c.unsequenced = counters_.unsequenced.get();
  c.protocol_errors = counters_.protocol_errors.get();
  c.oversize = counters_.oversize.get();
  c.misrouted = counters_.misrouted.get();
  return c;
}

// ------------------------------------------------------------------------------------------------
// Factory and registration

namespace {

std::string start_date_session() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[48];  // sized for any int values, so the compiler can prove no truncation
  std::snprintf(buf, sizeof(buf), "%04d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
  return buf;
}

Result<std::unique_ptr<adapter::Sink>> make_soupbintcp(config::Section& section, const adapter::Context& ctx) {
  SoupSinkOptions o;
  o.name = ctx.name;
  o.this_worker = ctx.worker;
  if (auto ep = section.endpoint("listen", "0.0.0.0:9000")) {
    o.host = ep->host.empty() ? "0.0.0.0" : ep->host;
    o.port = ep->port;
  }
  if (auto u = section.required_string("username")) {
    o.username = *u;
    if (u->empty() || u->size() > protocols::kSoupUsernameBytes || u->find(' ') != std::string::npos)
      section.error("username", "expected 1..6 characters without spaces");
  }
  if (auto p = section.required_string("password")) {
    o.password = *p;
    if (p->size() > protocols::kSoupPasswordBytes || p->find(' ') != std::string::npos)
      section.error("password", "expected at most 10 characters without spaces");
  }
  o.session = section.string("session", start_date_session());
  if (o.session.empty() || o.session.size() > protocols::kSoupSessionBytes || o.session.find(' ') != std::string::npos)
    section.error("session", "expected 1..10 characters without spaces");
  const auto workers = static_cast<std::int64_t>(ctx.workers == 0 ? 1 : ctx.workers);
  o.worker = static_cast<unsigned>(section.integer("worker", 0, 0, workers - 1));
  o.retain = static_cast<std::uint64_t>(section.integer("retain", 65536, 1, 1 << 26));
  o.retain_bytes = static_cast<std::uint64_t>(section.integer("retain_bytes", 16 << 20, 65536, 1ll << 34));
  o.heartbeat_interval_ns = section.duration_ns("heartbeat_interval", 1'000'000'000ull);
  if (o.heartbeat_interval_ns == 0) section.error("heartbeat_interval", "must be > 0");
  o.client_timeout_ns = section.duration_ns("client_timeout", 15'000'000'000ull);
  o.max_subscribers = static_cast<std::uint32_t>(section.integer("max_subscribers", 64, 1, 65536));
  o.slow_consumer = section.choice("slow_consumer", "conflate", {"conflate", "disconnect"}) == "disconnect"
                        ? SlowConsumerPolicy::Disconnect
                        : SlowConsumerPolicy::Conflate;
  const auto retain = static_cast<std::int64_t>(o.retain);
  o.max_lag = static_cast<std::uint64_t>(section.integer("max_lag", std::max<std::int64_t>(retain / 2, 1), 1, retain));
  if (o.max_lag >= o.retain && o.retain > 1) section.error("max_lag", "must be below retain (the replay window)");
  o.max_keys = static_cast<std::uint32_t>(section.integer("max_keys", 4096, 1, 1 << 24));
  o.output_bytes = static_cast<std::uint32_t>(section.integer("output_bytes", 256 * 1024, 4096, 64 << 20));
  return std::unique_ptr<adapter::Sink>(std::make_unique<SoupSink>(std::move(o)));
}

// Static registration: this library is linked whole into `hypergate` and the tests.
const bool registered = [] {
  return adapter::Registry::global()
      .add_sink("soupbintcp",
                "SoupBinTCP 3.0 subscribers: sequenced session with replay, heartbeats, slow-consumer policy (listen, "
                "username, password, session, worker, retain, retain_bytes, heartbeat_interval, client_timeout, "
                "max_subscribers, slow_consumer, max_lag, max_keys, output_bytes)",
                make_soupbintcp)
      .ok();
}();

}  // namespace
}  // namespace hypergate::soup
