#pragma once
// IPv4 UDP plumbing shared by the `udp` source and sink: numeric address parsing with clear errors,
// an owning file descriptor, socket set-up (reuse, buffers, multicast join / send options) and the
// realtime -> TscClock conversion used for kernel receive stamps.
//
// Contract: everything here is cold path (start-up and config reading) except
// RealtimeToTsc::convert(), which is two multiplies and runs per received datagram. No function
// throws; failures come back as Result errors that name the address and the failing call.
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "hypergate/config/config.hpp"
#include "hypergate/core/clock.hpp"
#include "hypergate/core/status.hpp"

namespace hypergate::udp {

/// A numeric IPv4 address and port (addresses in network byte order, the port in host order).
struct Ipv4Endpoint {
  in_addr addr{};
  std::uint16_t port = 0;

  [[nodiscard]] bool multicast() const noexcept;
  [[nodiscard]] sockaddr_in sockaddr() const noexcept;
  [[nodiscard]] std::string to_string() const;
};

/// "a.b.c.d" -> address; empty for anything else (names are refused: a feed address is configured,
/// not resolved, so that start-up never blocks on DNS).
[[nodiscard]] std::optional<in_addr> parse_ipv4(std::string_view text);
[[nodiscard]] std::string ipv4_to_string(in_addr addr);

/// Reads an endpoint key whose host must be a numeric IPv4 address; records a Diagnostic and returns
/// nothing when it is missing (and required), malformed or not IPv4.
[[nodiscard]] std::optional<Ipv4Endpoint> read_ipv4_endpoint(config::Section& section, std::string_view key,
                                                             bool required);
/// Reads an IPv4 address key (e.g. `interface`); records a Diagnostic on a bad value.
[[nodiscard]] std::optional<in_addr> read_ipv4(config::Section& section, std::string_view key,
                                               std::string_view def);

/// An owned file descriptor: closed on destruction, movable, never copied.
class UniqueFd {
 public:
  UniqueFd() noexcept = default;
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  [[nodiscard]] int get() const noexcept { return fd_; }
  [[nodiscard]] bool valid() const noexcept { return fd_ >= 0; }
  int release() noexcept;
  void reset() noexcept;

 private:
  int fd_ = -1;
};

/// An error naming the call, the endpoint and errno's text.
[[nodiscard]] Error socket_error(std::string_view what, std::string_view where, int err);

/// A non-blocking UDP socket with SO_REUSEADDR + SO_REUSEPORT, bound to `local`.
[[nodiscard]] Result<UniqueFd> open_bound_socket(const Ipv4Endpoint& local);

/// Sets SO_RCVBUF to `bytes` and returns what the kernel granted (Linux reports twice the usable
/// size; the value returned is the usable half, comparable with the request).
[[nodiscard]] Result<std::uint32_t> set_receive_buffer(int fd, std::uint32_t bytes);

/// Converts CLOCK_REALTIME nanoseconds (the kernel's SO_TIMESTAMPNS stamps) to TscClock ticks
/// through one offset pair sampled at calibrate(). Accuracy is that of the sampling window
/// (the tightest of a few ticks/clock_gettime/ticks brackets, typically well under 1 us); a
/// realtime step (NTP slew is fine, a settimeofday jump is not) shifts later conversions.
class RealtimeToTsc {
 public:
  void calibrate() noexcept;
  [[nodiscard]] std::uint64_t convert(std::uint64_t realtime_ns) const noexcept {
    if (realtime_ns >= realtime0_ns_) return tsc0_ + clock_->from_ns(realtime_ns - realtime0_ns_);
    const std::uint64_t back = clock_->from_ns(realtime0_ns_ - realtime_ns);
    return back < tsc0_ ? tsc0_ - back : 0;
  }

 private:
  const TscClock* clock_ = &TscClock::instance();
  std::uint64_t realtime0_ns_ = 0;
  std::uint64_t tsc0_ = 0;
};

}  // namespace hypergate::udp
