#include "nats/nats_source.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include "hypergate/core/clock.hpp"
#include "hypergate/core/eventfd.hpp"
#include "nats/subject_template.hpp"

namespace hypergate::nats {

NatsSource::NatsSource(NatsSourceOptions options) : opt_(std::move(options)) {
  opt_.client.role = "source";
  client_ = std::make_unique<NatsClient>(opt_.client);  // here, not in start(): stats() may read it
  wake_efd_ = make_eventfd();  // -1 on failure: no wake-ups, bounded sleeps
}

NatsSource::~NatsSource() {
  stop();
  if (wake_efd_ >= 0) ::close(wake_efd_);
}

int NatsSource::wake_fd() noexcept {
  if (!started_ || wake_efd_ < 0) return -1;
  drain_eventfd(wake_efd_);  // clear the last wake-up
  // Dekker's pattern, all seq_cst: we store the flag, then load the count of queued messages; a
  // delivery stores (increments) the count, then loads the flag (on_message()). In the single order
  // of seq_cst operations at least one of the two loads sees the other thread's store: either the
  // delivery sees the flag and writes the eventfd, or we see its message here.
  wake_armed_.store(true, std::memory_order_seq_cst);
  if (pushed_.load(std::memory_order_seq_cst) != popped_) signal_eventfd(wake_efd_);  // do not sleep at all
  return wake_efd_;
}

Result<void> NatsSource::start() {
  if (auto r = client_->connect(); !r) return r.error();
  lanes_.clear();
  pushed_.store(0, std::memory_order_relaxed);  // no delivery thread runs yet: nothing is subscribed
  popped_ = 0;
  for (std::size_t i = 0; i < opt_.subjects.size(); ++i) {  // one queue per subscription (one producer each)
    auto lane = std::make_unique<Lane>(opt_.queue_capacity);
    lane->owner = this;
    lanes_.push_back(std::move(lane));
  }
  if (opt_.jetstream) {
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 2000;  // ms per consumer request: bounds how long stop() may wait for the helper thread
    if (auto r = client_->enable_jetstream(jo); !r) return r.error();
  }
  // Core subscriptions are registered even while no server answers (libnats sends them on connect);
  // a JetStream consumer needs the server, so without one it is created by poll() once connected.
  for (std::size_t i = 0; i < lanes_.size(); ++i) {
    Lane& lane = *lanes_[i];
    const char* subject = opt_.subjects[i].c_str();
    if (opt_.jetstream) continue;
    natsStatus s = NATS_OK;
    if (opt_.queue.empty()) {
      s = natsConnection_Subscribe(&lane.sub, client_->connection(), subject, &NatsSource::on_message, &lane);
    } else {
      s = natsConnection_QueueSubscribe(&lane.sub, client_->connection(), subject, opt_.queue.c_str(),
                                        &NatsSource::on_message, &lane);
    }
    if (s != NATS_OK) {
      Error e{Status::IoError, "nats source '" + opt_.client.name + "': subscribe '" + opt_.subjects[i] +
                                   "': " + nats_error_text(static_cast<int>(s))};
      lane.sub = nullptr;
      close_subscriptions();  // the earlier ones deliver into lanes that must not outlive them
      client_->close();
      return e;
    }
    watch_completion(lane);
    (void)natsSubscription_SetPendingLimits(lane.sub, opt_.client.max_pending_messages, -1);
  }
  started_ = true;
  if (opt_.jetstream) {
    // Creating a consumer is a request that can wait for its answer (seconds while a cluster elects a
    // leader): it runs on a helper thread, never on the worker, and is retried until it succeeds.
    js_stop_.store(false, std::memory_order_relaxed);  // relaxed: the thread starts after this store
    js_thread_ = std::thread([this] { subscribe_jetstream_until_done(); });
  }
  return {};
}

void NatsSource::subscribe_jetstream_until_done() noexcept {
  bool logged = false;
  while (!js_stop_.load(std::memory_order_acquire)) {  // pairs with the release store in stop()
    if (client_->connected()) {
      auto r = subscribe_jetstream();
      if (r) return;
      if (!logged) {
        logged = true;
        std::fprintf(stderr, "%s; retrying every %llu ms\n", r.error().message.c_str(),
                     static_cast<unsigned long long>(kJetStreamRetryNs / 1'000'000));
      }
    }
    std::unique_lock lock(js_mutex_);
    js_wake_.wait_for(lock, std::chrono::nanoseconds(kJetStreamRetryNs),
                      [this] { return js_stop_.load(std::memory_order_acquire); });
  }
}

Result<void> NatsSource::subscribe_jetstream() {
  for (std::size_t i = 0; i < lanes_.size(); ++i) {
    Lane& lane = *lanes_[i];
    if (lane.sub != nullptr) continue;  // subscribed by an earlier attempt
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = opt_.stream.c_str();
    so.Ordered = true;  // ack none, flow control, heartbeats; recreated from the last sequence on a gap
    switch (opt_.deliver) {
      case NatsSourceOptions::Deliver::All: so.Config.DeliverPolicy = js_DeliverAll; break;
      case NatsSourceOptions::Deliver::Last: so.Config.DeliverPolicy = js_DeliverLast; break;
      case NatsSourceOptions::Deliver::New: so.Config.DeliverPolicy = js_DeliverNew; break;
    }
    // An earlier attempt may have delivered before it failed (see the header): resume after that.
    // acquire: pairs with the release store in on_message(); that thread is gone (its subscription
    // was destroyed by libnats at least one retry wait ago).
    if (const std::uint64_t last = lane.last_stream_seq.load(std::memory_order_acquire); last != 0) {
      so.Config.DeliverPolicy = js_DeliverByStartSequence;
      so.Config.OptStartSeq = last + 1;
    }
    jsErrCode jerr = static_cast<jsErrCode>(0);
    const natsStatus s = js_Subscribe(&lane.sub, client_->jetstream(), opt_.subjects[i].c_str(),
                                      &NatsSource::on_message, &lane, nullptr, &so, &jerr);
    if (s != NATS_OK) {
      lane.sub = nullptr;
      return Error{Status::IoError, "nats source '" + opt_.client.name + "': JetStream consumer on stream '" +
                                        opt_.stream + "' for '" + opt_.subjects[i] +
                                        "': " + nats_error_text(static_cast<int>(s)) + " (error code " +
                                        std::to_string(static_cast<int>(jerr)) + ")"};
    }
    watch_completion(lane);
    std::fprintf(stderr, "nats source '%s': JetStream consumer on stream '%s' for '%s'\n", opt_.client.name.c_str(),
                 opt_.stream.c_str(), opt_.subjects[i].c_str());
  }
  return {};
}

// By hand rather than natsMsg_GetMetaData(), which parses the same subject but allocates the metadata
// and its strings for every message on the delivery thread.
std::uint64_t jetstream_stream_sequence(std::string_view reply) noexcept {
  constexpr std::string_view kPrefix = "$JS.ACK.";
  if (!reply.starts_with(kPrefix)) return 0;
  std::array<std::string_view, 12> tok{};
  std::size_t n = 2;  // "$JS" and "ACK"
  std::string_view rest = reply.substr(kPrefix.size());
  while (!rest.empty()) {
    if (n == tok.size()) return 0;  // more tokens than either form has
    const std::size_t dot = rest.find('.');
    tok[n++] = rest.substr(0, dot);
    if (dot == std::string_view::npos) break;
    rest.remove_prefix(dot + 1);
  }
  std::string_view s;
  if (n == 9) {
    s = tok[5];
  } else if (n == 11 || n == 12) {
    s = tok[7];
  } else {
    return 0;
  }
  if (s.empty() || s.size() > 19) return 0;  // 19 digits always fit in 64 bits
  std::uint64_t v = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') return 0;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v;
}

void NatsSource::on_message(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) noexcept {
  // libnats' delivery thread of this subscription: the queue's only producer.
  auto* lane = static_cast<Lane*>(closure);
  NatsSource* self = lane->owner;
  const char* subject = natsMsg_GetSubject(msg);
  const std::size_t subject_size = subject != nullptr ? std::strlen(subject) : 0;
  const int data_size = natsMsg_GetDataLength(msg);
  if (subject_size > NatsRecord::kMaxSubject || data_size < 0 ||
      static_cast<std::size_t>(data_size) > NatsRecord::kMaxPayload) {
    bump(self->oversize_);
    natsMsg_Destroy(msg);
    return;
  }
  if (self->opt_.jetstream) {
    const char* reply = natsMsg_GetReply(msg);
    const std::uint64_t sseq = reply != nullptr ? jetstream_stream_sequence(reply) : 0;
    if (sseq != 0) {
      if (sseq <= lane->last_stream_seq.load(std::memory_order_relaxed)) {  // relaxed: this thread's own store
        bump(self->duplicates_);
        natsMsg_Destroy(msg);
        return;
      }
      lane->last_stream_seq.store(sseq, std::memory_order_release);  // pairs with subscribe_jetstream()
    }
  }
  NatsRecord rec;
  rec.rx_tsc = TscClock::ticks();
  rec.sequence = ++lane->delivered;
  rec.subject_size = static_cast<std::uint16_t>(subject_size);
  rec.payload_size = static_cast<std::uint16_t>(data_size);
  std::memcpy(rec.subject.data(), subject, subject_size);
  std::memcpy(rec.payload.data(), natsMsg_GetData(msg), static_cast<std::size_t>(data_size));
  natsMsg_Destroy(msg);
  // push: the queue's release-store of its write index pairs with the acquire-load in pop() (boost).
  if (!lane->queue.push(rec)) {
    bump(self->overflow_);
    return;
  }
  // The worker may be asleep: the other half of wake_fd()'s pattern (seq_cst increment, then seq_cst
  // load of the flag). The exchange lets one delivery write per arming; a busy worker never arms, so
  // this costs an increment and a load.
  self->pushed_.fetch_add(1, std::memory_order_seq_cst);
  if (self->wake_armed_.load(std::memory_order_seq_cst) &&
      self->wake_armed_.exchange(false, std::memory_order_seq_cst) && self->wake_efd_ >= 0)
    signal_eventfd(self->wake_efd_);
}

void NatsSource::watch_completion(Lane& lane) noexcept {
  // By the thread that subscribed (start(), or the JetStream helper, joined before stop() reads this).
  lane.complete.store(false, std::memory_order_relaxed);  // relaxed: no completion can be pending yet
  lane.complete_cb = natsSubscription_SetOnCompleteCB(lane.sub, &NatsSource::on_complete, &lane) == NATS_OK;
}

void NatsSource::on_complete(void* closure) noexcept {
  // libnats' delivery thread, after the last on_message of this subscription returned.
  // release: pairs with the acquire load in close_subscriptions(); the last access to the lane.
  static_cast<Lane*>(closure)->complete.store(true, std::memory_order_release);
}

void NatsSource::close_subscriptions() noexcept {
  for (auto& lane : lanes_) {
    if (lane->sub == nullptr) continue;
    (void)natsSubscription_Unsubscribe(lane->sub);
    if (lane->complete_cb) {
      // natsSubscription_Unsubscribe does not wait for a handler that is running (or about to run):
      // until on_complete, on_message may still push into this lane.
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::nanoseconds(kCompleteWaitNs);
      while (!lane->complete.load(std::memory_order_acquire)) {  // pairs with the release in on_complete()
        if (std::chrono::steady_clock::now() >= deadline) {
          std::fprintf(stderr, "nats source '%s': a subscription's handler did not finish within %llu ms\n",
                       opt_.client.name.c_str(), static_cast<unsigned long long>(kCompleteWaitNs / 1'000'000));
          break;
        }
        std::this_thread::sleep_for(std::chrono::microseconds(100));
      }
    }
    natsSubscription_Destroy(lane->sub);
    lane->sub = nullptr;
    lane->complete_cb = false;
  }
}

std::size_t NatsSource::poll(Burst<>& out) noexcept {
  if (!started_) return 0;
  const std::size_t room = std::min(out.capacity() - out.size(), batch_.size());
  std::size_t got = 0;
  // Round robin over the subscriptions, starting after the one served first last time.
  for (std::size_t k = 0; k < lanes_.size() && got < room; ++k) {
    Lane& lane = *lanes_[(next_lane_ + k) % lanes_.size()];
    got += lane.queue.pop(batch_.data() + got, room - got);  // copies out; acquire pairs with push()
  }
  popped_ += got;
  if (!lanes_.empty()) next_lane_ = (next_lane_ + 1) % lanes_.size();
  if (got == 0) return 0;
  std::uint64_t bytes = 0;
  for (std::size_t i = 0; i < got; ++i) {
    const NatsRecord& rec = batch_[i];
    Message& m = out.emplace_back();
    m.set_payload(rec.payload.data(), rec.payload_size);
    m.set_key(last_token(std::string_view(rec.subject.data(), rec.subject_size)));
    m.source_id = opt_.source_id;
    m.rx_tsc = rec.rx_tsc;
    m.sequence = rec.sequence;
    bytes += rec.payload_size;
  }
  bump(messages_, got);
  bump(bytes_, bytes);
  bump(polls_);
  return got;
}

Result<std::uint64_t> NatsSource::resubscribe_jetstream_for_test() {
  if (!opt_.jetstream || !started_ || lanes_.empty()) {
    return Error{Status::InvalidArgument, "not a started JetStream source"};
  }
  if (js_thread_.joinable()) js_thread_.join();  // the first subscription is done (or the test waits here)
  close_subscriptions();  // waits for each handler: no delivery thread is left to race the resume
  // acquire: pairs with on_message()'s release store (that thread is done, see close_subscriptions()).
  const std::uint64_t from = lanes_.front()->last_stream_seq.load(std::memory_order_acquire) + 1;
  if (Result<void> r = subscribe_jetstream(); !r) return r.error();
  return from;
}

void NatsSource::stop() noexcept {
  if (!started_) return;
  started_ = false;
  if (js_thread_.joinable()) {
    {
      std::lock_guard lock(js_mutex_);
      js_stop_.store(true, std::memory_order_release);  // pairs with the acquire loads in the helper
    }
    js_wake_.notify_all();
    js_thread_.join();  // bounded by one request's wait (jsOptions.Wait)
  }
  close_subscriptions();
  const NatsClientCounters c = client_->counters();
  std::fprintf(stderr,
               "nats source '%s': received %llu, overflow %llu, oversize %llu, duplicates %llu, reconnects %llu, "
               "reconnect attempts %llu, slow consumer %llu\n",
               opt_.client.name.c_str(), static_cast<unsigned long long>(messages_.load(std::memory_order_relaxed)),
               static_cast<unsigned long long>(overflow_.load(std::memory_order_relaxed)),
               static_cast<unsigned long long>(oversize_.load(std::memory_order_relaxed)),
               static_cast<unsigned long long>(duplicates_.load(std::memory_order_relaxed)),
               static_cast<unsigned long long>(c.reconnects), static_cast<unsigned long long>(c.reconnect_attempts),
               static_cast<unsigned long long>(c.slow_consumer));
  client_->close();  // the lanes (and their queues) outlive the connection and its delivery threads
}

adapter::SourceStats NatsSource::stats() const noexcept {
  adapter::SourceStats s;
  // relaxed: monotonic counters (see bump())
  s.messages = messages_.load(std::memory_order_relaxed);
  s.bytes = bytes_.load(std::memory_order_relaxed);
  s.polls = polls_.load(std::memory_order_relaxed);
  s.rejects = oversize_.load(std::memory_order_relaxed) + duplicates_.load(std::memory_order_relaxed);
  s.drops = overflow_.load(std::memory_order_relaxed) + client_->counters().slow_consumer;
  return s;
}

}  // namespace hypergate::nats
