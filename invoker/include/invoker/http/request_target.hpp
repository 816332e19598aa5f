#pragma once
// A request target taken apart: the path's segments (percent-decoded) and
// the query's parameters.

#include <map>
#include <string>
#include <vector>

namespace thaw::invoker {

struct RequestTarget {
  std::string path;                   // as sent, without the query
  std::vector<std::string> segments;  // decoded, empty ones dropped
  std::map<std::string, std::string> query;
};

RequestTarget parse_target(const std::string& target);
// `plus_is_space`: '+' means ' ' (query strings), not in paths.
std::string percent_decode(const std::string& text, bool plus_is_space = true);

// A function as the path names it: a name, or an ARN ending in function:NAME.
std::string function_name_from_path(const std::string& segment);

}  // namespace thaw::invoker
