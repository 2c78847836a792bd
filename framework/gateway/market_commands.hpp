#pragma once
// The market-data commands of the `hypergate` executable:
//
//   replay CAPTURE [--speed max|1x|Nx|Npps] [--config F] [--set k=v]... [--book-json OUT] [--port P]
//                  [--loop N] [--send HOST:PORT [--interface IP]]
//       Runs the "itch" pipeline over a pcap/pcapng capture of MoldUDP64 datagrams (in process, through
//       the runtime, valves and the configuration's sinks) and prints messages by type, rejects by reason,
//       gaps, msgs/s and per-stage latency; --book-json writes the final top of book read back from the
//       store. --send sends the datagrams to HOST:PORT on the capture's schedule instead (tcpreplay-like).
//
//   gen itch --out F.pcap [--messages N] [--symbols A,B | --symbol-count N] [--seed S] [--rate R]
//            [--session S] [--loss P] [--drop FIRST-LAST]... [--dst IP:PORT] [--src IP:PORT]
//       Writes a synthetic, protocol-exact ITCH 5.0 / MoldUDP64 capture (nanosecond pcap).
//
// Both return a process exit code (0 ok, 1 runtime error, 2 usage or configuration error).
#include <cstdint>
#include <string>
#include <vector>

#include "run.hpp"

namespace hypergate::gateway {

struct ReplayArgs {
  std::string capture;
  std::string config;              ///< optional: sinks, admin, gateway settings for the replay
  std::vector<std::string> sets;   ///< --set overrides (also for source.replay.*)
  std::vector<std::string> plugins;
  std::string book_json;           ///< write the final top of book here
  std::string speed = "max";
  std::uint16_t port = 0;          ///< UDP destination port filter (0 = every UDP payload)
  std::uint64_t loop = 1;
  std::string via = "inprocess";   ///< "inprocess" | "dpdk"
  std::string send;                ///< HOST:PORT: send instead of processing
  std::string interface;           ///< --send: IPv4 address of the outgoing interface for multicast
  bool quiet = false;
  HistogramOutputs histograms;     ///< --hlog, --hlog-interval, --trace-every
};

struct GenItchArgs {
  std::string out;
  std::uint64_t messages = 100'000;
  std::vector<std::string> symbols;
  std::size_t symbol_count = 8;
  std::uint64_t seed = 1;
  std::uint64_t rate = 1'000'000;  ///< messages per second of feed time (spacing of the timestamps)
  std::string session = "HGSESSION1";
  double loss = 0.0;
  std::vector<std::string> drops;  ///< "FIRST-LAST" sequence ranges to leave out
  std::string dst = "239.1.1.1:30001";
  std::string src = "127.0.0.1:40001";
  std::size_t max_packet_bytes = 1400;
};

[[nodiscard]] int cmd_replay(const ReplayArgs& args);
[[nodiscard]] int cmd_gen_itch(const GenItchArgs& args);

}  // namespace hypergate::gateway
