// SPDX-License-Identifier: BSD-2-Clause
//
// Tests between real processes, shared by the unit and UCT suites: fork a
// peer that runs a function and talks to the test over a socketpair. The
// peer's checks cannot reach Boost.Test (its state does not survive fork),
// so the peer prints what failed and reports through its exit status.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <type_traits>

namespace tbtest {

// Messages to the other process. recv() gives up after a deadline so that
// a dead or stuck peer fails the test instead of hanging it.
class channel {
public:
    explicit channel(int fd = -1) : fd_(fd) {}
    template <class T> void send(const T &v)
    {
        static_assert(std::is_trivially_copyable_v<T>);
        send_bytes(&v, sizeof(v));
    }
    template <class T> T recv(int timeout_ms = 60000)
    {
        static_assert(std::is_trivially_copyable_v<T>);
        T v;
        recv_bytes(&v, sizeof(v), timeout_ms);
        return v;
    }
    void send_bytes(const void *p, size_t n);
    void recv_bytes(void *p, size_t n, int timeout_ms);
    // Something to read (or the peer closed) within timeout_ms.
    bool readable(int timeout_ms = 0) const;
    int fd() const { return fd_; }

private:
    int fd_;
};

class peer_process {
public:
    // Forks; the child runs fn(channel) and _exit()s with its result (99
    // after an exception, which it prints).
    explicit peer_process(const std::function<int(channel &)> &fn);
    ~peer_process();  // kills the child if it is still there
    peer_process(const peer_process &) = delete;
    peer_process &operator=(const peer_process &) = delete;

    channel &chan() { return chan_; }
    // Exit status, 128 + signal, or -1 if it did not end in timeout_ms
    // (then it is killed).
    int wait(int timeout_ms = 120000);
    void stop();   // SIGSTOP, returns once it is stopped
    void cont();   // SIGCONT
    void kill9();  // SIGKILL and reap: the pid is gone afterwards
    int pid() const { return pid_; }

private:
    int pid_ = -1;
    int fd_ = -1;
    channel chan_;
};

// Declared after this process's device, kills the peer before the device
// closes when a test ends early: the close then sees the peer gone and
// removes the fabric's shared memory (a live peer would keep it).
struct kill_first {
    peer_process &p;
    ~kill_first() { p.kill9(); }
};

// A software fabric name no other test or run uses, so runs never meet.
std::string unique_fabric(const char *what);

// A check in the peer: prints and returns false when cond is false.
bool peer_check(bool cond, const char *what, long a = 0, long b = 0);

}  // namespace tbtest
