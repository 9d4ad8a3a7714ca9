// SPDX-License-Identifier: BSD-2-Clause
#include "node.hpp"

#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include <unistd.h>

#include <ucs/async/async_fwd.h>

namespace uctest {

uct_iov_t buffer::iov(size_t off, size_t n) const
{
    uct_iov_t v{};
    v.buffer = p + off;
    v.length = n;
    v.memh = memh;
    v.stride = 0;
    v.count = 1;
    return v;
}

namespace {

// Set before main(): peer processes are forks of the test process.
const pid_t test_process = ::getpid();

void count_call(uct_completion_t *self)
{
    static_cast<completion *>(self)->calls++;
}

// The component named "tb" (registered by the LD_PRELOADed module).
uct_component_h find_tb()
{
    uct_component_h *comps = nullptr;
    unsigned n = 0;
    must(uct_query_components(&comps, &n), "uct_query_components");
    uct_component_h found = nullptr;
    for (unsigned i = 0; i < n && !found; i++) {
        uct_component_attr_t a{};
        a.field_mask = UCT_COMPONENT_ATTR_FIELD_NAME;
        if (uct_component_query(comps[i], &a) == UCS_OK && !std::strcmp(a.name, "tb"))
            found = comps[i];
    }
    uct_release_component_list(comps);
    if (!found)
        throw std::runtime_error("no UCT component 'tb': is the module LD_PRELOADed "
                                 "(run through run-uct.sh, or set TB_UCT_LIB)?");
    return found;
}

std::string md_name_of(uct_component_h comp)
{
    uct_component_attr_t a{};
    a.field_mask = UCT_COMPONENT_ATTR_FIELD_MD_RESOURCE_COUNT;
    must(uct_component_query(comp, &a), "uct_component_query(count)");
    if (a.md_resource_count < 1)
        throw std::runtime_error("component tb has no memory domain");
    std::vector<uct_md_resource_desc_t> res(a.md_resource_count);
    a.field_mask = UCT_COMPONENT_ATTR_FIELD_MD_RESOURCES;
    a.md_resources = res.data();
    must(uct_component_query(comp, &a), "uct_component_query(resources)");
    return res[0].md_name;
}

// UCX 1.18 names a setting with its table's prefix (TB_TX_QUEUE_LEN),
// 1.13 without it.
ucs_status_t config_modify(void *config, const std::string &name, const std::string &value)
{
    ucs_status_t s = uct_config_modify(config, name.c_str(), value.c_str());
    if (s == UCS_ERR_NO_ELEM)
        s = uct_config_modify(config, ("TB_" + name).c_str(), value.c_str());
    return s;
}

}  // namespace

completion::completion(int n) : uct_completion_t{}
{
    func = count_call;
    count = n;
    status = UCS_OK;
}

bool on_kernel_device()
{
    const char *d = std::getenv("UCX_TB_DEVICE");
    return d && std::string(d) == "kernel";
}

boost::test_tools::assertion_result on_soft_device(boost::unit_test::test_unit_id)
{
    boost::test_tools::assertion_result r(!on_kernel_device());
    r.message() << "needs the software device (UCX_TB_DEVICE=kernel)";
    return r;
}

const ends &test_ends()
{
    static const ends e = [] {
        ends r;
        const char *v = std::getenv("TB_TEST_ENDS");
        if (!v || !*v)
            return r;
        std::string s(v);
        size_t comma = s.find(',');
        if (comma == std::string::npos || comma == 0 || comma + 1 == s.size())
            throw std::runtime_error("TB_TEST_ENDS must be \"near,far\", not \"" + s + "\"");
        r.near_dev = s.substr(0, comma);
        r.far_dev = s.substr(comma + 1);
        return r;
    }();
    return e;
}

std::string status_str(ucs_status_t s)
{
    return std::string(ucs_status_string(s)) + " (" + std::to_string(int(s)) + ")";
}

void must(ucs_status_t s, const char *what)
{
    if (s != UCS_OK)
        throw std::runtime_error(std::string(what) + ": " + status_str(s));
}

node::node(const std::string &fabric, const node_options &o)
{
    // Read by uct_md_config_read below: this process's fabric.
    ::setenv("UCX_TB_SOFT_FABRIC", fabric.c_str(), 1);
    ::setenv("UCX_TB_DEVICE", "soft", 0);  // unless the kernel device is asked for
    comp_ = find_tb();
    std::string md_name = md_name_of(comp_);
    uct_md_config_t *md_cfg = nullptr;
    must(uct_md_config_read(comp_, nullptr, nullptr, &md_cfg), "uct_md_config_read");
    ucs_status_t s = UCS_OK;
    for (const auto &kv : o.md_config) {
        s = config_modify(md_cfg, kv.first, kv.second);
        if (s != UCS_OK) {
            uct_config_release(md_cfg);
            must(s, ("uct_config_modify " + kv.first).c_str());
        }
    }
    s = uct_md_open(comp_, md_name.c_str(), md_cfg, &md_);
    uct_config_release(md_cfg);
    must(s, "uct_md_open");
    must(uct_md_query(md_, &md_attr_), "uct_md_query");

    uct_tl_resource_desc_t *res = nullptr;
    unsigned nres = 0;
    must(uct_md_query_tl_resources(md_, &res, &nres), "uct_md_query_tl_resources");
    const bool far = o.far_end || ::getpid() != test_process;
    const std::string &want = far ? test_ends().far_dev : test_ends().near_dev;
    for (unsigned i = 0; i < nres && dev_name_.empty(); i++)
        if (!std::strcmp(res[i].tl_name, "tb") && (want.empty() || want == res[i].dev_name))
            dev_name_ = res[i].dev_name;
    uct_release_tl_resource_list(res);
    if (dev_name_.empty())
        throw std::runtime_error(want.empty() ? "the tb memory domain has no tb device"
                                              : "the tb memory domain has no device " + want);

    // Polled async context: no thread, nothing to go wrong across fork.
    must(ucs_async_context_create(UCS_ASYNC_MODE_POLL, &async_), "ucs_async_context_create");
    must(uct_worker_create(async_, UCS_THREAD_MODE_SINGLE, &worker_), "uct_worker_create");

    uct_iface_config_t *if_cfg = nullptr;
    must(uct_md_iface_config_read(md_, "tb", nullptr, nullptr, &if_cfg),
         "uct_md_iface_config_read");
    for (const auto &kv : o.iface_config) {
        s = config_modify(if_cfg, kv.first, kv.second);
        if (s != UCS_OK) {
            uct_config_release(if_cfg);
            must(s, ("uct_config_modify " + kv.first).c_str());
        }
    }
    uct_iface_params_t p{};
    p.field_mask = UCT_IFACE_PARAM_FIELD_OPEN_MODE | UCT_IFACE_PARAM_FIELD_DEVICE;
    p.open_mode = UCT_IFACE_OPEN_MODE_DEVICE;
    p.mode.device.tl_name = "tb";
    p.mode.device.dev_name = dev_name_.c_str();
    if (o.err_handler) {
        p.field_mask |= UCT_IFACE_PARAM_FIELD_ERR_HANDLER |
                        UCT_IFACE_PARAM_FIELD_ERR_HANDLER_ARG |
                        UCT_IFACE_PARAM_FIELD_ERR_HANDLER_FLAGS;
        p.err_handler = &node::on_error;
        p.err_handler_arg = this;
        p.err_handler_flags = 0;  // called from progress
    }
    s = uct_iface_open(md_, worker_, &p, if_cfg, &iface_);
    uct_config_release(if_cfg);
    must(s, "uct_iface_open");
    must(uct_iface_query(iface_, &attr_), "uct_iface_query");
    uct_iface_progress_enable(iface_, UCT_PROGRESS_SEND | UCT_PROGRESS_RECV);
}

node::~node()
{
    // Objects before the ones they use: eps, iface, memory, worker, md.
    for (uct_ep_h ep : eps_)
        uct_ep_destroy(ep);
    if (iface_)
        uct_iface_close(iface_);
    for (auto &r : rkeys_)
        uct_rkey_release(comp_, &r);
    for (auto &b : bufs_) {
        if (b->memh)
            uct_md_mem_dereg(md_, b->memh);
        std::free(b->p);
    }
    if (worker_)
        uct_worker_destroy(worker_);
    if (async_)
        ucs_async_context_destroy(async_);
    if (md_)
        uct_md_close(md_);
}

ucs_status_t node::on_error(void *arg, uct_ep_h ep, ucs_status_t status)
{
    static_cast<node *>(arg)->errors.push_back({ep, status});
    return UCS_OK;  // handled: the test destroys the ep later
}

iface_address node::address() const
{
    iface_address a;
    if (attr_.device_addr_len > sizeof(a.dev) || attr_.iface_addr_len > sizeof(a.iface))
        throw std::runtime_error("tb addresses are longer than the test allows");
    a.dev_len = static_cast<uint32_t>(attr_.device_addr_len);
    a.iface_len = static_cast<uint32_t>(attr_.iface_addr_len);
    must(uct_iface_get_device_address(iface_, reinterpret_cast<uct_device_addr_t *>(a.dev)),
         "uct_iface_get_device_address");
    must(uct_iface_get_address(iface_, reinterpret_cast<uct_iface_addr_t *>(a.iface)),
         "uct_iface_get_address");
    return a;
}

uct_ep_h node::connect(const iface_address &a)
{
    auto *dev = reinterpret_cast<const uct_device_addr_t *>(a.dev);
    auto *ifa = reinterpret_cast<const uct_iface_addr_t *>(a.iface);
    if (!uct_iface_is_reachable(iface_, dev, ifa))
        throw std::runtime_error("uct_iface_is_reachable says the peer is not reachable");
    uct_ep_params_t p{};
    p.field_mask = UCT_EP_PARAM_FIELD_IFACE | UCT_EP_PARAM_FIELD_DEV_ADDR |
                   UCT_EP_PARAM_FIELD_IFACE_ADDR;
    p.iface = iface_;
    p.dev_addr = dev;
    p.iface_addr = ifa;
    uct_ep_h ep = nullptr;
    must(uct_ep_create(&p, &ep), "uct_ep_create");
    eps_.push_back(ep);
    return ep;
}

void node::destroy_ep(uct_ep_h ep)
{
    for (auto it = eps_.begin(); it != eps_.end(); ++it) {
        if (*it == ep) {
            eps_.erase(it);
            uct_ep_destroy(ep);
            return;
        }
    }
}

buffer &node::alloc(size_t len, unsigned access)
{
    auto b = std::make_unique<buffer>();
    size_t bytes = (len + 4095) & ~size_t(4095);
    b->p = static_cast<uint8_t *>(std::aligned_alloc(4096, bytes ? bytes : 4096));
    if (!b->p)
        throw std::runtime_error("out of memory");
    b->len = len;
    ucs_status_t s = uct_md_mem_reg(md_, b->p, len, access, &b->memh);
    if (s != UCS_OK) {
        std::free(b->p);
        must(s, "uct_md_mem_reg");
    }
    bufs_.push_back(std::move(b));
    return *bufs_.back();
}

remote_mem node::pack(const buffer &b, size_t off) const
{
    remote_mem m;
    if (md_attr_.rkey_packed_size > sizeof(m.rkey))
        throw std::runtime_error("tb rkeys are longer than the test allows");
    m.addr = b.addr(off);
    m.len = b.len - off;
    m.rkey_len = static_cast<uint32_t>(md_attr_.rkey_packed_size);
    must(uct_md_mkey_pack(md_, b.memh, m.rkey), "uct_md_mkey_pack");
    return m;
}

uct_rkey_t node::unpack(const remote_mem &m)
{
    uct_rkey_bundle_t r{};
    must(uct_rkey_unpack(comp_, m.rkey, &r), "uct_rkey_unpack");
    rkeys_.push_back(r);
    return r.rkey;
}

ucs_status_t node::wait(ucs_status_t posted, completion &c, int timeout_ms)
{
    if (posted != UCS_INPROGRESS)
        return posted;
    if (!progress_until([&] { return c.done(); }, timeout_ms))
        return UCS_ERR_TIMED_OUT;
    return c.status;
}

ucs_status_t node::flush(uct_ep_h ep, unsigned flags, int timeout_ms)
{
    completion c;
    ucs_status_t s = UCS_ERR_NO_RESOURCE;
    bool posted = progress_until(
        [&] {
            s = uct_ep_flush(ep, flags, &c);
            return s != UCS_ERR_NO_RESOURCE;
        },
        timeout_ms);
    if (!posted)
        return UCS_ERR_TIMED_OUT;
    return wait(s, c, timeout_ms);
}

}  // namespace uctest
