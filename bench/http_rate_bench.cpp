// Fixed-rate HTTP load (wrk measures the most a server does; this measures
// latency at a chosen rate): CONNECTIONS keep-alive connections together send
// RATE POST requests per second for SECONDS. Each request has a planned send
// time; latency counts from that time, so a slow answer that delays the next
// request is charged to it (no coordinated omission).
//   http_rate_bench PORT TOKEN PATH RATE SECONDS CONNECTIONS
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "stats.hpp"

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;
using thaw::bench::Clock;

int main(int argc, char** argv) {
  if (argc != 7) {
    std::fprintf(stderr, "usage: http_rate_bench PORT TOKEN PATH RATE SECONDS CONNECTIONS\n");
    return 2;
  }
  const std::string port = argv[1], token = argv[2], path = argv[3];
  const double rate = std::stod(argv[4]), seconds = std::stod(argv[5]);
  const int connections = std::stoi(argv[6]);
  if (rate <= 0 || seconds <= 0 || connections <= 0) {
    std::fprintf(stderr, "http_rate_bench: RATE, SECONDS and CONNECTIONS must be positive\n");
    return 2;
  }
  std::mutex mutex;
  std::vector<double> latencies;
  int errors = 0;
  const auto start = Clock::now() + std::chrono::milliseconds(100);
  const auto interval = std::chrono::duration<double>(connections / rate);
  const auto per_connection = static_cast<long>(seconds * rate / connections);
  std::vector<std::thread> threads;
  for (int c = 0; c < connections; ++c) {
    threads.emplace_back([&, c] {
      std::vector<double> mine;
      int failed = 0;
      try {
        boost::asio::io_context io;
        tcp::resolver resolver(io);
        beast::tcp_stream stream(io);
        stream.connect(resolver.resolve("127.0.0.1", port));
        beast::flat_buffer buffer;
        // Connections are staggered across one interval.
        const auto offset = std::chrono::duration_cast<Clock::duration>(interval * c / connections);
        for (long i = 0; i < per_connection; ++i) {
          const auto planned =
              start + offset + std::chrono::duration_cast<Clock::duration>(interval * i);
          std::this_thread::sleep_until(planned);
          http::request<http::string_body> req{http::verb::post, path, 11};
          req.set(http::field::host, "127.0.0.1");
          req.set(http::field::authorization, "Bearer " + token);
          req.body() = "{}";
          req.prepare_payload();
          http::write(stream, req);
          http::response<http::string_body> res;
          http::read(stream, buffer, res);
          if (res.result() != http::status::ok) ++failed;
          mine.push_back(std::chrono::duration<double, std::milli>(Clock::now() - planned).count());
        }
      } catch (const std::exception& e) {
        std::fprintf(stderr, "connection %d: %s\n", c, e.what());
        ++failed;
      }
      std::lock_guard lock(mutex);
      latencies.insert(latencies.end(), mine.begin(), mine.end());
      errors += failed;
    });
  }
  for (auto& t : threads) t.join();
  const double took = std::chrono::duration<double>(Clock::now() - start).count();
  using thaw::bench::percentile;
  std::printf("rate %.0f/s planned, %.0f/s done, %zu requests, %d errors\n", rate,
              static_cast<double>(latencies.size()) / took, latencies.size(), errors);
  std::printf("latency ms: p50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n", percentile(latencies, 50),
              percentile(latencies, 90), percentile(latencies, 99), percentile(latencies, 100));
  return errors == 0 ? 0 : 1;
}
