// SPDX-License-Identifier: BSD-2-Clause
//
// The /dev/tbrdma ABI itself, below the device library: several contexts
// per open file, their handles and mmap offsets, DESTROY_QUEUES, CANCEL_EP,
// per-context eventfds, poll() on the file, and the argument checks of the
// context-scoped ioctls. Only with TB_TEST_DEVICE=kernel (in the VM, with
// "tbrdma loop=2" or more loaded); skipped otherwise.
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "device_under_test.hpp"

using namespace tbtest;

namespace {

boost::test_tools::assertion_result kernel_only(boost::unit_test::test_unit_id)
{
    boost::test_tools::assertion_result r(kernel_under_test());
    r.message() << "needs /dev/tbrdma: run with TB_TEST_DEVICE=kernel (docs/kernel.md)";
    return r;
}

int ioc(int fd, unsigned long cmd, void *arg)
{
    return ::ioctl(fd, cmd, arg) == 0 ? 0 : -errno;
}

struct dev_fd {
    int fd = ::open("/dev/tbrdma", O_RDWR | O_CLOEXEC);
    dev_fd() { BOOST_REQUIRE_GE(fd, 0); }
    ~dev_fd() { ::close(fd); }
};

tbrdma_create_queues queues(int event_fd = -1, uint32_t n = 64)
{
    tbrdma_create_queues q{};
    q.sq_entries = n;
    q.cq_entries = n;
    q.rq_entries = 4;
    q.event_fd = event_fd;
    return q;
}

// A context with its rings mapped.
struct kctx {
    int fd;
    tbrdma_create_queues q = queues();
    void *sq = MAP_FAILED, *cq = MAP_FAILED;

    kctx(int fd_, int event_fd = -1) : fd(fd_), q(queues(event_fd))
    {
        BOOST_REQUIRE_EQUAL(ioc(fd, TBRDMA_IOC_CREATE_QUEUES, &q), 0);
        sq = ::mmap(nullptr, q.sq_length, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                    static_cast<off_t>(q.sq_offset));
        cq = ::mmap(nullptr, q.cq_length, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                    static_cast<off_t>(q.cq_offset));
        BOOST_REQUIRE(sq != MAP_FAILED);
        BOOST_REQUIRE(cq != MAP_FAILED);
    }
    ~kctx()
    {
        ::munmap(sq, q.sq_length);
        ::munmap(cq, q.cq_length);
    }
    tbrdma_ring_ctrl *sqc() const { return static_cast<tbrdma_ring_ctrl *>(sq); }
    tbrdma_ring_ctrl *cqc() const { return static_cast<tbrdma_ring_ctrl *>(cq); }
    int ep_to(const kctx &peer) { return ep_to(peer.q.ctx_id, peer.q.secret); }
    int ep_to(uint32_t remote, uint64_t secret)
    {
        tbrdma_create_ep c{};
        c.ctx = q.ctx;
        c.link = 0;
        c.remote_ctx = remote;
        c.remote_secret = secret;
        int rc = ioc(fd, TBRDMA_IOC_CREATE_EP, &c);
        return rc ? rc : static_cast<int>(c.ep);
    }
    // Writes sqes at the kernel's consumer index and rings once.
    int post(const std::vector<tbrdma_sqe> &sqes)
    {
        uint32_t head = __atomic_load_n(&sqc()->consumer, __ATOMIC_ACQUIRE);
        auto *slots = static_cast<uint8_t *>(sq) + TBRDMA_RING_DATA_OFFSET;
        for (size_t i = 0; i < sqes.size(); i++)
            std::memcpy(slots + ((head + i) & (q.sq_entries - 1)) * sizeof(tbrdma_sqe), &sqes[i],
                        sizeof(tbrdma_sqe));
        tbrdma_doorbell db{};
        db.ctx = q.ctx;
        db.sq_producer = head + static_cast<uint32_t>(sqes.size());
        int rc = ioc(fd, TBRDMA_IOC_DOORBELL, &db);
        return rc ? rc : static_cast<int>(db.posted);
    }
    std::vector<tbrdma_cqe> wait_cq(size_t n, int timeout_ms = 30000)
    {
        std::vector<tbrdma_cqe> got;
        auto *slots = static_cast<tbrdma_cqe *>(
            static_cast<void *>(static_cast<uint8_t *>(cq) + TBRDMA_RING_DATA_OFFSET));
        for (int waited = 0; got.size() < n && waited < timeout_ms; waited++) {
            uint32_t cons = cqc()->consumer;
            uint32_t prod = __atomic_load_n(&cqc()->producer, __ATOMIC_ACQUIRE);
            if (cons == prod) {
                ::usleep(1000);
                continue;
            }
            for (; cons != prod; cons++)
                got.push_back(slots[cons & (q.cq_entries - 1)]);
            __atomic_store_n(&cqc()->consumer, cons, __ATOMIC_RELEASE);
        }
        return got;
    }
};

tbrdma_sqe inline_write(uint32_t ep, uint64_t addr, uint64_t key, uint64_t id)
{
    tbrdma_sqe s{};
    s.opcode = TBRDMA_OP_WRITE;
    s.flags = TBRDMA_SQE_INLINE;
    s.ep = ep;
    s.wr_id = id;
    s.length = 8;
    std::memcpy(s.inline_data, &id, 8);
    s.remote_addr = addr;
    s.rkey = key;
    return s;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(kernel_abi, *boost::unit_test::precondition(kernel_only))

BOOST_AUTO_TEST_CASE(query_reports_contexts_per_file)
{
    dev_fd d;
    tbrdma_query q{};
    BOOST_REQUIRE_EQUAL(ioc(d.fd, TBRDMA_IOC_QUERY, &q), 0);
    BOOST_TEST(q.abi_version == TBRDMA_ABI_VERSION);
    BOOST_TEST(q.max_contexts == 16u);
    BOOST_TEST(q.num_links >= 1u);
}

BOOST_AUTO_TEST_CASE(sixteen_contexts_per_file_with_their_own_offsets)
{
    dev_fd d;
    std::vector<tbrdma_create_queues> qs;
    for (uint32_t i = 0; i < 16; i++) {
        auto q = queues();
        BOOST_REQUIRE_EQUAL(ioc(d.fd, TBRDMA_IOC_CREATE_QUEUES, &q), 0);
        BOOST_TEST(q.ctx == i);
        BOOST_TEST(q.sq_offset == ((uint64_t(i) << TBRDMA_MMAP_CTX_SHIFT) | TBRDMA_MMAP_SQ));
        BOOST_TEST(q.cq_offset == ((uint64_t(i) << TBRDMA_MMAP_CTX_SHIFT) | TBRDMA_MMAP_CQ));
        BOOST_TEST(q.rq_offset == ((uint64_t(i) << TBRDMA_MMAP_CTX_SHIFT) | TBRDMA_MMAP_RQ));
        for (auto &o : qs)
            BOOST_TEST(o.ctx_id != q.ctx_id);
        qs.push_back(q);
    }
    auto q = queues();
    BOOST_TEST(ioc(d.fd, TBRDMA_IOC_CREATE_QUEUES, &q) == -ENOSPC);
    // A freed handle is reused; its old id is not.
    tbrdma_destroy_queues dq{};
    dq.ctx = 5;
    BOOST_REQUIRE_EQUAL(ioc(d.fd, TBRDMA_IOC_DESTROY_QUEUES, &dq), 0);
    BOOST_TEST(ioc(d.fd, TBRDMA_IOC_DESTROY_QUEUES, &dq) == -EINVAL);
    // Its rings cannot be mapped any more.
    void *p = ::mmap(nullptr, 4096, PROT_READ, MAP_SHARED, d.fd,
                     static_cast<off_t>(qs[5].cq_offset));
    BOOST_TEST(p == MAP_FAILED);
    q = queues();
    BOOST_REQUIRE_EQUAL(ioc(d.fd, TBRDMA_IOC_CREATE_QUEUES, &q), 0);
    BOOST_TEST(q.ctx == 5u);
    BOOST_TEST(q.ctx_id != qs[5].ctx_id);
}

BOOST_AUTO_TEST_CASE(context_handles_and_reserved_fields_are_checked)
{
    dev_fd d;
    kctx c(d.fd);
    auto q = queues(-2);
    BOOST_TEST(ioc(d.fd, TBRDMA_IOC_CREATE_QUEUES, &q) == -EINVAL);
    tbrdma_destroy_queues dq{};
    dq.ctx = c.q.ctx;
    dq.reserved = 1;
    BOOST_TEST(ioc(d.fd, TBRDMA_IOC_DESTROY_QUEUES, &dq) == -EINVAL);
    for (uint32_t bad : {c.q.ctx + 1, 16u, 0x80000000u, ~0u}) {
        tbrdma_create_ep ce{};
        ce.ctx = bad;
        BOOST_TEST(ioc(d.fd, TBRDMA_IOC_CREATE_EP, &ce) == -EINVAL);
        tbrdma_ep_ref r{bad, 0};
        BOOST_TEST(ioc(d.fd, TBRDMA_IOC_DESTROY_EP, &r) == -EINVAL);
        BOOST_TEST(ioc(d.fd, TBRDMA_IOC_CANCEL_EP, &r) == -EINVAL);
        tbrdma_ep_state st{};
        st.ctx = bad;
        BOOST_TEST(ioc(d.fd, TBRDMA_IOC_EP_STATE, &st) == -EINVAL);
        tbrdma_doorbell db{};
        db.ctx = bad;
        BOOST_TEST(ioc(d.fd, TBRDMA_IOC_DOORBELL, &db) == -EINVAL);
    }
    tbrdma_doorbell db{};
    db.ctx = c.q.ctx;
    db.flags = 2;  // no such flag
    BOOST_TEST(ioc(d.fd, TBRDMA_IOC_DOORBELL, &db) == -EINVAL);
    tbrdma_ep_ref r{c.q.ctx, 7};
    BOOST_TEST(ioc(d.fd, TBRDMA_IOC_DESTROY_EP, &r) == -ENOENT);
    BOOST_TEST(ioc(d.fd, TBRDMA_IOC_CANCEL_EP, &r) == -ENOENT);
    // Offsets of a context that does not exist, or no ring at all.
    for (uint64_t off : {(uint64_t(c.q.ctx + 1) << TBRDMA_MMAP_CTX_SHIFT) | TBRDMA_MMAP_CQ,
                         (uint64_t(16) << TBRDMA_MMAP_CTX_SHIFT) | TBRDMA_MMAP_CQ,
                         c.q.cq_offset + 4096, c.q.cq_offset | 0x30000000ull}) {
        void *p = ::mmap(nullptr, 4096, PROT_READ, MAP_SHARED, d.fd, static_cast<off_t>(off));
        BOOST_TEST(p == MAP_FAILED);
    }
    void *p = ::mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE, d.fd,
                     static_cast<off_t>(c.q.cq_offset));
    BOOST_TEST(p == MAP_FAILED);
    p = ::mmap(nullptr, c.q.cq_length + 4096, PROT_READ, MAP_SHARED, d.fd,
               static_cast<off_t>(c.q.cq_offset));
    BOOST_TEST(p == MAP_FAILED);
}

BOOST_AUTO_TEST_CASE(event_fd_must_be_an_eventfd)
{
    dev_fd d;
    int pipefd[2];
    BOOST_REQUIRE_EQUAL(::pipe(pipefd), 0);
    auto q = queues(pipefd[0]);
    BOOST_TEST(ioc(d.fd, TBRDMA_IOC_CREATE_QUEUES, &q) == -EINVAL);
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    q = queues(pipefd[0]);  // closed now
    BOOST_TEST(ioc(d.fd, TBRDMA_IOC_CREATE_QUEUES, &q) == -EBADF);
}

// Two contexts of one file: a key registered once works in both, each
// context's eventfd fires for its own armed CQ only, and poll() on the
// file sees entries in any context.
BOOST_AUTO_TEST_CASE(contexts_share_keys_and_have_their_own_events)
{
    dev_fd d;
    int ev0 = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), ev1 = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    BOOST_REQUIRE(ev0 >= 0 && ev1 >= 0);
    kctx a(d.fd, ev0), b(d.fd, ev1);
    std::vector<uint64_t> mem(64, 0);
    tbrdma_reg_mr r{};
    r.addr = reinterpret_cast<uintptr_t>(mem.data());
    r.length = mem.size() * 8;
    r.access = TBRDMA_ACCESS_ALL;
    BOOST_REQUIRE_EQUAL(ioc(d.fd, TBRDMA_IOC_REG_MR, &r), 0);
    // a writes into b's address space (the same process) through loop0.
    int ep = a.ep_to(b);
    BOOST_REQUIRE_GE(ep, 0);
    __atomic_store_n(&b.cqc()->armed, 1u, __ATOMIC_SEQ_CST);
    __atomic_store_n(&a.cqc()->armed, 1u, __ATOMIC_SEQ_CST);
    BOOST_REQUIRE_EQUAL(a.post({inline_write(static_cast<uint32_t>(ep), r.addr + 8, r.key, 42)}), 1);
    pollfd pfd{ev0, POLLIN, 0};
    BOOST_REQUIRE_EQUAL(::poll(&pfd, 1, 30000), 1);
    auto got = a.wait_cq(1);
    BOOST_REQUIRE_EQUAL(got.size(), 1u);
    BOOST_TEST(got[0].status == TBRDMA_WC_SUCCESS);
    BOOST_TEST(__atomic_load_n(&mem[1], __ATOMIC_ACQUIRE) == 42u);
    BOOST_TEST(a.cqc()->armed == 0u);  // the kernel disarmed it
    BOOST_TEST(b.cqc()->armed == 1u);  // nothing arrived there
    pfd = {ev1, POLLIN, 0};
    BOOST_TEST(::poll(&pfd, 1, 0) == 0);

    // poll() on the file: nothing waiting, then b's completion wakes it.
    pfd = {d.fd, POLLIN, 0};
    BOOST_TEST(::poll(&pfd, 1, 0) == 0);
    int ep_b = b.ep_to(a);
    BOOST_REQUIRE_GE(ep_b, 0);
    BOOST_REQUIRE_EQUAL(b.post({inline_write(static_cast<uint32_t>(ep_b), r.addr + 16, r.key, 43)}),
                        1);
    BOOST_REQUIRE_EQUAL(::poll(&pfd, 1, 30000), 1);
    BOOST_TEST((pfd.revents & POLLIN) != 0);
    BOOST_TEST(b.wait_cq(1).size() == 1u);
    BOOST_TEST(__atomic_load_n(&mem[2], __ATOMIC_ACQUIRE) == 43u);
    pfd = {ev1, POLLIN, 0};
    BOOST_TEST(::poll(&pfd, 1, 0) == 1);  // b's CQ was armed
    ::close(ev0);
    ::close(ev1);
}

// CANCEL_EP completes what is outstanding (as CANCELED, or done already)
// and leaves the endpoint usable.
BOOST_AUTO_TEST_CASE(cancel_ep_completes_everything_outstanding)
{
    dev_fd d;
    kctx c(d.fd);
    std::vector<uint8_t> buf(8 << 20);
    tbrdma_reg_mr r{};
    r.addr = reinterpret_cast<uintptr_t>(buf.data());
    r.length = buf.size();
    r.access = TBRDMA_ACCESS_ALL;
    BOOST_REQUIRE_EQUAL(ioc(d.fd, TBRDMA_IOC_REG_MR, &r), 0);
    int ep = c.ep_to(c);  // to itself, over loop0
    BOOST_REQUIRE_GE(ep, 0);
    std::vector<tbrdma_sqe> big;
    for (uint64_t i = 0; i < 16; i++) {
        tbrdma_sqe s{};
        s.opcode = TBRDMA_OP_WRITE;
        s.ep = static_cast<uint32_t>(ep);
        s.wr_id = i;
        s.local_addr = r.addr;
        s.lkey = r.key;
        s.length = 4u << 20;
        s.remote_addr = r.addr + (4u << 20);
        s.rkey = r.key;
        big.push_back(s);
    }
    BOOST_REQUIRE_EQUAL(c.post(big), 16);
    tbrdma_ep_ref ref{c.q.ctx, static_cast<uint32_t>(ep)};
    BOOST_REQUIRE_EQUAL(ioc(d.fd, TBRDMA_IOC_CANCEL_EP, &ref), 0);
    auto got = c.wait_cq(16);
    BOOST_REQUIRE_EQUAL(got.size(), 16u);
    int canceled = 0;
    for (uint64_t i = 0; i < 16; i++) {
        BOOST_TEST(got[i].wr_id == i);
        BOOST_TEST((got[i].status == TBRDMA_WC_SUCCESS || got[i].status == TBRDMA_WC_CANCELED));
        canceled += got[i].status == TBRDMA_WC_CANCELED;
    }
    BOOST_TEST_MESSAGE(canceled << " of 16 writes of 4 MiB canceled");
    BOOST_TEST(canceled > 0);
    tbrdma_ep_state st{};
    st.ctx = c.q.ctx;
    st.ep = static_cast<uint32_t>(ep);
    BOOST_REQUIRE_EQUAL(ioc(d.fd, TBRDMA_IOC_EP_STATE, &st), 0);
    BOOST_TEST(st.outstanding == 0u);
    BOOST_REQUIRE_EQUAL(c.post({inline_write(static_cast<uint32_t>(ep), r.addr, r.key, 9)}), 1);
    got = c.wait_cq(1);
    BOOST_REQUIRE_EQUAL(got.size(), 1u);
    BOOST_TEST(got[0].status == TBRDMA_WC_SUCCESS);
}

// DESTROY_QUEUES with the rings still mapped: the context is gone (its
// handle refused, peers are refused), the old mapping stays readable.
BOOST_AUTO_TEST_CASE(destroy_queues_while_mapped)
{
    dev_fd d;
    kctx a(d.fd);
    auto b = std::make_unique<kctx>(d.fd);
    int ep = a.ep_to(*b);
    BOOST_REQUIRE_GE(ep, 0);
    tbrdma_destroy_queues dq{};
    dq.ctx = b->q.ctx;
    BOOST_REQUIRE_EQUAL(ioc(d.fd, TBRDMA_IOC_DESTROY_QUEUES, &dq), 0);
    BOOST_TEST(b->cqc()->entries == 64u);  // still mapped, still readable
    tbrdma_doorbell db{};
    db.ctx = b->q.ctx;
    BOOST_TEST(ioc(d.fd, TBRDMA_IOC_DOORBELL, &db) == -EINVAL);
    b.reset();  // unmaps
    BOOST_REQUIRE_EQUAL(a.post({inline_write(static_cast<uint32_t>(ep), 4096, 1, 1)}), 1);
    auto got = a.wait_cq(1);
    BOOST_REQUIRE_EQUAL(got.size(), 1u);
    BOOST_TEST(got[0].status == TBRDMA_WC_REM_ACCESS_ERR);
}

// Pinning beyond RLIMIT_MEMLOCK without CAP_IPC_LOCK: the device library
// says what to do. In a child that drops root (and so its capabilities).
BOOST_AUTO_TEST_CASE(memlock_limit_gives_a_clear_error)
{
    peer_process child([](channel &) {
        if (::getuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0))
            return 2;
        rlimit rl{1 << 20, 1 << 20};
        if (::setrlimit(RLIMIT_MEMLOCK, &rl) != 0)
            return 3;
        tb::open_options o;
        o.kind = "kernel";
        auto dev = tb::device::open(o);
        std::vector<uint8_t> small(64 << 10), big(4 << 20);
        dev->reg_mr(small.data(), small.size(), TBRDMA_ACCESS_ALL);  // within the limit
        try {
            dev->reg_mr(big.data(), big.size(), TBRDMA_ACCESS_ALL);
        } catch (const tb::error &e) {
            std::fprintf(stderr, "reg_mr: %s\n", e.what());
            return e.code() == ENOMEM &&
                           std::strstr(e.what(), "RLIMIT_MEMLOCK too low: raise it (ulimit -l) "
                                                 "or run with CAP_IPC_LOCK")
                       ? 0
                       : 4;
        }
        return 5;
    });
    BOOST_TEST(child.wait() == 0);
}

BOOST_AUTO_TEST_SUITE_END()
