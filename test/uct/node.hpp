// SPDX-License-Identifier: BSD-2-Clause
//
// One process's side of a UCT test, through the public API only: the tb
// component, its memory domain on a chosen software fabric, a worker and
// an interface on the fabric's device, endpoints, registered memory and
// unpacked remote keys. Set-up failures throw std::runtime_error.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <boost/test/unit_test.hpp>
#include <uct/api/uct.h>

namespace uctest {

// What a peer needs to connect to an interface (sent over the channel).
struct iface_address {
    uint32_t dev_len = 0, iface_len = 0;
    uint8_t dev[64] = {}, iface[64] = {};
};

// A registered buffer as the other process sees it.
struct remote_mem {
    uint64_t addr = 0, len = 0;
    uint32_t rkey_len = 0;
    uint8_t rkey[64] = {};
};

struct node_options {
    // Interface settings through uct_config_modify ("TX_QUEUE_LEN", "8").
    std::vector<std::pair<std::string, std::string>> iface_config;
    bool err_handler = false;  // install one that records (ep, status)
    // Memory domain settings, the same way ("RCACHE", "n").
    std::vector<std::pair<std::string, std::string>> md_config;
    // On the far end of the test's link (see test_ends()); a peer
    // process's nodes always are.
    bool far_end = false;
};

// Registered memory, freed with its node.
struct buffer {
    uint8_t *p = nullptr;
    size_t len = 0;
    uct_mem_h memh = nullptr;
    uint64_t addr(size_t off = 0) const { return reinterpret_cast<uintptr_t>(p + off); }
    uct_iov_t iov(size_t off, size_t n) const;
};

// A completion that counts calls; status as UCT left it (first error wins).
struct completion : uct_completion_t {
    int calls = 0;
    explicit completion(int n = 1);
    bool done() const { return calls > 0; }
};

std::string status_str(ucs_status_t s);

// UCX_TB_DEVICE=kernel: the tests run over the kernel module's loop links.
bool on_kernel_device();
// The devices of the two ends the tests talk across, from TB_TEST_ENDS
// ("near,far", e.g. "tb0,tb1": the ends of one XDomain cable, which only
// reach each other). Unset: both are the first tb device (the software
// fabric or a loop cable, whose every end reaches every other).
struct ends {
    std::string near_dev, far_dev;  // empty: the first tb device
};
const ends &test_ends();
// Boost precondition for tests that need the software device (two fabrics
// for two machines, or a stopped process that nothing serves).
boost::test_tools::assertion_result on_soft_device(boost::unit_test::test_unit_id);
// Throws unless s is UCS_OK.
void must(ucs_status_t s, const char *what);

class node {
public:
    // Sets UCX_TB_SOFT_FABRIC=fabric, then opens everything on "tb".
    explicit node(const std::string &fabric, const node_options &o = {});
    ~node();
    node(const node &) = delete;
    node &operator=(const node &) = delete;

    uct_component_h component() const { return comp_; }
    uct_md_h md() const { return md_; }
    uct_iface_h iface() const { return iface_; }
    uct_worker_h worker() const { return worker_; }
    const uct_iface_attr_t &attr() const { return attr_; }
    const uct_md_attr_t &md_attr() const { return md_attr_; }
    const std::string &dev_name() const { return dev_name_; }

    iface_address address() const;
    uct_ep_h connect(const iface_address &a);
    void destroy_ep(uct_ep_h ep);  // only for ones connect() made

    // Page aligned, registered with access (UCT_MD_MEM_ACCESS_*).
    buffer &alloc(size_t len, unsigned access = UCT_MD_MEM_ACCESS_ALL);
    remote_mem pack(const buffer &b, size_t off = 0) const;
    uct_rkey_t unpack(const remote_mem &m);

    unsigned progress() { return uct_worker_progress(worker_); }
    // Progresses until done() or timeout_ms passed; returns done().
    template <class F> bool progress_until(F done, int timeout_ms = 60000)
    {
        auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        while (!done()) {
            if (std::chrono::steady_clock::now() >= end)
                return done();
            progress();
        }
        return true;
    }
    // Waits for an operation: UCS_OK at once, or its completion's status
    // (UCS_ERR_TIMED_OUT if it never came); other returns as they are.
    ucs_status_t wait(ucs_status_t posted, completion &c, int timeout_ms = 60000);
    // uct_ep_flush (retrying on NO_RESOURCE) and wait for it.
    ucs_status_t flush(uct_ep_h ep, unsigned flags = 0, int timeout_ms = 60000);

    // What the error handler saw.
    struct ep_error {
        uct_ep_h ep;
        ucs_status_t status;
    };
    std::vector<ep_error> errors;

private:
    static ucs_status_t on_error(void *arg, uct_ep_h ep, ucs_status_t status);

    uct_component_h comp_ = nullptr;
    uct_md_h md_ = nullptr;
    uct_md_attr_t md_attr_{};
    ucs_async_context_t *async_ = nullptr;
    uct_worker_h worker_ = nullptr;
    uct_iface_h iface_ = nullptr;
    uct_iface_attr_t attr_{};
    std::string dev_name_;
    std::vector<uct_ep_h> eps_;
    std::vector<std::unique_ptr<buffer>> bufs_;
    std::vector<uct_rkey_bundle_t> rkeys_;
};

}  // namespace uctest
