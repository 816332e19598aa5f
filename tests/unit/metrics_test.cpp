// The Prometheus registry's text output.
#include "invoker/observability/metrics.hpp"

#include <gtest/gtest.h>

#include <thread>

using namespace thaw::invoker;

TEST(Metrics, CountersAndGaugesInTextFormat) {
  Metrics m;
  m.counter("t_total", "Things.", {{"function", "f"}, {"outcome", "ok"}}).inc(2);
  m.gauge_callback("t_depth", "Depth.", [] {
    return std::vector<std::pair<Labels, double>>{{{}, 3}};
  });
  const auto text = m.render();
  EXPECT_NE(text.find("# HELP t_total Things.\n# TYPE t_total counter\n"
                      "t_total{function=\"f\",outcome=\"ok\"} 2\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE t_depth gauge\nt_depth 3\n"), std::string::npos) << text;
}

TEST(Metrics, HistogramBucketsAreCumulative) {
  Metrics m;
  auto& h = m.histogram("t_seconds", "Time.", {{"f", "a"}}, {0.1, 1});
  h.observe(0.05);
  h.observe(0.5);
  h.observe(5);
  const auto text = m.render();
  EXPECT_NE(text.find("t_seconds_bucket{f=\"a\",le=\"0.1\"} 1\n"
                      "t_seconds_bucket{f=\"a\",le=\"1\"} 2\n"
                      "t_seconds_bucket{f=\"a\",le=\"+Inf\"} 3\n"
                      "t_seconds_sum{f=\"a\"} 5.55\n"
                      "t_seconds_count{f=\"a\"} 3\n"),
            std::string::npos)
      << text;
}

TEST(Metrics, LabelValuesAreEscapedAndRemovable) {
  Metrics m;
  m.counter("t_total", "T.", {{"function", "a\"b\\c\nd"}}).inc();
  m.counter("t_total", "T.", {{"function", "keep"}}).inc();
  EXPECT_NE(m.render().find(R"(t_total{function="a\"b\\c\nd"} 1)"), std::string::npos)
      << m.render();
  m.remove_label_value("function", "a\"b\\c\nd");
  EXPECT_EQ(m.render().find("a\\\"b"), std::string::npos);
  EXPECT_NE(m.render().find("keep"), std::string::npos);
}

TEST(Metrics, ConcurrentIncrementsAddUp) {
  Metrics m;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) m.counter("t_total", "T.", {{"x", "y"}}).inc();
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(m.counter("t_total", "T.", {{"x", "y"}}).value(), 40000u);
}

TEST(Metrics, OneNameOneType) {
  Metrics m;
  m.counter("t", "T.", {});
  EXPECT_ANY_THROW(m.histogram("t", "T.", {}));
}
