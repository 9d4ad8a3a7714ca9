// SPDX-License-Identifier: BSD-2-Clause
//
// A Boost.Test fixture: an engine_pair whose link is up, with an endpoint
// each way.
#pragma once

#include <boost/test/unit_test.hpp>

#include "engine_pair.hpp"

namespace tbtest {

struct pair_fixture {
    engine_pair p;
    int ep_ab;
    int ep_ba;
    pair_fixture() : p(42)
    {
        ep_ab = p.a->ep_to(*p.b);
        ep_ba = p.b->ep_to(*p.a);
        BOOST_REQUIRE_GE(ep_ab, 0);
        BOOST_REQUIRE_GE(ep_ba, 0);
        BOOST_REQUIRE(p.pump_until([&] {
            return p.a->link.state == TBRDMA_LINK_UP && p.b->link.state == TBRDMA_LINK_UP;
        }));
    }
};

}  // namespace tbtest
