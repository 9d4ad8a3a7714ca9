// SPDX-License-Identifier: BSD-2-Clause
#include "process.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <thread>

namespace tbtest {

void channel::send_bytes(const void *p, size_t n)
{
    auto *c = static_cast<const char *>(p);
    while (n) {
        ssize_t r = ::send(fd_, c, n, MSG_NOSIGNAL);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            throw std::runtime_error("channel: the peer is gone (send)");
        c += r;
        n -= static_cast<size_t>(r);
    }
}

void channel::recv_bytes(void *p, size_t n, int timeout_ms)
{
    auto *c = static_cast<char *>(p);
    auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (n) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                        end - std::chrono::steady_clock::now()).count();
        if (left <= 0)
            throw std::runtime_error("channel: timed out waiting for the peer");
        if (!readable(static_cast<int>(left)))
            continue;
        ssize_t r = ::recv(fd_, c, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            throw std::runtime_error("channel: the peer closed the channel");
        c += r;
        n -= static_cast<size_t>(r);
    }
}

bool channel::readable(int timeout_ms) const
{
    pollfd pfd{fd_, POLLIN, 0};
    return ::poll(&pfd, 1, timeout_ms) > 0;
}

peer_process::peer_process(const std::function<int(channel &)> &fn)
{
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
        throw std::runtime_error("socketpair failed");
    std::fflush(nullptr);
    pid_ = ::fork();
    if (pid_ < 0)
        throw std::runtime_error("fork failed");
    if (pid_ == 0) {
        ::close(sv[0]);
        channel c(sv[1]);
        int code = 99;
        try {
            code = fn(c);
        } catch (const std::exception &e) {
            std::fprintf(stderr, "peer %d: %s\n", ::getpid(), e.what());
        }
        std::fflush(nullptr);
        _exit(code);  // no atexit handlers: they belong to the test process
    }
    ::close(sv[1]);
    fd_ = sv[0];
    chan_ = channel(fd_);
}

peer_process::~peer_process()
{
    kill9();
    if (fd_ >= 0)
        ::close(fd_);
}

int peer_process::wait(int timeout_ms)
{
    auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (pid_ > 0) {
        int st = 0;
        pid_t r = ::waitpid(pid_, &st, WNOHANG);
        if (r == pid_) {
            pid_ = -1;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        if (std::chrono::steady_clock::now() >= end) {
            std::fprintf(stderr, "peer %d did not exit in time: killed\n", pid_);
            kill9();
            return -1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return -1;
}

void peer_process::stop()
{
    if (pid_ <= 0)
        return;
    ::kill(pid_, SIGSTOP);
    int st = 0;
    // WUNTRACED reports the stop: after this, none of its threads runs.
    while (::waitpid(pid_, &st, WUNTRACED) < 0 && errno == EINTR) {
    }
}

void peer_process::cont()
{
    if (pid_ > 0)
        ::kill(pid_, SIGCONT);
}

void peer_process::kill9()
{
    if (pid_ <= 0)
        return;
    ::kill(pid_, SIGKILL);
    // Reaped, not a zombie: kill(pid, 0) fails, so the soft link sees it gone.
    while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
}

std::string unique_fabric(const char *what)
{
    static std::atomic<int> n{0};
    return std::string("t") + what + "-" + std::to_string(::getpid()) + "-" + std::to_string(n++);
}

bool peer_check(bool cond, const char *what, long a, long b)
{
    if (!cond)
        std::fprintf(stderr, "peer %d: check failed: %s (%ld, %ld)\n", ::getpid(), what, a, b);
    return cond;
}

}  // namespace tbtest
