#include "nats/nats_sink.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <cstring>

#include "hypergate/core/clock.hpp"

namespace hypergate::nats {
namespace {

std::int64_t ms(std::uint64_t ns) { return static_cast<std::int64_t>(ns / 1'000'000 == 0 ? 1 : ns / 1'000'000); }

/// The <n> of a Nats-Msg-Id "<run id>-<n>" this sink set (0 if absent).
std::uint64_t publish_number(natsMsg* m) noexcept {
  const char* id = nullptr;
  if (natsMsgHeader_Get(m, "Nats-Msg-Id", &id) != NATS_OK || id == nullptr) return 0;
  const char* dash = std::strrchr(id, '-');
  return dash == nullptr ? 0 : std::strtoull(dash + 1, nullptr, 10);
}

bool is_update(const Message& m) noexcept {
  return m.type == static_cast<std::uint16_t>(market::kTobUpdateType) && m.size == market::kTobUpdateSize;
}

}  // namespace

NatsSink::NatsSink(NatsSinkOptions options) : opt_(std::move(options)) {
  opt_.client.role = "sink";
  client_ = std::make_unique<NatsClient>(opt_.client);  // here, not in start(): stats() reads it from any thread
  retry_.reserve(1024);
  retry_taken_.reserve(1024);
}

NatsSink::~NatsSink() { stop(); }

Result<void> NatsSink::start() {
  // A run id makes Nats-Msg-Id unique across restarts within the stream's duplicate window.
  run_id_ = static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
  base_retry_ticks_ = TscClock::instance().from_ns(kRetryIntervalNs);
  retry_ticks_ = base_retry_ticks_;
  if (auto r = client_->connect(); !r) return r.error();
  if (opt_.jetstream) {
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = ms(opt_.ack_wait_ns);
    // Our own bound (max_pending, checked in send()) is reached first; libnats' is a backstop whose
    // stall we keep short, so the worker is never held for long if it is ever reached.
    jo.PublishAsync.MaxPending = opt_.max_pending + static_cast<std::int64_t>(Burst<>::kCapacity) + 16;
    jo.PublishAsync.StallWait = 1;
    jo.PublishAsync.AckHandler = &NatsSink::on_ack;
    jo.PublishAsync.AckHandlerClosure = this;
    if (auto r = client_->enable_jetstream(jo); !r) return r.error();
  }
  started_ = true;
  if (opt_.jetstream) {
    // Stream look-up/creation are requests that can wait for their answer: on a helper thread, never
    // on the worker (send() pushes back meanwhile), retried until they succeed.
    stream_ready_.store(false, std::memory_order_relaxed);  // relaxed: the thread starts after this store
    stream_stop_.store(false, std::memory_order_relaxed);   // relaxed: likewise (std::thread's start syncs)
    stream_thread_ = std::thread([this] { ensure_stream_until_done(); });
  }
  return {};
}

void NatsSink::ensure_stream_until_done() noexcept {
  bool logged = false;
  while (!stream_stop_.load(std::memory_order_acquire)) {  // pairs with the release store in stop()
    if (client_->connected()) {
      auto r = ensure_stream();
      if (r) return;
      if (!logged) {
        logged = true;
        std::fprintf(stderr, "%s; retrying every %llu ms\n", r.error().message.c_str(),
                     static_cast<unsigned long long>(kStreamRetryNs / 1'000'000));
      }
    }
    std::unique_lock lock(stream_mutex_);
    stream_wake_.wait_for(lock, std::chrono::nanoseconds(kStreamRetryNs),
                          [this] { return stream_stop_.load(std::memory_order_acquire); });
  }
}

Result<void> NatsSink::ensure_stream() {
  // Per-request options: only the wait differs from the context's (ack_wait may be long; this bounds
  // how long stop() waits to join the helper thread).
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = kStreamRequestMs;
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&si, client_->jetstream(), opt_.stream.c_str(), &jo, &jerr);
  if (s == NATS_OK) {
    jsStreamInfo_Destroy(si);
    stream_ready_.store(true, std::memory_order_release);  // pairs with the acquire in stream_ready()
    return {};
  }
  if (s != NATS_NOT_FOUND) {
    return Error{Status::IoError, "nats sink '" + opt_.client.name + "': stream '" + opt_.stream +
                                      "' info: " + nats_error_text(static_cast<int>(s))};
  }
  const std::string subjects = opt_.subject.wildcard();
  const char* subject_list[1] = {subjects.c_str()};
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = opt_.stream.c_str();
  cfg.Subjects = subject_list;
  cfg.SubjectsLen = 1;
  cfg.Storage = js_FileStorage;
  cfg.Replicas = opt_.replicas;
  s = js_AddStream(&si, client_->jetstream(), &cfg, &jo, &jerr);
  if (s != NATS_OK) {
    return Error{Status::IoError, "nats sink '" + opt_.client.name + "': creating stream '" + opt_.stream +
                                      "' (subjects " + subjects + ", replicas " + std::to_string(opt_.replicas) +
                                      "): " + nats_error_text(static_cast<int>(s))};
  }
  jsStreamInfo_Destroy(si);
  std::fprintf(stderr, "nats sink '%s': created stream '%s' (subjects %s, replicas %d)\n", opt_.client.name.c_str(),
               opt_.stream.c_str(), subjects.c_str(), opt_.replicas);
  stream_ready_.store(true, std::memory_order_release);  // pairs with the acquire in stream_ready()
  return {};
}

bool NatsSink::selected(const Message& m) const noexcept {
  switch (opt_.publish) {
    case NatsSinkOptions::Publish::Updates: return is_update(m);
    case NatsSinkOptions::Publish::Itch: return !is_update(m);
    case NatsSinkOptions::Publish::All: return true;
  }
  return true;
}

bool NatsSink::publish_one(const Message& m) noexcept {
  const char type = static_cast<char>(m.type);
  if (opt_.subject.render(m.key(), type, subject_buf_) == 0) {
    bump(failed_);  // a key too long for a subject: counted, never truncated into another subject
    return true;
  }
  const void* data = m.data;
  int size = static_cast<int>(m.size);
  if (opt_.payload == NatsSinkOptions::Payload::Json && is_update(m)) {
    market::TobUpdate u;
    if (market::decode_tob_update(m.payload(), u) == Status::Ok) {
      const std::size_t n = market::to_json(u, json_buf_);
      data = json_buf_.data();
      size = static_cast<int>(n);
    }
  }
  natsStatus s;
  if (opt_.jetstream) {
    // relaxed: counters (the ack thread adds to acked_/failed_); a stale read only delays pushback a little.
    const std::uint64_t done = acked_.load(std::memory_order_relaxed) + failed_.load(std::memory_order_relaxed);
    const std::uint64_t pub = published_.load(std::memory_order_relaxed);
    if (pub > done && static_cast<std::int64_t>(pub - done) >= opt_.max_pending) {
      bump(pushback_);
      return false;
    }
    std::snprintf(msg_id_buf_.data(), msg_id_buf_.size(), "%llx-%llu", static_cast<unsigned long long>(run_id_),
                  static_cast<unsigned long long>(++next_msg_id_));
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = msg_id_buf_.data();
    po.MaxWait = ms(opt_.ack_wait_ns);
    s = js_PublishAsync(client_->jetstream(), subject_buf_.data(), data, size, &po);
    if (s == NATS_TIMEOUT) {  // libnats' own max pending stalled (backstop): the message was not sent
      --next_msg_id_;
      bump(pushback_);
      return false;
    }
  } else {
    s = natsConnection_Publish(client_->connection(), subject_buf_.data(), data, size);
    if (s == NATS_INSUFFICIENT_BUFFER) {  // disconnected and the reconnect buffer is full
      bump(pushback_);
      return false;
    }
  }
  if (s != NATS_OK) {
    bump(failed_);
    return true;
  }
  bump(published_);
  bump(bytes_, static_cast<std::uint64_t>(size));
  return true;
}

std::size_t NatsSink::send(const Burst<>& burst) noexcept {
  if (burst.empty()) return 0;
  if (!started_) {
    bump(failed_, burst.size());
    return burst.size();
  }
  if (opt_.jetstream && !stream_ready()) {  // the helper thread has not found/created the stream yet
    bump(pushback_);
    return 0;
  }
  std::size_t filtered = 0;
  for (std::size_t i = 0; i < burst.size(); ++i) {
    const Message& m = burst[i];
    if (!selected(m)) {
      ++filtered;
      continue;
    }
    if (!publish_one(m)) {
      bump(filtered_, filtered);
      note_buffered();
      return i;
    }
  }
  bump(filtered_, filtered);
  note_buffered();
  return burst.size();
}

void NatsSink::note_buffered() noexcept {
  if (opt_.jetstream) return;
  // Once per burst (natsConnection_Buffered takes libnats' connection mutex): the bytes libnats holds.
  const int buffered = natsConnection_Buffered(client_->connection());
  buffered_bytes_.store(buffered > 0 ? static_cast<std::uint64_t>(buffered) : 0,
                        std::memory_order_relaxed);  // relaxed: a gauge read by stats()
}

std::size_t NatsSink::service() noexcept {
  if (!started_ || !opt_.jetstream) return 0;
  std::size_t work = 0;
  if (!stream_ready()) return 0;  // nothing published yet: nothing to resend or retry
  if (client_->take_reconnected()) [[unlikely]] {
    resend_pending_after_reconnect();
    ++work;
  }
  work += retry_round();
  return work;
}

std::size_t NatsSink::retry_round() noexcept {
  if (retry_queued_.load(std::memory_order_relaxed) == 0) {  // relaxed: a hint; the list is locked
    retry_ticks_ = base_retry_ticks_;
    return 0;
  }
  // Backoff: 50 ms after the first failure, doubling while failures keep coming, at most 1 s.
  const std::uint64_t now = TscClock::ticks();
  if (now - last_retry_tsc_ < retry_ticks_) return 0;
  last_retry_tsc_ = now;
  retry_ticks_ = std::min(retry_ticks_ * 2, TscClock::instance().from_ns(kRetryIntervalMaxNs));
  return retry_failed();
}

void NatsSink::resend_pending_after_reconnect() noexcept {
  // Publishes whose ack may have died with the old server: take them back and send them again. The
  // stream drops the ones it already stored (same Nats-Msg-Id within its duplicate window).
  natsMsgList pending{};
  if (js_PublishAsyncGetPendingList(&pending, client_->jetstream()) != NATS_OK) return;
  // libnats returns them in hash-map order: resend in publish order (the <n> of "<run id>-<n>"), so
  // a lost suffix goes out again in its original order.
  std::sort(pending.Msgs, pending.Msgs + pending.Count,
            [](natsMsg* a, natsMsg* b) { return publish_number(a) < publish_number(b); });
  std::uint64_t resent = 0;
  for (int i = 0; i < pending.Count; ++i) {
    natsMsg* m = pending.Msgs[i];
    const natsStatus s = js_PublishMsgAsync(client_->jetstream(), &pending.Msgs[i], nullptr);
    if (s == NATS_OK) {
      ++resent;
    } else {
      // Keep it for the retry loop (owned by us again).
      pending.Msgs[i] = nullptr;
      std::lock_guard lock(retry_mutex_);
      keep_or_give_up(m);
    }
  }
  natsMsgList_Destroy(&pending);
  bump(resent_, resent);
  std::fprintf(stderr, "nats sink '%s': reconnected: %llu unacknowledged publishes resent\n",
               opt_.client.name.c_str(), static_cast<unsigned long long>(resent));
}

std::size_t NatsSink::retry_failed() noexcept {
  {
    std::lock_guard lock(retry_mutex_);
    retry_taken_.swap(retry_);
    retry_queued_.store(0, std::memory_order_relaxed);  // relaxed: a hint, see service()
  }
  std::sort(retry_taken_.begin(), retry_taken_.end(),  // in publish order, as after a reconnection
            [](const Retry& a, const Retry& b) { return publish_number(a.msg) < publish_number(b.msg); });
  std::size_t n = 0;
  for (Retry& r : retry_taken_) {
    natsMsg* m = r.msg;
    const natsStatus s = js_PublishMsgAsync(client_->jetstream(), &m, nullptr);
    if (s == NATS_OK) {
      bump(resent_);
      ++n;
      continue;
    }
    std::lock_guard lock(retry_mutex_);
    keep_or_give_up(r.msg);
  }
  retry_taken_.clear();
  return n;
}

void NatsSink::keep_or_give_up(natsMsg* msg) noexcept {
  // Caller holds retry_mutex_. Attempts are counted per publish (its Nats-Msg-Id number), across the
  // round trips of the message through libnats.
  const std::uint64_t id = publish_number(msg);
  int& attempts = attempts_[id];
  if (++attempts > kMaxRetries) {
    attempts_.erase(id);
    natsMsg_Destroy(msg);
    bump(failed_);
  } else {
    retry_.push_back(Retry{msg, attempts});
  }
  retry_queued_.store(retry_.size(), std::memory_order_relaxed);      // relaxed: a hint, see service()
  retrying_.store(attempts_.size(), std::memory_order_relaxed);     // relaxed: a hint, see on_ack()
}

void NatsSink::on_ack(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* self) noexcept {
  auto* sink = static_cast<NatsSink*>(self);
  if (pa != nullptr) {
    bump(sink->acked_);
    if (pa->Duplicate) bump(sink->duplicates_);
    if (sink->retrying_.load(std::memory_order_relaxed) != 0) [[unlikely]] {  // relaxed: a hint; the map is locked
      std::lock_guard lock(sink->retry_mutex_);
      sink->attempts_.erase(publish_number(msg));
      sink->retrying_.store(sink->attempts_.size(), std::memory_order_relaxed);
    }
    natsMsg_Destroy(msg);
    return;
  }
  (void)pae;
  // A negative ack, no responders (the stream has no leader during a failover) or an ack timeout: keep
  // the message (we own it now) for service() to resend, up to kMaxRetries times with backoff.
  std::lock_guard lock(sink->retry_mutex_);
  sink->keep_or_give_up(msg);
}

void NatsSink::stop() noexcept {
  if (!started_) return;
  started_ = false;
  if (stream_thread_.joinable()) {
    {
      std::lock_guard lock(stream_mutex_);
      stream_stop_.store(true, std::memory_order_release);  // pairs with the acquire loads in the helper
    }
    stream_wake_.notify_all();
    stream_thread_.join();  // bounded by one request's wait (kStreamRequestMs per request, two at most)
  }
  const std::int64_t timeout = ms(opt_.drain_timeout_ns);
  if (opt_.jetstream && client_->jetstream() != nullptr) {
    // Resend what failed until every publish is acked, failed for good, or the deadline passes.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::nanoseconds(opt_.drain_timeout_ns);
    for (;;) {
      if (client_->take_reconnected()) resend_pending_after_reconnect();
      (void)retry_round();
      jsPubOptions po;
      jsPubOptions_Init(&po);
      po.MaxWait = 100;
      const natsStatus s = js_PublishAsyncComplete(client_->jetstream(), &po);
      const bool idle = s == NATS_OK && retry_queued_.load(std::memory_order_relaxed) == 0;
      if (idle || std::chrono::steady_clock::now() >= deadline) break;
    }
  } else if (client_->connection() != nullptr && client_->connected()) {
    (void)natsConnection_FlushTimeout(client_->connection(), timeout);
    note_buffered();  // what is left after the flush, for the line below
  }
  const NatsSinkCounters c = counters();
  std::fprintf(stderr,
               "nats sink '%s': published %llu, pending %llu, failed %llu, pushback %llu, acked %llu, duplicates "
               "%llu, resent %llu, reconnects %llu, reconnect attempts %llu\n",
               opt_.client.name.c_str(), static_cast<unsigned long long>(c.published),
               static_cast<unsigned long long>(c.pending), static_cast<unsigned long long>(c.failed),
               static_cast<unsigned long long>(c.pushback), static_cast<unsigned long long>(c.acked),
               static_cast<unsigned long long>(c.duplicates), static_cast<unsigned long long>(c.resent),
               static_cast<unsigned long long>(c.client.reconnects),
               static_cast<unsigned long long>(c.client.reconnect_attempts));
  buffered_bytes_.store(0, std::memory_order_relaxed);  // relaxed: a gauge
  client_->close();
  // Messages still waiting for a retry after the deadline are failed for good.
  std::lock_guard lock(retry_mutex_);
  for (Retry& r : retry_) {
    natsMsg_Destroy(r.msg);
    bump(failed_);
  }
  retry_.clear();
}

NatsSinkCounters NatsSink::counters() const noexcept {
  NatsSinkCounters c;
  // relaxed: monotonic counters (see bump())
  c.published = published_.load(std::memory_order_relaxed);
  c.failed = failed_.load(std::memory_order_relaxed);
  c.pushback = pushback_.load(std::memory_order_relaxed);
  c.filtered = filtered_.load(std::memory_order_relaxed);
  c.acked = acked_.load(std::memory_order_relaxed);
  c.duplicates = duplicates_.load(std::memory_order_relaxed);
  c.resent = resent_.load(std::memory_order_relaxed);
  if (opt_.jetstream) {
    const std::uint64_t done = c.acked + c.failed;
    c.pending = c.published > done ? c.published - done : 0;
  } else {
    c.pending = buffered_bytes_.load(std::memory_order_relaxed);  // relaxed: a gauge (note_buffered())
  }
  c.client = client_->counters();
  return c;
}

adapter::SinkStats NatsSink::stats() const noexcept {
  const NatsSinkCounters c = counters();
  adapter::SinkStats s;
  s.messages = c.published + c.filtered;
  s.bytes = bytes_.load(std::memory_order_relaxed);  // relaxed: a counter
  s.errors = c.failed;
  s.details.add("published", c.published);
  s.details.add("pending", c.pending);
  s.details.add("failed", c.failed);
  s.details.add("pushback", c.pushback);
  s.details.add("reconnects", c.client.reconnects);
  s.details.add("reconnect_attempts", c.client.reconnect_attempts);
  if (opt_.jetstream) {
    s.details.add("acked", c.acked);
    s.details.add("resent", c.resent);
  }
  return s;
}

}  // namespace hypergate::nats
