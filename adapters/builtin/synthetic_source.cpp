// `synthetic` source: generates messages in memory at a configured rate, for the default deployment,
// demos and tests. Nothing is opened; start() only reserves memory.
//
//   [source.gen]
//   type  = "synthetic"
//   rate  = 100000   # messages per second; 0 = as fast as the gateway polls
//   count = 0        # stop (finished()) after this many messages; 0 = unlimited
//   keys  = 64       # distinct routing keys "K0".."K63", assigned round-robin
//   size  = 64       # payload bytes (>= 8): the first 8 carry the sequence number, little-endian
//
// Shape: payloads live in a ring of kRingSlots fixed-size slots reserved in start(). A message's slot
// is reused only after release() has returned it, so poll() hands out at most kRingSlots messages
// that have not been released yet (then it returns 0: backpressure, not overwrite). The runtime
// releases bursts in the order it polled them, which is what makes slot reuse by sequence safe.
// Pacing reads the TSC once per poll (no syscall): the number of messages due is
// rate * elapsed_ns / 1e9 minus those already produced, so a late poll catches up in one burst.
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "hypergate/adapter/registry.hpp"
#include "hypergate/core/clock.hpp"
#include "hypergate/core/hash.hpp"
#include "hypergate/core/uint128.hpp"

namespace hypergate::adapter {
namespace {

class SyntheticSource final : public Source {
 public:
  static constexpr std::uint64_t kRingSlots = 8192;
  static constexpr std::uint32_t kMinSize = 8;  // room for the sequence number
  static_assert((kRingSlots & (kRingSlots - 1)) == 0, "slot index is a mask of the sequence");

  struct Options {
    std::uint64_t rate = 100'000;
    std::uint64_t count = 0;
    std::uint32_t keys = 64;
    std::uint32_t size = 64;
    std::uint16_t id = 0;
  };

  explicit SyntheticSource(const Options& o) : opt_(o) {}

  [[nodiscard]] std::string_view type() const noexcept override { return "synthetic"; }

  [[nodiscard]] Result<void> start() override {
    ring_.assign(kRingSlots * opt_.size, std::byte{0});
    for (std::uint64_t slot = 0; slot < kRingSlots; ++slot) {  // filler after the sequence number
      std::byte* p = ring_.data() + slot * opt_.size;
      for (std::uint32_t i = kMinSize; i < opt_.size; ++i) p[i] = static_cast<std::byte>('a' + i % 26);
    }
    keys_.clear();
    key_hashes_.clear();
    keys_.reserve(opt_.keys);
    for (std::uint32_t k = 0; k < opt_.keys; ++k) {
      keys_.push_back("K" + std::to_string(k));
      key_hashes_.push_back(hash_bytes(keys_.back().data(), keys_.back().size()));
    }
    clock_ = &TscClock::instance();
    start_tsc_ = TscClock::ticks();
    return {};
  }

  void stop() noexcept override {}

  std::size_t poll(Burst<>& out) noexcept override {
    std::uint64_t n = out.capacity() - out.size();
    n = std::min(n, kRingSlots - (produced_ - released_));
    if (opt_.count != 0) n = std::min(n, opt_.count - produced_);
    const std::uint64_t now = TscClock::ticks();
    if (opt_.rate != 0) {
      const std::uint64_t elapsed_ns = clock_->elapsed_ns(start_tsc_, now);
      const auto due = static_cast<std::uint64_t>(static_cast<uint128>(elapsed_ns) * opt_.rate / 1'000'000'000u);
      n = due > produced_ ? std::min(n, due - produced_) : 0;
    }
    if (n == 0) return 0;
    std::uint64_t bytes = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
      const std::uint64_t seq = produced_ + i + 1;  // sequence numbers start at 1
      std::byte* p = ring_.data() + ((seq - 1) & (kRingSlots - 1)) * opt_.size;
      for (int b = 0; b < 8; ++b) p[b] = static_cast<std::byte>(seq >> (8 * b));
      const std::size_t k = (seq - 1) % opt_.keys;
      Message& m = out.emplace_back();
      m.set_payload(p, opt_.size);
      m.key_data = keys_[k].data();
      m.key_size = static_cast<std::uint16_t>(keys_[k].size());
      m.key_hash = key_hashes_[k];
      m.source_id = opt_.id;
      m.rx_tsc = now;
      m.sequence = seq;
      bytes += opt_.size;
    }
    produced_ += n;
    counters_.messages.set(produced_);
    counters_.bytes.add(bytes);
    counters_.polls.add();
    return static_cast<std::size_t>(n);
  }

  void release(Burst<>& done) noexcept override {
    std::uint64_t mine = 0;
    for (const Message& m : done) mine += m.source_id == opt_.id ? 1 : 0;
    released_ += mine;
  }

  [[nodiscard]] bool finished() const noexcept override {
    return opt_.count != 0 && counters_.messages.get() >= opt_.count;
  }

  [[nodiscard]] SourceStats stats() const noexcept override { return counters_.snapshot(); }

 private:
  Options opt_;
  std::vector<std::byte> ring_;
  std::vector<std::string> keys_;
  std::vector<std::uint64_t> key_hashes_;
  const TscClock* clock_ = nullptr;
  std::uint64_t start_tsc_ = 0;
  std::uint64_t produced_ = 0;  // owner thread only
  std::uint64_t released_ = 0;  // owner thread only
  SourceCounters counters_;   // written by poll(), read by stats() and finished()
};

Result<std::unique_ptr<Source>> make_synthetic(config::Section& section, const Context& ctx) {
  SyntheticSource::Options o;
  o.rate = static_cast<std::uint64_t>(section.integer("rate", 100'000, 0, 1'000'000'000));
  o.count = static_cast<std::uint64_t>(section.integer("count", 0, 0, INT64_MAX));
  o.keys = static_cast<std::uint32_t>(section.integer("keys", 64, 1, 1'000'000));
  o.size = static_cast<std::uint32_t>(section.integer("size", 64, SyntheticSource::kMinSize, 65'536));
  o.id = ctx.id;
  return std::unique_ptr<Source>(std::make_unique<SyntheticSource>(o));
}

// Static registration: this library is linked whole into `hypergate` and the tests.
const bool registered = [] {
  return Registry::global()
      .add_source("synthetic", "generated messages at a fixed rate (rate, count, keys, size)", make_synthetic)
      .ok();
}();

}  // namespace
}  // namespace hypergate::adapter
