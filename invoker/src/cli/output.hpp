#pragma once
// How thaw shows answers to people: aligned tables and readable quantities.

#include <cstdint>
#include <iosfwd>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace thaw::cli {

// Columns as wide as their widest cell, two spaces apart.
class Table {
 public:
  explicit Table(std::vector<std::string> headings);
  void add(std::vector<std::string> row);
  void print(std::ostream& out) const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

// A JSON value as a table cell: strings without quotes, null as "-".
std::string cell(const nlohmann::json& value);

// 12.3 MB
std::string megabytes(double bytes);
// 42s, 5m, 3h, 2d
std::string age(int64_t seconds);

// JSON as `--json` prints it.
void print_json(const nlohmann::json& value);

}  // namespace thaw::cli
