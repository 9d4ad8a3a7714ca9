// tbv_ud: UD queue pairs of tbrdma_ib's devices across a link going down
// and coming back, as libibverbs applications see it through the provider.
//
//   tbv_ud replug DEV_A DEV_B CARRIER   datagrams between a UD queue pair on
//                                       DEV_A and one on DEV_B, data
//                                       verified; CARRIER (the sysfs carrier
//                                       of DEV_A's loop) at 0 takes DEV_A's
//                                       port down: its datagrams complete as
//                                       sent and are lost, its queue pair
//                                       stays in RTS (an RC queue pair's
//                                       WRITE fails, and it goes to ERR); at
//                                       1 again both UD queue pairs carry
//                                       datagrams both ways; then a thread
//                                       keeps sending while the cable goes
//                                       out and back ten times
//   tbv_ud relogin DEV_A DEV_B LOSS     the same over an XDomain link whose
//                                       cable stays in: LOSS (tbsim's
//                                       loss_ppm) at a million loses every
//                                       frame, so the link fails (the RC
//                                       WRITE with it) and cannot come up
//                                       again; at 0 the hosts log in again,
//                                       and the same UD queue pairs carry
//                                       datagrams over the new link
//
// Prints PASS:/FAIL: lines; exit status 0 only if every check passed.
#include <infiniband/verbs.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "tbv_check.hpp"
#include "tbv_side.hpp"

using tbv_test::check;
using tbv_test::die;
using tbv_test::failures;
using tbv_test::open_device;
using tbv_test::side;

namespace {

constexpr uint32_t qkey = 0x11111111;
constexpr uint32_t grh_len = 40;      // in front of every datagram received
constexpr uint32_t send_len = 1024;   // a datagram's bytes, from mem[0]
constexpr size_t recv_at = 4096;      // where receives land in mem

// One device's UD queue pair in RTS, its CQ and one region.
struct ud_side {
    ibv_context *ctx;
    ibv_pd *pd = nullptr;
    ibv_cq *cq = nullptr;
    ibv_mr *mr = nullptr;
    ibv_qp *qp = nullptr;
    std::vector<uint8_t> mem = std::vector<uint8_t>(8192, 0);

    explicit ud_side(const char *name) : ctx(open_device(name))
    {
        pd = ibv_alloc_pd(ctx);
        cq = pd ? ibv_create_cq(ctx, 64, nullptr, nullptr, 0) : nullptr;
        mr = cq ? ibv_reg_mr(pd, mem.data(), mem.size(), IBV_ACCESS_LOCAL_WRITE) : nullptr;
        if (!mr)
            die("PD, CQ and MR");
        ibv_qp_init_attr ia{};
        ia.send_cq = cq;
        ia.recv_cq = cq;
        ia.qp_type = IBV_QPT_UD;
        ia.cap.max_send_wr = 16;
        ia.cap.max_recv_wr = 16;
        ia.cap.max_send_sge = 1;
        ia.cap.max_recv_sge = 1;
        qp = ibv_create_qp(pd, &ia);
        if (!qp)
            die("UD QP");
        ibv_qp_attr a{};
        a.qp_state = IBV_QPS_INIT;
        a.port_num = 1;
        a.qkey = qkey;
        if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_QKEY))
            die("INIT");
        a = {};
        a.qp_state = IBV_QPS_RTR;
        if (ibv_modify_qp(qp, &a, IBV_QP_STATE))
            die("RTR");
        a.qp_state = IBV_QPS_RTS;
        if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN))
            die("RTS");
    }
    ~ud_side()
    {
        ibv_destroy_qp(qp);
        ibv_dereg_mr(mr);
        ibv_destroy_cq(cq);
        ibv_dealloc_pd(pd);
        ibv_close_device(ctx);
    }
    ud_side(const ud_side &) = delete;
    ud_side &operator=(const ud_side &) = delete;

    ibv_ah *ah_to(const ud_side &peer) const
    {
        ibv_ah_attr a{};
        a.is_global = 1;
        if (ibv_query_gid(peer.ctx, 1, 0, &a.grh.dgid))
            die("GID 0");
        a.grh.hop_limit = 1;
        a.port_num = 1;
        ibv_ah *ah = ibv_create_ah(pd, &a);
        if (!ah)
            die("AH");
        return ah;
    }
    // A datagram of mem[0, send_len) filled with seed's pattern.
    int send(ibv_ah *ah, uint32_t qpn, uint8_t seed)
    {
        for (uint32_t i = 0; i < send_len; i++)
            mem[i] = static_cast<uint8_t>(seed * 31 + i);
        ibv_sge sge{reinterpret_cast<uintptr_t>(mem.data()), send_len, mr->lkey};
        ibv_send_wr wr{}, *bad = nullptr;
        wr.wr_id = seed;
        wr.sg_list = &sge;
        wr.num_sge = 1;
        wr.opcode = IBV_WR_SEND;
        wr.send_flags = IBV_SEND_SIGNALED;
        wr.wr.ud.ah = ah;
        wr.wr.ud.remote_qpn = qpn;
        wr.wr.ud.remote_qkey = qkey;
        return ibv_post_send(qp, &wr, &bad);
    }
    int post_recv(uint64_t wr_id)
    {
        std::memset(mem.data() + recv_at, 0, grh_len + send_len);
        ibv_sge sge{reinterpret_cast<uintptr_t>(mem.data() + recv_at), grh_len + send_len, mr->lkey};
        ibv_recv_wr wr{}, *bad = nullptr;
        wr.wr_id = wr_id;
        wr.sg_list = &sge;
        wr.num_sge = 1;
        return ibv_post_recv(qp, &wr, &bad);
    }
    // The received datagram is seed's.
    bool received(uint8_t seed) const
    {
        for (uint32_t i = 0; i < send_len; i++)
            if (mem[recv_at + grh_len + i] != static_cast<uint8_t>(seed * 31 + i))
                return false;
        return true;
    }
    // The next completion, or one with wr_id ~0 after 20 s.
    ibv_wc one()
    {
        ibv_wc wc{};
        wc.wr_id = ~0ull;
        auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (std::chrono::steady_clock::now() < end) {
            int k = ibv_poll_cq(cq, 1, &wc);
            if (k < 0)
                break;
            if (k == 1)
                return wc;
        }
        wc.wr_id = ~0ull;
        return wc;
    }
    int qp_state()
    {
        ibv_qp_attr a{};
        ibv_qp_init_attr ia{};
        return ibv_query_qp(qp, &a, IBV_QP_STATE, &ia) ? -1 : a.qp_state;
    }
    // Whether port 1 reaches state within timeout_s.
    bool port_reaches(ibv_port_state state, int timeout_s)
    {
        for (int i = 0; i < timeout_s * 20; i++) {
            ibv_port_attr pa{};
            if (ibv_query_port(ctx, 1, &pa) == 0 && pa.state == state)
                return true;
            usleep(50000);
        }
        return false;
    }
};

// A datagram from one side to the other: both complete, data verified.
bool datagram(ud_side &from, ibv_ah *ah, ud_side &to, uint8_t seed)
{
    if (to.post_recv(seed) || from.send(ah, to.qp->qp_num, seed))
        return false;
    ibv_wc s = from.one(), r = to.one();
    return s.status == IBV_WC_SUCCESS && s.wr_id == seed && r.status == IBV_WC_SUCCESS &&
           r.wr_id == seed && r.byte_len == grh_len + send_len && to.received(seed);
}

void write_value(const std::string &path, unsigned long value)
{
    std::ofstream f(path);
    f << value << "\n";
    f.flush();
    if (!f)
        die("write " + path);
}

// How a test takes DEV_A's link away and gives it back, and how long the
// link takes to notice either.
struct link_cut {
    std::string name;
    std::function<void()> cut, restore;
    int down_s, up_s;
};

// Datagrams both ways before, while and after cut's link is away (see
// the top of the file); returns with both UD queue pairs in RTS, carrying
// datagrams.
void across(ud_side &a, ud_side &b, ibv_ah *ab, ibv_ah *ba, const link_cut &c)
{
    const std::string t = c.name + ": ";
    side rc_a(a.ctx->device->name, 4096), rc_b(b.ctx->device->name, 4096);
    rc_a.connect(rc_b.addr());
    rc_b.connect(rc_a.addr());
    check(datagram(a, ab, b, 1) && datagram(b, ba, a, 2), t + "datagrams both ways, data verified");
    c.cut();
    check(rc_a.post(IBV_WR_RDMA_WRITE, 7, 0, 64, rc_b.at(0), rc_b.mr->rkey) == 0, t + "an RC WRITE posted");
    auto rc = rc_a.wait(1, c.down_s);
    check(rc.size() == 1 && rc[0].status == IBV_WC_RETRY_EXC_ERR && rc_a.state() == IBV_QPS_ERR,
          t + "it fails with RETRY_EXC_ERR, the RC queue pair in ERR");
    check(a.port_reaches(IBV_PORT_DOWN, c.down_s), t + "the port goes down");
    // Posted now and taken by nothing: the next datagram must land in it.
    check(b.post_recv(3) == 0 && a.send(ab, b.qp->qp_num, 3) == 0, t + "a datagram posted while down");
    ibv_wc wc = a.one();
    check(wc.wr_id == 3 && wc.status == IBV_WC_SUCCESS,
          t + "it completes as sent (" + ibv_wc_status_str(wc.status) + ")");
    check(a.qp_state() == IBV_QPS_RTS, t + "the queue pair stays in RTS");
    c.restore();
    check(a.port_reaches(IBV_PORT_ACTIVE, c.up_s) && b.port_reaches(IBV_PORT_ACTIVE, c.up_s),
          t + "back, both ports are active");
    check(a.send(ab, b.qp->qp_num, 4) == 0, t + "a datagram posted once up again");
    wc = a.one();
    ibv_wc r = b.one();
    check(wc.wr_id == 4 && wc.status == IBV_WC_SUCCESS && r.wr_id == 3 && r.status == IBV_WC_SUCCESS &&
              b.received(4),
          t + "it arrives, in the receive posted while down; the one lost never does");
    check(datagram(b, ba, a, 5) && datagram(a, ab, b, 6), t + "datagrams both ways again, data verified");
    check(a.qp_state() == IBV_QPS_RTS && b.qp_state() == IBV_QPS_RTS, t + "both queue pairs in RTS");
}

void replug(const char *dev_a, const char *dev_b, const std::string &carrier)
{
    ud_side a(dev_a), b(dev_b);
    ibv_ah *ab = a.ah_to(b), *ba = b.ah_to(a);
    across(a, b, ab, ba,
           {"replug", [&] { write_value(carrier, 0); }, [&] { write_value(carrier, 1); }, 10, 10});
    // The doorbell meets the endpoint moving between links.
    std::atomic<bool> stop{false};
    uint64_t sent = 0, failed = 0;
    std::thread sender([&] {
        while (!stop.load()) {
            ibv_wc c{};
            c.status = IBV_WC_GENERAL_ERR;
            if (a.send(ab, b.qp->qp_num, 7) == 0)
                c = a.one();
            ++(c.status == IBV_WC_SUCCESS ? sent : failed);
        }
    });
    bool up = true;
    for (int i = 0; i < 10 && up; i++) {
        write_value(carrier, 0);
        usleep(20000);
        write_value(carrier, 1);
        up = a.port_reaches(IBV_PORT_ACTIVE, 10);
        usleep(20000);
    }
    stop = true;
    sender.join();
    check(up && sent > 0 && failed == 0,
          "replug: a thread sending while the cable goes out and back 10 times: " + std::to_string(sent) +
              " datagrams completed, " + std::to_string(failed) + " failed");
    check(a.qp_state() == IBV_QPS_RTS && datagram(a, ab, b, 8), "replug: afterwards a datagram arrives, data verified");
    ibv_destroy_ah(ab);
    ibv_destroy_ah(ba);
}

// The engine's link fails after 10 s without progress (tb_link.c,
// dead_ns); logging in again takes the control protocol's backoff.
void relogin(const char *dev_a, const char *dev_b, const std::string &loss)
{
    ud_side a(dev_a), b(dev_b);
    ibv_ah *ab = a.ah_to(b), *ba = b.ah_to(a);
    across(a, b, ab, ba, {"relogin", [&] { write_value(loss, 1000000); }, [&] { write_value(loss, 0); }, 40, 90});
    ibv_destroy_ah(ab);
    ibv_destroy_ah(ba);
}

}  // namespace

int main(int argc, char **argv)
{
    const std::string what = argc > 1 ? argv[1] : "";
    if (what == "replug" && argc == 5) {
        replug(argv[2], argv[3], argv[4]);
    } else if (what == "relogin" && argc == 5) {
        relogin(argv[2], argv[3], argv[4]);
    } else {
        std::fprintf(stderr, "usage: tbv_ud replug DEV_A DEV_B CARRIER | relogin DEV_A DEV_B LOSS\n");
        return 2;
    }
    return failures ? 1 : 0;
}
