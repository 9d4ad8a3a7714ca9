// tbv_quota: what one user may hold of tbrdma's objects in the host, so
// that it cannot starve the others (tbrdma.ko's max_user_* parameters;
// CAP_SYS_RESOURCE lifts them), and the largest it may make.
//
//   tbv_quota limit KIND DEV N [FILE]   makes objects of KIND until
//                                       refused: exactly N, then EMFILE;
//                                       the device's attribute for KIND
//                                       says N; with FILE, creates it and
//                                       holds them until killed
//   tbv_quota lifted KIND DEV N         makes N objects of KIND, all
//                                       granted
//   tbv_quota largest DEV               the largest queues the device's
//                                       attributes offer can be made: a
//                                       queue pair of max_qp_wr send and
//                                       receive entries, a shared receive
//                                       queue of max_srq_wr
//   tbv_quota memlock DEV               without CAP_IPC_LOCK: queue pairs'
//                                       and SRQs' rings count in VmPin
//                                       against RLIMIT_MEMLOCK (ENOMEM past
//                                       it) while they exist or are mapped,
//                                       and no longer
//
// KIND: pd (verbs protection domains), cq (completion queues), srq
// (shared receive queues), file (opens of /dev/tbrdma, each a domain of
// its own: they count as pd). DEV is an RDMA device (for file, the one
// whose attribute is checked).
//
// Prints PASS:/FAIL: lines; exit status 0 only if every check passed.
#include <infiniband/verbs.h>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "tbv_check.hpp"
#include "tbv_side.hpp"

using tbv_test::check;
using tbv_test::failures;
using tbv_test::open_device;

namespace {

// One kind of object: how to make one (nullptr and errno when refused),
// how to let it go, and the device attribute that gives its limit.
struct kind {
    std::function<void *(ibv_context *, ibv_pd *)> make;
    std::function<void(void *)> free;
    std::function<int(const ibv_device_attr &)> limit;
};

kind kind_of(const std::string &name)
{
    if (name == "pd")
        return {[](ibv_context *ctx, ibv_pd *) -> void * { return ibv_alloc_pd(ctx); },
                [](void *o) { ibv_dealloc_pd(static_cast<ibv_pd *>(o)); },
                [](const ibv_device_attr &a) { return a.max_pd; }};
    if (name == "cq")
        return {[](ibv_context *ctx, ibv_pd *) -> void * { return ibv_create_cq(ctx, 4, nullptr, nullptr, 0); },
                [](void *o) { ibv_destroy_cq(static_cast<ibv_cq *>(o)); },
                [](const ibv_device_attr &a) { return a.max_cq; }};
    if (name == "srq")
        return {[](ibv_context *, ibv_pd *pd) -> void * {
                    ibv_srq_init_attr ia{};
                    ia.attr.max_wr = 4;
                    ia.attr.max_sge = 1;
                    return ibv_create_srq(pd, &ia);
                },
                [](void *o) { ibv_destroy_srq(static_cast<ibv_srq *>(o)); },
                [](const ibv_device_attr &a) { return a.max_srq; }};
    if (name == "file")
        return {[](ibv_context *, ibv_pd *) -> void * {
                    int fd = open("/dev/tbrdma", O_RDWR | O_CLOEXEC);
                    return fd < 0 ? nullptr : reinterpret_cast<void *>(intptr_t(fd) + 1);
                },
                [](void *o) { close(int(reinterpret_cast<intptr_t>(o) - 1)); },
                [](const ibv_device_attr &a) { return a.max_pd; }};
    std::fprintf(stderr, "tbv_quota: unknown kind %s\n", name.c_str());
    std::exit(2);
}

// Up to max objects of k; errno tells why the last was refused.
std::vector<void *> make_many(const kind &k, ibv_context *ctx, ibv_pd *pd, int max)
{
    std::vector<void *> v;
    errno = 0;
    for (void *o; int(v.size()) < max && (o = k.make(ctx, pd));)
        v.push_back(o);
    return v;
}

// A context and, for SRQs, the domain they need: charged to the caller
// too (a domain against pd's limit, which these tests keep clear of).
struct holder {
    const std::string name;
    const kind k;
    ibv_context *ctx;
    ibv_pd *pd = nullptr;
    std::vector<void *> objs;

    holder(const std::string &what, const char *dev)
        : name(what), k(kind_of(what)), ctx(open_device(dev))
    {
        if (what == "srq" && !(pd = ibv_alloc_pd(ctx)))
            tbv_test::die("a PD for the SRQs");
    }
    ~holder()
    {
        for (void *o : objs)
            k.free(o);
        if (pd)
            ibv_dealloc_pd(pd);
        ibv_close_device(ctx);
    }
    holder(const holder &) = delete;
    holder &operator=(const holder &) = delete;
};

void limit(const char *what, const char *dev, int expect, const char *hold)
{
    holder h(what, dev);
    ibv_device_attr attr{};
    const int qerr = ibv_query_device(h.ctx, &attr);
    check(qerr == 0 && h.k.limit(attr) == expect,
          h.name + ": the device says " + std::to_string(h.k.limit(attr)) + " (expected " +
              std::to_string(expect) + ")");
    h.objs = make_many(h.k, h.ctx, h.pd, expect + 1);
    const int err = errno;
    check(int(h.objs.size()) == expect && err == EMFILE,
          h.name + ": " + std::to_string(h.objs.size()) + ", then " + std::strerror(err) + " (expected " +
              std::to_string(expect) + ", then EMFILE)");
    if (hold) {
        std::fflush(stdout);  // killed in pause(): its lines are out
        std::ofstream(hold) << "held\n";
        pause();
    }
}

void lifted(const char *what, const char *dev, int n)
{
    holder h(what, dev);
    h.objs = make_many(h.k, h.ctx, h.pd, n);
    check(int(h.objs.size()) == n, h.name + " (lifted): " + std::to_string(h.objs.size()) + "/" +
                                       std::to_string(n));
}

// An RC queue pair of wr send and receive entries, on one CQ.
ibv_qp *rc_qp(ibv_pd *pd, ibv_cq *cq, int wr)
{
    ibv_qp_init_attr ia{};
    ia.send_cq = cq;
    ia.recv_cq = cq;
    ia.qp_type = IBV_QPT_RC;
    ia.cap.max_send_wr = uint32_t(wr);
    ia.cap.max_recv_wr = uint32_t(wr);
    ia.cap.max_send_sge = 1;
    ia.cap.max_recv_sge = 1;
    return ibv_create_qp(pd, &ia);
}

void largest(const char *dev)
{
    ibv_context *ctx = open_device(dev);
    ibv_device_attr attr{};
    ibv_pd *pd = nullptr;
    ibv_cq *cq = nullptr;
    if (ibv_query_device(ctx, &attr) || !(pd = ibv_alloc_pd(ctx)) ||
        !(cq = ibv_create_cq(ctx, attr.max_qp_wr, nullptr, nullptr, 0)))
        tbv_test::die("attributes, a PD and a CQ");
    ibv_qp *qp = rc_qp(pd, cq, attr.max_qp_wr);
    check(qp != nullptr, "largest: a queue pair of " + std::to_string(attr.max_qp_wr) +
                             " send and receive entries (" + std::strerror(qp ? 0 : errno) + ")");
    ibv_srq_init_attr sa{};
    sa.attr.max_wr = attr.max_srq_wr;
    sa.attr.max_sge = 1;
    ibv_srq *srq = ibv_create_srq(pd, &sa);
    check(srq != nullptr, "largest: a shared receive queue of " + std::to_string(attr.max_srq_wr) +
                              " entries (" + std::strerror(srq ? 0 : errno) + ")");
    if (srq)
        ibv_destroy_srq(srq);
    if (qp)
        ibv_destroy_qp(qp);
    ibv_destroy_cq(cq);
    ibv_dealloc_pd(pd);
    ibv_close_device(ctx);
}

long vmpin_kb(pid_t pid = 0)
{
    std::ifstream f(pid ? "/proc/" + std::to_string(pid) + "/status" : std::string("/proc/self/status"));
    for (std::string line; std::getline(f, line);)
        if (line.rfind("VmPin:", 0) == 0)
            return std::atol(line.c_str() + 6);
    return -1;
}

std::string kb(long n)
{
    return std::to_string(n) + " kB";
}

void memlock(const char *dev)
{
    const long base = vmpin_kb();
    ibv_context *ctx = open_device(dev);
    ibv_pd *pd = ibv_alloc_pd(ctx);
    ibv_cq *cq = pd ? ibv_create_cq(ctx, 64, nullptr, nullptr, 0) : nullptr;
    if (!cq)
        tbv_test::die("a PD and a CQ");

    ibv_srq_init_attr sa{};
    sa.attr.max_wr = 64;
    sa.attr.max_sge = 1;
    ibv_srq *srq = ibv_create_srq(pd, &sa);
    const long srq_kb = vmpin_kb() - base;
    check(srq && srq_kb > 0, "memlock: an SRQ's ring counts in VmPin: " + kb(srq_kb));
    if (srq)
        ibv_destroy_srq(srq);

    ibv_qp *qp = rc_qp(pd, cq, 16);
    const long one = vmpin_kb() - base;
    check(qp && one > 0, "memlock: a queue pair's rings count in VmPin: " + kb(one));
    if (!qp)
        tbv_test::die("a queue pair");

    // Room for one queue pair's rings and a half.
    rlimit rl{};
    getrlimit(RLIMIT_MEMLOCK, &rl);
    rl.rlim_cur = rlim_t(base + one + one / 2) * 1024;
    if (setrlimit(RLIMIT_MEMLOCK, &rl))
        tbv_test::die("lowering RLIMIT_MEMLOCK");
    errno = 0;
    ibv_qp *second = rc_qp(pd, cq, 16);
    const int err = errno;
    check(!second && err == ENOMEM && vmpin_kb() == base + one,
          std::string("memlock: a second queue pair past the limit: ") +
              (second ? "made" : std::strerror(err)) + ", VmPin " + kb(vmpin_kb() - base) +
              " (expected ENOMEM, " + kb(one) + ")");
    if (second)
        ibv_destroy_qp(second);

    // Each one destroyed gives its charge back once the provider unmaps it.
    int made = 0;
    for (; made < 20; ++made) {
        ibv_destroy_qp(qp);
        if (!(qp = rc_qp(pd, cq, 16)))
            break;
    }
    check(made == 20 && vmpin_kb() == base + one,
          "memlock: 20 queue pairs destroyed and made again within the limit (" + std::to_string(made) +
              "), VmPin " + kb(vmpin_kb() - base));
    if (!qp)
        tbv_test::die("a queue pair");

    // A child inherits the mappings: the rings stay charged while it lives.
    int hold[2];
    if (pipe(hold))
        tbv_test::die("pipe");
    const pid_t child = fork();
    if (child == 0) {
        char c;
        close(hold[1]);
        _exit(read(hold[0], &c, 1) < 0);
    }
    close(hold[0]);
    ibv_destroy_qp(qp);
    errno = 0;
    qp = rc_qp(pd, cq, 16);
    const int held_err = errno;
    check(!qp && held_err == ENOMEM,
          std::string("memlock: rings a child still maps stay charged after their queue pair went: ") +
              (qp ? "a new one fit" : std::strerror(held_err)));
    if (qp)
        ibv_destroy_qp(std::exchange(qp, nullptr));
    close(hold[1]);
    waitpid(child, nullptr, 0);
    // Its mappings go with its mm, which another task may still hold a moment.
    for (int tries = 0; !qp && tries < 100; ++tries)
        if (!(qp = rc_qp(pd, cq, 16)))
            usleep(10000);
    check(qp != nullptr, "memlock: once the child is gone, a new queue pair fits");
    if (qp)
        ibv_destroy_qp(qp);

    // A child making queues on the context it inherited is charged itself.
    std::fflush(stdout);
    const pid_t maker = fork();
    if (maker == 0) {
        failures = 0;
        // Its sweep also releases the parent's last destroyed rings.
        ibv_qp *own = rc_qp(pd, cq, 16);
        check(own && vmpin_kb() == one && vmpin_kb(getppid()) == base,
              "memlock: a child's queue pair on its parent's context: child's VmPin " + kb(vmpin_kb()) +
                  ", parent's " + kb(vmpin_kb(getppid()) - base) + " more than before it opened the device" +
                  " (expected " + kb(one) + ", 0 kB)");
        if (own)
            ibv_destroy_qp(own);
        std::fflush(stdout);
        _exit(failures ? 1 : 0);
    }
    int status = 0;
    check(waitpid(maker, &status, 0) == maker && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "memlock: the child's checks");

    ibv_destroy_cq(cq);
    ibv_dealloc_pd(pd);
    ibv_close_device(ctx);
    check(vmpin_kb() == base, "memlock: the device closed, VmPin is back: " + kb(vmpin_kb() - base) + " more");
}

}  // namespace

int main(int argc, char **argv)
{
    const std::string what = argc > 1 ? argv[1] : "";
    if (what == "limit" && (argc == 5 || argc == 6))
        limit(argv[2], argv[3], std::atoi(argv[4]), argc == 6 ? argv[5] : nullptr);
    else if (what == "lifted" && argc == 5)
        lifted(argv[2], argv[3], std::atoi(argv[4]));
    else if (what == "largest" && argc == 3)
        largest(argv[2]);
    else if (what == "memlock" && argc == 3)
        memlock(argv[2]);
    else {
        std::fprintf(stderr, "usage: tbv_quota limit KIND DEV N [FILE]\n"
                             "       tbv_quota lifted KIND DEV N\n"
                             "       tbv_quota largest DEV\n"
                             "       tbv_quota memlock DEV\n");
        return 2;
    }
    return failures ? 1 : 0;
}
