/*
 * The libibverbs provider's C++ part, as tbv_provider.c calls it: rdma-core's
 * private headers, which that file needs, are C only.
 */
#ifndef TBV_H
#define TBV_H

#include <stdbool.h>

#ifdef __cplusplus
#define TBV_NOEXCEPT noexcept
extern "C" {
#else
#define TBV_NOEXCEPT
#endif

/*
 * Whether the RDMA device at ibdev_path (<sysfs>/class/infiniband/NAME) is
 * one of tbrdma_ib.ko's: its parent is a link of tbrdma.ko, in the class
 * tbrdma. Unlike its name, this survives renaming (rdma-core's udev rules
 * rename devices with a GUID).
 */
bool tbv_sysfs_is_tbrdma(const char *ibdev_path) TBV_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif /* TBV_H */
