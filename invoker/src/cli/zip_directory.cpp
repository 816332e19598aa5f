#include "zip_directory.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <vector>

namespace fs = std::filesystem;

namespace thaw::cli {

namespace {

using Archive = std::unique_ptr<archive, decltype(&archive_write_free)>;

la_ssize_t append_to_string(archive*, void* out, const void* data, size_t n) {
  static_cast<std::string*>(out)->append(static_cast<const char*>(data), n);
  return static_cast<la_ssize_t>(n);
}

[[noreturn]] void fail(archive* a, const std::string& what) {
  throw std::runtime_error(what + ": " + (archive_error_string(a) ? archive_error_string(a) : "?"));
}

}  // namespace

std::string zip_directory(const std::string& dir) {
  if (!fs::is_directory(dir)) throw std::runtime_error(dir + ": not a directory");
  std::string out;
  Archive a(archive_write_new(), archive_write_free);
  archive_write_set_format_zip(a.get());
  if (archive_write_open(a.get(), &out, nullptr, append_to_string, nullptr) != ARCHIVE_OK)
    fail(a.get(), "zip");
  // Sorted, so the same directory always gives the same bytes (and CodeSha256).
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file() && e.path().filename() != "__pycache__" &&
        e.path().string().find("/__pycache__/") == std::string::npos)
      files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    const std::string data((std::istreambuf_iterator<char>(in)), {});
    struct stat st {};
    stat(f.c_str(), &st);
    std::unique_ptr<archive_entry, decltype(&archive_entry_free)> e(archive_entry_new(),
                                                                    archive_entry_free);
    archive_entry_set_pathname(e.get(), fs::relative(f, dir).c_str());
    archive_entry_set_filetype(e.get(), AE_IFREG);
    archive_entry_set_perm(e.get(), st.st_mode & 0755);
    archive_entry_set_size(e.get(), static_cast<la_int64_t>(data.size()));
    archive_entry_set_mtime(e.get(), 0, 0);
    if (archive_write_header(a.get(), e.get()) != ARCHIVE_OK) fail(a.get(), f.string());
    if (archive_write_data(a.get(), data.data(), data.size()) < 0) fail(a.get(), f.string());
  }
  if (archive_write_close(a.get()) != ARCHIVE_OK) fail(a.get(), "zip");
  return out;
}

std::string read_package(const std::string& path) {
  if (fs::is_directory(path)) return zip_directory(path);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot read (a directory or a .zip file)");
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

}  // namespace thaw::cli
