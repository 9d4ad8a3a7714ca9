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
#include "tbv_side.hpp"

using tbv_test::check;
using tbv_test::die;
using tbv_test::failures;
using tbv_test::qp_addr;
using tbv_test::side;

namespace {

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
