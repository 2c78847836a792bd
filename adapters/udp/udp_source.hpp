#pragma once
// `udp` source: IPv4 UDP datagrams in, one Message per datagram (payload = the datagram bytes).
//
//   [source.feed]
//   type         = "udp"
//   listen       = "239.1.1.1:30001"   # a multicast group (joined) or a unicast address to bind
//   interface    = "127.0.0.1"         # multicast only: the interface address to join on
//   source       = "10.0.0.5"          # multicast only, optional: source-specific join (SSM)
//   rcvbuf       = 0                   # SO_RCVBUF bytes; 0 = the kernel default. The granted size is
//                                      # logged, with a warning when the kernel gave less
//   max_datagram = 2048                # bigger datagrams arrive truncated: counted as rejects
//   timestamps   = true                # SO_TIMESTAMPNS kernel stamps -> Message::rx_tsc
//
// Guarantees:
//  - poll() makes exactly one recvmmsg(MSG_DONTWAIT) call for up to the burst's free room (at most
//    kBatch datagrams) into preallocated slots: no allocation, one syscall per burst, never blocks.
//  - The bytes behind the returned messages stay valid until release() is called for that burst.
//    Bursts are released in the order they were polled (the runtime polls, processes, releases);
//    up to kSlots datagrams can be outstanding, after which poll() returns 0 until a release.
//  - rx_tsc is the kernel's receive stamp (CLOCK_REALTIME) converted to TscClock ticks through an
//    offset calibrated at start(); a datagram without a stamp gets TscClock::ticks() at poll.
//  - Kernel drops (SO_RXQ_OVFL, a cumulative per-socket counter carried on later datagrams) are
//    exported as SourceStats::drops; truncated datagrams (MSG_TRUNC) are SourceStats::rejects;
//    failed receive calls are SourceStats::errors. Nothing here crashes on bad input.
//  - Threading: start/poll/release/stop on the owning worker; stats() from any thread (relaxed
//    atomic counters, single writer).
#include <sys/socket.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "hypergate/adapter/source.hpp"
#include "udp/udp_socket.hpp"

namespace hypergate::udp {

struct UdpSourceOptions {
  std::string name;                  ///< instance name, for log lines
  Ipv4Endpoint listen;               ///< group or unicast address + port (port 0: kernel-chosen)
  in_addr interface{htonl(INADDR_LOOPBACK)};  ///< multicast join interface
  std::optional<in_addr> ssm_source; ///< source-specific multicast
  std::uint32_t rcvbuf = 0;          ///< 0 = leave the kernel default
  std::uint32_t max_datagram = 2048;
  bool timestamps = true;
};

class UdpSource final : public adapter::Source {
 public:
  /// Datagrams per recvmmsg call: one burst's worth.
  static constexpr std::size_t kBatch = Burst<>::kCapacity;
  /// Datagram slots: four bursts may be outstanding (polled, not yet released).
  static constexpr std::size_t kSlots = 4 * kBatch;
  static_assert((kSlots & (kSlots - 1)) == 0, "slot indices wrap with a mask");
  static_assert(kSlots >= kBatch, "one poll must always fit when nothing is outstanding");

  explicit UdpSource(UdpSourceOptions options);
  ~UdpSource() override { stop(); }
  UdpSource(const UdpSource&) = delete;
  UdpSource& operator=(const UdpSource&) = delete;

  [[nodiscard]] std::string_view type() const noexcept override { return "udp"; }
  [[nodiscard]] Result<void> start() override;
  void stop() noexcept override;
  std::size_t poll(Burst<>& out) noexcept override;
  void release(Burst<>& done) noexcept override;
  /// The socket: readable while datagrams are queued.
  [[nodiscard]] int wake_fd() noexcept override { return fd_.get(); }
  [[nodiscard]] adapter::SourceStats stats() const noexcept override;

  /// The bound port (useful with port 0); 0 before start().
  [[nodiscard]] std::uint16_t local_port() const noexcept { return local_port_; }
  /// The receive buffer the kernel granted at start() (usable bytes), 0 if not set.
  [[nodiscard]] std::uint32_t rcvbuf_granted() const noexcept { return rcvbuf_granted_; }

 private:
  // Control buffer per datagram: room for the timestamp and the drop counter.
  static constexpr std::size_t kControlBytes = CMSG_SPACE(sizeof(timespec)) + CMSG_SPACE(sizeof(std::uint32_t));
  struct alignas(cmsghdr) Control {
    std::array<char, kControlBytes> bytes;
  };
  static_assert(alignof(Control) >= alignof(cmsghdr), "CMSG_FIRSTHDR reads a cmsghdr at the start");

  Result<void> join(int fd);

  UdpSourceOptions opt_;
  UniqueFd fd_;
  std::uint16_t local_port_ = 0;
  std::uint32_t rcvbuf_granted_ = 0;
  RealtimeToTsc realtime_to_tsc_;

  std::vector<std::byte> slots_;  // kSlots * max_datagram bytes, reserved at construction
  std::uint64_t head_ = 0;        // next slot to fill (monotonic; slot = head_ & (kSlots - 1))
  std::uint64_t tail_ = 0;        // oldest slot still held by an unreleased burst
  std::array<std::uint32_t, kSlots> batch_sizes_{};  // slots taken by each outstanding poll, FIFO
  std::uint64_t batch_head_ = 0;
  std::uint64_t batch_tail_ = 0;

  std::array<mmsghdr, kBatch> headers_{};
  std::array<iovec, kBatch> iov_{};
  std::array<Control, kBatch> control_{};

  std::uint32_t last_overflow_ = 0;  // the last SO_RXQ_OVFL value seen (cumulative, wraps at 2^32)

  adapter::SourceCounters counters_;
};

}  // namespace hypergate::udp
