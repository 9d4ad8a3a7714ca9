// SPDX-License-Identifier: BSD-2-Clause
#include "process_ident.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "unique_fd.hpp"

namespace tb {

process_ident process_ident::self() noexcept
{
    process_ident p;
    p.pid = ::getpid();
    p.start_time = start_time_of(p.pid);
    return p;
}

uint64_t process_ident::start_time_of(pid_t pid) noexcept
{
    char path[64];
    std::snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    unique_fd fd(::open(path, O_RDONLY | O_CLOEXEC));
    if (!fd)
        return 0;
    char buf[1024];
    ssize_t n = ::read(fd.get(), buf, sizeof(buf) - 1);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    // The command name may contain spaces and ')': fields count from the
    // last ')'. p walks the blanks: the one before field 3 (state) is
    // right after it, starttime is field 22.
    const char *p = std::strrchr(buf, ')');
    if (!p)
        return 0;
    p++;
    for (int field = 3; field < 22; field++) {
        p = std::strchr(p + 1, ' ');
        if (!p)
            return 0;
    }
    return std::strtoull(p + 1, nullptr, 10);
}

bool process_ident::alive(bool check_start) const noexcept
{
    if (pid <= 0)
        return false;
    // EPERM: it exists but belongs to someone else (shm modes prevent
    // that in practice; count it as alive rather than steal its port).
    if (::kill(pid, 0) != 0 && errno != EPERM)
        return false;
    return !check_start || start_time_of(pid) == start_time;
}

}  // namespace tb
