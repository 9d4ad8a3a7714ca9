// tbv_pattern: libibverbs applications' traffic over two tbrdma_ib devices
// of one host (loops), through the provider, data verified.
//
//   tbv_pattern nccl DEV_A DEV_B   NCCL's IB plugin pattern: RDMA WRITE with
//                                  immediate into the peer's buffer, taken
//                                  by receives without buffers; an inline
//                                  WRITE into a FIFO the peer polls in
//                                  memory; a READ as a flush
//   tbv_pattern kill DEV_A DEV_B   a child process on DEV_B is killed (-9)
//                                  while this one streams to it: every work
//                                  request completes, the first failures
//                                  with an error, the rest flushed, the
//                                  posted receives too, and the queue pair
//                                  is in ERR
//
// Prints PASS:/FAIL: lines; exit status 0 only if every check passed.
#include <infiniband/verbs.h>

#include <arpa/inet.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tbv_check.hpp"

using tbv_test::check;
using tbv_test::failures;

namespace {

[[noreturn]] void die(const std::string &what)
{
    std::printf("FAIL: %s: %s\n", what.c_str(), std::strerror(errno));
    std::exit(1);
}

// What the other side needs to connect to a queue pair.
struct qp_addr {
    uint32_t qpn;
    ibv_gid gid;
};

// One device's queue pair, its completion queue and one region.
struct side {
    ibv_context *ctx = nullptr;
    ibv_pd *pd = nullptr;
    ibv_cq *cq = nullptr;
    ibv_qp *qp = nullptr;
    ibv_mr *mr = nullptr;
    std::vector<uint8_t> mem;

    side(const char *name, size_t bytes) : mem(bytes, 0)
    {
        int n = 0;
        ibv_device **list = ibv_get_device_list(&n);
        for (int i = 0; list && i < n && !ctx; i++)
            if (std::strcmp(ibv_get_device_name(list[i]), name) == 0)
                ctx = ibv_open_device(list[i]);
        if (list)
            ibv_free_device_list(list);
        if (!ctx)
            die(std::string("open ") + name);
        pd = ibv_alloc_pd(ctx);
        cq = pd ? ibv_create_cq(ctx, 512, nullptr, nullptr, 0) : nullptr;
        if (!cq)
            die("PD and CQ");
        mr = ibv_reg_mr(pd, mem.data(), mem.size(),
                        IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ);
        ibv_qp_init_attr ia{};
        ia.send_cq = cq;
        ia.recv_cq = cq;
        ia.qp_type = IBV_QPT_RC;
        ia.cap.max_send_wr = 64;
        ia.cap.max_recv_wr = 64;
        ia.cap.max_send_sge = 1;
        ia.cap.max_recv_sge = 1;
        ia.cap.max_inline_data = 64;
        qp = mr ? ibv_create_qp(pd, &ia) : nullptr;
        if (!qp)
            die("MR and QP");
        ibv_qp_attr a{};
        a.qp_state = IBV_QPS_INIT;
        a.port_num = 1;
        a.qp_access_flags = IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;
        if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS))
            die("INIT");
    }
    ~side()
    {
        ibv_destroy_qp(qp);
        ibv_dereg_mr(mr);
        ibv_destroy_cq(cq);
        ibv_dealloc_pd(pd);
        ibv_close_device(ctx);
    }

    qp_addr addr() const
    {
        qp_addr a{qp->qp_num, {}};
        if (ibv_query_gid(ctx, 1, 0, &a.gid))
            die("GID 0");
        return a;
    }

    void connect(const qp_addr &peer)
    {
        ibv_qp_attr a{};
        a.qp_state = IBV_QPS_RTR;
        a.path_mtu = IBV_MTU_4096;
        a.dest_qp_num = peer.qpn;
        a.max_dest_rd_atomic = 1;
        a.min_rnr_timer = 12;
        a.ah_attr.is_global = 1;
        a.ah_attr.grh.dgid = peer.gid;
        a.ah_attr.grh.hop_limit = 1;
        a.ah_attr.port_num = 1;
        if (ibv_modify_qp(qp, &a,
                          IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
                              IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER))
            die("RTR");
        a = {};
        a.qp_state = IBV_QPS_RTS;
        a.timeout = 14;
        a.retry_cnt = 7;
        a.rnr_retry = 7;
        a.max_rd_atomic = 1;
        if (ibv_modify_qp(qp, &a,
                          IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN |
                              IBV_QP_MAX_QP_RD_ATOMIC))
            die("RTS");
    }

    uint64_t at(size_t off) const { return reinterpret_cast<uintptr_t>(mem.data() + off); }

    int post(ibv_wr_opcode op, uint64_t wr_id, size_t off, uint32_t len, uint64_t raddr, uint32_t rkey,
             unsigned flags = IBV_SEND_SIGNALED, uint32_t imm = 0)
    {
        ibv_sge sge{at(off), len, mr->lkey};
        ibv_send_wr wr{}, *bad = nullptr;
        wr.wr_id = wr_id;
        wr.sg_list = &sge;
        wr.num_sge = len ? 1 : 0;
        wr.opcode = op;
        wr.send_flags = flags;
        wr.imm_data = imm;
        wr.wr.rdma.remote_addr = raddr;
        wr.wr.rdma.rkey = rkey;
        return ibv_post_send(qp, &wr, &bad);
    }

    int post_recv(uint64_t wr_id, size_t off, uint32_t len)
    {
        ibv_sge sge{at(off), len, mr->lkey};
        ibv_recv_wr wr{}, *bad = nullptr;
        wr.wr_id = wr_id;
        wr.sg_list = &sge;
        wr.num_sge = len ? 1 : 0;
        return ibv_post_recv(qp, &wr, &bad);
    }

    // The next n completions, or fewer after timeout_s.
    std::vector<ibv_wc> wait(size_t n, int timeout_s = 20)
    {
        std::vector<ibv_wc> got;
        auto end = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
        ibv_wc wc[16];
        while (got.size() < n && std::chrono::steady_clock::now() < end) {
            int k = ibv_poll_cq(cq, 16, wc);
            if (k < 0)
                break;
            got.insert(got.end(), wc, wc + k);
        }
        return got;
    }
};

void fill(std::vector<uint8_t> &v, size_t off, size_t len, uint32_t seed)
{
    std::mt19937 rng(seed);
    for (size_t i = 0; i < len; i++)
        v[off + i] = static_cast<uint8_t>(rng());
}

bool same(const side &a, size_t aoff, const side &b, size_t boff, size_t len)
{
    return std::memcmp(a.mem.data() + aoff, b.mem.data() + boff, len) == 0;
}

// NCCL's IB plugin, per step: the receiver posts a receive without a
// buffer and tells the sender where to write with an inline RDMA WRITE
// into the sender's FIFO (a slot the sender polls); the sender writes the
// data with an RDMA WRITE with immediate (the size), which completes the
// receive; the receiver then flushes with an RDMA READ before it uses the
// data.
void nccl(const char *dev_a, const char *dev_b)
{
    const size_t fifo = 0, data = 4096, chunk = 1 << 20;
    side s(dev_a, data + chunk), r(dev_b, data + chunk);
    s.connect(r.addr());
    r.connect(s.addr());
    volatile uint64_t *slot = reinterpret_cast<volatile uint64_t *>(s.mem.data() + fifo);
    int steps = 0, ok_fifo = 0, ok_data = 0, ok_flush = 0;
    for (uint32_t i = 1; i <= 60; i++) {
        const uint32_t len = i % 4 == 0 ? chunk : (i * 7919u) % 65536 + 1;
        // Receiver: a receive without a buffer, then the FIFO entry.
        if (r.post_recv(i, 0, 0))
            die("post a receive without a buffer");
        uint64_t entry = (uint64_t(i) << 32) | len;
        std::memcpy(r.mem.data(), &entry, sizeof(entry));
        if (r.post(IBV_WR_RDMA_WRITE, 1000 + i, 0, sizeof(entry), s.at(fifo), s.mr->rkey,
                   IBV_SEND_SIGNALED | IBV_SEND_INLINE))
            die("inline WRITE into the FIFO");
        // Sender: polls its FIFO in memory, no completion of its own.
        auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (*slot != entry && std::chrono::steady_clock::now() < end)
            ;
        ok_fifo += *slot == entry;
        fill(s.mem, data, len, i);
        if (s.post(IBV_WR_RDMA_WRITE_WITH_IMM, i, data, len, r.at(data), r.mr->rkey, IBV_SEND_SIGNALED,
                   htonl(i)))
            die("WRITE with immediate");
        auto sc = s.wait(1);
        auto rc = r.wait(2);  // the FIFO write's and the receive's
        bool recv_ok = false;
        for (auto &c : rc)
            if (c.wr_id == i)
                recv_ok = c.status == IBV_WC_SUCCESS && c.opcode == IBV_WC_RECV_RDMA_WITH_IMM &&
                          (c.wc_flags & IBV_WC_WITH_IMM) && ntohl(c.imm_data) == i && c.byte_len == len;
        bool data_ok = recv_ok && sc.size() == 1 && sc[0].status == IBV_WC_SUCCESS && rc.size() == 2 &&
                       same(s, data, r, data, len);
        ok_data += data_ok;
        // Receiver: the flush, a READ of one byte of the sender's buffer.
        if (r.post(IBV_WR_RDMA_READ, 2000 + i, 8, 1, s.at(data), s.mr->rkey))
            die("READ as a flush");
        auto fc = r.wait(1);
        ok_flush += fc.size() == 1 && fc[0].status == IBV_WC_SUCCESS && fc[0].opcode == IBV_WC_RDMA_READ &&
                    r.mem[8] == s.mem[data];
        steps++;
    }
    check(ok_fifo == steps, "nccl: the inline WRITE reached the polled FIFO, " + std::to_string(ok_fifo) +
                                "/" + std::to_string(steps));
    check(ok_data == steps, "nccl: WRITE with immediate into a receive without a buffer, data verified, " +
                                std::to_string(ok_data) + "/" + std::to_string(steps));
    check(ok_flush == steps, "nccl: READ as a flush, " + std::to_string(ok_flush) + "/" + std::to_string(steps));
}

// A peer killed mid-transfer: the survivor's work requests all complete,
// with errors, and its queue pair is in ERR with its receives flushed.
void kill_peer(const char *dev_a, const char *dev_b)
{
    int to_child[2], to_parent[2];
    if (pipe(to_child) || pipe(to_parent))
        die("pipe");
    const size_t len = 1 << 20;
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        side b(dev_b, len);
        qp_addr mine = b.addr(), peer{};
        if (write(to_parent[1], &mine, sizeof(mine)) != sizeof(mine) ||
            read(to_child[0], &peer, sizeof(peer)) != sizeof(peer))
            _exit(1);
        b.connect(peer);
        char go = 1;
        if (write(to_parent[1], &go, 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    side a(dev_a, len);
    qp_addr peer{}, mine = a.addr();
    char go = 0;
    if (read(to_parent[0], &peer, sizeof(peer)) != sizeof(peer) ||
        write(to_child[1], &mine, sizeof(mine)) != sizeof(mine))
        die("exchange");
    a.connect(peer);
    if (read(to_parent[0], &go, 1) != 1)
        die("child ready");
    const int receives = 16;
    for (int i = 0; i < receives; i++)
        a.post_recv(100 + i, 0, 64);
    // Zero-length WRITEs: pings, which need the peer's queue pair alone.
    int posted = 0;
    size_t done = 0, errors = 0, flushed = 0, recv_flushed = 0;
    auto tally = [&](const std::vector<ibv_wc> &v) {
        for (auto &c : v) {
            if (c.wr_id >= 100 && c.wr_id < 100 + receives) {
                recv_flushed += c.status == IBV_WC_WR_FLUSH_ERR;
                continue;
            }
            done++;
            errors += c.status != IBV_WC_SUCCESS && c.status != IBV_WC_WR_FLUSH_ERR;
            flushed += c.status == IBV_WC_WR_FLUSH_ERR;
        }
    };
    auto ping = [&](int n) {
        for (int i = 0; i < n; i++, posted++)
            if (a.post(IBV_WR_RDMA_WRITE, posted, 0, 0, 0, 0))
                die("post a ping");
    };
    ping(32);
    tally(a.wait(32, 10));
    check(done == 32 && errors == 0 && flushed == 0, "kill: pings to the live peer succeed");
    // Killed with pings in flight; more follow.
    ping(32);
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    ping(32);
    tally(a.wait(size_t(posted) + receives - done - recv_flushed, 20));
    check(done == size_t(posted), "kill: every work request completed (" + std::to_string(done) + "/" +
                                      std::to_string(posted) + ")");
    check(errors >= 1, "kill: the first after the peer died failed with an error (" + std::to_string(errors) +
                           ")");
    check(flushed >= 1, "kill: the rest were flushed (" + std::to_string(flushed) + ")");
    check(recv_flushed == receives, "kill: the posted receives were flushed (" + std::to_string(recv_flushed) +
                                        "/" + std::to_string(receives) + ")");
    ibv_qp_attr qa{};
    ibv_qp_init_attr qi{};
    check(ibv_query_qp(a.qp, &qa, IBV_QP_STATE, &qi) == 0 && qa.qp_state == IBV_QPS_ERR,
          "kill: the survivor's queue pair is in ERR");
}

}  // namespace

int main(int argc, char **argv)
{
    if (argc != 4) {
        std::fprintf(stderr, "usage: tbv_pattern nccl|kill DEV_A DEV_B\n");
        return 2;
    }
    const std::string what = argv[1];
    if (what == "nccl")
        nccl(argv[2], argv[3]);
    else if (what == "kill")
        kill_peer(argv[2], argv[3]);
    else
        return 2;
    return failures ? 1 : 0;
}
