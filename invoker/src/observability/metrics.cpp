#include "invoker/observability/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "thaw/error.hpp"

namespace thaw::invoker {

namespace {

std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  std::ostringstream out;
  out.precision(12);
  out << v;
  return out.str();
}

std::string escape(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

}  // namespace

std::string format_labels(const Labels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (const auto& [k, v] : labels) {
    if (out.size() > 1) out += ",";
    out += k + "=\"" + escape(v) + "\"";
  }
  return out + "}";
}

std::vector<double> latency_buckets() {
  return {.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900};
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {
  std::sort(bounds_.begin(), bounds_.end());
}

void Histogram::observe(double value) {
  const auto at = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  std::lock_guard lock(mutex_);
  ++counts_[static_cast<size_t>(at)];
  sum_ += value;
}

Histogram::Snapshot Histogram::snapshot() const {
  std::lock_guard lock(mutex_);
  Snapshot s;
  uint64_t running = 0;
  for (auto c : counts_) s.cumulative.push_back(running += c);
  s.sum = sum_;
  return s;
}

Metrics::Family& Metrics::family(const std::string& name, const std::string& help,
                                 const char* type) {
  auto& f = families_[name];
  if (f.type.empty()) {
    f.type = type;
    f.help = help;
  } else if (f.type != type) {
    throw Error("metrics: " + name + " is a " + f.type + ", not a " + type);
  }
  return f;
}

Counter& Metrics::counter(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard lock(mutex_);
  auto& slot = family(name, help, "counter").counters[labels];
  if (!slot) slot = std::make_unique<Counter>();
  return *slot;
}

Histogram& Metrics::histogram(const std::string& name, const std::string& help,
                              const Labels& labels, const std::vector<double>& bounds) {
  std::lock_guard lock(mutex_);
  auto& slot = family(name, help, "histogram").histograms[labels];
  if (!slot) slot = std::make_unique<Histogram>(bounds);
  return *slot;
}

void Metrics::gauge_callback(const std::string& name, const std::string& help, GaugeReader read) {
  std::lock_guard lock(mutex_);
  family(name, help, "gauge").gauges = std::move(read);
}

void Metrics::counter_callback(const std::string& name, const std::string& help, GaugeReader read) {
  std::lock_guard lock(mutex_);
  family(name, help, "counter").gauges = std::move(read);
}

void Metrics::remove_label_value(const std::string& key, const std::string& value) {
  std::lock_guard lock(mutex_);
  auto matches = [&](const Labels& l) {
    const auto it = l.find(key);
    return it != l.end() && it->second == value;
  };
  for (auto& [name, f] : families_) {
    std::erase_if(f.counters, [&](const auto& e) { return matches(e.first); });
    std::erase_if(f.histograms, [&](const auto& e) { return matches(e.first); });
  }
}

std::string Metrics::render() const {
  // Gauges are read outside the lock: their readers take other locks.
  std::map<std::string, std::pair<GaugeReader, std::string>> readers;  // with the type
  std::ostringstream out;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [name, f] : families_) {
      if (f.gauges) {
        readers[name] = {f.gauges, f.type};
        continue;
      }
      if (f.counters.empty() && f.histograms.empty()) continue;
      out << "# HELP " << name << " " << f.help << "\n# TYPE " << name << " " << f.type << "\n";
      for (const auto& [labels, c] : f.counters)
        out << name << format_labels(labels) << " " << c->value() << "\n";
      for (const auto& [labels, h] : f.histograms) {
        const auto s = h->snapshot();
        for (size_t i = 0; i <= h->bounds().size(); ++i) {
          auto with_le = labels;
          with_le["le"] = i < h->bounds().size() ? number(h->bounds()[i]) : "+Inf";
          out << name << "_bucket" << format_labels(with_le) << " " << s.cumulative[i] << "\n";
        }
        out << name << "_sum" << format_labels(labels) << " " << number(s.sum) << "\n";
        out << name << "_count" << format_labels(labels) << " " << s.cumulative.back() << "\n";
      }
    }
  }
  for (const auto& [name, reader] : readers) {
    const auto& [read, type] = reader;
    std::string help;
    {
      std::lock_guard lock(mutex_);
      help = families_.at(name).help;
    }
    out << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
    for (const auto& [labels, v] : read())
      out << name << format_labels(labels) << " " << number(v) << "\n";
  }
  return out.str();
}

}  // namespace thaw::invoker
