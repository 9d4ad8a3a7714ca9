// SPDX-License-Identifier: BSD-2-Clause
//
// Tests between real processes: fork a peer that runs a function and talks
// to the test over a socketpair. The peer reports failure through its exit
// status (Boost.Test's state does not survive fork), the test checks it.
#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <type_traits>

#include <boost/test/unit_test.hpp>

#include "tb/device.hpp"

namespace tbtest {

// A message channel to the other process. recv() gives up after a
// deadline so that a dead or stuck peer fails the test instead of hanging.
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
        T v;
        recv_bytes(&v, sizeof(v), timeout_ms);
        return v;
    }
    void send_bytes(const void *p, size_t n);
    void recv_bytes(void *p, size_t n, int timeout_ms);
    int fd() const { return fd_; }

private:
    int fd_;
};

class peer_process {
public:
    // Forks; the child runs fn(channel) and exits with its return value
    // (or 99 on an exception, after printing it).
    explicit peer_process(const std::function<int(channel &)> &fn);
    ~peer_process();
    peer_process(const peer_process &) = delete;
    peer_process &operator=(const peer_process &) = delete;

    channel &chan() { return chan_; }
    // Exit status (0..255), or 128 + signal; waits at most timeout_ms,
    // then kills the child and returns -1.
    int wait(int timeout_ms = 120000);
    void kill9();
    int pid() const { return pid_; }

private:
    int pid_ = -1;
    int fd_ = -1;
    channel chan_;
};

// A fabric name no other test run uses, so runs never meet.
std::string unique_fabric(const char *what);

// The device the two-process tests run on: the software device, or with
// TB_TEST_DEVICE=kernel the kernel device (/dev/tbrdma, e.g. in the VM
// with "tbrdma loop=2"), whose link 0 (loop0) joins every process of the
// host just as the soft link joins the processes of a fabric.
bool kernel_under_test();

// The name of the kernel's link 0: loop0, or the near end of TB_TEST_ENDS
// ("tb0,tb1") when the links are the two ends of a simulated XDomain
// cable in one host, which joins this host's processes the same way.
std::string kernel_link0_name();

// Precondition of test cases that only make sense on the soft link (fault
// injection, fabric naming): skipped, saying why, under the kernel device.
inline boost::test_tools::assertion_result soft_only(boost::unit_test::test_unit_id)
{
    boost::test_tools::assertion_result r(!kernel_under_test());
    r.message() << "needs the software device (its fault knobs or fabrics); "
                   "TB_TEST_DEVICE=kernel";
    return r;
}

// A device with one context: the software device on a fabric, with
// optional cable faults, or the kernel device (kernel_under_test(); then
// fabric and faults do not apply).
struct soft_node {
    std::unique_ptr<tb::device> dev;
    std::unique_ptr<tb::context> ctx;
    tb::context *operator->() const { return ctx.get(); }
};
soft_node open_soft(const std::string &fabric, const tb::soft_link_options &soft = {});

// Posts and polls until the completion arrives or timeout_ms passes.
tbrdma_cqe run_op(tb::context &ctx, const tbrdma_sqe &sqe, int timeout_ms = 60000);
// Polls completions until n arrived or timeout_ms passed.
std::vector<tbrdma_cqe> wait_cq(tb::context &ctx, size_t n, int timeout_ms = 60000);

// What a peer publishes about a buffer it registered.
struct remote_buf {
    uint32_t ctx;
    uint64_t secret;  // the context's
    uint64_t key;
    uint64_t addr;
    uint64_t len;
};

// A peer check: prints and returns false when cond is false.
bool peer_check(bool cond, const char *what, long a = 0, long b = 0);

}  // namespace tbtest
