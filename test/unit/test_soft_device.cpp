// SPDX-License-Identifier: BSD-2-Clause
//
// The device library between two real processes: put and get from 1 B
// to 16 MiB at unaligned addresses and lengths, every atomic at both
// widths, SEND order and payload, FLUSH semantics, batches, events. The
// target checks its own memory, so data really crossed processes. Over
// the soft link, or with TB_TEST_DEVICE=kernel over the kernel's loop0.
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <sys/wait.h>

#include <poll.h>

#include <algorithm>

#include "soft_target.hpp"

using namespace tbtest;

namespace {

struct initiator {
    std::string fabric_;  // first: make_opts() sets it while target is built
    soft_node dev;
    target_handle target;
    int ep = -1;

    explicit initiator(const char *name, size_t buf_len = 1 << 20,
                       uint32_t access = TBRDMA_ACCESS_ALL, tb::soft_link_options soft = {})
        : target(make_opts(name, buf_len, access, soft))
    {
        dev = open_soft(fabric_, soft);
        ep = dev->create_ep(0, target.buf.ctx, target.buf.secret);
        BOOST_REQUIRE_GE(ep, 0);
    }
    target_options make_opts(const char *name, size_t buf_len, uint32_t access,
                             const tb::soft_link_options &soft)
    {
        fabric_ = unique_fabric(name);
        target_options o;
        o.fabric = fabric_;
        o.buf_len = buf_len;
        o.access = access;
        o.soft = soft;
        return o;
    }
    tbrdma_sqe op(uint8_t opcode, uint64_t id = 0)
    {
        tbrdma_sqe s{};
        s.opcode = opcode;
        s.ep = static_cast<uint32_t>(ep);
        s.wr_id = id;
        return s;
    }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(soft_device)

BOOST_AUTO_TEST_CASE(put_get_1B_to_16MiB)
{
    const size_t max = 16u << 20;
    initiator in("putget", max + 64);
    std::vector<uint8_t> src(max + 16), back(max + 16);
    uint64_t sk = in.dev.dev->reg_mr(src.data(), src.size(), TBRDMA_ACCESS_LOCAL);
    uint64_t bk = in.dev.dev->reg_mr(back.data(), back.size(), TBRDMA_ACCESS_LOCAL);
    const size_t inl = TBRDMA_INLINE_MAX, send = TBRDMA_SEND_MAX;
    std::vector<size_t> sizes = {1, 2, 3, 7, 8, 9, 63, 64, 65, inl - 1, inl, inl + 1, 1000,
                                 send - 1, send, send + 1, 4096, 2 * send, 2 * send + 1,
                                 65535, 65536, 65537,
                                 (1u << 20) - 1, (1u << 20) + 5, 3u << 20, max};
    for (size_t len : sizes) {
        size_t soff = len % 13, roff = 3 + len % 5, boff = 1 + len % 7;
        fill(src.data() + soff, len, len);
        auto w = in.op(TBRDMA_OP_WRITE, len);
        w.local_addr = reinterpret_cast<uintptr_t>(src.data() + soff);
        w.lkey = sk;
        w.length = static_cast<uint32_t>(len);
        w.remote_addr = in.target.buf.addr + roff;
        w.rkey = in.target.buf.key;
        auto c = run_op(*in.dev.ctx, w);
        BOOST_TEST_REQUIRE(c.status == TBRDMA_WC_SUCCESS);
        BOOST_TEST(c.wr_id == len);
        // The target hashes its own memory: the data is really there.
        BOOST_TEST(in.target.ask(cmd::hash, roff, len) == fnv1a(src.data() + soff, len));

        std::memset(back.data(), 0, len + boff + 1);
        auto r = in.op(TBRDMA_OP_READ, len + 1);
        r.local_addr = reinterpret_cast<uintptr_t>(back.data() + boff);
        r.lkey = bk;
        r.length = static_cast<uint32_t>(len);
        r.remote_addr = in.target.buf.addr + roff;
        r.rkey = in.target.buf.key;
        c = run_op(*in.dev.ctx, r);
        BOOST_TEST_REQUIRE(c.status == TBRDMA_WC_SUCCESS);
        BOOST_TEST(c.byte_len == len);
        BOOST_TEST(std::memcmp(back.data() + boff, src.data() + soff, len) == 0);
        BOOST_TEST(back[boff - 1] == 0);
        BOOST_TEST(back[boff + len] == 0);
    }
    // Inline puts (put_short): the data rides in the submission entry.
    for (uint32_t len : {1u, 8u, 100u, TBRDMA_INLINE_MAX}) {
        auto w = in.op(TBRDMA_OP_WRITE, 7);
        w.flags = TBRDMA_SQE_INLINE;
        w.length = len;
        fill(w.inline_data, len, 1000 + len);
        w.remote_addr = in.target.buf.addr + 11;
        w.rkey = in.target.buf.key;
        BOOST_TEST(run_op(*in.dev.ctx, w).status == TBRDMA_WC_SUCCESS);
        BOOST_TEST(in.target.ask(cmd::hash, 11, len) == fnv1a(w.inline_data, len));
    }
    BOOST_TEST(in.target.finish() == 0);
}

BOOST_AUTO_TEST_CASE(atomics_every_op_both_widths)
{
    initiator in("atomic");
    uint64_t model = 0x0123456789abcdefull;
    auto w = in.op(TBRDMA_OP_WRITE);
    w.flags = TBRDMA_SQE_INLINE;
    w.length = 8;
    std::memcpy(w.inline_data, &model, 8);
    w.remote_addr = in.target.buf.addr + 64;
    w.rkey = in.target.buf.key;
    BOOST_TEST_REQUIRE(run_op(*in.dev.ctx, w).status == TBRDMA_WC_SUCCESS);
    uint64_t x = 42;
    for (int round = 0; round < 3; round++) {
        for (uint8_t size : {uint8_t(4), uint8_t(8)}) {
            for (uint8_t aop = 0; aop <= TBRDMA_ATOMIC_MAX; aop++) {
                x = x * 6364136223846793005ull + 1442695040888963407ull;
                uint64_t mask = size == 4 ? 0xffffffffull : ~0ull;
                uint64_t cur = model & mask;  // the low word on little-endian
                uint64_t compare = (x & 1) ? cur : (x >> 7) & mask;
                uint64_t operand = (x >> 3) & mask;
                auto a = in.op(TBRDMA_OP_ATOMIC, aop);
                a.atomic_op = aop;
                a.atomic_size = size;
                a.operand = operand;
                a.compare = compare;
                a.remote_addr = in.target.buf.addr + 64;
                a.rkey = in.target.buf.key;
                auto c = run_op(*in.dev.ctx, a);
                BOOST_TEST_REQUIRE(c.status == TBRDMA_WC_SUCCESS);
                BOOST_TEST(c.result == cur);
                uint64_t next = cur;
                switch (aop) {
                case TBRDMA_ATOMIC_ADD: next = cur + operand; break;
                case TBRDMA_ATOMIC_AND: next = cur & operand; break;
                case TBRDMA_ATOMIC_OR: next = cur | operand; break;
                case TBRDMA_ATOMIC_XOR: next = cur ^ operand; break;
                case TBRDMA_ATOMIC_SWAP: next = operand; break;
                default: next = cur == compare ? operand : cur; break;
                }
                model = (model & ~mask) | (next & mask);
                BOOST_TEST(in.target.ask(cmd::load64, 64) == model);
            }
        }
    }
    BOOST_TEST(in.target.finish() == 0);
}

BOOST_AUTO_TEST_CASE(send_order_and_payload)
{
    initiator in("send");
    const uint64_t n = 3000;
    // The target starts receiving and checking while we send.
    in.target.proc.chan().send(command{cmd::recv_check, 0, n, 0});
    std::vector<uint8_t> payload(TBRDMA_SEND_MAX);
    uint64_t pk = in.dev.dev->reg_mr(payload.data(), payload.size(), TBRDMA_ACCESS_LOCAL);
    std::vector<tbrdma_cqe> done;
    tbrdma_cqe cq[64];
    for (uint64_t seq = 0; seq < n;) {
        auto s = in.op(TBRDMA_OP_SEND, seq);
        uint32_t len = static_cast<uint32_t>((seq * 131) % (TBRDMA_SEND_MAX + 1));
        s.am_id = static_cast<uint32_t>(seq % 64);
        s.imm = seq;
        s.length = len;
        if (len <= TBRDMA_INLINE_MAX && seq % 2) {
            s.flags = TBRDMA_SQE_INLINE;
            fill(s.inline_data, len, seq);
        } else {
            fill(payload.data(), len, seq);
            s.local_addr = reinterpret_cast<uintptr_t>(payload.data());
            s.lkey = pk;
        }
        // The payload buffer is reused, so wait for each bcopy-style send
        // to complete (in order: after every send before it).
        if (in.dev->post(&s, 1) == 1) {
            seq++;
            if (!(s.flags & TBRDMA_SQE_INLINE)) {
                auto c = wait_cq(*in.dev.ctx, seq - done.size());
                done.insert(done.end(), c.begin(), c.end());
                continue;
            }
        }
        unsigned k = in.dev->poll_cq(cq, 64);
        done.insert(done.end(), cq, cq + k);
    }
    auto rest = wait_cq(*in.dev.ctx, n - done.size());
    done.insert(done.end(), rest.begin(), rest.end());
    BOOST_TEST(done.size() == n);
    for (size_t i = 0; i < done.size(); i++) {
        BOOST_TEST_REQUIRE(done[i].status == TBRDMA_WC_SUCCESS);
        BOOST_TEST_REQUIRE(done[i].wr_id == i);  // completions in order
    }
    BOOST_TEST(in.target.proc.chan().recv<uint64_t>(120000) == 0u);  // no bad message
    BOOST_TEST(in.target.finish() == 0);
}

BOOST_AUTO_TEST_CASE(flush_means_placed)
{
    initiator in("flush", 4u << 20);
    std::vector<uint8_t> src(4u << 20);
    fill(src.data(), src.size(), 77);
    uint64_t sk = in.dev.dev->reg_mr(src.data(), src.size(), TBRDMA_ACCESS_LOCAL);
    for (int round = 0; round < 3; round++) {
        // 64 silent writes of 64 KiB, then a FLUSH: when the FLUSH
        // completes every byte must be in the target's memory.
        for (uint32_t i = 0; i < 64; i++) {
            auto w = in.op(TBRDMA_OP_WRITE, i);
            w.flags = TBRDMA_SQE_SILENT;
            w.local_addr = reinterpret_cast<uintptr_t>(src.data()) + i * 65536u;
            w.lkey = sk;
            w.length = 65536;
            w.remote_addr = in.target.buf.addr + i * 65536u;
            w.rkey = in.target.buf.key;
            while (in.dev->post(&w, 1) != 1)
                in.dev->progress();
        }
        auto f = in.op(TBRDMA_OP_FLUSH, 999);
        auto c = run_op(*in.dev.ctx, f);
        BOOST_TEST(c.status == TBRDMA_WC_SUCCESS);
        BOOST_TEST(c.wr_id == 999u);
        BOOST_TEST(in.target.ask(cmd::hash, 0, src.size()) == fnv1a(src.data(), src.size()));
        fill(src.data(), src.size(), 78 + round);
    }
    BOOST_TEST(in.target.finish() == 0);
}

BOOST_AUTO_TEST_CASE(device_reports_its_link)
{
    auto node = open_soft(unique_fabric("info"));
    BOOST_TEST(node.dev->info().kind == (kernel_under_test() ? "kernel" : "soft"));
    BOOST_TEST(node.dev->info().abi_version == TBRDMA_ABI_VERSION);
    BOOST_TEST(node.dev->info().max_contexts >= 2u);
    BOOST_TEST(node->id() != 0u);
    auto links = node.dev->links();
    if (kernel_under_test()) {
        // One link per loop cable (or XDomain cable end), in order.
        BOOST_REQUIRE_GE(links.size(), 1u);
        BOOST_TEST(links[0].name == kernel_link0_name());
        BOOST_TEST(links[0].speed_mbps > 0u);
    } else {
        BOOST_REQUIRE_EQUAL(links.size(), 1u);
    }
    BOOST_TEST(links[0].index == 0u);
    BOOST_TEST(links[0].state == TBRDMA_LINK_UP);
    BOOST_TEST(links[0].identity != 0u);
    // Two devices on one fabric (or two opens of /dev/tbrdma) share the
    // link identity; every context has its own id.
    auto other = open_soft(links[0].name);
    BOOST_TEST(other.dev->links()[0].identity == links[0].identity);
    BOOST_TEST(other->id() != node->id());
    auto second = node.dev->create_context();
    BOOST_TEST(second->id() != node->id());
}

// Two contexts of one device (two UCT interfaces of one memory domain):
// a key registered once is good through either, and each has its own

// fork() after registration: the parent's registered pages stay the ones
// the device writes into, and the child's copy of them is its own (the
// kernel device pins them; Linux gives the child copies of pinned pages).
BOOST_AUTO_TEST_CASE(fork_after_registration)
{
    initiator in("fork");
    const size_t len = 64 * 1024;
    std::vector<uint8_t> buf(len), src(len);
    fill(buf.data(), len, 1);
    fill(src.data(), len, 2);
    uint64_t bk = in.dev.dev->reg_mr(buf.data(), len, TBRDMA_ACCESS_LOCAL);
    uint64_t sk = in.dev.dev->reg_mr(src.data(), len, TBRDMA_ACCESS_LOCAL);
    auto w = in.op(TBRDMA_OP_WRITE, 1);
    w.local_addr = reinterpret_cast<uintptr_t>(src.data());
    w.lkey = sk;
    w.length = len;
    w.remote_addr = in.target.buf.addr;
    w.rkey = in.target.buf.key;
    BOOST_TEST_REQUIRE(run_op(*in.dev.ctx, w).status == TBRDMA_WC_SUCCESS);

    int to_child[2], to_parent[2];
    BOOST_REQUIRE(::pipe(to_child) == 0 && ::pipe(to_parent) == 0);
    std::fflush(nullptr);
    pid_t pid = ::fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) {
        // Scribble on our copy, let the parent read into its own, then
        // check that ours did not change under us.
        fill(buf.data(), len, 3);
        char c = 'w';
        if (::write(to_parent[1], &c, 1) != 1 || ::read(to_child[0], &c, 1) != 1)
            ::_exit(2);
        std::vector<uint8_t> mine(len);
        fill(mine.data(), len, 3);
        ::_exit(std::memcmp(buf.data(), mine.data(), len) ? 1 : 0);
    }
    char c;
    BOOST_REQUIRE(::read(to_parent[0], &c, 1) == 1);
    auto r = in.op(TBRDMA_OP_READ, 2);
    r.local_addr = reinterpret_cast<uintptr_t>(buf.data());
    r.lkey = bk;
    r.length = len;
    r.remote_addr = in.target.buf.addr;
    r.rkey = in.target.buf.key;
    BOOST_TEST(run_op(*in.dev.ctx, r).status == TBRDMA_WC_SUCCESS);
    BOOST_TEST(std::memcmp(buf.data(), src.data(), len) == 0);  // in the parent's pages
    BOOST_REQUIRE(::write(to_child[1], &c, 1) == 1);
    int st = 0;
    ::waitpid(pid, &st, 0);
    BOOST_TEST((WIFEXITED(st) && WEXITSTATUS(st) == 0));  // the child's copy untouched
    for (int fd : {to_child[0], to_child[1], to_parent[0], to_parent[1]})
        ::close(fd);
    BOOST_TEST(in.target.finish() == 0);
}

// address and queues.
BOOST_AUTO_TEST_CASE(contexts_share_registrations)
{
    std::string fabric = unique_fabric("twoctx");
    target_options o;
    o.fabric = fabric;
    target_handle target(o);
    auto node = open_soft(fabric);
    auto ctx2 = node.dev->create_context();
    std::vector<uint8_t> src(4096);
    fill(src.data(), src.size(), 3);
    uint64_t key = node.dev->reg_mr(src.data(), src.size(), TBRDMA_ACCESS_LOCAL);
    int i = 0;
    for (tb::context *c : {node.ctx.get(), ctx2.get()}) {
        int ep = c->create_ep(0, target.buf.ctx, target.buf.secret);
        BOOST_REQUIRE_GE(ep, 0);
        tbrdma_sqe w{};
        w.opcode = TBRDMA_OP_WRITE;
        w.ep = static_cast<uint32_t>(ep);
        w.local_addr = reinterpret_cast<uintptr_t>(src.data()) + i * 2048u;
        w.lkey = key;
        w.length = 2048;
        w.remote_addr = target.buf.addr + i * 2048u;
        w.rkey = target.buf.key;
        BOOST_TEST(run_op(*c, w).status == TBRDMA_WC_SUCCESS);
        i++;
    }
    BOOST_TEST(target.ask(cmd::hash, 0, 4096) == fnv1a(src.data(), 4096));
    BOOST_TEST(target.finish() == 0);
}

// A batch whose third entry is refused: post() reports the two before it,
// and the rest can be posted again; a batch refused at its first entry
// returns the error; a batch bigger than the submission queue goes in
// pieces. Every accepted operation completes once, in order.
BOOST_AUTO_TEST_CASE(post_batches_and_refused_entries)
{
    initiator in("batch");
    auto put = [&](uint64_t id, uint64_t off) {
        auto w = in.op(TBRDMA_OP_WRITE, id);
        w.flags = TBRDMA_SQE_INLINE;
        w.length = 8;
        std::memcpy(w.inline_data, &id, 8);
        w.remote_addr = in.target.buf.addr + off;
        w.rkey = in.target.buf.key;
        return w;
    };
    std::vector<tbrdma_sqe> b = {put(0, 0), put(1, 8), put(2, 16), put(3, 24), put(4, 32)};
    b[2].ep = 12345;  // no such endpoint
    BOOST_TEST(in.dev->post(b.data(), 5) == 2);
    BOOST_TEST(in.dev->post(&b[2], 3) == -ENOENT);
    b[2].ep = static_cast<uint32_t>(in.ep);
    b[3].opcode = 99;  // malformed
    BOOST_TEST(in.dev->post(&b[2], 3) == 1);
    b[3].opcode = TBRDMA_OP_WRITE;
    BOOST_TEST(in.dev->post(&b[3], 2) == 2);
    auto c = wait_cq(*in.dev.ctx, 5);
    BOOST_REQUIRE_EQUAL(c.size(), 5u);
    for (uint64_t i = 0; i < 5; i++) {
        BOOST_TEST(c[i].status == TBRDMA_WC_SUCCESS);
        BOOST_TEST(c[i].wr_id == i);
        BOOST_TEST(in.target.ask(cmd::load64, i * 8) == i);
    }

    // 3000 silent puts in batches of up to 3000: each post() takes what
    // fits (the queues hold fewer) and is called again for the rest.
    const uint64_t n = 3000;
    std::vector<tbrdma_sqe> many;
    for (uint64_t i = 0; i < n; i++) {
        many.push_back(put(i, 64 + 8 * (i % 512)));
        many.back().flags |= TBRDMA_SQE_SILENT;
    }
    size_t done = 0, calls = 0;
    while (done < n) {
        int r = in.dev->post(many.data() + done, static_cast<unsigned>(n - done));
        calls++;
        if (r > 0)
            done += static_cast<size_t>(r);
        else
            BOOST_REQUIRE_EQUAL(r, -EAGAIN);
        tbrdma_cqe cq[16];
        BOOST_REQUIRE_EQUAL(in.dev->poll_cq(cq, 16), 0u);  // silent
    }
    BOOST_TEST_MESSAGE(n << " puts in " << calls << " post() calls");
    auto f = run_op(*in.dev.ctx, in.op(TBRDMA_OP_FLUSH, 77));
    BOOST_TEST(f.status == TBRDMA_WC_SUCCESS);
    BOOST_TEST(f.wr_id == 77u);
    // The last put to each slot wins.
    for (uint64_t slot : {0ull, 1ull, 255ull, 511ull}) {
        uint64_t last = slot + 512 * ((n - 1 - slot) / 512);
        BOOST_TEST(in.target.ask(cmd::load64, 64 + 8 * slot) == last);
    }
    BOOST_TEST(in.target.finish() == 0);
}

// A context's event fd wakes a sleeper: arm() with nothing pending says
// 0, then the completion of an operation makes the fd readable; arm()
// with a completion waiting says -EAGAIN.
BOOST_AUTO_TEST_CASE(event_fd_wakes_on_completion)
{
    initiator in("event");
    auto w = in.op(TBRDMA_OP_WRITE, 5);
    w.flags = TBRDMA_SQE_INLINE;
    w.length = 4;
    w.remote_addr = in.target.buf.addr;
    w.rkey = in.target.buf.key;
    BOOST_TEST(run_op(*in.dev.ctx, w).status == TBRDMA_WC_SUCCESS);
    for (int round = 0; round < 20; round++) {
        int armed = -EAGAIN;
        for (int i = 0; i < 1000 && armed == -EAGAIN; i++) {
            armed = in.dev->arm();
            if (armed == -EAGAIN)
                in.dev->progress();
        }
        BOOST_REQUIRE_EQUAL(armed, 0);
        BOOST_REQUIRE_EQUAL(in.dev->post(&w, 1), 1);
        // Sleep on the fd alone (no progress() from here): the kernel, or
        // the soft device's progress thread, completes the operation.
        pollfd pfd{in.dev->event_fd(), POLLIN, 0};
        BOOST_REQUIRE_EQUAL(::poll(&pfd, 1, 30000), 1);
        auto c = wait_cq(*in.dev.ctx, 1);
        BOOST_REQUIRE_EQUAL(c.size(), 1u);
        BOOST_TEST(c[0].wr_id == 5u);
        BOOST_TEST(c[0].status == TBRDMA_WC_SUCCESS);
    }
    // A completion already there: arm() refuses to sleep.
    BOOST_REQUIRE_EQUAL(in.dev->post(&w, 1), 1);
    for (int i = 0; i < 1000000 && in.dev->arm() != -EAGAIN; i++)
        in.dev->progress();
    BOOST_TEST(in.dev->arm() == -EAGAIN);
    BOOST_TEST(wait_cq(*in.dev.ctx, 1).size() == 1u);
    BOOST_TEST(in.target.finish() == 0);
}

BOOST_AUTO_TEST_SUITE_END()
