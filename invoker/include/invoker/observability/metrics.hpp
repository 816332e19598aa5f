#pragma once
// A small Prometheus registry: counters, histograms and gauges read at scrape
// time, rendered in the text exposition format 0.0.4.

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace thaw::invoker {

using Labels = std::map<std::string, std::string>;  // sorted: a stable label order

class Counter {
 public:
  void inc(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double value);
  struct Snapshot {
    std::vector<uint64_t> cumulative;  // per bound, then +Inf
    double sum = 0;
  };
  Snapshot snapshot() const;
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;
  mutable std::mutex mutex_;
  std::vector<uint64_t> counts_;  // per bucket, the last is +Inf
  double sum_ = 0;
};

// Seconds: from a warm invocation (about a millisecond) to Lambda's longest (15 minutes).
std::vector<double> latency_buckets();

class Metrics {
 public:
  using GaugeReader = std::function<std::vector<std::pair<Labels, double>>()>;

  // The series of a family, made on first use; references stay valid.
  Counter& counter(const std::string& name, const std::string& help, const Labels& labels);
  Histogram& histogram(const std::string& name, const std::string& help, const Labels& labels,
                       const std::vector<double>& bounds = latency_buckets());
  // A gauge family whose series are read when /metrics is scraped.
  void gauge_callback(const std::string& name, const std::string& help, GaugeReader read);
  // A counter family kept elsewhere (an atomic of another module), read at scrape time.
  void counter_callback(const std::string& name, const std::string& help, GaugeReader read);
  // Drops every series carrying label `key` = `value` (a deleted function's).
  void remove_label_value(const std::string& key, const std::string& value);
  std::string render() const;

 private:
  struct Family {
    std::string help;
    std::string type;
    std::map<Labels, std::unique_ptr<Counter>> counters;
    std::map<Labels, std::unique_ptr<Histogram>> histograms;
    GaugeReader gauges;
  };
  Family& family(const std::string& name, const std::string& help, const char* type);

  mutable std::mutex mutex_;
  std::map<std::string, Family> families_;
};

// Label values escaped as the text format wants them.
std::string format_labels(const Labels& labels);

}  // namespace thaw::invoker
