#pragma once
// `udp` sink: messages out as IPv4 UDP datagrams, unicast or multicast, either one datagram per
// message (framing = "raw") or as a MoldUDP64 republisher (framing = "moldudp64").
//
//   [sink.republish]
//   type               = "udp"
//   destination        = "239.1.1.2:30002"   # multicast group or unicast address
//   interface          = "127.0.0.1"         # multicast only: IP_MULTICAST_IF
//   ttl                = 1                   # multicast only: IP_MULTICAST_TTL
//   loop               = true                # multicast only: IP_MULTICAST_LOOP (local listeners)
//   framing            = "raw"               # "raw" | "moldudp64"
//   worker             = 0                   # the worker whose instance owns the socket
//   # moldudp64 only:
//   session            = "HYPERGATE"         # 10 characters at most (space padded on the wire)
//   mtu                = 1400                # packet bytes at most (header + message blocks)
//   heartbeat_interval = "1s"                # a heartbeat after this long without a packet
//   retransmit_listen  = "127.0.0.1:30003"   # optional re-request server (UDP)
//   retransmit_packets = 4096                # ring of the last N packets kept for re-requests
//
// Guarantees:
//  - One instance per worker exists (the runtime builds one per worker); only the instance of
//    worker `worker` opens sockets and owns the MoldUDP64 sequence space. The others refuse what
//    they are sent: the messages are counted as errors and a log line says so once.
//  - send() sends a burst with one sendmmsg call: raw framing points the iovecs at the messages
//    (no copy); moldudp64 packs the messages into packets of at most `mtu` bytes, built in place in
//    the retransmission ring, sequence numbers from 1 and consecutive, and closes the last packet at
//    the end of send() (no message waits for a later burst). No allocation on this path.
//  - A message that cannot be framed (bigger than a datagram or than the packet's room) is dropped
//    and counted in SinkStats::drops; a failed send is counted in SinkStats::errors. If the socket
//    buffer is full (EAGAIN) moldudp64 packets stay queued in the ring and flush()/service() retry
//    them; raw framing returns the prefix it sent (the caller keeps the rest).
//  - service(): retries queued packets, answers re-requests (Session + Sequence + Count) from the
//    ring with the original packets, and sends a heartbeat after `heartbeat_interval` of silence.
//  - stop() sends what is queued, then one End of Session packet, and closes the sockets.
//  - Threading: one thread (the owning worker) calls everything except stats()/counters(), which read
//    relaxed atomics from any thread.
#include <sys/socket.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "hypergate/adapter/sink.hpp"
#include "protocols/moldudp64.hpp"
#include "udp/packet_ring.hpp"
#include "udp/udp_socket.hpp"

namespace hypergate::udp {

enum class Framing : std::uint8_t { Raw, MoldUdp64 };

struct UdpSinkOptions {
  std::string name;                   ///< instance name, for log lines
  Ipv4Endpoint destination;
  in_addr interface{htonl(INADDR_LOOPBACK)};  ///< IP_MULTICAST_IF
  int ttl = 1;
  bool loop = true;
  Framing framing = Framing::Raw;
  std::string session = "HYPERGATE";  ///< <= 10 characters
  std::uint32_t mtu = 1400;
  std::uint64_t heartbeat_interval_ns = 1'000'000'000;
  std::optional<Ipv4Endpoint> retransmit_listen;
  std::uint32_t retransmit_packets = 4096;
  unsigned owner_worker = 0;          ///< `worker`: the instance that owns the socket
  unsigned this_worker = 0;           ///< Context::worker of this instance
};

/// Counters beyond SinkStats, for tests, logs and the admin endpoint.
struct UdpSinkCounters {
  std::uint64_t packets = 0;              ///< datagrams sent (raw messages or MoldUDP64 data packets)
  std::uint64_t heartbeats = 0;
  std::uint64_t end_of_session = 0;
  std::uint64_t rerequests_served = 0;    ///< re-requests answered with at least one packet
  std::uint64_t rerequests_out_of_window = 0;  ///< asked for messages no longer (or not yet) in the ring
  std::uint64_t rerequests_malformed = 0;      ///< wrong size or another session
  std::uint64_t refused = 0;              ///< messages refused by a non-owner instance
};

class UdpSink final : public adapter::Sink {
 public:
  /// Packets (or raw datagrams) per sendmmsg call; a burst of 32 messages needs at most 32 packets.
  static constexpr std::size_t kBatch = Burst<>::kCapacity;
  /// The ring must hold every packet of a burst plus those still queued after an EAGAIN.
  static constexpr std::uint32_t kMinRingPackets = 4 * kBatch;
  /// Re-requests read per service() call: bounded work per worker iteration.
  static constexpr std::size_t kRequestBatch = 8;
  /// Packets sent back for one re-request at most (a client asks again for the rest).
  static constexpr std::size_t kMaxAnswerPackets = kBatch;

  explicit UdpSink(UdpSinkOptions options);
  ~UdpSink() override { stop(); }
  UdpSink(const UdpSink&) = delete;
  UdpSink& operator=(const UdpSink&) = delete;

  [[nodiscard]] std::string_view type() const noexcept override { return "udp"; }
  [[nodiscard]] Result<void> start() override;
  void stop() noexcept override;
  std::size_t send(const Burst<>& burst) noexcept override;
  void flush() noexcept override;
  std::size_t service() noexcept override;
  /// The retransmission request socket (-1 without one): a request wakes an idle worker.
  [[nodiscard]] int wake_fd() noexcept override { return retransmit_fd_.get(); }
  [[nodiscard]] adapter::SinkStats stats() const noexcept override;

  [[nodiscard]] UdpSinkCounters counters() const noexcept;
  [[nodiscard]] bool owner() const noexcept { return opt_.this_worker == opt_.owner_worker; }
  /// Sequence number the next message will get (MoldUDP64), starting at 1.
  [[nodiscard]] std::uint64_t next_sequence() const noexcept { return next_sequence_; }
  /// The bound port of the re-request server (useful with port 0); 0 when there is none.
  [[nodiscard]] std::uint16_t retransmit_port() const noexcept { return retransmit_port_; }

 private:
  /// Points headers_[k] / iov_[k] at one datagram for `to`.
  void prepare(std::size_t k, std::span<const std::byte> datagram, sockaddr_in* to) noexcept;
  std::size_t send_raw(const Burst<>& burst) noexcept;
  std::size_t send_mold(const Burst<>& burst) noexcept;
  /// Sends queued ring packets [unsent_, ring_.next_index()) in batches; stops at EAGAIN.
  std::size_t transmit_queued() noexcept;
  /// One control packet (heartbeat / end of session) with the current next sequence number.
  bool send_control(bool end_of_session) noexcept;
  std::size_t answer_rerequests() noexcept;
  void refuse(std::size_t n) noexcept;

  UdpSinkOptions opt_;
  sockaddr_in destination_{};
  UniqueFd fd_;
  UniqueFd retransmit_fd_;
  std::uint16_t retransmit_port_ = 0;
  const TscClock* clock_ = &TscClock::instance();
  std::uint64_t heartbeat_ticks_ = 0;
  std::uint64_t last_packet_tsc_ = 0;
  bool refused_logged_ = false;
  bool started_ = false;

  protocols::mold::SessionName session_;
  std::uint64_t next_sequence_ = 1;         // of the next message
  std::unique_ptr<PacketRing> ring_;        // moldudp64 only
  std::uint64_t unsent_ = 0;                // first ring index not yet handed to the kernel
  std::array<std::byte, 64> control_packet_{};  // heartbeat / end of session (20 bytes)

  std::array<mmsghdr, kBatch> headers_{};
  std::array<iovec, kBatch> iov_{};
  std::array<std::array<std::byte, 64>, kRequestBatch> request_bytes_{};
  std::array<sockaddr_in, kRequestBatch> request_from_{};

  adapter::SinkCounters totals_;   // the SinkStats figures
  Counter packets_;
  Counter heartbeats_;
  Counter end_of_session_;
  Counter rerequests_served_;
  Counter rerequests_out_of_window_;
  Counter rerequests_malformed_;
  Counter refused_;
};

}  // namespace hypergate::udp
