#include "udp/udp_socket.hpp"

#include <arpa/inet.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

namespace hypergate::udp {

bool Ipv4Endpoint::multicast() const noexcept { return IN_MULTICAST(ntohl(addr.s_addr)); }

sockaddr_in Ipv4Endpoint::sockaddr() const noexcept {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr = addr;
  return a;
}

std::string Ipv4Endpoint::to_string() const { return ipv4_to_string(addr) + ":" + std::to_string(port); }

std::optional<in_addr> parse_ipv4(std::string_view text) {
  char buf[INET_ADDRSTRLEN] = {};
  if (text.empty() || text.size() >= sizeof(buf)) return std::nullopt;
  std::memcpy(buf, text.data(), text.size());
  in_addr a{};
  if (inet_pton(AF_INET, buf, &a) != 1) return std::nullopt;
  return a;
}

std::string ipv4_to_string(in_addr addr) {
  char buf[INET_ADDRSTRLEN] = {};
  if (inet_ntop(AF_INET, &addr, buf, sizeof(buf)) == nullptr) return "?";
  return buf;
}

std::optional<Ipv4Endpoint> read_ipv4_endpoint(config::Section& section, std::string_view key, bool required) {
  if (!section.has(key)) {
    if (required) {
      (void)section.required_string(key);  // records "missing required key" at the section
    }
    return std::nullopt;
  }
  const auto ep = section.endpoint(key, "");
  if (!ep) return std::nullopt;  // the Section already reported the malformed value
  const auto addr = parse_ipv4(ep->host.empty() ? std::string_view("0.0.0.0") : std::string_view(ep->host));
  if (!addr) {
    section.error(key, "expected a numeric IPv4 address and port (e.g. \"239.1.1.1:30001\"), got host '" +
                           ep->host + "'");
    return std::nullopt;
  }
  return Ipv4Endpoint{*addr, ep->port};
}

std::optional<in_addr> read_ipv4(config::Section& section, std::string_view key, std::string_view def) {
  const std::string text = section.string(key, def);
  const auto addr = parse_ipv4(text);
  if (!addr) section.error(key, "expected a numeric IPv4 address (e.g. \"127.0.0.1\"), got '" + text + "'");
  return addr;
}

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
  if (this != &o) {
    reset();
    fd_ = o.release();
  }
  return *this;
}

int UniqueFd::release() noexcept {
  const int fd = fd_;
  fd_ = -1;
  return fd;
}

void UniqueFd::reset() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Error socket_error(std::string_view what, std::string_view where, int err) {
  return Error{Status::IoError, std::string(what) + " (" + std::string(where) + "): " + std::strerror(err)};
}

Result<UniqueFd> open_bound_socket(const Ipv4Endpoint& local) {
  UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  const std::string where = local.to_string();
  if (!fd.valid()) return socket_error("socket", where, errno);
  const int one = 1;
  // Both: a test (or a second gateway) may join the same group and port on the same host.
  if (setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
    return socket_error("setsockopt(SO_REUSEADDR)", where, errno);
  }
  if (setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
    return socket_error("setsockopt(SO_REUSEPORT)", where, errno);
  }
  const sockaddr_in a = local.sockaddr();
  if (::bind(fd.get(), reinterpret_cast<const ::sockaddr*>(&a), sizeof(a)) != 0) {
    return socket_error("bind", where, errno);
  }
  return fd;
}

Result<std::uint32_t> set_receive_buffer(int fd, std::uint32_t bytes) {
  const int want = static_cast<int>(bytes);
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof(want)) != 0) {
    return socket_error("setsockopt(SO_RCVBUF)", std::to_string(bytes) + " bytes", errno);
  }
  int got = 0;
  socklen_t len = sizeof(got);
  if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &len) != 0) {
    return socket_error("getsockopt(SO_RCVBUF)", std::to_string(bytes) + " bytes", errno);
  }
  return static_cast<std::uint32_t>(got / 2);  // Linux doubles the request for its own bookkeeping
}

void RealtimeToTsc::calibrate() noexcept {
  // Keep the tightest of a few brackets: the pair is taken as simultaneous within that window.
  std::uint64_t best_window = UINT64_MAX;
  for (int i = 0; i < 8; ++i) {
    const std::uint64_t before = TscClock::ticks();
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    const std::uint64_t after = TscClock::ticks();
    if (after - before < best_window) {
      best_window = after - before;
      tsc0_ = before + (after - before) / 2;
      realtime0_ns_ = static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<std::uint64_t>(ts.tv_nsec);
    }
  }
}

}  // namespace hypergate::udp
