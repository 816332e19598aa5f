#pragma once
// A function's code as CreateFunction takes it: a zip, made in memory from a
// directory, or read from a .zip file as it is.

#include <string>

namespace thaw::cli {

// Throws std::runtime_error with the path and the reason.
std::string zip_directory(const std::string& dir);
std::string read_package(const std::string& path);  // a directory or a .zip

}  // namespace thaw::cli
