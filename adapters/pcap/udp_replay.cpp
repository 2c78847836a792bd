// replay_to_udp (see udp_replay.hpp).
#include "pcap/udp_replay.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "pcap/capture_writer.hpp"
#include "pcap/progress_meter.hpp"

namespace hypergate::pcap {
namespace {

constexpr std::uint64_t kProgressEvery = 256;  // packets between two progress updates (a clock read)

/// Owns a socket descriptor.
struct Socket {
  int fd = -1;
  Socket() = default;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket() {
    if (fd >= 0) ::close(fd);
  }
};

Error sys_error(std::string what) { return Error{Status::IoError, what + ": " + std::strerror(errno)}; }

/// Sleeps until `target_ns` (CLOCK_MONOTONIC), in slices so that `stop` is seen. False when stopped.
bool sleep_until(std::uint64_t target_ns, const std::atomic<bool>* stop) noexcept {
  for (;;) {
    // relaxed: a request flag; nothing else is published through it
    if (stop != nullptr && stop->load(std::memory_order_relaxed)) return false;
    const std::uint64_t now = monotonic_now_ns();
    if (now >= target_ns) return true;
    const std::uint64_t wake = (stop != nullptr && target_ns - now > kStopCheckNs) ? now + kStopCheckNs : target_ns;
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(wake / 1'000'000'000ull);
    ts.tv_nsec = static_cast<long>(wake % 1'000'000'000ull);
    // Absolute: an interrupted or late wake-up does not shift later targets.
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
    }
  }
}

}  // namespace

std::uint64_t monotonic_now_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

Result<ReplayResult> replay_to_udp(CaptureReader& reader, const UdpDestination& destination,
                                   ReplaySchedule& schedule, const ReplayOptions& options) {
  Result<std::uint32_t> ip = parse_ipv4(destination.host);
  if (!ip) return Error{Status::InvalidArgument, "replay destination: " + ip.error().message};
  if (destination.port == 0) return Error{Status::InvalidArgument, "replay destination: port 0"};
  if (options.loops == 0) return Error{Status::InvalidArgument, "replay: loops must be at least 1"};
  const bool multicast = (*ip >> 28) == 0xE;  // 224.0.0.0/4

  Socket sock;
  sock.fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock.fd < 0) return sys_error("replay: socket");
  if (multicast) {
    const auto ttl = static_cast<unsigned char>(destination.ttl);
    if (::setsockopt(sock.fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl) != 0) {
      return sys_error("replay: IP_MULTICAST_TTL");
    }
    const unsigned char loop = destination.multicast_loop ? 1 : 0;
    if (::setsockopt(sock.fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop) != 0) {
      return sys_error("replay: IP_MULTICAST_LOOP");
    }
    if (!destination.interface.empty()) {
      Result<std::uint32_t> itf = parse_ipv4(destination.interface);
      if (!itf) return Error{Status::InvalidArgument, "replay interface: " + itf.error().message};
      in_addr a{};
      a.s_addr = htonl(*itf);
      if (::setsockopt(sock.fd, IPPROTO_IP, IP_MULTICAST_IF, &a, sizeof a) != 0) {
        return sys_error("replay: IP_MULTICAST_IF");
      }
    }
  } else {
    const int ttl = destination.ttl;
    if (::setsockopt(sock.fd, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl) != 0) return sys_error("replay: IP_TTL");
  }
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(destination.port);
  to.sin_addr.s_addr = htonl(*ip);

  ReplayResult res;
  ProgressMeter meter(options.progress_out, options.progress);
  std::uint64_t first_send_ns = 0;
  std::uint64_t last_send_ns = 0;
  UdpDatagram d;
  for (std::uint64_t pass = 0; pass < options.loops && !res.stopped; ++pass) {
    if (pass != 0) {
      if (Result<void> r = reader.rewind(); !r) return r.error();
    }
    while (reader.next(d) == CaptureReader::Next::Datagram) {
      const std::uint64_t target = schedule.next(d.capture_ns);
      // relaxed: a request flag; nothing else is published through it
      if (options.stop != nullptr && options.stop->load(std::memory_order_relaxed)) {
        res.stopped = true;
        break;
      }
      if (!schedule.unpaced() && !sleep_until(target, options.stop)) {
        res.stopped = true;
        break;
      }
      const ssize_t n = ::sendto(sock.fd, d.payload.data(), d.payload.size(), 0,
                                 reinterpret_cast<const sockaddr*>(&to), sizeof to);
      if (n < 0) {
        ++res.send_errors;
        continue;
      }
      if (res.packets == 0) first_send_ns = monotonic_now_ns();
      ++res.packets;
      res.bytes += d.payload.size();
      if (meter.active() && res.packets % kProgressEvery == 0 && meter.due(monotonic_now_ns())) {
        meter.update(monotonic_now_ns(), (static_cast<double>(pass) + reader.progress()) /
                                             static_cast<double>(options.loops),
                     res.packets, res.bytes);
      }
    }
    if (!reader.error().empty()) {
      res.read_error = reader.error();
      break;
    }
    if (!res.stopped) {
      schedule.end_pass();
      ++res.passes;
    }
  }
  last_send_ns = monotonic_now_ns();
  if (res.packets != 0) {
    res.elapsed_ns = last_send_ns - first_send_ns;
    const double secs = static_cast<double>(res.elapsed_ns) / 1e9;
    if (secs > 0) {
      res.packets_per_second = static_cast<double>(res.packets) / secs;
      res.bytes_per_second = static_cast<double>(res.bytes) / secs;
    }
  }
  meter.finish(last_send_ns, res.stopped ? reader.progress() : 1.0, res.packets, res.bytes);
  return res;
}

}  // namespace hypergate::pcap
