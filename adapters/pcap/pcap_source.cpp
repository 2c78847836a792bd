// `pcap` source: replays the UDP payloads of a pcap/pcapng capture into the pipeline.
//
//   [source.replay]
//   type     = "pcap"
//   path     = "captures/itch.pcap"
//   port     = 0        # UDP destination port to keep; 0 = every UDP payload
//   speed    = "max"    # max | realtime | <N>x (10x, 0.5x) | <N>pps (fixed rate)
//   loop     = 1        # passes over the file; capture time continues from pass to pass
//   progress = true     # one-line progress bar on stderr, only when stderr is a terminal
//
// One Message per UDP payload: data = the payload, rx_tsc = the TSC at poll, sequence = the datagram's
// number in the replay (1, 2, 3... across passes; 0 stays "no sequence"), type/key left for the decoder.
//
// Shape
//  - poll() never blocks. With a schedule (speed != max) it hands out the packets whose target time
//    (ReplaySchedule, absolute: no drift) has passed on the TSC clock, measured from the first poll;
//    at max speed it fills the burst's room. The next packet is read ahead: it waits in `pending_`
//    (a view into libpcap's buffer, untouched until the next pcap_next_ex) until it is due.
//  - Payload lifetime: NOT zero-copy. libpcap reuses its read buffer on every pcap_next_ex(), so a
//    view into it would die before the pipeline releases the burst. Each payload is copied into a byte
//    ring reserved in start() (kRingBytes); the ring space of a poll is freed when release() returns
//    that burst. The runtime releases every non-empty poll once, in poll order, right after the
//    pipeline; release() therefore frees the oldest outstanding poll (it does not count messages in the
//    burst, which the pipeline may have compacted). Ring full -> poll() returns 0 until a release.
//  - Per poll: one TSC read, one copy per payload, no allocation; a rewind (reopen) per loop pass.
//  - finished() once the last pass is read and every read packet handed out. A read error (capture cut
//    short) ends the replay after the whole records before it, counted in stats().errors.
#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hypergate/adapter/registry.hpp"
#include "hypergate/core/clock.hpp"
#include "pcap/capture_reader.hpp"
#include "pcap/progress_meter.hpp"
#include "pcap/replay_schedule.hpp"

namespace hypergate::pcap {
namespace {

class PcapSource final : public adapter::Source {
 public:
  static constexpr std::uint64_t kRingBytes = 8ull << 20;  // 128 maximal datagrams, ~5000 MTU-sized ones
  static constexpr std::size_t kMaxOutstandingPolls = 1024;
  static_assert((kRingBytes & (kRingBytes - 1)) == 0, "ring offsets are masked");
  static_assert(kRingBytes >= 2 * 65536, "a maximal datagram always fits an empty ring");
  static_assert((kMaxOutstandingPolls & (kMaxOutstandingPolls - 1)) == 0, "poll FIFO indices are masked");

  struct Options {
    std::string path;
    std::uint16_t port = 0;
    Speed speed;
    std::uint64_t loops = 1;
    bool progress = true;
  };

  explicit PcapSource(Options o) : opt_(std::move(o)), schedule_(opt_.speed, 0), meter_(stderr, false) {}

  [[nodiscard]] std::string_view type() const noexcept override { return "pcap"; }

  [[nodiscard]] Result<void> start() override {
    Result<CaptureReader> r = CaptureReader::open(opt_.path, opt_.port);
    if (!r) return r.error();
    reader_.emplace(std::move(r).value());
    ring_.assign(kRingBytes, std::byte{0});
    poll_ends_.assign(kMaxOutstandingPolls, 0);
    clock_ = &TscClock::instance();
    meter_ = ProgressMeter(stderr, opt_.progress);
    return {};
  }

  void stop() noexcept override {
    if (meter_.active() && reader_) meter_.finish(now_ns(), fraction(), sent_, bytes_sent_);
    reader_.reset();
  }

  std::size_t poll(Burst<>& out) noexcept override {
    if (!reader_ || done_) return 0;
    const std::uint64_t now_tsc = TscClock::ticks();
    if (!clock_started_) {
      clock_started_ = true;
      start_tsc_ = now_tsc;
    }
    const std::uint64_t elapsed = clock_->elapsed_ns(start_tsc_, now_tsc);
    if (polls_out_ - polls_back_ == kMaxOutstandingPolls) return 0;  // backpressure: nothing released
    std::size_t n = 0;
    std::uint64_t bytes = 0;
    while (out.size() < out.capacity()) {
      if (!has_pending_ && !read_ahead()) break;
      if (!schedule_.unpaced() && pending_target_ > elapsed) break;  // not due yet
      const std::size_t size = pending_.payload.size();
      std::byte* dst = ring_alloc(size);
      if (dst == nullptr) break;  // ring full until a release
      if (size != 0) std::memcpy(dst, pending_.payload.data(), size);
      Message& m = out.emplace_back();
      m.set_payload(dst, size);
      m.rx_tsc = now_tsc;
      m.sequence = ++sent_;
      has_pending_ = false;
      bytes += size;
      ++n;
    }
    if (n != 0) {
      poll_ends_[polls_out_++ & (kMaxOutstandingPolls - 1)] = ring_head_;
      bytes_sent_ += bytes;
      // relaxed: only this thread writes the counters; stats() readers want monotonic values only.
      messages_.store(sent_, std::memory_order_relaxed);
      bytes_.store(bytes_sent_, std::memory_order_relaxed);
      bump(polls_);
    }
    if (!has_pending_ && reader_done_) {
      done_ = true;
      // release: pairs with the acquire-load in finished(), which may run on another thread.
      finished_.store(true, std::memory_order_release);
    }
    if (meter_.active()) {
      const std::uint64_t t = clock_->to_ns(now_tsc);
      if (meter_.due(t)) meter_.update(t, fraction(), sent_, bytes_sent_);
    }
    return n;
  }

  void release(Burst<>& done) noexcept override {
    (void)done;  // see "Payload lifetime": one release per non-empty poll, in order
    if (polls_back_ == polls_out_) return;
    ring_tail_ = poll_ends_[polls_back_++ & (kMaxOutstandingPolls - 1)];
  }

  [[nodiscard]] bool finished() const noexcept override {
    return finished_.load(std::memory_order_acquire);  // acquire: pairs with the release-store in poll()
  }

  [[nodiscard]] adapter::SourceStats stats() const noexcept override {
    adapter::SourceStats s;
    // relaxed: counters only, see poll()
    s.messages = messages_.load(std::memory_order_relaxed);
    s.bytes = bytes_.load(std::memory_order_relaxed);
    s.polls = polls_.load(std::memory_order_relaxed);
    s.rejects = rejects_.load(std::memory_order_relaxed);
    s.errors = errors_.load(std::memory_order_relaxed);
    return s;
  }

 private:
  static void bump(std::atomic<std::uint64_t>& counter) noexcept {
    // relaxed: only the owning worker writes; stats() readers want a monotonic count, nothing ordered by it.
    counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }

  /// Reads the next datagram into pending_ (rewinding between passes). False at the end of the replay.
  bool read_ahead() noexcept {
    while (!reader_done_) {
      if (reader_->next(pending_) == CaptureReader::Next::Datagram) {
        has_pending_ = true;
        ++pass_datagrams_;
        pending_target_ = schedule_.next(pending_.capture_ns);
        publish_rejects();
        return true;
      }
      publish_rejects();
      if (!reader_->error().empty()) {  // capture cut short or unreadable: stop here
        bump(errors_);
        reader_done_ = true;
        break;
      }
      schedule_.end_pass();
      ++passes_;
      // A pass without a single datagram would make every further pass empty too: stop.
      if (passes_ >= opt_.loops || pass_datagrams_ == 0) {
        reader_done_ = true;
        break;
      }
      pass_datagrams_ = 0;
      if (!reader_->rewind()) {
        bump(errors_);
        reader_done_ = true;
      }
    }
    return false;
  }

  void publish_rejects() noexcept {
    const ReaderCounts& c = reader_->counts();
    // "Rejects" are malformed frames; other protocols and other ports are not errors of the capture.
    const std::uint64_t bad = c.skipped_for(FrameVerdict::Truncated) + c.skipped_for(FrameVerdict::BadHeader) +
                              c.skipped_for(FrameVerdict::Fragment);
    rejects_.store(bad, std::memory_order_relaxed);  // relaxed: counter only, see poll()
  }

  /// Contiguous room for `size` bytes in the ring, or nullptr when the unreleased polls hold it.
  std::byte* ring_alloc(std::size_t size) noexcept {
    const std::uint64_t offset = ring_head_ & (kRingBytes - 1);
    const std::uint64_t pad = offset + size > kRingBytes ? kRingBytes - offset : 0;  // skip the wrap
    if (ring_head_ + pad + size - ring_tail_ > kRingBytes) return nullptr;
    ring_head_ += pad + size;
    return ring_.data() + (pad != 0 ? 0 : offset);
  }

  [[nodiscard]] std::uint64_t now_ns() const noexcept { return clock_ != nullptr ? clock_->to_ns(TscClock::ticks()) : 0; }
  [[nodiscard]] double fraction() const noexcept {
    if (!reader_ || opt_.loops == 0) return 1.0;
    const double pass = static_cast<double>(passes_ < opt_.loops ? passes_ : opt_.loops - 1);
    return reader_done_ ? 1.0 : (pass + reader_->progress()) / static_cast<double>(opt_.loops);
  }

  Options opt_;
  std::optional<CaptureReader> reader_;
  ReplaySchedule schedule_;
  ProgressMeter meter_;
  const TscClock* clock_ = nullptr;
  // Owner-thread state.
  std::vector<std::byte> ring_;
  std::uint64_t ring_head_ = 0;  // bytes handed out (monotonic; offset = head & mask)
  std::uint64_t ring_tail_ = 0;  // bytes released
  std::vector<std::uint64_t> poll_ends_;  // ring_head_ after each outstanding poll
  std::uint64_t polls_out_ = 0;
  std::uint64_t polls_back_ = 0;
  UdpDatagram pending_;
  bool has_pending_ = false;
  std::uint64_t pending_target_ = 0;
  bool reader_done_ = false;
  bool done_ = false;
  bool clock_started_ = false;
  std::uint64_t start_tsc_ = 0;
  std::uint64_t passes_ = 0;
  std::uint64_t pass_datagrams_ = 0;
  std::uint64_t sent_ = 0;
  std::uint64_t bytes_sent_ = 0;
  // Read by stats()/finished() from any thread.
  std::atomic<bool> finished_{false};
  std::atomic<std::uint64_t> messages_{0};
  std::atomic<std::uint64_t> bytes_{0};
  std::atomic<std::uint64_t> polls_{0};
  std::atomic<std::uint64_t> rejects_{0};
  std::atomic<std::uint64_t> errors_{0};
};

Result<std::unique_ptr<adapter::Source>> make_pcap_source(config::Section& section, const adapter::Context& ctx) {
  (void)ctx;
  PcapSource::Options o;
  if (std::optional<std::string> path = section.required_string("path")) o.path = std::move(*path);
  o.port = static_cast<std::uint16_t>(section.integer("port", 0, 0, 65535));
  const std::string speed = section.string("speed", "max");
  if (Result<Speed> s = parse_speed(speed)) {
    o.speed = *s;
  } else {
    section.error("speed", s.error().message);
  }
  o.loops = static_cast<std::uint64_t>(section.integer("loop", 1, 1, 1'000'000'000));
  o.progress = section.boolean("progress", true);
  return std::unique_ptr<adapter::Source>(std::make_unique<PcapSource>(std::move(o)));
}

// Static registration (the sink registers in pcap_sink.cpp): this library is linked whole into
// `hypergate` and the tests (HG_ADAPTER_LIBS).
const bool registered = [] {
  return adapter::Registry::global()
      .add_source("pcap", "replays the UDP payloads of a pcap/pcapng capture (path, port, speed, loop, progress)",
                  make_pcap_source)
      .ok();
}();

}  // namespace
}  // namespace hypergate::pcap
