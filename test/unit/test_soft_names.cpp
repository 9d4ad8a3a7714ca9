// SPDX-License-Identifier: BSD-2-Clause
//
// The software fabric's shared-memory names are predictable (the fabric's
// name, the processes' ids), so another user can make an object of such a
// name first. One that is not ours alone is refused with EACCES, never
// used: its owner would read and forge the frames on it.
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "device_under_test.hpp"
#include "soft_fabric.hpp"

using namespace tbtest;

namespace {

// An object made before the fabric's processes look for it, with mode
// and, as root, owner; unlinked at the end.
struct planted {
    std::string name;
    planted(std::string n, mode_t mode, uid_t owner) : name(std::move(n))
    {
        int fd = ::shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
        BOOST_REQUIRE_GE(fd, 0);
        BOOST_REQUIRE_EQUAL(::ftruncate(fd, 1 << 20), 0);
        BOOST_REQUIRE_EQUAL(::fchmod(fd, mode), 0);
        if (owner != ::geteuid())
            BOOST_REQUIRE_EQUAL(::fchown(fd, owner, static_cast<gid_t>(-1)), 0);
        ::close(fd);
    }
    ~planted() { ::shm_unlink(name.c_str()); }
};

// Modes and owners a planted object is made with: readable by others; and,
// where this process may give objects away (root), another user's.
std::vector<std::pair<mode_t, uid_t>> not_ours_alone()
{
    std::vector<std::pair<mode_t, uid_t>> v{{0644, ::geteuid()}, {0666, ::geteuid()}};
    if (::geteuid() == 0)
        v.emplace_back(0600, 65534);
    return v;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(soft_names, *boost::unit_test::precondition(soft_only))

BOOST_AUTO_TEST_CASE(a_registry_not_ours_alone_is_refused)
{
    for (const auto &[mode, owner] : not_ours_alone()) {
        BOOST_TEST_CONTEXT("mode " << std::oct << mode << std::dec << ", owner " << owner)
        {
            const std::string fabric = unique_fabric("squat");
            planted reg("/tb-" + fabric, mode, owner);
            try {
                open_soft(fabric);
                BOOST_ERROR("the device opened");
            } catch (const tb::error &e) {
                BOOST_TEST(e.code() == EACCES, e.what());
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(a_cable_not_ours_alone_is_refused)
{
    for (const auto &[mode, owner] : not_ours_alone()) {
        BOOST_TEST_CONTEXT("mode " << std::oct << mode << std::dec << ", owner " << owner)
        {
            const std::string fabric = unique_fabric("squat");
            auto a = open_soft(fabric);
            auto b = open_soft(fabric);
            const uint32_t pa = tb::soft_fabric::process_of(a->id());
            const uint32_t pb = tb::soft_fabric::process_of(b->id());
            char name[128];
            std::snprintf(name, sizeof(name), "/tb-%s-%08x-%08x", fabric.c_str(),
                          std::min(pa, pb), std::max(pa, pb));
            planted cable(name, mode, owner);
            BOOST_TEST(a->create_ep(0, b->id(), b->secret()) == -EACCES);
            // Once it is gone, the same two connect.
            ::shm_unlink(name);
            BOOST_TEST(a->create_ep(0, b->id(), b->secret()) >= 0);
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
