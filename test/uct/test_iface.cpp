// SPDX-License-Identifier: BSD-2-Clause
//
// The interface as UCP sees it before any traffic: parameters it refuses,
// which addresses it reaches, the performance it reports (and the settings
// that override it), its limits, and a device that offers no interface it
// could not open.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "target.hpp"
#include "rdma/tbrdma_abi.h"  // the limits the transport reports

using namespace uctest;

namespace {

// uct_iface_open on n's device with extra parameters; the interface is
// closed again if it opened.
ucs_status_t try_open(node &n, const uct_iface_params_t &extra)
{
    uct_iface_config_t *cfg = nullptr;
    must(uct_md_iface_config_read(n.md(), "tb", nullptr, nullptr, &cfg), "iface config");
    uct_iface_params_t p = extra;
    p.field_mask |= UCT_IFACE_PARAM_FIELD_OPEN_MODE | UCT_IFACE_PARAM_FIELD_DEVICE;
    p.open_mode = UCT_IFACE_OPEN_MODE_DEVICE;
    p.mode.device.tl_name = "tb";
    p.mode.device.dev_name = n.dev_name().c_str();
    uct_iface_h iface = nullptr;
    ucs_status_t s = uct_iface_open(n.md(), n.worker(), &p, cfg, &iface);
    uct_config_release(cfg);
    if (s == UCS_OK)
        uct_iface_close(iface);
    return s;
}

size_t tb_devices(node &n)
{
    uct_tl_resource_desc_t *res = nullptr;
    unsigned nres = 0;
    must(uct_md_query_tl_resources(n.md(), &res, &nres), "uct_md_query_tl_resources");
    uct_release_tl_resource_list(res);
    return nres;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(iface)

// An impossible AM alignment is refused, not ignored.
BOOST_AUTO_TEST_CASE(invalid_am_alignment)
{
    node n(unique_fabric("uct"));
    uct_iface_params_t p{};
    p.field_mask = UCT_IFACE_PARAM_FIELD_AM_ALIGNMENT;
    for (size_t bad : {0, 3, 12}) {
        p.am_alignment = bad;
        BOOST_CHECK_EQUAL(try_open(n, p), UCS_ERR_INVALID_PARAM);
    }
    // The offset must be below the alignment, and means nothing without it.
    p.field_mask |= UCT_IFACE_PARAM_FIELD_AM_ALIGN_OFFSET;
    p.am_alignment = 8;
    p.am_align_offset = 8;
    BOOST_CHECK_EQUAL(try_open(n, p), UCS_ERR_INVALID_PARAM);
    p.am_align_offset = 7;
    BOOST_CHECK_EQUAL(try_open(n, p), UCS_OK);
    p.field_mask = UCT_IFACE_PARAM_FIELD_AM_ALIGN_OFFSET;
    BOOST_CHECK_EQUAL(try_open(n, p), UCS_ERR_INVALID_PARAM);
}

// am_zcopy refuses a header longer than max_hdr instead of sending it.
BOOST_AUTO_TEST_CASE(am_zcopy_header_limit)
{
    const std::string fabric = unique_fabric("uct");
    node n(fabric);
    node_options far;
    far.far_end = true;
    node target(fabric, far);
    uct_ep_h ep = n.connect(target.address());
    buffer &b = n.alloc(4096);
    size_t max_hdr = n.attr().cap.am.max_hdr;
    uct_iov_t iov = b.iov(0, 8);
    BOOST_CHECK_EQUAL(uct_ep_am_zcopy(ep, 1, b.p, unsigned(max_hdr + 1), &iov, 1, 0, nullptr),
                      UCS_ERR_INVALID_PARAM);
}

// A device address is the cable's identity and this end of it. The far
// end reaches; so does this end where one device is both ends (the
// software fabric, a loop cable), but not on an XDomain cable, whose ends
// are two devices, each only reaching the other. Another identity, or none
// (a link not logged in), is not reachable.
BOOST_AUTO_TEST_CASE(reachability)
{
    const std::string fabric = unique_fabric("uct");
    node n(fabric);
    node_options far;
    far.far_end = true;
    node peer(fabric, far);
    iface_address a = n.address();
    BOOST_REQUIRE_EQUAL(a.dev_len, 16u);  // identity, end
    auto reachable = [&](const iface_address &x) {
        return uct_iface_is_reachable(n.iface(),
                                      reinterpret_cast<const uct_device_addr_t *>(x.dev),
                                      reinterpret_cast<const uct_iface_addr_t *>(x.iface)) != 0;
    };
    BOOST_CHECK(reachable(peer.address()));
    BOOST_CHECK_EQUAL(reachable(a), peer.dev_name() == n.dev_name());
    iface_address other_end = a;
    other_end.dev[8] ^= 1;
    BOOST_CHECK(reachable(other_end));
    iface_address other_cable = a;
    other_cable.dev[0] ^= 1;
    BOOST_CHECK(!reachable(other_cable));
    iface_address no_login = a;
    std::memset(no_login.dev, 0, 8);
    BOOST_CHECK(!reachable(no_login));
}

// What UCP's model of tb is made of: the link's rate less its headers, in
// each direction and shared by every process on the cable, its latency,
// and the cost of posting; UCX_TB_BW/LATENCY/OVERHEAD replace them.
BOOST_AUTO_TEST_CASE(performance_model)
{
    node n(unique_fabric("uct"));
    const uct_iface_attr_t &a = n.attr();
    BOOST_TEST_MESSAGE("bandwidth shared " << a.bandwidth.shared / 1e6 << " MB/s, dedicated "
                                           << a.bandwidth.dedicated << ", latency "
                                           << a.latency.c * 1e6 << " us, overhead "
                                           << a.overhead * 1e9 << " ns");
    BOOST_CHECK_EQUAL(a.bandwidth.dedicated, 0);
    BOOST_CHECK_GT(a.bandwidth.shared, 0);
    BOOST_CHECK_GT(a.latency.c, 0);
    BOOST_CHECK_GT(a.overhead, 0);
    // The software link and the loop cables at 40 Gb/s; TBRDMA_SEND_MAX of every
    // 4096 bytes are data.
    BOOST_CHECK_CLOSE(a.bandwidth.shared, 40e9 / 8 * TBRDMA_SEND_MAX / 4096, 0.01);
    node_options o{{{"BW", "100MBs"}, {"LATENCY", "5us"}, {"OVERHEAD", "2us"}}, false, {}};
    node m(unique_fabric("uct"), o);
    BOOST_CHECK_CLOSE(m.attr().bandwidth.shared, 100.0 * 1024 * 1024, 0.01);
    BOOST_CHECK_CLOSE(m.attr().latency.c, 5e-6, 1);
    BOOST_CHECK_CLOSE(m.attr().overhead, 2e-6, 1);
}

// Every interface is a context of the device: once they are all taken the
// memory domain offers no device, so UCP does not fail to open one (which
// would fail the whole worker). Endpoints per interface are reported.
BOOST_AUTO_TEST_CASE(limits_are_reported)
{
    node n(unique_fabric("uct"));
    BOOST_CHECK_GE(n.attr().max_num_eps, 2048u);
    const size_t devices = tb_devices(n);  // soft0, or the kernel's loops
    BOOST_REQUIRE_GE(devices, 1u);
    std::vector<uct_iface_h> more;
    uct_iface_config_t *cfg = nullptr;
    must(uct_md_iface_config_read(n.md(), "tb", nullptr, nullptr, &cfg), "iface config");
    uct_iface_params_t p{};
    p.field_mask = UCT_IFACE_PARAM_FIELD_OPEN_MODE | UCT_IFACE_PARAM_FIELD_DEVICE;
    p.open_mode = UCT_IFACE_OPEN_MODE_DEVICE;
    p.mode.device.tl_name = "tb";
    p.mode.device.dev_name = n.dev_name().c_str();
    while (tb_devices(n) && more.size() < 64) {
        uct_iface_h i = nullptr;
        BOOST_REQUIRE_EQUAL(uct_iface_open(n.md(), n.worker(), &p, cfg, &i), UCS_OK);
        more.push_back(i);
    }
    BOOST_TEST_MESSAGE("no device offered after " << more.size() + 1 << " interfaces");
    BOOST_CHECK_EQUAL(tb_devices(n), 0u);
    uct_iface_close(more.back());
    more.pop_back();
    BOOST_CHECK_EQUAL(tb_devices(n), devices);
    for (uct_iface_h i : more)
        uct_iface_close(i);
    uct_config_release(cfg);
}

BOOST_AUTO_TEST_SUITE_END()
