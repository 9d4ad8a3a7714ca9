// SPDX-License-Identifier: BSD-2-Clause
//
// A POSIX shared-memory object, opened and mapped into this process.
// Destruction unmaps and closes it; unlinking is always explicit.
#pragma once

#include <cstddef>
#include <string>

#include "unique_fd.hpp"

namespace tb {

class shm_segment {
public:
    // Where glibc keeps shm_open() objects; listed to find stale ones.
    static constexpr const char *dir = "/dev/shm";

    shm_segment() noexcept = default;
    shm_segment(shm_segment &&o) noexcept;
    shm_segment &operator=(shm_segment &&o) noexcept;
    shm_segment(const shm_segment &) = delete;
    shm_segment &operator=(const shm_segment &) = delete;
    ~shm_segment() { unmap(); }

    // name starts with '/'. flags: 0, O_CREAT or O_CREAT | O_EXCL.
    // Returns 0 or -errno.
    int open(const std::string &name, int flags) noexcept;
    // Grows the object to size bytes; new bytes read as zero.
    int resize(size_t size) noexcept;
    // Maps the object's whole current size (at least min_size bytes, or
    // -EPROTO).
    int map(size_t min_size) noexcept;
    void unmap() noexcept;

    void *addr() const noexcept { return addr_; }
    size_t size() const noexcept { return size_; }
    int fd() const noexcept { return fd_.get(); }
    const std::string &name() const noexcept { return name_; }

    // Advisory whole-object lock (flock): released when the holder dies.
    int lock() noexcept;
    // The same without waiting: whether it is now held.
    bool try_lock() noexcept;
    void unlock() noexcept;

    // Whether the object still has a name (was not unlinked).
    bool is_linked() const noexcept;
    // Whether the name still refers to this very object (it was neither
    // unlinked nor replaced by a new object of the same name).
    bool is_current() const noexcept;
    // Unlinks the name, but only while it refers to this object.
    void unlink_if_current() noexcept;

private:
    unique_fd fd_;
    std::string name_;
    void *addr_ = nullptr;
    size_t size_ = 0;
};

}  // namespace tb
