// SPDX-License-Identifier: BSD-2-Clause
//
// A process named so that it cannot be confused with a later one that
// happens to get the same pid: pid plus its start time since boot.
#pragma once

#include <sys/types.h>

#include <cstdint>

namespace tb {

struct process_ident {
    int32_t pid = 0;
    uint64_t start_time = 0;  // clock ticks since boot, /proc/<pid>/stat

    static process_ident self() noexcept;

    // Start time of pid, or 0 if there is no such process.
    static uint64_t start_time_of(pid_t pid) noexcept;

    // kill(pid, 0) says it exists and, when check_start is set, its
    // start time still matches (catches pid reuse, costs a /proc read).
    bool alive(bool check_start = true) const noexcept;
};

}  // namespace tb
