// SPDX-License-Identifier: BSD-2-Clause
#include "shm_segment.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace tb {

shm_segment::shm_segment(shm_segment &&o) noexcept
    : fd_(std::move(o.fd_)), name_(std::move(o.name_)),
      addr_(std::exchange(o.addr_, nullptr)), size_(std::exchange(o.size_, 0))
{
}

shm_segment &shm_segment::operator=(shm_segment &&o) noexcept
{
    if (this != &o) {
        unmap();
        fd_ = std::move(o.fd_);
        name_ = std::move(o.name_);
        addr_ = std::exchange(o.addr_, nullptr);
        size_ = std::exchange(o.size_, 0);
    }
    return *this;
}

int shm_segment::open(const std::string &name, int flags) noexcept
{
    unmap();
    fd_.reset();
    try {
        name_ = name;
    } catch (...) {
        return -ENOMEM;
    }
    // 0600: only processes of the same user share a fabric.
    int fd = ::shm_open(name.c_str(), O_RDWR | O_CLOEXEC | flags, 0600);
    if (fd < 0)
        return -errno;
    unique_fd opened(fd);
    // Another user may have made an object of this name first (every name
    // is predictable): its owner would read and forge our frames.
    struct stat st;
    if (::fstat(fd, &st) != 0)
        return -errno;
    if (st.st_uid != ::geteuid() || (st.st_mode & 077))
        return -EACCES;
    fd_ = std::move(opened);
    return 0;
}

int shm_segment::resize(size_t size) noexcept
{
    struct stat st;
    if (::fstat(fd_.get(), &st) != 0)
        return -errno;
    if (static_cast<size_t>(st.st_size) >= size)
        return 0;
    return ::ftruncate(fd_.get(), static_cast<off_t>(size)) == 0 ? 0 : -errno;
}

int shm_segment::map(size_t min_size) noexcept
{
    struct stat st;
    if (::fstat(fd_.get(), &st) != 0)
        return -errno;
    size_t size = static_cast<size_t>(st.st_size);
    if (size < min_size || size == 0)
        return -EPROTO;
    void *p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_.get(), 0);
    if (p == MAP_FAILED)
        return -errno;
    unmap();
    addr_ = p;
    size_ = size;
    return 0;
}

void shm_segment::unmap() noexcept
{
    if (addr_)
        ::munmap(addr_, size_);
    addr_ = nullptr;
    size_ = 0;
}

int shm_segment::lock() noexcept
{
    while (::flock(fd_.get(), LOCK_EX) != 0) {
        if (errno != EINTR)
            return -errno;
    }
    return 0;
}

bool shm_segment::try_lock() noexcept
{
    while (::flock(fd_.get(), LOCK_EX | LOCK_NB) != 0) {
        if (errno != EINTR)
            return false;
    }
    return true;
}

void shm_segment::unlock() noexcept
{
    ::flock(fd_.get(), LOCK_UN);
}

bool shm_segment::is_linked() const noexcept
{
    struct stat st;
    return fd_ && ::fstat(fd_.get(), &st) == 0 && st.st_nlink > 0;
}

bool shm_segment::is_current() const noexcept
{
    struct stat mine, named;
    if (!fd_ || ::fstat(fd_.get(), &mine) != 0 || mine.st_nlink == 0)
        return false;
    std::string path;
    try {
        path = std::string(dir) + name_;
    } catch (...) {
        return false;
    }
    if (::stat(path.c_str(), &named) != 0)
        return false;
    return named.st_ino == mine.st_ino && named.st_dev == mine.st_dev;
}

void shm_segment::unlink_if_current() noexcept
{
    if (is_current())
        ::shm_unlink(name_.c_str());
}

}  // namespace tb
