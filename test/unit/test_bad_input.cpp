// SPDX-License-Identifier: BSD-2-Clause
//
// Bad input between real processes: wrong and stale keys, bounds off by
// one, missing rights, unknown contexts, and a peer killed with -9 in the
// middle of a transfer. Every case ends in an error completion or a clear
// return code; nothing hangs and the survivor keeps working. Over the soft
// link, or with TB_TEST_DEVICE=kernel over the kernel's loop0, where the
// kernel (not the target process) executes requests and a dead process's
// context answers REM_NO_CTX while the link stays up.
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <sys/wait.h>

#include <chrono>

#include "soft_target.hpp"

using namespace tbtest;

namespace {

struct bad_fixture {
    std::string fabric = unique_fabric("bad");
    target_handle target;
    soft_node dev;
    int ep;
    std::vector<uint8_t> local = std::vector<uint8_t>(1 << 16, 0x3c);
    uint64_t lkey;

    explicit bad_fixture(uint64_t access = TBRDMA_ACCESS_ALL)
        : target(opts(access)), dev(open_soft(fabric)),
          ep(dev->create_ep(0, target.buf.ctx, target.buf.secret)),
          lkey(dev.dev->reg_mr(local.data(), local.size(), TBRDMA_ACCESS_LOCAL))
    {
        BOOST_REQUIRE_GE(ep, 0);
    }
    target_options opts(uint32_t access)
    {
        target_options o;
        o.fabric = fabric;
        o.buf_len = 4096;
        o.access = access;
        return o;
    }
    tbrdma_sqe xfer(uint8_t op, uint64_t off, uint32_t len, uint64_t key)
    {
        tbrdma_sqe s{};
        s.opcode = op;
        s.ep = static_cast<uint32_t>(ep);
        s.local_addr = reinterpret_cast<uintptr_t>(local.data());
        s.lkey = lkey;
        s.length = len;
        s.remote_addr = target.buf.addr + off;
        s.rkey = key;
        return s;
    }
    tbrdma_sqe atomic(uint64_t off, uint64_t key)
    {
        tbrdma_sqe s{};
        s.opcode = TBRDMA_OP_ATOMIC;
        s.ep = static_cast<uint32_t>(ep);
        s.atomic_size = 8;
        s.atomic_op = TBRDMA_ATOMIC_ADD;
        s.operand = 1;
        s.remote_addr = target.buf.addr + off;
        s.rkey = key;
        return s;
    }
    // Runs s on an endpoint of its own: a refusal leaves an endpoint in
    // error, so each probe gets a fresh one.
    uint8_t status(tbrdma_sqe s)
    {
        int e = dev->create_ep(0, target.buf.ctx, target.buf.secret);
        BOOST_REQUIRE_GE(e, 0);
        s.ep = static_cast<uint32_t>(e);
        uint8_t st = run_op(*dev.ctx, s).status;
        BOOST_TEST(dev->destroy_ep(static_cast<uint32_t>(e)) == 0);
        return st;
    }
};

struct readonly_fixture : bad_fixture {
    readonly_fixture() : bad_fixture(TBRDMA_ACCESS_REMOTE_READ) {}
};

}  // namespace

BOOST_AUTO_TEST_SUITE(bad_input)

BOOST_FIXTURE_TEST_CASE(wrong_key, bad_fixture)
{
    uint64_t k = target.buf.key;
    BOOST_TEST(status(xfer(TBRDMA_OP_WRITE, 0, 8, k ^ 0x00100000u)) == TBRDMA_WC_REM_ACCESS_ERR);
    BOOST_TEST(status(xfer(TBRDMA_OP_READ, 0, 8, k + 1)) == TBRDMA_WC_REM_ACCESS_ERR);
    BOOST_TEST(status(atomic(0, 0)) == TBRDMA_WC_REM_ACCESS_ERR);
    BOOST_TEST(target.ask(cmd::load64, 0) == 0u);  // nothing was written
    BOOST_TEST(status(xfer(TBRDMA_OP_WRITE, 0, 8, k)) == TBRDMA_WC_SUCCESS);
    BOOST_TEST(target.finish() == 0);
}

BOOST_FIXTURE_TEST_CASE(stale_key_after_deregistration, bad_fixture)
{
    uint64_t k = target.buf.key;
    BOOST_TEST(status(xfer(TBRDMA_OP_WRITE, 0, 8, k)) == TBRDMA_WC_SUCCESS);
    BOOST_TEST(target.ask(cmd::dereg) == 0u);
    BOOST_TEST(status(xfer(TBRDMA_OP_WRITE, 0, 8, k)) == TBRDMA_WC_REM_ACCESS_ERR);
    BOOST_TEST(status(xfer(TBRDMA_OP_READ, 0, 8, k)) == TBRDMA_WC_REM_ACCESS_ERR);
    BOOST_TEST(status(atomic(0, k)) == TBRDMA_WC_REM_ACCESS_ERR);
    BOOST_TEST(target.finish() == 0);
}

BOOST_FIXTURE_TEST_CASE(out_of_bounds_by_one_byte, bad_fixture)
{
    uint64_t k = target.buf.key;
    BOOST_TEST(status(xfer(TBRDMA_OP_WRITE, 4096 - 32, 32, k)) == TBRDMA_WC_SUCCESS);
    BOOST_TEST(status(xfer(TBRDMA_OP_WRITE, 4096 - 32, 33, k)) == TBRDMA_WC_REM_ACCESS_ERR);
    BOOST_TEST(status(xfer(TBRDMA_OP_READ, 4096 - 32, 33, k)) == TBRDMA_WC_REM_ACCESS_ERR);
    BOOST_TEST(status(xfer(TBRDMA_OP_READ, 4096, 1, k)) == TBRDMA_WC_REM_ACCESS_ERR);
    BOOST_TEST(status(atomic(4096, k)) == TBRDMA_WC_REM_ACCESS_ERR);
    BOOST_TEST(status(xfer(TBRDMA_OP_WRITE, static_cast<uint64_t>(-1), 8, k)) ==
               TBRDMA_WC_REM_ACCESS_ERR);
    BOOST_TEST(target.finish() == 0);
}

BOOST_FIXTURE_TEST_CASE(missing_rights, readonly_fixture)
{
    uint64_t k = target.buf.key;
    BOOST_TEST(status(xfer(TBRDMA_OP_READ, 0, 64, k)) == TBRDMA_WC_SUCCESS);
    BOOST_TEST(status(xfer(TBRDMA_OP_WRITE, 0, 64, k)) == TBRDMA_WC_REM_ACCESS_ERR);
    BOOST_TEST(status(atomic(0, k)) == TBRDMA_WC_REM_ACCESS_ERR);
    BOOST_TEST(target.ask(cmd::load64, 0) == 0u);
    BOOST_TEST(target.finish() == 0);
}

BOOST_AUTO_TEST_CASE(unknown_context)
{
    auto dev = open_soft(unique_fabric("noctx"));
    int ep = dev->create_ep(0, 0x7654320u, 0x1234);
    if (kernel_under_test()) {
        // The kernel cannot know which ids the far end holds: the
        // endpoint is made, and its first request comes back refused.
        BOOST_REQUIRE_GE(ep, 0);
        tbrdma_sqe w{};
        w.opcode = TBRDMA_OP_WRITE;
        w.flags = TBRDMA_SQE_INLINE;
        w.ep = static_cast<uint32_t>(ep);
        w.length = 8;
        w.remote_addr = 4096;
        w.rkey = 1;
        BOOST_TEST(run_op(*dev.ctx, w).status == TBRDMA_WC_REM_ACCESS_ERR);
    } else {
        // No process holds this id: refused at once, with a clear code.
        BOOST_TEST(ep < 0);
        BOOST_TEST((ep == -ECONNREFUSED || ep == -ENOENT || ep == -EINVAL));
    }
    BOOST_TEST(dev->create_ep(1000, dev->id(), dev->secret()) < 0);  // no such link
    tbrdma_sqe s{};
    s.opcode = TBRDMA_OP_FLUSH;
    s.ep = 12345;
    BOOST_TEST(dev->post(&s, 1) == -ENOENT);
}

BOOST_FIXTURE_TEST_CASE(peer_killed_mid_transfer, bad_fixture)
{
    // Transfers in flight, then the target dies: every operation
    // completes with an error, promptly, and new posts are refused. The
    // target is stopped first (all its threads), so none can finish early.
    BOOST_TEST(status(xfer(TBRDMA_OP_WRITE, 0, 8, target.buf.key)) == TBRDMA_WC_SUCCESS);
    ::kill(target.proc.pid(), SIGSTOP);
    {
        // SIGSTOP is asynchronous: wait until the target really stopped.
        int st = 0;
        BOOST_REQUIRE(::waitpid(target.proc.pid(), &st, WUNTRACED) == target.proc.pid());
        BOOST_REQUIRE(WIFSTOPPED(st));
    }
    std::vector<uint8_t> big(4 << 20, 0x77);
    uint64_t bk = dev.dev->reg_mr(big.data(), big.size(), TBRDMA_ACCESS_LOCAL);
    int posted = 0;
    for (int i = 0; i < 32; i++) {
        tbrdma_sqe s = xfer(i % 2 ? TBRDMA_OP_READ : TBRDMA_OP_WRITE, 0, 4096, target.buf.key);
        s.local_addr = reinterpret_cast<uintptr_t>(big.data()) + static_cast<uint64_t>(i) * 4096;
        s.lkey = bk;
        s.wr_id = static_cast<uint64_t>(i);
        BOOST_REQUIRE_EQUAL(dev->post(&s, 1), 1);
        posted++;
    }
    if (kernel_under_test()) {
        // The kernel executes them while the target is stopped: true
        // one-sided. Once it is killed, its context is gone (the file is
        // released before the process is reaped): requests to it come
        // back refused, and the link stays up.
        auto got = wait_cq(*dev.ctx, static_cast<size_t>(posted), 30000);
        BOOST_TEST(got.size() == static_cast<size_t>(posted));
        for (auto &c : got)
            BOOST_TEST(c.status == TBRDMA_WC_SUCCESS);
        target.proc.kill9();
        BOOST_TEST(status(xfer(TBRDMA_OP_WRITE, 0, 8, target.buf.key)) == TBRDMA_WC_REM_ACCESS_ERR);
        BOOST_TEST(status(xfer(TBRDMA_OP_READ, 0, 8, target.buf.key)) == TBRDMA_WC_REM_ACCESS_ERR);
        BOOST_TEST(status(atomic(0, target.buf.key)) == TBRDMA_WC_REM_ACCESS_ERR);
        uint32_t outstanding = 1;
        BOOST_TEST(dev->ep_state(static_cast<uint32_t>(ep), &outstanding) == TBRDMA_LINK_UP);
        BOOST_TEST(outstanding == 0u);
        return;
    }
    for (int i = 0; i < 200; i++)
        dev->progress();
    BOOST_REQUIRE(wait_cq(*dev.ctx, 1, 10).empty());
    auto t0 = std::chrono::steady_clock::now();
    target.proc.kill9();
    auto got = wait_cq(*dev.ctx, static_cast<size_t>(posted), 30000);
    auto took = std::chrono::steady_clock::now() - t0;
    BOOST_TEST(got.size() == static_cast<size_t>(posted));
    for (auto &c : got)
        BOOST_TEST(c.status == TBRDMA_WC_LINK_DOWN);
    BOOST_TEST_MESSAGE("all " << got.size() << " operations failed "
                       << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                       << " ms after the kill");
    tbrdma_sqe s = xfer(TBRDMA_OP_WRITE, 0, 8, target.buf.key);
    // Accepted, and it fails at once rather than hang.
    BOOST_REQUIRE_EQUAL(dev->post(&s, 1), 1);
    auto c = wait_cq(*dev.ctx, 1, 30000);
    BOOST_REQUIRE_EQUAL(c.size(), 1u);
    BOOST_TEST(c[0].status == TBRDMA_WC_LINK_DOWN);
    uint32_t outstanding = 1;
    BOOST_TEST(dev->ep_state(static_cast<uint32_t>(ep), &outstanding) == TBRDMA_LINK_DOWN);
    BOOST_TEST(outstanding == 0u);
}

BOOST_AUTO_TEST_CASE(killed_peer_mid_16MiB_write_fails_every_op)
{
    // A 16 MiB write cannot finish before the kill lands, so this one is
    // sure to see the failure path. (The kernel's loop cable has no rate
    // knob: there the write may finish first, else it fails REM_NO_CTX.)
    std::string fabric = unique_fabric("kill16");
    target_options o;
    o.fabric = fabric;
    o.buf_len = 16u << 20;
    target_handle target(o);
    auto dev = open_soft(fabric, [] {
        tb::soft_link_options s;
        s.rate_mbps = 1000;  // 16 MiB takes ~130 ms on this cable
        return s;
    }());
    int ep = dev->create_ep(0, target.buf.ctx, target.buf.secret);
    BOOST_REQUIRE_GE(ep, 0);
    std::vector<uint8_t> big(16u << 20, 1);
    uint64_t bk = dev.dev->reg_mr(big.data(), big.size(), TBRDMA_ACCESS_LOCAL);
    tbrdma_sqe s{};
    s.opcode = TBRDMA_OP_WRITE;
    s.ep = static_cast<uint32_t>(ep);
    s.local_addr = reinterpret_cast<uintptr_t>(big.data());
    s.lkey = bk;
    s.length = static_cast<uint32_t>(big.size());
    s.remote_addr = target.buf.addr;
    s.rkey = target.buf.key;
    BOOST_REQUIRE_EQUAL(dev->post(&s, 1), 1);
    s.opcode = TBRDMA_OP_FLUSH;
    BOOST_REQUIRE_EQUAL(dev->post(&s, 1), 1);
    for (int i = 0; i < 100; i++)
        dev->progress();
    target.proc.kill9();
    auto got = wait_cq(*dev.ctx, 2, 30000);
    BOOST_REQUIRE_EQUAL(got.size(), 2u);
    if (kernel_under_test()) {
        BOOST_TEST_MESSAGE("16 MiB write: status " << int(got[0].status) << ", flush: status "
                           << int(got[1].status));
        BOOST_TEST((got[0].status == TBRDMA_WC_SUCCESS ||
                    got[0].status == TBRDMA_WC_REM_ACCESS_ERR));
        BOOST_TEST(got[1].opcode == TBRDMA_OP_FLUSH);
        return;
    }
    BOOST_TEST(got[0].status == TBRDMA_WC_LINK_DOWN);
    BOOST_TEST(got[1].status == TBRDMA_WC_LINK_DOWN);
}

BOOST_AUTO_TEST_SUITE_END()
