// The verbs test programs' queue pair between two devices of one host
// (tbv_pattern, tbv_semantics): a device's context, PD, CQ, one region and
// an RC queue pair, connected through the GID and queue pair number the
// other side hands over.
#ifndef TBV_SIDE_HPP
#define TBV_SIDE_HPP

#include <infiniband/verbs.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace tbv_test {

[[noreturn]] inline void die(const std::string &what)
{
    std::printf("FAIL: %s: %s\n", what.c_str(), std::strerror(errno));
    std::exit(1);
}

// The device of that name, opened.
inline ibv_context *open_device(const char *name)
{
    int n = 0;
    ibv_device **list = ibv_get_device_list(&n);
    ibv_context *ctx = nullptr;
    for (int i = 0; list && i < n && !ctx; i++)
        if (std::strcmp(ibv_get_device_name(list[i]), name) == 0)
            ctx = ibv_open_device(list[i]);
    if (list)
        ibv_free_device_list(list);
    if (!ctx)
        die(std::string("open ") + name);
    return ctx;
}

// What the other side needs to connect to a queue pair.
struct qp_addr {
    uint32_t qpn;
    ibv_gid gid;
};

// One device's queue pair, its completion queue(s) and one region.
struct side {
    ibv_context *ctx = nullptr;
    ibv_pd *pd = nullptr;
    ibv_comp_channel *channel = nullptr;
    ibv_cq *cq = nullptr;
    ibv_cq *rcq = nullptr;  // the receive CQ: cq, or its own with events
    ibv_qp *qp = nullptr;
    ibv_mr *mr = nullptr;
    ibv_srq *srq = nullptr;
    std::vector<uint8_t> mem;

    // qp_access: the queue pair's access flags at INIT; recv_sge: its
    // receives' scatter entries; srq_wr: not 0, its receives come from a
    // shared receive queue of that many; events: send and receive
    // completions go to two CQs, both on one completion channel.
    explicit side(const char *name, size_t bytes,
                  int qp_access = IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ, uint32_t recv_sge = 1,
                  uint32_t srq_wr = 0, bool events = false)
        : ctx(open_device(name)), mem(bytes, 0)
    {
        pd = ibv_alloc_pd(ctx);
        if (events && !(channel = ibv_create_comp_channel(ctx)))
            die("completion channel");
        cq = pd ? ibv_create_cq(ctx, 512, nullptr, channel, 0) : nullptr;
        rcq = cq && events ? ibv_create_cq(ctx, 512, nullptr, channel, 0) : cq;
        if (!rcq)
            die("PD and CQs");
        mr = ibv_reg_mr(pd, mem.data(), mem.size(),
                        IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ |
                            IBV_ACCESS_REMOTE_ATOMIC);
        if (srq_wr) {
            ibv_srq_init_attr sa{};
            sa.attr.max_wr = srq_wr;
            sa.attr.max_sge = recv_sge;
            srq = ibv_create_srq(pd, &sa);
            if (!srq)
                die("SRQ");
        }
        ibv_qp_init_attr ia{};
        ia.srq = srq;
        ia.send_cq = cq;
        ia.recv_cq = rcq;
        ia.qp_type = IBV_QPT_RC;
        ia.cap.max_send_wr = 64;
        ia.cap.max_recv_wr = 64;
        ia.cap.max_send_sge = 1;
        ia.cap.max_recv_sge = recv_sge;
        ia.cap.max_inline_data = 64;
        qp = mr ? ibv_create_qp(pd, &ia) : nullptr;
        if (!qp)
            die("MR and QP");
        init(qp_access);
    }
    void init(int qp_access)
    {
        ibv_qp_attr a{};
        a.qp_state = IBV_QPS_INIT;
        a.port_num = 1;
        a.qp_access_flags = qp_access;
        if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS))
            die("INIT");
    }
    ~side()
    {
        ibv_destroy_qp(qp);
        if (srq)
            ibv_destroy_srq(srq);
        ibv_dereg_mr(mr);
        if (rcq != cq)
            ibv_destroy_cq(rcq);
        ibv_destroy_cq(cq);
        if (channel)
            ibv_destroy_comp_channel(channel);
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

    int state()
    {
        ibv_qp_attr a{};
        ibv_qp_init_attr ia{};
        return ibv_query_qp(qp, &a, IBV_QP_STATE, &ia) ? -1 : a.qp_state;
    }
    int move_to(ibv_qp_state state)
    {
        ibv_qp_attr a{};
        a.qp_state = state;
        return ibv_modify_qp(qp, &a, IBV_QP_STATE);
    }

    uint64_t at(size_t off) const { return reinterpret_cast<uintptr_t>(mem.data() + off); }

    int post(ibv_wr_opcode op, uint64_t wr_id, size_t off, uint32_t len, uint64_t raddr, uint32_t rkey,
             unsigned flags = IBV_SEND_SIGNALED, uint32_t imm = 0)
    {
        return post(op, wr_id, ibv_sge{at(off), len, mr->lkey}, raddr, rkey, flags, imm);
    }
    // The same from any region's bytes.
    int post(ibv_wr_opcode op, uint64_t wr_id, ibv_sge sge, uint64_t raddr, uint32_t rkey,
             unsigned flags = IBV_SEND_SIGNALED, uint32_t imm = 0)
    {
        const uint32_t len = sge.length;
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
        return post_recv(wr_id, ibv_sge{at(off), len, mr->lkey});
    }
    int post_recv(uint64_t wr_id, ibv_sge sge)
    {
        const uint32_t len = sge.length;
        ibv_recv_wr wr{}, *bad = nullptr;
        wr.wr_id = wr_id;
        wr.sg_list = &sge;
        wr.num_sge = len ? 1 : 0;
        return srq ? ibv_post_srq_recv(srq, &wr, &bad) : ibv_post_recv(qp, &wr, &bad);
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

}  // namespace tbv_test

#endif  // TBV_SIDE_HPP
