#pragma once
// UringServer: one io_uring event loop serving TCP connections for one worker thread.
//
// Guarantees and contract
//  - One instance = one ring, one listening socket (SO_REUSEADDR + SO_REUSEPORT, so N instances on N
//    worker threads share a port and the kernel spreads connections), one thread. start(), run_once()/
//    run() and stop() are called by the owning thread only (stats() from anywhere): io_uring runs
//    completion work on, and at teardown notifies, the threads that created and submitted to the ring
//    (a notification that turns a blocking call with a timeout into EINTR), so keep them all on one.
//  - Connections are accepted with multishot accept straight into a sparse registered file table
//    (direct descriptors, no fd per connection in the process table); the fixed-file index is the
//    connection's slot in a preallocated table, so the table size is the connection limit: an accept
//    beyond it fails in the kernel (counted as `rejected`, the peer sees the connection closed).
//  - Receives are one multishot recv per connection into a provided buffer ring (registered with
//    io_uring_register_buf_ring, liburing 2.3). Bytes are handed to the ConnectionHandler straight from
//    the ring buffer (zero copy); only an unconsumed tail (a partial request) is copied into the
//    connection's input buffer, and the next bytes are appended to it.
//  - Replies are appended to the connection's output buffer and sent with one send in flight per
//    connection. While output cannot drain, the handler may consume less; when the input buffer passes
//    half full with replies still pending, the recv is cancelled (backpressure: the peer's TCP window
//    closes) and re-armed once the handler caught up. Bytes that arrive while the input buffer is full
//    stay in their ring buffers (held, in order, not recycled) until the handler takes them; a paused
//    connection holds at most what arrived before its cancel took effect, and a peer that never reads
//    is closed by the idle timeout (nothing is received while paused), which releases them.
//  - Replies of at least `send_zc_threshold` bytes (one send's worth: what is pending in the output
//    buffer) go out with IORING_OP_SEND_ZC, smaller ones with a plain send. A zero-copy send completes
//    twice: the result (IORING_CQE_F_MORE when a notification follows), then the notification
//    (IORING_CQE_F_NOTIF) once the kernel no longer reads the pages. Until then the sent bytes stay
//    untouched: the output buffer is neither compacted nor rewound, more bytes may be appended and
//    sent behind them. Output buffers are therefore not tied to a connection slot: a connection that
//    closes with notifications outstanding leaves its buffer parked (the slot itself is reusable at
//    once) and takes a spare one on its next accept; the parked buffer returns to the pool with its
//    last notification. A kernel without SEND_ZC (probe at start(), or EINVAL/EOPNOTSUPP on a
//    request) falls back to plain sends for good, counted in `zc_fallbacks`.
//  - Timeouts: idle (no bytes received for idle_timeout) and header/request (an incomplete message
//    pending for header_timeout: slowloris). Checked on a tick, not per message.
//  - Closing cancels every request on the descriptor, waits for their completions, then closes the
//    direct descriptor; the slot is reused only after the close completed, so no stale completion can
//    reach a new connection.
//  - Hot path: no allocation, no lock; one io_uring_enter per loop iteration (submit_and_wait with a
//    timeout), completions walked in a batch and the CQ and buffer ring advanced once per batch.
//    Buffers (ring, per-connection input/output) are reserved at start() with mmap(MAP_NORESERVE):
//    pages become resident only when a connection uses them.
//  - TCP_NODELAY is set on the listener; Linux copies it into every accepted socket.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "hypergate/core/status.hpp"

struct io_uring;  // liburing stays in the .cpp
struct io_uring_sqe;

namespace hypergate::uring {

/// Default ServerOptions::send_zc_threshold: 0, zero copy off. Measured with `echo_bench`
/// (echo/uring_send vs echo/uring_send_zc, one reply = one send of 1/4/16/64 KiB, over loopback, 3 runs
/// of 5 repetitions on the 2-core development machine, kernel 6.18): with 16 connections send_zc moved
/// 0.72-0.92x the messages of a plain send at every size in every run; with one connection (latency
/// bound) the two were within the noise (0.93-1.13x). Every notification reported
/// IORING_NOTIF_USAGE_ZC_COPIED: on loopback the kernel copies anyway, so zero copy only adds the
/// page pinning and the second completion. No size was found where it wins here, hence off. On a real
/// NIC with scatter-gather, measure again (`scripts/bench.sh echo --benchmark_filter=uring_send`)
/// and set `send_zc_threshold` per adapter; zc_copied in the adapter's details tells whether the
/// kernel really avoided the copy.
inline constexpr std::uint32_t kDefaultSendZcThreshold = 0;

struct ServerOptions {
  std::string host = "0.0.0.0";       ///< IPv4/IPv6 literal or a name
  std::uint16_t port = 0;             ///< 0 = ephemeral (see UringServer::port())
  std::uint32_t max_connections = 4096;
  std::uint64_t idle_timeout_ns = 60'000'000'000;   ///< 0 = none
  std::uint64_t header_timeout_ns = 10'000'000'000; ///< incomplete message older than this: close; 0 = none
  std::uint32_t ring_entries = 1024;  ///< submission queue; the completion queue is 8x
  std::uint32_t buffer_count = 2048;  ///< provided receive buffers (power of two)
  std::uint32_t buffer_size = 4096;
  std::uint32_t input_bytes = 64 * 1024;   ///< per-connection buffer for partial messages
  std::uint32_t output_bytes = 64 * 1024;  ///< per-connection buffer for replies
  int backlog = 4096;
  /// Replies of at least this many bytes are sent with send_zc (zero copy); 0 = never. The default is
  /// kDefaultSendZcThreshold (see there for the measurement behind it).
  std::uint32_t send_zc_threshold = kDefaultSendZcThreshold;
  /// Output buffers kept beyond max_connections for connections that closed with zero-copy
  /// notifications outstanding (their buffer is still read by the kernel). 0 with send_zc_threshold 0.
  /// When none is free an accepted connection is closed at once and counted as `rejected`.
  std::uint32_t spare_output_buffers = 256;
  /// For tests: OR-ed into the zc_flags of every send_zc. An unknown bit makes the kernel refuse the
  /// request with EINVAL, which exercises the permanent fallback to plain sends.
  std::uint32_t send_zc_extra_flags = 0;
  /// SO_REUSEPORT: on for per-worker listeners sharing one port; off for a single listener (admin)
  /// that must fail loudly when another process already holds the port.
  bool reuse_port = true;
};

/// Counters; written by the loop thread only, read from anywhere with relaxed loads.
struct ServerStats {
  std::uint64_t accepted = 0;
  std::uint64_t rejected = 0;  ///< accepts refused (connection limit)
  std::uint64_t closed = 0;
  std::uint64_t active = 0;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::uint64_t timeouts = 0;  ///< connections closed by the idle or header timeout
  std::uint64_t errors = 0;    ///< resets, send failures, overflows
  std::uint64_t partial_sends = 0;     ///< sends (plain or zero copy) that took fewer bytes than offered
  std::uint64_t zc_sends = 0;          ///< send_zc requests submitted
  std::uint64_t zc_notifications = 0;  ///< their notifications (== zc_sends once all completed, minus refused ones)
  std::uint64_t zc_copied = 0;         ///< notifications saying the kernel copied after all (loopback does)
  std::uint64_t zc_fallbacks = 0;      ///< zero copy refused by the kernel (probe or EINVAL/EOPNOTSUPP): plain sends from then on
  std::uint64_t zc_outstanding = 0;    ///< notifications still awaited now
};

class UringServer;

/// A connection as the handler sees it. Valid from on_open() to on_close() of that connection.
class Connection {
 public:
  [[nodiscard]] std::uint32_t index() const noexcept { return index_; }
  /// Appends `bytes` to the output buffer; false (nothing written) when they do not fit or the
  /// connection is closed (a closed connection has no output buffer).
  bool write(std::string_view bytes) noexcept;
  [[nodiscard]] std::size_t write_room() const noexcept { return out_ == nullptr ? 0 : out_cap_ - out_len_; }
  /// Sends what is buffered, then closes.
  void close_after_write() noexcept { close_after_write_ = true; }
  /// Closes without sending what is still buffered.
  void abort() noexcept { abort_ = true; }
  [[nodiscard]] bool closing() const noexcept { return close_after_write_ || abort_ || state_ != State::Open; }

 private:
  friend class UringServer;
  enum class State : std::uint8_t { Free, Open, Closing };
  char* in_ = nullptr;
  char* out_ = nullptr;
  std::uint32_t in_len_ = 0;
  std::uint32_t in_cap_ = 0;
  std::uint32_t out_len_ = 0;
  std::uint32_t out_sent_ = 0;
  std::uint32_t out_cap_ = 0;
  std::uint32_t index_ = 0;
  std::uint32_t out_buf_ = kNoBuffer;  // output buffer id (UringServer::out_notifs_), kNoBuffer = none
  std::uint64_t last_active_ns_ = 0;
  std::uint64_t partial_since_ns_ = 0;  // 0 = no incomplete message pending
  // Receive buffers held back (not recycled) while the input buffer is full: a FIFO linked through
  // UringServer::held_next_. held_off_ = bytes of the head buffer already taken.
  std::uint32_t held_head_ = kNoBuffer;
  std::uint32_t held_tail_ = kNoBuffer;
  std::uint32_t held_off_ = 0;
  std::uint32_t held_count_ = 0;
  static constexpr std::uint32_t kNoBuffer = UINT32_MAX;
  State state_ = State::Free;
  bool recv_armed_ = false;
  bool recv_paused_ = false;
  bool send_inflight_ = false;
  bool cancel_sent_ = false;
  bool close_sent_ = false;
  bool close_after_write_ = false;
  bool abort_ = false;
};

/// What the server calls; one handler serves every connection of a server (per-connection state is
/// kept by the handler in a table indexed by Connection::index(), < max_connections).
class ConnectionHandler {
 public:
  virtual ~ConnectionHandler() = default;
  virtual void on_open(Connection& c) noexcept { (void)c; }
  /// `data` is every unconsumed byte of the connection: the tail left last time followed by what just
  /// arrived. It is writable (a parser may rewrite it in place). Returns how many leading bytes were
  /// consumed; the rest is offered again, with more, later.
  virtual std::size_t on_data(Connection& c, std::span<char> data) noexcept = 0;
  virtual void on_close(Connection& c) noexcept { (void)c; }
};

class UringServer {
 public:
  UringServer(ServerOptions options, ConnectionHandler& handler);
  ~UringServer();
  UringServer(const UringServer&) = delete;
  UringServer& operator=(const UringServer&) = delete;

  /// Opens the listener, the ring and the buffers; arms the multishot accept. Cold path.
  [[nodiscard]] Result<void> start();
  /// Closes every connection and the listener (the ring is torn down). Idempotent.
  void stop() noexcept;

  /// The port the listener is bound to (useful with port 0).
  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  /// The ring's descriptor, readable (POLLIN) while completions wait to be handled: what a source or
  /// sink built on this server returns from wake_fd(). -1 before start() and after stop().
  [[nodiscard]] int ring_fd() const noexcept;

  /// One loop iteration: submit pending requests, wait up to `wait_ns` for a completion (0 = never
  /// block), handle every completion, run the timeout tick when due. Returns completions handled.
  std::size_t run_once(std::uint64_t wait_ns) noexcept;
  /// Loops until `stop_flag` becomes true (checked at least every 50 ms).
  void run(const std::atomic<bool>& stop_flag) noexcept;

  /// For bytes written (or close_after_write()/abort() requested) outside a handler callback, e.g.
  /// by a sink streaming to subscribers from its service() call: queues the send (or the close) that
  /// a callback would have triggered. Loop thread only; the request goes out with the next
  /// run_once(), which submits everything queued.
  void flush_connection(Connection& c) noexcept;
  /// Offers the connection's unconsumed input to the handler again, as if bytes had arrived, then
  /// queues its send: for a handler that consumed less than it was given because it waited for
  /// something outside the connection (a verdict, room in a batch). Loop thread only.
  void redeliver(Connection& c) noexcept;
  /// From a handler callback while run_once() reads completions: it handles no further one (it still
  /// submits what is queued). The rest stay in the completion queue (the ring stays readable) for the
  /// next run_once(). Elsewhere (redeliver(), outside run_once()) it does nothing: a batch filled
  /// there must not keep run_once() from handling sends, accepts and other connections. For a
  /// handler whose batch is full: the connections behind it wait in the kernel, unread.
  void stop_batch() noexcept { stop_batch_ = reading_; }

  [[nodiscard]] ServerStats stats() const noexcept;
  [[nodiscard]] const ServerOptions& options() const noexcept { return opt_; }

 private:
  struct Counters {
    std::atomic<std::uint64_t> accepted{0}, rejected{0}, closed{0}, active{0}, bytes_in{0}, bytes_out{0},
        timeouts{0}, errors{0}, partial_sends{0}, zc_sends{0}, zc_notifications{0}, zc_copied{0},
        zc_fallbacks{0}, zc_outstanding{0};
  };
  void arm_accept() noexcept;
  void arm_recv(Connection& c) noexcept;
  void on_accept(int res, std::uint32_t flags) noexcept;
  void on_recv(Connection& c, int res, std::uint32_t flags) noexcept;
  void on_send(Connection& c, int res) noexcept;
  void on_send_zc(Connection& c, int res, std::uint32_t flags) noexcept;
  void on_zc_notification(std::uint32_t buf, int res) noexcept;
  /// Rewinds or compacts the output buffer when nothing reads it (no send, no notification pending).
  void reclaim_output(Connection& c) noexcept;
  void release_output(Connection& c) noexcept;
  void free_slot(Connection& c) noexcept;
  /// Returns true when the buffer was held (not to be recycled now).
  bool deliver(Connection& c, std::uint16_t bid, char* data, std::uint32_t len) noexcept;
  void hold(Connection& c, std::uint16_t bid, std::uint32_t off, std::uint32_t len) noexcept;
  void release_held(Connection& c) noexcept;
  void drain_input(Connection& c) noexcept;
  void after_handler(Connection& c) noexcept;
  void flush(Connection& c) noexcept;
  void begin_close(Connection& c) noexcept;
  void try_finish_close(Connection& c) noexcept;
  void tick(std::uint64_t now_ns) noexcept;
  void recycle(std::uint16_t bid) noexcept;
  void bump(std::atomic<std::uint64_t>& counter, std::uint64_t n = 1) noexcept;
  ::io_uring_sqe* sqe() noexcept;

  ServerOptions opt_;
  ConnectionHandler& handler_;
  std::unique_ptr<io_uring> ring_;
  bool ring_ready_ = false;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  bool accept_armed_ = false;
  bool reading_ = false;     // run_once() is in its completion loop
  bool stop_batch_ = false;  // stop_batch() was called during that loop
  void* buf_ring_ = nullptr;  // struct io_uring_buf_ring*
  std::size_t buf_ring_bytes_ = 0;
  char* buffers_ = nullptr;
  std::size_t buffers_bytes_ = 0;
  char* conn_mem_ = nullptr;  // input buffers, one per slot
  std::size_t conn_mem_bytes_ = 0;
  char* out_mem_ = nullptr;   // output buffers: max_connections + spare, handed out from out_free_
  std::size_t out_mem_bytes_ = 0;
  std::uint32_t out_count_ = 0;
  std::unique_ptr<std::uint32_t[]> out_free_;    // stack of free output buffer ids
  std::uint32_t out_free_len_ = 0;
  std::unique_ptr<std::uint32_t[]> out_notifs_;  // per output buffer: zc notifications outstanding
  std::unique_ptr<std::uint32_t[]> out_owner_;   // per output buffer: connection slot, or kNoBuffer (parked/free)
  bool zc_enabled_ = false;      // threshold set and the kernel takes send_zc
  std::uint32_t zc_flags_ = 0;   // zc_flags for send_zc (REPORT_USAGE while the kernel accepts it)
  std::unique_ptr<Connection[]> conns_;
  std::unique_ptr<std::uint32_t[]> held_next_;  // per buffer id: next held buffer of the same connection
  std::unique_ptr<std::uint32_t[]> held_len_;   // per buffer id: bytes received into it
  std::uint32_t recycled_ = 0;  // buffers re-added since the last buf_ring advance
  std::uint64_t now_ns_ = 0;
  std::uint64_t next_tick_ns_ = 0;
  Counters counters_;
};

/// Echo: every byte received is sent back (the Hyper Uring Server behaviour).
class EchoHandler final : public ConnectionHandler {
 public:
  std::size_t on_data(Connection& c, std::span<char> data) noexcept override;
};

/// Baseline for benchmarks and tests: the same echo on a plain level-triggered epoll loop, one
/// non-blocking socket per connection, read()/write() per readiness event.
class EpollEchoServer {
 public:
  explicit EpollEchoServer(ServerOptions options);
  ~EpollEchoServer();
  EpollEchoServer(const EpollEchoServer&) = delete;
  EpollEchoServer& operator=(const EpollEchoServer&) = delete;

  [[nodiscard]] Result<void> start();
  void stop() noexcept;
  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  std::size_t run_once(int wait_ms) noexcept;
  void run(const std::atomic<bool>& stop_flag) noexcept;

 private:
  struct Conn {
    int fd = -1;
    std::uint32_t pending = 0;  // bytes of buf not yet written back
    std::uint32_t sent = 0;
    char* buf = nullptr;
    bool out_mode = false;  // waiting for EPOLLOUT
  };
  void close_conn(std::size_t slot) noexcept;
  ServerOptions opt_;
  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  std::uint16_t port_ = 0;
  std::unique_ptr<Conn[]> conns_;
  std::unique_ptr<char[]> mem_;
};

/// Opens a non-blocking TCP listener with SO_REUSEADDR, TCP_NODELAY and (if reuse_port) SO_REUSEPORT;
/// returns the fd and the bound port. Shared by both servers.
[[nodiscard]] Result<int> open_listener(const std::string& host, std::uint16_t port, int backlog,
                                        std::uint16_t* bound_port, bool reuse_port = true);

}  // namespace hypergate::uring
