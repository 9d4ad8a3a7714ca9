// SPDX-License-Identifier: BSD-2-Clause
#include "peer_process.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
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
            throw std::runtime_error("channel: peer gone while sending");
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
        pollfd pfd{fd_, POLLIN, 0};
        if (::poll(&pfd, 1, static_cast<int>(left)) <= 0)
            continue;
        ssize_t r = ::recv(fd_, c, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            throw std::runtime_error("channel: peer closed the channel");
        c += r;
        n -= static_cast<size_t>(r);
    }
}

peer_process::peer_process(const std::function<int(channel &)> &fn)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
        throw std::runtime_error("socketpair failed");
    std::fflush(nullptr);
    pid_ = fork();
    if (pid_ < 0)
        throw std::runtime_error("fork failed");
    if (pid_ == 0) {
        ::close(sv[0]);
        channel c(sv[1]);
        int code = 99;
        try {
            code = fn(c);
        } catch (const std::exception &e) {
            std::fprintf(stderr, "peer: %s\n", e.what());
        }
        std::fflush(nullptr);
        _exit(code);
    }
    ::close(sv[1]);
    fd_ = sv[0];
    chan_ = channel(fd_);
}

peer_process::~peer_process()
{
    if (pid_ > 0) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0)
        ::close(fd_);
}

int peer_process::wait(int timeout_ms)
{
    for (int waited = 0; pid_ > 0; waited += 5) {
        int st = 0;
        pid_t r = ::waitpid(pid_, &st, WNOHANG);
        if (r == pid_) {
            pid_ = -1;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        if (waited >= timeout_ms) {
            kill9();
            return -1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return -1;
}

void peer_process::kill9()
{
    if (pid_ > 0) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        pid_ = -1;
    }
}

std::string unique_fabric(const char *what)
{
    static std::atomic<int> n{0};
    return std::string("t") + what + "-" + std::to_string(::getpid()) + "-" +
           std::to_string(n++);
}

bool kernel_under_test()
{
    const char *v = std::getenv("TB_TEST_DEVICE");
    return v && std::string(v) == "kernel";
}

std::string kernel_link0_name()
{
    const char *v = std::getenv("TB_TEST_ENDS");
    if (!v || !*v)
        return "loop0";
    std::string ends(v);
    return ends.substr(0, ends.find(','));
}

soft_node open_soft(const std::string &fabric, const tb::soft_link_options &soft)
{
    tb::open_options o;
    o.kind = kernel_under_test() ? "kernel" : "soft";
    o.fabric = fabric;
    o.soft = soft;
    soft_node n;
    n.dev = tb::device::open(o);
    n.ctx = n.dev->create_context();
    return n;
}

std::vector<tbrdma_cqe> wait_cq(tb::context &dev, size_t n, int timeout_ms)
{
    std::vector<tbrdma_cqe> got;
    auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    tbrdma_cqe buf[64];
    while (got.size() < n && std::chrono::steady_clock::now() < end) {
        unsigned k = dev.poll_cq(buf, 64);
        got.insert(got.end(), buf, buf + k);
    }
    return got;
}

tbrdma_cqe run_op(tb::context &dev, const tbrdma_sqe &sqe, int timeout_ms)
{
    int r = dev.post(&sqe, 1);
    if (r != 1)
        throw std::runtime_error("post failed: " + std::to_string(r));
    auto got = wait_cq(dev, 1, timeout_ms);
    if (got.size() != 1)
        throw std::runtime_error("no completion within the deadline");
    return got[0];
}

bool peer_check(bool cond, const char *what, long a, long b)
{
    if (!cond)
        std::fprintf(stderr, "peer check failed: %s (%ld, %ld)\n", what, a, b);
    return cond;
}

}  // namespace tbtest
