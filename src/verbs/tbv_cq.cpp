// A completion queue: the kernel's holds nothing, so polling one is
// polling the completion rings of the queue pairs that use it, in turn,
// under one lock; arming it arms them all.
#include <algorithm>
#include <mutex>
#include <new>
#include <vector>

#include "tbv_rings.hpp"

struct tbv_cq_set {
    struct source {
        tbv_rings *rings;
        bool recv;
    };
    std::mutex mu;
    std::vector<source> sources;
    size_t next = 0;     // where the next poll starts: no queue pair starves
    bool armed = false;  // armed and no completion polled since: new rings are
};

extern "C" struct tbv_cq_set *tbv_cq_new(void) noexcept
{
    return new (std::nothrow) tbv_cq_set;
}

extern "C" void tbv_cq_free(struct tbv_cq_set *cq) noexcept
{
    delete cq;
}

namespace {

void arm(const tbv_cq_set::source &s) noexcept
{
    tbrdma_ring_ctrl *c = s.recv ? s.rings->rcq.ctrl() : s.rings->cq.ctrl();
    __atomic_store_n(&c->armed, 1, __ATOMIC_RELAXED);
}

}  // namespace

extern "C" int tbv_cq_add(struct tbv_cq_set *cq, struct tbv_rings *r, bool recv) noexcept
{
    std::lock_guard<std::mutex> g(cq->mu);
    try {
        cq->sources.push_back({r, recv});
    } catch (const std::bad_alloc &) {
        return ENOMEM;
    }
    // A queue pair created after the CQ was armed raises its event too.
    if (cq->armed) {
        arm(cq->sources.back());
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
    }
    return 0;
}

extern "C" void tbv_cq_remove(struct tbv_cq_set *cq, struct tbv_rings *r) noexcept
{
    std::lock_guard<std::mutex> g(cq->mu);
    auto &v = cq->sources;
    v.erase(std::remove_if(v.begin(), v.end(), [r](const tbv_cq_set::source &s) { return s.rings == r; }),
            v.end());
    cq->next = 0;
}

extern "C" void tbv_cq_discard(struct tbv_cq_set *cq, struct tbv_rings *r) noexcept
{
    std::lock_guard<std::mutex> g(cq->mu);
    for (const auto &s : cq->sources) {
        // A shared queue's receives complete: their buffers come back.
        if (s.rings != r || (s.recv && r->rq != &r->own_rq))
            continue;
        (s.recv ? r->rcq : r->cq).discard();
    }
}

extern "C" int tbv_cq_poll(struct tbv_cq_set *cq, int n, struct ibv_wc *wc) noexcept
{
    std::lock_guard<std::mutex> g(cq->mu);
    const size_t count = cq->sources.size();
    int got = 0;
    for (size_t k = 0; k < count && got < n; k++) {
        const tbv_cq_set::source &s = cq->sources[(cq->next + k) % count];
        tbv_rings *r = s.rings;
        if (s.recv) {
            got += r->poll_recv(wc + got, n - got);
        } else {
            // SQEs the kernel left when its poll threads stopped, or
            // that met a full queue: the caller waits for them.
            if (r->sq_stalled())
                r->cmds->doorbell(r->qp);
            got += r->poll_send(wc + got, n - got);
        }
        // An error completion puts an RC queue pair in error.
        if (r->failed.exchange(false, std::memory_order_relaxed) &&
            r->state.load(std::memory_order_acquire) != IBV_QPS_ERR)
            r->cmds->to_error(r->qp);
    }
    if (count)
        cq->next = (cq->next + 1) % count;
    if (got)
        cq->armed = false;
    return got;
}

extern "C" void tbv_cq_arm(struct tbv_cq_set *cq) noexcept
{
    std::lock_guard<std::mutex> g(cq->mu);
    cq->armed = true;
    for (const auto &s : cq->sources)
        arm(s);
    // Armed before the kernel's next look at it (tbrdma_abi.h).
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}
