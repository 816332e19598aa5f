#include "snapshots/manifest.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "thaw/error.hpp"
#include "thaw/unique_fd.hpp"

namespace fs = std::filesystem;

namespace thaw::snapshots {

bool checksummed(const std::string& relative) {
  const bool log = relative.size() >= 4 && relative.compare(relative.size() - 4, 4, ".log") == 0;
  return relative != "manifest.json" && !log;
}

bool plain_file(const fs::directory_entry& entry) {
  std::error_code ec;
  return entry.symlink_status(ec).type() == fs::file_type::regular;
}

namespace {

constexpr char kHex[] = "0123456789abcdef";

// File names are bytes an instance chose (its /tmp is in the snapshot), and
// JSON holds only UTF-8: names are written with every byte outside printable
// ASCII, and '%', as %XX, and read back the same way.
std::string encode_name(const std::string& name) {
  std::string out;
  for (const unsigned char c : name) {
    if (c > 0x20 && c < 0x7f && c != '%') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

std::string decode_name(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    const int hi = i + 2 < text.size() ? hex_digit(text[i + 1]) : -1;
    const int lo = hi >= 0 ? hex_digit(text[i + 2]) : -1;
    if (lo < 0) throw Error("snapshot manifest: bad file name " + text);
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

}  // namespace

std::string to_json(const SnapshotManifest& m) {
  nlohmann::json files = nlohmann::json::object();
  for (const auto& [name, sum] : m.files) files[encode_name(name)] = sum;
  nlohmann::json j = {{"format", m.format},
                      {"function_digest", m.function_digest},
                      {"criu_version", m.criu_version},
                      {"kernel_release", m.kernel_release},
                      {"created_unix_ms", m.created_unix_ms},
                      {"files", files},
                      {"external_mounts", m.external_mounts},
                      {"inherited", m.inherited},
                      {"inherited_flags", m.inherited_flags}};
  return j.dump(2);
}

SnapshotManifest manifest_from_json(const std::string& text) {
  try {
    // Every number in a manifest is whole: a fraction read into an int is
    // undefined behaviour when out of range, so none is let in.
    const auto j = nlohmann::json::parse(
        text, [](int, nlohmann::json::parse_event_t, const nlohmann::json& parsed) {
          if (parsed.is_number_float()) throw Error("snapshot manifest: a number with a fraction");
          return true;
        });
    SnapshotManifest m;
    m.format = j.at("format").get<int>();
    if (m.format != kManifestFormat)
      throw Error("snapshot manifest: format " + std::to_string(m.format) +
                  ", this thaw reads format " + std::to_string(kManifestFormat));
    m.function_digest = j.at("function_digest").get<std::string>();
    m.criu_version = j.at("criu_version").get<std::string>();
    m.kernel_release = j.at("kernel_release").get<std::string>();
    m.created_unix_ms = j.at("created_unix_ms").get<int64_t>();
    for (const auto& [name, sum] : j.at("files").get<std::map<std::string, std::string>>())
      m.files[decode_name(name)] = sum;
    m.external_mounts =
        j.at("external_mounts").get<std::vector<std::pair<std::string, std::string>>>();
    m.inherited = j.at("inherited").get<std::map<int, std::string>>();
    m.inherited_flags = j.at("inherited_flags").get<std::map<int, int>>();
    return m;
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("snapshot manifest: ") + e.what());
  }
}

void check_compatible(const SnapshotManifest& m, const RestoreExpectations& want) {
  if (m.function_digest != want.function_digest)
    throw Error("snapshot is of another function digest (" + m.function_digest + ", want " +
                want.function_digest + ")");
  if (m.criu_version != want.criu_version)
    throw Error("snapshot made by criu " + m.criu_version + ", this host has " + want.criu_version);
  if (m.kernel_release != want.kernel_release)
    throw Error("snapshot made on kernel " + m.kernel_release + ", this host runs " +
                want.kernel_release);
}

std::string sha256_file(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw_errno("checksum: open " + path);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  char buf[1 << 16];
  ssize_t n;
  while ((n = read(fd.get(), buf, sizeof buf)) > 0)
    EVP_DigestUpdate(ctx.get(), buf, static_cast<size_t>(n));
  if (n < 0) throw_errno("checksum: read " + path);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &len);
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

std::string relative_in_walk(const fs::path& path, const std::string& dir) {
  const auto& p = path.native();
  size_t skip = dir.size();
  while (skip < p.size() && p[skip] == '/') ++skip;
  return p.compare(0, dir.size(), dir) == 0 ? p.substr(skip) : fs::relative(path, dir).string();
}

std::map<std::string, std::string> checksum_tree(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!plain_file(e)) continue;
    const auto rel = relative_in_walk(e.path(), dir);
    if (checksummed(rel)) files[rel] = sha256_file(e.path().string());
  }
  return files;
}

void verify_files(const SnapshotManifest& m, const std::string& dir) {
  const auto actual = checksum_tree(dir);
  for (const auto& [rel, sum] : m.files) {
    auto it = actual.find(rel);
    if (it == actual.end()) throw Error("snapshot file missing: " + rel);
    if (it->second != sum) throw Error("snapshot file changed (checksum mismatch): " + rel);
  }
  for (const auto& [rel, sum] : actual)
    if (!m.files.count(rel)) throw Error("snapshot has a file its manifest does not list: " + rel);
}

}  // namespace thaw::snapshots
