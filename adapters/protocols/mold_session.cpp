// MoldSession implementation (contract in mold_session.hpp).
//
// IMPLEMENTATION DETAILS
//   next_   next sequence to deliver          high_   one past the highest sequence seen
//   gaps_   missing ranges in [next_, high_), sorted, disjoint; pending (re-requested) or lost
//           (reported by on_gap_lost(), skipped when delivery reaches them)
//   entries_ stored packets sorted by first sequence; each is a copy of the datagram in arena_
//   arena_  bump allocator of Options::store_bytes; compacted (live copies slid to the front, in
//           offset order) when the bump pointer hits the end; reset when the store empties
// Every container is reserved in the constructor and never grows past its reservation, so the
// per-packet path does not allocate.
#include "protocols/mold_session.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

namespace hypergate::protocols::mold {

namespace {
struct StoredPacket {
  std::uint64_t sequence;       // first message
  std::uint64_t next_sequence;  // one past the last message
  std::size_t offset;           // in the arena
  std::size_t size;
};
struct GapState {
  std::uint64_t first;
  std::uint64_t last;
  std::uint64_t due_ns;      // next retry or give-up time
  std::uint64_t backoff_ns;  // wait after the next request
  std::uint32_t attempts;    // requests sent so far
  bool lost;
};
}  // namespace

struct MoldSession::State {
  Options opt;
  Stats stats;
  SessionName session;
  bool has_session = false;
  bool ended = false;
  std::uint64_t next = 0;
  std::uint64_t high = 0;
  std::vector<GapState> gaps;
  std::size_t gap_capacity = 0;
  std::vector<StoredPacket> entries;
  std::vector<std::size_t> compact_order;  // scratch for compact(), reserved
  std::vector<std::byte> arena;
  std::size_t arena_used = 0;
  std::size_t live_bytes = 0;

  explicit State(const Options& o) : opt(o) {
    if (opt.max_attempts == 0) opt.max_attempts = 1;
    if (opt.max_request_count == 0) opt.max_request_count = 1;
    if (opt.max_requests_per_round == 0) opt.max_requests_per_round = 1;
    if (opt.retry_max_ns < opt.retry_initial_ns) opt.retry_max_ns = opt.retry_initial_ns;
    gap_capacity = opt.store_packets + 2;
    gaps.reserve(gap_capacity);
    entries.reserve(opt.store_packets);
    compact_order.reserve(opt.store_packets);
    arena.resize(opt.store_bytes);
  }

  // ---- delivery ----
  void deliver(const PacketView& p, std::uint64_t to, SessionEvents& ev) noexcept {
    const MessageRange r = p.messages(next, to);
    next = to;
    stats.messages_delivered += r.size();
    ev.on_messages(r);
  }

  // Delivers [next, end) of `p` around lost gaps (pending gaps inside were filled by the caller).
  void deliver_packet(const PacketView& p, std::uint64_t end, SessionEvents& ev) noexcept {
    while (next < end) {
      if (!gaps.empty() && gaps.front().first <= next) {
        if (!gaps.front().lost) return;  // cannot happen: the caller filled [next, end)
        next = std::max(next, gaps.front().last + 1);
        gaps.erase(gaps.begin());
        continue;
      }
      std::uint64_t limit = end;
      if (!gaps.empty() && gaps.front().first < limit) limit = gaps.front().first;
      deliver(p, limit, ev);
    }
  }

  // Skips lost gaps at the front and delivers stored packets while they are contiguous.
  void drain(SessionEvents& ev) noexcept {
    for (;;) {
      if (!gaps.empty() && gaps.front().first <= next) {
        if (!gaps.front().lost) return;  // waiting for this gap
        next = std::max(next, gaps.front().last + 1);
        gaps.erase(gaps.begin());
        continue;
      }
      if (entries.empty()) return;
      const StoredPacket f = entries.front();
      if (f.sequence > next) return;  // a pending gap starts at next (invariant)
      if (f.next_sequence > next) {
        std::uint64_t limit = f.next_sequence;
        if (!gaps.empty() && gaps.front().first < limit) limit = gaps.front().first;
        deliver(PacketView::from_validated(Bytes{arena.data() + f.offset, f.size}), limit, ev);
      }
      if (f.next_sequence <= next) release_front();
    }
  }

  // ---- store ----
  void release_front() noexcept {
    live_bytes -= entries.front().size;
    entries.erase(entries.begin());
    if (entries.empty()) arena_used = 0;
  }

  void compact() noexcept {
    compact_order.clear();
    for (std::size_t i = 0; i < entries.size(); ++i) compact_order.push_back(i);
    std::sort(compact_order.begin(), compact_order.end(),
              [this](std::size_t a, std::size_t b) { return entries[a].offset < entries[b].offset; });
    std::size_t at = 0;
    for (const std::size_t i : compact_order) {  // ascending offsets: destination never passes source
      StoredPacket& e = entries[i];
      if (e.offset != at) std::memmove(arena.data() + at, arena.data() + e.offset, e.size);
      e.offset = at;
      at += e.size;
    }
    arena_used = at;
  }

  bool store(const PacketView& p) noexcept {
    const std::size_t size = p.bytes().size();
    if (entries.size() >= opt.store_packets || size > opt.store_bytes - live_bytes) {
      ++stats.store_overflows;
      return false;
    }
    if (size > arena.size() - arena_used) compact();
    std::memcpy(arena.data() + arena_used, p.bytes().data(), size);
    const StoredPacket e{p.sequence(), p.next_sequence(), arena_used, size};
    arena_used += size;
    live_bytes += size;
    const auto pos = std::upper_bound(entries.begin(), entries.end(), e.sequence,
                                      [](std::uint64_t s, const StoredPacket& x) { return s < x.sequence; });
    entries.insert(pos, e);
    ++stats.stored_packets;
    return true;
  }

  // ---- gaps ----
  bool intersects_pending(std::uint64_t s, std::uint64_t e) const noexcept {
    for (const GapState& g : gaps) {
      if (g.first >= e) break;
      if (!g.lost && g.last >= s) return true;
    }
    return false;
  }

  // Removes [s, e) from the pending gaps; returns how many missing sequences that covered.
  std::uint64_t fill(std::uint64_t s, std::uint64_t e) noexcept {
    std::uint64_t recovered = 0;
    for (std::size_t i = 0; i < gaps.size() && s < e;) {
      GapState& g = gaps[i];
      if (g.first >= e) break;
      if (g.lost || g.last < s) {
        ++i;
        continue;
      }
      const std::uint64_t lo = std::max(s, g.first);
      const std::uint64_t hi = std::min(e - 1, g.last);
      recovered += hi - lo + 1;
      if (lo == g.first && hi == g.last) {
        gaps.erase(gaps.begin() + static_cast<std::ptrdiff_t>(i));
        continue;
      }
      g.attempts = 0;  // progress: the server is answering, so the retry budget starts over
      g.backoff_ns = opt.retry_initial_ns;
      if (lo == g.first) {
        g.first = hi + 1;
      } else if (hi == g.last) {
        g.last = lo - 1;
      } else if (gaps.size() < gap_capacity) {
        GapState tail = g;
        tail.first = hi + 1;
        g.last = lo - 1;
        gaps.insert(gaps.begin() + static_cast<std::ptrdiff_t>(i) + 1, tail);
        ++i;
      }  // else: keep the whole gap (a superset); re-requests re-fetch the stored middle, harmless
      ++i;
    }
    stats.recovered_messages += recovered;
    return recovered;
  }

  void lose(GapState& g, SessionEvents& ev) noexcept {
    g.lost = true;
    ++stats.gaps_lost;
    stats.lost_messages += g.last - g.first + 1;
    ev.on_gap_lost(Gap{g.first, g.last});
  }

  void send_requests(GapState& g, std::uint64_t now, SessionEvents& ev) noexcept {
    std::uint64_t seq = g.first;
    for (std::size_t k = 0; k < opt.max_requests_per_round && seq <= g.last; ++k) {
      const std::uint64_t left = g.last - seq + 1;
      const auto count = static_cast<std::uint16_t>(std::min<std::uint64_t>(left, opt.max_request_count));
      ++stats.requests;
      ev.on_request(Request{session, seq, count});
      seq += count;
    }
    ++g.attempts;
    g.due_ns = now + g.backoff_ns;
    g.backoff_ns = std::min(g.backoff_ns * 2, opt.retry_max_ns);
  }

  // A new missing range [first, last] above every known gap.
  void open_gap(std::uint64_t first, std::uint64_t last, std::uint64_t now, SessionEvents& ev) noexcept {
    ++stats.gaps;
    stats.gap_messages += last - first + 1;
    ev.on_gap(Gap{first, last});
    if (gaps.size() >= gap_capacity) {  // pathological: merge into the last gap (a superset)
      GapState& tail = gaps.back();
      const std::uint64_t from = tail.last + 1;
      tail.last = last;
      if (tail.lost) {
        ++stats.gaps_lost;
        stats.lost_messages += last - from + 1;
        ev.on_gap_lost(Gap{from, last});
      }
      return;
    }
    gaps.push_back(GapState{first, last, now, opt.retry_initial_ns, 0, false});
    if (!opt.recovery) {
      lose(gaps.back(), ev);
    } else {
      send_requests(gaps.back(), now, ev);
    }
  }

  void reset_sequences(std::uint64_t packet_sequence) noexcept {
    next = high = opt.first_sequence != 0 ? opt.first_sequence : packet_sequence;
  }

  void change_session(const SessionName& name, std::uint64_t packet_sequence, SessionEvents& ev) noexcept {
    for (GapState& g : gaps) {
      if (!g.lost) lose(g, ev);
    }
    gaps.clear();
    entries.clear();
    arena_used = live_bytes = 0;
    ++stats.session_changes;
    const SessionName old = session;
    session = name;
    ended = false;
    reset_sequences(packet_sequence);
    ev.on_session_change(old, name);
  }

  // A heartbeat / end of session whose Sequence is the sender's next sequence.
  void control(std::uint64_t sequence, std::uint64_t now, SessionEvents& ev) noexcept {
    if (sequence <= high) return;
    const std::uint64_t from = high;
    high = sequence;
    open_gap(from, sequence - 1, now, ev);
    drain(ev);
  }

  void data(const PacketView& p, std::uint64_t now, SessionEvents& ev) noexcept {
    ++stats.packets;
    const std::uint64_t s = p.sequence();
    const std::uint64_t e = p.next_sequence();
    if (e <= next) {  // nothing new
      ++stats.duplicate_packets;
      stats.duplicate_messages += e - s;
      return;
    }
    const std::uint64_t old_high = high;
    if (e > high) high = e;
    if (s <= next) {  // contiguous with what was delivered
      stats.duplicate_messages += next - s;
      if (gaps.empty() && entries.empty()) [[likely]] {  // the steady state: no gap anywhere
        deliver(p, e, ev);
        return;
      }
      fill(next, e);
      deliver_packet(p, e, ev);
      drain(ev);
      return;
    }
    // Ahead of delivery: keep it if it carries anything missing or new.
    if (e <= old_high && !intersects_pending(s, e)) {
      ++stats.duplicate_packets;
      stats.duplicate_messages += e - s;
      return;
    }
    if (store(p)) {
      fill(s, std::min(e, old_high));
      if (s > old_high) open_gap(old_high, s - 1, now, ev);
    } else if (e > old_high) {
      open_gap(old_high, e - 1, now, ev);  // the packet's own new messages are missing too
    }
    drain(ev);  // a gap given up at once (no recovery) may unblock delivery
  }
};

MoldSession::MoldSession(const Options& options) : state_(std::make_unique<State>(options)) {}
MoldSession::MoldSession(MoldSession&&) noexcept = default;
MoldSession& MoldSession::operator=(MoldSession&&) noexcept = default;
MoldSession::~MoldSession() = default;

void MoldSession::on_packet(const PacketView& packet, std::uint64_t now_ns, SessionEvents& events) noexcept {
  State& st = *state_;
  const SessionName name = packet.session_name();
  if (!st.has_session) [[unlikely]] {
    st.has_session = true;
    st.session = name;
    st.reset_sequences(packet.sequence());
  } else if (name != st.session) [[unlikely]] {
    st.change_session(name, packet.sequence(), events);
  }
  if (packet.is_end_of_session()) [[unlikely]] {
    ++st.stats.end_of_session;
    st.control(packet.sequence(), now_ns, events);
    if (!st.ended) {
      st.ended = true;
      events.on_end_of_session(st.session, packet.sequence());
    }
    return;
  }
  if (packet.is_heartbeat()) {
    ++st.stats.heartbeats;
    st.control(packet.sequence(), now_ns, events);
    return;
  }
  st.data(packet, now_ns, events);
}

PacketError MoldSession::on_datagram(Bytes datagram, std::uint64_t now_ns, SessionEvents& events) noexcept {
  PacketView view;
  const PacketError err = PacketView::parse(datagram, view);
  if (err != PacketError::Ok) {
    ++state_->stats.malformed;
    return err;
  }
  on_packet(view, now_ns, events);
  return PacketError::Ok;
}

void MoldSession::on_timer(std::uint64_t now_ns, SessionEvents& events) noexcept {
  State& st = *state_;
  bool gave_up = false;
  bool earlier_pending = false;  // a pending gap below this one
  for (GapState& g : st.gaps) {
    if (g.lost) continue;
    if (g.due_ns <= now_ns) {
      if (g.attempts < st.opt.max_attempts) {
        st.send_requests(g, now_ns, events);
      } else if (earlier_pending) {
        // Out of attempts, but its data could not be delivered before the earlier gap resolves
        // anyway (and may have been refused by a full store): keep asking at the capped backoff.
        g.backoff_ns = st.opt.retry_max_ns;
        st.send_requests(g, now_ns, events);
        g.attempts = st.opt.max_attempts;
      } else {
        st.lose(g, events);
        gave_up = true;
        continue;
      }
    }
    earlier_pending = true;
  }
  if (gave_up) st.drain(events);
}

std::uint64_t MoldSession::next_timer_ns() const noexcept {
  std::uint64_t t = std::numeric_limits<std::uint64_t>::max();
  for (const GapState& g : state_->gaps) {
    if (!g.lost) t = std::min(t, g.due_ns);
  }
  return t;
}

std::uint64_t MoldSession::next_sequence() const noexcept { return state_->next; }
std::uint64_t MoldSession::high_sequence() const noexcept { return state_->high; }
const SessionName& MoldSession::session() const noexcept { return state_->session; }
bool MoldSession::has_session() const noexcept { return state_->has_session; }
bool MoldSession::ended() const noexcept { return state_->ended; }

std::size_t MoldSession::pending_gaps() const noexcept {
  std::size_t n = 0;
  for (const GapState& g : state_->gaps) n += g.lost ? 0 : 1;
  return n;
}

Gap MoldSession::pending_gap(std::size_t i) const noexcept {
  for (const GapState& g : state_->gaps) {
    if (g.lost) continue;
    if (i == 0) return Gap{g.first, g.last};
    --i;
  }
  return Gap{};
}

std::size_t MoldSession::stored_packets() const noexcept { return state_->entries.size(); }
std::size_t MoldSession::stored_bytes() const noexcept { return state_->live_bytes; }
const MoldSession::Stats& MoldSession::stats() const noexcept { return state_->stats; }
const MoldSession::Options& MoldSession::options() const noexcept { return state_->opt; }

}  // namespace hypergate::protocols::mold
