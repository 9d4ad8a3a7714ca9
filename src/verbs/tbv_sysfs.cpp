// Which RDMA devices are tbrdma_ib.ko's, from sysfs.
#include "tbv.h"

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

extern "C" bool tbv_sysfs_is_tbrdma(const char *ibdev_path) noexcept
{
    // <ibdev>/device is the link's device; its subsystem, the class.
    char path[PATH_MAX];
    char real[PATH_MAX];
    int n = std::snprintf(path, sizeof(path), "%s/device/subsystem", ibdev_path);
    if (n < 0 || static_cast<size_t>(n) >= sizeof(path) || !realpath(path, real))
        return false;
    static const char tail[] = "/class/tbrdma";
    size_t len = std::strlen(real);
    return len >= sizeof(tail) - 1 && std::strcmp(real + len - (sizeof(tail) - 1), tail) == 0;
}
