// SPDX-License-Identifier: BSD-2-Clause
//
// tb-demo: two processes doing RDMA over the tb software link. The parent
// (initiator) puts, gets, runs atomics and sends messages into memory the
// child (target) registered, and both print what happened. It uses only
// the device library, so with the kernel module loaded the same program
// runs through /dev/tbrdma.
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <vector>

#include "tb/device.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

// What the target hands the initiator: without its secret and key the
// initiator could reach neither the context nor the memory.
struct published {
    uint32_t ctx;
    uint64_t secret, key, addr, len;
};

const char *status_name(uint8_t s)
{
    static const char *names[] = {"ok",        "local access error", "remote access error",
                                  "invalid request", "link down", "canceled",
                                  "flushed", "receiver not ready", "refused",
                                  "receive buffer too small"};
    static_assert(std::size(names) == TBRDMA_WC_STATUS_MAX + 1, "a name for every status");
    return s <= TBRDMA_WC_STATUS_MAX ? names[s] : "?";
}

bool write_all(int fd, const void *p, size_t n)
{
    return ::write(fd, p, n) == static_cast<ssize_t>(n);
}

bool read_all(int fd, void *p, size_t n)
{
    auto *c = static_cast<char *>(p);
    while (n) {
        ssize_t r = ::read(fd, c, n);
        if (r <= 0)
            return false;
        c += r;
        n -= static_cast<size_t>(r);
    }
    return true;
}

// The target registers a buffer, publishes it, then runs its engine and
// prints the messages it receives until the initiator says "done".
int run_target(int fd, const tb::open_options &opts)
{
    auto dev = tb::device::open(opts);
    auto ctx = dev->create_context();
    std::vector<uint8_t> mem(1 << 20, 0);
    uint64_t key = dev->reg_mr(mem.data(), mem.size(), TBRDMA_ACCESS_ALL);
    std::printf("[target    pid %d] context %#" PRIx32 ": registered 1 MiB at %p, key %#" PRIx64 "\n",
                getpid(), ctx->id(), static_cast<void *>(mem.data()), key);
    std::fflush(stdout);
    published pub{ctx->id(), ctx->secret(), key, reinterpret_cast<uintptr_t>(mem.data()),
                  mem.size()};
    if (!write_all(fd, &pub, sizeof(pub)))
        return 1;
    for (;;) {
        ctx->progress();
        if (const tbrdma_rqe *r = ctx->recv_peek()) {
            std::printf("[target    pid %d] received message am_id %u, header %#llx"
                        ", %u bytes: \"%.*s\"\n", getpid(), r->am_id,
                        static_cast<unsigned long long>(r->imm), r->length,
                        static_cast<int>(r->length), reinterpret_cast<const char *>(r + 1));
            std::fflush(stdout);
            ctx->recv_release();
        }
        pollfd pfd{fd, POLLIN, 0};
        if (::poll(&pfd, 1, 0) > 0) {
            char c;
            if (!read_all(fd, &c, 1) || c == 'q')
                break;
            // 'c': report what the initiator's last put left in our memory.
            uint64_t counter;
            std::memcpy(&counter, mem.data() + 8192, 8);
            std::printf("[target    pid %d] my memory: \"%.*s\" at +0, counter at +8192 = %" PRIu64
                        "\n", getpid(), 21, reinterpret_cast<const char *>(mem.data()), counter);
            std::fflush(stdout);
            write_all(fd, &c, 1);
        }
    }
    return 0;
}

struct initiator {
    std::unique_ptr<tb::device> dev;
    std::unique_ptr<tb::context> ctx;
    int ep = -1;
    published peer{};

    tbrdma_cqe run(tbrdma_sqe s, double *usec)
    {
        s.ep = static_cast<uint32_t>(ep);
        auto t0 = clock_type::now();
        if (ctx->post(&s, 1) != 1)
            throw tb::error(EIO, "post refused");
        tbrdma_cqe c{};
        while (!ctx->poll_cq(&c, 1)) {
            if (clock_type::now() - t0 > std::chrono::seconds(10))
                throw tb::error(ETIMEDOUT, "no completion in 10 s");
        }
        *usec = std::chrono::duration<double, std::micro>(clock_type::now() - t0).count();
        return c;
    }
};

int run_initiator(int fd, const tb::open_options &opts)
{
    initiator in;
    in.dev = tb::device::open(opts);
    in.ctx = in.dev->create_context();
    if (!read_all(fd, &in.peer, sizeof(in.peer)))
        return 1;
    in.ep = in.ctx->create_ep(0, in.peer.ctx, in.peer.secret);
    if (in.ep < 0) {
        std::fprintf(stderr, "tb-demo: cannot reach the target: %s\n", std::strerror(-in.ep));
        return 1;
    }
    auto links = in.dev->links();
    std::printf("[initiator pid %d] context %#" PRIx32 ": endpoint to context %#" PRIx32
                " over link %s (%s, %" PRIu64 " Mb/s)\n", getpid(), in.ctx->id(),
                in.peer.ctx, links[0].name.c_str(), in.dev->info().kind.c_str(),
                links[0].speed_mbps);
    std::vector<uint8_t> buf(1 << 20);
    uint64_t lkey = in.dev->reg_mr(buf.data(), buf.size(), TBRDMA_ACCESS_LOCAL);
    int failures = 0;
    double us;
    auto report = [&](const char *what, const tbrdma_cqe &c, const char *extra = "") {
        std::printf("[initiator pid %d] %-34s %-18s %8.1f us%s\n", getpid(), what,
                    status_name(c.status), us, extra);
        failures += c.status != TBRDMA_WC_SUCCESS;
    };

    // put (inline) and get back
    tbrdma_sqe s{};
    s.opcode = TBRDMA_OP_WRITE;
    s.flags = TBRDMA_SQE_INLINE;
    const char hello[] = "hello over tb, target";
    s.length = sizeof(hello) - 1;
    std::memcpy(s.inline_data, hello, s.length);
    s.remote_addr = in.peer.addr;
    s.rkey = in.peer.key;
    report("put 21 B (inline)", in.run(s, &us));

    s = tbrdma_sqe{};
    s.opcode = TBRDMA_OP_READ;
    s.local_addr = reinterpret_cast<uintptr_t>(buf.data());
    s.lkey = lkey;
    s.length = 21;
    s.remote_addr = in.peer.addr;
    s.rkey = in.peer.key;
    auto c = in.run(s, &us);
    bool same = std::memcmp(buf.data(), hello, 21) == 0;
    report("get 21 B", c, same ? "  (data matches)" : "  (DATA DIFFERS)");
    failures += !same;

    // 512 KiB put and get: cut into 4 KiB frames on the wire.
    for (size_t i = 0; i < 512 * 1024; i++)
        buf[i] = static_cast<uint8_t>(i * 7);
    s = tbrdma_sqe{};
    s.opcode = TBRDMA_OP_WRITE;
    s.local_addr = reinterpret_cast<uintptr_t>(buf.data());
    s.lkey = lkey;
    s.length = 512 * 1024;
    s.remote_addr = in.peer.addr + 65536;
    s.rkey = in.peer.key;
    c = in.run(s, &us);
    char extra[64];
    std::snprintf(extra, sizeof(extra), "  (%.0f MB/s)", 512.0 * 1024 / us);
    report("put 512 KiB", c, extra);
    s.opcode = TBRDMA_OP_READ;
    s.local_addr = reinterpret_cast<uintptr_t>(buf.data() + 512 * 1024);
    c = in.run(s, &us);
    same = std::memcmp(buf.data(), buf.data() + 512 * 1024, 512 * 1024) == 0;
    report("get 512 KiB", c, same ? "  (data matches)" : "  (DATA DIFFERS)");
    failures += !same;

    // atomics on a counter at +8192
    struct {
        uint8_t op;
        uint64_t operand, compare;
        const char *name;
    } ops[] = {
        {TBRDMA_ATOMIC_ADD, 5, 0, "atomic fetch-add 64-bit +5"},
        {TBRDMA_ATOMIC_ADD, 37, 0, "atomic fetch-add 64-bit +37"},
        {TBRDMA_ATOMIC_CSWAP, 1000, 42, "atomic cswap 64-bit 42 -> 1000"},
        {TBRDMA_ATOMIC_XOR, 0xff, 0, "atomic fetch-xor 64-bit 0xff"},
        {TBRDMA_ATOMIC_SWAP, 7, 0, "atomic swap 64-bit 7"},
    };
    for (auto &o : ops) {
        s = tbrdma_sqe{};
        s.opcode = TBRDMA_OP_ATOMIC;
        s.atomic_op = o.op;
        s.atomic_size = 8;
        s.operand = o.operand;
        s.compare = o.compare;
        s.remote_addr = in.peer.addr + 8192;
        s.rkey = in.peer.key;
        c = in.run(s, &us);
        std::snprintf(extra, sizeof(extra), "  (value before: %llu)",
                      static_cast<unsigned long long>(c.result));
        report(o.name, c, extra);
    }

    // an active message, then a flush
    s = tbrdma_sqe{};
    s.opcode = TBRDMA_OP_SEND;
    s.flags = TBRDMA_SQE_INLINE;
    s.am_id = 7;
    s.imm = 0xc0ffee;
    const char msg[] = "a message for the target";
    s.length = sizeof(msg) - 1;
    std::memcpy(s.inline_data, msg, s.length);
    report("send am_id 7, 24 B", in.run(s, &us));
    s = tbrdma_sqe{};
    s.opcode = TBRDMA_OP_FLUSH;
    report("flush", in.run(s, &us));

    // a put with a wrong key must fail cleanly (and it is the last one:
    // the endpoint is in error after it)
    s = tbrdma_sqe{};
    s.opcode = TBRDMA_OP_WRITE;
    s.flags = TBRDMA_SQE_INLINE;
    s.length = 8;
    s.remote_addr = in.peer.addr;
    s.rkey = in.peer.key ^ 0x100u;
    c = in.run(s, &us);
    std::printf("[initiator pid %d] %-34s %-18s %8.1f us  (expected: the key is wrong)\n",
                getpid(), "put with a wrong key", status_name(c.status), us);
    failures += c.status != TBRDMA_WC_REM_ACCESS_ERR;
    std::fflush(stdout);

    char ask = 'c';
    write_all(fd, &ask, 1);
    read_all(fd, &ask, 1);
    ask = 'q';
    write_all(fd, &ask, 1);
    return failures ? 1 : 0;
}

}  // namespace

int main(int argc, char **argv)
{
    tb::open_options opts = tb::open_options::from_env();
    if (argc > 1 && (!std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "--help"))) {
        std::printf("usage: tb-demo\n  Two processes do put, get, atomics and sends over tb.\n"
                    "  TB_DEVICE=soft|kernel|auto picks the device, TB_SOFT_* shape the "
                    "software link (docs/soft-link.md).\n");
        return 0;
    }
    if (std::getenv("TB_SOFT_FABRIC") == nullptr)
        opts.fabric = "demo-" + std::to_string(getpid());
    std::printf("tb-demo: device %s, fabric \"%s\"\n", tb::resolve_kind(opts.kind).c_str(),
                opts.fabric.c_str());
    std::fflush(stdout);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
        return 1;
    pid_t pid = fork();
    if (pid == 0) {
        ::close(sv[0]);
        int rc = 1;
        try {
            rc = run_target(sv[1], opts);
        } catch (const std::exception &e) {
            std::fprintf(stderr, "tb-demo target: %s\n", e.what());
        }
        _exit(rc);
    }
    ::close(sv[1]);
    int rc = 1;
    try {
        rc = run_initiator(sv[0], opts);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "tb-demo: %s\n", e.what());
    }
    ::close(sv[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st))
        rc = 1;
    std::printf("tb-demo: %s\n", rc ? "FAILED" : "all operations completed as expected");
    return rc;
}
