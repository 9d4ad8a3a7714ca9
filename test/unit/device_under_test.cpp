// SPDX-License-Identifier: BSD-2-Clause
#include "device_under_test.hpp"

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <stdexcept>

namespace tbtest {

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
    // A full queue (operations posted before, still queued) drains by itself.
    auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    int r;
    while ((r = dev.post(&sqe, 1)) == -EAGAIN && std::chrono::steady_clock::now() < end)
        dev.progress();
    if (r != 1)
        throw std::runtime_error("post failed: " + std::to_string(r));
    auto got = wait_cq(dev, 1, timeout_ms);
    if (got.size() != 1)
        throw std::runtime_error("no completion within the deadline");
    return got[0];
}

}  // namespace tbtest
