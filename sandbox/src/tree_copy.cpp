#include "sandbox/tree_copy.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <memory>
#include <vector>

#include "thaw/error.hpp"
#include "thaw/unique_fd.hpp"

namespace thaw::sandbox {

namespace {

using Clock = std::chrono::steady_clock;

struct Copy {
  const TreeCopyLimits& limits;
  Clock::time_point deadline;
  TreeCopyResult result;

  void count_entry() {
    if (++result.entries > limits.max_entries)
      throw Error("copy: more than " + std::to_string(limits.max_entries) + " entries");
    if (Clock::now() > deadline) throw Error("copy: did not finish in time");
  }

  // Bytes as they are copied: a file may grow while it is read.
  void count_bytes(uint64_t bytes) {
    result.bytes += bytes;
    if (result.bytes > limits.max_bytes)
      throw Error("copy: more than " + std::to_string(limits.max_bytes) + " bytes");
    if (Clock::now() > deadline) throw Error("copy: did not finish in time");
  }

  static void keep_metadata(int fd, const struct stat& st) {
    // Owners as the instance saw them (its ids map to the same host ids).
    if (fchown(fd, st.st_uid, st.st_gid) != 0) throw_errno("copy: chown");
    if (fchmod(fd, st.st_mode & 07777) != 0) throw_errno("copy: chmod");
    const timespec times[2] = {st.st_atim, st.st_mtim};
    futimens(fd, times);
  }

  void file(int from_dir, const char* name, int to_dir) {
    // Non-blocking: a FIFO put in a file's place opens without a writer.
    UniqueFd in(openat(from_dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
    struct stat st {};
    if (!in || fstat(in.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
      ++result.skipped;  // it changed under the copy, or is no file now
      return;
    }
    count_entry();
    UniqueFd out(openat(to_dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!out) throw_errno(std::string("copy: create ") + name);
    char buf[1 << 16];
    for (;;) {
      const ssize_t n = read(in.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw_errno(std::string("copy: read ") + name);
      if (n == 0) break;
      count_bytes(static_cast<uint64_t>(n));
      for (ssize_t done = 0; done < n;) {
        const ssize_t w = write(out.get(), buf + done, static_cast<size_t>(n - done));
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) throw_errno(std::string("copy: write ") + name);
        done += w;
      }
    }
    keep_metadata(out.get(), st);
  }

  void link(int from_dir, const char* name, int to_dir, const struct stat& st) {
    std::vector<char> target(PATH_MAX + 1);
    const ssize_t n = readlinkat(from_dir, name, target.data(), target.size() - 1);
    if (n < 0) {
      ++result.skipped;
      return;
    }
    target[static_cast<size_t>(n)] = '\0';
    count_entry();
    if (symlinkat(target.data(), to_dir, name) != 0) throw_errno(std::string("copy: link ") + name);
    if (fchownat(to_dir, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) != 0)
      throw_errno(std::string("copy: chown link ") + name);
  }

  void directory(int from_dir, int to_dir, int depth) {
    if (depth > 256) throw Error("copy: directories nested more than 256 deep");
    // fdopendir takes its own descriptor: the walk keeps `from_dir` for openat.
    const int listing_fd = fcntl(from_dir, F_DUPFD_CLOEXEC, 0);
    if (listing_fd < 0) throw_errno("copy: dup");
    DIR* listing = fdopendir(listing_fd);
    if (!listing) {
      close(listing_fd);
      throw_errno("copy: opendir");
    }
    std::unique_ptr<DIR, int (*)(DIR*)> guard(listing, closedir);
    while (const dirent* e = readdir(listing)) {
      const std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      struct stat st {};
      if (fstatat(from_dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        ++result.skipped;
        continue;
      }
      if (S_ISREG(st.st_mode)) {
        file(from_dir, name.c_str(), to_dir);
      } else if (S_ISLNK(st.st_mode)) {
        link(from_dir, name.c_str(), to_dir, st);
      } else if (S_ISDIR(st.st_mode)) {
        // O_NOFOLLOW: a link swapped in since the fstatat fails here.
        UniqueFd sub(
            openat(from_dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        struct stat now {};
        if (!sub || fstat(sub.get(), &now) != 0 || !S_ISDIR(now.st_mode)) {
          ++result.skipped;
          continue;
        }
        count_entry();
        if (mkdirat(to_dir, name.c_str(), 0700) != 0) throw_errno("copy: mkdir " + name);
        UniqueFd sub_out(
            openat(to_dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!sub_out) throw_errno("copy: open " + name);
        directory(sub.get(), sub_out.get(), depth + 1);
        keep_metadata(sub_out.get(), now);
      } else {
        ++result.skipped;  // devices, FIFOs, sockets
      }
    }
  }
};

}  // namespace

TreeCopyResult copy_tree_beneath(const std::string& from, const std::string& to,
                                 const TreeCopyLimits& limits) {
  UniqueFd in(open(from.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!in) throw_errno("copy: open " + from);
  if (mkdir(to.c_str(), 0700) != 0 && errno != EEXIST) throw_errno("copy: mkdir " + to);
  UniqueFd out(open(to.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!out) throw_errno("copy: open " + to);
  Copy copy{limits, Clock::now() + limits.deadline, {}};
  try {
    copy.directory(in.get(), out.get(), 0);
  } catch (const Error& e) {
    throw e.with_context("copying " + from);
  }
  return copy.result;
}

}  // namespace thaw::sandbox
