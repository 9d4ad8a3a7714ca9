// SPDX-License-Identifier: BSD-2-Clause
#include "soft_target.hpp"

#include <poll.h>

#include <chrono>
#include <cstdio>
#include <thread>

namespace tbtest {

namespace {

// Nothing received yet. The software device runs its engine; with the
// kernel device there is nothing to run, so sleep on the context's event
// fd until the kernel fills the receive ring (armed).
void wait_for_message(tb::context &dev)
{
    if (!kernel_under_test()) {
        dev.progress();
        return;
    }
    if (dev.arm() != 0)
        return;
    pollfd pfd{dev.event_fd(), POLLIN, 0};
    ::poll(&pfd, 1, 1000);
}

// Receives n messages, in order, each with its pattern; 0 if all good.
uint64_t receive_checked(tb::context &dev, uint64_t n)
{
    uint64_t got = 0, bad = 0;
    while (got < n) {
        const tbrdma_rqe *r = dev.recv_peek();
        if (!r) {
            wait_for_message(dev);
            continue;
        }
        if (r->imm != got || r->am_id != (got % 64) ||
            mismatches(r + 1, r->length, r->imm, 0, "target: message") != 0) {
            if (bad++ < 5)
                std::fprintf(stderr, "target: message %lu wrong (imm %lu, len %u)\n",
                             static_cast<unsigned long>(got),
                             static_cast<unsigned long>(r->imm), r->length);
        }
        dev.recv_release();
        got++;
    }
    return bad;
}

}  // namespace

int run_target(channel &c, const target_options &o)
{
    auto node = open_soft(o.fabric, o.soft);
    auto &dev = node.ctx;
    std::vector<uint8_t> mem(o.buf_len + 64, 0);
    uint8_t *base = mem.data() + (8 - reinterpret_cast<uintptr_t>(mem.data()) % 8);
    uint64_t key = node.dev->reg_mr(base, o.buf_len, o.access);
    c.send(remote_buf{dev->id(), dev->secret(), key, reinterpret_cast<uintptr_t>(base), o.buf_len});
    // The software device's engine runs here, between commands; the
    // kernel's runs by itself, so this process just sleeps: a WRITE, READ
    // or ATOMIC on its memory needs nothing from it.
    const bool kernel = kernel_under_test();
    for (;;) {
        if (!kernel)
            for (int i = 0; i < 64; i++)
                dev->progress();
        if (!c.readable(kernel ? 1000 : 0))
            continue;
        auto m = c.recv<command>();
        uint64_t reply = 0;
        switch (m.op) {
        case cmd::quit:
            return 0;
        case cmd::hash:
            reply = fnv1a(base + m.a, m.b);
            break;
        case cmd::load64:
            std::memcpy(&reply, base + m.a, 8);
            break;
        case cmd::dereg:
            reply = static_cast<uint64_t>(node.dev->dereg_mr(key));
            break;
        case cmd::recv_check:
            reply = receive_checked(*dev, m.a);
            break;
        case cmd::stall:
            c.send(reply);
            std::this_thread::sleep_for(std::chrono::milliseconds(m.a));
            continue;
        }
        c.send(reply);
    }
}

target_handle::target_handle(const target_options &o)
    : proc([o](channel &c) { return run_target(c, o); })
{
    buf = proc.chan().recv<remote_buf>();
}

uint64_t target_handle::ask(cmd op, uint64_t a, uint64_t b)
{
    proc.chan().send(command{op, 0, a, b});
    return proc.chan().recv<uint64_t>(120000);
}

int target_handle::finish()
{
    proc.chan().send(command{cmd::quit, 0, 0, 0});
    return proc.wait();
}

}  // namespace tbtest
