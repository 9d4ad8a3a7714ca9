// tbv_semantics: what an RC queue pair and a memory region of tbrdma_ib's
// devices allow, as libibverbs applications see it through the provider.
//
//   tbv_semantics access DEV_A DEV_B    a queue pair's access flags bound
//                                       what its peer may do, whatever its
//                                       regions allow, and change in RTS
//   tbv_semantics readonly DEV_A DEV_B  a region of read-only memory,
//                                       registered without LOCAL_WRITE, is
//                                       a source and never a destination
//   tbv_semantics reset DEV_A DEV_B     RESET from RTS and ERR, with work in
//                                       flight: nothing of before completes
//                                       after it, and connected again the
//                                       queue pair works
//   tbv_semantics scatter DEV_A DEV_B   a receive of four scatter entries
//                                       (one empty) takes a SEND across
//                                       them, data verified; five are
//                                       refused
//   tbv_semantics srq-limit DEV_A DEV_B an SRQ's armed limit raises
//                                       IBV_EVENT_SRQ_LIMIT_REACHED once,
//                                       when a receive taken leaves fewer
//   tbv_semantics srq-reset DEV_A DEV_B a receive error from before a RESET
//                                       of a queue pair on an SRQ, polled
//                                       after it, leaves it working
//   tbv_semantics cq-events DEV_A DEV_B a completion raises the event of
//                                       its own CQ alone, of a queue pair
//                                       with send and receive CQs apart;
//                                       rings armed by hand raise none
//   tbv_semantics init-err DEV          a queue pair moved to ERR from INIT
//                                       flushes what is posted to it
//   tbv_semantics doorbell-file DEV_A DEV_B
//                                       each queue pair's doorbell file:
//                                       close-on-exec, refused outside RTS,
//                                       posts in it, EIO once the queue
//                                       pair is destroyed
//
// Prints PASS:/FAIL: lines; exit status 0 only if every check passed.
#include <infiniband/verbs.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "rdma/tbrdma_abi.h"
#include "tbv_check.hpp"
#include "tbv_side.hpp"

using tbv_test::check;
using tbv_test::die;
using tbv_test::failures;
using tbv_test::open_device;
using tbv_test::side;

namespace {

// The one completion of the work request just posted, or a failed one.
ibv_wc one(side &s)
{
    auto got = s.wait(1);
    if (got.size() == 1)
        return got[0];
    ibv_wc none{};
    none.status = IBV_WC_GENERAL_ERR;
    return none;
}

// a's queue pair after an error: RESET, INIT and connected to b again.
void again(side &a, side &b)
{
    if (a.move_to(IBV_QPS_RESET))
        die("RESET");
    a.init(IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ);
    a.connect(b.addr());
}

// b's queue pair in RTS, its access flags changed.
void allow(side &b, int qp_access)
{
    ibv_qp_attr at{};
    at.qp_state = IBV_QPS_RTS;
    at.qp_access_flags = qp_access;
    if (ibv_modify_qp(b.qp, &at, IBV_QP_STATE | IBV_QP_ACCESS_FLAGS))
        die("access flags in RTS");
}

// A fetch-and-add whose old value goes to result (a's region by default).
int fetch_add(side &a, uint64_t wr_id, uint64_t raddr, uint32_t rkey, uint64_t add, ibv_sge result = {})
{
    ibv_sge sge = result.length ? result : ibv_sge{a.at(0), 8, a.mr->lkey};
    ibv_send_wr wr{}, *bad = nullptr;
    wr.wr_id = wr_id;
    wr.sg_list = &sge;
    wr.num_sge = 1;
    wr.opcode = IBV_WR_ATOMIC_FETCH_AND_ADD;
    wr.send_flags = IBV_SEND_SIGNALED;
    wr.wr.atomic.remote_addr = raddr;
    wr.wr.atomic.rkey = rkey;
    wr.wr.atomic.compare_add = add;
    return ibv_post_send(a.qp, &wr, &bad);
}

void access(const char *dev_a, const char *dev_b)
{
    side a(dev_a, 4096), b(dev_b, 4096, IBV_ACCESS_REMOTE_READ);
    a.connect(b.addr());
    b.connect(a.addr());
    for (int i = 0; i < 8; i++)
        b.mem[i] = uint8_t(0xa0 + i);

    a.post(IBV_WR_RDMA_READ, 1, 0, 8, b.at(0), b.mr->rkey);
    auto c = one(a);
    check(c.status == IBV_WC_SUCCESS && std::memcmp(a.mem.data(), b.mem.data(), 8) == 0,
          "access: REMOTE_READ alone: a READ succeeds");
    a.post(IBV_WR_RDMA_WRITE, 2, 0, 8, b.at(64), b.mr->rkey);
    c = one(a);
    check(c.status == IBV_WC_REM_ACCESS_ERR && b.mem[64] == 0,
          "access: REMOTE_READ alone: a WRITE is refused (REM_ACCESS_ERR), nothing written");
    again(a, b);
    a.post(IBV_WR_RDMA_WRITE, 7, 0, 0, 0, 0);
    check(one(a).status == IBV_WC_REM_ACCESS_ERR, "access: REMOTE_READ alone: a WRITE of 0 bytes is refused too");

    again(a, b);
    allow(b, IBV_ACCESS_REMOTE_WRITE);
    a.post(IBV_WR_RDMA_WRITE, 3, 0, 8, b.at(64), b.mr->rkey);
    c = one(a);
    check(c.status == IBV_WC_SUCCESS && std::memcmp(b.mem.data() + 64, a.mem.data(), 8) == 0,
          "access: changed in RTS to REMOTE_WRITE: a WRITE succeeds");
    a.post(IBV_WR_RDMA_READ, 4, 8, 8, b.at(0), b.mr->rkey);
    c = one(a);
    check(c.status == IBV_WC_REM_ACCESS_ERR && a.mem[8] == 0,
          "access: REMOTE_WRITE alone: a READ is refused, nothing read");

    again(a, b);
    uint64_t word = 40;
    std::memcpy(b.mem.data() + 128, &word, 8);
    fetch_add(a, 5, b.at(128), b.mr->rkey, 2);
    c = one(a);
    check(c.status == IBV_WC_REM_ACCESS_ERR, "access: without REMOTE_ATOMIC an atomic is refused");
    again(a, b);
    allow(b, IBV_ACCESS_REMOTE_ATOMIC);
    fetch_add(a, 6, b.at(128), b.mr->rkey, 2);
    c = one(a);
    uint64_t old = 0;
    std::memcpy(&old, a.mem.data(), 8);
    std::memcpy(&word, b.mem.data() + 128, 8);
    check(c.status == IBV_WC_SUCCESS && old == 40 && word == 42,
          "access: REMOTE_ATOMIC: fetch-and-add succeeds (" + std::to_string(old) + " -> " +
              std::to_string(word) + ")");
}

void readonly(const char *dev_a, const char *dev_b)
{
    side a(dev_a, 8192), b(dev_b, 8192);
    a.connect(b.addr());
    b.connect(a.addr());
    const size_t len = 8192;
    void *p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        die("mmap");
    auto *ro = static_cast<uint8_t *>(p);
    for (size_t i = 0; i < len; i++)
        ro[i] = uint8_t(i * 7 + 3);
    const std::vector<uint8_t> before(ro, ro + len);
    if (mprotect(p, len, PROT_READ))
        die("mprotect");

    ibv_mr *w = ibv_reg_mr(a.pd, p, len, IBV_ACCESS_LOCAL_WRITE);
    check(!w, "readonly: read-only memory cannot be registered with LOCAL_WRITE");
    if (w)
        ibv_dereg_mr(w);
    ibv_mr *mr = ibv_reg_mr(a.pd, p, len, IBV_ACCESS_REMOTE_READ);
    check(mr != nullptr, "readonly: read-only memory registers without LOCAL_WRITE");
    if (!mr)
        return;
    const uint64_t base = reinterpret_cast<uintptr_t>(p);

    a.post(IBV_WR_RDMA_WRITE, 1, ibv_sge{base, 4096, mr->lkey}, b.at(0), b.mr->rkey);
    auto c = one(a);
    check(c.status == IBV_WC_SUCCESS && std::memcmp(b.mem.data(), ro, 4096) == 0,
          "readonly: a WRITE from it succeeds, data verified");
    b.post(IBV_WR_RDMA_READ, 2, 4096, 4096, base + 4096, mr->rkey);
    c = one(b);
    check(c.status == IBV_WC_SUCCESS && std::memcmp(b.mem.data() + 4096, ro + 4096, 4096) == 0,
          "readonly: the peer READs it (REMOTE_READ), data verified");

    a.post(IBV_WR_RDMA_READ, 3, ibv_sge{base, 64, mr->lkey}, b.at(0), b.mr->rkey);
    c = one(a);
    check(c.status == IBV_WC_LOC_PROT_ERR && std::memcmp(ro, before.data(), len) == 0,
          "readonly: a READ into it fails (LOC_PROT_ERR), nothing written");
    again(a, b);
    std::memset(b.mem.data() + 64, 0, 8);
    fetch_add(a, 6, b.at(64), b.mr->rkey, 1, ibv_sge{base + 8, 8, mr->lkey});
    c = one(a);
    check(c.status == IBV_WC_LOC_PROT_ERR && b.mem[64] == 0 && std::memcmp(ro, before.data(), len) == 0,
          "readonly: an atomic with its result there fails (LOC_PROT_ERR), not executed");

    again(a, b);
    a.post_recv(4, ibv_sge{base, 64, mr->lkey});
    b.post(IBV_WR_SEND, 5, 0, 64, 0, 0);
    c = one(a);
    check(c.wr_id == 4 && c.status == IBV_WC_LOC_PROT_ERR && std::memcmp(ro, before.data(), len) == 0,
          "readonly: a receive into it fails (LOC_PROT_ERR), nothing written");
    ibv_dereg_mr(mr);
    munmap(p, len);
}

void reset(const char *dev_a, const char *dev_b)
{
    side a(dev_a, 1 << 20), b(dev_b, 1 << 20);
    a.connect(b.addr());
    b.connect(a.addr());
    const uint32_t qpn = a.qp->qp_num;
    for (int i = 0; i < 8; i++)
        a.post_recv(10 + i, size_t(i) * 64, 64);
    b.post(IBV_WR_SEND, 1, 0, 64, 0, 0);
    auto got = a.wait(1);
    b.wait(1);
    check(got.size() == 1 && got[0].wr_id == 10 && got[0].status == IBV_WC_SUCCESS,
          "reset: connected, a SEND takes the first receive");

    // ERR flushes the other 7 receives; RESET drops their completions.
    check(a.move_to(IBV_QPS_ERR) == 0 && a.move_to(IBV_QPS_RESET) == 0 && a.state() == IBV_QPS_RESET,
          "reset: ERR, then RESET");
    check(a.wait(1, 1).empty(), "reset: the flushed receives' completions are gone with it");
    check(a.post(IBV_WR_RDMA_WRITE, 2, 0, 8, b.at(0), b.mr->rkey) != 0, "reset: posting in RESET is refused");

    // Again, with work requests in flight: RESET from RTS.
    a.init(IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ);
    a.connect(b.addr());
    for (int i = 0; i < 32; i++)
        a.post(IBV_WR_RDMA_WRITE, 100 + i, 0, 64 << 10, b.at(0), b.mr->rkey);
    check(a.move_to(IBV_QPS_RESET) == 0, "reset: RESET from RTS with 32 WRITEs of 64 KiB posted");
    check(a.wait(1, 1).empty(), "reset: none of them completes after it");

    // Connected again: its number is the same, and it works, past the
    // ring's size of work requests.
    a.init(IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ);
    a.connect(b.addr());
    check(a.qp->qp_num == qpn, "reset: the queue pair number stays");
    int ok = 0;
    const int rounds = 200;
    for (int i = 0; i < rounds; i++) {
        for (int k = 0; k < 256; k++)
            a.mem[k] = uint8_t(i + k);
        a.post(IBV_WR_RDMA_WRITE, 1000 + i, 0, 256, b.at(4096), b.mr->rkey);
        auto c = a.wait(1);
        ok += c.size() == 1 && c[0].wr_id == uint64_t(1000 + i) && c[0].status == IBV_WC_SUCCESS &&
              std::memcmp(a.mem.data(), b.mem.data() + 4096, 256) == 0;
    }
    check(ok == rounds, "reset: connected again, " + std::to_string(ok) + "/" + std::to_string(rounds) +
                            " WRITEs succeed, data verified");
    a.post_recv(2000, 8192, 64);
    for (int k = 0; k < 64; k++)
        b.mem[k] = uint8_t(0x5a ^ k);
    b.post(IBV_WR_SEND, 3, 0, 64, 0, 0);
    got = a.wait(1);
    check(got.size() == 1 && got[0].wr_id == 2000 && got[0].status == IBV_WC_SUCCESS &&
              std::memcmp(a.mem.data() + 8192, b.mem.data(), 64) == 0,
          "reset: a SEND takes the receive posted after it, data verified");
    a.post(IBV_WR_RDMA_READ, 4, 16384, 4096, b.at(4096), b.mr->rkey);
    auto c = one(a);
    check(c.status == IBV_WC_SUCCESS && std::memcmp(a.mem.data() + 16384, b.mem.data() + 4096, 4096) == 0,
          "reset: a READ succeeds, data verified");
}

void scatter(const char *dev_a, const char *dev_b)
{
    side a(dev_a, 1 << 16, IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ, 4), b(dev_b, 1 << 16);
    ibv_qp_attr qa{};
    ibv_qp_init_attr qi{};
    check(ibv_query_qp(a.qp, &qa, IBV_QP_CAP, &qi) == 0 && qi.cap.max_recv_sge == 4,
          "scatter: a queue pair with receives of 4 scatter entries");
    a.connect(b.addr());
    b.connect(a.addr());
    const uint32_t len = 10000;
    for (uint32_t k = 0; k < len; k++)
        b.mem[k] = uint8_t(k * 13 + 1);
    const size_t at[] = {0, 4096, 8192, 16384};
    const uint32_t size[] = {100, 0, 5000, 8000};
    ibv_sge sge[5];
    for (int i = 0; i < 4; i++)
        sge[i] = ibv_sge{a.at(at[i]), size[i], a.mr->lkey};
    sge[4] = sge[3];
    ibv_recv_wr wr{}, *bad = nullptr;
    wr.wr_id = 7;
    wr.sg_list = sge;
    wr.num_sge = 5;
    check(ibv_post_recv(a.qp, &wr, &bad) != 0, "scatter: a receive of 5 scatter entries is refused");
    wr.num_sge = 4;
    check(ibv_post_recv(a.qp, &wr, &bad) == 0, "scatter: a receive of 4 is posted");
    // Its sends gather from one entry: two are refused before any is sent.
    ibv_send_wr swr{}, *sbad = nullptr;
    swr.wr_id = 8;
    swr.sg_list = sge;
    swr.num_sge = 2;
    swr.opcode = IBV_WR_SEND;
    swr.send_flags = IBV_SEND_SIGNALED;
    check(ibv_post_send(a.qp, &swr, &sbad) == EINVAL && sbad == &swr,
          "scatter: a send of 2 gather entries, past the queue pair's 1, is refused (EINVAL, bad_wr)");
    b.post(IBV_WR_SEND, 1, 0, len, 0, 0);
    auto c = one(a);
    bool data = true;
    uint32_t from = 0;
    for (int i = 0; i < 4; i++) {
        const uint32_t n = std::min(size[i], len - from);
        // Its piece, and not a byte past it.
        data = data && std::memcmp(a.mem.data() + at[i], b.mem.data() + from, n) == 0 && a.mem[at[i] + n] == 0;
        from += n;
    }
    check(c.wr_id == 7 && c.status == IBV_WC_SUCCESS && c.byte_len == len && data,
          "scatter: a SEND of 10000 bytes fills them in order, data verified, nothing past them");
}

// Whether an SRQ limit event of srq comes within timeout_ms; other events
// are acknowledged and passed over.
bool srq_limit_event(ibv_context *ctx, const ibv_srq *srq, int timeout_ms)
{
    pollfd pf{ctx->async_fd, POLLIN, 0};
    while (poll(&pf, 1, timeout_ms) > 0) {
        ibv_async_event ev{};
        if (ibv_get_async_event(ctx, &ev))
            break;
        const bool ours = ev.event_type == IBV_EVENT_SRQ_LIMIT_REACHED && ev.element.srq == srq;
        ibv_ack_async_event(&ev);
        if (ours)
            return true;
    }
    return false;
}

void srq_limit(const char *dev_a, const char *dev_b)
{
    side a(dev_a, 4096), b(dev_b, 4096, IBV_ACCESS_REMOTE_WRITE, 2, 16);
    a.connect(b.addr());
    b.connect(a.addr());
    // Three receives of one buffer, then two of two.
    for (int i = 0; i < 3; i++)
        b.post_recv(uint64_t(i), ibv_sge{b.at(size_t(i) * 256), 256, b.mr->lkey});
    for (int i = 3; i < 5; i++) {
        ibv_sge sge[2] = {{b.at(size_t(i) * 256), 128, b.mr->lkey}, {b.at(size_t(i) * 256 + 128), 128, b.mr->lkey}};
        ibv_recv_wr wr{}, *bad = nullptr;
        wr.wr_id = uint64_t(i);
        wr.sg_list = sge;
        wr.num_sge = 2;
        if (ibv_post_srq_recv(b.srq, &wr, &bad))
            die("a receive of two scatter entries on the SRQ");
    }
    int flags = fcntl(b.ctx->async_fd, F_GETFL);
    fcntl(b.ctx->async_fd, F_SETFL, flags | O_NONBLOCK);
    ibv_srq_attr sa{};
    sa.srq_limit = 3;
    check(ibv_modify_srq(b.srq, &sa, IBV_SRQ_LIMIT) == 0, "srq-limit: armed at 3");
    sa = {};
    check(ibv_query_srq(b.srq, &sa) == 0 && sa.srq_limit == 3, "srq-limit: query_srq says 3");
    auto send = [&](uint64_t wr_id) {
        a.post(IBV_WR_SEND, wr_id, 0, 64, 0, 0);
        return one(a).status == IBV_WC_SUCCESS && one(b).status == IBV_WC_SUCCESS;
    };
    bool sent = send(1) && send(2);
    check(sent && !srq_limit_event(b.ctx, b.srq, 300), "srq-limit: 3 receives left (5 entries): no event");
    sent = send(3);
    check(sent && srq_limit_event(b.ctx, b.srq, 5000),
          "srq-limit: 2 left (4 entries): IBV_EVENT_SRQ_LIMIT_REACHED");
    sa = {};
    check(ibv_query_srq(b.srq, &sa) == 0 && sa.srq_limit == 0, "srq-limit: disarmed after it");
    sent = send(4);
    check(sent && !srq_limit_event(b.ctx, b.srq, 300), "srq-limit: no second event");
}

// A receive error of a queue pair on a shared queue, not yet polled when
// the queue pair is reset: its completion is kept (the buffer comes
// back), and polled after the queue pair is connected again it does not
// put it in ERR.
void srq_reset(const char *dev_a, const char *dev_b)
{
    side a(dev_a, 4096), b(dev_b, 4096, IBV_ACCESS_REMOTE_WRITE, 1, 16);
    a.connect(b.addr());
    b.connect(a.addr());
    b.post_recv(1, ibv_sge{b.at(0), 8, b.mr->lkey});
    a.post(IBV_WR_SEND, 2, 0, 64, 0, 0);
    auto c = one(a);
    check(c.status == IBV_WC_REM_INV_REQ_ERR, "srq-reset: a SEND longer than the receive fails at the sender");
    check(b.move_to(IBV_QPS_RESET) == 0, "srq-reset: the receiver reset before it polled");
    b.init(IBV_ACCESS_REMOTE_WRITE);
    b.connect(a.addr());
    c = one(b);
    check(c.wr_id == 1 && c.status == IBV_WC_LOC_LEN_ERR, "srq-reset: the shared queue's receive completes after it");
    const bool a_again = a.move_to(IBV_QPS_RESET) == 0;
    a.init(IBV_ACCESS_REMOTE_WRITE);
    a.connect(b.addr());
    check(a_again && b.state() == IBV_QPS_RTS, "srq-reset: and the queue pair stays in RTS");
    b.post_recv(3, ibv_sge{b.at(256), 64, b.mr->lkey});
    a.post(IBV_WR_SEND, 4, 0, 64, 0, 0);
    check(one(a).status == IBV_WC_SUCCESS && one(b).wr_id == 3, "srq-reset: and takes the next SEND");
}

// The CQ that s's channel's next event is for (acknowledged), or none
// within timeout_ms.
ibv_cq *next_event(side &s, int timeout_ms)
{
    pollfd p{s.channel->fd, POLLIN, 0};
    ibv_cq *cq = nullptr;
    void *cq_context = nullptr;
    if (poll(&p, 1, timeout_ms) != 1 || ibv_get_cq_event(s.channel, &cq, &cq_context))
        return nullptr;
    ibv_ack_cq_events(cq, 1);
    return cq;
}

// Arms every ring this process has mapped from a uverbs device by hand, as
// any process may, without asking the kernel (ibv_req_notify_cq); returns
// how many.
size_t arm_rings_by_hand()
{
    size_t armed = 0;
    std::ifstream maps("/proc/self/maps");
    std::string line;
    while (std::getline(maps, line)) {
        // lo-hi perms offset dev inode path
        const size_t perms = line.find(' ') + 1;
        if (line.find("/dev/infiniband/uverbs") == std::string::npos || line.compare(perms, 2, "rw"))
            continue;
        auto *ctrl = reinterpret_cast<tbrdma_ring_ctrl *>(std::stoull(line, nullptr, 16));
        __atomic_store_n(&ctrl->armed, 1, __ATOMIC_SEQ_CST);
        armed++;
    }
    return armed;
}

// Both CQs of a's queue pair armed: a completion raises the event of its
// own CQ, not the other's. Any second event is queued by then, as both
// handlers run when the completion is published.
void cq_events(const char *dev_a, const char *dev_b)
{
    side a(dev_a, 4096, IBV_ACCESS_REMOTE_WRITE, 1, 0, true), b(dev_b, 4096);
    a.connect(b.addr());
    b.connect(a.addr());
    if (ibv_req_notify_cq(a.cq, 0) || ibv_req_notify_cq(a.rcq, 0))
        die("arming the CQs");

    a.post(IBV_WR_RDMA_WRITE, 1, 0, 8, b.at(0), b.mr->rkey);
    ibv_cq *first = next_event(a, 20000);
    check(first == a.cq && !next_event(a, 200), "cq-events: a WRITE's completion raises the send CQ's event alone");
    check(one(a).status == IBV_WC_SUCCESS, "cq-events: the WRITE completes");

    if (ibv_req_notify_cq(a.cq, 0))
        die("arming the send CQ");
    a.post_recv(2, 64, 64);
    std::fill_n(b.mem.begin(), 8, uint8_t(0x5a));
    b.post(IBV_WR_SEND, 3, 0, 8, 0, 0);
    first = next_event(a, 20000);
    check(first == a.rcq && !next_event(a, 200), "cq-events: a SEND taken raises the receive CQ's event alone");
    ibv_wc wc{};
    check(ibv_poll_cq(a.rcq, 1, &wc) == 1 && wc.status == IBV_WC_SUCCESS && wc.wr_id == 2 && wc.byte_len == 8 &&
              std::memcmp(a.mem.data() + 64, b.mem.data(), 8) == 0,
          "cq-events: the receive completes in the receive CQ, data verified");
    check(one(b).status == IBV_WC_SUCCESS, "cq-events: the SEND completes");

    // The send CQ is still armed: its next completion raises its event.
    a.post(IBV_WR_RDMA_WRITE, 4, 0, 8, b.at(0), b.mr->rkey);
    first = next_event(a, 20000);
    const bool written = one(a).status == IBV_WC_SUCCESS;
    check(first == a.cq && written, "cq-events: the send CQ armed before raises it at its next completion");
    // Each event costs the kernel memory until the channel is read: rings
    // armed by hand ask for none.
    size_t armed = SIZE_MAX;
    for (uint64_t id = 5; id < 13; id++) {
        armed = std::min(armed, arm_rings_by_hand());
        a.post(IBV_WR_RDMA_WRITE, id, 0, 8, b.at(0), b.mr->rkey);
        if (one(a).status != IBV_WC_SUCCESS)
            die("a WRITE failed");
    }
    // Both sides' four rings (SQ, CQ, RWQ, RCQ), or the check below shows nothing.
    check(armed >= 8, "cq-events: the rings armed by hand are found in /proc/self/maps");
    check(!next_event(a, 200), "cq-events: rings armed by hand, not through ibv_req_notify_cq, raise no event");
}

void init_err(const char *dev)
{
    side a(dev, 4096);
    check(a.move_to(IBV_QPS_ERR) == 0, "init-err: INIT to ERR");
    check(a.post(IBV_WR_RDMA_WRITE, 1, 0, 8, 0, 0) == 0 && a.post_recv(2, 0, 64) == 0,
          "init-err: a send and a receive are posted");
    auto got = a.wait(2);
    bool send = false, recv = false;
    for (auto &c : got) {
        send |= c.wr_id == 1 && c.status == IBV_WC_WR_FLUSH_ERR;
        recv |= c.wr_id == 2 && c.status == IBV_WC_WR_FLUSH_ERR;
    }
    check(got.size() == 2 && send && recv, "init-err: both complete with WR_FLUSH_ERR");
}

// This process's doorbell files (the provider opens one per queue pair).
std::vector<int> doorbell_files()
{
    std::vector<int> fds;
    for (const auto &e : std::filesystem::directory_iterator("/proc/self/fd")) {
        std::error_code ec;
        if (std::filesystem::read_symlink(e.path(), ec) == "anon_inode:[tbrdma_doorbell]" && !ec)
            fds.push_back(std::stoi(e.path().filename().string()));
    }
    return fds;
}

// 0 or the errno of an ioctl on a doorbell file.
int ring(int fd, unsigned long cmd = TBRDMA_IOC_QP_DOORBELL)
{
    return ioctl(fd, cmd) == 0 ? 0 : errno;
}

void doorbell_file(const char *dev_a, const char *dev_b)
{
    side a(dev_a, 4096), b(dev_b, 4096);
    auto fds = doorbell_files();
    bool cloexec = fds.size() == 2;
    for (int fd : fds)
        cloexec = cloexec && (fcntl(fd, F_GETFD) & FD_CLOEXEC);
    check(cloexec, "doorbell-file: one per queue pair (" + std::to_string(fds.size()) + "), close-on-exec");
    if (fds.size() != 2)
        return;
    check(ring(fds[0]) == EINVAL && ring(fds[1]) == EINVAL, "doorbell-file: before RTS: EINVAL");
    check(ring(fds[0], _IO(TBRDMA_IOC_MAGIC, 99)) == ENOTTY, "doorbell-file: another ioctl: ENOTTY");
    a.connect(b.addr());
    b.connect(a.addr());
    check(ring(fds[0]) == 0 && ring(fds[1]) == 0, "doorbell-file: in RTS, nothing posted: done");
    std::memcpy(a.mem.data(), "doorbell", 8);
    a.post(IBV_WR_RDMA_WRITE, 1, 0, 8, b.at(16), b.mr->rkey);
    auto got = a.wait(1);
    check(got.size() == 1 && got[0].status == IBV_WC_SUCCESS && std::memcmp(b.mem.data() + 16, "doorbell", 8) == 0,
          "doorbell-file: a WRITE posted (the provider rings it when no poll thread takes SQEs), data verified");

    // A third queue pair's file, kept past the queue pair.
    ibv_qp_init_attr init{};
    init.send_cq = init.recv_cq = a.cq;
    init.qp_type = IBV_QPT_RC;
    init.cap.max_send_wr = init.cap.max_recv_wr = 16;
    init.cap.max_send_sge = init.cap.max_recv_sge = 1;
    ibv_qp *qp = ibv_create_qp(a.pd, &init);
    if (!qp)
        die("doorbell-file: a third queue pair");
    int kept = -1;
    for (int fd : doorbell_files())
        if (fd != fds[0] && fd != fds[1])
            kept = dup(fd);
    check(kept >= 0 && ring(kept) == EINVAL, "doorbell-file: a new queue pair's, in RESET: EINVAL");
    // Rung again and again while the queue pair is destroyed: each ring
    // sees it there or gone, never half of it.
    std::atomic<bool> stop{false};
    std::atomic<long> rings{0}, odd{0};
    std::thread ringer([&] {
        while (!stop.load()) {
            int err = ring(kept);
            rings++;
            if (err != EINVAL && err != EIO)
                odd++;
        }
    });
    while (rings.load() < 1000)
        std::this_thread::yield();
    int destroyed = ibv_destroy_qp(qp);
    stop = true;
    ringer.join();
    check(destroyed == 0 && odd.load() == 0, "doorbell-file: destroyed with " + std::to_string(rings.load()) +
                                                 " rings across it, each EINVAL or EIO");
    check(doorbell_files().size() == 3 && ring(kept) == EIO,
          "doorbell-file: its queue pair destroyed: EIO (the provider closed its own)");
    close(kept);
}

}  // namespace

int main(int argc, char **argv)
{
    const std::string what = argc > 1 ? argv[1] : "";
    if (what == "access" && argc == 4)
        access(argv[2], argv[3]);
    else if (what == "readonly" && argc == 4)
        readonly(argv[2], argv[3]);
    else if (what == "reset" && argc == 4)
        reset(argv[2], argv[3]);
    else if (what == "scatter" && argc == 4)
        scatter(argv[2], argv[3]);
    else if (what == "srq-limit" && argc == 4)
        srq_limit(argv[2], argv[3]);
    else if (what == "srq-reset" && argc == 4)
        srq_reset(argv[2], argv[3]);
    else if (what == "cq-events" && argc == 4)
        cq_events(argv[2], argv[3]);
    else if (what == "init-err" && argc == 3)
        init_err(argv[2]);
    else if (what == "doorbell-file" && argc == 4)
        doorbell_file(argv[2], argv[3]);
    else {
        std::fprintf(stderr, "usage: tbv_semantics access|readonly|reset|scatter|srq-limit|srq-reset|cq-events DEV_A DEV_B\n"
                             "       tbv_semantics init-err DEV\n"
                             "       tbv_semantics doorbell-file DEV_A DEV_B\n");
        return 2;
    }
    return failures ? 1 : 0;
}
