#include "zip_directory.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <vector>

#include "errors.hpp"

namespace fs = std::filesystem;

namespace thaw::cli {

namespace {

using ArchiveWriter = std::unique_ptr<archive, decltype(&archive_write_free)>;
using ArchiveEntry = std::unique_ptr<archive_entry, decltype(&archive_entry_free)>;

// 2000-01-01: zip's DOS times cannot say 1970.
constexpr time_t kFixedMtime = 946684800;

la_ssize_t append_to_string(archive*, void* out, const void* data, size_t n) {
  static_cast<std::string*>(out)->append(static_cast<const char*>(data), n);
  return static_cast<la_ssize_t>(n);
}

[[noreturn]] void fail(archive* a, const std::string& what) {
  const char* why = archive_error_string(a);
  throw std::runtime_error(what + ": " + (why ? why : "libarchive failed"));
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path.string() + ": " + std::strerror(errno));
  std::string data((std::istreambuf_iterator<char>(in)), {});
  if (in.bad()) throw std::runtime_error(path.string() + ": read failed");
  return data;
}

// Python's caches are made again on the host; they only make the zip bigger.
bool skipped(const fs::path& relative) {
  return std::any_of(relative.begin(), relative.end(),
                     [](const fs::path& part) { return part == "__pycache__"; });
}

std::string too_big(const std::string& path, size_t bytes) {
  return path + ": the zip is " + std::to_string(bytes / (1024 * 1024)) +
         " MB; thawd takes at most " + std::to_string(kMaxZipBytes / (1024 * 1024)) +
         " MB in a request";
}

}  // namespace

std::string zip_directory(const std::string& dir) {
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file() && !skipped(fs::relative(e.path(), dir))) files.push_back(e.path());
  std::sort(files.begin(), files.end());

  std::string zip;
  ArchiveWriter a(archive_write_new(), archive_write_free);
  if (archive_write_set_format_zip(a.get()) != ARCHIVE_OK) fail(a.get(), "zip format");
  // Not padded to libarchive's 10 KB blocks: the zip ends where its directory does.
  archive_write_set_bytes_in_last_block(a.get(), 1);
  if (archive_write_open(a.get(), &zip, nullptr, append_to_string, nullptr) != ARCHIVE_OK)
    fail(a.get(), "zip");
  for (const auto& file : files) {
    const auto data = read_file(file);
    struct stat st {};
    if (stat(file.c_str(), &st) != 0)
      throw std::runtime_error(file.string() + ": " + std::strerror(errno));
    ArchiveEntry entry(archive_entry_new(), archive_entry_free);
    archive_entry_set_pathname(entry.get(), fs::relative(file, dir).c_str());
    archive_entry_set_filetype(entry.get(), AE_IFREG);
    // The execute bits matter: a custom runtime's bootstrap must stay executable.
    archive_entry_set_perm(entry.get(), st.st_mode & 0755);
    archive_entry_set_size(entry.get(), static_cast<la_int64_t>(data.size()));
    archive_entry_set_mtime(entry.get(), kFixedMtime, 0);
    if (archive_write_header(a.get(), entry.get()) != ARCHIVE_OK) fail(a.get(), file.string());
    if (archive_write_data(a.get(), data.data(), data.size()) !=
        static_cast<la_ssize_t>(data.size()))
      fail(a.get(), file.string());
  }
  if (archive_write_close(a.get()) != ARCHIVE_OK) fail(a.get(), "zip");
  return zip;
}

std::string read_package(const std::string& path) {
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (ec || !fs::exists(status))
    throw UsageError(path + ": " + (ec ? ec.message() : "no such file or directory"));
  std::string zip;
  if (fs::is_directory(status)) {
    try {
      zip = zip_directory(path);
    } catch (const std::exception& e) {
      throw UsageError("zipping " + path + ": " + e.what());
    }
  } else {
    // A big file is refused before it is read.
    if (fs::is_regular_file(status)) {
      const auto bytes = fs::file_size(path, ec);
      if (!ec && bytes > kMaxZipBytes) throw UsageError(too_big(path, bytes));
    }
    try {
      zip = read_file(path);
    } catch (const std::exception& e) {
      throw UsageError(e.what());
    }
    if (zip.rfind("PK", 0) != 0)
      throw UsageError(path + ": not a zip file (give a directory or a .zip)");
  }
  if (zip.size() > kMaxZipBytes) throw UsageError(too_big(path, zip.size()));
  return zip;
}

}  // namespace thaw::cli
