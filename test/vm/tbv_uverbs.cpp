// tbv_uverbs: talks to a tbrdma_ib device through the kernel's uverbs
// commands themselves (write() on /dev/infiniband/uverbsN, the ABI
// libibverbs falls back to, and the driver's doorbell ioctl), below any
// userspace provider: what the kernel side answers and refuses, and that
// a process holding the device is let go when the device goes
// (disassociate).
//
//   tbv_uverbs check DEV LINK   the context names LINK; device, port, PDs;
//                               bad handles (also to the doorbell) and a
//                               second context refused
//   tbv_uverbs hold DEV READY   a context and a PD, then READY is created;
//                               once READY.go appears, the next command
//                               and the doorbell must fail with EIO (the
//                               device was taken)
//
// Prints PASS:/FAIL: lines; exit status 0 only if every check passed.
#include <infiniband/verbs.h>
#include <rdma/ib_user_verbs.h>
#include <rdma/rdma_user_ioctl.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rdma/tbrdma_ib_abi.h"
#include "tbv_check.hpp"

using tbv_test::check;
using tbv_test::failures;

namespace {

class uverbs_file {
public:
    explicit uverbs_file(const char *path) noexcept : fd_(open(path, O_RDWR | O_CLOEXEC)) {}
    uverbs_file(const uverbs_file &) = delete;
    uverbs_file &operator=(const uverbs_file &) = delete;
    ~uverbs_file()
    {
        if (fd_ >= 0)
            close(fd_);
    }
    bool ok() const noexcept { return fd_ >= 0; }

    // One command: header, then cmd (whose first 8 bytes are the response
    // address for commands that answer), resp_len bytes of answer there.
    // Returns 0 or the errno.
    template <typename Cmd>
    int run(uint32_t command, const Cmd &cmd, size_t resp_len) noexcept
    {
        struct {
            ib_uverbs_cmd_hdr hdr;
            Cmd cmd;
        } msg{};
        static_assert(sizeof(msg) % 4 == 0, "uverbs counts 4-byte words");
        msg.hdr.command = command;
        msg.hdr.in_words = sizeof(msg) / 4;
        msg.hdr.out_words = resp_len / 4;
        msg.cmd = cmd;
        ssize_t n = write(fd_, &msg, sizeof(msg));
        return n == static_cast<ssize_t>(sizeof(msg)) ? 0 : n < 0 ? errno : EIO;
    }

    // The doorbell method (the ioctl path) on queue pair handle qp.
    // Returns 0 or the errno.
    int doorbell(uint32_t qp) const noexcept
    {
        // The header ends in its attributes, a flexible array.
        alignas(ib_uverbs_ioctl_hdr) unsigned char msg[sizeof(ib_uverbs_ioctl_hdr) +
                                                       sizeof(ib_uverbs_attr)]{};
        auto *hdr = reinterpret_cast<ib_uverbs_ioctl_hdr *>(msg);
        hdr->length = sizeof(msg);
        hdr->object_id = UVERBS_OBJECT_QP;
        hdr->method_id = TBRDMA_IB_METHOD_QP_DOORBELL;
        hdr->num_attrs = 1;
        hdr->driver_id = RDMA_DRIVER_UNKNOWN;
        hdr->attrs[0].attr_id = TBRDMA_IB_ATTR_DOORBELL_QP;
        hdr->attrs[0].data = qp;
        return ioctl(fd_, RDMA_VERBS_IOCTL, msg) == 0 ? 0 : errno;
    }

private:
    int fd_;
};

// GET_CONTEXT's response (ib_uverbs_get_context_resp, which ends in a
// flexible array), the driver's part after the core's.
struct context_resp {
    uint32_t async_event_fd;
    uint32_t num_comp_vectors;
    tbrdma_ib_alloc_ucontext_resp drv;
};
static_assert(sizeof(ib_uverbs_get_context_resp) == offsetof(context_resp, drv),
              "the driver's part follows the core's");

// A command with a response: its response address first.
struct response_cmd {
    uint64_t response;
};

int get_context(uverbs_file &f, context_resp &resp) noexcept
{
    response_cmd cmd{reinterpret_cast<uintptr_t>(&resp)};
    int err = f.run(IB_USER_VERBS_CMD_GET_CONTEXT, cmd, sizeof(resp));
    if (!err)
        close(resp.async_event_fd);
    return err;
}

int alloc_pd(uverbs_file &f, uint32_t &handle) noexcept
{
    ib_uverbs_alloc_pd_resp resp{};
    response_cmd cmd{reinterpret_cast<uintptr_t>(&resp)};
    int err = f.run(IB_USER_VERBS_CMD_ALLOC_PD, cmd, sizeof(resp));
    handle = resp.pd_handle;
    return err;
}

int dealloc_pd(uverbs_file &f, uint32_t handle) noexcept
{
    ib_uverbs_dealloc_pd cmd{handle};
    return f.run(IB_USER_VERBS_CMD_DEALLOC_PD, cmd, 0);
}

int query_device(uverbs_file &f, ib_uverbs_query_device_resp &resp) noexcept
{
    response_cmd cmd{reinterpret_cast<uintptr_t>(&resp)};
    return f.run(IB_USER_VERBS_CMD_QUERY_DEVICE, cmd, sizeof(resp));
}

int run_check(const char *dev, uint32_t link)
{
    uverbs_file f(dev);
    check(f.ok(), std::string("open ") + dev);
    if (!f.ok())
        return 1;
    context_resp ctx{};
    check(get_context(f, ctx) == 0, "GET_CONTEXT");
    check(ctx.num_comp_vectors == 1, "one completion vector");
    check(ctx.drv.link == link, "the context names link " + std::to_string(link) + " (got " +
                                    std::to_string(ctx.drv.link) + ")");
    context_resp again{};
    check(get_context(f, again) == EINVAL, "a second GET_CONTEXT on the file is refused");

    ib_uverbs_query_device_resp devattr{};
    check(query_device(f, devattr) == 0, "QUERY_DEVICE");
    check(devattr.node_guid != 0 && devattr.node_guid == devattr.sys_image_guid,
          "node GUID set, and the system image's");
    check(devattr.phys_port_cnt == 1 && devattr.max_pd > 0, "one port, protection domains");

    ib_uverbs_query_port_resp port{};
    struct {
        uint64_t response;
        uint8_t port_num;
        uint8_t reserved[7];
    } qp{reinterpret_cast<uintptr_t>(&port), 1, {}};
    check(f.run(IB_USER_VERBS_CMD_QUERY_PORT, qp, sizeof(port)) == 0, "QUERY_PORT 1");
    check(port.link_layer == IBV_LINK_LAYER_ETHERNET, "port 1 is Ethernet (RoCE)");
    check(port.state == IBV_PORT_ACTIVE, "port 1 is active (state " + std::to_string(port.state) + ")");
    check(port.gid_tbl_len > 0 && port.pkey_tbl_len == 1, "GID and P_Key tables");
    qp.port_num = 2;
    check(f.run(IB_USER_VERBS_CMD_QUERY_PORT, qp, sizeof(port)) == EINVAL,
          "QUERY_PORT 2 is refused");

    constexpr int npd = 64;
    uint32_t pd[npd];
    bool all = true;
    for (int i = 0; i < npd; i++)
        all = all && alloc_pd(f, pd[i]) == 0;
    check(all, "ALLOC_PD x " + std::to_string(npd));
    all = true;
    for (int i = 0; i < npd; i += 2)
        all = all && dealloc_pd(f, pd[i]) == 0;
    check(all, "DEALLOC_PD of every other one");
    int err = dealloc_pd(f, pd[0]);
    check(err != 0, "DEALLOC_PD of a freed handle is refused (" + std::string(strerror(err)) + ")");
    err = dealloc_pd(f, 0xfffffff0u);
    check(err != 0, "DEALLOC_PD of an unknown handle is refused (" + std::string(strerror(err)) + ")");

    // The doorbell is the driver's ioctl method; the post_send() write()
    // it replaced is not offered. Handles that name no queue pair of this
    // file are refused before the driver sees them.
    ib_uverbs_post_send ps{};
    ps.wqe_size = sizeof(ib_uverbs_send_wr);
    err = f.run(IB_USER_VERBS_CMD_POST_SEND, ps, sizeof(ib_uverbs_post_send_resp));
    check(err == EOPNOTSUPP, "POST_SEND is not offered (" + std::string(strerror(err)) + ")");
    err = f.doorbell(0xfffffff0u);
    check(err == ENOENT, "the doorbell of an unknown handle is refused (" + std::string(strerror(err)) + ")");
    err = f.doorbell(pd[1]);
    check(err == EINVAL, "the doorbell of a PD's handle is refused (" + std::string(strerror(err)) + ")");
    // The odd ones go with the file. (max_pd is per user: tbv_semantics.)
    return failures ? 1 : 0;
}

int run_hold(const char *dev, const std::string &ready)
{
    uverbs_file f(dev);
    context_resp ctx{};
    uint32_t pd = 0;
    check(f.ok() && get_context(f, ctx) == 0 && alloc_pd(f, pd) == 0,
          std::string("holder: a context and a PD on ") + dev);
    if (failures)
        return 1;
    FILE *r = std::fopen(ready.c_str(), "w");
    if (r)
        std::fclose(r);
    struct stat st;
    std::string go = ready + ".go";
    for (int i = 0; i < 6000 && stat(go.c_str(), &st) != 0; i++)
        usleep(10000);
    ib_uverbs_query_device_resp devattr{};
    int err = query_device(f, devattr);
    check(err == EIO, "holder: the device was taken away: EIO (got " + std::string(strerror(err)) +
                          ")");
    // The core dropped the driver's methods with the device.
    err = f.doorbell(pd);
    check(err == EIO, "holder: the doorbell method went with it: EIO (got " +
                          std::string(strerror(err)) + ")");
    return failures ? 1 : 0;
}

} // namespace

int main(int argc, char **argv)
{
    if (argc == 4 && std::strcmp(argv[1], "check") == 0)
        return run_check(argv[2], static_cast<uint32_t>(std::strtoul(argv[3], nullptr, 0)));
    if (argc == 4 && std::strcmp(argv[1], "hold") == 0)
        return run_hold(argv[2], argv[3]);
    std::fprintf(stderr, "usage: tbv_uverbs check DEV LINK | hold DEV READY\n");
    return 2;
}
