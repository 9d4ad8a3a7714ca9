// SPDX-License-Identifier: BSD-2-Clause
//
// The device the unit suite's two-process tests run on, and what they
// post and poll through it; the processes themselves are test/common's.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "process.hpp"
#include "tb/device.hpp"

namespace tbtest {

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

}  // namespace tbtest
