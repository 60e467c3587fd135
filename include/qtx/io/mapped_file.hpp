#pragma once
/// @file
/// mapped_file: a whole file as read-only bytes. POSIX systems map it (the OS pages weights in on
/// first touch and shares them between processes); elsewhere it is read into memory.
/// A mapped file that another process truncates while it is mapped raises SIGBUS on access: qtx
/// cannot guard against that, so do not rewrite model files in place while a program uses them.
#include "../config.hpp"
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"

/// @def QTX_IO_HAS_MMAP
/// 1 where POSIX mmap is available (files are mapped), 0 elsewhere (files are read into memory).
#if __has_include(<sys/mman.h>) && __has_include(<fcntl.h>) && __has_include(<unistd.h>)
#define QTX_IO_HAS_MMAP 1
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#else
#define QTX_IO_HAS_MMAP 0
#endif

namespace qtx::QTX_ABI::io {

/// A whole file as read-only bytes: memory-mapped where the platform has mmap (weights are not
/// copied), read into memory otherwise. Move-only.
class mapped_file {
 public:
  mapped_file() = default;
  /// Maps `path`. @throws qtx::error naming the path when it cannot be opened or mapped.
  explicit mapped_file(const std::filesystem::path& path) { open(path); }
  /// Takes other's mapping; other is left empty.
  mapped_file(mapped_file&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)),
        size_(std::exchange(other.size_, 0)),
        copy_(std::move(other.copy_)) {}
  /// Unmaps this file and takes other's mapping; other is left empty.
  mapped_file& operator=(mapped_file&& other) noexcept {
    if (this != &other) {
      unmap();
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
      copy_ = std::move(other.copy_);
    }
    return *this;
  }
  mapped_file(const mapped_file&) = delete;
  mapped_file& operator=(const mapped_file&) = delete;
  ~mapped_file() { unmap(); }

  /// The file's bytes, valid while this object lives.
  std::span<const std::byte> bytes() const noexcept {
    return copy_.empty() ? std::span<const std::byte>(data_, size_) : std::span(copy_);
  }

 private:
  [[noreturn]] static void fail(const std::filesystem::path& path, const char* what, int code) {
    qtx::throw_error("mapped_file: cannot ", what, " '", path.string(), "': ",
                     std::strerror(code));
  }

#if QTX_IO_HAS_MMAP
  void open(const std::filesystem::path& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail(path, "open", errno);
    struct stat status {};
    if (::fstat(fd, &status) != 0) {
      const int code = errno;
      ::close(fd);
      fail(path, "stat", code);
    }
    if (!S_ISREG(status.st_mode)) {
      ::close(fd);
      qtx::throw_error("mapped_file: '", path.string(), "' is not a regular file");
    }
    const auto size = static_cast<std::size_t>(status.st_size);
    if (size > 0) {  // mmap rejects a zero length; an empty file is an empty span
      void* address = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
      if (address == MAP_FAILED) {
        const int code = errno;
        ::close(fd);
        fail(path, "map", code);
      }
      data_ = static_cast<const std::byte*>(address);
      size_ = size;
    }
    ::close(fd);  // the mapping keeps the file alive
  }
  void unmap() noexcept {
    if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
    data_ = nullptr;
    size_ = 0;
  }
#else
  void open(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    if (!in) fail(path, "open", errno);
    const auto size = static_cast<std::size_t>(in.tellg());
    copy_.resize(size);
    in.seekg(0);
    if (!in.read(reinterpret_cast<char*>(copy_.data()), static_cast<std::streamsize>(size)))
      fail(path, "read", errno);
  }
  void unmap() noexcept { copy_.clear(); }
#endif

  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  std::vector<std::byte> copy_;  ///< only without mmap
};

}  // namespace qtx::io
