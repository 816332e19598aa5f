#pragma once
// A function's code as CreateFunction takes it: a zip, made in memory from a
// directory, or read from a .zip file as it is.

#include <cstddef>
#include <string>

namespace thaw::cli {

// Lambda's limit for a zip sent in the request.
constexpr size_t kMaxZipBytes = 50u * 1024 * 1024;

// The directory's files, sorted and with fixed times, so the same files give
// the same zip (and the same CodeSha256). Throws std::runtime_error.
std::string zip_directory(const std::string& dir);

// `path` zipped if it is a directory, read if it is a .zip file. Throws
// UsageError naming the path and the reason, also when over kMaxZipBytes.
std::string read_package(const std::string& path);

}  // namespace thaw::cli
