#pragma once
// replay_to_udp: sends the UDP payloads of a capture to a destination, tcpreplay-style, on a schedule.
//
// Contract
//  - Each accepted datagram of `reader` (its port filter applies) is sent as one UDP datagram to
//    `destination` (unicast or multicast: ttl, loopback and outgoing interface set on the socket).
//  - Pacing is absolute: the schedule gives each packet a target on CLOCK_MONOTONIC and the loop sleeps
//    with clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME) until it (never relative sleeps: no drift).
//    Build the schedule with start_ns = now on CLOCK_MONOTONIC (ReplaySchedule(speed, monotonic_now_ns())).
//    With Speed::max() nothing sleeps.
//  - `loops` passes over the file (the reader is rewound between passes; the schedule continues).
//  - `stop` (optional) is checked before each packet and during sleeps (at most kStopCheckNs apart):
//    setting it ends the replay early with the counts so far.
//  - The socket is blocking: on loopback a full receive buffer slows the sender instead of dropping.
//    A failed send is counted in send_errors and the replay goes on.
//  - A read error of the capture (truncated record...) ends the replay; it is reported in read_error.
//  - Runs on the calling thread; cold-path setup (socket, options) may allocate, the loop does not.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <string>

#include "hypergate/core/status.hpp"
#include "pcap/capture_reader.hpp"
#include "pcap/replay_schedule.hpp"

namespace hypergate::pcap {

struct UdpDestination {
  std::string host = "127.0.0.1";  ///< IPv4 address (unicast or multicast group)
  std::uint16_t port = 0;
  int ttl = 1;                      ///< IP_MULTICAST_TTL for groups, IP_TTL otherwise
  bool multicast_loop = true;       ///< IP_MULTICAST_LOOP: local receivers see the group traffic
  std::string interface;            ///< IPv4 address of the outgoing interface for multicast ("" = default)
};

struct ReplayOptions {
  std::uint64_t loops = 1;                      ///< passes over the file (>= 1)
  const std::atomic<bool>* stop = nullptr;      ///< set to end early
  bool progress = false;                        ///< progress bar on `progress_out` (if it is a terminal)
  std::FILE* progress_out = stderr;
};

struct ReplayResult {
  std::uint64_t packets = 0;      ///< datagrams sent
  std::uint64_t bytes = 0;        ///< payload bytes sent
  std::uint64_t send_errors = 0;  ///< sends that failed
  std::uint64_t passes = 0;       ///< complete passes over the file
  std::uint64_t elapsed_ns = 0;   ///< first send to last send
  double packets_per_second = 0;  ///< achieved rate (packets / elapsed)
  double bytes_per_second = 0;
  bool stopped = false;           ///< ended by the stop flag
  std::string read_error;         ///< non-empty when the capture could not be read to its end
};

inline constexpr std::uint64_t kStopCheckNs = 50'000'000;  // longest sleep between two looks at `stop`

/// CLOCK_MONOTONIC now, in ns: the clock of the schedule.
[[nodiscard]] std::uint64_t monotonic_now_ns() noexcept;

/// Replays (see the header comment). Errors: bad destination, socket setup failure, rewind failure.
[[nodiscard]] Result<ReplayResult> replay_to_udp(CaptureReader& reader, const UdpDestination& destination,
                                                 ReplaySchedule& schedule, const ReplayOptions& options = {});

}  // namespace hypergate::pcap
